"""Convolutions of every rank, strided, dilated, grouped, depthwise and transposed.

A convolution producing ``N x C_out x (out spatial)`` with a ``C_out x C_in/groups x K...``
kernel does ``N * prod(out spatial) * C_out * C_in/groups * prod(K)`` MACs (seed 000/004:
``M^2 K^2 C_in C_out`` for one square image). A transposed convolution runs the kernel over the
*input* positions instead: ``N * prod(in spatial) * C_in * C_out/groups * prod(K)``. The bias
adds one FLOP per output element. Padding positions are multiplied like any other, the common
convention.

Eager PyTorch on a CPU runs some convolutions by *lowering*: it copies the input into a column
matrix (im2col, vol2col for 3-D) of ``N * prod(out spatial) * C_in * prod(K)`` elements and
multiplies the weights by it. Which ones is PyTorch's own choice (``ConvParams::use_mkldnn`` in
``aten/src/ATen/native/ConvUtils.h``: small batch-1 inputs, most 3-D convolutions), asked of
``torch._C._select_conv_backend`` on fake tensors of the same shapes
(:func:`pytorch_backend`); the size of that matrix is recorded as ``Work.lowered``. Others,
transposed ones too, it runs through oneDNN (``mkldnn_convolution``; a transposed one through
oneDNN's deconvolution, which has no aten operator of its own), whose every call pays a fixed
cost of its own (44-56 us a call here for 5x5, 7x7 and depthwise 3x3 kernels, against 10-15 us
for a tiny 3x3 on PyTorch's own path; what oneDNN spends it on was not measured apart); such a
convolution records ``Work.runs_as = "aten.mkldnn_convolution"``, which a device's tables may
price. A 1x1 kernel oneDNN runs costs what a matrix product does (7-11 us a call for a tiny
one) and is not marked; nor is the rest (PyTorch's own paths).
"""

from __future__ import annotations

import functools
import math

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from ..costs import TensorMeta, Work
from ..registry import register

#: PyTorch's CPU convolution backends that lower the input to a column matrix.
LOWERING_BACKENDS = frozenset({"Slow2d", "Slow3d", "SlowDilated2d", "SlowDilated3d"})
#: PyTorch's CPU convolution backends that run oneDNN (``mkldnn_convolution``, and its
#: deconvolution for a transposed one).
ONEDNN_BACKENDS = frozenset({"Mkldnn", "MkldnnTranspose"})
#: What a convolution on that backend records as ``Work.runs_as``.
ONEDNN_OP = "aten.mkldnn_convolution"


def conv_work(x: TensorMeta, w: TensorMeta, bias: bool, transposed: bool, groups: int,
              out: TensorMeta, stride: object = 1, dilation: object = 1,
              padding: object = 0, lowerable: bool = False,
              output_padding: object = 0) -> Work:
    """Work of one convolution from its input, weight and output shapes (``lowerable``: an
    operator whose backend PyTorch still chooses, ``convolution``, ``conv2d`` or
    ``conv_transpose2d``, not one that names it, ``mkldnn_convolution``)."""
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
    backend = pytorch_backend(x, w, transposed, groups, stride, dilation, padding,
                              output_padding) if lowerable else ""
    return Work(
        macs=macs,
        elementwise=out.numel if bias else 0,
        op_class="depthwise_conv" if depthwise else "conv",
        kind=conv_kind(spatial, depthwise, transposed, w.shape[2:],
                       _all_one(stride) and _all_one(dilation)),
        mac_dims=(c_in // groups, c_out),
        lowered=macs * groups // c_out if c_out and _lowers(backend, w, groups, stride,
                                                             padding) else 0,
        rows=batch * positions,
        runs_as=ONEDNN_OP if backend in ONEDNN_BACKENDS and not _all_one(w.shape[2:]) else "",
    )


def _ints(value: object, n: int) -> tuple[int, ...]:
    values = value if isinstance(value, (list, tuple)) else [value] * n
    out = tuple(int(v) for v in values)  # type: ignore[arg-type]
    return out * n if len(out) == 1 else out


def _lowers(backend: str, w: TensorMeta, groups: int, stride: object, padding: object) -> bool:
    """Whether a convolution on ``backend`` writes a column matrix (:data:`LOWERING_BACKENDS`);
    a 1x1 kernel at stride 1 without padding (and one group) needs none: PyTorch's slow
    path multiplies a view of the input (``ConvolutionMM2d.cpp``, ``ConvolutionMM3d.cpp``)."""
    unit = _all_one(w.shape[2:]) and _all_one(stride) and groups == 1 and \
        (padding in ("valid", "same") or not any(_ints(padding, w.ndim - 2)))
    return backend in LOWERING_BACKENDS and not unit


