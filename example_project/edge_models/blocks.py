"""Seed 002's three convolutions as blocks: standard, depthwise-separable and partial.

For an ``H x W x C_in -> H x W x C_out`` layer with a ``K x K`` kernel (seed 002's notation):

=================  ================================  ==========================================
block              MACs                              memory access (elements)
=================  ================================  ==========================================
standard conv      H W C_out K^2 C_in                H W (C_in + C_out) + K^2 C_in C_out
depthwise-sep.     H W C_in K^2 + H W C_in C_out     H W 2 C_in + C_in K^2 + C_in C_out
                                                     + H W (C_in + C_out)
partial (PConv)    H W C_p^2 K^2                     H W 2 C_p + K^2 C_p^2
=================  ================================  ==========================================

PConv convolves only the first ``C_p = C / n_div`` channels and passes the rest through, so
with FasterNet's ``n_div = 4`` it does 1/16 of a standard convolution's MACs.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBNReLU(nn.Sequential):
    """``k x k`` convolution (no bias), BatchNorm, ReLU; ``groups=c_in`` makes it depthwise."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class DepthwiseSeparable(nn.Sequential):
    """MobileNetV1's block: a 3x3 depthwise convolution, then a 1x1 pointwise one."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = ConvBNReLU(c_in, c_in, 3, stride, groups=c_in)
        self.pointwise = ConvBNReLU(c_in, c_out, 1)


class PartialConv(nn.Module):
    """FasterNet's PConv: a ``k x k`` convolution on the first ``dim // n_div`` channels; the
    other channels are passed through untouched."""

    def __init__(self, dim: int, n_div: int = 4, k: int = 3) -> None:
        super().__init__()
        self.dim_conv = dim // n_div
        self.dim_untouched = dim - self.dim_conv
        self.conv = nn.Conv2d(self.dim_conv, self.dim_conv, k, 1, (k - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        part, rest = torch.split(x, [self.dim_conv, self.dim_untouched], dim=1)
        return torch.cat((self.conv(part), rest), dim=1)


class FasterNetBlock(nn.Module):
    """FasterNet's block: PConv, then a 1x1 expansion (x ``expand``) with BatchNorm and ReLU,
    a 1x1 projection back, and a residual connection."""

    def __init__(self, dim: int, expand: int = 2, n_div: int = 4) -> None:
        super().__init__()
        hidden = dim * expand
        self.spatial_mixing = PartialConv(dim, n_div)
        self.mlp = nn.Sequential(
            nn.Conv2d(dim, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, dim, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.spatial_mixing(x))
