"""The networks of the edge calibration set, rebuilt in PyTorch (torchvision and timm do not
import here).

Every builder names the public definition it follows; ``tests/test_edge_networks.py`` checks
each one's parameter count against the published figure (and a few MAC counts). Builders take
no weights: build them under ``torch.device("meta")`` to count them without allocating.

Conventions of the rebuilds:

* **torchvision / timm / Ultralytics / Megvii / MLPerf** definitions keep their BatchNorm layers
  (as the PyTorch model is defined; deployment runtimes fold them).
* **ncnn benchmark graphs** (``ncnn_*``) are rebuilt layer by layer from Tencent/ncnn
  ``benchmark/*.param``: those graphs are already optimised, so BatchNorm is folded into a
  convolution bias and activations are fused (``9=1`` ReLU, ``9=4`` sigmoid); they are rebuilt
  as ``Conv2d(bias=True)`` followed by the activation, Caffe pooling rounds up
  (``ceil_mode=True``), and the graph's final Softmax is kept.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from reference_models import (
    BasicBlock,
    Bottleneck,
    InvertedResidual,
    ResNet,
    _conv_bn,
)

Act = Callable[[], nn.Module]
Kernel = int | tuple[int, int]


def _pair(k: Kernel) -> tuple[int, int]:
    return (k, k) if isinstance(k, int) else k


class PadSame(nn.Module):
    """TensorFlow 'SAME' padding computed from the input size, as timm's ``Conv2dSame`` pads
    before a strided convolution of a ``tf_`` model (``F.pad``, more at the bottom/right)."""

    def __init__(self, k: int, stride: int) -> None:
        super().__init__()
        self.k, self.stride = k, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((math.ceil(size / self.stride) - 1) * self.stride + self.k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)


def conv(c_in: int, c_out: int, k: Kernel = 1, s: int = 1, p: Kernel | None = None, *,
         groups: int = 1, bias: bool = False, bn: bool = True, eps: float = 1e-5,
         act: Act | None = nn.ReLU, tf_same: bool = False) -> nn.Sequential:
    """``Conv2d`` [+ ``BatchNorm2d``] [+ activation]; padding defaults to ``(k - 1) // 2``.
    ``tf_same``: a strided convolution gets TF 'SAME' padding from a ``PadSame`` before it
    (timm's ``tf_`` models; unstrided ones pad symmetrically, as timm does)."""
    kh, kw = _pair(k)
    pad = p if p is not None else ((kh - 1) // 2, (kw - 1) // 2)
    layers: list[nn.Module] = []
    if tf_same and s > 1:
        layers.append(PadSame(kh, s))
        pad = 0
    layers.append(nn.Conv2d(c_in, c_out, (kh, kw), s, pad, groups=groups, bias=bias))
    if bn:
        layers.append(nn.BatchNorm2d(c_out, eps=eps))
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def conv_bias(c_in: int, c_out: int, k: Kernel = 1, s: int = 1, p: Kernel | None = None, *,
              groups: int = 1, act: Act | None = nn.ReLU) -> nn.Sequential:
    """``Conv2d`` with a bias and an activation, no batch norm: the convolutions of the
    BatchNorm-free networks (VGG, AlexNet, SqueezeNet), and an ncnn ``Convolution`` (its bias
    holds the folded BatchNorm, its activation is fused)."""
    return conv(c_in, c_out, k, s, p, groups=groups, bias=True, bn=False, act=act)


def caffe_pool(k: int = 3, s: int = 2) -> nn.MaxPool2d:
    """Max pooling whose output size rounds up, as Caffe's (and torchvision's GoogLeNet and
    SqueezeNet, and ncnn's default ``Pooling``) does."""
    return nn.MaxPool2d(k, s, ceil_mode=True)


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible`` (and TF's ``round_filters``): nearest multiple of
    ``divisor``, never 10% below ``v``."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class Residual(nn.Module):
    """``body(x) + x``; with ``shortcut``: ``body(x) + shortcut(x)``; ``post`` after the sum."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None,
                 post: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.post = post

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
        return y if self.post is None else self.post(y)


class Concat(nn.Module):
    """Runs every branch on the same input and concatenates the results on channels."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class Classifier(nn.Module):
    """Global average pooling, flatten, dropout (nothing at inference) and a linear layer: the
    head of most classification networks here."""

    def __init__(self, c_in: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))


class SqueezeExcite(nn.Module):
    """``x * gate(fc2(act(fc1(avgpool(x)))))`` with 1x1 convolutions as the two FC layers."""

    def __init__(self, c: int, squeeze: int, act: Act = nn.ReLU,
                 gate: Act = nn.Sigmoid) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.act = act()
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


# ===========================================================================================
# torchvision classification networks
# ===========================================================================================

def resnet18() -> nn.Module:
    """torchvision ``resnet18()`` (He et al. 2016): 11,689,512 parameters."""
    return ResNet(BasicBlock, [2, 2, 2, 2])


def resnet34() -> nn.Module:
    """torchvision ``resnet34()``: 21,797,672 parameters."""
    return ResNet(BasicBlock, [3, 4, 6, 3])


def resnet50() -> nn.Module:
    """torchvision ``resnet50()``, ResNet v1.5 (stride on the 3x3 convolution): 25,557,032
    parameters."""
    return ResNet(Bottleneck, [3, 4, 6, 3])


def resnet101() -> nn.Module:
    """torchvision ``resnet101()`` (v1.5): 44,549,160 parameters."""
    return ResNet(Bottleneck, [3, 4, 23, 3])


class MobileNetV2(nn.Module):
    """torchvision ``mobilenet_v2(width_mult, num_classes)`` (Sandler et al. 2018): channels
    rounded by ``make_divisible``, last layer ``make_divisible(1280 * max(1, width_mult))``;
    the blocks are ``tests/reference_models.py``'s."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, width_mult: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        c_in = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [_conv_bn(3, c_in, 3, 2)]
        for t, c, n, s in self.SETTINGS:
            c_out = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(c_in, c_out, s if i == 0 else 1, t))
                c_in = c_out
        layers.append(_conv_bn(c_in, last, 1, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2(width_mult: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """torchvision ``mobilenet_v2()``: 3,504,872 parameters at width 1.0, 1000 classes."""
    return MobileNetV2(width_mult, num_classes)


def _inception(c_in: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool: int,
               unit: Callable[..., nn.Module], k5: int) -> Concat:
    """GoogLeNet's Inception module: 1x1 | 1x1-3x3 | 1x1-k5 x k5 | maxpool-1x1."""
    return Concat(
        unit(c_in, c1, 1),
        nn.Sequential(unit(c_in, c3r, 1), unit(c3r, c3, 3)),
        nn.Sequential(unit(c_in, c5r, 1), unit(c5r, c5, k5)),
        nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), unit(c_in, pool, 1)),
    )


