"""Quantized operators (``torch.ao`` eager and FX graph mode, static and dynamic): the
``quantized::`` kernels, ``aten.quantize_*``/``dequantize``, the dynamic quantized LSTM
and GRU, and the ``quantized_decomposed`` quantize and dequantize operators that PT2E
quantization and torchao run on plain integer tensors.

A quantized product counts the MACs of its float twin, with the same operator class, kind
and MAC-array dims (so a device prices it alike), read from the packed weight's shapes;
its traffic is the int8 activations, the int8 weight with its quantization parameters
(a float32 scale and an int32 zero point per tensor or per output channel) and the float
bias. The elementwise work, per element:

* quantize ``clamp(round(x / s) + zp, qmin, qmax)``: divide, round, add, two compares: **5**
  (a requantized output costs the same); choosing the parameters at run time (dynamic
  quantization) adds the min and max of the input: **2**;
* dequantize ``(q - zp) * s``: **2** (``q * s`` where no zero point is given: **1**);
* choosing quantization parameters (``quantized_decomposed.choose_qparams*``): the min and
  max of the input (or max and abs, symmetric), **2** per input element;
* a product: its float twin's bias add (1 per output) and the requantize of each output
  (5); a fused ReLU is the requantize's lower bound (0). A dynamic product quantizes its
  input (7 per input element) and rescales its int32 accumulator to float (1 per output),
  then adds the bias;
* any other quantized operator: the float twin's cost, plus 2 per element of each quantized
  input it dequantizes and 5 per output element it requantizes (``quantized::add``:
  2 + 2 + 1 + 5 = 10 per output). ``quantized::cat`` is a copy (inputs at the output's scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..costs import TensorMeta, Work, outputs
from ..packed import PackedCell, PackedWeight
from ..registry import FormulaFn, register
from .convolution import conv_work
from .elementwise import PER_ELEMENT
from .linear_algebra import linear, product_work
from .normalization import norm_work
from .pooling import window_area
from .recurrent import GATES, packed_batch, rnn_stages

QUANTIZE = 5  # clamp(round(x / s) + zp, qmin, qmax): div, round, add, 2 compares
CHOOSE_QPARAMS = 2  # min and max of the input (dynamic quantization)
DEQUANTIZE = 2  # (q - zp) * s: sub, mul
RESCALE = 1  # int32 accumulator * (s_x * s_w) -> float (dynamic products)
ROUND_TRIP = DEQUANTIZE + QUANTIZE


def _packed(*alternatives: object) -> PackedWeight:
    [given] = [a for a in alternatives if a is not None]
    if not isinstance(given, PackedWeight):
        raise TypeError(f"a packed weight the plugin cannot read: {given}")
    return given


def _numel(tensors: object) -> int:
    if isinstance(tensors, TensorMeta):
        return tensors.numel
    if isinstance(tensors, (list, tuple)):
        return sum(t.numel for t in tensors if isinstance(t, TensorMeta))
    return 0


@register("quantize_per_tensor", "quantize_per_channel", op_class="elementwise")
def quantize(self: TensorMeta | None = None, tensors: Sequence[TensorMeta] | None = None,
             **_: object) -> Work:
    # 5 per element of the float input(s)
    return Work(elementwise=QUANTIZE * _numel(self if self is not None else tensors))


@register("quantize_per_tensor_dynamic", op_class="elementwise")
def quantize_dynamic(self: TensorMeta, **_: object) -> Work:
    # min and max of the input (2), then quantize (5), per element
    return Work(elementwise=(CHOOSE_QPARAMS + QUANTIZE) * self.numel)


@register("dequantize", op_class="elementwise")
def dequantize(self: TensorMeta | None = None, tensors: object = None, **_: object) -> Work:
    # 2 per element of the quantized input(s)
    return Work(elementwise=DEQUANTIZE * _numel(self if self is not None else tensors))


@register("quantized_decomposed.quantize_per_tensor",
          "quantized_decomposed.quantize_per_channel",
          "quantized_decomposed.quantize_per_token",
          "quantized_decomposed.quantize_per_channel_group", op_class="elementwise")
def decomposed_quantize(input: TensorMeta, **_: object) -> Work:
    """``clamp(round(x * (1/s)) + zp, qmin, qmax)`` on a float tensor, written as an
    integer tensor: mul, round, add, 2 compares, 5 FLOPs per element (the parameters are
    given, per tensor, channel, token or group). Traffic: the float input and its
    parameters read, the integer output written."""
    return Work(elementwise=QUANTIZE * input.numel)


@register("quantized_decomposed.dequantize_per_tensor",
          "quantized_decomposed.dequantize_per_channel",
          "quantized_decomposed.dequantize_per_token",
          "quantized_decomposed.dequantize_per_channel_group", op_class="elementwise")
def decomposed_dequantize(input: TensorMeta, zero_point: object = None,
                          zero_points: object = None, **_: object) -> Work:
    """``(q - zp) * s`` on an integer tensor, written as a float one: sub, mul, 2 FLOPs per
    element; ``q * s`` (1) where no zero point is given (``zero_points=None``, symmetric).
    Traffic: the integer input at its width and its parameters read, the float output
    written. An ``input`` the model holds is a weight (see the tracer)."""
    given = zero_point is not None or zero_points is not None
    return Work(elementwise=(DEQUANTIZE if given else DEQUANTIZE - 1) * input.numel)


@register("quantized_decomposed.choose_qparams", "quantized_decomposed.choose_qparams_symmetric",
          "quantized_decomposed.choose_qparams_per_token",
          "quantized_decomposed.choose_qparams_per_token_asymmetric", op_class="elementwise")
def decomposed_choose_qparams(input: TensorMeta, **_: object) -> Work:
    """The min and max of the input (per tensor or token; symmetric: abs and max), 2 FLOPs
    per input element; the scale and zero point made from them are a few scalars (0)."""
    return Work(elementwise=CHOOSE_QPARAMS * input.numel)


#: Operators whose ``input`` is a stored integer weight when the model holds it (PT2E and
#: torchao keep int8 weights as plain tensors and dequantize them where they are used):
#: the tracer reports it, and the profile counts it in ``params``.
DEQUANTIZE_OPS = frozenset({"quantized_decomposed.dequantize_per_tensor",
                            "quantized_decomposed.dequantize_per_channel",
                            "quantized_decomposed.dequantize_per_token",
                            "quantized_decomposed.dequantize_per_channel_group"})


@register("int_repr", op_class="data")
def int_repr(**_: object) -> Work:
    return Work(op_class="data")


def _conv1d_weight(w: TensorMeta, x: TensorMeta) -> TensorMeta:
    """A 1-D convolution's weight is packed as 2-D, with a kernel height of 1."""
    spatial = x.ndim - 2
    if w.ndim - 2 > spatial:
        return TensorMeta(w.shape[:2] + w.shape[-spatial:], w.dtype)
    return w


