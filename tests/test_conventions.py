"""The plugin as a pytest citizen (issue 18): ini options and their precedence, the report
header, tables that fit the terminal, ``-p no:flopbudget``, and the ``host`` device's
calibration hints.

``nn.Linear(1000, 1000)`` on one row: 2,001,000 FLOPs, 1,001,000 params.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pytest_flopbudget import __main__ as cli
from pytest_flopbudget.budgets.config import ConfigError, host_file_setting
from pytest_flopbudget.pytest_plugin.header import age_text

LINEAR = """
import pytest, torch
from torch import nn

@pytest.mark.flop_budget(device="cpu")
def test_linear(flop_budget):
    flop_budget(nn.Linear(1000, 1000), torch.randn(1, 1000))
"""

HOST_TOML = "[devices.host]\nbase = 'cpu'\n"


def report_devices(result) -> list[str]:
    """The device column of the --flop-report table (``cpu fp32``...)."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "= flop budget report =" in line)
    return [" ".join(line.split()[7:9]) for line in lines[start + 2:]
            if line.startswith("  test_")]


# -- ini options ---------------------------------------------------------------------------

def test_help_lists_every_ini_option(pytester):
    result = pytester.runpytest("--help")
    for name in ("flop_device", "flop_hotspots", "flop_strict", "flop_baseline",
                 "flop_max_growth"):
        result.stdout.fnmatch_lines([f"  {name} *"])
    result.stdout.fnmatch_lines(["*--flop-strict*"])


def test_device_precedence_command_line_then_ini_then_marker(pytester):
    # the marker says cpu; flop_device, like --flop-device, prices every test elsewhere
    pytester.makepyfile(LINEAR)
    result = pytester.runpytest("--flop-report")
    assert report_devices(result) == ["cpu fp32"]
    result = pytester.runpytest("--flop-report", "-o", "flop_device=npu")
    assert report_devices(result) == ["npu int8"]
    result = pytester.runpytest("--flop-report", "-o", "flop_device=npu",
                                "--flop-device=nvidia-t4")
    assert report_devices(result) == ["nvidia-t4 fp16"]
    # [tool.pytest.ini_options] is the same ini option, written in pyproject.toml
    pytester.makefile(".toml", pyproject='[tool.pytest.ini_options]\nflop_device = "gpu"\n'
                                         '[tool.flopbudget]\ndevice = "mcu"\n')
    assert report_devices(pytester.runpytest("--flop-report")) == ["gpu fp16"]


def test_a_bad_ini_value_is_a_usage_error_naming_the_option(pytester):
    pytester.makepyfile(LINEAR)
    cases = [
        (["-o", "flop_device=npu2"], "flop_device (ini option): unknown device 'npu2'."),
        (["-o", "flop_hotspots=0"], "flop_hotspots (ini option): expected a positive integer, "
                                    "got '0'"),
        (["-o", "flop_max_growth=5"], "flop_max_growth (ini option): growth limit needs a '%' "
                                      "sign, got '5' (write 5%)"),
        (["-o", "flop_strict=maybe"], "flop_strict (ini option): invalid truth value 'maybe'"),
    ]
    for args, message in cases:
        result = pytester.runpytest(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, args
        assert message in result.stderr.str(), result.stderr.str()


def test_hotspots_precedence(pytester):
    pytester.makefile(".toml", pyproject="[tool.flopbudget]\nhotspots = 3\n")
    pytester.makepyfile("""
import pytest, torch
from torch import nn

@pytest.mark.flop_budget(max_mflops=0.01)  # 4 x (2 x 10,000 + 100) = 80,400 FLOPs
def test_deep(flop_budget):
    model = nn.Sequential(*[nn.Linear(100, 100) for _ in range(4)])
    flop_budget(model, torch.randn(1, 100))
""")
    assert "  top 3 layers by FLOPs:" in pytester.runpytest().outlines
    assert "  top 2 layers by FLOPs:" in pytester.runpytest("-o", "flop_hotspots=2").outlines
    assert "  top 1 layers by FLOPs:" in pytester.runpytest(
        "-o", "flop_hotspots=2", "--flop-hotspots=1").outlines


def test_baseline_ini_option_is_relative_to_the_rootdir(pytester):
    pytester.makepyfile(LINEAR)
    (pytester.path / "ci").mkdir()
    pytester.runpytest("--flop-save-baseline=ci/b.json").assert_outcomes(passed=1)
    result = pytester.runpytest("-o", "flop_baseline=ci/b.json")
    result.stdout.fnmatch_lines(["compared with ci/b.json: 0 regressed, 1 within limits, "
                                 "0 new, 0 missing"])
    result = pytester.runpytest("-o", "flop_baseline=ci/none.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert ("flop_baseline (ini option): baseline file ci/none.json "
            f"({pytester.path / 'ci' / 'none.json'}) does not exist") in result.stderr.str()


# -- the report header ----------------------------------------------------------------------

def test_report_header_names_devices_and_the_host_calibration_age(pytester):
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["flopbudget: built-in devices, host not calibrated "
                                 "(pytest --flop-calibrate writes .flopbudget/host.toml)"])
    pytester.makefile(".toml", pyproject="[tool.flopbudget.devices.a]\nbase = 'npu'\n"
                                         "[tool.flopbudget.devices.b]\nbase = 'cpu'\n")
    host = pytester.path / ".flopbudget" / "host.toml"
    host.parent.mkdir()
    host.write_text(HOST_TOML)
    three_days_ago = time.time() - 3 * 86_400 - 60
    os.utime(host, (three_days_ago, three_days_ago))
    result = pytester.runpytest("--flop-strict")
    result.stdout.fnmatch_lines([
        "flopbudget: devices from pyproject.toml [[]tool.flopbudget.devices] (2), host "
        "calibrated 3 days ago (.flopbudget/host.toml), strict on for every test "
        "(--flop-strict)"])
    # -q drops pytest's header, ours with it
    assert "flopbudget:" not in pytester.runpytest("-q").stdout.str()


