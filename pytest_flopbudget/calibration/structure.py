"""The host's structural figures from streaming kernels and a GEMM: peak, DRAM and cache
bandwidth, how much the cache holds, and what fresh output memory costs.

The arithmetic is pure (tested with hand-computed numbers); :func:`probes` builds the timed
kernels, each named by its ``what`` so a fake timer can answer them.

* ``peak_flops.fp32``: a square fp32 GEMM, ``2 n^3`` FLOPs;
* ``bandwidth``: the fastest of three streaming kernels on buffers four times the largest
  cache (at least 64 MiB): a copy (``dst.copy_(src)``: reads and writes ``n`` bytes), an add
  into a preallocated output (reads ``2n``, writes ``n``) and a sum (reads ``n``). A copy
  alone undercounts what the memory moves (a write first reads its line), so the fastest
  kernel stands for the memory; slower kernels get an efficiency below 1 in the fit;
* ``onchip_bandwidth``: the same three kernels on buffers of 1/16 of the cache;
* ``onchip_bytes``: copies of growing buffers; the largest footprint (read + written bytes)
  still copied at least at the geometric mean of the cache and DRAM bandwidths: what the
  cache holds for one operator on this machine (a shared or virtualised cache holds less
  than sysfs says), at most the largest cache;
* ``fresh_output_bytes`` and ``fresh_output_bandwidth``: an eager runtime allocates every
  output; glibc serves large blocks with ``mmap``, whose pages fault on first touch at every
  call. Copies into a new tensor (``clone``) against copies into a preallocated one: the
  smallest size from which ``clone`` takes at least :data:`FRESH_RATIO` times as long
  (and at every larger size), and the extra seconds per byte at the largest size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .microbench import randn

MiB = 1 << 20
#: A fresh output is one whose copy takes at least this many times the in-place copy's time
#: (page faults cost several times a copy; a new buffer that only misses the cache, less).
FRESH_RATIO = 3.0
#: Buffer sizes (bytes) for the fresh-output comparison.
FRESH_SIZES = (8 * MiB, 16 * MiB, 32 * MiB, 64 * MiB)
#: Bytes each streaming kernel moves per byte of one buffer: copy reads and writes it, add
#: reads two and writes one, sum reads one.
STREAM_BYTES = {"copy": 2, "add": 3, "sum": 1}


@dataclass(frozen=True)
class Probe:
    """One timed kernel of the structural figures: ``what`` names it (``"gemm 2048"``,
    ``"copy 128 MiB"``, ``"clone 64 MiB"``...)."""

    what: str
    fn: Callable[[], object]

    def run(self) -> object:
        return self.fn()


# --- pure arithmetic -----------------------------------------------------------------------
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


def stream_rate(kind: str, buffer_bytes: int, seconds: float) -> float:
    """Bytes/s of a streaming kernel (``copy``, ``add`` or ``sum``) over buffers of
    ``buffer_bytes`` each (:data:`STREAM_BYTES` per buffer byte)."""
    return rate(STREAM_BYTES[kind] * buffer_bytes, seconds)


def effective_cache(footprints: Sequence[tuple[int, float]], onchip_bw: float,
                    dram_bw: float, largest: int) -> int:
    """Bytes the cache holds for one operator: the largest footprint (bytes read + written)
    of ``footprints`` (``[(footprint, bytes/s of a copy)]``) whose rate is at least the
    geometric mean of ``onchip_bw`` and ``dram_bw``, counting up from the smallest and
    stopping at the first that is not; at most ``largest`` (the largest cache), and the
    smallest footprint when none is."""
    cut = math.sqrt(onchip_bw * dram_bw)
    held = 0
    for footprint, bandwidth in sorted(footprints):
        if bandwidth < cut:
            break
        held = footprint
    if held == 0:
        held = min(f for f, _ in footprints)
    return min(held, largest)


def fresh_outputs(pairs: Sequence[tuple[int, float, float]],
                  ratio: float = FRESH_RATIO) -> tuple[int, float] | None:
    """``(threshold bytes, bytes/s)`` of fresh output memory from ``[(buffer bytes, seconds
    of an in-place copy, seconds of a copy into a new tensor)]``: the threshold is the
    smallest size from which every copy into a new tensor takes at least ``ratio`` times the
    in-place one; the rate is the largest size's bytes over the extra seconds. ``None`` when
    even the largest size shows no such cost."""
    ordered = sorted(pairs)
    threshold = None
    for nbytes, inplace, fresh in reversed(ordered):
        if fresh < ratio * inplace:
            break
        threshold = nbytes
    if threshold is None:
        return None
    nbytes, inplace, fresh = ordered[-1]
    return threshold, rate(nbytes, fresh - inplace)


# --- the kernels ----------------------------------------------------------------------------
def _gemm(n: int) -> Callable[[], object]:
    a, b = randn(n, n), randn(n, n)
    return lambda: torch.mm(a, b)


def _stream(kind: str, nbytes: int) -> Callable[[], object]:
    src = torch.ones(nbytes // 4)
    if kind == "sum":
        return src.sum
    dst = torch.empty_like(src)
    if kind == "copy":
        return lambda: dst.copy_(src)
    other = torch.ones_like(src)
    return lambda: torch.add(src, other, out=dst)


def _clone(nbytes: int) -> Callable[[], object]:
    src = torch.ones(nbytes // 4)
    return src.clone


def size_text(nbytes: int) -> str:
    """``"128 MiB"``, ``"512 KiB"``."""
    return f"{nbytes // MiB} MiB" if nbytes >= MiB else f"{nbytes >> 10} KiB"


def gemm_probe(n: int) -> Probe:
    return Probe(f"gemm {n}", _gemm(n))


def stream_probe(kind: str, nbytes: int) -> Probe:
    return Probe(f"{kind} {size_text(nbytes)}", _stream(kind, nbytes))


def clone_probe(nbytes: int) -> Probe:
    return Probe(f"clone {size_text(nbytes)}", _clone(nbytes))


def dram_buffer(cache: int) -> int:
    """Bytes of the buffers for the DRAM bandwidth: four times the largest cache, at least
    64 MiB."""
    return max(4 * cache, 64 * MiB)


def onchip_buffer(cache: int) -> int:
    """Bytes of the buffers for the cache bandwidth: 1/16 of the largest cache, at least
    64 KiB."""
    return max(cache // 16, 64 << 10)


def sweep_buffers(cache: int) -> list[int]:
    """Copy buffer sizes for the cache capacity: 1/32 of the cache to the whole cache,
    doubling (footprints 1/16 to 2 caches)."""
    return [max(cache >> shift, 64 << 10) for shift in range(5, -1, -1)]
