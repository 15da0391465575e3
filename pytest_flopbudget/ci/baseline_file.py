"""Baseline files: what a run saves (``--flop-save-baseline``) and how one is read back.

The document (JSON, ``sort_keys``, no timestamps, exact integers; latency in seconds) is
described in :mod:`pytest_flopbudget.baseline`. Reading validates every entry a comparison
uses, so a truncated, foreign or hand-edited file is one :class:`BaselineError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..budgets.measurement import REPORT_SCHEMA  # a --flop-json report: a common wrong file
from ..core.metrics import FIGURES, NAMES, values_of
from ..core.numbers import finite, shown

SCHEMA = "pytest-flopbudget-baseline/1"

class BaselineError(ValueError):
    """A baseline file is missing, corrupt or foreign; the message names it."""


def layer_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """``{module path: {figure: value}}`` from measurement layer rows (zero rows dropped)."""
    layers: dict[str, dict[str, float]] = {}
    for row in rows:
        figures = layers.setdefault(row["name"], dict.fromkeys(FIGURES, 0))
        for figure in FIGURES.values():
            figures[figure.name] += row[figure.key]
    return {name: figs for name, figs in layers.items() if any(figs.values())}


def profile_entry(measurement: Mapping[str, Any]) -> dict[str, Any]:
    """One model's baseline entry from a measurement dict (``Measurement.to_dict``)."""
    return {"device": measurement["device"], "dtype": measurement["dtype"],
            **values_of(measurement), "layers": layer_figures(measurement["layers"])}


def baseline_document(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The baseline of a run: every test that profiled at least one model."""
    tests = {r["nodeid"]: {m["name"]: profile_entry(m) for m in r["measurements"]}
             for r in records if r["measurements"]}
    return {"schema": SCHEMA, "tests": tests}


def merge(old: Mapping[str, Any], document: Mapping[str, Any],
          gone: Callable[[str], bool]) -> tuple[dict[str, Any], list[str], list[str]]:
    """Lay a run's baseline ``document`` over the ``old`` file's tests: a test profiled in
    this run replaces its entry; any other keeps it unless ``gone(node id)`` (the test no
    longer exists). Returns ``(document, kept node ids, dropped node ids)``."""
    tests = dict(document["tests"])
    kept, dropped = [], []
    for nodeid in sorted(old):
        if nodeid in tests:
            continue
        if gone(nodeid):
            dropped.append(nodeid)
        else:
            tests[nodeid] = old[nodeid]
            kept.append(nodeid)
    return {"schema": SCHEMA, "tests": tests}, kept, dropped


def dumps(document: Mapping[str, Any]) -> str:
    """Deterministic JSON text: sorted keys, one value per line."""
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def _number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and finite(value) and value >= 0)


def _check_entry(entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise BaselineError(f"{where} must be an object of metrics")
    for metric in NAMES:
        if not _number(entry.get(metric)):
            raise BaselineError(f"{where}: {metric!r} must be a non-negative number, "
                                f"got {shown(entry.get(metric))}")
    for key in ("device", "dtype"):
        if not isinstance(entry.get(key), str):
            raise BaselineError(f"{where}: {key!r} must be a name (a string), "
                                f"got {entry.get(key)!r}")
    layers = entry.get("layers")
    if not isinstance(layers, dict):
        raise BaselineError(f"{where}: 'layers' must be an object, got {layers!r}")
    for path, figures in layers.items():
        if not isinstance(figures, dict) or not all(_number(v) for v in figures.values()):
            raise BaselineError(f"{where}: layer {path!r} must map figures to numbers")


def parse_baseline(text: str, name: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``{node id: {model: entry}}`` from a baseline file's text; ``name`` is used in errors."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{name} is not valid JSON (truncated or corrupt?): {exc}") from None
    except RecursionError:
        raise BaselineError(f"{name} is not valid JSON (nested too deeply)") from None
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema != SCHEMA:
        if schema == REPORT_SCHEMA:
            why = "it is a --flop-json report"
        elif isinstance(schema, str) and schema.startswith(SCHEMA.split("/")[0] + "/"):
            why = f"it has schema {schema!r}, which this version does not read"
        else:
            why = (f"its schema is {schema!r}" if schema is not None
                   else "it has no \"schema\" key")
        raise BaselineError(f"{name} is not a pytest-flopbudget baseline ({why}; expected "
                            f"\"schema\": \"{SCHEMA}\"); save one with --flop-save-baseline")
    tests = doc.get("tests")
    if not isinstance(tests, dict):
        raise BaselineError(f"{name}: 'tests' must be an object of node ids")
    for nodeid, models in tests.items():
        if not isinstance(models, dict):
            raise BaselineError(f"{name}: tests[{nodeid!r}] must be an object of models")
        for model, entry in models.items():
            _check_entry(entry, f"{name}: tests[{nodeid!r}][{model!r}]")
    return tests


@dataclass
class Baseline:
    """A loaded baseline: ``tests`` as in the file, ``shown`` the path as the user wrote it."""

    shown: str
    tests: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, shown: str, origin: str) -> Baseline:
        """Read and validate; raises :class:`BaselineError` naming ``origin`` and the file."""
        name = f"{origin}: baseline file {shown}"
        if shown != str(path):
            name += f" ({path})"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BaselineError(f"{name} does not exist; save one with "
                                f"--flop-save-baseline={shown}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BaselineError(f"{name} cannot be read: {exc}") from None
        return cls(shown, parse_baseline(text, name))
