"""Deployment precisions: the names users write and the bytes per element they stand for."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported only where tensors are: the plugin starts without it
    import torch

#: Bytes per element of each deployment precision a profile can be re-priced at.
DEPLOY_DTYPES: dict[str, int] = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}

_ALIASES = {
    "float32": "fp32",
    "float": "fp32",
    "float16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "qint8": "int8",
}


def parse_dtype(name: str | None) -> str | None:
    """Return the canonical deployment dtype name (``"fp32"``, ``"fp16"``, ``"bf16"``,
    ``"int8"``) for ``name``, or ``None`` for ``None``.

    Raises ``ValueError`` naming the accepted values for anything else.
    """
    if name is None:
        return None
    if type(name).__module__ == "torch" and type(name).__name__ == "dtype":  # torch.float16
        name = str(name).removeprefix("torch.")
    if not isinstance(name, str):
        raise ValueError(f"dtype must be a string, got {type(name).__name__}: {name!r}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DEPLOY_DTYPES:
        known = ", ".join(repr(k) for k in DEPLOY_DTYPES)
        raise ValueError(f"unknown dtype {name!r}; expected one of {known}")
    return key


def itemsize(dtype: str) -> int:
    """Bytes per element of a canonical deployment dtype name."""
    return DEPLOY_DTYPES[dtype]


def is_repriced(dtype: torch.dtype) -> bool:
    """True for tensor dtypes that a deployment precision re-prices (floating point).

    Integer tensors (indices, masks, counters) keep their own size at every precision.
    """
    return dtype.is_floating_point