@register("quantized.conv1d", "quantized.conv2d", "quantized.conv3d", "quantized.conv1d_relu",
          "quantized.conv2d_relu", "quantized.conv3d_relu", "quantized.conv_transpose1d",
          "quantized.conv_transpose2d", "quantized.conv_transpose3d", op_class="conv")
def quantized_conv(qx: TensorMeta, packed_weight: PackedWeight | None = None,
                   weight: PackedWeight | None = None, *, result: TensorMeta,
                   **_: object) -> Work:
    # the float twin's MACs and bias adds, + requantize 5 per output (ReLU: its lower bound)
    pw = _packed(packed_weight, weight)
    spatial = qx.ndim - 2
    w = _conv1d_weight(pw.weight, qx)
    work = conv_work(qx, w, pw.bias is not None, pw.transposed, pw.groups, result,
                     pw.stride[-spatial:], pw.dilation[-spatial:])
    return replace(work, elementwise=work.elementwise + QUANTIZE * result.numel,
                   reads=(qx, *pw.tensors), weights=pw.tensors)


def _linear_work(x: TensorMeta, pw: PackedWeight, per_input: int, per_output: int,
                 result: TensorMeta) -> Work:
    work = linear(x, pw.weight, pw.bias)
    extra = per_input * x.numel + per_output * result.numel
    return replace(work, elementwise=work.elementwise + extra, reads=(x, *pw.tensors),
                   weights=pw.tensors)


@register("quantized.linear", "quantized.linear_relu", op_class="matmul")
def quantized_linear(X: TensorMeta, W_prepack: PackedWeight, *, result: TensorMeta,
                     **_: object) -> Work:
    # rows * out * in MACs, bias adds, + requantize 5 per output (ReLU: its lower bound)
    return _linear_work(X, _packed(W_prepack), 0, QUANTIZE, result)


