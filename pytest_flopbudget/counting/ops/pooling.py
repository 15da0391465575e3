"""Pooling and resampling.

* max/avg pooling: the kernel area per output element (one compare or add per window element);
* adaptive pooling: the exact window of every output position (PyTorch's windows run from
  ``floor(i*In/Out)`` to ``ceil((i+1)*In/Out)``), summed;
* interpolation, per output element: nearest 0 (a copy), linear ``2^d`` multiplies and
  ``2^d - 1`` adds over ``d`` interpolated dims (linear 3, bilinear 7, trilinear 15),
  bicubic 31 (16 taps).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..costs import TensorMeta, Work, outputs
from ..registry import FormulaFn, register


def window_area(kernel_size: int | Sequence[int], rank: int) -> int:
    """Elements in a pooling window: ``kernel_size`` is one size for every one of the ``rank``
    spatial dims, or one per dim."""
    sizes = [int(k) for k in kernel_size] if isinstance(kernel_size, Sequence) else [kernel_size]
    return math.prod(sizes) ** rank if len(sizes) == 1 else math.prod(sizes)


def _pool(rank: int) -> FormulaFn:
    def formula(kernel_size: int | Sequence[int], *, result: object, **_: object) -> Work:
        y = outputs(result)[0]
        # max pooling's indices (when returned) are written too: default traffic counts them
        return Work(elementwise=window_area(kernel_size, rank) * y.numel)

    return formula


for _rank in (1, 2, 3):
    register(f"max_pool{_rank}d", f"max_pool{_rank}d_with_indices", f"avg_pool{_rank}d",
             op_class="pooling")(_pool(_rank))
for _rank in (2, 3):
    register(f"mkldnn_max_pool{_rank}d", op_class="pooling")(_pool(_rank))


def adaptive_window_sum(size_in: Sequence[int], size_out: Sequence[int]) -> int:
    """Elements summed by an adaptive pooling from spatial shape ``size_in`` to ``size_out``,
    over all its windows (one plane): per dim, window ``i`` of ``Out`` runs from
    ``floor(i*In/Out)`` to ``ceil((i+1)*In/Out)``; the dims multiply."""
    return math.prod(
        sum(-((-(i + 1) * n_in) // n_out) - (i * n_in) // n_out for i in range(n_out))
        for n_in, n_out in zip(size_in, size_out, strict=True)
    )


def adaptive_pool_work(x: TensorMeta, spatial_out: Sequence[int]) -> Work:
    """An adaptive pooling of ``x`` (planes x spatial) to ``spatial_out``, or its backward:
    one operation per window element, summed over the windows of every plane."""
    rank = len(spatial_out)
    spatial_in = x.shape[-rank:]
    planes = x.numel // math.prod(spatial_in)
    return Work(elementwise=planes * adaptive_window_sum(spatial_in, spatial_out))


def _adaptive(rank: int) -> FormulaFn:
    def formula(self: TensorMeta, *, result: object, **_: object) -> Work:
        return adaptive_pool_work(self, outputs(result)[0].shape[-rank:])

    return formula


for _rank in (1, 2, 3):
    register(f"adaptive_avg_pool{_rank}d", f"adaptive_max_pool{_rank}d",
             op_class="pooling")(_adaptive(_rank))
for _rank in (2, 3):
    register(f"_adaptive_avg_pool{_rank}d", op_class="pooling")(_adaptive(_rank))
register("mkldnn_adaptive_avg_pool2d", op_class="pooling")(_adaptive(2))

#: FLOPs per output element of each interpolation mode.
INTERPOLATION: dict[str, int] = {
    "upsample_nearest1d": 0,
    "upsample_nearest2d": 0,
    "upsample_nearest3d": 0,
    "_upsample_nearest_exact1d": 0,
    "_upsample_nearest_exact2d": 0,
    "_upsample_nearest_exact3d": 0,
    "upsample_linear1d": 3,
    "upsample_bilinear2d": 7,
    "_upsample_bilinear2d_aa": 7,
    "upsample_trilinear3d": 15,
    "upsample_bicubic2d": 31,
    "_upsample_bicubic2d_aa": 31,
}


def _interpolate(per_output: int) -> FormulaFn:
    def formula(*, result: TensorMeta, **_: object) -> Work:
        return Work(elementwise=per_output * result.numel,
                    op_class="data" if per_output == 0 else "elementwise")

    return formula


for _name, _per in INTERPOLATION.items():
    register(_name, op_class="elementwise")(_interpolate(_per))
