"""``--flop-html=PATH``: one self-contained HTML file with roofline charts of every profiled test.

The page (``html_page``) embeds its charts as inline SVG drawn with matplotlib (``charts``),
its stylesheet and a few lines of script: it loads nothing from the network. matplotlib is the
optional ``html`` extra; asking for the report without it is a usage error at configure time,
not a crash at the end of the session. The file is written atomically on the controller once
every test (of every xdist worker) has reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..core.files import atomic_write
from ..devices.device import Device, DeviceError
from ..reporting import charts
from ..reporting.html_page import page
from .options import option_path

INSTALL_HINT = ("--flop-html needs matplotlib, which pytest-flopbudget installs as an optional "
                "extra: pip install 'pytest-flopbudget[html]'")


def add_options(group: Any) -> None:
    """Add --flop-html to the plugin's option group."""
    group.addoption("--flop-html", metavar="PATH", default=None,
                    help="write a self-contained HTML report with a roofline chart, a time "
                         "chart and a sortable layer table per profiled test to PATH "
                         "(needs pytest-flopbudget[html])")


def require_matplotlib() -> None:
    """Raise ``pytest.UsageError`` naming the extra when matplotlib cannot be imported."""
    missing = charts.missing()
    if missing:
        raise pytest.UsageError(f"{INSTALL_HINT} ({missing})")


def install(manager: Any) -> None:
    """Register the HTML writer with the plugin manager (controller only)."""
    option = option_path(manager.config, "flop_html")
    if option is None or manager.is_worker:
        return
    require_matplotlib()
    target = option[0]
    written: list[Path] = []

    def device_of(name: str) -> Device | None:
        try:
            return manager.settings.catalog.get(name)
        except DeviceError:
            return None

    def finish(records: list[dict[str, Any]], session: pytest.Session) -> None:
        written.append(write(target, records, device_of, manager.hotspots))

    def summary(tr: Any, records: list[dict[str, Any]]) -> None:
        for p in written:
            tr.write_line(f"flop budget HTML report: {p}")

    manager.add_finish(finish)
    manager.add_summary(summary)


def write(path: Path, records: list[dict[str, Any]], device_of: Any,
          hotspots: int = 5) -> Path:
    """Render ``records`` and write the page to ``path`` atomically; returns the path."""
    return atomic_write(path, page(records, device_of, hotspots))
