"""Measure this machine through a runtime and describe it as a device (``host`` by default).

``calibrate()`` measures in two steps, with the same mechanism that fits the edge catalog
(:func:`pytest_flopbudget.devices.fit.fit`):

1. **Structural figures**, from a GEMM and streaming kernels (:mod:`.structure`): the fp32
   peak, the DRAM bandwidth, the cache's bandwidth and how much it holds, and for eager
   PyTorch what fresh output memory costs, the share of smaller outputs that land in fresh
   pages (counted page faults of residual chains, the mean over several fresh processes:
   :mod:`.fresh_pages`), the rate a lowered convolution's column
   matrix is written, ``half_rows`` (a product's fixed cost per call, in rows) and what a
   linear pays per weight row fetched from memory. With the runtime's ``fusion`` they make
   the *structural device*.
2. **Free figures**, fitted: every microbenchmark of :mod:`.microbench` is a *row*, its
   operators counted by this package's tracer and priced on the structural device (one fit
   term per kernel), with its measured seconds. Robust least squares on the relative error
   finds the compute ceilings (``compute_efficiency``: convolution kinds, matrix products,
   transcendental functions...), the efficiencies (memory-bound kinds: arithmetic, norms,
   pooling, data movement...) and the per-operator overheads that make the roofline match
   the rows (:data:`FREE`). A few figures are derived from fitted ones (:func:`derive`):
   the default overhead, and the class-level entries that stand for operators no row runs.

**Passes**: the probes and rows are measured in passes until two passes in a row agree
(:func:`agree`: the median over rows of ``|t2 / t1 - 1|`` within :data:`AGREE_MEDIAN` and
nine rows in ten within :data:`AGREE_P90`), at most :data:`MAX_PASSES`. Figures come from
the median over passes; each figure is also fitted pass by pass and its spread over passes
(lowest to highest) is written in its source. Samples other processes disturbed are dropped
and taken again (:class:`~.timing.Timer`); when passes never agree, or samples could only be
taken disturbed, the file says the machine was too noisy to trust, and so does the log.

``runtime``: ``"eager"`` (PyTorch, ``fusion = "none"``) or ``"onnxruntime"`` (the rows
exported with ``torch.onnx.export(..., dynamo=True)`` and timed in ONNX Runtime's CPU
execution provider, ``fusion = "onnxruntime"``; see :mod:`.onnx_runtime`).

The result is written as TOML in the schema of ``devices.toml`` (``[devices.NAME]``), each
figure with its source (what was measured, how, when, on which CPU), the rows' residuals as
comments; :mod:`pytest_flopbudget.devices.device_file` reads it back.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import torch

from ..core.files import atomic_write
from ..counting.ops.convolution import ONEDNN_OP
from ..counting.profile import profile
from ..devices.device import Device
from ..devices.device_file import DEFAULT_PATH, HOST, device_toml
from ..devices.fit import Fit, Row, fit, terms, used_by
from ..devices.roofline import PROJECTION, predict
from .fresh_pages import (
    QUICK_SHARE_SEEDS,
    SHARE_SEEDS,
    ShareCountError,
    mean_shares,
    process_shares,
)
from .hostinfo import CACHE_DIR, MEMINFO, cpu_model, largest_cache, mem_total
from .microbench import GEMM_N, Bench, rows
from .structure import (
    COLD_CALL_BYTES,
    FRESH_RATIO,
    FRESH_SIZES,
    ROWS_FEW,
    ROWS_MANY,
    ROWS_WIDTH,
    SHARE_MIN,
    SHARE_SIZES,
    STREAM_BYTES,
    WEIGHT_BYTES,
    MiB,
    Probe,
    clone_probe,
    cold_bandwidth_of,
    cold_counts,
    cold_half_bytes,
    cold_probe_name,
    cold_probes,
    cold_row_seconds_of,
    dram_buffer,
    effective_cache,
    fresh_outputs,
    fresh_shares,
    gemm_flops,
    gemm_probe,
    half_rows_of,
    lowering_bytes,
    lowering_probe,
    lowering_probe_name,
    onchip_buffer,
    packed_cold_counts,
    rate,
    rows_probe,
    rows_probe_name,
    share_of,
    size_text,
    stream_probe,
    stream_rate,
    sweep_buffers,
)
from .timing import Pass, Timer, TimerLike
from .weight_chains import CHAIN_PROCESSES

FALLBACK_ONCHIP = 1 << 20  # 1 MiB when no cache size can be read
#: The streaming kernels of the bandwidths (eager PyTorch).
STREAMS = ("copy", "add", "sum")
#: Two passes agree when the median over rows of |t2 / t1 - 1| is at most this...
AGREE_MEDIAN = 0.05
#: ...and nine rows in ten change by at most this.
AGREE_P90 = 0.20
#: Passes at most (the full calibration); a quick one runs one pass and says so.
MAX_PASSES = 3
#: No pass starts once the calibration has run this long (seconds): on a machine so busy
#: that passes take minutes, the file says it is too noisy rather than run for a quarter hour.
DEADLINE_S = 120.0

#: The free figures fitted for each runtime. Compute-bound kinds get a compute ceiling
#: (``compute_efficiency``), memory-bound ones an efficiency, elementwise kinds both
#: (transcendental functions their own ceiling each: tanh costs far more per element than a
#: sigmoid; arithmetic, norms and channel affines one each: a cache-resident add is bound by
#: its rate per element, a DRAM-resident one by bandwidth); overheads per operator class,
#: per recurrent step of LSTM and GRU, and what a recurrent layer costs once per call
#: whatever its steps (priced on the layer's input projection, the one kernel a layer runs
#: once: ``overheads.aten.lstm.input_projection``; eager PyTorch's LSTM sets up oneDNN's RNN
#: primitive at every call, 93-96 us for a 4-wide layer here against 1.0-1.4 us a step).
_CEILINGS = ("conv3x3", "pointwise_conv", "conv2d", "conv1d", "conv3d", "transposed_conv",
             "depthwise_conv", "matmul", "aten.lstm", "aten.gru",
             "aten.scaled_dot_product_attention", "aten._native_multi_head_attention",
             "aten._transformer_encoder_layer_fwd", "aten.gelu", "aten.sigmoid", "aten.silu",
             "aten.tanh", "aten.exp", "aten.erf", "aten.softmax", "aten.max_pool2d",
             "aten.max_pool3d", "pooling", "arithmetic", "channel_affine", "norm",
             "aten.layer_norm")
_EFFICIENCIES = ("depthwise_conv", "matrix_vector", "arithmetic", "transcendental",
                 "channel_affine", "norm", "aten.layer_norm", "pooling", "data", "layout")
_OVERHEADS = ("conv", "depthwise_conv", "matmul", "attention", "elementwise", "aten.gelu",
              "norm", "channel_affine", "pooling", "data", "aten.lstm", "aten.gru",
              f"aten.lstm{PROJECTION}", f"aten.gru{PROJECTION}")
_FREE = (*(f"compute_efficiency.{k}" for k in _CEILINGS),
         *(f"efficiency.{k}" for k in _EFFICIENCIES),
         *(f"overheads.{k}" for k in _OVERHEADS))
#: ``overheads.aten.mkldnn_convolution`` is the fixed cost of eager PyTorch's oneDNN
#: convolutions other than 1x1 ones (``Work.runs_as``; 44-56 us a call here for 5x5, 7x7 and
#: depthwise 3x3 kernels, 7-11 us for a 1x1 one, which the tracer leaves unmarked), fitted
#: to the tiny 5x5 and depthwise rows; the convolution rows on that path then price with it.
#: Its tiny rows both run there, so ``overheads.depthwise_conv`` prices no eager row (it
#: stays free for a PyTorch whose depthwise convolutions take another path). ONNX Runtime
#: runs its convolutions its own way: no such figure.
FREE: dict[str, tuple[str, ...]] = {
    "eager": (*_FREE, f"overheads.{ONEDNN_OP}"), "onnxruntime": _FREE}
#: Class- or kind-level entries derived from operator-level fitted ones, for operators no
#: row runs: ``{entry: (how, [entries it comes from])}``; ``overhead`` is the median of the
#: fitted overheads per operator (not those a recurrent layer pays once a call, nor oneDNN's
#: per convolution).
DERIVED: dict[str, tuple[str, tuple[str, ...]]] = {
    "compute_efficiency.transcendental": (
        "geometric mean", tuple(f"compute_efficiency.aten.{op}" for op in (
            "gelu", "sigmoid", "silu", "tanh", "exp", "erf", "softmax"))),
    "compute_efficiency.recurrent": (
        "geometric mean", ("compute_efficiency.aten.lstm", "compute_efficiency.aten.gru")),
    "compute_efficiency.attention": (
        "geometric mean", tuple(f"compute_efficiency.aten.{op}" for op in (
            "scaled_dot_product_attention", "_native_multi_head_attention",
            "_transformer_encoder_layer_fwd"))),
    "overheads.recurrent": ("median", ("overheads.aten.lstm", "overheads.aten.gru")),
}


def _per_operator(figure: str) -> bool:
    """Whether ``figure`` is an operator's overhead per call, which the default ``overhead``
    stands for: not what a recurrent layer pays once a call (its input projection's) nor
    oneDNN's fixed cost per convolution."""
    return figure.startswith("overheads.") and not figure.endswith(PROJECTION) \
        and figure != f"overheads.{ONEDNN_OP}"


def omp_wait_policy() -> str:
    """``", OMP_WAIT_POLICY=active"`` when the environment sets OpenMP's wait policy, else
    ``""``: whether eager PyTorch's idle worker threads spin or sleep between operators
    decides what a small operator costs on a shared machine (a wake-up per parallel region
    when they sleep), so a calibration names it."""
    policy = os.environ.get("OMP_WAIT_POLICY", "").strip()
    return f", OMP_WAIT_POLICY={policy}" if policy else ""


# --- pure computations (no timing) -------------------------------------------------------
def changes(before: Sequence[float], after: Sequence[float]) -> list[float]:
    """``|after / before - 1|`` per row."""
    return [abs(b / a - 1) for a, b in zip(before, after, strict=True)]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of ``values``, linearly interpolated between ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def agreement(before: Sequence[float], after: Sequence[float]) -> tuple[float, float]:
    """``(median, 90th percentile)`` over rows of ``|after / before - 1|``."""
    moved = changes(before, after)
    return statistics.median(moved), percentile(moved, 0.9)


def agree(before: Sequence[float], after: Sequence[float]) -> bool:
    """Whether two passes' row times agree (see the module docstring)."""
    median, p90 = agreement(before, after)
    return median <= AGREE_MEDIAN and p90 <= AGREE_P90


def median_over(passes: Sequence[Sequence[float]]) -> list[float]:
    """Per row, the median over passes."""
    return [statistics.median(column) for column in zip(*passes, strict=True)]


def derive(figures: Mapping[str, float]) -> dict[str, tuple[float, str]]:
    """The :data:`DERIVED` entries (and the default ``overhead``) from fitted ``figures``:
    ``{entry: (value, how)}``, for those whose sources were fitted."""
    out: dict[str, tuple[float, str]] = {}
    for entry, (how, parts) in DERIVED.items():
        values = [figures[p] for p in parts if p in figures]
        if not values:
            continue
        if how == "median":
            value = statistics.median(values)
        else:
            value = math.exp(sum(math.log(v) for v in values) / len(values))
        out[entry] = (value, f"{how} of {', '.join(p for p in parts if p in figures)}")
    overheads = [v for k, v in figures.items() if _per_operator(k)]
    if overheads:
        out["overhead"] = (statistics.median(overheads),
                           "median of the fitted overheads per operator (operators of no "
                           "fitted class)")
    return out


def rounded(value: float) -> float:
    """A figure to 4 significant digits (what the device file shows)."""
    return float(f"{value:.4g}")


# --- measuring ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """How long to measure: samples per figure, the shortest sample, warm-up calls, the
    seconds of extra samples when other processes disturb the timing, passes at most, and
    the fresh processes a figure that is a draw of the process is averaged over."""

    repeats: int
    min_sample_s: float
    warmup: int
    patience_s: float  # per pass
    max_passes: int
    deadline_s: float = DEADLINE_S
    processes: int = CHAIN_PROCESSES

    @classmethod
    def of(cls, quick: bool) -> Plan:
        if quick:
            return cls(repeats=3, min_sample_s=0.0, warmup=1, patience_s=2.0, max_passes=1,
                       processes=1)
        return cls(repeats=5, min_sample_s=0.01, warmup=2, patience_s=15.0,
                   max_passes=MAX_PASSES)


@dataclass(frozen=True)
class Structure:
    """The structural figures of one pass (units: FLOP/s, bytes/s, bytes)."""

    peak: float
    bandwidth: float
    onchip_bandwidth: float
    onchip_bytes: int
    fresh: tuple[int, float] | None  # (threshold bytes, bytes/s) or None
    bandwidth_kernel: str = ""
    onchip_kernel: str = ""
    lowering: float | None = None  # bytes/s of a lowered convolution's column matrix
    share: tuple[int, float] | None = None  # (fresh_share_bytes, fresh_output_share)
    half_rows: float | None = None
    cold_row: float | None = None  # seconds per weight row of a linear on cold weights
    cold_bytes: int = 0  # bytes through the cache per forward, half the weights from memory
    cold_bandwidth: float | None = None  # bytes/s of weights fetched from memory


def structure_probes(cache: int, fresh: bool, kernels: Sequence[str] = STREAMS,
                     sweep: str = "copy", packed: bool = False) -> list[Probe]:
    """The GEMM and streaming kernels of the structural figures, for a largest cache of
    ``cache`` bytes: ``kernels`` at the DRAM and the cache size, ``sweep`` at growing sizes
    (``fresh``, for eager PyTorch: also the fresh-output comparison, the lowering of a
    convolution, the rows and the cold probes; ``packed``, for a runtime that packs its
    weights once: the cold probes over :func:`packed_cold_counts`)."""
    out = [gemm_probe(GEMM_N)]
    for nbytes in (dram_buffer(cache), onchip_buffer(cache)):
        out += [stream_probe(kind, nbytes) for kind in kernels]
    out += [stream_probe(sweep, nbytes) for nbytes in sweep_buffers(cache)]
    if fresh:
        for nbytes in FRESH_SIZES:
            out += [stream_probe("copy", nbytes), clone_probe(nbytes)]
        out += [lowering_probe(), rows_probe(ROWS_FEW), rows_probe(ROWS_MANY),
                *cold_probes(cache)]
    if packed:
        out += [rows_probe(ROWS_FEW, copies=1), *cold_probes(cache, packed_cold_counts(cache))]
    return list({p.what: p for p in out}.values())  # one probe per kernel and size


def structure_of(seconds: Mapping[str, float], cache: int, fresh: bool,
                 kernels: Sequence[str] = STREAMS, sweep: str = "copy",
                 packed: bool = False) -> Structure:
    """The structural figures from the probes' seconds (by ``what``; see
    :func:`structure_probes` for ``kernels``, ``sweep`` and ``packed``)."""
    peak = rate(gemm_flops(GEMM_N), seconds[f"gemm {GEMM_N}"])

    def best(nbytes: int) -> tuple[float, str]:
        rates = {f"{kind} {size_text(nbytes)}":
                 stream_rate(kind, nbytes, seconds[f"{kind} {size_text(nbytes)}"])
                 for kind in kernels}
        kernel = max(rates, key=lambda k: rates[k])
        return rates[kernel], kernel

    dram, dram_kernel = best(dram_buffer(cache))
    onchip_bw, onchip_kernel = best(onchip_buffer(cache))
    footprints = [(STREAM_BYTES[sweep] * nbytes,
                   stream_rate(sweep, nbytes, seconds[f"{sweep} {size_text(nbytes)}"]))
                  for nbytes in sweep_buffers(cache)]
    held = effective_cache(footprints, onchip_bw, dram, cache)
    found = lowering = None
    if fresh:
        found = fresh_outputs([(n, seconds[f"copy {size_text(n)}"],
                                seconds[f"clone {size_text(n)}"]) for n in FRESH_SIZES])
        lowering = rate(lowering_bytes(), seconds[lowering_probe_name()])
        few = seconds[rows_probe_name(ROWS_FEW)]
        half = half_rows_of(few, seconds[rows_probe_name(ROWS_MANY)])
        cycled = [(n * COLD_CALL_BYTES, seconds[cold_probe_name(n)])
                  for n in cold_counts(cache)]
        cold_bytes = cold_half_bytes(few, cycled)
        cold = cold_row_seconds_of(few, cycled, cold_bytes)
    structure = Structure(peak, dram, onchip_bw, held, found, dram_kernel, onchip_kernel,
                          lowering, half_rows=half if fresh else None,
                          cold_row=cold if fresh else None, cold_bytes=cold_bytes if fresh else 0)
    if packed:
        hot = seconds[rows_probe_name(ROWS_FEW)]
        chains = [(n * COLD_CALL_BYTES, seconds[cold_probe_name(n)])
                  for n in packed_cold_counts(cache)]
        half_bytes = cold_half_bytes(hot, chains)
        fetch = cold_bandwidth_of(hot, chains, half_bytes)
        structure = replace(structure, cold_bytes=half_bytes if fetch else 0,
                            cold_bandwidth=fetch or None)
    return structure


class Runtime(Protocol):
    """What a calibration measures through: its name, the fusion of its device, and how it
    times probes and rows."""

    name: str
    fusion: str
    stream_kernels: tuple[str, ...]
    sweep_kernel: str
    stream_note: str  # how the streaming kernels ran, when not all through the runtime
    #: whether its recurrent layers compute their input projection for the whole sequence at
    #: once (``Device.batched_input_projection``), and where that is said
    batched_input_projection: bool
    projection_note: str

    #: whether it packs a model's weights once, when it loads it (its cold-weight figures
    #: are then a fetch rate, from chains of linears well beyond the cache's size)
    packs_weights_once: bool
    #: whether it times each row on its own, again and again (its outputs land in the
    #: memory the last call freed)
    rows_repeated: bool

    def fresh(self) -> bool:
        """Whether its allocator maps large outputs afresh at every call."""
        ...

    def cold_rows(self, benches: Sequence[Bench]) -> list[bool]:
        """Per row: whether it is timed with its weights coming from memory (among other
        rows that pass hundreds of MiB through the cache between two of its runs)."""
        ...

    def measure(self, probes: Sequence[Probe], benches: Sequence[Bench], plan: Plan,
                timer: TimerLike) -> Pass: ...

    def describe(self) -> str:
        """The runtime and its version, for sources."""
        ...


class Eager:
    """Eager PyTorch: each probe and row timed on its own under ``torch.inference_mode``."""

    name = "eager"
    fusion = "none"
    stream_kernels: tuple[str, ...] = STREAMS
    sweep_kernel = "copy"
    stream_note = ""
    batched_input_projection = True
    projection_note = ("PyTorch's CPU GRU and RNN layers (and LSTM with proj_size) compute the "
                       "input projection of the whole sequence as one linear before the steps "
                       "(FullLayer in aten/src/ATen/native/RNN.cpp); its fp32 LSTM runs "
                       "oneDNN's RNN primitive (mkldnn_rnn_layer), priced the same way, which "
                       "its calibration rows fit better than with the projection in the steps "
                       "(not read in oneDNN's source)")
    packs_weights_once = False  # its matrix products pack their weights at every call
    rows_repeated = True

    def fresh(self) -> bool:
        return True

    def cold_rows(self, benches: Sequence[Bench]) -> list[bool]:
        return [False] * len(benches)  # each row timed on its own, again and again

    def describe(self) -> str:
        return f"eager PyTorch {torch.__version__}, {torch.get_num_threads()} threads" \
            + omp_wait_policy()

    def measure(self, probes: Sequence[Probe], benches: Sequence[Bench], plan: Plan,
                timer: TimerLike) -> Pass:
        with torch.inference_mode():
            timed = {p.what: timer(p.run, plan.repeats, warmup=plan.warmup,
                                   min_sample_s=plan.min_sample_s) for p in probes}
            return Pass(timed, [timer(b.run, plan.repeats, warmup=plan.warmup,
                                      min_sample_s=plan.min_sample_s) for b in benches])


def runtime_of(name: str) -> Runtime:
    """The runtime called ``name`` (``"eager"`` or ``"onnxruntime"``)."""
    if name == "eager":
        return Eager()
    if name == "onnxruntime":
        from .onnx_runtime import OnnxRuntime

        return OnnxRuntime()
    raise ValueError(f"unknown runtime {name!r}: expected 'eager' or 'onnxruntime'")


# --- fitting ------------------------------------------------------------------------------
def structural_device(name: str, found: Structure, fusion: str,
                      memory: int | None, batched_input_projection: bool) -> Device:
    """The device of the structural figures alone (no efficiency, no overhead), its
    recurrent layers' input projection batched as the runtime does it."""
    return Device(name, {"fp32": rounded(found.peak)}, rounded(found.bandwidth),
                  onchip_bytes=found.onchip_bytes,
                  onchip_bandwidth=rounded(found.onchip_bandwidth),
                  fusion=fusion, memory_bytes=memory,
                  batched_input_projection=batched_input_projection, **runtime_figures(found))


