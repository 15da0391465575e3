"""Measure this machine and describe it as a device called ``host``.

``calibrate()`` runs short microbenchmarks with PyTorch on the CPU, at the default torch
thread count, under ``torch.inference_mode``:

* ``peak_flops.fp32``: FLOP/s of a large square fp32 GEMM (``2 n^3`` FLOPs);
* ``bandwidth``: bytes/s of a streaming copy of a buffer four times the largest cache (bytes
  read plus bytes written, STREAM's convention for a copy);
* ``overhead``: seconds per counted operator of chains of tiny operators (a few dozen
  elements, so arithmetic and traffic are negligible), one chain per operator kind (conv,
  depthwise conv, linear, attention, relu, add, layer norm, batch norm, max pool, cat), the
  median over the kinds: what eager PyTorch typically spends dispatching one operator;
* ``efficiency.<class>``: for every operator class, a few representative cases of ordinary
  sizes (a CNN's feature pyramid for convolutions, common token counts for matrix products,
  LSTM and GRU cells...). Their operators are counted by this package's own tracer and
  priced on the bare roofline (the measured peak and bandwidth, efficiency 1), so a factor
  is exactly the gap between what :mod:`pytest_flopbudget.roofline` would predict and what
  runs: ``roofline time / (measured time - overhead paid)``, clamped to ``(0, 1]`` for each
  case; the class's factor is their geometric mean (every case counts the same);
* ``onchip_bytes``: the largest CPU cache (``/sys/devices/system/cpu/cpu0/cache``);
* ``memory_bytes``: ``MemTotal`` in ``/proc/meminfo``.

Every figure is written with its source (what was run, the median of how many repeats, the
CPU, the torch version, the thread count and the date). Nothing here is fitted to any model a
user will predict: the microbenchmarks are fixed.

The result is written as TOML in the schema of ``devices.toml`` (``[devices.host]``), by
default to ``.flopbudget/host.toml``; :func:`load_host` reads it back for
``Catalog.with_tables``.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .costs import OP_CLASSES
from .devices import Catalog, Device, DeviceError
from .files import atomic_write

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HOST = "host"
DEFAULT_PATH = Path(".flopbudget") / "host.toml"
CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")
MEMINFO = Path("/proc/meminfo")
CPUINFO = Path("/proc/cpuinfo")
FALLBACK_ONCHIP = 1 << 20  # 1 MiB when no cache size can be read

GEMM_N = 2048


# --- pure computations (no timing) -------------------------------------------------------
def gemm_flops(n: int, m: int | None = None, k: int | None = None) -> int:
    """FLOPs of an ``(n x k) @ (k x m)`` matrix product: ``2 n m k`` (``2 n^3`` when square)."""
    m = n if m is None else m
    k = n if k is None else k
    return 2 * n * m * k


def rate(amount: float, seconds: float) -> float:
    """``amount`` per second (FLOP/s from FLOPs, bytes/s from bytes)."""
    if seconds <= 0 or not math.isfinite(seconds):
        raise ValueError(f"seconds must be positive and finite, got {seconds!r}")
    return amount / seconds


def bandwidth_from(nbytes: float, seconds: float) -> float:
    """Bandwidth in bytes/s of moving ``nbytes`` (read + written) in ``seconds``."""
    return rate(nbytes, seconds)


def copy_bytes(nbytes: int) -> int:
    """Bytes a copy of an ``nbytes`` buffer moves: it reads ``nbytes`` and writes ``nbytes``."""
    return 2 * nbytes


def roofline_seconds(flops: float, nbytes: float, peak: float, bandwidth: float) -> float:
    """Bare roofline time in seconds: ``max(flops / peak, nbytes / bandwidth)`` (FLOP/s,
    bytes/s)."""
    return max(flops / peak, nbytes / bandwidth)


def efficiency_from(roofline_s: float, measured_s: float, overhead_s: float = 0.0) -> float:
    """Fraction of the roofline attained: ``roofline_s / (measured_s - overhead_s)``, clamped
    to ``(0, 1]``.

    ``overhead_s`` is the fixed time the roofline model adds on top (per-operator overhead
    times operators/steps), so the factor only covers what the roofline does not. When the
    overhead alone accounts for the measured time, nothing is left to explain: 1.0.
    """
    if roofline_s <= 0:
        raise ValueError(f"roofline time must be positive, got {roofline_s!r}")
    if measured_s <= 0:
        raise ValueError(f"measured time must be positive, got {measured_s!r}")
    left = measured_s - max(overhead_s, 0.0)
    if left <= 0:
        return 1.0
    return min(1.0, roofline_s / left)


def geometric_mean(factors: Sequence[float]) -> float:
    """Geometric mean of positive factors: one efficiency for a class from its cases, each
    case counting the same however long it runs (``[0.25, 1.0]`` -> 0.5)."""
    if not factors or any(f <= 0 for f in factors):
        raise ValueError(f"need positive factors, got {list(factors)!r}")
    return math.exp(sum(math.log(f) for f in factors) / len(factors))


def overhead_from(measured_s: float, roofline_s: float, operators: int) -> float:
    """Seconds per operator of a benchmark whose arithmetic is negligible: what its measured
    time exceeds its bare roofline time by, per operator (never below 0)."""
    if operators <= 0:
        raise ValueError(f"operators must be positive, got {operators!r}")
    return max(0.0, (measured_s - roofline_s) / operators)


def parse_size(text: str) -> int:
    """Bytes of a sysfs size such as ``"32K"``, ``"32768K"``, ``"8M"`` or ``"1048576"``."""
    text = text.strip()
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text and text[-1].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def largest_cache(cache_dir: Path = CACHE_DIR) -> tuple[int, str] | None:
    """``(bytes, description)`` of the largest cache level under ``cache_dir`` (sysfs), or
    ``None`` when none can be read."""
    best: tuple[int, str] | None = None
    for index in sorted(cache_dir.glob("index*")):
        try:
            size = parse_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        level = _read(index / "level")
        kind = _read(index / "type")
        text = f"{index / 'size'} (L{level} {kind}, {size // 1024} KiB)"
        if best is None or size > best[0]:
            best = (size, text)
    return best


def mem_total(meminfo: Path = MEMINFO) -> int | None:
    """``MemTotal`` from ``/proc/meminfo`` in bytes, or ``None``."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                value, *unit = line.split(":", 1)[1].split()
                scale = 1024 if unit and unit[0].lower() == "kb" else 1
                return int(value) * scale
    except (OSError, ValueError):
        return None
    return None


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return "?"


