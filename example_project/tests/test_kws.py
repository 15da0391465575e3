"""Keyword spotting (DS-CNN, 49x10 MFCCs) on two microcontroller-class targets.

The STM32H743 budget lives in pyproject.toml (flash for weights, SRAM for activations,
latency); the Ethos-U55 one is a marker.
"""

from __future__ import annotations

import pytest
import torch
from pytest_flopbudget import profile

from edge_models import DSCNN

MFCC = (1, 1, 49, 10)  # one second of audio: 49 frames x 10 coefficients


def test_ds_cnn_on_the_stm32h7(flop_budget):
    prof = flop_budget(DSCNN().eval(), torch.randn(*MFCC))
    assert prof.weight_bytes == prof.params == 23_180  # one byte per int8 weight


@pytest.mark.flop_budget(
    device="ethos-u55",
    max_latency_ms=0.4,  # measured 0.208 ms (52%)
    max_mmacs=3,  # measured 2.66 MMACs (89%)
)
def test_ds_cnn_on_ethos_u55(flop_budget):
    flop_budget(DSCNN().eval(), torch.randn(*MFCC))


def test_ds_cnn_macs_by_hand():
    """Stem: 25x5 outputs x 64 x (10x4); each block: 25x5x64x9 (depthwise) + 25x5x64x64
    (pointwise); classifier 64x12."""
    prof = profile(DSCNN().eval(), torch.randn(*MFCC))
    stem = 25 * 5 * 64 * 10 * 4
    block = 25 * 5 * 64 * 9 + 25 * 5 * 64 * 64
    assert prof.macs == stem + 4 * block + 64 * 12 == 2_656_768
