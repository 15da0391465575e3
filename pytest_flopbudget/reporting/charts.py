"""Charts of the HTML report, drawn with matplotlib and returned as inline SVG text.

Only ``matplotlib.figure.Figure`` with an Agg canvas is used (never ``pyplot``), so no window
opens and no global figure state is touched. Units: intensity in FLOP/byte, rates in FLOP/s
(OP/s at int8), bandwidth in bytes/s, times in seconds (drawn in ms).

Every plotted layer is its own ``<g class="layer-point">`` in the SVG, carrying its figures as
``data-*`` attributes and a ``<title>`` tooltip, so a reader can hover over a point and a test
can count them.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Colours of operator kinds, assigned in order of first appearance (matplotlib's tab20).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
           "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")

RC: dict[Any, Any] = {"svg.fonttype": "none", "font.size": 9, "font.family": "DejaVu Sans",
      "axes.spines.top": False, "axes.spines.right": False}


@dataclass(frozen=True)
class Roof:
    """A device's roofline at one precision: ``peak`` FLOP/s, ``bandwidth`` bytes/s."""

    device: str
    dtype: str
    peak: float
    bandwidth: float

    @property
    def ridge(self) -> float:
        """Intensity (FLOP/byte) where the bandwidth slope meets the compute ceiling."""
        return self.peak / self.bandwidth

    def attainable(self, intensity: float) -> float:
        """The roof at ``intensity``: ``min(peak, intensity * bandwidth)`` in FLOP/s."""
        return min(self.peak, intensity * self.bandwidth)


@dataclass(frozen=True)
class Point:
    """One layer on the charts: ``intensity`` FLOP/byte, ``seconds`` predicted time,
    ``share`` of the model's time (0..1)."""

    name: str
    kind: str
    flops: int
    intensity: float
    seconds: float
    share: float

    @property
    def rate(self) -> float:
        """FLOP/s the layer achieves under the model: its FLOPs / its predicted time."""
        return self.flops / self.seconds if self.seconds else 0.0

    @property
    def on_roofline(self) -> bool:
        """Whether it can sit on a log-log roofline (it does FLOPs and moves bytes)."""
        return self.seconds > 0 and self.flops > 0 and self.intensity > 0


def missing() -> str:
    """Why the charts cannot be drawn (matplotlib, an optional extra, does not import), or
    ``""`` when they can."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return ""


def colours(kinds: Sequence[str]) -> dict[str, str]:
    """``{kind: colour}`` in order of first appearance; the palette repeats past 20 kinds."""
    order = list(dict.fromkeys(kinds))
    return {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(order)}


def si(value: float, unit: str = "") -> str:
    """``4e12 -> '4 T'``, ``1.25e10 -> '12.5 G'`` (three significant digits)."""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def _svg(fig: Figure, salt: str) -> str:
    """The figure as an ``<svg>`` element (XML header dropped); ``salt`` makes its internal
    ids (clip paths, markers) unique within the page and stable between runs."""
    import matplotlib as mpl

    buf = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _figure(width: float, height: float, left: float, bottom: float = 0.5,
            top: float = 0.3, right: float = 0.15) -> Figure:
    """A figure of ``width`` x ``height`` inches with one axes inside the given margins
    (inches). Fixed margins: a layout engine would double the drawing time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height)
    return fig


def _point_title(p: Point) -> str:
    return (f"{p.name or '<model>'} ({p.kind}): {p.intensity:.3g} FLOP/B, "
            f"{si(p.rate, 'FLOP/s')}, {p.seconds * 1e3:.4g} ms ({p.share:.1%})")


def _tag_points(svg: str, prefix: str, points: Sequence[Point]) -> str:
    """Give each layer's group a class, its figures and a tooltip."""
    for i, p in enumerate(points):
        gid = f'<g id="{prefix}-p{i}">'
        attrs = (f'class="layer-point" data-layer="{html.escape(p.name)}" '
                 f'data-kind="{html.escape(p.kind)}" data-intensity="{p.intensity!r}" '
                 f'data-rate="{p.rate!r}" data-seconds="{p.seconds!r}"')
        svg = svg.replace(gid, f'<g id="{prefix}-p{i}" {attrs}>'
                               f"<title>{html.escape(_point_title(p))}</title>", 1)
    return svg


