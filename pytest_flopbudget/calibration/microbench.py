"""The calibration's microbenchmarks: fixed modules and inputs, each a *row* the host's free
figures are fitted to (:data:`ROWS`, built by :func:`rows`), and the GEMM and streaming copies
behind the structural figures (peak, bandwidths).

Each row is an ``nn.Module`` with its inputs, so that the package's tracer counts exactly the
operators that are timed, and so that it exports to ONNX (``torch.onnx.export(...,
dynamo=True)``) for the ONNX Runtime calibration. A row belongs to a *family*: the figure it
mainly pins (``conv3x3``, ``transcendental``, ``overhead``...). Families cover what decides
time on a CPU: convolution kinds that run different kernels (1-D, 2-D 3x3 and others, 3-D,
1x1, depthwise, transposed), matrix products from a GEMV to large GEMMs, recurrent steps,
attention, arithmetic and transcendental elementwise work and norms on cache-resident and on
DRAM-resident tensors, pooling and data movement, and chains of tiny operators for the
per-operator overhead. No row is any model the accuracy bench predicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

GEMM_N = 2048
#: Operators in a chain of tiny operators (an overhead row).
TINY_CHAIN = 24


class Ops(nn.Module):
    """A benchmark as a module: its forward runs ``fn(self, *inputs)`` (``fn`` a plain
    function of the module and its inputs), children in ``parts``."""

    def __init__(self, fn: Callable[..., Any], *children: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.parts = nn.ModuleList(children)

    def forward(self, *xs: torch.Tensor) -> Any:
        return self.fn(self, *xs)


@dataclass(frozen=True)
class Bench:
    """One microbenchmark: what it is, the family of figures it pins, the module it runs and
    its inputs."""

    what: str
    family: str
    module: nn.Module
    inputs: tuple[torch.Tensor, ...]

    def run(self) -> object:
        """One forward of the benchmark (what a timer calls)."""
        return self.module(*self.inputs)


def _g() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def randn(*shape: int) -> torch.Tensor:
    """A fixed random fp32 tensor."""
    return torch.randn(*shape, generator=_g())


def layer(what: str, family: str, module: nn.Module, *inputs: torch.Tensor) -> Bench:
    """A row running one module (in eval mode) on ``inputs``."""
    return Bench(what, family, Ops(_first_part, module.eval()), inputs)


def fn(what: str, family: str, body: Callable[..., Any], *inputs: torch.Tensor) -> Bench:
    """A row running ``body(*inputs)`` (a function of tensors only)."""
    return Bench(what, family, Ops(_Call(body)), inputs)


def _first_part(m: Ops, *xs: torch.Tensor) -> Any:
    return m.parts[0](*xs)


class _Call:
    """``fn``'s forward: drops the module argument (a class, not a lambda, so that rows pickle
    and export the same way)."""

    def __init__(self, body: Callable[..., Any]) -> None:
        self.body = body

    def __call__(self, m: Ops, *xs: torch.Tensor) -> Any:
        return self.body(*xs)


class FirstOutput(nn.Module):
    """A recurrent layer's output sequence (not its state)."""

    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class Repeat(nn.Module):
    """Runs ``body`` ``times`` times, each on the previous result."""

    def __init__(self, body: Callable[[torch.Tensor], torch.Tensor], times: int) -> None:
        super().__init__()
        self.body = body
        self.times = times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.times):
            x = self.body(x)
        return x


