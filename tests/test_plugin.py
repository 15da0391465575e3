"""The pytest plugin end to end, through pytest's own ``pytester``.

Exact figures used below: ``nn.Linear(1000, 1000)`` on one row does 1,000,000 MACs and
2,000,000 + 1,000 (bias) = 2,001,000 FLOPs and holds 1,001,000 parameters.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent

CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS_DIR)!r})
"""

LINEAR = """
import pytest, torch
from torch import nn

def big():
    return nn.Linear(1000, 1000)

def x():
    return torch.randn(1, 1000)
"""


def glob_escape(pattern: str) -> str:
    """fnmatch reads [...] as a character class; match brackets literally."""
    return pattern.replace("[", "[[]")


@pytest.fixture
def project(pytester):
    pytester.makeconftest(CONFTEST)
    return pytester


def test_within_budget_passes(project):
    project.makepyfile(LINEAR + """
@pytest.mark.flop_budget(max_mflops=2.5, max_params=1_100_000)
def test_ok(flop_budget):
    prof = flop_budget(big(), x())
    assert prof.flops == 2_001_000
""")
    result = project.runpytest()
    result.assert_outcomes(passed=1)
    assert "flop budget" not in result.stdout.str()


def test_over_budget_fails_with_measured_limit_and_overshoot(project):
    project.makepyfile(LINEAR + """
@pytest.mark.flop_budget(max_mflops=1, max_mmacs=2)
def test_big(flop_budget):
    flop_budget(big(), x())
""")
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    # 2.001 MFLOPs against 1: +100%; the MAC limit (1 MMACs <= 2) holds
    result.stdout.fnmatch_lines([
        "*flop budget exceeded: Linear on cpu (fp32), traced on fake tensors",
        "*max_mflops: 2 MFLOPs > 1 MFLOPs (+100%)",
    ])
    assert "max_mmacs:" not in result.stdout.str()


def test_hotspots_for_the_seed_classifier_on_npu_name_the_lstm_first(project):
    project.makepyfile("""
import pytest, torch
from reference_models import VibrationClassifier

@pytest.mark.flop_budget(max_latency_ms=5, device="npu")
def test_vibration(flop_budget):
    flop_budget(VibrationClassifier().eval(), torch.randn(1, 1, 1024))
""")
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    section = out[out.index("_ test_vibration _"):]  # the failure itself carries the table
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if "top 5 layers by predicted time" in line)
    header, first = lines[start + 1].split(), lines[start + 2].split()
    assert header == ["layer", "type", "output", "time", "ms", "share", "FLOP/B", "bound"]
    # the Bi-LSTM tops the list and is memory-bound, as on the seed's NPU
    assert first[:3] == ["lstm", "LSTM", "1x128x256"]
    assert first[-1] == "memory"
    assert float(first[4].rstrip("%")) > 90
    assert len([line for line in lines[start + 2:start + 8] if line.startswith("    ")]) == 5


def test_hotspot_count_option(project):
    project.makepyfile("""
import pytest, torch
from reference_models import VibrationClassifier

@pytest.mark.flop_budget(max_mflops=1)
def test_vibration(flop_budget):
    flop_budget(VibrationClassifier().eval(), torch.randn(1, 1, 1024))
""")
    result = project.runpytest("--flop-hotspots=2")
    # two rows in the failure's own text, which ends there
    result.stdout.fnmatch_lines(["  top 2 layers by FLOPs:", "*layer*type*output*MFLOPs*",
                                 "*lstm*LSTM*", "*attention.proj*Linear*",
                                 "*= flop budget =*"], consecutive=True)


@pytest.mark.parametrize("marker,message", [
    ("max_mflop=5", "unknown argument 'max_mflop' (did you mean 'max_mflops'?)"),
    ("max_mflops=-5", "max_mflops must be a positive number, got -5"),
    ("max_params='many'", "max_params must be a number, got 'many'"),
    ("device='npu2'", "unknown device 'npu2'. Did you mean 'npu'*Known devices: *cpu*"),
    ("dtype='int4'", "unknown dtype 'int4'; expected one of 'fp32', 'fp16', 'bf16', 'int8'"),
    ("5", "takes keyword arguments only, got positional (5,)"),
])
def test_bad_marker_arguments_are_one_clear_error(project, marker, message):
    project.makepyfile(LINEAR + f"""
@pytest.mark.flop_budget({marker})
def test_bad(flop_budget):
    flop_budget(big(), x())

def test_other():
    pass
""")
    result = project.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([f"*@flop_budget on test_bad_marker_arguments_are_one_clear_error"
                                 f".py::test_bad*{message}*"])
    assert "Traceback" not in out and "raise " not in out


