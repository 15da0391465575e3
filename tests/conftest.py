"""Shared test setup.

``reference_models`` is importable from every test (this directory is on sys.path).

In-process ``pytester`` runs restore ``sys.modules`` afterwards, and torch imports parts of
itself lazily the first time a fake-tensor trace runs (some of which register operator
libraries that cannot be registered twice). Tracing once here, before any ``pytester`` run,
loads them for the whole session (matplotlib has the same problem: the HTML report's charts
are drawn once here too).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn


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
