"""Timing on a shared machine: the median of samples, dropping those other processes
disturbed (they took this process's cores, or kept the machine's other cores busy)."""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


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


class TimerLike(Protocol):
    """What times a benchmark: :meth:`Timer.__call__`'s signature (``fn`` run ``warmup``
    times, then ``repeats`` samples of at least ``min_sample_s`` seconds each)."""

    def __call__(self, fn: Callable[[], object], repeats: int, warmup: int = 2,
                 min_sample_s: float = 0.0) -> Timing: ...


@dataclass
class Pass:
    """One pass: every probe's and every row's timing; ``missing``: why probes that could
    not be timed were left out (their figures are then not written), when some were."""

    probes: dict[str, Timing]
    rows: list[Timing]
    missing: str = ""

    @property
    def row_seconds(self) -> list[float]:
        return [t.seconds for t in self.rows]

    def timings(self) -> list[Timing]:
        return [*self.probes.values(), *self.rows]


class CalibrationError(RuntimeError):
    """A calibration cannot measure what it needs (a row the runtime ran no kernel for)."""
