"""Linear layers, the matmul family and einsum: MACs from the shapes, bias as elementwise."""

from __future__ import annotations

import torch
from reference_models import Fn
from torch import nn

from pytest_flopbudget import profile
from pytest_flopbudget.counting.ops.linear_algebra import matmul_macs


def test_linear_with_and_without_bias():
    # 4 rows x (20 -> 30): MACs = 4 * 30 * 20 = 2,400; bias adds 4 * 30 = 120
    p = profile(nn.Linear(20, 30), torch.randn(4, 20))
    assert (p.macs, p.flops) == (2_400, 4_800 + 120)
    p = profile(nn.Linear(20, 30, bias=False), torch.randn(4, 20))
    assert (p.macs, p.flops) == (2_400, 4_800)


def test_linear_on_a_sequence_counts_every_row():
    # 2 x 5 x 20 -> rows = 10; MACs = 10 * 30 * 20 = 6,000
    p = profile(nn.Linear(20, 30), torch.randn(2, 5, 20))
    assert p.macs == 6_000
    assert p.flops == 12_000 + 300


def test_mm_bmm_addmm_baddbmm():
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    # mm: 3 * 5 * 4 = 60
    assert profile(Fn(torch.mm), a, b).macs == 60
    # addmm: 60 MACs and 3 * 5 = 15 bias adds
    p = profile(Fn(lambda c, x, y: torch.addmm(c, x, y)), torch.randn(5), a, b)
    assert (p.macs, p.flops) == (60, 135)
    # bmm: 2 * 3 * 5 * 4 = 120
    assert profile(Fn(torch.bmm), torch.randn(2, 3, 4), torch.randn(2, 4, 5)).macs == 120
    # baddbmm: 120 MACs + 2 * 3 * 5 = 30 adds
    p = profile(Fn(torch.baddbmm), torch.randn(2, 3, 5), torch.randn(2, 3, 4),
                torch.randn(2, 4, 5))
    assert (p.macs, p.flops) == (120, 270)


def test_matmul_broadcast_and_vectors():
    # (2,1,3,4) @ (5,4,6): batch broadcasts to (2,5) -> 10 * 3 * 4 * 6 = 720
    assert matmul_macs((2, 1, 3, 4), (5, 4, 6)) == 720
    p = profile(Fn(torch.matmul), torch.randn(2, 1, 3, 4), torch.randn(5, 4, 6))
    assert p.macs == 720
    # vector . vector: 7 MACs; matrix @ vector: 3 * 7 = 21; vector @ matrix: 7 * 2 = 14
    assert profile(Fn(torch.matmul), torch.randn(7), torch.randn(7)).macs == 7
    assert profile(Fn(torch.matmul), torch.randn(3, 7), torch.randn(7)).macs == 21
    assert profile(Fn(torch.matmul), torch.randn(7), torch.randn(7, 2)).macs == 14


def test_at_operator_in_forward_is_attributed_to_the_module():
    class Proj(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(16, 8))

        def forward(self, x):
            return x @ self.w  # functional: no leaf module runs it

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = Proj()

        def forward(self, x):
            return self.proj(x).sum()

    p = profile(Net(), torch.randn(4, 16))
    # x @ w: 4 * 8 * 16 = 512 MACs, in "proj"; the sum (32 elements) in the root
    assert p.layer("proj").macs == 512
    assert {row.name: row.flops for row in p.layers} == {"": 32, "proj": 1024}


def test_einsum_is_counted_through_its_contraction():
    # 'bij,bjk->bik' is a batched matmul: 2 * 3 * 5 * 4 = 120
    p = profile(Fn(lambda a, b: torch.einsum("bij,bjk->bik", a, b)),
                torch.randn(2, 3, 4), torch.randn(2, 4, 5))
    assert p.macs == 120
    # 'ij,kj->ik' (x @ y.T): 6 * 8 * 5 = 240
    p = profile(Fn(lambda a, b: torch.einsum("ij,kj->ik", a, b)),
                torch.randn(6, 5), torch.randn(8, 5))
    assert p.macs == 240
    assert p.unsupported == {}


def test_mv_and_dot():
    assert profile(Fn(torch.mv), torch.randn(3, 7), torch.randn(7)).macs == 21
    assert profile(Fn(torch.dot), torch.randn(9), torch.randn(9)).macs == 9


def test_bilinear_layer():
    # nn.Bilinear(5, 6 -> 4) on 3 rows: y_k = x1^T W_k x2 + b_k, computed by aten._trilinear
    # over the space rows x out x in1 x in2 = 3 * 4 * 5 * 6 = 360 points: 360 MACs and 360
    # multiplies for the third factor; bias adds 3 * 4 = 12
    p = profile(nn.Bilinear(5, 6, 4), torch.randn(3, 5), torch.randn(3, 6))
    assert p.unsupported == {}
    assert p.macs == 360
    assert p.flops == 2 * 360 + 360 + 12
