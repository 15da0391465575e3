"""Pointwise operators: arithmetic, comparisons, activations, softmax and dropout.

:data:`PER_ELEMENT` is the one table of per-element costs (FLOPs per output element); the README
prints it and a test checks the two agree. The convention: each +, -, x, /, comparison, and each
transcendental primitive (exp, log, sqrt, tanh, erf, ...) is one FLOP; an activation costs the
primitives of its defining formula, written next to it.
"""

from __future__ import annotations

from ..costs import TensorMeta, Work, outputs
from ..registry import FormulaFn, register, with_in_place

#: ``{aten operator: (FLOPs per output element, defining formula)}``. In-place variants
#: (``relu_``) cost the same.
PER_ELEMENT: dict[str, tuple[int, str]] = {
    # arithmetic and comparisons
    "add": (1, "x + a*y"),
    "sub": (1, "x - a*y"),
    "rsub": (1, "a*y - x"),
    "mul": (1, "x * y"),
    "div": (1, "x / y"),
    "true_divide": (1, "x / y"),
    "floor_divide": (2, "floor(x / y): div, floor"),
    "remainder": (1, "x mod y"),
    "fmod": (1, "x mod y"),
    "neg": (1, "-x"),
    "abs": (1, "|x|"),
    "reciprocal": (1, "1 / x"),
    "sign": (1, "sign(x)"),
    "sgn": (1, "sign(x)"),
    "square": (1, "x * x"),
    "pow": (1, "x ** y"),
    "maximum": (1, "max(x, y)"),
    "minimum": (1, "min(x, y)"),
    "fmax": (1, "max(x, y)"),
    "fmin": (1, "min(x, y)"),
    "eq": (1, "x == y"),
    "ne": (1, "x != y"),
    "lt": (1, "x < y"),
    "le": (1, "x <= y"),
    "gt": (1, "x > y"),
    "ge": (1, "x >= y"),
    "logical_and": (1, "x and y"),
    "logical_or": (1, "x or y"),
    "logical_xor": (1, "x xor y"),
    "logical_not": (1, "not x"),
    "bitwise_and": (1, "x & y"),
    "bitwise_or": (1, "x | y"),
    "bitwise_xor": (1, "x ^ y"),
    "bitwise_not": (1, "~x"),
    "where": (0, "c ? x : y: a select"),
    "masked_fill": (0, "m ? v : x: a select"),
    "isnan": (1, "x != x"),
    "isinf": (2, "|x| == inf: abs, compare"),
    "nan_to_num": (3, "replace nan, +inf, -inf: three compares"),
    "copysign": (3, "|x| * sign(y): abs, sign, mul"),
    "floor": (1, "floor(x)"),
    "ceil": (1, "ceil(x)"),
    "round": (1, "round(x)"),
    "trunc": (1, "trunc(x)"),
    "frac": (2, "x - trunc(x): trunc, sub"),
    "lerp": (3, "x + w*(y - x)"),
    "addcmul": (2, "x + a*y*z (a folded)"),
    "addcdiv": (2, "x + a*y/z (a folded)"),
    "xlogy": (2, "x * log(y)"),
    # transcendental primitives
    "exp": (1, "exp(x)"),
    "exp2": (1, "2**x"),
    "expm1": (1, "exp(x) - 1"),
    "log": (1, "log(x)"),
    "log2": (1, "log2(x)"),
    "log10": (1, "log10(x)"),
    "log1p": (1, "log(1 + x)"),
    "sqrt": (1, "sqrt(x)"),
    "rsqrt": (1, "1 / sqrt(x)"),
    "sin": (1, "sin(x)"),
    "cos": (1, "cos(x)"),
    "tan": (1, "tan(x)"),
    "asin": (1, "asin(x)"),
    "acos": (1, "acos(x)"),
    "atan": (1, "atan(x)"),
    "atan2": (1, "atan2(y, x)"),
    "sinh": (1, "sinh(x)"),
    "cosh": (1, "cosh(x)"),
    "tanh": (1, "tanh(x)"),
    "erf": (1, "erf(x)"),
    "erfc": (1, "erfc(x)"),
    "erfinv": (1, "erfinv(x)"),
    # activations
    "relu": (1, "max(x, 0)"),
    "threshold": (1, "x > t ? x : v"),
    "clamp_min": (1, "max(x, lo)"),
    "clamp_max": (1, "min(x, hi)"),
    "hardtanh": (2, "min(max(x, lo), hi)"),
    "leaky_relu": (2, "x > 0 ? x : a*x"),
    "_prelu_kernel": (2, "x > 0 ? x : a*x"),
    "prelu": (2, "x > 0 ? x : a*x"),
    "rrelu": (2, "x > 0 ? x : a*x"),
    "sigmoid": (4, "1 / (1 + exp(-x))"),
    "log_sigmoid_forward": (5, "-log(1 + exp(-x))"),
    "hardsigmoid": (4, "min(max(x + 3, 0), 6) / 6"),
    "hardswish": (5, "x * min(max(x + 3, 0), 6) / 6"),
    "silu": (5, "x * sigmoid(x)"),
    "mish": (5, "x * tanh(log(1 + exp(x)))"),
    "softplus": (3, "log(1 + exp(x))"),
    "elu": (4, "x > 0 ? x : a*(exp(x) - 1)"),
    "celu": (5, "x > 0 ? x : a*(exp(x/a) - 1)"),
    "selu": (5, "s * (x > 0 ? x : a*(exp(x) - 1))"),
    "hardshrink": (2, "|x| > l ? x : 0"),
    "softshrink": (3, "x - l*sign(x) if |x| > l"),
    # softmax family, per element of the input
    "_softmax": (5, "exp(x - max) / sum: max, sub, exp, sum, div"),
    "softmax": (5, "exp(x - max) / sum: max, sub, exp, sum, div"),
    "_safe_softmax": (5, "exp(x - max) / sum: max, sub, exp, sum, div"),
    "_log_softmax": (5, "x - max - log(sum(exp(x - max))): max, sub, exp, sum, sub"),
    "log_softmax": (5, "x - max - log(sum(exp(x - max))): max, sub, exp, sum, sub"),
}

