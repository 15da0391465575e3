"""Baselines, growth limits and the pull-request report (``pytest_plugin.baseline_gate``).

Exact figures used below (fp32 on the default ``cpu`` device, one input row):

* ``nn.Linear(1000, 1000)``: 1,000,000 MACs; 2,000,000 + 1,000 (bias) = 2,001,000 FLOPs;
  1,001,000 params = 4,004,000 weight bytes; access = reads x 4,000 + W 4,000,000 + b 4,000,
  writes 4,000 = 4,012,000 bytes; peak activation = its 1,000-float output = 4,000 bytes.
* ``Net(width)`` = ``features`` Linear(1000, 1000) then ``classifier`` Linear(1000, width).
  width 1000: 4,002,000 FLOPs, 2,000,000 MACs, 2,002,000 params.
  width 2000 (the classifier doubled): classifier 2,000,000 MACs, 4,002,000 FLOPs, 2,002,000
  params; total 6,003,000 FLOPs (+50.0%), 3,000,000 MACs, 3,003,000 params (+50.0%).
"""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from fractions import Fraction

import pytest

from pytest_flopbudget.budgets.growth import (
    GROWTH_METRICS,
    GrowthError,
    growth_option,
    over_limit,
    parse_growth,
    percent_text,
    resolve_growth,
)
from pytest_flopbudget.ci.baseline_file import SCHEMA, BaselineError, parse_baseline
from pytest_flopbudget.reporting.baseline_text import change_text

ALL = ("flops", "macs", "params", "weight", "access", "activation", "latency")

MODELS = """
import pytest, torch
from torch import nn

WIDTH = {width}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Linear(1000, 1000)
        self.{head} = nn.Linear(1000, WIDTH)

    def forward(self, x):
        return self.{head}(self.features(x))

def x():
    return torch.randn(1, 1000)
"""


def models(width: int = 1000, head: str = "classifier") -> str:
    return MODELS.format(width=width, head=head)