def runtime_figures(found: Structure) -> dict[str, Any]:
    """The structural figures beyond the roofline's that ``found`` holds, as the device file
    writes them: fresh output memory, its share below the threshold, ``half_rows``, the
    lowering rate, the cost per row of weights from memory (eager PyTorch), the rate they
    are fetched at (a runtime that packs its weights once)."""
    out: dict[str, Any] = {}
    if found.fresh:
        out["fresh_output_bytes"] = int(found.fresh[0])
        out["fresh_output_bandwidth"] = rounded(found.fresh[1])
    if found.share:
        out["fresh_share_bytes"] = int(found.share[0])
        out["fresh_output_share"] = round(found.share[1], 3)
    if found.half_rows:
        out["half_rows"] = round(found.half_rows, 2)
    if found.lowering:
        out["lowering_bandwidth"] = rounded(found.lowering)
    if found.cold_row and found.cold_bytes:
        out["cold_weight_row_seconds"] = rounded(found.cold_row)
        out["cold_weight_bytes"] = int(found.cold_bytes)
    if found.cold_bandwidth and found.cold_bytes:
        out["cold_weight_bandwidth"] = rounded(found.cold_bandwidth)
        out["cold_weight_bytes"] = int(found.cold_bytes)
    return out


def fit_rows(device: Device, benches: Sequence[Bench], profiles: Sequence[Any],
             seconds: Sequence[float], free: Sequence[str],
             cold: Sequence[bool] | None = None, repeated: bool = False) -> Fit:
    """Fit ``free`` figures of ``device`` to the rows (one term per kernel), in two stages:
    the overheads to the rows of tiny operators (family ``overhead``: their arithmetic and
    traffic take nanoseconds, so they measure nothing else), then the efficiencies and
    compute ceilings to every row with those overheads. Only the free figures some row
    prices with are fitted. The returned fit holds both stages' figures and every row.
    A row flagged in ``cold`` was timed with its weights coming from memory (among other
    rows that pass hundreds of MiB through the cache): it is priced so (``cold_share`` 1,
    :func:`~pytest_flopbudget.devices.roofline.price`); the others by their footprint.
    ``repeated``: each row was timed on its own, again and again, so its outputs land in
    the memory its last call freed, not in fresh pages (below ``fresh_output_bytes``)."""
    flags = list(cold) if cold is not None else [False] * len(benches)
    if len(flags) != len(benches):
        raise ValueError(f"{len(flags)} cold flags for {len(benches)} rows")
    fit_input = [Row(b.what, tuple(terms(predict(p, device, 1.0 if c else None, repeated),
                                         per_kernel=True)), s)
                 for b, p, s, c in zip(benches, profiles, seconds, flags, strict=True)]
    tiny = [r for r, b in zip(fit_input, benches, strict=True) if b.family == "overhead"]
    overheads = [f for f in free if f.startswith("overheads.") or f == "overhead"]
    others = [f for f in free if f not in overheads]
    first = None
    used = used_by(device, tiny, overheads)
    if tiny and any(used.values()):
        first = fit(device, tiny, [f for f in overheads if used[f]],
                    cite="the calibration rows of tiny operators")
        device = first.device
    used = used_by(device, fit_input, others)
    if first is not None and len(tiny) == len(fit_input) and not any(used.values()):
        return first  # only tiny rows, and nothing else to fit
    second = fit(device, fit_input, [f for f in others if used[f]],
                 cite="the calibration rows")
    if first is None:
        return second
    figures = {**first.figures, **second.figures}
    return Fit(second.device, figures, second.rows, used_by(device, fit_input, list(figures)))


