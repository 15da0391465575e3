"""Complexity budgets: how cost grows with input size, in total and per layer.

``flop_budget.scaling(model, make_inputs, sizes=[...])`` profiles the model at every size
(fake tensors make this cheap), fits each metric's exponent against the size on a log-log scale
(least squares over all sizes: ``value ~ size^order``), and checks it against the marker's
``max_order`` (``{"flops": 1.0, "activation": 1.0}``). An exponent passes while it is at most
``max_order + tolerance``; the tolerance defaults to :data:`TOLERANCE` and can be set with a
``"tolerance"`` key in ``max_order``.

Per layer, the exponents of each layer row's own work are fitted too, so a failure names the
layers that broke the order (``"encoder.attn: flops ~ n^2.00, 61% of total at n=2048"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .budget import BudgetError

#: Default slack on a fitted exponent: ``max_order + 0.05`` still passes.
TOLERANCE = 0.05

#: Metrics whose order can be bounded, and the layer-row key each is fitted on per layer.
ORDER_METRICS: dict[str, str | None] = {
    "flops": "flops",
    "macs": "macs",
    "params": "params",
    "weight": None,
    "access": "bytes",
    "activation": "bytes_written",
    "latency": "seconds",
}


def fit_order(sizes: Sequence[float], values: Sequence[float]) -> float | None:
    """Least-squares slope of ``log(value)`` against ``log(size)``; ``None`` when a value is
    not positive (a zero cannot be placed on a log scale), 0.0 when all values are equal."""
    if len(sizes) < 2 or any(v <= 0 for v in values):
        return None
    xs = [math.log(s) for s in sizes]
    ys = [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def check_max_order(spec: Any, where: str) -> tuple[dict[str, float], float]:
    """Validate a ``max_order`` argument: ``({metric: order}, tolerance)``."""
    if not isinstance(spec, Mapping) or not spec:
        raise BudgetError(f"{where}: max_order must be a table such as "
                          f"{{'flops': 1.0, 'activation': 1.0}}, got {spec!r}")
    orders: dict[str, float] = {}
    tolerance = TOLERANCE
    for key, value in spec.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or \
                not math.isfinite(value):
            raise BudgetError(f"{where}: max_order[{key!r}] must be a number >= 0, "
                              f"got {value!r}")
        if key == "tolerance":
            tolerance = float(value)
        elif key in ORDER_METRICS:
            orders[key] = float(value)
        else:
            raise BudgetError(f"{where}: max_order has unknown metric {key!r}; known: "
                              f"{', '.join(ORDER_METRICS)} (and 'tolerance')")
    return orders, tolerance


@dataclass
class Scaling:
    """What a scaling run measured and fitted.

    ``values``: ``{metric: [value at each size]}`` in base units (FLOPs, bytes, seconds);
    ``orders``: ``{metric: fitted exponent}`` (``None`` when a value was 0);
    ``layers``: ``{layer path: {metric: exponent}}`` of each layer row's own work;
    ``shares``: ``{layer path: {metric: share of the total at the largest size}}``.
    """

    sizes: list[int]
    values: dict[str, list[float]]
    orders: dict[str, float | None]
    layers: dict[str, dict[str, float]] = field(default_factory=dict)
    shares: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def fit(cls, sizes: Sequence[int], measurements: Sequence[Any]) -> Scaling:
        """Fit orders from one Measurement per size (same model, growing input)."""
        metrics = list(ORDER_METRICS)
        values = {k: [float(m.values[k]) for m in measurements] for k in metrics}
        orders = {k: fit_order(sizes, v) for k, v in values.items()}
        layers: dict[str, dict[str, float]] = {}
        shares: dict[str, dict[str, float]] = {}
        last = measurements[-1]
        for metric, key in ORDER_METRICS.items():
            if key is None:
                continue
            per_size = [{row["name"]: row[key] for row in m.layers} for m in measurements]
            total = sum(per_size[-1].values()) or 1
            for row in last.layers:
                name = row["name"]
                series = [size_rows.get(name, 0) for size_rows in per_size]
                order = fit_order(sizes, series)
                if order is not None:
                    layers.setdefault(name, {})[metric] = order
                    shares.setdefault(name, {})[metric] = series[-1] / total
        return cls(list(sizes), values, orders, layers, shares)

    def violations(self, max_order: Mapping[str, float], tolerance: float) -> list[str]:
        """One line per metric whose fitted order exceeds its bound."""
        lines = []
        for metric, allowed in max_order.items():
            order = self.orders.get(metric)
            if order is not None and order > allowed + tolerance:
                lines.append(f"{metric} ~ n^{order:.2f} > n^{allowed:g} (max_order "
                             f"{metric}={allowed:g}, tolerance {tolerance:g})")
        return lines

    def culprits(self, metric: str, n: int = 3) -> list[str]:
        """The layers with the highest own exponent for ``metric`` (ties: larger share)."""
        ranked = sorted(
            ((name, orders[metric]) for name, orders in self.layers.items() if metric in orders),
            key=lambda item: (round(item[1], 2), self.shares[item[0]][metric]), reverse=True,
        )[:n]
        return [f"{name or '<model>'}: {metric} ~ n^{order:.2f}, "
                f"{self.shares[name][metric]:.0%} of total at n={self.sizes[-1]}"
                for name, order in ranked]

    def to_dict(self) -> dict[str, Any]:
        return {"sizes": self.sizes, "values": self.values, "orders": self.orders,
                "layers": self.layers, "shares": self.shares}


def run(fixture: Any, model: Any, make_inputs: Callable[[int], Any], sizes: Sequence[int],
        **kwargs: Any) -> Scaling:
    """Profile ``model`` at every size with the fixture's device and dtype; record the largest
    size's measurement (with the fit) on the test."""
    from .profile import profile
    from .results import Measurement

    if len(set(sizes)) < 2 or any(not isinstance(s, int) or s <= 0 for s in sizes):
        raise ValueError(f"sizes must be at least two different positive integers, got {sizes!r}")
    sizes = sorted(set(sizes))

    def measure(n: int, record: bool) -> Measurement:
        inputs = make_inputs(n)
        prof = profile(model, *(inputs if isinstance(inputs, tuple) else (inputs,)),
                       dtype=fixture.dtype, **kwargs)
        if record:  # the largest size is the test's measurement
            return fixture.add(prof)
        return Measurement.of(prof.model, prof, fixture.device, fixture.budget)

    measurements = [measure(n, record=n == sizes[-1]) for n in sizes]
    result = Scaling.fit(sizes, measurements)
    measurements[-1].extra["scaling"] = result.to_dict()
    return result