NET_TEST = """
def test_net(flop_budget):
    flop_budget(Net().eval(), x())
"""


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch):
    """In-process pytester runs see our environment; never write to a real CI summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def section(result) -> str:
    """The "flop budget baseline" summary section, up to the next separator line."""
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "= flop budget baseline =" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("====")),
               len(lines))
    return "\n".join(lines[start:end]) + "\n"


def save(pytester, path, *args):
    result = pytester.runpytest(f"--flop-save-baseline={path}", *args)
    assert f"baseline saved to {path}" in result.stdout.str()
    return result


# -- growth specs ------------------------------------------------------------------------
@pytest.mark.parametrize("spec,expected", [
    ("5%", dict.fromkeys(ALL, Fraction(5, 100))),
    ("flops:2%,latency:10%", {"flops": Fraction(2, 100), "latency": Fraction(10, 100)}),
    (" flops : 2.5% ", {"flops": Fraction(25, 1000)}),
    ("latency:10%,5%", {**dict.fromkeys(ALL, Fraction(5, 100)), "latency": Fraction(1, 10)}),
    ("0%", dict.fromkeys(ALL, Fraction(0))),
    (".5%", dict.fromkeys(ALL, Fraction(1, 200))),
])
def test_parse_growth(spec, expected):
    assert parse_growth(spec) == expected


@pytest.mark.parametrize("spec,message", [
    ("5", "growth limit needs a '%' sign, got '5' (write 5%)"),
    ("-5%", "growth limit must not be negative, got '-5%'"),
    ("flop:2%", "unknown metric 'flop' (did you mean 'flops'?); known: flops, macs, params, "
                "weight, access, activation, latency"),
    ("flops:2%,flops:3%", "metric 'flops' given twice in 'flops:2%,flops:3%'"),
    ("5%,6%", "two limits for every metric in '5%,6%'"),
    ("flops:2%,", "empty entry in 'flops:2%,'"),
    ("", "empty growth spec"),
    ("five%", "expected a percentage such as '5%', got 'five%'"),
    ("nan%", "expected a percentage such as '5%', got 'nan%'"),
    (0.05, "expected a string, e.g. '5%' or 'flops:2%,latency:10%', got 0.05"),
])
def test_parse_growth_rejects(spec, message):
    with pytest.raises(GrowthError) as info:
        parse_growth(spec)
    assert message in str(info.value)


def test_growth_option_is_an_argparse_type():
    assert growth_option("macs:1%") == {"macs": Fraction(1, 100)}
    with pytest.raises(argparse.ArgumentTypeError, match="unknown metric 'mac'"):
        growth_option("mac:1%")


def test_resolve_growth_lays_specific_over_general_per_metric():
    limits = resolve_growth([("config", "5%"), ("--flop-max-growth", None),
                             ("marker", "latency:10%")])
    assert limits["flops"] == (Fraction(1, 20), "config")
    assert limits["latency"] == (Fraction(1, 10), "marker")
    with pytest.raises(GrowthError, match=r"^marker: max_growth: growth limit needs a '%'"):
        resolve_growth([("config", "5%"), ("marker", "7")])


def test_growth_is_compared_exactly():
    # 5% of 2,000,000 is 100,000: 2,100,000 is allowed, 2,100,001 is not
    assert not over_limit(2_000_000, 2_100_000, Fraction(5, 100))
    assert over_limit(2_000_000, 2_100_001, Fraction(5, 100))
    # float seconds compare as the exact values they hold: equal passes 0%, one ulp more fails
    assert not over_limit(5.026e-06, 5.026e-06, Fraction(0))
    assert over_limit(5.026e-06, 5.026000000000001e-06, Fraction(0))
    assert over_limit(0, 1, Fraction(1000, 100))  # growth from nothing is over any limit
    assert (percent_text(Fraction(25, 1000)), percent_text(Fraction(1, 20))) == ("2.5%", "5%")
    assert [change_text(*p) for p in [(4, 6), (4, 2), (4, 4), (0, 3), (10_000, 10_001)]] == \
        ["+50.0%", "-50.0%", "0.0%", "new", "+0.01%"]


# -- baseline files ----------------------------------------------------------------------
@pytest.mark.parametrize("text,message", [
    ('{"schema": "pytest-flopbudget-baseline/1", "tests": {"t', "b.json is not valid JSON "
                                                               "(truncated or corrupt?)"),
    ('{"schema": "pytest-flopbudget/1", "tests": []}', "b.json is not a pytest-flopbudget "
     "baseline (it is a --flop-json report; expected \"schema\": "
     "\"pytest-flopbudget-baseline/1\")"),
    ('{"schema": "pytest-flopbudget-baseline/9", "tests": {}}',
     "(it has schema 'pytest-flopbudget-baseline/9', which this version does not read;"),
    ('{"tests": {}}', "(it has no \"schema\" key;"),
    ("[1, 2]", "(it has no \"schema\" key;"),
    ('{"schema": "other-tool/2"}', "(its schema is 'other-tool/2';"),
    ('{"schema": "pytest-flopbudget-baseline/1", "tests": {"t": {"M": {"flops": -1}}}}',
     "b.json: tests['t']['M']: 'flops' must be a non-negative number, got -1"),
    ('{"schema": "pytest-flopbudget-baseline/1", "tests": {"t": 3}}',
     "b.json: tests['t'] must be an object of models"),
])
def test_parse_baseline_rejects_corrupt_and_foreign_files(text, message):
    with pytest.raises(BaselineError) as info:
        parse_baseline(text, "b.json")
    assert message in str(info.value)


@pytest.mark.parametrize("drop,message", [
    ("device", "b.json: tests['t']['M']: 'device' must be a name (a string), got None"),
    ("dtype", "b.json: tests['t']['M']: 'dtype' must be a name (a string), got None"),
    ("layers", "b.json: tests['t']['M']: 'layers' must be an object, got None"),
])
def test_parse_baseline_rejects_an_entry_missing_what_a_comparison_reads(drop, message):
    entry = {"device": "npu", "dtype": "int8", "layers": {}, **dict.fromkeys(GROWTH_METRICS, 1)}
    parse_baseline(json.dumps({"schema": SCHEMA, "tests": {"t": {"M": entry}}}), "b.json")
    del entry[drop]
    with pytest.raises(BaselineError) as info:
        parse_baseline(json.dumps({"schema": SCHEMA, "tests": {"t": {"M": entry}}}), "b.json")
    assert str(info.value) == message


# -- save and compare --------------------------------------------------------------------
def test_save_then_compare_without_change_passes_at_zero_percent(pytester, tmp_path):
    base = tmp_path / "base" / "baseline.json"
    pytester.makepyfile(models() + NET_TEST + """
