"""The seed-000 vibration classifier on the generic NPU: over its 5 ms latency budget."""

import pytest
import torch
from reference_models import VibrationClassifier


@pytest.mark.flop_budget(max_latency_ms=5, max_params=600_000, device="npu")
def test_vibration_classifier_on_npu(flop_budget):
    flop_budget(VibrationClassifier().eval(), torch.randn(1, 1, 1024))