# --- the calibration ------------------------------------------------------------------------
@dataclass(frozen=True)
class ShareCount:
    """The fresh-page shares of the residual chains as counted: ``per_process``, one
    ``[(output bytes, share)]`` per process that counted (:data:`SHARE_SIZES` in order);
    ``where``, in words, which processes those were."""

    per_process: Sequence[Sequence[tuple[int, float]]] = ()
    where: str = ""

    def per_size(self) -> str:
        """Each size's shares, process by process: ``"4 MiB: 0.217, 0.670; 8 MiB: ..."``."""
        return "; ".join(
            f"{size_text(size)}: " + ", ".join(f"{c[i][1]:.3f}" for c in self.per_process)
            for i, size in enumerate(SHARE_SIZES))


@dataclass
class Calibration:
    """What :func:`calibrate` measured and fitted: the device, its table as written, the
    passes, whether they agreed, and the figures that could only be measured disturbed."""

    device: Device
    table: dict[str, Any]
    passes: list[Pass]
    agreed: bool
    disturbed: list[str] = field(default_factory=list)
    fit: Fit | None = None

    @property
    def noisy(self) -> bool:
        return not self.agreed or bool(self.disturbed)


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
              log: Callable[[str], None] = print, timer: TimerLike | None = None,
              runtime: str = "eager", name: str = HOST,
              benches: Sequence[Bench] | None = None) -> Device:
    """Measure this machine through ``runtime``, write it as device ``name`` to ``path`` and
    return it (see the module docstring for what is measured and fitted).

    ``path``: the TOML file to write (default ``.flopbudget/host.toml`` under the current
    directory), replaced atomically. ``quick``: one pass of fewer, shorter samples (a few
    seconds, for tests; noisier figures, and the file says the passes were not compared).
    ``log`` receives progress lines. ``timer`` times each probe and row (default: a
    :class:`~.timing.Timer` per pass with the plan's patience); tests pass a fake one, and
    ``benches``, fewer rows than :func:`~.microbench.rows` (the default).

    Figures (units): ``peak_flops.fp32`` FLOP/s, ``bandwidth`` and ``onchip_bandwidth``
    bytes/s, ``onchip_bytes`` and ``memory_bytes`` bytes, ``overhead(s)`` seconds per
    operator, ``efficiency`` and ``compute_efficiency`` fractions in ``(0, 1]``. Raises
    ``OSError`` before measuring anything when ``path`` cannot be written, ``ImportError``
    (saying what to install) when ``runtime`` needs packages that are missing.
    """
    return run_calibration(path, quick=quick, log=log, timer=timer, runtime=runtime,
                           name=name, benches=benches).device


