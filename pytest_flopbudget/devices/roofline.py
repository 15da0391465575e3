"""Roofline latency: each kernel takes ``max(F / peak, B / bandwidth)`` on a device.

Seed 003's model, applied per kernel and summed (layers alternate between compute- and
memory-bound, so one max over the whole model would be wrong). A *kernel* is what the device's
runtime executes (:mod:`.fusion`): one counted operator for eager PyTorch, a fused group for a
compiling runtime. For one kernel::

    t = max(flops / (usable_peak[dtype] * utilisation * compute_efficiency) / efficiency,
            (memory_seconds - dram_seconds) / efficiency + dram_seconds)
        + overhead * steps + link_seconds + fresh_seconds + lowering_seconds
        + cold_weight_seconds

* ``usable_peak`` is the device's peak at the profile's precision (else its
  ``default_dtype``) times ``cores_used / cores``; ``utilisation`` is the fraction of the MAC
  array a product's channels keep busy once padded to the device's ``tile``, times
  ``rows / (rows + half_rows)`` for a product of few rows on a device that names
  ``half_rows``.
* ``memory_seconds``: activations (what the kernel reads and writes besides weights) at
  ``onchip_bandwidth`` when they fit in ``onchip_bytes``; a larger footprint keeps the share
  ``onchip_bytes / activations`` of them in the cache and moves the rest at ``bandwidth``
  (:func:`activation_split`); weights held
  in the ``weight_cache_bytes`` (the first weights in execution order that fit) at the
  on-chip bandwidth, the others at ``bandwidth``, or, when the device names a
  ``link_bandwidth``, streamed over that link after the compute (``link_seconds``). A device
  without these figures prices every byte at ``bandwidth``.
* ``efficiency``, ``compute_efficiency`` and ``overhead`` are the device's entries for the
  kernel's aten operator, kind or class (most specific first): ``compute_efficiency`` is the
  compute ceiling of the kernel (the fraction of the peak its arithmetic attains, a
  transcendental function's or a convolution's), ``efficiency`` scales the roofline but
  for ``dram_seconds``; ``overhead`` is paid once per recurrent step.
* ``dram_seconds``: on a device that names an ``onchip_bandwidth`` (a cache before its
  memory), the part of ``memory_seconds`` spent on bytes that come from memory at
  ``bandwidth`` (activations beyond the cache, weights outside the weight cache, a recurrent
  layer's re-reads too large for the cache). A kernel's code sets how fast it streams what
  the cache holds, not how fast memory delivers the rest, so ``efficiency`` does not slow
  them. Measured through ONNX Runtime here: inside a model, its Mul and Add of 16 MiB took
  0.59-0.72 and 0.93-1.20 ms against a bare roofline of 0.58 and 1.04 ms (profiled, ten
  runs), while the calibration's rows fitted its elementwise efficiency at 0.30-0.45, which,
  dividing all of their time, priced them 2.2x too slow (in a chain of layers its Add of
  two 4 MiB tensors took 0.09-0.10 ms, about the cache's bandwidth; as a row of the
  calibration suite 0.12-0.27 ms). On a device without an ``onchip_bandwidth`` every byte
  moves at ``bandwidth``, and ``efficiency`` slows them all.
* ``fresh_seconds``: a kernel that writes at least ``fresh_output_bytes`` pays for first
  touching that fresh output memory at ``fresh_output_bandwidth`` (page faults of an eager
  runtime whose allocator maps large outputs afresh at every call), on top of the rest; one
  that writes at least ``fresh_share_bytes`` (but less) pays ``fresh_output_share`` of that
  (:func:`fresh_share`).
* ``lowering_seconds``: a convolution eager PyTorch lowers to a column matrix (im2col,
  vol2col; ``lowered`` elements, :mod:`pytest_flopbudget.counting.ops.convolution`) writes
  that matrix at ``lowering_bandwidth`` before its product, on a device that names one.
* ``cold_weight_seconds``: on a device that names ``cold_weight_row_seconds``, a matrix
  product on the model's weights pays that per row of its weight matrices (``weight_rows``)
  times the share of the model's weights that come from memory at every forward
  (:func:`cold_weight_share`, from the device's ``cold_weight_bytes`` and what the forward
  reads of weights and writes: a cache keeps the weights of a small model between
  forwards, not those of a large one). Eager
  PyTorch's matrix products fetch such weights in a pass the arithmetic does not hide: here
  about 0.1 us per row (0.09-0.2 over rows of 256 to 1536 features), whatever the rows of
  the input (1 to 256). The roofline's own terms price the weights as calibrated, on cached
  weights; this is what memory adds to that. On a device that names
  ``cold_weight_bandwidth``, that share of a matrix product's weights (those not in a
  weight cache) leaves the roofline's memory term and is fetched at that rate, added to the
  rest: ONNX Runtime's prepacked products fetch weights from memory before their
  arithmetic, not under it (here 16 to 64 rows on 1 to 4 MiB of weights took their bytes
  at 41-65 GB/s more than on weights in the cache, against a DRAM bandwidth of 46-48).
* A recurrent operator runs ``T`` dependent steps and re-reads its recurrent weights at every
  step from memory unless they fit in ``onchip_bytes``; when they fit and the device names an
  ``onchip_bandwidth`` (a cache), every step reads them again from there. On a device that
  names ``batched_input_projection`` its input projection is a kernel of its own before the
  steps (:func:`split_recurrent`).
* A kernel that moves and computes nothing (an eval-mode dropout) takes no time.
* On a device with a ``pipeline_latency_factor`` (a dataflow pipeline) the sum is the
  per-frame time of the filled pipeline; one inference's latency is that factor times it.

Every figure a device declares is finite and positive, but some are still absurd
(``peak_flops = 1e-320``, ``overhead = 1e308``): a prediction that no float holds in
microseconds, the finest unit a report shows, is a :class:`DeviceError` naming the device and
the figures behind the term that overflowed, never an ``inf`` in a report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

from ..core.access import ZERO_ACCESS, Access
from ..core.dtypes import itemsize
from ..core.numbers import finite
from ..core.op_classes import lookup_keys
from ..core.paths import under
from .device import Device, DeviceError
from .fusion import Record, Unit, units
from .project import get_device


class LayerRow(Protocol):
    """What the roofline reads of a profile's layer row: its module path and kind."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...


