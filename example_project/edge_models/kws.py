"""Keyword spotting on a microcontroller: the DS-CNN of "Hello Edge" (Zhang et al. 2017).

Input: 49 frames x 10 MFCCs (one second of audio, 40 ms windows every 20 ms). A 10x4
convolution with stride 2 gives 25x5x64, four depthwise-separable blocks keep that shape,
global average pooling and a linear layer score 12 classes (10 words, silence, unknown).
This is the small configuration of Arm's ML-KWS-for-MCU repository (model_size_info
``5 64 10 4 2 2 64 3 3 1 1 64 3 3 1 1 64 3 3 1 1 64 3 3 1 1``).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import DepthwiseSeparable


class DSCNN(nn.Module):
    """DS-CNN (small): conv 10x4/2 with 64 filters, 4 depthwise-separable blocks of 64."""

    def __init__(self, num_classes: int = 12, channels: int = 64, blocks: int = 4) -> None:
        super().__init__()
        # padding (5, 1) maps 49x10 to 25x5, the output of TensorFlow's "same" padding
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels, (10, 4), stride=2, padding=(5, 1), bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(*[DepthwiseSeparable(channels, channels)
                                      for _ in range(blocks)])
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 49, 10)
        x = self.blocks(self.stem(x)).mean(dim=(2, 3))
        return self.classifier(x)
