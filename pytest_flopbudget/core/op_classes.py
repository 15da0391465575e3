"""Operator classes and kinds: the groups of operators a device gives its own efficiency
factor and per-operator overhead (see ``devices``).

Every counted operator belongs to one class; formulas may also name a finer *kind* within it
(a 3-D convolution, a 1x1 convolution, a transcendental elementwise function), because
runtimes run those through different kernels. A device's ``efficiency`` and ``overheads``
tables are looked up most specific first: the aten operator eager PyTorch runs it as when
that is another (a convolution on its oneDNN path, ``"aten.mkldnn_convolution"``), the aten
operator (``"aten.gelu"``), its kind, its class.
"""

from __future__ import annotations

#: Operator classes, in the order reports list them.
OP_CLASSES: tuple[str, ...] = (
    "conv",
    "depthwise_conv",
    "matmul",
    "recurrent",
    "attention",
    "elementwise",
    "norm",
    "pooling",
    "data",
)

#: Operator kinds, each within one class.
KINDS: dict[str, str] = {
    "conv1d": "conv",
    "conv2d": "conv",
    "conv3d": "conv",
    "pointwise_conv": "conv",  # 1x1 (or 1, 1x1x1) kernels: a matrix product
    "conv3x3": "conv",  # 3x3, unit stride and dilation: Winograd on CPU and GPU runtimes
    "transposed_conv": "conv",
    "depthwise_conv1d": "depthwise_conv",
    "depthwise_conv2d": "depthwise_conv",
    "depthwise_conv3d": "depthwise_conv",
    "matrix_vector": "matmul",  # one row of a product: memory-bound on every device
    "channel_affine": "norm",  # a per-channel scale and shift (eval-mode batch norm)
    "arithmetic": "elementwise",  # + - x /, compares, selects, ReLU
    "transcendental": "elementwise",  # exp, log, tanh, erf and what is built of them
    "layout": "data",  # a copy that only changes memory layout (contiguous, reshape copy)
}


def lookup_keys(op: str, kind: str, op_class: str, runs_as: str = "") -> tuple[str, ...]:
    """The keys a device table is searched under for one operator, most specific first: the
    aten operator eager PyTorch runs it as on this CPU when that is another
    (``runs_as``, e.g. ``"aten.mkldnn_convolution"``), the operator, its kind, its class."""
    return tuple(k for k in (runs_as, op, kind, op_class) if k)
