"""Operator classes: the groups of operators a device gives its own efficiency factor and
per-operator overhead (see ``devices``); every counted operator belongs to one."""

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