def test_linear(flop_budget):
    flop_budget(nn.Linear(1000, 1000), x())

def test_plain():
    pass
""")
    save(pytester, base).assert_outcomes(passed=3)
    doc = json.loads(base.read_text())
    assert doc["schema"] == SCHEMA
    assert sorted(doc["tests"]) == ["test_save_then_compare_without_change_passes_at_zero_"
                                    "percent.py::test_linear",
                                    "test_save_then_compare_without_change_passes_at_zero_"
                                    "percent.py::test_net"]
    linear = doc["tests"][sorted(doc["tests"])[0]]["Linear"]
    assert {k: linear[k] for k in ALL if k != "latency"} == {
        "flops": 2_001_000, "macs": 1_000_000, "params": 1_001_000, "weight": 4_004_000,
        "access": 4_012_000, "activation": 4_000}
    assert linear["device"] == "cpu" and linear["dtype"] == "fp32"
    net = doc["tests"][sorted(doc["tests"])[1]]["Net"]
    assert net["layers"]["classifier"]["flops"] == 2_001_000
    assert net["layers"]["features"]["params"] == 1_001_000
    assert [p.name for p in base.parent.iterdir()] == ["baseline.json"]  # no temp file left

    result = pytester.runpytest(f"--flop-baseline={base}", "--flop-max-growth=5%")
    result.assert_outcomes(passed=3)
    text = section(result)
    # only what changed is shown: nothing, so one line counts the unchanged tests
    assert text.splitlines()[1:] == [
        f"compared with {base}: 0 regressed, 2 within limits, 0 new, 0 missing",
        "2 tests unchanged"]
    # -v lists them
    verbose = section(pytester.runpytest(f"--flop-baseline={base}", "--flop-max-growth=5%",
                                         "-v"))
    assert verbose.splitlines()[2:] == [
        "test_save_then_compare_without_change_passes_at_zero_percent.py::test_linear: "
        "Linear: unchanged",
        "test_save_then_compare_without_change_passes_at_zero_percent.py::test_net: "
        "Net: unchanged"]


GROWN = """
def test_net(flop_budget):
    flop_budget(Net().eval(), x())

def test_small(flop_budget):
    flop_budget(nn.Linear(1000, 1000), x())