@pytest.mark.parametrize("section,message", [
    ("max_mflop = 5", "pyproject.toml [tool.flopbudget]: unknown key 'max_mflop' (did you "
                      "mean 'max_mflops'?)"),
    ("device = 'gpu9'", "pyproject.toml [tool.flopbudget]: device: unknown device 'gpu9'"),
    ("hotspots = 0", "hotspots must be a positive integer, got 0"),
    ("host_file = 5", "pyproject.toml [tool.flopbudget]: host_file must be a file path (a "
                      "string), got 5"),
    ("[tool.flopbudget.devices.edge]\nbase = 'npu'\nbandwith = 1e9",
     "[tool.flopbudget.devices].edge: unknown key 'bandwith' (did you mean 'bandwidth'?)"),
    ("[tool.flopbudget.devices.edge]\npeak_flops = 1e12",
     "*.edge: missing required figure 'bandwidth'"),
    ("[tool.flopbudget.devices.edge]\npeak_flops = 1e12\nbandwidth = -1",
     "*.edge: bandwidth must be positive, got -1"),
    ("[tool.flopbudget.tests.'*::test_bad']\nmax_gmacs = 'x'",
     "*tests*test_bad*: max_gmacs must be a number, got 'x'"),
])
def test_a_broken_config_errors_budget_tests_only(project, section, message):
    if not section.startswith("["):
        section = "[tool.flopbudget]\n" + section
    project.makefile(".toml", pyproject=section)
    project.makepyfile(LINEAR + """
@pytest.mark.flop_budget(max_mflops=5)
def test_bad(flop_budget):
    flop_budget(big(), x())

def test_plain():
    pass
""")
    result = project.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*{glob_escape(message)}*"])
    assert "Traceback" not in result.stdout.str()
    assert result.stdout.str().count("= flop budget =") == 1


def test_config_defaults_marker_overrides_and_per_test_tables(project):
    project.makefile(".toml", pyproject="""
[tool.flopbudget]
max_mflops = 1
device = "npu"

[tool.flopbudget.tests."*::test_allowed"]
max_mflops = 3

[tool.flopbudget.devices.slow-npu]
base = "npu"
bandwidth = 1e6
""")
    project.makepyfile(LINEAR + """
def test_default(flop_budget):         # config default: 1 MFLOPs, on npu
    flop_budget(big(), x())

def test_allowed(flop_budget):         # per-test table: 3 MFLOPs
    flop_budget(big(), x())

@pytest.mark.flop_budget(max_mflops=4, device="slow-npu", max_latency_ms=1100)
def test_marker_wins(flop_budget):     # marker: 4 MFLOPs, a device declared in config
    prof = flop_budget(big(), x())
    assert prof.dtype == "int8"        # inherited default_dtype of npu
""")
    result = project.runpytest("--flop-report")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_default*Linear on npu (int8)*",
                                 "*max_mflops: 2 MFLOPs > 1 MFLOPs (+100%)"])
    # on slow-npu (1 MB/s) the int8 traffic of 1,003,000 bytes takes 1.003 s, plus npu's
    # 10 us per operator: 1003.0100 ms, 91% of 1100 ms
    result.stdout.fnmatch_lines(["*test_marker_wins*Linear*slow-npu int8*1003.0100*"
                                 "MFLOPs 50%, ms 91%*passed"])


def test_flop_device_overrides_every_test(project):
    project.makepyfile(LINEAR + """
@pytest.mark.flop_budget(device="npu")
def test_a(flop_budget):
    assert flop_budget.device.name == "nvidia-t4"
    flop_budget(big(), x())
""")
    project.runpytest("--flop-device=nvidia-t4").assert_outcomes(passed=1)
    result = project.runpytest("--flop-device=nvidia-t5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--flop-device: unknown device 'nvidia-t5'*Known devices*"])


def test_marker_without_measurement_fails(project):
    project.makepyfile("""
import pytest

@pytest.mark.flop_budget(max_mflops=5)
def test_forgot(flop_budget):
    pass
""")
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*has a @flop_budget marker but measured nothing*"])


def test_a_model_that_raises_fails_only_its_test_with_its_own_error(project):
    project.makepyfile(LINEAR + """
class Broken(nn.Module):
    def forward(self, x):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (my bug)")

@pytest.mark.flop_budget(max_mflops=5)
def test_broken(flop_budget):
    flop_budget(Broken(), x())

@pytest.mark.flop_budget(max_mflops=5)
def test_fine(flop_budget):
    flop_budget(big(), x())
""")
    result = project.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: mat1 and mat2 shapes cannot be multiplied "
                                 "(my bug)"])


def test_a_failing_setup_is_named_in_the_summary(project):
    project.makepyfile(LINEAR + """
@pytest.fixture
def weights():
    raise FileNotFoundError("weights.pt")

@pytest.mark.flop_budget(max_mflops=5)
def test_needs_weights(weights, flop_budget):
    flop_budget(big(), x())
""")
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*= flop budget =*",
                                 "test_a_failing_setup_is_named_in_the_summary.py::"
                                 "test_needs_weights: error: the test's setup failed"])


