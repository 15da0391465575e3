"""The baseline comparison as Markdown, ready to paste as a pull-request comment.

One table row per compared model and shown metric (the budgeted or changed ones, as in the
terminal summary): baseline and this run's figure (exact counts, bytes, latency in ms), the
change in percent, the growth limit and the verdict (``**over**``, ``ok``, ``-`` for no limit).
Then the layers that grew most in each regressed model, and the new and missing tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..ci.comparison import RunComparison
from ..core.metrics import label
from ..core.text import layer_label
from .baseline_text import change_text, figures_text, fmt_metric, notes, shown_metrics, verdict


def cell(text: str) -> str:
    """Text safe inside a table cell (``|`` escaped)."""
    return text.replace("|", "\\|")


def code(text: str) -> str:
    """An inline code span, even for text that holds backticks."""
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return cell(f"{fence}{pad}{text}{pad}{fence}")


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: set[int]) -> list[str]:
    align = ["---:" if i in right else ":---" for i in range(len(header))]
    return [f"| {' | '.join(r)} |" for r in (header, align, *rows)]


def markdown(run: RunComparison) -> str:
    """The Markdown document of a run's comparison (``run.source == ""``: no baseline)."""
    if not run.source:
        lines = ["### flop budget: no baseline to compare with", ""]
    else:
        lines = [f"### flop budget: compared with {code(run.source)}", "", run.headline(), ""]
    rows: list[list[str]] = []
    grown: list[str] = []
    remarks: list[str] = []
    new: list[str] = []
    missing = [f"- {code(t)}" for t in run.missing]
    for nodeid, result in run.tests:
        for model in result["models"]:
            name = model["name"]
            if model["status"] == "new":
                new.append(f"- {code(nodeid)}: {name} ({figures_text(model['values'])})")
            elif model["status"] == "missing":
                missing.append(f"- {code(nodeid)}: {name}")
            else:
                rows.extend(_metric_rows(nodeid, model))
                remarks.extend(f"- {code(nodeid)} {name}: {note}" for note in notes(model))
                if "layers" in model:
                    grown.extend(_layer_section(nodeid, model))
    if rows:
        lines += md_table(("test", "model", "metric", "baseline", "this run", "change",
                           "max growth", "verdict"), rows, right={3, 4, 5, 6})
        lines.append("")
    for title, block in (("Layers that grew most", grown), ("Notes", remarks),
                         ("New tests (not in the baseline)" if run.source
                          else "Profiled tests", new),
                         ("Missing (in the baseline, not profiled in this run)", missing)):
        if block:
            lines += [f"#### {title}", "", *block]
            lines += [] if block[-1] == "" else [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _metric_rows(nodeid: str, model: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for r in shown_metrics(model):
        word = verdict(r, model["checked"])
        rows.append([code(nodeid), cell(model["name"]), label(r["metric"]),
                     fmt_metric(r["metric"], r["old"]), fmt_metric(r["metric"], r["new"]),
                     change_text(r["old"], r["new"]), r["limit"] or "-",
                     "**over**" if word == "over" else word])
    return rows


def _layer_section(nodeid: str, model: Mapping[str, Any]) -> list[str]:
    grown = model["layers"]
    figure = grown["figure"]
    rows = [[code(layer_label(r["name"])), cell(r["kind"]), fmt_metric(figure, r["old"]),
             fmt_metric(figure, r["new"]),
             f"+{fmt_metric(figure, r['new'] - r['old'])} ({change_text(r['old'], r['new'])})"]
            for r in grown["rows"]]
    head = f"{code(nodeid)} {cell(model['name'])}, by {label(figure)}:"
    table = md_table(("layer", "type", "baseline", "this run", "change"), rows, right={2, 3, 4})
    return [head, "", *table, ""]
