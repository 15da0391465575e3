"""Text a person reads: failure messages, hotspot tables and the ``--flop-report`` table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..budgets.limits import LIMITS
from ..core.metrics import METRICS
from ..core.paths import under
from ..core.text import fixed, fmt_value, layer_label, percent, shape_text, table


def measurement_title(m: dict[str, Any]) -> str:
    traced = "fake tensors" if m["traced"] == "fake" else \
        f"one real forward ({m['fallback_reason']})"
    return f"{m['name']} on {m['device']} ({m['dtype']}), traced on {traced}"


def hotspots(m: dict[str, Any], metric: str, n: int, module: str | None = None,
             width: int | None = None) -> list[str]:
    """The ``n`` layers that weigh most in ``metric``, with their roofline figures; with
    ``module``, only the layers under that module path, ``share`` then being the fraction of
    the module's total. ``width``: fit the table into that many columns."""
    figure = METRICS[metric].figure
    key, title, unit, scale = figure.key, figure.title, figure.unit, figure.scale
    rows_in = [r for r in m["layers"] if module is None or under(r["name"], module)]
    total = sum(row[key] for row in rows_in) or 1
    ranked = sorted((r for r in rows_in if r[key]), key=lambda r: r[key], reverse=True)[:n]
    with_time = metric != "latency"  # otherwise the metric column is the time already
    rows = [
        (layer_label(r["name"]), r["kind"], shape_text(r["output_shapes"]),
         fmt_value(r[key] / scale, unit), f"{r[key] / total:.1%}", f"{r['intensity']:.2f}",
         r["bound"], *([fixed(r["seconds"] * 1e3, 4)] if with_time else []))
        for r in ranked
    ]
    header = ("layer", "type", "output", title, "share", "FLOP/B", "bound",
              *(["time ms"] if with_time else []))
    return table(header, rows, right={3, 4, 5, 7}, indent="    ", width=width,
                 shrink={0, 1, 2})


def hotspot_title(metric: str, n: int, module: str | None) -> str:
    """``top 5 layers by MACs:``, or ``top 5 layers of backbone by MACs:``."""
    where = f" of {layer_label(module)}" if module is not None else ""
    return f"top {n} layers{where} by {METRICS[metric].figure.what}:"


def violation_lines(m: dict[str, Any]) -> list[str]:
    """One line per exceeded limit: ``max_mflops: 2 MFLOPs > 1 MFLOPs (+100%)``; a
    per-module limit is prefixed with its module path (``backbone: max_gmacs: ...``)."""
    return [f"  {violation_label(v)}: {v['text']}" for v in m["violations"]]


def violation_label(v: dict[str, Any]) -> str:
    """``max_mflops``, or ``backbone: max_gmacs`` for a per-module limit."""
    return f"{layer_label(v['module'])}: {v['limit']}" if "module" in v else v["limit"]


def hotspot_sections(m: dict[str, Any], n: int, width: int | None = None) -> list[str]:
    """A hotspot table per exceeded metric (and per module, for per-module limits)."""
    lines: list[str] = []
    seen = set()
    for v in m["violations"]:
        group = (v.get("module"), v["metric"])
        if group in seen:
            continue
        seen.add(group)
        lines.append(f"  {hotspot_title(v['metric'], n, group[0])}")
        lines.extend(hotspots(m, v["metric"], n, group[0], width))
    return lines


def unsupported_lines(m: dict[str, Any]) -> list[str]:
    """Operators without a formula, and weights the plugin cannot see, one line each."""
    lines = [f"  weights not visible (not in params): {layer_label(path)}: {why}"
             for path, why in m.get("hidden_weights", {}).items()]
    if not m["unsupported"]:
        return lines
    ops = ", ".join(f"{op} x{n}" for op, n in sorted(m["unsupported"].items()))
    return [f"  unsupported ops (FLOPs not counted, traffic counted): {ops}", *lines]


def failure_message(record: dict[str, Any], n: int = 0) -> str:
    """The message a test fails with when a profile exceeds its budget: per model over
    budget, every exceeded limit and the ``n`` layers that weigh most in each exceeded
    metric (``n == 0``: no tables). It is the test's own failure text, so JUnit XML and any
    CI that shows a failing test's output carry the hotspots."""
    lines = []
    for m in record["measurements"]:
        if m["violations"]:
            lines.append(f"flop budget exceeded: {measurement_title(m)}")
            lines.extend(violation_lines(m))
            if n:
                lines.extend(hotspot_sections(m, n))
            lines.extend(unsupported_lines(m))
    return "\n".join(lines)


