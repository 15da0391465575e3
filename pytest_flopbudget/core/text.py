"""Text formatting every report shares: fixed-width tables, figures as people read them,
layer names, and "did you mean" hints."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any


def table(header: Sequence[str], rows: Iterable[Sequence[str]], right: set[int] | None = None,
          indent: str = "  ") -> list[str]:
    """Fixed-width text table; columns in ``right`` are right-aligned."""
    rows = [list(r) for r in rows]
    right = right or set()
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [str(c).rjust(w) if i in right else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return (indent + "  ".join(parts)).rstrip()

    return [line(header), *(line(r) for r in rows)]


def fmt_value(value: float, unit: str) -> str:
    """A figure as people read it: ``112.4``, ``4.21``, ``0.35``, ``312,000`` (params)."""
    if unit == "params" or (value >= 100 and value == int(value)):
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def percent(fraction: float) -> str:
    """``91%``; one decimal where rounding would hide which side of 100% it is."""
    text = f"{fraction:.0%}"
    return f"{fraction:.1%}" if text == "100%" and fraction != 1 else text


def layer_label(name: str) -> str:
    """A module path for people: the model itself (``""``) is ``<model>``."""
    return name or "<model>"


def shape_text(shapes: Sequence[Sequence[int]]) -> str:
    """The first tensor shape as ``1x128x256`` (``-`` when there is none)."""
    return ", ".join("x".join(str(d) for d in s) for s in shapes[:1]) or "-"


def suggest(key: str, known: Iterable[Any]) -> str:
    """`` (did you mean 'max_mflops'?)`` for a mistyped ``key``, or ``""``."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
