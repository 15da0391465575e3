"""Measured latencies from the logs teams already have, keyed by test id.

A *measured file* is a CSV with one row per test: ``test id, value``. The value is a latency in
milliseconds (``4.21``), or the path of a benchmark log (relative to the CSV) to read it from,
optionally ``path#name`` for a log that holds several models (benchncnn). Lines starting
with ``#`` are comments; the first other row may be a header (``test,ms``, ``test_id,ms``,
``nodeid,latency_ms``...); a spreadsheet's byte-order mark is ignored. Supported logs:

* TensorRT ``trtexec``: the median of its ``Latency: min = ..., median = X ms`` line (the
  host latency, not the ``H2D``, ``D2H`` or ``End-to-End Host`` lines after it; older
  versions: the first ``median: X ms``, the host latency's);
* TensorFlow Lite ``benchmark_model``: ``Inference (avg): X`` microseconds;
* ncnn ``benchncnn``: ``NAME  min = a  max = b  avg = X`` milliseconds;
* HailoRT ``hailortcli benchmark``: ``Latency (hw) = X ms``.

Every parsing failure is a :class:`MeasuredError` naming the file and line.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

#: trtexec's host latency line: "Latency:", not "H2D Latency:", "D2H Latency:" or
#: "End-to-End Host Latency:", which follow it
_TRTEXEC = re.compile(r"(?<!H2D )(?<!D2H )(?<!Host )\bLatency:.*?median\s*=\s*([0-9.eE+-]+)\s*ms")
_TRTEXEC_OLD = re.compile(r"\bmedian:\s*([0-9.eE+-]+)\s*ms")
_TFLITE = re.compile(r"Inference \(avg\):\s*([0-9.eE+-]+)")
_NCNN = re.compile(r"^\s*(\S+)\s+min\s*=\s*[0-9.]+\s+max\s*=\s*[0-9.]+\s+avg\s*=\s*([0-9.]+)")
_HAILO = re.compile(r"Latency \(hw\)\s*=\s*([0-9.eE+-]+)\s*ms")


class MeasuredError(ValueError):
    """A measured file or benchmark log cannot be read; the message names it."""


def latency_from_log(text: str, where: str, name: str | None = None) -> float:
    """Milliseconds of one inference from a benchmark log's text (see the module docstring);
    ``name`` picks a model in a benchncnn log."""
    if name is not None:
        for line in text.splitlines():
            m = _NCNN.match(line)
            if m and m.group(1) == name:
                return _ms(m.group(2), where)
        raise MeasuredError(f"{where}: no benchncnn line for model {name!r}")
    for pattern, scale in ((_TRTEXEC, 1.0), (_TRTEXEC_OLD, 1.0), (_HAILO, 1.0),
                           (_TFLITE, 1e-3)):
        found = pattern.findall(text)
        if found:  # the first: trtexec's host latency comes before its other medians
            return _ms(found[0], where) * scale
    if any(_NCNN.match(line) for line in text.splitlines()):
        raise MeasuredError(f"{where}: a benchncnn log holds several models; name one as "
                            f"'{where}#MODEL'")
    raise MeasuredError(f"{where}: no latency found (expected a trtexec, benchmark_model, "
                        f"benchncnn or hailortcli log)")


#: Milliseconds no forward on any device takes less than (a nanosecond): a measured time
#: below it is a slip of units, not a latency.
SHORTEST_MS = 1e-6


def _ms(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MeasuredError(f"{where}: {text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise MeasuredError(f"{where}: latency must be a positive number, got {text}")
    if value < SHORTEST_MS:
        raise MeasuredError(f"{where}: latency {text} ms is shorter than any forward can "
                            f"take (under {SHORTEST_MS:g} ms, a nanosecond): a unit slip?")
    return value


#: First cells of a header row, and second cells (any case, spaces or '_' alike).
_HEADER_TESTS = frozenset({"test", "test id", "testid", "nodeid", "node id", "id", "name"})
_HEADER_VALUES = frozenset({"ms", "milliseconds", "latency", "latency ms", "latency (ms)",
                            "time", "time ms", "value", "log", "measured"})


def _header(row: list[str], folder: Path) -> bool:
    """Whether ``row`` (the file's first row that is no comment) is a header: its first cell
    names the test column, or its second names the value column and is no log file beside
    the CSV (a log may be called ``log``)."""
    def word(cell: str) -> str:
        return " ".join(cell.strip().lower().replace("_", " ").split())
    if word(row[0]) in _HEADER_TESTS:
        return True
    return len(row) > 1 and word(row[1]) in _HEADER_VALUES and \
        not (folder / row[1].strip()).exists()


def read_measured(path: Path | str) -> dict[str, float]:
    """``{test id: measured seconds}`` from a measured CSV (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark
    except (OSError, UnicodeDecodeError) as exc:
        raise MeasuredError(f"{path}: cannot be read: {exc}") from None
    out: dict[str, float] = {}
    first = True  # the first row that is no comment may be a header
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        header, first = first and _header(row, path.parent), False
        if header:
            continue
        where = f"{path}:{number}"
        if len(row) != 2:
            raise MeasuredError(f"{where}: expected 'test id, milliseconds or log path', "
                                f"got {len(row)} fields")
        test, value = row[0].strip(), row[1].strip()
        if test in out:
            raise MeasuredError(f"{where}: test {test!r} measured twice")
        try:
            ms = float(value)
        except ValueError:
            log, _, name = value.partition("#")
            log_path = path.parent / log
            try:
                log_text = log_path.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise MeasuredError(f"{where}: cannot read log {log}: "
                                    f"{exc.strerror or exc}") from None
            ms = latency_from_log(log_text, str(log_path), name or None)
        else:
            ms = _ms(value, where)
        out[test] = ms * 1e-3
    if not out:
        raise MeasuredError(f"{path}: no measured rows")
    return out
