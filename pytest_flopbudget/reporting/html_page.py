"""The HTML report as one self-contained page, built from the plain record dicts.

Layout: an overview table of every budgeted test (verdict, headline figures, each limit as a
bar against its budget), then one section per profiled test: its roofline chart, a bar chart of
predicted time per layer and a sortable per-layer table. Every number a test may check is also
written exactly in a ``data-v`` attribute (FLOPs, params and bytes as integers, intensity in
FLOP/byte, rates in FLOP/s, times in seconds).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from typing import Any

from ..budgets.limits import LIMITS
from ..budgets.measurement import outcome_counts, over_budget
from ..core.metrics import values_of
from ..core.text import fmt_value, layer_label, percent
from ..core.version import VERSION
from ..devices.device import Device
from . import charts
from .html_assets import CSS, JS
from .text import measurement_title

DeviceLookup = Callable[[str], "Device | None"]


def esc(value: Any) -> str:
    """Text or attribute value, HTML-escaped."""
    return html.escape(str(value), quote=True)


def verdict(record: dict[str, Any], m: dict[str, Any] | None = None) -> str:
    """``OVER`` for a measurement over budget, else the test's outcome."""
    over = m["violations"] if m is not None else over_budget(record)
    return "OVER" if over else record["outcome"]


def badge(word: str) -> str:
    return f'<span class="badge {esc(word)}">{esc(word)}</span>'


def num(value: float, text: str, title: str = "") -> str:
    """A right-aligned cell sorting by ``value``."""
    tip = f' title="{esc(title)}"' if title else ""
    return f'<td class="num" data-v="{value!r}"{tip}>{esc(text)}</td>'


# -- overview ----------------------------------------------------------------------------
def budget_bars(record: dict[str, Any], m: dict[str, Any]) -> str:
    """One bar per limit: the track is 0..150% of the budget, the black tick is 100%."""
    limits = (record.get("budget") or {}).get("limits", {})
    values = values_of(m)
    bars = []
    for key, used in m["usage"].items():
        limit = LIMITS[key]
        measured = values[limit.metric] / limit.scale
        state = "over" if used > 1 else "near" if used > 0.8 else "ok"
        width = min(used, 1.5) / 1.5 * 100
        label = (f"{limit.metric} {fmt_value(measured, limit.unit)} / "
                 f"{fmt_value(limits.get(key, 0), limit.unit)} {limit.unit} ({percent(used)})")
        bars.append(f'<div class="bar" data-limit="{esc(key)}" data-usage="{used!r}">'
                    f'<span class="track"><span class="fill {state}" style="width:{width:.1f}%">'
                    f'</span><span class="limit" style="left:66.7%"></span></span>'
                    f"<span>{esc(label)}</span></div>")
    return "".join(bars) or '<span class="sub">no limits</span>'


def overview(records: list[dict[str, Any]]) -> str:
    rows = []
    for i, rec in enumerate(records):
        link = f'<a href="#test-{i}">{esc(rec["nodeid"])}</a>' if rec["measurements"] else \
            esc(rec["nodeid"])
        if not rec["measurements"]:
            rows.append(f'<tr data-nodeid="{esc(rec["nodeid"])}"><td>{link}</td><td>-</td>'
                        f"<td>-</td><td>{badge(verdict(rec))}</td>"
                        + num(-1, "-") * 3
                        + f'<td><span class="sub">{esc(rec["error"])}</span></td></tr>')
        for m in rec["measurements"]:
            rows.append(
                f'<tr data-nodeid="{esc(rec["nodeid"])}"><td>{link}</td><td>{esc(m["name"])}</td>'
                f'<td>{esc(m["device"])} {esc(m["dtype"])}</td>'
                f"<td>{badge(verdict(rec, m))}</td>"
                + num(m["flops"], f"{m['flops'] / 1e6:,.2f}")
                + num(m["params"], f"{m['params']:,}")
                + num(m["latency_s"], f"{m['latency_s'] * 1e3:.4g}")
                + f"<td>{budget_bars(rec, m)}</td></tr>")
    head = ("<thead><tr><th>test</th><th>model</th><th>device</th><th>verdict</th>"
            '<th class="num">MFLOPs</th><th class="num">params</th><th class="num">pred. ms</th>'
            "<th>budget used (bar: 0 to 150%, tick = budget)</th></tr></thead>")
    return (f'<table class="overview sortable">{head}<tbody>{"".join(rows)}</tbody></table>')


