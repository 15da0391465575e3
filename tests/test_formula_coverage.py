"""Formulas no other test reaches, each checked against a hand derivation from the shapes.

Conventions (README "Conventions" and the ops/*.py docstrings): MACs only for products; FLOPs =
2 x MACs + elementwise work; bytes = every input read once + every output written once, at the
tensor's dtype (fp32 4, fp16 2, int64 8, bool 1 byte per element).

Some aten operators are only reached by calling ``torch.ops.aten`` in a forward: CPU autograd
decomposes ``dropout`` and ``batch_norm`` before their fused kernels, and ``_conv_depthwise2d``
has neither a CPU kernel nor a meta kernel (a test-scoped meta kernel is registered for it).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from reference_models import Fn
from torch import nn

from pytest_flopbudget import profile


def record(p, op, phase=None):
    """The one record of ``aten.<op>`` (in ``phase`` when given)."""
    records = p.phase(phase).records if phase else p.records
    [rec] = [r for r in records if r.op == f"aten.{op}"]
    return rec


def backward(model, *inputs):
    return profile(model, *inputs, train=True).phase("backward")


def grad_input(*shape):
    return torch.randn(*shape, requires_grad=True)


def x4():
    return torch.randn(2, 8, 6, 6)


N = 2 * 8 * 6 * 6  # elements of x4(): 576


# --- elementwise -------------------------------------------------------------------------


def test_glu_costs_sigmoid_and_multiply_per_output():
    # GLU over dim 1 halves 8 channels: output 2*4*6*6 = 288 elements, sigmoid(b) 4 + a*s 1
    # = 5 each: 1,440 FLOPs; reads 576 floats = 2,304 B, writes 288 floats = 1,152 B
    rec = record(profile(nn.GLU(dim=1), x4()), "glu")
    assert (rec.macs, rec.flops) == (0, 5 * 288) == (0, 1_440)
    assert (rec.read.bytes(), rec.written.bytes()) == (4 * N, 4 * 288)


def test_masked_softmax_costs_as_softmax():
    # (2,3,4) = 24 elements x 5 (max, sub, exp, sum, div) = 120 FLOPs;
    # reads 24 floats + 24 bools = 96 + 24 = 120 B, writes 24 floats = 96 B
    fn = Fn(lambda x, m: torch.ops.aten._masked_softmax(x, m, 2, 0))
    p = profile(fn, torch.randn(2, 3, 4), torch.zeros(2, 3, 4, dtype=torch.bool))
    rec = record(p, "_masked_softmax")
    assert (rec.macs, rec.flops) == (0, 5 * 24) == (0, 120)
    assert (rec.read.bytes(), rec.written.bytes()) == (96 + 24, 96)


@pytest.mark.parametrize("train", [True, None])
def test_native_dropout_is_compare_and_scale(train):
    # (2,6,4) = 48 elements x 2 (mask compare, scale multiply) = 96 FLOPs;
    # reads 48 floats = 192 B; writes output 48 floats + bool mask 48 B = 240 B
    fn = Fn(lambda x: torch.ops.aten.native_dropout(x, 0.5, train)[0])
    rec = record(profile(fn, torch.randn(2, 6, 4)), "native_dropout")
    assert (rec.macs, rec.flops) == (0, 2 * 48) == (0, 96)
    assert (rec.read.bytes(), rec.written.bytes()) == (192, 192 + 48)


def test_tanhshrink_is_counted_as_tanh_and_sub():
    # this torch has no aten.tanhshrink: F.tanhshrink runs x - tanh(x), two table operators
    # of 1 FLOP per element each: tanh 576 + sub 576 = 1,152 FLOPs.
    # tanh reads x (576 floats = 2,304 B) and writes 2,304 B; sub reads x and tanh(x)
    # (4,608 B) and writes 2,304 B
    p = profile(nn.Tanhshrink(), x4())
    assert p.unsupported == {}
    assert [(r.op, r.flops) for r in p.records] == [("aten.tanh", N), ("aten.sub", N)]
    assert p.flops == 2 * N == 1_152
    assert (p.bytes_read, p.bytes_written) == (2_304 + 4_608, 2 * 2_304)


# --- linear algebra ------------------------------------------------------------------------


def test_vdot():
    # [9] . [9]: 9 MACs, nothing added: 18 FLOPs
    rec = record(profile(Fn(torch.vdot), torch.randn(9), torch.randn(9)), "vdot")
    assert (rec.macs, rec.flops) == (9, 18)


def test_matmul_with_a_broadcast_first_operand():
    # [3,4] @ [2,4,5]: the [3,4] matrix broadcasts over the batch of 2: 2*3*5*4 = 120 MACs
    rec = record(profile(Fn(torch.ops.aten.matmul), torch.randn(3, 4), torch.randn(2, 4, 5)),
                 "matmul")
    assert (rec.macs, rec.flops) == (120, 240)


@pytest.mark.parametrize("use_gelu,flops", [
    # [4,6] @ [6,5]: 4*5*6 = 120 MACs; per output (20): bias add 1 + relu 1 = 40 -> 280
    (False, 2 * 120 + 20 * 2),
    # gelu epilogue costs 5 (as the elementwise table): 20 * (1 + 5) = 120 -> 360
    (True, 2 * 120 + 20 * 6),
])
def test_addmm_activation(use_gelu, flops):
    fn = Fn(lambda b, x, w: torch.ops.aten._addmm_activation(b, x, w, use_gelu=use_gelu))
    p = profile(fn, torch.randn(5), torch.randn(4, 6), torch.randn(6, 5))
    rec = record(p, "_addmm_activation")
    assert (rec.macs, rec.flops) == (120, flops)
    assert flops == (280 if not use_gelu else 360)


def test_addbmm_sums_batch_products_into_one_matrix():
    # 3 products [4,6] @ [6,5]: 3*4*5*6 = 360 MACs, accumulated into one [4,5] plus the
    # input term: 20 adds -> 2*360 + 20 = 740 FLOPs
    p = profile(Fn(torch.addbmm), torch.randn(4, 5), torch.randn(3, 4, 6), torch.randn(3, 6, 5))
    rec = record(p, "addbmm")
    assert (rec.macs, rec.flops) == (360, 740)


def test_addmv():
    # [4,6] @ [6]: 4*6 = 24 MACs, + input term 4 adds -> 2*24 + 4 = 52 FLOPs
    rec = record(profile(Fn(torch.addmv), torch.randn(4), torch.randn(4, 6), torch.randn(6)),
                 "addmv")
    assert (rec.macs, rec.flops) == (24, 52)


def test_addr_outer_product_is_elementwise():
    # outer product of [4] and [5]: 20 multiplies (nothing accumulated: no MACs) + 20 adds
    # = 40 FLOPs; reads 20 + 4 + 5 = 29 floats = 116 B, writes 20 floats = 80 B
    rec = record(profile(Fn(torch.addr), torch.randn(4, 5), torch.randn(4), torch.randn(5)),
                 "addr")
    assert (rec.macs, rec.flops) == (0, 40)
    assert (rec.read.bytes(), rec.written.bytes()) == (116, 80)


# --- normalisation -------------------------------------------------------------------------

C = 8
W8, B8, MEAN8, VAR8 = torch.randn(C), torch.randn(C), torch.zeros(C), torch.ones(C)


@pytest.mark.parametrize("op", ["_native_batch_norm_legit_no_training", "_batch_norm_no_update"])
def test_batch_norm_without_statistics(op):
    # eval: normalise 2 + weight 1 + bias 1 = 4 per element: 4 * 576 = 2,304 FLOPs;
    # reads x 576 + weight, bias, mean, var 4*8 = 608 floats = 2,432 B
    fn = Fn(lambda x: getattr(torch.ops.aten, op)(x, W8, B8, MEAN8, VAR8, 0.1, 1e-5)[0])
    rec = record(profile(fn, x4()), op)
    assert (rec.macs, rec.flops) == (0, 4 * N) == (0, 2_304)
    assert rec.read.bytes() == 4 * (N + 4 * C) == 2_432


@pytest.mark.parametrize("op,call", [
    ("batch_norm", lambda x, training: torch.ops.aten.batch_norm(
        x, W8, B8, MEAN8.clone(), VAR8.clone(), training, 0.1, 1e-5, False)),
    ("native_batch_norm", lambda x, training: torch.ops.aten.native_batch_norm(
        x, W8, B8, MEAN8.clone(), VAR8.clone(), training, 0.1, 1e-5)[0]),
    ("_native_batch_norm_legit", lambda x, training: torch.ops.aten._native_batch_norm_legit(
        x, W8, B8, MEAN8.clone(), VAR8.clone(), training, 0.1, 1e-5)[0]),
])
@pytest.mark.parametrize("training,per", [(True, 8), (False, 4)])
def test_batch_norm_reads_its_training_flag(op, call, training, per):
    # training: statistics 4 + normalise 2 + weight 1 + bias 1 = 8 per element (4,608);
    # eval: 2 + 1 + 1 = 4 (2,304). Reads x 576 + weight, bias, mean, var 4*8 = 608 floats
    rec = record(profile(Fn(lambda x: call(x, training)), x4()), op)
    assert (rec.macs, rec.flops) == (0, per * N)
    assert rec.read.bytes() == 4 * (N + 4 * C) == 2_432


def test_batch_norm_without_running_statistics_reads_its_training_flag():
    # _native_batch_norm_legit.no_stats(input, weight, bias, training, momentum, eps): the
    # flag sits at another position than in the overload with running statistics.
    # training: 8 per element = 4,608 FLOPs; reads x 576 + weight, bias 2*8 = 592 floats
    def fn(x):
        return torch.ops.aten._native_batch_norm_legit.no_stats(x, W8, B8, True, 0.1, 1e-5)[0]

    rec = record(profile(Fn(fn), x4()), "_native_batch_norm_legit")
    assert (rec.macs, rec.flops) == (0, 8 * N) == (0, 4_608)
    assert rec.read.bytes() == 4 * (N + 2 * C) == 2_368


def test_batch_norm_with_update_computes_statistics():
    # train: statistics 4 + normalise 2 + weight 1 + bias 1 = 8 per element: 4,608 FLOPs
    def fn(x):
        return torch.ops.aten._batch_norm_with_update(x, W8, B8, MEAN8.clone(), VAR8.clone(),
                                                      0.1, 1e-5)[0]

    rec = record(profile(Fn(fn), x4()), "_batch_norm_with_update")
    assert (rec.macs, rec.flops) == (0, 8 * N) == (0, 4_608)


def test_native_group_norm():
    # statistics 4 + normalise 2 + weight 1 + bias 1 = 8 per element: 8 * 576 = 4,608
    fn = Fn(lambda x: torch.ops.aten.native_group_norm(x, W8, B8, 2, C, 36, 4, 1e-5)[0])
    assert record(profile(fn, x4()), "native_group_norm").flops == 8 * N == 4_608
    # without affine: 6 per element: 3,456
    fn = Fn(lambda x: torch.ops.aten.native_group_norm(x, None, None, 2, C, 36, 4, 1e-5)[0])
    assert record(profile(fn, x4()), "native_group_norm").flops == 6 * N == 3_456
    # nn.GroupNorm with autograd on reaches the same operator
    p = profile(nn.GroupNorm(4, C), x4(), train=True)
    assert record(p, "native_group_norm", "forward").flops == 8 * N


# --- convolution ---------------------------------------------------------------------------


def test_mkldnn_convolution():
    # x 2x8x6x6, w 4x8x3x3, padding 1 -> out 2x4x6x6 = 288 outputs, each 8*3*3 = 72 MACs:
    # 20,736 MACs; bias 288 adds -> 2*20,736 + 288 = 41,760 FLOPs
    w, b = torch.randn(4, 8, 3, 3), torch.randn(4)
    fn = Fn(lambda x: torch.ops.aten.mkldnn_convolution(x, w, b, [1, 1], [1, 1], [1, 1], 1))
    rec = record(profile(fn, x4()), "mkldnn_convolution")
    assert (rec.macs, rec.flops) == (288 * 72, 2 * 288 * 72 + 288) == (20_736, 41_760)
    # reads x 576 + w 288 + b 4 = 868 floats; writes 288 floats
    assert (rec.read.bytes(), rec.written.bytes()) == (4 * 868, 4 * 288)


def _depthwise2d_meta(x, w, kernel_size, bias, stride, padding, dilation):
    kh, kw = kernel_size
    h = (x.shape[2] + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wd = (x.shape[3] + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return x.new_empty((x.shape[0], w.shape[0], h, wd))


def test_conv_depthwise2d():
    # aten._conv_depthwise2d is CUDA-only and has no meta kernel: give it one for this test.
    # x 2x8x6x6, w 8x1x3x3 (groups 8), no padding -> out 2x8x4x4 = 256 outputs, each
    # 1*3*3 = 9 MACs: 2,304 MACs; bias 256 adds -> 4,864 FLOPs
    w, b = torch.randn(8, 1, 3, 3), torch.randn(8)
    fn = Fn(lambda x: torch.ops.aten._conv_depthwise2d(x, w, [3, 3], b, [1, 1], [0, 0], [1, 1]))
    with torch.library._scoped_library("aten", "IMPL") as lib:
        lib.impl("_conv_depthwise2d", _depthwise2d_meta, "Meta")
        rec = record(profile(fn, x4(), trace="fake"), "_conv_depthwise2d")
    assert (rec.macs, rec.flops) == (256 * 9, 2 * 256 * 9 + 256) == (2_304, 4_864)
    assert rec.op_class == "depthwise_conv"
    # reads x 576 + w 72 + b 8 = 656 floats; writes 256 floats
    assert (rec.read.bytes(), rec.written.bytes()) == (4 * 656, 4 * 256)


# --- pooling and resampling ----------------------------------------------------------------


@pytest.mark.parametrize("module,op", [(nn.MaxPool3d(2), "max_pool3d"),
                                       (nn.AvgPool3d(2), "avg_pool3d")])
def test_3d_pooling(module, op):
    # 1x2x4x6x6 -> 1x2x2x3x3 = 36 outputs, window 2*2*2 = 8: 288 FLOPs
    rec = record(profile(module, torch.randn(1, 2, 4, 6, 6)), op)
    assert (rec.macs, rec.flops) == (0, 36 * 8) == (0, 288)


@pytest.mark.parametrize("module,op", [(nn.AdaptiveAvgPool1d(3), "adaptive_avg_pool1d"),
                                       (nn.AdaptiveMaxPool1d(3), "adaptive_max_pool1d")])
def test_adaptive_1d_pooling(module, op):
    # 7 -> 3: windows [0,3) [2,5) [4,7) = 3 + 3 + 3 = 9 per plane; 2*4 = 8 planes: 72
    assert record(profile(module, torch.randn(2, 4, 7)), op).flops == 8 * 9 == 72


@pytest.mark.parametrize("module,op", [
    (nn.AdaptiveAvgPool3d((2, 3, 4)), "adaptive_avg_pool3d"),
    (nn.AdaptiveMaxPool3d((2, 3, 4)), "adaptive_max_pool3d"),
])
def test_adaptive_3d_pooling(module, op):
    # 5 -> 2: [0,3) [2,5) = 6; 7 -> 3: [0,3) [2,5) [4,7) = 9; 9 -> 4: [0,3) [2,5) [4,7) [6,9)
    # = 12; per plane 6*9*12 = 648, 2 planes: 1,296
    rec = record(profile(module, torch.randn(1, 2, 5, 7, 9)), op)
    assert rec.flops == 2 * 6 * 9 * 12 == 1_296


@pytest.mark.parametrize("shape,mode,antialias,op,flops", [
    # outputs (scale 2): 1d 2x3x10 = 60; 2d 1x2x8x10 = 160; 3d 1x2x4x6x8 = 384
    ((2, 3, 5), "nearest", False, "upsample_nearest1d", 0),
    ((1, 2, 2, 3, 4), "nearest", False, "upsample_nearest3d", 0),
    ((2, 3, 5), "nearest-exact", False, "_upsample_nearest_exact1d", 0),
    ((1, 2, 4, 5), "nearest-exact", False, "_upsample_nearest_exact2d", 0),
    ((1, 2, 2, 3, 4), "nearest-exact", False, "_upsample_nearest_exact3d", 0),
    ((1, 2, 4, 5), "bilinear", True, "_upsample_bilinear2d_aa", 160 * 7),  # 1,120
    ((1, 2, 4, 5), "bicubic", True, "_upsample_bicubic2d_aa", 160 * 31),  # 4,960
    ((1, 2, 2, 3, 4), "trilinear", False, "upsample_trilinear3d", 384 * 15),  # 5,760
])
def test_interpolation(shape, mode, antialias, op, flops):
    fn = Fn(lambda x: F.interpolate(x, scale_factor=2, mode=mode, antialias=antialias))
    x = torch.randn(*shape)
    rec = record(profile(fn, x), op)
    assert (rec.macs, rec.flops) == (0, flops)
    # reads the input once, writes 2^d times as many elements (d interpolated dims)
    d = len(shape) - 2
    assert (rec.read.bytes(), rec.written.bytes()) == (4 * x.numel(), 4 * x.numel() * 2**d)


# --- recurrent cells -----------------------------------------------------------------------


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias,flops", [
    # 3 rows, I=4, H=6: 3 * 1*6*(4+6) = 180 MACs; elementwise 3 * 6 * (2 + 2 bias) = 72
    (True, 2 * 180 + 72),  # 432
    (False, 2 * 180 + 36),  # 396: 3 * 6 * 2
])
def test_rnn_cells(nonlinearity, bias, flops):
    cell = nn.RNNCell(4, 6, bias=bias, nonlinearity=nonlinearity)
    rec = record(profile(cell, torch.randn(3, 4)), f"rnn_{nonlinearity}_cell")
    assert (rec.macs, rec.flops) == (180, flops)
    # reads x 12 + h0 18 + W_ih 24 + W_hh 36 (+ b_ih 6 + b_hh 6) floats
    assert rec.read.bytes() == 4 * (12 + 18 + 24 + 36 + (12 if bias else 0))


@pytest.mark.parametrize("cell,outputs", [
    (nn.RNNCell(4, 6, nonlinearity="tanh"), 1), (nn.RNNCell(4, 6, nonlinearity="relu"), 1),
    (nn.GRUCell(4, 6), 1), (nn.LSTMCell(4, 6), 2),
], ids=["rnn_tanh_cell", "rnn_relu_cell", "gru_cell", "lstm_cell"])
def test_a_cell_writes_its_results_only(cell, outputs):
    # a cell returns h' (3x6 = 18 floats = 72 B), an LSTM cell also c' (another 72 B); it
    # writes no output sequence besides its state
    p = profile(cell, torch.randn(3, 4))
    [rec] = [r for r in p.records if r.op.endswith("_cell")]
    assert rec.written.bytes() == outputs * 4 * 18


# --- backward ------------------------------------------------------------------------------


@pytest.mark.parametrize("approximate,per", [("none", 11), ("tanh", 18)])
def test_gelu_backward(approximate, per):
    # 2x3x4 = 24 gradient elements; exact: Phi 4 + phi 4 + x*phi 1 + add 1 + *g 1 = 11
    # (264); tanh approximation: 18 per element (432)
    p = backward(nn.GELU(approximate=approximate), grad_input(2, 3, 4))
    assert record(p, "gelu_backward").flops == 24 * per


@pytest.mark.parametrize("affine,per", [
    (True, 2 + 8 + 2 + 1),  # x_hat 2 + dx 8 + dw 2 + db 1 = 13
    (False, 2 + 7),  # x_hat 2 + dx without weight 7 = 9
])
def test_group_norm_backward(affine, per):
    # x 2x4x3x3 = 72 elements
    p = backward(nn.GroupNorm(2, 4, affine=affine), grad_input(2, 4, 3, 3))
    assert record(p, "native_group_norm_backward").flops == 72 * per


@pytest.mark.parametrize("bn,needs_dx,per", [
    (nn.BatchNorm2d(4).train(), True, 2 + 8 + 2 + 1),  # statistics: 13 per element
    (nn.BatchNorm2d(4).train(), False, 2 + 2 + 1),  # dw and db only: x_hat 2 + 2 + 1 = 5
    (nn.BatchNorm2d(4).eval(), True, 1 + 2 + 2 + 1),  # eval dx g*(w*r) 1 + x_hat 2 + 2 + 1
    (nn.BatchNorm2d(4, affine=False).eval(), True, 1),  # eval dx only: 1
])
def test_native_batch_norm_backward(bn, needs_dx, per):
    # x 2x4x3x3 = 72 elements
    x = grad_input(2, 4, 3, 3) if needs_dx else torch.randn(2, 4, 3, 3)
    assert record(backward(bn, x), "native_batch_norm_backward").flops == 72 * per


@pytest.mark.parametrize("update,per", [(True, 2 + 8 + 2 + 1), (False, 1 + 2 + 2 + 1)])
def test_batch_norm_backward(update, per):
    # called directly, all three gradients asked for; x 2x8x6x6 = 576 elements:
    # with statistics (update) 13 per element = 7,488; without 6 = 3,456
    forward = "_batch_norm_with_update" if update else "_batch_norm_no_update"

    def fn(g, x):
        stats = getattr(torch.ops.aten, forward)(x, W8, B8, MEAN8.clone(), VAR8.clone(), 0.1,
                                                 1e-5)
        return torch.ops.aten.batch_norm_backward(g, x, W8, MEAN8, VAR8, stats[1], stats[2],
                                                  update, 1e-5, [True, True, True], stats[3])

    assert record(profile(Fn(fn), x4(), x4()), "batch_norm_backward").flops == N * per


@pytest.mark.parametrize("module,shape,op,flops", [
    # avg: each output gradient spread over its window: 1x2x2x3 = 12 gradients x 4 = 48
    (nn.AvgPool2d(2), (1, 2, 4, 6), "avg_pool2d_backward", 12 * 4),
    # 1x2x2x2x3 = 24 gradients x 8 = 192
    (nn.AvgPool3d(2), (1, 2, 4, 4, 6), "avg_pool3d_backward", 24 * 8),
    # max: one scatter-add per output gradient: 24
    (nn.MaxPool3d(2), (1, 2, 4, 4, 6), "max_pool3d_with_indices_backward", 24),
    # adaptive: the forward's exact windows; (5->2: 6) * (7->3: 9) * 2 planes = 108
    (nn.AdaptiveAvgPool2d((2, 3)), (1, 2, 5, 7), "_adaptive_avg_pool2d_backward", 108),
    # 6 * 9 * (9->4: 12) * 2 planes = 1,296
    (nn.AdaptiveAvgPool3d((2, 3, 4)), (1, 2, 5, 7, 9), "_adaptive_avg_pool3d_backward", 1_296),
])
def test_pooling_backward(module, shape, op, flops):
    assert record(backward(module, grad_input(*shape)), op).flops == flops


@pytest.mark.parametrize("shape,mode,op,flops", [
    # output gradients (scale 2): 1d 1x2x10 = 20; 2d 1x2x6x8 = 96; 3d 1x2x4x6x8 = 384
    # nearest: one add per output gradient; linear family: multiply + add per tap
    ((1, 2, 5), "nearest", "upsample_nearest1d_backward", 20),
    ((1, 2, 3, 4), "nearest", "upsample_nearest2d_backward", 96),
    ((1, 2, 2, 3, 4), "nearest", "upsample_nearest3d_backward", 384),
    ((1, 2, 5), "linear", "upsample_linear1d_backward", 20 * 2 * 2),  # 2 taps: 80
    ((1, 2, 3, 4), "bilinear", "upsample_bilinear2d_backward", 96 * 2 * 4),  # 4 taps: 768
    ((1, 2, 3, 4), "bicubic", "upsample_bicubic2d_backward", 96 * 2 * 16),  # 16: 3,072
    ((1, 2, 2, 3, 4), "trilinear", "upsample_trilinear3d_backward", 384 * 2 * 8),  # 6,144
])
def test_upsample_backward(shape, mode, op, flops):
    fn = Fn(lambda x: F.interpolate(x, scale_factor=2, mode=mode))
    assert record(backward(fn, grad_input(*shape)), op).flops == flops


def test_cross_entropy_forward_and_backward():
    # 4 rows of 5 classes. nll_loss_forward picks one log-probability per row: 4 FLOPs;
    # reads 20 floats + 4 int64 = 80 + 32 = 112 B, writes loss + total_weight = 8 B
    # backward: nll_loss_backward scatters one gradient per row: 4;
    # _log_softmax_backward_data g - exp(y)*sum(g): 4 per element, 20 elements = 80
    target = torch.tensor([0, 1, 2, 3])
    p = profile(Fn(F.cross_entropy), grad_input(4, 5), target, train=True)
    forward = record(p, "nll_loss_forward", "forward")
    assert (forward.flops, forward.read.bytes(), forward.written.bytes()) == (4, 112, 8)
    assert record(p, "nll_loss_backward", "backward").flops == 4
    assert record(p, "_log_softmax_backward_data", "backward").flops == 4 * 20 == 80
    # F.nll_loss alone: the same pair
    p = profile(Fn(F.nll_loss), grad_input(4, 5), target, train=True)
    assert record(p, "nll_loss_forward", "forward").flops == 4
    assert record(p, "nll_loss_backward", "backward").flops == 4


def test_mse_loss_forward_and_backward():
    # 4x5 = 20 elements; forward (x - t)^2 summed: sub, square, add = 3 each = 60;
    # backward (2/N folded into one scalar with g): sub, *norm, *g = 3 each = 60
    p = profile(Fn(F.mse_loss), grad_input(4, 5), torch.randn(4, 5), train=True)
    forward = record(p, "mse_loss", "forward")
    # reads x and t 2*20 floats = 160 B, writes the scalar loss 4 B
    assert (forward.flops, forward.read.bytes(), forward.written.bytes()) == (60, 160, 4)
    assert record(p, "mse_loss_backward", "backward").flops == 3 * 20 == 60


@pytest.mark.parametrize("module,op,per", [
    # per element of the 2x3x4 = 24 gradient; each compare and arithmetic op is 1, a select
    # is free (the forward table's convention)
    (nn.Hardtanh(), "hardtanh_backward", 2),  # lo < x, x < hi
    (nn.ReLU6(), "hardtanh_backward", 2),
    (nn.LeakyReLU(), "leaky_relu_backward", 2),  # x > 0, a*g
    (nn.Sigmoid(), "sigmoid_backward", 3),  # 1 - y, *y, *g
    (nn.SiLU(), "silu_backward", 9),  # s = sigmoid 4, 1 - s, x*, 1 +, g*s, *
    (nn.Hardsigmoid(), "hardsigmoid_backward", 3),  # -3 < x, x < 3, g/6
    (nn.Hardswish(), "hardswish_backward", 6),  # x < -3, x <= 3, 2x, +3, g*, /6
    (nn.ELU(), "elu_backward", 3),  # x > 0, y + a, g*
    (nn.Softplus(), "softplus_backward", 5),  # sigmoid 4, g*
    (nn.LogSoftmax(dim=1), "_log_softmax_backward_data", 4),  # sum g, exp, *, sub
])
def test_activation_backward(module, op, per):
    rec = record(backward(module, grad_input(2, 3, 4)), op)
    assert (rec.macs, rec.flops) == (0, 24 * per)


# --- data movement -------------------------------------------------------------------------


def test_copy_reads_its_source_and_writes_its_destination():
    # dst (4,5) fp32 <- src (5,) fp16 broadcast: reads 5 halves = 10 B (not dst),
    # writes 20 floats = 80 B; no FLOPs
    p = profile(Fn(lambda d, s: d.copy_(s)), torch.randn(4, 5), torch.randn(5).half())
    rec = record(p, "copy_")
    assert (rec.flops, rec.read.bytes(), rec.written.bytes()) == (0, 10, 80)


def test_index_select_reads_only_the_picked_rows():
    # 3 rows of a (6,4) table: reads 3 int64 indices 24 B + 3*4 floats 48 B = 72 B,
    # writes 3*4 floats = 48 B
    p = profile(Fn(lambda x, i: torch.index_select(x, 0, i)), torch.randn(6, 4),
                torch.tensor([0, 2, 5]))
    rec = record(p, "index_select")
    assert (rec.flops, rec.read.bytes(), rec.written.bytes()) == (0, 24 + 48, 48)


def test_gather_reads_only_the_picked_elements():
    # index (4,2) int64 into a (4,6) table along dim 1: reads 8 indices 64 B + 8 floats 32 B
    # = 96 B, writes 8 floats = 32 B
    p = profile(Fn(lambda x, i: torch.gather(x, 1, i)), torch.randn(4, 6),
                torch.zeros(4, 2, dtype=torch.long))
    rec = record(p, "gather")
    assert (rec.flops, rec.read.bytes(), rec.written.bytes()) == (0, 64 + 32, 32)