def roofline_svg(roof: Roof | None, points: Sequence[Point], prefix: str,
                 palette: dict[str, str], labels: int = 5) -> str:
    """Log-log roofline: the bandwidth slope and compute ceiling of ``roof`` (``None``: the
    device is unknown here, points only), the ridge marked, one point per layer at (its
    intensity, its achieved FLOP/s), sized by its share of time, coloured by kind; the
    ``labels`` slowest layers are named."""
    import matplotlib as mpl
    from matplotlib.lines import Line2D
    from matplotlib.ticker import EngFormatter

    plotted = [p for p in points if p.on_roofline]
    with mpl.rc_context(RC):
        fig = _figure(7.6, 4.4, left=0.75, bottom=0.5, right=2.0)
        ax = fig.add_subplot()
        ax.set_xscale("log")
        ax.set_yscale("log")
        xs = [p.intensity for p in plotted] + ([roof.ridge] if roof else [])
        ys = [p.rate for p in plotted] + ([roof.peak] if roof else [])
        x_lo, x_hi = min(xs or [1.0]) / 4, max(xs or [1.0]) * 4
        y_lo, y_hi = min(ys or [1.0]) / 4, max(ys or [1.0]) * 3
        if roof:
            ax.plot([x_lo, roof.ridge], [x_lo * roof.bandwidth, roof.peak], color="#b22222",
                    lw=2, label=f"bandwidth: {si(roof.bandwidth, 'B/s')}")
            ax.plot([roof.ridge, x_hi], [roof.peak, roof.peak], color="#1a7f37", lw=2,
                    label=f"compute: {si(roof.peak, 'FLOP/s')} ({roof.dtype})")
            ax.axvline(roof.ridge, color="#555", lw=0.8, ls=":")
            ax.plot([roof.ridge], [roof.peak], "D", color="black", ms=6,
                    label=f"ridge: {roof.ridge:.3g} FLOP/B")
            y_lo = min(y_lo, x_lo * roof.bandwidth)
        for i, p in enumerate(plotted):
            sc = ax.scatter([p.intensity], [p.rate], s=25 + 900 * p.share,
                            color=palette[p.kind], alpha=0.75, edgecolors="black",
                            linewidths=0.5, zorder=3)
            sc.set_gid(f"{prefix}-p{i}")
        slowest = sorted(plotted, key=lambda p: p.seconds, reverse=True)[:labels]
        # labels fan out from the highest point down, 11 pt apart, so layers at the same
        # spot (every ReLU of a network) still get readable labels
        for j, p in enumerate(sorted(slowest, key=lambda p: -p.rate)):
            ax.annotate(f"{p.name or '<model>'} {p.share:.0%}" if p.share >= 0.01 else
                        (p.name or "<model>"), (p.intensity, p.rate),
                        xytext=(12, 4 + 11 * (len(slowest) // 2 - j)),
                        textcoords="offset points", fontsize=8, va="center",
                        arrowprops={"arrowstyle": "-", "color": "#888", "lw": 0.5})
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_lo, y_hi)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.yaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_xlabel("arithmetic intensity (FLOP / byte moved)")
        ax.set_ylabel("attainable FLOP/s (layer: its FLOPs / its predicted time)")
        ax.grid(True, which="major", color="#ddd", lw=0.5)
        handles = ax.get_legend_handles_labels()[0]
        kinds = list(dict.fromkeys(p.kind for p in plotted))
        handles += [Line2D([], [], marker="o", ls="", color=palette[k], label=k)
                    for k in kinds]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7,
                  frameon=False, borderaxespad=0)
        title = f"roofline of {roof.device} ({roof.dtype})" if roof else "layers (no roof)"
        ax.set_title(title, fontsize=10)
        return _tag_points(_svg(fig, f"{prefix}-roofline"), prefix, plotted)


def time_bars_svg(points: Sequence[Point], prefix: str, palette: dict[str, str],
                  most: int = 40) -> str:
    """Horizontal bars of predicted time per layer (ms), in execution order; past ``most``
    layers only the slowest ``most`` are drawn and the rest are summed into one grey bar."""
    import matplotlib as mpl

    timed = [p for p in points if p.seconds > 0]
    keep = set(sorted(range(len(timed)), key=lambda i: timed[i].seconds,
                      reverse=True)[:most])
    shown = [p for i, p in enumerate(timed) if i in keep]
    rest = [p for i, p in enumerate(timed) if i not in keep]
    labels = [f"{p.name or '<model>'} ({p.kind})" for p in shown]
    values = [p.seconds * 1e3 for p in shown]
    fills = [palette[p.kind] for p in shown]
    if rest:
        labels.append(f"{len(rest)} other layers")
        values.append(sum(p.seconds for p in rest) * 1e3)
        fills.append("#bbbbbb")
    labels = [text if len(text) <= 40 else "\u2026" + text[-39:] for text in labels]
    height = 0.85 + 0.2 * max(len(values), 3)
    with mpl.rc_context(RC):
        fig = _figure(5.2, height, left=0.2 + 0.058 * max(map(len, labels), default=4),
                      bottom=0.45, top=0.3, right=0.2)
        ax = fig.add_subplot()
        rows = list(range(len(values)))
        bars = ax.barh(rows, values, color=fills, edgecolor="none", height=0.7)
        ax.set_yticks(rows, labels, fontsize=7)
        ax.invert_yaxis()
        total = sum(p.seconds for p in timed) * 1e3 or 1.0
        ax.bar_label(bars, [f"{v:.3g} ms ({v / total:.0%})" if v / total >= 0.01 else
                            f"{v:.2g} ms" for v in values], fontsize=7, padding=2)
        ax.set_xlim(0, max(values or [1.0]) * 1.3)
        ax.set_xlabel("predicted time (ms)")
        ax.set_title(f"predicted time per layer (total {total:.4g} ms)", fontsize=10)
        return _svg(fig, f"{prefix}-time")