class Profile(Protocol):
    """What the roofline reads of a profile (``counting.profile.ModelProfile``); one that
    also has ``weight_bytes_at(dtype)`` (its unique weights) counts a weight several calls
    read once in the cache footprint (:func:`footprint`)."""

    @property
    def records(self) -> Sequence[Record]: ...
    @property
    def layers(self) -> Sequence[LayerRow]: ...
    @property
    def dtype(self) -> str | None: ...


@dataclass(frozen=True)
class OpTime:
    """Predicted time of one kernel (a counted operator or a fused group), in seconds.

    ``op``/``module``/``op_class``: its (first) operator; ``ops``: every aten operator it
    runs (a recurrent layer's input projection run on its own is ``<op>.input_projection``,
    :func:`split_recurrent`), ``modules`` the modules they belong to (more than one when
    fused); ``bytes``: its traffic at the device dtype, recurrent re-reads included. The
    terms: ``compute_seconds`` and ``memory_seconds`` (already divided by ``efficiency``,
    all but the memory term's ``dram_seconds``), ``overhead_seconds``,
    ``link_seconds`` (weights streamed over the host link), ``fresh_seconds`` (first touch of
    a fresh output), ``lowering_seconds`` (the column matrix of a lowered convolution),
    ``cold_weight_seconds`` (weights fetched from memory).
    ``bare_seconds`` is the larger of the two roofline terms before ``efficiency`` and
    ``compute_efficiency``, which are ``bare_compute`` and ``bare_memory``; ``dram_seconds``
    is the part of ``bare_memory`` that comes from memory beyond a cache, which
    ``efficiency`` does not slow (see the module docstring); ``launches`` is
    how many overheads it
    pays; ``efficiency_key``/``overhead_key`` are the device table entries that priced it (for
    fitting a device to measurements); ``kind`` and ``runs_as`` are its (first) operator's
    (``counting.records.OpRecord``).
    """

    op: str
    module: str
    op_class: str
    flops: int
    bytes: int
    compute_seconds: float
    memory_seconds: float
    overhead_seconds: float
    seconds: float
    ops: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    link_seconds: float = 0.0
    fresh_seconds: float = 0.0
    lowering_seconds: float = 0.0
    cold_weight_seconds: float = 0.0
    bare_seconds: float = 0.0
    efficiency: float = 1.0
    compute_efficiency: float = 1.0
    bare_compute: float = 0.0
    bare_memory: float = 0.0
    dram_seconds: float = 0.0
    launches: int = 0
    efficiency_key: str = ""
    overhead_key: str = ""
    kind: str = ""
    runs_as: str = ""

    @property
    def bound(self) -> str:
        return "compute" if self.compute_seconds >= self.memory_seconds else "memory"

    @property
    def fixed_seconds(self) -> float:
        """The terms no efficiency or overhead scales: fresh outputs, lowering and cold
        weights, in seconds."""
        return self.fresh_seconds + self.lowering_seconds + self.cold_weight_seconds

    @property
    def fused(self) -> bool:
        """True for a group of several operators run as one kernel."""
        return len(self.ops) > 1


