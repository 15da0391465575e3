"""A target device: the figures a roofline needs and their checks.

``Device`` holds peak compute per precision, memory bandwidth, per-class efficiency and
per-operator overhead, each validated when the device is made, so a wrong figure is an error
naming the device and the key (:class:`DeviceError`). Devices come from the catalog
(:mod:`.catalog`); their figures and sources live in data files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.dtypes import parse_dtype
from ..core.numbers import finite, shown
from ..core.op_classes import KINDS, OP_CLASSES, lookup_keys

#: Keys a device table may hold, and what each means.
KEYS: dict[str, str] = {
    "base": "name of a device to inherit every figure from",
    "description": "what the device is",
    "peak_flops": "peak compute in FLOP/s (OP/s for int8): a number (for default_dtype) or a "
                  "table per dtype (fp32, fp16, bf16, int8)",
    "bandwidth": "memory bandwidth in bytes/s (the memory that holds weights and activations)",
    "default_dtype": "precision the device runs at when a profile names none",
    "efficiency": "table of factors in (0, 1]: the fraction of the roofline an operator class, "
                  "kind or aten operator attains (1.0 when absent; a convolution eager "
                  "PyTorch runs through oneDNN, 1x1 kernels aside, is looked up as "
                  "'aten.mkldnn_convolution' first, in every table)",
    "compute_efficiency": "table of factors in (0, 1]: the fraction of the peak an operator "
                          "class, kind or aten operator's arithmetic attains (its compute "
                          "ceiling: a transcendental function, a convolution kernel), applied "
                          "to the compute term only, before efficiency (1.0 when absent)",
    "overhead": "fixed seconds per operator (dispatch, launch)",
    "overheads": "table: operator class, kind or aten operator (e.g. 'aten.gru') -> seconds "
                 "per operator, overriding overhead for those operators (a convolution eager "
                 "PyTorch runs through oneDNN, 1x1 kernels aside, is looked up as "
                 "'aten.mkldnn_convolution' first; a recurrent layer's input projection, "
                 "run once a call, as e.g. 'aten.lstm.input_projection')",
    "onchip_bytes": "on-chip memory (SRAM, cache) in bytes: recurrent weights that fit are not "
                    "re-read every step; with onchip_bandwidth, an operator whose activations "
                    "fit is served at that bandwidth",
    "onchip_bandwidth": "bytes/s of the on-chip memory (cache, SRAM) for activations that fit "
                        "in onchip_bytes (absent: all traffic at bandwidth)",
    "fresh_output_bytes": "outputs of at least this many bytes are written to memory the "
                          "runtime maps afresh at every call (eager PyTorch: glibc malloc "
                          "serves large blocks with mmap), whose first touch costs page faults",
    "fresh_output_bandwidth": "bytes/s at which such fresh output memory is first touched "
                              "(page faults and zeroing), on top of the roofline",
    "fresh_output_share": "share in [0, 1] of the outputs of at least fresh_share_bytes and "
                          "below fresh_output_bytes that also land in fresh memory (a heap "
                          "that gives freed memory back to the system), first touched at "
                          "fresh_output_bandwidth",
    "fresh_share_bytes": "outputs of at least this many bytes (and below fresh_output_bytes) "
                         "pay fresh_output_share of the fresh-memory cost",
    "half_rows": "rows at which a matrix product or convolution attains half its compute "
                 "ceiling: one with r rows (output positions, rows of its left matrix, "
                 "tokens of a fused attention layer) "
                 "computes at r / (r + half_rows) of it (a fixed cost per call, such as "
                 "packing the weights, spread over the rows; absent: no such cost)",
    "lowering_bandwidth": "bytes/s at which the runtime lowers a convolution to a column matrix "
                          "(im2col) before its matrix product, on top of the roofline; applies "
                          "to the convolutions eager PyTorch lowers on a CPU (absent: none)",
    "cold_weight_row_seconds": "seconds a matrix product whose weights come from memory pays "
                               "per row of its weight matrix (per output feature), on top of "
                               "the roofline (absent: none; needs cold_weight_bytes)",
    "cold_weight_bandwidth": "bytes/s at which a kernel whose weights come from memory fetches "
                             "them before its arithmetic, not under it: their bytes at this "
                             "rate on top of the roofline (absent: none; needs "
                             "cold_weight_bytes; instead of cold_weight_row_seconds)",
    "cold_weight_bytes": "bytes of weights read (and outputs written) per forward at which "
                         "half of the weights come from memory at every forward (a cache "
                         "keeps those of a smaller model): the share grows from 0 at half "
                         "these bytes to all at 1.5 times them",
    "batched_input_projection": "true when the runtime computes a recurrent layer's input "
                                "projection for the whole sequence as one matrix product "
                                "before its steps (eager PyTorch on a CPU, ONNX Runtime): "
                                "priced as a matrix product, the steps as the recurrent "
                                "operator (absent or false: every step computes its own)",
    "weight_cache_bytes": "bytes of on-chip memory that keep weights between inferences: the "
                          "first weights in execution order that fit are read on chip",
    "link_bandwidth": "bytes/s of the host link (USB, PCIe) that weights beyond "
                      "weight_cache_bytes stream over at every inference, after the compute "
                      "(absent: they come from memory at bandwidth)",
    "fusion": "what the deployment runtime fuses: 'none' (every aten operator runs on its "
              "own, as eager PyTorch), 'epilogue' (BatchNorm folded into the convolution, "
              "activations and elementwise epilogues fused into their producer, layout copies "
              "free) or 'onnxruntime' (ONNX Runtime's CPU fusions: convolution with folded "
              "BatchNorm, one add and one activation; matrix product with bias, scale and "
              "activation; nothing else)",
    "tile": "table {reduce = N, out = M}: channels are padded to multiples of the MAC array's "
            "(or vector unit's) width along the reduced and the output dimension",
    "cores": "compute units the peak covers (NPU cores, engines)",
    "cores_used": "compute units the runtime runs one inference on (default: all)",
    "pipeline_latency_factor": "for a dataflow device whose figures describe a filled "
                               "pipeline: one inference's latency is this many times the "
                               "per-frame time (absent: no pipeline)",
    "memory_bytes": "memory capacity in bytes",
    "sources": "table: figure -> where it comes from (datasheet, page title, or 'measured')",
}
REQUIRED = ("peak_flops", "bandwidth")
FUSIONS = ("none", "epilogue", "onnxruntime")
TILE_KEYS = ("reduce", "out")


class DeviceError(ValueError):
    """A device name or a device table is wrong; the message names the key."""


@dataclass(frozen=True)
class Device:
    """A target for the roofline: peak compute, memory and what limits them.

    ``peak_flops``: FLOP/s, a number (the peak at ``default_dtype``) or ``{dtype: FLOP/s}``;
    ``bandwidth``: bytes/s of the memory that holds weights and activations; ``efficiency``:
    ``{op class, kind or aten operator: fraction of the roofline attained}``;
    ``compute_efficiency``: the same keys, the fraction of the peak their arithmetic attains
    (the compute term only); ``overhead``:
    seconds added per operator; ``onchip_bytes``: on-chip memory in bytes, served at
    ``onchip_bandwidth`` bytes/s when given; outputs of at least ``fresh_output_bytes`` are first
    touched at ``fresh_output_bandwidth`` bytes/s when given (page faults);
    outputs of ``fresh_share_bytes`` up to ``fresh_output_bytes`` pay ``fresh_output_share``
    of that cost;
    ``half_rows``: a product with ``r`` rows computes at ``r / (r + half_rows)`` of its
    ceiling, when given;
    ``lowering_bandwidth``: bytes/s of the column matrix a lowered convolution writes (eager
    PyTorch's im2col, ``OpRecord.lowered``), when given;
    ``cold_weight_row_seconds``: seconds per weight row (``OpRecord.weight_rows``) of a
    product whose weights come from memory, when given; ``cold_weight_bandwidth``: bytes/s
    at which a kernel whose weights come from memory fetches them on top of the roofline,
    when given; ``cold_weight_bytes``: the bytes a
    forward passes through the cache (weights read and outputs written) at which half of
    the weights come from memory, none from half of it, all from 1.5 times it
    (:func:`.roofline.cold_weight_share`);
    ``batched_input_projection``: a recurrent layer's input projection (``OpRecord.input_macs``)
    runs as one matrix product before the steps (:func:`.roofline.split_recurrent`);
    ``weight_cache_bytes``: on-chip bytes that keep
    weights between inferences, the rest streaming over ``link_bandwidth`` bytes/s when
    given; ``fusion``: what the runtime fuses; ``tile``: MAC-array widths channels are padded
    to; ``cores``/``cores_used``: compute units the peak covers and the runtime uses;
    ``pipeline_latency_factor``: latency over the per-frame time of a filled dataflow
    pipeline; ``memory_bytes``: capacity in bytes; ``sources``: ``{figure: source}``;
    ``origin``: where it was declared (a file and table), for error messages.
    """

    name: str
    peak_flops: float | Mapping[str, float]
    bandwidth: float
    default_dtype: str = "fp32"
    efficiency: Mapping[str, float] = field(default_factory=dict)
    compute_efficiency: Mapping[str, float] = field(default_factory=dict)
    overhead: float = 0.0
    overheads: Mapping[str, float] = field(default_factory=dict)
    onchip_bytes: int = 0
    onchip_bandwidth: float | None = None
    fresh_output_bytes: int = 0
    fresh_output_bandwidth: float | None = None
    fresh_output_share: float | None = None
    fresh_share_bytes: int = 0
    half_rows: float | None = None
    lowering_bandwidth: float | None = None
    cold_weight_row_seconds: float | None = None
    cold_weight_bandwidth: float | None = None
    cold_weight_bytes: int = 0
    batched_input_projection: bool = False
    weight_cache_bytes: int = 0
    link_bandwidth: float | None = None
    fusion: str = "none"
    tile: Mapping[str, int] = field(default_factory=dict)
    cores: int = 1
    cores_used: int | None = None
    pipeline_latency_factor: float | None = None
    memory_bytes: int | None = None
    description: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)
    origin: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        """``device 'npu'``, with where it was declared when known."""
        return f"device {self.name!r}" + (f" ({self.origin})" if self.origin else "")

    def __post_init__(self) -> None:
        where = f"device {self.name!r}"
        try:
            default = parse_dtype(self.default_dtype)
        except ValueError as exc:
            raise DeviceError(f"{where}: default_dtype: {exc}") from None
        if default is None:
            raise DeviceError(f"{where}: default_dtype must name a precision, got None")
        object.__setattr__(self, "default_dtype", default)
        peaks = self.peak_flops
        if isinstance(peaks, Mapping):
            table: dict[str, float] = {}
            for key, value in peaks.items():
                try:
                    dtype = parse_dtype(key)
                except ValueError as exc:
                    raise DeviceError(f"{where}: peak_flops.{key}: {exc}") from None
                assert dtype is not None
                table[dtype] = _positive(value, f"{where}: peak_flops.{key}")
            if not table:
                raise DeviceError(f"{where}: peak_flops is empty")
        else:
            table = {default: _positive(peaks, f"{where}: peak_flops")}
        object.__setattr__(self, "peak_flops", table)
        if default not in table:
            raise DeviceError(f"{where}: default_dtype {default!r} has no peak_flops entry "
                              f"(peaks given for {', '.join(table)})")
        object.__setattr__(self, "bandwidth", _positive(self.bandwidth, f"{where}: bandwidth"))
        for group in ("efficiency", "compute_efficiency"):
            for key, factor in getattr(self, group).items():
                _check_operator_key(key, f"{where}: {group}.{key}", "unknown operator class; ")
                value = _positive(factor, f"{where}: {group}.{key}")
                if value > 1:
                    raise DeviceError(f"{where}: {group}.{key} = {value} is above 1")
        object.__setattr__(self, "overhead", _non_negative(self.overhead, f"{where}: overhead"))
        for key, seconds in self.overheads.items():
            _check_operator_key(key, f"{where}: overheads.{key}")
            _non_negative(seconds, f"{where}: overheads.{key}")
        object.__setattr__(self, "onchip_bytes",
                           _byte_count(self.onchip_bytes, f"{where}: onchip_bytes", zero=True))
        object.__setattr__(self, "fresh_output_bytes",
                           _byte_count(self.fresh_output_bytes, f"{where}: fresh_output_bytes",
                                       zero=True))
        object.__setattr__(self, "fresh_share_bytes",
                           _byte_count(self.fresh_share_bytes, f"{where}: fresh_share_bytes",
                                       zero=True))
        if self.fresh_output_share is not None:
            share = _non_negative(self.fresh_output_share, f"{where}: fresh_output_share")
            if share > 1:
                raise DeviceError(f"{where}: fresh_output_share = {share} is above 1")
            if self.fresh_output_bandwidth is None:
                raise DeviceError(f"{where}: fresh_output_share needs fresh_output_bandwidth "
                                  f"(the rate its share of outputs is first touched at)")
            if self.fresh_output_bytes and self.fresh_share_bytes >= self.fresh_output_bytes:
                raise DeviceError(f"{where}: fresh_share_bytes ({self.fresh_share_bytes}) must "
                                  f"be below fresh_output_bytes ({self.fresh_output_bytes}), "
                                  f"from where every output is fresh")
            object.__setattr__(self, "fresh_output_share", share)
        if self.half_rows is not None:
            object.__setattr__(self, "half_rows",
                               _non_negative(self.half_rows, f"{where}: half_rows"))
        if self.cold_weight_row_seconds is not None:
            object.__setattr__(self, "cold_weight_row_seconds",
                               _positive(self.cold_weight_row_seconds,
                                         f"{where}: cold_weight_row_seconds"))
        object.__setattr__(self, "cold_weight_bytes",
                           _byte_count(self.cold_weight_bytes, f"{where}: cold_weight_bytes",
                                       zero=True))
        if self.cold_weight_bandwidth is not None:
            object.__setattr__(self, "cold_weight_bandwidth",
                               _positive(self.cold_weight_bandwidth,
                                         f"{where}: cold_weight_bandwidth"))
        if self.cold_weight_row_seconds is not None and self.cold_weight_bandwidth is not None:
            raise DeviceError(f"{where}: cold_weight_row_seconds and cold_weight_bandwidth "
                              f"price the same weights from memory (per weight row, or per "
                              f"byte fetched before the arithmetic): give one of them")
        cold_cost = self.cold_weight_row_seconds is not None \
            or self.cold_weight_bandwidth is not None
        if cold_cost != bool(self.cold_weight_bytes):
            raise DeviceError(f"{where}: cold_weight_bytes goes with cold_weight_row_seconds "
                              f"or cold_weight_bandwidth (from how many bytes of weights they "
                              f"come from memory, and what that costs)")
        if not isinstance(self.batched_input_projection, bool):
            raise DeviceError(f"{where}: batched_input_projection must be true or false, got "
                              f"{self.batched_input_projection!r}")
        object.__setattr__(self, "weight_cache_bytes",
                           _byte_count(self.weight_cache_bytes, f"{where}: weight_cache_bytes",
                                       zero=True))
        for key in ("onchip_bandwidth", "link_bandwidth", "fresh_output_bandwidth",
                    "lowering_bandwidth"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, _positive(value, f"{where}: {key}"))
        if self.fusion not in FUSIONS:
            raise DeviceError(f"{where}: fusion must be one of "
                              f"{', '.join(repr(f) for f in FUSIONS)}, got {self.fusion!r}")
        for key, width in self.tile.items():
            if key not in TILE_KEYS:
                raise DeviceError(f"{where}: tile.{key}: unknown dimension; expected "
                                  f"{' or '.join(TILE_KEYS)}")
            object.__setattr__(self, "tile", {**self.tile, key: _whole(width, f"{where}: "
                                                                        f"tile.{key}")})
        object.__setattr__(self, "cores", _whole(self.cores, f"{where}: cores"))
        if self.cores_used is not None:
            used = _whole(self.cores_used, f"{where}: cores_used")
            if used > self.cores:
                raise DeviceError(f"{where}: cores_used = {used} is more than cores = "
                                  f"{self.cores}")
            object.__setattr__(self, "cores_used", used)
        if self.pipeline_latency_factor is not None:
            factor = _positive(self.pipeline_latency_factor,
                               f"{where}: pipeline_latency_factor")
            if factor < 1:
                raise DeviceError(f"{where}: pipeline_latency_factor = {factor} is below 1 "
                                  f"(a pipeline's latency is at least its per-frame time)")
            object.__setattr__(self, "pipeline_latency_factor", factor)
        if self.memory_bytes is not None:
            object.__setattr__(self, "memory_bytes",
                               _byte_count(self.memory_bytes, f"{where}: memory_bytes"))

    def peak(self, dtype: str | None = None) -> float:
        """Peak FLOP/s at ``dtype`` (default: the device's ``default_dtype``) of the whole
        device (all ``cores``)."""
        dtype = parse_dtype(dtype) or self.default_dtype
        peaks: Mapping[str, float] = self.peak_flops  # type: ignore[assignment]
        if dtype not in peaks:
            raise DeviceError(
                f"{self.label} has no peak for {dtype} (it lists "
                f"{', '.join(peaks)}); pick one of those with dtype=..."
            )
        return peaks[dtype]

    def usable_peak(self, dtype: str | None = None) -> float:
        """Peak FLOP/s one inference can use: ``peak`` x ``cores_used / cores``."""
        used = self.cores if self.cores_used is None else self.cores_used
        return self.peak(dtype) * used / self.cores

    def overhead_for(self, op: str, op_class: str, kind: str = "", runs_as: str = "") -> float:
        """Fixed seconds one call of ``op`` costs: the most specific ``overheads`` entry
        (the aten operator eager PyTorch runs it as, the aten operator, its kind, its class;
        :func:`~pytest_flopbudget.core.op_classes.lookup_keys`), else ``overhead``."""
        return float(_lookup(self.overheads, lookup_keys(op, kind, op_class, runs_as),
                             self.overhead))

    def overheads_text(self) -> str:
        """The per-operator overheads in words: ``"5 us per operator"``, followed by the
        per-class or per-operator entries (``" (aten.gru 13 us, depthwise_conv 95 us)"``)."""
        text = f"{self.overhead * 1e6:g} us per operator"
        special = ", ".join(f"{k} {v * 1e6:.3g} us" for k, v in sorted(self.overheads.items()))
        return f"{text} ({special})" if special else text

    def bare(self) -> Device:
        """This device with its roofs only (peak and bandwidth): efficiency 1, no overhead."""
        return replace(self, name=f"{self.name}-bare", efficiency={}, compute_efficiency={},
                       overhead=0.0, overheads={})

    def efficiency_of(self, op_class: str, op: str = "", kind: str = "",
                      runs_as: str = "") -> float:
        """Fraction of the roofline an operator attains: the most specific ``efficiency``
        entry (the aten operator eager PyTorch runs it as, the aten operator, its kind, its
        class), else 1.0."""
        return float(_lookup(self.efficiency, lookup_keys(op, kind, op_class, runs_as), 1.0))

    def compute_efficiency_of(self, op_class: str, op: str = "", kind: str = "",
                              runs_as: str = "") -> float:
        """Fraction of the peak an operator's arithmetic attains: the most specific
        ``compute_efficiency`` entry (the aten operator eager PyTorch runs it as, the aten
        operator, its kind, its class), else 1.0."""
        return float(_lookup(self.compute_efficiency,
                             lookup_keys(op, kind, op_class, runs_as), 1.0))

    def utilisation(self, mac_dims: tuple[int, int] | None) -> float:
        """Fraction of the MAC array a product of ``(reduced, output)`` channels keeps busy
        when each is padded to a multiple of ``tile``: ``c / (ceil(c / w) * w)`` per
        dimension (1.0 without a tile or for work that is not a product)."""
        if not mac_dims or not self.tile:
            return 1.0
        used = 1.0
        for key, channels in zip(TILE_KEYS, mac_dims, strict=True):
            width = self.tile.get(key)
            if width and channels > 0:
                used *= channels / (math.ceil(channels / width) * width)
        return used

    def row_utilisation(self, rows: int, kind: str = "") -> float:
        """Fraction of its compute ceiling a product of ``rows`` rows attains:
        ``rows / (rows + half_rows)`` (1.0 without ``half_rows``, for a matrix-vector product,
        which packs nothing, or for work that is not a product)."""
        if not self.half_rows or rows <= 0 or kind == "matrix_vector":
            return 1.0
        return rows / (rows + self.half_rows)

    def ridge(self, dtype: str | None = None) -> float:
        """Arithmetic intensity (FLOP/byte) where the bandwidth slope meets the compute roof."""
        return self.peak(dtype) / self.bandwidth

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "peak_flops": dict(self.peak_flops),  # type: ignore[arg-type]
            "bandwidth": self.bandwidth,
            "default_dtype": self.default_dtype,
            "efficiency": dict(self.efficiency),
            "compute_efficiency": dict(self.compute_efficiency),
            "overhead": self.overhead,
            "overheads": dict(self.overheads),
            "onchip_bytes": self.onchip_bytes,
            "onchip_bandwidth": self.onchip_bandwidth,
            "fresh_output_bytes": self.fresh_output_bytes,
            "fresh_output_bandwidth": self.fresh_output_bandwidth,
            "fresh_output_share": self.fresh_output_share,
            "fresh_share_bytes": self.fresh_share_bytes,
            "half_rows": self.half_rows,
            "lowering_bandwidth": self.lowering_bandwidth,
            "cold_weight_row_seconds": self.cold_weight_row_seconds,
            "cold_weight_bandwidth": self.cold_weight_bandwidth,
            "cold_weight_bytes": self.cold_weight_bytes,
            "batched_input_projection": self.batched_input_projection,
            "weight_cache_bytes": self.weight_cache_bytes,
            "link_bandwidth": self.link_bandwidth,
            "fusion": self.fusion,
            "tile": dict(self.tile),
            "cores": self.cores,
            "cores_used": self.cores_used,
            "pipeline_latency_factor": self.pipeline_latency_factor,
            "memory_bytes": self.memory_bytes,
            "sources": dict(self.sources),
        }


def _lookup(table: Mapping[str, float], keys: tuple[str, ...], default: float) -> float:
    for key in keys:
        if key in table:
            return table[key]
    return default


def _check_operator_key(key: str, what: str, unknown: str = "") -> None:
    if key in OP_CLASSES or key in KINDS or key.startswith(("aten.", "quantized.",
                                                            "optimizer.")):
        return
    raise DeviceError(f"{what}: {unknown}expected an operator class ({', '.join(OP_CLASSES)}), "
                      f"a kind ({', '.join(KINDS)}) or an aten operator name such as "
                      f"'aten.gru'")


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not finite(value) or value != int(value) or value < 1:
        raise DeviceError(f"{what} must be a whole number >= 1, got {shown(value)}")
    return int(value)


def _positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceError(f"{what} must be a number, got {value!r}")
    if not finite(value) or value <= 0:
        raise DeviceError(f"{what} must be positive, got {shown(value)}")
    return float(value)


def _non_negative(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceError(f"{what} must be a number, got {value!r}")
    if not finite(value) or value < 0:
        raise DeviceError(f"{what} must be >= 0, got {shown(value)}")
    return float(value)


def _byte_count(value: Any, what: str, zero: bool = False) -> int:
    """A whole number of bytes (``8e9`` is accepted when it is whole)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceError(f"{what} must be a number of bytes, got {value!r}")
    if not finite(value) or value != int(value) or value < (0 if zero else 1):
        raise DeviceError(f"{what} must be a whole number of bytes "
                          f"{'>= 0' if zero else '> 0'}, got {shown(value)}")
    return int(value)


