"""The formula registry: one shape-only cost function per aten operator.

A formula receives the operator's arguments with every tensor replaced by a
:class:`~pytest_flopbudget.costs.TensorMeta` (shape and dtype, never values) and the output(s)
as ``out=``; it returns a :class:`~pytest_flopbudget.costs.Work` (or a list of them for an
operator that runs several stages, such as a multi-layer LSTM). Adding an operator is one
decorated function::

    @register("mm", op_class="matmul")
    def mm(a, b, *, out):
        return Work(macs=a.shape[0] * a.shape[1] * b.shape[1])

Operators named in :func:`register_free` cost nothing (views, shape queries, allocation
without initialisation). Every other operator is *unsupported*: the profile lists it by name.
A name that matches no operator of this torch is remembered (:func:`unresolved`), never
silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from ..core.op_classes import OP_CLASSES
from .costs import Work

F = TypeVar("F", bound=Callable[..., Any])

_OpKey = Any  # torch._ops.OpOverloadPacket


@dataclass(frozen=True)
class Formula:
    """A registered cost function and the operator class its work belongs to by default."""

    fn: Callable[..., Work | list[Work]]
    op_class: str
    name: str


_FORMULAS: dict[_OpKey, Formula] = {}
_FREE: set[_OpKey] = set()
_UNRESOLVED: list[str] = []


def _packets(names: tuple[str, ...]) -> list[_OpKey]:
    """Resolve ``"conv2d"`` or ``"prim.device"`` to operator packets; a name this torch lacks
    is remembered in :func:`unresolved`."""
    found = []
    for name in names:
        ns, _, op = name.rpartition(".")
        namespace = getattr(torch.ops, ns or "aten")
        if hasattr(namespace, op):
            found.append(getattr(namespace, op))
        else:
            _UNRESOLVED.append(name)
    return found


def with_in_place(name: str) -> tuple[str, ...]:
    """``name`` and its in-place form ``name_`` where torch has one (for the cost tables,
    whose entries are named once for both)."""
    return (name, name + "_") if hasattr(torch.ops.aten, name + "_") else (name,)


def register(*names: str, op_class: str) -> Callable[[F], F]:
    """Register ``fn`` as the cost formula of the aten operators ``names`` (all overloads)."""
    if op_class not in OP_CLASSES:
        raise ValueError(f"unknown op_class {op_class!r}; expected one of {OP_CLASSES}")

    def decorator(fn: F) -> F:
        for packet in _packets(names):
            if packet in _FORMULAS or packet in _FREE:
                raise ValueError(f"a formula for {packet} is already registered")
            _FORMULAS[packet] = Formula(fn, op_class, str(packet))
        return fn

    return decorator


def register_free(*names: str) -> None:
    """Declare operators that move no data and compute nothing (views, metadata queries)."""
    for packet in _packets(names):
        if packet in _FORMULAS:
            raise ValueError(f"{packet} already has a formula")
        _FREE.add(packet)


def lookup(packet: _OpKey) -> Formula | None:
    """The formula registered for an operator packet, or ``None``."""
    return _FORMULAS.get(packet)


def is_free(packet: _OpKey) -> bool:
    """True when the operator is registered as costing nothing."""
    return packet in _FREE


def registered_ops() -> dict[str, str]:
    """``{operator name: op class}`` for every operator with a formula (for docs and tests)."""
    return {f.name: f.op_class for f in _FORMULAS.values()}


def unresolved() -> tuple[str, ...]:
    """Names given to :func:`register` or :func:`register_free` that match no operator of
    this torch (a renamed or removed operator, or a typo)."""
    return tuple(_UNRESOLVED)
