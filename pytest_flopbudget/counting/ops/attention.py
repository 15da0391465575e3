"""Attention: scaled_dot_product_attention in all its kernels, and the fused fast paths of
``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer``.

Every SDPA kernel (flash, efficient, cuDNN, CPU flash) is counted as ATen's math reference
(``_scaled_dot_product_attention_math``), so the count never depends on which kernel ran. One
formula serves them all: it reads the mask (``attn_mask``, or ``attn_bias`` in the GPU
kernels), ``dropout_p`` and ``is_causal`` by name, wherever each kernel's schema puts them.

* MACs: ``BH * L * S * (E + Ev)`` (scores ``q @ k^T`` and values ``P @ v``);
* scaling ``q`` and ``k`` by ``sqrt(scale)``: ``numel(q) + numel(k)`` FLOPs;
* a mask (``is_causal`` or ``attn_mask``): one add per score; turning a boolean mask into an
  additive one is a select per mask element, and a select is free (the elementwise table's
  convention: ``where`` costs 0);
* softmax: 5 per score; dropout (``dropout_p > 0``): 2 per score.

A fused kernel reads ``q``, ``k``, ``v`` (and the mask) and writes the output: the score
matrix is never stored, which is what the fusion buys.

The fused fast paths are counted as the slow path they replace, op by op, with the same
formulas (their FLOPs and MACs equal the slow path's exactly; a test checks it).
"""

from __future__ import annotations

import math

from ..costs import TensorMeta, Work
from ..registry import register
from .elementwise import GELU, RELU, SOFTMAX
from .linear_algebra import linear
from .normalization import norm_work


def sdpa_work(q: TensorMeta, k: TensorMeta, v: TensorMeta, mask: TensorMeta | None,
              dropout_p: float, is_causal: bool) -> Work:
    """Work and traffic of one scaled-dot-product attention, counted as the math reference."""
    batch_heads = math.prod(q.shape[:-2])
    length, dim = q.shape[-2], q.shape[-1]
    source, dim_v = k.shape[-2], v.shape[-1]
    scores = batch_heads * length * source
    macs = scores * (dim + dim_v)
    # sqrt(scale) is applied to q and to k (after GQA repetition, k has one copy per q head)
    elementwise = q.numel + batch_heads * source * dim
    if is_causal or mask is not None:
        elementwise += scores
    elementwise += SOFTMAX * scores
    if dropout_p > 0:
        elementwise += 2 * scores
    out = TensorMeta((*q.shape[:-1], dim_v), q.dtype)
    reads = (q, k, v) if mask is None else (q, k, v, mask)
    return Work(macs=macs, elementwise=elementwise, op_class="attention", reads=reads,
                writes=(out,))


@register("scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
          "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
          "_scaled_dot_product_cudnn_attention",
          "_scaled_dot_product_fused_attention_overrideable", op_class="attention")
def sdpa(query: TensorMeta, key: TensorMeta, value: TensorMeta,
         attn_mask: TensorMeta | None = None, attn_bias: TensorMeta | None = None,
         dropout_p: float = 0.0, is_causal: bool = False, **_: object) -> Work:
    # the composite and the CPU flash kernel call the mask attn_mask, the GPU kernels
    # attn_bias (the flash kernel takes none)
    mask = attn_mask if attn_mask is not None else attn_bias
    return sdpa_work(query, key, value, mask, dropout_p, bool(is_causal))


def _combine(stages: list[Work], op_class: str = "attention") -> Work:
    """One Work that costs what ``stages`` cost together, each stage's traffic included; its
    ``rows`` are those of its first linear (the in-projection's: batch x query tokens), over
    which its products spread their fixed cost per call, as a linear's do (none for one
    token: matrix-vector products)."""
    rows = next((s.rows for s in stages if s.weight_rows), 0)
    reads: list[TensorMeta] = []
    writes: list[TensorMeta] = []
    for s in stages:
        reads.extend(s.reads or ())
        writes.extend(s.writes or ())
    return Work(
        macs=sum(s.macs for s in stages),
        elementwise=sum(s.elementwise for s in stages),
        op_class=op_class,
        reads=tuple(reads),
        writes=tuple(writes),
        weight_rows=sum(s.weight_rows for s in stages),
        rows=rows if rows > 1 else 0,
    )


def _linear_stage(x: TensorMeta, w: TensorMeta, b: TensorMeta | None) -> Work:
    out = TensorMeta((*x.shape[:-1], w.shape[0]), x.dtype)
    work = linear(input=x, weight=w, bias=b)
    reads = (x, w) if b is None else (x, w, b)
    return Work(macs=work.macs, elementwise=work.elementwise, reads=reads, writes=(out,),
                weight_rows=work.weight_rows, rows=work.rows)


