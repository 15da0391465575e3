"""Normalisation, activations, softmax, pooling, resampling and reductions, by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from reference_models import Fn
from torch import nn

from pytest_flopbudget import profile
from pytest_flopbudget.counting.ops.elementwise import PER_ELEMENT
from pytest_flopbudget.counting.ops.pooling import adaptive_window_sum

N = 2 * 8 * 6 * 6  # elements of the 2x8x6x6 test input: 576


def x4():
    return torch.randn(2, 8, 6, 6)


def test_batch_norm_eval_and_train():
    # eval: subtract mean, multiply 1/std (2) + weight (1) + bias (1) = 4 per element
    assert profile(nn.BatchNorm2d(8).eval(), x4()).flops == 4 * N
    # train: + mean and variance (4 per element) = 8; plus num_batches_tracked += 1 (1 FLOP)
    assert profile(nn.BatchNorm2d(8).train(), x4()).flops == 8 * N + 1
    # no affine, eval: 2 per element
    assert profile(nn.BatchNorm2d(8, affine=False).eval(), x4()).flops == 2 * N


def test_layer_group_instance_rms_norm():
    # layer norm always computes statistics: 2 + 4 + weight + bias = 8
    assert profile(nn.LayerNorm([6, 6]), x4()).flops == 8 * N
    assert profile(nn.GroupNorm(4, 8), x4()).flops == 8 * N
    # instance norm, default affine=False: 2 + 4 = 6
    assert profile(nn.InstanceNorm2d(8), x4()).flops == 6 * N
    # RMSNorm: square, add (2) + multiply by 1/rms (1) + weight (1) = 4
    assert profile(nn.RMSNorm(6), x4()).flops == 4 * N


@pytest.mark.parametrize("module,per_element", [
    (nn.ReLU(), 1), (nn.ReLU6(), 2), (nn.LeakyReLU(), 2), (nn.Sigmoid(), 4), (nn.Tanh(), 1),
    (nn.SiLU(), 5), (nn.GELU(), 5), (nn.GELU(approximate="tanh"), 9), (nn.Hardswish(), 5),
    (nn.Hardsigmoid(), 4), (nn.ELU(), 4), (nn.Mish(), 5), (nn.Softplus(), 3),
    (nn.Softmax(dim=1), 5), (nn.LogSoftmax(dim=1), 5), (nn.PReLU(), 2), (nn.LogSigmoid(), 5),
])
def test_activation_costs_follow_the_table(module, per_element):
    assert profile(module, x4()).flops == per_element * N


def test_a_second_output_is_traffic_not_work():
    # log_sigmoid_forward returns (output, buffer), both 2x8x6x6 on CPU: 5 FLOPs per element
    # of the output only; the buffer is written (2 x 576 x 4 bytes), the input read (576 x 4)
    p = profile(nn.LogSigmoid(), x4())
    assert p.flops == 5 * N
    assert (p.bytes_read, p.bytes_written) == (N * 4, 2 * N * 4)


def test_table_entries_are_the_documented_formula_costs():
    # spot checks of the table itself, each cost = primitives in its formula
    assert PER_ELEMENT["sigmoid"][0] == 4  # neg, exp, add, reciprocal
    assert PER_ELEMENT["silu"][0] == 5  # sigmoid + multiply
    assert PER_ELEMENT["softmax"][0] == 5  # max, sub, exp, sum, div


def test_binary_ops_with_broadcast_count_output_elements():
    # (2,8,6,6) + (8,1,1): 576 adds; reads 576 + 8 elements, writes 576
    p = profile(Fn(torch.add), x4(), torch.randn(8, 1, 1))
    assert p.flops == N
    assert (p.bytes_read, p.bytes_written) == (4 * (N + 8), 4 * N)


def test_out_argument_is_a_destination_not_an_input():
    class AddInto(nn.Module):
        def forward(self, x, y):
            z = torch.empty_like(x)
            torch.add(x, y, out=z)  # aten.add.out: z is written, never read
            return torch.mul(z, 2, out=z)  # aten.mul.out, z both read (as self) and written

    p = profile(AddInto(), x4(), x4())
    assert p.unsupported == {}
    # add: 576 adds, reads x and y (2 x 576 x 4 B), writes z (576 x 4 B)
    # mul: 576 multiplies, reads z, writes z
    assert p.flops == 2 * N
    assert (p.bytes_read, p.bytes_written) == (3 * N * 4, 2 * N * 4)


def test_clamp_counts_its_bounds():
    assert profile(Fn(lambda x: x.clamp(min=0)), x4()).flops == N
    assert profile(Fn(lambda x: x.clamp(-1, 1)), x4()).flops == 2 * N


def test_dropout_eval_is_free_and_training_costs_two():
    assert profile(nn.Dropout(0.5).eval(), x4()).flops == 0
    assert profile(nn.Dropout(0.5).eval(), x4()).bytes == 0
    # training: compare the random draw against p, scale the kept ones
    assert profile(nn.Dropout(0.5).train(), x4()).flops == 2 * N


def test_max_and_avg_pooling():
    # 1x1x8x8, kernel 3, stride 2, padding 1 -> 4x4; 9 per output = 144
    x = torch.randn(1, 1, 8, 8)
    assert profile(nn.MaxPool2d(3, 2, 1), x).flops == 144
    assert profile(nn.AvgPool2d(3, 2, 1), x).flops == 144
    # 1-D, kernel 2: 1x32x1024 -> 1x32x512; 2 per output = 32,768
    assert profile(nn.MaxPool1d(2), torch.randn(1, 32, 1024)).flops == 32_768


def test_adaptive_pooling_sums_the_real_windows():
    # 7 -> 3: windows [0,3) [2,5) [4,7) -> 3 + 3 + 3 = 9 per dim; 81 per plane of 2 planes
    assert adaptive_window_sum((7,), (3,)) == 9
    # 10 -> 4: [0,3) [2,5) [5,8) [7,10) -> 12
    assert adaptive_window_sum((10,), (4,)) == 12
    # the dims of a 2-D pooling multiply: 7x10 -> 3x4: 9 * 12 = 108
    assert adaptive_window_sum((7, 10), (3, 4)) == 108
    assert profile(nn.AdaptiveAvgPool2d(3), torch.randn(1, 2, 7, 7)).flops == 2 * 81
    assert profile(nn.AdaptiveMaxPool2d((3, 4)), torch.randn(1, 2, 7, 10)).flops == 2 * 9 * 12
    # global average pool: every input element once
    assert profile(nn.AdaptiveAvgPool2d(1), x4()).flops == N


def test_interpolation():
    x = torch.randn(1, 2, 4, 4)  # -> 8x8: 128 output elements
    assert profile(nn.Upsample(scale_factor=2, mode="nearest"), x).flops == 0
    assert profile(nn.Upsample(scale_factor=2, mode="bilinear"), x).flops == 7 * 128
    assert profile(nn.Upsample(scale_factor=2, mode="bicubic"), x).flops == 31 * 128
    assert profile(nn.Upsample(scale_factor=2, mode="linear"),
                   torch.randn(1, 2, 4)).flops == 3 * 16
    # nearest is a copy: reads 32 floats, writes 128
    p = profile(nn.Upsample(scale_factor=2), x)
    assert (p.bytes_read, p.bytes_written) == (128, 512)


@pytest.mark.parametrize("fn,per_input", [
    (lambda x: x.sum(), 1), (lambda x: x.mean(dim=1), 1), (lambda x: x.amax(dim=(2, 3)), 1),
    (lambda x: x.max(), 1), (lambda x: x.argmax(dim=1), 1), (lambda x: x.var(dim=1), 4),
    (lambda x: x.std(), 4), (lambda x: x.norm(), 2), (lambda x: x.logsumexp(dim=1), 4),
    (lambda x: x.cumsum(dim=3), 1), (lambda x: x.prod(dim=0), 1),
])
def test_reductions_per_input_element(fn, per_input):
    p = profile(Fn(fn), x4())
    assert p.flops == per_input * N
    assert p.unsupported == {}


def test_max_of_two_tensors_is_elementwise():
    assert profile(Fn(torch.max), x4(), x4()).flops == N


def test_functional_softmax_in_forward():
    assert profile(Fn(lambda x: F.softmax(x, dim=-1)), x4()).flops == 5 * N
