"""Roofline latency: each operator takes ``max(F / peak, B / bandwidth)`` on a device.

Seed 003's model, applied per operator and summed (layers alternate between compute- and
memory-bound, so one max over the whole model would be wrong):

    t_op = max(flops / peak[dtype], bytes / bandwidth) / efficiency[op class] + overhead

``overhead`` is the device's ``overheads`` entry for the operator (``"aten.gru"``) or its
class (``"depthwise_conv"``), else its ``overhead``.

* ``dtype`` is the profile's deployment precision, else the device's ``default_dtype``; bytes
  are priced at it and ``peak`` is the device's peak for it.
* A recurrent operator runs ``T`` dependent steps: each is its own small kernel (``overhead``
  is paid ``T`` times) and re-reads its recurrent weights unless they fit in ``onchip_bytes``.
* An operator that moves and computes nothing (an eval-mode dropout) takes no time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..core.access import Access
from ..core.paths import under
from .catalog import get_device
from .device import Device


class OpRecord(Protocol):
    """What the roofline reads of a counted operator (``counting.records.OpRecord``)."""

    @property
    def op(self) -> str: ...
    @property
    def module(self) -> str: ...
    @property
    def op_class(self) -> str: ...
    @property
    def flops(self) -> int: ...
    @property
    def read(self) -> Access: ...
    @property
    def written(self) -> Access: ...
    @property
    def steps(self) -> int: ...
    @property
    def step_read(self) -> Access: ...


class LayerRow(Protocol):
    """What the roofline reads of a profile's layer row: its module path and kind."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...


class Profile(Protocol):
    """What the roofline reads of a profile (``counting.profile.ModelProfile``)."""

    @property
    def records(self) -> Sequence[OpRecord]: ...
    @property
    def layers(self) -> Sequence[LayerRow]: ...
    @property
    def dtype(self) -> str | None: ...


@dataclass(frozen=True)
class OpTime:
    """Predicted time of one counted operator, in seconds, and what bounds it."""

    op: str
    module: str
    op_class: str
    flops: int
    bytes: int  # traffic at the device dtype, recurrent re-reads included
    compute_seconds: float  # flops / (peak * efficiency)
    memory_seconds: float  # bytes / (bandwidth * efficiency)
    overhead_seconds: float
    seconds: float

    @property
    def bound(self) -> str:
        return "compute" if self.compute_seconds >= self.memory_seconds else "memory"


def op_time(record: OpRecord, device: Device, dtype: str) -> OpTime:
    """Roofline time of one operator record on ``device`` at precision ``dtype``."""
    nbytes = record.read.bytes(dtype) + record.written.bytes(dtype)
    if record.steps > 1:
        weights = record.step_read.bytes(dtype)
        if weights > device.onchip_bytes:
            nbytes += (record.steps - 1) * weights
    eff = device.efficiency_of(record.op_class)
    compute = record.flops / (device.peak(dtype) * eff)
    memory = nbytes / (device.bandwidth * eff)
    moves = record.flops or nbytes
    overhead = device.overhead_for(record.op, record.op_class) * record.steps if moves else 0.0
    return OpTime(record.op, record.module, record.op_class, record.flops, nbytes, compute,
                  memory, overhead, max(compute, memory) + overhead)


@dataclass(frozen=True)
class LayerLatency:
    """Predicted time of one layer row (its own operators), in seconds.

    ``bound``: ``"compute"`` when its compute-bound operators take at least as long as its
    memory-bound ones; ``intensity``: FLOP per byte at the device dtype; ``share``: fraction of
    the model's total time.
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


def _aggregate(name: str, kind: str, times: Iterable[OpTime], total: float) -> LayerLatency:
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
    )


@dataclass(frozen=True)
class Latency:
    """Roofline prediction of one forward on one device.

    ``seconds``: total predicted time; ``layers``: one :class:`LayerLatency` per row of the
    profile's ``layers``, in the same order; ``ops``: every operator's :class:`OpTime`.
    """

    device: Device
    dtype: str
    seconds: float
    layers: list[LayerLatency]
    ops: list[OpTime]

    @property
    def ms(self) -> float:
        """Total predicted time in milliseconds."""
        return self.seconds * 1e3

    def layer(self, name: str) -> LayerLatency:
        """The module at ``name`` with all its children (``""``: the whole model)."""
        inside = [t for t in self.ops if under(t.module, name)]
        kind = next((row.kind for row in self.layers if row.name == name), "?")
        return _aggregate(name, kind, inside, self.seconds)

    def top(self, n: int = 5) -> list[LayerLatency]:
        """The ``n`` slowest layer rows, slowest first."""
        return sorted(self.layers, key=lambda r: r.seconds, reverse=True)[:n]


def predict(profile: Profile, device: Device | str) -> Latency:
    """Predict the latency of ``profile`` on ``device`` (a Device or a catalog name)."""
    dev = get_device(device)
    dtype = profile.dtype or dev.default_dtype
    dev.peak(dtype)  # a clear error now if the device has no peak at this precision
    times = [op_time(r, dev, dtype) for r in profile.records]
    total = sum(t.seconds for t in times)
    by_module: dict[str, list[OpTime]] = {}
    for t in times:
        by_module.setdefault(t.module, []).append(t)
    rows = [_aggregate(row.name, row.kind, by_module.get(row.name, ()), total)
            for row in profile.layers]
    return Latency(dev, dtype, total, rows, times)
