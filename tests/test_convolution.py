"""Convolution counts, each derived by hand from the shapes (seed 000 and 004 formulas)."""

from __future__ import annotations

import fake_calibration
import pytest
import torch
from torch import nn

from pytest_flopbudget import profile
from pytest_flopbudget.counting.costs import TensorMeta
from pytest_flopbudget.counting.ops.convolution import pytorch_backend


def only_op(p, name):
    [rec] = [r for r in p.records if r.op == name]
    return rec


def test_seed000_first_conv():
    # Seed 000: Conv1d 1 -> 32, kernel 3, padding 1 on 1x1x1024 keeps length 1024.
    # MACs = C_in * C_out * K * L = 1 * 32 * 3 * 1024 = 98,304 (the seed's "1*32*3*1024")
    # bias: one add per output element = 32 * 1024 = 32,768
    p = profile(nn.Conv1d(1, 32, 3, padding=1), torch.randn(1, 1, 1024))
    assert p.macs == 98_304
    assert p.flops == 2 * 98_304 + 32_768 == 229_376
    assert p.layers[0].output_shapes == [(1, 32, 1024)]


def test_seed004_resnet_variant_conv3():
    # Seed 004: Conv3 on 29x29x16, 3x3 kernel, 16 filters, stride 1, padding 1 -> 29x29x16.
    # Time ~ M^2 K^2 C_in C_out = 29*29 * 9 * 16 * 16 = 1,937,664 MACs
    # params: 3*3*16*16 + 16 = 2,320 (the seed's table agrees)
    p = profile(nn.Conv2d(16, 16, 3, 1, 1), torch.randn(1, 16, 29, 29))
    assert p.macs == 1_937_664
    assert p.params == 2_320


def test_seed004_output_size_and_wrong_table_entry():
    # Output size (W - F + 2P)/S + 1: (15 - 3 + 2)/1 + 1 = 15 for Conv8 (3x3, 32 -> 32).
    # Its params are 3*3*32*32 + 32 = 9,248; the seed's table says 4,640, which is wrong.
    p = profile(nn.Conv2d(32, 32, 3, 1, 1), torch.randn(1, 32, 15, 15))
    assert p.layers[0].output_shapes == [(1, 32, 15, 15)]
    assert p.params == 9_248
    # MACs = 15*15 * 9 * 32 * 32 = 2,073,600
    assert p.macs == 2_073_600


def test_seed004_first_conv_1x5_kernel():
    # Conv1: 57x57x1 input, 1x5 kernel, 16 filters, padding (0, 2) keeps 57x57.
    # MACs = 57*57 * (1*5) * 1 * 16 = 259,920; params = 1*5*1*16 + 16 = 96
    p = profile(nn.Conv2d(1, 16, (1, 5), padding=(0, 2)), torch.randn(1, 1, 57, 57))
    assert p.macs == 259_920
    assert p.params == 96


def test_strided_padded_dilated_conv2d():
    # H_out = floor((H + 2P - D*(K-1) - 1)/S) + 1 = floor((32 + 2 - 4 - 1)/2) + 1 = 15
    # MACs = N * C_out * H_out * W_out * C_in * K*K = 2 * 8 * 15 * 15 * 3 * 9 = 97,200
    conv = nn.Conv2d(3, 8, 3, stride=2, padding=1, dilation=2, bias=False)
    p = profile(conv, torch.randn(2, 3, 32, 32))
    assert p.layers[0].output_shapes == [(2, 8, 15, 15)]
    assert p.macs == 97_200
    assert p.flops == 2 * 97_200  # no bias


def test_grouped_conv_is_a_conv():
    # groups=4: each output channel sees C_in/groups = 2 input channels.
    # MACs = 1 * 16 * 10 * 10 * (8/4) * 9 = 28,800
    p = profile(nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=False), torch.randn(1, 8, 10, 10))
    assert p.macs == 28_800
    assert only_op(p, "aten.conv2d").op_class == "conv"


