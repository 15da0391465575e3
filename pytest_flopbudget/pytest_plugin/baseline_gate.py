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

**Saving merges.** Over an existing baseline file, the tests profiled in this run replace
their entries and every other entry is kept, so a ``-k`` / ``-m`` / file-selected run updates
only what it ran; an entry is dropped only when its test no longer exists (its file was
collected in this run, before deselection, and the test is not in it; or its file is gone).
A file at the path that is not a baseline is never overwritten.

**What is shown.** Only what changed: the changed metrics of the changed tests, and one line
counting the unchanged ones (``-v`` lists them; ``-q`` shows only the regressed tests). The
Markdown stays under GitHub's comment limit (:mod:`pytest_flopbudget.reporting.markdown`).

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
from ..budgets.measurement import over_budget
from ..ci.baseline_file import Baseline, BaselineError, baseline_document, dumps, merge
from ..ci.comparison import RunComparison, compare_test
from ..core.files import append_text, atomic_write
from ..reporting.baseline_text import regression_message, summary_lines
from ..reporting.markdown import markdown
from . import ini
from .collected import collected
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
    # two finishers: a baseline that cannot be saved must not keep the Markdown from
    # being written (each failure is its own line)
    manager.add_finish(gate.save)
    manager.add_finish(gate.finish)
    if gate.save_to is not None:  # which tests exist: kept or dropped from the saved file
        collected(manager.config)
    return gate


class Gate:
    """The baseline feature of one pytest process (controller or xdist worker)."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        config = manager.config
        settings = manager.settings
        growth = ini.setting(config, "flop_max_growth", ini.growth)
        self.cli_growth: dict[str, Fraction] | None = growth[0] if growth else None
        self.growth_origin = growth[1] if growth else "--flop-max-growth"
        self.save_to = option_path(config, "flop_save_baseline")
        self.markdown_to = option_path(config, "flop_markdown")
        self.messages: list[str] = []
        self.baseline: Baseline | None = None
        #: ``(path, where it was named)`` of the baseline this run compares with, and of the
        #: project's configured baseline (which only --flop-save-baseline may write)
        self.compared: tuple[Path, str] | None = None
        self.configured: tuple[Path, str] | None = None
        self._run: RunComparison | None = None
        source = option_path(config, "flop_baseline")
        origin = "--flop-baseline"
        configured = settings.settings.get("baseline")
        from_ini = ini.ini_value(config, "flop_baseline")
        project: tuple[Path, str] | None = None
        if from_ini is not None:
            project, where = ini.ini_path(config, from_ini), ini.where("flop_baseline")
        elif configured is not None:
            where = f"{settings.where()} baseline"
            if not isinstance(configured, str) or not configured:
                raise pytest.UsageError(f"{where} must be a file path, got {configured!r}")
            project = config.rootpath / configured, configured
        if project is not None:
            self.configured = project[0], f"{where} {project[1]}"
        if source is None and self.save_to is None and project is not None:
            source, origin = project, where
            typed = any(o.partition("=")[0].strip() == "flop_baseline"
                        for o in config.option.override_ini or ())  # -o on the command line
            if not typed and not source[0].exists():
                # configured, and the project has not saved its first baseline yet
                self.messages.append(f"no baseline yet: {source[1]} ({origin}) does not "
                                     f"exist; save one with --flop-save-baseline={source[1]}")
                self.compared = source[0], f"{origin} {source[1]}"
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
        layers.insert(1, (self.growth_origin, self.cli_growth))
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

    def save(self, records: list[dict[str, Any]], session: pytest.Session) -> None:
        """Save the baseline, when asked to (``--flop-save-baseline``)."""
        if self.save_to is not None:
            self._save(records, session)

    def finish(self, records: list[dict[str, Any]], session: pytest.Session) -> None:
        """Write the Markdown summary and GitHub's step summary, when asked to."""
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        failures = [(r["nodeid"], r["error"]) for r in records
                    if r["outcome"] == "failed" and over_budget(r)]
        if self.markdown_to is None and not ((self.baseline or failures) and step_summary):
            return
        text = markdown(self.comparison(records), failures)
        if self.markdown_to is not None:
            atomic_write(self.markdown_to[0], text)
        if step_summary:  # other steps of the job append to the same file
            append_text(Path(step_summary), text)

    def _save(self, records: list[dict[str, Any]], session: pytest.Session) -> None:
        path, shown = self.save_to  # type: ignore[misc]
        why = ""
        if (session.shouldfail or session.shouldstop or self.manager.interrupted or
                session.exitstatus == pytest.ExitCode.INTERRUPTED):
            why = "the run stopped early"
        document = baseline_document(records)
        if not why and not document["tests"]:
            why = "no test profiled a model"
        old: dict[str, Any] = {}
        if not why and path.exists():
            try:
                old = Baseline.load(path, shown, "--flop-save-baseline").tests
            except BaselineError as exc:
                why = f"{exc}; delete it or save elsewhere"
        if why:
            self.messages.append(f"baseline NOT saved to {shown}: {why}; the file is left "
                                 f"as it was")
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        document, kept, dropped = merge(old, document, collected(self.manager.config).gone)
        atomic_write(path, dumps(document))
        models = sum(len(t) for t in document["tests"].values())
        extra = [f"{len(kept)} kept from the file (not profiled in this run)" if kept else "",
                 f"{len(dropped)} dropped (no longer collected): {', '.join(dropped)}"
                 if dropped else ""]
        extra_text = "; ".join(e for e in extra if e)
        self.messages.append(f"baseline saved to {shown}: {len(document['tests'])} tests, "
                             f"{models} models" + (f" ({extra_text})" if extra_text else ""))

    def summary(self, tr: Any, records: list[dict[str, Any]]) -> None:
        lines = []
        if self.baseline is not None:
            lines.extend(summary_lines(self.comparison(records), self.manager.verbosity))
        elif self.cli_growth is not None and self.compared is None:
            if self.save_to is not None and self.configured is not None:
                lines.append(f"{self.growth_origin} given in a run that saves a baseline: "
                             f"it does not compare with the configured one "
                             f"({self.configured[1]}): nothing compared")
            else:
                lines.append(f"{self.growth_origin} given without a baseline "
                             f"(--flop-baseline, flop_baseline or [tool.flopbudget] "
                             f"baseline): nothing compared")
        lines.extend(self.messages)
        if lines:
            tr.write_sep("=", "flop budget baseline")
            for line in lines:
                tr.write_line(line)
