"""The formula registry and its calling convention: every aten call is bound to its
operator's schema, and every formula reads its arguments by schema name.

A formula is registered for operator packets and serves every overload of each. A parameter
it declares without a default must therefore be an argument of every overload (else that
overload's calls would fail at the user's, not here); a parameter with a default must be an
argument of at least one of them (else it is a typo that silently keeps its default).
Overloads the dispatcher has no kernel for (TorchScript's ``add.int``, ``index.str``) never
reach the counting mode and are not checked.
"""

from __future__ import annotations

import inspect
from collections import defaultdict

import pytest
import torch
from reference_models import Fn

from pytest_flopbudget import profile
from pytest_flopbudget.counting import registry
from pytest_flopbudget.counting.registry import bind, formulas, schema_names, unresolved

aten = torch.ops.aten


# the operator libraries torch defines in Python (quantized_decomposed), so that every
# formula is checked below
registry.load_libraries()


def test_every_registered_name_is_an_operator_of_this_torch():
    # a name that matches no operator is remembered, not skipped: none on this torch, and
    # none of a library's operators waits for its library once the libraries are loaded
    assert unresolved() == ()
    assert registry.pending() == ()
    assert "quantized_decomposed.dequantize_per_tensor" in registry.registered_ops()


def test_a_formula_of_a_library_operator_waits_for_its_first_call(monkeypatch):
    # registered before its library is loaded, it is kept by name and resolved when the
    # operator is first met
    packet = torch.ops.quantized_decomposed.dequantize_per_tensor
    formula = registry.formulas()[packet]
    monkeypatch.delitem(registry._FORMULAS, packet)
    monkeypatch.setitem(registry._PENDING, packet._qualified_op_name, formula)
    assert registry.pending() == ("quantized_decomposed.dequantize_per_tensor",)
    assert registry.lookup(packet) is formula
    assert (registry.pending(), registry.formulas()[packet]) == ((), formula)


def dispatched_overloads(packet):  # type: ignore[no-untyped-def]
    for name in packet.overloads():
        op = getattr(packet, name)
        if torch._C._dispatch_has_kernel(op.name()):
            yield op


def formula_cases() -> list:
    packets = defaultdict(list)
    functions = {}
    for packet, formula in formulas().items():
        packets[id(formula.fn)].append(packet)
        functions[id(formula.fn)] = formula.fn
    return [pytest.param(functions[key], ops, id=f"{functions[key].__qualname__}[{ops[0]}]")
            for key, ops in packets.items()]


@pytest.mark.parametrize("fn,packets", formula_cases())
def test_formula_parameters_are_schema_argument_names(fn, packets):
    params = inspect.signature(fn).parameters
    kinds = {p.kind for p in params.values()}
    # everything arrives by name; what a formula does not read is absorbed by **_
    assert inspect.Parameter.VAR_POSITIONAL not in kinds
    assert inspect.Parameter.POSITIONAL_ONLY not in kinds
    assert inspect.Parameter.VAR_KEYWORD in kinds
    named = {n for n, p in params.items() if p.kind != inspect.Parameter.VAR_KEYWORD}
    named.discard("result")  # the operator's output(s), not a schema argument
    required = {n for n in named if params[n].default is inspect.Parameter.empty}
    seen: set[str] = set()
    for packet in packets:
        overloads = list(dispatched_overloads(packet))
        assert overloads, packet
        for op in overloads:
            names = set(schema_names(op))
            assert "result" not in names, op  # would collide with the output
            assert required <= names, (op, sorted(required - names))
            seen |= names
    assert named <= seen, sorted(named - seen)


def test_bind_fills_defaults_and_leaves_out_destinations():
    x, w, z = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3), torch.empty(1, 2, 5, 5)
    assert bind(aten.conv2d.default, (x, w), {}) == {
        "input": x, "weight": w, "bias": None, "stride": [1, 1], "padding": [0, 0],
        "dilation": [1, 1], "groups": 1}
    # add.out(self, other, *, alpha=1, out): ``out`` is where the result goes, not an input
    assert bind(aten.add.out, (x, x), {"out": z}) == {"self": x, "other": x, "alpha": 1}
    # keyword-only arguments by name, positional ones by position
    q = torch.randn(1, 1, 4, 8)
    m = torch.ones(4, 4, dtype=torch.bool)
    assert bind(aten._scaled_dot_product_flash_attention_for_cpu.default, (q, q, q, 0.1),
                {"attn_mask": m}) == {"query": q, "key": q, "value": q, "dropout_p": 0.1,
                                      "is_causal": False, "attn_mask": m, "scale": None}
    with pytest.raises(TypeError):
        bind(aten.relu.default, (x, x), {})


def test_a_failing_formula_lists_its_operator_instead_of_hiding_it(monkeypatch):
    def broken(**_: object) -> None:
        raise ZeroDivisionError("boom")

    packet = aten.mm
    monkeypatch.setitem(registry._FORMULAS, packet,
                        registry.Formula(broken, "matmul", str(packet)))
    p = profile(Fn(torch.mm), torch.randn(3, 4), torch.randn(4, 5))
    assert p.unsupported == {"aten.mm (formula failed: ZeroDivisionError: boom)": 1}
    # no FLOPs; its traffic is still counted: reads 12 + 20 floats, writes 15
    assert (p.flops, p.bytes_read, p.bytes_written) == (0, 4 * 32, 4 * 15)