"""


@pytest.fixture
def grown(pytester, tmp_path):
    """A baseline of Net(1000); the test file then has the classifier doubled."""
    base = tmp_path / "baseline.json"
    pytester.makepyfile(test_grown=models(1000) + GROWN)
    save(pytester, base).assert_outcomes(passed=2)
    pytester.makepyfile(test_grown=models(2000) + GROWN)
    return base


def test_a_grown_model_fails_and_names_the_layer_that_grew(pytester, grown):
    result = pytester.runpytest(f"--flop-baseline={grown}", "--flop-max-growth=5%")
    result.assert_outcomes(passed=1, failed=1)
    # the test itself fails, with the metrics over their limit and the layer that grew
    result.stdout.fnmatch_lines([
        "*_ test_net _*",
        f"flop baseline: Net grew more than allowed over {grown}",
        "  flops: 4,002,000 -> 6,003,000 (+50.0%) > max growth 5% (--flop-max-growth)",
        "  macs: 2,000,000 -> 3,000,000 (+50.0%) > max growth 5% (--flop-max-growth)",
        "  params: 2,002,000 -> 3,003,000 (+50.0%) > max growth 5% (--flop-max-growth)",
        "  weight B: 8,008,000 -> 12,012,000 (+50.0%) > max growth 5% (--flop-max-growth)",
        "  layers that grew most in flops:",
        "    layer*type*baseline*this run*change",
        "    classifier  Linear  2,001,000  4,002,000  +2,001,000 (+100.0%)",
    ])
    text = section(result)
    assert "1 regressed, 1 within limits, 0 new, 0 missing" in text
    lines = text.splitlines()
    start = lines.index("test_grown.py::test_net: Net: REGRESSED")
    assert lines[start + 2].split() == ["flops", "4,002,000", "6,003,000", "+50.0%", "5%",
                                        "over"]
    assert lines[start + 9] == "  layers that grew most in flops:"
    assert lines[start + 11].split() == ["classifier", "Linear", "2,001,000", "4,002,000",
                                         "+2,001,000", "(+100.0%)"]
    assert "features" not in text  # it did not grow
    assert "1 test unchanged" in text and "test_small" not in text
    assert "FAILED test_grown.py::test_net - flop baseline: Net grew" in result.stdout.str()


def test_per_metric_limits(pytester, grown):
    # flops grew exactly 50.0% (4,002,000 * 1.5 = 6,003,000): allowed at 50%; params over 40%
    result = pytester.runpytest(f"--flop-baseline={grown}",
                                "--flop-max-growth=flops:50%,params:40%")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "  params: 2,002,000 -> 3,003,000 (+50.0%) > max growth 40% (--flop-max-growth)",
        "  layers that grew most in params:",
        "    classifier  Linear  1,001,000  2,002,000  +1,001,000 (+100.0%)",
    ])
    out = result.stdout.str()
    assert "  flops: 4,002,000" not in out
    lines = section(result).splitlines()
    start = lines.index("test_grown.py::test_net: Net: REGRESSED")
    rows = [line.split() for line in lines[start + 2:start + 9]]
    # budgeted metrics are shown, and the unbudgeted ones that changed (no limit, no verdict)
    assert rows[0] == ["flops", "4,002,000", "6,003,000", "+50.0%", "50%", "ok"]
    assert rows[1] == ["macs", "2,000,000", "3,000,000", "+50.0%", "-", "-"]
    assert rows[2] == ["params", "2,002,000", "3,003,000", "+50.0%", "40%", "over"]
    # exactly at the limit still passes
    pytester.runpytest(f"--flop-baseline={grown}", "--flop-max-growth=flops:50%") \
        .assert_outcomes(passed=2)


def test_without_a_limit_the_comparison_is_only_reported(pytester, grown):
    result = pytester.runpytest(f"--flop-baseline={grown}")
    result.assert_outcomes(passed=2)
    lines = section(result).splitlines()
    assert "0 regressed, 2 within limits, 0 new, 0 missing" in lines[1]
    start = lines.index("test_grown.py::test_net: Net: ok")
    assert lines[start + 2].split() == ["flops", "4,002,000", "6,003,000", "+50.0%", "-", "-"]


def test_per_test_limits_from_the_marker_and_the_config(pytester, tmp_path):
    base = tmp_path / "b.json"
    body = """
@pytest.mark.flop_budget(max_growth="latency:1%,flops:60%")
def test_marked(flop_budget):
    flop_budget(Net().eval(), x())

def test_tabled(flop_budget):
    flop_budget(Net().eval(), x())

def test_default(flop_budget):
    flop_budget(Net().eval(), x())
"""
    pytester.makefile(".toml", pyproject="""
[tool.flopbudget]
max_growth = "flops:5%"