def test_unsupported_ops_are_listed_under_the_test(project):
    project.makepyfile("""
import pytest, torch
from torch import nn

class Spectral(nn.Module):
    def forward(self, x):
        return torch.fft.rfft(x).abs()

def test_fft(flop_budget):
    flop_budget(Spectral(), torch.randn(2, 8))
""")
    result = project.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*operators without a formula (their FLOPs are not counted):",
        "test_unsupported_ops_are_listed_under_the_test.py::test_fft: Spectral",
        "*unsupported ops (FLOPs not counted, traffic counted): aten._fft_r2c x1",
    ])


def test_real_forward_fallback_is_reported(project):
    project.makepyfile(LINEAR + """
class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = big()
    def forward(self, x):
        return self.fc(x) if x.sum().item() > -1e9 else x

@pytest.mark.flop_budget(max_mflops=1)
def test_gate(flop_budget):
    assert flop_budget(Gate(), x()).traced == "real"
""")
    result = project.runpytest()
    result.stdout.fnmatch_lines(["*Gate on cpu (fp32), traced on one real forward (the forward "
                                 "reads tensor values*"])


def test_report_table_lists_every_profiled_test(project):
    project.makepyfile(LINEAR + """
@pytest.mark.flop_budget(max_mflops=4, max_latency_ms=100)
def test_linear(flop_budget):
    flop_budget(big(), x())

def test_unbudgeted(flop_budget):
    flop_budget(nn.Linear(10, 10), torch.randn(1, 10))

def test_plain():
    pass
""")
    result = project.runpytest("--flop-report")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "*= flop budget report =*",
        "*test*model*MFLOPs*MMACs*params*access MB*FLOP/B*device*pred ms*budget used*verdict",
        # 2.001 MFLOPs, 1 MMACs, 1,001,000 params; 50% of 4 MFLOPs
        "*::test_linear*Linear*2.00*1.00*1,001,000*cpu fp32*MFLOPs 50%, ms *%*passed",
        "*::test_unbudgeted*Linear*0.00*0.00*110*cpu fp32*-*passed",
    ])
    assert "test_plain" not in result.stdout.str().split("flop budget report")[1]


def test_json_report(project, tmp_path):
    out = tmp_path / "reports" / "flop.json"
    project.makepyfile(LINEAR + """
@pytest.mark.flop_budget(max_mflops=1, device="npu", dtype="int8")
def test_over(flop_budget):
    flop_budget(big(), x())

@pytest.mark.flop_budget(max_mflops=3)
def test_under(flop_budget):
    flop_budget(big(), x())

@pytest.mark.flop_budget(max_mflops=3)
def test_skips(flop_budget):
    pytest.skip("no model file on this runner")

def test_plain():
    pass
""")
    result = project.runpytest(f"--flop-json={out}")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    doc = json.loads(out.read_text())
    assert doc["schema"] == "pytest-flopbudget/1"
    assert doc["summary"] == {"tests": 3, "profiles": 2, "over_budget": 1, "failed": 1,
                              "skipped": 1, "errors": 0}
    over, skipped, under = doc["tests"]
    assert (skipped["outcome"], skipped["error"], skipped["measurements"]) == ("skipped", "", [])
    assert over["nodeid"].endswith("::test_over") and over["outcome"] == "failed"
    assert over["budget"] == {"limits": {"max_mflops": 1.0}, "device": "npu",
                              "dtype": "int8", "options": {}}
    [m] = over["measurements"]
    assert (m["flops"], m["macs"], m["params"]) == (2_001_000, 1_000_000, 1_001_000)
    # int8 traffic: reads x (1,000) + W (1,000,000) + b (1,000), writes 1,000 bytes
    assert m["access_bytes"] == 1_003_000
    assert m["weight_bytes"] == 1_001_000
    assert m["violations"][0]["text"] == "2 MFLOPs > 1 MFLOPs (+100%)"
    assert [row["name"] for row in m["layers"]] == [""]
    assert under["outcome"] == "passed"
    assert [p.name for p in out.parent.iterdir()] == ["flop.json"]  # no temp file left


def test_a_report_that_cannot_be_written_is_one_clear_error(project, tmp_path):
    blocked = tmp_path / "reports"
    blocked.write_text("a file where a directory should be")
    project.makepyfile(LINEAR + """
@pytest.mark.flop_budget(max_mflops=3)
def test_under(flop_budget):
    flop_budget(big(), x())
""")
    result = project.runpytest(f"--flop-json={blocked / 'flop.json'}",
                               f"--flop-markdown={blocked / 'flop.md'}")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out
    # both writers report, each naming its file; the second still ran after the first failed
    result.stdout.fnmatch_lines([
        f"could not write {blocked}/flop.json: {blocked} is a file, not a folder",
        f"could not write {blocked}/flop.md: {blocked} is a file, not a folder"])