#: GoogLeNet's nine Inception modules: (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj)
GOOGLENET = {
    "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


def googlenet(num_classes: int = 1000) -> nn.Module:
    """torchvision ``googlenet(aux_logits=False)`` (Szegedy et al. 2015 as torchvision builds
    it: BatchNorm after every convolution, eps 1e-3, and a 3x3 where the paper's "5x5" branch
    is): 6,624,904 parameters."""
    def unit(c_in: int, c_out: int, k: int) -> nn.Module:
        return conv(c_in, c_out, k, eps=1e-3)

    inc = {name: _inception(*cfg, unit=unit, k5=3) for name, cfg in GOOGLENET.items()}
    return nn.Sequential(
        conv(3, 64, 7, 2, eps=1e-3), caffe_pool(),
        conv(64, 64, 1, eps=1e-3), conv(64, 192, 3, eps=1e-3), caffe_pool(),
        inc["3a"], inc["3b"], caffe_pool(),
        inc["4a"], inc["4b"], inc["4c"], inc["4d"], inc["4e"],
        caffe_pool(2), inc["5a"], inc["5b"],
        Classifier(1024, num_classes, dropout=0.2),
    )


VGG_CFG = {
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"),
}


def _vgg_features(cfg: Sequence[int | str]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    c_in = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers.append(conv_bias(c_in, int(v), 3))
            c_in = int(v)
    return layers


def _vgg_head(num_classes: int) -> list[nn.Module]:
    return [nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, num_classes)]


def _vgg(cfg: str, num_classes: int) -> nn.Module:
    return nn.Sequential(*_vgg_features(VGG_CFG[cfg]), nn.AdaptiveAvgPool2d(7),
                         *_vgg_head(num_classes))


def vgg13(num_classes: int = 1000) -> nn.Module:
    """torchvision ``vgg13()`` (Simonyan & Zisserman 2015, configuration B, no batch norm):
    features, ``AdaptiveAvgPool2d(7)``, three linear layers: 133,047,848 parameters."""
    return _vgg("vgg13", num_classes)


def vgg16(num_classes: int = 1000) -> nn.Module:
    """torchvision ``vgg16()`` (configuration D, no batch norm): 138,357,544 parameters."""
    return _vgg("vgg16", num_classes)


def alexnet(num_classes: int = 1000) -> nn.Module:
    """torchvision ``alexnet()`` (the "one weird trick" single-tower variant: 64-192-384-256-
    256 channels): 61,100,840 parameters."""
    return nn.Sequential(
        conv_bias(3, 64, 11, 4, 2), nn.MaxPool2d(3, 2), conv_bias(64, 192, 5),
        nn.MaxPool2d(3, 2), conv_bias(192, 384, 3), conv_bias(384, 256, 3),
        conv_bias(256, 256, 3), nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d(6), nn.Flatten(), nn.Dropout(), nn.Linear(256 * 36, 4096),
        nn.ReLU(), nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, num_classes),
    )


def _fire(c_in: int, squeeze: int, e1: int, e3: int) -> nn.Module:
    """SqueezeNet's Fire module: 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""
    return nn.Sequential(conv_bias(c_in, squeeze, 1),
                         Concat(conv_bias(squeeze, e1, 1), conv_bias(squeeze, e3, 3)))


class SqueezeNet11(nn.Module):
    """SqueezeNet 1.1 (Iandola et al. 2016; DeepScale's v1.1 Caffe model), torchvision's
    layout: Caffe-style pooling, eight Fire modules, ``conv10`` to the classes, global average
    pooling. ``conv10_padding`` and ``softmax`` reproduce ncnn's graph."""

    def __init__(self, num_classes: int = 1000, conv10_padding: int = 0,
                 softmax: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bias(3, 64, 3, 2, 0), caffe_pool(),
            _fire(64, 16, 64, 64), _fire(128, 16, 64, 64), caffe_pool(),
            _fire(128, 32, 128, 128), _fire(256, 32, 128, 128), caffe_pool(),
            _fire(256, 48, 192, 192), _fire(384, 48, 192, 192),
            _fire(384, 64, 256, 256), _fire(512, 64, 256, 256),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.5),
                                        conv_bias(512, num_classes, 1, p=conv10_padding),
                                        nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.softmax = nn.Softmax(1) if softmax else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.classifier(self.features(x)))


def squeezenet1_1(num_classes: int = 1000) -> nn.Module:
    """torchvision ``squeezenet1_1(num_classes)``: 1,235,496 parameters at 1000 classes."""
    return SqueezeNet11(num_classes)


class DenseLayer(nn.Module):
    """torchvision's ``_DenseLayer``: BN-ReLU-1x1 (4k) BN-ReLU-3x3 (k) on the concatenation of
    every earlier feature map of the block (torchvision concatenates them again per layer)."""

    def __init__(self, c_in: int, growth: int, bn_size: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)
        x = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(x)))


