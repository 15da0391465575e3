"""The networks of the edge calibration set (``bench/edge/networks.py``) are the published ones,
and its rows (``bench/edge/calibration_set.toml``) are well formed.

Every builder's parameter count is compared with the published count of the architecture it
rebuilds, written here by hand with where it comes from. Where the published figure is rounded,
the exact count derived here is asserted and checked to round to it. A few MAC counts are
compared with published figures through ``profile()`` on fake tensors. Everything is built on
the meta device: nothing is allocated and no arithmetic runs.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from pytest_flopbudget import profile

# ``bench/`` is not a package on the path: the repository root is put there only while its
# modules are imported. Left there, it changes how the package's own modules are found and
# every later in-process ``pytester`` run warns that the package could not be
# assertion-rewritten.
_ROOT = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, _ROOT)
try:
    from bench.edge import networks as N
    from bench.edge.rows import load, load_rows
finally:
    sys.path.remove(_ROOT)


def build(name: str, **kwargs: object) -> nn.Module:
    with torch.device("meta"):
        return N.build(name, **kwargs)


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- parameter counts published exactly ---------------------------------------------------
# torchvision: the model pages of the torchvision documentation ("num_params" of the
# IMAGENET1K_V1 weights). Ultralytics: the model summary printed when building the yaml.
EXACT = [
    ("resnet18", {}, 11_689_512, "torchvision ResNet18_Weights.IMAGENET1K_V1"),
    ("resnet34", {}, 21_797_672, "torchvision ResNet34_Weights.IMAGENET1K_V1"),
    ("resnet50", {}, 25_557_032, "torchvision ResNet50_Weights.IMAGENET1K_V1"),
    ("resnet101", {}, 44_549_160, "torchvision ResNet101_Weights.IMAGENET1K_V1"),
    ("mobilenet_v2", {}, 3_504_872, "torchvision MobileNet_V2_Weights.IMAGENET1K_V1"),
    ("googlenet", {}, 6_624_904, "torchvision GoogLeNet_Weights.IMAGENET1K_V1 (no aux)"),
    ("vgg13", {}, 133_047_848, "torchvision VGG13_Weights.IMAGENET1K_V1"),
    ("vgg16", {}, 138_357_544, "torchvision VGG16_Weights.IMAGENET1K_V1"),
    ("alexnet", {}, 61_100_840, "torchvision AlexNet_Weights.IMAGENET1K_V1"),
    ("squeezenet1_1", {}, 1_235_496, "torchvision SqueezeNet1_1_Weights.IMAGENET1K_V1"),
    ("densenet121", {}, 7_978_856, "torchvision DenseNet121_Weights.IMAGENET1K_V1"),
    ("densenet201", {}, 20_013_928, "torchvision DenseNet201_Weights.IMAGENET1K_V1"),
    ("efficientnet_b0", {}, 5_288_548, "torchvision EfficientNet_B0_Weights.IMAGENET1K_V1"),
    ("yolov5s", {}, 7_235_389, "Ultralytics YOLOv5s summary (v6.0 yaml)"),
    ("yolov5s", {"act": "relu"}, 7_235_389, "yolov5s_relu: an activation has no weights"),
    # Ultralytics YOLOv8s summary: 11,166,560 parameters, of which 11,166,544 have gradients:
    # the 16 frozen weights of the DFL convolution, which is not rebuilt.
    ("yolov8s", {}, 11_166_560 - 16, "Ultralytics YOLOv8s summary, less the DFL's 16"),
]


@pytest.mark.parametrize(("name", "kwargs", "expected", "source"), EXACT,
                         ids=[f"{e[0]}{e[1] or ''}" for e in EXACT])
def test_parameter_count_is_the_published_one(name: str, kwargs: dict, expected: int,
                                              source: str) -> None:
    assert params(build(name, **kwargs)) == expected, source


# --- rounded published figures: the exact count derived, and that it rounds to the figure --
ROUNDED = [
    # (builder, kwargs, exact count, published figure, in millions, digits, source)
    ("inception_resnet_v2", {}, 55_843_464, 55.8, 1,
     "timm model card; calibration-set notes: 55.8 MB of int8 weights"),
    ("tf_efficientnet_em", {}, 6_899_496, 6.9, 1, "timm tf_efficientnet_em model card"),
    ("resnetv2_50", {}, 25_549_352, 25.5, 1, "timm resnetv2_50 model card"),
    ("yolox_s", {}, 8_968_255, 8.97, 2, "calibration-set row text; Megvii README: 9.0 M"),
    ("yolox_s", {"act": "leaky"}, 8_968_255, 8.97, 2, "YOLOX-S-Leaky: same weights"),
    ("yolov5n", {}, 1_872_157, 1.87, 2, "calibration-set row text; Ultralytics README: 1.9 M"),
]


@pytest.mark.parametrize(("name", "kwargs", "exact", "published", "digits", "source"),
                         ROUNDED, ids=[f"{r[0]}{r[1] or ''}" for r in ROUNDED])
def test_parameter_count_rounds_to_the_published_one(name: str, kwargs: dict, exact: int,
                                                     published: float, digits: int,
                                                     source: str) -> None:
    assert params(build(name, **kwargs)) == exact
    assert round(exact / 1e6, digits) == published, source


def test_st_model_zoo_variants() -> None:
    # torchvision mobilenet_v2(width_mult=0.35, num_classes=5): channels by _make_divisible(c x
    # 0.35, 8): stem 16, blocks (t, c, n) = (1, 8, 1) (6, 8, 2) (6, 16, 3) (6, 24, 4) (6, 32, 3)
    # (6, 56, 3) (6, 112, 1), last 1280 (never below 1280); BatchNorm: 2 per channel.
    total, c_in = 3 * 16 * 9 + 2 * 16, 16
    for t, c, n in ((1, 8, 1), (6, 8, 2), (6, 16, 3), (6, 24, 4), (6, 32, 3), (6, 56, 3),
                    (6, 112, 1)):
        for _ in range(n):
            hid = c_in * t
            total += (c_in * hid + 2 * hid if t != 1 else 0) + hid * 9 + 2 * hid \
                + hid * c + 2 * c
            c_in = c
    total += 112 * 1280 + 2 * 1280 + 1280 * 5 + 5
    assert params(build("mobilenet_v2", width_mult=0.35, num_classes=5)) == total == 402_533
    # squeezenet1_1(num_classes=5): conv10 (512 -> classes, 1x1 with bias) shrinks by 995
    assert params(build("squeezenet1_1", num_classes=5)) == 1_235_496 - 995 * (512 + 1)


# --- ncnn graphs ---------------------------------------------------------------------------
def unfolded(model: nn.Module) -> int:
    """The parameters the graph had before ncnn folded each BatchNorm (weight and bias per
    channel) into its convolution's bias (one per channel): + one per folded channel."""
    se = {id(m) for s in model.modules() if isinstance(s, N.SqueezeExcite) for m in s.modules()}
    return params(model) + sum(c.out_channels for c in model.modules()
                               if isinstance(c, nn.Conv2d) and id(c) not in se)


