"""Seed 002's blocks and two 96x96 backbones built from them, on the generic NPU.

MobileNetV1 x0.25 is held to a MAC budget: depthwise-separable blocks are how it stays small.
The FasterNet has 2.7x its MACs and is still predicted faster on the NPU, which runs
depthwise convolution at 1/8 of its rate: a MAC budget alone would pick the wrong model.
"""

from __future__ import annotations

import pytest
import torch
from pytest_flopbudget import profile
from torch import nn

from edge_models import DepthwiseSeparable, MobileNetV1, PartialConv, TinyFasterNet

FRAME = (1, 3, 96, 96)


@pytest.mark.flop_budget(
    max_mmacs=8,  # measured 7.49 MMACs (94%)
    max_params=250_000,  # measured 213,586 (85%)
)
def test_mobilenet_v1_mac_budget(flop_budget):
    flop_budget(MobileNetV1().eval(), torch.randn(*FRAME))


@pytest.mark.flop_budget(
    max_latency_ms=0.8,  # measured 0.422 ms on npu (53%)
    max_mmacs=22,  # measured 20.57 MMACs (94%)
)
def test_tiny_fasternet_latency_budget(flop_budget):
    flop_budget(TinyFasterNet().eval(), torch.randn(*FRAME))


def test_fasternet_is_faster_on_the_npu_despite_more_macs():
    x = torch.randn(*FRAME)
    mobilenet = profile(MobileNetV1().eval(), x, dtype="int8")
    fasternet = profile(TinyFasterNet().eval(), x, dtype="int8")
    assert fasternet.macs > 2.5 * mobilenet.macs
    assert fasternet.latency("npu").ms < mobilenet.latency("npu").ms


# Seed 002's formulas on one 28x28 layer with 64 channels in and out, 3x3 kernel; memory
# access is counted in elements, which at int8 is bytes.
H = W = 28
C = 64
K = 3


def test_standard_convolution_matches_seed_002():
    prof = profile(nn.Conv2d(C, C, K, padding=1, bias=False), torch.randn(1, C, H, W),
                   dtype="int8")
    assert prof.macs == H * W * C * K**2 * C == 28_901_376
    assert prof.bytes == H * W * (C + C) + K**2 * C * C == 137_216


def test_depthwise_separable_matches_seed_002():
    prof = profile(DepthwiseSeparable(C, C).eval(), torch.randn(1, C, H, W), dtype="int8")
    dw, pw = prof.layer("depthwise.0"), prof.layer("pointwise.0")
    assert dw.macs + pw.macs == H * W * C * K**2 + H * W * C * C == 3_662_848
    assert dw.bytes == H * W * 2 * C + C * K**2 == 100_928
    assert pw.bytes == C * C + H * W * (C + C) == 104_448
    # BatchNorm and ReLU after each convolution move the feature map again (seed 002 leaves
    # them out; a deployment folds BatchNorm into the convolution and fuses the ReLU)
    assert prof.bytes > dw.bytes + pw.bytes


def test_partial_convolution_matches_seed_002():
    prof = profile(PartialConv(C).eval(), torch.randn(1, C, H, W), dtype="int8")
    cp = C // 4
    conv = prof.layer("conv")
    assert conv.macs == H * W * cp**2 * K**2 == 1_806_336  # 1/16 of the standard conv
    assert conv.bytes == H * W * 2 * cp + K**2 * cp**2 == 27_392
    # torch.cat copies the whole map into a new tensor: traffic the seed's formula (and an
    # in-place kernel) does not have
    assert prof.bytes - conv.bytes == 2 * H * W * C
