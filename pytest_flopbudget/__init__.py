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

from .core.version import VERSION as __version__

#: ``@flop_budget(max_mflops=50, device="npu")`` is ``@pytest.mark.flop_budget(...)``.
flop_budget = pytest.mark.flop_budget

#: public name -> the module that defines it
_LAZY = {
    "Device": "devices.device",
    "get_device": "devices.project",
    "LayerProfile": "counting.profile",
    "ModelProfile": "counting.profile",
    "profile": "counting.profile",
    "Latency": "devices.roofline",
    "TraceError": "counting.tracer",
}

if TYPE_CHECKING:
    from .counting.profile import LayerProfile, ModelProfile, profile
    from .counting.tracer import TraceError
    from .devices.device import Device
    from .devices.project import get_device
    from .devices.roofline import Latency


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
