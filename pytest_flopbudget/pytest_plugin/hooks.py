"""pytest hooks: the ``flop_budget`` marker and fixture, failure hotspots, reports.

Only ``pytest_addoption``, ``pytest_configure`` and the fixture live at module level;
``pytest_configure`` registers one :class:`FlopBudgetPlugin` whose methods are the remaining
hooks. The logic lives in plain modules (budget, config, results, report); features such as
baselines and the HTML report plug into the manager through ``add_check``, ``add_summary`` and
``add_finish``.

Per-test data travels on the test report (``report.flopbudget``, a plain dict), so a serial run
and an xdist run take the same path: workers attach it, the controller collects it in
``pytest_runtest_logreport``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from ..budgets.config import Config, load
from ..budgets.limits import LIMITS, OPTIONS, Budget, BudgetError
from ..budgets.measurement import REPORT_SCHEMA, TestRecord, outcome_counts
from ..core.files import atomic_write, check_writable
from ..core.metrics import METRICS
from ..core.numbers import positive_int
from ..core.version import VERSION
from ..devices.device import DeviceError
from ..devices.project import set_default_catalog
from ..reporting.text import (
    failing_oneliners,
    failing_summary,
    failure_message,
    report_table,
    unsupported_summary,
)
from . import (
    baseline_gate,
    complexity,
    config_tables,
    coverage_gate,
    file_options,
    header,
    html_output,
    ini,
)
from .markers import MARKER, marker_arguments
from .options import option_path

if TYPE_CHECKING:  # the fixture imports torch: only a budgeted test's setup loads it
    from .fixture import FlopBudget


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flopbudget", "model complexity budgets (pytest-flopbudget)")
    group.addoption("--flop-report", action="store_true", default=False,
                    help="print a table of every profiled test: FLOPs, MACs, params, access, "
                         "intensity, predicted latency, budget use")
    group.addoption("--flop-json", metavar="PATH", default=None,
                    help="write every profile, budget and verdict as JSON to PATH")
    group.addoption("--flop-device", metavar="NAME", default=None,
                    help="run every test's roofline on device NAME (overrides markers)")
    group.addoption("--flop-hotspots", metavar="N", type=positive_int, default=None,
                    help="layers listed per test over budget (default 5, or "
                         "[tool.flopbudget] hotspots)")
    group.addoption("--flop-calibrate", action="store_true", default=False,
                    help="measure this machine and write the 'host' device "
                         "(.flopbudget/host.toml) before running the tests")
    coverage_gate.add_options(group)
    baseline_gate.add_options(group)
    html_output.add_options(group)
    ini.add_ini(parser)


def marker_help() -> str:
    """The ``markers`` ini line, generated from the argument tables so it cannot drift."""
    args = ", ".join(f"{k}=..." for k in (*LIMITS, *OPTIONS))
    return (f"{MARKER}({args}): fail the test when a model profiled with the flop_budget "
            f"fixture exceeds a limit (MB = 10^6 bytes)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", marker_help())
    manager = FlopBudgetPlugin(config)
    config.stash[MANAGER] = manager
    config.pluginmanager.register(manager, "flopbudget-manager")
    complexity.install(manager)
    coverage_gate.install(manager)
    config_tables.install(manager)
    gate = baseline_gate.install(manager)
    html_output.install(manager)
    if not manager.is_worker:
        file_options.check(manager, gate)


@dataclass
class TestState:
    """Per-test state kept on the item between setup and the report."""

    record: TestRecord
    marked: bool
    fixture: FlopBudget | None = None


STATE = pytest.StashKey[TestState]()


class OverBudget(pytest.fail.Exception):  # type: ignore[name-defined]
    """A test's body passed but its budget did not: the test fails in its call phase, where
    pytest's outcome handling (``xfail``) applies to it as to any failure."""
Check = Callable[[TestRecord, pytest.Item], list[str]]
Summary = Callable[[Any, list[dict[str, Any]]], None]
Finish = Callable[[list[dict[str, Any]], pytest.Session], None]