def failing_summary(records: Iterable[dict[str, Any]], n: int, tables: bool = True,
                    width: int | None = None) -> list[str]:
    """Every test over budget with its exceeded limits; with ``tables``, the hotspot
    tables too (``n`` layers each, fitted into ``width`` columns)."""
    lines: list[str] = []
    for rec in records:
        for m in rec["measurements"]:
            if not m["violations"]:
                continue
            lines.append(f"{rec['nodeid']}: {measurement_title(m)}")
            lines.extend(violation_lines(m))
            if tables:
                lines.extend(hotspot_sections(m, n, width))
            lines.extend(unsupported_lines(m))
            if tables:
                lines.append("")
    return lines


def failing_oneliners(records: Iterable[dict[str, Any]]) -> list[str]:
    """One line per model over budget (``-q``): the test, the model and the limits it broke."""
    return [f"{rec['nodeid']}: {m['name']} over "
            f"{', '.join(violation_label(v) for v in m['violations'])}"
            for rec in records for m in rec["measurements"] if m["violations"]]


def uncovered_lines(m: dict[str, Any]) -> list[str]:
    """Every operator without a formula with the layer that called it, one per line:
    ``  aten._fft_r2c x1 in frontend (STFT)``, layers in execution order."""
    return [f"  {op} x{n} in {layer_label(row['name'])} ({row['kind']})"
            for row in m["layers"] for op, n in sorted(row["unsupported"].items())]


def unsupported_summary(records: Iterable[dict[str, Any]], verbosity: int = 0) -> list[str]:
    """Tests whose profiles hit operators without a formula, by name; ``verbosity > 0``
    adds the layer that called each, ``< 0`` gives one line per model."""
    lines = []
    for rec in records:
        for m in rec["measurements"]:
            if (m["unsupported"] or m.get("hidden_weights")) and not m["violations"]:
                if verbosity < 0:
                    hidden = ["weights not visible"] if m.get("hidden_weights") else []
                    ops = ", ".join([*sorted(m["unsupported"]), *hidden])
                    lines.append(f"{rec['nodeid']}: {m['name']}: {ops}")
                    continue
                lines.append(f"{rec['nodeid']}: {m['name']}")
                lines.extend(unsupported_lines(m))
                if verbosity > 0:
                    lines.extend(f"  {line}" for line in uncovered_lines(m))
    return lines


def limit_label(key: str) -> str:
    """Short name of a limit for tables: ``MFLOPs``, ``ms``, ``weight MB``."""
    unit = LIMITS[key].unit
    return f"{LIMITS[key].metric} {unit}" if unit == "MB" else unit


def budget_use(m: dict[str, Any]) -> str:
    """``MFLOPs 50%, ms 91%, backbone MMACs 80%``: the fraction of each limit used, the
    per-module limits after the model's."""
    used = [f"{limit_label(k)} {percent(u)}" for k, u in m["usage"].items()]
    used += [f"{layer_label(path)} {limit_label(k)} {percent(u)}"
             for path, module in m.get("modules", {}).items()
             for k, u in module["usage"].items()]
    return ", ".join(used) or "-"


def report_table(records: Iterable[dict[str, Any]], width: int | None = None) -> list[str]:
    """One row per profiled model of every test: the ``--flop-report`` table; with
    ``width``, the test and model columns are cut to fit it."""
    rows = []
    for rec in records:
        for m in rec["measurements"]:
            verdict = "OVER" if m["violations"] else rec["outcome"]
            rows.append((
                rec["nodeid"], m["name"],
                fixed(m["flops"] / 1e6, 2, grouped=True),
                fixed(m["macs"] / 1e6, 2, grouped=True), f"{m['params']:,}",
                fixed(m["access_bytes"] / 1e6, 3, grouped=True), f"{m['intensity']:.2f}",
                f"{m['device']} {m['dtype']}", fixed(m["latency_s"] * 1e3, 4),
                budget_use(m), verdict,
            ))
    header = ("test", "model", "MFLOPs", "MMACs", "params", "access MB", "FLOP/B", "device",
              "pred ms", "budget used", "verdict")
    return table(header, rows, right={2, 3, 4, 5, 6, 8}, width=width, shrink={0, 1})


__all__ = ["failing_summary", "failure_message", "report_table"]
