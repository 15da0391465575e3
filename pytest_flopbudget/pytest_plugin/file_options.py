"""Every file a session writes is its own: two options never name one file, and no report
overwrites a file the session reads (the baseline it compares with, the project's
configuration, the calibrated host device) or an existing source file (a test module, a
``conftest.py``). Either is a usage error naming both, before any test runs: otherwise one
report silently replaces the other, the baseline or the code. So is a folder given as a
file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ..core.files import same_file
from .options import option_path

#: Suffixes of source files no report is ever written over (``--flop-json test_b.py``, a
#: space typed for ``=``, named the test file the session collects).
SOURCE_SUFFIXES = frozenset({".py", ".pyi", ".cfg", ".ini", ".toml"})
#: File options of the plugin, in the order their files are written.
OUTPUTS = ("flop_json", "flop_html", "flop_markdown", "flop_save_baseline")


def written(manager: Any) -> list[tuple[str, Path, str]]:
    """``(option, path, as written)`` of every file the session will write."""
    files = []
    for dest in OUTPUTS:
        option = option_path(manager.config, dest)
        if option is not None:
            files.append(("--" + dest.replace("_", "-"), *option))
    if manager.calibrating:
        host = manager.settings.host_path
        files.append(("--flop-calibrate", host, str(host)))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        files.append(("$GITHUB_STEP_SUMMARY", Path(summary), summary))
    return files


def read(manager: Any, gate: Any, option: str) -> list[tuple[Path, str]]:
    """``(path, what it is)`` of the files the session reads, or the project keeps, that
    ``option`` must not overwrite (saving a baseline may write the configured one)."""
    files = []
    if gate.compared is not None:
        files.append((gate.compared[0], f"the baseline being compared ({gate.compared[1]})"))
    if gate.configured is not None and option != "--flop-save-baseline":
        files.append((gate.configured[0], f"the project's baseline ({gate.configured[1]})"))
    settings = manager.settings
    if settings.path is not None:
        files.append((settings.path, f"the project's configuration ({settings.path.name})"))
    if not manager.calibrating and settings.host_path.is_file():
        files.append((settings.host_path,
                      f"the calibrated host device ({settings.host_path})"))
    return files


def check(manager: Any, gate: Any) -> None:
    """Raise ``pytest.UsageError`` naming both when two uses share one file (``gate``: the
    baseline feature, which knows the baseline compared and the configured one)."""
    outputs = written(manager)
    for i, (option, path, shown) in enumerate(outputs):
        if path.is_dir():
            raise pytest.UsageError(f"{option} names a folder ({shown}): give it a file path")
        for other, other_path, _ in outputs[i + 1:]:
            if same_file(path, other_path):
                raise pytest.UsageError(f"{option} and {other} name the same file ({shown}): "
                                        f"give each its own path")
        for source, what in read(manager, gate, option):
            if same_file(path, source):
                raise pytest.UsageError(f"{option} names {what}: writing it would replace "
                                        f"it; give {option} another path")
        report = option.lstrip("-").replace("-", "_") in OUTPUTS  # not the host file
        if report and path.suffix in SOURCE_SUFFIXES and path.exists():
            raise pytest.UsageError(f"{option} names an existing source file ({shown}; a "
                                    f"space for '=' makes the next argument the path): "
                                    f"writing it would replace it; give {option} a report "
                                    f"path")
