"""Weights that are not tensors: the packed int8 (or fp16) weights of quantized modules.

``torch.ao`` quantized modules keep their weights in TorchBind objects (``ScriptObject``):
``Conv2dPackedParamsBase`` and ``Conv3dPackedParamsBase`` (convolutions, ``conv1d`` packed
as 2-D), ``LinearPackedParamsBase`` (linear layers, static and dynamic),
``EmbeddingPackedParamsBase`` and ``CellParamsBase`` (one layer-direction of a dynamic
quantized LSTM or GRU). They are not ``nn.Parameter`` s, so ``named_parameters`` does not
list them. :func:`describe` reads their shapes without arithmetic (``unpack()`` hands back
the stored weight, a copy of bytes) into a :class:`PackedWeight`, which formulas receive in
place of the object, and :func:`packed_weights` finds every one a model holds.

What a packed weight weighs, in bytes, is what the kernels keep: the int8 weight (1 byte per
element), its quantization parameters (per tensor, or per output channel: a float32 scale
and an int32 zero point each, as fbgemm and qnnpack store them) and the float bias.

A ``ScriptObject`` of another class (a custom TorchBind class, an XNNPACK context) cannot be
read: :func:`describe` then returns an :class:`OpaqueWeight`, and the profile says so (never
0 params in silence).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import _disable_current_modes

from .costs import TensorMeta

#: Quantized tensor dtypes and the plain integer dtype of the same width.
CARRIERS: dict[torch.dtype, torch.dtype] = {
    torch.quint8: torch.uint8,
    torch.qint8: torch.int8,
    torch.qint32: torch.int32,
}
#: Bytes of one quantization parameter pair: a float32 scale and an int32 zero point.
SCALE = torch.float32
ZERO_POINT = torch.int32


@dataclass(frozen=True)
class PackedWeight:
    """A packed weight as a formula sees it: the weight and bias shapes (the weight at its
    stored dtype, ``torch.qint8`` for int8), the number of quantization parameter pairs
    (``qparams``: 1 per tensor, ``C_out`` per channel, 0 for a float weight) and, for a
    convolution, its geometry."""

    weight: TensorMeta
    bias: TensorMeta | None
    qparams: int = 0
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    output_padding: tuple[int, ...] = ()
    groups: int = 1
    transposed: bool = False

    @property
    def scales(self) -> tuple[TensorMeta, ...]:
        """The quantization parameters as tensors: float32 scales and int32 zero points."""
        if not self.qparams:
            return ()
        return (TensorMeta((self.qparams,), SCALE), TensorMeta((self.qparams,), ZERO_POINT))

    @property
    def tensors(self) -> tuple[TensorMeta, ...]:
        """Everything a kernel reads of this weight: weight, quantization parameters, bias."""
        return (self.weight, *self.scales, *((self.bias,) if self.bias is not None else ()))


@dataclass(frozen=True)
class PackedCell:
    """One layer-direction of a dynamic quantized LSTM/GRU (``CellParamsBase``): its input
    and recurrent products and their biases."""

    w_ih: PackedWeight
    w_hh: PackedWeight
    b_ih: TensorMeta | None
    b_hh: TensorMeta | None
    dynamic: bool  # int8 weights, inputs quantized at run time (False: fp16 weights)

    @property
    def weights(self) -> list[TensorMeta]:
        """``[w_ih, w_hh, b_ih, b_hh]`` as the float recurrent formulas take them."""
        return [self.w_ih.weight, self.w_hh.weight,
                *(b for b in (self.b_ih, self.b_hh) if b is not None)]

    @property
    def tensors(self) -> tuple[TensorMeta, ...]:
        return (*self.w_ih.tensors, *self.w_hh.tensors,
                *(b for b in (self.b_ih, self.b_hh) if b is not None))


@dataclass(frozen=True)
class OpaqueWeight:
    """A TorchBind object whose weights cannot be read (its class, and why)."""

    type_name: str
    reason: str


Described = PackedWeight | PackedCell | OpaqueWeight


def type_name(obj: Any) -> str:
    """``"Conv2dPackedParamsBase"`` for a ``__torch__.torch.classes.quantized`` object."""
    try:
        return str(obj._type().qualified_name()).rsplit(".", 1)[-1]
    except (AttributeError, RuntimeError):
        return type(obj).__name__


def is_script_object(obj: Any) -> bool:
    """True for a TorchBind object (a packed weight); a scripted submodule's C++ module,
    which is a ``ScriptObject`` too, holds its weights as parameters: not one."""
    return isinstance(obj, torch.ScriptObject) and not isinstance(obj, torch._C.ScriptModule)


def _meta(t: torch.Tensor | None) -> TensorMeta | None:
    return None if t is None else TensorMeta(tuple(int(s) for s in t.shape), t.dtype)


def _qparams(w: torch.Tensor) -> int:
    if not w.is_quantized:
        return 0
    if w.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        return 1
    return int(w.q_per_channel_scales().numel())


def _weight(w: torch.Tensor, b: torch.Tensor | None, **conv: Any) -> PackedWeight:
    meta = _meta(w)
    assert meta is not None
    return PackedWeight(meta, _meta(b), _qparams(w), **conv)


def _ints(values: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _describe(obj: Any) -> Described:
    name = type_name(obj)
    if name in ("Conv2dPackedParamsBase", "Conv3dPackedParamsBase"):
        w, b = obj.unpack()
        return _weight(w, b, stride=_ints(obj.stride()), padding=_ints(obj.padding()),
                       dilation=_ints(obj.dilation()),
                       output_padding=_ints(obj.output_padding()),
                       groups=int(obj.groups()), transposed=bool(obj.transpose()))
    if name == "LinearPackedParamsBase":
        w, b = obj.unpack()
        return _weight(w, b)
    if name == "EmbeddingPackedParamsBase":
        return _weight(obj.unpack(), None)
    if name == "CellParamsBase":
        (kind, tensors, _, _, objects), _ = obj.__getstate__()
        if kind == "quantized_dynamic":
            w_ih, w_hh = (_describe(o) for o in objects)
            b_ih, b_hh = (_meta(t) for t in tensors)
            assert isinstance(w_ih, PackedWeight) and isinstance(w_hh, PackedWeight)
            # the packed products hold the same biases again: count them once
            return PackedCell(replace(w_ih, bias=None), replace(w_hh, bias=None), b_ih, b_hh,
                              dynamic=True)
        if kind == "quantized_fp16":
            w_ih, w_hh = (_describe(o) for o in objects)
            assert isinstance(w_ih, PackedWeight) and isinstance(w_hh, PackedWeight)
            return PackedCell(PackedWeight(w_ih.weight, None), PackedWeight(w_hh.weight, None),
                              w_ih.bias, w_hh.bias, dynamic=False)
        return OpaqueWeight(name, f"recurrent cell parameters of kind {kind!r}")
    return OpaqueWeight(name, "a TorchBind object of a class the plugin cannot read")


def describe(obj: Any) -> Described:
    """What a packed weight object holds, read without arithmetic and outside any
    dispatch mode (``unpack`` makes real tensors of the stored bytes); an object that
    cannot be read is an :class:`OpaqueWeight` saying why."""
    with _disable_current_modes():
        try:
            return _describe(obj)
        except Exception as exc:  # a backend that freed its original weights, say
            return OpaqueWeight(type_name(obj), f"{type(exc).__name__}: {exc}".splitlines()[0])


class Describer:
    """:func:`describe` with a memory, for one trace (the model keeps the objects alive)."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[Any, Described]] = {}

    def __call__(self, obj: Any) -> Described:
        hit = self.seen.get(id(obj))
        if hit is None:
            hit = self.seen[id(obj)] = (obj, describe(obj))
        return hit[1]


#: Modules that only hold a packed weight for the module above them.
HOLDERS = ("LinearPackedParams", "EmbeddingPackedParams", "PackedParameter")


def script_objects(module: nn.Module) -> Iterator[tuple[str, Any]]:
    """``(attribute name, ScriptObject)`` held directly by ``module`` (in its attributes,
    lists and tuples; a scripted module's attributes included)."""
    values: list[tuple[str, Any]]
    if isinstance(module, torch.jit.ScriptModule):
        try:  # a scripted module keeps its attributes in C++
            iterators = torch._C._jit_debug_module_iterators  # type: ignore[attr-defined]
            values = list(iterators(module._c)["named_attributes"])
        except (AttributeError, KeyError, RuntimeError):
            values = []
    else:
        values = list(vars(module).items())
    for name, value in values:
        if is_script_object(value):
            yield name, value
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if is_script_object(item):
                    yield f"{name}.{i}", item


def owner(path: str, kinds: dict[str, str]) -> str:
    """The module a packed weight at ``path`` belongs to: a holder module's (and a
    ``ModuleList`` of holders') nearest ancestor that is neither."""
    while path and (kinds.get(path) in HOLDERS or kinds.get(path) == "ModuleList"):
        path = path.rpartition(".")[0]
    return path
