"""Bytes of tensors, kept so they can be re-priced at another precision: the one rule.

Floating-point tensors are priced at the deployment precision (``dtype="int8"``: one byte per
element); integer and boolean tensors (indices, masks) keep their own size at every precision.
Operator traffic, live activations and parameter bytes are all :class:`Access` values and are
all re-priced by :meth:`Access.bytes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .dtypes import is_repriced, itemsize


class Sized(Protocol):
    """What pricing needs to know about a tensor: its element count and dtype."""

    @property
    def numel(self) -> int: ...

    @property
    def dtype(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Access:
    """Bytes of some tensors, in a form that re-prices.

    ``float_elems`` elements of floating-point tensors take ``float_bytes`` at their own dtype;
    ``fixed_bytes`` come from integer/bool tensors whose size no deployment precision changes.
    """

    float_elems: int = 0
    float_bytes: int = 0
    fixed_bytes: int = 0

    def __add__(self, other: Access) -> Access:
        return Access(
            self.float_elems + other.float_elems,
            self.float_bytes + other.float_bytes,
            self.fixed_bytes + other.fixed_bytes,
        )

    def __sub__(self, other: Access) -> Access:
        return Access(
            self.float_elems - other.float_elems,
            self.float_bytes - other.float_bytes,
            self.fixed_bytes - other.fixed_bytes,
        )

    def bytes(self, dtype: str | None = None) -> int:
        """Bytes at the tensors' own dtypes (``dtype=None``) or at a deployment precision."""
        if dtype is None:
            return self.float_bytes + self.fixed_bytes
        return self.float_elems * itemsize(dtype) + self.fixed_bytes

    @classmethod
    def of(cls, tensors: Iterable[Sized]) -> Access:
        """The bytes of ``tensors`` (each counted as given: pass unique tensors)."""
        fe = fb = xb = 0
        for t in tensors:
            n = t.numel
            if is_repriced(t.dtype):
                fe += n
                fb += n * t.dtype.itemsize
            else:
                xb += n * t.dtype.itemsize
        return cls(fe, fb, xb)

    @classmethod
    def sized(cls, numel: int, nbytes: int, dtype: Any) -> Access:
        """``numel`` elements of ``dtype`` taking ``nbytes`` (a storage, whatever its view)."""
        return cls(numel, nbytes, 0) if is_repriced(dtype) else cls(0, 0, nbytes)


ZERO_ACCESS = Access()