def test_session_devices_do_not_outlive_the_session(project):
    from pytest_flopbudget import get_device
    from pytest_flopbudget.devices.device import DeviceError

    project.makefile(".toml", pyproject="[tool.flopbudget.devices.edge]\nbase = 'npu'\n")
    project.makepyfile("""
from pytest_flopbudget import get_device

def test_sees_the_config_device():
    assert get_device("edge").name == "edge"
""")
    project.runpytest().assert_outcomes(passed=1)
    # after the session, get_device() finds devices from the current directory: inside the
    # project it still sees the project's device, outside it does not
    assert get_device("edge").name == "edge"
    outside = project.path.parent / "elsewhere"
    outside.mkdir()
    os.chdir(outside)
    with pytest.raises(DeviceError, match="unknown device 'edge'"):
        get_device("edge")


def test_strict_markers_and_alias_import(project):
    project.makepyfile(LINEAR + """
from pytest_flopbudget import flop_budget

@flop_budget(max_gmacs=0.35, device="rk3588-npu", dtype="int8")
def test_backbone(flop_budget):
    flop_budget(big(), x())
""")
    project.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_markers_are_documented(project):
    result = project.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.flop_budget(max_mflops=..., max_gflops=...*"
                                 "device=..., dtype=...*): fail the test when*"])


def test_a_session_without_budgets_does_not_import_torch(pytester):
    # the plugin is loaded in every pytest session of the environment; torch (seconds to
    # import) is loaded by the first budgeted test, not by the plugin
    pytester.makepyfile("""
import sys

def test_plain():
    assert "pytest_flopbudget.pytest_plugin.hooks" in sys.modules
    assert "torch" not in sys.modules
""")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_tests_without_budgets_record_nothing(project, tmp_path):
    out = tmp_path / "flop.json"
    project.makepyfile("def test_a():\n    pass\n")
    result = project.runpytest(f"--flop-json={out}", "--flop-report")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*no test profiled a model (use the flop_budget fixture)"])
    assert json.loads(out.read_text())["tests"] == []


def test_skip_marks_win_over_a_budget_that_cannot_be_made(project):
    # "only on the board": skipped here, whatever its budget says (no host calibration, a
    # typo in an argument); a not-run xfail is reported as such; the unskipped twin of the
    # typo still errors with its one line
    project.makepyfile(LINEAR + """
import sys

@pytest.mark.skipif(sys.platform == sys.platform, reason="only on the board")
@pytest.mark.flop_budget(device="host", max_latency_ms=5)
def test_on_board(flop_budget):
    flop_budget(big(), x())

@pytest.mark.skip(reason="later")
@pytest.mark.flop_budget(max_mflopz=1)
def test_typo_skipped(flop_budget):
    pass

@pytest.mark.xfail(run=False, reason="not now")
@pytest.mark.flop_budget(device="host")
def test_not_run(flop_budget):
    pass

@pytest.mark.flop_budget(max_mflopz=1)
def test_typo(flop_budget):
    pass
""")
    result = project.runpytest("-rsxE")
    result.assert_outcomes(skipped=2, xfailed=1, errors=1)
    result.stdout.fnmatch_lines(["flop budget: @flop_budget on *::test_typo: unknown "
                                 "argument 'max_mflopz'*"])


def test_an_added_profile_is_priced_at_the_budgets_dtype(project):
    # nn.Linear(4, 4): 20 parameters; at the marker's fp16 40 bytes (4e-05 MB) over a
    # 3e-05 MB limit, as the fixture's own call prices it; at the npu's int8 default it
    # would be 20 bytes and pass
    project.makepyfile("""
import pytest, torch
from torch import nn
from pytest_flopbudget import profile

@pytest.mark.flop_budget(max_weight_mb=0.00003, dtype="fp16", device="npu")
def test_added(flop_budget):
    flop_budget.add(profile(nn.Linear(4, 4), torch.randn(1, 4)))
""")
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*max_weight_mb: 4e-05 MB > 3e-05 MB (+33%)*"])


def test_a_profile_in_a_fixtures_teardown_fails_the_teardown(project):
    # the budget is checked when the call ends: a model profiled later is never checked,
    # so its teardown errors, naming it
    project.makepyfile(LINEAR + """
@pytest.fixture
def later(flop_budget):
    yield
    flop_budget(big(), x())

@pytest.mark.flop_budget(max_params=10)
def test_teardown_measure(later, flop_budget):
    flop_budget(torch.nn.Linear(2, 2), torch.randn(1, 2))
""")
    result = project.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*flop budget: *::test_teardown_measure profiled Linear "
                                 "after its call, in a fixture's teardown*"])
