"""Architectures as real libraries write them (transformers, timm, torch.ao), rebuilt compactly
at small sizes, in the forms edge teams ship: each is counted on fake tensors with nothing
left uncounted, its MACs equal to an analytic count written next to it and its params exact.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from reference_models import BasicBlock, ResNet
from torch import nn

from pytest_flopbudget import profile

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


# -- timm: ConvNeXt block ---------------------------------------------------------------------
class ConvNeXtBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.pwconv1 = nn.Linear(c, 4 * c)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).permute(0, 3, 1, 2)


# -- timm: Swin window attention with relative position bias ----------------------------------
class WindowAttention(nn.Module):
    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                            indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window - 1
        self.register_buffer("index", rel[..., 0] * (2 * window - 1) + rel[..., 1])
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.table[self.index.view(-1)].view(n, n, -1).permute(2, 0, 1)
        attn = (attn + bias.unsqueeze(0)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


# -- timm: EfficientNet MBConv with squeeze-and-excitation ------------------------------------
class SqueezeExcite(nn.Module):
    def __init__(self, c: int, reduced: int, gate: type[nn.Module] = nn.Sigmoid,
                 act: type[nn.Module] = nn.SiLU) -> None:
        super().__init__()
        self.conv_reduce = nn.Conv2d(c, reduced, 1)
        self.act = act()
        self.conv_expand = nn.Conv2d(reduced, c, 1)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.conv_expand(self.act(self.conv_reduce(s))))


class MBConv(nn.Module):
    def __init__(self, c: int, expand: int, k: int = 3, act: type[nn.Module] = nn.SiLU,
                 gate: type[nn.Module] = nn.Sigmoid, se_reduced: int = 4) -> None:
        super().__init__()
        mid = c * expand
        self.conv_pw = nn.Conv2d(c, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.act1 = act()
        self.conv_dw = nn.Conv2d(mid, mid, k, padding=k // 2, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.act2 = act()
        self.se = SqueezeExcite(mid, se_reduced, gate, act)
        self.conv_pwl = nn.Conv2d(mid, c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.bn1(self.conv_pw(x)))
        y = self.se(self.act2(self.bn2(self.conv_dw(y))))
        return x + self.bn3(self.conv_pwl(y))


# -- timm: RegNetY bottleneck (group conv + SE) -----------------------------------------------
class RegNetYBlock(nn.Module):
    def __init__(self, c: int, group_width: int, se_reduced: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c // group_width,
                                             bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.se = SqueezeExcite(c, se_reduced, act=nn.ReLU)
        self.conv3 = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv3(self.se(self.conv2(self.conv1(x)))))


# -- transformers: Llama/Mistral decoder layer with grouped-query attention --------------------
class RMSNorm(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.to(torch.float32)
        return self.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-6))


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class GQADecoderLayer(nn.Module):
    def __init__(self, d: int = 32, heads: int = 4, kv_heads: int = 2, ffn: int = 64) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.hd = heads, kv_heads, d // heads
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(d), RMSNorm(d)
        self.q_proj = nn.Linear(d, heads * self.hd, bias=False)
        self.k_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)
        self.gate_proj = nn.Linear(d, ffn, bias=False)
        self.up_proj = nn.Linear(d, ffn, bias=False)
        self.down_proj = nn.Linear(ffn, d, bias=False)
        self.register_buffer("inv_freq", 1.0 / 10000 ** (torch.arange(0, self.hd, 2) / self.hd),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(b, n, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(b, n, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(b, n, self.kv_heads, self.hd).transpose(1, 2)
        freqs = torch.outer(torch.arange(n, dtype=torch.float32), self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        groups = self.heads // self.kv_heads  # repeat_kv
        k = k[:, :, None].expand(b, self.kv_heads, groups, n, self.hd).reshape(b, -1, n, self.hd)
        v = v[:, :, None].expand(b, self.kv_heads, groups, n, self.hd).reshape(b, -1, n, self.hd)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o_proj(a.transpose(1, 2).reshape(b, n, -1))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


# -- transformers: T5 self-attention with relative position buckets --------------------------
class T5Attention(nn.Module):
    def __init__(self, d: int = 32, heads: int = 4, buckets: int = 8, max_distance: int = 16
                 ) -> None:
        super().__init__()
        self.heads, self.buckets, self.max_distance = heads, buckets, max_distance
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.relative_attention_bias = nn.Embedding(buckets, heads)

    def bucket(self, rel: torch.Tensor) -> torch.Tensor:
        half = self.buckets // 2
        out = (rel > 0).to(torch.long) * half
        rel = rel.abs()
        exact = half // 2
        large = exact + (torch.log(rel.float() / exact) / math.log(self.max_distance / exact)
                         * (half - exact)).to(torch.long)
        large = torch.min(large, torch.full_like(large, half - 1))
        return out + torch.where(rel < exact, rel, large)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, -1).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        pos = torch.arange(n)
        bias = self.relative_attention_bias(self.bucket(pos[None, :] - pos[:, None]))
        scores = q @ k.transpose(-2, -1) + bias.permute(2, 0, 1).unsqueeze(0)
        out = scores.softmax(-1) @ v
        return self.o(out.transpose(1, 2).reshape(b, n, d))


# -- transformers: Mamba mixer, the reference selective scan ---------------------------------
class MambaMixer(nn.Module):
    def __init__(self, d: int = 16, expand: int = 2, state: int = 4, conv: int = 4,
                 dt_rank: int = 2) -> None:
        super().__init__()
        inner = d * expand
        self.state, self.dt_rank = state, dt_rank
        self.in_proj = nn.Linear(d, 2 * inner, bias=False)
        self.conv1d = nn.Conv1d(inner, inner, conv, groups=inner, padding=conv - 1)
        self.x_proj = nn.Linear(inner, dt_rank + 2 * state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, inner)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, state + 1.0)).repeat(inner, 1))
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        h, gate = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)
        h = F.silu(self.conv1d(h)[..., :n])
        dt, bm, cm = self.x_proj(h.transpose(1, 2)).split(
            [self.dt_rank, self.state, self.state], dim=-1)
        dt = F.softplus(self.dt_proj(dt)).transpose(1, 2)
        a = -torch.exp(self.A_log.float())
        da = torch.exp(a[None, :, None, :] * dt[:, :, :, None])
        dbu = dt[:, :, :, None] * bm[:, None, :, :].float() * h[:, :, :, None].float()
        s = torch.zeros(b, h.shape[1], self.state)
        ys = []
        for i in range(n):
            s = da[:, :, i] * s + dbu[:, :, i]
            ys.append(torch.matmul(s, cm[:, i, :, None])[..., 0])
        y = torch.stack(ys, dim=-1) + h * self.D[None, :, None]
        return self.out_proj((y * F.silu(gate)).transpose(1, 2))


# -- transformers: Mixtral-style sparse MoE through _grouped_mm --------------------------------
class GroupedMoE(nn.Module):
    def __init__(self, d: int = 16, ffn: int = 32, experts: int = 4, top_k: int = 2) -> None:
        super().__init__()
        self.experts, self.top_k = experts, top_k
        self.gate = nn.Linear(d, experts, bias=False)
        self.w1 = nn.Parameter(torch.randn(experts, d, ffn) * 0.1)
        self.w2 = nn.Parameter(torch.randn(experts, ffn, d) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.reshape(-1, x.shape[-1])
        weights, chosen = torch.topk(self.gate(tokens).softmax(-1), self.top_k, dim=-1)
        flat = chosen.reshape(-1)
        order = torch.argsort(flat)
        counts = torch.histc(flat.float(), bins=self.experts, min=0, max=self.experts - 1)
        offs = torch.cumsum(counts, 0).to(torch.int32)
        token_of = order // self.top_k
        h = F.silu(torch._grouped_mm(tokens[token_of], self.w1, offs=offs))
        y = torch._grouped_mm(h, self.w2, offs=offs) * weights.reshape(-1)[order, None]
        return torch.zeros_like(tokens).index_add(0, token_of, y).view_as(x)


# -- transformers: wav2vec2 feature encoder and weight-normed positional convolution ---------
class Wav2Vec2Front(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv1d(1, 16, 10, stride=5, bias=False)
        self.norm0 = nn.GroupNorm(16, 16)
        self.conv1 = nn.Conv1d(16, 16, 3, stride=2, bias=False)
        self.layer_norm = nn.LayerNorm(16)
        self.projection = nn.Linear(16, 32)
        self.pos_conv = nn.utils.parametrizations.weight_norm(
            nn.Conv1d(32, 32, 4, padding=2, groups=4), name="weight", dim=2)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.norm0(self.conv0(wave)))
        h = F.gelu(self.conv1(h)).transpose(1, 2)
        h = self.projection(self.layer_norm(h))
        pos = F.gelu(self.pos_conv(h.transpose(1, 2))[:, :, :-1])  # SamePad: drop the last
        return h + pos.transpose(1, 2)


def quantized_resnet18(x: torch.Tensor) -> tuple[nn.Module, nn.Module]:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    model = ResNet(BasicBlock, [2, 2, 2, 2]).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), (x,))
        prepared(x)
        return model, convert_fx(prepared)


class LSTMClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(40, 64, num_layers=2, batch_first=True)
        self.fc = nn.Linear(64, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(x)[0][:, -1])


class MobileNetV3Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = MBConv(16, 4, k=5, act=nn.Hardswish, gate=nn.Hardsigmoid, se_reduced=16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


CASES = {
    # dw: 8*8 positions * 16 * 7*7 = 50,176; pwconv1 64 * 16 * 64 = 65,536; pwconv2 65,536
    # params: dw 16*49 + 16 = 800, LN 32, pw1 1,088, pw2 1,040, gamma 16
    "convnext_block": (lambda: ConvNeXtBlock(16), (1, 16, 8, 8), 181_248, 2_976),
    # 4 windows of 16 tokens, dim 16, 2 heads of 8: qkv 64 rows * 16 * 48 = 49,152;
    # q k^T and attn v 8 (window, head) pairs * 16 * 16 * 8 = 16,384 each; proj 16,384
    # params: qkv 816, proj 272, table 7*7 * 2 = 98
    "swin_window_attention": (lambda: WindowAttention(16, 4, 2), (4, 16, 16), 98_304, 1_186),
    # expand 64 * 64 * 16 = 65,536; dw 64 * 64 * 9 = 36,864; SE 64*4 + 4*64 = 512;
    # project 65,536. params: 1,024 + 128, 576 + 128, SE 260 + 320, 1,024 + 32
    "efficientnet_mbconv_se": (lambda: MBConv(16, 4), (1, 16, 8, 8), 168_448, 3_492),
    # conv1 64 * 32 * 32 = 65,536; conv2 (4 groups of 8) 64 * 32 * 8 * 9 = 147,456;
    # SE 32*8 + 8*32 = 512; conv3 65,536. params: 1,024+64, 2,304+64, 264+288, 1,024+64
    "regnety_block": (lambda: RegNetYBlock(32, 8, 8), (1, 32, 8, 8), 279_040, 5_096),
    # 10 tokens: q 10*32*32 = 10,240, k and v 10*32*16 = 5,120 each, attention 4 heads *
    # 10 * 10 * (8 + 8) = 6,400, o 10,240, gate/up/down 10*32*64 = 20,480 each
    # params: 1,024 + 512 + 512 + 1,024 + 3 * 2,048 + 2 norms * 32
    "llama_gqa_decoder_layer": (GQADecoderLayer, (1, 10, 32), 98_560, 9_280),
    # 6 tokens: q, k, v, o 6*32*32 = 6,144 each; q k^T and attn v 4 heads * 6*6*8 = 1,152
    # params: 4 * 1,024 + 8 buckets * 4 heads
    "t5_relative_attention": (T5Attention, (1, 6, 32), 26_880, 4_128),
    # 6 tokens: in_proj 6*16*64 = 6,144; conv (padded to 9 positions) 9*32*4 = 1,152;
    # x_proj 6*32*10 = 1,920; dt_proj 6*2*32 = 384; the scan's y = s C: 6 steps * 32 * 4
    # = 768; out_proj 6*32*16 = 3,072. params: 1,024, 160, 320, 96, A 128, D 32, 512
    "mamba_selective_scan": (MambaMixer, (1, 6, 16), 13_440, 2_272),
    # 8 tokens, top-2 of 4 experts: router 8*16*4 = 512; 16 routed rows * 16 * 32 = 8,192
    # through w1 and 16 * 32 * 16 = 8,192 through w2. params: 64 + 2 * 4*16*32
    "mixtral_grouped_mm_moe": (GroupedMoE, (1, 8, 16), 16_896, 4_160),
    # conv0 L = (400-10)//5+1 = 79: 79*16*10 = 12,640; conv1 L = 39: 39*16*16*3 = 29,952;
    # projection 39*16*32 = 19,968; pos conv (padded: 40 positions) 40*32*8*4 = 40,960
    # params: 160, GN 32, 768, LN 32, 544, pos conv g 4 + v 1,024 + bias 32
    "wav2vec2_feature_encoder": (Wav2Vec2Front, (1, 1, 400), 103_520, 2_596),
}


@pytest.mark.parametrize("name", list(CASES))
def test_real_architecture_is_exact(name):
    make, shape, macs, params = CASES[name]
    p = profile(make().eval(), torch.randn(*shape))
    assert (p.traced, p.unsupported) == ("fake", {}), p.fallback_reason
    assert (p.macs, p.params) == (macs, params)


def test_static_quantized_resnet18_fx():
    x = torch.randn(1, 3, 64, 64)
    model, quantized = quantized_resnet18(x)
    f, q = profile(model, x), profile(quantized, x)
    # ResNet-18 at 224: 1,814,073,344 MACs, of which fc 512,000; at 64 every feature map is
    # 3.5x smaller per side, so the convolutions do 1,813,561,344 / 12.25 = 148,045,824
    assert f.macs == 148_045_824 + 512_000
    assert (q.macs, q.traced, q.unsupported) == (f.macs, "fake", {})
    # 11,689,512 float params; convert folds each of the 4,800 BN channels (weight, bias)
    # into its conv's bias: 11,689,512 - 9,600 + 4,800
    assert (f.params, q.params) == (11_689_512, 11_684_712)
    # int8 weights: the 11,684,712 - 4,800 conv biases - 1,000 fc biases weights at 1 byte
    assert q.weight_bytes < f.weight_bytes / 3


def test_dynamic_quantized_lstm_classifier():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LSTMClassifier().eval()
        quantized = torch.ao.quantization.quantize_dynamic(model, {nn.LSTM, nn.Linear})
    x = torch.randn(1, 49, 40)
    p = profile(quantized, x)
    # layer 0: 49 steps * 4*64*(40 + 64) = 1,304,576; layer 1: 49 * 4*64*(64 + 64)
    # = 1,605,632; fc on the last step 64 * 12 = 768
    assert (p.macs, p.traced, p.unsupported) == (1_304_576 + 1_605_632 + 768, "fake", {})
    # 4*64*(40+64) + 512 biases = 27,136; 4*64*128 + 512 = 33,280; fc 780
    assert p.params == profile(model, x).params == 27_136 + 33_280 + 780


def test_scripted_mobilenetv3_block():
    model = MobileNetV3Block().eval()
    x = torch.randn(1, 16, 8, 8)
    p = profile(torch.jit.script(model), x)
    # expand 64 * 64 * 16 = 65,536; dw 5x5 64 * 64 * 25 = 102,400; SE 64*16 + 16*64 =
    # 2,048; project 65,536
    assert (p.macs, p.traced, p.unsupported) == (235_520, "fake", {})
    # 1,024 + 128, 1,600 + 128, SE 1,040 + 1,088, 1,024 + 32
    assert p.params == 6_064
    assert p.layer("block.conv_dw").macs == 102_400
    assert [r.name for r in p.layers] == [r.name for r in profile(model, x).layers]


# -- A second set, of architectures outside the families above -----------------------------
# torch's own TransformerEncoder (its eval fast path, one fused operator per layer), GPT-2 (its
# Conv1D is an addmm; the causal mask a where), ShuffleNetV2 (split, channel shuffle),
# U-Net (transposed conv, skip concatenation), Conformer (GLU, depthwise Conv1d,
# BatchNorm1d), DenseNet (concatenated features), a bi-GRU text classifier and a
# MobileNetV2 inverted residual in int8.
class GPT2Conv1D(nn.Module):
    """transformers' Conv1D: a linear layer with its weight transposed, run as addmm."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.02)
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return out.view(*x.shape[:-1], self.nf)


