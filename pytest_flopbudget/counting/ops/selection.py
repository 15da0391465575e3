"""Selection and counting: topk, sort, histc (a mixture-of-experts router's operators).

Comparisons count 1 each, as elsewhere. Per row of ``n`` elements along ``dim``:

* ``sort``: a comparison sort, ``n * ceil(log2 n)`` compares (0 for one element);
* ``topk``: one pass keeping the ``k`` best in a heap, ``ceil(log2 k)`` compares per element
  (at least 1): ``n * max(1, ceil(log2 k))``; sorting the ``k`` results is not counted;
* ``histc``, per input element: the bin index ``floor((x - min) * bins / (max - min))``
  (sub, mul, floor: 3), the range check (2 compares) and the count (1 add): 6; with
  ``min == max`` (the default) the range is the input's own min and max first: + 2.
"""

from __future__ import annotations

import math

from ..costs import TensorMeta, Work
from ..registry import register

HISTC = 6  # sub, mul, floor, two range compares, one add
RANGE = 2  # min and max of the input, when histc computes its range


def _rows(x: TensorMeta, dim: int) -> tuple[int, int]:
    """``(rows, n)``: the rows along ``dim`` and their length (a 0-d tensor is one row of 1)."""
    if not x.shape:
        return 1, 1
    n = x.shape[dim]
    return (x.numel // n if n else 0), n


@register("sort", op_class="elementwise")
def sort(self: TensorMeta, dim: int, **_: object) -> Work:
    # rows * n * ceil(log2 n) compares
    rows, n = _rows(self, dim)
    return Work(elementwise=rows * n * math.ceil(math.log2(n)) if n > 1 else 0)


@register("topk", op_class="elementwise")
def topk(self: TensorMeta, k: int, dim: int, **_: object) -> Work:
    # rows * n * max(1, ceil(log2 k)) compares
    rows, n = _rows(self, dim)
    per = max(1, math.ceil(math.log2(k))) if k > 1 else 1
    return Work(elementwise=rows * n * per if k else 0)


@register("histc", op_class="elementwise")
def histc(self: TensorMeta, min: float, max: float, **_: object) -> Work:
    # 6 per element; + 2 when the range is the input's own (min == max)
    return Work(elementwise=(HISTC + (RANGE if min == max else 0)) * self.numel)
