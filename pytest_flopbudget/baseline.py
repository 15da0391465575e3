"""Baselines and growth limits: fail the pull request that makes a model heavier.

On the main branch, save what every profiled test measured; on a pull request, compare::

    pytest --flop-save-baseline=.flopbudget/baseline.json
    pytest --flop-baseline=.flopbudget/baseline.json --flop-max-growth=5%

**Metrics compared** (the *budgeted metrics* are those a growth limit applies to): ``flops``
and ``macs`` (counts per forward), ``params`` (parameter elements), ``weight``, ``access``,
``activation`` (bytes at the deployment dtype: parameters, memory traffic per forward, peak
live activations) and ``latency`` (roofline-predicted seconds on the test's device). A test
fails when a budgeted metric of one of its models grew by more than its limit, exactly:
``new > old * (1 + limit)`` in rational arithmetic, so ``5%`` lets 2,000,000 become 2,100,000
and fails 2,100,001; growth from 0 is over any limit. With no limit anywhere the comparison is
only reported.

**Growth specs** (:func:`parse_growth`): ``"5%"`` (all seven metrics), ``"flops:2%,latency:10%"``
(those two), ``"5%,latency:10%"`` (all, latency at 10%). Specs are laid over one another from
general to specific, each metric keeping the most specific value: ``[tool.flopbudget]
max_growth``, ``--flop-max-growth``, ``[tool.flopbudget.tests."<pattern>"] max_growth``, the
marker's ``max_growth=``. A bad spec is an error naming where it was written.

**Matching.** Tests match by node id, models by measurement name (a test that profiled one
model then and one now compares them even if the class was renamed). Totals decide; layers
(by module path) only explain which layers grew, so renamed layers still compare on totals.
Tests not in the baseline are *new*, baseline tests that profiled nothing in this run are
*missing*; neither fails.

**Baseline file** (JSON, ``sort_keys``, no timestamps, exact integers; latency in seconds)::

    {"schema": "pytest-flopbudget-baseline/1",
     "tests": {"<node id>": {"<model>": {"device": "cpu", "dtype": "fp32",
        "flops": 2001000, "macs": ..., "params": ..., "weight": ..., "access": ...,
        "activation": ..., "latency": 5.1e-05,
        "layers": {"<module path>": {"flops": ..., "macs": ..., "params": ...,
                                     "access": ..., "written": ..., "latency": ...}}}}}}

Layer figures are the layer's own work (``written``: bytes its operators wrote); layers whose
figures are all zero are left out. A file without that ``schema`` value is *foreign*.

The comparison runs in the test (on the xdist worker), so the regressed test itself fails;
its result travels to the controller in ``record["baseline"]``. The controller writes the
terminal summary, the Markdown (``--flop-markdown``, ``$GITHUB_STEP_SUMMARY``) and the saved
baseline from the collected records, so serial and xdist runs write the same bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from .budget import METRICS, suggest
from .files import append_text, atomic_write, option_path
from .report import layer_label, table
from .results import values_of

SCHEMA = "pytest-flopbudget-baseline/1"
REPORT_SCHEMA = "pytest-flopbudget/1"  # the --flop-json report, a common wrong file

#: Metrics compared, in display order (keys of ``results.values_of``).
GROWTH_METRICS: tuple[str, ...] = tuple(METRICS)

#: Per-layer figures kept in a baseline: figure -> layer row key (``results.layer_rows``).
LAYER_FIGURES: dict[str, str] = {"flops": "flops", "macs": "macs", "params": "params",
                                 "access": "bytes", "written": "bytes_written",
                                 "latency": "seconds"}

#: The layer figure that explains a regressed metric (weight is parameters at a dtype).
LAYER_RANK: dict[str, str] = {"flops": "flops", "macs": "macs", "params": "params",
                              "weight": "params", "access": "access",
                              "activation": "written", "latency": "latency"}

#: Display label of a metric with its unit in tables.
LABELS: dict[str, str] = {"flops": "flops", "macs": "macs", "params": "params",
                          "weight": "weight B", "access": "access B",
                          "activation": "activation B", "latency": "latency ms",
                          "written": "written B"}

#: One growth limit: (allowed growth as a fraction, where it was written).
Limit = tuple[Fraction, str]


# -- growth specs ------------------------------------------------------------------------
class GrowthError(ValueError):
    """A growth spec is malformed; callers prefix where it was written."""


_PERCENT = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)%")
_EXAMPLE = "e.g. '5%' or 'flops:2%,latency:10%'"


def parse_percent(text: str) -> Fraction:
    """``"2.5%"`` -> ``Fraction(1, 40)``: a non-negative percentage as an exact fraction."""
    text = text.strip()
    if _PERCENT.fullmatch(text):
        return Fraction(text[:-1]) / 100
    if text.startswith("-"):
        raise GrowthError(f"growth limit must not be negative, got {text!r}")
    if re.fullmatch(r"(?:\d+(?:\.\d*)?|\.\d+)", text):
        raise GrowthError(f"growth limit needs a '%' sign, got {text!r} (write {text}%)")
    raise GrowthError(f"expected a percentage such as '5%', got {text!r}")


def parse_growth(spec: Any) -> dict[str, Fraction]:
    """Parse a growth spec into ``{metric: allowed growth as a fraction}``.

    ``"5%"`` sets every metric in :data:`GROWTH_METRICS`; ``"flops:2%,latency:10%"`` sets
    those; a bare percentage and ``metric:percent`` entries mix, the entries winning. Raises
    :class:`GrowthError` for anything else (no ``%``, negative, unknown or repeated metric).
    """
    if not isinstance(spec, str):
        raise GrowthError(f"expected a string, {_EXAMPLE}, got {spec!r}")
    if not spec.strip():
        raise GrowthError(f"empty growth spec; {_EXAMPLE}")
    every: Fraction | None = None
    limits: dict[str, Fraction] = {}
    for item in spec.split(","):
        metric, colon, percent = item.rpartition(":")
        metric = metric.strip()
        if not item.strip():
            raise GrowthError(f"empty entry in {spec!r}; {_EXAMPLE}")
        if not colon:
            if every is not None:
                raise GrowthError(f"two limits for every metric in {spec!r}")
            every = parse_percent(percent)
        elif metric not in GROWTH_METRICS:
            raise GrowthError(f"unknown metric {metric!r}{suggest(metric, GROWTH_METRICS)}; "
                              f"known: {', '.join(GROWTH_METRICS)}")
        elif metric in limits:
            raise GrowthError(f"metric {metric!r} given twice in {spec!r}")
        else:
            limits[metric] = parse_percent(percent)
    base = dict.fromkeys(GROWTH_METRICS, every) if every is not None else {}
    return {**base, **limits}


def growth_option(text: str) -> dict[str, Fraction]:
    """argparse ``type=`` for ``--flop-max-growth``."""
    try:
        return parse_growth(text)
    except GrowthError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def resolve_growth(layers: Iterable[tuple[str, Any]]) -> dict[str, Limit]:
    """Lay growth specs ``[(where, spec or parsed dict or None), ...]`` over one another,
    most general first; each metric keeps the last value. Errors name ``where``."""
    limits: dict[str, Limit] = {}
    for where, spec in layers:
        if spec is None:
            continue
        try:
            parsed = spec if isinstance(spec, dict) else parse_growth(spec)
        except GrowthError as exc:
            raise GrowthError(f"{where}: max_growth: {exc}") from None
        limits.update((metric, (value, where)) for metric, value in parsed.items())
    return limits


def percent_text(fraction: Fraction) -> str:
    """``Fraction(1, 20)`` -> ``"5%"``."""
    return f"{float(fraction * 100):g}%"


def over_limit(old: float, new: float, limit: Fraction) -> bool:
    """``new > old * (1 + limit)``, exactly (floats are converted without rounding)."""
    return Fraction(new) > Fraction(old) * (1 + limit)


# -- baseline files ----------------------------------------------------------------------
class BaselineError(ValueError):
    """A baseline file is missing, corrupt or foreign; the message names it."""


def layer_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """``{module path: {figure: value}}`` from measurement layer rows (zero rows dropped)."""
    layers: dict[str, dict[str, float]] = {}
    for row in rows:
        figures = layers.setdefault(row["name"], dict.fromkeys(LAYER_FIGURES, 0))
        for figure, key in LAYER_FIGURES.items():
            figures[figure] += row[key]
    return {name: figs for name, figs in layers.items() if any(figs.values())}


def profile_entry(measurement: Mapping[str, Any]) -> dict[str, Any]:
    """One model's baseline entry from a measurement dict (``Measurement.to_dict``)."""
    return {"device": measurement["device"], "dtype": measurement["dtype"],
            **values_of(measurement), "layers": layer_figures(measurement["layers"])}


