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
from ..core.op_classes import OP_CLASSES

#: Keys a device table may hold, and what each means.
KEYS: dict[str, str] = {
    "base": "name of a device to inherit every figure from",
    "description": "what the device is",
    "peak_flops": "peak compute in FLOP/s (OP/s for int8): a number (for default_dtype) or a "
                  "table per dtype (fp32, fp16, bf16, int8)",
    "bandwidth": "memory bandwidth in bytes/s (the memory that holds weights and activations)",
    "default_dtype": "precision the device runs at when a profile names none",
    "efficiency": "table of per-operator-class factors in (0, 1]: the fraction of the roofline "
                  "an operator class attains (1.0 when absent)",
    "overhead": "fixed seconds per operator (dispatch, launch)",
    "overheads": "table: operator class or aten operator (e.g. 'aten.gru') -> seconds per "
                 "operator, overriding overhead for those operators",
    "onchip_bytes": "on-chip memory (SRAM, cache) in bytes: recurrent weights that fit are not "
                    "re-read every step",
    "memory_bytes": "memory capacity in bytes",
    "sources": "table: figure -> where it comes from (datasheet, page title, or 'measured')",
}
REQUIRED = ("peak_flops", "bandwidth")


class DeviceError(ValueError):
    """A device name or a device table is wrong; the message names the key."""


@dataclass(frozen=True)
class Device:
    """A target for the roofline: peak compute, memory bandwidth and what limits them.

    ``peak_flops``: FLOP/s, a number (the peak at ``default_dtype``) or ``{dtype: FLOP/s}``;
    ``bandwidth``: bytes/s; ``efficiency``: ``{op class: fraction of the roofline attained}``;
    ``overhead``: seconds added per operator; ``onchip_bytes``: on-chip memory in bytes;
    ``memory_bytes``: capacity in bytes; ``sources``: ``{figure: source}``.
    """

    name: str
    peak_flops: float | Mapping[str, float]
    bandwidth: float
    default_dtype: str = "fp32"
    efficiency: Mapping[str, float] = field(default_factory=dict)
    overhead: float = 0.0
    overheads: Mapping[str, float] = field(default_factory=dict)
    onchip_bytes: int = 0
    memory_bytes: int | None = None
    description: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"device {self.name!r}"
        default = parse_dtype(self.default_dtype)
        assert default is not None
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
        for cls, factor in self.efficiency.items():
            if cls not in OP_CLASSES:
                raise DeviceError(f"{where}: efficiency.{cls}: unknown operator class; "
                                  f"expected one of {', '.join(OP_CLASSES)}")
            value = _positive(factor, f"{where}: efficiency.{cls}")
            if value > 1:
                raise DeviceError(f"{where}: efficiency.{cls} = {value} is above 1")
        object.__setattr__(self, "overhead", _non_negative(self.overhead, f"{where}: overhead"))
        for key, seconds in self.overheads.items():
            if key not in OP_CLASSES and not key.startswith(("aten.", "optimizer.")):
                raise DeviceError(f"{where}: overheads.{key}: expected an operator class "
                                  f"({', '.join(OP_CLASSES)}) or an aten operator name such "
                                  f"as 'aten.gru'")
            _non_negative(seconds, f"{where}: overheads.{key}")
        object.__setattr__(self, "onchip_bytes",
                           _byte_count(self.onchip_bytes, f"{where}: onchip_bytes", zero=True))
        if self.memory_bytes is not None:
            object.__setattr__(self, "memory_bytes",
                               _byte_count(self.memory_bytes, f"{where}: memory_bytes"))

    def peak(self, dtype: str | None = None) -> float:
        """Peak FLOP/s at ``dtype`` (default: the device's ``default_dtype``)."""
        dtype = parse_dtype(dtype) or self.default_dtype
        peaks: Mapping[str, float] = self.peak_flops  # type: ignore[assignment]
        if dtype not in peaks:
            raise DeviceError(
                f"device {self.name!r} has no peak for {dtype} (it lists "
                f"{', '.join(peaks)}); pick one of those with dtype=..."
            )
        return peaks[dtype]

    def overhead_for(self, op: str, op_class: str) -> float:
        """Fixed seconds one call of ``op`` (of ``op_class``) costs: ``overheads[op]``, else
        ``overheads[op_class]``, else ``overhead``."""
        table = self.overheads
        return float(table.get(op, table.get(op_class, self.overhead)))

    def overheads_text(self) -> str:
        """The per-operator overheads in words: ``"5 us per operator"``, followed by the
        per-class or per-operator entries (``" (aten.gru 13 us, depthwise_conv 95 us)"``)."""
        text = f"{self.overhead * 1e6:g} us per operator"
        special = ", ".join(f"{k} {v * 1e6:.3g} us" for k, v in sorted(self.overheads.items()))
        return f"{text} ({special})" if special else text

    def bare(self) -> Device:
        """This device with its roofs only (peak and bandwidth): efficiency 1, no overhead."""
        return replace(self, name=f"{self.name}-bare", efficiency={}, overhead=0.0,
                       overheads={})

    def efficiency_of(self, op_class: str) -> float:
        """Fraction of the roofline an operator class attains (1.0 when not given)."""
        return self.efficiency.get(op_class, 1.0)

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
            "overhead": self.overhead,
            "overheads": dict(self.overheads),
            "onchip_bytes": self.onchip_bytes,
            "memory_bytes": self.memory_bytes,
            "sources": dict(self.sources),
        }


def _positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise DeviceError(f"{what} must be positive, got {value!r}")
    return float(value)


def _non_negative(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise DeviceError(f"{what} must be >= 0, got {value!r}")
    return float(value)


def _byte_count(value: Any, what: str, zero: bool = False) -> int:
    """A whole number of bytes (``8e9`` is accepted when it is whole)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceError(f"{what} must be a number of bytes, got {value!r}")
    if not math.isfinite(value) or value != int(value) or value < (0 if zero else 1):
        raise DeviceError(f"{what} must be a whole number of bytes "
                          f"{'>= 0' if zero else '> 0'}, got {value!r}")
    return int(value)


