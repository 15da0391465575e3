"""What a budgeted test measured, as plain data.

A :class:`Measurement` is one profiled model priced on the test's device; a
:class:`TestRecord` is one test with its budget, measurements and verdict. Both turn into plain
dicts (exact integers, floats for seconds), which is what xdist workers send to the
controller, what the JSON report holds, and what baselines compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.metrics import fields_of
from ..devices.device import Device
from .limits import Budget, Violation, check, usage

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

    @classmethod
    def of(cls, name: str, prof: ModelProfile, device: Device, budget: Budget) -> Measurement:
        priced = prof.at_dtype(prof.dtype or device.default_dtype)
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
        return cls(
            name=name,
            device=device.name,
            dtype=lat.dtype,
            traced=prof.traced,
            fallback_reason=prof.fallback_reason,
            values=values,
            unsupported=dict(prof.unsupported),
            layers=layer_rows(priced, lat),
            violations=check(values, budget.limits),
            usage=usage(values, budget.limits),
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
            **self.extra,
        }


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
