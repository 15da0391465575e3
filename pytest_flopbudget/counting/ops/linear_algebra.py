"""Matrix products: linear, mm, bmm, addmm, baddbmm, matmul, mv, dot.

MACs are the multiply-accumulates of the product; a bias or ``input`` term adds one FLOP per
output element (``elementwise``).
"""

from __future__ import annotations

import math

from ..costs import TensorMeta, Work
from ..registry import register
from .elementwise import GELU, RELU


@register("mm", op_class="matmul")
def mm(self: TensorMeta, mat2: TensorMeta, **_: object) -> Work:
    # [n, k] @ [k, m]: n * m * k
    n, k = self.shape
    m = mat2.shape[1]
    return Work(macs=n * m * k)


@register("bmm", op_class="matmul")
def bmm(self: TensorMeta, mat2: TensorMeta, **_: object) -> Work:
    # [B, n, k] @ [B, k, m]: B * n * m * k
    batch, n, k = self.shape
    m = mat2.shape[2]
    return Work(macs=batch * n * m * k)


@register("addmm", op_class="matmul")
def addmm(mat1: TensorMeta, mat2: TensorMeta, **_: object) -> Work:
    n, k = mat1.shape
    m = mat2.shape[1]
    return Work(macs=n * m * k, elementwise=n * m)


@register("_addmm_activation", op_class="matmul")
def addmm_activation(mat1: TensorMeta, mat2: TensorMeta, use_gelu: bool, **_: object) -> Work:
    n, k = mat1.shape
    m = mat2.shape[1]
    activation = GELU if use_gelu else RELU  # the epilogue, as in the elementwise table
    return Work(macs=n * m * k, elementwise=n * m * (1 + activation))


@register("baddbmm", op_class="matmul")
def baddbmm(batch1: TensorMeta, batch2: TensorMeta, **_: object) -> Work:
    batch, n, k = batch1.shape
    m = batch2.shape[2]
    return Work(macs=batch * n * m * k, elementwise=batch * n * m)


@register("addbmm", op_class="matmul")
def addbmm(batch1: TensorMeta, batch2: TensorMeta, **_: object) -> Work:
    # sum over the batch of [n, k] @ [k, m], added to bias: B*n*m*k MACs, n*m bias adds
    batch, n, k = batch1.shape
    m = batch2.shape[2]
    return Work(macs=batch * n * m * k, elementwise=n * m)


@register("mv", op_class="matmul")
def mv(self: TensorMeta, **_: object) -> Work:
    n, k = self.shape
    return Work(macs=n * k)


@register("addmv", op_class="matmul")
def addmv(mat: TensorMeta, **_: object) -> Work:
    n, k = mat.shape
    return Work(macs=n * k, elementwise=n)


@register("dot", "vdot", op_class="matmul")
def dot(self: TensorMeta, **_: object) -> Work:
    return Work(macs=self.numel)


def matmul_macs(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """MACs of ``torch.matmul`` for operand shapes ``a`` and ``b`` (1-D and broadcast rules)."""
    if len(a) == 1 and len(b) == 1:
        return a[0]
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    n, k = a2[-2], a2[-1]
    m = b2[-1]
    batch_a, batch_b = a2[:-2], b2[:-2]
    width = max(len(batch_a), len(batch_b))
    batch_a = (1,) * (width - len(batch_a)) + batch_a
    batch_b = (1,) * (width - len(batch_b)) + batch_b
    batch = math.prod(max(x, y) for x, y in zip(batch_a, batch_b, strict=True))
    return batch * n * k * m


@register("matmul", op_class="matmul")
def matmul(self: TensorMeta, other: TensorMeta, **_: object) -> Work:
    return Work(macs=matmul_macs(self.shape, other.shape))


@register("linear", op_class="matmul")
def linear(input: TensorMeta, weight: TensorMeta, bias: TensorMeta | None = None,
           **_: object) -> Work:
    # x [..., in] @ w.T [in, out]: rows * out * in MACs; bias: rows * out adds
    rows = input.numel // input.shape[-1] if input.shape else 1
    n_out, n_in = (weight.shape[0], weight.shape[1]) if weight.ndim == 2 else (1, weight.shape[0])
    return Work(macs=rows * n_out * n_in, elementwise=rows * n_out if bias is not None else 0)


@register("addr", op_class="elementwise")
def addr(*, result: TensorMeta, **_: object) -> Work:
    # outer product (one multiply per element, nothing accumulated) plus the add
    return Work(elementwise=2 * result.numel)


@register("_trilinear", op_class="matmul")
def trilinear(i1: TensorMeta, i2: TensorMeta, i3: TensorMeta, expand1: list[int],
              expand2: list[int], expand3: list[int], **_: object) -> Work:
    # sum over ``sumdim`` of i1 * i2 * i3 after unsqueezing each at its ``expand`` dims (what
    # nn.Bilinear runs). Every point of the broadcast space is one multiply-accumulate plus
    # one more multiply for the third factor: rows * out * in1 * in2 MACs for nn.Bilinear.
    shapes = []
    for t, expand in ((i1, expand1), (i2, expand2), (i3, expand3)):
        shape = list(t.shape)
        for d in sorted(expand):
            shape.insert(d, 1)
        shapes.append(shape)
    space = math.prod(max(sizes) for sizes in zip(*shapes, strict=True))
    return Work(macs=space, elementwise=space)
