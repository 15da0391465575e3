"""pytest-flopbudget: FLOP, MAC, parameter, memory-access and latency budgets for PyTorch models.

``profile(model, *inputs)`` counts a forward pass on fake tensors and returns a
:class:`ModelProfile`; the pytest plugin turns profiles into budget checks.

The names below load on first use: pytest loads this package for every session, and a session
whose tests use no budget should not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pytest

__version__ = "0.1.0"

#: ``@flop_budget(max_mflops=50, device="npu")`` is ``@pytest.mark.flop_budget(...)``.
flop_budget = pytest.mark.flop_budget

#: public name -> the module that defines it
_LAZY = {
    "Device": "devices",
    "get_device": "devices",
    "LayerProfile": "profile",
    "ModelProfile": "profile",
    "profile": "profile",
    "Latency": "roofline",
    "TraceError": "tracer",
}

if TYPE_CHECKING:
    from .devices import Device, get_device
    from .profile import LayerProfile, ModelProfile, profile
    from .roofline import Latency
    from .tracer import TraceError


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Device",
    "Latency",
    "LayerProfile",
    "ModelProfile",
    "TraceError",
    "__version__",
    "flop_budget",
    "get_device",
    "profile",
]
