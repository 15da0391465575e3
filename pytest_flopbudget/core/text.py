"""Text formatting every report shares: fixed-width tables, figures as people read them,
layer names, and "did you mean" hints."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from .numbers import finite

#: Narrowest a text column is cut to when a table must fit a terminal.
MIN_COLUMN = 12
#: What stands for the cut start of a text cell (the end, a test or layer name, is kept).
CUT = "..."


def table(header: Sequence[str], rows: Iterable[Sequence[str]], right: set[int] | None = None,
          indent: str = "  ", width: int | None = None,
          shrink: set[int] | None = None) -> list[str]:
    """Fixed-width text table; columns in ``right`` are right-aligned.

    With ``width`` (a terminal's columns), the columns in ``shrink`` (default: the
    left-aligned ones), widest first, are narrowed down to :data:`MIN_COLUMN` until the
    table fits; a cut cell keeps its end (``...test_model[3]``, ``...blocks.3.conv``).
    Numbers are never cut.
    """
    rows = [[str(c) for c in r] for r in rows]
    right = right or set()
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    if width is not None:
        fixed = set(range(len(widths))) - shrink if shrink is not None else right
        widths = _fit(widths, fixed, width - len(indent))
        rows = [[_cut(c, w) for c, w in zip(r, widths, strict=True)] for r in rows]

    def line(cells: Sequence[str]) -> str:
        parts = [str(c).rjust(w) if i in right else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return (indent + "  ".join(parts)).rstrip()

    return [line(header), *(line(r) for r in rows)]


def _fit(widths: list[int], fixed: set[int], room: int) -> list[int]:
    """Column widths narrowed (all but ``fixed``, widest first) to fit ``room`` columns;
    unchanged when even the narrowest table would not fit (its lines wrap anyway, and a cut
    text would only lose what it says)."""
    narrowed = list(widths)
    total = sum(narrowed) + 2 * (len(narrowed) - 1)
    while total > room:
        text = [i for i in range(len(narrowed)) if i not in fixed and narrowed[i] > MIN_COLUMN]
        if not text:
            return list(widths)
        widest = max(text, key=lambda i: narrowed[i])
        step = min(total - room, narrowed[widest] - MIN_COLUMN)
        narrowed[widest] -= step
        total -= step
    return narrowed


def _cut(cell: str, width: int) -> str:
    """``cell`` in at most ``width`` characters, keeping its end."""
    return cell if len(cell) <= width else CUT + cell[len(cell) - width + len(CUT):]


#: Figures from this size on are written as ``1.23e+15``, not as a row of digits.
HUGE = 1e15


def fmt_value(value: float, unit: str) -> str:
    """A figure as people read it: ``112.4``, ``4.21``, ``0.35``, ``312,000`` (params);
    ``inf`` and ``nan`` as such."""
    if not finite(value):
        return f"{value:,}" if isinstance(value, int) else str(value)
    if abs(value) >= HUGE and unit != "params":
        return f"{value:.3g}"
    if unit == "params" or (value >= 100 and value == int(value)):
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def fixed(value: float, decimals: int, grouped: bool = False) -> str:
    """``value`` with ``decimals`` decimals (``0.2056``; ``1,234.50`` when ``grouped``), two
    significant digits when those decimals would read 0 for a value that is not
    (``3.6e-05``, never ``0.00``), or ``1.23e+15`` when it is huge."""
    if not finite(value) or abs(value) >= HUGE:
        return f"{value:.3g}"
    text = f"{value:{',' if grouped else ''}.{decimals}f}"
    if value and float(text.replace(",", "")) == 0:
        return f"{value:.2g}"
    return text


def percent(fraction: float) -> str:
    """``91%``; as many decimals as it takes to show which side of 100% it is
    (``99.96%``, ``100.001%``), ``100%`` only when exactly at it; ``0%`` only when none
    (``0.23%``, ``2e-05%``); ``1e+20%`` when huge."""
    if not finite(fraction) or abs(fraction) >= HUGE / 100:
        return f"{fraction * 100:.3g}%"
    text = f"{fraction:.0%}"
    if fraction and float(text[:-1]) == 0:  # would read 0% (or -0%): a use that is not none
        return f"{fraction * 100:.2g}%"
    decimals = 1
    while fraction != 1 and float(text[:-1]) == 100 and decimals <= 12:
        text = f"{fraction:.{decimals}%}"
        decimals += 1
    return text


def distinct(value: float, other: float, unit: str) -> tuple[str, str]:
    """``value`` and ``other`` formatted as :func:`fmt_value` does, both with more
    significant digits when they would read the same while they differ (``50.000001`` next
    to ``50``, ``3.6e-05`` next to ``3.59999e-05``)."""
    text, reference = fmt_value(value, unit), fmt_value(other, unit)
    digits = 4
    while text == reference and value != other and digits <= 17:
        text, reference = f"{value:,.{digits}g}", f"{other:,.{digits}g}"
        digits += 1
    return text, reference


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


def close_matches(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` entries of ``known`` that look like ``name``, closest first: those that
    contain it or are contained in it, and the close spellings (``difflib``)."""
    known = [k for k in known if k]
    found = {k for k in known if name and (name in k or k in name)}
    found.update(difflib.get_close_matches(name, known, n=n, cutoff=0.6))
    ratio = {k: difflib.SequenceMatcher(None, name, k).ratio() for k in found}
    return sorted(found, key=lambda k: (-ratio[k], k))[:n]