[tool.flopbudget.tests."*::test_tabled"]
max_growth = "55%"
""")
    pytester.makepyfile(test_limits=models(1000) + body)
    save(pytester, base).assert_outcomes(passed=3)
    pytester.makepyfile(test_limits=models(2000) + body)
    # --flop-max-growth=macs:1% lies over the config default, under the table and marker
    result = pytester.runpytest(f"--flop-baseline={base}", "--flop-max-growth=macs:1%")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([  # failures in the order the tests ran
        "*_ test_marked _*",
        "  macs: 2,000,000 -> 3,000,000 (+50.0%) > max growth 1% (--flop-max-growth)",
        "  latency ms: * (+*%) > max growth 1% (@flop_budget on test_limits.py::test_marked)",
        "*_ test_default _*",
        "  flops: 4,002,000 -> 6,003,000 (+50.0%) > max growth 5% "
        "(pyproject.toml [[]tool.flopbudget])",
        "  macs: 2,000,000 -> 3,000,000 (+50.0%) > max growth 1% (--flop-max-growth)",
    ])
    out = result.stdout.str()
    marked = out[out.index("_ test_marked _"):]
    assert "  flops: 4,002,000" not in marked[:marked.index("layers that grew")]  # 60% allowed
    # the per-test table allows 55% on every metric: +50% (latency less) passes
    assert "test_limits.py::test_tabled: Net: ok" in section(result)


@pytest.mark.parametrize("where,args,message", [
    ("option", ["--flop-max-growth=flop:5%"],
     "argument --flop-max-growth: unknown metric 'flop' (did you mean 'flops'?)"),
    ("config", [], "pyproject.toml [tool.flopbudget]: max_growth: growth limit needs a '%' "
                   "sign, got '5' (write 5%)"),
    ("marker", [], "@flop_budget on test_spec.py::test_net: max_growth: expected a string, "
                   "e.g. '5%' or 'flops:2%,latency:10%', got 0.05"),
])
def test_a_bad_growth_spec_is_one_error_naming_where(pytester, where, args, message):
    if where == "config":
        pytester.makefile(".toml", pyproject='[tool.flopbudget]\nmax_growth = "5"\n')
    marker = "@pytest.mark.flop_budget(max_growth=0.05)\n" if where == "marker" else ""
    pytester.makepyfile(test_spec=models() + marker + NET_TEST + "\ndef test_plain():\n"
                        "    pass\n")
    result = pytester.runpytest(*args)
    if where == "option":
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert message in result.stderr.str()
        return
    outcomes = result.parseoutcomes()
    # the plain test runs; the budgeted one fails (marker) or errors (config) with the message
    assert outcomes["passed"] == 1
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1
    assert result.stdout.str().count(message) >= 1
    assert "Traceback" not in result.stdout.str()


def test_new_and_missing_tests_are_listed_not_failed(pytester, tmp_path):
    base = tmp_path / "b.json"
    pytester.makepyfile(test_set=models() + """
def test_kept(flop_budget):
    flop_budget(nn.Linear(1000, 1000), x())

def test_gone(flop_budget):
    flop_budget(nn.Linear(10, 10), torch.randn(1, 10))
""")
    save(pytester, base)
    pytester.makepyfile(test_set=models() + """
def test_kept(flop_budget):
    flop_budget(nn.Linear(1000, 1000), x())

def test_added(flop_budget):
    flop_budget(nn.Linear(1000, 1000), x())
