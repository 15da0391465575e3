"""Comparing a run with its baseline: per model, per metric, and the layers that grew."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..budgets.growth import Limit, over_limit, percent_text
from ..core.metrics import METRICS, values_of
from .baseline_file import layer_figures


def _layer_growth(old: Mapping[str, Mapping[str, float]], new_rows: Sequence[Mapping[str, Any]],
                  figure: str, n: int) -> list[dict[str, Any]]:
    """The ``n`` layers whose ``figure`` grew most (absolute), by module path."""
    new = layer_figures(new_rows)
    kinds = {row["name"]: row["kind"] for row in new_rows}
    rows = []
    for path in sorted(set(old) | set(new)):
        before = old.get(path, {}).get(figure, 0)
        after = new.get(path, {}).get(figure, 0)
        if after > before:
            rows.append({"name": path, "kind": kinds.get(path, "-"), "old": before,
                         "new": after})
    rows.sort(key=lambda r: r["new"] - r["old"], reverse=True)  # stable: ties by path
    return rows[:n]


def compare_model(measurement: Mapping[str, Any], old: Mapping[str, Any] | None,
                  limits: Mapping[str, Limit] | None, n_layers: int) -> dict[str, Any]:
    """Compare one measurement dict with its baseline entry (``None``: a new model).

    ``limits`` is ``{metric: (growth, where)}``; ``None`` when unknown (the test failed before
    its check), which compares without a verdict. Returns a JSON-able dict.
    """
    result: dict[str, Any] = {"name": measurement["name"], "status": "new"}
    values = values_of(measurement)
    if old is None:
        result["values"] = values
        return result
    rows = []
    for metric in METRICS:
        limit = (limits or {}).get(metric)
        # over its limit, and not by rounding noise (a float that has not changed)
        grew = limit is not None and over_limit(old[metric], values[metric], limit[0]) \
            and differs(metric, old[metric], values[metric])
        rows.append({"metric": metric, "old": old[metric], "new": values[metric],
                     "limit": percent_text(limit[0]) if limit else None,
                     "where": limit[1] if limit else None, "over": grew})
    over = [r["metric"] for r in rows if r["over"]]
    result.update(status="regressed" if over else "ok", metrics=rows, checked=limits is not None)
    if (old["device"], old["dtype"]) != (measurement["device"], measurement["dtype"]):
        result["device_change"] = (f"{old['device']} {old['dtype']} -> "
                                   f"{measurement['device']} {measurement['dtype']}")
    new_paths = set(layer_figures(measurement["layers"]))
    gone, added = sorted(set(old["layers"]) - new_paths), sorted(new_paths - set(old["layers"]))
    if gone or added:
        result["renamed_layers"] = {"gone": gone, "added": added}
    if over:
        figure = METRICS[over[0]].figure.name
        grown = _layer_growth(old["layers"], measurement["layers"], figure, n_layers)
        if grown:  # no layer's figure grew (the total did, by layers' rounding): no table
            result["layers"] = {"metric": over[0], "figure": figure, "rows": grown}
    return result


def compare_test(measurements: Sequence[Mapping[str, Any]],
                 old: Mapping[str, Mapping[str, Any]] | None,
                 limits: Mapping[str, Limit] | None, n_layers: int) -> dict[str, Any]:
    """Compare a test's measurement dicts with its baseline models (``None``: a new test)."""
    known = old is not None
    old = dict(old or {})
    models = []
    pair_renamed = len(measurements) == 1 and len(old) == 1
    for m in measurements:
        name = m["name"] if m["name"] in old or not pair_renamed else next(iter(old))
        result = compare_model(m, old.pop(name, None), limits, n_layers)
        if name != m["name"]:
            result["was"] = name
        models.append(result)
    models.extend({"name": name, "status": "missing"} for name in sorted(old))
    statuses = {m["status"] for m in models}
    status = "new" if not known else "regressed" if "regressed" in statuses else "ok"
    return {"status": status, "models": models}


