"""A small transformer encoder on the same window, for contrast with the Bi-LSTM.

Its MACs are a tenth of the classifier's, and none of them is recurrent: the NPU runs its
matrix products at full rate instead of one dependent step at a time.
"""

from __future__ import annotations

import pytest
import torch
from pytest_flopbudget import profile

from edge_models import SignalTransformer, VibrationNet

WINDOW = (1, 1, 1024)


@pytest.mark.flop_budget(
    device="vibration-npu",
    max_latency_ms=0.12,  # measured 0.0856 ms (71%)
    max_mflops=12,  # measured 11.03 MFLOPs (92%)
    max_params=80_000,  # measured 72,906 (91%)
)
def test_signal_transformer_on_the_vibration_npu(flop_budget):
    flop_budget(SignalTransformer().eval(), torch.randn(*WINDOW))


def test_transformer_meets_the_5_ms_window_the_bilstm_misses():
    x = torch.randn(*WINDOW)
    lstm = profile(VibrationNet().eval(), x, dtype="int8").latency("vibration-npu")
    attn = profile(SignalTransformer().eval(), x, dtype="int8").latency("vibration-npu")
    assert lstm.ms > 5 > attn.ms
    assert attn.ms < lstm.ms / 50  # 0.096 ms against 9.55 ms
