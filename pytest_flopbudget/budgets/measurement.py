"""What a budgeted test measured, as plain data.

A :class:`Measurement` is one profiled model priced on the test's device; a
:class:`TestRecord` is one test with its budget, measurements and verdict. Both turn into plain
dicts (exact integers, floats for seconds), which is what xdist workers send to the
controller, what the JSON report holds, and what baselines compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.metrics import METRICS, fields_of
from ..core.paths import under
from ..core.text import close_matches
from ..devices.device import Device
from ..devices.fit import terms
from .limits import Budget, BudgetError, Violation, check, usage

if TYPE_CHECKING:  # a measurement is made from a profile; reading one needs no torch
    from ..counting.profile import ModelProfile
    from ..devices.roofline import Latency

#: Schema of the ``--flop-json`` report document.
REPORT_SCHEMA = "pytest-flopbudget/1"


def layer_rows(prof: ModelProfile, lat: Latency) -> list[dict[str, Any]]:
    """Per-layer rows (own work) with their roofline figures, in execution order."""
    rows = []
    for row, timing in zip(prof.layers, lat.layers, strict=True):
        rows.append({
            "name": row.name,
            "kind": row.kind,
            "calls": row.calls,
            "input_shapes": [list(s) for s in row.input_shapes],
            "output_shapes": [list(s) for s in row.output_shapes],
            "flops": row.flops,
            "macs": row.macs,
            "params": row.params,
            "bytes_read": row.bytes_read,
            "bytes_written": row.bytes_written,
            "bytes": row.bytes,
            "intensity": timing.intensity,
            "bound": timing.bound,
            "seconds": timing.seconds,
            "share": timing.share,
            "unsupported": dict(row.unsupported),
        })
    return rows


def module_values(prof: ModelProfile, lat: Latency, path: str) -> dict[str, float]:
    """The metrics of one module with all its children, in base units: FLOPs, MACs and
    parameter elements (counts), weight and access bytes at the profile's dtype, latency in
    seconds. Peak activation is not among them: it belongs to the whole forward."""
    row = prof.layer(path)
    return {
        "flops": row.flops,
        "macs": row.macs,
        "params": row.params,
        "weight": prof.layout.subtree_weight_bytes(path, prof.dtype),
        "access": row.bytes,
        "latency": lat.layer(path).seconds,
    }


def unseen_text(hidden: dict[str, str]) -> str:
    """Why parameter limits cannot be checked: the weights not seen, by module ("" when
    every weight was seen)."""
    if not hidden:
        return ""
    where = "; ".join(f"{path or '(model)'}: {why}" for path, why in hidden.items())
    return f"the weights of {len(hidden)} module(s) cannot be seen ({where})"


def unknown_module(prof: ModelProfile, path: str, where: str) -> BudgetError:
    """The error for a ``modules`` path that is not a module of the profiled model: it names
    where the path was written and lists the closest module paths."""
    paths = [p for p in prof.layout.kinds if p]
    close = close_matches(path, paths)
    if close:
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?"
    else:
        top = [p for p in paths if "." not in p]
        hint = f"; its top-level modules: {', '.join(top) or '(none)'}"
    return BudgetError(f"{where}: modules: no module {path!r} in {prof.model}{hint}")


@dataclass
class Measurement:
    """One model profiled in a test and priced on its device at its dtype."""

    name: str
    device: str
    dtype: str
    traced: str
    fallback_reason: str
    values: dict[str, float]  # metric -> value in base units (FLOPs, bytes, seconds)
    unsupported: dict[str, int]
    layers: list[dict[str, Any]]
    violations: list[Violation] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: per-module limits' figures: ``{path: {"kind", "values", "usage"}}``
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: modules whose weights the plugin cannot see: ``{path: why}``
    hidden_weights: dict[str, str] = field(default_factory=dict)
    #: the prediction's fit terms (``devices.fit.Term.to_list()``, one per operator, kind,
    #: class and the operator eager PyTorch runs it as): what ``python -m pytest_flopbudget
    #: fit`` fits a device's figures to
    terms: list[list[Any]] = field(default_factory=list)

    @classmethod
    def of(cls, name: str, prof: ModelProfile, device: Device, budget: Budget) -> Measurement:
        """Price ``prof`` on ``device`` and check it against ``budget``, at the profile's own
        dtype, else the budget's (``dtype=`` of the marker or config), else the device's
        default. Raises :class:`BudgetError` when a per-module limit names a path the model
        does not have."""
        priced = prof.at_dtype(prof.dtype or budget.dtype or device.default_dtype)
        lat = priced.latency(device)  # priced's layer rows serve both
        values: dict[str, float] = {
            "flops": priced.flops,
            "macs": priced.macs,
            "params": priced.params,
            "weight": priced.weight_bytes,
            "access": priced.bytes,
            "activation": priced.peak_activation_bytes,
            "latency": lat.seconds,
        }
        hidden = prof.hidden_weights
        violations = check(values, budget.limits, unseen=unseen_text(hidden))
        modules: dict[str, dict[str, Any]] = {}
        for path, limits in budget.modules.items():
            try:
                figures = module_values(priced, lat, path)
            except KeyError:
                raise unknown_module(prof, path, budget.module_origin(path)) from None
            inside = {p: why for p, why in hidden.items() if under(p, path)}
            violations.extend(check(figures, limits, module=path,
                                    unseen=unseen_text(inside)))
            modules[path] = {"kind": priced.layout.kinds[path], "values": figures,
                             "usage": usage(figures, limits)}
        return cls(
            name=name,
            device=device.name,
            dtype=lat.dtype,
            traced=prof.traced,
            fallback_reason=prof.fallback_reason,
            values=values,
            unsupported=dict(prof.unsupported),
            layers=layer_rows(priced, lat),
            violations=violations,
            usage=usage(values, budget.limits),
            modules=modules,
            hidden_weights=hidden,
            terms=[t.to_list() for t in terms(lat)],
        )

    @property
    def intensity(self) -> float:
        """FLOP per byte of traffic."""
        return self.values["flops"] / self.values["access"] if self.values["access"] else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "device": self.device,
            "dtype": self.dtype,
            "traced": self.traced,
            "fallback_reason": self.fallback_reason,
            **fields_of(self.values),
            "intensity": self.intensity,
            "unsupported": dict(self.unsupported),
            "violations": [v.to_dict() for v in self.violations],
            "usage": dict(self.usage),
            "layers": self.layers,
            **({"modules": {path: module_dict(m) for path, m in self.modules.items()}}
               if self.modules else {}),
            **({"hidden_weights": dict(self.hidden_weights)} if self.hidden_weights else {}),
            "terms": self.terms,
            **self.extra,
        }


def module_dict(module: dict[str, Any]) -> dict[str, Any]:
    """A module's figures as the JSON report holds them: its class, each metric under its
    field name (exact counts as integers) and the fraction of each of its limits used."""
    values = module["values"]
    return {"kind": module["kind"],
            **{METRICS[n].field: int(v) if METRICS[n].exact else v for n, v in values.items()},
            "usage": dict(module["usage"])}


@dataclass
class TestRecord:
    """One budgeted test: its budget, what it measured and the verdict."""

    nodeid: str
    budget: Budget | None
    measurements: list[Measurement] = field(default_factory=list)
    outcome: str = "passed"  # passed, failed (over budget or the test failed), skipped, error
    error: str = ""  # a budget/config/trace error message, or why the test failed
    extra: dict[str, Any] = field(default_factory=dict)  # figures added by features

    @property
    def violations(self) -> list[tuple[Measurement, Violation]]:
        return [(m, v) for m in self.measurements for v in m.violations]

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "error": self.error,
            "budget": self.budget.to_dict() if self.budget else None,
            "measurements": [m.to_dict() for m in self.measurements],
            **self.extra,
        }


def over_budget(record: dict[str, Any]) -> bool:
    """True when a measurement of the test (a ``TestRecord.to_dict()``) broke a limit."""
    return any(m["violations"] for m in record["measurements"])


def outcome_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """How many budgeted tests, profiles, tests over budget, failed, skipped and errored."""
    outcomes = [r["outcome"] for r in records]
    return {
        "tests": len(records),
        "profiles": sum(len(r["measurements"]) for r in records),
        "over_budget": sum(1 for r in records if over_budget(r)),
        "failed": outcomes.count("failed"),
        "skipped": outcomes.count("skipped"),
        "errors": outcomes.count("error"),
    }
