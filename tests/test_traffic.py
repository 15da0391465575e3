"""Memory access (bytes): inputs read + outputs written per operator, seed 002's formulas."""

from __future__ import annotations

import pytest
import torch
from reference_models import Fn
from torch import nn

from pytest_flopbudget import profile

H = W = 8


def conv_record(p):
    [rec] = [r for r in p.records if r.op == "aten.conv2d"]
    return rec


def test_standard_conv_access_seed002():
    # M_std = H*W*(C_in + C_out) + K^2*C_in*C_out elements:
    #       = 64 * (4 + 6) + 9 * 4 * 6 = 640 + 216 = 856 elements, fp32 -> 3,424 bytes
    c_in, c_out, k = 4, 6, 3
    p = profile(nn.Conv2d(c_in, c_out, k, padding=1, bias=False), torch.randn(1, c_in, H, W))
    assert p.bytes == 4 * (H * W * (c_in + c_out) + k * k * c_in * c_out) == 3_424
    # read: input 256 + weights 216 elements; written: output 384 elements
    assert (p.bytes_read, p.bytes_written) == (4 * 472, 4 * 384)


def test_depthwise_separable_access_seed002():
    # M_dwconv = H*W*2*C_in + C_in*K^2 (depthwise) + C_in*C_out + H*W*(C_in + C_out)
    #          = 64*8 + 4*9 + 4*6 + 64*10 = 512 + 36 + 24 + 640 = 1,212 elements
    c_in, c_out, k = 4, 6, 3
    model = nn.Sequential(
        nn.Conv2d(c_in, c_in, k, padding=1, groups=c_in, bias=False),
        nn.Conv2d(c_in, c_out, 1, bias=False),
    )
    p = profile(model, torch.randn(1, c_in, H, W))
    expected = H * W * 2 * c_in + c_in * k * k + c_in * c_out + H * W * (c_in + c_out)
    assert expected == 1_212
    assert p.bytes == 4 * expected
    # and the FLOPs side of seed 002: F_dw + F_pw = H*W*C_in*K^2 + H*W*C_in*C_out
    assert p.macs == H * W * c_in * k * k + H * W * c_in * c_out == 3_840


