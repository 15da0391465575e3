"""Seed 004: the modified ResNet on a 57x57x1 input, with the seed's layer table corrected.

Layer by layer (README.md has the full table and the derivation of every count):

    conv1  1x5,  1->16, pad (0,2)    57x57x16        conv7/8  3x3, 16->32, 32->32   15x15x32
    conv2  5x1, 16->16, pad (2,0)    57x57x16        pool3    2x2/2, ceil            8x8x32
    pool1  2x2/2, ceil               29x29x16        conv9-12 3x3, 32->32            8x8x32
    conv3-6 3x3, 16->16, pad 1       29x29x16        pool4    2x2/2, ceil            4x4x32
    pool2  2x2/2, ceil               15x15x16        fc1 512->512, fc2 512->4

The seed draws no skip connections in its table; this variant pairs the 3x3 convolutions
into five basic residual blocks whose shortcuts have no parameters (identity, and for the
16->32 block the zero-padded identity of He et al. 2016, "option A"), so every parameter
count stays the seed's: conv weights with a bias, no BatchNorm, ReLU after every layer.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a parameter-free shortcut: ``relu(conv_b(relu(conv_a(x)))
    + x)``, the input zero-padded with extra channels when ``c_out > c_in``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv_b = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.extra_channels = c_out - c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels)) if self.extra_channels \
            else x
        out = self.conv_b(F.relu(self.conv_a(x)))
        return F.relu(out + shortcut)


class ResNet57(nn.Module):
    """Seed 004's network: 12 convolutions, 4 max-pools, 2 fully connected layers."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, (1, 5), padding=(0, 2))
        self.conv2 = nn.Conv2d(16, 16, (5, 1), padding=(2, 0))
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)  # 57 -> 29
        self.block1 = BasicBlock(16, 16)  # conv3, conv4
        self.block2 = BasicBlock(16, 16)  # conv5, conv6
        self.pool2 = nn.MaxPool2d(2, 2, ceil_mode=True)  # 29 -> 15
        self.block3 = BasicBlock(16, 32)  # conv7, conv8
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)  # 15 -> 8
        self.block4 = BasicBlock(32, 32)  # conv9, conv10
        self.block5 = BasicBlock(32, 32)  # conv11, conv12
        self.pool4 = nn.MaxPool2d(2, 2, ceil_mode=True)  # 8 -> 4
        self.fc1 = nn.Linear(4 * 4 * 32, 512)
        self.fc2 = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 57, 57)
        x = self.pool1(F.relu(self.conv2(F.relu(self.conv1(x)))))  # (B, 16, 29, 29)
        x = self.pool2(self.block2(self.block1(x)))  # (B, 16, 15, 15)
        x = self.pool3(self.block3(x))  # (B, 32, 8, 8)
        x = self.pool4(self.block5(self.block4(x)))  # (B, 32, 4, 4)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


#: The seed's rows in order: (seed name, module path in ResNet57, parameter count derived
#: as (kh * kw * c_in + 1) * c_out for a conv, (n_in + 1) * n_out for a linear layer).
LAYER_PARAMS: list[tuple[str, str, int]] = [
    ("Conv1", "conv1", (1 * 5 * 1 + 1) * 16),  # 96
    ("Conv2", "conv2", (5 * 1 * 16 + 1) * 16),  # 1,296 (seed: 96)
    ("Conv3", "block1.conv_a", (3 * 3 * 16 + 1) * 16),  # 2,320
    ("Conv4", "block1.conv_b", (3 * 3 * 16 + 1) * 16),  # 2,320
    ("Conv5", "block2.conv_a", (3 * 3 * 16 + 1) * 16),  # 2,320
    ("Conv6", "block2.conv_b", (3 * 3 * 16 + 1) * 16),  # 2,320
    ("Conv7", "block3.conv_a", (3 * 3 * 16 + 1) * 32),  # 4,640
    ("Conv8", "block3.conv_b", (3 * 3 * 32 + 1) * 32),  # 9,248 (seed: 4,640)
    ("Conv9", "block4.conv_a", (3 * 3 * 32 + 1) * 32),  # 9,248 (seed: 4,640)
    ("Conv10", "block4.conv_b", (3 * 3 * 32 + 1) * 32),  # 9,248 (seed: 4,640)
    ("Conv11", "block5.conv_a", (3 * 3 * 32 + 1) * 32),  # 9,248 (seed: 4,640)
    ("Conv12", "block5.conv_b", (3 * 3 * 32 + 1) * 32),  # 9,248 (seed: 4,640)
    ("FC1", "fc1", (4 * 4 * 32 + 1) * 512),  # 262,656
    ("FC2", "fc2", (512 + 1) * 4),  # 2,052
]
