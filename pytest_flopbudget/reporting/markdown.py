"""The baseline comparison as Markdown, ready to paste as a pull-request comment.

Only what changed: one table row per changed metric of each changed model (regressed tests
first): baseline and this run's figure (exact counts, bytes, latency in ms), the change in
percent, the growth limit and the verdict (``**over**``, ``ok``, ``-`` for no limit); one line
counts the unchanged tests. Then the layers that grew most in each regressed model, the
failure text (with its hotspot tables) of every test over budget, notes, and the new and
missing tests.

The document stays within :data:`MARKDOWN_LIMIT` characters for any suite: each section
keeps the entries that fit, in order, and says how many it left out and where they are
(the full ``--flop-json`` / ``--flop-html`` report).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..ci.comparison import RunComparison, unchanged, unchanged_model
from ..core.metrics import label
from ..core.text import layer_label
from .baseline_text import (
    change_text,
    figures_text,
    fmt_metric,
    notes,
    shown_metrics,
    unchanged_line,
    verdict,
)

#: GitHub's limit on the body of an issue or pull-request comment, in characters (the API
#: answers "Body is too long (maximum is 65536 characters)"); the example workflow posts the
#: Markdown as a comment.
GITHUB_COMMENT_LIMIT = 65_536
#: The document's own limit: GitHub's, less room for what a comment action adds around it
#: (a hidden marker, a header).
MARKDOWN_LIMIT = GITHUB_COMMENT_LIMIT - 1_536
#: Where the entries a section leaves out can be read.
FULL_REPORT = "see the full report (the --flop-json or --flop-html artifact)"


def plain(text: str) -> str:
    """Text that reads as itself, not as HTML or emphasis (a model name may be anything:
    ``<img ...>``, ``a*b*``): ``& < >`` as entities, Markdown's marks escaped."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|~])", r"\\\1", text)


def cell(text: str) -> str:
    """A name safe inside a table cell: :func:`plain` (which escapes ``|`` too)."""
    return plain(text)


def code(text: str, in_table: bool = False) -> str:
    """An inline code span, even for text that holds backticks; ``in_table``: with ``|``
    escaped (a table cell needs it; outside a table GitHub would show the backslash)."""
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    return span.replace("|", "\\|") if in_table else span


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: set[int]) -> list[str]:
    align = ["---:" if i in right else ":---" for i in range(len(header))]
    return [f"| {' | '.join(r)} |" for r in (header, align, *rows)]


@dataclass
class Section:
    """Part of the document: a title, lines above its entries (a table's header), the
    entries (each a block of lines, kept whole or left out) and what an entry is called."""

    title: str
    head: list[str]
    items: list[list[str]] = field(default_factory=list)
    noun: tuple[str, str] = ("entry", "entries")  # singular, plural
    blank_after: bool = True


def fenced(text: str) -> list[str]:
    """``text`` in a fenced code block (a longer fence when it holds one)."""
    fence = "````" if "```" in text else "```"
    return [f"{fence}text", *text.splitlines(), fence]