def test_depthwise_conv_counts_and_class():
    # groups = C_in = 8: one 3x3 filter per channel. MACs = 8 * 10 * 10 * 9 = 7,200
    p = profile(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), torch.randn(1, 8, 10, 10))
    assert p.macs == 7_200
    assert only_op(p, "aten.conv2d").op_class == "depthwise_conv"


def test_depthwise_with_channel_multiplier():
    # groups = C_in = 8, C_out = 16: two 3x3 filters per input channel.
    # MACs = 16 * 8 * 8 * 1 * 9 = 9,216 (no padding: 10 -> 8)
    p = profile(nn.Conv2d(8, 16, 3, groups=8, bias=False), torch.randn(1, 8, 10, 10))
    assert p.macs == 9_216
    assert only_op(p, "aten.conv2d").op_class == "depthwise_conv"


def test_conv3d_anisotropic_stride():
    # 1x2x8x16x16, kernel 3, stride (1,2,2), padding 1 -> 8x8x8
    # MACs = 4 * (8*8*8) * 2 * 27 = 110,592; bias adds 4 * 512 = 2,048
    p = profile(nn.Conv3d(2, 4, 3, stride=(1, 2, 2), padding=1), torch.randn(1, 2, 8, 16, 16))
    assert p.layers[0].output_shapes == [(1, 4, 8, 8, 8)]
    assert p.macs == 110_592
    assert p.flops == 2 * 110_592 + 2_048


def test_transposed_conv2d_runs_kernel_over_input():
    # 1x4x5x5 -> stride 2, padding 1, output_padding 1 -> 1x2x10x10
    # MACs = N * C_in * H_in * W_in * C_out/groups * K*K = 1 * 4 * 25 * 2 * 9 = 1,800
    # bias adds: 2 * 10 * 10 = 200
    conv = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
    p = profile(conv, torch.randn(1, 4, 5, 5))
    assert p.layers[0].output_shapes == [(1, 2, 10, 10)]
    assert p.macs == 1_800
    assert p.flops == 3_600 + 200


def test_grouped_transposed_conv1d():
    # C_in 4, C_out 6, groups 2, K 4, L_in 7: MACs = 4 * 7 * (6/2) * 4 = 336
    p = profile(nn.ConvTranspose1d(4, 6, 4, stride=2, groups=2, bias=False),
                torch.randn(1, 4, 7))
    assert p.macs == 336
    assert only_op(p, "aten.conv_transpose1d").op_class == "conv"


def test_unbatched_input():
    # 3x8x8 (no batch dim), 3 -> 4, kernel 3: 6x6 out; MACs = 4 * 36 * 3 * 9 = 3,888
    p = profile(nn.Conv2d(3, 4, 3, bias=False), torch.randn(3, 8, 8))
    assert p.macs == 3_888


def test_same_padding_string():
    # padding="same" keeps 9x9; MACs = 5 * 81 * 2 * 25 = 20,250
    p = profile(nn.Conv2d(2, 5, 5, padding="same", bias=False), torch.randn(1, 2, 9, 9))
    assert p.macs == 20_250


@pytest.mark.parametrize("grad", [False, True])
def test_functional_conv_counts_the_same_in_both_dispatch_paths(grad):
    # inference sees aten.conv2d whole; with autograd on it sees aten.convolution
    from pytest_flopbudget.counting.tracer import trace

    conv = nn.Conv2d(3, 4, 3, padding=1)
    t = trace(conv, (torch.randn(1, 3, 6, 6),), grad=grad)
    # 4 * 36 * 3 * 9 = 3,888 MACs; 144 bias adds
    assert sum(r.macs for r in t.records) == 3_888
    assert sum(r.flops for r in t.records) == 7_776 + 144


# --- what eager PyTorch lowers to a column matrix, and a product's rows -------------------------
@pytest.fixture(name="two_threads")
def _two_threads():
    with fake_calibration.two_threads():
        yield


