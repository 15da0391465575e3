"""What the operating system says about this machine: CPU model, cache sizes, memory.

Linux sources (``/proc``, ``/sys``); every reader returns ``None`` or a placeholder where the
system does not say, never raises.
"""

from __future__ import annotations

import platform
from pathlib import Path

CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")
MEMINFO = Path("/proc/meminfo")
CPUINFO = Path("/proc/cpuinfo")


def parse_size(text: str) -> int:
    """Bytes of a sysfs size such as ``"32K"``, ``"32768K"``, ``"8M"`` or ``"1048576"``."""
    text = text.strip()
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text and text[-1].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def largest_cache(cache_dir: Path = CACHE_DIR) -> tuple[int, str] | None:
    """``(bytes, description)`` of the largest cache level under ``cache_dir`` (sysfs), or
    ``None`` when none can be read."""
    best: tuple[int, str] | None = None
    for index in sorted(cache_dir.glob("index*")):
        try:
            size = parse_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        level = _read(index / "level")
        kind = _read(index / "type")
        text = f"{index / 'size'} (L{level} {kind}, {size // 1024} KiB)"
        if best is None or size > best[0]:
            best = (size, text)
    return best


def mem_total(meminfo: Path = MEMINFO) -> int | None:
    """``MemTotal`` from ``/proc/meminfo`` in bytes, or ``None``."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                value, *unit = line.split(":", 1)[1].split()
                scale = 1024 if unit and unit[0].lower() == "kb" else 1
                return int(value) * scale
    except (OSError, ValueError):
        return None
    return None


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return "?"
