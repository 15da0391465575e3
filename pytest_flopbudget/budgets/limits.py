"""Budgets: which limits a test sets, checked against what a profile measured.

A budget comes from three layers, later ones winning: ``[tool.flopbudget]`` defaults, a
per-test table in ``[tool.flopbudget.tests]``, and the ``flop_budget`` marker's arguments.
Every value is validated where it is written, so an error names the marker or config key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.dtypes import parse_dtype
from ..core.metrics import METRICS
from ..core.numbers import finite, shown
from ..core.text import HUGE, distinct, fmt_value, layer_label, suggest
from .growth import GrowthError, parse_growth, tightest_growth


@dataclass(frozen=True)
class Limit:
    """One limit a user can set: the metric it bounds, the unit it is written in."""

    metric: str  # a metric name (core.metrics.METRICS)
    scale: float  # metric value / scale = value in the limit's unit
    unit: str
    doc: str


#: Every limit a marker or the config may set. MB means 10^6 bytes.
LIMITS: dict[str, Limit] = {
    "max_mflops": Limit("flops", 1e6, "MFLOPs", "FLOPs per forward, in millions"),
    "max_gflops": Limit("flops", 1e9, "GFLOPs", "FLOPs per forward, in billions"),
    "max_mmacs": Limit("macs", 1e6, "MMACs", "multiply-accumulates, in millions"),
    "max_gmacs": Limit("macs", 1e9, "GMACs", "multiply-accumulates, in billions"),
    "max_params": Limit("params", 1, "params", "parameters (elements)"),
    "max_weight_mb": Limit("weight", 1e6, "MB", "parameter bytes at the deployment dtype"),
    "max_access_mb": Limit("access", 1e6, "MB", "memory traffic per forward"),
    "max_activation_mb": Limit("activation", 1e6, "MB", "peak live activation memory"),
    "max_latency_ms": Limit("latency", 1e-3, "ms", "roofline-predicted time on the device"),
}

#: Marker/config arguments that are not limits.
OPTIONS: dict[str, str] = {
    "device": "device name for the roofline (built-in or [tool.flopbudget.devices])",
    "dtype": "deployment precision: fp32, fp16, bf16 or int8",
    "max_growth": "allowed growth over the baseline, e.g. '5%' or 'flops:2%,latency:10%'",
    "max_order": "largest allowed scaling exponent per metric, e.g. {'flops': 1.0}",
    "modules": "limits per module path, e.g. {'backbone': {'max_gmacs': 0.3}}",
    "strict": "fail when an operator has no FLOP formula (true/false)",
}

#: Limits that cannot be set on one module, and why.
NOT_PER_MODULE: dict[str, str] = {
    "max_activation_mb": "peak activation memory is a property of the whole forward (which "
                         "tensors are alive at once), not of one module; set it on the model",
}

#: Limits a ``modules`` entry may set.
MODULE_LIMITS: tuple[str, ...] = tuple(k for k in LIMITS if k not in NOT_PER_MODULE)

KNOWN = (*LIMITS, *OPTIONS)


class BudgetError(ValueError):
    """A budget argument is wrong; the message names where it was written."""


#: Limits on counts: a fraction of one cannot be met or missed by anything counted.
WHOLE = ("max_params",)


def check_limit(key: str, value: Any, where: str) -> float:
    """Validate one limit value (a positive finite number) and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BudgetError(f"{where}: {key} must be a number, got {value!r}")
    if not finite(value) or value <= 0:
        raise BudgetError(f"{where}: {key} must be a positive number, got {shown(value)}")
    if key in WHOLE and value != int(value):
        raise BudgetError(f"{where}: {key} must be a whole number (a count of "
                          f"parameters), got {shown(value)}")
    return float(value)


#: Default slack on a fitted scaling exponent: ``max_order + 0.05`` still passes.
TOLERANCE = 0.05


def check_max_order(spec: Any, where: str) -> tuple[dict[str, float], float]:
    """Validate a ``max_order`` argument: ``({metric: order}, tolerance)``."""
    if not isinstance(spec, Mapping) or not spec:
        raise BudgetError(f"{where}: max_order must be a table such as "
                          f"{{'flops': 1.0, 'activation': 1.0}}, got {spec!r}")
    orders: dict[str, float] = {}
    tolerance = TOLERANCE
    for key, value in spec.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or \
                not finite(value):
            raise BudgetError(f"{where}: max_order[{key!r}] must be a number >= 0, "
                              f"got {shown(value)}")
        if key == "tolerance":
            tolerance = float(value)
        elif key in METRICS:
            orders[key] = float(value)
        else:
            raise BudgetError(f"{where}: max_order has unknown metric {key!r}; known: "
                              f"{', '.join(METRICS)} (and 'tolerance')")
    return orders, tolerance