class ConvBnRelu(nn.Module):
    """A CNN's basic block: convolution, eval-mode batch norm, ReLU (as one kernel in a
    compiling runtime)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


# --- the rows, family by family -------------------------------------------------------------
#: A CNN's feature pyramid: channels double as the side halves, so every level does about the
#: same work, from a wide early level down to a 3x3 late one.
PYRAMID = ((16, 96), (32, 48), (64, 24), (128, 12), (256, 6), (512, 3))


def _conv2d() -> list[Bench]:
    out = [layer(f"conv 3x3 {c}->{c} at {s}x{s}", "conv3x3",
                 nn.Conv2d(c, c, 3, padding=1, bias=False), randn(1, c, s, s))
           for c, s in PYRAMID]
    out += [layer(f"conv 1x1 {c}->{2 * c} at {s}x{s}", "pointwise_conv",
                  nn.Conv2d(c, 2 * c, 1, bias=False), randn(1, c, s, s))
            for c, s in PYRAMID]
    out += [
        layer("conv 3x3 3->32 at 112x112", "conv3x3", nn.Conv2d(3, 32, 3, padding=1),
              randn(1, 3, 112, 112)),
        layer("conv 1x1 96->24 at 40x40", "pointwise_conv", nn.Conv2d(96, 24, 1),
              randn(1, 96, 40, 40)),
        layer("conv 3x3/2 32->64 at 48x48", "conv2d", nn.Conv2d(32, 64, 3, 2, 1, bias=False),
              randn(1, 32, 48, 48)),
        layer("conv 7x7/2 3->32 at 96x96", "conv2d", nn.Conv2d(3, 32, 7, 2, 3, bias=False),
              randn(1, 3, 96, 96)),
        layer("conv 5x5 48->48 at 20x20", "conv2d", nn.Conv2d(48, 48, 5, padding=2),
              randn(1, 48, 20, 20)),
        layer("conv 1x1/2 64->128 at 28x28", "pointwise_conv",
              nn.Conv2d(64, 128, 1, 2, bias=False), randn(1, 64, 28, 28)),
        layer("conv-bn-relu 3x3 48->48 at 28x28", "conv3x3", ConvBnRelu(48, 48, 3),
              randn(1, 48, 28, 28)),
        layer("conv-bn-relu 1x1 32->96 at 28x28", "pointwise_conv", ConvBnRelu(32, 96, 1),
              randn(1, 32, 28, 28)),
    ]
    return out


def _conv_other() -> list[Bench]:
    return [
        layer("conv1d k9 1->32 over 2048", "conv1d", nn.Conv1d(1, 32, 9, padding=4),
              randn(1, 1, 2048)),
        layer("conv1d k5 32->64 over 1024", "conv1d", nn.Conv1d(32, 64, 5, padding=2),
              randn(1, 32, 1024)),
        layer("conv1d k3/2 64->128 over 512", "conv1d", nn.Conv1d(64, 128, 3, 2, 1),
              randn(1, 64, 512)),
        layer("conv1d k3 192->192 over 128", "conv1d", nn.Conv1d(192, 192, 3, padding=1),
              randn(1, 192, 128)),
        layer("conv3d 3x3x3 3->24 at 8x48x48", "conv3d", nn.Conv3d(3, 24, 3, padding=1),
              randn(1, 3, 8, 48, 48)),
        layer("conv3d 3x3x3 24->48 at 8x24x24", "conv3d", nn.Conv3d(24, 48, 3, padding=1),
              randn(1, 24, 8, 24, 24)),
        layer("conv3d 3x3x3/2 48->96 at 8x24x24", "conv3d", nn.Conv3d(48, 96, 3, 2, 1),
              randn(1, 48, 8, 24, 24)),
        layer("conv3d 3x3x3 96->96 at 2x6x6", "conv3d", nn.Conv3d(96, 96, 3, padding=1),
              randn(1, 96, 2, 6, 6)),
        layer("conv3d 1x1x1 48->96 at 4x20x20", "pointwise_conv", nn.Conv3d(48, 96, 1),
              randn(1, 48, 4, 20, 20)),
        layer("conv_transpose2d 2x2/2 64->32 at 24x24", "transposed_conv",
              nn.ConvTranspose2d(64, 32, 2, 2), randn(1, 64, 24, 24)),
        layer("conv_transpose2d 4x4/2 32->16 at 32x32", "transposed_conv",
              nn.ConvTranspose2d(32, 16, 4, 2, 1), randn(1, 32, 32, 32)),
        layer("conv_transpose1d 4/2 64->32 over 256", "transposed_conv",
              nn.ConvTranspose1d(64, 32, 4, 2, 1), randn(1, 64, 256)),
    ]


def _depthwise() -> list[Bench]:
    out = [layer(f"depthwise 3x3 {3 * c} ch at {s}x{s}", "depthwise_conv",
                 nn.Conv2d(3 * c, 3 * c, 3, padding=1, groups=3 * c, bias=False),
                 randn(1, 3 * c, s, s))
           for c, s in PYRAMID[:5]]
    out += [
        layer("depthwise 3x3/2 144 ch at 40x40", "depthwise_conv",
              nn.Conv2d(144, 144, 3, 2, 1, groups=144, bias=False), randn(1, 144, 40, 40)),
        layer("depthwise 5x5 240 ch at 14x14", "depthwise_conv",
              nn.Conv2d(240, 240, 5, padding=2, groups=240), randn(1, 240, 14, 14)),
        layer("depthwise-bn-relu 3x3 96 ch at 28x28", "depthwise_conv",
              ConvBnRelu(96, 96, 3, groups=96), randn(1, 96, 28, 28)),
        layer("depthwise1d k9 128 ch over 512", "depthwise_conv",
              nn.Conv1d(128, 128, 9, padding=4, groups=128), randn(1, 128, 512)),
        layer("depthwise3d 3x3x3 64 ch at 4x20x20", "depthwise_conv",
              nn.Conv3d(64, 64, 3, padding=1, groups=64), randn(1, 64, 4, 20, 20)),
    ]
    return out


def _matmul() -> list[Bench]:
    # a GEMV, token counts of common transformers (77 text tokens, 197 = a 14x14 patch grid
    # + 1), a batch of 32 and powers of two
    shapes = ((1, 1024, 1024), (1, 256, 4096), (16, 768, 768), (32, 512, 512),
              (77, 768, 768), (64, 512, 2048), (197, 384, 1536), (256, 1024, 256),
              (1024, 256, 256), (128, 96, 96))
    out = [layer(f"linear {rows}x{c_in} -> {c_out}",
                 "matrix_vector" if rows == 1 else "matmul", nn.Linear(c_in, c_out),
                 randn(rows, c_in))
           for rows, c_in, c_out in shapes]
    out.append(fn("bmm 12 x (96x48 @ 48x96)", "matmul", torch.bmm, randn(12, 96, 48),
                  randn(12, 48, 96)))
    out.append(fn("matmul 8 x (128x64 @ 64x128)", "matmul", torch.matmul,
                  randn(1, 8, 128, 64), randn(1, 8, 64, 128)))
    return out


def _recurrent() -> list[Bench]:
    out = [layer(f"{cls.__name__}({c_in}, {width}) over {steps} steps", "recurrent",
                 FirstOutput(cls(c_in, width, batch_first=True)), randn(1, steps, c_in))
           for cls in (nn.LSTM, nn.GRU)
           for c_in, width, steps in ((64, 96, 80), (192, 192, 40), (32, 384, 16))]
    out.append(layer("LSTM(48, 64) x 2 layers over 60 steps", "recurrent",
                     FirstOutput(nn.LSTM(48, 64, 2, batch_first=True)), randn(1, 60, 48)))
    return out


def _attention() -> list[Bench]:
    """The ways attention reaches the tracer: scaled_dot_product_attention (with and without
    a causal mask), the fused nn.MultiheadAttention and nn.TransformerEncoderLayer (both one
    operator of the attention class, their projections and feed-forward included)."""
    q, k, v = (randn(1, 6, 100, 64) for _ in range(3))
    out = [
        fn("sdpa 6 heads x 100 tokens x 64", "attention", F.scaled_dot_product_attention,
           q, k, v),
        fn("sdpa causal 4 heads x 192 tokens x 48", "attention", _causal_sdpa,
           randn(1, 4, 192, 48), randn(1, 4, 192, 48), randn(1, 4, 192, 48)),
    ]
    # an even head count: PyTorch's fused paths decline odd ones
    for dim, heads, tokens in ((192, 4, 100), (384, 6, 50)):
        mha = nn.MultiheadAttention(dim, heads, batch_first=True)
        out.append(layer(f"nn.MultiheadAttention({dim}, {heads} heads) over {tokens} tokens",
                         "attention", _SelfAttention(mha), randn(1, tokens, dim)))
        out.append(layer(f"nn.TransformerEncoderLayer({dim}, {heads} heads, FFN {4 * dim}) "
                         f"over {tokens} tokens", "attention",
                         nn.TransformerEncoderLayer(dim, heads, 4 * dim, batch_first=True),
                         randn(1, tokens, dim)))
    return out


def _causal_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


class _SelfAttention(nn.Module):
    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        self.mha = mha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


#: Elements of a cache-resident tensor (256 KiB) and of a DRAM-resident one (24 MiB, more
#: than a read and a write fit in a 32 MiB cache).
SMALL, LARGE = 1 << 16, 6 << 20


def _elementwise() -> list[Bench]:
    out = []
    for n, where in ((SMALL, "256 KiB"), (LARGE, "24 MiB")):
        x, y = randn(n), randn(n)
        out += [
            fn(f"relu of {where}", "arithmetic", torch.relu, x),
            fn(f"add of 2 x {where}", "arithmetic", torch.add, x, y),
            fn(f"mul of 2 x {where}", "arithmetic", torch.mul, x, y),
            fn(f"gelu of {where}", "transcendental", F.gelu, x),
            fn(f"exp of {where}", "transcendental", torch.exp, x),
            fn(f"sigmoid of {where}", "transcendental", torch.sigmoid, x),
            fn(f"tanh of {where}", "transcendental", torch.tanh, x),
        ]
    x = randn(1 << 20)
    out += [
        fn("add of 2 x 4 MiB", "arithmetic", torch.add, x, randn(1 << 20)),
        fn("gelu of 4 MiB", "transcendental", F.gelu, x),
        fn("erf of 4 MiB", "transcendental", torch.erf, x),
        fn("silu of 4 MiB", "transcendental", F.silu, x),
        fn("softmax of 6 x 197 x 197", "transcendental", _softmax, randn(1, 6, 197, 197)),
        fn("softmax of 4 x 1024 x 1024", "transcendental", _softmax, randn(1, 4, 1024, 1024)),
        fn("hardswish of 96 x 56 x 56", "arithmetic", F.hardswish, randn(1, 96, 56, 56)),
        fn("add 1x64x56x56 + 1x64x1x1", "arithmetic", torch.add, randn(1, 64, 56, 56),
           randn(1, 64, 1, 1)),
    ]
    return out


def _softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, -1)


def _norm() -> list[Bench]:
    return [
        layer("batch_norm (eval) 64 ch at 56x56", "channel_affine", nn.BatchNorm2d(64),
              randn(1, 64, 56, 56)),
        layer("batch_norm (eval) 256 ch at 96x96", "channel_affine", nn.BatchNorm2d(256),
              randn(1, 256, 96, 96)),
        layer("batch_norm (eval) 1d 128 ch over 256", "channel_affine", nn.BatchNorm1d(128),
              randn(1, 128, 256)),
        layer("layer_norm 196 x 384", "norm", nn.LayerNorm(384), randn(196, 384)),
        layer("layer_norm 6144 x 1024", "norm", nn.LayerNorm(1024), randn(6144, 1024)),
        layer("layer_norm 64 x 256", "norm", nn.LayerNorm(256), randn(64, 256)),
        layer("group_norm 8 groups 64 ch at 32x32", "norm", nn.GroupNorm(8, 64),
              randn(1, 64, 32, 32)),
    ]


def _pooling() -> list[Bench]:
    x = randn(1, 48, 64, 64)
    return [
        fn("max_pool2d 3x3/2 of 1x48x64x64", "pooling", _max_pool_3x3, x),
        fn("max_pool2d 2x2/2 of 1x48x64x64", "pooling", _max_pool_2x2, x),
        fn("avg_pool2d 2x2/2 of 1x48x64x64", "pooling", _avg_pool_2x2, x),
        fn("max_pool1d 2/2 of 1x64x512", "pooling", _max_pool1d, randn(1, 64, 512)),
        fn("adaptive_avg_pool2d(1) of 1x512x14x14", "pooling", _global_pool,
           randn(1, 512, 14, 14)),
        fn("avg_pool3d 2x2x2 of 1x32x8x28x28", "pooling", _avg_pool3d,
           randn(1, 32, 8, 28, 28)),
        # eager PyTorch runs a 3-D max pool as max_pool3d_with_indices: it writes an int64
        # index per output besides the output, in a kernel of its own
        fn("max_pool3d 2x2x2 of 1x32x8x28x28", "pooling", _max_pool3d,
           randn(1, 32, 8, 28, 28)),
        fn("max_pool3d 1x2x2 of 1x24x8x48x48", "pooling", _max_pool3d_hw,
           randn(1, 24, 8, 48, 48)),
        fn("max_pool2d 3x3/2 of 1x64x112x112", "pooling", _max_pool_3x3,
           randn(1, 64, 112, 112)),
    ]


def _max_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 2, 1)


def _max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 2)


def _avg_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 2)


def _max_pool1d(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool1d(x, 2)


def _global_pool(x: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, 1)


def _avg_pool3d(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool3d(x, 2)


def _max_pool3d(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool3d(x, 2)


def _max_pool3d_hw(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool3d(x, (1, 2, 2))


def _data() -> list[Bench]:
    x, y = randn(1, 48, 48, 48), randn(1, 48, 48, 48)
    return [
        fn("cat of 2 x 1x48x48x48", "data", _cat, x, y),
        fn("permute(0,2,3,1).contiguous() of 1x48x48x48", "layout", _to_channels_last, x),
        fn("transpose(1,2).contiguous() of 1x512x1536", "layout", _transpose_copy,
           randn(1, 512, 1536)),
        fn("pad 1 of 1x48x48x48", "data", _pad, x),
        layer("embedding of 128 ids in 8000x256", "data", nn.Embedding(8000, 256),
              torch.randint(0, 8000, (1, 128), generator=_g())),
    ]


def _cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cat((a, b), 1)


def _to_channels_last(a: torch.Tensor) -> torch.Tensor:
    return a.permute(0, 2, 3, 1).contiguous()


def _transpose_copy(a: torch.Tensor) -> torch.Tensor:
    return a.transpose(1, 2).contiguous()


def _pad(a: torch.Tensor) -> torch.Tensor:
    return F.pad(a, (1, 1, 1, 1))


def _add_self(x: torch.Tensor) -> torch.Tensor:
    return x + x


def _tiny_sdpa(x: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(x, x, x)


def _tiny_cat(x: torch.Tensor) -> torch.Tensor:
    return torch.cat((x[:, :8], x[:, 8:]), 1)


def _overhead() -> list[Bench]:
    """Chains of one tiny operator kind each (a few dozen elements, nanoseconds of work):
    the cost of dispatching an operator, module call included, is all they measure. The
    recurrent runs are a 4-wide layer over 64 steps and over 8: their cost per step, and
    what a call costs once whatever its steps (eager PyTorch's LSTM sets up oneDNN's RNN
    primitive at every call)."""
    n = TINY_CHAIN

    def chain(make: Callable[[], nn.Module]) -> nn.Module:
        return nn.Sequential(*[make() for _ in range(n)])

    img, vec, seq, short = randn(1, 4, 4, 4), randn(1, 16), randn(1, 64, 4), randn(1, 8, 4)
    return [
        layer("tiny conv 3x3 4->4 at 4x4", "overhead",
              chain(lambda: nn.Conv2d(4, 4, 3, padding=1)), img),
        # a kernel wider than 3 both ways: eager PyTorch takes its oneDNN path (as for the
        # depthwise one below)
        layer("tiny conv 5x5 4->4 at 4x4", "overhead",
              chain(lambda: nn.Conv2d(4, 4, 5, padding=2)), img),
        layer("tiny depthwise 3x3 at 4x4", "overhead",
              chain(lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4)), img),
        layer("tiny linear 16->16", "overhead", chain(lambda: nn.Linear(16, 16)), vec),
        layer("tiny sdpa of 4 tokens x 4", "overhead", Repeat(_tiny_sdpa, n),
              randn(1, 1, 4, 4)),
        layer("tiny relu", "overhead", chain(nn.ReLU), vec),
        layer("tiny add", "overhead", Repeat(_add_self, n), vec),
        layer("tiny gelu", "overhead", chain(nn.GELU), vec),
        layer("tiny layer_norm", "overhead", chain(lambda: nn.LayerNorm(16)), vec),
        layer("tiny batch_norm", "overhead", chain(lambda: nn.BatchNorm2d(4)), img),
        layer("tiny max_pool2d 3x3/1", "overhead", chain(lambda: nn.MaxPool2d(3, 1, 1)), img),
        layer("tiny cat", "overhead", Repeat(_tiny_cat, n), vec),
        layer("tiny lstm 4->4, 64 steps", "overhead",
              FirstOutput(nn.LSTM(4, 4, batch_first=True)), seq),
        layer("tiny gru 4->4, 64 steps", "overhead",
              FirstOutput(nn.GRU(4, 4, batch_first=True)), seq),
        layer("tiny lstm 4->4, 8 steps", "overhead",
              FirstOutput(nn.LSTM(4, 4, batch_first=True)), short),
        layer("tiny gru 4->4, 8 steps", "overhead",
              FirstOutput(nn.GRU(4, 4, batch_first=True)), short),
    ]


#: Row families in the order they run.
FAMILIES: dict[str, Callable[[], list[Bench]]] = {
    "conv2d": _conv2d,
    "conv other": _conv_other,
    "depthwise": _depthwise,
    "matmul": _matmul,
    "recurrent": _recurrent,
    "attention": _attention,
    "elementwise": _elementwise,
    "norm": _norm,
    "pooling": _pooling,
    "data": _data,
    "overhead": _overhead,
}


def rows() -> list[Bench]:
    """Every row of the calibration, in a fixed order (fixed weights and inputs)."""
    torch.manual_seed(0)
    out = [bench for make in FAMILIES.values() for bench in make()]
    names = [b.what for b in out]
    assert len(names) == len(set(names)), "row names must be unique"
    return out


def gemm(n: int) -> Callable[[], object]:
    """One ``n x n`` fp32 GEMM (``2 n^3`` FLOPs)."""
    a, b = randn(n, n), randn(n, n)
    return lambda: torch.mm(a, b)


def streaming_copy(nbytes: int) -> Callable[[], object]:
    """A copy of an ``nbytes`` fp32 buffer into another one (reads and writes ``nbytes``)."""
    src = torch.ones(nbytes // 4)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)
