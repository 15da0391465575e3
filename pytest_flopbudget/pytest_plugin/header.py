"""The plugin's line in pytest's report header: where devices come from, how old the host
calibration is, and the settings that override every test."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..budgets.config import Config
from ..devices.device_file import HOST

#: Seconds per day, for the age of the host calibration.
DAY = 86_400


def age_text(seconds: float) -> str:
    """``"today"``, ``"1 day ago"``, ``"12 days ago"`` for a file ``seconds`` old."""
    days = int(max(seconds, 0) // DAY)
    return "today" if days == 0 else f"{days} day{'s' * (days != 1)} ago"


def shown(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` when it lies under it."""
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return str(path)


def lines(settings: Config, overrides: Mapping[str, tuple[Any, str]], root: Path,
          now: float | None = None) -> list[str]:
    """One header line: ``flopbudget: devices from pyproject.toml [tool.flopbudget.devices]
    (2), host calibrated 3 days ago (.flopbudget/host.toml)``; paths relative to ``root``
    (the rootdir), the age from the calibration file's modification time."""
    declared = settings.settings.get("devices")
    n = len(declared) if isinstance(declared, Mapping) else 0
    parts = [f"devices from {settings.where('devices')} ({n})" if n else "built-in devices"]
    files = [p.stem for p in settings.device_files if p != settings.host_path]
    if files:
        parts.append(f"device files ({len(files)}: {', '.join(files)})")
    host = shown(settings.host_path, root)
    if HOST in settings.catalog.names and settings.host_path.is_file():
        age = (now if now is not None else time.time()) - settings.host_path.stat().st_mtime
        parts.append(f"host calibrated {age_text(age)} ({host})")
    else:
        parts.append(f"host not calibrated (pytest --flop-calibrate writes {host})")
    parts.extend(f"{key} {value if value is not True else 'on'} for every test ({where})"
                 for key, (value, where) in overrides.items())
    if settings.error:
        parts.append("configuration error (see the flop budget summary)")
    return ["flopbudget: " + ", ".join(parts)]
