"""The object the ``flop_budget`` fixture hands to a test."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from ..budgets import scaling
from ..budgets.limits import Budget, BudgetError
from ..budgets.measurement import Measurement, TestRecord
from ..budgets.scaling import Scaling
from ..counting.profile import ModelProfile, check_options, profile
from ..devices.device import Device, DeviceError

if TYPE_CHECKING:
    from torch import nn


class FlopBudget:
    """Profiles models for one test; the test's budget is checked against every profile when
    the test ends.

    ``flop_budget(model, *inputs, **forward_kwargs)`` profiles ``model`` at the budget's dtype
    (else the device's default) and returns the :class:`ModelProfile`; it takes
    :func:`profile`'s options too (``dtype=`` prices this profile at another precision). A
    wrong option, or a device whose figures make the prediction absurd, fails the test with
    one line naming it.
    """

    def __init__(self, record: TestRecord, budget: Budget, device: Device) -> None:
        self.record = record
        self.budget = budget
        self.device = device
        #: set once the test's call is over and its budget was checked: a profile after
        #: that (in a fixture's teardown) could not be checked and fails the teardown
        self.closed = False

    def _check_open(self, model: str) -> None:
        """Fail (the teardown) when the test's call is over: its budget was checked then."""
        if self.closed:
            pytest.fail(f"flop budget: {self.record.nodeid} profiled {model} after its "
                        f"call, in a fixture's teardown: its budget was checked when the "
                        f"call ended, so this profile is not; profile in the test or in a "
                        f"fixture's setup", pytrace=False)

    @property
    def dtype(self) -> str:
        """The deployment precision profiles are priced at."""
        return self.budget.dtype or self.device.default_dtype

    def __call__(self, model: nn.Module, *inputs: Any, dtype: str | None = None,
                 **kwargs: Any) -> ModelProfile:
        self._check_open(type(model).__name__)
        dtype = self.dtype if dtype is None else dtype
        with _one_line(TypeError, ValueError):
            check_options(model, dtype, **kwargs)
        prof = profile(model, *inputs, dtype=dtype, **kwargs)
        self.add(prof)
        return prof

    def scaling(self, model: nn.Module, make_inputs: Callable[[int], Any],
                sizes: Sequence[int], **kwargs: Any) -> Scaling:
        """Profile ``model`` on ``make_inputs(n)`` for every ``n`` in ``sizes`` and fit how
        each metric grows (``value ~ n^order``); the marker's ``max_order`` bounds the orders.
        The largest size is recorded as the test's measurement."""
        self._check_open(type(model).__name__)
        with _one_line(TypeError, ValueError):
            check_options(model, self.dtype, **kwargs)
            scaling.check_sizes(sizes)
            if not callable(make_inputs):
                raise TypeError(f"make_inputs must be a function of the size n, got "
                                f"{make_inputs!r}")
        with _one_line(DeviceError):
            return scaling.run(self, model, make_inputs, sizes, **kwargs)

    def add(self, prof: ModelProfile, name: str | None = None, **extra: Any) -> Measurement:
        """Record an already computed profile (extra figures go into the report as given)."""
        with _one_line(DeviceError):
            return self._add(prof, name, **extra)

    def _add(self, prof: ModelProfile, name: str | None, **extra: Any) -> Measurement:
        self._check_open(prof.model)
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


class InvalidArgument(pytest.fail.Exception, ValueError):  # type: ignore[name-defined]
    """A wrong value given to the fixture: a ``ValueError`` a test can catch, and shown as
    one line (like ``pytest.fail``) when it fails the test."""

    __module__ = "builtins"  # shown as 'InvalidArgument: ...', as pytest shows 'Failed: ...'


class InvalidArgumentType(pytest.fail.Exception, TypeError):  # type: ignore[name-defined]
    """A wrong type of argument given to the fixture: a ``TypeError``, shown as one line."""

    __module__ = "builtins"


@contextmanager
def _one_line(*errors: type[Exception]) -> Iterator[None]:
    """Turn ``errors`` (a wrong option, an absurd device: the user's input, not a bug of
    the model under test) into a test failure of one line, without a traceback into this
    package; a test can still catch them as the ``ValueError`` or ``TypeError`` they are."""
    try:
        yield
    except errors as exc:
        cls = InvalidArgumentType if isinstance(exc, TypeError) else InvalidArgument
        raise cls(f"flop budget: {exc}", False) from None  # (message, pytrace)