def markdown(run: RunComparison, failures: Sequence[tuple[str, str]] = (),
             limit: int = MARKDOWN_LIMIT) -> str:
    """The Markdown document of a run's comparison (``run.source == ""``: no baseline) and
    of the tests over budget (``failures``: ``(node id, failure text)``), at most ``limit``
    characters long."""
    if not run.source:
        head = ["### flop budget: no baseline to compare with", ""]
    else:
        head = [f"### flop budget: compared with {code(run.source)}", "", run.headline(), ""]
        extra = [line for line in (unchanged_line(run), run.limits_note()) if line]
        head += [*extra, ""] if extra else []
    header = ("test", "model", "metric", "baseline", "this run", "change", "max growth",
              "verdict")
    table = md_table(header, [], right={3, 4, 5, 6})
    regressed = Section("Regressed", table, noun=("regressed test", "regressed tests"))
    changed = Section("Changed", table, noun=("changed test", "changed tests"))
    grown = Section("Layers that grew most", [], noun=("layer table", "layer tables"),
                    blank_after=False)
    over = Section("Over budget", [], noun=("test over budget", "tests over budget"))
    remarks = Section("Notes", [], noun=("note", "notes"))
    new = Section("New tests (not in the baseline)" if run.source else "Profiled tests", [],
                  noun=("new test", "new tests") if run.source
                  else ("profiled test", "profiled tests"))
    missing = Section("Missing (in the baseline, not profiled in this run)", [],
                      noun=("missing test", "missing tests"))
    missing.items += [[f"- {code(t)}"] for t in run.missing]
    for nodeid, result in run.tests:
        if unchanged(result):
            continue
        rows: list[list[str]] = []
        for model in result["models"]:
            name = model["name"]
            if model["status"] == "new":
                new.items.append([f"- {code(nodeid)}: {plain(name)} "
                                  f"({figures_text(model['values'])})"])
            elif model["status"] == "missing":
                missing.items.append([f"- {code(nodeid)}: {plain(name)}"])
            elif not unchanged_model(model):
                rows.extend(_metric_rows(nodeid, model))
                remarks.items.extend([f"- {code(nodeid)} {plain(name)}: {plain(note)}"]
                                     for note in notes(model))
                if "layers" in model:
                    grown.items.append(_layer_section(nodeid, model))
        if rows:
            target = regressed if result["status"] == "regressed" else changed
            target.items.append(md_table(header, rows, set())[2:])
    over.items += [[f"{code(nodeid)}:", "", *fenced(text), ""] for nodeid, text in failures]
    return fit(head, [regressed, grown, over, changed, remarks, new, missing], limit)


def fit(head: list[str], sections: Sequence[Section], limit: int) -> str:
    """Join ``head`` and the sections' entries in order while they fit in ``limit``
    characters; a section that leaves entries out ends with how many, and where they are."""
    def size(lines: Sequence[str]) -> int:
        return sum(len(line) + 1 for line in lines)

    footer = 160  # one "... and N more ..." line
    room = limit - size(head) - footer * sum(1 for s in sections if s.items)
    lines = list(head)
    for section in sections:
        if not section.items:
            continue
        top = ([f"#### {section.title}", ""] if section.title else []) + section.head
        body: list[str] = []
        room -= size(top)
        kept = 0
        for item in section.items:
            if size(item) > room:
                break
            body += item
            room -= size(item)
            kept += 1
        if not kept:
            room += size(top)
            top = [f"#### {section.title}", ""] if section.title else []
        left = len(section.items) - kept
        lines += top + body
        if left:
            lines += ([""] if kept and section.head else []) + [
                f"... and {left} more {section.noun[left != 1]}: {FULL_REPORT}"]
        if section.blank_after or left:
            lines.append("")
    text = "\n".join(lines).rstrip("\n") + "\n"
    if len(text) > limit:  # a head longer than any limit (a baseline path of 60,000 chars)
        cut = text[:limit - len(FULL_REPORT) - 20].rsplit("\n", 1)[0]
        text = f"{cut}\n... cut: {FULL_REPORT}\n"
    return text


def _metric_rows(nodeid: str, model: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for r in shown_metrics(model):
        word = verdict(r, model["checked"])
        rows.append([code(nodeid, in_table=True), cell(model["name"]), label(r["metric"]),
                     fmt_metric(r["metric"], r["old"]), fmt_metric(r["metric"], r["new"]),
                     change_text(r["old"], r["new"], r["limit"]), r["limit"] or "-",
                     "**over**" if word == "over" else word])
    return rows


def _layer_section(nodeid: str, model: Mapping[str, Any]) -> list[str]:
    grown = model["layers"]
    figure = grown["figure"]
    rows = [[code(layer_label(r["name"]), in_table=True), cell(r["kind"]),
             fmt_metric(figure, r["old"]),
             fmt_metric(figure, r["new"]),
             f"+{fmt_metric(figure, r['new'] - r['old'])} ({change_text(r['old'], r['new'])})"]
            for r in grown["rows"]]
    head = f"{code(nodeid)} {cell(model['name'])}, by {label(figure)}:"
    table = md_table(("layer", "type", "baseline", "this run", "change"), rows, right={2, 3, 4})
    return [head, "", *table, ""]
