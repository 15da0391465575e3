"""pytest-flopbudget: FLOP, MAC, parameter, memory-access and latency budgets for PyTorch models.

``profile(model, *inputs)`` counts a forward pass on fake tensors and returns a
:class:`ModelProfile`; the pytest plugin turns profiles into budget checks.
"""

from .profile import LayerProfile, ModelProfile, profile
from .tracer import TraceError

__version__ = "0.1.0"

__all__ = ["LayerProfile", "ModelProfile", "TraceError", "__version__", "profile"]
