"""Baseline output that scales (issue 18): only what changed, Markdown under GitHub's comment
limit for any suite, filtered saves that merge, and a comparison that says when it has no
growth limit.

Figures: ``nn.Linear(10 + n, 10 + n + g)`` on one row of ``10 + n`` inputs does
``(10 + n) * (10 + n + g)`` MACs and holds ``(10 + n + 1) * (10 + n + g)`` parameters.
"""

from __future__ import annotations

import json

import pytest

from pytest_flopbudget.ci.comparison import RunComparison
from pytest_flopbudget.reporting.markdown import GITHUB_COMMENT_LIMIT, MARKDOWN_LIMIT, markdown

MANY = """
import pytest, torch
from torch import nn

GROW = {grow}

@pytest.mark.parametrize("n", range(200))
def test_model(flop_budget, n):
    flop_budget(nn.Linear(10 + n, 10 + n + GROW), torch.randn(1, 10 + n))
"""


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch):
    """In-process pytester runs see our environment; never write to a real CI summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def section(result) -> list[str]:
    """The lines of the "flop budget baseline" summary section."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "= flop budget baseline =" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("====")),
               len(lines))
    return lines[start + 1:end]


def test_markdown_of_200_parametrized_tests_stays_under_the_comment_limit(pytester, tmp_path):
    base, md = tmp_path / "base.json", tmp_path / "flop.md"
    pytester.makepyfile(test_many=MANY.format(grow=0))
    pytester.runpytest(f"--flop-save-baseline={base}").assert_outcomes(passed=200)

    # unchanged: one line instead of 200 x 7 table rows (124,584 characters before)
    result = pytester.runpytest(f"--flop-baseline={base}", "--flop-max-growth=5%",
                                f"--flop-markdown={md}")
    result.assert_outcomes(passed=200)
    assert md.read_text() == (f"### flop budget: compared with `{base}`\n\n"
                              f"0 regressed, 200 within limits, 0 new, 0 missing\n\n"
                              f"200 tests unchanged\n")
    assert section(result) == [
        f"compared with {base}: 0 regressed, 200 within limits, 0 new, 0 missing",
        "200 tests unchanged"]

    # every model one output wider: all 200 change; test_model[n] grows by 1 / (10 + n),
    # over 5% for n = 0..9 (10 regressed: 1/19 = 5.3%, 1/20 = 5.0% is not over)
    pytester.makepyfile(test_many=MANY.format(grow=1))
    result = pytester.runpytest(f"--flop-baseline={base}", "--flop-max-growth=5%",
                                f"--flop-markdown={md}", "-q")
    result.assert_outcomes(passed=190, failed=10)
    # -q: the terminal shows the regressed tests only
    lines = section(result)
    assert lines[0] == f"compared with {base}: 10 regressed, 190 within limits, 0 new, 0 missing"
    assert [line for line in lines if not line.startswith(" ")] == [
        lines[0], *(f"test_many.py::test_model[{n}]: Linear: REGRESSED" for n in range(10))]
    text = md.read_text()
    assert len(text) <= MARKDOWN_LIMIT < GITHUB_COMMENT_LIMIT == 65_536
    assert text.startswith(f"### flop budget: compared with `{base}`\n\n"
                           f"10 regressed, 190 within limits, 0 new, 0 missing\n\n"
                           f"#### Regressed\n\n| test | model | metric |")
    # every regressed test and its grown layer made it; the changed ones are cut short
    # with a count and where to read the rest
    for n in range(10):
        assert f"| `test_many.py::test_model[{n}]` | Linear | flops |" in text
        assert f"`test_many.py::test_model[{n}]` Linear, by flops:" in text
    footer = [line for line in text.splitlines() if line.startswith("... and ")]
    assert len(footer) == 1
    assert footer[0].endswith(" more changed tests: see the full report (the --flop-json "
                              "or --flop-html artifact)")
    left_out = int(footer[0].split()[2])
    shown = {line.split("`")[1] for line in text.splitlines()
             if line.startswith("| `test_many.py::")}
    assert len(shown) + left_out == 200


def _run(tests: list[tuple[str, dict]], missing: list[str] = ()) -> RunComparison:
    return RunComparison("b.json", tests, list(missing))


