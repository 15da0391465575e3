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
default to ``.flopbudget/host.toml``; :mod:`pytest_flopbudget.device_file` reads it back.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from ..core.files import atomic_write
from ..core.op_classes import OP_CLASSES
from ..counting.profile import profile
from ..devices.device import Device
from ..devices.device_file import DEFAULT_PATH, HOST, device_toml, host_device
from ..devices.roofline import op_time
from .hostinfo import CACHE_DIR, MEMINFO, cpu_model, largest_cache, mem_total
from .microbench import (
    CLASS_BENCHES,
    GEMM_N,
    TINY_CHAIN,
    Bench,
    gemm,
    overhead_benches,
    streaming_copy,
)
from .timing import Timer, Timing

FALLBACK_ONCHIP = 1 << 20  # 1 MiB when no cache size can be read


class TimerLike(Protocol):
    """What times a benchmark: :meth:`Timer.__call__`'s signature (``fn`` run ``warmup``
    times, then ``repeats`` samples of at least ``min_sample_s`` seconds each)."""

    def __call__(self, fn: Callable[[], object], repeats: int, warmup: int = 2,
                 min_sample_s: float = 0.0) -> Timing: ...


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


def copy_bytes(nbytes: int) -> int:
    """Bytes a copy of an ``nbytes`` buffer moves: it reads ``nbytes`` and writes ``nbytes``."""
    return 2 * nbytes


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
    return [r for r in profile(bench.module, *bench.inputs, trace="fake").records
            if r.flops or r.read.bytes() or r.written.bytes()]


def _bare_seconds(records: Sequence[Any], peak: float, bandwidth: float,
                  onchip: int) -> float:
    bare = Device("bare", peak, bandwidth, onchip_bytes=onchip)  # efficiency 1, no overhead
    return sum(op_time(r, bare, "fp32").seconds for r in records)


def _overhead_seconds(records: Sequence[Any], device: Device) -> float:
    """Per-operator overhead the roofline charges for ``records`` on ``device`` (paid once
    per recurrent step): with ``overhead=1.0`` s, the number of overheads paid."""
    return sum(op_time(r, device, "fp32").overhead_seconds for r in records)


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
              log: Callable[[str], None] = print, timer: TimerLike | None = None) -> Device:
    """Measure this machine, write it as device ``host`` to ``path`` and return it.

    ``path``: the TOML file to write (default ``.flopbudget/host.toml`` under the current
    directory), replaced atomically. ``quick``: fewer and shorter samples (a few seconds, for
    tests; the figures are noisier); the full run takes under two minutes. ``log`` receives
    one line per figure as it is measured. ``timer`` times each benchmark (default: a
    :class:`~.timing.Timer` with the plan's patience); tests pass a fake one.

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
    if timer is None:
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
        timing = timer(gemm(GEMM_N), plan.gemm_repeats, warmup=min(plan.warmup, 2))
        peak = rate(gemm_flops(GEMM_N), timing.seconds)
        sources["peak_flops.fp32"] = source("peak_flops", f"{GEMM_N}x{GEMM_N} fp32 GEMM (torch.mm, "
                                       f"2n^3 FLOPs)", [timing])
        log(f"peak fp32      {peak / 1e9:10.1f} GFLOP/s   ({GEMM_N}x{GEMM_N} GEMM)")

        # bandwidth: a streaming copy four times the largest cache (at least 64 MiB)
        nbytes = max(4 * onchip, 64 << 20)
        timing = timer(streaming_copy(nbytes), plan.copy_repeats, warmup=min(plan.warmup, 2))
        bandwidth = rate(copy_bytes(nbytes), timing.seconds)
        what = f"streaming copy of {nbytes >> 20} MiB fp32 (Tensor.copy_, read + write bytes)"
        sources["bandwidth"] = source("bandwidth", what, [timing])
        log(f"bandwidth      {bandwidth / 1e9:10.1f} GB/s      ({nbytes >> 20} MiB copy)")

    # overhead: chains of tiny operators, counted by the tracer (which runs outside inference
    # mode: it enters its own); the median over operator kinds
    per_kind: list[tuple[str, float, str]] = []
    timings: list[Timing] = []
    for key, tiny in overhead_benches():
        records = _counted(tiny)
        with torch.inference_mode():
            timing = timer(tiny.run, plan.repeats,
                           warmup=plan.warmup, min_sample_s=plan.min_sample_s)
        timings.append(timing)
        bare = _bare_seconds(records, peak, bandwidth, onchip)
        paid = round(_overhead_seconds(records, Device("count", 1.0, 1.0, overhead=1.0)))
        per_kind.append((key, overhead_from(timing.seconds, bare, paid), tiny.what))
    overhead, overheads = overheads_by_key([(k, t) for k, t, _ in per_kind])
    overheads = {k: float(f"{v:.4g}") for k, v in sorted(overheads.items())}

    def measured(kinds: list[tuple[str, float, str]]) -> str:
        listed = ", ".join(f"{what} {t * 1e6:.1f} us" for _, t, what in kinds)
        return (f"(time - bare roofline) per operator (per step for recurrent operators) of "
                f"chains of {TINY_CHAIN} tiny operators ({listed})")

    kinds = ", ".join(f"{what} {t * 1e6:.1f} us" for _, t, what in per_kind)
    sources["overhead"] = source("overhead", f"median over kinds of {measured(per_kind)}",
                                 timings)
    for key in overheads:  # each entry's source names only the runs behind it
        mine = [i for i, (k, _, _) in enumerate(per_kind)
                if k == key or (key == "recurrent" and k.startswith("aten."))]
        sources[f"overheads.{key}"] = source(
            f"overheads.{key}", f"median of {measured([per_kind[i] for i in mine])}",
            [timings[i] for i in mine])
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
                timing = timer(bench.run, plan.repeats,
                               warmup=plan.warmup, min_sample_s=plan.min_sample_s)
            timings.append(timing)
            # what the roofline charges besides this class's own time: the per-operator
            # overheads (per step for recurrent operators) and any operator of another class
            charged = _overhead_seconds(records, timed) \
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
        "peak_flops.fp32", "bandwidth", "overhead", *(f"overheads.{k}" for k in overheads),
        *(f"efficiency.{c}" for c in OP_CLASSES),
        "onchip_bytes", "memory_bytes") if k in sources}
    elapsed = time.perf_counter() - started
    header = (f"Written by 'python -m pytest_flopbudget calibrate{' --quick' if quick else ''}'"
              f" in {elapsed:.1f} s.\nEvery figure is measured on this machine; see "
              f"[devices.{HOST}.sources].")
    text = device_toml(HOST, table, header)
    device = host_device(text, str(path))  # what tests will read back, checked first
    atomic_write(path, text)
    if disturbed:
        log(f"warning: other processes kept this machine busy while measuring "
            f"{', '.join(disturbed)}; those figures are pessimistic (their sources say so). "
            f"Calibrate again on a quiet machine.")
    log(f"wrote {path} in {elapsed:.1f} s")
    return device
