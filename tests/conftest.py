"""Shared test setup.

``reference_models`` is importable from every test (this directory is on sys.path).

In-process ``pytester`` runs restore ``sys.modules`` afterwards, and torch imports parts of
itself lazily the first time a fake-tensor trace runs (some of which register operator
libraries that cannot be registered twice). Tracing once here, before any ``pytester`` run,
loads them for the whole session (matplotlib has the same problem: the HTML report's charts
are drawn once here too).

The ``once_per_run`` fixture lets a fixture that runs a whole project in a subprocess run it
once per test run, even when xdist splits the tests that use it between workers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

Once = Callable[[str, Callable[[Path], str]], tuple[Path, str]]


@pytest.fixture(scope="session")
def once_per_run(tmp_path_factory: pytest.TempPathFactory) -> Once:
    """``once_per_run(name, make) -> (directory, text)``: see :func:`run_once`."""
    return lambda name, make: run_once(tmp_path_factory, name, make)


def run_once(tmp_path_factory: pytest.TempPathFactory, name: str,
             make: Callable[[Path], str]) -> tuple[Path, str]:
    """``(directory, text)``: ``make(directory)`` runs once for the whole test run and returns
    ``text``. Under xdist every worker's base temporary directory is in the run's own, so the
    workers share one directory there: the first to ask runs ``make`` under a file lock, the
    others wait for it and read what it returned. A ``make`` that raises is run again by the
    next worker to ask (and fails there too)."""
    from filelock import FileLock  # a dependency of torch

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    directory, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.is_file():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            text = make(directory)
            done.write_text(text)
        return directory, done.read_text()


def _warm_up() -> None:
    from pytest_flopbudget import profile
    from pytest_flopbudget.counting.tracer import trace

    class Warm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(1, 4, 3, padding=1)
            self.lstm = nn.LSTM(4, 4, batch_first=True)
            self.attn = nn.TransformerEncoderLayer(4, 1, 8, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, _ = self.lstm(self.conv(x).transpose(1, 2))
            return self.attn(h)

    class NeedsData(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[x > 0]

    model = Warm().eval()
    x = torch.randn(1, 1, 8)
    profile(model, x).latency("npu")
    trace(model, (x,), grad=True)
    profile(NeedsData(), torch.randn(4))
    try:  # matplotlib's submodules, for tests that draw the HTML report's charts
        from pytest_flopbudget.reporting import charts
    except ImportError:
        return
    point = charts.Point("fc", "Linear", 100, 1.0, 1e-6, 1.0)
    palette = charts.colours(["Linear"])
    charts.roofline_svg(charts.Roof("cpu", "fp32", 1e9, 1e9), [point], "warm", palette)
    charts.time_bars_svg([point], "warm", palette)


_warm_up()


@pytest.fixture(autouse=True)
def _no_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest-xdist workers set ``COLUMNS``; the plugin fits its tables into it. In-process
    ``pytester`` runs should print whole tables unless a test sets a width itself."""
    monkeypatch.delenv("COLUMNS", raising=False)