def _key(table: object, keys: tuple[str, ...], fallback: str) -> str:
    return next((k for k in keys if k in table), fallback)  # type: ignore[operator]


@dataclass
class _Placement:
    """Where weights live: the cache fills in execution order."""

    cache_left: int

    def take(self, weight_bytes: int) -> int:
        """Bytes of ``weight_bytes`` that fit in what is left of the weight cache."""
        cached = min(weight_bytes, max(self.cache_left, 0))
        self.cache_left -= weight_bytes
        return cached


def activation_split(nbytes: int, device: Device) -> tuple[float, float]:
    """``(seconds from the cache, seconds from memory beyond it)`` to move ``nbytes`` of
    activations: at ``onchip_bandwidth`` when they fit in ``onchip_bytes``; beyond, the share
    ``onchip_bytes / nbytes`` of them still comes from the cache (what a cache keeps of a
    stream larger than itself) and the rest from memory at ``bandwidth``. A device without
    ``onchip_bandwidth`` moves them all at ``bandwidth``, counted as from the cache (its
    first level: ``efficiency`` slows them, :func:`unit_time`)."""
    onchip_bw = device.onchip_bandwidth
    if not onchip_bw or not nbytes:
        return nbytes / device.bandwidth, 0.0
    hit = min(1.0, device.onchip_bytes / nbytes)
    return nbytes * hit / onchip_bw, nbytes * (1 - hit) / device.bandwidth


def fresh_share(written: int, device: Device, repeated: bool = False) -> float:
    """Share of an output of ``written`` bytes that lands in fresh memory: 1 from
    ``fresh_output_bytes``, ``fresh_output_share`` from ``fresh_share_bytes`` below it, else
    0. ``repeated``: the output of one operator run again and again (a calibration row),
    which below ``fresh_output_bytes`` lands in the block its last call freed: 0 there."""
    if written and written >= device.fresh_output_bytes:
        return 1.0
    if repeated:
        return 0.0
    if device.fresh_output_share and written and written >= device.fresh_share_bytes:
        return device.fresh_output_share
    return 0.0


def cold_weight_share(footprint: int, device: Device) -> float:
    """Share of a model's weights that a device reads from memory at every forward, for a
    forward that reads ``footprint`` bytes of weights and writes its outputs besides (their
    lines take cache room too): ``footprint / cold_weight_bytes - 1/2`` between 0 and 1 (none
    up to half of ``cold_weight_bytes``, half at it, all from 1.5 times it; 0 on a device
    without the figure or a cost for it, ``cold_weight_row_seconds`` or
    ``cold_weight_bandwidth``). Measured here, eager PyTorch (linears of 2.25 MiB each run in
    turn, against one run again; 4 runs): 0-15% from memory at 9 MiB in all, 28-43% at 13.5,
    47-82% at 18 and 95-120% at 27 MiB; half at 14.9-18.2 MiB. ONNX Runtime, which packs its
    weights once, keeps them far longer (one run: none at 36 MiB, 56% at 54, all at 135)."""
    half = device.cold_weight_bytes
    if not (device.cold_weight_row_seconds or device.cold_weight_bandwidth) or not half:
        return 0.0
    return min(1.0, max(0.0, footprint / half - 0.5))


def footprint(profile: Profile, kernels: Sequence[Unit], dtype: str) -> int:
    """Bytes one forward passes through the cache: the weights its kernels read (a weight
    read by several calls once: at most the profile's ``weight_bytes_at(dtype)`` when it
    has one) and every byte they write, at ``dtype``."""
    weights = sum(u.weights.bytes(dtype) for u in kernels)
    held = getattr(profile, "weight_bytes_at", None)
    if held is not None:
        weights = min(weights, held(dtype))
    return weights + sum(u.written.bytes(dtype) for u in kernels)