def _pointwise_stage(per_element: int, *tensors: TensorMeta) -> Work:
    out = tensors[0]
    return Work(elementwise=per_element * out.numel, reads=tensors, writes=(out,))


def mha_stages(q: TensorMeta, k: TensorMeta, v: TensorMeta, num_heads: int,
               qkv_w: TensorMeta, qkv_b: TensorMeta | None, proj_w: TensorMeta,
               proj_b: TensorMeta | None, mask: TensorMeta | None, need_weights: bool,
               average_weights: bool) -> list[Work]:
    """The slow path of ``nn.MultiheadAttention`` (batch first), stage by stage."""
    batch, length, embed = q.shape
    source = k.shape[1]
    head_dim = embed // num_heads
    dt = q.dtype
    w_e = TensorMeta((embed, embed), qkv_w.dtype)
    b_e = None if qkv_b is None else TensorMeta((embed,), qkv_b.dtype)
    if length == source and q == k == v:
        stages = [_linear_stage(q, qkv_w, qkv_b)]  # packed in-projection
    else:
        stages = [_linear_stage(x, w_e, b_e) for x in (q, k, v)]
    heads_q = TensorMeta((batch, num_heads, length, head_dim), dt)
    heads_k = TensorMeta((batch, num_heads, source, head_dim), dt)
    if need_weights:
        scores = TensorMeta((batch * num_heads, length, source), dt)
        stages.append(_pointwise_stage(1, heads_q))  # q * sqrt(1 / head_dim)
        macs = batch * num_heads * length * source * head_dim
        mask_add = scores.numel if mask is not None else 0
        stages.append(Work(macs=macs, elementwise=mask_add, reads=(heads_q, heads_k),
                           writes=(scores,)))
        stages.append(_pointwise_stage(SOFTMAX, scores))
        stages.append(Work(macs=macs, reads=(scores, heads_k), writes=(heads_q,)))
        if average_weights:
            averaged = TensorMeta((batch, length, source), dt)
            stages.append(Work(elementwise=scores.numel, reads=(scores,), writes=(averaged,)))
    else:
        stages.append(sdpa_work(heads_q, heads_k, heads_k, mask, 0.0, False))
    stages.append(_linear_stage(TensorMeta((batch, length, embed), dt), proj_w, proj_b))
    return stages


@register("_native_multi_head_attention", op_class="attention")
def native_mha(query: TensorMeta, key: TensorMeta, value: TensorMeta, num_head: int,
               qkv_weight: TensorMeta, qkv_bias: TensorMeta | None, proj_weight: TensorMeta,
               proj_bias: TensorMeta | None, mask: TensorMeta | None = None,
               need_weights: bool = True, average_attn_weights: bool = True,
               **_: object) -> Work:
    return _combine(mha_stages(query, key, value, num_head, qkv_weight, qkv_bias, proj_weight,
                               proj_bias, mask, bool(need_weights), bool(average_attn_weights)))


@register("_transformer_encoder_layer_fwd", op_class="attention")
def transformer_encoder_layer(src: TensorMeta, num_heads: int, qkv_weight: TensorMeta,
                              qkv_bias: TensorMeta | None, proj_weight: TensorMeta,
                              proj_bias: TensorMeta | None, use_gelu: bool,
                              norm_weight_1: TensorMeta | None, norm_bias_1: TensorMeta | None,
                              norm_weight_2: TensorMeta | None, norm_bias_2: TensorMeta | None,
                              ffn_weight_1: TensorMeta, ffn_bias_1: TensorMeta | None,
                              ffn_weight_2: TensorMeta, ffn_bias_2: TensorMeta | None,
                              mask: TensorMeta | None = None, **_: object) -> Work:
    """The slow path of ``nn.TransformerEncoderLayer`` (batch first, self-attention)."""
    x = src
    ln1 = norm_work(x, True, norm_weight_1, norm_bias_1)
    ln2 = norm_work(x, True, norm_weight_2, norm_bias_2)
    norm1 = Work(elementwise=ln1.elementwise, reads=(x,), writes=(x,))
    norm2 = Work(elementwise=ln2.elementwise, reads=(x,), writes=(x,))
    attention = mha_stages(x, x, x, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias,
                           mask, False, False)
    residual = _pointwise_stage(1, x, x)
    hidden = TensorMeta((*x.shape[:-1], ffn_weight_1.shape[0]), x.dtype)
    activation = _pointwise_stage(GELU if use_gelu else RELU, hidden)
    feed_forward = [_linear_stage(x, ffn_weight_1, ffn_bias_1), activation,
                    _linear_stage(hidden, ffn_weight_2, ffn_bias_2)]
    stages = [*attention, residual, norm1, *feed_forward, residual, norm2]
    return _combine(stages)
