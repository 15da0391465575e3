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
* ``fresh_output_share`` and ``fresh_share_bytes``: below ``fresh_output_bytes`` glibc
  serves outputs from its heap, which it gives back to the system once enough of its top is
  free; outputs then land in fresh pages some of the time, depending on the order of
  allocations and frees. Residual chains of operators (:func:`residual_chain`: blocks of 0 to
  3 operators whose result is added back to the block's input, the pattern of most
  networks) on tensors of each of :data:`SHARE_SIZES` are run and their minor page faults
  counted (:func:`fresh_shares`): the share of the bytes they write that land in fresh pages.
  That share is a property of the process as much as of the machine; the calibration counts
  it in several fresh processes and takes the mean (:mod:`.fresh_pages`).
  ``fresh_share_bytes`` is the smallest size with a share of at least :data:`SHARE_MIN`, the
  share the mean over it and the larger sizes. Counted, not timed: faults do not drift with
  the machine's speed.
* ``half_rows``: eager PyTorch's matrix products pack their weights at every call, a cost
  per call that a product of few rows cannot spread (:data:`ROWS_FEW` rows take far more
  than :data:`ROWS_FEW` / :data:`ROWS_MANY` of the time of :data:`ROWS_MANY`). With a product
  of ``r`` rows computing at ``r / (r + h)`` of the peak, two linears of :data:`ROWS_WIDTH`
  features, one of each row count, taking ``t_few`` and ``t_many``: ``t_few / t_many = (few
  + h) / (many + h)``, so ``h = (many * q - few) / (1 - q)`` with ``q = t_few / t_many``
  (:func:`half_rows_of`).
* ``lowering_bandwidth``: eager PyTorch runs small convolutions and most 3-D ones by
  lowering the input to a column matrix (vol2col, a serial loop) before the matrix product.
  A 3-D convolution with one output channel (:data:`LOWERING_SHAPE`, lowered: PyTorch's own
  backend choice), whose product is a matrix-vector one that reads the matrix once: the
  column matrix's bytes over its seconds. 2-D lowering (im2col) runs about twice as fast
  here (a 1.1 MiB matrix: 13 against 6.5 GB/s) and is priced at the same rate; it matters
  far less, its matrices being small.
* ``cold_weight_row_seconds`` and ``cold_weight_bytes``: a linear whose weights come from
  memory takes longer than the same linear run again on weights the cache still holds, by
  about the same time per row of its weight matrix whatever its input rows (1 to 256 here).
  The linear of :data:`ROWS_FEW` rows and :data:`ROWS_WIDTH` features runs on one weight
  matrix, and cycling through copies of it that fill :data:`COLD_FILLS` of the largest
  cache and four times it (:func:`cold_probes`; a cycle's bytes are its calls' weights and
  outputs, :data:`COLD_CALL_BYTES` each). Each cycle's extra seconds over the
  last one's are the share of its weights that came from memory, and ``cold_weight_bytes``
  the bytes at which that share reaches one half (:func:`cold_half_bytes`); the median
  extra seconds of the cycles all from memory, over the :data:`ROWS_WIDTH` weight rows, are
  the cost per row (:func:`cold_row_seconds_of`).
* ``cold_weight_bandwidth`` and ``cold_weight_bytes`` for a runtime that packs its weights
  once, when it loads the model (ONNX Runtime): its matrix products fetch weights that come
  from memory before their arithmetic, not under it, at about the DRAM bandwidth (measured
  here: linears of 16 to 64 rows on 1 to 4 MiB of weights took 0.016-0.103 ms more on
  weights from memory than on weights in the cache, their bytes at 41-65 GB/s, against a
  DRAM bandwidth of 46-48), and a model keeps its weights in the cache well beyond the
  cache's size (a chain of 50-row linears on distinct 2.25 MiB weight matrices: as fast at
  36 MiB of weights as on one matrix, 29% of the way to all from memory at 45 MiB, 56% at
  54, 83% at 72, all at 135; one run each). The same probe as above, a chain of
  :data:`ROWS_FEW`-row linears through 1 and through :data:`PACKED_COLD_FILLS` of the
  largest cache and four times it of distinct weight matrices, timed per linear
  (:func:`packed_cold_counts`): ``cold_weight_bytes`` as above, and the weight matrix's
  bytes over the median extra seconds of the cycles all from memory the fetch rate
  (:func:`cold_bandwidth_of`).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from .microbench import randn

