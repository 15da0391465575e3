"""The calibration's microbenchmarks: fixed modules and inputs, one list per operator class
(``CLASS_BENCHES``), chains of tiny operators for the per-operator overhead
(:func:`overhead_benches`), and the GEMM and streaming copy behind the peak and bandwidth.

Each benchmark is an ``nn.Module`` so that the package's tracer counts exactly the operators
that are timed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..core.op_classes import OP_CLASSES

GEMM_N = 2048


class _Ops(nn.Module):
    """A benchmark as a module: its forward runs ``fn`` on its inputs (so the package's
    tracer can count exactly the operators that are timed)."""

    def __init__(self, fn: Callable[..., Any], *children: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.parts = nn.ModuleList(children)

    def forward(self, *xs: torch.Tensor) -> Any:
        return self.fn(self, *xs)


@dataclass(frozen=True)
class Bench:
    """One microbenchmark: what it is, the module it runs, and its inputs."""

    what: str
    module: nn.Module
    inputs: tuple[torch.Tensor, ...]

    def run(self) -> object:
        """One forward of the benchmark (what a timer calls)."""
        return self.module(*self.inputs)


def _g() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=_g())


def _layer(what: str, layer: nn.Module, *inputs: torch.Tensor) -> Bench:
    return Bench(what, _Ops(lambda m, *xs: m.parts[0](*xs), layer.eval()), inputs)


#: A CNN's feature pyramid: channels double as the side halves, so every level does about
#: the same work, from a wide early level down to a 3x3 late one (small late levels are where
#: PyTorch runs convolutions as im2col + GEMM instead of oneDNN).
PYRAMID = ((16, 96), (32, 48), (64, 24), (128, 12), (256, 6), (512, 3))


def _conv_benches() -> list[Bench]:
    out = []
    for c, size in PYRAMID:
        x = _randn(1, c, size, size)
        out.append(_layer(f"conv2d 3x3 {c}->{c} at {size}x{size}",
                          nn.Conv2d(c, c, 3, padding=1, bias=False), x))
        out.append(_layer(f"conv2d 1x1 {c}->{2 * c} at {size}x{size}",
                          nn.Conv2d(c, 2 * c, 1, bias=False), x))
    out.append(_layer("conv2d 3x3 stride 2 32->64 at 48x48",
                      nn.Conv2d(32, 64, 3, 2, 1, bias=False), _randn(1, 32, 48, 48)))
    return out


def _depthwise_benches() -> list[Bench]:
    out = [_layer(f"depthwise 3x3, {3 * c} channels at {size}x{size}",
                  nn.Conv2d(3 * c, 3 * c, 3, padding=1, groups=3 * c, bias=False),
                  _randn(1, 3 * c, size, size))
           for c, size in PYRAMID]
    out.append(_layer("depthwise 3x3 stride 2, 192 channels at 24x24",
                      nn.Conv2d(192, 192, 3, 2, 1, groups=192, bias=False),
                      _randn(1, 192, 24, 24)))
    return out


def _matmul_benches() -> list[Bench]:
    out = [_layer(f"linear {rows}x{c_in} -> {c_out}", nn.Linear(c_in, c_out),
                  _randn(rows, c_in))
           # a GEMV, and token counts of common transformers (77 text tokens, 197 = a 14x14
           # patch grid + 1), besides powers of two
           for rows, c_in, c_out in ((1, 1024, 1024), (16, 768, 768), (77, 768, 768),
                                     (64, 512, 2048), (197, 384, 1536), (256, 1024, 256))]
    a, b = _randn(12, 96, 48), _randn(12, 48, 96)
    out.append(Bench("bmm 12 x (96x48 @ 48x96)", _Ops(lambda m, x, y: torch.bmm(x, y)), (a, b)))
    return out


def _recurrent_benches() -> list[Bench]:
    return [_layer(f"{cls.__name__}({width}, {width}) over {steps} steps, batch 1",
                   _FirstOutput(cls(width, width, batch_first=True)),
                   _randn(1, steps, width))
            for cls in (nn.LSTM, nn.GRU) for width, steps in ((96, 80), (192, 40))]


class _FirstOutput(nn.Module):
    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


def _attention_benches() -> list[Bench]:
    """The three ways attention reaches the tracer: scaled_dot_product_attention, the fused
    nn.MultiheadAttention and the fused nn.TransformerEncoderLayer (both are one operator of
    the attention class, their projections and feed-forward included)."""
    q, k, v = (_randn(1, 6, 100, 64) for _ in range(3))
    sdpa = Bench("scaled_dot_product_attention 6 heads x 100 tokens x 64",
                 _Ops(lambda m, a, b, c: F.scaled_dot_product_attention(a, b, c)), (q, k, v))
    # an even head count: PyTorch's fused paths decline odd ones
    mha = nn.MultiheadAttention(192, 4, batch_first=True).eval()
    x = _randn(1, 100, 192)
    fused = Bench("nn.MultiheadAttention(192, 4 heads) over 100 tokens",
                  _Ops(lambda m, a: m.parts[0](a, a, a, need_weights=False)[0], mha), (x,))
    layer = _layer("nn.TransformerEncoderLayer(192, 4 heads, FFN 768) over 100 tokens",
                   nn.TransformerEncoderLayer(192, 4, 768, batch_first=True), x)
    return [sdpa, fused, layer]


def _elementwise_benches() -> list[Bench]:
    x, y = _randn(1, 48, 48, 48), _randn(1, 48, 48, 48)
    return [
        Bench("relu of 110k elements", _Ops(lambda m, a: torch.relu(a)), (x,)),
        Bench("add of 2 x 110k elements", _Ops(lambda m, a, b: a + b), (x, y)),
        Bench("mul of 2 x 110k elements", _Ops(lambda m, a, b: a * b), (x, y)),
        Bench("gelu of 110k elements", _Ops(lambda m, a: F.gelu(a)), (x,)),
        Bench("sigmoid of 110k elements", _Ops(lambda m, a: torch.sigmoid(a)), (x,)),
    ]


def _norm_benches() -> list[Bench]:
    bn = nn.BatchNorm2d(48).eval()
    ln = nn.LayerNorm(384).eval()
    return [
        Bench("batch_norm (eval) of 1x48x48x48", _Ops(lambda m, a: m.parts[0](a), bn),
              (_randn(1, 48, 48, 48),)),
        Bench("layer_norm of 196x384", _Ops(lambda m, a: m.parts[0](a), ln),
              (_randn(196, 384),)),
    ]


def _pooling_benches() -> list[Bench]:
    x = _randn(1, 48, 64, 64)
    return [
        Bench("max_pool2d 3x3/2 of 1x48x64x64",
              _Ops(lambda m, a: F.max_pool2d(a, 3, 2, 1)), (x,)),
        Bench("max_pool2d 2x2/2 of 1x48x64x64", _Ops(lambda m, a: F.max_pool2d(a, 2)), (x,)),
        Bench("avg_pool2d 2x2/2 of 1x48x64x64", _Ops(lambda m, a: F.avg_pool2d(a, 2)), (x,)),
        Bench("max_pool1d 2/2 of 1x64x512", _Ops(lambda m, a: F.max_pool1d(a, 2)),
              (_randn(1, 64, 512),)),
        Bench("adaptive_avg_pool2d(1) of 1x384x14x14",
              _Ops(lambda m, a: F.adaptive_avg_pool2d(a, 1)), (_randn(1, 384, 14, 14),)),
    ]


def _data_benches() -> list[Bench]:
    x, y = _randn(1, 48, 48, 48), _randn(1, 48, 48, 48)
    table = nn.Embedding(8000, 256).eval()
    ids = torch.randint(0, 8000, (1, 128), generator=_g())
    return [
        Bench("cat of 2 x 1x48x48x48", _Ops(lambda m, a, b: torch.cat((a, b), 1)), (x, y)),
        Bench("permute(0,2,3,1).contiguous() of 1x48x48x48",
              _Ops(lambda m, a: a.permute(0, 2, 3, 1).contiguous()), (x,)),
        Bench("pad 1 of 1x48x48x48", _Ops(lambda m, a: F.pad(a, (1, 1, 1, 1))), (x,)),
        Bench("embedding of 128 ids in 8000x256", _Ops(lambda m, a: m.parts[0](a), table),
              (ids,)),
    ]


CLASS_BENCHES: dict[str, Callable[[], list[Bench]]] = {
    "conv": _conv_benches,
    "depthwise_conv": _depthwise_benches,
    "matmul": _matmul_benches,
    "recurrent": _recurrent_benches,
    "attention": _attention_benches,
    "elementwise": _elementwise_benches,
    "norm": _norm_benches,
    "pooling": _pooling_benches,
    "data": _data_benches,
}
assert set(CLASS_BENCHES) == set(OP_CLASSES)


class _Repeat(nn.Module):
    """Runs ``fn`` ``times`` times, each on the previous result."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], times: int) -> None:
        super().__init__()
        self.fn = fn
        self.times = times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.times):
            x = self.fn(x)
        return x


