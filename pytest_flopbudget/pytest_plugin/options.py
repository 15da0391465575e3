"""Command-line option helpers: argparse ``type=`` functions and file options as paths."""

from __future__ import annotations

from pathlib import Path

import pytest


def option_path(config: pytest.Config, name: str) -> tuple[Path, str] | None:
    """``(path, as the user wrote it)`` of a pytest file option (``--flop-json=PATH``),
    relative to the directory pytest was invoked from, whatever directory a test leaves the
    process in; ``None`` when the option is not given. An empty path (``--flop-json=``) is a
    usage error, not a report silently not written."""
    value = config.getoption(name)
    if value is None:
        return None
    if not value.strip():
        raise pytest.UsageError(f"--{name.replace('_', '-')} needs a file path, got {value!r}")
    return Path(config.invocation_params.dir) / value, value
