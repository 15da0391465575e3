"""A calibration on a fake clock, for tests: ``calibrate()`` runs for real (every benchmark is
built and counted by the tracer, every figure derived and the file written) but nothing is
timed. :class:`FakeTimer` answers each benchmark with seconds chosen by hand, and the host's
cache, memory and CPU name are fixed, so every figure of the file is known in advance.

The fake machine, a fast accelerator:

* peak: a 2048x2048 GEMM does 2 x 2048^3 = 17,179,869,184 FLOPs; timed at 1.7179869184 ms:
  10 TFLOP/s = 1e13 FLOP/s.
* bandwidth: the largest cache is 32 MiB, so the copy is 4 x 32 MiB = 128 MiB (more than the
  64 MiB floor); it reads and writes 134,217,728 bytes, 268,435,456 bytes in all; timed at
  268.435456 us: 1 TB/s = 1e12 bytes/s.
* overhead per operator kind (``OVERHEAD_US``): each chain is timed at its per-operator
  overhead times the overheads it pays: 24 for the chains of 24 operators; 64 steps + 2 for
  the LSTM (nn.LSTM without a state creates h0 and c0 with two ``aten.zeros``), 64 + 1 for the
  GRU (h0). Overhead = (time - bare roofline time) / overheads paid, and the bare roofline
  term is negligible here: the largest per operator, a ``linear 16->16``, reads x (16) + W
  (256) + b (16) floats and writes 16: 304 x 4 = 1,216 bytes / 1e12 B/s = 1.216 ns (its
  2 x 256 + 16 = 528 FLOPs take 0.05 ns at 1e13). That is under half a unit of every digit
  the file and the log keep of an overhead of 10 to 60 us (5 ns in the file's fourth
  significant digit, 50 ns in the sources' 0.1 us, 5 ns in the log's 0.01 us).
* medians: the twelve kinds sorted are 10, 11, 12, 15, 15, 18, 20, 25, 30, 40, 44, 60 us:
  default = (18 + 20) / 2 = 19 us; elementwise = median(relu 10, add 12) = 11 us; norm =
  median(layer_norm 25, batch_norm 15) = 20 us; recurrent = median(lstm 11, gru 44) = 27.5 us.
* efficiency of the elementwise class, from its five cases on 1x48x48x48 = 110,592 floats
  (442,368 bytes a tensor). Each is memory-bound at 1e13 / 1e12 = 10 FLOP/byte (the most
  FLOPs per byte here is gelu's 552,960 / 884,736 = 0.625). Bare roofline time: relu, gelu,
  sigmoid read one tensor and write one: 884,736 B / 1e12 = 0.884736 us; add and mul read two:
  1,327,104 B = 1.327104 us. The roofline charges each case one elementwise overhead, 11 us,
  so a case timed at 11 us + bare / f has factor f: relu, add, mul 0.5 (11 + 2 x bare), gelu
  0.25 (11 + 4 x bare); sigmoid is timed at 11 us + bare / 2, twice as fast as the roofline,
  so its factor is clamped to 1. Geometric mean: (0.5^3 x 0.25 x 1)^(1/5) = (2^-5)^(1/5) = 0.5.
* every other class's case is timed at 1 us, less than the overhead the roofline charges its
  operators alone (at least 15 us): all of the time is overhead and the factor is 1.0.
* the bandwidth's timing reports 2 disturbed samples dropped and kept samples disturbed by
  0.3 cores: its source and the log say so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_flopbudget.calibration import calibrate as calibrate_module
from pytest_flopbudget.calibration.calibrate import calibrate as real_calibrate
from pytest_flopbudget.calibration.microbench import Bench
from pytest_flopbudget.calibration.timing import Timing
from pytest_flopbudget.devices.device import Device

CACHE_BYTES = 32 << 20  # 33,554,432
CACHE_TEXT = "/sys/devices/system/cpu/cpu0/cache/index3/size (L3 Unified, 32768 KiB)"
MEMORY_BYTES = 16 << 30  # 17,179,869,184
CPU = "Fake CPU @ 1.00GHz"

GEMM_S = 1.7179869184e-3
COPY_S = 268.435456e-6

#: per-operator overhead (us) and overheads paid, by chain
OVERHEAD_US: dict[str, tuple[float, int]] = {
    "conv2d 3x3 4->4 at 4x4": (20.0, 24),
    "depthwise 3x3 at 4x4": (60.0, 24),
    "linear 16->16": (15.0, 24),
    "sdpa of 4 tokens x 4": (40.0, 24),
    "relu": (10.0, 24),
    "add": (12.0, 24),
    "layer_norm": (25.0, 24),
    "batch_norm": (15.0, 24),
    "max_pool2d 3x3/1": (30.0, 24),
    "cat": (18.0, 24),
    "lstm 4->4, 64 steps": (11.0, 66),
    "gru 4->4, 64 steps": (44.0, 65),
}

#: the elementwise class's cases: 11 us of overhead + bare roofline time / factor
ELEMENTWISE_S = {
    "relu of 110k elements": 11e-6 + 2 * 0.884736e-6,  # 0.5
    "add of 2 x 110k elements": 11e-6 + 2 * 1.327104e-6,  # 0.5
    "mul of 2 x 110k elements": 11e-6 + 2 * 1.327104e-6,  # 0.5
    "gelu of 110k elements": 11e-6 + 4 * 0.884736e-6,  # 0.25
    "sigmoid of 110k elements": 11e-6 + 0.884736e-6 / 2,  # 2, clamped to 1
}
OTHER_CASE_S = 1e-6

SECONDS: dict[str, float] = {
    "gemm": GEMM_S,
    "streaming_copy": COPY_S,
    **{what: us * 1e-6 * paid for what, (us, paid) in OVERHEAD_US.items()},
    **ELEMENTWISE_S,
}

#: the device table the fake machine's calibration writes (its sources apart)
TABLE: dict[str, Any] = {
    "default_dtype": "fp32",
    "bandwidth": 1e12,
    "overhead": 19e-6,
    "overheads": {"aten.gru": 44e-6, "aten.lstm": 11e-6, "attention": 40e-6, "conv": 20e-6,
                  "data": 18e-6, "depthwise_conv": 60e-6, "elementwise": 11e-6,
                  "matmul": 15e-6, "norm": 20e-6, "pooling": 30e-6, "recurrent": 27.5e-6},
    "onchip_bytes": 33_554_432,
    "memory_bytes": 17_179_869_184,
    "peak_flops": {"fp32": 1e13},
    "efficiency": {"conv": 1.0, "depthwise_conv": 1.0, "matmul": 1.0, "recurrent": 1.0,
                   "attention": 1.0, "elementwise": 0.5, "norm": 1.0, "pooling": 1.0,
                   "data": 1.0},
}


def timed(fn: Callable[[], object]) -> str:
    """What ``fn`` runs: a benchmark's ``what``, or ``"gemm"`` / ``"streaming_copy"`` (the
    closures :mod:`~pytest_flopbudget.calibration.microbench` makes for them)."""
    bench = getattr(fn, "__self__", None)
    if isinstance(bench, Bench):
        return bench.what
    return fn.__qualname__.partition(".")[0]


class FakeTimer:
    """Times nothing: answers ``SECONDS[what is timed]`` (``OTHER_CASE_S`` for a class case
    not listed) as the median of ``repeats`` samples, and records every call as ``(what,
    repeats, warmup, min_sample_s)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int, float]] = []

    def __call__(self, fn: Callable[[], object], repeats: int, warmup: int = 2,
                 min_sample_s: float = 0.0) -> Timing:
        what = timed(fn)
        self.calls.append((what, repeats, warmup, min_sample_s))
        if what == "streaming_copy":
            return Timing(SECONDS[what], repeats, dropped=2, disturbed=0.3)
        return Timing(SECONDS.get(what, OTHER_CASE_S), repeats, dropped=0, disturbed=0.0)