#: GELU per element: exact ``0.5*x*(1 + erf(x/sqrt(2)))`` and the tanh approximation.
GELU, GELU_TANH = 5, 9
#: Softmax per element (``exp(x - max) / sum``), shared by the masked and fused forms.
SOFTMAX = PER_ELEMENT["softmax"][0]
#: ReLU per element.
RELU = PER_ELEMENT["relu"][0]

#: Operators whose cost depends on an argument: documented here, formulas below.
SPECIAL_ELEMENTWISE: dict[str, str] = {
    "gelu": "5 (exact: 0.5*x*(1 + erf(x/sqrt(2)))) or 9 (approximate='tanh')",
    "clamp": "1 per bound given (min and/or max)",
    "glu": "5 per output element: sigmoid(b) * a",
    "dropout": "0 in eval; 2 in training (mask compare, scale multiply)",
    "_masked_softmax": "5 per element, as softmax",
}


#: Operators built of transcendental primitives (exp, log, tanh, erf, ...): runtimes run them
#: through slower kernels than ``+ - x /`` (kind ``"transcendental"``; the others are
#: ``"arithmetic"``).
TRANSCENDENTAL = frozenset({
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "sin", "cos",
    "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "erf", "erfc", "erfinv",
    "pow", "xlogy", "sigmoid", "log_sigmoid_forward", "silu", "mish", "softplus", "elu", "celu",
    "selu", "_softmax", "softmax", "_safe_softmax", "_log_softmax", "log_softmax", "gelu",
    "glu", "_masked_softmax", "gelu_backward", "silu_backward", "softplus_backward",
    "_log_softmax_backward_data",
})


def kind_of(name: str) -> str:
    """``"transcendental"`` or ``"arithmetic"`` for an elementwise operator name."""
    return "transcendental" if name.rstrip("_") in TRANSCENDENTAL else "arithmetic"


def per_element(cost: int, kind: str = "arithmetic") -> FormulaFn:
    """A formula costing ``cost`` operations per element of the operator's primary output
    (a second output, such as log_sigmoid's saved buffer, is traffic, not work)."""

    def formula(*, result: object, **_: object) -> Work:
        return Work(elementwise=cost * outputs(result)[0].numel, kind=kind)

    return formula


for _name, (_cost, _) in PER_ELEMENT.items():
    register(*with_in_place(_name), op_class="elementwise")(per_element(_cost, kind_of(_name)))


@register("gelu", "gelu_", op_class="elementwise")
def gelu(approximate: str = "none", *, result: TensorMeta, **_: object) -> Work:
    per = GELU_TANH if approximate == "tanh" else GELU
    return Work(elementwise=per * result.numel, kind="transcendental")


@register("clamp", "clamp_", op_class="elementwise")
def clamp(min: object = None, max: object = None, *, result: TensorMeta, **_: object) -> Work:
    bounds = (min is not None) + (max is not None)
    return Work(elementwise=bounds * result.numel, kind="arithmetic")


@register("glu", op_class="elementwise")
def glu(*, result: TensorMeta, **_: object) -> Work:
    # sigmoid(b) * a
    return Work(elementwise=(PER_ELEMENT["sigmoid"][0] + 1) * result.numel,
                kind="transcendental")


@register("_masked_softmax", op_class="elementwise")
def masked_softmax(*, result: TensorMeta, **_: object) -> Work:
    return Work(elementwise=SOFTMAX * result.numel, kind="transcendental")


@register("dropout", "dropout_", "feature_dropout", "alpha_dropout", op_class="elementwise")
def dropout(p: float, train: bool, *, result: TensorMeta, **_: object) -> Work:
    if not train or p == 0:
        # Eval-mode dropout returns its input: no work, no traffic.
        return Work(reads=(), writes=())
    return Work(elementwise=2 * result.numel, kind="arithmetic")


@register("native_dropout", op_class="elementwise")
def native_dropout(input: TensorMeta, *, result: object, **_: object) -> Work:
    # result = (output, mask); the mask is written too (default traffic counts it).
    return Work(elementwise=2 * input.numel, kind="arithmetic")