class DenseBlock(nn.ModuleDict):
    def __init__(self, n: int, c_in: int, growth: int) -> None:
        super().__init__({f"denselayer{i + 1}": DenseLayer(c_in + i * growth, growth)
                          for i in range(n)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseNet(nn.Module):
    """torchvision ``densenet121()`` / ``densenet201()`` (Huang et al. 2017): growth 32,
    64 initial features, transitions halve the channels."""

    def __init__(self, blocks: Sequence[int], growth: int = 32, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                   nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        c = 64
        for i, n in enumerate(blocks):
            layers.append(DenseBlock(n, c, growth))
            c += n * growth
            if i < len(blocks) - 1:
                layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False),
                           nn.AvgPool2d(2, 2)]
                c //= 2
        layers += [nn.BatchNorm2d(c), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = Classifier(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def densenet121() -> nn.Module:
    """torchvision ``densenet121()``: blocks (6, 12, 24, 16), 7,978,856 parameters."""
    return DenseNet((6, 12, 24, 16))


def densenet201() -> nn.Module:
    """torchvision ``densenet201()``: blocks (6, 12, 48, 32), 20,013,928 parameters."""
    return DenseNet((6, 12, 48, 32))


# ===========================================================================================
# EfficientNet family (torchvision efficientnet_b0, timm tf_efficientnet_em, ncnn graph)
# ===========================================================================================

class MBConv(nn.Module):
    """Inverted residual (MobileNetV2/EfficientNet ``ir``): [1x1 expand] kxk depthwise [SE]
    1x1 project; ``fused`` is EfficientNet-EdgeTPU's ``er`` block (one kxk convolution
    instead of expand + depthwise). Residual when the stride is 1 and the channels match
    (unless ``skip=False``)."""

    def __init__(self, c_in: int, c_out: int, k: int, s: int, expand: int, *, se: int = 0,
                 act: Act = nn.SiLU, bn: bool = True, eps: float = 1e-5, fused: bool = False,
                 mid: int | None = None, skip: bool = True, tf_same: bool = False) -> None:
        super().__init__()
        mid = mid if mid is not None else c_in * expand

        def unit(ci: int, co: int, kk: int, ss: int = 1, g: int = 1,
                 a: Act | None = act) -> nn.Module:
            return conv(ci, co, kk, ss, groups=g, bias=not bn, bn=bn, eps=eps, act=a,
                        tf_same=tf_same)

        layers: list[nn.Module] = []
        if fused:
            layers.append(unit(c_in, mid, k, s))
        else:
            if mid != c_in:
                layers.append(unit(c_in, mid, 1))
            layers.append(unit(mid, mid, k, s, mid))
        if se:
            layers.append(SqueezeExcite(mid, se, act))
        layers.append(unit(mid, c_out, 1, a=None))
        self.block = nn.Sequential(*layers)
        self.residual = skip and s == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class EfficientNet(nn.Module):
    """Stem, stages of ``MBConv`` blocks, 1x1 head convolution to ``head`` channels, global
    pooling and a linear classifier."""

    def __init__(self, stages: Sequence[tuple[int, int, int, int, int]], *, stem: int = 32,
                 head: int = 1280, act: Act = nn.SiLU, bn: bool = True, eps: float = 1e-5,
                 se_ratio: float = 0.0, num_classes: int = 1000, fused_stages: int = 0,
                 stage0_mid: int | None = None, stage0_skip: bool = True,
                 tf_same: bool = False) -> None:
        """``stages``: (expand, kernel, stride, channels, repeats) per stage; the first
        ``fused_stages`` use fused blocks; ``stage0_mid``/``stage0_skip`` override the first
        stage's expanded width and residual; ``tf_same``: TF 'SAME' padding (``PadSame``)."""
        super().__init__()
        blocks: list[nn.Module] = [conv(3, stem, 3, 2, bias=not bn, bn=bn, eps=eps, act=act,
                                        tf_same=tf_same)]
        c_in = stem
        for i, (t, k, s, c, n) in enumerate(stages):
            for j in range(n):
                se = max(1, int(c_in * se_ratio)) if se_ratio else 0
                blocks.append(MBConv(c_in, c, k, s if j == 0 else 1, t, se=se, act=act, bn=bn,
                                     eps=eps, fused=i < fused_stages,
                                     mid=stage0_mid if i == 0 else None,
                                     skip=stage0_skip or i > 0, tf_same=tf_same))
                c_in = c
        blocks.append(conv(c_in, head, 1, bias=not bn, bn=bn, eps=eps, act=act))
        self.features = nn.Sequential(*blocks)
        self.classifier = Classifier(head, num_classes, dropout=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


#: EfficientNet-B0 (Tan & Le 2019): (expand, kernel, stride, channels, repeats)
EFFICIENTNET_B0 = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                   (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))


def efficientnet_b0(num_classes: int = 1000) -> nn.Module:
    """torchvision ``efficientnet_b0()``: SiLU, squeeze-excitation to 1/4 of each block's
    input channels, BatchNorm eps 1e-5: 5,288,548 parameters."""
    return EfficientNet(EFFICIENTNET_B0, se_ratio=0.25, num_classes=num_classes)


def tf_efficientnet_em(num_classes: int = 1000) -> nn.Module:
    """timm ``tf_efficientnet_em`` (EfficientNet-EdgeTPU-M, Gupta & Tan 2019; timm
    ``_gen_efficientnet_edge(channel_multiplier=1.0, depth_multiplier=1.1)``): ReLU, no SE,
    fused ``er`` blocks in the first three stages, repeats ceil(1.1 x (1, 2, 4, 5, 4, 2)) =
    (2, 3, 5, 6, 5, 3), the first stage expands to 24 x 4 = 96 channels without residual
    (timm ``er_r1_k3_s1_e4_c24_fc24_noskip``), BatchNorm eps 1e-3, and TF 'SAME' padding: the
    five strided convolutions pad their input first (timm ``Conv2dSame``): 6,899,496
    parameters."""
    stages = ((4, 3, 1, 24, 2), (8, 3, 2, 32, 3), (8, 3, 2, 48, 5), (8, 5, 2, 96, 6),
              (8, 5, 1, 144, 5), (8, 5, 2, 192, 3))
    return EfficientNet(stages, act=nn.ReLU, eps=1e-3, fused_stages=3, stage0_mid=96,
                        stage0_skip=False, tf_same=True, num_classes=num_classes)


# ===========================================================================================
# timm: Inception-ResNet-v2 and ResNetV2-50 (pre-activation)
# ===========================================================================================

def _bc(c_in: int, c_out: int, k: Kernel, s: int = 1, p: Kernel = 0) -> nn.Module:
    """timm inception_resnet_v2 ``BasicConv2d``: conv (no bias), BN eps 1e-3, ReLU."""
    return conv(c_in, c_out, k, s, p, eps=1e-3)


class ScaledResidual(nn.Module):
    """Inception-ResNet block: ``act(x + scale * conv1x1(cat(branches(x))))``."""

    def __init__(self, branches: Concat, c_cat: int, c: int, scale: float,
                 relu: bool = True) -> None:
        super().__init__()
        self.branches = branches
        self.conv2d = nn.Conv2d(c_cat, c, 1)
        self.scale = scale
        self.relu = nn.ReLU() if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2d(self.branches(x)) * self.scale + x)


def _block35() -> nn.Module:
    return ScaledResidual(Concat(
        _bc(320, 32, 1),
        nn.Sequential(_bc(320, 32, 1), _bc(32, 32, 3, p=1)),
        nn.Sequential(_bc(320, 32, 1), _bc(32, 48, 3, p=1), _bc(48, 64, 3, p=1)),
    ), 128, 320, 0.17)


def _block17() -> nn.Module:
    return ScaledResidual(Concat(
        _bc(1088, 192, 1),
        nn.Sequential(_bc(1088, 128, 1), _bc(128, 160, (1, 7), p=(0, 3)),
                      _bc(160, 192, (7, 1), p=(3, 0))),
    ), 384, 1088, 0.10)


def _block8(scale: float = 0.20, relu: bool = True) -> nn.Module:
    return ScaledResidual(Concat(
        _bc(2080, 192, 1),
        nn.Sequential(_bc(2080, 192, 1), _bc(192, 224, (1, 3), p=(0, 1)),
                      _bc(224, 256, (3, 1), p=(1, 0))),
    ), 448, 2080, scale, relu)


def inception_resnet_v2(num_classes: int = 1000) -> nn.Module:
    """timm ``inception_resnet_v2`` (Szegedy et al. 2017; timm's port of the TF-slim model):
    stem, Mixed_5b, 10 x Block35, Mixed_6a, 20 x Block17, Mixed_7a, 9 x Block8 + a last
    Block8 without ReLU, 1x1 to 1536, pooling, linear: 55,843,464 parameters."""
    return nn.Sequential(
        _bc(3, 32, 3, 2), _bc(32, 32, 3), _bc(32, 64, 3, p=1), nn.MaxPool2d(3, 2),
        _bc(64, 80, 1), _bc(80, 192, 3), nn.MaxPool2d(3, 2),
        Concat(  # Mixed_5b
            _bc(192, 96, 1),
            nn.Sequential(_bc(192, 48, 1), _bc(48, 64, 5, p=2)),
            nn.Sequential(_bc(192, 64, 1), _bc(64, 96, 3, p=1), _bc(96, 96, 3, p=1)),
            nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), _bc(192, 64, 1)),
        ),
        *[_block35() for _ in range(10)],
        Concat(  # Mixed_6a
            _bc(320, 384, 3, 2),
            nn.Sequential(_bc(320, 256, 1), _bc(256, 256, 3, p=1), _bc(256, 384, 3, 2)),
            nn.MaxPool2d(3, 2),
        ),
        *[_block17() for _ in range(20)],
        Concat(  # Mixed_7a
            nn.Sequential(_bc(1088, 256, 1), _bc(256, 384, 3, 2)),
            nn.Sequential(_bc(1088, 256, 1), _bc(256, 288, 3, 2)),
            nn.Sequential(_bc(1088, 256, 1), _bc(256, 288, 3, p=1), _bc(288, 320, 3, 2)),
            nn.MaxPool2d(3, 2),
        ),
        *[_block8() for _ in range(9)], _block8(1.0, relu=False),
        _bc(2080, 1536, 1), Classifier(1536, num_classes),
    )


