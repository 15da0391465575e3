"""Every operator of the cost tables, run through the tracer as a model would run it.

The per-element table (``PER_ELEMENT``, backward ``BACKWARD_PER_ELEMENT``) states a cost per
element of the operator's result, the reductions table (``PER_INPUT``) a cost per element of
its input; each entry documents its formula (``exp(x - max) / sum``: 5). Here every table
operator, and its in-place form where torch has one, is called on a 2x3x4 tensor (24
elements) with the first argument list it accepts, and its count must be exactly the table
cost times 24: not zero, not listed as unsupported, not doubled by a second output.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pytest_flopbudget import profile
from pytest_flopbudget.counting.ops.backward import BACKWARD_PER_ELEMENT
from pytest_flopbudget.counting.ops.elementwise import PER_ELEMENT
from pytest_flopbudget.counting.ops.reductions import PER_INPUT

SHAPE = (2, 3, 4)
N = 24


def argument_lists() -> list[tuple]:
    """Argument lists in the order tried: fresh tensors each time (in-place ops write them)."""
    g = torch.Generator().manual_seed(0)

    def t() -> torch.Tensor:
        return torch.rand(SHAPE, generator=g) * 0.8 + 0.1  # in (0.1, 0.9): every domain

    x, y, z = t(), t(), t()
    i, j = torch.randint(1, 5, SHAPE, generator=g), torch.randint(1, 5, SHAPE, generator=g)
    mask = t() > 0.5
    return [(x,), (x, y), (x, y, z), (x, 0.5), (x, y, 0.5), (x, 0.5, 0.5), (x, -1),
            (x, -1, False), (x, mask, 0.5), (x, mask, 2.0), (x, y, -1, torch.float32),
            (x, y, z, 1), (x, y, 0.5, 0.5), (x, y, 0.01, False),
            (x, 1.0, 1.0, 1.0, False, y), (x, torch.rand(1, generator=g)), (i,), (i, j),
            (mask,), (mask, mask)]


def first_accepted(op) -> tuple:  # type: ignore[no-untyped-def]
    for args in argument_lists():
        try:
            op(*args)
        except (RuntimeError, TypeError, ValueError, IndexError):
            continue
        return args
    raise AssertionError(f"{op}: no argument list accepted")


def cases(table: dict[str, tuple[int, str]] | dict[str, int]) -> list:
    found = []
    for name, entry in table.items():
        cost = entry[0] if isinstance(entry, tuple) else entry
        for op_name in (name, name + "_"):
            if hasattr(torch.ops.aten, op_name):
                found.append(pytest.param(op_name, cost, id=op_name))
    return found


class Call(nn.Module):
    """Calls one aten operator with the tensors given to forward and fixed other arguments."""

    def __init__(self, op, args: tuple) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.op, self.args = op, args

    def forward(self, *tensors: torch.Tensor):  # type: ignore[no-untyped-def]
        it = iter(tensors)
        return self.op(*(next(it) if isinstance(a, torch.Tensor) else a for a in self.args))


def count(op_name: str) -> tuple[int, int, dict[str, int]]:
    """(FLOPs of the operator's own records, elements of its first result, unsupported)."""
    op = getattr(torch.ops.aten, op_name)
    args = first_accepted(op)
    result = op(*args)
    first = result[0] if isinstance(result, (tuple, list)) else result
    p = profile(Call(op, args), *(a for a in args if isinstance(a, torch.Tensor)))
    own = sum(r.flops for r in p.records if r.op == f"aten.{op_name}")
    return own, first.numel(), dict(p.unsupported)


@pytest.mark.parametrize("op_name,cost", cases(PER_ELEMENT) + cases(BACKWARD_PER_ELEMENT))
def test_every_per_element_operator_costs_its_table_entry(op_name, cost):
    flops, out_elements, unsupported = count(op_name)
    assert unsupported == {}
    assert out_elements == N
    assert flops == cost * N  # cost per element of the result, 24 elements


@pytest.mark.parametrize("op_name,cost", cases(PER_INPUT))
def test_every_reduction_costs_its_table_entry_per_input_element(op_name, cost):
    flops, _, unsupported = count(op_name)
    assert unsupported == {}
    assert flops == cost * N  # cost per element of the 24-element input
