"""``calibrate``: the pure arithmetic with hand-computed numbers, the file it writes, the CLI.

Nothing here asserts on a timing: a shared machine's speed is not a test result. One quick
calibration is shared by the module; the CLI test runs one more in a subprocess.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_flopbudget.calibration.calibrate import (
    calibrate,
    copy_bytes,
    efficiency_from,
    gemm_flops,
    geometric_mean,
    overhead_from,
    overheads_by_key,
    rate,
)
from pytest_flopbudget.calibration.hostinfo import cpu_model, largest_cache, mem_total, parse_size
from pytest_flopbudget.calibration.timing import contention
from pytest_flopbudget.core.op_classes import OP_CLASSES
from pytest_flopbudget.devices.catalog import Catalog
from pytest_flopbudget.devices.device import Device, DeviceError
from pytest_flopbudget.devices.device_file import HOST, device_toml, load_host, load_host_device

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SOURCE_PREFIXES = ("measured", "derived", "read from")
FIGURES = ("peak_flops.fp32", "bandwidth", "overhead", "onchip_bytes", "memory_bytes",
           *(f"efficiency.{c}" for c in OP_CLASSES))


# --- pure arithmetic ----------------------------------------------------------------------
def test_gemm_flops_is_2n3() -> None:
    assert gemm_flops(2048) == 2 * 2048**3 == 17_179_869_184
    assert gemm_flops(1) == 2
    # (n x k) @ (k x m): 2 n m k
    assert gemm_flops(4, m=3, k=2) == 48


def test_bandwidth_is_bytes_over_seconds() -> None:
    # a 128 MiB copy reads and writes 128 MiB: 256 MiB moved
    assert copy_bytes(128 << 20) == 256 << 20
    assert rate(copy_bytes(128 << 20), 0.0125) == pytest.approx(21_474_836_480)
    assert rate(2e9, 0.1) == pytest.approx(2e10)
    with pytest.raises(ValueError):
        rate(1e9, 0.0)


def test_efficiency_is_roofline_over_measured_clamped_to_one() -> None:
    assert efficiency_from(1.0, 4.0) == 0.25
    assert efficiency_from(0.003, 0.004) == pytest.approx(0.75)
    # faster than the roofline (a cache-resident operator): clamped to 1
    assert efficiency_from(2.0, 1.0) == 1.0
    # the overhead the roofline adds anyway is taken out first: 1 / (3 - 1)
    assert efficiency_from(1.0, 3.0, overhead_s=1.0) == 0.5
    # all of the time is overhead: nothing left for the factor to explain
    assert efficiency_from(1.0, 0.5, overhead_s=1.0) == 1.0
    assert 0 < efficiency_from(1e-9, 10.0) <= 1
    for bad in ((0.0, 1.0), (1.0, 0.0), (-1.0, 1.0)):
        with pytest.raises(ValueError):
            efficiency_from(*bad)


def test_class_efficiency_is_the_geometric_mean_of_its_cases() -> None:
    assert geometric_mean([0.25, 1.0]) == pytest.approx(0.5)
    assert geometric_mean([0.1, 0.1, 0.1]) == pytest.approx(0.1)
    assert geometric_mean([0.5]) == pytest.approx(0.5)
    for bad in ([], [0.0, 1.0]):
        with pytest.raises(ValueError):
            geometric_mean(bad)


def test_overhead_is_excess_time_per_operator() -> None:
    # 24 operators in 240 us of which 24 us is roofline time: 9 us each
    assert overhead_from(240e-6, 24e-6, 24) == pytest.approx(9e-6)
    assert overhead_from(1e-6, 2e-6, 4) == 0.0  # never negative
    with pytest.raises(ValueError):
        overhead_from(1.0, 0.0, 0)


def test_contention_fraction() -> None:
    assert contention(0.01, 0.1) == pytest.approx(0.1)
    assert contention(None, 0.1) == 0.0
    assert contention(-0.001, 0.1) == 0.0


@pytest.mark.parametrize(("text", "expected"), [
    ("32K", 32 * 1024), ("32768K\n", 32 << 20), ("8M", 8 << 20), ("1G", 1 << 30),
    ("1048576", 1 << 20),
])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def _cache(root: Path, index: int, level: int, kind: str, size: str) -> None:
    d = root / f"index{index}"
    d.mkdir(parents=True)
    (d / "level").write_text(f"{level}\n")
    (d / "type").write_text(f"{kind}\n")
    (d / "size").write_text(f"{size}\n")


def test_largest_cache_reads_sysfs(tmp_path: Path) -> None:
    _cache(tmp_path, 0, 1, "Data", "32K")
    _cache(tmp_path, 1, 1, "Instruction", "32K")
    _cache(tmp_path, 2, 2, "Unified", "512K")
    _cache(tmp_path, 3, 3, "Unified", "16384K")
    size, text = largest_cache(tmp_path)  # type: ignore[misc]
    assert size == 16 << 20
    assert "index3" in text and "L3" in text
    assert largest_cache(tmp_path / "missing") is None


def test_mem_total_and_cpu_model(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683656 kB\nMemFree:  1 kB\n")
    assert mem_total(meminfo) == 24683656 * 1024
    assert mem_total(tmp_path / "missing") is None
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU @ 3.0GHz\n")
    assert cpu_model(cpuinfo) == "Some CPU @ 3.0GHz"


def test_device_toml_round_trips(tmp_path: Path) -> None:
    table = {
        "description": 'a "quoted" name, a backslash \\ and ü',
        "bandwidth": 2.5e10,
        "overhead": 7e-06,
        "onchip_bytes": 33554432,
        "peak_flops": {"fp32": 1.2e11},
        "efficiency": {"conv": 0.5, "data": 1.0},
        "sources": {"peak_flops": "measured: x", "efficiency.conv": "measured: y"},
    }
    text = device_toml("host", table, header="line one\nline two")
    assert tomllib.loads(text)["devices"]["host"] == table
    path = tmp_path / "host.toml"
    path.write_text(text)
    assert load_host(path) == {"host": table}


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    from pytest_flopbudget.core.files import atomic_write

    path = tmp_path / "out.toml"
    path.write_text("old")
    atomic_write(path, "new\n")
    assert path.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.toml"]


def test_load_host_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text("[devices.cpu]\nbandwidth = 1.0\n")
    with pytest.raises(DeviceError, match=r"other\.toml.*devices\.host"):
        load_host(path)
    path.write_text("not toml = = =")
    with pytest.raises(DeviceError, match="not valid TOML"):
        load_host(path)


# --- one real (quick) calibration -----------------------------------------------------------
@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Device, list[str]]:
    directory = tmp_path_factory.mktemp("calibration") / "nested"
    path = directory / "host.toml"
    lines: list[str] = []
    device = calibrate(path, quick=True, log=lines.append)
    return path, device, lines


def test_calibrate_writes_a_host_device(calibrated: tuple[Path, Device, list[str]]) -> None:
    path, returned, lines = calibrated
    assert path.is_file()
    # atomic write: nothing but the file itself is left in the directory
    assert [p.name for p in path.parent.iterdir()] == ["host.toml"]
    tables = load_host(path)
    assert list(tables) == [HOST]
    device = Catalog.builtin().with_tables(tables, "host.toml").get(HOST)
    assert device.name == "host"
    assert device.to_dict() == returned.to_dict()
    assert device.default_dtype == "fp32"
    assert device.peak("fp32") > 0
    assert device.bandwidth > 0
    assert device.overhead > 0
    assert device.onchip_bytes > 0
    assert device.memory_bytes is None or device.memory_bytes > 0
    assert set(device.efficiency) == set(OP_CLASSES)
    assert all(0 < f <= 1 for f in device.efficiency.values())
    assert any(str(path) in line for line in lines)


def test_every_figure_has_a_source(calibrated: tuple[Path, Device, list[str]]) -> None:
    _, device, _ = calibrated
    for figure in FIGURES:
        if figure == "memory_bytes" and device.memory_bytes is None:
            continue
        source = device.sources[figure]
        assert source.startswith(SOURCE_PREFIXES), (figure, source)
    assert "median of" in device.sources["peak_flops.fp32"]
    assert "2048x2048" in device.sources["peak_flops.fp32"]
    # each overheads entry names the runs behind it, and only those
    conv, recurrent = device.sources["overheads.conv"], device.sources["overheads.recurrent"]
    assert "conv2d 3x3 4->4" in conv and "relu" not in conv and "lstm" not in conv
    assert "lstm 4->4" in recurrent and "gru 4->4" in recurrent and "conv2d" not in recurrent


def test_calibrated_host_predicts_a_latency(calibrated: tuple[Path, Device, list[str]]) -> None:
    import torch
    from torch import nn

    from pytest_flopbudget import profile

    _, device, _ = calibrated
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4))
    model(torch.randn(1, 3, 8, 8))
    latency = profile(model.eval(), torch.randn(1, 3, 8, 8)).latency(device)
    assert latency.seconds > 0 and math.isfinite(latency.seconds)
    # conv, relu, linear (flatten is a view): each pays the measured overhead at least
    paid = [t for t in latency.ops if t.overhead_seconds]
    assert len(paid) == 3
    assert latency.seconds >= 3 * device.overhead


def test_calibrate_refuses_a_bad_path_before_measuring(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OSError, match="not a directory"):
        calibrate(blocker / "host.toml", quick=True, log=lambda _: None)
    with pytest.raises(IsADirectoryError):
        calibrate(tmp_path, quick=True, log=lambda _: None)


# --- the command line -----------------------------------------------------------------------
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "pytest_flopbudget", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


def test_cli_calibrate_quick_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "cal" / "host.toml"
    result = _cli("calibrate", "--quick", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.is_file()
    assert "GFLOP/s" in result.stdout and str(out.resolve()) in result.stdout
    device = load_host_device(out)
    assert device.peak() > 0


def test_cli_reports_a_bad_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = _cli("calibrate", "--quick", "--out", str(blocker / "host.toml"), cwd=tmp_path)
    assert result.returncode != 0
    assert "error:" in result.stderr and "a_file" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_needs_a_command(tmp_path: Path) -> None:
    result = _cli(cwd=tmp_path)
    assert result.returncode == 2
    assert "calibrate" in result.stderr or "COMMAND" in result.stderr


def test_overheads_by_key_medians_per_class_and_for_recurrent() -> None:

    default, table = overheads_by_key([
        ("elementwise", 1e-6), ("elementwise", 3e-6), ("conv", 20e-6),
        ("aten.lstm", 2e-6), ("aten.gru", 18e-6),
    ])
    # default: median of all five kinds (1, 2, 3, 18, 20 us) = 3 us
    assert default == 3e-6
    # per class: the median of its kinds; recurrent: the median of lstm and gru = 10 us
    assert table == {"elementwise": 2e-6, "conv": 20e-6, "aten.lstm": 2e-6,
                     "aten.gru": 18e-6, "recurrent": 10e-6}


def test_flop_calibrate_option_writes_host_and_the_session_uses_it(pytester, monkeypatch):
    import pytest_flopbudget.calibration.calibrate as calibrate_module

    full = calibrate_module.calibrate
    monkeypatch.setattr(calibrate_module, "calibrate",
                        lambda path, log=print: full(path, quick=True, log=log))
    pytester.makepyfile("""
import pytest, torch

@pytest.mark.flop_budget(device="host")
def test_on_host(flop_budget):
    assert flop_budget.device.sources["bandwidth"].startswith("measured")
    flop_budget(torch.nn.Linear(10, 10), torch.randn(1, 10))
""")
    result = pytester.runpytest("--flop-calibrate", "--flop-report")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["flop-calibrate: wrote *host.toml*",
                                 "*test_on_host*Linear*host fp32*passed"])
    assert (pytester.path / ".flopbudget" / "host.toml").is_file()
