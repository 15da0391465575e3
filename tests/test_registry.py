"""The formula registry: every name it is given is an operator of this torch."""

from __future__ import annotations

from pytest_flopbudget.counting import tracer  # noqa: F401  (registers the formulas)
from pytest_flopbudget.counting.registry import unresolved


def test_every_registered_name_is_an_operator_of_this_torch():
    # a name that matches no operator is remembered, not skipped: none on this torch
    assert unresolved() == ()