MiB = 1 << 20
#: A fresh output is one whose copy takes at least this many times the in-place copy's time
#: (page faults cost several times a copy; a new buffer that only misses the cache, less).
FRESH_RATIO = 3.0
#: Buffer sizes (bytes) for the fresh-output comparison.
FRESH_SIZES = (8 * MiB, 16 * MiB, 32 * MiB, 64 * MiB)
#: Output sizes (bytes) whose fresh-page share is counted (below the usual 32 MiB of
#: ``fresh_output_bytes``, glibc's largest mmap threshold).
SHARE_SIZES = (4 * MiB, 8 * MiB, 16 * MiB)
#: The least share counted as paying for fresh pages.
SHARE_MIN = 0.02
#: Operators inside each block of the residual chains (0: a chain of adds).
SHARE_BLOCKS = (0, 1, 2, 3)
#: Runs of each chain a count takes, after 2 warm-ups (in a fresh process or, when those
#: fail, in the calibration's own).
SHARE_RUNS = 3
#: Rows of the two linears of the ``half_rows`` probe, and their input and output features.
ROWS_FEW, ROWS_MANY, ROWS_WIDTH = 16, 1024, 768
#: Shares of the largest cache the cold probes' weights fill (2.25 MiB copies of the
#: ``ROWS_WIDTH`` x ``ROWS_WIDTH`` weight matrix, at least 2), besides the copies of four
#: times the cache.
COLD_FILLS = (1 / 8, 1 / 4, 3 / 8, 1 / 2, 3 / 4, 1)
#: Shares of the largest cache the cold probes of a runtime that packs its weights once
#: fill (ONNX Runtime: a model keeps its weights in the cache beyond its size; see the
#: module docstring), besides four times the cache.
PACKED_COLD_FILLS = (1 / 2, 1, 5 / 4, 3 / 2, 7 / 4, 2, 5 / 2, 3)
#: Bytes of one weight matrix of the cold probes.
WEIGHT_BYTES = ROWS_WIDTH * ROWS_WIDTH * 4
#: Bytes one call of a cold probe passes through the cache: its weights read and its output
#: (``ROWS_FEW`` x ``ROWS_WIDTH``) written, what the roofline's footprint counts too.
COLD_CALL_BYTES = WEIGHT_BYTES + ROWS_FEW * ROWS_WIDTH * 4
#: ``(input channels, depth, height, width)`` of the lowering probe: a 3x3x3 convolution to
#: one channel, padded to keep its size.
LOWERING_SHAPE = (8, 16, 32, 32)
#: Bytes each streaming kernel moves per byte of one buffer: copy reads and writes it, add
#: reads two and writes one, sum reads one.
STREAM_BYTES = {"copy": 2, "add": 3, "sum": 1}


@dataclass(frozen=True)
class Probe:
    """One timed kernel of the structural figures: ``what`` names it (``"gemm 2048"``,
    ``"copy 128 MiB"``, ``"clone 64 MiB"``...); ``copies``: for the linear of the cold
    probes, the distinct weight matrices it runs through (1: one matrix, held in the
    cache), which a runtime that runs it as a chain of linears builds (0: not such a probe)."""

    what: str
    fn: Callable[[], object]
    copies: int = 0

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


def lowering_bytes(shape: tuple[int, int, int, int] = LOWERING_SHAPE) -> int:
    """Bytes of the fp32 column matrix of the lowering probe: ``C * 27`` rows (a 3x3x3
    kernel per input channel) by ``D * H * W`` output positions, 4 bytes each."""
    channels, depth, height, width = shape
    return channels * 27 * depth * height * width * 4


def half_rows_of(few_s: float, many_s: float, few: int = ROWS_FEW,
                 many: int = ROWS_MANY) -> float:
    """``half_rows`` from the seconds of a linear of ``few`` rows and of ``many`` rows (same
    features): ``(many * q - few) / (1 - q)`` with ``q = few_s / many_s``; 0 (no figure)
    when the few rows take no more than their share of the time, and also at ``q >= 1``
    (the few rows as slow as the many: a disturbed measurement, for which no finite figure
    is right; the calibration then writes no ``half_rows`` rather than a wrong one)."""
    q = few_s / many_s
    if q >= 1 or many * q <= few:
        return 0.0
    return (many * q - few) / (1 - q)


