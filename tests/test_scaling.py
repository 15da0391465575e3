"""Complexity budgets: fitted orders of growth, in total and per layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_flopbudget.budgets.limits import BudgetError, check_max_order
from pytest_flopbudget.budgets.scaling import fit_order

TESTS_DIR = Path(__file__).parent


def test_fit_order_recovers_exact_power_laws():
    sizes = [8, 16, 32, 64]
    assert fit_order(sizes, [3 * n**2 for n in sizes]) == pytest.approx(2.0, abs=1e-12)
    assert fit_order(sizes, [5 * n for n in sizes]) == pytest.approx(1.0, abs=1e-12)
    assert fit_order(sizes, [7, 7, 7, 7]) == 0.0
    assert fit_order(sizes, [0, 1, 2, 3]) is None  # a zero has no logarithm


def test_max_order_validation():
    assert check_max_order({"flops": 1, "tolerance": 0.1}, "here") == ({"flops": 1.0}, 0.1)
    with pytest.raises(BudgetError, match="here: max_order has unknown metric 'flop'"):
        check_max_order({"flop": 1}, "here")
    with pytest.raises(BudgetError, match=r"max_order\['flops'\] must be a number >= 0"):
        check_max_order({"flops": -1}, "here")
    with pytest.raises(BudgetError, match="max_order must be a table"):
        check_max_order(1.0, "here")


MODELS = '''
import pytest, torch
from torch import nn


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, padding=1))

    def forward(self, x):
        return self.body(x)


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(80, 32, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


class SelfAttention(nn.Module):
    def __init__(self, d=32):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        scores = torch.softmax(q @ k.transpose(1, 2) / 32**0.5, dim=-1)
        return scores @ v


class Encoder(nn.Module):
    """Frame-wise projection (linear in n) followed by self-attention (quadratic)."""

    def __init__(self):
        super().__init__()
        self.frontend = nn.Linear(80, 32)
        self.attn = SelfAttention()

    def forward(self, x):
        return self.attn(self.frontend(x))
'''


@pytest.fixture
def project(pytester):
    pytester.makeconftest(f"import sys\nsys.path.insert(0, {str(TESTS_DIR)!r})\n")
    pytester.makepyfile(models=MODELS)
    return pytester


def test_known_orders_are_fitted_exactly(project):
    project.makepyfile("""
import pytest, torch
from models import ConvNet, Encoder, Recurrent

def test_conv_vs_image_side(flop_budget):
    fit = flop_budget.scaling(ConvNet().eval(), lambda n: torch.randn(1, 3, n, n),
                              sizes=[16, 32, 64, 128])
    # every conv/relu does work proportional to the feature-map area: exactly n^2
    assert fit.orders["flops"] == pytest.approx(2.0, abs=1e-9)
    assert fit.layers["body.0"]["flops"] == pytest.approx(2.0, abs=1e-9)
    assert fit.orders["params"] == 0.0

def test_lstm_vs_sequence_length(flop_budget):
    fit = flop_budget.scaling(Recurrent(), lambda n: torch.randn(1, n, 80),
                              sizes=[128, 256, 512, 1024])
    assert fit.orders["flops"] == pytest.approx(1.0, abs=1e-9)
    assert fit.layers["lstm"]["macs"] == pytest.approx(1.0, abs=1e-9)

def test_attention_vs_sequence_length(flop_budget):
    fit = flop_budget.scaling(Encoder(), lambda n: torch.randn(1, n, 80),
                              sizes=[128, 256, 512, 1024])
    # q @ k^T and scores @ v run in attn's own forward: n^2; the projections: n
    assert fit.layers["attn"]["macs"] == pytest.approx(2.0, abs=1e-9)
    for proj in ("attn.q", "attn.k", "attn.v", "frontend"):
        assert fit.layers[proj]["macs"] == pytest.approx(1.0, abs=1e-9)
    assert 1.0 < fit.orders["flops"] < 2.0

