"""Edge models of the example project, each with the input it is deployed on.

``MODELS`` maps a name to ``(constructor, example input shape)``; the tests profile every
model at batch size 1, the way it runs on the device.
"""

from __future__ import annotations

from .backbones import MobileNetV1, TinyFasterNet
from .blocks import ConvBNReLU, DepthwiseSeparable, FasterNetBlock, PartialConv
from .kws import DSCNN
from .resnet57 import ResNet57
from .transformer import SignalTransformer
from .vibration import VibrationNet

#: name -> (constructor, input shape at batch size 1)
MODELS = {
    "vibration_net": (VibrationNet, (1, 1, 1024)),
    "signal_transformer": (SignalTransformer, (1, 1, 1024)),
    "resnet57": (ResNet57, (1, 1, 57, 57)),
    "mobilenet_v1_025": (MobileNetV1, (1, 3, 96, 96)),
    "tiny_fasternet": (TinyFasterNet, (1, 3, 96, 96)),
    "ds_cnn": (DSCNN, (1, 1, 49, 10)),
}

__all__ = [
    "DSCNN",
    "MODELS",
    "ConvBNReLU",
    "DepthwiseSeparable",
    "FasterNetBlock",
    "MobileNetV1",
    "PartialConv",
    "ResNet57",
    "SignalTransformer",
    "TinyFasterNet",
    "VibrationNet",
]