def fake_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fix what the calibration reads of the host: cache, memory, CPU name."""
    monkeypatch.setattr(calibrate_module, "largest_cache", lambda: (CACHE_BYTES, CACHE_TEXT))
    monkeypatch.setattr(calibrate_module, "mem_total", lambda: MEMORY_BYTES)
    monkeypatch.setattr(calibrate_module, "cpu_model", lambda: CPU)


def fake_calibrate(path: Path | None = None, *, quick: bool = False,
                   log: Callable[[str], None] = print,
                   timer: FakeTimer | None = None) -> Device:
    """``calibrate()`` of the fake machine, on the fake clock."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        fake_host(monkeypatch)
        return real_calibrate(path, quick=quick, log=log,
                              timer=timer if timer is not None else FakeTimer())


def install(monkeypatch: pytest.MonkeyPatch, calls: list[dict[str, Any]] | None = None) -> None:
    """Replace ``calibrate()`` (where the CLI and ``--flop-calibrate`` look it up) by
    :func:`fake_calibrate`; each call's keyword arguments are appended to ``calls``."""

    @functools.wraps(real_calibrate)
    def stub(path: Path | None = None, **kwargs: Any) -> Device:
        if calls is not None:
            calls.append({"path": path, **kwargs})
        return fake_calibrate(path, **kwargs)

    monkeypatch.setattr(calibrate_module, "calibrate", stub)
