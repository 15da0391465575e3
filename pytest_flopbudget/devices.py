"""Target devices: the figures a roofline needs, where they come from, and how users add more.

Built-in devices live in ``devices.toml`` beside this module, every figure with its source.
Projects declare their own under ``[tool.flopbudget.devices.NAME]`` in ``pyproject.toml``,
optionally inheriting from another device with ``base = "npu"`` and overriding single figures.
"""

from __future__ import annotations

import difflib
import functools
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .classes import OP_CLASSES
from .dtypes import DEPLOY_DTYPES, parse_dtype

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CATALOG_FILE = Path(__file__).with_name("devices.toml")

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
            table = {}
            for key, value in peaks.items():
                try:
                    dtype = parse_dtype(key)
                except ValueError as exc:
                    raise DeviceError(f"{where}: peak_flops.{key}: {exc}") from None
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


def _check_keys(name: str, table: Mapping[str, Any], where: str) -> None:
    for key in table:
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DeviceError(f"{where}: unknown key {key!r}{hint}; known keys: "
                              f"{', '.join(KEYS)}")
    for key in ("efficiency", "sources", "overheads"):
        if key in table and not isinstance(table[key], Mapping):
            raise DeviceError(f"{where}: {key} must be a table")


@functools.cache
def _builtin_tables() -> dict[str, Any]:
    """``devices.toml``'s device tables, read once per process (catalogs copy, never
    change them)."""
    with CATALOG_FILE.open("rb") as fh:
        return tomllib.load(fh).get("devices", {})


class Catalog:
    """Named device tables, resolved on demand (inheritance included) into :class:`Device`."""

    def __init__(self, tables: Mapping[str, Mapping[str, Any]], origin: Mapping[str, str]):
        self._tables = dict(tables)
        self._origin = dict(origin)  # name -> where it was declared (for error messages)

    @classmethod
    def builtin(cls) -> Catalog:
        """The devices shipped in ``devices.toml``."""
        tables = _builtin_tables()
        return cls(tables, {n: f"devices.toml [devices.{n}]" for n in tables})

    def with_tables(self, tables: Mapping[str, Any], where: str) -> Catalog:
        """A catalog with more device tables (from ``[tool.flopbudget.devices]``); they may
        override built-in names. Each table is checked now, so errors name the file."""
        if not isinstance(tables, Mapping):
            raise DeviceError(f"{where} must be a table of device tables")
        merged = dict(self._tables)
        origin = dict(self._origin)
        for name, table in tables.items():
            here = f"{where}.{name}"
            if not isinstance(table, Mapping):
                raise DeviceError(f"{here} must be a table")
            _check_keys(name, table, here)
            merged[name] = table
            origin[name] = here
        catalog = Catalog(merged, origin)
        for name in tables:
            catalog.get(name)  # resolve now: inheritance and figures are checked up front
        return catalog

    @property
    def names(self) -> list[str]:
        return sorted(self._tables)

    def _resolve(self, name: str, chain: tuple[str, ...]) -> dict[str, Any]:
        if name in chain:
            raise DeviceError(f"device inheritance loops: {' -> '.join((*chain, name))}")
        if name not in self._tables:
            raise DeviceError(self._unknown(name, chain[-1] if chain else None))
        table = dict(self._tables[name])
        base = table.pop("base", None)
        if base is None:
            return table
        if not isinstance(base, str):
            raise DeviceError(f"{self._origin[name]}: base must be a device name")
        merged = self._resolve(base, (*chain, name))
        merged.pop("description", None)
        sources = dict(merged.get("sources", {}))
        own_sources = table.get("sources", {})
        for key, value in table.items():
            if key == "sources":
                continue
            extends = isinstance(value, Mapping) and isinstance(merged.get(key), Mapping)
            if not extends:  # the base's figures under this key are gone, and their sources
                sources = {f: s for f, s in sources.items() if not f.startswith(f"{key}.")}
            figures = [f"{key}.{k}" for k in value] if isinstance(value, Mapping) else [key]
            for figure in figures:
                # an overridden figure must not keep the base's source for another number
                if figure not in own_sources:
                    sources[figure] = f"set in {self._origin[name]} (no source given)"
            merged[key] = {**merged[key], **value} if extends else value
        merged["sources"] = {**sources, **own_sources}
        return merged

    def _unknown(self, name: str, referrer: str | None) -> str:
        close = difflib.get_close_matches(name, self._tables, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        where = f" ({self._origin[referrer]}: base)" if referrer else ""
        return (f"unknown device {name!r}{where}.{hint} Known devices: "
                f"{', '.join(self.names)}")

    def get(self, name: str) -> Device:
        """The device called ``name``; ``DeviceError`` lists the known names otherwise."""
        if not isinstance(name, str):
            raise DeviceError(f"a device name must be a string, got {name!r}")
        table = self._resolve(name, ())
        where = self._origin.get(name, name)
        _check_keys(name, table, where)
        for key in REQUIRED:
            if key not in table:
                raise DeviceError(f"{where}: missing required figure {key!r} "
                                  f"({KEYS[key]})")
        try:
            return Device(
                name=name,
                peak_flops=table["peak_flops"],
                bandwidth=table["bandwidth"],
                default_dtype=table.get("default_dtype", "fp32"),
                efficiency=dict(table.get("efficiency", {})),
                overhead=table.get("overhead", 0.0),
                overheads=dict(table.get("overheads", {})),
                onchip_bytes=table.get("onchip_bytes", 0),
                memory_bytes=table.get("memory_bytes"),
                description=table.get("description", ""),
                sources=dict(table.get("sources", {})),
            )
        except DeviceError as exc:
            raise DeviceError(f"{where}: {str(exc).split(': ', 1)[-1]}") from None
        except (TypeError, ValueError) as exc:
            raise DeviceError(f"{where}: {exc}") from None


_default_catalog: Catalog | None = None


def default_catalog() -> Catalog:
    """The catalog :func:`get_device` uses: built-ins, plus the devices of the current pytest
    session's ``[tool.flopbudget]`` once the plugin has loaded them."""
    global _default_catalog
    if _default_catalog is None:
        _default_catalog = Catalog.builtin()
    return _default_catalog


def set_default_catalog(catalog: Catalog | None) -> None:
    """Make ``catalog`` what :func:`get_device` resolves names with (``None``: built-ins)."""
    global _default_catalog
    _default_catalog = catalog


def get_device(name: str | Device, catalog: Catalog | None = None) -> Device:
    """A device by name (built-in or declared in config), or ``name`` itself if a Device."""
    if isinstance(name, Device):
        return name
    return (catalog or default_catalog()).get(name)


__all__ = ["DEPLOY_DTYPES", "KEYS", "Catalog", "Device", "DeviceError", "get_device"]