""")
    result = pytester.runpytest(f"--flop-baseline={base}", "--flop-max-growth=0%")
    result.assert_outcomes(passed=2)
    lines = section(result).splitlines()
    assert lines[1:3] == [
        f"compared with {base}: 0 regressed, 1 within limits, 1 new, 1 missing",
        "1 test unchanged"]  # test_kept, at 0% allowed
    assert lines[3:] == [
        "new (not in the baseline):",
        "  test_set.py::test_added: Linear (2,001,000 FLOPs, 1,001,000 params)",
        "missing (in the baseline, not profiled in this run):",
        "  test_set.py::test_gone",
    ]


def test_renamed_layers_still_compare_on_totals(pytester, tmp_path):
    base = tmp_path / "b.json"
    pytester.makepyfile(test_rename=models(head="classifier") + NET_TEST)
    save(pytester, base)
    pytester.makepyfile(test_rename=models(head="head") + NET_TEST)
    result = pytester.runpytest(f"--flop-baseline={base}", "--flop-max-growth=0%")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "test_rename.py::test_net: Net: ok",
        "*flops*4,002,000*4,002,000*0.0%*0%*ok",
        "*layer paths changed (compared on totals): new head; gone classifier",
    ])


def test_config_baseline_key_is_relative_to_the_rootdir(pytester):
    pytester.makefile(".toml", pyproject='[tool.flopbudget]\nbaseline = "ci/base.json"\n')
    pytester.makepyfile(test_cfg=models() + NET_TEST)
    # saving does not compare with the configured baseline (it does not exist yet)
    save(pytester, pytester.path / "ci" / "base.json").assert_outcomes(passed=1)
    result = pytester.runpytest("--flop-max-growth=5%")
    result.assert_outcomes(passed=1)
    assert "compared with ci/base.json: 0 regressed, 1 within limits" in section(result)


# -- broken baselines --------------------------------------------------------------------
@pytest.mark.parametrize("content,message", [
    (None, "--flop-baseline: baseline file {path} does not exist; save one with "
           "--flop-save-baseline={path}"),
    ('{"schema": "pytest-flopbudget-baseline/1", "tests": {"test_x.py::test_net": {"Ne',
     "--flop-baseline: baseline file {path} is not valid JSON (truncated or corrupt?): "
     "Unterminated string"),
    ('{"name": "some-package", "version": "1.0"}',
     "--flop-baseline: baseline file {path} is not a pytest-flopbudget baseline (it has no "
     "\"schema\" key; expected \"schema\": \"pytest-flopbudget-baseline/1\"); save one with "
     "--flop-save-baseline"),
])
def test_a_broken_baseline_is_one_clear_error_naming_the_file(pytester, tmp_path, content,
                                                              message):
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    pytester.makepyfile(test_x=models() + NET_TEST)
    result = pytester.runpytest(f"--flop-baseline={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert message.format(path=path) in err
    assert err.count("ERROR:") == 1 and "Traceback" not in err


# -- refusing to save --------------------------------------------------------------------
def test_an_empty_run_refuses_to_overwrite_the_baseline(pytester, tmp_path):
    base = tmp_path / "b.json"
    pytester.makepyfile(test_x=models() + NET_TEST)
    save(pytester, base)
    before = base.read_bytes()
    pytester.makepyfile(test_x="def test_plain():\n    pass\n")
    result = pytester.runpytest(f"--flop-save-baseline={base}")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([f"baseline NOT saved to {base}: no test profiled a model; "
                                 f"the file is left as it was"])
    assert base.read_bytes() == before
    assert b'"flops": 4002000' in before


def test_a_run_stopped_early_refuses_to_save(pytester, tmp_path):
    base = tmp_path / "b.json"
    pytester.makepyfile(test_x=models() + """
def test_a(flop_budget):
    flop_budget(Net().eval(), x())
    assert False

def test_b(flop_budget):
    flop_budget(Net().eval(), x())
""")
    result = pytester.runpytest("-x", f"--flop-save-baseline={base}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"baseline NOT saved to {base}: the run stopped early; *"])
    assert not base.exists()


@pytest.mark.parametrize("code", [0, 1])
def test_a_run_ended_by_pytest_exit_refuses_to_save(pytester, tmp_path, code):
    # pytest.exit() with a return code of 0 or 1 ends the run as early as Ctrl-C: test_c
    # never ran, so the run's figures are not a baseline
    base = tmp_path / "b.json"
    pytester.makepyfile(test_x=models() + f"""
def test_a(flop_budget):
    flop_budget(Net().eval(), x())

def test_b():
    pytest.exit("bye", returncode={code})

def test_c(flop_budget):
    flop_budget(Net().eval(), x())