# -- per test ----------------------------------------------------------------------------
def shapes(shape_list: list[list[int]]) -> str:
    """``1x128x256`` (first tensor), ``+2`` when more follow."""
    if not shape_list:
        return "-"
    first = "x".join(str(d) for d in shape_list[0]) or "scalar"
    return first + (f" +{len(shape_list) - 1}" if len(shape_list) > 1 else "")


def _rereads(row: dict[str, Any]) -> bool:
    """Whether the device traffic differs from the row's bytes (recurrent re-reads)."""
    plain = row["flops"] / row["bytes"] if row["bytes"] else 0.0
    return abs(plain - row["intensity"]) > 1e-9 * max(plain, 1.0)


def layer_table(layers: list[dict[str, Any]]) -> str:
    """Every row that does work, moves bytes or holds parameters, in execution order."""
    body, marked = [], False
    for n, r in enumerate(layers):
        if not (r["flops"] or r["bytes"] or r["params"] or r["seconds"]):
            continue
        dagger = "\u2020" if r["flops"] and _rereads(r) else ""
        marked = marked or bool(dagger)
        io_text = f"{shapes(r['input_shapes'])} \u2192 {shapes(r['output_shapes'])}"
        io_title = f"{r['input_shapes']} -> {r['output_shapes']}"
        body.append(
            f'<tr data-layer="{esc(r["name"])}">' + num(n, str(n))
            + f"<td>{esc(layer_label(r['name']))}</td><td>{esc(r['kind'])}</td>"
            + f'<td title="{esc(io_title)}">{esc(io_text)}</td>'
            + num(r["flops"], f"{r['flops'] / 1e6:,.3f}", f"{r['flops']:,} FLOPs")
            + num(r["params"], f"{r['params']:,}")
            + num(r["bytes"], f"{r['bytes']:,}")
            + num(r["intensity"], f"{r['intensity']:.3g}{dagger}")
            + f"<td>{esc(r['bound'])}</td>"
            + num(r["seconds"], f"{r['seconds'] * 1e3:.4g}")
            + num(r["share"], f"{r['share']:.1%}") + "</tr>")
    cols = ("#", "layer", "kind", "input \u2192 output", "MFLOPs", "params", "access bytes",
            "FLOP/B", "bound", "pred. ms", "share")
    head = "".join(f'<th class="num">{c}</th>' if c in ("#", "MFLOPs", "params", "access bytes",
                                                        "FLOP/B", "pred. ms", "share")
                   else f"<th>{esc(c)}</th>" for c in cols)
    note = ('<p class="sub">\u2020 intensity on the device: the recurrent weights are re-read '
            "every step (they do not fit on chip), so it is below MFLOPs / access bytes.</p>"
            if marked else "")
    return (f'<div class="scroll"><table class="layers sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>{note}')


def figures(m: dict[str, Any], roof: charts.Roof | None) -> str:
    """The measurement's totals and the device's roof, each with its exact ``data-v``."""
    items = [
        ("flops", "FLOPs", m["flops"], f"{m['flops']:,} ({m['flops'] / 1e6:,.3f} M)"),
        ("macs", "MACs", m["macs"], f"{m['macs']:,}"),
        ("params", "params", m["params"], f"{m['params']:,}"),
        ("access_bytes", "access", m["access_bytes"],
         f"{m['access_bytes']:,} bytes at {m['dtype']}"),
        ("intensity", "intensity", m["intensity"], f"{m['intensity']:.3g} FLOP/byte"),
        ("latency_s", "predicted", m["latency_s"], f"{m['latency_s'] * 1e3:.4g} ms"),
    ]
    if roof:
        items += [
            ("peak", "peak", roof.peak, f"{charts.si(roof.peak, 'FLOP/s')} at {roof.dtype}"),
            ("bandwidth", "bandwidth", roof.bandwidth, charts.si(roof.bandwidth, "B/s")),
            ("ridge", "ridge point", roof.ridge,
             f"{roof.ridge:.4g} FLOP/byte (peak / bandwidth)"),
        ]
    return '<dl class="figures">' + "".join(
        f'<div><dt>{esc(label)}</dt><dd data-key="{key}" data-v="{value!r}">{esc(text)}</dd>'
        f"</div>" for key, label, value, text in items) + "</dl>"


