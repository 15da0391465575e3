"""Two small image backbones for a 96x96 RGB camera frame (a person / no-person wake word).

* :class:`MobileNetV1`: MobileNetV1 (Howard et al. 2017) at width 0.25, built from
  depthwise-separable blocks. Few MACs, but most of its layers are depthwise or 1x1
  convolutions with little arithmetic per byte moved.
* :class:`TinyFasterNet`: a four-stage FasterNet (Chen et al. 2023) built from partial
  convolutions: a 4x4 patch embedding, FasterNet blocks, 2x2 merging layers between stages.
  No depthwise convolution at all, which matters on NPUs that run depthwise slowly.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvBNReLU, DepthwiseSeparable, FasterNetBlock

#: MobileNetV1's body at width 1.0: (output channels, stride) per depthwise-separable block.
MOBILENET_V1 = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


class MobileNetV1(nn.Module):
    """MobileNetV1 at ``width`` (default 0.25): a strided 3x3 stem, 13 depthwise-separable
    blocks, global average pooling, a linear classifier."""

    def __init__(self, num_classes: int = 2, width: float = 0.25, in_channels: int = 3) -> None:
        super().__init__()
        c = int(32 * width)
        layers: list[nn.Module] = [ConvBNReLU(in_channels, c, 3, 2)]
        for c_out, stride in MOBILENET_V1:
            layers.append(DepthwiseSeparable(c, int(c_out * width), stride))
            c = int(c_out * width)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        return self.classifier(x)


class TinyFasterNet(nn.Module):
    """FasterNet with ``dims`` channels and ``depths`` blocks per stage: a 4x4/4 patch
    embedding, stages of FasterNet blocks with 2x2/2 merging between them, global average
    pooling and a linear classifier."""

    def __init__(self, num_classes: int = 2, in_channels: int = 3,
                 dims: tuple[int, ...] = (32, 64, 128, 256),
                 depths: tuple[int, ...] = (1, 2, 2, 1)) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, dims[0], 4, 4, bias=False),
                                   nn.BatchNorm2d(dims[0])]
        for i, (dim, depth) in enumerate(zip(dims, depths, strict=True)):
            if i:
                layers += [nn.Conv2d(dims[i - 1], dim, 2, 2, bias=False), nn.BatchNorm2d(dim)]
            layers += [FasterNetBlock(dim) for _ in range(depth)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(dims[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        return self.classifier(x)
