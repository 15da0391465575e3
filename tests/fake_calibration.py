"""A calibration on a fake clock, for tests: ``calibrate()`` runs for real (the rows are built
and counted by the tracer, every figure is derived and fitted, the file written) but nothing
is timed. :class:`FakeTimer` answers each structural probe with seconds chosen by hand and
each row with what the roofline predicts for it on :data:`TRUTH`, a machine whose free
figures are chosen by hand; the calibration must find them again. The host's cache, memory
and CPU name are fixed.

The fake machine's structural figures, each from its probes:

* peak: a 2048x2048 GEMM does 2 x 2048^3 = 17,179,869,184 FLOPs; timed at 1.7179869184 ms:
  1e13 FLOP/s.
* DRAM bandwidth: the largest cache is 32 MiB, so the buffers are 4 x 32 MiB = 128 MiB
  (134,217,728 bytes). The copy moves 2 x 128 MiB at 1e11 B/s (2.68435456 ms), the add 3 x
  128 MiB at 1.25e11 B/s (3.221225472 ms), the sum 1 x 128 MiB at 8e10 B/s (1.6777216 ms):
  the add is the fastest, 1.25e11 B/s.
* cache bandwidth: buffers of 32 MiB / 16 = 2 MiB (2,097,152 bytes): copy 2 x 2 MiB at 1e12
  B/s (4.194304 us), add 3 x 2 MiB at 8e11 (7.86432 us), sum at 5e11 (4.194304 us): the copy,
  1e12 B/s.
* cache capacity: copies of 1, 2, 4, 8, 16 and 32 MiB buffers (footprints 2 to 64 MiB) at
  1e12, 1e12, 1e12, 9e11, 3e11 and 1.2e11 B/s. The cut is the geometric mean of 1e12 and
  1.25e11: 3.5355e11 B/s. 8 MiB (16 MiB footprint) is above it, 16 MiB is not: 16 MiB.
* fresh outputs: clones of 8 and 16 MiB take twice their copies (a cache miss, not a page
  fault: under the 3x ratio), clones of 32 and 64 MiB take their copies plus the buffer at
  4e9 B/s (32 MiB: 559.2405 us + 8.388608 ms, 16x): from 32 MiB, at 64 MiB / 16.777216 ms =
  4e9 B/s. The residual chains write at most 1% of their bytes to fresh pages
  (:data:`SHARES`, under the 2% that counts): no fresh-output share.
* lowering: the column matrix of the lowered conv3d 8->1 at 16x32x32 is 8 x 27 rows by
  16 x 32 x 32 positions, 3,538,944 floats, 14,155,776 bytes; timed at 2.8311552 ms: 5e9 B/s.
* half rows: the linear of 16 rows takes 24 us, the one of 1024 rows 1032 us; q = 24 / 1032,
  (1024 q - 16) / (1 - q) = (24,576 - 16,512) / 1,008 = 8 rows.
* cold weights: the linear of 16 rows on one weight matrix takes 24 us. Its copies of
  2,359,296 bytes fill 1/8, 1/4, 3/8, 1/2, 3/4 and all of the 32 MiB cache in 2, 4, 5, 7,
  11 and 14 copies (1.78, 3.56, 5.33, 7.11, 10.67, 14.22 rounded; at least 2), and 4 x
  32 MiB in 56. Cycling through them takes 24, 31.68, 47.04, 77.76, 100.8, 100.8 and
  100.8 us: shares 0, 0.1, 0.3, 0.7, 1, 1 and 1 of the last one's 76.8 us more. A call
  passes 2,359,296 bytes of weights and 16 x 768 x 4 = 49,152 of output through the cache,
  2,408,448 in all: half is reached between 5 copies (12,042,240 bytes, 0.3) and 7
  (16,859,136, 0.7): 12,042,240 + 0.2 / 0.4 x 4,816,896 = 14,450,688 bytes. The cycles all
  from memory, from 1.5 x 14,450,688 = 21,676,032 bytes (11, 14 and 56 copies), take a
  median 100.8 us: 76.8 us more over 768 weight rows, 0.1 us per row.

The rows (:data:`ROWS`, a few of the calibration's) are priced on :data:`TRUTH`: those
structural figures with the free figures of :data:`FREE_TRUTH`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from pytest_flopbudget.calibration import calibrate as calibrate_module
from pytest_flopbudget.calibration.calibrate import run_calibration
from pytest_flopbudget.calibration.microbench import Bench, rows
from pytest_flopbudget.calibration.structure import Probe
from pytest_flopbudget.calibration.timing import Timing
from pytest_flopbudget.counting.profile import profile
from pytest_flopbudget.devices.device import Device

MiB = 1 << 20
CACHE_BYTES = 32 * MiB
CACHE_TEXT = "/sys/devices/system/cpu/cpu0/cache/index3/size (L3 Unified, 32768 KiB)"
MEMORY_BYTES = 16 << 30
CPU = "Fake CPU @ 1.00GHz"


def _copy(buffer: int, rate: float) -> float:
    return 2 * buffer / rate


PROBE_S: dict[str, float] = {
    "gemm 2048": 1.7179869184e-3,
    "copy 128 MiB": 2.68435456e-3, "add 128 MiB": 3.221225472e-3, "sum 128 MiB": 1.6777216e-3,
    "copy 2 MiB": 4.194304e-6, "add 2 MiB": 7.86432e-6, "sum 2 MiB": 4.194304e-6,
    "copy 1 MiB": _copy(MiB, 1e12), "copy 4 MiB": _copy(4 * MiB, 1e12),
    "copy 8 MiB": _copy(8 * MiB, 9e11), "copy 16 MiB": _copy(16 * MiB, 3e11),
    "copy 32 MiB": _copy(32 * MiB, 1.2e11), "copy 64 MiB": _copy(64 * MiB, 1.1e11),
}
PROBE_S["clone 8 MiB"] = 2 * PROBE_S["copy 8 MiB"]
PROBE_S["clone 16 MiB"] = 2 * PROBE_S["copy 16 MiB"]
PROBE_S["clone 32 MiB"] = PROBE_S["copy 32 MiB"] + 32 * MiB / 4e9
PROBE_S["clone 64 MiB"] = PROBE_S["copy 64 MiB"] + 64 * MiB / 4e9
PROBE_S["lowered conv3d 8->1 at 16x32x32"] = 2.8311552e-3
PROBE_S["linear 16 rows x 768 -> 768"] = 24e-6
PROBE_S["linear 1024 rows x 768 -> 768"] = 1032e-6
for _copies, _seconds in ((2, 24e-6), (4, 31.68e-6), (5, 47.04e-6), (7, 77.76e-6),
                          (11, 100.8e-6), (14, 100.8e-6), (56, 100.8e-6)):
    PROBE_S[f"linear 16 rows x 768 -> 768, weights cycled over {_copies} copies "
            f"({_copies * 2.25:g} MiB)"] = _seconds
#: What the fake residual chains write to fresh pages: (output bytes, share).
SHARES = [(4 * MiB, 0.0), (8 * MiB, 0.005), (16 * MiB, 0.01)]

#: The structural figures those probes give.
STRUCTURE = {"peak": 1e13, "bandwidth": 1.25e11, "onchip_bandwidth": 1e12,
             "onchip_bytes": 16 * MiB, "fresh_output_bytes": 32 * MiB,
             "fresh_output_bandwidth": 4e9, "lowering_bandwidth": 5e9, "half_rows": 8.0,
             "cold_weight_row_seconds": 1e-7, "cold_weight_bytes": 14_450_688}

#: The rows of the fake calibration: two of each figure's family, and tiny chains. Of these
#: PyTorch lowers only the tiny 3x3 convolutions (on 2 threads): a lowered row's time does
#: not scale with the free figures. The 3x3 and 5x5 convolutions, the tiny 5x5 ones too, run
#: on its oneDNN path (``Work.runs_as``), which pays an overhead of its own; the 1x1 ones run
#: there too but on oneDNN's 1x1 kernel, unmarked, and pay the ``conv`` overhead. The 5x5
#: ones are of kind ``conv2d``, the large one pins its ceiling.
ROW_NAMES = (
    "conv 3x3 64->64 at 24x24", "conv 3x3 32->32 at 48x48",
    "conv 1x1 32->64 at 48x48", "conv 1x1 64->128 at 24x24", "conv 5x5 48->48 at 20x20",
    "relu of 256 KiB", "relu of 24 MiB", "gelu of 256 KiB", "gelu of 24 MiB",
    "tiny conv 3x3 4->4 at 4x4", "tiny conv 5x5 4->4 at 4x4", "tiny relu", "tiny add",
    "tiny gelu",
)

#: The fake machine's free figures, which the calibration must find.
FREE_TRUTH: dict[str, float] = {
    "compute_efficiency.conv3x3": 0.5,
    "compute_efficiency.pointwise_conv": 0.25,
    "compute_efficiency.conv2d": 0.4,
    "compute_efficiency.aten.gelu": 0.02,
    "compute_efficiency.arithmetic": 0.005,
    "efficiency.arithmetic": 0.8,
    "efficiency.transcendental": 0.9,
    "overheads.conv": 10e-6,
    "overheads.aten.mkldnn_convolution": 60e-6,
    "overheads.elementwise": 2e-6,
    "overheads.aten.gelu": 9e-6,
}


def _truth() -> Device:
    tables: dict[str, dict[str, float]] = {"efficiency": {}, "compute_efficiency": {},
                                           "overheads": {}}
    for figure, value in FREE_TRUTH.items():
        group, _, key = figure.partition(".")
        tables[group][key] = value
    return Device("truth", {"fp32": 1e13}, 1.25e11, onchip_bytes=16 * MiB,
                  onchip_bandwidth=1e12, fresh_output_bytes=32 * MiB,
                  fresh_output_bandwidth=4e9, lowering_bandwidth=5e9, half_rows=8.0,
                  cold_weight_row_seconds=1e-7, cold_weight_bytes=14_450_688,
                  **tables)  # type: ignore[arg-type]


#: The fake machine: :data:`STRUCTURE` with :data:`FREE_TRUTH`.
TRUTH = _truth()


@functools.cache
def benches() -> tuple[Bench, ...]:
    """The rows :data:`ROW_NAMES` names, as the calibration builds them."""
    by_name = {b.what: b for b in rows()}
    return tuple(by_name[name] for name in ROW_NAMES)


@contextlib.contextmanager
def two_threads() -> Iterator[None]:
    """PyTorch on 2 threads: its choice of convolution backend depends on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.cache
