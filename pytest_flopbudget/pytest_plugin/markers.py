"""The ``flop_budget`` markers of a test, stacked into one set of arguments.

A test can carry several markers: on its module (``pytestmark``), its class and itself, or two
on one function. All of them count: each limit (and each ``max_order`` and ``max_growth``
metric) keeps its tightest value, so no marker's limit is lost; ``device``, ``dtype`` and the
other options come from the closest marker that sets them (:func:`..budgets.limits.tightest`).
"""

from __future__ import annotations

from typing import Any

import pytest

from ..budgets.limits import BudgetError, check_arguments, tightest

MARKER = "flop_budget"


def marker_arguments(item: pytest.Item) -> tuple[str, dict[str, Any]] | None:
    """``(where, arguments)`` of every ``flop_budget`` marker of ``item`` stacked, each
    checked; ``None`` when it has none. Raises :class:`BudgetError` naming the test."""
    marks = list(item.iter_markers(MARKER))
    if not marks:
        return None
    where = f"@{MARKER} on {item.nodeid}"
    layers = []
    for mark in marks:
        if mark.args:
            raise BudgetError(f"{where}: takes keyword arguments only, got positional "
                              f"{mark.args!r}")
        layers.append(check_arguments(mark.kwargs, where))
    return where, tightest(layers)
