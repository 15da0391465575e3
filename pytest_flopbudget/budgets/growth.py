"""Growth limits: how much a metric may grow over its baseline value.

A spec (:func:`parse_growth`) is ``"5%"`` (every metric of :data:`GROWTH_METRICS`),
``"flops:2%,latency:10%"`` (those two) or ``"5%,latency:10%"`` (all, latency at 10%); specs
are laid over one another from general to specific (:func:`resolve_growth`). A value is over
its limit when ``new > old * (1 + limit)``, in rational arithmetic (:func:`over_limit`).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

from ..core.metrics import NAMES
from ..core.text import suggest

#: Metrics compared, in display order (every metric of ``core.metrics``).
GROWTH_METRICS: tuple[str, ...] = NAMES

#: One growth limit: (allowed growth as a fraction, where it was written).
Limit = tuple[Fraction, str]


class GrowthError(ValueError):
    """A growth spec is malformed; callers prefix where it was written."""


_PERCENT = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)%")
_EXAMPLE = "e.g. '5%' or 'flops:2%,latency:10%'"


def parse_percent(text: str) -> Fraction:
    """``"2.5%"`` -> ``Fraction(1, 40)``: a non-negative percentage as an exact fraction."""
    text = text.strip()
    if _PERCENT.fullmatch(text):
        return Fraction(text[:-1]) / 100
    if text.startswith("-"):
        raise GrowthError(f"growth limit must not be negative, got {text!r}")
    if re.fullmatch(r"(?:\d+(?:\.\d*)?|\.\d+)", text):
        raise GrowthError(f"growth limit needs a '%' sign, got {text!r} (write {text}%)")
    raise GrowthError(f"expected a percentage such as '5%', got {text!r}")


def parse_growth(spec: Any) -> dict[str, Fraction]:
    """Parse a growth spec into ``{metric: allowed growth as a fraction}``.

    ``"5%"`` sets every metric in :data:`GROWTH_METRICS`; ``"flops:2%,latency:10%"`` sets
    those; a bare percentage and ``metric:percent`` entries mix, the entries winning. Raises
    :class:`GrowthError` for anything else (no ``%``, negative, unknown or repeated metric).
    """
    if not isinstance(spec, str):
        raise GrowthError(f"expected a string, {_EXAMPLE}, got {spec!r}")
    if not spec.strip():
        raise GrowthError(f"empty growth spec; {_EXAMPLE}")
    every: Fraction | None = None
    limits: dict[str, Fraction] = {}
    for item in spec.split(","):
        metric, colon, percent = item.rpartition(":")
        metric = metric.strip()
        if not item.strip():
            raise GrowthError(f"empty entry in {spec!r}; {_EXAMPLE}")
        if not colon:
            if every is not None:
                raise GrowthError(f"two limits for every metric in {spec!r}")
            every = parse_percent(percent)
        elif metric not in GROWTH_METRICS:
            raise GrowthError(f"unknown metric {metric!r}{suggest(metric, GROWTH_METRICS)}; "
                              f"known: {', '.join(GROWTH_METRICS)}")
        elif metric in limits:
            raise GrowthError(f"metric {metric!r} given twice in {spec!r}")
        else:
            limits[metric] = parse_percent(percent)
    base = dict.fromkeys(GROWTH_METRICS, every) if every is not None else {}
    return {**base, **limits}


def growth_option(text: str) -> dict[str, Fraction]:
    """argparse ``type=`` for ``--flop-max-growth``."""
    try:
        return parse_growth(text)
    except GrowthError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def resolve_growth(layers: Iterable[tuple[str, Any]]) -> dict[str, Limit]:
    """Lay growth specs ``[(where, spec or parsed dict or None), ...]`` over one another,
    most general first; each metric keeps the last value. Errors name ``where``."""
    limits: dict[str, Limit] = {}
    for where, spec in layers:
        if spec is None:
            continue
        try:
            parsed = spec if isinstance(spec, dict) else parse_growth(spec)
        except GrowthError as exc:
            raise GrowthError(f"{where}: max_growth: {exc}") from None
        limits.update((metric, (value, where)) for metric, value in parsed.items())
    return limits


def tightest_growth(specs: Iterable[Any]) -> str | None:
    """One spec holding, for every metric any of ``specs`` limits, its smallest growth
    (stacked markers: the tightest limit wins); ``None`` when none limits anything. Raises
    :class:`GrowthError` for a malformed spec."""
    limits: dict[str, Fraction] = {}
    for spec in specs:
        if spec is None:
            continue
        for metric, value in parse_growth(spec).items():
            limits[metric] = min(value, limits.get(metric, value))
    if not limits:
        return None
    return ",".join(f"{m}:{exact_percent(limits[m])}" for m in GROWTH_METRICS if m in limits)


def exact_percent(fraction: Fraction) -> str:
    """``Fraction(1, 40)`` -> ``"2.5%"``, exactly (a growth limit is a decimal percentage,
    so its expansion ends)."""
    value = fraction * 100
    digits = 0
    while value.denominator != 1 and digits < 40:
        value *= 10
        digits += 1
    whole = str(int(value)).rjust(digits + 1, "0")
    return (f"{whole[:-digits]}.{whole[-digits:]}" if digits else whole) + "%"


def percent_text(fraction: Fraction) -> str:
    """``Fraction(1, 20)`` -> ``"5%"``: a growth limit as written, every digit kept
    (``24.9999999%`` never reads ``25%``)."""
    return exact_percent(fraction)


def over_limit(old: float, new: float, limit: Fraction) -> bool:
    """``new > old * (1 + limit)``, exactly (floats are converted without rounding)."""
    return Fraction(new) > Fraction(old) * (1 + limit)
