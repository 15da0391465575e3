"""The plugin's scalar settings as pytest ini options, and which source of a setting wins.

Each command-line option that holds one value has an ini twin of the same meaning, so
``-o flop_device=npu`` and ``[tool.pytest.ini_options] flop_device = "npu"`` work and
``pytest --help`` lists them:

==================  ======================  =============================================
ini option          command line            ``[tool.flopbudget]`` key (a default)
==================  ======================  =============================================
``flop_device``     ``--flop-device``       ``device`` (markers and per-test tables win)
``flop_hotspots``   ``--flop-hotspots``     ``hotspots``
``flop_strict``     ``--flop-strict``       ``strict`` (markers and per-test tables win)
``flop_baseline``   ``--flop-baseline``     ``baseline``
``flop_max_growth`` ``--flop-max-growth``   ``max_growth``
==================  ======================  =============================================

**Precedence**: the command line wins over the ini option, which wins over
``[tool.flopbudget]``. An ini option means what its command-line twin means: ``flop_device``
prices *every* test on that device, as ``--flop-device`` does, while ``[tool.flopbudget]
device`` is only a default that a marker or per-test table overrides; ``flop_strict = true``
turns the coverage gate on for every test, ``[tool.flopbudget] strict = true`` for the tests
that do not say ``strict=False``. A path in ``flop_baseline`` is relative to the rootdir,
as paths in ``[tool.flopbudget]`` are (a command-line path: to the invocation directory).
A bad value is a usage error naming the ini option.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..budgets.growth import GrowthError, parse_growth


@dataclass(frozen=True)
class Ini:
    """One ini option: its name, its command-line twin (an ``addoption`` dest) and help."""

    name: str
    option: str  # dest of the command-line twin, e.g. "flop_device"
    flag: str  # the command-line twin as typed, e.g. "--flop-device"
    help: str
    type: str = "string"


INI: dict[str, Ini] = {i.name: i for i in (
    Ini("flop_device", "flop_device", "--flop-device",
        "run every test's roofline on this device (as --flop-device; that option wins)"),
    Ini("flop_hotspots", "flop_hotspots", "--flop-hotspots",
        "layers listed per test over budget (as --flop-hotspots; that option wins over this, "
        "this over [tool.flopbudget] hotspots)"),
    Ini("flop_strict", "flop_strict", "--flop-strict",
        "fail every test whose profile has operators without a FLOP formula (as "
        "--flop-strict)", type="bool"),
    Ini("flop_baseline", "flop_baseline", "--flop-baseline",
        "baseline file to compare with, relative to the rootdir (as --flop-baseline; that "
        "option wins over this, this over [tool.flopbudget] baseline)"),
    Ini("flop_max_growth", "flop_max_growth", "--flop-max-growth",
        "growth limit over the baseline, e.g. 5% or flops:2%,latency:10% (as "
        "--flop-max-growth; that option wins)"),
)}


def add_ini(parser: pytest.Parser) -> None:
    """Register every ini option (``pytest --help`` lists them under ini-options)."""
    for ini in INI.values():
        parser.addini(ini.name, ini.help, type=ini.type,  # type: ignore[arg-type]
                      default=False if ini.type == "bool" else "")


def where(name: str) -> str:
    """How an error names an ini option: ``flop_hotspots (ini option)``."""
    return f"{name} (ini option)"


def ini_value(config: pytest.Config, name: str) -> Any:
    """The ini option's value, ``None`` when unset; a bad boolean is a usage error."""
    try:
        value = config.getini(name)
    except (ValueError, pytest.UsageError) as exc:  # a bad boolean
        raise pytest.UsageError(f"{where(name)}: {exc}") from None
    if INI[name].type == "bool":
        return True if value else None
    return value.strip() or None if isinstance(value, str) else value


def setting(config: pytest.Config, name: str,
            parse: Callable[[str], Any] | None = None) -> tuple[Any, str] | None:
    """``(value, where it was set)`` from the command line, else the ini option; ``None``
    when neither sets it. ``parse`` converts an ini string (the command line parses its
    own); a ``ValueError`` from it is a usage error naming the ini option."""
    ini = INI[name]
    value = config.getoption(ini.option)
    if value not in (None, False):
        return value, ini.flag
    raw = ini_value(config, name)
    if raw is None:
        return None
    if parse is None:
        return raw, where(name)
    try:
        return parse(raw), where(name)
    except (ValueError, GrowthError) as exc:
        raise pytest.UsageError(f"{where(name)}: {exc}") from None


def positive(text: str) -> int:
    """An ini string as a positive integer (``flop_hotspots``)."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return value


def growth(text: str) -> Any:
    """An ini string as a growth spec (``flop_max_growth``)."""
    return parse_growth(text)


def ini_path(config: pytest.Config, text: str) -> tuple[Path, str]:
    """``(path, as written)`` of a path given in an ini option: relative to the rootdir."""
    return config.rootpath / text, text
