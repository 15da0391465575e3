"""Kernels that cannot run on fake tensors, stood in for during one trace: quantized
tensors and kernels, and ``_grouped_mm`` on float32.

Fake (and meta) tensors cannot be quantized, and the ``quantized::`` kernels
(``quantized::conv2d``, ``quantized::linear``, ``aten::quantized_lstm``) have no fake
implementation. So that a quantized model still counts on shapes alone, the counting mode
stands in for them, for the trace only (nothing is registered with torch, nothing leaks
into the user's process):

* a quantized tensor is carried by a fake tensor of the integer dtype of the same width
  (``quint8`` by ``uint8``, ``qint8`` by ``int8``, ``qint32`` by ``int32``): its bytes are
  the real int8 bytes. :class:`StandIns` remembers which fake tensors are carriers (by
  storage, so views of a carrier are carriers) and the quantized dtype and parameters each
  stands for;
* a quantized kernel is not run: its output is made from the output shape of its float twin
  (``quantized::conv2d`` -> ``aten.conv2d`` on float fake tensors of the same shapes, the
  weight's shape read from the packed weight), as a carrier (or a float tensor, for
  ``dequantize`` and the dynamic kernels whose output is float);
* an ordinary aten operator given a carrier (``relu``, ``max_pool2d``, ``flatten`` on a
  quantized tensor) runs on float fake tensors of the same shapes and hands back carriers;
  a view runs on the carrier itself.

``aten._grouped_mm`` (the experts of a mixture-of-experts layer) has a fake implementation
that accepts only bf16, while the CPU kernel also runs float32: its output shape is made
here for every dtype, so an MoE model counts on fake tensors.

Counting is the formulas' job (``ops/quantized.py``); this module only keeps shapes flowing.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_map

from .known_values import KnownValues, NeedsValues
from .packed import CARRIERS, Describer, PackedCell, PackedWeight
from .registry import bind

_INTEGER_TO_QUANTIZED = {v: k for k, v in CARRIERS.items()}


@dataclass(frozen=True)
class QInfo:
    """What a carrier stands for: a quantized dtype and, when known, its scale and zero
    point (per tensor)."""

    dtype: torch.dtype
    scale: float | None = None
    zero_point: int | None = None


Rule = Callable[["StandIns", Any, tuple, dict], Any]
_RULES: dict[str, Rule] = {}


def _rule(*names: str) -> Callable[[Rule], Rule]:
    def decorator(fn: Rule) -> Rule:
        for name in names:
            _RULES[name] = fn
        return fn

    return decorator


@functools.cache
def _rule_of(func: Any) -> Rule | None:
    """The stand-in of ``func`` (an overload): one named for the overload
    (``aten.lstm.data``) or for all of its operator's (``quantized.conv2d``)."""
    return _RULES.get(str(func)) or _RULES.get(str(func._overloadpacket))


def has_rule(func: Any) -> bool:
    """True when ``func`` (an overload) is a kernel the stand-ins run."""
    return _rule_of(func) is not None


#: Queries of a quantized tensor's parameters: answered, not counted.
QUERIES = ("aten.q_scale", "aten.q_zero_point", "aten.qscheme")


