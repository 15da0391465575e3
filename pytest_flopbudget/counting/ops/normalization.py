"""Batch, layer, group, instance and RMS normalisation.

Per element of the input: computing mean and variance costs 4 FLOPs (mean: add; variance:
subtract, square, add), normalising costs 2 (subtract the mean, multiply by 1/std), and the
affine weight and bias 1 each. RMSNorm's statistic costs 2 (square, add) and normalising 1
(multiply by 1/rms). Per-channel or per-row scalar work (the division of a sum, ``+ eps``, the
``rsqrt``, a running-statistics update) is not counted: it does not grow with the feature map.

==================  ============================  =================
operator            statistics computed when      FLOPs per element
==================  ============================  =================
batch_norm          training                      2 (+4) (+1 w) (+1 b)
layer_norm          always                        6 (+1 w) (+1 b)
group_norm          always                        6 (+1 w) (+1 b)
instance_norm       use_input_stats               2 (+4) (+1 w) (+1 b)
rms_norm            always                        3 (+1 w)
==================  ============================  =================
"""

from __future__ import annotations

from ..costs import TensorMeta, Work
from ..registry import register

NORMALIZE = 2
STATISTICS = 4
RMS_NORMALIZE = 1
RMS_STATISTICS = 2


def norm_work(x: TensorMeta, stats: bool, weight: object, bias: object,
              per_channel: bool = False) -> Work:
    """Work of a mean/variance normalisation of ``x``; ``per_channel``: with fixed per-channel
    statistics (eval-mode batch norm) it is a per-channel scale and shift, kind
    ``"channel_affine"``, which a compiling runtime folds into the product before it."""
    per = NORMALIZE + (STATISTICS if stats else 0)
    per += (weight is not None) + (bias is not None)
    return Work(elementwise=per * x.numel, kind="channel_affine" if per_channel and not stats
                else "")


@register("batch_norm", "native_batch_norm", "_native_batch_norm_legit", "cudnn_batch_norm",
          "miopen_batch_norm", op_class="norm")
def batch_norm(input: TensorMeta, weight: TensorMeta | None, bias: TensorMeta | None,
               training: bool, **_: object) -> Work:
    # statistics are computed in training; every overload of these operators (with or without
    # running statistics) names the flag ``training``
    return norm_work(input, training, weight, bias, per_channel=True)


@register("_native_batch_norm_legit_no_training", "_batch_norm_no_update", op_class="norm")
def batch_norm_eval(input: TensorMeta, weight: TensorMeta | None, bias: TensorMeta | None,
                    **_: object) -> Work:
    return norm_work(input, False, weight, bias, per_channel=True)


@register("_batch_norm_with_update", op_class="norm")
def batch_norm_train(input: TensorMeta, weight: TensorMeta | None, bias: TensorMeta | None,
                     **_: object) -> Work:
    return norm_work(input, True, weight, bias)


@register("layer_norm", "native_layer_norm", "group_norm", "native_group_norm", op_class="norm")
def layer_group_norm(input: TensorMeta, weight: TensorMeta | None, bias: TensorMeta | None,
                     **_: object) -> Work:
    return norm_work(input, True, weight, bias)


@register("instance_norm", op_class="norm")
def instance_norm(input: TensorMeta, weight: TensorMeta | None, bias: TensorMeta | None,
                  use_input_stats: bool, **_: object) -> Work:
    return norm_work(input, use_input_stats, weight, bias)


@register("rms_norm", "_fused_rms_norm", op_class="norm")
def rms_norm(input: TensorMeta, weight: TensorMeta | None, **_: object) -> Work:
    per = RMS_STATISTICS + RMS_NORMALIZE + (weight is not None)
    return Work(elementwise=per * input.numel)


WEIGHT_NORM = 3  # ||v||: square, add; v * (g / ||v||): mul


@register("_weight_norm_interface", op_class="norm")
def weight_norm(v: TensorMeta, **_: object) -> Work:
    # per element of v: square and add for the norm (2), the scaling by g / norm (1)
    return Work(elementwise=WEIGHT_NORM * v.numel)