def cold_row_seconds_of(hot_s: float, cycled: Sequence[tuple[int, float]], half: int,
                        weight_rows: int = ROWS_WIDTH) -> float:
    """``cold_weight_row_seconds`` from the seconds of a linear on weights in the cache
    (``hot_s``) and cycling through weights of ``(bytes in all, seconds)`` (ascending, the
    last all from memory), whose weight matrix has ``weight_rows`` rows: the median seconds
    of the cycles all from memory (those of at least 1.5 times ``half``, the bytes half from
    memory, and the last), less ``hot_s``, per weight row; 0 (no figure) when not slower."""
    cold = [s for nbytes, s in cycled[:-1] if half and nbytes >= 1.5 * half]
    return max(0.0, (statistics.median([*cold, cycled[-1][1]]) - hot_s) / weight_rows)


def cold_bandwidth_of(hot_s: float, cycled: Sequence[tuple[int, float]], half: int,
                      weight_bytes: int = WEIGHT_BYTES) -> float:
    """``cold_weight_bandwidth`` (bytes/s) from the seconds of a linear on weights in the
    cache (``hot_s``) and per linear of chains through ``(bytes in all, seconds)`` of
    distinct weights (ascending, the last all from memory): ``weight_bytes`` over the median
    extra seconds of the cycles all from memory (as :func:`cold_row_seconds_of` takes them);
    0 (no figure) when they are not slower."""
    extra = cold_row_seconds_of(hot_s, cycled, half, weight_rows=1)
    return weight_bytes / extra if extra > 0 else 0.0


def cold_half_bytes(hot_s: float, cycled: Sequence[tuple[int, float]]) -> int:
    """``cold_weight_bytes`` from the seconds of a linear on one weight matrix (``hot_s``)
    and cycling through weights of ``(bytes in all, seconds)`` (ascending; the last all from
    memory): the share from memory of each cycle is its extra seconds over the last one's
    (at most 1, and at least the share of a smaller cycle); the bytes where it reaches 1/2,
    interpolated linearly from the cycle before (from no bytes, no share, for the first).
    0 when the last cycle is not slower than ``hot_s``."""
    full = cycled[-1][1] - hot_s
    if full <= 0:
        return 0
    before_bytes, before_share = 0, 0.0
    for nbytes, seconds in cycled:
        share = min(1.0, max(before_share, (seconds - hot_s) / full))
        if share >= 0.5:
            step = (0.5 - before_share) / (share - before_share)
            return round(before_bytes + step * (nbytes - before_bytes))
        before_bytes, before_share = nbytes, share
    raise AssertionError("unreachable: the last cycle's share is 1")


def share_of(sizes: Sequence[tuple[int, float]],
             least: float = SHARE_MIN) -> tuple[int, float] | None:
    """``(fresh_share_bytes, fresh_output_share)`` from ``[(output bytes, share of written
    bytes in fresh pages)]``: the smallest size whose share is at least ``least``, and the
    mean share over it and every larger size. ``None`` when no size reaches ``least``."""
    ordered = sorted(sizes)
    start = next((i for i, (_, share) in enumerate(ordered) if share >= least), None)
    if start is None:
        return None
    shares = [share for _, share in ordered[start:]]
    return ordered[start][0], sum(shares) / len(shares)


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


def residual_chain(x: torch.Tensor, inner: int, blocks: int = 4) -> torch.Tensor:
    """``blocks`` residual blocks on ``x``: ``inner`` negations, then the result added to the
    block's input (``inner = 0``: ``x + x``). Writes ``blocks * (inner + 1)`` new tensors of
    ``x``'s size."""
    for _ in range(blocks):
        y = x
        for _ in range(inner):
            y = torch.neg(y)
        x = x + y
    return x