def test_a_3d_conv_pytorch_lowers_records_its_column_matrix(two_threads):
    # conv3d 3 -> 16, 3x3x3, padding 1 on 1x3x16x64x64: PyTorch runs it as vol2col + GEMM (its
    # input's N x C x D x H = 1 x 3 x 16 x 64 = 3,072 is at most 20,480). The column matrix:
    # C_in x 27 = 81 rows by 16 x 64 x 64 = 65,536 output positions = 5,308,416 elements;
    # its rows (positions x batch): 65,536
    rec = only_op(profile(nn.Conv3d(3, 16, 3, padding=1), torch.randn(1, 3, 16, 64, 64)),
                  "aten.conv3d")
    assert rec.lowered == 5_308_416
    assert rec.rows == 65_536
    assert rec.runs_as == ""  # PyTorch's own path, not oneDNN


def test_convs_pytorch_runs_through_onednn_record_no_column_matrix(two_threads):
    # conv3d 64 -> 128 on 1x64x8x56x56: 1 x 64 x 8 x 56 = 28,672 > 20,480: oneDNN, not
    # lowered; its rows: 8 x 56 x 56 = 25,088
    rec = only_op(profile(nn.Conv3d(64, 128, 3, padding=1), torch.randn(1, 64, 8, 56, 56)),
                  "aten.conv3d")
    assert rec.lowered == 0 and rec.rows == 25_088
    assert rec.runs_as == "aten.mkldnn_convolution"
    # conv2d 64 -> 64 3x3 on 1x64x24x24: 36,864 input floats > 20,480: oneDNN
    rec = only_op(profile(nn.Conv2d(64, 64, 3, padding=1), torch.randn(1, 64, 24, 24)),
                  "aten.conv2d")
    assert rec.lowered == 0 and rec.rows == 576
    assert rec.runs_as == "aten.mkldnn_convolution"


def test_small_convs_with_kernels_wider_than_3_run_through_onednn(two_threads):
    # batch 1, one group, an input of 1 x 1 x 49 x 10 = 490 floats (at most 20,480): PyTorch
    # lowers a 3x3 kernel, but a kernel wider than 3 both ways (10x4, 5x5) goes to oneDNN;
    # 10x4 is 4 wide, 3x5 is not (3 is not above 3): lowered
    x = torch.randn(1, 1, 49, 10)
    recs = {k: only_op(profile(nn.Conv2d(1, 8, k, padding=1), x), "aten.conv2d")
            for k in ((10, 4), (5, 5), (3, 3), (3, 5))}
    assert {k: r.runs_as for k, r in recs.items()} == {
        (10, 4): "aten.mkldnn_convolution", (5, 5): "aten.mkldnn_convolution",
        (3, 3): "", (3, 5): ""}
    # lowered: one input channel x 3 x 3 = 9 rows by 49 x 10 positions (padding 1 keeps the
    # size) = 4,410; 3x5: 15 rows by 49 x 8 = 5,880; the oneDNN ones write none
    assert {k: r.lowered for k, r in recs.items()} == {
        (10, 4): 0, (5, 5): 0, (3, 3): 4_410, (3, 5): 5_880}
    # a depthwise 3x3 convolution (groups > 1) does too, whatever its size
    dw = only_op(profile(nn.Conv2d(4, 4, 3, padding=1, groups=4), torch.randn(1, 4, 4, 4)),
                 "aten.conv2d")
    assert dw.runs_as == "aten.mkldnn_convolution" and dw.lowered == 0


def test_1x1_convs_onednn_runs_as_products_are_not_marked(two_threads):
    # conv2d 64 -> 64 1x1 on 1x64x24x24 (36,864 floats, stride 1, 2 threads): PyTorch runs it
    # through oneDNN, whose 1x1 kernel costs what a matrix product does (7-11 us a call for a
    # tiny one here, against 44-56 us for 5x5, 7x7 and depthwise ones): not marked, and not
    # lowered either
    rec = only_op(profile(nn.Conv2d(64, 64, 1), torch.randn(1, 64, 24, 24)), "aten.conv2d")
    assert pytorch_backend(TensorMeta.of(torch.empty(1, 64, 24, 24)),
                           TensorMeta.of(torch.empty(64, 64, 1, 1)), False, 1, [1, 1], [1, 1],
                           [0, 0], [0, 0]) == "Mkldnn"
    assert (rec.runs_as, rec.lowered, rec.rows) == ("", 0, 576)
    # the same kernel 3x3 (input above 20,480 floats): oneDNN, marked
    rec = only_op(profile(nn.Conv2d(64, 64, 3, padding=1), torch.randn(1, 64, 24, 24)),
                  "aten.conv2d")
    assert rec.runs_as == "aten.mkldnn_convolution"