def run_calibration(path: Path | None = None, *, quick: bool = False,
                    log: Callable[[str], None] = print, timer: TimerLike | None = None,
                    runtime: str = "eager", name: str = HOST,
                    benches: Sequence[Bench] | None = None) -> Calibration:
    """:func:`calibrate`, returning everything it measured (:class:`Calibration`)."""
    path = Path(DEFAULT_PATH if path is None else path)
    _check_destination(path)
    engine = runtime_of(runtime)  # an ImportError here says what to install
    plan = Plan.of(quick)
    started = time.perf_counter()
    cpu = cpu_model()
    today = _dt.date.today().isoformat()
    context = f"{cpu}, {engine.describe()}, {today}"
    fake_timer = timer
    sources: dict[str, str] = {}
    cache_found = largest_cache()
    if cache_found is None:
        cache = FALLBACK_ONCHIP
        cache_text = f"no cache size readable under {CACHE_DIR}; assumed 1 MiB"
    else:
        cache, cache_text = cache_found
    memory = mem_total()
    if memory is not None:
        sources["memory_bytes"] = f"read from {MEMINFO} (MemTotal)"

    benches = list(rows() if benches is None else benches)
    log(f"counting the {len(benches)} calibration rows with the tracer")
    profiles = [profile(b.module, *b.inputs, trace="fake") for b in benches]
    packed = engine.packs_weights_once
    probes = structure_probes(cache, engine.fresh(), engine.stream_kernels,
                              engine.sweep_kernel, packed)
    passes: list[Pass] = []
    agreed = False
    for number in range(1, plan.max_passes + 1):
        log(f"pass {number}: {len(probes)} structural kernels and {len(benches)} rows "
            f"through {engine.name}")
        # each pass has its own patience for samples disturbed by other processes
        passes.append(engine.measure(probes, benches, plan,
                                     fake_timer or Timer(plan.patience_s)))
        if number > 1:
            median, p90 = agreement(passes[-2].row_seconds, passes[-1].row_seconds)
            agreed = agree(passes[-2].row_seconds, passes[-1].row_seconds)
            log(f"pass {number} against pass {number - 1}: rows changed by a median "
                f"{median:.1%}, 9 in 10 within {p90:.1%}: "
                f"{'agreed' if agreed else 'not yet agreed'}")
            if agreed:
                break
        if time.perf_counter() - started > plan.deadline_s and number < plan.max_passes:
            log(f"stopping after pass {number}: {time.perf_counter() - started:.0f} s spent "
                f"(the machine is slow or busy)")
            break

    missing = next((p.missing for p in passes if p.missing), "")
    if missing:  # the chains of linears could not be timed: no cold-weight figures
        log(f"warning: {missing}; the device gets no cold_weight_bandwidth or "
            f"cold_weight_bytes")
        packed = False
    kernels = (engine.stream_kernels, engine.sweep_kernel, packed)
    structures = [structure_of({k: t.seconds for k, t in p.probes.items()}, cache,
                               engine.fresh(), *kernels) for p in passes]
    probe_seconds = {what: statistics.median(p.probes[what].seconds for p in passes)
                     for what in passes[0].probes if all(what in p.probes for p in passes)}
    found = structure_of(probe_seconds, cache, engine.fresh(), *kernels)
    counted = ShareCount()
    if engine.fresh() and found.fresh:
        log(f"counting the page faults of residual chains on "
            f"{', '.join(size_text(n) for n in SHARE_SIZES)} tensors")
        try:
            seeds = QUICK_SHARE_SEEDS if quick else SHARE_SEEDS
            shares = process_shares(seeds)
            counted = ShareCount(shares, f"{len(shares)} fresh processes, hash seeds "
                                         f"{seeds[0]} to {seeds[-1]}")
        except ShareCountError as exc:
            log(f"{exc}; counting in this process instead (one draw of the allocator's "
                f"state, not the mean over processes)")
            counted = ShareCount([fresh_shares()], f"this process only ({exc})")
        # sizes from fresh_output_bytes up are all fresh already: not part of the share
        means = [(size, share) for size, share in mean_shares(counted.per_process)
                 if size < found.fresh[0]]
        found = replace(found, share=share_of(means) if means else None)
    seconds = median_over([p.row_seconds for p in passes])
    free = FREE.get(engine.name, FREE["eager"])
    batched = engine.batched_input_projection
    base = structural_device(name, found, engine.fusion, memory, batched)
    cold = engine.cold_rows(benches)
    repeated = engine.rows_repeated
    result = fit_rows(base, benches, profiles, seconds, free, cold, repeated)
    per_pass = [fit_rows(structural_device(name, s, engine.fusion, memory, batched), benches,
                         profiles, p.row_seconds, free, cold, repeated).figures
                for s, p in zip(structures, passes, strict=True)] if len(passes) > 1 else []
    disturbed = sorted({t_what for p in passes for t_what, t in
                        [*p.probes.items(), *zip((b.what for b in benches), p.rows, strict=True)]
                        if t.disturbed})
    table, device = _write(path, name, engine, quick, plan, context, cache, cache_text,
                           memory, sources, found, structures, result, per_pass, passes, agreed,
                           disturbed, benches, started, counted)
    log(f"peak fp32 {found.peak / 1e9:.1f} GFLOP/s, DRAM {found.bandwidth / 1e9:.1f} GB/s, "
        f"cache {found.onchip_bandwidth / 1e9:.1f} GB/s up to "
        f"{found.onchip_bytes / 2**20:.1f} MiB"
        + (f", fresh outputs from {size_text(found.fresh[0])} at "
           f"{found.fresh[1] / 1e9:.2f} GB/s" if found.fresh else "")
        + (f" ({found.share[1]:.1%} of smaller ones from {size_text(found.share[0])})"
           if found.share else "")
        + (f", lowering {found.lowering / 1e9:.2f} GB/s" if found.lowering else "")
        + (f", half rows {found.half_rows:.1f}" if found.half_rows else "")
        + (f", weights from memory from {found.cold_bytes / MiB:.1f} MiB (half) at "
           f"{found.cold_row * 1e6:.3f} us per row" if found.cold_row and found.cold_bytes
           else "")
        + (f", weights from memory from {found.cold_bytes / MiB:.1f} MiB (half) fetched at "
           f"{found.cold_bandwidth / 1e9:.1f} GB/s" if found.cold_bandwidth
           and found.cold_bytes else ""))
    median, worst = result.summary()
    log(f"fitted {len(result.figures)} figures to {len(benches)} rows: median |error| "
        f"{median:.1%}, worst {worst:.1%}")
    calibration = Calibration(device, table, passes, agreed or quick, disturbed, result)
    if len(passes) < 2 and not quick:
        log("warning: stopped after one pass, not compared with a second (see the file's "
            "header); calibrate again on a quiet machine")
    elif not agreed and not quick:
        log(f"warning: the machine was too noisy to trust: {len(passes)} passes never agreed "
            f"(see the file's header); calibrate again on a quiet machine")
    if disturbed:
        log(f"warning: other processes disturbed samples that had to be kept "
            f"({len(disturbed)} probes and rows, e.g. {', '.join(disturbed[:3])}); the file "
            f"says so")
    log(f"wrote {path} in {time.perf_counter() - started:.1f} s")
    return calibration


