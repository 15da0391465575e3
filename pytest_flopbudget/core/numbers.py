"""Numbers a user wrote: is it a finite number, a positive integer, and how to name it in an
error.

Python integers have no upper bound, and ``math.isfinite(10**400)`` raises ``OverflowError``
instead of answering; every check of a user's figure goes through :func:`finite`, so an
absurd integer is one error naming its key like any other bad figure.
"""

from __future__ import annotations

import argparse
import math
from typing import Any


def finite(value: float) -> bool:
    """``math.isfinite`` that answers ``False`` for an integer no float can hold."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def shown(value: Any) -> str:
    """``repr(value)`` for an error message; an integer too large for a float is described,
    not spelled out (``"an integer of 401 digits, too large for a float"``)."""
    if isinstance(value, int) and not isinstance(value, bool) and not finite(value):
        return f"an integer of {len(str(abs(value)))} digits, too large for a float"
    return repr(value)


def positive_int(text: str) -> int:
    """argparse ``type=`` for a positive integer option (``--flop-hotspots=N``, ``--top N``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