def test_transposed_convs_pytorch_runs_through_onednn_record_it(two_threads):
    # the same rule: a batch of 2 goes to oneDNN's deconvolution, one tiny image of
    # 4 x 4 x 4 = 64 elements stays on PyTorch's own transposed path; neither is lowered
    up = nn.ConvTranspose2d(4, 4, 2, 2)
    two = only_op(profile(up, torch.randn(2, 4, 4, 4)), "aten.conv_transpose2d")
    one = only_op(profile(up, torch.randn(1, 4, 4, 4)), "aten.conv_transpose2d")
    assert (two.runs_as, one.runs_as) == ("aten.mkldnn_convolution", "")
    assert (two.lowered, one.lowered) == (0, 0)
    # 64 -> 32, 2x2/2 on 1x64x24x24: 36,864 input elements > 20,480: oneDNN
    big = only_op(profile(nn.ConvTranspose2d(64, 32, 2, 2), torch.randn(1, 64, 24, 24)),
                  "aten.conv_transpose2d")
    assert big.runs_as == "aten.mkldnn_convolution"


def test_a_small_2d_conv_is_lowered_and_padding_strings_are_understood(two_threads):
    # conv2d 512 -> 512 3x3 on 1x512x3x3 (4,608 floats): im2col of 512 x 9 = 4,608 rows by
    # 3 x 3 = 9 positions = 41,472 elements
    rec = only_op(profile(nn.Conv2d(512, 512, 3, padding=1), torch.randn(1, 512, 3, 3)),
                  "aten.conv2d")
    assert rec.lowered == 41_472 and rec.rows == 9
    # padding="same" on 1x8x9x9: 9 x 9 positions x 8 x 9 = 5,832; "valid": 7 x 7 x 72 = 3,528
    same = only_op(profile(nn.Conv2d(8, 8, 3, padding="same"), torch.randn(1, 8, 9, 9)),
                   "aten.conv2d")
    valid = only_op(profile(nn.Conv2d(8, 8, 3, padding="valid"), torch.randn(1, 8, 9, 9)),
                    "aten.conv2d")
    assert (same.lowered, valid.lowered) == (5_832, 3_528)
    # a conv1d 64 -> 64, k3 over 256 (16,384 floats): 64 x 3 x 256 = 49,152
    rec = only_op(profile(nn.Conv1d(64, 64, 3, padding=1), torch.randn(1, 64, 256)),
                  "aten.conv1d")
    assert rec.lowered == 49_152


class Bmm(nn.Module):
    """A product of two inputs."""

    def forward(self, a, b):
        return torch.bmm(a, b)


class TimesWeight(nn.Module):
    """``x @ w`` with a ``w`` of ``shape`` the module holds."""

    def __init__(self, *shape):
        super().__init__()
        self.w = nn.Parameter(torch.randn(*shape))

    def forward(self, x):
        return x @ self.w


def test_a_linear_and_a_batched_matmul_record_their_rows():
    # linear on 2 x 32 x 256 tokens: 64 rows; bmm of 12 x (96 x 48) @ (48 x 96): 96 rows per
    # product
    lin = only_op(profile(nn.Linear(256, 128), torch.randn(2, 32, 256)), "aten.linear")
    assert lin.rows == 64 and lin.lowered == 0
    bmm = only_op(profile(Bmm(), torch.randn(12, 96, 48), torch.randn(12, 48, 96)), "aten.bmm")
    assert bmm.rows == 96