# --- TOML ---------------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a valid TOML basic string (ASCII, \uXXXX escapes)
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else json.dumps(key)


def device_toml(name: str, table: Mapping[str, Any], header: str = "") -> str:
    """``table`` as TOML under ``[devices.NAME]``, sub-tables as ``[devices.NAME.KEY]``."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    prefix = f"devices.{_toml_key(name)}"
    lines.append(f"[{prefix}]")
    subtables = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            subtables.append((key, value))
        elif value is not None:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, sub in subtables:
        lines.append("")
        lines.append(f"[{prefix}.{_toml_key(key)}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sub.items())
    return "\n".join(lines) + "\n"


def load_host(path: Path) -> dict[str, dict[str, Any]]:
    """Read a calibration file back: ``{"host": table}``, ready for ``Catalog.with_tables``.

    Raises ``DeviceError`` naming the file when it holds no ``[devices.host]`` table, or is
    not valid TOML.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise DeviceError(f"{path}: not valid TOML: {exc}") from None
    table = data.get("devices", {}).get(HOST)
    if not isinstance(table, dict):
        raise DeviceError(f"{path}: no [devices.{HOST}] table; run "
                          f"'python -m pytest_flopbudget calibrate' to write one")
    return {HOST: table}


# --- timing -------------------------------------------------------------------------------
def run_delay() -> float | None:
    """Seconds the threads of this process have spent runnable but waiting for a CPU
    (``/proc/self/task/*/schedstat``, Linux), or ``None`` where the system does not say.

    It is how a timing tells that other processes took its cores: on a 2-core machine a
    second busy process makes a 2-thread torch operator wait for its descheduled thread and
    timings grow tenfold.
    """
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    total = 0
    seen = False
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as fh:
                total += int(fh.read().split()[1])
            seen = True
        except (OSError, ValueError, IndexError):
            continue  # a thread that has just ended
    return total / 1e9 if seen else None


