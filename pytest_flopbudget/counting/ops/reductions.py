"""Reductions, counted per element of the input.

sum, mean, max, min, amax, amin, argmax, argmin, prod, any, all, cumsum, cumprod: 1;
aminmax, vector norms (abs or square, add), nansum (NaN compare, add): 2; nanmean (compare,
add, count): 3; var, std and their ``_mean`` forms (mean: add;
then subtract, square, add): 4; logsumexp (max, subtract, exp, add): 4; ``equal`` 1 (0 when
the shapes differ: the answer is known from them). The final division of a
mean, the square root of a std and similar per-output work are not counted.
"""

from __future__ import annotations

from ..costs import TensorMeta, Work, outputs
from ..registry import FormulaFn, register, with_in_place

#: FLOPs per input element of each reduction.
PER_INPUT: dict[str, int] = {
    "sum": 1,
    "nansum": 2,  # a NaN compare and the add
    "mean": 1,
    "nanmean": 3,  # a NaN compare, the add, and an add to count the values
    "amax": 1,
    "amin": 1,
    "argmax": 1,
    "argmin": 1,
    "prod": 1,
    "any": 1,
    "all": 1,
    "count_nonzero": 1,
    "cumsum": 1,
    "cumprod": 1,
    "logcumsumexp": 4,
    "aminmax": 2,
    "norm": 2,
    "linalg_vector_norm": 2,
    "var": 4,
    "std": 4,
    "var_mean": 4,
    "std_mean": 4,
    "logsumexp": 4,
}


def _reduction(per_input: int) -> FormulaFn:
    def formula(self: TensorMeta, **_: object) -> Work:
        return Work(elementwise=per_input * self.numel)

    return formula


for _name, _per in PER_INPUT.items():
    register(*with_in_place(_name), op_class="elementwise")(_reduction(_per))


@register("max", "min", op_class="elementwise")
def max_min(self: TensorMeta, other: TensorMeta | None = None, *, result: object,
            **_: object) -> Work:
    # max(x, other) is elementwise (one compare per output); max(x) and max(x, dim) reduce x
    if other is not None:
        return Work(elementwise=outputs(result)[0].numel)
    return Work(elementwise=self.numel)


@register("equal", op_class="elementwise")
def equal(self: TensorMeta, other: TensorMeta, **_: object) -> Work:
    # torch.equal: one compare per element when the shapes agree, none when they do not
    # (the kernel answers False from the shapes alone)
    return Work(elementwise=self.numel if self.shape == other.shape else 0)
