"""A per-test table (``[tool.flopbudget.tests."PATTERN"]``) that matches no test is a
warning in the terminal summary naming it: a renamed or removed test would otherwise leave
its limits applying to nothing, silently.

Every collected test counts, deselected ones (``-k``, ``-m``, ``--lf``) included, so a
selection never makes a table look unused; a run narrowed by paths on the command line
(``pytest tests/test_kws.py``) does not see every test, so it says nothing. Under xdist the
workers collect: each sends the patterns it matched in ``workeroutput``.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..budgets.config import matches

KEY = "flopbudget_matched_tables"


class TableUse:
    """Which per-test tables matched a collected test (a plugin of its own)."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.patterns = list(manager.settings.tests)
        self.matched: set[str] = set()
        self.collected = False

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        self.collected = True
        for pattern in self.patterns:
            if pattern not in self.matched and matches(item.nodeid, pattern):
                self.matched.add(pattern)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.manager.is_worker:
            session.config.workeroutput[KEY] = sorted(self.matched)  # type: ignore[attr-defined]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {})
        if KEY in output:
            self.collected = True
            self.matched.update(output[KEY])

    def summary(self, tr: Any, records: list[dict[str, Any]]) -> None:
        config = self.manager.config
        narrowed = config.args_source == pytest.Config.ArgsSource.ARGS
        unused = [p for p in self.patterns if p not in self.matched]
        if not unused or not self.collected or narrowed:
            return
        tr.write_sep("=", "flop budget: configuration")
        settings = self.manager.settings
        for pattern in unused:
            tr.write_line(f"warning: {settings.test_table(pattern)} matches no collected test "
                          f"(renamed or removed?): its limits apply to no test")


def install(manager: Any) -> None:
    """Watch collection for per-test tables that match nothing (when there are any)."""
    if manager.settings.tests:
        use = TableUse(manager)
        manager.config.pluginmanager.register(use, "flopbudget-config-tables")
        manager.add_summary(use.summary)
