"""pytest-flopbudget: FLOP, MAC, parameter, memory-access and latency budgets for PyTorch models.

``profile(model, *inputs)`` counts a forward pass on fake tensors and returns a
:class:`ModelProfile`; the pytest plugin turns profiles into budget checks.
"""

import pytest

from .devices import Device, get_device
from .profile import LayerProfile, ModelProfile, profile
from .roofline import Latency
from .tracer import TraceError

__version__ = "0.1.0"

#: ``@flop_budget(max_mflops=50, device="npu")`` is ``@pytest.mark.flop_budget(...)``.
flop_budget = pytest.mark.flop_budget

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