#: What a recurrent layer's input projection is called when it runs as a kernel of its own:
#: ``aten.gru.input_projection`` (a device table may name it; else its kind, ``matrix_vector``
#: for one row, or ``matmul`` prices it).
PROJECTION = ".input_projection"


def _changed(record: Record, **changes: Any) -> Record:
    """A copy of ``record`` (a dataclass: ``counting.records.OpRecord``) with ``changes``."""
    return cast(Record, replace(cast(Any, record), **changes))


def split_recurrent(kernels: Sequence[Unit], device: Device) -> list[Unit]:
    """The kernels ``device`` runs for ``kernels``: unchanged, unless the device names
    ``batched_input_projection``. Then a recurrent layer whose record holds ``input_macs`` runs
    them first as one matrix product over all its ``rows`` (batch x steps; ``mac_dims`` are its
    channels, ``(I, G*H)``): a kernel of class ``matmul`` and one launch, op
    ``<op>.input_projection``, that writes the ``rows x G*H`` values it hands the steps (at
    the layer's output dtype), which the steps read back. The steps keep the rest: the
    recurrent products (``mac_dims`` ``(M, G*H)``, ``M`` their MACs per row and gate unit),
    the gates, the layer's counted traffic and every step's overhead. FLOPs are unchanged;
    the bytes grow by twice the handed-over values."""
    if not device.batched_input_projection:
        return list(kernels)
    out: list[Unit] = []
    for unit in kernels:
        r = unit.anchor
        projected = r.input_macs if r.op_class == "recurrent" else 0
        if not projected or unit.free or not r.mac_dims:
            out.append(unit)
            continue
        reduced, width = r.mac_dims
        rows = projected // (reduced * width)
        out_elems, out_bytes = r.written.float_elems, r.written.float_bytes
        handed = Access(rows * width, rows * width * (out_bytes // out_elems if out_elems else 4))
        projection = _changed(
            r, op=r.op + PROJECTION, op_class="matmul",
            kind="matrix_vector" if rows == 1 else "", macs=projected, flops=2 * projected,
            read=ZERO_ACCESS, written=handed, weights=ZERO_ACCESS, steps=1,
            step_read=ZERO_ACCESS, rows=rows, weight_rows=0, input_macs=0, lowered=0,
            runs_as="")
        remaining = r.macs - projected
        steps = _changed(r, macs=remaining, flops=r.flops - 2 * projected, input_macs=0,
                         read=r.read + handed,
                         mac_dims=(max(remaining // (rows * width), 1), width))
        out.append(Unit.of(projection))
        out.append(Unit((steps, *unit.members[1:]), unit.flops - 2 * projected,
                        unit.read + handed, unit.written, unit.weights))
    return out


def unit_time(unit: Unit, device: Device, dtype: str,
              placement: _Placement | None = None, cold_share: float = 0.0,
              repeated: bool = False) -> OpTime:
    """Roofline time of one kernel on ``device`` at precision ``dtype``; ``cold_share`` of
    its weights come from memory (:func:`cold_weight_share`); ``repeated``: its output as
    :func:`fresh_share` takes it."""
    r = unit.anchor
    weights = unit.weights.bytes(dtype)
    activations = unit.read.bytes(dtype) + unit.written.bytes(dtype) - weights
    nbytes = activations + weights
    onchip_bw = device.onchip_bandwidth
    cached = placement.take(weights) if placement is not None else 0
    streamed: float = weights - cached
    # a matrix product's weights fetched from memory before its arithmetic
    # (cold_weight_bandwidth): that share of them leaves the roofline for a term of its own,
    # added to it
    fetched = 0.0
    if device.cold_weight_bandwidth and cold_share and not unit.free:
        product = sum(m.weights.bytes(dtype) for m in unit.members if m.weight_rows)
        fetched = min(product, streamed) * cold_share
    streamed -= fetched
    # slowed: seconds the kernel's efficiency slows (what the cache serves); dram: seconds
    # from memory beyond a cache, at `bandwidth`, which it does not
    slowed, dram = activation_split(activations, device)
    slowed += cached / (onchip_bw or device.bandwidth)
    link = 0.0
    if device.link_bandwidth is not None:
        link = streamed / device.link_bandwidth
    else:
        dram += streamed / device.bandwidth
    if r.steps > 1:
        rereads = r.step_read.bytes(dtype)
        if rereads > device.onchip_bytes:
            nbytes += (r.steps - 1) * rereads
            dram += (r.steps - 1) * rereads / device.bandwidth
        elif device.onchip_bandwidth:  # a cache, not a scratchpad: read again, from it
            slowed += (r.steps - 1) * rereads / device.onchip_bandwidth
    if not onchip_bw:  # no cache before the memory: efficiency slows every byte
        slowed, dram = slowed + dram, 0.0
    keys = lookup_keys(r.op, r.kind, r.op_class, r.runs_as)
    eff = device.efficiency_of(r.op_class, r.op, r.kind, r.runs_as)
    ceiling = device.compute_efficiency_of(r.op_class, r.op, r.kind, r.runs_as)
    peak = device.usable_peak(dtype) * device.utilisation(r.mac_dims) * \
        device.row_utilisation(r.rows, r.kind)
    compute = unit.flops / peak
    if unit.free:
        compute = slowed = dram = link = 0.0
    memory = slowed + dram
    moves = unit.flops or nbytes
    launches = r.steps if moves and not unit.free else 0
    overhead = device.overhead_for(r.op, r.op_class, r.kind, r.runs_as) * launches
    bare = max(compute, memory)
    fresh = 0.0
    written = unit.written.bytes(dtype)
    if device.fresh_output_bandwidth and not unit.free:
        fresh = written * fresh_share(written, device, repeated) \
            / device.fresh_output_bandwidth
    lowering = 0.0
    if device.lowering_bandwidth and not unit.free:
        lowering = sum(m.lowered for m in unit.members) * itemsize(dtype) \
            / device.lowering_bandwidth
    cold = 0.0
    if cold_share and not unit.free:
        if device.cold_weight_row_seconds:
            rows = sum(m.weight_rows for m in unit.members if m.weights.bytes(dtype))
            cold += cold_share * rows * device.cold_weight_row_seconds
        elif device.cold_weight_bandwidth:
            cold += fetched / device.cold_weight_bandwidth
    memory_seconds = slowed / eff + dram
    return OpTime(
        op=r.op, module=r.module, op_class=r.op_class, flops=unit.flops, bytes=nbytes,
        compute_seconds=compute / ceiling / eff, memory_seconds=memory_seconds,
        overhead_seconds=overhead,
        seconds=max(compute / ceiling / eff, memory_seconds) + overhead + link + fresh
        + lowering + cold,
        ops=unit.ops, modules=unit.modules, link_seconds=link, fresh_seconds=fresh,
        lowering_seconds=lowering, cold_weight_seconds=cold,
        bare_seconds=bare,
        efficiency=eff, compute_efficiency=ceiling, bare_compute=compute, bare_memory=memory,
        dram_seconds=dram, launches=launches,
        efficiency_key=_key(device.efficiency, keys, r.op_class),
        overhead_key=_key(device.overheads, keys, "overhead"),
        kind=r.kind,
        runs_as=r.runs_as,
    )


def op_time(record: Record, device: Device, dtype: str) -> OpTime:
    """Roofline time of one counted operator on its own on ``device`` at ``dtype`` (all its
    weights read at ``bandwidth``, none outside a weight cache; no cold-weight cost, which
    depends on the whole model; a recurrent layer whole, its input projection not split off)."""
    return unit_time(Unit.of(record), device, dtype)


@dataclass(frozen=True)
class LayerLatency:
    """Predicted time of one layer row (its own operators), in seconds.

    ``bound``: ``"compute"`` when its compute-bound kernels take at least as long as its
    memory-bound ones; ``intensity``: FLOP per byte at the device dtype; ``share``: fraction of
    the model's total time. A kernel fused across layers counts at its anchor's layer: the
    others list it in ``fused_into`` (the anchor's path) and take no time of their own;
    ``fused`` lists the fused kernels the layer runs, as their operator names.
    """

    name: str
    kind: str
    seconds: float
    compute_seconds: float
    memory_seconds: float
    overhead_seconds: float
    bound: str
    intensity: float
    share: float
    flops: int
    bytes: int
    link_seconds: float = 0.0
    fused_into: str = ""
    fused: tuple[tuple[str, ...], ...] = field(default=())


def _aggregate(name: str, kind: str, times: Iterable[OpTime], total: float,
               fused_into: str = "") -> LayerLatency:
    times = list(times)
    seconds = sum(t.seconds for t in times)
    compute_bound = sum(t.seconds for t in times if t.bound == "compute")
    flops = sum(t.flops for t in times)
    nbytes = sum(t.bytes for t in times)
    return LayerLatency(
        name=name,
        kind=kind,
        seconds=seconds,
        compute_seconds=sum(t.compute_seconds for t in times),
        memory_seconds=sum(t.memory_seconds for t in times),
        overhead_seconds=sum(t.overhead_seconds for t in times),
        bound="compute" if times and compute_bound >= seconds - compute_bound else "memory",
        intensity=flops / nbytes if nbytes else 0.0,
        share=seconds / total if total else 0.0,
        flops=flops,
        bytes=nbytes,
        link_seconds=sum(t.link_seconds for t in times),
        fused_into=fused_into,
        fused=tuple(t.ops for t in times if t.fused),
    )


@dataclass(frozen=True)
class Latency:
    """Roofline prediction of one forward on one device.

    ``seconds``: predicted latency of one inference; ``layers``: one :class:`LayerLatency`
    per row of the profile's ``layers``, in the same order; ``ops``: every kernel's
    :class:`OpTime` (one per counted operator unless the device's runtime fuses, or runs a
    recurrent layer's input projection on its own: :func:`split_recurrent`);
    ``frame_seconds``: the sum of the kernels, which is the latency except on a pipelined
    device, where it is the per-frame time of the filled pipeline.
    """

    device: Device
    dtype: str
    seconds: float
    layers: list[LayerLatency]
    ops: list[OpTime]
    frame_seconds: float = 0.0

    @property
    def ms(self) -> float:
        """Total predicted time in milliseconds."""
        return self.seconds * 1e3

    @property
    def groups(self) -> list[OpTime]:
        """The fused kernels: each runs several aten operators (``.ops``) as one."""
        return [t for t in self.ops if t.fused]

    def layer(self, name: str) -> LayerLatency:
        """The module at ``name`` with all its children (``""``: the whole model)."""
        inside = [t for t in self.ops if under(t.module, name)]
        kind = next((row.kind for row in self.layers if row.name == name), "?")
        return _aggregate(name, kind, inside, self.frame_seconds or self.seconds)

    def top(self, n: int = 5) -> list[LayerLatency]:
        """The ``n`` slowest layer rows, slowest first."""
        return sorted(self.layers, key=lambda r: r.seconds, reverse=True)[:n]


def price(profile: Profile, device: Device, cold_share: float | None = None,
          repeated: bool = False) -> tuple[str, list[OpTime]]:
    """``(dtype, every kernel's time)`` of ``profile`` on ``device``; ``cold_share``: the
    share of its weights that come from memory, when known from how it runs (a calibration
    row timed among hundreds of MiB of other rows: 1), else from its footprint
    (:func:`cold_weight_share`); ``repeated``: one operator run again and again, whose
    outputs land in the memory its last call freed (:func:`fresh_share`)."""
    if cold_share is not None and not 0.0 <= cold_share <= 1.0:
        raise ValueError(f"cold_share must be a share between 0 and 1, got {cold_share!r}")
    dtype = profile.dtype or device.default_dtype
    device.peak(dtype)  # a clear error now if the device has no peak at this precision
    placement = _Placement(device.weight_cache_bytes)
    kernels = units(profile.records, device.fusion)
    cold = cold_weight_share(footprint(profile, kernels, dtype), device) \
        if cold_share is None else cold_share
    return dtype, [unit_time(u, device, dtype, placement, cold, repeated)
                   for u in split_recurrent(kernels, device)]


def predict(profile: Profile, device: Device | str, cold_share: float | None = None,
            repeated: bool = False) -> Latency:
    """Predict the latency of ``profile`` on ``device`` (a Device or a catalog name);
    ``cold_share`` and ``repeated`` as :func:`price` takes them."""
    dev = get_device(device)
    dtype, times = price(profile, dev, cold_share, repeated)
    frame = sum(t.seconds for t in times)
    by_module: dict[str, list[OpTime]] = {}
    fused_into: dict[str, str] = {}
    for t in times:
        by_module.setdefault(t.module, []).append(t)
        for other in t.modules[1:]:
            fused_into.setdefault(other, t.module)
    rows = [_aggregate(row.name, row.kind, by_module.get(row.name, ()), frame,
                       fused_into.get(row.name, "") if row.name not in by_module else "")
            for row in profile.layers]
    factor = dev.pipeline_latency_factor or 1.0
    check_finite(dev, dtype, times, frame, frame * factor)
    return Latency(dev, dtype, frame * factor, rows, times, frame)


#: A figure behind a term of a kernel's time: (name, value, +1 when a larger value makes the
#: time longer (an overhead, a tile width), -1 when a smaller one does (a peak, a bandwidth)).
Figure = tuple[str, float, int]


def _figures(device: Device, dtype: str, t: OpTime, term: str) -> list[Figure]:
    """The device figures behind one term of a kernel's time."""
    eff = [(f"efficiency.{t.efficiency_key}", t.efficiency, -1)] if t.efficiency != 1 else []
    if term == "compute":
        used = [("cores_used", device.cores_used, -1)] if device.cores_used is not None else []
        tile = [(f"tile.{k}", w, 1) for k, w in device.tile.items()]
        key = _key(device.compute_efficiency, lookup_keys(t.op, t.kind, t.op_class, t.runs_as),
                   t.op_class)
        ceiling = [(f"compute_efficiency.{key}", t.compute_efficiency, -1)] \
            if t.compute_efficiency != 1 else []
        rows = [("half_rows", device.half_rows, 1)] if device.half_rows else []
        return [(f"peak_flops.{dtype}", device.peak(dtype), -1), *eff, *ceiling, *used, *tile,
                *rows]
    if term == "memory":
        onchip = device.onchip_bandwidth
        return [("bandwidth", device.bandwidth, -1), *eff,
                *([("onchip_bandwidth", onchip, -1)] if onchip is not None else [])]
    if term == "overhead":
        key = t.overhead_key
        value = device.overhead if key == "overhead" else device.overheads[key]
        return [(key if key == "overhead" else f"overheads.{key}", value, 1)]
    if term == "fresh":
        return [("fresh_output_bandwidth", device.fresh_output_bandwidth or 0.0, -1)]
    if term == "lowering":
        return [("lowering_bandwidth", device.lowering_bandwidth or 0.0, -1)]
    if term == "cold_weight":
        rows = [("cold_weight_row_seconds", device.cold_weight_row_seconds, 1)] \
            if device.cold_weight_row_seconds else []
        per_byte = [("cold_weight_bandwidth", device.cold_weight_bandwidth, -1)] \
            if device.cold_weight_bandwidth else []
        return [*rows, *per_byte] or [("cold_weight_row_seconds", 0.0, 1)]
    return [("link_bandwidth", device.link_bandwidth or 0.0, -1)]


def check_finite(device: Device, dtype: str, times: Sequence[OpTime], frame: float,
                 total: float) -> None:
    """Raise :class:`DeviceError` when a predicted time is not a finite number of
    microseconds, naming the most extreme figure of the term that overflowed."""
    terms = ("compute", "memory", "overhead", "link", "fresh", "lowering", "cold_weight")

    def fail(figures: list[Figure], where: str) -> None:
        # the figure that pushes the time up the most: the smallest divisor, the largest factor
        name, value, _ = max(figures, key=lambda f: f[2] * math.log10(f[1]) if f[1] > 0
                             else math.inf)
        raise DeviceError(f"{device.label}: the predicted time is not a finite number of "
                          f"seconds: {name} = {value!r} is out of any sensible range "
                          f"({where})")

    sums = dict.fromkeys(terms, 0.0)
    for t in times:
        values = {term: getattr(t, f"{term}_seconds") for term in terms}
        for term, seconds in values.items():
            sums[term] += seconds
            if not finite(seconds * 1e6):
                fail(_figures(device, dtype, t, term),
                     f"{t.op} in {f'layer {t.module!r}' if t.module else 'the model'}")
    if not finite(frame * 1e6):
        worst = max(terms, key=lambda term: sums[term])
        slowest = max(times, key=lambda t: getattr(t, f"{worst}_seconds"))
        fail(_figures(device, dtype, slowest, worst), "the sum over every operator")
    if not finite(total * 1e6):
        fail([("pipeline_latency_factor", device.pipeline_latency_factor or 1.0, 1)],
             "one inference of the filled pipeline")


__all__ = ["Latency", "LayerLatency", "OpTime", "op_time", "predict", "price"]