def check_modules(spec: Any, where: str) -> dict[str, dict[str, float]]:
    """Validate a ``modules`` argument: ``{module path: {limit: value}}``, each limit one of
    :data:`MODULE_LIMITS`. Paths are checked against the model once it is profiled."""
    example = "{'backbone': {'max_gmacs': 0.3}, 'head': {'max_params': 10_000}}"
    if not isinstance(spec, Mapping) or not spec:
        raise BudgetError(f"{where}: modules must be a table of module paths, each with its "
                          f"limits, e.g. {example}; got {spec!r}")
    checked: dict[str, dict[str, float]] = {}
    for path, limits in spec.items():
        here = f"{where}: modules[{path!r}]"
        if not isinstance(path, str):
            raise BudgetError(f"{where}: modules: a module path must be a string such as "
                              f"'backbone' or 'features.8', got {path!r}")
        if not isinstance(limits, Mapping) or not limits:
            raise BudgetError(f"{here} must be a table of limits such as "
                              f"{{'max_gmacs': 0.3}}, got {limits!r}")
        checked[path] = {}
        for key, value in limits.items():
            if key in NOT_PER_MODULE:
                raise BudgetError(f"{here}: {key} cannot be set per module: "
                                  f"{NOT_PER_MODULE[key]}")
            if key not in LIMITS:
                raise BudgetError(f"{here}: unknown limit {key!r}{suggest(key, MODULE_LIMITS)}; "
                                  f"a module takes: {', '.join(MODULE_LIMITS)}")
            checked[path][key] = check_limit(key, value, here)
    return checked