def test_repeated_sizes_count_once(flop_budget):
    fit = flop_budget.scaling(Recurrent(), lambda n: torch.randn(1, n, 80), sizes=[64, 128, 64])
    assert fit.sizes == [64, 128]
    assert fit.orders["flops"] == pytest.approx(1.0, abs=1e-9)
    assert [m.name for m in flop_budget.record.measurements] == ["Recurrent"]  # the largest

def test_one_distinct_size_cannot_be_fitted(flop_budget):
    with pytest.raises(ValueError, match="at least two different positive integers.*8, 8"):
        flop_budget.scaling(Recurrent(), lambda n: torch.randn(1, n, 80), sizes=[8, 8])
""")
    project.runpytest().assert_outcomes(passed=5)


def test_a_quadratic_layer_breaks_a_linear_budget_and_is_named(project, tmp_path):
    out = tmp_path / "flop.json"
    project.makepyfile("""
import pytest, torch
from models import Encoder, Recurrent

@pytest.mark.flop_budget(max_order={"flops": 1.0, "activation": 1.0})
def test_streaming_encoder_is_linear(flop_budget):
    flop_budget.scaling(Encoder().eval(), lambda n: (torch.randn(1, n, 80),),
                        sizes=[128, 256, 512, 1024, 2048])

@pytest.mark.flop_budget(max_order={"flops": 1.0})
def test_lstm_is_linear(flop_budget):
    flop_budget.scaling(Recurrent(), lambda n: torch.randn(1, n, 80), sizes=[64, 128, 256])

@pytest.mark.flop_budget(max_order={"flops": 1.0})
def test_forgot_to_scale(flop_budget):
    flop_budget(Recurrent(), torch.randn(1, 8, 80))
""")
    result = project.runpytest("--flop-report", f"--flop-json={out}")
    result.assert_outcomes(passed=1, failed=2)
    out_text = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*complexity budget exceeded: Encoder over n = 128, 256, 512, 1024, 2048",
        "*flops ~ n^1.8? > n^1 (max_order flops=1, tolerance 0.05)",
        "*activation ~ n^1.8? > n^1 (max_order activation=1, tolerance 0.05)",
    ])
    section = out_text[out_text.index("= flop budget: complexity ="):]
    culprits = section[section.index("layers with the highest order of flops:"):].splitlines()
    # the attention's own work (its two products and softmax) is the quadratic layer
    assert culprits[1].strip().startswith("attn: flops ~ n^2.00, ")
    assert "of total at n=2048" in culprits[1]
    # the failure itself (what CI's JUnit file keeps) names them too
    failure = out_text[out_text.index("_ test_streaming_encoder_is_linear _"):
                       out_text.index("= flop budget: complexity =")]
    assert "  layers with the highest order of flops:\n    attn: flops ~ n^2.00, " in failure
    assert ("::test_forgot_to_scale has max_order (from @flop_budget on "
            "test_a_quadratic_layer_breaks_a_linear_budget_and_is_named.py::test_forgot_to_scale) "
            "but never called "
            "flop_budget.scaling" in out_text)
    result.stdout.fnmatch_lines(["*= flop budget report: scaling =*",
                                 "*test_lstm_is_linear*Recurrent*64, 128, 256*flops n^1.00*"])
    import json

    tests = {t["nodeid"].split("::")[1]: t for t in json.loads(out.read_text())["tests"]}
    fit = tests["test_lstm_is_linear"]["measurements"][0]["scaling"]
    assert fit["sizes"] == [64, 128, 256]
    # LSTM FLOPs per step: 4*32*(80+32) MACs -> 2*14,336 + 30*32 elementwise = 29,632
    assert fit["values"]["flops"] == [64 * 29_632, 128 * 29_632, 256 * 29_632]


def test_bad_max_order_in_a_marker_is_a_setup_error(project):
    project.makepyfile("""
import pytest

@pytest.mark.flop_budget(max_order={"flop": 1.0})
def test_typo(flop_budget):
    pass
""")
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@flop_budget on *::test_typo: max_order has unknown metric "
                                 "'flop'*"])