def _profiles() -> dict[str, Any]:
    with two_threads():
        return {b.what: profile(b.module, *b.inputs, trace="fake") for b in benches()}


def row_seconds(what: str, device: Device = TRUTH) -> float:
    """What the fake clock answers for a row: its roofline time on ``device``."""
    return profile_of(what).latency(device).seconds


def profile_of(what: str) -> Any:
    return _profiles()[what]


def timed(fn: Callable[[], object]) -> str:
    """What ``fn`` runs: a probe's or a row's ``what`` (``fn`` is its bound ``run``)."""
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, (Bench, Probe)):
        return owner.what
    raise AssertionError(f"the fake timer was asked to time {fn!r}")


class FakeTimer:
    """Times nothing: a probe takes :data:`PROBE_S`, a row its time on :data:`TRUTH` times the
    pass's factor (``factors[pass]``, the last one repeating; a pass starts at each timing of
    ``gemm 2048``); with ``probes``, the probes too (a machine slower as a whole). Every call
    is recorded as ``(what, repeats, warmup, min_sample_s)``; ``disturbed`` names rows
    reported as disturbed."""

    def __init__(self, factors: Sequence[float] = (1.0,),
                 disturbed: Sequence[str] = (), probes: bool = False) -> None:
        self.factors = list(factors)
        self.disturbed = set(disturbed)
        self.probes = probes
        self.calls: list[tuple[str, int, int, float]] = []
        self.passes = 0

    def __call__(self, fn: Callable[[], object], repeats: int, warmup: int = 2,
                 min_sample_s: float = 0.0) -> Timing:
        what = timed(fn)
        self.calls.append((what, repeats, warmup, min_sample_s))
        if what == "gemm 2048":
            self.passes += 1
        factor = self.factors[min(self.passes, len(self.factors)) - 1]
        if what in PROBE_S:
            return Timing(PROBE_S[what] * (factor if self.probes else 1.0), repeats, 0, 0.0)
        worst = 0.4 if what in self.disturbed else 0.0
        return Timing(row_seconds(what) * factor, repeats, 2 if worst else 0, worst)


