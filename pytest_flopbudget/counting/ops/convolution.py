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
              out: TensorMeta, stride: object = 1, dilation: object = 1) -> Work:
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
    c_out = out.shape[1] if batched else out.shape[0]
    return Work(
        macs=macs,
        elementwise=out.numel if bias else 0,
        op_class="depthwise_conv" if depthwise else "conv",
        kind=conv_kind(spatial, depthwise, transposed, w.shape[2:],
                       _all_one(stride) and _all_one(dilation)),
        mac_dims=(c_in // groups, c_out),
    )


def conv_kind(spatial: int, depthwise: bool, transposed: bool, kernel: tuple[int, ...],
              unit_stride: bool = False) -> str:
    """The kernel family a convolution runs in (``core.op_classes.KINDS``): depthwise by rank,
    transposed, 1x1 ("pointwise", a matrix product), 3x3 with unit stride and dilation
    (what CPU and GPU runtimes run as Winograd), or dense by rank."""
    if depthwise:
        return f"depthwise_conv{spatial}d"
    if transposed:
        return "transposed_conv"
    if all(k == 1 for k in kernel):
        return "pointwise_conv"
    if spatial == 2 and tuple(kernel) == (3, 3) and unit_stride:
        return "conv3x3"
    return f"conv{spatial}d"


def _all_one(value: object) -> bool:
    values = value if isinstance(value, (list, tuple)) else [value]
    return all(int(v) == 1 for v in values)  # type: ignore[arg-type]


@register("convolution", "_convolution", op_class="conv")
def convolution(input: TensorMeta, weight: TensorMeta, bias: TensorMeta | None,
                transposed: bool, groups: int, stride: object, dilation: object, *,
                result: TensorMeta, **_: object) -> Work:
    return conv_work(input, weight, bias is not None, transposed, groups, result, stride,
                     dilation)


@register("conv1d", "conv2d", "conv3d", op_class="conv")
def conv_nd(input: TensorMeta, weight: TensorMeta, bias: TensorMeta | None, groups: int,
            stride: object, dilation: object, *, result: TensorMeta, **_: object) -> Work:
    return conv_work(input, weight, bias is not None, False, groups, result, stride, dilation)


@register("conv_transpose1d", "conv_transpose2d", "conv_transpose3d", op_class="conv")
def conv_transpose_nd(input: TensorMeta, weight: TensorMeta, bias: TensorMeta | None,
                      groups: int, *, result: TensorMeta, **_: object) -> Work:
    return conv_work(input, weight, bias is not None, True, groups, result)


@register("mkldnn_convolution", op_class="conv")
def mkldnn_convolution(self: TensorMeta, weight: TensorMeta, bias: TensorMeta | None,
                       groups: int, stride: object, dilation: object, *, result: TensorMeta,
                       **_: object) -> Work:
    return conv_work(self, weight, bias is not None, False, groups, result, stride, dilation)


@register("_conv_depthwise2d", op_class="depthwise_conv")
def conv_depthwise2d(self: TensorMeta, weight: TensorMeta, bias: TensorMeta | None, *,
                     result: TensorMeta, **_: object) -> Work:
    c_in = self.shape[1]
    return conv_work(self, weight, bias is not None, False, c_in, result)