def _changed(n: int) -> tuple[str, dict]:
    row = {"metric": "flops", "old": 100, "new": 100 + n, "limit": None, "where": None,
           "over": False}
    model = {"name": "M", "status": "ok", "checked": True, "metrics": [row]}
    return f"t.py::test_{n:03d}", {"status": "ok", "models": [model]}


def test_markdown_keeps_whole_entries_and_counts_the_rest():
    # 20 changed tests (1 row each: "| `t.py::test_001` | M | flops | 100 | 101 | +1.0% | - |
    # - |", 58 characters) under a limit that holds the head and a few of them
    run = _run([_changed(n) for n in range(1, 21)], missing=["t.py::test_gone"])
    text = markdown(run, limit=1400)
    assert len(text) <= 1400
    lines = text.splitlines()
    assert lines[:10] == [
        "### flop budget: compared with `b.json`",
        "",
        "0 regressed, 20 within limits, 0 new, 1 missing",
        "",
        "no growth limit set (--flop-max-growth, the flop_max_growth ini option, "
        "[tool.flopbudget] max_growth or the marker's max_growth=): changes are reported, "
        "none fails a test",
        "",
        "#### Changed",
        "",
        "| test | model | metric | baseline | this run | change | max growth | verdict |",
        "| :--- | :--- | :--- | ---: | ---: | ---: | ---: | :--- |",
    ]
    rows = [line for line in lines if line.startswith("| `t.py::")]
    assert rows[0] == "| `t.py::test_001` | M | flops | 100 | 101 | +1.0% | - | - |"
    assert 0 < len(rows) < 20
    assert f"... and {20 - len(rows)} more changed tests: see the full report (the " \
           "--flop-json or --flop-html artifact)" in lines
    # sections fill in order: the missing test comes after the changed ones, which used
    # the room up, so it is counted too
    assert lines[-3:] == ["#### Missing (in the baseline, not profiled in this run)", "",
                          "... and 1 more missing test: see the full report (the "
                          "--flop-json or --flop-html artifact)"]
    # with room for everything, nothing is cut
    assert "more changed tests" not in markdown(run)


def test_markdown_never_passes_its_limit_whatever_the_head():
    run = RunComparison("x" * 70_000, [], [])
    text = markdown(run)
    assert len(text) <= MARKDOWN_LIMIT
    assert text.endswith("... cut: see the full report (the --flop-json or --flop-html "
                         "artifact)\n")


# -- a comparison without a growth limit ----------------------------------------------------

def test_a_comparison_without_a_growth_limit_says_so(pytester, tmp_path):
    base = tmp_path / "b.json"
    pytester.makepyfile(test_nl="""
import torch
from torch import nn

def test_a(flop_budget):
    flop_budget(nn.Linear(10, 10), torch.randn(1, 10))
""")
    pytester.runpytest(f"--flop-save-baseline={base}").assert_outcomes(passed=1)
    assert section(pytester.runpytest(f"--flop-baseline={base}")) == [
        f"compared with {base}: 0 regressed, 1 within limits, 0 new, 0 missing",
        "1 test unchanged",
        "no growth limit set (--flop-max-growth, the flop_max_growth ini option, "
        "[tool.flopbudget] max_growth or the marker's max_growth=): changes are reported, "
        "none fails a test"]
    # a limit from the ini option: the note is gone, and the option is where it came from
    result = pytester.runpytest(f"--flop-baseline={base}", "-o", "flop_max_growth=5%")
    assert section(result) == [
        f"compared with {base}: 0 regressed, 1 within limits, 0 new, 0 missing",
        "1 test unchanged"]


# -- saving in a filtered run merges ---------------------------------------------------------

TWO = """
import pytest, torch
from torch import nn

def test_a(flop_budget):
    flop_budget(nn.Linear(10, {a}), torch.randn(1, 10))
{b}"""

TEST_B = """
def test_b(flop_budget):
    flop_budget(nn.Linear(10, 20), torch.randn(1, 10))
"""


