"""Backward operators of a training step, with the forward conventions.

Matrix products in a backward are plain ``mm``/``bmm``/``addmm`` and use the forward formulas
(a linear layer's backward is one product for the input gradient and one for the weight
gradient: 2x its forward MACs, 1x when either is not needed). Fused backward kernels:

* ``convolution_backward``: the forward MACs once per gradient asked for (input, weight); the
  bias gradient sums the output gradient (1 per element).
* LSTM (``mkldnn_rnn_layer_backward``): 2x the forward MACs (input and weight gradients of
  both projections); per step and row 23H elementwise (output-gate, cell, input-gate,
  forget-gate and candidate derivatives: 5 + 1 + 4 + 4 + 4 + 4 + 1) and 4H for the bias
  gradient.
* SDPA (flash/efficient backward): recomputes the scores (``L*S*E``), then ``dV = P^T dO``,
  ``dP = dO V^T``, ``dQ = dS K``, ``dK = dS^T Q``: MACs ``BH*L*S*(3E + 2Ev)``; elementwise:
  scaling q and k (``numel(q) + numel(k)``) and the gradients of both (the same again),
  ``P = exp(S - lse)`` 2 per score, ``D = rowsum(dO * O)`` 2 per output element,
  ``dS = P * (dP - D)`` 2 per score, +1 per score with a mask, +2 per score with dropout.
* Normalisation (``native_layer_norm_backward`` and friends), per element: recomputing
  ``x_hat`` 2, input gradient 8 (``g*w`` 1, two row sums 1 + 2, ``r*(g' - mean - x_hat*mean')``
  4; 7 without weight), weight gradient 2, bias gradient 1; an eval-mode batch norm's input
  gradient is ``g * (w * r)``: 1.

Pointwise backward costs are in :data:`BACKWARD_PER_ELEMENT` (per element of the gradient).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..costs import TensorMeta, Work
from ..registry import FormulaFn, register
from .convolution import conv_work
from .elementwise import kind_of, per_element
from .pooling import INTERPOLATION, adaptive_pool_work, window_area
from .recurrent import _MKLDNN_MODES, _steps_rows, stage_work

#: ``{aten backward operator: (FLOPs per gradient element, formula)}``, with the forward
#: table's convention: each ``+ - x /``, compare and transcendental is 1, a select is free.
BACKWARD_PER_ELEMENT: dict[str, tuple[int, str]] = {
    "threshold_backward": (1, "x > t ? g : 0"),
    "hardtanh_backward": (2, "lo < x < hi ? g : 0"),
    "leaky_relu_backward": (2, "x > 0 ? g : a*g"),
    "sigmoid_backward": (3, "g * y * (1 - y)"),
    "tanh_backward": (3, "g * (1 - y*y)"),
    "silu_backward": (9, "g * s * (1 + x*(1 - s)), s = sigmoid(x) (4)"),
    "hardsigmoid_backward": (3, "-3 < x < 3 ? g/6 : 0"),
    "hardswish_backward": (6, "x < -3 ? 0 : x <= 3 ? g*(2x + 3)/6 : g"),
    "elu_backward": (3, "x > 0 ? g : g*(y + a)"),
    "softplus_backward": (5, "g * sigmoid(x)"),
    "_softmax_backward_data": (4, "y * (g - sum(g*y))"),
    "_log_softmax_backward_data": (4, "g - exp(y) * sum(g)"),
    "native_dropout_backward": (2, "g * mask * scale"),
    "mse_loss_backward": (3, "2 * (x - t) * g / N"),
}


for _name, (_cost, _) in BACKWARD_PER_ELEMENT.items():
    register(_name, op_class="elementwise")(per_element(_cost, kind_of(_name)))


@register("gelu_backward", op_class="elementwise")
def gelu_backward(approximate: str = "none", *, result: TensorMeta, **_: object) -> Work:
    # exact: g * (Phi(x) + x*phi(x)): Phi 4 (div, erf, add, mul), phi 4 (mul, mul, exp, mul),
    # x*phi 1, add 1, *g 1 = 11; tanh approximation: 18 (its derivative term by term)
    return Work(elementwise=(18 if approximate == "tanh" else 11) * result.numel)


@register("convolution_backward", op_class="conv")
def convolution_backward(grad_output: TensorMeta, input: TensorMeta, weight: TensorMeta,
                         transposed: bool, groups: int, output_mask: Sequence[bool],
                         **_: object) -> Work:
    forward = conv_work(input, weight, False, transposed, groups, grad_output)
    products = bool(output_mask[0]) + bool(output_mask[1])
    return Work(macs=products * forward.macs,
                elementwise=grad_output.numel if output_mask[2] else 0,
                op_class=forward.op_class)


NORM_XHAT, NORM_DX, NORM_DX_NO_WEIGHT, NORM_DW, NORM_DB = 2, 8, 7, 2, 1


def norm_backward_work(x: TensorMeta, weight: object, mask: Sequence[bool],
                       statistics: bool = True) -> Work:
    """Per-element backward of a mean/variance normalisation (see the module docstring)."""
    dx, dw, db = (bool(m) for m in mask)
    per = 0
    if dx:
        per += (NORM_DX if weight is not None else NORM_DX_NO_WEIGHT) if statistics else 1
    if (dx and statistics) or dw:
        per += NORM_XHAT
    per += NORM_DW * dw + NORM_DB * db
    return Work(elementwise=per * x.numel, op_class="norm")


@register("native_layer_norm_backward", "native_group_norm_backward", op_class="norm")
def layer_group_norm_backward(input: TensorMeta, weight: TensorMeta | None,
                              output_mask: Sequence[bool], **_: object) -> Work:
    return norm_backward_work(input, weight, output_mask)


@register("native_batch_norm_backward", op_class="norm")
def batch_norm_backward(input: TensorMeta, weight: TensorMeta | None, train: bool,
                        output_mask: Sequence[bool], **_: object) -> Work:
    return norm_backward_work(input, weight, output_mask, statistics=train)


@register("batch_norm_backward", op_class="norm")
def batch_norm_backward_update(input: TensorMeta, weight: TensorMeta | None, update: bool,
                               output_mask: Sequence[bool], **_: object) -> Work:
    return norm_backward_work(input, weight, output_mask, statistics=update)


@register("embedding_dense_backward", op_class="data")
def embedding_backward(grad_output: TensorMeta, **_: object) -> Work:
    # every gathered row's gradient is added into the dense weight gradient
    return Work(elementwise=grad_output.numel)


@register("max_pool2d_with_indices_backward", "max_pool3d_with_indices_backward",
          op_class="pooling")
def max_pool_backward(grad_output: TensorMeta, **_: object) -> Work:
    # one scatter-add per output gradient
    return Work(elementwise=grad_output.numel)


def _avg_pool_backward(rank: int) -> FormulaFn:
    def formula(grad_output: TensorMeta, kernel_size: int | Sequence[int],
                **_: object) -> Work:
        # every output gradient is spread over its window
        return Work(elementwise=grad_output.numel * window_area(kernel_size, rank))

    return formula


for _rank in (2, 3):
    register(f"avg_pool{_rank}d_backward", op_class="pooling")(_avg_pool_backward(_rank))


def _adaptive_avg_pool_backward(rank: int) -> FormulaFn:
    def formula(grad_output: TensorMeta, self: TensorMeta, **_: object) -> Work:
        # the forward's exact windows: input ``self``, output the gradient's spatial shape
        return adaptive_pool_work(self, grad_output.shape[-rank:])

    return formula


for _rank in (2, 3):
    register(f"_adaptive_avg_pool{_rank}d_backward",
             op_class="pooling")(_adaptive_avg_pool_backward(_rank))


def _upsample_backward(per_output: int) -> FormulaFn:
    def formula(grad_output: TensorMeta, **_: object) -> Work:
        # every output gradient is added back into its taps: one add per tap for nearest,
        # a multiply and an add per tap for the linear family
        taps = 1 if per_output == 0 else (per_output + 1) // 2
        return Work(elementwise=grad_output.numel * (1 if per_output == 0 else 2 * taps))

    return formula


for _name, _per in INTERPOLATION.items():
    register(_name + "_backward", op_class="elementwise")(_upsample_backward(_per))


def sdpa_backward_work(q: TensorMeta, k: TensorMeta, v: TensorMeta, out: TensorMeta,
                       masked: bool, dropout_p: float) -> Work:
    batch_heads = math.prod(q.shape[:-2])
    length, dim = q.shape[-2], q.shape[-1]
    source, dim_v = k.shape[-2], v.shape[-1]
    scores = batch_heads * length * source
    scaled = q.numel + batch_heads * source * dim
    elementwise = 2 * scaled + 2 * scores + 2 * out.numel + 2 * scores
    elementwise += scores if masked else 0
    elementwise += 2 * scores if dropout_p > 0 else 0
    return Work(macs=scores * (3 * dim + 2 * dim_v), elementwise=elementwise,
                op_class="attention")


@register("_scaled_dot_product_flash_attention_for_cpu_backward",
          "_scaled_dot_product_flash_attention_backward",
          "_scaled_dot_product_efficient_attention_backward",
          "_scaled_dot_product_cudnn_attention_backward", op_class="attention")
def sdpa_backward(query: TensorMeta, key: TensorMeta, value: TensorMeta, out: TensorMeta,
                  dropout_p: float, is_causal: bool, attn_mask: TensorMeta | None = None,
                  attn_bias: TensorMeta | None = None, **_: object) -> Work:
    # ``out`` is the forward's output (an input here); the mask is attn_mask on CPU,
    # attn_bias in the GPU kernels (none in flash)
    masked = is_causal or attn_mask is not None or attn_bias is not None
    return sdpa_backward_work(query, key, value, out, masked, dropout_p)


@register("mkldnn_rnn_layer_backward", op_class="recurrent")
def mkldnn_rnn_layer_backward(input: TensorMeta, weight1: TensorMeta, weight2: TensorMeta,
                              weight3: TensorMeta, weight4: TensorMeta, mode: int,
                              hidden_size: int, has_biases: bool, **_: object) -> Work:
    kind = _MKLDNN_MODES[int(mode)]
    steps, rows = _steps_rows(input, batch_first=False)  # time-major, as in the forward layer
    weights = [weight1, weight2, weight3, weight4] if has_biases else [weight1, weight2]
    forward = stage_work(kind, steps, rows, input, weights, has_biases, "backward")
    per_row = (23 + (4 if has_biases else 0)) * hidden_size
    return Work(macs=2 * forward.macs, elementwise=rows * per_row, op_class="recurrent",
                steps=steps, step_reads=forward.step_reads)


@register("nll_loss_forward", op_class="elementwise")
def nll_loss_forward(target: TensorMeta, **_: object) -> Work:
    # picks one log-probability per row and averages: 1 per row
    return Work(elementwise=target.numel)


@register("nll_loss_backward", op_class="elementwise")
def nll_loss_backward(target: TensorMeta, **_: object) -> Work:
    # writes a zero gradient and scatters -g/N into one element per row
    return Work(elementwise=target.numel)


@register("mse_loss", op_class="elementwise")
def mse_loss(self: TensorMeta, **_: object) -> Work:
    # (x - t)^2 summed: subtract, square, add
    return Work(elementwise=3 * self.numel)
