"""Held-out models for ``bench/latency_accuracy.py``: the reference architectures of the tests
at sizes that run in milliseconds on a CPU, plus small models written here (a GRU and an LSTM
tagger, a transformer encoder, an MLP, a DS-CNN, a C3D-style 3-D CNN, elementwise chains on
DRAM- and cache-resident tensors).

``zoo()`` returns ``[(name, model, inputs)]``; every model is in eval mode. The models are
never used to calibrate anything: calibration fits its figures to its own fixed
microbenchmarks (``pytest_flopbudget/calibration/microbench.py``), none of which is one of
these models.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from reference_models import (
    Decoder,
    MobileNetV2,
    VibrationClassifier,
    VisionTransformer,
    resnet18,
    resnet50,
)


class GRUTagger(nn.Module):
    """A speech-style recurrent model: 2-layer GRU over 100 frames of 40 features, then a
    per-frame linear classifier."""

    def __init__(self, features: int = 40, hidden: int = 128, classes: int = 30) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(x)
        return self.head(h)


class EncoderClassifier(nn.Module):
    """``nn.TransformerEncoder`` (4 layers, d=256, 4 heads, FFN 1024) over 128 tokens, then
    mean pooling and a linear head."""

    def __init__(self, dim: int = 256, heads: int = 4, ffn: int = 1024, layers: int = 4,
                 classes: int = 10) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(dim, heads, ffn, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(dim=1))


class MLP(nn.Module):
    """784-1024-1024-512-10 with ReLU, batch of 64."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                                 nn.ReLU(), nn.Linear(1024, 512), nn.ReLU(),
                                 nn.Linear(512, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DSCNN(nn.Module):
    """A keyword-spotting depthwise-separable CNN (DS-CNN-S shape, Zhang et al. 2017):
    one 10x4 conv, four depthwise-separable blocks with batch norm, average pooling."""

    def __init__(self, channels: int = 64, classes: int = 12) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, channels, (10, 4), (2, 2), (5, 1)),
                                   nn.BatchNorm2d(channels), nn.ReLU()]
        for _ in range(4):
            layers += [nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
                       nn.BatchNorm2d(channels), nn.ReLU(),
                       nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.head(torch.flatten(x, 1))


class LSTMClassifier(nn.Module):
    """A 2-layer LSTM over 80 frames of 64 features (an activity or keyword model), then a
    linear head on the last step."""

    def __init__(self, features: int = 64, hidden: int = 160, classes: int = 12) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(x)
        return self.head(h[:, -1])


class Video3D(nn.Module):
    """A small C3D-style video classifier: three conv3d-BN-ReLU stages with 3-D pooling over
    a 16-frame 64x64 clip."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()

        def stage(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv3d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm3d(c_out),
                    nn.ReLU(inplace=True)]

        self.features = nn.Sequential(*stage(3, 16), nn.MaxPool3d((1, 2, 2)),
                                      *stage(16, 32), nn.MaxPool3d(2),
                                      *stage(32, 64), nn.MaxPool3d(2),
                                      *stage(64, 64))
        self.head = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.head(x.mean(dim=(2, 3, 4)))


class ElementwiseChain(nn.Module):
    """Layers of layer_norm -> GELU -> scale (mul) -> residual add on one activation
    tensor: no matrix product at all, every operator streams the whole tensor."""

    def __init__(self, dim: int, layers: int = 4) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))
        self.scales = nn.ParameterList(nn.Parameter(torch.rand(dim) + 0.5)
                                       for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for norm, scale in zip(self.norms, self.scales, strict=True):
            x = nn.functional.gelu(norm(x)) * scale + x
        return x


def zoo() -> list[tuple[str, nn.Module, tuple[torch.Tensor, ...]]]:
    """``[(name, model, inputs)]``, all in eval mode with fixed random weights and inputs."""
    torch.manual_seed(0)
    models: list[tuple[str, nn.Module, tuple[torch.Tensor, ...]]] = [
        ("ResNet-18 @112", resnet18(), (torch.randn(1, 3, 112, 112),)),
        ("ResNet-50 @96", resnet50(), (torch.randn(1, 3, 96, 96),)),
        ("MobileNetV2 @160", MobileNetV2(), (torch.randn(1, 3, 160, 160),)),
        ("DS-CNN KWS 49x10", DSCNN(), (torch.randn(1, 1, 49, 10),)),
        ("Vibration (seed 000)", VibrationClassifier(), (torch.randn(1, 1, 1024),)),
        ("GRU 2x128, 100 steps", GRUTagger(), (torch.randn(1, 100, 40),)),
        ("TransformerEncoder 4x256", EncoderClassifier(), (torch.randn(1, 128, 256),)),
        ("ViT-S/16 @112", VisionTransformer(image=112, dim=384, depth=6, heads=6, mlp=1536),
         (torch.randn(1, 3, 112, 112),)),
        ("Decoder 4x256, 64 tokens",
         Decoder(layers=4, dim=256, heads=4, ffn=688, vocab=4000),
         (torch.randint(0, 4000, (1, 64)),)),
        ("MLP 784-1024-1024-512 b64", MLP(), (torch.randn(64, 784),)),
        ("LSTM 2x160, 80 steps", LSTMClassifier(), (torch.randn(1, 80, 64),)),
        ("C3D-small 16x64x64", Video3D(), (torch.randn(1, 3, 16, 64, 64),)),
        # 16 MiB activations (4M floats): DRAM-bound, every output larger than the cache
        ("Chain LN-GELU-mul-add 16 MiB", ElementwiseChain(1024), (torch.randn(1, 4096, 1024),)),
        # 256 KiB activations: cache-resident
        ("Chain LN-GELU-mul-add 256 KiB", ElementwiseChain(512, 6), (torch.randn(1, 128, 512),)),
    ]
    return [(name, model.eval(), inputs) for name, model, inputs in models]
