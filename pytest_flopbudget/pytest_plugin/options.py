"""Command-line option helpers: argparse ``type=`` functions and file options as paths."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest


def positive_int(text: str) -> int:
    """argparse ``type=`` for a positive integer option (``--flop-hotspots=N``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def option_path(config: pytest.Config, name: str) -> tuple[Path, str] | None:
    """``(path, as the user wrote it)`` of a pytest file option (``--flop-json=PATH``),
    relative to the directory pytest was invoked from, whatever directory a test leaves the
    process in; ``None`` when the option is not given."""
    value = config.getoption(name)
    if not value:
        return None
    return Path(config.invocation_params.dir) / value, value
