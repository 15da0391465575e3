"""Parameter counts (seed 001), tied weights once, buffers apart, rows summing to the total."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pytest_flopbudget import profile


@pytest.mark.parametrize("k,c_in,c_out", [(3, 3, 64), (1, 64, 128), (5, 16, 16)])
def test_conv_params_seed001(k, c_in, c_out):
    # seed 001: a conv layer holds (K*K*C_in + 1) * C_out parameters
    p = profile(nn.Conv2d(c_in, c_out, k), torch.randn(1, c_in, 8, 8))
    assert p.params == (k * k * c_in + 1) * c_out


@pytest.mark.parametrize("n,m", [(256, 500), (500, 10), (7, 3)])
def test_linear_params_seed001(n, m):
    # seed 001: a fully connected layer n -> m holds (n + 1) * m parameters
    assert profile(nn.Linear(n, m), torch.randn(1, n)).params == (n + 1) * m


@pytest.mark.parametrize("m,n", [(128, 128), (32, 64), (1, 16)])
def test_lstm_params_seed001_with_pytorch_two_biases(m, n):
    # seed 001: 4 * (n*m + n^2 + n) for hidden n, input m; PyTorch keeps two bias vectors
    # (b_ih and b_hh), so one more n per gate: 4 * (n*m + n^2 + 2n)
    p = profile(nn.LSTM(m, n), torch.randn(5, 1, m))
    assert p.params == 4 * (n * m + n * n + 2 * n)


def test_bidirectional_lstm_doubles():
    # seed 000 Bi-LSTM: two directions of 4 * (128*128 + 128^2 + 2*128) = 132,096 each
    p = profile(nn.LSTM(128, 128, bidirectional=True), torch.randn(4, 1, 128))
    assert p.params == 2 * 132_096


def test_tied_weights_are_counted_once():
    class TiedLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(100, 16)
            self.head = nn.Linear(16, 100, bias=False)
            self.head.weight = self.embed.weight  # tied

        def forward(self, tokens):
            return self.head(self.embed(tokens))

    p = profile(TiedLM(), torch.randint(0, 100, (1, 4)))
    # one 100 x 16 matrix, once
    assert p.params == 1_600
    rows = {row.name: row.params for row in p.layers}
    assert rows == {"": 0, "embed": 1_600, "head": 0}
    assert p.layer("head").params == 1_600  # the module does hold it


def test_shared_module_used_twice():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.Linear(8, 8)

        def forward(self, x):
            return self.block(self.block(x))

    p = profile(Twice(), torch.randn(2, 8))
    assert p.params == 72  # (8 + 1) * 8, once
    [row] = [r for r in p.layers if r.name == "block"]
    # two calls: 2 * (2 * 8 * 8) = 256 MACs
    assert (row.calls, row.macs) == (2, 256)


def test_buffers_reported_apart_from_params():
    p = profile(nn.BatchNorm2d(32), torch.randn(1, 32, 4, 4))
    assert p.params == 64  # weight, bias
    assert p.buffers == 65  # running_mean, running_var, num_batches_tracked


def test_rows_sum_to_totals_including_an_unused_module():
    class WithSpare(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(4, 4)
            self.spare = nn.Linear(4, 100)  # never called

        def forward(self, x):
            return self.used(x)

    p = profile(WithSpare(), torch.randn(1, 4))
    assert p.params == 20 + 500
    assert sum(r.params for r in p.layers) == p.params
    spare = next(r for r in p.layers if r.name == "spare")
    assert (spare.calls, spare.params, spare.flops) == (0, 500, 0)


def test_weight_bytes_reprice_with_dtype():
    p = profile(nn.Linear(100, 10), torch.randn(1, 100))
    # 1,010 fp32 parameters: 4,040 bytes; at int8 1,010; at fp16 2,020
    assert p.weight_bytes == 4_040
    assert p.at_dtype("int8").weight_bytes == 1_010
    assert p.at_dtype("fp16").weight_bytes == 2_020
