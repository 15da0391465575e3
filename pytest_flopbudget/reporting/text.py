"""Text a person reads: failure messages, hotspot tables and the ``--flop-report`` table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..budgets.limits import LIMITS
from ..core.metrics import METRICS
from ..core.text import fixed, fmt_value, layer_label, percent, shape_text, table


def measurement_title(m: dict[str, Any]) -> str:
    traced = "fake tensors" if m["traced"] == "fake" else \
        f"one real forward ({m['fallback_reason']})"
    return f"{m['name']} on {m['device']} ({m['dtype']}), traced on {traced}"


def hotspots(m: dict[str, Any], metric: str, n: int) -> list[str]:
    """The ``n`` layers that weigh most in ``metric``, with their roofline figures."""
    figure = METRICS[metric].figure
    key, title, unit, scale = figure.key, figure.title, figure.unit, figure.scale
    total = sum(row[key] for row in m["layers"]) or 1
    ranked = sorted((r for r in m["layers"] if r[key]), key=lambda r: r[key], reverse=True)[:n]
    with_time = metric != "latency"  # otherwise the metric column is the time already
    rows = [
        (layer_label(r["name"]), r["kind"], shape_text(r["output_shapes"]),
         fmt_value(r[key] / scale, unit), f"{r[key] / total:.1%}", f"{r['intensity']:.2f}",
         r["bound"], *([fixed(r["seconds"] * 1e3, 4)] if with_time else []))
        for r in ranked
    ]
    header = ("layer", "type", "output", title, "share", "FLOP/B", "bound",
              *(["time ms"] if with_time else []))
    return table(header, rows, right={3, 4, 5, 7}, indent="    ")


def unsupported_lines(m: dict[str, Any]) -> list[str]:
    if not m["unsupported"]:
        return []
    ops = ", ".join(f"{op} x{n}" for op, n in sorted(m["unsupported"].items()))
    return [f"  unsupported ops (FLOPs not counted, traffic counted): {ops}"]


def failure_message(record: dict[str, Any]) -> str:
    """The message a test fails with when a profile exceeds its budget."""
    lines = []
    for m in record["measurements"]:
        if m["violations"]:
            lines.append(f"flop budget exceeded: {measurement_title(m)}")
            for v in m["violations"]:
                lines.append(f"  {v['limit']}: {v['text']}")
            lines.extend(unsupported_lines(m))
    return "\n".join(lines)


def failing_summary(records: Iterable[dict[str, Any]], n: int) -> list[str]:
    """Hotspot tables for every test over budget."""
    lines: list[str] = []
    for rec in records:
        for m in rec["measurements"]:
            if not m["violations"]:
                continue
            lines.append(f"{rec['nodeid']}: {measurement_title(m)}")
            seen = set()
            for v in m["violations"]:
                lines.append(f"  {v['limit']}: {v['text']}")
            for v in m["violations"]:
                metric = v["metric"]
                if metric in seen:
                    continue
                seen.add(metric)
                what = METRICS[metric].figure.what
                lines.append(f"  top {n} layers by {what}:")
                lines.extend(hotspots(m, metric, n))
            lines.extend(unsupported_lines(m))
            lines.append("")
    return lines


def unsupported_summary(records: Iterable[dict[str, Any]]) -> list[str]:
    """Tests whose profiles hit operators without a formula, by name."""
    lines = []
    for rec in records:
        for m in rec["measurements"]:
            if m["unsupported"] and not m["violations"]:
                lines.append(f"{rec['nodeid']}: {m['name']}")
                lines.extend(unsupported_lines(m))
    return lines


def limit_label(key: str) -> str:
    """Short name of a limit for tables: ``MFLOPs``, ``ms``, ``weight MB``."""
    unit = LIMITS[key].unit
    return f"{LIMITS[key].metric} {unit}" if unit == "MB" else unit


def budget_use(m: dict[str, Any]) -> str:
    return ", ".join(f"{limit_label(k)} {percent(u)}" for k, u in m["usage"].items()) or "-"


def report_table(records: Iterable[dict[str, Any]]) -> list[str]:
    """One row per profiled model of every test: the ``--flop-report`` table."""
    rows = []
    for rec in records:
        for m in rec["measurements"]:
            verdict = "OVER" if m["violations"] else rec["outcome"]
            rows.append((
                rec["nodeid"], m["name"],
                f"{m['flops'] / 1e6:,.2f}", f"{m['macs'] / 1e6:,.2f}", f"{m['params']:,}",
                f"{m['access_bytes'] / 1e6:,.3f}", f"{m['intensity']:.2f}",
                f"{m['device']} {m['dtype']}", fixed(m["latency_s"] * 1e3, 4),
                budget_use(m), verdict,
            ))
    header = ("test", "model", "MFLOPs", "MMACs", "params", "access MB", "FLOP/B", "device",
              "pred ms", "budget used", "verdict")
    return table(header, rows, right={2, 3, 4, 5, 6, 8})


__all__ = ["failing_summary", "failure_message", "report_table"]
