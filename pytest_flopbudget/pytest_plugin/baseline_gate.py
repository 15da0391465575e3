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

from ..budgets.growth import GROWTH_METRICS, GrowthError, Limit, growth_option, resolve_growth
from ..budgets.limits import BudgetError
from ..ci.baseline_file import Baseline, BaselineError, baseline_document, dumps
from ..ci.comparison import RunComparison, compare_test
from ..core.files import append_text, atomic_write
from ..reporting.baseline_text import regression_message, summary_lines
from ..reporting.markdown import markdown
from .markers import marker_arguments
from .options import option_path


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


def install(manager: Any) -> Gate:
    """Register the baseline check, summary and file writers with the plugin manager."""
    gate = Gate(manager)
    manager.add_check(gate.check)
    manager.add_summary(gate.summary)
    manager.add_finish(gate.finish)
    return gate


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
        #: ``(path, where it was named)`` of the baseline this run compares with
        self.compared: tuple[Path, str] | None = None
        self._run: RunComparison | None = None
        source = option_path(config, "flop_baseline")
        origin = "--flop-baseline"
        configured = settings.settings.get("baseline")
        if source is None and configured is not None and self.save_to is None:
            origin = f"{settings.where()} baseline"
            if not isinstance(configured, str) or not configured:
                raise pytest.UsageError(f"{origin} must be a file path, got {configured!r}")
            source = config.rootpath / configured, configured
            if not source[0].exists():  # the project has not saved its first baseline yet
                self.messages.append(f"no baseline yet: {configured} ({origin}) does not "
                                     f"exist; save one with --flop-save-baseline={configured}")
                self.compared = source[0], f"{origin} {configured}"
                return
        if source is not None:
            self.compared = source[0], f"{origin} {source[1]}"
            try:
                self.baseline = Baseline.load(*source, origin)
            except BaselineError as exc:
                raise pytest.UsageError(str(exc)) from None

    def limits(self, item: pytest.Item) -> dict[str, Limit]:
        """The growth limits of one test, laid over from general to specific."""
        config_layers = self.manager.settings.layers_for(item.nodeid)
        layers = [(where, args.get("max_growth")) for where, args in config_layers]
        layers.insert(1, ("--flop-max-growth", self.cli_growth))
        marked = marker_arguments(item)  # stacked markers: the tightest growth per metric
        if marked is not None:
            layers.append((marked[0], marked[1].get("max_growth")))
        return resolve_growth(layers)

    # worker side: runs when a budgeted test ends
    def check(self, record: Any, item: pytest.Item) -> list[str]:
        if self.baseline is None or not record.measurements:
            return []
        measurements = [m.to_dict() for m in record.measurements]
        try:
            limits = self.limits(item)
        except (GrowthError, BudgetError) as exc:
            return [f"flop budget: {exc}"]
        result = compare_test(measurements, self.baseline.tests.get(record.nodeid), limits,
                              self.manager.hotspots)
        record.extra["baseline"] = result
        if result["status"] == "regressed":
            return [regression_message(record.nodeid, result, self.baseline.shown)]
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
        elif self.cli_growth is not None and self.compared is None:
            lines.append("--flop-max-growth given without a baseline (--flop-baseline or "
                         "[tool.flopbudget] baseline): nothing compared")
        lines.extend(self.messages)
        if lines:
            tr.write_sep("=", "flop budget baseline")
            for line in lines:
                tr.write_line(line)