@pytest.mark.parametrize(("name", "twin", "source"), [
    ("ncnn_resnet50", 25_557_032, "torchvision resnet50 (v1.5 moves a stride, no weights)"),
    ("ncnn_efficientnet_b0", 5_288_548, "torchvision efficientnet_b0"),
    ("ncnn_mnasnet", 4_383_312, "torchvision mnasnet1_0 (MNASNet1_0_Weights)"),
    ("ncnn_regnety_400m", 4_344_144, "torchvision regnet_y_400mf (RegNet_Y_400MF_Weights)"),
    ("ncnn_shufflenet_v2", 2_278_604, "torchvision shufflenet_v2_x1_0"),
])
def test_ncnn_graph_is_its_torchvision_twin_with_batchnorm_folded(name: str, twin: int,
                                                                  source: str) -> None:
    assert unfolded(build(name)) == twin, source


# Sums over the graph's Convolution / ConvolutionDepthWise / InnerProduct layers of their
# weight_data_size (6= / 2=) plus one bias per output channel (5=1 / 1=1), Tencent/ncnn
# benchmark/*.param, cross-checked against the original models where they are known.
NCNN = [
    ("ncnn_squeezenet", 1_235_496, "squeezenet.param: the layers of SqueezeNet v1.1"),
    ("ncnn_vgg16", 138_357_544, "vgg16.param: VGG_ILSVRC_16"),
    ("ncnn_alexnet", 60_965_224, "alexnet.param: BVLC AlexNet (2 groups)"),
    ("ncnn_googlenet", 6_998_552, "googlenet.param: BVLC GoogLeNet without aux heads"),
    # torchvision mobilenet_v2 3,504,872 - 17,056 BatchNorm channels (2 -> 1 parameter each)
    # + the 32->32 expand 1x1 of the first block (32 x 32 + 32)
    ("ncnn_mobilenet_v2", 3_504_872 - 17_056 + 32 * 32 + 32, "mobilenet_v2.param"),
    # torchvision resnet18 11,689,512 - 4,800 BatchNorm channels + res2a_branch1 (64 x 64 + 64)
    ("ncnn_resnet18", 11_689_512 - 4_800 + 64 * 64 + 64, "resnet18.param"),
    # 64 layers: 5,115,080 weights + 18,614 biases
    ("ncnn_mobilenet_v3", 5_115_080 + 18_614, "mobilenet_v3.param"),
]