class StandIns:
    """Carriers of quantized tensors and the stand-ins of quantized kernels, for one
    fake trace."""

    def __init__(self, fake_mode: Any, describe: Describer) -> None:
        self.fake_mode = fake_mode
        self.describe = describe
        self.carriers: dict[int, QInfo] = {}
        self.known = KnownValues()  # values of small integer CPU tensors (lengths)

    # -- carriers -----------------------------------------------------------------------
    def info(self, t: Any) -> QInfo | None:
        """The quantized dtype a fake tensor stands for, or ``None`` for a plain tensor."""
        if not isinstance(t, torch.Tensor):
            return None
        return self.carriers.get(id(t.untyped_storage()))

    def mark(self, t: torch.Tensor, info: QInfo) -> torch.Tensor:
        storage = t.untyped_storage()
        key = id(storage)
        if key not in self.carriers:
            weakref.finalize(storage, self.carriers.pop, key, None)
        self.carriers[key] = info
        return t

    def _fake(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` under this trace's fake mode alone (not counted)."""
        with _disable_current_modes(), self.fake_mode:
            return fn()

    def carrier(self, like: torch.Tensor, info: QInfo) -> torch.Tensor:
        """A carrier with ``like``'s shape and strides for a tensor of ``info.dtype``."""
        t = self._fake(lambda: torch.empty_strided(like.shape, like.stride(),
                                                   dtype=CARRIERS[info.dtype]))
        return self.mark(t, info)

    def floats(self, t: torch.Tensor) -> torch.Tensor:
        """A float fake tensor with a carrier's shape and strides (for a float twin)."""
        return self._fake(lambda: torch.empty_strided(t.shape, t.stride(),
                                                      dtype=torch.float32))

    def from_real(self, t: torch.Tensor) -> torch.Tensor:
        """The carrier of a real quantized tensor (a quantized input or attribute)."""
        with _disable_current_modes():  # a real tensor: read its parameters for real
            per_tensor = t.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric)
            info = QInfo(t.dtype, float(t.q_scale()) if per_tensor else None,
                         int(t.q_zero_point()) if per_tensor else None)
        return self.carrier(t, info)

    def any_carrier(self, args: tuple, kwargs: dict) -> bool:
        if not self.carriers:  # no quantized tensor in this trace (yet)
            return False
        leaves, _ = tree_flatten((args, kwargs))
        return any(self.info(t) is not None for t in leaves)

    def first_info(self, args: Any) -> QInfo:
        leaves, _ = tree_flatten(args)
        for t in leaves:
            info = self.info(t)
            if info is not None:
                return info
        return QInfo(torch.quint8)

    # -- running ------------------------------------------------------------------------
    def run(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """The output of ``func`` on carriers, without running a quantized kernel."""
        rule = _rule_of(func)
        if rule is not None:
            return rule(self, func, args, kwargs)
        return self.via_floats(func, args, kwargs)

    def via_floats(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """Run an ordinary operator on float twins of its carriers; float results come
        back as carriers of the first carrier's dtype, a written argument as itself."""
        info = self.first_info((args, kwargs))
        twins: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        def swap(t: Any) -> Any:
            if self.info(t) is None:
                return t
            twin = self.floats(t)
            twins[id(twin)] = (twin, t)
            return twin

        out = self._fake(lambda: func(*tree_map(swap, args), **tree_map(swap, kwargs)))

        def back(t: Any) -> Any:
            if not isinstance(t, torch.Tensor):
                return t
            if id(t) in twins:
                return twins[id(t)][1]
            if t.is_floating_point():
                return self.carrier(t, info)
            return t

        return tree_map(back, out)


# -- the stand-ins of quantized kernels ---------------------------------------------------
def _float_out(s: StandIns, shape: tuple[int, ...] | torch.Size,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return s._fake(lambda: torch.empty(tuple(shape), dtype=dtype))


def _quantized_out(s: StandIns, shape: tuple[int, ...] | torch.Size, info: QInfo
                   ) -> torch.Tensor:
    t = s._fake(lambda: torch.empty(tuple(shape), dtype=CARRIERS[info.dtype]))
    return s.mark(t, info)


def _scalar(value: Any) -> Any:
    return value if isinstance(value, (int, float)) else None


@_rule("aten.quantize_per_tensor", "aten.quantize_per_channel",
       "aten.quantize_per_tensor_dynamic")
def _quantize(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs)
    dtype = bound["dtype"]
    scale, zp = _scalar(bound.get("scale")), _scalar(bound.get("zero_point"))
    if "tensors" in bound:
        return [s.carrier(t, QInfo(dtype)) for t in bound["tensors"]]
    return s.carrier(bound["self"], QInfo(dtype, scale, zp))


@_rule("aten.dequantize")
def _dequantize(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    x = args[0]
    if isinstance(x, (list, tuple)):
        return [_float_out(s, t.shape) for t in x]
    return _float_out(s, x.shape)


@_rule("aten.int_repr")
def _int_repr(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    x = args[0]
    return s._fake(lambda: torch.empty_strided(x.shape, x.stride(), dtype=x.dtype))


@_rule("aten.q_scale")
def _q_scale(s: StandIns, func: Any, args: tuple, kwargs: dict) -> float:
    info = s.info(args[0])
    return info.scale if info is not None and info.scale is not None else 1.0


@_rule("aten.q_zero_point")
def _q_zero_point(s: StandIns, func: Any, args: tuple, kwargs: dict) -> int:
    info = s.info(args[0])
    return info.zero_point if info is not None and info.zero_point is not None else 0


@_rule("aten.qscheme")
def _qscheme(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    return torch.per_tensor_affine


def _packed(s: StandIns, obj: Any) -> PackedWeight:
    described = s.describe(obj)
    if not isinstance(described, PackedWeight):
        raise NotImplementedError(f"{described}")
    return described


def _conv_twin(s: StandIns, x: torch.Tensor, pw: PackedWeight) -> torch.Tensor:
    spatial = x.ndim - 2
    shape = pw.weight.shape
    tail = slice(-spatial, None)
    if len(shape) - 2 > spatial:  # conv1d is packed as 2-D with a kernel height of 1
        shape = shape[:2] + shape[-spatial:]
    stride, padding, dilation = pw.stride[tail], pw.padding[tail], pw.dilation[tail]
    xf = s.floats(x)
    if pw.transposed:
        fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[spatial - 1]
        out_pad = pw.output_padding[tail] or (0,) * spatial
        return s._fake(lambda: fn(xf, torch.empty(shape), None, stride, padding, out_pad,
                                  pw.groups, dilation))
    conv = (F.conv1d, F.conv2d, F.conv3d)[spatial - 1]
    return s._fake(lambda: conv(xf, torch.empty(shape), None, stride, padding, dilation,
                                pw.groups))


@_rule("quantized.conv1d", "quantized.conv2d", "quantized.conv3d", "quantized.conv1d_relu",
       "quantized.conv2d_relu", "quantized.conv3d_relu", "quantized.conv_transpose1d",
       "quantized.conv_transpose2d", "quantized.conv_transpose3d")
def _qconv(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    x, packed = args[0], args[1]
    twin = _conv_twin(s, x, _packed(s, packed))
    return _quantized_out(s, twin.shape, QInfo(s.first_info(x).dtype, _scalar(args[-2]),
                                                _scalar(args[-1])))


@_rule("quantized.linear", "quantized.linear_relu")
def _qlinear(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    x, pw = args[0], _packed(s, args[1])
    return _quantized_out(s, (*x.shape[:-1], pw.weight.shape[0]),
                          QInfo(s.first_info(x).dtype, _scalar(args[2]), _scalar(args[3])))


@_rule("quantized.linear_dynamic", "quantized.linear_relu_dynamic",
       "quantized.linear_dynamic_fp16", "quantized.linear_relu_dynamic_fp16")
def _qlinear_dynamic(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    x, pw = args[0], _packed(s, args[1])
    return _float_out(s, (*x.shape[:-1], pw.weight.shape[0]), x.dtype)


@_rule("quantized.linear_with_input_q_dq_qweight_dq_output_fp32")
def _qlinear_qdq(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    x, pw = args[0], _packed(s, args[3])
    return _float_out(s, (*x.shape[:-1], pw.weight.shape[0]), x.dtype)


def _binary_shape(a: Any, b: Any) -> tuple[int, ...]:
    shapes = [t.shape for t in (a, b) if isinstance(t, torch.Tensor)]
    return tuple(torch.broadcast_shapes(*shapes))


@_rule("quantized.add", "quantized.add_relu", "quantized.mul", "quantized.mul_relu",
       "quantized.add_scalar", "quantized.mul_scalar", "quantized.add_scalar_relu",
       "quantized.add_out")
def _qbinary(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs)
    if "out" in bound:  # the .out overloads write into ``out``
        return bound["out"]
    qa = bound.get("qa")
    shape = _binary_shape(qa, bound.get("qb", bound.get("b")))
    return _quantized_out(s, shape, QInfo(s.first_info(qa).dtype, _scalar(bound.get("scale")),
                                          _scalar(bound.get("zero_point"))))


@_rule("quantized.cat", "quantized.cat_relu")
def _qcat(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    tensors, dim = args[0], args[1]
    twin = s._fake(lambda: torch.cat([torch.empty(t.shape) for t in tensors], dim))
    return _quantized_out(s, twin.shape, s.first_info(tensors))


@_rule("quantized.matmul")
def _qmatmul(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    a, b = args[0], args[1]
    twin = s._fake(lambda: torch.matmul(torch.empty(a.shape), torch.empty(b.shape)))
    return _quantized_out(s, twin.shape, s.first_info(a))


@_rule("quantized.max_pool2d", "aten.quantized_max_pool2d")
def _qmax_pool(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs)
    x = bound["qx"] if "qx" in bound else bound["self"]
    stride = bound["stride"] or bound["kernel_size"]
    twin = s._fake(lambda: F.max_pool2d(torch.empty(x.shape), bound["kernel_size"], stride,
                                        bound["padding"], bound["dilation"],
                                        bound["ceil_mode"]))
    return _quantized_out(s, twin.shape, s.first_info(x))


@_rule("quantized.batch_norm", "quantized.batch_norm1d", "quantized.batch_norm2d",
       "quantized.batch_norm3d", "quantized.batch_norm1d_relu", "quantized.batch_norm2d_relu",
       "quantized.batch_norm3d_relu", "quantized.hardswish", "quantized.sigmoid",
       "quantized.leaky_relu", "quantized.elu", "quantized.celu", "quantized.relu6",
       "quantized.threshold", "quantized.clamp", "quantized.layer_norm", "quantized.group_norm",
       "quantized.instance_norm", "quantized.softmax", "quantized.dropout",
       "aten.quantized_batch_norm")
def _qsame(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    x = args[0]
    return _quantized_out(s, x.shape, s.first_info(x))


@_rule("quantized.embedding_byte", "quantized.embedding_4bit")
def _qembedding(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    pw, indices = _packed(s, args[0]), args[1]
    return _float_out(s, (*indices.shape, pw.weight.shape[-1]))


@_rule("aten.quantized_lstm", "aten.quantized_gru")
def _qrnn(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs)
    cells = [s.describe(c) for c in bound["params"]]
    if not all(isinstance(c, PackedCell) for c in cells):
        raise NotImplementedError(f"{func}: recurrent parameters it cannot read")
    width = cells[0].w_hh.weight.shape[1]  # type: ignore[union-attr]
    directions = 2 if bound["bidirectional"] else 1
    x = bound["input"] if "input" in bound else bound["data"]
    out = _float_out(s, (*x.shape[:-1], directions * width), x.dtype)
    hx = bound["hx"]
    states = [_float_out(s, h.shape, h.dtype) for h in (hx if isinstance(hx, list) else [hx])]
    return (out, *states)


@_rule("aten._grouped_mm")
def _grouped_mm(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    bound = bind(func, args, kwargs)
    a, b, offs = bound["self"], bound["mat2"], bound["offs"]
    if a.ndim == 2 and b.ndim == 3:  # rows split by offs, one [K, N] per group
        shape: tuple[int, ...] = (a.shape[0], b.shape[-1])
    elif a.ndim == 3 and b.ndim == 3:  # a batch of products
        shape = (a.shape[0], a.shape[1], b.shape[-1])
    elif a.ndim == 3:  # 3-D x 2-D: mat2's columns split by offs
        shape = (a.shape[1], b.shape[-1])
    else:  # 2-D x 2-D: the reduced dim split by offs, one [M, N] per group
        shape = (offs.shape[0], a.shape[0], b.shape[-1])
    return _float_out(s, shape, bound["out_dtype"] or a.dtype)


# -- packed sequences ---------------------------------------------------------------------
def _lengths(s: StandIns, func: Any, name: str, t: Any) -> torch.Tensor:
    value = s.known.value(t)
    if value is None:
        raise NeedsValues(
            f"{func} needs the values of its {name} (a CPU tensor deciding the packed "
            f"shapes), and they were computed from tensors a fake trace has no values of; "
            f"pass them as a list or a CPU tensor of the caller's to count on fake tensors")
    return value


def _known_out(s: StandIns, value: torch.Tensor) -> torch.Tensor:
    """A fake tensor holding ``value`` (a known value of the trace)."""
    t = s._fake(lambda: torch.empty(value.shape, dtype=value.dtype))
    s.known.seed(value, t)
    return t


@_rule("aten._pack_padded_sequence")
def _pack_padded(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    """``(data, batch_sizes)``: the rows of the steps each sequence runs, and per step the
    number of sequences still running, from the values of ``lengths`` (the kernel itself
    runs on an input of one feature, so its checks and results are torch's)."""
    bound = bind(func, args, kwargs)
    x, batch_first = bound["input"], bound["batch_first"]
    lengths = _lengths(s, func, "lengths", bound["lengths"])
    with _disable_current_modes():
        rows, batch_sizes = func(torch.zeros((*x.shape[:2], 1)), lengths, batch_first)
    data = s._fake(lambda: torch.empty((rows.shape[0], *x.shape[2:]), dtype=x.dtype))
    return data, _known_out(s, batch_sizes)


@_rule("aten._pad_packed_sequence")
def _pad_packed(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    """``(padded, lengths)``: the sequences back at ``total_length`` steps, and their
    lengths, from the values of ``batch_sizes``."""
    bound = bind(func, args, kwargs)
    data = bound["data"]
    batch_sizes = _lengths(s, func, "batch_sizes", bound["batch_sizes"])
    with _disable_current_modes():
        padded, lengths = func(torch.zeros((data.shape[0], 1)), batch_sizes,
                               bound["batch_first"], bound["padding_value"],
                               bound["total_length"])
    out = s._fake(lambda: torch.empty((*padded.shape[:2], *data.shape[1:]), dtype=data.dtype))
    return out, _known_out(s, lengths)


@_rule("aten.lstm.data", "aten.gru.data", "aten.rnn_tanh.data", "aten.rnn_relu.data")
def _rnn_packed(s: StandIns, func: Any, args: tuple, kwargs: dict) -> Any:
    """A recurrent layer over a packed sequence: the kernel reads its batch sizes, which a
    fake tensor has not; its outputs are shaped by ``data`` and the initial state: the
    output ``(rows, directions x hidden or proj_size)`` and the final state(s) as given."""
    bound = bind(func, args, kwargs)
    data, hx, params = bound["data"], bound["hx"], bound["params"]
    directions = 2 if bound["bidirectional"] else 1
    width = params[1].shape[1]  # w_hh: (gates x hidden, hidden or proj_size)
    out = _float_out(s, (data.shape[0], directions * width), data.dtype)
    states = [_float_out(s, h.shape, h.dtype)
              for h in (hx if isinstance(hx, (list, tuple)) else [hx])]
    return (out, *states)
