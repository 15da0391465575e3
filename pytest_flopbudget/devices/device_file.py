"""Device files: a device table written as TOML in the schema of ``devices.toml``, and read
back (the calibrated ``host`` device lives in such a file, by default
``.flopbudget/host.toml``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.tomlio import TomlError, key, parse_toml, read_toml, table_toml
from .catalog import Catalog
from .device import Device, DeviceError

HOST = "host"
#: The project folder that holds device files, the host calibration and baselines.
FOLDER = ".flopbudget"
#: Where the calibrated ``host`` device is written, relative to the project root.
DEFAULT_PATH = Path(FOLDER) / f"{HOST}.toml"


def check_device_destination(path: Path) -> None:
    """Raise :class:`DeviceError` when writing a device file at ``path`` would replace a
    file that is not one (a ``pyproject.toml``, a report, a measured CSV, a test module:
    anything but a TOML file with a ``[devices]`` table). A device file there is replaced
    (a calibration or fit written again)."""
    if not path.is_file():
        return
    try:
        devices = read_toml(path).get("devices")
    except TomlError as exc:
        raise DeviceError(f"{path} exists and is not a device file ({exc}): writing the "
                          f"device there would replace it; give another path") from None
    if not isinstance(devices, Mapping):
        raise DeviceError(f"{path} exists and is not a device file (no [devices] table): "
                          f"writing the device there would replace it; give another path")


def device_toml(name: str, table: Mapping[str, Any], header: str = "") -> str:
    """``table`` as TOML under ``[devices.NAME]``, sub-tables as ``[devices.NAME.KEY]``."""
    return table_toml(f"devices.{key(name)}", table, header)


def _host_table(data: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    devices = data.get("devices", {})
    table = devices.get(HOST) if isinstance(devices, Mapping) else None
    if not isinstance(table, dict):
        raise DeviceError(f"{where}: no [devices.{HOST}] table; run "
                          f"'python -m pytest_flopbudget calibrate' to write one")
    return {HOST: table}


def host_tables(text: str, where: str) -> dict[str, dict[str, Any]]:
    """``{"host": table}`` from a calibration file's text, ready for ``Catalog.with_tables``.

    Raises ``DeviceError`` naming ``where`` when the text holds no ``[devices.host]`` table,
    or is not valid TOML.
    """
    try:
        data = parse_toml(text, where)
    except TomlError as exc:
        raise DeviceError(str(exc)) from None
    return _host_table(data, where)


def load_host(path: Path) -> dict[str, dict[str, Any]]:
    """Read a calibration file: ``{"host": table}`` (see :func:`host_tables`); a file that
    cannot be read or decoded is a ``DeviceError`` naming it."""
    try:
        data = read_toml(path)
    except TomlError as exc:
        raise DeviceError(str(exc)) from None
    return _host_table(data, str(path))


def host_device(text: str, where: str, name: str = HOST) -> Device:
    """Device ``name`` (default ``host``) of a device file's text, resolved and checked
    (``DeviceError`` names ``where`` and the key when a figure is wrong)."""
    try:
        data = parse_toml(text, where)
    except TomlError as exc:
        raise DeviceError(str(exc)) from None
    devices = data.get("devices", {})
    table = devices.get(name) if isinstance(devices, Mapping) else None
    if not isinstance(table, dict):
        raise DeviceError(f"{where}: no [devices.{name}] table")
    return Catalog({}, {}).with_tables({name: table}, where).get(name)


def load_host_device(path: Path) -> Device:
    """The ``host`` device of the calibration file at ``path``."""
    return Catalog({}, {}).with_tables(load_host(path), str(path)).get(HOST)