class PreActBottleneck(nn.Module):
    """timm ``PreActBottleneck`` (He et al. 2016, "Identity Mappings"): BN-ReLU first; the
    projection shortcut (1x1, stride) reads the pre-activated input; stride on the 3x3."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        mid = c_out // 4
        self.norm1 = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU())
        self.downsample = (nn.Conv2d(c_in, c_out, 1, stride, bias=False)
                           if stride != 1 or c_in != c_out else None)
        self.conv1 = nn.Conv2d(c_in, mid, 1, bias=False)
        self.norm2 = nn.Sequential(nn.BatchNorm2d(mid), nn.ReLU())
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.norm3 = nn.Sequential(nn.BatchNorm2d(mid), nn.ReLU())
        self.conv3 = nn.Conv2d(mid, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.norm1(x)
        shortcut = x if self.downsample is None else self.downsample(pre)
        x = self.conv2(self.norm2(self.conv1(pre)))
        return self.conv3(self.norm3(x)) + shortcut


def resnetv2_50(num_classes: int = 1000) -> nn.Module:
    """timm ``resnetv2_50`` (pre-activation ResNet-50 v2; the layout of the ONNX model zoo's
    resnet50-v2-7, converted from MXNet Gluon ``resnet50_v2``, whose extra input BatchNorm has
    no parameters): 7x7 stem without norm, max pool, 3-4-6-3 ``PreActBottleneck``, final
    BN-ReLU: 25,549,352 parameters."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.MaxPool2d(3, 2, 1)]
    c_in = 64
    for i, (c, n) in enumerate(zip((256, 512, 1024, 2048), (3, 4, 6, 3), strict=True)):
        for j in range(n):
            layers.append(PreActBottleneck(c_in, c, 2 if (i > 0 and j == 0) else 1))
            c_in = c
    layers += [nn.BatchNorm2d(2048), nn.ReLU(), Classifier(2048, num_classes)]
    return nn.Sequential(*layers)


# ===========================================================================================
# ncnn benchmark graphs (Tencent/ncnn benchmark/*.param), rebuilt layer by layer
# ===========================================================================================

def _ncnn(*layers: nn.Module) -> nn.Module:
    """An ncnn benchmark graph: its layers, then the graph's final ``Softmax``."""
    return nn.Sequential(*layers, nn.Softmax(1))


def ncnn_squeezenet() -> nn.Module:
    """ncnn ``squeezenet.param`` (DeepScale SqueezeNet v1.1 Caffe model), 227x227: the layers
    of torchvision's squeezenet1_1, Caffe pooling (56-28-14), and ``conv10`` as the graph has
    it: a 1x1 convolution with padding 1 (``4=1``), so its 1000-channel output is 16x16."""
    return SqueezeNet11(1000, conv10_padding=1, softmax=True)


def ncnn_alexnet() -> nn.Module:
    """ncnn ``alexnet.param`` (BVLC AlexNet, Caffe), 227x227: the original two-tower network
    (``conv2``, ``conv4``, ``conv5`` have 2 groups), local response normalisation after
    ``conv1`` and ``conv2``, 96-256-384-384-256 channels: 60,965,224 parameters."""
    def lrn() -> nn.Module:
        return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)

    return _ncnn(
        conv_bias(3, 96, 11, 4, 0), lrn(), caffe_pool(),
        conv_bias(96, 256, 5, groups=2), lrn(), caffe_pool(),
        conv_bias(256, 384, 3), conv_bias(384, 384, 3, groups=2),
        conv_bias(384, 256, 3, groups=2), caffe_pool(), nn.Flatten(),
        nn.Linear(9216, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, 1000),
    )


def ncnn_googlenet() -> nn.Module:
    """ncnn ``googlenet.param`` (BVLC GoogLeNet, Caffe): convolutions with biases and no
    BatchNorm, true 5x5 branches, local response normalisation after ``pool1`` and
    ``conv2/3x3``, Caffe pooling, 7x7 average pool, ``loss3/classifier`` (the graph has no
    dropout layer): 6,998,552 parameters."""
    inc = {name: _inception(*cfg, unit=conv_bias, k5=5) for name, cfg in GOOGLENET.items()}

    def lrn() -> nn.Module:
        return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)

    return _ncnn(
        conv_bias(3, 64, 7, 2), caffe_pool(), lrn(),
        conv_bias(64, 64, 1), conv_bias(64, 192, 3), lrn(), caffe_pool(),
        inc["3a"], inc["3b"], caffe_pool(),
        inc["4a"], inc["4b"], inc["4c"], inc["4d"], inc["4e"], caffe_pool(),
        inc["5a"], inc["5b"], nn.AvgPool2d(7), nn.Flatten(), nn.Linear(1024, 1000),
    )


def ncnn_vgg16() -> nn.Module:
    """ncnn ``vgg16.param`` (the Caffe VGG_ILSVRC_16 model): torchvision's vgg16 without the
    adaptive pooling, which is an identity at 224."""
    return _ncnn(*_vgg_features(VGG_CFG["vgg16"]), *_vgg_head(1000))