class FlopBudgetPlugin:
    """Collects budgeted tests' records and reports them."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        self.settings: Config = load(config.rootpath)
        set_default_catalog(self.settings.catalog)
        self.records: dict[str, dict[str, Any]] = {}
        self.checks: list[Check] = []
        self.summaries: list[Summary] = []
        self.finishers: list[Finish] = []
        self.write_errors: list[str] = []
        #: set when the session was cut short by Ctrl-C or pytest.exit() (whatever exit
        #: status it asked for): what it profiled is not the whole run
        self.interrupted = False
        #: ``{argument: (value, where)}`` that win over every budget layer (command line,
        #: else ini option)
        self.overrides: dict[str, tuple[Any, str]] = {}
        for name, key in (("flop_device", "device"), ("flop_strict", "strict")):
            found = ini.setting(config, name)
            if found is not None:
                self.overrides[key] = found
        hotspots = ini.setting(config, "flop_hotspots", ini.positive)
        self.hotspots: int = hotspots[0] if hotspots else self.settings.hotspots
        self.calibrating = config.getoption("flop_calibrate") and not self.is_worker
        if not self.calibrating:
            self._check_device_override()

    @property
    def verbosity(self) -> int:
        """pytest's verbosity: ``-q`` is -1, ``-v`` is 1."""
        return int(self.config.getoption("verbose"))

    @property
    def width(self) -> int | None:
        """The terminal's width in columns, which tables are fitted into; ``None`` (tables
        keep every character) when the output is no terminal and ``COLUMNS`` is not set,
        as in a CI log, where a cut test id would be lost."""
        if not os.environ.get("COLUMNS") and not (sys.__stdout__ and sys.__stdout__.isatty()):
            return None
        return int(self.config.get_terminal_writer().fullwidth)

    def _check_device_override(self) -> None:
        if "device" in self.overrides and not self.settings.error:
            name, where = self.overrides["device"]
            try:
                self.settings.device(name)
            except DeviceError as exc:
                raise pytest.UsageError(f"{where}: {exc}") from None

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return header.lines(self.settings, self.overrides, config.rootpath)

    # -- extension points ----------------------------------------------------------------
    def add_check(self, check: Check) -> None:
        """``check(record, item) -> failure lines`` runs on the worker when a budgeted test
        ends; any line fails the test. It may add figures to ``record.extra``."""
        self.checks.append(check)

    def add_summary(self, summary: Summary) -> None:
        """``summary(terminalreporter, records)`` writes to the terminal summary."""
        self.summaries.append(summary)

    def add_finish(self, finish: Finish) -> None:
        """``finish(records, session)`` runs once at the end of the session on the
        controller; a file it cannot write (``OSError``) is reported, not raised."""
        self.finishers.append(finish)

    def sorted_records(self) -> list[dict[str, Any]]:
        return [self.records[k] for k in sorted(self.records)]

    # -- calibration ---------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)  # before xdist starts workers, which read the host file
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.calibrating:
            self._calibrate()
            self._check_device_override()

    def _calibrate(self) -> None:
        path = self.settings.host_path
        try:  # before a minute of measuring, not after
            check_writable(path)
        except OSError as exc:
            raise pytest.UsageError(f"--flop-calibrate: could not write {exc.filename}: "
                                    f"{exc.strerror}") from None
        from ..calibration.calibrate import calibrate  # torch: only when asked to calibrate

        reporter = self.config.pluginmanager.get_plugin("terminalreporter")

        def log(line: str) -> None:
            if reporter is not None:
                reporter.write_line(f"flop-calibrate: {line}")

        try:
            calibrate(path, log=log)
        except OSError as exc:
            raise pytest.UsageError(f"--flop-calibrate: could not write {exc.filename}: "
                                    f"{exc.strerror}") from None
        self.settings = load(self.config.rootpath)
        set_default_catalog(self.settings.catalog)

    # -- per test ------------------------------------------------------------------------
    # not tryfirst: pytest's skip and xfail(run=False) marks (its own tryfirst setup hook)
    # win over a budget that cannot be made; still before the test's fixtures are set up
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        marked = item.get_closest_marker(MARKER) is not None
        if marked or MARKER in getattr(item, "fixturenames", ()):
            self.prepare(item)

    def prepare(self, item: pytest.Item) -> TestState:
        """The test's budget and fixture, made once: when the test is set up, or when it
        asks for the fixture later (``request.getfixturevalue("flop_budget")``). A wrong
        budget fails the test with one line."""
        state = item.stash.get(STATE, None)
        if state is not None:
            return state
        record = TestRecord(item.nodeid, None)
        marked = item.get_closest_marker(MARKER) is not None
        state = item.stash[STATE] = TestState(record, marked)
        try:
            budget = self._budget(item)
        except BudgetError as exc:
            record.outcome, record.error = "error", str(exc)
        else:
            try:
                device = self.settings.device(budget.device)
                device.peak(budget.dtype)
            except DeviceError as exc:
                record.outcome = "error"
                record.error = f"{budget.origin.get('device', item.nodeid)}: {exc}"
            else:
                from .fixture import FlopBudget

                record.budget = budget
                state.fixture = FlopBudget(record, budget, device)
        if record.outcome == "error":
            pytest.fail(f"flop budget: {record.error}", pytrace=False)
        return state

    def _budget(self, item: pytest.Item) -> Budget:
        if self.settings.error:
            raise BudgetError(self.settings.error)
        wrong = self.settings.error_for(item.nodeid)
        if wrong is not None:
            raise BudgetError(wrong)
        layers = self.settings.layers_for(item.nodeid)
        marked = marker_arguments(item)
        if marked is not None:
            layers.append(marked)
        return Budget.from_layers(layers, overrides=self.overrides)

    @pytest.hookimpl(trylast=True)  # after the test body ran (and only if it passed)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        """Check the budget as the last step of the test's call: a test over budget fails
        in its own call, so pytest's outcome handling (``xfail``) applies as to any
        failure."""
        state = item.stash.get(STATE, None)
        if state is not None:
            lines = self._verdict(state, item)
            if lines:
                raise OverBudget("\n".join(lines), pytrace=False)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report = outcome.get_result()
        state = item.stash.get(STATE, None)
        if state is None:
            return
        record = state.record
        if call.when == "setup" and report.failed:
            if record.outcome != "error":
                record.outcome, record.error = "error", "the test's setup failed"
            report.flopbudget = record.to_dict()
        elif call.when == "call":
            if state.fixture is not None:
                state.fixture.closed = True  # the budget is checked: no profile after this
            if report.skipped:  # pytest.skip() in the body, or an xfail
                record.outcome = "skipped"
            elif report.failed and record.outcome == "passed":
                record.outcome = "failed"
                record.error = ("the test failed before its budget was checked"
                                if call.excinfo is not None else
                                "the test passed, but it is a strict xfail")
            elif report.failed and call.excinfo and call.excinfo.errisinstance(OverBudget):
                report.longrepr = record.error  # the message alone, as the summary shows it
            report.flopbudget = record.to_dict()
            # JUnit XML (--junitxml) takes these from the teardown report
            item.user_properties.extend(
                (f"flopbudget.{m['name']}.{key}", m[key])
                for m in report.flopbudget["measurements"]
                for key in (metric.field for metric in METRICS.values()))

    def _verdict(self, state: TestState, item: pytest.Item) -> list[str]:
        """The failure lines of a test whose body passed (none: within its budget)."""
        record = state.record
        lines: list[str] = []
        if state.marked and not record.measurements:
            lines.append(f"{item.nodeid} has a @flop_budget marker but measured nothing: call "
                         f"the flop_budget fixture, e.g. flop_budget(model, example_input)")
        elif record.violations:
            lines.append(failure_message(record.to_dict(), self.hotspots))
        for check in self.checks:
            lines.extend(check(record, item))
        if lines:
            record.outcome = "failed"
            record.error = "\n".join(lines)
        return lines

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        """Ctrl-C, and ``pytest.exit()`` with any return code, end the session early."""
        self.interrupted = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "flopbudget", None)
        if data is not None:
            self.records[report.nodeid] = data

    # -- session end ---------------------------------------------------------------------
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        records = self.sorted_records()
        tr = terminalreporter
        lines = []
        if self.settings.error:
            lines.append(f"configuration error: {self.settings.error}")
        lines.extend(self.write_errors)
        lines.extend(self._failing(records))
        lines.extend(f"error: {r['error']}" if r["nodeid"] in r["error"]
                     else f"{r['nodeid']}: error: {r['error']}" for r in records
                     if r["outcome"] == "error" and r["error"] != self.settings.error)
        unsupported = unsupported_summary(records, self.verbosity)
        if unsupported:
            hidden = any(m.get("hidden_weights") for r in records for m in r["measurements"])
            lines.append("operators without a formula (their FLOPs are not counted)"
                         + (" and weights not visible (not in params)" if hidden else "")
                         + ":")
            lines.extend(unsupported)
        if lines:
            tr.write_sep("=", "flop budget")
            for line in lines:
                tr.write_line(line)
        if self.config.getoption("flop_report"):
            tr.write_sep("=", "flop budget report")
            if any(r["measurements"] for r in records):
                for line in report_table(records, self.width):
                    tr.write_line(line)
            else:
                tr.write_line("no test profiled a model (use the flop_budget fixture)")
        for summary in self.summaries:
            summary(tr, records)

    def _failing(self, records: list[dict[str, Any]]) -> list[str]:
        """The tests over budget in the terminal summary. Their hotspot tables are in each
        failure's own text, so the summary repeats them only with ``-v`` (or when failures
        are not shown, ``--tb=no``); ``-q`` gives one line per model."""
        if self.verbosity < 0:
            return failing_oneliners(records)
        tables = self.verbosity > 0 or self.config.getoption("tbstyle", "auto") == "no"
        return failing_summary(records, self.hotspots, tables, self.width)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker:
            return
        records = self.sorted_records()
        for finish in (self._write_json, *self.finishers):
            try:
                finish(records, session)
            except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: stop writing, say so
                where = getattr(exc, "filename", "the reports")
                self.write_errors.append(
                    f"interrupted ({getattr(exc, 'signal_name', 'SIGINT')}) while writing "
                    f"{where}: it is left as it was, and no report after it was written")
                session.exitstatus = pytest.ExitCode.INTERRUPTED
                return
            except OSError as exc:
                self.write_errors.append(f"could not write {exc.filename or 'a report'}: "
                                         f"{exc.strerror or exc}")
            except Exception as exc:  # a report that cannot be made must not lose the others
                self.write_errors.append(f"could not write a report: {type(exc).__name__}: "
                                         f"{exc}")
            else:
                continue
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.USAGE_ERROR

    def _write_json(self, records: list[dict[str, Any]], session: pytest.Session) -> None:
        target = option_path(self.config, "flop_json")
        if target is not None:
            atomic_write(target[0], json.dumps(json_document(records), indent=1) + "\n")

    def pytest_unconfigure(self) -> None:
        set_default_catalog(None)  # get_device() outside this session sees built-ins again


MANAGER = pytest.StashKey[FlopBudgetPlugin]()


def json_document(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``--flop-json`` document: schema-versioned, exact integer counts, per-layer rows."""
    return {
        "schema": REPORT_SCHEMA,
        "version": VERSION,
        "summary": outcome_counts(records),
        "tests": records,
    }


@pytest.fixture
def flop_budget(request: pytest.FixtureRequest) -> FlopBudget:
    """Profile models under the test's budget: ``flop_budget(model, *inputs)`` returns the
    ModelProfile; every profile is checked against the ``@flop_budget`` limits when the test
    ends."""
    state = request.config.stash[MANAGER].prepare(request.node)
    assert state.fixture is not None  # prepare() fails the test otherwise
    return state.fixture

