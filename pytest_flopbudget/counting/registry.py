"""The formula registry: one shape-only cost function per aten operator.

A formula receives the operator's arguments by their schema names (``func._schema``), with
every default filled in, every tensor replaced by a
:class:`~pytest_flopbudget.counting.costs.TensorMeta` (shape and dtype, never values), and
``out=`` destinations left out; the operator's output(s) come as ``result=``. It declares the
arguments it reads and absorbs the rest with ``**_``, and returns a
:class:`~pytest_flopbudget.counting.costs.Work` (or a list of them for an operator that runs
several stages, such as a multi-layer LSTM). Adding an operator is one decorated function::

    @register("mm", op_class="matmul")
    def mm(self, mat2, *, result, **_):
        return Work(macs=self.shape[0] * self.shape[1] * mat2.shape[1])

A formula registered for several operators serves every overload of each: a parameter
without a default must be an argument of all of them (a test checks it).

Operators named in :func:`register_free` cost nothing (views, shape queries, allocation
without initialisation). Every other operator is *unsupported*: the profile lists it by name.
A name that matches no operator of this torch is remembered (:func:`unresolved`), never
silently dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from ..core.op_classes import OP_CLASSES
from .costs import Work

#: What a cost formula is: schema arguments by name (and ``result=``) in, work out.
FormulaFn = Callable[..., Work | list[Work]]

F = TypeVar("F", bound=FormulaFn)

_OpKey = Any  # torch._ops.OpOverloadPacket
_Overload = Any  # torch._ops.OpOverload


@dataclass(frozen=True)
class Formula:
    """A registered cost function and the operator class its work belongs to by default."""

    fn: FormulaFn
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


def formulas() -> dict[_OpKey, Formula]:
    """``{operator packet: formula}`` for every operator with a formula (for tests)."""
    return dict(_FORMULAS)


def unresolved() -> tuple[str, ...]:
    """Names given to :func:`register` or :func:`register_free` that match no operator of
    this torch (a renamed or removed operator, or a typo)."""
    return tuple(_UNRESOLVED)


# -- binding a call to its schema -----------------------------------------------------------


@functools.cache
def destinations(func: _Overload) -> frozenset[str]:
    """Names of ``func``'s keyword-only destination arguments (``out=``): written, not read,
    and not passed to formulas, whose ``result`` is the operator's output."""
    return frozenset(a.name for a in func._schema.arguments
                     if a.kwarg_only and a.alias_info is not None and a.alias_info.is_write)


_NO_DEFAULT = object()


@functools.cache
def _parameters(func: _Overload) -> tuple[tuple[str, bool, Any], ...]:
    """``(name, kwarg_only, default)`` of each schema argument a formula receives."""
    dest = destinations(func)
    return tuple((a.name, a.kwarg_only, a.default_value if a.has_default_value() else _NO_DEFAULT)
                 for a in func._schema.arguments if a.name not in dest)


def schema_names(func: _Overload) -> tuple[str, ...]:
    """The argument names a formula of ``func`` receives, in schema order."""
    return tuple(name for name, _, _ in _parameters(func))


def bind(func: _Overload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A call of the overload ``func`` as ``{schema name: value}``: positional arguments
    matched to the schema's positional parameters in order, keywords by name, defaults
    filled in, ``out=`` destinations left out."""
    params = _parameters(func)
    positional = [name for name, kwarg_only, _ in params if not kwarg_only]
    if len(args) > len(positional):
        raise TypeError(f"{func}: {len(args)} positional arguments, the schema has "
                        f"{len(positional)}")
    bound = dict(zip(positional, args, strict=False))
    for name, _, default in params:
        if name in kwargs:
            bound[name] = kwargs[name]
        elif name not in bound and default is not _NO_DEFAULT:
            bound[name] = default
    return bound
