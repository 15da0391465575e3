"""The rows of ``calibration_set.toml``, typed, each able to build its network and input.

    from bench.edge.rows import load_rows
    for row in load_rows(split="calibration"):
        model, x = row.build()              # on the meta device by default
        profile(model, x, dtype=row.precision).latency(row.device).ms
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .networks import build

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROWS_PATH = Path(__file__).with_name("calibration_set.toml")
SPLITS = ("calibration", "holdout")


@dataclass(frozen=True)
class Source:
    """Where published figures come from (``[sources.KEY]``)."""

    key: str
    source: str
    figure: str


@dataclass(frozen=True)
class Row:
    """One published latency and the network that reproduces it (see the file's header)."""

    id: str
    device: str
    precision: str
    published_ms: float
    published: str
    rebuild: str
    builder: str
    input: tuple[int, ...]
    source: str
    predicted_ms_8c8bd81: float
    split: str
    args: dict[str, Any] = field(default_factory=dict)
    board_mhz: float | None = None
    catalog_mhz: float | None = None
    compare_cycles: bool = False
    note: str = ""

    @property
    def clock_scale(self) -> float:
        """Factor from a prediction at the catalog device's clock to the measured board's:
        ``catalog_mhz / board_mhz`` where the row compares cycles, else 1."""
        if self.compare_cycles and self.board_mhz and self.catalog_mhz:
            return self.catalog_mhz / self.board_mhz
        return 1.0

    def build(self, device: str | torch.device = "meta") -> tuple[nn.Module, torch.Tensor]:
        """``(model in eval mode, input of the row's shape)``, both on ``device`` (default
        meta: shapes only, nothing allocated; ``profile()`` counts such a model)."""
        with torch.device(device):
            return build(self.builder, **self.args), torch.zeros(self.input)


@dataclass(frozen=True)
class CalibrationSet:
    rows: tuple[Row, ...]
    sources: dict[str, Source]
    notes: dict[str, str]


def load(path: Path = ROWS_PATH) -> CalibrationSet:
    """Every row, source and note of the calibration set, checked: ids unique, splits known,
    sources defined."""
    data = tomllib.loads(path.read_text())
    sources = {k: Source(k, v["source"], v["figure"]) for k, v in data["sources"].items()}
    rows = tuple(Row(**{**r, "input": tuple(r["input"])}) for r in data["rows"])
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate row ids")
    for r in rows:
        if r.split not in SPLITS:
            raise ValueError(f"{path}: row {r.id}: split {r.split!r} is not one of {SPLITS}")
        if r.source not in sources:
            raise ValueError(f"{path}: row {r.id}: unknown source {r.source!r}")
    return CalibrationSet(rows, sources, dict(data.get("notes", {})))


def load_rows(split: str = "all", devices: tuple[str, ...] = (),
              path: Path = ROWS_PATH) -> list[Row]:
    """The rows of ``split`` (``"calibration"``, ``"holdout"`` or ``"all"``), only those on
    ``devices`` when given, in the file's order."""
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be one of {(*SPLITS, 'all')}, not {split!r}")
    return [r for r in load(path).rows
            if (split == "all" or r.split == split) and (not devices or r.device in devices)]
