"""The baseline comparison in words: the terminal summary and a regressed test's failure.

Figures are exact (counts and bytes with thousands separators, latency in ms); a change is in
percent of the baseline value. The Markdown version of the same comparison is
:mod:`.markdown`.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from ..ci.comparison import RunComparison, changed, unchanged, unchanged_model
from ..core.metrics import label
from ..core.numbers import finite
from ..core.text import fixed, layer_label, table


def fmt_metric(metric: str, value: float) -> str:
    """Exact counts and bytes with thousands separators; latency (seconds) in ms."""
    if metric == "latency":
        ms = value * 1e3
        return fixed(ms, 4) if ms >= 0.01 or ms == 0 else f"{ms:.3g}"
    return f"{int(value):,}" if finite(value) and value == int(value) else f"{value:,.1f}"


def change_text(old: float, new: float, limit: str | None = None) -> str:
    """``"+100.0%"``, ``"-50.0%"``, ``"0.0%"``; growth from 0 is ``"new"``. Next to a
    ``limit`` (``"5%"``) it has the digits that tell them apart (``+5.00005%``, never
    ``+5.0%`` for a change over 5%)."""
    if old == new:
        return "0.0%"
    if old == 0:
        return "new"
    pct = (new / old - 1) * 100
    text = f"{pct:+.1f}%" if abs(pct) >= 0.05 else f"{pct:+.2g}%"
    if limit is not None:  # compared exactly, as the verdict is (floats would add noise)
        exact = (Fraction(new) / Fraction(old) - 1) * 100
        bound, digits = Fraction(limit.rstrip("%")), 1
        while Fraction(text.rstrip("%")) == bound and exact != bound and digits < 17:
            digits += 1
            text = f"{float(exact):+.{digits}f}%"
    return text


def shown_metrics(model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The metric rows a report shows: the ones that changed, else the FLOPs row."""
    rows = model["metrics"]
    return [r for r in rows if changed(r)] or rows[:1]


def verdict(row: Mapping[str, Any], checked: bool) -> str:
    if row["over"]:
        return "over"
    return "ok" if row["limit"] and checked else "-"


def metric_table(model: Mapping[str, Any], indent: str = "    ") -> list[str]:
    rows = [(label(r["metric"]), fmt_metric(r["metric"], r["old"]),
             fmt_metric(r["metric"], r["new"]), change_text(r["old"], r["new"], r["limit"]),
             r["limit"] or "-", verdict(r, model["checked"]))
            for r in shown_metrics(model)]
    return table(("metric", "baseline", "this run", "change", "max growth", "verdict"), rows,
                 right={1, 2, 3, 4}, indent=indent)


def layer_table(model: Mapping[str, Any], indent: str = "      ") -> list[str]:
    grown = model["layers"]
    figure = grown["figure"]
    rows = [(layer_label(r["name"]), r["kind"], fmt_metric(figure, r["old"]),
             fmt_metric(figure, r["new"]),
             f"+{fmt_metric(figure, r['new'] - r['old'])} ({change_text(r['old'], r['new'])})")
            for r in grown["rows"]]
    return table(("layer", "type", "baseline", "this run", "change"), rows,
                 right={2, 3, 4}, indent=indent)


def notes(model: Mapping[str, Any]) -> list[str]:
    """Remarks on a compared model: renamed class, changed device, renamed layers."""
    lines = []
    if "was" in model:
        lines.append(f"compared with baseline model {model['was']} (the test's only model)")
    if "device_change" in model:
        lines.append(f"device changed: {model['device_change']}")
    renamed = model.get("renamed_layers")
    if renamed:
        lines.append(f"layer paths changed (compared on totals): new "
                     f"{', '.join(map(layer_label, renamed['added'])) or '-'}; gone "
                     f"{', '.join(map(layer_label, renamed['gone'])) or '-'}")
    return lines


def figures_text(values: Mapping[str, float]) -> str:
    return (f"{fmt_metric('flops', values['flops'])} FLOPs, "
            f"{fmt_metric('params', values['params'])} params")


def regression_message(nodeid: str, result: Mapping[str, Any], source: str) -> str:
    """What a regressed test fails with: each metric over its limit, where the limit was
    written, and the layers that grew most."""
    lines = []
    for model in result["models"]:
        if model["status"] != "regressed":
            continue
        lines.append(f"flop baseline: {model['name']} grew more than allowed over {source}")
        for r in model["metrics"]:
            if r["over"]:
                lines.append(f"  {label(r['metric'])}: {fmt_metric(r['metric'], r['old'])} -> "
                             f"{fmt_metric(r['metric'], r['new'])} "
                             f"({change_text(r['old'], r['new'], r['limit'])}) > max growth "
                             f"{r['limit']} "
                             f"({r['where']})")
        lines.extend(f"  {note}" for note in notes(model))
        if "layers" in model:
            lines.append(f"  layers that grew most in {label(model['layers']['figure'])}:")
            lines.extend(layer_table(model, indent="    "))
    return "\n".join(lines)


def unchanged_line(run: RunComparison) -> str:
    """``"198 tests unchanged"`` (``""`` when none is)."""
    n = len(run.unchanged)
    return f"{n} test{'s' * (n != 1)} unchanged" if n else ""


def summary_lines(run: RunComparison, verbosity: int = 0) -> list[str]:
    """The terminal summary: a block per test that changed (the metrics that changed), one
    line for the unchanged ones, then new and missing tests. ``verbosity > 0`` lists the
    unchanged tests too; ``< 0`` shows only the regressed tests."""
    lines = [f"compared with {run.source}: {run.headline()}"]
    new: list[tuple[str, Mapping[str, Any]]] = []
    for nodeid, result in run.tests:
        if result["status"] == "new":
            new.extend((nodeid, m) for m in result["models"])
            continue
        if verbosity < 0 and result["status"] != "regressed":
            continue
        if unchanged(result) and verbosity <= 0:
            continue
        for model in result["models"]:
            if model["status"] == "new":
                new.append((nodeid, model))
            elif model["status"] == "missing":
                lines.append(f"{nodeid}: {model['name']}: in the baseline, not profiled now")
            elif unchanged_model(model):
                lines.append(f"{nodeid}: {model['name']}: unchanged")
            else:
                word = {"regressed": "REGRESSED", "ok": "ok"}[model["status"]]
                if not model["checked"]:
                    word = "not checked (the test failed)"
                lines.append(f"{nodeid}: {model['name']}: {word}")
                lines.extend(metric_table(model, indent="  "))
                lines.extend(f"  {note}" for note in notes(model))
                if "layers" in model:
                    lines.append(f"  layers that grew most in {label(model['layers']['figure'])}:")
                    lines.extend(layer_table(model, indent="    "))
    if verbosity < 0:
        return lines
    lines.extend(line for line in (unchanged_line(run) if verbosity <= 0 else "",
                                   run.limits_note()) if line)
    if new:
        lines.append("new (not in the baseline):")
        lines.extend(f"  {nodeid}: {m['name']} ({figures_text(m['values'])})" for nodeid, m in new)
    if run.missing:
        lines.append("missing (in the baseline, not profiled in this run):")
        lines.extend(f"  {nodeid}" for nodeid in run.missing)
    return lines
