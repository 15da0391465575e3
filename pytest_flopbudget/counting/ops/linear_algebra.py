"""Matrix products: linear, the matmul family (mm, bmm, mv, dot, vdot, matmul) and its
``add*`` forms (addmm, _addmm_activation, baddbmm, addbmm, addmv), addr, _trilinear, and the
grouped products of mixture-of-experts layers (_grouped_mm).

The matmul family is one idea in two formulas: :func:`product`, the MACs of the product of
two operands (:func:`matmul_macs`: 1-D operands and broadcast batches included), and
:func:`product_plus_term`, the same product plus one FLOP per output element for the added
``self`` term (and the activation epilogue of ``_addmm_activation``, priced as the elementwise
table's GELU or ReLU). ``addbmm`` sums its batch of products into one matrix: the batch is in
the MACs, not in the output.
"""

from __future__ import annotations

import math

from ..costs import TensorMeta, Work, one_of, outputs
from ..registry import register
from .elementwise import GELU, RELU


def matmul_dims(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, int, int]:
    """``(rows, k, m)`` of ``torch.matmul`` for operand shapes ``a`` and ``b`` (1-D and
    broadcast rules): ``rows`` output rows over every batch, ``k`` the reduced length, ``m``
    output columns."""
    if len(a) == 1 and len(b) == 1:
        return 1, a[0], 1
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    n, k = a2[-2], a2[-1]
    m = b2[-1]
    batch_a, batch_b = a2[:-2], b2[:-2]
    width = max(len(batch_a), len(batch_b))
    batch_a = (1,) * (width - len(batch_a)) + batch_a
    batch_b = (1,) * (width - len(batch_b)) + batch_b
    batch = math.prod(max(x, y) for x, y in zip(batch_a, batch_b, strict=True))
    return batch * n, k, m


def matmul_macs(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """MACs of ``torch.matmul`` for operand shapes ``a`` and ``b`` (1-D and broadcast rules)."""
    rows, k, m = matmul_dims(a, b)
    return rows * k * m


def product_work(a: tuple[int, ...], b: tuple[int, ...], elementwise: int = 0) -> Work:
    """A product's MACs, its kind (one output row or column: a matrix-vector product), its
    MAC-array dims (the reduced length and the larger output dimension), its rows (those
    of one product: of one matrix of ``a`` when ``b`` is a batch too, else all of them) and
    its weight rows, the output columns ``m`` (the rows of a weight ``b``, as in ``x @ W`` or
    ``addmm(bias, x, W.t())``; the tracer keeps them only when the product reads weights)."""
    rows, k, m = matmul_dims(a, b)
    # the rows of one product: one matrix of a batch times a batch of matrices; a batch times
    # one matrix is one product of every row (PyTorch folds the batch)
    per_product = a[-2] if len(a) >= 2 and len(b) > 2 else rows
    return Work(macs=rows * k * m, elementwise=elementwise,
                kind="matrix_vector" if min(rows, m) == 1 else "",
                mac_dims=(k, max(rows, m) if min(rows, m) == 1 else m), rows=per_product,
                weight_rows=m)


@register("mm", "bmm", "mv", "dot", "vdot", "matmul", op_class="matmul")
def product(self: TensorMeta, mat2: TensorMeta | None = None, vec: TensorMeta | None = None,
            tensor: TensorMeta | None = None, other: TensorMeta | None = None, *,
            result: object, **_: object) -> Work:
    # self @ the second operand: mat2 (mm [n,k]@[k,m], bmm [B,n,k]@[B,k,m]), vec (mv [n,k]@[k]),
    # tensor (dot [k].[k]) or other (vdot, matmul)
    return product_work(self.shape, one_of(mat2, vec, tensor, other).shape)


@register("addmm", "_addmm_activation", "baddbmm", "addbmm", "addmv", op_class="matmul")
def product_plus_term(mat1: TensorMeta | None = None, mat2: TensorMeta | None = None,
                      batch1: TensorMeta | None = None, batch2: TensorMeta | None = None,
                      mat: TensorMeta | None = None, vec: TensorMeta | None = None,
                      use_gelu: bool | None = None, *, result: object, **_: object) -> Work:
    # beta * self + alpha * (a @ b): the product of mat1 @ mat2 (addmm, _addmm_activation),
    # batch1 @ batch2 (baddbmm; addbmm sums the batch), mat @ vec (addmv); one add per output
    # element for the self term, and _addmm_activation's epilogue (use_gelu) on each output
    a, b = one_of(mat1, batch1, mat), one_of(mat2, batch2, vec)
    per_output = 1
    if use_gelu is not None:
        per_output += GELU if use_gelu else RELU
    return product_work(a.shape, b.shape, per_output * outputs(result)[0].numel)


@register("linear", op_class="matmul")
def linear(input: TensorMeta, weight: TensorMeta, bias: TensorMeta | None = None,
           **_: object) -> Work:
    # x [..., in] @ w.T [in, out]: rows * out * in MACs; bias: rows * out adds
    rows = input.numel // input.shape[-1] if input.shape else 1
    n_out, n_in = (weight.shape[0], weight.shape[1]) if weight.ndim == 2 else (1, weight.shape[0])
    return Work(macs=rows * n_out * n_in, elementwise=rows * n_out if bias is not None else 0,
                kind="matrix_vector" if rows == 1 else "", mac_dims=(n_in, n_out), rows=rows,
                weight_rows=n_out)


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


@register("_grouped_mm", op_class="matmul")
def grouped_mm(self: TensorMeta, mat2: TensorMeta, bias: TensorMeta | None = None, *,
               result: TensorMeta, **_: object) -> Work:
    # one product per group (mixture-of-experts layers): 2-D x 3-D, the rows of self split
    # by offs, each times its group's [K, N]: rows * K * N; 3-D x 3-D, a batch of G products:
    # G * M * K * N; 3-D x 2-D, mat2's columns split by offs: M * K * N_total; all three are
    # (output elements) * K. 2-D x 2-D splits the reduced dim K by offs into G products
    # written to a [G, M, N] output: M * K_total * N. Bias: 1 per output.
    k = self.shape[-1]
    if self.ndim == 2 and mat2.ndim == 2:
        macs = self.shape[0] * k * mat2.shape[1]
    else:
        macs = result.numel * k
    return Work(macs=macs, elementwise=result.numel if bias is not None else 0,
                mac_dims=(k, mat2.shape[-1]))