def check_arguments(args: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate marker or config arguments; return them normalised (limits as floats, dtype
    canonical). Device names are checked later against the catalog."""
    checked: dict[str, Any] = {}
    for key, value in args.items():
        if key in LIMITS:
            checked[key] = check_limit(key, value, where)
        elif key == "dtype":
            try:
                checked[key] = parse_dtype(value)
            except ValueError as exc:
                raise BudgetError(f"{where}: {exc}") from None
        elif key == "device":
            if not isinstance(value, str) or not value:
                raise BudgetError(f"{where}: device must be a device name, got {value!r}")
            checked[key] = value
        elif key == "max_order":
            check_max_order(value, where)
            checked[key] = dict(value)
        elif key == "modules":
            checked[key] = check_modules(value, where)
        elif key == "strict":
            if not isinstance(value, bool):
                raise BudgetError(f"{where}: strict must be true or false, got {value!r}")
            checked[key] = value
        elif key == "max_growth":
            try:
                parse_growth(value)
            except GrowthError as exc:
                raise BudgetError(f"{where}: max_growth: {exc}") from None
            checked[key] = value
        elif key in OPTIONS:
            checked[key] = value
        else:
            raise BudgetError(f"{where}: unknown argument {key!r}{suggest(key, KNOWN)}; "
                              f"known: {', '.join(KNOWN)}")
    return checked


def tightest(layers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Checked arguments of stacked markers (closest first: method, class, module) as one:
    every limit keeps its smallest value, and so does every limit of a ``modules`` entry;
    ``max_order`` each metric's smallest order (and the smallest tolerance), ``max_growth``
    each metric's smallest growth; ``strict`` holds when any marker sets it; ``device``,
    ``dtype`` and the other options come from the closest marker that sets them."""
    merged: dict[str, Any] = {}
    for args in layers:
        for key, value in args.items():
            if key not in merged:
                merged[key] = value
            elif key in LIMITS:
                merged[key] = min(merged[key], value)
            elif key == "modules":
                merged[key] = {path: _tightest_limits(merged[key].get(path, {}),
                                                      value.get(path, {}))
                               for path in (*merged[key], *value)}
            elif key == "max_order":
                merged[key] = _tightest_order(merged[key], value)
            elif key == "max_growth":
                merged[key] = tightest_growth([merged[key], value])
            elif key == "strict":
                merged[key] = merged[key] or value
    return merged


def _tightest_limits(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    return {k: min(a.get(k, math.inf), b.get(k, math.inf)) for k in (*a, *b)}


def _tightest_order(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    orders = {k: min(a.get(k, math.inf), b.get(k, math.inf))
              for k in (*a, *b) if k != "tolerance"}
    tolerance = min(a.get("tolerance", TOLERANCE), b.get("tolerance", TOLERANCE))
    return {**orders, "tolerance": tolerance}


@dataclass(frozen=True)
class Budget:
    """The limits one test is held to, and where the roofline runs.

    ``limits``: ``{limit name: value in its unit}``; ``modules``: ``{module path: {limit
    name: value}}``, limits on one module with all its children; ``origin``: ``{argument:
    where it was set}`` (a module's limits under ``"modules[<path>]"``); ``dtype``: deployment
    precision or ``None`` (the device's default).
    """

    limits: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    dtype: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    modules: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def strict(self) -> bool:
        """Whether an operator without a FLOP formula fails the test (the coverage gate)."""
        return bool(self.options.get("strict", False))

    def module_origin(self, path: str) -> str:
        """Where the limits of module ``path`` were (last) set."""
        return self.origin.get(f"modules[{path!r}]", "the budget")

    @classmethod
    def from_layers(cls, layers: list[tuple[str, Mapping[str, Any]]],
                    device_override: str | None = None,
                    overrides: Mapping[str, tuple[Any, str]] | None = None) -> Budget:
        """Merge argument layers ``[(where, args), ...]``, later winning; each checked.

        ``modules`` merge per module and limit: a later layer's limit on ``backbone``
        replaces that limit only. ``overrides`` (``{argument: (value, where)}``, e.g. the
        ``--flop-strict`` option) win over every layer, as ``device_override`` does.
        """
        merged: dict[str, Any] = {}
        origin: dict[str, str] = {}
        modules: dict[str, dict[str, float]] = {}
        for where, args in layers:
            for key, value in check_arguments(args, where).items():
                if key == "modules":
                    for path, limits in value.items():
                        modules.setdefault(path, {}).update(limits)
                        origin[f"modules[{path!r}]"] = where
                    continue
                merged[key] = value
                origin[key] = where
        for key, (value, where) in (overrides or {}).items():
            merged[key] = value
            origin[key] = where
        if device_override:
            merged["device"] = device_override
            origin["device"] = "--flop-device"
        limits = {k: v for k, v in merged.items() if k in LIMITS}
        options = {k: v for k, v in merged.items() if k in OPTIONS and
                   k not in ("device", "dtype")}
        return cls(limits, merged.get("device", "cpu"), merged.get("dtype"), options, origin,
                   modules)

    def to_dict(self) -> dict[str, Any]:
        """JSON form; ``modules`` only when the budget has per-module limits."""
        doc: dict[str, Any] = {
            "limits": dict(self.limits), "device": self.device, "dtype": self.dtype,
            "options": {k: v for k, v in self.options.items()
                        if isinstance(v, (str, int, float, dict))}}
        if self.modules:
            doc["modules"] = {path: dict(limits) for path, limits in self.modules.items()}
        return doc


@dataclass(frozen=True)
class Violation:
    """One exceeded limit: measured and allowed values in the limit's unit; ``module``: the
    module path of a per-module limit (``None``: the whole model)."""

    limit: str
    metric: str
    measured: float
    allowed: float
    unit: str
    module: str | None = None
    #: why the limit cannot be held whatever the figure (weights the plugin cannot see)
    reason: str = ""

    @property
    def over(self) -> float:
        """How far over the limit, as a fraction (0.25 = 25% over)."""
        return self.measured / self.allowed - 1

    @property
    def text(self) -> str:
        """``"112.4 MFLOPs > 50 MFLOPs (+125%)"``; a violation too small for one decimal
        shows the digits that tell (``"50.000001 MFLOPs > 50 MFLOPs (+2e-06%)"``)."""
        if self.reason:
            return (f"{fmt_value(self.measured, self.unit)} {self.unit} counted, but "
                    f"{self.reason}: the limit of {fmt_value(self.allowed, self.unit)} "
                    f"{self.unit} cannot be checked")
        pct = self.over * 100
        pct_text = f"{pct:.3g}" if pct >= HUGE or not finite(pct) else f"{pct:.0f}" \
            if pct >= 1 else f"{pct:.1f}" if pct >= 0.05 else f"{pct:.2g}"
        measured, allowed = distinct(self.measured, self.allowed, self.unit)
        return f"{measured} {self.unit} > {allowed} {self.unit} (+{pct_text}%)"

    @property
    def label(self) -> str:
        """``"max_gmacs"``, or ``"backbone: max_gmacs"`` for a per-module limit."""
        return self.limit if self.module is None else \
            f"{layer_label(self.module)}: {self.limit}"

    def to_dict(self) -> dict[str, Any]:
        doc = {"limit": self.limit, "metric": self.metric, "measured": self.measured,
               "allowed": self.allowed, "unit": self.unit, "text": self.text}
        if self.module is not None:
            doc["module"] = self.module
        if self.reason:
            doc["reason"] = self.reason
        return doc


#: Metrics a weight the plugin cannot see would add to.
WEIGHT_METRICS = ("params", "weight")


def check(values: Mapping[str, float], limits: Mapping[str, float],
          module: str | None = None, unseen: str = "") -> list[Violation]:
    """Every limit that ``values`` (``{metric: value in base units}``) exceeds; ``module``
    names the module path the values belong to (``None``: the whole model). ``unseen``
    says which weights were not seen: then every limit on parameters or weight bytes
    fails with that reason, whatever the counted figure (a budget that cannot be checked
    must not pass)."""
    violations = []
    for key, allowed in limits.items():
        limit = LIMITS[key]
        measured = values[limit.metric] / limit.scale
        if unseen and limit.metric in WEIGHT_METRICS:
            violations.append(Violation(key, limit.metric, measured, allowed, limit.unit,
                                        module, reason=unseen))
        elif measured > allowed:
            violations.append(Violation(key, limit.metric, measured, allowed, limit.unit,
                                        module))
    return violations


def usage(values: Mapping[str, float], limits: Mapping[str, float]) -> dict[str, float]:
    """``{limit: fraction of it used}`` (1.0 = exactly at the limit)."""
    return {key: values[LIMITS[key].metric] / LIMITS[key].scale / allowed
            for key, allowed in limits.items()}