class PartialConv(nn.Module):
    """FasterNet PConv: a regular conv on the first c_p channels, the rest untouched."""

    def __init__(self, channels: int, c_p: int, k: int = 3):
        super().__init__()
        self.c_p = c_p
        self.conv = nn.Conv2d(c_p, c_p, k, padding=k // 2, bias=False)

    def forward(self, x):
        head, tail = x[:, : self.c_p], x[:, self.c_p:]
        return torch.cat((self.conv(head), tail), dim=1)


def test_partial_conv_access_seed002():
    # The conv itself: M_pconv = H*W*2*C_p + K^2*C_p^2 = 64*2*2 + 9*4 = 256 + 36 = 292
    # elements (slicing x[:, :C_p] is a view and costs nothing);
    # F_pconv = H*W*C_p^2*K^2 = 64 * 4 * 9 = 2,304 MACs
    channels, c_p, k = 8, 2, 3
    p = profile(PartialConv(channels, c_p, k), torch.randn(1, channels, H, W))
    rec = conv_record(p)
    assert rec.read.bytes() + rec.written.bytes() == 4 * (H * W * 2 * c_p + k * k * c_p * c_p)
    assert p.macs == H * W * c_p * c_p * k * k == 2_304
    # the concatenation is a real copy: reads 2*64 + 6*64 elements, writes 8*64
    [cat] = [r for r in p.records if r.op == "aten.cat"]
    assert cat.read.bytes() == cat.written.bytes() == 4 * channels * H * W


def test_views_and_reshapes_cost_nothing():
    class Shapes(nn.Module):
        def forward(self, x):
            y = x.view(2, 12).permute(1, 0).transpose(0, 1)  # views
            y = y.reshape(24).unsqueeze(0).expand(3, 24)  # views (contiguous)
            return y[1:, ::2].squeeze()

    p = profile(Shapes(), torch.randn(2, 3, 4))
    assert p.records == ()
    assert (p.bytes, p.flops) == (0, 0)


def test_a_reshape_that_must_copy_costs_a_copy():
    class Copy(nn.Module):
        def forward(self, x):
            return x.t().reshape(-1)  # not viewable: a copy of 3 * 5 floats

    p = profile(Copy(), torch.randn(5, 3))
    assert p.bytes_read == p.bytes_written == 4 * 15
    assert p.flops == 0


def test_split_stack_cat_and_permute_contiguous():
    class Moves(nn.Module):
        def forward(self, x):
            a, b = x.split(2, dim=1)  # two 4 x 2 views
            s = torch.stack((a, b))  # copy: reads 8 + 8, writes 16
            c = torch.cat((a, b), dim=0)  # copy: reads 16, writes 16
            return s.sum() + c.permute(1, 0).contiguous().sum()  # copy: 16 and 16

    p = profile(Moves(), torch.randn(4, 4))
    copies = [r for r in p.records if r.op_class == "data"]
    assert [r.op for r in copies] == ["aten.stack", "aten.cat", "aten.clone"]
    assert [(r.read.bytes(), r.written.bytes()) for r in copies] == [(64, 64)] * 3
    # the two sums: 1 FLOP per input element (16 each); the add of two scalars: 1
    assert p.flops == 16 + 16 + 1


def test_embedding_reads_only_the_rows_it_gathers():
    # 5 indices into a 1000 x 64 table: reads 5 int64 indices (40 bytes) and 5 rows of 64
    # floats (1,280 bytes), writes 5 x 64 floats (1,280 bytes); not the 256,000-byte table
    p = profile(nn.Embedding(1000, 64), torch.randint(0, 1000, (1, 5)))
    assert p.bytes_read == 40 + 1_280
    assert p.bytes_written == 1_280


IDX = torch.tensor([[0, 1, 2], [3, 0, 1]])  # a 2x3 index into the rows of a 4x6 tensor


@pytest.mark.parametrize("fn,flops", [
    # one add/reduce per element of the 2x3 index; src's 4x6 values beyond it are unused
    (lambda x: x.scatter_add(1, IDX, torch.ones(4, 6)), 6),
    (lambda x: x.scatter_reduce(1, IDX, torch.ones(4, 6), "amax"), 6),
    (lambda x: x.scatter(1, IDX, torch.ones(4, 6), reduce="multiply"), 6),
    (lambda x: x.scatter(1, IDX, torch.ones(4, 6)), 0),  # a plain scatter only copies
    # index_add of a 2x6 source into rows 0 and 2: one add per source element, 12
    (lambda x: x.index_add(0, torch.tensor([0, 2]), torch.ones(2, 6)), 12),
    # accumulate=True: rows 0, 2, 2 of width 6 take a broadcast scalar each: 3 * 6 = 18 adds
    (lambda x: x.index_put((torch.tensor([0, 2, 2]),), torch.tensor(1.0), accumulate=True), 18),
    # two index tensors pick 3 single elements: 3 adds
    (lambda x: x.index_put((torch.tensor([0, 2, 2]), torch.tensor([1, 1, 5])),
                           torch.tensor(1.0), accumulate=True), 3),
    # a boolean mask: one add per value given (24), plus the 24 compares of x > -1
    (lambda x: x.index_put((x > -1,), torch.ones(24), accumulate=True), 24 + 24),
    (lambda x: x.index_put((torch.tensor([0, 2, 2]),), torch.tensor(1.0)), 0),  # a copy
], ids=["scatter_add", "scatter_reduce", "scatter reduce=", "scatter", "index_add",
        "index_put accumulate", "index_put 2 indices", "index_put mask", "index_put"])
def test_scatter_and_index_accumulation_count_their_arithmetic(fn, flops):
    p = profile(Fn(fn), torch.zeros(4, 6))
    assert (p.flops, p.unsupported, p.traced) == (flops, {}, "fake")


def test_backward_of_indexing_accumulates_into_the_gradient():
    class Pick(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(4, 6))

        def forward(self, i):
            return (self.w[:, i] * 2).sum()

    p = profile(Pick(), torch.tensor([1, 3, 3]), train=True)
    [put] = [r for r in p.phase("backward").records if r.op == "aten.index_put"]
    # the 4x3 gradient of w[:, i] is added into a zero 4x6 gradient: 12 adds
    assert put.flops == 12


def test_inplace_relu_reads_and_writes():
    # an in-place ReLU still reads and writes its 100 elements
    p = profile(nn.ReLU(inplace=True), torch.randn(100))
    assert (p.bytes_read, p.bytes_written, p.flops) == (400, 400, 100)


@pytest.mark.parametrize("dtype,size", [("fp32", 4), ("fp16", 2), ("bf16", 2), ("int8", 1)])
def test_dtype_reprices_float_traffic(dtype, size):
    # conv 4 -> 6 as above: 856 elements of float traffic
    model = nn.Conv2d(4, 6, 3, padding=1, bias=False)
    p = profile(model, torch.randn(1, 4, H, W), dtype=dtype)
    assert p.bytes == 856 * size
    assert profile(model, torch.randn(1, 4, H, W)).at_dtype(dtype).bytes == 856 * size


def test_dtype_keeps_integer_tensors_at_their_size():
    # at int8 the gathered rows and the output are 1 byte/element; the int64 indices stay 8
    p = profile(nn.Embedding(1000, 64), torch.randint(0, 1000, (1, 5)), dtype="int8")
    assert p.bytes_read == 40 + 320
    assert p.bytes_written == 320


def test_native_half_precision_model():
    model = nn.Linear(10, 10, bias=False).half()
    p = profile(model, torch.randn(3, 10).half())
    # reads x (30) + w (100), writes 30: 160 elements * 2 bytes
    assert p.bytes == 320


def test_unknown_dtype_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown dtype 'int4'.*'fp32', 'fp16', 'bf16', 'int8'"):
        profile(nn.Linear(2, 2), torch.randn(1, 2), dtype="int4")
