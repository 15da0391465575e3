"""Reference architectures against their published MACs (within 1%) and parameter counts."""

from __future__ import annotations

import pytest
import torch
from reference_models import (
    Decoder,
    MobileNetV2,
    VibrationClassifier,
    resnet18,
    resnet50,
    vit_b_16,
)

from pytest_flopbudget import profile

PUBLISHED = {
    # model: (builder, published GMACs at 224x224, published parameters)
    "resnet18": (resnet18, 1.81, 11_689_512),
    "resnet50": (resnet50, 4.09, 25_557_032),
    "mobilenet_v2": (MobileNetV2, 0.30, 3_504_872),
    "vit_b_16": (vit_b_16, 17.56, 86_567_656),
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_figures(name):
    build, gmacs, params = PUBLISHED[name]
    p = profile(build().eval(), torch.randn(1, 3, 224, 224))
    assert p.params == params
    assert p.macs == pytest.approx(gmacs * 1e9, rel=0.01)
    assert p.unsupported == {}
    assert p.traced == "fake"


def test_seed000_classifier():
    p = profile(VibrationClassifier().eval(), torch.randn(1, 1, 1024))
    # Bi-LSTM: 2 x 128 steps x 4 x 128 x (128 + 128)
    assert p.layer("lstm").macs == 33_554_432
    # convs: 1*32*3*1024 + 32*32*3*1024 + 32*64*3*512 + 64*128*3*256
    #      = 98,304 + 3,145,728 + 3,145,728 + 6,291,456 = 12,681,216
    assert p.layer("features").macs == 12_681_216
    # attention: proj 128 steps * 256 * 256 = 8,388,608; scores energy @ query 128 * 256 =
    # 32,768; context weights @ h 128 * 256 = 32,768; head 256*500 + 500*10 = 133,000
    assert p.layer("attention").macs == 8_388_608 + 32_768 + 32_768
    assert p.macs == 12_681_216 + 33_554_432 + 8_454_144 + 133_000 == 54_822_792
    assert p.unsupported == {}


def test_llama7b_shaped_decoder_on_meta():
    with torch.device("meta"):
        model = Decoder()
    p = profile(model, torch.randint(0, 32_000, (1, 2048)))
    # LLaMA-7B: 6,738,415,616 parameters
    assert p.params == 6_738_415_616
    # per layer: q,k,v,o 4*2048*4096^2 + scores and values 2*32*2048*2048*128
    # + SwiGLU 3*2048*4096*11008; plus the lm_head 2048*4096*32000
    per_layer = 4 * 2048 * 4096**2 + 2 * 32 * 2048 * 2048 * 128 + 3 * 2048 * 4096 * 11008
    assert p.macs == 32 * per_layer + 2048 * 4096 * 32_000
    assert p.unsupported == {}
