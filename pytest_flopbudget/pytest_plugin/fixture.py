"""The object the ``flop_budget`` fixture hands to a test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from ..budgets import scaling
from ..budgets.limits import Budget, BudgetError
from ..budgets.measurement import Measurement, TestRecord
from ..budgets.scaling import Scaling
from ..counting.profile import ModelProfile, profile
from ..devices.device import Device

if TYPE_CHECKING:
    from torch import nn


class FlopBudget:
    """Profiles models for one test; the test's budget is checked against every profile when
    the test ends.

    ``flop_budget(model, *inputs, **forward_kwargs)`` profiles ``model`` at the budget's dtype
    (else the device's default) and returns the :class:`ModelProfile`.
    """

    def __init__(self, record: TestRecord, budget: Budget, device: Device) -> None:
        self.record = record
        self.budget = budget
        self.device = device

    @property
    def dtype(self) -> str:
        """The deployment precision profiles are priced at."""
        return self.budget.dtype or self.device.default_dtype

    def __call__(self, model: nn.Module, *inputs: Any, **kwargs: Any) -> ModelProfile:
        prof = profile(model, *inputs, dtype=self.dtype, **kwargs)
        self.add(prof)
        return prof

    def scaling(self, model: nn.Module, make_inputs: Callable[[int], Any],
                sizes: Sequence[int], **kwargs: Any) -> Scaling:
        """Profile ``model`` on ``make_inputs(n)`` for every ``n`` in ``sizes`` and fit how
        each metric grows (``value ~ n^order``); the marker's ``max_order`` bounds the orders.
        The largest size is recorded as the test's measurement."""
        return scaling.run(self, model, make_inputs, sizes, **kwargs)

    def add(self, prof: ModelProfile, name: str | None = None, **extra: Any) -> Measurement:
        """Record an already computed profile (extra figures go into the report as given)."""
        name = name or prof.model
        taken = {m.name for m in self.record.measurements}
        if name in taken:
            n = 2
            while f"{name}#{n}" in taken:
                n += 1
            name = f"{name}#{n}"
        try:
            measurement = Measurement.of(name, prof, self.device, self.budget)
        except BudgetError as exc:  # a per-module limit on a path the model does not have
            error = str(exc)
        else:
            error = ""
        if error:  # failed outside the except block: one message, no chained traceback
            pytest.fail(f"flop budget: {error}", pytrace=False)
        if prof.train:
            measurement.extra["phases"] = prof.phase_totals()
        measurement.extra.update(extra)
        self.record.measurements.append(measurement)
        return measurement
