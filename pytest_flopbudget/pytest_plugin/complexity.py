"""The complexity budget's part in a test: check ``max_order`` when the test ends, and name
the layers that broke it in the failure and the terminal summary (the fit itself is
:mod:`pytest_flopbudget.budgets.scaling`)."""

from __future__ import annotations

from typing import Any

from ..budgets.limits import check_max_order
from ..budgets.scaling import Scaling
from ..core.text import table


def _culprit_lines(fit: Scaling, broken: list[str]) -> list[str]:
    """For each broken order (``"flops ~ n^1.83 > n^1 ..."``), the layers whose own work
    grows fastest in that metric: what the failure and the summary name."""
    lines = []
    for line in broken:
        metric = line.split(" ", 1)[0]
        lines.append(f"  layers with the highest order of {metric}:")
        lines.extend(f"    {culprit}" for culprit in fit.culprits(metric))
    return lines


def install(manager: Any) -> None:
    """Check ``max_order`` when a test ends; name the layers that broke it in the summary."""
    def check(record: Any, item: Any) -> list[str]:
        spec = record.budget.options.get("max_order") if record.budget else None
        if spec is None:
            return []
        orders, tolerance = check_max_order(spec, f"@flop_budget on {item.nodeid}")
        scaled = [m for m in record.measurements if "scaling" in m.extra]
        if not scaled:
            origin = record.budget.origin.get("max_order", f"@flop_budget on {item.nodeid}")
            return [f"{item.nodeid} has max_order (from {origin}) but never called "
                    f"flop_budget.scaling(model, make_inputs, sizes=[...])"]
        lines = []
        for m in scaled:
            fit = Scaling(**m.extra["scaling"])
            broken = fit.violations(orders, tolerance)
            m.extra["scaling_violations"] = broken
            if broken:
                lines.append(f"complexity budget exceeded: {m.name} over n = "
                             f"{', '.join(str(s) for s in fit.sizes)}")
                lines.extend(f"  {line}" for line in broken)
                lines.extend(_culprit_lines(fit, broken))
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
                for line in _culprit_lines(fit, m["scaling_violations"]):
                    tr.write_line(line)
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
