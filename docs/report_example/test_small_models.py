"""Two models within their budgets."""

import pytest
import torch
from torch import nn


def keyword_spotter() -> nn.Module:
    """A small 2-D CNN over a 1 x 40 x 98 log-mel spectrogram, 12 keywords."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.Conv2d(32, 64, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 12),
    )


@pytest.mark.flop_budget(max_mflops=20, max_params=20_000, max_latency_ms=1, device="cpu")
def test_keyword_spotter_on_cpu(flop_budget):
    flop_budget(keyword_spotter().eval(), torch.randn(1, 1, 40, 98))


@pytest.mark.flop_budget(max_mflops=2.5, max_params=1_100_000, device="gpu")
def test_linear_head_on_gpu(flop_budget):
    flop_budget(nn.Linear(1000, 1000), torch.randn(1, 1000))