class GPT2Block(nn.Module):
    def __init__(self, d: int = 32, heads: int = 4, positions: int = 16) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.c_proj = GPT2Conv1D(3 * d, d), GPT2Conv1D(d, d)
        self.c_fc, self.mlp_proj = GPT2Conv1D(4 * d, d), GPT2Conv1D(d, 4 * d)
        causal = torch.tril(torch.ones(positions, positions, dtype=torch.bool))
        self.register_buffer("bias", causal.view(1, 1, positions, positions), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (t.view(b, n, self.heads, -1).transpose(1, 2)
                   for t in self.c_attn(self.ln_1(x)).split(d, dim=2))
        w = q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5
        w = torch.where(self.bias[:, :, :n, :n], w, torch.finfo(w.dtype).min)
        a = (w.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.c_proj(a)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class ShuffleV2Unit(nn.Module):
    def __init__(self, c: int = 16) -> None:
        super().__init__()
        half = c // 2
        self.branch2 = nn.Sequential(
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
            nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        out = torch.cat((x1, self.branch2(x2)), dim=1)
        b, c, h, w = out.shape
        return out.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)


class UNetUp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.conv = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = F.interpolate(x[:, :8], scale_factor=2.0, mode="nearest")
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class ConformerConv(nn.Module):
    def __init__(self, d: int = 16, kernel: int = 7) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(d)
        self.pointwise_conv1 = nn.Conv1d(d, 2 * d, 1)
        self.depthwise_conv = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d)
        self.batch_norm = nn.BatchNorm1d(d)
        self.pointwise_conv2 = nn.Conv1d(d, d, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.glu(self.pointwise_conv1(self.layer_norm(x).transpose(1, 2)), dim=1)
        y = self.pointwise_conv2(F.silu(self.batch_norm(self.depthwise_conv(y))))
        return x + y.transpose(1, 2)


class DenseLayer(nn.Module):
    def __init__(self, c: int = 16, growth: int = 8) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(c), nn.Conv2d(c, 4 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.norm2(self.conv1(F.relu(self.norm1(x))))))
        return torch.cat([x, y], dim=1)


def transformer_encoder() -> nn.Module:
    layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


OTHER_CASES = {
    # 2 x 10 tokens = 20 rows, d 32, 4 heads of 8, ffn 64, per layer: in_proj 20*32*96 =
    # 61,440; q k^T and attn v 2*4 * 10*10*8 = 6,400 each; out_proj 20*32*32 = 20,480;
    # ffn 2 * 20*32*64 = 81,920: 176,640. params per layer: 3,168 + 1,056 + 2,112 + 2,080
    # + 2 norms * 64 = 8,544
    "torch_transformer_encoder": (transformer_encoder, (2, 10, 32), 2 * 176_640, 2 * 8_544),
    # 12 tokens, d 32, 4 heads: c_attn 12*32*96 = 36,864; q k^T and attn v 4 * 12*12*8 =
    # 4,608 each; c_proj 12,288; c_fc and mlp_proj 12*32*128 = 49,152 each
    # params: 2 norms * 64, c_attn 3,072 + 96, c_proj 1,056, c_fc 4,224, mlp_proj 4,128
    "gpt2_block": (GPT2Block, (1, 12, 32), 156_672, 12_704),
    # branch of 8 channels on 8x8: 1x1 64*8*8 = 4,096, dw 64*8*9 = 4,608, 1x1 4,096
    # params: 64 + 72 + 64 weights, 3 BNs * 16
    "shufflenetv2_unit": (ShuffleV2Unit, (1, 16, 8, 8), 12_800, 248),
    # up: 4x4 inputs * 16 in * 8 out * 2x2 = 8,192; conv 8x8 * 8 * 16 * 9 = 73,728
    # params: up 512 + 8, conv 1,152 + 8, BN 16
    "unet_up_block": (UNetUp, (1, 16, 4, 4), 81_920, 1_696),
    # 2 x 20 = 40 positions: pw1 40*16*32 = 20,480; dw 40*16*7 = 4,480; pw2 40*16*16 =
    # 10,240. params: LN 32, pw1 544, dw 112 + 16, BN 32, pw2 272
    "conformer_conv_module": (ConformerConv, (2, 20, 16), 35_200, 1_008),
    # 8x8: conv1 64*32*16 = 32,768; conv2 64*8*32*9 = 147,456
    # params: BN 32, conv1 512, BN 64, conv2 2,304
    "densenet_layer": (DenseLayer, (1, 16, 8, 8), 180_224, 2_912),
}


@pytest.mark.parametrize("name", list(OTHER_CASES))
def test_other_architecture_is_exact(name):
    make, shape, macs, params = OTHER_CASES[name]
    p = profile(make().eval(), torch.randn(*shape))
    assert (p.traced, p.unsupported) == ("fake", {}), p.fallback_reason
    assert (p.macs, p.params) == (macs, params)


def rows(p):  # type: ignore[no-untyped-def]
    return [(r.name, r.kind, r.flops, r.macs, r.params) for r in p.layers]


@pytest.mark.parametrize("name,form", [
    ("torch_transformer_encoder", "script"),  # layers.0 and .1 run in a ModuleList loop
    ("gpt2_block", "export"), ("shufflenetv2_unit", "trace"), ("unet_up_block", "export"),
    ("conformer_conv_module", "compile"), ("densenet_layer", "script"),
])
def test_other_architecture_in_a_shipped_form_counts_as_the_eager_one(name, form):
    make, shape, macs, params = OTHER_CASES[name]
    model, x = make().eval(), torch.randn(*shape)
    shipped = (torch.jit.script(model) if form == "script" else
               torch.jit.trace(model, x) if form == "trace" else
               torch.export.export(model, (x,)).module() if form == "export" else
               torch.compile(model))
    p = profile(shipped, x)
    assert (p.traced, p.unsupported, p.notes, p.hidden_weights) == ("fake", {}, (), {})
    assert (p.macs, p.params) == (macs, params)
    # the same rows under the same names (an exported program's root is a GraphModule)
    assert rows(p)[1:] == rows(profile(model, x))[1:]


class TextGRU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(100, 16)
        self.gru = nn.GRU(16, 24, batch_first=True, bidirectional=True)
        self.classifier = nn.Linear(48, 5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.gru(self.embedding(tokens))[0].mean(1))


def test_dynamic_int8_bigru_text_classifier():
    model = TextGRU().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(model, {nn.GRU, nn.Linear})
    tokens = torch.randint(0, 100, (2, 7))
    p = profile(quantized, tokens)
    # 14 rows, 2 directions * 3*24*(16 + 24) = 5,760 MACs a row: 80,640; classifier 2 *
    # 48 * 5 = 480
    assert (p.macs, p.traced, p.unsupported) == (80_640 + 480, "fake", {})
    # embedding 1,600; per direction 72 * 40 + 144 biases = 3,024; classifier 245
    assert p.params == profile(model, tokens).params == 1_600 + 2 * 3_024 + 245


class QuantizedInvertedResidual(nn.Module):
    """MobileNetV2's inverted residual as torchvision's quantizable variant writes it (ReLU
    for ReLU6, so that conv, BN and ReLU fuse), 8 channels expanded 6 times."""

    def __init__(self, c: int = 8, expand: int = 6) -> None:
        super().__init__()
        mid = c * expand
        self.quant = torch.ao.quantization.QuantStub()
        self.expand = nn.Sequential(nn.Conv2d(c, mid, 1, bias=False), nn.BatchNorm2d(mid),
                                    nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(mid, mid, 3, padding=1, groups=mid, bias=False),
                                nn.BatchNorm2d(mid), nn.ReLU())
        self.project = nn.Sequential(nn.Conv2d(mid, c, 1, bias=False), nn.BatchNorm2d(c))
        self.skip = nn.quantized.FloatFunctional()
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x)
        return self.dequant(self.skip.add(x, self.project(self.dw(self.expand(x)))))


