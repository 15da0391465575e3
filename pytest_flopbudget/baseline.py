"""Baselines and growth limits (CI gating). Placeholder: filled in by the baseline work."""

from __future__ import annotations

from typing import Any


def add_options(group: Any) -> None:
    """Add the baseline command-line options to the plugin's option group."""


def install(manager: Any) -> None:
    """Register the baseline checks, summary and file writers with the plugin manager."""
