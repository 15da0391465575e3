"""Text a person reads: failure messages, hotspot tables and the ``--flop-report`` table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .budget import LIMITS, METRICS, fmt_value

if TYPE_CHECKING:
    from .profile import ModelProfile

#: How layers are ranked for an exceeded metric:
#: (layer row key, column title, unit, scale, what the ranking is by).
HOTSPOT_KEYS: dict[str, tuple[str, str, str, float, str]] = {
    "flops": ("flops", "MFLOPs", "MFLOPs", 1e6, "FLOPs"),
    "macs": ("macs", "MMACs", "MMACs", 1e6, "MACs"),
    "params": ("params", "params", "params", 1, "parameters"),
    "weight": ("params", "params", "params", 1, "parameters"),
    "access": ("bytes", "access MB", "MB", 1e6, "memory access"),
    "activation": ("bytes_written", "written MB", "MB", 1e6, "activation bytes written"),
    "latency": ("seconds", "time ms", "ms", 1e-3, "predicted time"),
}


def table(header: Sequence[str], rows: Iterable[Sequence[str]], right: set[int] | None = None,
          indent: str = "  ") -> list[str]:
    """Fixed-width text table; columns in ``right`` are right-aligned."""
    rows = [list(r) for r in rows]
    right = right or set()
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [str(c).rjust(w) if i in right else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return (indent + "  ".join(parts)).rstrip()

    return [line(header), *(line(r) for r in rows)]


def shape_text(shapes: list[list[int]]) -> str:
    return ", ".join("x".join(str(d) for d in s) for s in shapes[:1]) or "-"


def layer_label(name: str) -> str:
    return name or "<model>"


def measurement_title(m: dict[str, Any]) -> str:
    traced = "fake tensors" if m["traced"] == "fake" else \
        f"one real forward ({m['fallback_reason']})"
    return f"{m['name']} on {m['device']} ({m['dtype']}), traced on {traced}"


def hotspots(m: dict[str, Any], metric: str, n: int) -> list[str]:
    """The ``n`` layers that weigh most in ``metric``, with their roofline figures."""
    key, title, unit, scale, _ = HOTSPOT_KEYS[metric]
    total = sum(row[key] for row in m["layers"]) or 1
    ranked = sorted((r for r in m["layers"] if r[key]), key=lambda r: r[key], reverse=True)[:n]
    with_time = metric != "latency"  # otherwise the metric column is the time already
    rows = [
        (layer_label(r["name"]), r["kind"], shape_text(r["output_shapes"]),
         fmt_value(r[key] / scale, unit), f"{r[key] / total:.1%}", f"{r['intensity']:.2f}",
         r["bound"], *([f"{r['seconds'] * 1e3:.4f}"] if with_time else []))
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
                what = HOTSPOT_KEYS[metric][4]
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


def percent(fraction: float) -> str:
    """``91%``; one decimal where rounding would hide which side of 100% it is."""
    text = f"{fraction:.0%}"
    return f"{fraction:.1%}" if text == "100%" and fraction != 1 else text


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
                f"{m['device']} {m['dtype']}", f"{m['latency_s'] * 1e3:.4f}",
                budget_use(m), verdict,
            ))
    header = ("test", "model", "MFLOPs", "MMACs", "params", "access MB", "FLOP/B", "device",
              "pred ms", "budget used", "verdict")
    return table(header, rows, right={2, 3, 4, 5, 6, 8})


def profile_table(prof: ModelProfile) -> str:
    """A per-layer table of a profile (what ``str(profile)`` prints)."""
    rows = [
        (layer_label(r.name), r.kind, shape_text([list(s) for s in r.output_shapes]),
         f"{r.flops / 1e6:,.3f}", f"{r.macs / 1e6:,.3f}", f"{r.params:,}",
         f"{r.bytes / 1e6:,.3f}")
        for r in prof.layers if r.flops or r.bytes or r.params
    ]
    head = (f"{prof.model}: {prof.flops / 1e6:,.3f} MFLOPs, {prof.macs / 1e6:,.3f} MMACs, "
            f"{prof.params:,} params, {prof.bytes / 1e6:,.3f} MB access"
            f"{' at ' + prof.dtype if prof.dtype else ''} (traced: {prof.traced})")
    lines = [head, *table(("layer", "type", "output", "MFLOPs", "MMACs", "params",
                           "access MB"), rows, right={3, 4, 5, 6})]
    if prof.unsupported:
        ops = ", ".join(f"{op} x{n}" for op, n in sorted(prof.unsupported.items()))
        lines.append(f"unsupported ops (FLOPs not counted): {ops}")
    return "\n".join(lines)


__all__ = ["METRICS", "failing_summary", "failure_message", "profile_table", "report_table"]