def minor_faults() -> int:
    """This process's minor page faults so far (0 where the platform does not count them)."""
    try:
        import resource
    except ImportError:  # not on Unix
        return 0
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def page_bytes() -> int:
    """Bytes of a memory page (4096 where the platform does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 4096


def fresh_shares(sizes: Sequence[int] = SHARE_SIZES, runs: int = SHARE_RUNS,
                 faults: Callable[[], int] = minor_faults) -> list[tuple[int, float]]:
    """``[(output bytes, share)]``: for each size, the share of the bytes the residual chains
    (:data:`SHARE_BLOCKS`) write that land in fresh pages, ``faults * page / written`` over
    ``runs`` runs after 2 warm-ups, the mean over the chains (at most 1 each)."""
    page = page_bytes()
    out = []
    with torch.inference_mode():
        for nbytes in sizes:
            x = torch.ones(nbytes // 4)
            shares = []
            for inner in SHARE_BLOCKS:
                for _ in range(2):
                    residual_chain(x, inner)
                before = faults()
                for _ in range(runs):
                    residual_chain(x, inner)
                written = 4 * (inner + 1) * nbytes * runs
                shares.append(min(1.0, (faults() - before) * page / written))
            out.append((nbytes, sum(shares) / len(shares)))
    return out


def _lowering(shape: tuple[int, int, int, int]) -> Callable[[], object]:
    x = randn(1, *shape)
    w = randn(1, shape[0], 3, 3, 3)
    return lambda: torch.nn.functional.conv3d(x, w, padding=1)


def _rows(rows: int) -> Callable[[], object]:
    x = randn(rows, ROWS_WIDTH)
    w = randn(ROWS_WIDTH, ROWS_WIDTH)
    return lambda: torch.nn.functional.linear(x, w)


def cold_counts(cache: int, shares: Sequence[float] = COLD_FILLS) -> tuple[int, ...]:
    """Weight copies each cold probe cycles through, for a largest cache of ``cache``
    bytes: as many as fill each of ``shares`` of it (at least 2, each count once), then as
    many as fill :func:`dram_buffer` (more than the others)."""
    fills = sorted({max(2, round(f * cache / WEIGHT_BYTES)) for f in shares})
    return (*fills, max(fills[-1] + 1, dram_buffer(cache) // WEIGHT_BYTES))


def packed_cold_counts(cache: int) -> tuple[int, ...]:
    """The weight matrices of the cold probes of a runtime that packs its weights once:
    :func:`cold_counts` over :data:`PACKED_COLD_FILLS`."""
    return cold_counts(cache, PACKED_COLD_FILLS)


def cold_probe_name(copies: int) -> str:
    """The ``what`` of the cold probe cycling through ``copies`` weight matrices."""
    return (f"linear {ROWS_FEW} rows x {ROWS_WIDTH} -> {ROWS_WIDTH}, weights cycled over "
            f"{copies} copies ({copies * WEIGHT_BYTES / MiB:g} MiB)")


def cold_probes(cache: int, counts: Sequence[int] | None = None) -> list[Probe]:
    """The linear of :data:`ROWS_FEW` rows cycling through each of ``counts`` weight copies
    (:func:`cold_counts` when not given), taken from one pool made at the first call."""
    counts = tuple(cold_counts(cache) if counts is None else counts)
    x = randn(ROWS_FEW, ROWS_WIDTH)
    pool: list[torch.Tensor] = []

    def weights(copies: int) -> Iterator[torch.Tensor]:
        # a generator: its body (the pool) runs at the first call of a probe, not here
        if not pool:
            pool.extend(randn(ROWS_WIDTH, ROWS_WIDTH) for _ in range(max(counts)))
        yield from itertools.cycle(pool[:copies])

    def cycle(copies: int) -> Callable[[], object]:
        each = weights(copies)
        return lambda: torch.nn.functional.linear(x, next(each))

    return [Probe(cold_probe_name(n), cycle(n), n) for n in counts]


def rows_probe_name(rows: int) -> str:
    """The ``what`` of :func:`rows_probe` (named without making its tensors)."""
    return f"linear {rows} rows x {ROWS_WIDTH} -> {ROWS_WIDTH}"


def rows_probe(rows: int, copies: int = 0) -> Probe:
    """The linear of ``rows`` rows and :data:`ROWS_WIDTH` features on one weight matrix
    (``copies`` 1: as the cold probes' matrix held in the cache, :class:`Probe`)."""
    return Probe(rows_probe_name(rows), _rows(rows), copies)


def lowering_probe_name(shape: tuple[int, int, int, int] = LOWERING_SHAPE) -> str:
    """The ``what`` of :func:`lowering_probe` (named without making its tensors)."""
    return f"lowered conv3d {shape[0]}->1 at {shape[1]}x{shape[2]}x{shape[3]}"


def lowering_probe(shape: tuple[int, int, int, int] = LOWERING_SHAPE) -> Probe:
    return Probe(lowering_probe_name(shape), _lowering(shape))


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