def test_eager_int8_mobilenetv2_inverted_residual():
    import torch.ao.quantization as tq

    x = torch.randn(1, 8, 8, 8)
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = "x86"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = tq.fuse_modules(QuantizedInvertedResidual().eval(), [
                ["expand.0", "expand.1", "expand.2"], ["dw.0", "dw.1", "dw.2"],
                ["project.0", "project.1"]])
            model.qconfig = tq.get_default_qconfig("x86")
            prepared = tq.prepare(model)
            prepared(x)
            quantized = tq.convert(prepared)
        p = profile(quantized, x)
    finally:
        torch.backends.quantized.engine = before
    # 8x8: expand 64*48*8 = 24,576; dw 64*48*9 = 27,648; project 64*8*48 = 24,576
    assert (p.macs, p.traced, p.unsupported) == (76_800, "fake", {})
    assert p.macs == profile(QuantizedInvertedResidual().eval(), x).macs
    # BN folded into each conv's bias: 384 + 48, 432 + 48, 384 + 8
    assert p.params == 1_304
    # int8 weights, a float32 scale and int32 zero point per output channel, float biases:
    # expand 384 + 48*8 + 48*4 = 960; dw 432 + 384 + 192 = 1,008; project 384 + 64 + 32 = 480
    assert p.weight_bytes == 960 + 1_008 + 480
    assert (p.layer("dw.0").kind, p.layer("dw.0").macs) == ("ConvReLU2d", 27_648)