def pytorch_backend(x: TensorMeta, w: TensorMeta, transposed: bool, groups: int,
                    stride: object, dilation: object, padding: object,
                    output_padding: object = 0) -> str:
    """The backend eager PyTorch on this CPU runs this convolution on (the name of its
    ``ConvBackend``: ``"Mkldnn"``, ``"MkldnnTranspose"``, ``"Slow2d"``,
    ``"SlowTranspose2d"``...), as its own choice (``ConvParams::use_mkldnn`` in
    ``aten/src/ATen/native/ConvUtils.h``) says for contiguous CPU tensors of these shapes and
    dtypes at its current number of threads and oneDNN setting; ``""`` for an unbatched or
    quantized one (not asked) or shapes PyTorch itself rejects."""
    spatial = w.ndim - 2
    if spatial not in (1, 2, 3) or x.ndim != spatial + 2 \
            or not x.dtype.is_floating_point or not w.dtype.is_floating_point:
        return ""  # unbatched (rare) or quantized: none of these backends
    dilations = _ints(dilation, spatial)
    if padding == "valid":
        padding = 0
    elif padding == "same":  # what PyTorch pads for an odd kernel
        padding = [d * (k - 1) // 2 for d, k in zip(dilations, w.shape[2:], strict=True)]
    try:
        return _backend(x.shape, x.dtype, w.shape, w.dtype, groups, _ints(stride, spatial),
                        dilations, _ints(padding, spatial), transposed,
                        _ints(output_padding, spatial), torch.get_num_threads(),
                        bool(torch.backends.mkldnn.enabled))
    except (TypeError, ValueError, RuntimeError):  # shapes PyTorch itself would reject
        return ""


@functools.lru_cache(maxsize=4096)
def _backend(x_shape: tuple[int, ...], x_dtype: torch.dtype, w_shape: tuple[int, ...],
             w_dtype: torch.dtype, groups: int, stride: tuple[int, ...],
             dilation: tuple[int, ...], padding: tuple[int, ...], transposed: bool,
             output_padding: tuple[int, ...], threads: int, onednn: bool) -> str:
    # ``threads`` and ``onednn`` are part of PyTorch's choice (it checks both), so they are
    # part of the cache's key
    with FakeTensorMode():
        x = torch.empty(x_shape, dtype=x_dtype)
        w = torch.empty(w_shape, dtype=w_dtype)
        backend = torch._C._select_conv_backend(
            x, w, None, list(stride), list(padding), list(dilation), transposed,
            list(output_padding), groups)
    name = str(backend.name)
    onednn_value = int(torch._C._ConvBackend.Mkldnn.value)  # type: ignore[attr-defined]
    if name == "???" and int(backend.value) == onednn_value + 1:
        # PyTorch's Python binding leaves MkldnnTranspose, the value after Mkldnn, unnamed
        return "MkldnnTranspose"
    return name


def conv_kind(spatial: int, depthwise: bool, transposed: bool, kernel: tuple[int, ...],
              unit_stride: bool = False) -> str:
    """The kernel family a convolution runs in (``core.op_classes.KINDS``): depthwise by rank,
    transposed, 1x1 ("pointwise", a matrix product), 3x3 with unit stride and dilation
    (what CPU and GPU runtimes run as Winograd), or dense by rank."""
    if depthwise:
        return f"depthwise_conv{spatial}d"
    if transposed:
        return "transposed_conv"
    if _all_one(kernel):
        return "pointwise_conv"
    if spatial == 2 and tuple(kernel) == (3, 3) and unit_stride:
        return "conv3x3"
    return f"conv{spatial}d"


def _all_one(value: object) -> bool:
    values = value if isinstance(value, (list, tuple)) else [value]
    return all(int(v) == 1 for v in values)  # type: ignore[arg-type]


@register("convolution", "_convolution", op_class="conv")
def convolution(input: TensorMeta, weight: TensorMeta, bias: TensorMeta | None,
                transposed: bool, groups: int, stride: object, dilation: object,
                padding: object = 0, output_padding: object = 0, *, result: TensorMeta,
                **_: object) -> Work:
    return conv_work(input, weight, bias is not None, transposed, groups, result, stride,
                     dilation, padding, lowerable=True, output_padding=output_padding)


@register("conv1d", "conv2d", "conv3d", op_class="conv")
def conv_nd(input: TensorMeta, weight: TensorMeta, bias: TensorMeta | None, groups: int,
            stride: object, dilation: object, padding: object = 0, *, result: TensorMeta,
            **_: object) -> Work:
    return conv_work(input, weight, bias is not None, False, groups, result, stride, dilation,
                     padding, lowerable=True)


@register("conv_transpose1d", "conv_transpose2d", "conv_transpose3d", op_class="conv")
def conv_transpose_nd(input: TensorMeta, weight: TensorMeta, bias: TensorMeta | None,
                      groups: int, stride: object = 1, padding: object = 0,
                      output_padding: object = 0, dilation: object = 1, *,
                      result: TensorMeta, **_: object) -> Work:
    return conv_work(input, weight, bias is not None, True, groups, result, stride, dilation,
                     padding, lowerable=True, output_padding=output_padding)


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
