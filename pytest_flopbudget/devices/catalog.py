"""The device catalog: named device tables, resolved into devices.

Built-in devices live in ``devices.toml`` beside this module, every figure with its source.
Projects add their own (device files, ``[tool.flopbudget.devices.NAME]``; see
:mod:`.project`), optionally inheriting from another device with ``base = "npu"`` and
overriding single figures.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.text import suggest
from ..core.tomlio import read_toml
from .device import KEYS, REQUIRED, Device, DeviceError

CATALOG_FILE = Path(__file__).with_name("devices.toml")
#: Figures fitted to published measurements (written by ``bench/edge/fit_catalog.py``), laid
#: over ``devices.toml``'s datasheet figures.
FITTED_FILE = Path(__file__).with_name("fitted.toml")

#: Table keys that are Device fields (``base`` is resolved by the catalog).
FIGURES = tuple(key for key in KEYS if key != "base")


def _check_keys(name: str, table: Mapping[str, Any], where: str) -> None:
    for key in table:
        if key not in KEYS:
            raise DeviceError(f"{where}: unknown key {key!r}{suggest(key, KEYS)}; known keys: "
                              f"{', '.join(KEYS)}")
    for key in ("efficiency", "compute_efficiency", "sources", "overheads", "tile"):
        if key in table and not isinstance(table[key], Mapping):
            raise DeviceError(f"{where}: {key} must be a table")
    if "description" in table and not isinstance(table["description"], str):
        raise DeviceError(f"{where}: description must be text, got {table['description']!r}")
    for figure, source in table.get("sources", {}).items():
        if not isinstance(source, str):
            raise DeviceError(f"{where}: sources.{figure} must be text (where the figure "
                              f"comes from), got {source!r}")


@functools.cache
def builtin_tables() -> dict[str, Any]:
    """``devices.toml``'s device tables with ``fitted.toml``'s figures laid over them, read
    once per process (catalogs copy, never change them)."""
    tables = read_toml(CATALOG_FILE).get("devices", {})
    if FITTED_FILE.is_file():
        for name, fitted in read_toml(FITTED_FILE).get("devices", {}).items():
            if name not in tables:
                raise DeviceError(f"{FITTED_FILE.name}: [devices.{name}] fits a device that "
                                  f"{CATALOG_FILE.name} does not have")
            tables[name] = overlay(tables[name], fitted)
    return tables


def overlay(table: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``table`` with ``over``'s figures: sub-tables (efficiency, overheads, sources) merged
    key by key, other figures replaced."""
    merged = dict(table)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _inherit(base: dict[str, Any], table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``table`` (declared at ``where``) over the resolved figures of the device it inherits
    from: tables of figures extend the base's, other figures replace them; an overridden
    figure loses the base's source unless ``table`` gives one."""
    merged = dict(base)
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
                sources[figure] = f"set in {where} (no source given)"
        merged[key] = {**merged[key], **value} if extends else value
    merged["sources"] = {**sources, **own_sources}
    return merged


class MissingDevice(DeviceError):
    """A device the catalog knows it lacks and says how to make (``host`` before any
    calibration: the message says how to calibrate)."""


class Catalog:
    """Named device tables, resolved on demand (inheritance included) into :class:`Device`."""

    def __init__(self, tables: Mapping[str, Mapping[str, Any]], origin: Mapping[str, str],
                 hints: Mapping[str, str] | None = None):
        self._tables = dict(tables)
        self._origin = dict(origin)  # name -> where it was declared (for error messages)
        self._hints = dict(hints or {})  # name -> what to do when it is missing

    @classmethod
    def builtin(cls) -> Catalog:
        """The devices shipped in ``devices.toml`` (with the figures of ``fitted.toml``)."""
        tables = builtin_tables()
        return cls(tables, {n: f"devices.toml [devices.{n}]" for n in tables})

    def with_tables(self, tables: Mapping[str, Any], where: str, *,
                    replace: bool = False) -> Catalog:
        """A catalog with more device tables. A table named like a device already in the
        catalog without ``base`` overrides the figures it gives and keeps the others, as if
        it said ``base = <that device>`` (``[tool.flopbudget.devices]``); with ``replace``
        it replaces that device whole (a device file: a complete device, written by
        ``calibrate`` or ``fit``). Each table is checked now, so errors name the file; one
        that needs a device this catalog only has a hint for (``host`` before any
        calibration) is checked when it is asked for, and says the hint then."""
        if not isinstance(tables, Mapping):
            raise DeviceError(f"{where} must be a table of device tables")
        merged = dict(self._tables)
        origin = dict(self._origin)
        for name, table in tables.items():
            here = f"{where}.{name}"
            if not isinstance(table, Mapping):
                raise DeviceError(f"{here} must be a table")
            _check_keys(name, table, here)
            # without base, a table overrides the device of its name (a device file
            # replaces it); base = its own name says "over that device" either way
            overrides = table.get("base") == name or ("base" not in table and not replace)
            if table.get("base") == name and name not in self._tables and \
                    name not in self._hints:
                raise DeviceError(f"{here}: base names the device itself, and there is no "
                                  f"device {name!r} before it to build on; give a complete "
                                  f"device or another base")
            if overrides and name in self._tables:
                # a device of that name exists: the table overrides some of its figures
                own = {k: v for k, v in table.items() if k != "base"}
                table = _inherit(self._resolve(name, ()), own, here)
            elif overrides and name in self._hints and \
                    not all(key in table for key in REQUIRED):
                # figures over a device that is not there yet (host before calibrating):
                # asking for it says the hint
                continue
            merged[name] = table
            origin[name] = here
        catalog = Catalog(merged, origin, self._hints)
        for name in tables:
            if name not in merged:
                continue
            try:
                catalog.get(name)  # resolve now: inheritance and figures checked up front
            except MissingDevice:
                continue  # it needs a device not there yet: asking for it says so
        return catalog

    def with_hints(self, hints: Mapping[str, str]) -> Catalog:
        """This catalog, with what to say when one of ``hints``' names is asked for and is
        not in it (``{"host": "run ... calibrate"}``)."""
        return Catalog(self._tables, self._origin, {**self._hints, **hints})

    @property
    def names(self) -> list[str]:
        return sorted(self._tables)

    def _resolve(self, name: str, chain: tuple[str, ...]) -> dict[str, Any]:
        if name in chain:
            raise DeviceError(f"device inheritance loops: {' -> '.join((*chain, name))}")
        if name not in self._tables:
            if name in self._hints:
                raise MissingDevice(self._hints[name])
            raise DeviceError(self._unknown(name, chain[-1] if chain else None))
        table = dict(self._tables[name])
        base = table.pop("base", None)
        if base is None:
            return table
        if not isinstance(base, str):
            raise DeviceError(f"{self._origin[name]}: base must be a device name")
        return _inherit(self._resolve(base, (*chain, name)), table, self._origin[name])

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
        figures = {key: table[key] for key in FIGURES if key in table}
        try:
            return Device(name=name, **figures, origin=where)
        except DeviceError as exc:
            raise DeviceError(f"{where}: {str(exc).split(': ', 1)[-1]}") from None
        except (TypeError, ValueError) as exc:
            raise DeviceError(f"{where}: {exc}") from None


class UnreadCatalog(Catalog):
    """The catalog of a project whose devices could not be read: every name asked for is a
    :class:`DeviceError` saying why (``error``), never a built-in device of that name in
    place of the project's."""

    def __init__(self, error: str) -> None:
        super().__init__({}, {})
        self.error = error

    def get(self, name: str) -> Device:
        raise DeviceError(f"device {name!r}: the project's devices could not be read: "
                          f"{self.error}")


__all__ = ["CATALOG_FILE", "FITTED_FILE", "Catalog", "MissingDevice", "UnreadCatalog"]
