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

Some operator libraries exist only once a Python module of torch defines them
(``quantized_decomposed``, the quantize and dequantize operators of PT2E quantization, by
``torch.ao.quantization.fx._decomposed``): :data:`LIBRARIES` names them. A formula for one of
their operators is kept by name until the operator is first met (the model that calls it has
loaded its library) or :func:`load_libraries` loads them all; importing this package loads
none.
"""

from __future__ import annotations

import functools
import importlib
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


#: Operator namespaces that a Python module of torch defines when it is imported:
#: ``{namespace: module}``.
LIBRARIES = {"quantized_decomposed": "torch.ao.quantization.fx._decomposed"}

_FORMULAS: dict[_OpKey, Formula] = {}
_FREE: set[_OpKey] = set()
_UNRESOLVED: list[str] = []
#: formulas of operators whose library is not loaded yet, by qualified name (``ns::op``)
_PENDING: dict[str, Formula] = {}


def _packet(name: str) -> _OpKey | None:
    """The operator packet named ``"conv2d"`` or ``"prim.device"``, or ``None``."""
    ns, _, op = name.rpartition(".")
    namespace = getattr(torch.ops, ns or "aten")
    return getattr(namespace, op) if hasattr(namespace, op) else None


def _packets(names: tuple[str, ...]) -> list[_OpKey]:
    """Resolve names to operator packets; a name this torch lacks is remembered in
    :func:`unresolved`."""
    found = []
    for name in names:
        packet = _packet(name)
        if packet is None:
            _UNRESOLVED.append(name)
        else:
            found.append(packet)
    return found


def _qualified(name: str) -> str:
    ns, _, op = name.rpartition(".")
    return f"{ns}::{op}"


def _add(packet: _OpKey, formula: Formula) -> None:
    if packet in _FORMULAS or packet in _FREE:
        raise ValueError(f"a formula for {packet} is already registered")
    _FORMULAS[packet] = formula


def with_in_place(name: str) -> tuple[str, ...]:
    """``name`` and its in-place form ``name_`` where torch has one (for the cost tables,
    whose entries are named once for both)."""
    return (name, name + "_") if hasattr(torch.ops.aten, name + "_") else (name,)


def register(*names: str, op_class: str) -> Callable[[F], F]:
    """Register ``fn`` as the cost formula of the aten operators ``names`` (all overloads)."""
    if op_class not in OP_CLASSES:
        raise ValueError(f"unknown op_class {op_class!r}; expected one of {OP_CLASSES}")

    def decorator(fn: F) -> F:
        for name in names:
            packet = _packet(name)
            if packet is not None:
                _add(packet, Formula(fn, op_class, str(packet)))
            elif name.rpartition(".")[0] in LIBRARIES:  # resolved when its library loads
                if _qualified(name) in _PENDING:
                    raise ValueError(f"a formula for {name} is already registered")
                _PENDING[_qualified(name)] = Formula(fn, op_class, name)
            else:
                _UNRESOLVED.append(name)
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
    formula = _FORMULAS.get(packet)
    if formula is None and _PENDING:  # an operator of a library loaded since
        formula = _PENDING.pop(packet._qualified_op_name, None)
        if formula is not None:
            _add(packet, formula)
    return formula


def is_free(packet: _OpKey) -> bool:
    """True when the operator is registered as costing nothing."""
    return packet in _FREE


def registered_ops() -> dict[str, str]:
    """``{operator name: op class}`` for every operator with a formula (for docs and tests)."""
    return {f.name: f.op_class for f in _FORMULAS.values()}


def formulas() -> dict[_OpKey, Formula]:
    """``{operator packet: formula}`` for every operator with a formula (for tests)."""
    return dict(_FORMULAS)


def load_libraries() -> None:
    """Import the modules of :data:`LIBRARIES` and resolve the formulas of their operators
    (for tests and docs; a trace resolves each operator when it first meets it)."""
    for module in LIBRARIES.values():
        importlib.import_module(module)
    for qualified, formula in list(_PENDING.items()):
        packet = _packet(formula.name)
        if packet is not None:
            del _PENDING[qualified]
            _add(packet, formula)


def pending() -> tuple[str, ...]:
    """Names of operators of :data:`LIBRARIES` whose formula waits for its library to be
    loaded (after :func:`load_libraries`, a name that matches no operator of this torch)."""
    return tuple(f.name for f in _PENDING.values())


def unresolved() -> tuple[str, ...]:
    """Names given to :func:`register` or :func:`register_free` that match no operator of
    this torch (a renamed or removed operator, or a typo)."""
    return tuple(_UNRESOLVED)


# -- binding a call to its schema -----------------------------------------------------------


@functools.cache
def written_arguments(func: _Overload) -> tuple[tuple[int, str], ...]:
    """``(position, name)`` of the arguments ``func`` writes (in place, ``out=``); empty for
    an operator that writes none of its arguments."""
    return tuple((i, a.name) for i, a in enumerate(func._schema.arguments)
                 if a.alias_info is not None and a.alias_info.is_write)


@functools.cache
def destinations(func: _Overload) -> frozenset[str]:
    """Names of ``func``'s keyword-only destination arguments (``out=``): written, not read,
    and not passed to formulas, whose ``result`` is the operator's output."""
    arguments = func._schema.arguments
    return frozenset(name for i, name in written_arguments(func) if arguments[i].kwarg_only)


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
