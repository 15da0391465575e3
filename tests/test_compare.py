"""``compare``'s eager timing: what it measures and that it leaves the model as it was."""

from __future__ import annotations

import torch
from torch import nn

from pytest_flopbudget.calibration.compare import eager_layer_times


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(dim=1))


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_a_fused_encoder_layer_is_timed_whole_on_its_fast_path():
    model = Encoder().eval()
    x = torch.randn(1, 8, 16)
    with torch.profiler.profile() as prof:
        times = eager_layer_times(model, (x,), repeats=2)
    ops = {e.name for e in prof.events()}
    # hooks on the layer or its submodules would make PyTorch run it unfused; timed around
    # its forward it runs the fused operator, and its submodules get no time of their own
    assert "aten::_transformer_encoder_layer_fwd" in ops
    assert {"encoder.layers.0", "encoder.layers.1", "encoder", "head", ""} <= set(times)
    assert not any(name.startswith("encoder.layers.0.") for name in times)
    assert all(seconds >= 0 for seconds in times.values())
    # the model is as it was: no hooks, no forward of its own on any module
    assert _hooks(model) == 0
    assert not any("forward" in m.__dict__ for m in model.modules())


def test_a_forward_of_the_modules_own_is_given_back():
    model = Encoder().eval()
    layer = model.encoder.layers[0]
    own = layer.forward  # a bound method stored on the instance, as a user might
    layer.forward = own
    eager_layer_times(model, (torch.randn(1, 8, 16),), repeats=1)
    assert layer.__dict__["forward"] is own
    assert _hooks(model) == 0