@pytest.mark.parametrize(("name", "expected", "source"), NCNN, ids=[n[0] for n in NCNN])
def test_ncnn_graph_parameters(name: str, expected: int, source: str) -> None:
    assert params(build(name)) == expected, source


def test_ncnn_mobilenet_v3_layers() -> None:
    # mobilenet_v3.param: 15 bottlenecks (one more than the paper: 672->160 at stride 1, then
    # 160->672->160 at stride 2), SE on 8 of them, 64 weighted layers in all.
    m = build("ncnn_mobilenet_v3")
    weighted = [c for c in m.modules() if isinstance(c, nn.Conv2d | nn.Linear)]
    assert len(weighted) == 64
    assert sum(isinstance(b, N.V3Block) for b in m.modules()) == 15
    assert sum(isinstance(b, N.HardSigmoidSE) for b in m.modules()) == 8


# --- detectors and MLPerf models: counts derived by hand from the reference code -----------
def test_ssd_mobilenet_parameters() -> None:
    # MobileNet v1 1.0 has 4,231,976 parameters (Keras MobileNet, trainable) with its 1000-class
    # 1x1 classifier (1024 x 1000 + 1000); BatchNorm in the extras (no conv bias); 1x1 box and
    # class predictors with biases for 3, 6, 6, 6, 6, 6 anchors x (4 + 91).
    body = 4_231_976 - (1024 * 1000 + 1000)
    extras = sum(ci * mid + 2 * mid + mid * co * 9 + 2 * co
                 for ci, mid, co in ((1024, 256, 512), (512, 128, 256), (256, 128, 256),
                                     (256, 64, 128)))
    heads = sum((c + 1) * a * (4 + 91)
                for c, a in zip((512, 1024, 512, 256, 256, 128), (3, 6, 6, 6, 6, 6), strict=True))
    assert params(build("ssd_mobilenet")) == body + extras + heads == 6_819_839