@register("quantized.linear_dynamic", op_class="matmul")
def quantized_linear_dynamic(X: TensorMeta, W_prepack: PackedWeight, *, result: TensorMeta,
                             **_: object) -> Work:
    # quantize the float input (min, max, quantize: 7 per element), int8 MACs, rescale the
    # accumulator to float (1 per output), bias adds
    return _linear_work(X, _packed(W_prepack), CHOOSE_QPARAMS + QUANTIZE, RESCALE, result)


@register("quantized.linear_relu_dynamic", op_class="matmul")
def quantized_linear_relu_dynamic(X: TensorMeta, W_prepack: PackedWeight, *,
                                  result: TensorMeta, **_: object) -> Work:
    # as linear_dynamic, + the ReLU on the float output (1 per output)
    return _linear_work(X, _packed(W_prepack), CHOOSE_QPARAMS + QUANTIZE, RESCALE + 1, result)


@register("quantized.linear_dynamic_fp16", op_class="matmul")
def quantized_linear_fp16(X: TensorMeta, W_prepack: PackedWeight, *, result: TensorMeta,
                          **_: object) -> Work:
    # fp16 weights, float input and output: the float linear
    return _linear_work(X, _packed(W_prepack), 0, 0, result)


@register("quantized.linear_relu_dynamic_fp16", op_class="matmul")
def quantized_linear_relu_fp16(X: TensorMeta, W_prepack: PackedWeight, *, result: TensorMeta,
                               **_: object) -> Work:
    return _linear_work(X, _packed(W_prepack), 0, 1, result)


@register("quantized.linear_with_input_q_dq_qweight_dq_output_fp32", op_class="matmul")
def quantized_linear_qdq(X: TensorMeta, W_prepack: PackedWeight, *, result: TensorMeta,
                         **_: object) -> Work:
    # quantize the input with given parameters (5 per element), rescale to float (1 per out)
    return _linear_work(X, _packed(W_prepack), QUANTIZE, RESCALE, result)


@register("quantized.add", "quantized.add_relu", "quantized.mul", "quantized.mul_relu",
          "quantized.add_scalar", "quantized.mul_scalar", "quantized.add_scalar_relu",
          "quantized.add_out", op_class="elementwise")
def quantized_binary(qa: TensorMeta, qb: TensorMeta | None = None, *, result: object,
                     **_: object) -> Work:
    # per output: dequantize each quantized operand (2 each), the add or mul (1), requantize
    # (5); a fused ReLU is the requantize's lower bound; a scalar operand is not dequantized
    operands = 1 + (qb is not None)
    return Work(elementwise=(DEQUANTIZE * operands + 1 + QUANTIZE) * outputs(result)[0].numel)


@register("quantized.cat", "quantized.cat_relu", op_class="data")
def quantized_cat(**_: object) -> Work:
    return Work(op_class="data")


@register("quantized.matmul", op_class="matmul")
def quantized_matmul(qa: TensorMeta, qb: TensorMeta, *, result: TensorMeta,
                     **_: object) -> Work:
    # the float product's MACs on int8 operands, + requantize 5 per output
    return product_work(qa.shape, qb.shape, QUANTIZE * result.numel)


@register("quantized.max_pool2d", "quantized_max_pool2d", op_class="pooling")
def quantized_max_pool2d(kernel_size: Sequence[int], *, result: TensorMeta,
                         **_: object) -> Work:
    # compares on the integer values, as the float pool: the window area per output
    return Work(elementwise=window_area(kernel_size, 2) * result.numel)


@register("quantized.batch_norm", "quantized.batch_norm2d", "quantized.batch_norm2d_relu",
          "quantized_batch_norm", op_class="norm")
def quantized_batch_norm(qx: TensorMeta | None = None, input: TensorMeta | None = None,
                         weight: TensorMeta | None = None, bias: TensorMeta | None = None,
                         **_: object) -> Work:
    # eval batch norm (normalise 2, weight 1, bias 1) between dequantize 2 and requantize 5
    x = next(t for t in (qx, input) if t is not None)
    work = norm_work(x, False, weight, bias, per_channel=True)
    return replace(work, elementwise=work.elementwise + ROUND_TRIP * x.numel)


