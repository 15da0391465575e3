"""The value types every formula speaks: tensor shapes in, work and memory traffic out."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from .dtypes import is_repriced, itemsize


@dataclass(frozen=True, slots=True)
class TensorMeta:
    """What a formula may know about a tensor: its shape and dtype, never its values."""

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32

    @property
    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @classmethod
    def of(cls, t: torch.Tensor) -> TensorMeta:
        return cls(tuple(int(s) for s in t.shape), t.dtype)


def outputs(out: object) -> tuple[TensorMeta, ...]:
    """The tensors among an operator's outputs (``out`` is one TensorMeta or a tuple), in
    schema order: a formula's ``out[0]`` is the primary result, later ones are saved buffers,
    indices or masks."""
    if isinstance(out, TensorMeta):
        return (out,)
    if isinstance(out, (tuple, list)):
        return tuple(o for o in out if isinstance(o, TensorMeta))
    return ()


@dataclass(frozen=True, slots=True)
class Access:
    """Bytes moved to or from memory, kept so they can be re-priced at another precision.

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

    def bytes(self, dtype: str | None = None) -> int:
        """Bytes at the tensors' own dtypes (``dtype=None``) or at a deployment precision."""
        if dtype is None:
            return self.float_bytes + self.fixed_bytes
        return self.float_elems * itemsize(dtype) + self.fixed_bytes

    @classmethod
    def of(cls, tensors: Iterable[TensorMeta]) -> Access:
        fe = fb = xb = 0
        for t in tensors:
            n = t.numel
            if is_repriced(t.dtype):
                fe += n
                fb += n * t.dtype.itemsize
            else:
                xb += n * t.dtype.itemsize
        return cls(fe, fb, xb)


ZERO_ACCESS = Access()


@dataclass(frozen=True, slots=True)
class Work:
    """What one operator (or one stage of a fused operator) costs.

    ``macs`` are multiply-accumulates of conv/linear/matmul/attention/recurrent products;
    ``elementwise`` are all other floating-point operations. ``flops`` is ``2 * macs +
    elementwise``. ``reads``/``writes`` override the default traffic (every input read once,
    every output written once). ``steps`` > 1 marks sequential dependent steps (a recurrent
    layer's time steps); ``step_reads`` are tensors each step reads again (its weights) when
    they do not stay on chip.
    """

    macs: int = 0
    elementwise: int = 0
    op_class: str | None = None
    reads: tuple[TensorMeta, ...] | None = None
    writes: tuple[TensorMeta, ...] | None = None
    steps: int = 1
    step_reads: tuple[TensorMeta, ...] = field(default=())
    label: str = ""

    @property
    def flops(self) -> int:
        return 2 * self.macs + self.elementwise