def _ticks() -> tuple[int, int] | None:
    """``(busy ticks of the whole machine, ticks of this process)`` from ``/proc/stat`` and
    ``/proc/self/stat`` (Linux), or ``None``."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
        # cpu user nice system idle iowait irq softirq steal: steal is time the VM was not run
        t = [int(v) for v in fields[1:9]]
        with open("/proc/self/stat") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
        return t[0] + t[1] + t[2] + t[5] + t[6] + t[7], int(rest[11]) + int(rest[12])
    except (OSError, ValueError, IndexError):
        return None


_TICK = 1.0 / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)


def contention(delay_s: float | None, wall_s: float) -> float:
    """Fraction of ``wall_s`` this process's threads waited for a CPU (0 when unknown)."""
    if delay_s is None or wall_s <= 0:
        return 0.0
    return max(0.0, delay_s / wall_s)


#: A sample during which this process's threads waited for a CPU for more than this fraction
#: of its time was disturbed by another process.
CONTENDED = 0.05
#: So was a sample during which other processes kept more than this many cores busy on
#: average (a math library may then run on fewer threads without ever waiting).
BUSY_CORES = 0.25


@dataclass(frozen=True)
class Timing:
    """``seconds``: median seconds per call over the ``kept`` samples; ``dropped``: samples
    left out because other processes disturbed them; ``disturbed``: how disturbed the worst
    kept sample was, when it was (the larger of the fraction of its time this process
    waited for a CPU and the cores other processes used), else 0."""

    seconds: float
    kept: int
    dropped: int
    disturbed: float


class Timer:
    """Median timing that drops the samples other processes disturbed.

    Around each sample it reads the run-queue delay of this process's threads
    (:func:`run_delay`) and the CPU time the rest of the machine used (``/proc/stat``); a
    sample during which this process waited for a CPU (more than ``CONTENDED`` of its time)
    or other processes kept more than ``BUSY_CORES`` cores busy is dropped and taken again.
    Extra samples and the pauses between them are paid from ``patience_s`` (seconds, shared
    by every call): once it is spent, the least disturbed samples are used and
    ``Timing.disturbed`` says how disturbed they were.
    """

    def __init__(self, patience_s: float = 0.0) -> None:
        self.patience_s = patience_s

    def __call__(self, fn: Callable[[], object], repeats: int, warmup: int = 2,
                 min_sample_s: float = 0.0) -> Timing:
        for _ in range(warmup):
            fn()
        inner = 1
        if min_sample_s > 0:
            start = time.perf_counter()
            fn()
            once = max(time.perf_counter() - start, 1e-7)
            inner = max(1, math.ceil(min_sample_s / once))
        samples: list[tuple[bool, float, float]] = []  # (disturbed, how much, seconds/call)
        clean = 0
        enabled = gc.isenabled()
        gc.disable()
        try:
            while clean < repeats:
                ticks, before = _ticks(), run_delay()
                start = time.perf_counter()
                for _ in range(inner):
                    fn()
                wall = time.perf_counter() - start
                after, ticks_after = run_delay(), _ticks()
                waited = contention(None if before is None or after is None
                                    else after - before, wall)
                others = 0.0
                if ticks is not None and ticks_after is not None:
                    other_ticks = (ticks_after[0] - ticks[0]) - (ticks_after[1] - ticks[1])
                    others = max(0, other_ticks) * _TICK / wall
                bad = waited > CONTENDED or others > BUSY_CORES
                samples.append((bad, max(waited, others), wall / inner))
                if not bad:
                    clean += 1
                    continue
                self.patience_s -= wall
                if self.patience_s <= 0 and len(samples) >= repeats:
                    break
                time.sleep(0.05)  # let the other process have the CPU for a moment
                self.patience_s -= 0.05
        finally:
            if enabled:
                gc.enable()
        kept = sorted(samples)[:max(repeats, clean)]
        worst = max((how for bad, how, _ in kept if bad), default=0.0)
        return Timing(statistics.median(t for _, _, t in kept), len(kept),
                      len(samples) - len(kept), worst)