""")
    result = pytester.runpytest(f"--flop-save-baseline={base}")
    result.stdout.fnmatch_lines([f"baseline NOT saved to {base}: the run stopped early; *"])
    assert not base.exists()


# -- Markdown and GitHub -----------------------------------------------------------------
def parse_markdown_table(text: str, header_start: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")),
                             strict=True)))
    return rows


def test_markdown_report(pytester, grown, tmp_path):
    out = tmp_path / "md" / "flop.md"
    result = pytester.runpytest(f"--flop-baseline={grown}", "--flop-max-growth=flops:5%",
                                f"--flop-markdown={out}")
    result.assert_outcomes(passed=1, failed=1)
    text = out.read_text()
    assert text.startswith(f"### flop budget: compared with `{grown}`\n\n"
                           f"1 regressed, 1 within limits, 0 new, 0 missing\n")
    rows = parse_markdown_table(text, "| test | model | metric")
    net = {r["metric"]: r for r in rows if r["test"] == "`test_grown.py::test_net`"}
    assert net["flops"] == {"test": "`test_grown.py::test_net`", "model": "Net",
                            "metric": "flops", "baseline": "4,002,000",
                            "this run": "6,003,000", "change": "+50.0%", "max growth": "5%",
                            "verdict": "**over**"}
    assert (net["params"]["baseline"], net["params"]["this run"], net["params"]["verdict"]) \
        == ("2,002,000", "3,003,000", "-")
    assert net["weight B"]["this run"] == "12,012,000"
    assert "\n1 test unchanged\n" in text and "test_small" not in text  # only what changed
    [layer] = parse_markdown_table(text, "| layer | type")
    assert layer == {"layer": "`classifier`", "type": "Linear", "baseline": "2,001,000",
                     "this run": "4,002,000", "change": "+2,001,000 (+100.0%)"}
    assert "`test_grown.py::test_net` Net, by flops:" in text
    assert [p.name for p in out.parent.iterdir()] == ["flop.md"]


def test_markdown_without_a_baseline_lists_the_figures(pytester, tmp_path, monkeypatch):
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_nb=models() + NET_TEST)
    pytester.runpytest(f"--flop-markdown={tmp_path / 'f.md'}").assert_outcomes(passed=1)
    assert (tmp_path / "f.md").read_text() == (
        "### flop budget: no baseline to compare with\n\n#### Profiled tests\n\n"
        "- `test_nb.py::test_net`: Net (4,002,000 FLOPs, 2,002,000 params)\n")
    assert summary.read_text() == (tmp_path / "f.md").read_text()


def test_github_step_summary_gets_the_table_appended(pytester, grown, tmp_path, monkeypatch):
    summary = tmp_path / "step_summary.md"
    summary.write_text("## earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    md = tmp_path / "flop.md"
    pytester.runpytest(f"--flop-baseline={grown}", f"--flop-markdown={md}")
    text = summary.read_text()
    assert text == "## earlier step\n" + md.read_text()
    rows = parse_markdown_table(text, "| test | model | metric")
    assert [(r["metric"], r["baseline"], r["this run"], r["change"]) for r in rows
            if "test_net" in r["test"]][:2] == [("flops", "4,002,000", "6,003,000", "+50.0%"),
                                                ("macs", "2,000,000", "3,000,000", "+50.0%")]
    # a comparison alone (no --flop-markdown) also reaches the step summary
    pytester.runpytest(f"--flop-baseline={grown}")
    assert summary.read_text() == text + md.read_text()


# -- JUnit XML ---------------------------------------------------------------------------
def test_figures_are_junit_properties(pytester, tmp_path):
    xml = tmp_path / "junit.xml"
    pytester.makepyfile(test_j=models() + """
def test_linear(flop_budget):
    flop_budget(nn.Linear(1000, 1000), x())
    flop_budget(nn.Linear(1000, 1000), x())
""")
    pytester.runpytest(f"--junitxml={xml}").assert_outcomes(passed=1)
    [case] = ET.parse(xml).getroot().iter("testcase")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["flopbudget.Linear.flops"] == "2001000"
    assert props["flopbudget.Linear.macs"] == "1000000"
    assert props["flopbudget.Linear.params"] == "1001000"
    assert props["flopbudget.Linear.weight_bytes"] == "4004000"
    assert props["flopbudget.Linear.access_bytes"] == "4012000"
    assert props["flopbudget.Linear.peak_activation_bytes"] == "4000"
    assert float(props["flopbudget.Linear.latency_s"]) > 0
    assert props["flopbudget.Linear#2.flops"] == "2001000"  # the second model of the test
    assert len(props) == 14


@pytest.mark.parametrize("args", [("test_sel.py::test_one",),
                                  ("-n", "2", "test_sel.py::test_p"),
                                  ("--lf",)])
def test_saving_from_a_run_that_left_tests_out_while_collecting_keeps_them(pytester, tmp_path,
                                                                           args):
    # node ids on the command line and --lf leave the other tests of a file out of the
    # collection: they still exist, so their entries stay
    base = tmp_path / "b.json"
    pytester.makepyfile(test_sel=models() + """
