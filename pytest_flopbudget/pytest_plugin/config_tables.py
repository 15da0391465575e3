"""A per-test table (``[tool.flopbudget.tests."PATTERN"]``) that matches no test is a
warning in the terminal summary naming it: a renamed or removed test would otherwise leave
its limits applying to nothing, silently.

Every collected test counts, deselected ones (``-k``, ``-m``) included, so a selection
never makes a table look unused (:mod:`.collected`, which gathers them from xdist workers
too). A run narrowed by paths on the command line (``pytest tests/test_kws.py``) does not see
every test: it only speaks of tables whose key names a test file it collected whole
(``"tests/test_kws.py::test_gone"``; not one narrowed to some of its tests,
``tests/test_kws.py::test_small``); a run with ``--lf`` or ``--sw``, which leave tests out
while collecting, speaks of none.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..budgets.config import matches
from .collected import Collected, collected


def unused(patterns: list[str], seen: Collected, narrowed: bool) -> list[str]:
    """The patterns that match none of the collected tests (in a run narrowed by paths,
    only those naming a test file it collected)."""
    if seen.filtered:  # --lf, --sw: tests left out while collecting may match
        return []
    files = seen.files - seen.partial_files  # files collected whole
    found = []
    for pattern in patterns:
        if any(matches(nodeid, pattern) for nodeid in seen.nodeids):
            continue
        file, sep, _ = pattern.partition("::")
        if any(matches(f, file) for f in seen.partial_files):
            continue  # a test of a file the command line narrowed to others
        if not narrowed or (sep and any(matches(f, file) for f in files)):
            found.append(pattern)
    return found


def install(manager: Any) -> None:
    """Watch collection for per-test tables that match nothing (when there are any)."""
    patterns = [*manager.settings.tests, *manager.settings.test_errors]
    if not patterns:
        return
    seen = collected(manager.config)  # on an xdist worker: collects for the controller
    if manager.is_worker:
        return

    def summary(tr: Any, records: list[dict[str, Any]]) -> None:
        narrowed = manager.config.args_source == pytest.Config.ArgsSource.ARGS
        lines = unused(patterns, seen, narrowed) if seen.nodeids else []
        wrong = [p for p in manager.settings.test_errors if p not in lines]
        if lines or wrong:
            tr.write_sep("=", "flop budget: configuration")
            for pattern in wrong:  # said here too: the tests it matches may have no budget
                tr.write_line(f"error: {manager.settings.test_errors[pattern]} (the budgeted "
                              f"tests it matches error with it)")
            for pattern in lines:
                tr.write_line(f"warning: {manager.settings.test_table(pattern)} matches no "
                              f"collected test (renamed or removed?): its limits apply to no "
                              f"test")
                why = manager.settings.test_errors.get(pattern)
                if why is not None:  # said nowhere else: no test errored with it
                    tr.write_line(f"  and it is wrong: {why}")

    manager.add_summary(summary)