TINY_CHAIN = 24


def overhead_benches() -> list[tuple[str, Bench]]:
    """Chains of one tiny operator kind each (a few dozen elements, nanoseconds of work),
    keyed by the operator class (or recurrent operator) whose fixed cost each measures: the
    cost of dispatching an operator, module call included, is all they measure. The
    recurrent runs are many steps of a 4-wide layer: their cost per step."""
    n = TINY_CHAIN

    def chain(make: Callable[[], nn.Module]) -> nn.Module:
        return nn.Sequential(*[make() for _ in range(n)]).eval()

    img, vec, seq = _randn(1, 4, 4, 4), _randn(1, 16), _randn(64, 1, 4)
    return [
        ("conv", Bench("conv2d 3x3 4->4 at 4x4",
                       chain(lambda: nn.Conv2d(4, 4, 3, padding=1)), (img,))),
        ("depthwise_conv", Bench("depthwise 3x3 at 4x4",
                                 chain(lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4)),
                                 (img,))),
        ("matmul", Bench("linear 16->16", chain(lambda: nn.Linear(16, 16)), (vec,))),
        ("attention", Bench("sdpa of 4 tokens x 4",
                            _Repeat(lambda x: F.scaled_dot_product_attention(x, x, x), n),
                            (_randn(1, 1, 4, 4),))),
        ("elementwise", Bench("relu", chain(nn.ReLU), (vec,))),
        ("elementwise", Bench("add", _Repeat(lambda x: x + x, n), (vec,))),
        ("norm", Bench("layer_norm", chain(lambda: nn.LayerNorm(16)), (vec,))),
        ("norm", Bench("batch_norm", chain(lambda: nn.BatchNorm2d(4)), (img,))),
        ("pooling", Bench("max_pool2d 3x3/1", chain(lambda: nn.MaxPool2d(3, 1, 1)), (img,))),
        ("data", Bench("cat", _Repeat(lambda x: torch.cat((x[:, :8], x[:, 8:]), 1), n),
                       (vec,))),
        ("aten.lstm", Bench("lstm 4->4, 64 steps", _FirstOutput(nn.LSTM(4, 4)), (seq,))),
        ("aten.gru", Bench("gru 4->4, 64 steps", _FirstOutput(nn.GRU(4, 4)), (seq,))),
    ]


def gemm(n: int) -> Callable[[], object]:
    a, b = _randn(n, n), _randn(n, n)
    return lambda: torch.mm(a, b)


def streaming_copy(nbytes: int) -> Callable[[], object]:
    src = torch.ones(nbytes // 4)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)