def baseline_document(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The baseline of a run: every test that profiled at least one model."""
    tests = {r["nodeid"]: {m["name"]: profile_entry(m) for m in r["measurements"]}
             for r in records if r["measurements"]}
    return {"schema": SCHEMA, "tests": tests}


def dumps(document: Mapping[str, Any]) -> str:
    """Deterministic JSON text: sorted keys, one value per line."""
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def _number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


def _check_entry(entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise BaselineError(f"{where} must be an object of metrics")
    for metric in GROWTH_METRICS:
        if not _number(entry.get(metric)):
            raise BaselineError(f"{where}: {metric!r} must be a non-negative number, "
                                f"got {entry.get(metric)!r}")
    for key in ("device", "dtype"):
        if not isinstance(entry.get(key), str):
            raise BaselineError(f"{where}: {key!r} must be a name (a string), "
                                f"got {entry.get(key)!r}")
    layers = entry.get("layers")
    if not isinstance(layers, dict):
        raise BaselineError(f"{where}: 'layers' must be an object, got {layers!r}")
    for path, figures in layers.items():
        if not isinstance(figures, dict) or not all(_number(v) for v in figures.values()):
            raise BaselineError(f"{where}: layer {path!r} must map figures to numbers")


def parse_baseline(text: str, name: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``{node id: {model: entry}}`` from a baseline file's text; ``name`` is used in errors."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{name} is not valid JSON (truncated or corrupt?): {exc}") from None
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema != SCHEMA:
        if schema == REPORT_SCHEMA:
            why = "it is a --flop-json report"
        elif isinstance(schema, str) and schema.startswith(SCHEMA.split("/")[0] + "/"):
            why = f"it has schema {schema!r}, which this version does not read"
        else:
            why = (f"its schema is {schema!r}" if schema is not None
                   else "it has no \"schema\" key")
        raise BaselineError(f"{name} is not a pytest-flopbudget baseline ({why}; expected "
                            f"\"schema\": \"{SCHEMA}\"); save one with --flop-save-baseline")
    tests = doc.get("tests")
    if not isinstance(tests, dict):
        raise BaselineError(f"{name}: 'tests' must be an object of node ids")
    for nodeid, models in tests.items():
        if not isinstance(models, dict):
            raise BaselineError(f"{name}: tests[{nodeid!r}] must be an object of models")
        for model, entry in models.items():
            _check_entry(entry, f"{name}: tests[{nodeid!r}][{model!r}]")
    return tests


@dataclass
class Baseline:
    """A loaded baseline: ``tests`` as in the file, ``shown`` the path as the user wrote it."""

    shown: str
    tests: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, shown: str, origin: str) -> Baseline:
        """Read and validate; raises :class:`BaselineError` naming ``origin`` and the file."""
        name = f"{origin}: baseline file {shown}"
        if shown != str(path):
            name += f" ({path})"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BaselineError(f"{name} does not exist; save one with "
                                f"--flop-save-baseline={shown}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BaselineError(f"{name} cannot be read: {exc}") from None
        return cls(shown, parse_baseline(text, name))


# -- comparison --------------------------------------------------------------------------
def _layer_growth(old: Mapping[str, Mapping[str, float]], new_rows: Sequence[Mapping[str, Any]],
                  figure: str, n: int) -> list[dict[str, Any]]:
    """The ``n`` layers whose ``figure`` grew most (absolute), by module path."""
    new = layer_figures(new_rows)
    kinds = {row["name"]: row["kind"] for row in new_rows}
    rows = []
    for path in sorted(set(old) | set(new)):
        before = old.get(path, {}).get(figure, 0)
        after = new.get(path, {}).get(figure, 0)
        if after > before:
            rows.append({"name": path, "kind": kinds.get(path, "-"), "old": before,
                         "new": after})
    rows.sort(key=lambda r: r["new"] - r["old"], reverse=True)  # stable: ties by path
    return rows[:n]


def compare_model(measurement: Mapping[str, Any], old: Mapping[str, Any] | None,
                  limits: Mapping[str, Limit] | None, n_layers: int) -> dict[str, Any]:
    """Compare one measurement dict with its baseline entry (``None``: a new model).

    ``limits`` is ``{metric: (growth, where)}``; ``None`` when unknown (the test failed before
    its check), which compares without a verdict. Returns a JSON-able dict.
    """
    result: dict[str, Any] = {"name": measurement["name"], "status": "new"}
    values = values_of(measurement)
    if old is None:
        result["values"] = values
        return result
    rows = []
    for metric in GROWTH_METRICS:
        limit = (limits or {}).get(metric)
        rows.append({"metric": metric, "old": old[metric], "new": values[metric],
                     "limit": percent_text(limit[0]) if limit else None,
                     "where": limit[1] if limit else None,
                     "over": bool(limit) and over_limit(old[metric], values[metric], limit[0])})
    over = [r["metric"] for r in rows if r["over"]]
    result.update(status="regressed" if over else "ok", metrics=rows, checked=limits is not None)
    if (old["device"], old["dtype"]) != (measurement["device"], measurement["dtype"]):
        result["device_change"] = (f"{old['device']} {old['dtype']} -> "
                                   f"{measurement['device']} {measurement['dtype']}")
    new_paths = set(layer_figures(measurement["layers"]))
    gone, added = sorted(set(old["layers"]) - new_paths), sorted(new_paths - set(old["layers"]))
    if gone or added:
        result["renamed_layers"] = {"gone": gone, "added": added}
    if over:
        figure = LAYER_RANK[over[0]]
        result["layers"] = {"metric": over[0], "figure": figure,
                            "rows": _layer_growth(old["layers"], measurement["layers"],
                                                  figure, n_layers)}
    return result


def compare_test(measurements: Sequence[Mapping[str, Any]],
                 old: Mapping[str, Mapping[str, Any]] | None,
                 limits: Mapping[str, Limit] | None, n_layers: int) -> dict[str, Any]:
    """Compare a test's measurement dicts with its baseline models (``None``: a new test)."""
    known = old is not None
    old = dict(old or {})
    models = []
    pair_renamed = len(measurements) == 1 and len(old) == 1
    for m in measurements:
        name = m["name"] if m["name"] in old or not pair_renamed else next(iter(old))
        result = compare_model(m, old.pop(name, None), limits, n_layers)
        if name != m["name"]:
            result["was"] = name
        models.append(result)
    models.extend({"name": name, "status": "missing"} for name in sorted(old))
    statuses = {m["status"] for m in models}
    status = "new" if not known else "regressed" if "regressed" in statuses else "ok"
    return {"status": status, "models": models}


@dataclass
class RunComparison:
    """The comparison of a whole run: per-test results (sorted by node id) and the baseline
    tests that profiled nothing in this run."""

    source: str
    tests: list[tuple[str, dict[str, Any]]]
    missing: list[str]

    def count(self, status: str) -> int:
        return len(self.missing) if status == "missing" else \
            sum(1 for _, t in self.tests if t["status"] == status)

    def headline(self) -> str:
        """``"1 regressed, 2 within limits, 1 new, 0 missing"``."""
        return (f"{self.count('regressed')} regressed, {self.count('ok')} within limits, "
                f"{self.count('new')} new, {self.count('missing')} missing")


# -- text --------------------------------------------------------------------------------
def fmt_metric(metric: str, value: float) -> str:
    """Exact counts and bytes with thousands separators; latency (seconds) in ms."""
    if metric == "latency":
        ms = value * 1e3
        return f"{ms:.4f}" if ms >= 0.01 or ms == 0 else f"{ms:.3g}"
    return f"{int(value):,}" if value == int(value) else f"{value:,.1f}"


def change_text(old: float, new: float) -> str:
    """``"+100.0%"``, ``"-50.0%"``, ``"0.0%"``; growth from 0 is ``"new"``."""
    if old == new:
        return "0.0%"
    if old == 0:
        return "new"
    pct = (new / old - 1) * 100
    return f"{pct:+.1f}%" if abs(pct) >= 0.05 else f"{pct:+.2g}%"


def shown_metrics(model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The metric rows a report shows: budgeted or changed ones, else the FLOPs row."""
    rows = model["metrics"]
    return [r for r in rows if r["limit"] or r["old"] != r["new"]] or rows[:1]


def verdict(row: Mapping[str, Any], checked: bool) -> str:
    if row["over"]:
        return "over"
    return "ok" if row["limit"] and checked else "-"


def metric_table(model: Mapping[str, Any], indent: str = "    ") -> list[str]:
    rows = [(LABELS[r["metric"]], fmt_metric(r["metric"], r["old"]),
             fmt_metric(r["metric"], r["new"]), change_text(r["old"], r["new"]),
             r["limit"] or "-", verdict(r, model["checked"]))
            for r in shown_metrics(model)]
    return table(("metric", "baseline", "this run", "change", "max growth", "verdict"), rows,
                 right={1, 2, 3, 4}, indent=indent)


def layer_table(model: Mapping[str, Any], indent: str = "      ") -> list[str]:
    grown = model["layers"]
    figure = grown["figure"]
    rows = [(layer_label(r["name"]), r["kind"], fmt_metric(figure, r["old"]),
             fmt_metric(figure, r["new"]),
             f"+{fmt_metric(figure, r['new'] - r['old'])} ({change_text(r['old'], r['new'])})")
            for r in grown["rows"]]
    return table(("layer", "type", "baseline", "this run", "change"), rows,
                 right={2, 3, 4}, indent=indent)


def notes(model: Mapping[str, Any]) -> list[str]:
    """Remarks on a compared model: renamed class, changed device, renamed layers."""
    lines = []
    if "was" in model:
        lines.append(f"compared with baseline model {model['was']} (the test's only model)")
    if "device_change" in model:
        lines.append(f"device changed: {model['device_change']}")
    renamed = model.get("renamed_layers")
    if renamed:
        lines.append(f"layer paths changed (compared on totals): new "
                     f"{', '.join(map(layer_label, renamed['added'])) or '-'}; gone "
                     f"{', '.join(map(layer_label, renamed['gone'])) or '-'}")
    return lines


def figures_text(values: Mapping[str, float]) -> str:
    return (f"{fmt_metric('flops', values['flops'])} FLOPs, "
            f"{fmt_metric('params', values['params'])} params")


def failure_message(nodeid: str, result: Mapping[str, Any], source: str) -> str:
    """What a regressed test fails with: each metric over its limit, where the limit was
    written, and the layers that grew most."""
    lines = []
    for model in result["models"]:
        if model["status"] != "regressed":
            continue
        lines.append(f"flop baseline: {model['name']} grew more than allowed over {source}")
        for r in model["metrics"]:
            if r["over"]:
                lines.append(f"  {LABELS[r['metric']]}: {fmt_metric(r['metric'], r['old'])} -> "
                             f"{fmt_metric(r['metric'], r['new'])} "
                             f"({change_text(r['old'], r['new'])}) > max growth {r['limit']} "
                             f"({r['where']})")
        lines.extend(f"  {note}" for note in notes(model))
        lines.append(f"  layers that grew most in {LABELS[model['layers']['figure']]}:")
        lines.extend(layer_table(model, indent="    "))
    return "\n".join(lines)


def summary_lines(run: RunComparison) -> list[str]:
    """The terminal summary: a block per compared test, then new and missing tests."""
    lines = [f"compared with {run.source}: {run.headline()}"]
    new = []
    for nodeid, result in run.tests:
        if result["status"] == "new":
            new.extend((nodeid, m) for m in result["models"])
            continue
        for model in result["models"]:
            if model["status"] == "new":
                new.append((nodeid, model))
            elif model["status"] == "missing":
                lines.append(f"{nodeid}: {model['name']}: in the baseline, not profiled now")
            else:
                word = {"regressed": "REGRESSED", "ok": "ok"}[model["status"]]
                if not model["checked"]:
                    word = "not checked (the test failed)"
                lines.append(f"{nodeid}: {model['name']}: {word}")
                lines.extend(metric_table(model, indent="  "))
                lines.extend(f"  {note}" for note in notes(model))
                if "layers" in model:
                    lines.append(f"  layers that grew most in {LABELS[model['layers']['figure']]}:")
                    lines.extend(layer_table(model, indent="    "))
    if new:
        lines.append("new (not in the baseline):")
        lines.extend(f"  {nodeid}: {m['name']} ({figures_text(m['values'])})" for nodeid, m in new)
    if run.missing:
        lines.append("missing (in the baseline, not profiled in this run):")
        lines.extend(f"  {nodeid}" for nodeid in run.missing)
    return lines


# -- the plugin feature ------------------------------------------------------------------
def add_options(group: Any) -> None:
    """Add the baseline command-line options to the plugin's option group."""
    group.addoption("--flop-baseline", metavar="PATH", default=None,
                    help="compare every profiled test with the baseline at PATH (default: "
                         "[tool.flopbudget] baseline, unless saving one)")
    group.addoption("--flop-save-baseline", metavar="PATH", default=None,
                    help="write this run's profiles as a baseline to PATH")
    group.addoption("--flop-max-growth", metavar="SPEC", type=growth_option, default=None,
                    help="fail a test whose model grew over the baseline by more than SPEC: "
                         "'5%%' (every metric) or 'flops:2%%,latency:10%%'; metrics: "
                         + ", ".join(GROWTH_METRICS))
    group.addoption("--flop-markdown", metavar="PATH", default=None,
                    help="write the baseline comparison as a Markdown table to PATH "
                         "(also appended to $GITHUB_STEP_SUMMARY when set)")


def install(manager: Any) -> None:
    """Register the baseline check, summary and file writers with the plugin manager."""
    gate = Gate(manager)
    manager.add_check(gate.check)
    manager.add_summary(gate.summary)
    manager.add_finish(gate.finish)


class Gate:
    """The baseline feature of one pytest process (controller or xdist worker)."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        config = manager.config
        settings = manager.settings
        self.cli_growth: dict[str, Fraction] | None = config.getoption("flop_max_growth")
        self.save_to = option_path(config, "flop_save_baseline")
        self.markdown_to = option_path(config, "flop_markdown")
        self.messages: list[str] = []
        self.baseline: Baseline | None = None
        source = option_path(config, "flop_baseline")
        origin = "--flop-baseline"
        configured = settings.settings.get("baseline")
        if source is None and configured is not None and self.save_to is None:
            origin = f"{settings.where()} baseline"
            if not isinstance(configured, str) or not configured:
                raise pytest.UsageError(f"{origin} must be a file path, got {configured!r}")
            source = config.rootpath / configured, configured
        if source is not None:
            try:
                self.baseline = Baseline.load(*source, origin)
            except BaselineError as exc:
                raise pytest.UsageError(str(exc)) from None

    def limits(self, item: pytest.Item) -> dict[str, Limit]:
        """The growth limits of one test, laid over from general to specific."""
        config_layers = self.manager.settings.layers_for(item.nodeid)
        layers = [(where, args.get("max_growth")) for where, args in config_layers]
        layers.insert(1, ("--flop-max-growth", self.cli_growth))
        marker = item.get_closest_marker("flop_budget")
        if marker is not None:
            layers.append((f"@flop_budget on {item.nodeid}", marker.kwargs.get("max_growth")))
        return resolve_growth(layers)

    # worker side: runs when a budgeted test ends
    def check(self, record: Any, item: pytest.Item) -> list[str]:
        if self.baseline is None or not record.measurements:
            return []
        measurements = [m.to_dict() for m in record.measurements]
        try:
            limits = self.limits(item)
        except GrowthError as exc:
            return [f"flop budget: {exc}"]
        result = compare_test(measurements, self.baseline.tests.get(record.nodeid), limits,
                              self.manager.hotspots)
        record.extra["baseline"] = result
        if result["status"] == "regressed":
            return [failure_message(record.nodeid, result, self.baseline.shown)]
        return []

    # controller side
    def comparison(self, records: Sequence[Mapping[str, Any]]) -> RunComparison:
        """The run's comparison from the collected records (a test whose check did not run,
        because it failed first, is compared without limits)."""
        assert self.baseline is not None
        old = self.baseline.tests
        tests = []
        for r in records:
            if not r["measurements"]:
                continue
            result = r.get("baseline") or compare_test(r["measurements"], old.get(r["nodeid"]),
                                                       None, self.manager.hotspots)
            tests.append((r["nodeid"], result))
        measured = {nodeid for nodeid, _ in tests}
        return RunComparison(self.baseline.shown, tests, sorted(set(old) - measured))

    def finish(self, records: list[dict[str, Any]], session: pytest.Session) -> None:
        if self.save_to is not None:
            self._save(records, session)
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if self.markdown_to is None and not (self.baseline and step_summary):
            return
        from .markdown import markdown

        run = self.comparison(records) if self.baseline else \
            RunComparison("", [(r["nodeid"], compare_test(r["measurements"], None, None, 0))
                               for r in records if r["measurements"]], [])
        text = markdown(run)
        if self.markdown_to is not None:
            atomic_write(self.markdown_to[0], text)
        if step_summary:  # other steps of the job append to the same file
            append_text(Path(step_summary), text)

    def _save(self, records: list[dict[str, Any]], session: pytest.Session) -> None:
        path, shown = self.save_to  # type: ignore[misc]
        why = ""
        if (session.shouldfail or session.shouldstop or
                session.exitstatus == pytest.ExitCode.INTERRUPTED):
            why = "the run stopped early"
        document = baseline_document(records)
        if not document["tests"]:
            why = "no test profiled a model"
        if why:
            self.messages.append(f"baseline NOT saved to {shown}: {why}; the file is left "
                                 f"as it was")
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        atomic_write(path, dumps(document))
        models = sum(len(t) for t in document["tests"].values())
        self.messages.append(f"baseline saved to {shown}: {len(document['tests'])} tests, "
                             f"{models} models")

    def summary(self, tr: Any, records: list[dict[str, Any]]) -> None:
        lines = []
        if self.baseline is not None:
            lines.extend(summary_lines(self.comparison(records)))
        elif self.cli_growth is not None:
            lines.append("--flop-max-growth given without a baseline (--flop-baseline or "
                         "[tool.flopbudget] baseline): nothing compared")
        lines.extend(self.messages)
        if lines:
            tr.write_sep("=", "flop budget baseline")
            for line in lines:
                tr.write_line(line)
