"""Convolutions of every rank, strided, dilated, grouped, depthwise and transposed.

A convolution producing ``N x C_out x (out spatial)`` with a ``C_out x C_in/groups x K...``
kernel does ``N * prod(out spatial) * C_out * C_in/groups * prod(K)`` MACs (seed 000/004:
``M^2 K^2 C_in C_out`` for one square image). A transposed convolution runs the kernel over the
*input* positions instead: ``N * prod(in spatial) * C_in * C_out/groups * prod(K)``. The bias
adds one FLOP per output element. Padding positions are multiplied like any other, the common
convention.
"""

from __future__ import annotations

import math

from ..costs import TensorMeta, Work
from ..registry import register


def conv_work(x: TensorMeta, w: TensorMeta, bias: bool, transposed: bool, groups: int,
              out: TensorMeta) -> Work:
    """Work of one convolution from its input, weight and output shapes."""
    spatial = w.ndim - 2
    batched = x.ndim == spatial + 2
    batch = x.shape[0] if batched else 1
    c_in = x.shape[1] if batched else x.shape[0]
    out_spatial = out.shape[-spatial:] if spatial else ()
    in_spatial = x.shape[-spatial:] if spatial else ()
    positions = math.prod(in_spatial) if transposed else math.prod(out_spatial)
    # w.numel is C_out * C_in/groups * prod(K) (or C_in * C_out/groups * prod(K) transposed):
    # the MACs one position costs.
    macs = batch * positions * w.numel
    depthwise = groups > 1 and groups == c_in and not transposed
    return Work(
        macs=macs,
        elementwise=out.numel if bias else 0,
        op_class="depthwise_conv" if depthwise else "conv",
    )


@register("convolution", "_convolution", op_class="conv")
def convolution(x: TensorMeta, w: TensorMeta, b: TensorMeta | None, stride: object,
                padding: object, dilation: object, transposed: bool, output_padding: object,
                groups: int, *args: object, out: TensorMeta) -> Work:
    return conv_work(x, w, b is not None, bool(transposed), int(groups), out)


@register("conv1d", "conv2d", "conv3d", op_class="conv")
def conv_nd(x: TensorMeta, w: TensorMeta, b: TensorMeta | None = None, stride: object = 1,
            padding: object = 0, dilation: object = 1, groups: int = 1, *,
            out: TensorMeta) -> Work:
    return conv_work(x, w, b is not None, False, int(groups), out)


@register("conv_transpose1d", "conv_transpose2d", "conv_transpose3d", op_class="conv")
def conv_transpose_nd(x: TensorMeta, w: TensorMeta, b: TensorMeta | None = None,
                      stride: object = 1, padding: object = 0, output_padding: object = 0,
                      groups: int = 1, dilation: object = 1, *, out: TensorMeta) -> Work:
    return conv_work(x, w, b is not None, True, int(groups), out)


@register("mkldnn_convolution", op_class="conv")
def mkldnn_convolution(x: TensorMeta, w: TensorMeta, b: TensorMeta | None, padding: object,
                       stride: object, dilation: object, groups: int, *,
                       out: TensorMeta) -> Work:
    return conv_work(x, w, b is not None, False, int(groups), out)


@register("_conv_depthwise2d", op_class="depthwise_conv")
def conv_depthwise2d(x: TensorMeta, w: TensorMeta, kernel_size: object, b: TensorMeta | None,
                     *args: object, out: TensorMeta) -> Work:
    c_in = x.shape[1]
    return conv_work(x, w, b is not None, False, c_in, out)