def test_age_text():
    assert [age_text(s) for s in (0, 86_399, 86_400, 2 * 86_400 + 5)] == [
        "today", "today", "1 day ago", "2 days ago"]


# -- the terminal width ---------------------------------------------------------------------

def test_tables_fit_the_terminal_width(pytester, monkeypatch):
    pytester.makepyfile(test_a_rather_long_file_name_for_a_test_module="""
import pytest, torch
from torch import nn

@pytest.mark.parametrize("width", [1000, 2000])
def test_a_model_with_a_descriptive_and_long_name(flop_budget, width):
    flop_budget(nn.Linear(1000, width), torch.randn(1, 1000))
""")
    wide = pytester.runpytest("--flop-report").outlines
    assert max(len(line) for line in wide) > 120  # whole node ids without a width
    monkeypatch.setenv("COLUMNS", "120")
    lines = pytester.runpytest("--flop-report").outlines
    start = next(i for i, line in enumerate(lines) if "= flop budget report =" in line)
    table = lines[start + 1:start + 4]
    assert all(len(line) <= 120 for line in table), table
    # the start of a node id is cut, its end (the parameter) kept; numbers are whole
    assert table[1].split()[0].startswith("...")
    assert table[1].split()[0].endswith("name[1000]")
    assert "1,001,000" in table[1] and "2,002,000" in table[2]


# -- -p no:flopbudget -----------------------------------------------------------------------

def test_p_no_flopbudget_disables_the_plugin_cleanly(pytester):
    pytester.makepyfile(test_plain="""
import sys

def test_plain():
    assert "pytest_flopbudget.pytest_plugin" not in sys.modules
    assert "pytest_flopbudget.pytest_plugin.hooks" not in sys.modules
""")
    result = pytester.runpytest_subprocess("-p", "no:flopbudget", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not [line for line in result.outlines if line.startswith("flopbudget:")
                or (line.startswith("plugins:") and "flopbudget" in line)]
    # the marker is then unknown: with --strict-markers that is pytest's own error
    pytester.makepyfile(test_marked="""
import pytest

@pytest.mark.flop_budget(max_mflops=1)
def test_marked():
    pass
""")
    result = pytester.runpytest_subprocess("-p", "no:flopbudget", "-p", "no:cacheprovider",
                                           "--strict-markers", "test_marked.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*'flop_budget' not found in `markers` configuration option*"])


# -- the host device ------------------------------------------------------------------------

def test_host_without_a_calibration_says_how_to_calibrate(pytester):
    pytester.makepyfile("""
import pytest, torch
from torch import nn

@pytest.mark.flop_budget(device="host")
def test_on_host(flop_budget):
    flop_budget(nn.Linear(10, 10), torch.randn(1, 10))

def test_plain():
    pass
""")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1, passed=1)
    path = pytester.path / ".flopbudget" / "host.toml"
    result.stdout.fnmatch_lines([
        f"*@flop_budget on *::test_on_host: device 'host' is this machine once calibrated, "
        f"and there is no calibration file at {path}: run 'pytest --flop-calibrate' or "
        f"'python -m pytest_flopbudget calibrate' to measure this machine and write it"])
    result = pytester.runpytest("--flop-device=host")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--flop-device: device 'host' is this machine once calibrated" in \
        result.stderr.str()


def test_standalone_calibrate_honours_host_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text('[tool.flopbudget]\nhost_file = "hw/me.toml"\n')
    sub = tmp_path / "src" / "pkg"
    sub.mkdir(parents=True)
    assert host_file_setting(sub) == (tmp_path / "hw" / "me.toml",
                                      f"{tmp_path / 'pyproject.toml'} [tool.flopbudget] "
                                      f"host_file")
    written: list[Path] = []

    def fake_calibrate(path: Path, quick: bool = False, log=None, runtime: str = "eager",
                       name: str = "host"):  # no 10 s of benchmarks
        from pytest_flopbudget.devices.device import Device

        written.append(path)
        return Device(name="host", peak_flops=1e11, bandwidth=1e10)

    import pytest_flopbudget.calibration.calibrate as calibrate_module

    monkeypatch.setattr(calibrate_module, "calibrate", fake_calibrate)
    monkeypatch.chdir(sub)
    assert cli.main(["calibrate", "--quick"]) == 0
    assert written == [tmp_path / "hw" / "me.toml"]
    assert f"writing {tmp_path / 'hw' / 'me.toml'} ({tmp_path / 'pyproject.toml'} " \
           f"[tool.flopbudget] host_file)" in capsys.readouterr().out
    # --out still wins
    assert cli.main(["calibrate", "--quick", "--out", "x.toml"]) == 0
    assert written[-1] == Path("x.toml")


def test_host_file_setting_defaults_and_errors(tmp_path):
    assert host_file_setting(tmp_path)[0] == tmp_path / ".flopbudget" / "host.toml"
    (tmp_path / "pyproject.toml").write_text("[tool.flopbudget]\nhotspots = 2\n")
    assert host_file_setting(tmp_path)[0] == tmp_path / ".flopbudget" / "host.toml"
    (tmp_path / "pyproject.toml").write_text("[tool.flopbudget]\nhost_file = 5\n")
    with pytest.raises(ConfigError, match=r"host_file must be a file path \(a string\), got 5"):
        host_file_setting(tmp_path)
