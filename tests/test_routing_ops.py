"""Mixture-of-experts and routing operators, weight normalisation and control flow, each
against a count derived by hand."""

from __future__ import annotations

import pytest
import torch
from reference_models import Fn
from torch import nn

from pytest_flopbudget import TraceError, profile


@pytest.mark.parametrize("a,b,offs,out,macs", [
    # 2-D x 3-D: 10 rows split over 4 experts, each [16, 32]: 10 * 16 * 32 = 5,120
    ((10, 16), (4, 16, 32), [2, 5, 7, 10], (10, 32), 5_120),
    # 3-D x 3-D: 4 products [3, 16] @ [16, 8]: 4 * 3 * 16 * 8 = 1,536
    ((4, 3, 16), (4, 16, 8), None, (4, 3, 8), 1_536),
    # 3-D x 2-D: 2 groups [5, 16] each times its columns of [16, 12]: 5 * 16 * 12 = 960
    ((2, 5, 16), (16, 12), [4, 12], (5, 12), 960),
    # 2-D x 2-D: K = 16 split over 2 groups, [6, 16] @ [16, 8] -> [2, 6, 8]: 6 * 16 * 8 = 768
    ((6, 16), (16, 8), [8, 16], (2, 6, 8), 768),
])
def test_grouped_mm_counts_on_fake_tensors_in_float32(a, b, offs, out, macs):
    offsets = torch.tensor(offs, dtype=torch.int32) if offs is not None else None
    p = profile(Fn(lambda x, w: torch._grouped_mm(x, w, offs=offsets)), torch.randn(*a),
                torch.randn(*b))
    assert (p.traced, p.unsupported, p.macs, p.flops) == ("fake", {}, macs, 2 * macs)
    assert p.layers[0].output_shapes == [out]


def test_grouped_mm_of_a_model_on_the_meta_device_in_bf16():
    with torch.device("meta"):
        x = torch.randn(8, 4, dtype=torch.bfloat16)
        w = torch.randn(2, 4, 6, dtype=torch.bfloat16)
    offs = torch.tensor([3, 8], dtype=torch.int32)
    p = profile(Fn(lambda x, w: torch._grouped_mm(x, w, offs=offs)), x, w)
    # 8 rows * 4 * 6 = 192 MACs; reads 32 + 48 bf16 (160 B) and 2 int32 offsets, writes 48
    assert (p.macs, p.bytes_read, p.bytes_written) == (192, 160 + 8, 96)


def test_topk_sort_histc():
    x = torch.randn(6, 8)
    # topk k=2 over 8: 6 rows * 8 * max(1, ceil(log2 2) = 1) = 48
    assert profile(Fn(lambda x: torch.topk(x, 2, dim=-1)), x).flops == 48
    # topk k=5: ceil(log2 5) = 3 compares per element: 6 * 8 * 3 = 144
    assert profile(Fn(lambda x: torch.topk(x, 5)), x).flops == 144
    # sort along dim 0 (n = 6): 8 columns * 6 * ceil(log2 6) = 3 -> 144
    assert profile(Fn(lambda x: torch.sort(x, dim=0)), x).flops == 144
    # argsort along the last dim (n = 8): 6 * 8 * 3 = 144
    assert profile(Fn(lambda x: torch.argsort(x)), x).flops == 144
    # histc with a given range: 48 elements * 6 = 288; with its own range (min == max): 8
    assert profile(Fn(lambda x: torch.histc(x, bins=4, min=-1, max=1)), x).flops == 288
    assert profile(Fn(lambda x: torch.histc(x, bins=4)), x).flops == 48 * 8


def test_weight_norm_recompute():
    conv = nn.utils.parametrizations.weight_norm(nn.Conv1d(4, 8, 3, padding=1), dim=2)
    p = profile(conv, torch.randn(1, 4, 10))
    # w = g * v / ||v||: v is 8 x 4 x 3 = 96 elements * 3 = 288
    # conv: 10 positions * 8 * 4 * 3 = 960 MACs, bias 80
    assert (p.unsupported, p.macs, p.flops) == ({}, 960, 288 + 2 * 960 + 80)
    # the parameters are g (1 x 1 x 3) and v (96) and the bias (8)
    assert p.params == 3 + 96 + 8


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.sum() > 0, lambda x: self.fc(x).sin(), lambda x: x.cos(), (x,))


def test_cond_counts_the_branch_taken_in_a_real_forward():
    # sum 4 + compare 1, then the true branch: fc 16 MACs + 4 bias + sin 4
    p = profile(Branchy(), torch.ones(4))
    assert (p.traced, p.flops, p.macs) == ("real", 4 + 1 + 32 + 4 + 4, 16)
    assert "torch.cond takes a branch that depends on a tensor value" in p.fallback_reason
    assert p.layer("fc").macs == 16
    # the false branch: sum 4 + compare 1 + cos 4
    assert profile(Branchy(), -torch.ones(4)).flops == 9
    with pytest.raises(TraceError, match="torch.cond takes a branch"):
        profile(Branchy(), torch.ones(4), trace="fake")


def test_cond_on_a_python_predicate_stays_fake():
    p = profile(Fn(lambda x: torch.cond(True, lambda x: x.sin(), lambda x: x, (x,))),
                torch.ones(5))
    assert (p.traced, p.flops) == ("fake", 5)


def test_while_loop_counts_every_iteration_run():
    from torch._higher_order_ops.while_loop import while_loop

    p = profile(Fn(lambda x, i: while_loop(lambda x, i: i < 3, lambda x, i: (x * 2, i + 1),
                                           (x, i))), torch.ones(4), torch.tensor(0))
    # the compare runs 4 times (i = 0, 1, 2, 3), the body 3 times (x * 2: 4, i + 1: 1)
    assert p.flops == 4 * 1 + 3 * (4 + 1)


def test_other_higher_order_operators_stop_with_their_name():
    from torch._higher_order_ops.map import map as hop_map

    with pytest.raises(TraceError, match=r"torch.map_impl \(a higher-order operator\)"):
        profile(Fn(lambda x: hop_map(lambda a: a * 2, x)), torch.ones(3, 4))


def test_equal_compares_only_tensors_of_one_shape():
    # 12 elements compared; shapes that differ answer without a compare
    assert profile(Fn(torch.equal), torch.ones(3, 4), torch.ones(3, 4)).flops == 12
    assert profile(Fn(torch.equal), torch.ones(3, 4), torch.ones(4)).flops == 0
