"""The coverage gate: with ``strict``, a profile with operators that have no FLOP formula fails.

Without it such operators are listed (their traffic is counted, their FLOPs are not) and the
test passes. ``strict`` comes from the marker (``strict=True``), ``[tool.flopbudget] strict``
or a per-test table (later layers win, as for limits), or from ``--flop-strict`` /
``flop_strict`` for every test. The failure names every operator and the layer that called
it (``aten._fft_r2c x1 in frontend (STFT)``).
"""

from __future__ import annotations

from typing import Any

from ..reporting.text import uncovered_lines


def add_options(group: Any) -> None:
    """Add ``--flop-strict`` to the plugin's option group."""
    group.addoption("--flop-strict", action="store_true", default=False,
                    help="fail every test whose profile has operators without a FLOP formula "
                         "(the coverage gate; default: list them)")


def install(manager: Any) -> None:
    """Check every budgeted test's profiles for operators without a formula when
    ``strict`` is on."""
    def check(record: Any, item: Any) -> list[str]:
        if record.budget is None or not record.budget.strict:
            return []
        where = record.budget.origin.get("strict", "strict")
        lines = []
        for m in record.measurements:
            uncovered = uncovered_lines(m.to_dict())
            if uncovered:
                lines.append(f"flop coverage: {m.name} ran operators without a FLOP formula "
                             f"(strict, set by {where}); their FLOPs would not be counted:")
                lines.extend(uncovered)
        return lines

    manager.add_check(check)