def fake_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fix what the calibration reads of the host: cache, memory, CPU name, the page faults
    of its residual chains (:data:`SHARES`)."""
    monkeypatch.setattr(calibrate_module, "largest_cache", lambda: (CACHE_BYTES, CACHE_TEXT))
    monkeypatch.setattr(calibrate_module, "mem_total", lambda: MEMORY_BYTES)
    monkeypatch.setattr(calibrate_module, "cpu_model", lambda: CPU)
    monkeypatch.setattr(calibrate_module, "process_shares", lambda seeds=(): [list(SHARES)])


def fake_calibration(path: Path | None = None, *, quick: bool = False,
                     log: Callable[[str], None] = print, timer: FakeTimer | None = None,
                     counts: Sequence[Sequence[tuple[int, float]]] | Callable[..., Any]
                     | None = None,
                     shares: Sequence[tuple[int, float]] | None = None,
                     **kwargs: Any) -> Any:
    """``run_calibration()`` of the fake machine on the fake clock, over :data:`ROW_NAMES`
    (``counts``: the residual chains' fresh-page shares counted in each process, instead of
    :data:`SHARES` in one, or a function standing for the counting processes; ``shares``:
    what a count in the calibration's own process finds)."""
    with pytest.MonkeyPatch.context() as monkeypatch, two_threads():
        fake_host(monkeypatch)
        if callable(counts):
            monkeypatch.setattr(calibrate_module, "process_shares", counts)
        elif counts is not None:
            monkeypatch.setattr(calibrate_module, "process_shares",
                                lambda seeds=(): [list(c) for c in counts])
        if shares is not None:
            monkeypatch.setattr(calibrate_module, "fresh_shares", lambda: list(shares))
        return run_calibration(path, quick=quick, log=log,
                               timer=timer if timer is not None else FakeTimer(),
                               benches=benches(), **kwargs)


def fake_calibrate(path: Path | None = None, **kwargs: Any) -> Device:
    """``calibrate()`` of the fake machine: the device it writes."""
    return fake_calibration(path, **kwargs).device  # type: ignore[no-any-return]


def install(monkeypatch: pytest.MonkeyPatch, calls: list[dict[str, Any]] | None = None) -> None:
    """Replace ``calibrate()`` (where the CLI and ``--flop-calibrate`` look it up) by
    :func:`fake_calibrate`; each call's keyword arguments are appended to ``calls``."""

    def stub(path: Path | None = None, **kwargs: Any) -> Device:
        if calls is not None:
            calls.append({"path": path, **kwargs})
        kwargs.pop("runtime", None)
        return fake_calibrate(path, **kwargs)

    monkeypatch.setattr(calibrate_module, "calibrate", stub)