def time_call(fn: Callable[[], object], repeats: int, warmup: int = 2,
              min_sample_s: float = 0.0) -> float:
    """Median seconds of one call of ``fn`` over ``repeats`` samples after ``warmup`` calls,
    dropping samples other processes disturbed (see :class:`Timer`). Each sample runs
    ``fn`` as many times as it takes to last ``min_sample_s`` (at least once)."""
    return Timer()(fn, repeats, warmup, min_sample_s).seconds


# --- the microbenchmarks ------------------------------------------------------------------
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


def _overhead_benches() -> list[tuple[str, Bench]]:
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


def overheads_by_key(measured: Sequence[tuple[str, float]]) -> tuple[float, dict[str, float]]:
    """``(default, {key: seconds})`` from per-kind overheads: the median per key (class or
    recurrent operator), the ``recurrent`` class as the median of the recurrent operators,
    and the default as the median over all kinds."""
    by_key: dict[str, list[float]] = {}
    for key, seconds in measured:
        by_key.setdefault(key, []).append(seconds)
    table = {k: statistics.median(v) for k, v in by_key.items()}
    recurrent = [v for k, v in table.items() if k.startswith("aten.")]
    if recurrent:
        table["recurrent"] = statistics.median(recurrent)
    return statistics.median(s for _, s in measured), table


def _gemm(n: int) -> Callable[[], object]:
    a, b = _randn(n, n), _randn(n, n)
    return lambda: torch.mm(a, b)


