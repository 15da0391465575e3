"""What one optimizer step costs, per parameter element.

Each count follows torch's single-tensor implementation (``torch/optim/sgd.py``,
``adam.py``, ``adamw.py``) priced with the per-element table of ``ops/elementwise.py``:

========  ============================================================  ==========
optimizer  operations per parameter element                             FLOPs
========  ============================================================  ==========
SGD       ``p.add_(g, alpha=-lr)``                                       1
          + weight decay ``g = g.add(p, alpha=wd)``                      +1
          + momentum ``buf.mul_(m).add_(g, alpha=1 - dampening)``        +2
          + nesterov ``g = g.add(buf, alpha=m)``                         +1
Adam      ``m.lerp_(g, 1 - b1)`` 3, ``v.mul_(b2).addcmul_(g, g)`` 1 + 2,
          ``denom = (v.sqrt() / bc2).add_(eps)`` 3,
          ``p.addcdiv_(m, denom, value=-step)`` 2                        11
          + weight decay (L2, added to g)                                 +1
          + amsgrad ``torch.maximum(vmax, v)``                           +1
AdamW     Adam + decoupled decay ``p.mul_(1 - lr * wd)``                 12 (+1 amsgrad)
========  ============================================================  ==========

Per-tensor scalar work (the step counter, bias corrections) is not counted. Traffic per
element: the parameter, its gradient and each state tensor are read; the parameter and each
state tensor are written. Another optimizer class is reported as unsupported by name.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..core.access import Access
from .costs import TensorMeta
from .records import OpRecord


def per_element(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> tuple[int, int]:
    """``(FLOPs, state tensors)`` per parameter element for one parameter group."""
    kind = type(optimizer).__name__
    decay = bool(group.get("weight_decay", 0))
    if kind == "SGD":
        momentum = bool(group.get("momentum", 0))
        flops = 1 + decay + 2 * momentum + bool(group.get("nesterov", False))
        return flops, int(momentum)
    if kind in ("Adam", "AdamW"):
        amsgrad = bool(group.get("amsgrad", False))
        return 11 + decay + amsgrad, 2 + amsgrad
    raise LookupError(kind)


def step_records(optimizer: torch.optim.Optimizer,
                 model: nn.Module) -> tuple[list[OpRecord], str]:
    """One record per trainable parameter of ``model`` that ``optimizer`` updates, at the
    parameter's owner module; and the name of an unsupported optimizer ("" if supported)."""
    owner = {id(p): name.rpartition(".")[0] for name, p in model.named_parameters()}
    op = f"optimizer.{type(optimizer).__name__}"
    records = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) not in owner or not p.requires_grad:
                continue
            try:
                flops, states = per_element(optimizer, group)
            except LookupError:
                return [], f"{op} (step not counted)"
            meta = TensorMeta.of(p)
            read = Access.of([meta] * (2 + states))
            written = Access.of([meta] * (1 + states))
            records.append(OpRecord(op, owner[id(p)], "elementwise", 0, flops * meta.numel,
                                    read, written, phase="optimizer"))
    return records, ""
