"""The self-contained HTML report. Placeholder: filled in by the HTML report work."""

from __future__ import annotations

from typing import Any


def add_options(group: Any) -> None:
    """Add --flop-html to the plugin's option group."""


def install(manager: Any) -> None:
    """Register the HTML writer with the plugin manager."""