def test_ssd_resnet34_parameters() -> None:
    # torchvision resnet34 (21,797,672) without fc (512 x 1000 + 1000) and layer4 (3 basic
    # blocks of 512, the first with a 1x1 projection from 256, BatchNorm after each conv);
    # mlcommons ssd_r34.py: 5 extra blocks 1x1 + 3x3 with biases; 3x3 heads with biases for
    # 4, 6, 6, 6, 4, 4 anchors x (4 + 81 classes).
    layer4 = (256 * 512 * 9 + 512 * 512 * 9 + 256 * 512 + 3 * 2 * 512
              + 2 * (2 * 512 * 512 * 9 + 2 * 2 * 512))
    backbone = 21_797_672 - (512 * 1000 + 1000) - layer4
    extras = sum(ci * mid + mid + mid * co * 9 + co
                 for ci, mid, co in ((256, 256, 512), (512, 256, 512), (512, 128, 256),
                                     (256, 128, 256), (256, 128, 256)))
    heads = sum((c * 9 + 1) * a * (4 + 81)
                for c, a in zip((256, 512, 512, 256, 256, 256), (4, 6, 6, 6, 4, 4), strict=True))
    assert params(build("ssd_resnet34")) == backbone + extras + heads == 19_972_534


def test_mlperf_tiny_parameters() -> None:
    # mlcommons/tiny Keras definitions; Keras layers have biases; BatchNorm counts gamma and
    # beta (its moving statistics are buffers, not parameters, in PyTorch).
    bn = 2
    # KWS DS-CNN: conv 64 x (10x4x1) | 4 x (depthwise 64 x 3x3, pointwise 64x64) | FC 64->12
    kws = (64 * 40 + 64 + bn * 64) + 4 * (64 * 9 + 64 + bn * 64 + 64 * 64 + 64 + bn * 64) \
        + 64 * 12 + 12
    assert params(build("tiny_kws_dscnn")) == kws == 23_756
    # ResNet-8: 3x3 stem 16 | stacks (16, 16) (16->32, 32 + 1x1) (32->64, 64 + 1x1) | FC 64->10
    def c3(ci: int, co: int) -> int:
        return ci * co * 9 + co + bn * co

    ic = c3(3, 16) + c3(16, 16) + c3(16, 16) + c3(16, 32) + c3(32, 32) + (16 * 32 + 32) \
        + c3(32, 64) + c3(64, 64) + (32 * 64 + 64) + 64 * 10 + 10
    assert params(build("tiny_resnet8")) == ic == 78_186
    # VWW MobileNet v1 alpha 0.25: 3x3 stem 8, 13 depthwise-separable layers, FC 256->2
    body = ((8, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128), *[(128, 128)] * 5,
            (128, 256), (256, 256))
    vww = (3 * 8 * 9 + 8 + bn * 8) + sum(ci * 9 + ci + bn * ci + ci * co + co + bn * co
                                         for ci, co in body) + 256 * 2 + 2
    assert params(build("tiny_vww_mobilenet")) == vww == 216_322
    # AD autoencoder: 640-128-128-128-128-8-128-128-128-128-640, BN on every hidden layer
    dims = (640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640)
    ad = sum(a * b + b for a, b in itertools.pairwise(dims)) + bn * sum(dims[1:-1])
    assert params(build("tiny_ad_autoencoder")) == ad == 267_928


