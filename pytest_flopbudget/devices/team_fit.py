"""A team fits its own board: ``python -m pytest_flopbudget fit``.

The team runs its tests with ``pytest --flop-json flop.json`` on the device the catalog has
for its board (``--flop-device NAME`` or the tests' own), measures the same models on the
board with the tools it already has, and lists the latencies by test id
(:mod:`.measured`: milliseconds, or trtexec, benchmark_model, benchncnn and hailortcli logs).
Each measurement of the report carries its prediction's fit terms
(:func:`.fit.terms`), so the fit needs neither torch nor the models:

    python -m pytest_flopbudget fit --device rk3588-npu --report flop.json \\
        --measured times.csv --free efficiency.conv,overhead --name rk3588-ours

writes ``.flopbudget/rk3588-ours.toml`` in the project (where every device file joins the
catalog): the device's figures with the fitted ones, each fitted figure's source citing the
rows, and the residual of every row as comments.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from ..core.files import atomic_write
from ..core.op_classes import OP_CLASSES
from .device import Device, DeviceError
from .device_file import check_device_destination, device_toml
from .fit import TABLES, Fit, Row, Term, fit, used_by
from .measured import MeasuredError, read_measured
from .project import check_declared_once, device_file_path, discover, find_root, get_device


class FitCommandError(ValueError):
    """A bad option, report or measured file; the message names it."""


def _report_tests(report: Path) -> list[dict[str, Any]]:
    """The tests of a ``--flop-json`` report, each with its list of measurements (errors name
    the file)."""
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise FitCommandError(f"--report {report}: cannot be read: {exc}") from None
    except ValueError as exc:
        raise FitCommandError(f"--report {report}: not JSON ({exc})") from None
    tests = data.get("tests") if isinstance(data, dict) else None
    if not isinstance(tests, list):
        raise FitCommandError(f"--report {report}: not a --flop-json report (no 'tests' list)")
    for test in tests:
        measurements = test.get("measurements") if isinstance(test, dict) else None
        if not isinstance(measurements, list) or \
                not all(isinstance(m, dict) for m in measurements):
            raise FitCommandError(f"--report {report}: not a --flop-json report (a test "
                                  f"without a list of measurements: {str(test)[:80]})")
    return tests


def report_rows(report: Path, device: str, wanted: Collection[str] | None = None
                ) -> dict[str, tuple[Term, ...]]:
    """``{test id: fit terms}`` of the tests a ``--flop-json`` report priced on ``device``
    (``wanted``: the tests measured; a test that profiled several models is an error only
    when it is one of them)."""
    return _rows_of(report, _report_tests(report), device, wanted)


def _rows_of(report: Path, tests: list[dict[str, Any]], device: str,
             wanted: Collection[str] | None) -> dict[str, tuple[Term, ...]]:
    out: dict[str, tuple[Term, ...]] = {}
    for test in tests:
        mine = [m for m in test["measurements"] if m.get("device") == device]
        if not mine:
            continue
        nodeid = test.get("nodeid", "?")
        if len(mine) > 1 and wanted is not None and nodeid not in wanted:
            continue  # not measured: its several models stand in no one's way
        if len(mine) > 1:
            raise FitCommandError(f"--report {report}: test {nodeid} profiles {len(mine)} "
                                  f"models on {device}; a measured latency needs one model "
                                  f"per test")
        if "terms" not in mine[0]:
            raise FitCommandError(f"--report {report}: test {nodeid} has no fit terms (a "
                                  f"report of an older pytest-flopbudget); run the tests again")
        try:
            out[nodeid] = tuple(Term.from_list(t) for t in mine[0]["terms"])
        except ValueError as exc:
            raise FitCommandError(f"--report {report}: test {nodeid}: {exc}") from None
    if not out:
        raise FitCommandError(f"--report {report}: no test was priced on device {device!r}; "
                              f"run the tests with --flop-device {device}")
    return out


#: How far (relative) the device's own prediction of a row may be from the report's before
#: the report is said to be priced on another device of that name: the fit sums its terms
#: per operator and applies a compute ceiling to the sums, which moved a prediction by up
#: to 11% on one device with ceilings (none on the built-in devices tried).
PRICED_APART = 0.25


def report_latencies(tests: list[dict[str, Any]], device: str) -> dict[str, float]:
    """``{test id: predicted seconds}`` of a report's ``tests`` (:func:`_report_tests`)
    priced on ``device`` with one model."""
    out = {}
    for test in tests:
        mine = [m for m in test["measurements"] if m.get("device") == device]
        if len(mine) == 1 and isinstance(mine[0].get("latency_s"), (int, float)):
            out[str(test.get("nodeid"))] = float(mine[0]["latency_s"])
    return out


def expand_free(spec: str, rows: Sequence[Row]) -> list[str]:
    """The free figures of ``--free``: comma-separated figures (``efficiency.conv``,
    ``overheads.aten.lstm``, ``overhead``...); ``efficiency``, ``compute_efficiency`` or
    ``overheads`` alone stand for one entry per operator class the rows run."""
    classes = [c for c in OP_CLASSES if any(t.op_class == c for r in rows for t in r.terms)]
    out: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item in TABLES:
            out += [f"{item}.{c}" for c in classes]
        elif item in ("overhead", "link_bandwidth") or \
                (item.partition(".")[0] in TABLES and item.partition(".")[2]):
            out.append(item)
        else:
            raise FitCommandError(f"--free: {item!r} is not a free figure; expected "
                                  f"efficiency, compute_efficiency, overheads (one per "
                                  f"operator class), efficiency.KEY, compute_efficiency.KEY, "
                                  f"overheads.KEY, overhead or link_bandwidth")
    if not out:
        raise FitCommandError("--free: no free figures given")
    return list(dict.fromkeys(out))


def fitted_file(result: Fit, base: Device, name: str, cite: str, notes: Sequence[str]) -> str:
    """The fitted device as a complete device file: every figure of ``base`` with the fitted
    ones, every source, the residuals as comments."""
    defaults = Device("defaults", 1.0, 1.0).to_dict()
    table = {k: v for k, v in result.device.to_dict().items()
             if k not in ("name", "sources") and v is not None
             and (v != defaults[k] or k in base.sources or k in ("bandwidth", "peak_flops"))}
    table["description"] = (f"{base.description or base.name}, its free figures fitted to "
                            f"{cite} on {_dt.date.today().isoformat()}")
    table["sources"] = dict(result.device.sources)
    header = [f"Written by 'python -m pytest_flopbudget fit' from device {base.name!r} and "
              f"{cite}.", *notes, "", "Residual of every row (measured, predicted before and "
              "after the fit):", *result.residual_lines()]
    return device_toml(name, table, "\n".join(header))


def fitted_name(device: str) -> str:
    """The default name of a device fitted from ``device``: ``NAME-fitted``, with what a
    file name cannot hold as ``-`` (``"my board"`` gives ``my-board-fitted``)."""
    stem = re.sub(r"\.\.+", "-", re.sub(r"[^A-Za-z0-9_.+-]+", "-", device)).strip("-._+")
    return f"{stem or 'device'}-fitted"


def run_fit(*, device: str, report: Path, measured: Path, free: str, name: str | None,
            out: Path | None, start: Path) -> list[str]:
    """The ``fit`` command: returns the lines to print; raises :class:`FitCommandError`."""
    try:
        found = discover(start)
    except DeviceError as exc:  # the project's pyproject.toml or device files
        raise FitCommandError(str(exc)) from None
    catalog = found.catalog if found is not None else None
    try:
        base = get_device(device, catalog)
    except DeviceError as exc:
        raise FitCommandError(f"--device: {exc}") from None
    new = name or fitted_name(device)
    if out is None:  # where the device file goes, checked before any fitting
        try:
            out = device_file_path(find_root(start) or start, new)
        except DeviceError as exc:
            raise FitCommandError(f"--name: {exc}; or give --out PATH") from None
    else:  # a path of the user's: never over a file that is not a device file
        try:
            check_device_destination(out)
        except DeviceError as exc:
            raise FitCommandError(f"--out: {exc}") from None
    try:
        check_declared_once(out, new)
    except DeviceError as exc:
        raise FitCommandError(f"--name: {exc}") from None
    try:
        times = read_measured(measured)
    except MeasuredError as exc:
        raise FitCommandError(f"--measured: {exc}") from None
    tests = _report_tests(report)
    terms = _rows_of(report, tests, device, set(times))
    rows = [Row(test, terms[test], seconds) for test, seconds in times.items()
            if test in terms]
    unknown = [t for t in times if t not in terms]
    if not rows:
        raise FitCommandError(f"--measured {measured}: none of its tests is in the report "
                              f"(e.g. {next(iter(times))!r}; the report has "
                              f"{', '.join(list(terms)[:3])})")
    figures = expand_free(free, rows)
    try:
        users = used_by(base, rows, figures)
    except DeviceError as exc:  # a free figure the device cannot bound (no link)
        raise FitCommandError(f"--free: {exc}") from None
    unused = [f for f in figures if not users[f]]
    figures = [f for f in figures if users[f]]
    if not figures:
        raise FitCommandError(f"--free: no row prices with {', '.join(unused)}")
    cite = f"the {len(rows)} rows of {measured.name}"
    try:
        result = fit(base, rows, figures, cite=measured.name)
    except ImportError as exc:
        raise FitCommandError(str(exc)) from None
    except DeviceError as exc:
        raise FitCommandError(str(exc)) from None
    notes = []
    priced = report_latencies(tests, device)
    apart = [(test, priced[test], before) for test, before, _, _ in result.rows
             if priced.get(test) and abs(before / priced[test] - 1) > PRICED_APART]
    if apart:
        example, theirs, ours = apart[0]
        notes.append(f"WARNING: device {device!r} here predicts {len(apart)} of the report's "
                     f"tests more than {PRICED_APART:.0%} away from the report (e.g. {example}: "
                     f"{theirs * 1e3:.4g} ms in the report, {ours * 1e3:.4g} ms here): the "
                     f"report was likely priced on another device of that name (a project's "
                     f"own figures?); fit with the device the report used.")
    if unknown:
        notes.append(f"Not in the report, not fitted: {', '.join(unknown)}.")
    if unused:
        notes.append(f"No row prices with {', '.join(unused)}: left as they were.")
    if len(rows) < len(figures):
        notes.append(f"WARNING: {len(figures)} free figures from {len(rows)} rows: the fit is "
                     f"underdetermined; measure more tests or free fewer figures.")
    text = fitted_file(result, base, new, cite, notes)
    replaced = " (it replaces the file that was there)" if out.exists() else ""
    try:
        atomic_write(out, text)
    except OSError as exc:
        raise FitCommandError(f"cannot write {out}: {exc}") from None
    before, after = result.summary(after=False), result.summary()
    figure_text = ", ".join(f"{k} = {_shown(k, v)}" for k, v in result.figures.items())
    return [*notes,
            f"fitted {len(figures)} figures of {device!r} to {len(rows)} rows: median / worst "
            f"|error| {before[0]:.1%} / {before[1]:.1%} -> {after[0]:.1%} / {after[1]:.1%}",
            f"  {figure_text}",
            *result.residual_lines(),
            f"wrote device {new!r} to {out}{replaced}"]


def _shown(figure: str, value: float) -> str:
    if figure.startswith("overhead"):
        return f"{value * 1e6:.3g} us"
    return f"{value:.4g}"


__all__ = ["FitCommandError", "expand_free", "fitted_file", "report_rows", "run_fit"]