def _spread(values: Sequence[float], unit: float = 1.0) -> str:
    """``"lo to hi"`` of ``values`` in ``unit``s, 3 significant digits (whole numbers from
    1000 up)."""
    def shown(value: float) -> str:
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"

    return f"{shown(min(values) / unit)} to {shown(max(values) / unit)}"


def _write(path: Path, name: str, engine: Runtime, quick: bool, plan: Plan, context: str,
           cache: int, cache_text: str, memory: int | None, sources: dict[str, str],
           found: Structure,
           structures: Sequence[Structure], result: Fit, per_pass: Sequence[dict[str, float]],
           passes: Sequence[Pass], agreed: bool, disturbed: Sequence[str],
           benches: Sequence[Bench], started: float,
           counted: ShareCount) -> tuple[dict[str, Any], Device]:
    """Assemble the device table with its sources, check it, write it; ``(table, device)``."""
    from ..devices.device_file import host_device

    n = len(passes)
    how = f"median over {n} pass{'es' * (n != 1)} of the median of {plan.repeats} samples"

    def spread(values: Sequence[float], unit: float, text: str) -> str:
        return f", {_spread(values, unit)} {text} over passes" if len(values) > 1 else ""

    peaks = [s.peak for s in structures]
    kinds = " and ".join(", ".join(engine.stream_kernels).rsplit(", ", 1)) + engine.stream_note
    sweep = {"copy": "copies", "add": "adds", "sum": "sums"}[engine.sweep_kernel]
    sources["peak_flops.fp32"] = (
        f"measured: {GEMM_N}x{GEMM_N} fp32 GEMM (2n^3 FLOPs), {how}"
        f"{spread(peaks, 1e9, 'GFLOP/s')}, {context}")
    sources["bandwidth"] = (
        f"measured: the fastest of {kinds} over {size_text(dram_buffer(cache))} "
        f"buffers (4x the largest cache; bytes read + written), here {found.bandwidth_kernel},"
        f" {how}{spread([s.bandwidth for s in structures], 1e9, 'GB/s')}, {context}")
    sources["onchip_bandwidth"] = (
        f"measured: the fastest of {kinds} over {size_text(onchip_buffer(cache))} "
        f"buffers (1/16 of the largest cache), here {found.onchip_kernel}, {how}"
        f"{spread([s.onchip_bandwidth for s in structures], 1e9, 'GB/s')}, {context}")
    sources["onchip_bytes"] = (
        f"measured: the largest footprint (read + written bytes) of {sweep} of "
        f"{size_text(sweep_buffers(cache)[0])} to {size_text(sweep_buffers(cache)[-1])} "
        f"buffers still streamed at the geometric mean of the cache and DRAM bandwidths or "
        f"faster, at most the largest cache ({cache_text}), {how}"
        f"{spread([s.onchip_bytes for s in structures], 2**20, 'MiB')}, {context}")
    table: dict[str, Any] = {
        "description": "",
        "default_dtype": "fp32",
        "fusion": engine.fusion,
        "bandwidth": rounded(found.bandwidth),
        "onchip_bytes": int(found.onchip_bytes),
        "onchip_bandwidth": rounded(found.onchip_bandwidth),
    }
    sources["fusion"] = (
        "derived: eager PyTorch runs every aten operator on its own" if engine.fusion == "none"
        else "derived: ONNX Runtime's CPU graph optimisations at their default level "
             "(see pytest_flopbudget/devices/fusion.py)")
    sources["default_dtype"] = "derived: the calibration measures fp32"
    if engine.batched_input_projection:
        table["batched_input_projection"] = True
        sources["batched_input_projection"] = f"derived: {engine.projection_note}"
    table.update(runtime_figures(found))
    if found.fresh:
        sizes = ", ".join(size_text(s) for s in FRESH_SIZES)
        sources["fresh_output_bytes"] = (
            f"measured: the smallest of {sizes} from which a copy into a new tensor (clone) "
            f"takes at least {FRESH_RATIO:g}x a copy into a preallocated one, {how}, {context}")
        sources["fresh_output_bandwidth"] = (
            f"measured: {size_text(FRESH_SIZES[-1])} over the extra seconds of a clone "
            f"against an in-place copy, {how}, {context}")
    if found.share:
        counted_in = counted.where
        sources["fresh_share_bytes"] = (
            f"counted: the smallest of {', '.join(size_text(n) for n in SHARE_SIZES)} whose "
            f"residual chains of operators write at least {SHARE_MIN:.0%} of their bytes to "
            f"fresh pages (minor page faults, the mean over {counted_in}), {context}")
        sources["fresh_output_share"] = (
            f"counted: the mean, over that size and the larger ones, of the share of bytes the "
            f"residual chains write to fresh pages, counted in {counted_in} (per process: "
            f"{counted.per_size()}), {context}")
    if found.half_rows:
        halves = [s.half_rows for s in structures if s.half_rows is not None]
        few, many = rows_probe_name(ROWS_FEW), rows_probe_name(ROWS_MANY)
        sources["half_rows"] = (
            f"measured: (m q - f) / (1 - q) with q the seconds of {few} over those of {many} "
            f"(f = {ROWS_FEW}, m = {ROWS_MANY}: a product of r rows computes at r / (r + "
            f"half_rows) of its ceiling), {how}"
            f"{spread(halves, 1.0, 'rows')}, {context}")
    if found.lowering:
        lowered = [s.lowering for s in structures if s.lowering]
        sources["lowering_bandwidth"] = (
            f"measured: the {lowering_bytes() / MiB:.1f} MiB column matrix of "
            f"{lowering_probe_name()} (PyTorch lowers it; its product with one output channel "
            f"reads the matrix once) over its seconds, {how}"
            f"{spread(lowered, 1e9, 'GB/s')}, {context}")
    if found.cold_row and found.cold_bytes:
        copies = cold_counts(cache)
        rows_s = [s.cold_row for s in structures if s.cold_row]
        halves_b = [s.cold_bytes for s in structures if s.cold_bytes]
        sources["cold_weight_row_seconds"] = (
            f"measured: the median extra seconds, over {rows_probe_name(ROWS_FEW)} (one weight "
            f"matrix, held in the cache), of the cycles through its copies all from memory "
            f"(from 1.5 times cold_weight_bytes, and {copies[-1]} copies), per row of the "
            f"{ROWS_WIDTH}-row weight matrix, {how}{spread(rows_s, 1e-6, 'us')}, {context}")
        sources["cold_weight_bytes"] = (
            f"measured: the bytes through the cache (weights read, outputs written) at which "
            f"half the weights come from memory, interpolated between the cycles of the "
            f"linear through {', '.join(str(n) for n in copies)} copies of its "
            f"{WEIGHT_BYTES / MiB:g} MiB weights (the share of each: its extra seconds over "
            f"one weight matrix's, against those of the last, through four times the cache), "
            f"{how}{spread(halves_b, MiB, 'MiB')}, {context}")
    if found.cold_bandwidth and found.cold_bytes:
        chains = packed_cold_counts(cache)
        rates = [s.cold_bandwidth for s in structures if s.cold_bandwidth]
        halves_b = [s.cold_bytes for s in structures if s.cold_bytes]
        what = (f"chains of {', '.join(str(n) for n in chains)} linears of {ROWS_FEW} rows x "
                f"{ROWS_WIDTH} -> {ROWS_WIDTH} on distinct {WEIGHT_BYTES / MiB:g} MiB weight "
                f"matrices (ONNX MatMul nodes, each chain in a session of its own), timed per "
                f"linear against one linear on one matrix")
        sources["cold_weight_bandwidth"] = (
            f"measured: a weight matrix's bytes over the median extra seconds of the chains "
            f"all from memory (from 1.5 times cold_weight_bytes, and {chains[-1]} linears) "
            f"over one linear whose matrix the cache holds: its weights are fetched before "
            f"the arithmetic, not under it; {what}, {how}{spread(rates, 1e9, 'GB/s')}, "
            f"{context}")
        sources["cold_weight_bytes"] = (
            f"measured: the bytes through the cache (weights read, outputs written) at which "
            f"half the weights come from memory, interpolated between {what} (the share of "
            f"each: its extra seconds over one linear's, against those of the last, through "
            f"four times the cache), {how}{spread(halves_b, MiB, 'MiB')}, {context}")
    if memory is not None:
        table["memory_bytes"] = int(memory)
    table["peak_flops"] = {"fp32": rounded(found.peak)}

    figures = dict(result.figures)
    derived = derive(figures)
    groups: dict[str, dict[str, float]] = {"efficiency": {}, "compute_efficiency": {},
                                           "overheads": {}}
    for figure, value in sorted(figures.items()):
        group, _, key = figure.partition(".")
        users = _users(figure, result)
        per = [f[figure] for f in per_pass if figure in f]
        unit, text = (1e-6, "us") if group == "overheads" else (1.0, "")
        spread_text = f", {_spread(per, unit)}{(' ' + text) if text else ''} over passes" \
            if len(per) > 1 else ""
        sources[figure] = (
            f"fitted: robust least squares on the relative error of {len(benches)} rows "
            f"measured through {engine.describe()} ({how}), priced on the structural "
            f"figures; rows that price with it: {users}{spread_text}; {context}")
        groups[group][key] = rounded(value)
    for figure, (value, how_derived) in derived.items():
        if figure in figures:
            continue
        if figure == "overhead":
            table["overhead"] = rounded(value)
        else:
            group, _, key = figure.partition(".")
            groups[group][key] = rounded(value)
        sources[figure] = f"derived: {how_derived}"
    for group, entries in groups.items():
        if entries:
            table[group] = dict(sorted(entries.items()))
    verdict = _verdict(quick, agreed, passes, disturbed)
    table["description"] = (f"This machine through {engine.describe()} ({context.split(',')[0]}),"
                            f" calibrated {context.rsplit(', ', 1)[-1]} by 'python -m "
                            f"pytest_flopbudget calibrate"
                            f"{' --runtime ' + engine.name if engine.name != 'eager' else ''}'"
                            f"{'; ' + verdict if verdict.startswith('WARNING') else ''}")
    order = ("peak_flops.fp32", "bandwidth", "onchip_bandwidth", "onchip_bytes",
             "fresh_output_bytes", "fresh_output_bandwidth", "fresh_share_bytes",
             "fresh_output_share", "half_rows", "lowering_bandwidth", "cold_weight_row_seconds",
             "cold_weight_bandwidth", "cold_weight_bytes",
             "memory_bytes", "fusion", "batched_input_projection",
             "default_dtype", "overhead")
    keys = [k for k in order if k in sources] + sorted(k for k in sources if k not in order)
    table["sources"] = {k: sources[k] for k in keys}
    elapsed = time.perf_counter() - started
    command = f"python -m pytest_flopbudget calibrate{' --quick' if quick else ''}" + \
        (f" --runtime {engine.name}" if engine.name != "eager" else "") + \
        (f" --name {name}" if name != HOST else "")
    header = [f"Written by '{command}' in {elapsed:.1f} s.",
              f"Every figure is measured on this machine or fitted to rows measured here; see "
              f"[devices.{name}.sources].", verdict, "",
              "Residuals of the calibration rows (measured through "
              f"{engine.name}, predicted with the fitted figures):",
              *result.residual_lines()]
    text = device_toml(name, table, "\n".join(header))
    device = host_device(text, str(path), name)  # what tests will read back, checked first
    atomic_write(path, text)
    return table, device


