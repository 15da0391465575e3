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

This module holds the options, the terminal text and the plugin feature (:class:`Gate`); growth
specs are in :mod:`~pytest_flopbudget.growth`, the file in
:mod:`~pytest_flopbudget.baseline_file`, the comparison in :mod:`~pytest_flopbudget.comparison`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from .baseline_file import Baseline, BaselineError, baseline_document, dumps
from .comparison import RunComparison, compare_test
from .files import append_text, atomic_write, option_path
from .growth import GROWTH_METRICS, GrowthError, Limit, growth_option, resolve_growth
from .report import layer_label, table

#: Display label of a metric with its unit in tables.
LABELS: dict[str, str] = {"flops": "flops", "macs": "macs", "params": "params",
                          "weight": "weight B", "access": "access B",
                          "activation": "activation B", "latency": "latency ms",
                          "written": "written B"}


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
        self._run: RunComparison | None = None
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
        because it failed first, is compared without limits); without a baseline every
        profiled test is new. Computed once per session (the Markdown and the terminal
        summary show the same one)."""
        if self._run is None:
            old = self.baseline.tests if self.baseline is not None else {}
            layers = self.manager.hotspots if self.baseline is not None else 0
            tests = [(r["nodeid"], r.get("baseline") or compare_test(
                r["measurements"], old.get(r["nodeid"]), None, layers))
                for r in records if r["measurements"]]
            measured = {nodeid for nodeid, _ in tests}
            shown = self.baseline.shown if self.baseline is not None else ""
            self._run = RunComparison(shown, tests, sorted(set(old) - measured))
        return self._run

    def finish(self, records: list[dict[str, Any]], session: pytest.Session) -> None:
        if self.save_to is not None:
            self._save(records, session)
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if self.markdown_to is None and not (self.baseline and step_summary):
            return
        from .markdown import markdown

        text = markdown(self.comparison(records))
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
