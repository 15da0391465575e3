"""Leave the model under test exactly as it was found.

Tracing never writes to the model's tensors (the tracer redirects every write to a private
copy), but a forward may still set attributes, flip flags, register hooks or bump version
counters. :func:`preserved` snapshots what a forward can change and puts it back afterwards:
every module's attributes, training flag, parameter/buffer/submodule tables and hook tables;
every parameter's ``requires_grad``, ``.grad`` and version counter; and the RNG state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# Module attributes holding dicts whose *contents* a forward may change in place.
_TABLES = (
    "_parameters",
    "_buffers",
    "_modules",
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
    "_non_persistent_buffers_set",
)


@dataclass
class _ModuleState:
    attrs: dict[str, Any]
    tables: dict[str, Any]


@dataclass
class _TensorState:
    tensor: torch.Tensor
    requires_grad: bool
    grad: torch.Tensor | None
    version: int


def _version(t: torch.Tensor) -> int:
    """A tensor's version counter; inference tensors (made under ``inference_mode``) have
    none and cannot change version, so they read as 0."""
    return 0 if t.is_inference() else t._version


def _copy_table(table: Any) -> Any:
    return set(table) if isinstance(table, set) else dict(table)


@dataclass
class ModelState:
    """A restorable snapshot of everything a forward pass could change on a model."""

    modules: list[tuple[nn.Module, _ModuleState]]
    tensors: list[_TensorState]
    rng: torch.Tensor

    @classmethod
    def capture(cls, model: nn.Module) -> ModelState:
        modules = []
        seen_tensors: dict[int, _TensorState] = {}
        for module in _unique_modules(model):
            attrs = dict(vars(module))
            tables = {k: _copy_table(attrs[k]) for k in _TABLES if k in attrs}
            modules.append((module, _ModuleState(attrs, tables)))
            for t in (*module._parameters.values(), *module._buffers.values()):
                if t is not None and id(t) not in seen_tensors:
                    seen_tensors[id(t)] = _TensorState(t, t.requires_grad, t.grad, _version(t))
        return cls(modules, list(seen_tensors.values()), torch.get_rng_state())

    def restore(self) -> None:
        for module, state in self.modules:
            current = vars(module)
            for key in [k for k in current if k not in state.attrs]:
                del current[key]
            for key, value in state.attrs.items():
                if current.get(key, _MISSING) is not value:
                    current[key] = value
            for key, saved in state.tables.items():
                # Always refill: comparing the tables would compare their tensors by value.
                table = current[key]
                table.clear()
                table.update(saved)
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
        torch.set_rng_state(self.rng)


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