import os

def test_one(flop_budget):
    flop_budget(nn.Linear(10, 10), torch.randn(1, 10))

def test_two(flop_budget):
    flop_budget(nn.Linear(20, 20), torch.randn(1, 20))
    assert not os.environ.get("FAIL_TWO")

@pytest.mark.parametrize("n", [1, 2])
def test_p(flop_budget, n):
    flop_budget(nn.Linear(n, n), torch.randn(1, n))
""")
    save(pytester, base)
    if args == ("--lf",):  # test_two fails once, so --lf runs it alone
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("FAIL_TWO", "1")
            pytester.runpytest().assert_outcomes(passed=3, failed=1)
    result = save(pytester, base, *args)
    assert "dropped" not in section(result)
    tests = json.loads(base.read_text())["tests"]
    assert sorted(tests) == ["test_sel.py::test_one", "test_sel.py::test_p[1]",
                             "test_sel.py::test_p[2]", "test_sel.py::test_two"]


def test_a_baseline_that_cannot_be_saved_does_not_keep_the_markdown_from_being_written(
        pytester, tmp_path):
    # the baseline's folder turns into a file once the tests ran (as a read-only mount
    # would refuse it): one line says so, and the Markdown summary is still written
    out = pytester.path / "out"
    out.mkdir()
    pytester.makeconftest("""
import pathlib, shutil, pytest

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    out = pathlib.Path("out")
    shutil.rmtree(out)
    out.write_text("not a folder")
""")
    pytester.makepyfile(test_x=models() + NET_TEST)
    result = pytester.runpytest("--flop-save-baseline=out/b.json", "--flop-markdown=m.md")
    result.stdout.fnmatch_lines(["*could not write *out/b.json*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (pytester.path / "m.md").read_text().startswith("#")


def test_a_test_that_failed_after_profiling_is_not_counted_within_limits(pytester, tmp_path):
    # the model grew from 8 to 64 features (+658.8% FLOPs) and the test then failed: its
    # growth was never checked against the 5% allowed, which the headline says, with no
    # claim that it is within limits or that no limit was set
    base = tmp_path / "b.json"
    test = """
import os, pytest, torch
from torch import nn

def test_grow(flop_budget):
    w = int(os.environ.get("W", "8"))
    flop_budget(nn.Linear(w, 8), torch.randn(1, w))
    assert not os.environ.get("FAIL")
"""
    pytester.makepyfile(test_g=test)
    save(pytester, base)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("W", "64")
        mp.setenv("FAIL", "1")
        result = pytester.runpytest(f"--flop-baseline={base}", "--flop-max-growth=5%")
    result.assert_outcomes(failed=1)
    text = section(result)
    assert (f"compared with {base}: 0 regressed, 0 within limits, 1 not checked (failed "
            f"or skipped first), 0 new, 0 missing") in text
    assert "no growth limit set" not in text


def test_a_growth_limit_in_a_run_that_saves_says_why_nothing_was_compared(pytester,
                                                                         tmp_path):
    # saving does not compare with the configured baseline: the limit has nothing to
    # compare with, for that reason (not "without a baseline": one is configured)
    pytester.makefile(".toml", pyproject='[tool.flopbudget]\nbaseline = "b.json"\n')
    pytester.makepyfile(test_s=models() + NET_TEST)
    result = save(pytester, pytester.path / "b.json", "--flop-max-growth=5%")
    assert ("--flop-max-growth given in a run that saves a baseline: it does not compare "
            "with the configured one (pyproject.toml [tool.flopbudget] baseline b.json): "
            "nothing compared") in section(result)