def test_linears_and_fused_attention_record_their_weight_rows():
    # a linear 256 -> 128: a weight matrix of 128 rows (one per output feature)
    lin = only_op(profile(nn.Linear(256, 128), torch.randn(2, 32, 256)), "aten.linear")
    assert lin.weight_rows == 128
    # nn.MultiheadAttention(64, 4) in eval mode runs as one fused operator: the packed
    # in-projection (3 x 64 = 192 rows) and the out-projection (64 rows): 256 rows
    mha = nn.MultiheadAttention(64, 4, batch_first=True).eval()
    x = torch.randn(1, 10, 64)
    with torch.inference_mode():
        rec = only_op(profile(mha, x, x, x, need_weights=False),
                      "aten._native_multi_head_attention")
    assert rec.weight_rows == 256
    # nn.TransformerEncoderLayer(64, 4, 128) fused: 192 + 64 attention rows, then the
    # feed-forward's 128 (64 -> 128) and 64 (128 -> 64) rows: 448
    layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True).eval()
    with torch.inference_mode():
        enc = only_op(profile(layer, x), "aten._transformer_encoder_layer_fwd")
    assert enc.weight_rows == 448
    # their linears run on the query's tokens: batch 1 x 10 tokens = 10 rows, over which a
    # device with half_rows spreads their fixed cost per call, as it does a linear's
    assert (rec.rows, enc.rows) == (10, 10)
    with torch.inference_mode():
        batched = only_op(profile(layer, torch.randn(3, 7, 64)),
                          "aten._transformer_encoder_layer_fwd")
        single = only_op(profile(layer, torch.randn(1, 1, 64)),
                         "aten._transformer_encoder_layer_fwd")
    # 3 x 7 = 21 rows; one token is matrix-vector products, which pack nothing: 0
    assert (batched.rows, single.rows) == (21, 0)
    # a product with a weight it holds: x [1, 10, 256] @ w [256, 64]: 64 output columns
    matmul = only_op(profile(TimesWeight(256, 64), torch.randn(1, 10, 256)), "aten.matmul")
    assert matmul.weight_rows == 64
    # a product of two inputs reads no weight matrix
    assert only_op(profile(Bmm(), torch.randn(2, 4, 8), torch.randn(2, 8, 4)),
                   "aten.bmm").weight_rows == 0


def test_a_plain_1x1_conv_writes_no_column_matrix_even_on_its_slow_path():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # on one thread PyTorch runs a batch-1 1x1 conv on its slow path
    try:
        # 1x1, stride 1, no padding: the slow path multiplies a view of the input
        plain = only_op(profile(nn.Conv2d(16, 64, 1), torch.randn(1, 16, 32, 32)),
                        "aten.conv2d")
        # stride 2: it gathers every other position first: 16 channels x 16 x 16 = 4,096
        strided = only_op(profile(nn.Conv2d(16, 64, 1, stride=2), torch.randn(1, 16, 32, 32)),
                          "aten.conv2d")
    finally:
        torch.set_num_threads(before)
    assert plain.lowered == 0
    assert strided.lowered == 4_096


def test_an_explicit_onednn_convolution_is_never_lowered():
    class OneDNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(8, 8, 3, 3))

        def forward(self, x):
            return torch.mkldnn_convolution(x, self.weight, None, [1, 1], [1, 1], [1, 1], 1)

    rec = only_op(profile(OneDNN(), torch.randn(1, 8, 9, 9)), "aten.mkldnn_convolution")
    assert rec.lowered == 0 and rec.rows == 81
    assert rec.runs_as == ""  # it is that operator already


def test_a_batch_times_one_matrix_is_one_product_of_every_row():
    # 4 x 32 rows times one 256 x 128 matrix: PyTorch folds the batch, 128 rows; 64 x 1 rows:
    # 64 rows, not 1
    project = TimesWeight(256, 128)
    assert only_op(profile(project, torch.randn(4, 32, 256)), "aten.matmul").rows == 128
    assert only_op(profile(project, torch.randn(64, 1, 256)), "aten.matmul").rows == 64