#: Quantized activations that dequantize, run the float activation and requantize: their
#: float twin in the per-element table.
ACTIVATIONS = {"hardswish": "hardswish", "sigmoid": "sigmoid", "leaky_relu": "leaky_relu",
               "elu": "elu", "celu": "celu", "softmax": "softmax"}


def _activation(float_cost: int) -> FormulaFn:
    def formula(*, result: TensorMeta, **_: object) -> Work:
        # dequantize (2), the float activation, requantize (5), per element
        return Work(elementwise=(float_cost + ROUND_TRIP) * result.numel)

    return formula


for _name, _twin in ACTIVATIONS.items():
    register(f"quantized.{_name}", op_class="elementwise")(_activation(PER_ELEMENT[_twin][0]))


@register("quantized.relu6", "quantized.threshold", "quantized.clamp", op_class="elementwise")
def quantized_clamp_like(*, result: TensorMeta, **_: object) -> Work:
    # compares on the integer values (no dequantize): relu6 and clamp 2, threshold 1
    return Work(elementwise=2 * result.numel)


@register("quantized.layer_norm", "quantized.group_norm", "quantized.instance_norm",
          op_class="norm")
def quantized_norm(input: TensorMeta, weight: TensorMeta | None, bias: TensorMeta | None,
                   **_: object) -> Work:
    # the float norm with its statistics (6, + weight, + bias), between dequantize and
    # requantize (7)
    work = norm_work(input, True, weight, bias)
    return replace(work, elementwise=work.elementwise + ROUND_TRIP * input.numel)


@register("quantized.dropout", op_class="data")
def quantized_dropout(**_: object) -> Work:
    return Work(op_class="data")


@register("quantized.embedding_byte", "quantized.embedding_4bit", op_class="data")
def quantized_embedding(weight: PackedWeight, indices: TensorMeta, *, result: TensorMeta,
                        **_: object) -> Work:
    # reads the indices and the int8 rows they pick, dequantizes each (2 per output)
    rows = TensorMeta(result.shape, weight.weight.dtype)
    return Work(elementwise=DEQUANTIZE * result.numel, op_class="elementwise",
                reads=(indices, rows), weights=(rows,))


def _recurrent(kind: str) -> FormulaFn:
    def formula(params: Sequence[PackedCell], has_biases: bool, num_layers: int,
                bidirectional: bool, hx: object, input: TensorMeta | None = None,
                data: TensorMeta | None = None, batch_sizes: TensorMeta | None = None,
                batch_first: bool = False, **_: object) -> list[Work]:
        # the float layer's stages (MACs, gates) on the int8 weights; a dynamic cell also
        # quantizes its two input vectors each step (7 per element) and rescales both
        # products' accumulators to float (1 per gate output each)
        x = next(t for t in (input, data) if t is not None)
        if not all(isinstance(c, PackedCell) for c in params):
            raise TypeError(f"recurrent parameters the plugin cannot read: {params}")
        flat = [w for c in params for w in c.weights]
        batch = None
        if batch_sizes is not None:
            steps, rows, batch = batch_sizes.shape[0], x.shape[0], packed_batch(hx)
        elif x.ndim == 2:
            steps = rows = x.shape[0]
        else:
            steps, rows = (x.shape[1] if batch_first else x.shape[0]), x.shape[0] * x.shape[1]
        stages = rnn_stages(kind, steps, rows, x, flat, has_biases, num_layers, bidirectional,
                            batch)
        out = []
        for stage, cell in zip(stages, params, strict=True):
            extra = 0
            if cell.dynamic:
                width_in, width_h = cell.w_ih.weight.shape[1], cell.w_hh.weight.shape[1]
                gates = GATES[kind] * cell.w_hh.weight.shape[1]
                extra = rows * ((CHOOSE_QPARAMS + QUANTIZE) * (width_in + width_h)
                                + 2 * RESCALE * gates)
            reads = stage.reads or ()
            out.append(replace(stage, elementwise=stage.elementwise + extra,
                               reads=(*reads[:len(reads) - len(stage.weights or ())],
                                      *cell.tensors),
                               weights=cell.tensors))
        return out

    return formula


register("quantized_lstm", op_class="recurrent")(_recurrent("lstm"))
register("quantized_gru", op_class="recurrent")(_recurrent("gru"))