def install(manager: Any) -> None:
    """Check ``max_order`` when a test ends; name the layers that broke it in the summary."""
    from .report import table

    def check(record: Any, item: Any) -> list[str]:
        spec = record.budget.options.get("max_order") if record.budget else None
        if spec is None:
            return []
        orders, tolerance = check_max_order(spec, f"@flop_budget on {item.nodeid}")
        scaled = [m for m in record.measurements if "scaling" in m.extra]
        if not scaled:
            return [f"{item.nodeid} sets max_order but never called flop_budget.scaling("
                    f"model, make_inputs, sizes=[...])"]
        lines = []
        for m in scaled:
            fit = Scaling(**m.extra["scaling"])
            broken = fit.violations(orders, tolerance)
            m.extra["scaling_violations"] = broken
            if broken:
                lines.append(f"complexity budget exceeded: {m.name} over n = "
                             f"{', '.join(str(s) for s in fit.sizes)}")
                lines.extend(f"  {line}" for line in broken)
        return lines

    def summary(tr: Any, records: list[dict[str, Any]]) -> None:
        failing = [(r, m) for r in records for m in r["measurements"]
                   if m.get("scaling_violations")]
        report = manager.config.getoption("flop_report")
        scaled = [(r, m) for r in records for m in r["measurements"] if "scaling" in m]
        if failing:
            tr.write_sep("=", "flop budget: complexity")
            for rec, m in failing:
                fit = Scaling(**m["scaling"])
                tr.write_line(f"{rec['nodeid']}: {m['name']}")
                for line in m["scaling_violations"]:
                    tr.write_line(f"  {line}")
                    metric = line.split(" ", 1)[0]
                    tr.write_line(f"  layers with the highest order of {metric}:")
                    for culprit in fit.culprits(metric):
                        tr.write_line(f"    {culprit}")
        if report and scaled:
            tr.write_sep("=", "flop budget report: scaling")
            rows = []
            for rec, m in scaled:
                fit = m["scaling"]
                orders = ", ".join(f"{k} n^{v:.2f}" for k, v in fit["orders"].items()
                                   if v is not None and k in ("flops", "access",
                                                              "activation", "latency"))
                rows.append((rec["nodeid"], m["name"],
                             ", ".join(str(s) for s in fit["sizes"]), orders))
            for line in table(("test", "model", "sizes", "fitted orders"), rows):
                tr.write_line(line)

    manager.add_check(check)
    manager.add_summary(summary)
