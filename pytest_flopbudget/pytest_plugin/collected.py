"""The node ids a session collected, before ``-k``, ``-m`` or ``--deselect`` deselect any
(``--lf`` and node ids on the command line leave tests out while collecting: then a test
not collected is not taken for removed); on the controller, gathered from every xdist
worker (each sends its own in ``workeroutput``). Saving a baseline asks it which tests no
longer exist; the per-test table check asks it which tables match no test."""

from __future__ import annotations

import functools
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

    @functools.cached_property
    def filtered(self) -> bool:
        """True when pytest may have left tests out while collecting (``--lf``, ``--sw``:
        their tests never reach the items list), so a test not collected may still exist."""
        return any(_option(self.config, name) for name in ("lf", "stepwise", "stepwise_skip"))

    @functools.cached_property
    def partial_files(self) -> set[str]:
        """Test files the command line narrowed to some of their tests
        (``test_a.py::test_one``), as node ids write them: their other tests were not
        collected, not removed. Read once: the command line does not change."""
        out = set()
        root = self.config.rootpath.resolve()
        for arg in self.config.args:
            path, sep, _ = str(arg).partition("::")
            if not sep:
                continue
            try:
                full = (self.config.invocation_params.dir / path).resolve()
                out.add(full.relative_to(root).as_posix())
            except (OSError, ValueError):
                continue
        return out

    def gone(self, nodeid: str) -> bool:
        """True when the test ``nodeid`` no longer exists: its file is gone, or its file was
        collected whole (not narrowed to some tests on the command line, no ``--lf``) and
        the test is not in it any more."""
        file = nodeid.split("::", 1)[0]
        if not (self.config.rootpath / file).exists():
            return True
        if self.filtered or file in self.partial_files:
            return False
        return file in self.files and nodeid not in self.nodeids


def _option(config: pytest.Config, name: str) -> bool:
    try:
        return bool(config.getoption(name))
    except ValueError:  # the plugin that adds it is not loaded (-p no:cacheprovider)
        return False


def collected(config: pytest.Config) -> Collected:
    """The session's :class:`Collected`, registered on first use (at configure time, before
    collection)."""
    plugin = config.pluginmanager.get_plugin(NAME)
    if plugin is None:
        plugin = Collected(config)
        config.pluginmanager.register(plugin, NAME)
    return plugin
