"""Attention: SDPA counted as ATen's math reference in every kernel, and the fused fast paths
of nn.MultiheadAttention / nn.TransformerEncoderLayer counted as their slow paths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from pytest_flopbudget import profile
from pytest_flopbudget.counting.tracer import trace


class SDPA(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, **self.kw)


def totals(t):
    return sum(r.macs for r in t.records), sum(r.flops for r in t.records)


def qkv(b=1, h=2, lq=5, lk=5, e=8, ev=8):
    return torch.randn(b, h, lq, e), torch.randn(b, h, lk, e), torch.randn(b, h, lk, ev)


def test_sdpa_by_hand():
    # B*H = 2, L = S = 5, E = Ev = 8
    # MACs: scores 2*5*5*8 = 400 + values 2*5*5*8 = 400 -> 800
    # elementwise: scale q (80) and k (80) by sqrt(scale), softmax 5 per score (5 * 50)
    p = profile(SDPA(), *qkv())
    assert p.macs == 800
    assert p.flops == 1_600 + 80 + 80 + 250
    [rec] = p.records
    assert rec.op_class == "attention"
    # fused: reads q, k, v (240 floats), writes the 80-float output; no score matrix
    assert (rec.read.bytes(), rec.written.bytes()) == (960, 320)


def test_sdpa_cross_attention_and_value_width():
    # L = 3 queries, S = 7 keys, E = 8, Ev = 4, one head:
    # MACs = 3*7*8 + 3*7*4 = 168 + 84 = 252; elementwise 24 + 56 + 5*21 = 185
    p = profile(SDPA(), *qkv(1, 1, 3, 7, 8, 4))
    assert p.macs == 252
    assert p.flops == 504 + 185


def test_sdpa_masks():
    q, k, v = qkv()
    base = 1_600 + 160 + 250
    # causal: builds an L x S boolean mask (a select per element: free) and adds it to every
    # score (50)
    assert profile(SDPA(is_causal=True), q, k, v).flops == base + 50
    # an additive float mask: 50 adds
    assert profile(SDPA(attn_mask=torch.randn(5, 5)), q, k, v).flops == base + 50
    # a boolean mask: converted with one where per element (a select: free), then 50 adds
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    assert profile(SDPA(attn_mask=mask), q, k, v).flops == base + 50


@pytest.mark.parametrize("kw", [{}, {"is_causal": True}, {"attn_mask": torch.randn(5, 5)},
                                {"attn_mask": torch.ones(5, 5, dtype=torch.bool).tril()}],
                         ids=["plain", "causal", "float-mask", "bool-mask"])
def test_sdpa_kernels_count_as_the_math_backend(kw):
    # inference sees aten.scaled_dot_product_attention whole; the math backend with autograd
    # on runs it op by op (mul, bmm, add, _safe_softmax, bmm). Both count the same.
    model, args = SDPA(**kw), qkv()
    fused = trace(model, args)
    with sdpa_kernel(SDPBackend.MATH):
        math_path = trace(model, args, grad=True)
    assert any(r.op == "aten.bmm" for r in math_path.records)
    assert totals(fused) == totals(math_path)


SDPA_KERNELS = {  # (args, kwargs) at each kernel's schema positions: (mask, dropout_p, causal)
    "_scaled_dot_product_flash_attention_for_cpu":
        lambda q, k, v, mask, p, causal: ((q, k, v, p, causal), {"attn_mask": mask}),
    "_scaled_dot_product_flash_attention":  # takes no mask
        lambda q, k, v, mask, p, causal: ((q, k, v, p, causal), {}),
    "_scaled_dot_product_efficient_attention":
        lambda q, k, v, mask, p, causal: ((q, k, v, mask, False, p, causal), {}),
    "_scaled_dot_product_cudnn_attention":
        lambda q, k, v, mask, p, causal: ((q, k, v, mask, False, p, causal), {}),
    "_scaled_dot_product_fused_attention_overrideable":
        lambda q, k, v, mask, p, causal: ((q, k, v, mask, p, causal), {}),
}


@pytest.mark.parametrize("name", SDPA_KERNELS)
def test_every_sdpa_kernel_reads_mask_dropout_and_causal_by_name(name):
    # The GPU kernels cannot run here: their formula is called with the arguments bound to
    # the schema by name, as the tracer binds them. B*H = 2, L = S = 5, E = Ev = 8:
    # MACs 2*5*5*(8+8) = 800; elementwise scale q 80 + k 80 + softmax 5*50 = 410;
    # a float mask adds 1 per score (50), is_causal builds a 5x5 mask (25) and adds it (50),
    # dropout 2 per score (100)
    from pytest_flopbudget.counting.costs import TensorMeta
    from pytest_flopbudget.counting.registry import bind, lookup

    t, mask = TensorMeta((1, 2, 5, 8)), TensorMeta((1, 2, 5, 5))
    op = getattr(torch.ops.aten, name)
    formula = lookup(op)
    cases = [(None, 0.0, False, 0), (None, 0.0, True, 50), (None, 0.1, False, 100)]
    if name != "_scaled_dot_product_flash_attention":
        cases += [(mask, 0.0, False, 50), (mask, 0.1, False, 50 + 100)]
    for m, p, causal, extra in cases:
        args, kwargs = SDPA_KERNELS[name](t, t, t, m, p, causal)
        w = formula.fn(**bind(op.default, args, kwargs), result=(t,))
        assert (w.macs, w.elementwise) == (800, 410 + extra), (m, p, causal)


def test_grouped_query_attention():
    # 4 query heads share 2 kv heads; k and v are repeated to 4 heads before the products:
    # MACs = 4*5*5*(8+8) = 1,600; elementwise q 160 + repeated k 160 + softmax 5*100
    q, k, v = torch.randn(1, 4, 5, 8), torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8)
    p = profile(SDPA(enable_gqa=True), q, k, v)
    assert (p.macs, p.flops) == (1_600, 3_200 + 160 + 160 + 500)


class SelfAttention(nn.Module):
    def __init__(self, need_weights=True):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x):
        return self.attn(x, x, x, need_weights=self.need_weights)[0]


def test_multihead_attention_by_hand():
    # B=2, L=5, E=16, 2 heads of 8; need_weights=True (the module's default path)
    # in-projection 2*5*16*48 = 7,680 MACs + 480 bias adds
    # q scaled: 160; scores 2*2*5*5*8 = 800 MACs; softmax 5 * 100 = 500;
    # values 800 MACs; head average of the weights: 100
    # out-projection 2*5*16*16 = 2,560 MACs + 160 bias adds
    p = profile(SelfAttention().eval(), torch.randn(2, 5, 16))
    macs = 7_680 + 800 + 800 + 2_560
    assert p.macs == macs == 11_840
    assert p.flops == 2 * macs + 480 + 160 + 500 + 100 + 160


FAST_PATHS = {
    "mha need_weights": lambda: SelfAttention(True),
    "mha no weights": lambda: SelfAttention(False),
    "encoder layer relu": lambda: nn.TransformerEncoderLayer(16, 2, 32, batch_first=True),
    "encoder layer gelu norm_first": lambda: nn.TransformerEncoderLayer(
        16, 2, 32, batch_first=True, activation="gelu", norm_first=True),
}


@pytest.mark.parametrize("name", FAST_PATHS)
@pytest.mark.parametrize("grad_off", [torch.no_grad, torch.inference_mode])
def test_fast_paths_count_the_same_as_the_slow_path(name, grad_off):
    model = FAST_PATHS[name]().eval()
    x = torch.randn(2, 5, 16)
    with grad_off():
        fast = trace(model, (x,))
    assert {r.op for r in fast.records} & {"aten._native_multi_head_attention",
                                            "aten._transformer_encoder_layer_fwd"}
    slow = trace(model, (x,), grad=True)  # autograd on: the fast path is never taken
    assert not {r.op for r in slow.records} & {"aten._native_multi_head_attention",
                                                "aten._transformer_encoder_layer_fwd"}
    assert totals(fast) == totals(slow)


def test_handwritten_attention_is_attributed_to_its_module():
    class Manual(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(8, 24, bias=False)

        def forward(self, x):
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            w = torch.softmax(q @ k.transpose(-2, -1) / 8**0.5, dim=-1)
            return w @ v

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Manual()

        def forward(self, x):
            return self.block(x)

    p = profile(Net(), torch.randn(1, 6, 8))
    # qkv: 6*24*8 = 1,152 MACs in "block.qkv"; q @ k^T 6*6*8 = 288 and w @ v 288 in "block"
    assert p.layer("block.qkv").macs == 1_152
    own = next(r for r in p.layers if r.name == "block")
    assert own.macs == 576
    # elementwise in "block": scale 36 + softmax 5*36 = 216
    assert own.flops == 2 * 576 + 36 + 180


def test_sdpa_backward_by_hand_and_every_kernel_alike():
    # B*H = 2, L = S = 4, E = Ev = 8: 32 scores. Backward MACs per score: recompute
    # Q K^T (E) + dV = P^T dO (Ev) + dP = dO V^T (Ev) + dQ = dS K (E) + dK = dS^T Q (E)
    # = 3*8 + 2*8 = 40 -> 1,280. Elementwise: scale q (64) and k (64) and their gradients
    # (2 * 128 = 256), P = exp(S - lse) 2 per score (64), D = rowsum(dO * O) 2 per output
    # element (128), dS = P * (dP - D) 2 per score (64) = 512; a mask +1 per score (32);
    # dropout +2 per score (64)
    from pytest_flopbudget.counting.costs import TensorMeta
    from pytest_flopbudget.counting.registry import bind, lookup

    class Attend(nn.Module):
        def __init__(self, **kw):
            super().__init__()
            self.q = nn.Parameter(torch.randn(1, 2, 4, 8))
            self.kw = kw

        def forward(self, k, v):
            return F.scaled_dot_product_attention(self.q, k, v, **self.kw)

    def cpu_backward(**kw):
        p = profile(Attend(**kw), torch.randn(1, 2, 4, 8), torch.randn(1, 2, 4, 8), train=True)
        [rec] = [r for r in p.phase("backward").records if "attention" in r.op]
        assert rec.op == "aten._scaled_dot_product_flash_attention_for_cpu_backward"
        return rec.macs, rec.flops - 2 * rec.macs

    assert cpu_backward() == (1_280, 512)
    assert cpu_backward(is_causal=True) == (1_280, 512 + 32)

    t = TensorMeta((1, 2, 4, 8))
    lse, bias, none = TensorMeta((1, 2, 4)), TensorMeta((1, 2, 4, 4)), None
    fused = {  # arguments at each GPU kernel's schema positions: (mask, dropout_p) cases
        "_scaled_dot_product_flash_attention_backward":
            lambda causal, p: (t, t, t, t, t, lse, none, none, 4, 4, p, causal, none, none),
        "_scaled_dot_product_efficient_attention_backward":
            lambda causal, p: (t, t, t, t, bias if causal else None, t, lse, none, none, p,
                               [True] * 4, False),
        "_scaled_dot_product_cudnn_attention_backward":
            lambda causal, p: (t, t, t, t, t, lse, none, none, bias if causal else None, none,
                               none, 4, 4, p, False),
    }
    for name, args in fused.items():
        op = getattr(torch.ops.aten, name)
        formula = lookup(op)
        for masked, dropout, extra in [(False, 0.0, 0), (True, 0.0, 32), (True, 0.1, 32 + 64)]:
            # bound to the schema by name, as the tracer passes them
            w = formula.fn(**bind(op.default, args(masked, dropout), {}), result=(t, t, t))
            assert (w.macs, w.elementwise) == (1_280, 512 + extra), (name, masked, dropout)


@pytest.mark.filterwarnings("ignore:.*nested tensors is in prototype")
@pytest.mark.parametrize("trace", ["auto", "real"])
def test_an_encoder_that_makes_a_nested_tensor_says_what_to_do(trace):
    # in eval, a src_key_padding_mask turns the input into a nested tensor: a TraceError
    # naming the operator and the way out, not torch's internal error on its sizes
    from pytest_flopbudget.counting.tracer import TraceError

    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True),
                                    2).eval()
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, 3:] = True
    with pytest.raises(TraceError, match=r"aten::_nested_tensor_from_mask got a nested "
                                         r"tensor .*enable_nested_tensor=False"):
        profile(encoder, torch.randn(2, 5, 16), src_key_padding_mask=mask, trace=trace)
