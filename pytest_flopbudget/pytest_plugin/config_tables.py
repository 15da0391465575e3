"""A per-test table (``[tool.flopbudget.tests."PATTERN"]``) that matches no test is a
warning in the terminal summary naming it: a renamed or removed test would otherwise leave
its limits applying to nothing, silently.

Every collected test counts, deselected ones (``-k``, ``-m``, ``--lf``) included, so a
selection never makes a table look unused. A run narrowed by paths on the command line
(``pytest tests/test_kws.py``) does not see every test: it only speaks of tables whose key
names a test file it collected (``"tests/test_kws.py::test_gone"``). Under xdist the workers
collect: each sends what it matched and collected in ``workeroutput``.
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
        self.files: set[str] = set()  # test files collected
        self.collected = False

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        self.collected = True
        self.files.add(item.nodeid.split("::", 1)[0])
        for pattern in self.patterns:
            if pattern not in self.matched and matches(item.nodeid, pattern):
                self.matched.add(pattern)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.manager.is_worker:
            output = session.config.workeroutput  # type: ignore[attr-defined]
            output[KEY] = {"matched": sorted(self.matched), "files": sorted(self.files)}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {}).get(KEY)
        if output is not None:
            self.collected = True
            self.matched.update(output["matched"])
            self.files.update(output["files"])

    def in_scope(self, pattern: str) -> bool:
        """Whether this run would have collected the tests ``pattern`` names: always in a
        full run; in a run narrowed by paths, when the key names a test file it collected."""
        if self.manager.config.args_source != pytest.Config.ArgsSource.ARGS:
            return True
        file, sep, _ = pattern.partition("::")
        return bool(sep) and any(matches(f, file) for f in self.files)

    def summary(self, tr: Any, records: list[dict[str, Any]]) -> None:
        unused = [p for p in self.patterns if p not in self.matched and self.in_scope(p)]
        if not unused or not self.collected:
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
