"""A project's devices, found the same way inside pytest and outside it.

A *project* is a folder with a ``pyproject.toml`` holding a ``[tool.flopbudget]`` table, or a
``.flopbudget`` folder. Inside pytest it is the rootdir; in a script, a notebook or the REPL it
is found from the current directory upward, as pytest finds its rootdir (:func:`find_root`).
Its catalog (:func:`project_catalog`) is, each layer able to override the one before:

1. the built-in devices (``devices.toml`` with ``fitted.toml``);
2. every device file in the project's ``.flopbudget/`` folder (``*.toml`` files holding
   ``[devices.NAME]`` tables: what ``python -m pytest_flopbudget calibrate --name NAME`` and
   ``fit`` write), each device joining by its table's name, replacing a built-in of that
   name whole; a name declared by two files of the folder is an error;
3. the ``host_file`` of ``[tool.flopbudget]`` when it lies elsewhere (its ``[devices.host]``);
4. the devices declared under ``[tool.flopbudget.devices]``, which may inherit from any of
   the above (``base = "host"``) or override single figures of one by naming it; one that
   needs a ``host`` not calibrated yet says how to calibrate when it is asked for.

:func:`get_device` resolves names in the session's catalog while pytest runs (the plugin sets
it) and in the current directory's project otherwise, re-read when a file changes. A missing
``host`` says how to calibrate.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.tomlio import TomlError, read_toml
from .catalog import Catalog
from .device import Device, DeviceError
from .device_file import DEFAULT_PATH, FOLDER, HOST

#: What a device name written to a file may be: a letter or digit, then letters, digits,
#: ``_ . + -`` (a file name in ``.flopbudget/``, never a path out of it).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def check_device_name(name: str) -> str:
    """``name`` when it can name a device file (:data:`NAME_PATTERN`, no ``..``), else a
    :class:`DeviceError` saying what a name may hold."""
    if not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise DeviceError(f"device name {name!r} cannot name a file in {FOLDER}/: use "
                          f"letters, digits and _ . + - (starting with a letter or digit)")
    return name


def device_file_path(root: Path, name: str) -> Path:
    """``ROOT/.flopbudget/NAME.toml``: where a device file for ``name`` lives (a name that
    is not a plain file name is a :class:`DeviceError`)."""
    return root / FOLDER / f"{check_device_name(name)}.toml"


def _tool_table(data: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """``[tool.NAME]`` of a read ``pyproject.toml`` (``None`` when it has none)."""
    tool = data.get("tool", {})
    table = tool.get(name) if isinstance(tool, Mapping) else None
    return table if isinstance(table, Mapping) else None


def _section(pyproject: Path) -> Mapping[str, Any] | None:
    """``[tool.flopbudget]`` of ``pyproject`` (``None`` when it has none)."""
    return _tool_table(read_toml(pyproject, str(pyproject)), "flopbudget")


def _holds_devices(folder: Path) -> bool:
    """Whether ``folder`` (a ``.flopbudget`` folder) holds a TOML file (a device file)."""
    try:
        return any(p.suffix == ".toml" for p in folder.iterdir())
    except OSError:
        return False


def _ini_section(path: Path, section: str) -> bool:
    """Whether the INI file ``path`` exists and has ``[section]``."""
    if not path.is_file():
        return False
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return False
    return parser.has_section(section)


def _pytest_root(folder: Path, pyproject: Mapping[str, Any] | None) -> bool:
    """Whether pytest would make ``folder`` its rootdir for its configuration file:
    ``pytest.ini``, ``.pytest.ini``, ``pytest.toml`` or ``.pytest.toml``; a
    ``pyproject.toml`` (read as ``pyproject``) with ``[tool.pytest]`` or
    ``[tool.pytest.ini_options]``; ``tox.ini`` with ``[pytest]``; ``setup.cfg`` with
    ``[tool:pytest]``."""
    if any((folder / name).is_file()
           for name in ("pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml")):
        return True
    if _tool_table(pyproject or {}, "pytest") is not None:
        return True
    return _ini_section(folder / "tox.ini", "pytest") or \
        _ini_section(folder / "setup.cfg", "tool:pytest")


def find_root(start: Path) -> Path | None:
    """The nearest folder, ``start`` or a parent, that is a project: it has a
    ``pyproject.toml`` with a ``[tool.flopbudget]`` table, a ``.flopbudget`` folder with a
    device file in it, or pytest's own configuration file (:func:`_pytest_root`: where
    pytest puts its rootdir); failing those, the nearest with a ``.flopbudget`` folder (one
    that holds only baselines, or nothing, does not hide a project above it), then the
    nearest ``pyproject.toml`` (pytest's last resort); ``None`` when there is none. A
    ``pyproject.toml`` that is not valid TOML is a :class:`DeviceError` naming it."""
    start = start.resolve()
    bare: Path | None = None
    plain: Path | None = None  # the nearest pyproject.toml without either table
    for folder in (start, *start.parents):
        if (folder / FOLDER).is_dir():
            if _holds_devices(folder / FOLDER):
                return folder
            bare = bare or folder
        pyproject = folder / "pyproject.toml"
        data: Mapping[str, Any] | None = None
        if pyproject.is_file():
            try:
                data = read_toml(pyproject, str(pyproject))
            except TomlError as exc:
                raise DeviceError(str(exc)) from None
            if _tool_table(data, "flopbudget") is not None:
                return folder
            plain = plain or folder
        if _pytest_root(folder, data):
            return folder
    # pytest's last resort is the first pyproject.toml even without its table
    return bare or plain


@dataclass(frozen=True)
class ProjectDevices:
    """A project's catalog and where it came from: ``files`` are the device files read (in
    order), ``host_path`` where the ``host`` device is read and written, ``declared`` how
    many devices ``[tool.flopbudget.devices]`` declares."""

    catalog: Catalog
    host_path: Path
    files: tuple[Path, ...] = ()
    declared: int = 0
    hints: Mapping[str, str] = field(default_factory=dict)


def host_missing(host_path: Path) -> str:
    """What to say when device ``host`` is asked for and ``host_path`` does not exist."""
    return (f"device 'host' is this machine once calibrated, and there is no calibration "
            f"file at {host_path}: run 'pytest --flop-calibrate' or 'python -m "
            f"pytest_flopbudget calibrate' to measure this machine and write it")


def device_tables(path: Path, where: str) -> dict[str, Any]:
    """The ``[devices.NAME]`` tables of a device file (``{}`` when it has no ``devices``
    table: another tool's TOML file in the folder). Errors name ``where``."""
    try:
        data = read_toml(path, where)
    except TomlError as exc:
        raise DeviceError(str(exc)) from None
    devices = data.get("devices", {})
    if not isinstance(devices, Mapping):
        raise DeviceError(f"{where}: devices must be a table of [devices.NAME] tables")
    return dict(devices)


def check_declared_once(path: Path, name: str) -> None:
    """Raise :class:`DeviceError` when another device file of ``path``'s ``.flopbudget``
    folder already declares device ``name``: writing ``name`` at ``path`` would make it
    declared twice, which breaks the project's catalog (nothing to check for a ``path`` in
    no ``.flopbudget`` folder). Files that cannot be read are passed over (their own error
    comes when the catalog is read)."""
    folder = path.parent
    if folder.name != FOLDER or not folder.is_dir():
        return
    for other in sorted(folder.glob("*.toml")):
        try:
            if other.resolve() == path.resolve():
                continue
            declared = name in device_tables(other, str(other))
        except (DeviceError, OSError, RuntimeError):  # unreadable, or a loop of links
            continue
        if declared:
            raise DeviceError(f"device {name!r} is already declared by {other}: a second "
                              f"file would break the project's devices; give another "
                              f"--name, or remove that file")


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def project_catalog(root: Path, section: Mapping[str, Any] | None = None, *,
                    devices_where: str = "pyproject.toml [tool.flopbudget.devices]",
                    host_file: Path | None = None) -> ProjectDevices:
    """The catalog of the project at ``root`` whose ``[tool.flopbudget]`` is ``section``
    (see the module docstring for the layers). ``host_file``: the host calibration file when
    the caller knows it (pytest's ``--flop-host-file``...), else ``section``'s ``host_file``
    (relative to ``root``), else ``.flopbudget/host.toml``.

    Raises :class:`DeviceError` naming the file and key: a device file that is not TOML, a
    device declared by two files of the folder, a bad figure, a bad ``host_file``.
    """
    section = section or {}
    if host_file is None:
        setting = section.get("host_file", str(DEFAULT_PATH))
        if not isinstance(setting, str) or not setting.strip():
            raise DeviceError(f"{devices_where.rsplit('.', 1)[0]}]: host_file must be a file "
                              f"path (a string), got {setting!r}")
        host_file = root / setting
    catalog = Catalog.builtin()
    files: list[Path] = []
    declared_in: dict[str, str] = {}
    folder = root / FOLDER
    found = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    is_host_file = host_file.resolve()
    for path in found:
        where = _shown(path, root)
        tables = device_tables(path, where)
        for name in tables:
            if name in declared_in:
                raise DeviceError(f"device {name!r} is declared by two device files: "
                                  f"{declared_in[name]} and {where}; keep one")
            declared_in[name] = where
        if path.resolve() == is_host_file:
            continue  # read last, below: the host file wins over the folder's files
        if tables:
            # a device file holds a whole device: it replaces a built-in of its name
            catalog = catalog.with_tables(tables, f"{where} [devices]", replace=True)
            files.append(path)
    hints: dict[str, str] = {}
    if host_file.is_file():
        where = _shown(host_file, root)
        tables = device_tables(host_file, where)
        if HOST not in tables:
            raise DeviceError(f"{where}: no [devices.{HOST}] table; run 'python -m "
                              f"pytest_flopbudget calibrate' to write one")
        catalog = catalog.with_tables(tables, f"{where} [devices]", replace=True)
        files.append(host_file)
    elif HOST not in catalog.names:
        hints[HOST] = host_missing(host_file)
    # before the declared devices: one that builds on an uncalibrated host says how to
    # calibrate when asked for, and the others work
    catalog = catalog.with_hints(hints)
    declared = section.get("devices", {})
    if declared:
        catalog = catalog.with_tables(declared, devices_where)
    return ProjectDevices(catalog, host_file, tuple(files),
                          len(declared) if isinstance(declared, Mapping) else 0, hints)


def discover(start: Path) -> ProjectDevices | None:
    """The devices of the project around ``start`` (see :func:`find_root`), or ``None``
    outside any project."""
    root = find_root(start)
    if root is None:
        return None
    pyproject = root / "pyproject.toml"
    section = None
    if pyproject.is_file():
        try:
            section = _section(pyproject)
        except TomlError as exc:
            raise DeviceError(str(exc)) from None
    return project_catalog(root, section,
                           devices_where=f"{pyproject} [tool.flopbudget.devices]")


# --- the catalog get_device() uses ------------------------------------------------------
_session: Catalog | None = None
_found: dict[Path, tuple[tuple[Any, ...], tuple[Path, ...], Catalog]] = {}


def set_default_catalog(catalog: Catalog | None) -> None:
    """Make ``catalog`` what :func:`get_device` resolves names with while a pytest session
    runs (``None``: back to the current directory's project)."""
    global _session
    _session = catalog


def _mtime(path: Path) -> int | None:
    """``path``'s modification time in ns, ``None`` when it is not there (or vanished)."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _stamp(start: Path, watched: tuple[Path, ...] = ()) -> tuple[Any, ...]:
    """What a project's catalog depends on, cheaply: the paths and modification times of
    the ``pyproject.toml`` files and ``.flopbudget`` folders (and what they hold) from
    ``start`` up, and of ``watched`` (a ``host_file`` elsewhere). A file that vanishes while
    this looks, or a dangling link, reads as absent."""
    out: list[Any] = []
    for folder in (start, *start.parents):
        for path in (folder / "pyproject.toml", folder / FOLDER):
            out.append((str(path), _mtime(path)))
            if path.name == FOLDER and path.is_dir():
                try:
                    inside = sorted(path.iterdir())
                except OSError:
                    continue
                out.extend((str(p), _mtime(p)) for p in inside)
    out.extend((str(p), _mtime(p)) for p in watched)
    return tuple(out)


def default_catalog() -> Catalog:
    """The catalog :func:`get_device` uses: the pytest session's while one runs, else the
    project's around the current directory (built-ins outside any project), read again
    when one of its files changes."""
    if _session is not None:
        return _session
    start = Path(os.getcwd())
    cached = _found.get(start)
    if cached is not None and cached[0] == _stamp(start, cached[1]):
        return cached[2]
    found = discover(start)
    catalog = found.catalog if found is not None else \
        Catalog.builtin().with_hints({HOST: host_missing(start / DEFAULT_PATH)})
    watched = (found.host_path,) if found is not None else ()
    _found[start] = (_stamp(start, watched), watched, catalog)
    return catalog


def get_device(name: str | Device, catalog: Catalog | None = None) -> Device:
    """A device by name (built-in, a project's device file or declared in its
    ``[tool.flopbudget.devices]``), or ``name`` itself if a Device."""
    if isinstance(name, Device):
        return name
    return (catalog or default_catalog()).get(name)


__all__ = ["NAME_PATTERN", "ProjectDevices", "check_declared_once", "check_device_name",
           "default_catalog",
           "device_file_path", "discover", "find_root", "get_device", "project_catalog",
           "set_default_catalog"]
