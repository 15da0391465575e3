"""The node ids a session collected, before ``-k``, ``-m``, ``--deselect`` or ``--lf``
deselect any; on the controller, gathered from every xdist worker (each sends its own in
``workeroutput``). Saving a baseline asks it which tests no longer exist; the per-test table
check asks it which tables match no test."""

from __future__ import annotations

from typing import Any

import pytest

#: Key of the collected node ids in an xdist worker's output.
COLLECTED = "flopbudget_collected"
#: The plugin's name in pytest's plugin manager.
NAME = "flopbudget-collected"


class Collected:
    """The node ids this session collected (a plugin of its own)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.nodeids: set[str] = set()

    @pytest.hookimpl(tryfirst=True)  # before deselection
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.nodeids.update(item.nodeid for item in items)
        output = getattr(self.config, "workeroutput", None)
        if output is not None:
            output[COLLECTED] = sorted(self.nodeids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.nodeids.update(getattr(node, "workeroutput", {}).get(COLLECTED, ()))

    @property
    def files(self) -> set[str]:
        """The test files collected (node ids up to ``::``)."""
        return {n.split("::", 1)[0] for n in self.nodeids}

    def gone(self, nodeid: str) -> bool:
        """True when the test ``nodeid`` no longer exists: its file was collected but the
        test is not in it any more, or its file is gone."""
        file = nodeid.split("::", 1)[0]
        return (not (self.config.rootpath / file).exists()
                or (file in self.files and nodeid not in self.nodeids))


def collected(config: pytest.Config) -> Collected:
    """The session's :class:`Collected`, registered on first use (at configure time, before
    collection)."""
    plugin = config.pluginmanager.get_plugin(NAME)
    if plugin is None:
        plugin = Collected(config)
        config.pluginmanager.register(plugin, NAME)
    return plugin