def test_a_filtered_save_keeps_the_other_tests_and_a_removed_test_is_dropped(pytester,
                                                                             tmp_path):
    base = tmp_path / "b.json"
    pytester.makepyfile(test_two=TWO.format(a=10, b=TEST_B))
    pytester.makepyfile(test_other="""
import torch
from torch import nn

def test_c(flop_budget):
    flop_budget(nn.Linear(10, 30), torch.randn(1, 10))
""")
    pytester.runpytest(f"--flop-save-baseline={base}").assert_outcomes(passed=3)

    def macs() -> dict[str, int]:
        tests = json.loads(base.read_text())["tests"]
        return {nodeid: models["Linear"]["macs"] for nodeid, models in tests.items()}

    # 10 x 10 = 100, 10 x 20 = 200, 10 x 30 = 300 MACs
    assert macs() == {"test_other.py::test_c": 300, "test_two.py::test_a": 100,
                      "test_two.py::test_b": 200}

    # test_a grows to 10 x 11 = 110 MACs; a -k run saves it and keeps test_b and test_c
    pytester.makepyfile(test_two=TWO.format(a=11, b=TEST_B))
    result = pytester.runpytest("-k", "test_a", f"--flop-save-baseline={base}")
    result.assert_outcomes(passed=1, deselected=2)
    assert section(result) == [f"baseline saved to {base}: 3 tests, 3 models (2 kept from "
                               f"the file (not profiled in this run))"]
    assert macs() == {"test_other.py::test_c": 300, "test_two.py::test_a": 110,
                      "test_two.py::test_b": 200}

    # test_b is deleted from its file: a run that collects the file (even filtered) drops
    # it; test_c, in a file this run did not collect, stays
    pytester.makepyfile(test_two=TWO.format(a=11, b=""))
    result = pytester.runpytest("test_two.py", "-k", "test_a", f"--flop-save-baseline={base}")
    result.assert_outcomes(passed=1)
    assert section(result) == [
        f"baseline saved to {base}: 2 tests, 2 models (1 kept from the file (not profiled in "
        f"this run); 1 dropped (no longer collected): test_two.py::test_b)"]
    assert macs() == {"test_other.py::test_c": 300, "test_two.py::test_a": 110}

    # a deleted file: its tests are dropped too
    (pytester.path / "test_other.py").unlink()
    pytester.runpytest(f"--flop-save-baseline={base}").assert_outcomes(passed=1)
    assert macs() == {"test_two.py::test_a": 110}


def test_saving_over_a_file_that_is_not_a_baseline_refuses(pytester, tmp_path):
    target = tmp_path / "report.json"
    target.write_text('{"schema": "pytest-flopbudget/1", "tests": []}')
    pytester.makepyfile(test_two=TWO.format(a=10, b=""))
    result = pytester.runpytest(f"--flop-save-baseline={target}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert section(result) == [
        f"baseline NOT saved to {target}: --flop-save-baseline: baseline file {target} is not "
        f"a pytest-flopbudget baseline (it is a --flop-json report; expected \"schema\": "
        f"\"pytest-flopbudget-baseline/1\"); save one with --flop-save-baseline; delete it or "
        f"save elsewhere; the file is left as it was"]
    assert target.read_text() == '{"schema": "pytest-flopbudget/1", "tests": []}'


# -- failures in the Markdown and the step summary ------------------------------------------

def test_tests_over_budget_reach_the_step_summary_with_their_hotspots(pytester, tmp_path,
                                                                     monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_over="""
import pytest, torch
from torch import nn

@pytest.mark.flop_budget(max_mmacs=0.5)
def test_big(flop_budget):
    flop_budget(nn.Linear(1000, 1000), torch.randn(1, 1000))
""")
    pytester.runpytest().assert_outcomes(failed=1)
    # no baseline: the step summary still shows the failure with its table
    lines = summary.read_text().splitlines()
    assert lines[:9] == [
        "### flop budget: no baseline to compare with",
        "",
        "#### Over budget",
        "",
        "`test_over.py::test_big`:",
        "",
        "```text",
        "flop budget exceeded: Linear on cpu (fp32), traced on fake tensors",
        "  max_mmacs: 1 MMACs > 0.5 MMACs (+100%)",
    ]
    assert "    <model>  Linear  1x1000      1  100.0%" in lines[11]
