"""The values of small integer tensors on the CPU, kept through a fake trace: sequence
lengths and the like.

A packed sequence (``nn.utils.rnn.pack_padded_sequence``) is made from its lengths, an
integer tensor on the CPU whose values decide shapes (the packed rows, one batch size per
step), and the recurrent layer that reads it takes its batch size from the first of those
batch sizes. Fake tensors have no values, so for one trace the counting mode keeps them for
such tensors:

* a real integer or bool tensor on the CPU of at most :data:`LIMIT` elements that an
  operator receives (the caller's lengths, a list the forward makes into a tensor, a buffer
  of the model) keeps a private copy of its value next to its fake twin;
* an operator whose tensor inputs all have values (or that has none: ``arange``) and whose
  outputs are all such tensors computes their values on the copies (``sort``, ``_to_copy``,
  ``select``, ``index``): integer bookkeeping on a few elements, never a float tensor and
  never the model's arithmetic. An operator that writes a tensor it cannot compute drops
  the values of everything sharing that tensor's memory;
* ``.item()`` and ``bool()`` of a tensor with a value are that value, and the stand-ins of
  the sequence-packing kernels (``stand_ins``) read the lengths and batch sizes.

A value computed from a float tensor is never known: such a read still needs a real
forward, which says why.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_map

from .registry import written_arguments

#: the most elements of a tensor whose value is kept
LIMIT = 1 << 16


class NeedsValues(RuntimeError):
    """A kernel needs the values of an integer tensor the fake trace does not know."""


def _small_integer(t: torch.Tensor) -> bool:
    return (not t.is_floating_point() and not t.is_complex() and t.device.type == "cpu"
            and not t.is_quantized and t.numel() <= LIMIT)


def _written(func: Any, args: tuple, kwargs: dict) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []
    for i, name in written_arguments(func):
        given = kwargs.get(name, args[i] if i < len(args) else None)
        found.extend(t for t in tree_flatten(given)[0] if isinstance(t, torch.Tensor))
    return found


class KnownValues:
    """Private copies of the values of a trace's small integer CPU tensors, by tensor."""

    def __init__(self) -> None:
        self.values: dict[int, torch.Tensor] = {}  # id of a fake tensor -> its value
        self.memory: dict[int, set[int]] = {}  # id of a storage -> ids of its tensors above

    def value(self, t: Any) -> torch.Tensor | None:
        """The value of ``t`` when it is known (the trace's own: never written)."""
        return self.values.get(id(t)) if isinstance(t, torch.Tensor) else None

    def _set(self, t: torch.Tensor, value: torch.Tensor) -> None:
        key, storage = id(t), id(t.untyped_storage())
        if key not in self.values:
            weakref.finalize(t, self._drop, key, storage)
        self.values[key] = value
        self.memory.setdefault(storage, set()).add(key)

    def _drop(self, key: int, storage: int) -> None:
        self.values.pop(key, None)
        keys = self.memory.get(storage)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.memory[storage]

    def _forget(self, t: torch.Tensor) -> None:
        """Drop the values of every tensor sharing ``t``'s memory (it is being written)."""
        storage = id(t.untyped_storage())
        for key in list(self.memory.get(storage, ())):
            self._drop(key, storage)

    def seed(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        """Keep the value of ``real`` for its fake twin when it is a small integer CPU
        tensor."""
        if id(fake) not in self.values and not real.is_meta and _small_integer(real):
            with _disable_current_modes():
                self._set(fake, real.detach().clone())

    def read(self, func: Any, args: tuple, kwargs: dict) -> tuple[bool, Any]:
        """``(True, result)`` of a scalar read (``.item()``, ``bool()``) of a tensor with a
        value; ``(False, None)`` otherwise."""
        value = self.value(args[0]) if args else None
        if value is None:
            return False, None
        with _disable_current_modes():
            return True, func(value, *args[1:], **kwargs)

    def update(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        """After ``func`` ran on fake tensors: compute the values of its outputs when all
        its tensor inputs have values and its outputs are small integer CPU tensors;
        forget the values of what it wrote otherwise."""
        written = _written(func, args, kwargs) if written_arguments(func) else []
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if not written and not (outputs and all(_small_integer(t) for t in outputs)):
            return  # the common case: a float result
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        copies = {id(t): self.values.get(id(t)) for t in inputs}
        for t in written:  # the copies of written tensors take the new values
            value = copies[id(t)]
            if value is not None:
                with _disable_current_modes():
                    copies[id(t)] = value.clone()
            self._forget(t)
        if not outputs or not all(_small_integer(t) for t in outputs) or \
                any(v is None for v in copies.values()) or \
                torch.Tag.nondeterministic_seeded in func.tags:
            return

        def real(x: Any) -> Any:
            return copies[id(x)] if isinstance(x, torch.Tensor) else x

        try:
            with _disable_current_modes():
                result = func(*tree_map(real, args), **tree_map(real, kwargs))
        except Exception:  # what the fake kernel accepted the real one refuses: unknown
            return
        values = [t for t in tree_flatten(result)[0] if isinstance(t, torch.Tensor)]
        if len(values) == len(outputs):
            for fake, value in zip(outputs, values, strict=True):
                if fake.shape == value.shape and fake.dtype == value.dtype:
                    self._set(fake, value)
