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
from ..registry import register
from .convolution import conv_work
from .elementwise import per_element
from .pooling import INTERPOLATION, _expand, adaptive_window_sum
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
    register(_name, op_class="elementwise")(per_element(_cost))


@register("gelu_backward", op_class="elementwise")
def gelu_backward(grad: TensorMeta, x: TensorMeta, approximate: str = "none", *,
                  out: TensorMeta) -> Work:
    # exact: g * (Phi(x) + x*phi(x)): Phi 4 (div, erf, add, mul), phi 4 (mul, mul, exp, mul),
    # x*phi 1, add 1, *g 1 = 11; tanh approximation: 18 (its derivative term by term)
    return Work(elementwise=(18 if approximate == "tanh" else 11) * out.numel)


@register("convolution_backward", op_class="conv")
def convolution_backward(grad_out: TensorMeta, x: TensorMeta, w: TensorMeta,
                         bias_sizes: object, stride: object, padding: object, dilation: object,
                         transposed: bool, output_padding: object, groups: int,
                         output_mask: Sequence[bool], *, out: object) -> Work:
    forward = conv_work(x, w, False, bool(transposed), int(groups), grad_out)
    products = bool(output_mask[0]) + bool(output_mask[1])
    return Work(macs=products * forward.macs,
                elementwise=grad_out.numel if output_mask[2] else 0,
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


@register("native_layer_norm_backward", op_class="norm")
def layer_norm_backward(grad: TensorMeta, x: TensorMeta, normalized_shape: object,
                        mean: TensorMeta, rstd: TensorMeta, weight: object, bias: object,
                        output_mask: Sequence[bool], *, out: object) -> Work:
    return norm_backward_work(x, weight, output_mask)


@register("native_group_norm_backward", op_class="norm")
def group_norm_backward(grad: TensorMeta, x: TensorMeta, mean: TensorMeta, rstd: TensorMeta,
                        weight: object, n: int, c: int, hxw: int, group: int,
                        output_mask: Sequence[bool], *, out: object) -> Work:
    return norm_backward_work(x, weight, output_mask)


@register("native_batch_norm_backward", op_class="norm")
def batch_norm_backward(grad: TensorMeta, x: TensorMeta, weight: object, running_mean: object,
                        running_var: object, save_mean: object, save_invstd: object,
                        train: bool, eps: float, output_mask: Sequence[bool], *,
                        out: object) -> Work:
    return norm_backward_work(x, weight, output_mask, statistics=bool(train))


@register("batch_norm_backward", op_class="norm")
def batch_norm_backward_update(grad: TensorMeta, x: TensorMeta, weight: object,
                               running_mean: object, running_var: object, save_mean: object,
                               save_var: object, update: bool, eps: float,
                               output_mask: Sequence[bool], *args: object,
                               out: object) -> Work:
    return norm_backward_work(x, weight, output_mask, statistics=bool(update))


@register("embedding_dense_backward", op_class="data")
def embedding_backward(grad: TensorMeta, indices: TensorMeta, *args: object,
                       out: TensorMeta) -> Work:
    # every gathered row's gradient is added into the dense weight gradient
    return Work(elementwise=grad.numel)


def _pool_backward(rank: int):  # type: ignore[no-untyped-def]
    def formula(grad: TensorMeta, x: TensorMeta, kernel_size: object, *args: object,
                out: object) -> Work:
        # max: one scatter-add per output gradient; avg: spread over the window
        return Work(elementwise=grad.numel)

    def avg(grad: TensorMeta, x: TensorMeta, kernel_size: object, *args: object,
            out: object) -> Work:
        return Work(elementwise=grad.numel * math.prod(_expand(kernel_size, rank)))

    return formula, avg


for _rank in (2, 3):
    _max, _avg = _pool_backward(_rank)
    register(f"max_pool{_rank}d_with_indices_backward", op_class="pooling")(_max)
    register(f"avg_pool{_rank}d_backward", op_class="pooling")(_avg)


def _adaptive_backward(rank: int):  # type: ignore[no-untyped-def]
    def formula(grad: TensorMeta, x: TensorMeta, *args: object, out: object) -> Work:
        spatial_in, spatial_out = x.shape[-rank:], grad.shape[-rank:]
        planes = x.numel // math.prod(spatial_in)
        return Work(elementwise=planes * math.prod(
            adaptive_window_sum(i, o) for i, o in zip(spatial_in, spatial_out, strict=True)))

    return formula


for _rank in (2, 3):
    register(f"_adaptive_avg_pool{_rank}d_backward", op_class="pooling")(_adaptive_backward(_rank))


def _upsample_backward(per_output: int):  # type: ignore[no-untyped-def]
    def formula(grad: TensorMeta, *args: object, out: object, **kwargs: object) -> Work:
        # every output gradient is added back into its taps: one add per tap for nearest,
        # a multiply and an add per tap for the linear family
        taps = 1 if per_output == 0 else (per_output + 1) // 2
        return Work(elementwise=grad.numel * (1 if per_output == 0 else 2 * taps))

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


@register("_scaled_dot_product_flash_attention_for_cpu_backward", op_class="attention")
def sdpa_flash_cpu_backward(grad_out: TensorMeta, q: TensorMeta, k: TensorMeta, v: TensorMeta,
                            out_: TensorMeta, logsumexp: TensorMeta, dropout_p: float,
                            is_causal: bool, *, attn_mask: object = None, scale: object = None,
                            out: object) -> Work:
    return sdpa_backward_work(q, k, v, out_, bool(is_causal) or attn_mask is not None,
                              dropout_p)


# The GPU kernels' backwards: the same math, their arguments at their schema positions.
@register("_scaled_dot_product_flash_attention_backward", op_class="attention")
def sdpa_flash_backward(grad_out: TensorMeta, q: TensorMeta, k: TensorMeta, v: TensorMeta,
                        out_: TensorMeta, logsumexp: TensorMeta, cum_seq_q: object,
                        cum_seq_k: object, max_q: int, max_k: int, dropout_p: float,
                        is_causal: bool, *args: object, out: object, **kwargs: object) -> Work:
    return sdpa_backward_work(q, k, v, out_, bool(is_causal), dropout_p)


@register("_scaled_dot_product_efficient_attention_backward", op_class="attention")
def sdpa_efficient_backward(grad_out: TensorMeta, q: TensorMeta, k: TensorMeta, v: TensorMeta,
                            attn_bias: TensorMeta | None, out_: TensorMeta,
                            logsumexp: TensorMeta, philox_seed: object, philox_offset: object,
                            dropout_p: float, grad_input_mask: object, is_causal: bool = False,
                            *, out: object, **kwargs: object) -> Work:
    return sdpa_backward_work(q, k, v, out_, bool(is_causal) or attn_bias is not None,
                              dropout_p)


@register("_scaled_dot_product_cudnn_attention_backward", op_class="attention")
def sdpa_cudnn_backward(grad_out: TensorMeta, q: TensorMeta, k: TensorMeta, v: TensorMeta,
                        out_: TensorMeta, logsumexp: TensorMeta, philox_seed: object,
                        philox_offset: object, attn_bias: TensorMeta | None, cum_seq_q: object,
                        cum_seq_k: object, max_q: int, max_k: int, dropout_p: float,
                        is_causal: bool, *, out: object, **kwargs: object) -> Work:
    return sdpa_backward_work(q, k, v, out_, bool(is_causal) or attn_bias is not None,
                              dropout_p)


@register("mkldnn_rnn_layer_backward", op_class="recurrent")
def mkldnn_rnn_layer_backward(x: TensorMeta, w_ih: TensorMeta, w_hh: TensorMeta,
                              b_ih: TensorMeta, b_hh: TensorMeta, hx: TensorMeta,
                              cx: TensorMeta, output: TensorMeta, hy: TensorMeta,
                              cy: TensorMeta, grad_output: object, grad_hy: object,
                              grad_cy: object, reverse: bool, mode: int, hidden_size: int,
                              num_layers: int, has_biases: bool, train: bool,
                              bidirectional: bool, batch_sizes: object, batch_first: bool,
                              *args: object, out: object) -> Work:
    kind = _MKLDNN_MODES[int(mode)]
    steps, rows = _steps_rows(x, batch_first=False)  # time-major, as in the forward layer
    weights = [w_ih, w_hh, b_ih, b_hh] if has_biases else [w_ih, w_hh]
    forward = stage_work(kind, steps, rows, x, weights, bool(has_biases), "backward")
    hidden = int(hidden_size)
    per_row = (23 + (4 if has_biases else 0)) * hidden
    return Work(macs=2 * forward.macs, elementwise=rows * per_row, op_class="recurrent",
                steps=steps, step_reads=forward.step_reads)


@register("nll_loss_forward", op_class="elementwise")
def nll_loss_forward(x: TensorMeta, target: TensorMeta, *args: object, out: object) -> Work:
    # picks one log-probability per row and averages: 1 per row
    return Work(elementwise=target.numel)


@register("nll_loss_backward", op_class="elementwise")
def nll_loss_backward(grad: TensorMeta, x: TensorMeta, target: TensorMeta, *args: object,
                      out: object) -> Work:
    # writes a zero gradient and scatters -g/N into one element per row
    return Work(elementwise=target.numel)


@register("mse_loss", op_class="elementwise")
def mse_loss(x: TensorMeta, target: TensorMeta, *args: object, out: object) -> Work:
    # (x - t)^2 summed: subtract, square, add
    return Work(elementwise=3 * x.numel)

