"""``[tool.flopbudget]`` in ``pyproject.toml``: defaults, devices and per-test budgets.

    [tool.flopbudget]
    device = "npu"            # default device for every test
    dtype = "int8"            # default deployment precision
    max_mflops = 500          # a default limit for every budgeted test
    hotspots = 5              # layers listed per failing test
    strict = true             # the coverage gate: an operator without a formula fails

    [tool.flopbudget.devices.my-npu]
    base = "npu"
    bandwidth = 8e9

    [tool.flopbudget.tests."tests/test_models.py::test_backbone"]   # fnmatch on the node id
    max_gmacs = 0.35

    [tool.flopbudget.tests."tests/test_models.py::test_edge".modules.backbone]
    max_gmacs = 0.3           # a per-module limit (module path "backbone")

The scalar settings also have pytest ini twins (``flop_device``...), which win over this
section: see :mod:`pytest_flopbudget.pytest_plugin.ini`.

A broken section never aborts the session: the error is kept and reported by every budgeted
test (tests without budgets still run).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.text import suggest
from ..core.tomlio import TomlError, read_toml
from ..devices.catalog import Catalog, UnreadCatalog
from ..devices.device import Device, DeviceError
from ..devices.device_file import DEFAULT_PATH, HOST
from ..devices.project import device_file_path, find_root, host_missing, project_catalog
from .limits import KNOWN, BudgetError, check_arguments

SECTION = "[tool.flopbudget]"

#: Top-level keys of the section besides budget arguments.
SETTINGS: dict[str, str] = {
    "devices": "table of device tables (see devices.KEYS)",
    "tests": "table: node id pattern -> budget arguments for matching tests",
    "hotspots": "number of layers listed per failing test (default 5)",
    "host_file": "calibrated host device file (default .flopbudget/host.toml)",
    "baseline": "baseline file for --flop-baseline (path)",
}



class ConfigError(ValueError):
    """``[tool.flopbudget]`` is malformed; the message names the key."""


@dataclass
class Config:
    """What ``[tool.flopbudget]`` says, validated."""

    defaults: dict[str, Any] = field(default_factory=dict)
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalog: Catalog = field(default_factory=Catalog.builtin)
    hotspots: int = 5
    settings: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    host_path: Path = DEFAULT_PATH  # where the calibrated host device is read/written
    device_files: list[Path] = field(default_factory=list)  # read into the catalog
    error: str | None = None
    #: per-test tables that are wrong: ``{pattern: message}``; only the tests they match
    #: error with it
    test_errors: dict[str, str] = field(default_factory=dict)

    def error_for(self, nodeid: str) -> str | None:
        """The error of the first wrong per-test table that matches ``nodeid``, if any."""
        return next((message for pattern, message in self.test_errors.items()
                     if matches(nodeid, pattern)), None)

    def layers_for(self, nodeid: str) -> list[tuple[str, Mapping[str, Any]]]:
        """Budget argument layers that apply to a test, most general first."""
        where = self.where()
        layers: list[tuple[str, Mapping[str, Any]]] = [(where, self.defaults)]
        for pattern, args in self.tests.items():
            if matches(nodeid, pattern):
                layers.append((self.test_table(pattern), args))
        return layers

    def test_table(self, pattern: str) -> str:
        """Where a per-test table is written: ``pyproject.toml [tool.flopbudget.tests]."P"``."""
        return f"{self.where('tests')}.{_quote(pattern)}"

    def device(self, name: str) -> Device:
        """The device called ``name`` from the session's catalog; ``host`` without a
        calibration file says how to make one."""
        if name == HOST and HOST not in self.catalog.names:
            raise DeviceError(host_missing(self.host_path))
        return self.catalog.get(name)

    def where(self, *keys: str) -> str:
        name = self.path.name if self.path else "pyproject.toml"
        inner = ".".join(("tool", "flopbudget", *keys))
        return f"{name} [{inner}]"


def matches(nodeid: str, pattern: str) -> bool:
    """Whether a per-test table's key applies to a test: fnmatch on the node id, or the key
    is the node id or its end from a ``/`` or ``::`` on (``"test_backbone"``,
    ``"test_kws.py::test_small"``; ``"b.py::test_x"`` is not the end of
    ``"tests/test_sub.py::test_x"``); a key naming a test function applies to every
    parametrization of it (``"test_p.py::test_param"`` to ``test_param[1]``)."""
    if fnmatch.fnmatchcase(nodeid, pattern):
        return True
    # the parameters follow the function's name, after the file's path (a folder may hold
    # a '[', a parameter id a '::')
    file, sep, rest = nodeid.partition("::")
    function = file + sep + rest.split("[", 1)[0] if nodeid.endswith("]") else nodeid
    return any(candidate == pattern or candidate.endswith(("/" + pattern, "::" + pattern))
               for candidate in (nodeid, function))


def _quote(key: str) -> str:
    return key if key.replace("-", "").replace("_", "").isalnum() else f'"{key}"'


def load(rootdir: Path, host_file: Path | None = None) -> Config:
    """Read ``rootdir/pyproject.toml``; errors are kept in ``Config.error``, not raised."""
    path = rootdir / "pyproject.toml"
    config = Config(path=path if path.is_file() else None,
                    host_path=host_file or rootdir / DEFAULT_PATH)
    section: Mapping[str, Any] | None = None
    try:
        if config.path is not None:
            try:
                data = read_toml(path, path.name)
            except TomlError as exc:
                raise ConfigError(str(exc)) from None
            section = data.get("tool", {}).get("flopbudget", {})
        parse(section or {}, config, rootdir, host_file)
    except (ConfigError, BudgetError, DeviceError) as exc:
        config.error = str(exc)
        config.catalog = _devices_despite(section, config, rootdir, host_file)
    return config


def _devices_despite(section: Mapping[str, Any] | None, config: Config, rootdir: Path,
                     host_file: Path | None) -> Catalog:
    """The project's devices when its ``[tool.flopbudget]`` has an error (what a script in
    the project sees: an error in a budget key leaves them as they are); when the devices
    themselves cannot be read, a catalog whose every name says why."""
    if config.path is not None and section is None:  # pyproject.toml is not TOML
        return UnreadCatalog(config.error or "")
    try:
        return project_catalog(rootdir, section if isinstance(section, Mapping) else {},
                               devices_where=config.where("devices"),
                               host_file=host_file).catalog
    except DeviceError as exc:
        return UnreadCatalog(str(exc))


def host_file_setting(start: Path, name: str = HOST) -> tuple[Path, str]:
    """Where ``python -m pytest_flopbudget calibrate [--name NAME]`` run in ``start`` writes
    device ``name``: under the project root (:func:`~..devices.project.find_root`: the
    nearest folder, ``start`` or a parent, with a ``pyproject.toml`` holding
    ``[tool.flopbudget]``, a ``.flopbudget`` folder or pytest's configuration, as pytest
    finds its rootdir; else ``start``), ``.flopbudget/NAME.toml``; for ``host``, the
    root's ``[tool.flopbudget] host_file`` when it sets one. Returns ``(path, why that
    path)``; a bad ``host_file`` raises :class:`ConfigError` naming the key."""
    try:
        root = find_root(start)
    except DeviceError as exc:
        raise ConfigError(str(exc)) from None
    if root is None:
        return (start / device_file_path(Path(), name),
                "the default (no project: no pyproject.toml, .flopbudget folder or pytest "
                "configuration here or above)")
    path = root / "pyproject.toml"
    section: Mapping[str, Any] = {}
    if path.is_file():
        try:
            data = read_toml(path, str(path))
        except TomlError as exc:
            raise ConfigError(str(exc)) from None
        found = data.get("tool", {}).get("flopbudget")
        section = found if isinstance(found, Mapping) else {}
    setting = section.get("host_file") if name == HOST else None
    if setting is None:
        return root / device_file_path(Path(), name), f"the default in the project at {root}"
    if not isinstance(setting, str) or not setting.strip():
        raise ConfigError(f"{path} [tool.flopbudget]: host_file must be a file path (a "
                          f"string), got {setting!r}")
    return root / setting, f"{path} [tool.flopbudget] host_file"


def parse(section: Mapping[str, Any], config: Config, rootdir: Path,
          host_file: Path | None = None) -> Config:
    """Fill ``config`` from a ``[tool.flopbudget]`` table (raises on the first error)."""
    if not isinstance(section, Mapping):
        raise ConfigError(f"{config.where()} must be a table")
    budget_args = {}
    for key, value in section.items():
        if key in SETTINGS:
            config.settings[key] = value
        elif key in KNOWN:
            budget_args[key] = value
        else:
            raise ConfigError(f"{config.where()}: unknown key {key!r}"
                              f"{suggest(key, (*KNOWN, *SETTINGS))}; known keys: "
                              f"{', '.join((*KNOWN, *SETTINGS))}")
    config.defaults = check_arguments(budget_args, config.where())
    hotspots = section.get("hotspots", 5)
    if isinstance(hotspots, bool) or not isinstance(hotspots, int) or hotspots < 1:
        raise ConfigError(f"{config.where()}: hotspots must be a positive integer, "
                          f"got {hotspots!r}")
    config.hotspots = hotspots
    tests = section.get("tests", {})
    if not isinstance(tests, Mapping):
        raise ConfigError(f"{config.where('tests')} must be a table")
    for pattern, args in tests.items():
        where = f"{config.where('tests')}.{_quote(pattern)}"
        try:
            if not isinstance(args, Mapping):
                raise ConfigError(f"{where} must be a table of budget arguments")
            config.tests[pattern] = check_arguments(args, where)
        except (ConfigError, BudgetError) as exc:  # errors the tests it matches, no other
            config.test_errors[pattern] = str(exc)
    host_setting = section.get("host_file", str(DEFAULT_PATH))
    if not isinstance(host_setting, str) or not host_setting.strip():
        raise ConfigError(f"{config.where()}: host_file must be a file path (a string), "
                          f"got {host_setting!r}")
    config.host_path = host_file or rootdir / host_setting
    found = project_catalog(rootdir, section, devices_where=config.where("devices"),
                            host_file=config.host_path)
    config.catalog = found.catalog
    config.device_files = list(found.files)
    if "device" in config.defaults:
        try:
            config.device(config.defaults["device"])
        except DeviceError as exc:
            raise ConfigError(f"{config.where()}: device: {exc}") from None
    for pattern, args in list(config.tests.items()):
        if "device" in args:
            try:
                config.device(args["device"])
            except DeviceError as exc:
                config.test_errors[pattern] = (f"{config.where('tests')}.{_quote(pattern)}: "
                                               f"device: {exc}")
                del config.tests[pattern]
    return config
