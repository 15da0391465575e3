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


def norm_work(x: TensorMeta, stats: bool, weight: object, bias: object) -> Work:
    """Work of a mean/variance normalisation of ``x``."""
    per = NORMALIZE + (STATISTICS if stats else 0)
    per += (weight is not None) + (bias is not None)
    return Work(elementwise=per * x.numel)


def _first_bool(args: tuple[object, ...]) -> bool:
    for a in args:
        if isinstance(a, bool):
            return a
    raise ValueError("batch norm call without a training flag")


@register("batch_norm", "native_batch_norm", "_native_batch_norm_legit", "cudnn_batch_norm",
          "miopen_batch_norm", op_class="norm")
def batch_norm(x: TensorMeta, weight: object = None, bias: object = None, *args: object,
               out: object) -> Work:
    # The overloads differ in whether running statistics are passed; ``training`` is the first
    # bool argument in all of them.
    return norm_work(x, _first_bool(args), weight, bias)


@register("_native_batch_norm_legit_no_training", "_batch_norm_no_update", op_class="norm")
def batch_norm_eval(x: TensorMeta, weight: object = None, bias: object = None, *args: object,
                    out: object) -> Work:
    return norm_work(x, False, weight, bias)


@register("_batch_norm_with_update", op_class="norm")
def batch_norm_train(x: TensorMeta, weight: object = None, bias: object = None, *args: object,
                     out: object) -> Work:
    return norm_work(x, True, weight, bias)


@register("layer_norm", "native_layer_norm", op_class="norm")
def layer_norm(x: TensorMeta, normalized_shape: object, weight: object = None,
               bias: object = None, *args: object, out: object) -> Work:
    return norm_work(x, True, weight, bias)


@register("group_norm", op_class="norm")
def group_norm(x: TensorMeta, num_groups: int, weight: object = None, bias: object = None,
               *args: object, out: object) -> Work:
    return norm_work(x, True, weight, bias)


@register("native_group_norm", op_class="norm")
def native_group_norm(x: TensorMeta, weight: object, bias: object, *args: object,
                      out: object) -> Work:
    return norm_work(x, True, weight, bias)


@register("instance_norm", op_class="norm")
def instance_norm(x: TensorMeta, weight: object = None, bias: object = None,
                  running_mean: object = None, running_var: object = None,
                  use_input_stats: bool = True, *args: object, out: object) -> Work:
    return norm_work(x, bool(use_input_stats), weight, bias)


@register("rms_norm", "_fused_rms_norm", op_class="norm")
def rms_norm(x: TensorMeta, normalized_shape: object, weight: object = None, *args: object,
             out: object) -> Work:
    per = RMS_STATISTICS + RMS_NORMALIZE + (weight is not None)
    return Work(elementwise=per * x.numel)