# --- MAC counts (profile on fake tensors; MACs of convolutions and linear layers) ------------
MACS = [
    # (builder, input side, exact MACs, published, digits, source)
    ("resnet50", 224, 4_089_184_256, 4.09, 2, "torchvision ResNet50_Weights: 4.09 GFLOPS"),
    ("mobilenet_v2", 224, 300_774_272, 0.30, 2, "torchvision MobileNet_V2_Weights: 0.30"),
    ("vgg16", 224, 15_470_264_320, 15.47, 2, "torchvision VGG16_Weights: 15.47"),
    ("googlenet", 224, 1_498_376_192, 1.50, 2, "torchvision GoogLeNet_Weights: 1.50"),
    ("squeezenet1_1", 224, 349_151_936, 0.35, 2, "torchvision SqueezeNet1_1_Weights: 0.35"),
    ("ssd_resnet34", 1200, 216_415_931_904, 216.4, 1,
     "calibration-set row text 216.4 GMACs (MLPerf: 433 GFLOPs)"),
    # The row text says 1.20 GMACs; the MLPerf layers give 1.237 (body 1,055.2 M, extras
    # 61.6 M, 1x1 heads 120.3 M). The rebuild reproduces the set's predicted latency exactly.
    ("ssd_mobilenet", 300, 1_237_129_408, 1.2, 1, "calibration-set row text: 1.20 GMACs"),
    ("yolov8s", 640, 14_300_774_400, 28.6, 1, "Ultralytics README: 28.6 GFLOPs (2 x MACs)"),
    ("yolov5n", 640, 2_234_060_800, 4.5, 1, "Ultralytics README: 4.5 GFLOPs (2 x MACs)"),
]


@pytest.mark.parametrize(("name", "side", "exact", "published", "digits", "source"), MACS,
                         ids=[m[0] for m in MACS])
def test_macs_match_the_published_figure(name: str, side: int, exact: int, published: float,
                                         digits: int, source: str) -> None:
    with torch.device("meta"):
        x = torch.zeros(1, 3, side, side)
    macs = profile(build(name), x).macs
    assert macs == exact
    scale = 2 if "GFLOPs (2 x MACs)" in source else 1
    assert round(scale * macs / 1e9, digits) == published, source


# --- the rows file ---------------------------------------------------------------------------
def test_rows_are_well_formed_and_build() -> None:
    data = load()
    rows = data.rows
    assert len(rows) == 45
    assert set(data.sources) == {"coral", "t2t", "idein", "ncnn4", "ncnn5", "rknn", "mlp07",
                                 "mlp11", "hmz", "tiny", "stzoo", "et"}
    for row in rows:
        assert row.builder in N.BUILDERS, row.id
        assert row.precision in ("int8", "fp16", "fp32"), row.id
        assert row.published_ms > 0 and row.predicted_ms_8c8bd81 > 0, row.id
        model, x = row.build()
        assert x.shape == row.input and x.device.type == "meta", row.id
        assert next(model.parameters()).device.type == "meta", row.id


def test_clock_notes() -> None:
    rows = {r.id: r for r in load_rows()}
    # STM32H7A3 at 280 MHz and STM32H747 at 400 MHz vs the catalog's 480 MHz: compare cycles
    assert rows["h7a3-kws"].clock_scale == pytest.approx(480 / 280)
    assert rows["h747-sq-224"].clock_scale == pytest.approx(480 / 400)
    # the Raspberry Pi 4 ran at 1.8 GHz (catalog 1.5 GHz): recorded, not scaled
    assert (rows["rpi4-alexnet"].board_mhz, rows["rpi4-alexnet"].catalog_mhz) == (1800, 1500)
    assert rows["rpi4-alexnet"].clock_scale == 1.0
    assert sum(r.compare_cycles for r in rows.values()) == 8


def test_holdout_split_is_spread_over_devices() -> None:
    rows = load_rows()
    holdout = load_rows(split="holdout")
    assert len(holdout) == 15 and len(load_rows(split="calibration")) == 30
    by_device: dict[str, list[str]] = {}
    for r in rows:
        by_device.setdefault(r.device, []).append(r.split)
    for device, splits in by_device.items():
        if len(splits) >= 3:  # tested on rows it was not fitted on, fitted on most
            assert 0 < splits.count("holdout") < splits.count("calibration"), device
        else:  # single-row devices stay fittable
            assert "calibration" in splits, device
    assert {r.precision for r in holdout} == {"int8", "fp16", "fp32"}
    assert load_rows(devices=("rk3588-npu",), split="holdout")[0].id == "rk-yolov5s_relu"
    with pytest.raises(ValueError, match="split"):
        load_rows(split="test")