def roofline_caption(m: dict[str, Any], device: Device | None, plotted: int, flat: int,
                     labels: int) -> str:
    text = (f"Each of the {plotted} points is one layer's own work on {m['device']} at "
            f"{m['dtype']}: x = its arithmetic intensity (FLOPs / bytes it moves), y = the "
            f"FLOP/s it achieves under the roofline model (its FLOPs / its predicted time), so "
            f"it lies on or under the roof. Area = share of predicted time; colour = module "
            f"kind; the {labels} slowest layers are named.")
    if device is not None:
        eff = ", ".join(f"{k} {v:g}" for k, v in sorted(device.efficiency.items()))
        text += (f" Points sit below the roof by the device's {device.overheads_text()}"
                 + (f", its efficiency factors ({eff})" if eff else "")
                 + " and where a layer mixes memory- and compute-bound operators.")
    else:
        text += f" Device {m['device']!r} is not in this session's catalog: no roof drawn."
    if flat:
        text += (f" {flat} layer(s) that take time but do no FLOPs (pure data movement) cannot "
                 f"sit on a log-log chart; they are in the bars and the table.")
    return text


def measurement_block(m: dict[str, Any], prefix: str, device_of: DeviceLookup,
                      hotspots: int) -> str:
    device = device_of(m["device"])
    roof = charts.Roof(device.name, m["dtype"], device.peak(m["dtype"]), device.bandwidth) \
        if device is not None else None
    points = [charts.Point(r["name"], r["kind"], r["flops"], r["intensity"], r["seconds"],
                           r["share"]) for r in m["layers"] if r["seconds"] > 0]
    palette = charts.colours([p.kind for p in points])
    plotted = sum(p.on_roofline for p in points)
    labels = min(hotspots, plotted)
    parts = [f'<div class="measurement" id="{prefix}" data-points="{plotted}" '
             f'data-device="{esc(m["device"])}"><h3>{esc(measurement_title(m))}</h3>']
    parts += [f'<p class="violation">{esc(v["limit"])}: {esc(v["text"])}</p>'
              for v in m["violations"]]
    parts.append(figures(m, roof))
    if points:
        caption = roofline_caption(m, device, plotted, len(points) - plotted, labels)
        parts.append(
            '<div class="charts"><figure class="roofline">'
            + charts.roofline_svg(roof, points, prefix, palette, labels)
            + f"<figcaption>{esc(caption)}"
            + '</figcaption></figure><figure class="time">'
            + charts.time_bars_svg(points, prefix, palette)
            + "<figcaption>Predicted time of each layer's own work (ms), in execution order, "
              "coloured by module kind as on the roofline.</figcaption></figure></div>")
    else:
        parts.append('<p class="sub">No layer takes time: nothing to chart.</p>')
    parts.append(layer_table(m["layers"]))
    return "".join(parts) + "</div>"


def test_section(i: int, rec: dict[str, Any], device_of: DeviceLookup, hotspots: int) -> str:
    parts = [f'<section class="test" id="test-{i}" data-nodeid="{esc(rec["nodeid"])}" '
             f'data-verdict="{esc(verdict(rec))}"><h2>{esc(rec["nodeid"])} '
             f"{badge(verdict(rec))}</h2>"]
    if rec["error"] and not any(m["violations"] for m in rec["measurements"]):
        parts.append(f'<pre class="err">{esc(rec["error"])}</pre>')
    parts += [measurement_block(m, f"t{i}m{j}", device_of, hotspots)
              for j, m in enumerate(rec["measurements"])]
    return "".join(parts) + "</section>"


def page(records: Iterable[dict[str, Any]], device_of: DeviceLookup, hotspots: int = 5) -> str:
    """The whole report: ``records`` as sent by the plugin (sorted by test id);
    ``device_of(name)`` gives the catalog's Device or None; ``hotspots`` layers are named on
    each roofline."""
    records = list(records)
    profiled = [r for r in records if r["measurements"]]
    n = outcome_counts(records)
    summary = (f"{n['tests']} budgeted test(s), {len(profiled)} profiled: {n['over_budget']} "
               f"over budget, {n['failed']} failed, {n['skipped']} skipped, {n['errors']} "
               f"error(s). pytest-flopbudget {VERSION}.")
    sections = [test_section(i, r, device_of, hotspots)
                for i, r in enumerate(records) if r["measurements"]]
    body = overview(records) if records else \
        '<p class="sub">No test used the flop_budget fixture.</p>'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>flop budget report</title><style>{CSS}</style></head><body><main>"
        f'<h1>flop budget report</h1><p class="sub" id="summary">{esc(summary)}</p>'
        f'{body}{"".join(sections)}</main><script>{JS}</script></body></html>\n')
