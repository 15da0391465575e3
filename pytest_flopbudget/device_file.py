"""Device files: a device table written as TOML in the schema of ``devices.toml``, and read
back (the calibrated ``host`` device lives in such a file, by default
``.flopbudget/host.toml``)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .devices import Catalog, Device, DeviceError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HOST = "host"
DEFAULT_PATH = Path(".flopbudget") / "host.toml"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a valid TOML basic string (ASCII, \uXXXX escapes)
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else json.dumps(key)


def device_toml(name: str, table: Mapping[str, Any], header: str = "") -> str:
    """``table`` as TOML under ``[devices.NAME]``, sub-tables as ``[devices.NAME.KEY]``."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    prefix = f"devices.{_toml_key(name)}"
    lines.append(f"[{prefix}]")
    subtables = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            subtables.append((key, value))
        elif value is not None:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, sub in subtables:
        lines.append("")
        lines.append(f"[{prefix}.{_toml_key(key)}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sub.items())
    return "\n".join(lines) + "\n"


def host_tables(text: str, where: str) -> dict[str, dict[str, Any]]:
    """``{"host": table}`` from a calibration file's text, ready for ``Catalog.with_tables``.

    Raises ``DeviceError`` naming ``where`` when the text holds no ``[devices.host]`` table,
    or is not valid TOML.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeviceError(f"{where}: not valid TOML: {exc}") from None
    table = data.get("devices", {}).get(HOST)
    if not isinstance(table, dict):
        raise DeviceError(f"{where}: no [devices.{HOST}] table; run "
                          f"'python -m pytest_flopbudget calibrate' to write one")
    return {HOST: table}


def load_host(path: Path) -> dict[str, dict[str, Any]]:
    """Read a calibration file: ``{"host": table}`` (see :func:`host_tables`)."""
    return host_tables(Path(path).read_text(encoding="utf-8"), str(path))


def host_device(text: str, where: str) -> Device:
    """The ``host`` device of a calibration file's text, resolved and checked
    (``DeviceError`` names ``where`` and the key when a figure is wrong)."""
    return Catalog({}, {}).with_tables(host_tables(text, where), where).get(HOST)


def load_host_device(path: Path) -> Device:
    """The ``host`` device of the calibration file at ``path``."""
    return host_device(Path(path).read_text(encoding="utf-8"), str(path))
