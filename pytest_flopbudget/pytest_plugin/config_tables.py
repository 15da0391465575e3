"""A per-test table (``[tool.flopbudget.tests."PATTERN"]``) that matches no test is a
warning in the terminal summary naming it: a renamed or removed test would otherwise leave
its limits applying to nothing, silently.

Every collected test counts, deselected ones (``-k``, ``-m``, ``--lf``) included, so a
selection never makes a table look unused (:mod:`.collected`, which gathers them from xdist
workers too). A run narrowed by paths on the command line (``pytest tests/test_kws.py``) does
not see every test: it only speaks of tables whose key names a test file it collected
(``"tests/test_kws.py::test_gone"``).
"""

from __future__ import annotations

from typing import Any

import pytest

from ..budgets.config import matches
from .collected import Collected, collected


def unused(patterns: list[str], seen: Collected, narrowed: bool) -> list[str]:
    """The patterns that match none of the collected tests (in a run narrowed by paths,
    only those naming a test file it collected)."""
    files = seen.files
    found = []
    for pattern in patterns:
        if any(matches(nodeid, pattern) for nodeid in seen.nodeids):
            continue
        file, sep, _ = pattern.partition("::")
        if not narrowed or (sep and any(matches(f, file) for f in files)):
            found.append(pattern)
    return found


def install(manager: Any) -> None:
    """Watch collection for per-test tables that match nothing (when there are any)."""
    patterns = list(manager.settings.tests)
    if not patterns:
        return
    seen = collected(manager.config)  # on an xdist worker: collects for the controller
    if manager.is_worker:
        return

    def summary(tr: Any, records: list[dict[str, Any]]) -> None:
        narrowed = manager.config.args_source == pytest.Config.ArgsSource.ARGS
        lines = unused(patterns, seen, narrowed) if seen.nodeids else []
        if lines:
            tr.write_sep("=", "flop budget: configuration")
            for pattern in lines:
                tr.write_line(f"warning: {manager.settings.test_table(pattern)} matches no "
                              f"collected test (renamed or removed?): its limits apply to no "
                              f"test")

    manager.add_summary(summary)
