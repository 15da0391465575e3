"""Leave the model under test exactly as it was found.

Tracing never writes to the model's tensors (the tracer redirects every write to a private
copy), but a forward may still set attributes, flip flags, register hooks, append to a list it
keeps, store tensors in a cache or bump version counters. :func:`preserved` snapshots what a
forward can change and puts it back afterwards:

* every module's attributes (bindings), its training flag included;
* the contents of every container reachable from a module's attributes: its parameter,
  buffer, submodule and hook tables, and a user's lists, dicts, sets, deques and bytearrays,
  nested ones too (a generator's key/value cache, a call counter in a dict). A container is
  put back in place, and only when its contents changed (compared by identity, never by
  value: tensors do not compare), so nothing is touched that the forward left alone;
  containers that are not Python's (TorchScript's tables) are never touched;
* every parameter's and buffer's ``requires_grad``, ``.grad``, version counter and Python
  attributes;
* the random number generators a forward may draw from: torch's (CPU, and CUDA once
  initialised), Python's ``random`` and, when loaded, NumPy's global one.

:func:`reachable_tensors` lists every tensor the model holds, in attributes or containers:
in a real forward, writes to any of them (through a view, ``.data`` or a list) are the
tracer's to redirect.
"""

from __future__ import annotations

import random
import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

#: Python containers whose contents a forward may change in place.
CONTAINERS = (list, dict, set, deque, bytearray)


@dataclass
class _Contents:
    """One container and what it held (a dict as ``key, value, key, value...``)."""

    container: Any
    items: tuple[Any, ...]

    @classmethod
    def of(cls, container: Any) -> _Contents:
        return cls(container, _items(container))

    def changed(self) -> bool:
        now = _items(self.container)
        if isinstance(self.container, bytearray):
            return now != self.items
        if isinstance(self.container, set):
            return {id(x) for x in now} != {id(x) for x in self.items}
        return len(now) != len(self.items) or any(
            a is not b for a, b in zip(now, self.items, strict=True))

    def restore(self) -> None:
        """Put the contents back through the container's own methods (an ``OrderedDict``
        keeps its order, a ``Counter`` does not count its items again)."""
        c, items = self.container, self.items
        if isinstance(c, (list, bytearray)):
            c[:] = items[0] if isinstance(c, bytearray) else items
            return
        c.clear()
        if isinstance(c, dict):
            for key, value in zip(items[::2], items[1::2], strict=True):
                c[key] = value
        elif isinstance(c, deque):
            c.extend(items)
        else:
            for item in items:
                c.add(item)


def _items(container: Any) -> tuple[Any, ...]:
    if isinstance(container, dict):
        return tuple(x for pair in container.items() for x in pair)
    if isinstance(container, bytearray):
        return (bytes(container),)
    return tuple(container)


@dataclass
class _Reach:
    """What a model reaches: its modules (registered or kept in containers), the Python
    containers on them and the tensors those hold."""

    modules: list[nn.Module]
    containers: list[Any]
    tensors: list[torch.Tensor]

    @classmethod
    def of(cls, model: nn.Module) -> _Reach:
        reach = cls([], [], [])
        seen: set[int] = set()
        todo: list[Any] = [m for _, m in model.named_modules()]
        while todo:
            value = todo.pop()
            if id(value) in seen:
                continue
            if isinstance(value, torch.Tensor):
                seen.add(id(value))
                reach.tensors.append(value)
            elif isinstance(value, nn.Module):
                seen.add(id(value))
                reach.modules.append(value)
                todo.extend(vars(value).values())
            elif isinstance(value, CONTAINERS):
                seen.add(id(value))
                reach.containers.append(value)
                if not isinstance(value, bytearray):
                    todo.extend(_items(value))
            elif isinstance(value, tuple):  # immutable, but it may hold a list
                seen.add(id(value))
                todo.extend(value)
        return reach