def _copy(nbytes: int) -> Callable[[], object]:
    src = torch.ones(nbytes // 4)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


# --- calibration --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    gemm_repeats: int
    copy_repeats: int
    repeats: int
    min_sample_s: float
    warmup: int
    patience_s: float  # seconds of extra samples when other processes disturb the timing

    @classmethod
    def of(cls, quick: bool) -> _Plan:
        if quick:
            return cls(gemm_repeats=3, copy_repeats=3, repeats=3, min_sample_s=0.003,
                       warmup=1, patience_s=2.0)
        return cls(gemm_repeats=7, copy_repeats=11, repeats=11, min_sample_s=0.03,
                   warmup=3, patience_s=40.0)


def _counted(bench: Bench) -> list[Any]:
    from .profile import profile

    return [r for r in profile(bench.module, *bench.inputs, trace="fake").records
            if r.flops or r.read.bytes() or r.written.bytes()]


def _bare_seconds(records: Sequence[Any], peak: float, bandwidth: float,
                  onchip: int) -> float:
    from .roofline import op_time

    bare = Device("bare", peak, bandwidth, onchip_bytes=onchip)
    return sum(op_time(r, bare, "fp32").seconds for r in records)


def _paid(records: Sequence[Any]) -> int:
    """Operator overheads the roofline charges for ``records`` (one per recurrent step)."""
    return sum(r.steps for r in records)


def _check_destination(path: Path) -> None:
    for parent in (path.parent, *path.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{parent} is a file, not a directory")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create directory {path.parent}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give a file name such as "
                                f"{path / 'host.toml'}")
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(f"cannot write to {path.parent}")


def calibrate(path: Path | None = None, *, quick: bool = False,
              log: Callable[[str], None] = print) -> Device:
    """Measure this machine, write it as device ``host`` to ``path`` and return it.

    ``path``: the TOML file to write (default ``.flopbudget/host.toml`` under the current
    directory), replaced atomically. ``quick``: fewer and shorter samples (a few seconds, for
    tests; the figures are noisier); the full run takes under two minutes. ``log`` receives
    one line per figure as it is measured.

    Figures (units): ``peak_flops.fp32`` FLOP/s, ``bandwidth`` bytes/s, ``overhead`` seconds
    per operator, ``efficiency`` fractions in ``(0, 1]``, ``onchip_bytes`` and
    ``memory_bytes`` bytes. Samples disturbed by other processes are dropped and taken
    again; a figure that could only be measured disturbed says so in its source. Raises
    ``OSError`` before measuring anything when ``path`` cannot be written.
    """
    path = Path(DEFAULT_PATH if path is None else path)
    _check_destination(path)
    plan = _Plan.of(quick)
    started = time.perf_counter()
    threads = torch.get_num_threads()
    cpu = cpu_model()
    today = _dt.date.today().isoformat()
    context = f"{cpu}, torch {torch.__version__}, {threads} threads, {today}"
    timer = Timer(plan.patience_s)
    disturbed: list[str] = []

    def source(figure: str, what: str, timings: Sequence[Timing]) -> str:
        kept = min(t.kept for t in timings)
        dropped = sum(t.dropped for t in timings)
        worst = max(t.disturbed for t in timings)
        note = f", {dropped} samples disturbed by other processes dropped" if dropped else ""
        if worst:
            note += (f", DISTURBED: other processes were busy during some samples kept "
                     f"(up to {worst:.2f} cores)")
            disturbed.append(figure)
        return f"measured: {what}, median of {kept}{note}, {context}"

    sources: dict[str, str] = {}
    cache = largest_cache()
    if cache is None:
        onchip = FALLBACK_ONCHIP
        sources["onchip_bytes"] = (f"derived: no cache size readable under {CACHE_DIR}; "
                                   f"assumed 1 MiB")
    else:
        onchip = cache[0]
        sources["onchip_bytes"] = f"read from {cache[1]}, the largest cache level"
    memory = mem_total()
    if memory is not None:
        sources["memory_bytes"] = f"read from {MEMINFO} (MemTotal)"

    with torch.inference_mode():
        # peak: a large square GEMM
        timing = timer(_gemm(GEMM_N), plan.gemm_repeats, warmup=min(plan.warmup, 2))
        peak = rate(gemm_flops(GEMM_N), timing.seconds)
        sources["peak_flops"] = source("peak_flops", f"{GEMM_N}x{GEMM_N} fp32 GEMM (torch.mm, "
                                       f"2n^3 FLOPs)", [timing])
        log(f"peak fp32      {peak / 1e9:10.1f} GFLOP/s   ({GEMM_N}x{GEMM_N} GEMM)")

        # bandwidth: a streaming copy four times the largest cache (at least 64 MiB)
        nbytes = max(4 * onchip, 64 << 20)
        timing = timer(_copy(nbytes), plan.copy_repeats, warmup=min(plan.warmup, 2))
        bandwidth = bandwidth_from(copy_bytes(nbytes), timing.seconds)
        what = f"streaming copy of {nbytes >> 20} MiB fp32 (Tensor.copy_, read + write bytes)"
        sources["bandwidth"] = source("bandwidth", what, [timing])
        log(f"bandwidth      {bandwidth / 1e9:10.1f} GB/s      ({nbytes >> 20} MiB copy)")

    # overhead: chains of tiny operators, counted by the tracer (which runs outside inference
    # mode: it enters its own); the median over operator kinds
    per_kind: list[tuple[str, float, str]] = []
    timings: list[Timing] = []
    for key, tiny in _overhead_benches():
        records = _counted(tiny)
        with torch.inference_mode():
            timing = timer(lambda tiny=tiny: tiny.module(*tiny.inputs), plan.repeats,
                           warmup=plan.warmup, min_sample_s=plan.min_sample_s)
        timings.append(timing)
        bare = _bare_seconds(records, peak, bandwidth, onchip)
        per_kind.append((key, overhead_from(timing.seconds, bare, _paid(records)), tiny.what))
    overhead, overheads = overheads_by_key([(k, t) for k, t, _ in per_kind])
    overheads = {k: float(f"{v:.4g}") for k, v in sorted(overheads.items())}
    kinds = ", ".join(f"{what} {t * 1e6:.1f} us" for _, t, what in per_kind)
    what = (f"(time - bare roofline) per operator (per step for recurrent operators) of "
            f"chains of {TINY_CHAIN} tiny operators ({kinds})")
    sources["overhead"] = source("overhead", f"median over kinds of {what}", timings)
    for key in overheads:
        sources[f"overheads.{key}"] = source(f"overheads.{key}", f"median of its kinds of "
                                             f"{what}", timings)
    log(f"overhead       {overhead * 1e6:10.2f} us/op      (median of {kinds})")
    timed = Device("timed", peak, bandwidth, overhead=overhead, overheads=overheads)

    efficiency: dict[str, float] = {}
    for cls in OP_CLASSES:
        benches = CLASS_BENCHES[cls]()
        factors: list[float] = []
        timings = []
        for bench in benches:
            records = _counted(bench)
            mine = [r for r in records if r.op_class == cls]
            if not mine:
                raise RuntimeError(f"calibration benchmark {bench.what!r} ran no {cls} "
                                   f"operator (it ran {sorted({r.op for r in records})})")
            others = [r for r in records if r.op_class != cls]
            with torch.inference_mode():
                timing = timer(lambda bench=bench: bench.module(*bench.inputs), plan.repeats,
                               warmup=plan.warmup, min_sample_s=plan.min_sample_s)
            timings.append(timing)
            # what the roofline charges besides this class's own time: the per-operator
            # overheads (per step for recurrent operators) and any operator of another class
            charged = sum(timed.overhead_for(r.op, r.op_class) * r.steps for r in records) \
                + _bare_seconds(others, peak, bandwidth, onchip)
            factors.append(efficiency_from(_bare_seconds(mine, peak, bandwidth, onchip),
                                           timing.seconds, charged))
        factor = geometric_mean(factors)
        efficiency[cls] = max(round(factor, 4), 1e-4)
        sources[f"efficiency.{cls}"] = source(
            f"efficiency.{cls}", "geometric mean over " + "; ".join(b.what for b in benches)
            + " of bare roofline time / (time - overhead x operators)", timings)
        log(f"efficiency     {cls:<15} {efficiency[cls]:.3f}   "
            f"({len(factors)} cases, {min(factors):.3f} to {max(factors):.3f})")

    table: dict[str, Any] = {
        "description": f"This machine ({cpu}, {threads} torch threads), calibrated {today} "
                       f"by 'python -m pytest_flopbudget calibrate'",
        "default_dtype": "fp32",
        "bandwidth": float(f"{bandwidth:.4g}"),
        "overhead": float(f"{overhead:.4g}"),
        "overheads": overheads,
        "onchip_bytes": int(onchip),
    }
    if memory is not None:
        table["memory_bytes"] = int(memory)
    table["peak_flops"] = {"fp32": float(f"{peak:.4g}")}
    table["efficiency"] = efficiency
    table["sources"] = {k: sources[k] for k in (
        "peak_flops", "bandwidth", "overhead", *(f"overheads.{k}" for k in overheads),
        *(f"efficiency.{c}" for c in OP_CLASSES),
        "onchip_bytes", "memory_bytes") if k in sources}
    elapsed = time.perf_counter() - started
    header = (f"Written by 'python -m pytest_flopbudget calibrate{' --quick' if quick else ''}'"
              f" in {elapsed:.1f} s.\nEvery figure is measured on this machine; see "
              f"[devices.{HOST}.sources].")
    text = device_toml(HOST, table, header)
    device = Catalog({}, {}).with_tables({HOST: tomllib.loads(text)["devices"][HOST]},
                                         str(path)).get(HOST)
    atomic_write(path, text)
    if disturbed:
        log(f"warning: other processes kept this machine busy while measuring "
            f"{', '.join(disturbed)}; those figures are pessimistic (their sources say so). "
            f"Calibrate again on a quiet machine.")
    log(f"wrote {path} in {elapsed:.1f} s")
    return device


__all__ = [
    "DEFAULT_PATH",
    "HOST",
    "Timer",
    "Timing",
    "bandwidth_from",
    "calibrate",
    "contention",
    "copy_bytes",
    "device_toml",
    "efficiency_from",
    "gemm_flops",
    "geometric_mean",
    "largest_cache",
    "load_host",
    "mem_total",
    "overhead_from",
    "overheads_by_key",
    "parse_size",
    "rate",
    "roofline_seconds",
    "run_delay",
    "time_call",
]