class CaffeResNet(nn.Module):
    """The Caffe ResNets of ncnn's benchmark (``resnet18.param``, ``resnet50.param``): folded
    BatchNorm, Caffe max pooling, a projection shortcut (``branch1``) in the first block of
    every stage, even ``res2a`` of ResNet-18 where it maps 64 to 64 channels; ResNet-50 v1
    strides its first 1x1 (``branch2a``), as in He et al.'s original model."""

    def __init__(self, bottleneck: bool, layers: Sequence[int]) -> None:
        super().__init__()
        expansion = 4 if bottleneck else 1
        stem = [conv_bias(3, 64, 7, 2), caffe_pool()]
        blocks: list[nn.Module] = []
        c_in = 64
        for i, (c, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            for j in range(n):
                s = 2 if (i > 0 and j == 0) else 1
                c_out = c * expansion
                if bottleneck:
                    body = nn.Sequential(conv_bias(c_in, c, 1, s), conv_bias(c, c, 3),
                                         conv_bias(c, c_out, 1, act=None))
                else:
                    body = nn.Sequential(conv_bias(c_in, c, 3, s), conv_bias(c, c, 3, act=None))
                shortcut = conv_bias(c_in, c_out, 1, s, act=None) if j == 0 else None
                blocks.append(Residual(body, shortcut, nn.ReLU()))
                c_in = c_out
        self.features = nn.Sequential(*stem, *blocks)
        self.head = nn.Sequential(nn.AvgPool2d(7), nn.Flatten(), nn.Linear(c_in, 1000),
                                  nn.Softmax(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def ncnn_resnet18() -> nn.Module:
    """ncnn ``resnet18.param`` (Caffe ResNet-18)."""
    return CaffeResNet(False, (2, 2, 2, 2))


def ncnn_resnet50() -> nn.Module:
    """ncnn ``resnet50.param`` (Kaiming He's Caffe ResNet-50, v1)."""
    return CaffeResNet(True, (3, 4, 6, 3))


def ncnn_mobilenet_v2() -> nn.Module:
    """ncnn ``mobilenet_v2.param`` (shicai's Caffe MobileNet-v2): torchvision's layout with
    ReLU instead of ReLU6, folded BatchNorm, an expand 1x1 (32 to 32) in the first block too,
    and ``fc7`` as an InnerProduct."""
    layers: list[nn.Module] = [conv_bias(3, 32, 3, 2)]
    c_in = 32
    for t, c, n, s in MobileNetV2.SETTINGS:
        for i in range(n):
            mid = c_in * t
            body = nn.Sequential(conv_bias(c_in, mid, 1),
                                 conv_bias(mid, mid, 3, s if i == 0 else 1, groups=mid),
                                 conv_bias(mid, c, 1, act=None))
            layers.append(Residual(body) if (i > 0 and c_in == c) else body)
            c_in = c
    return _ncnn(*layers, conv_bias(320, 1280, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                 nn.Linear(1280, 1000))


class ShuffleUnit(nn.Module):
    """ShuffleNet v2 unit (Ma et al. 2018) as ncnn's graph runs it: stride 2 concatenates two
    branches on the whole input; stride 1 splits the channels, transforms the second half and
    concatenates it to the first; then a channel shuffle of 2 groups."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        half = c_out // 2
        self.stride = stride
        c_branch = c_in if stride == 2 else half
        self.branch2 = nn.Sequential(conv_bias(c_branch, half, 1),
                                     conv_bias(half, half, 3, stride, groups=half, act=None),
                                     conv_bias(half, half, 1))
        self.branch1 = (nn.Sequential(conv_bias(c_in, c_in, 3, 2, groups=c_in, act=None),
                                      conv_bias(c_in, half, 1)) if stride == 2 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is not None:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        else:
            a, b = x.chunk(2, 1)
            out = torch.cat((a, self.branch2(b)), 1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


def ncnn_shufflenet_v2() -> nn.Module:
    """ncnn ``shufflenet_v2.param`` (ShuffleNet v2 1.0x, Caffe): 24-116-232-464-1024
    channels, units (4, 8, 4), folded BatchNorm, Caffe max pooling."""
    layers: list[nn.Module] = [conv_bias(3, 24, 3, 2), caffe_pool()]
    c_in = 24
    for c, n in ((116, 4), (232, 8), (464, 4)):
        for i in range(n):
            layers.append(ShuffleUnit(c_in, c, 2 if i == 0 else 1))
            c_in = c
    return _ncnn(*layers, conv_bias(464, 1024, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                 nn.Linear(1024, 1000))


def ncnn_efficientnet_b0() -> nn.Module:
    """ncnn ``efficientnet_b0.param`` (an ONNX export of EfficientNet-B0): the layers of
    torchvision's efficientnet_b0 with each BatchNorm folded into its convolution's bias, SE
    as InnerProduct layers (rebuilt as the equivalent 1x1 convolutions on the pooled map)."""
    return nn.Sequential(EfficientNet(EFFICIENTNET_B0, se_ratio=0.25, bn=False), nn.Softmax(1))


def ncnn_mnasnet() -> nn.Module:
    """ncnn ``mnasnet.param`` (MnasNet-B1 1.0, torchvision ``mnasnet1_0``'s layout): 3x3 stem,
    a separable 32-16 block, inverted residuals (expand, kernel, stride, channels, repeats)
    (3,3,2,24,3) (3,5,2,40,3) (6,5,2,80,3) (6,3,1,96,2) (6,5,2,192,4) (6,3,1,320,1), 1x1 to
    1280, ReLU everywhere, folded BatchNorm."""
    stages = ((3, 3, 2, 24, 3), (3, 5, 2, 40, 3), (6, 5, 2, 80, 3), (6, 3, 1, 96, 2),
              (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
    layers: list[nn.Module] = [conv_bias(3, 32, 3, 2), conv_bias(32, 32, 3, groups=32),
                               conv_bias(32, 16, 1, act=None)]
    c_in = 16
    for t, k, s, c, n in stages:
        for i in range(n):
            layers.append(MBConv(c_in, c, k, s if i == 0 else 1, t, act=nn.ReLU, bn=False))
            c_in = c
    return _ncnn(*layers, conv_bias(320, 1280, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                 nn.Linear(1280, 1000))


class RegNetBlock(nn.Module):
    """RegNetY block (Radosavovic et al. 2020; torchvision ``ResBottleneckBlock``, bottleneck
    ratio 1): 1x1, grouped 3x3 (group width 8) with the stride, SE to a quarter of the block
    input, 1x1; projection shortcut when the shape changes; ReLU after the sum."""

    def __init__(self, c_in: int, c: int, stride: int, group_width: int = 8) -> None:
        super().__init__()
        self.proj = (conv_bias(c_in, c, 1, stride, act=None)
                     if stride != 1 or c_in != c else None)
        self.f = nn.Sequential(conv_bias(c_in, c, 1),
                               conv_bias(c, c, 3, stride, groups=c // group_width),
                               SqueezeExcite(c, round(0.25 * c_in)),
                               conv_bias(c, c, 1, act=None))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.f(x) + (x if self.proj is None else self.proj(x)))


def ncnn_regnety_400m() -> nn.Module:
    """ncnn ``regnety_400m.param`` (an ONNX export of RegNetY-400MF, torchvision
    ``regnet_y_400mf``'s layers): widths (48, 104, 208, 440), depths (1, 3, 6, 6), group
    width 8, folded BatchNorm."""
    layers: list[nn.Module] = [conv_bias(3, 32, 3, 2)]
    c_in = 32
    for c, n in ((48, 1), (104, 3), (208, 6), (440, 6)):
        for i in range(n):
            layers.append(RegNetBlock(c_in, c, 2 if i == 0 else 1))
            c_in = c
    return _ncnn(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(440, 1000))


class HardSigmoidSE(nn.Module):
    """MobileNetV3 squeeze-excitation as ncnn's graph runs it: global pool, FC to a quarter
    (ReLU), FC back, HardSigmoid, multiply."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(c, c // 4), nn.ReLU(), nn.Linear(c // 4, c),
                                nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        return x * s[:, :, None, None]


class V3Block(nn.Module):
    """A MobileNetV3 bottleneck of ncnn's ``mobilenet_v3.param``: [1x1 expand + act] depthwise
    [SE] act, 1x1 project (no act), residual when stride 1 and the channels match. The
    activation after the depthwise convolution comes after the SE, as in the PyTorch model the
    graph was exported from."""

    def __init__(self, c_in: int, k: int, mid: int, c_out: int, se: bool, act: Act,
                 stride: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if mid != c_in:
            layers.append(conv_bias(c_in, mid, 1, act=act))
        layers.append(conv_bias(mid, mid, k, stride, groups=mid, act=None))
        if se:
            layers.append(HardSigmoidSE(mid))
        layers += [act(), conv_bias(mid, c_out, 1, act=None)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class HSwishStem(nn.Module):
    """The graph's stem: 3x3/2 convolution, then h-swish as ``x * HardSigmoid(x)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = conv_bias(3, 16, 3, 2, act=None)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x * self.gate(x)


#: ncnn mobilenet_v3.param bottlenecks: kernel, expanded, out, SE, activation, stride
MOBILENET_V3 = ((3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2),
                (3, 72, 24, False, "RE", 1), (5, 72, 40, True, "RE", 2),
                (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
                (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1),
                (3, 184, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
                (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
                (5, 672, 160, True, "HS", 1), (5, 672, 160, True, "HS", 2),
                (5, 960, 160, True, "HS", 1))


def ncnn_mobilenet_v3() -> nn.Module:
    """ncnn ``mobilenet_v3.param`` (MobileNetV3-Large, Howard et al. 2019, as exported from a
    PyTorch port): 15 bottlenecks, one more than the paper's (a stride-1 672-160 block before
    the stride-2 one; no expand convolution in the first), SE with biases and HardSigmoid,
    folded BatchNorm; head: 1x1 to 960, h-swish, global pool, h-swish, FC 1280, h-swish,
    FC 1000."""
    layers: list[nn.Module] = [HSwishStem()]
    c_in = 16
    for k, mid, c, se, nl, s in MOBILENET_V3:
        layers.append(V3Block(c_in, k, mid, c, se, nn.ReLU if nl == "RE" else nn.Hardswish, s))
        c_in = c
    return _ncnn(*layers, conv_bias(160, 960, 1, act=nn.Hardswish), nn.AdaptiveAvgPool2d(1),
                 nn.Hardswish(), nn.Flatten(), nn.Linear(960, 1280), nn.Hardswish(),
                 nn.Linear(1280, 1000))


# ===========================================================================================
# Detectors: YOLOX, YOLOv5, YOLOv8, SSD (raw head outputs, no decoding or NMS)
# ===========================================================================================

def _leaky() -> nn.Module:
    return nn.LeakyReLU(0.1)


ACTIVATIONS: dict[str, Act] = {"silu": nn.SiLU, "relu": nn.ReLU, "leaky": _leaky}


def _cbs(c_in: int, c_out: int, k: int = 1, s: int = 1, act: str = "silu",
         p: int | None = None) -> nn.Sequential:
    """Ultralytics ``Conv`` / YOLOX ``BaseConv``: conv (no bias), BN (eps 1e-3), activation."""
    return conv(c_in, c_out, k, s, p, eps=1e-3, act=ACTIVATIONS[act])


class CSPBlock(nn.Module):
    """YOLOv5 ``C3`` / YOLOX ``CSPLayer``: two 1x1 to half the output channels, ``n``
    bottlenecks (1x1, 3x3, optional residual) on the first, concatenation, 1x1."""

    def __init__(self, c_in: int, c_out: int, n: int, shortcut: bool, act: str) -> None:
        super().__init__()
        c = c_out // 2
        self.cv1, self.cv2 = _cbs(c_in, c, act=act), _cbs(c_in, c, act=act)
        self.m = nn.Sequential(*[
            (Residual if shortcut else nn.Sequential)(
                nn.Sequential(_cbs(c, c, act=act), _cbs(c, c, 3, act=act)))
            for _ in range(n)])
        self.cv3 = _cbs(2 * c, c_out, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPP(nn.Module):
    """YOLOX ``SPPBottleneck`` (parallel max pools 5, 9, 13) and YOLOv5/v8 ``SPPF`` (three
    chained 5x5 max pools, the same receptive fields): 1x1 to half, pools, concat, 1x1."""

    def __init__(self, c_in: int, c_out: int, act: str, chained: bool) -> None:
        super().__init__()
        c = c_in // 2
        self.cv1, self.cv2 = _cbs(c_in, c, act=act), _cbs(4 * c, c_out, act=act)
        self.chained = chained
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2)
                                   for k in ((5,) if chained else (5, 9, 13)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for i in range(3):
            y.append(self.pools[0](y[-1]) if self.chained else self.pools[i](y[0]))
        return self.cv2(torch.cat(y, 1))


class Focus(nn.Module):
    """YOLOX stem: space-to-depth (four strided slices concatenated), then a 3x3 conv."""

    def __init__(self, c_out: int, act: str) -> None:
        super().__init__()
        self.conv = _cbs(12, c_out, 3, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2],
                       x[..., 1::2, 1::2]), 1)
        return self.conv(x)


class YOLOX(nn.Module):
    """Megvii YOLOX (Ge et al. 2021; ``yolox/models``: CSPDarknet, YOLOPAFPN, YOLOXHead) at
    depth 0.33, width 0.50 (YOLOX-S): Focus stem, CSPDarknet with SPP (5, 9, 13), PAFPN, and
    the decoupled head (1x1 stem to 128, two 3x3 for classes, two for boxes, then the class,
    box and objectness 1x1 predictions). Returns per level the head's concatenation of its
    box, objectness and class maps (4 + 1 + 80 channels), before YOLOX's sigmoids and
    decoding. ``act="leaky"``: LeakyReLU(0.1) for SiLU (Hailo's
    yolox_s_leaky)."""

    def __init__(self, depth: float = 0.33, width: float = 0.50, num_classes: int = 80,
                 act: str = "silu") -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = (int(c * width) for c in (64, 128, 256, 512, 1024))
        n = max(round(3 * depth), 1)
        self.stem = Focus(c1, act)
        self.dark2 = nn.Sequential(_cbs(c1, c2, 3, 2, act), CSPBlock(c2, c2, n, True, act))
        self.dark3 = nn.Sequential(_cbs(c2, c3, 3, 2, act), CSPBlock(c3, c3, 3 * n, True, act))
        self.dark4 = nn.Sequential(_cbs(c3, c4, 3, 2, act), CSPBlock(c4, c4, 3 * n, True, act))
        self.dark5 = nn.Sequential(_cbs(c4, c5, 3, 2, act), SPP(c5, c5, act, chained=False),
                                   CSPBlock(c5, c5, n, False, act))
        self.lateral_conv0 = _cbs(c5, c4, act=act)
        self.C3_p4 = CSPBlock(2 * c4, c4, n, False, act)
        self.reduce_conv1 = _cbs(c4, c3, act=act)
        self.C3_p3 = CSPBlock(2 * c3, c3, n, False, act)
        self.bu_conv2 = _cbs(c3, c3, 3, 2, act)
        self.C3_n3 = CSPBlock(2 * c3, c4, n, False, act)
        self.bu_conv1 = _cbs(c4, c4, 3, 2, act)
        self.C3_n4 = CSPBlock(2 * c4, c5, n, False, act)
        hid = int(256 * width)
        self.stems = nn.ModuleList(_cbs(c, hid, act=act) for c in (c3, c4, c5))
        self.cls_convs = nn.ModuleList(
            nn.Sequential(_cbs(hid, hid, 3, act=act), _cbs(hid, hid, 3, act=act))
            for _ in range(3))
        self.reg_convs = nn.ModuleList(
            nn.Sequential(_cbs(hid, hid, 3, act=act), _cbs(hid, hid, 3, act=act))
            for _ in range(3))
        self.cls_preds = nn.ModuleList(nn.Conv2d(hid, num_classes, 1) for _ in range(3))
        self.reg_preds = nn.ModuleList(nn.Conv2d(hid, 4, 1) for _ in range(3))
        self.obj_preds = nn.ModuleList(nn.Conv2d(hid, 1, 1) for _ in range(3))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x2 = self.dark3(self.dark2(self.stem(x)))
        x1 = self.dark4(x2)
        x0 = self.dark5(x1)
        fpn_out0 = self.lateral_conv0(x0)
        f_out0 = self.C3_p4(torch.cat((F.interpolate(fpn_out0, scale_factor=2.0), x1), 1))
        fpn_out1 = self.reduce_conv1(f_out0)
        pan_out2 = self.C3_p3(torch.cat((F.interpolate(fpn_out1, scale_factor=2.0), x2), 1))
        pan_out1 = self.C3_n3(torch.cat((self.bu_conv2(pan_out2), fpn_out1), 1))
        pan_out0 = self.C3_n4(torch.cat((self.bu_conv1(pan_out1), fpn_out0), 1))
        outputs = []
        for i, feat in enumerate((pan_out2, pan_out1, pan_out0)):
            feat = self.stems[i](feat)
            reg = self.reg_convs[i](feat)
            outputs.append(torch.cat((self.reg_preds[i](reg), self.obj_preds[i](reg),
                                      self.cls_preds[i](self.cls_convs[i](feat))), 1))
        return outputs


def yolox_s(act: str = "silu") -> nn.Module:
    """YOLOX-S (Megvii README: 9.0 M parameters, 26.8 GFLOPs at 640; 8,968,255 counted)."""
    return YOLOX(0.33, 0.50, act=act)


def _div8(x: float) -> int:
    return math.ceil(x / 8) * 8


class YOLOv5(nn.Module):
    """Ultralytics YOLOv5 v6.0+ (``models/yolov5{n,s}.yaml``): 6x6/2 stem, C3 backbone
    (3, 6, 9, 3 x depth), SPPF, PANet head of C3 blocks without shortcut, three ``Detect``
    1x1 convolutions to 3 x (80 + 5) channels (raw outputs). ``act="relu"``: the
    yolov5s_relu of Rockchip's model zoo."""

    def __init__(self, depth: float, width: float, num_classes: int = 80,
                 act: str = "silu") -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = (_div8(c * width) for c in (64, 128, 256, 512, 1024))

        def n(k: int) -> int:
            return max(round(k * depth), 1)

        self.b0 = nn.Sequential(_cbs(3, c1, 6, 2, act, p=2), _cbs(c1, c2, 3, 2, act),
                                CSPBlock(c2, c2, n(3), True, act), _cbs(c2, c3, 3, 2, act),
                                CSPBlock(c3, c3, n(6), True, act))               # P3: layer 4
        self.b1 = nn.Sequential(_cbs(c3, c4, 3, 2, act), CSPBlock(c4, c4, n(9), True, act))
        self.b2 = nn.Sequential(_cbs(c4, c5, 3, 2, act), CSPBlock(c5, c5, n(3), True, act),
                                SPP(c5, c5, act, chained=True), _cbs(c5, c4, act=act))  # 10
        self.h13 = nn.Sequential(CSPBlock(2 * c4, c4, n(3), False, act), _cbs(c4, c3, act=act))
        self.h17 = CSPBlock(2 * c3, c3, n(3), False, act)
        self.h18 = _cbs(c3, c3, 3, 2, act)
        self.h20 = CSPBlock(2 * c3, c4, n(3), False, act)
        self.h21 = _cbs(c4, c4, 3, 2, act)
        self.h23 = CSPBlock(2 * c4, c5, n(3), False, act)
        self.detect = nn.ModuleList(nn.Conv2d(c, 3 * (num_classes + 5), 1) for c in (c3, c4, c5))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        p3 = self.b0(x)
        p4 = self.b1(p3)
        l10 = self.b2(p4)
        l14 = self.h13(torch.cat((F.interpolate(l10, scale_factor=2.0), p4), 1))
        out17 = self.h17(torch.cat((F.interpolate(l14, scale_factor=2.0), p3), 1))
        out20 = self.h20(torch.cat((self.h18(out17), l14), 1))
        out23 = self.h23(torch.cat((self.h21(out20), l10), 1))
        return [d(o) for d, o in zip(self.detect, (out17, out20, out23), strict=True)]


def yolov5n() -> nn.Module:
    """YOLOv5n (depth 0.33, width 0.25; Ultralytics README: 1.9 M parameters; 1,872,157
    counted)."""
    return YOLOv5(0.33, 0.25)


def yolov5s(act: str = "silu") -> nn.Module:
    """YOLOv5s (depth 0.33, width 0.50; Ultralytics: 7,235,389 parameters)."""
    return YOLOv5(0.33, 0.50, act=act)


class C2f(nn.Module):
    """Ultralytics YOLOv8 ``C2f``: 1x1 to 2c, split in two, ``n`` bottlenecks (3x3, 3x3) chained
    on the second half, every intermediate concatenated, 1x1."""

    def __init__(self, c_in: int, c_out: int, n: int, shortcut: bool) -> None:
        super().__init__()
        self.c = c_out // 2
        self.cv1 = _cbs(c_in, 2 * self.c)
        self.m = nn.ModuleList(
            (Residual if shortcut else nn.Sequential)(
                nn.Sequential(_cbs(self.c, self.c, 3), _cbs(self.c, self.c, 3)))
            for _ in range(n))
        self.cv2 = _cbs((2 + n) * self.c, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class YOLOv8(nn.Module):
    """Ultralytics YOLOv8 (``ultralytics/cfg/models/v8/yolov8.yaml``) at scale s (depth 0.33,
    width 0.50, max channels 1024): C2f backbone and head, SPPF, and the anchor-free ``Detect``
    head's two 3x3 + 1x1 branches per level (64 box-distribution channels, 80 classes),
    concatenated per level as ``Detect`` does before its DFL and decoding, which are not
    rebuilt."""

    def __init__(self, depth: float = 0.33, width: float = 0.50, num_classes: int = 80,
                 reg_max: int = 16) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = (_div8(min(c, 1024) * width) for c in (64, 128, 256, 512, 1024))

        def n(k: int) -> int:
            return max(round(k * depth), 1)

        self.p3 = nn.Sequential(_cbs(3, c1, 3, 2), _cbs(c1, c2, 3, 2), C2f(c2, c2, n(3), True),
                                _cbs(c2, c3, 3, 2), C2f(c3, c3, n(6), True))
        self.p4 = nn.Sequential(_cbs(c3, c4, 3, 2), C2f(c4, c4, n(6), True))
        self.p5 = nn.Sequential(_cbs(c4, c5, 3, 2), C2f(c5, c5, n(3), True),
                                SPP(c5, c5, "silu", chained=True))
        self.h12 = C2f(c5 + c4, c4, n(3), False)
        self.h15 = C2f(c4 + c3, c3, n(3), False)
        self.h16 = _cbs(c3, c3, 3, 2)
        self.h18 = C2f(c3 + c4, c4, n(3), False)
        self.h19 = _cbs(c4, c4, 3, 2)
        self.h21 = C2f(c4 + c5, c5, n(3), False)
        box = max(16, c3 // 4, 4 * reg_max)
        cls = max(c3, min(num_classes, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(_cbs(c, box, 3), _cbs(box, box, 3),
                                               nn.Conv2d(box, 4 * reg_max, 1))
                                 for c in (c3, c4, c5))
        self.cv3 = nn.ModuleList(nn.Sequential(_cbs(c, cls, 3), _cbs(cls, cls, 3),
                                               nn.Conv2d(cls, num_classes, 1))
                                 for c in (c3, c4, c5))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        p3 = self.p3(x)
        p4 = self.p4(p3)
        p5 = self.p5(p4)
        l12 = self.h12(torch.cat((F.interpolate(p5, scale_factor=2.0), p4), 1))
        out15 = self.h15(torch.cat((F.interpolate(l12, scale_factor=2.0), p3), 1))
        out18 = self.h18(torch.cat((self.h16(out15), l12), 1))
        out21 = self.h21(torch.cat((self.h19(out18), p5), 1))
        return [torch.cat((box(o), cls(o)), 1)
                for box, cls, o in zip(self.cv2, self.cv3, (out15, out18, out21), strict=True)]


def yolov8s() -> nn.Module:
    """YOLOv8s (Ultralytics: 11,166,560 parameters, of which the DFL's 16 are not rebuilt:
    11,166,544)."""
    return YOLOv8()


class SSDHeads(nn.Module):
    """Per feature map, a box and a class convolution; returns their raw maps (box 0, class 0,
    box 1, ...), before the reshapes and concatenation that lead to decoding and NMS."""

    def __init__(self, channels: Sequence[int], anchors: Sequence[int], num_classes: int,
                 k: int, stride: int = 1) -> None:
        super().__init__()
        pad = (k - 1) // 2
        self.loc = nn.ModuleList(nn.Conv2d(c, a * 4, k, stride, pad)
                                 for c, a in zip(channels, anchors, strict=True))
        self.conf = nn.ModuleList(nn.Conv2d(c, a * num_classes, k, stride, pad)
                                  for c, a in zip(channels, anchors, strict=True))

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [head(x) for loc, conf, x in zip(self.loc, self.conf, feats, strict=True)
                for head in (loc, conf)]


class SSDMobileNet(nn.Module):
    """MLPerf ssd-mobilenet (TF ``ssd_mobilenet_v1_coco_2018_01_28``, ported to PyTorch in
    mlcommons/inference ``models/ssd_mobilenet_v1.py``), 300x300: MobileNet v1 body (ReLU6,
    BatchNorm), features at Conv2d_11 (19x19x512) and Conv2d_13 (10x10x1024), four extra
    1x1 + 3x3/2 blocks (512, 256, 256, 128 channels), 1x1 box/class predictors for 3, 6, 6, 6,
    6, 6 anchors and 91 classes."""

    BODY = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
            (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))

    def __init__(self, num_classes: int = 91) -> None:
        super().__init__()
        relu6 = nn.ReLU6
        layers: list[nn.Module] = [conv(3, 32, 3, 2, eps=1e-3, act=relu6)]
        c_in = 32
        for c, s in self.BODY:
            layers.append(nn.Sequential(conv(c_in, c_in, 3, s, groups=c_in, eps=1e-3, act=relu6),
                                        conv(c_in, c, 1, eps=1e-3, act=relu6)))
            c_in = c
        self.body = nn.ModuleList(layers)
        self.extras = nn.ModuleList(
            nn.Sequential(conv(ci, mid, 1, eps=1e-3, act=relu6),
                          conv(mid, co, 3, 2, eps=1e-3, act=relu6))
            for ci, mid, co in ((1024, 256, 512), (512, 128, 256), (256, 128, 256),
                                (256, 64, 128)))
        self.heads = SSDHeads((512, 1024, 512, 256, 256, 128), (3, 6, 6, 6, 6, 6),
                              num_classes, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, layer in enumerate(self.body):
            x = layer(x)
            if i in (11, 13):
                feats.append(x)
        for layer in self.extras:
            x = layer(x)
            feats.append(x)
        return self.heads(feats)


def ssd_mobilenet() -> nn.Module:
    """MLPerf ssd-mobilenet, 300x300 (row text: 1.20 GMACs)."""
    return SSDMobileNet()


class SSDResNet34(nn.Module):
    """MLPerf ssd-resnet34 1200x1200 (mlcommons/inference ``models/ssd_r34.py`` and
    ``base_model_r34.py``): torchvision ResNet-34 through ``layer3`` with layer3's first block
    at stride 1 (150x150x256), five extra blocks (1x1 + 3x3, biases, ReLU; strides 2, 2, 2,
    2-unpadded, 1-unpadded: 75, 38, 19, 9, 7), 3x3 box/class heads at stride 3 (50, 25, 13, 7,
    3, 3) for 4, 6, 6, 6, 4, 4 anchors and 81 classes."""

    def __init__(self, num_classes: int = 81) -> None:
        super().__init__()
        r34 = ResNet(BasicBlock, [3, 4, 6, 3])
        block = r34.layer3[0]
        block.conv1.stride = (1, 1)
        block.downsample[0].stride = (1, 1)
        self.backbone = nn.Sequential(r34.conv1, r34.bn1, r34.relu, r34.maxpool, r34.layer1,
                                      r34.layer2, r34.layer3)
        cfg = ((256, 256, 512, 2, 1), (512, 256, 512, 2, 1), (512, 128, 256, 2, 1),
               (256, 128, 256, 2, 0), (256, 128, 256, 1, 0))
        self.extras = nn.ModuleList(
            nn.Sequential(conv_bias(ci, mid, 1), conv_bias(mid, co, 3, s, p))
            for ci, mid, co, s, p in cfg)
        self.heads = SSDHeads((256, 512, 512, 256, 256, 256), (4, 6, 6, 6, 4, 4), num_classes,
                              3, stride=3)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.backbone(x)]
        for layer in self.extras:
            feats.append(layer(feats[-1]))
        return self.heads(feats)


def ssd_resnet34() -> nn.Module:
    """MLPerf ssd-resnet34, 1200x1200 (row text: 216.4 GMACs; MLPerf: 433 GFLOPs)."""
    return SSDResNet34()


# ===========================================================================================
# MLPerf Tiny v1.x reference models (mlcommons/tiny, Keras; Keras layers have biases)
# ===========================================================================================

def tiny_kws_dscnn() -> nn.Module:
    """MLPerf Tiny keyword spotting DS-CNN (``training/keyword_spotting/keras_model.py``,
    ``ds_cnn``): 49x10 MFCC input, conv 64 x (10x4)/2 'same', 4 x (depthwise 3x3 + pointwise
    64, each BN-ReLU), 25x5 average pool, FC 12."""
    layers: list[nn.Module] = [conv(1, 64, (10, 4), 2, (5, 1), bias=True)]
    for _ in range(4):
        layers += [conv(64, 64, 3, groups=64, bias=True), conv(64, 64, 1, bias=True)]
    return nn.Sequential(*layers, nn.AvgPool2d((25, 5)), nn.Flatten(), nn.Linear(64, 12))


def tiny_resnet8() -> nn.Module:
    """MLPerf Tiny image classification ResNet-8 (``resnet_v1_eembc``, 16 filters): 3x3 stem,
    three residual stacks of 16, 32, 64 filters (stride 1, 2, 2; 1x1 projection shortcuts on
    the strided ones), 8x8 average pool, FC 10; 32x32x3 input."""
    layers: list[nn.Module] = [conv(3, 16, 3, bias=True)]
    c_in = 16
    for c, s in ((16, 1), (32, 2), (64, 2)):
        body = nn.Sequential(conv(c_in, c, 3, s, bias=True), conv(c, c, 3, bias=True, act=None))
        shortcut = nn.Conv2d(c_in, c, 1, s) if s != 1 else None
        layers.append(Residual(body, shortcut, nn.ReLU()))
        c_in = c
    return nn.Sequential(*layers, nn.AvgPool2d(8), nn.Flatten(), nn.Linear(64, 10))


def tiny_vww_mobilenet() -> nn.Module:
    """MLPerf Tiny visual wake words MobileNet v1 (alpha 0.25: 8 to 256 filters;
    ``visual_wake_words/vww_model.py``), 96x96x3, 2 classes."""
    body = ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1),
            (128, 1), (128, 1), (128, 1), (256, 2), (256, 1))
    layers: list[nn.Module] = [conv(3, 8, 3, 2, bias=True)]
    c_in = 8
    for c, s in body:
        layers += [conv(c_in, c_in, 3, s, groups=c_in, bias=True), conv(c_in, c, 1, bias=True)]
        c_in = c
    return nn.Sequential(*layers, nn.AvgPool2d(3), nn.Flatten(), nn.Linear(256, 2))


def tiny_ad_autoencoder() -> nn.Module:
    """MLPerf Tiny anomaly detection dense autoencoder (``anomaly_detection/keras_model.py``):
    640-128-128-128-128-8-128-128-128-128-640, every hidden layer BN-ReLU."""
    dims = (640, 128, 128, 128, 128, 8, 128, 128, 128, 128)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(dims):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(128, 640))


#: Every builder, by the name the calibration rows use.
BUILDERS: dict[str, Callable[..., nn.Module]] = {
    f.__name__: f for f in (
        resnet18, resnet34, resnet50, resnet101, mobilenet_v2, googlenet, vgg13, vgg16, alexnet,
        squeezenet1_1, densenet121, densenet201, efficientnet_b0, tf_efficientnet_em,
        inception_resnet_v2, resnetv2_50,
        ncnn_squeezenet, ncnn_alexnet, ncnn_googlenet, ncnn_vgg16, ncnn_resnet18,
        ncnn_resnet50, ncnn_mobilenet_v2, ncnn_shufflenet_v2, ncnn_efficientnet_b0,
        ncnn_mnasnet, ncnn_regnety_400m, ncnn_mobilenet_v3,
        yolox_s, yolov5n, yolov5s, yolov8s, ssd_mobilenet, ssd_resnet34,
        tiny_kws_dscnn, tiny_resnet8, tiny_vww_mobilenet, tiny_ad_autoencoder,
    )
}


def build(name: str, **kwargs: object) -> nn.Module:
    """The network ``name`` (a key of ``BUILDERS``) in eval mode, built on the current default
    device (use ``with torch.device("meta")`` to count without allocating)."""
    return BUILDERS[name](**kwargs).eval()
