"""Complexity budgets: how cost grows with input size, in total and per layer.

``flop_budget.scaling(model, make_inputs, sizes=[...])`` profiles the model at every size
(fake tensors make this cheap), fits each metric's exponent against the size on a log-log scale
(least squares over all sizes: ``value ~ size^order``), and checks it against the marker's
``max_order`` (``{"flops": 1.0, "activation": 1.0}``). An exponent passes while it is at most
``max_order + tolerance``; the tolerance defaults to ``limits.TOLERANCE`` and can be set with a
``"tolerance"`` key in ``max_order``.

Per layer, the exponents of each layer row's own work are fitted too, so a failure names the
layers that broke the order (``"encoder.attn: flops ~ n^2.00, 61% of total at n=2048"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.metrics import METRICS
from ..core.text import layer_label


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
        values = {k: [float(m.values[k]) for m in measurements] for k in METRICS}
        orders = {k: fit_order(sizes, v) for k, v in values.items()}
        layers: dict[str, dict[str, float]] = {}
        shares: dict[str, dict[str, float]] = {}
        last = measurements[-1]
        for metric in METRICS.values():
            if not metric.layer_orders:
                continue
            key = metric.figure.key
            per_size = [{row["name"]: row[key] for row in m.layers} for m in measurements]
            total = sum(per_size[-1].values()) or 1
            for row in last.layers:
                name = row["name"]
                series = [size_rows.get(name, 0) for size_rows in per_size]
                order = fit_order(sizes, series)
                if order is not None:
                    layers.setdefault(name, {})[metric.name] = order
                    shares.setdefault(name, {})[metric.name] = series[-1] / total
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
        return [f"{layer_label(name)}: {metric} ~ n^{order:.2f}, "
                f"{self.shares[name][metric]:.0%} of total at n={self.sizes[-1]}"
                for name, order in ranked]

    def to_dict(self) -> dict[str, Any]:
        return {"sizes": self.sizes, "values": self.values, "orders": self.orders,
                "layers": self.layers, "shares": self.shares}


def check_sizes(sizes: Any) -> list[int]:
    """The sizes of a scaling run, sorted; ``ValueError`` unless at least two different
    positive integers."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ValueError(f"sizes must be at least two different positive integers, got {sizes!r}")
    sizes = list(sizes)
    if len(set(sizes)) < 2 or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0
                                  for s in sizes):
        raise ValueError(f"sizes must be at least two different positive integers, got {sizes!r}")
    return sorted(set(sizes))


def run(fixture: Any, model: Any, make_inputs: Callable[[int], Any], sizes: Sequence[int],
        **kwargs: Any) -> Scaling:
    """Profile ``model`` at every size with the fixture's device and dtype; record the largest
    size's measurement (with the fit) on the test."""
    from ..counting.profile import profile  # torch: only when a test runs a scaling
    from .measurement import Measurement

    sizes = check_sizes(sizes)

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