def _verdict(quick: bool, agreed: bool, passes: Sequence[Pass],
             disturbed: Sequence[str]) -> str:
    """One line on how far the measurements can be trusted."""
    if quick:
        text = "Quick calibration: one pass, not compared with a second; noisier figures."
    elif len(passes) < 2:
        text = ("WARNING: stopped after one pass (the time allowed was spent), not compared "
                "with a second: not known to be stable.")
    elif agreed:
        median, p90 = agreement(passes[-2].row_seconds, passes[-1].row_seconds)
        text = (f"Stable: passes {len(passes) - 1} and {len(passes)} agreed (rows changed by a "
                f"median {median:.1%}, 9 in 10 within {p90:.1%}).")
    else:
        median, p90 = agreement(passes[-2].row_seconds, passes[-1].row_seconds)
        text = (f"WARNING: too noisy to trust: {len(passes)} passes never agreed (last two: "
                f"rows changed by a median {median:.1%}, 9 in 10 within {p90:.1%}; "
                f"agreement needs {AGREE_MEDIAN:.0%} and {AGREE_P90:.0%}).")
    if disturbed:
        text += (f" WARNING: other processes disturbed samples that had to be kept for "
                 f"{len(disturbed)} probes and rows ({', '.join(disturbed[:5])}"
                 f"{', ...' if len(disturbed) > 5 else ''}).")
    return text


def _users(figure: str, result: Fit) -> str:
    """The rows whose prediction uses ``figure`` (at most 8 named)."""
    used = result.users.get(figure, [])
    shown = ", ".join(used[:8])
    return f"{shown}{f' (and {len(used) - 8} more)' if len(used) > 8 else ''}"


__all__ = ["AGREE_MEDIAN", "AGREE_P90", "FREE", "Calibration", "Plan", "Structure",
           "agree", "agreement", "calibrate", "derive", "run_calibration", "structure_of",
           "structure_probes"]
