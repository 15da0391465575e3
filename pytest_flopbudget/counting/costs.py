"""The value types every formula speaks: tensor shapes in, work out.

Traffic is priced by :class:`~pytest_flopbudget.core.access.Access` (the one re-pricing rule).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils._python_dispatch import is_traceable_wrapper_subclass

from ..core.access import ZERO_ACCESS, Access


@dataclass(frozen=True, slots=True)
class TensorMeta:
    """What a formula may know about a tensor: its shape and dtype, never its values."""

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32

    @property
    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @classmethod
    def of(cls, t: torch.Tensor) -> TensorMeta:
        return cls(tuple(int(s) for s in t.shape), t.dtype)


#: Tensor types that hold their own data (the common case, checked first: it is hot).
_PLAIN = frozenset({torch.Tensor, torch.nn.Parameter, FakeTensor})


def access_of(tensors: Iterable[torch.Tensor]) -> Access:
    """The bytes of ``tensors`` as they are stored: a plain tensor at its dtype; a tensor
    subclass that wraps others (an int8 weight-only tensor with its scales, as torchao
    makes them) at the bytes of the tensors it holds, not at its logical dtype."""
    plain: list[TensorMeta] = []
    wrapped = ZERO_ACCESS
    for t in tensors:
        if type(t) not in _PLAIN and is_traceable_wrapper_subclass(t):
            names, _ = t.__tensor_flatten__()
            wrapped = wrapped + access_of(getattr(t, n) for n in names)
        else:
            plain.append(TensorMeta.of(t))
    return Access.of(plain) + wrapped


def outputs(result: object) -> tuple[TensorMeta, ...]:
    """The tensors among an operator's outputs (a formula's ``result``: one TensorMeta or a
    tuple), in schema order: ``outputs(result)[0]`` is the primary result, later ones are saved
    buffers, indices or masks."""
    if isinstance(result, TensorMeta):
        return (result,)
    if isinstance(result, (tuple, list)):
        return tuple(o for o in result if isinstance(o, TensorMeta))
    return ()


def one_of(*alternatives: TensorMeta | None) -> TensorMeta:
    """The one tensor given among ``alternatives``: an operand that the operators (or
    overloads) sharing a formula name differently (``input`` in ``lstm``, ``data`` in its
    packed overload; ``mat2`` in ``mm``, ``vec`` in ``mv``) arrives under one of those names,
    the others are ``None``."""
    [given] = [t for t in alternatives if t is not None]
    return given


@dataclass(frozen=True, slots=True)
class Work:
    """What one operator (or one stage of a fused operator) costs.

    ``macs`` are multiply-accumulates of conv/linear/matmul/attention/recurrent products;
    ``elementwise`` are all other floating-point operations. ``flops`` is ``2 * macs +
    elementwise``. ``reads``/``writes`` override the default traffic (every input read once,
    every output written once); ``weights`` says which of ``reads`` are model weights when a
    formula lists them itself (default: the inputs that are the model's parameters and
    buffers). ``steps`` > 1 marks sequential dependent steps (a recurrent layer's time steps);
    ``step_reads`` are tensors each step reads again (its weights) when they do not stay on
    chip. ``kind`` is a finer operator kind for a device's tables (``core.op_classes.KINDS``)
    and ``mac_dims`` the ``(reduced, output)`` channels of a product (MAC-array
    utilisation). ``lowered`` is the number of elements of the column matrix (im2col) eager
    PyTorch on this CPU writes before a convolution's matrix product, 0 when it runs the
    convolution another way (a device prices it only when it names a ``lowering_bandwidth``).
    ``rows`` are a product's rows, what a fixed cost per call is spread over: a convolution's
    output positions (input positions, transposed) over its batch, the rows of a linear's input
    or of one matrix of a matmul, a fused attention layer's tokens over its batch (0: not a
    product, or one row of a fused layer). ``weight_rows`` are the rows of the weight
    matrices a product reads, one per output feature (a linear's ``out_features``, a matmul's
    output columns; the in- and out-projections and feed-forward of a fused attention layer
    summed), what a device that names ``cold_weight_row_seconds`` charges when the weights come
    from memory; the tracer records 0 for a product that reads no weights (0: not a product).
    ``input_macs`` are the MACs of a recurrent layer's input projection (``macs`` includes
    them): no step depends on them, so a runtime may compute them for the whole sequence as one
    matrix product before the steps (a device that names ``batched_input_projection`` prices
    them so; 0: not a whole recurrent layer). ``runs_as`` is the aten operator eager PyTorch
    on this CPU runs this one as, when that is another with costs of its own (a convolution
    on its oneDNN path: ``"aten.mkldnn_convolution"``, whose every call pays a fixed cost a
    device may name); empty otherwise.
    """

    macs: int = 0
    elementwise: int = 0
    op_class: str | None = None
    reads: tuple[TensorMeta, ...] | None = None
    writes: tuple[TensorMeta, ...] | None = None
    steps: int = 1
    step_reads: tuple[TensorMeta, ...] = field(default=())
    label: str = ""
    weights: tuple[TensorMeta, ...] | None = None
    kind: str = ""
    mac_dims: tuple[int, int] | None = None
    lowered: int = 0
    rows: int = 0
    weight_rows: int = 0
    input_macs: int = 0
    runs_as: str = ""

    @property
    def flops(self) -> int:
        return 2 * self.macs + self.elementwise
