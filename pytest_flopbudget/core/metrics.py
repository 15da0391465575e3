"""The seven metrics a measurement reports, and the per-layer figures that explain them.

This is the one table every layer reads: budgets (limits, growth specs, scaling orders), the
JSON report and JUnit properties (:attr:`Metric.field`), baseline files (:attr:`Metric.name`,
:attr:`Figure.name`), hotspot tables and baseline comparisons (:attr:`Metric.figure`). A metric
named anywhere else is a bug.

Units: counts are exact integers (FLOPs, MACs, parameter elements); bytes are bytes at the
deployment precision; latency is seconds. ``unit``/``scale`` say how a value is shown
(``value / scale`` in ``unit``); "MB" is 10^6 bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    """A per-layer figure of a measurement's layer rows (a layer's own work).

    ``key``: the field of a layer row (``"bytes_written"``); ``name``: its name in a baseline
    file's ``layers`` (``"written"``); ``title``/``unit``/``scale``: its column in hotspot
    tables; ``label``: its name in baseline tables; ``what``: what layers are ranked by.
    """

    key: str
    name: str
    title: str
    unit: str
    scale: float
    label: str
    what: str


#: Per-layer figures by baseline name, in the order baseline files list them.
FIGURES: dict[str, Figure] = {f.name: f for f in (
    Figure("flops", "flops", "MFLOPs", "MFLOPs", 1e6, "flops", "FLOPs"),
    Figure("macs", "macs", "MMACs", "MMACs", 1e6, "macs", "MACs"),
    Figure("params", "params", "params", "params", 1, "params", "parameters"),
    Figure("bytes", "access", "access MB", "MB", 1e6, "access B", "memory access"),
    Figure("bytes_written", "written", "written MB", "MB", 1e6, "written B",
           "activation bytes written"),
    Figure("seconds", "latency", "time ms", "ms", 1e-3, "latency ms", "predicted time"),
)}


@dataclass(frozen=True)
class Metric:
    """One metric of a measurement.

    ``name``: how users and baseline files name it (``"weight"``); ``field``: its key in a
    measurement dict, the ``--flop-json`` report and JUnit properties (``"weight_bytes"``);
    ``unit``/``scale``: how its value is shown; ``label``: its name in baseline tables;
    ``figure``: the per-layer figure that explains it (hotspots, layers that grew, per-layer
    orders); ``exact``: an integer count (latency is float seconds); ``layer_orders``: whether
    a scaling run fits each layer's own order of it (``weight`` is parameters at a precision,
    already fitted as ``params``).
    """

    name: str
    field: str
    unit: str
    scale: float
    label: str
    figure: Figure
    exact: bool = True
    layer_orders: bool = True


#: The metrics, by name, in display order.
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("flops", "flops", "MFLOPs", 1e6, "flops", FIGURES["flops"]),
    Metric("macs", "macs", "MMACs", 1e6, "macs", FIGURES["macs"]),
    Metric("params", "params", "params", 1, "params", FIGURES["params"]),
    Metric("weight", "weight_bytes", "MB", 1e6, "weight B", FIGURES["params"],
           layer_orders=False),
    Metric("access", "access_bytes", "MB", 1e6, "access B", FIGURES["access"]),
    Metric("activation", "peak_activation_bytes", "MB", 1e6, "activation B",
           FIGURES["written"]),
    Metric("latency", "latency_s", "ms", 1e-3, "latency ms", FIGURES["latency"],
           exact=False),
)}

#: Metric names, in display order.
NAMES: tuple[str, ...] = tuple(METRICS)


def label(name: str) -> str:
    """The table label of a metric or of a layer figure (``"weight B"``, ``"written B"``)."""
    found = METRICS.get(name) or FIGURES[name]
    return found.label


def values_of(measurement: Mapping[str, Any]) -> dict[str, float]:
    """``{metric name: value}`` of a measurement dict (its metric fields, by name)."""
    return {m.name: measurement[m.field] for m in METRICS.values()}


def fields_of(values: Mapping[str, float]) -> dict[str, float]:
    """``{field: value}`` for a measurement dict: exact metrics as integers."""
    return {m.field: int(values[m.name]) if m.exact else values[m.name]
            for m in METRICS.values()}