def reachable_tensors(model: nn.Module) -> list[torch.Tensor]:
    """Every tensor ``model`` holds: parameters, buffers, tensor attributes and tensors kept
    in lists, dicts, sets, deques or tuples on any of its modules."""
    return _Reach.of(model).tensors


@dataclass
class _TensorState:
    tensor: torch.Tensor
    requires_grad: bool
    grad: torch.Tensor | None
    version: int
    attrs: _Contents


@dataclass
class _Generators:
    """The states of the random number generators a forward may draw from."""

    torch_cpu: torch.Tensor
    torch_cuda: list[torch.Tensor] | None
    python: Any
    numpy: Any

    @classmethod
    def capture(cls) -> _Generators:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        numpy = sys.modules.get("numpy")
        return cls(torch.get_rng_state(), cuda, random.getstate(),
                   numpy.random.get_state() if numpy is not None else None)

    def restore(self) -> None:
        torch.set_rng_state(self.torch_cpu)
        if self.torch_cuda is not None:
            torch.cuda.set_rng_state_all(self.torch_cuda)
        random.setstate(self.python)
        numpy = sys.modules.get("numpy")
        if self.numpy is not None and numpy is not None:
            numpy.random.set_state(self.numpy)


def _version(t: torch.Tensor) -> int:
    """A tensor's version counter; inference tensors (made under ``inference_mode``) have
    none and cannot change version, so they read as 0."""
    return 0 if t.is_inference() else t._version


@dataclass
class ModelState:
    """A restorable snapshot of everything a forward pass could change on a model."""

    modules: list[tuple[nn.Module, dict[str, Any]]]
    contents: list[_Contents]
    tensors: list[_TensorState]
    rng: _Generators

    @classmethod
    def capture(cls, model: nn.Module) -> ModelState:
        reach = _Reach.of(model)
        own = {id(t): t for m in reach.modules
               for t in (*m._parameters.values(), *m._buffers.values()) if t is not None}
        states = [_TensorState(t, t.requires_grad, t.grad, _version(t), _Contents.of(vars(t)))
                  for t in own.values()]
        return cls([(m, dict(vars(m))) for m in reach.modules],
                   [_Contents.of(c) for c in reach.containers], states, _Generators.capture())

    def restore(self) -> None:
        for module, attrs in self.modules:
            current = vars(module)
            for key in [k for k in current if k not in attrs]:
                del current[key]
            for key, value in attrs.items():
                if current.get(key, _MISSING) is not value:
                    current[key] = value
        for contents in self.contents:
            if contents.changed():
                contents.restore()
        changed = [s for s in self.tensors if _version(s.tensor) != s.version]
        if changed:
            torch._C._autograd._unsafe_set_version_counter(
                tuple(s.tensor for s in changed), tuple(s.version for s in changed)
            )
        for s in self.tensors:
            if s.tensor.requires_grad != s.requires_grad:
                s.tensor.requires_grad_(s.requires_grad)
            if s.tensor.grad is not s.grad:
                s.tensor.grad = s.grad
            if s.attrs.changed():
                s.attrs.restore()
        self.rng.restore()


_MISSING = object()


def _unique_modules(model: nn.Module) -> Iterator[nn.Module]:
    return (m for _, m in model.named_modules())


@contextmanager
def preserved(model: nn.Module) -> Iterator[ModelState]:
    """Run the body, then restore ``model`` to its state on entry (also on error)."""
    state = ModelState.capture(model)
    try:
        yield state
    finally:
        state.restore()


def model_tensors(model: nn.Module) -> tuple[set[int], set[int]]:
    """``(ids of parameters, ids of buffers and other tensor attributes)`` of ``model``."""
    params: set[int] = set()
    others: set[int] = set()
    for module in _unique_modules(model):
        for p in module._parameters.values():
            if p is not None:
                params.add(id(p))
        for b in module._buffers.values():
            if b is not None:
                others.add(id(b))
        for value in vars(module).values():
            if isinstance(value, torch.Tensor) and id(value) not in params:
                others.add(id(value))
    return params, others