#: Notes that make a compared model worth showing even when no figure changed.
NOTES = ("was", "device_change", "renamed_layers")

#: Relative difference below which a float metric (latency, a sum of per-kernel seconds
#: whose order of summation may vary between runs) counts as unchanged: rounding noise.
FLOAT_NOISE = 1e-9


def differs(metric: str, old: float, new: float) -> bool:
    """True when ``new`` differs from ``old``: exactly for counts and bytes, beyond
    :data:`FLOAT_NOISE` for latency."""
    if METRICS[metric].exact:
        return bool(old != new)
    return abs(new - old) > FLOAT_NOISE * max(abs(old), abs(new))


def changed(row: Mapping[str, Any]) -> bool:
    """True when a compared metric row's value differs from the baseline's
    (:func:`differs`); a row over its limit always."""
    return bool(row["over"]) or differs(row["metric"], row["old"], row["new"])


def unchanged_model(model: Mapping[str, Any]) -> bool:
    """True for a compared model whose every figure equals the baseline's, with nothing to
    note (same class, device and layer paths)."""
    return (model["status"] == "ok" and not any(changed(r) for r in model["metrics"])
            and not any(key in model for key in NOTES))


def unchanged(result: Mapping[str, Any]) -> bool:
    """True for a compared test whose every model is unchanged."""
    return result["status"] == "ok" and all(unchanged_model(m) for m in result["models"])


def unchecked(result: Mapping[str, Any]) -> bool:
    """True for a compared test whose limits were never checked: it failed (or was skipped)
    before the end of its call, where its growth is checked."""
    return result["status"] in ("ok", "regressed") and any(
        m.get("checked") is False for m in result.get("models", ()))


def unlimited(result: Mapping[str, Any]) -> bool:
    """True for a compared test none of whose metrics had a growth limit."""
    return result["status"] in ("ok", "regressed") and not any(
        r["limit"] for m in result["models"] for r in m.get("metrics", ()))


@dataclass
class RunComparison:
    """The comparison of a whole run: per-test results (sorted by node id) and the baseline
    tests that profiled nothing in this run."""

    source: str
    tests: list[tuple[str, dict[str, Any]]]
    missing: list[str]

    @property
    def unchanged(self) -> list[str]:
        """Node ids of the compared tests whose every figure equals the baseline's."""
        return [nodeid for nodeid, result in self.tests if unchanged(result)]

    def limits_note(self) -> str:
        """``""``, or the line saying that (some) compared tests had no growth limit, so
        their changes are only reported."""
        compared = [r for _, r in self.tests
                    if r["status"] in ("ok", "regressed") and not unchecked(r)]
        without = sum(1 for r in compared if unlimited(r))
        if not without:
            return ""
        how = ("--flop-max-growth, the flop_max_growth ini option, [tool.flopbudget] "
               "max_growth or the marker's max_growth=")
        if without == len(compared):
            return f"no growth limit set ({how}): changes are reported, none fails a test"
        return (f"{without} of {len(compared)} compared tests have no growth limit ({how}): "
                f"their changes are reported, none fails")

    def count(self, status: str) -> int:
        """Tests of a status: ``"missing"``, ``"new"``, ``"regressed"``, ``"ok"`` (checked
        and within its limits) or ``"unchecked"`` (failed before its growth was checked)."""
        if status == "missing":
            return len(self.missing)
        if status == "unchecked":
            return sum(1 for _, t in self.tests if unchecked(t))
        return sum(1 for _, t in self.tests if t["status"] == status and not unchecked(t))

    def headline(self) -> str:
        """``"1 regressed, 2 within limits, 1 new, 0 missing"``, and how many compared tests
        failed before their growth was checked, when any did."""
        failed = self.count("unchecked")
        return (f"{self.count('regressed')} regressed, {self.count('ok')} within limits, "
                + (f"{failed} not checked (failed or skipped first), " if failed else "")
                + f"{self.count('new')} new, {self.count('missing')} missing")
