"""``calibrate``: the pure arithmetic with hand-computed numbers, the file it writes, the CLI.

Nothing here asserts on a timing: a shared machine's speed is not a test result. The file, its
figures and its sources are checked exactly on a fake clock (``fake_calibration``: the real
``calibrate()`` with hand-chosen seconds per benchmark, a fixed cache, memory and CPU name);
the CLI and ``--flop-calibrate`` run that same fake calibration in process. One quick
calibration of this machine, with the real timer, is the end-to-end smoke test.
"""

from __future__ import annotations

import datetime
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fake_calibration
import pytest
import torch
from fake_calibration import CPU, FakeTimer, fake_calibrate

from pytest_flopbudget.__main__ import main
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
from pytest_flopbudget.calibration.timing import Timer, Timing, contention
from pytest_flopbudget.core.op_classes import OP_CLASSES
from pytest_flopbudget.devices.catalog import Catalog
from pytest_flopbudget.devices.device import DeviceError
from pytest_flopbudget.devices.device_file import HOST, device_toml, load_host, load_host_device

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SOURCE_PREFIXES = ("measured", "derived", "read from")
FIGURES = ("peak_flops.fp32", "bandwidth", "overhead", "onchip_bytes", "memory_bytes",
           *(f"efficiency.{c}" for c in OP_CLASSES))
TESTS_DIR = Path(__file__).parent


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


# --- the calibration on a fake clock: every figure exact --------------------------------------
# The fake machine and the derivation of each figure are in fake_calibration's docstring.
def context(fake: dict[str, Any]) -> str:
    return f"{CPU}, torch {torch.__version__}, {torch.get_num_threads()} threads, {fake['day']}"


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("calibration") / "nested" / "host.toml"
    lines: list[str] = []
    timer = FakeTimer()
    day = datetime.date.today().isoformat()  # the date the sources give
    device = fake_calibrate(path, quick=True, log=lines.append, timer=timer)
    return {"path": path, "device": device, "lines": lines, "calls": timer.calls, "day": day,
            "table": tomllib.loads(path.read_text())["devices"]["host"]}


def test_calibrate_writes_a_host_device(fake: dict[str, Any]) -> None:
    path, returned = fake["path"], fake["device"]
    # atomic write: nothing but the file itself is left in the (created) directory
    assert [p.name for p in path.parent.iterdir()] == ["host.toml"]
    tables = load_host(path)
    assert list(tables) == [HOST]
    device = Catalog.builtin().with_tables(tables, "host.toml").get(HOST)
    assert device.name == "host"
    assert device.to_dict() == returned.to_dict()
    table = {k: v for k, v in fake["table"].items() if k not in ("description", "sources")}
    assert table == fake_calibration.TABLE
    assert fake["table"]["description"] == (
        f"This machine ({CPU}, {torch.get_num_threads()} torch threads), calibrated "
        f"{fake['day']} by 'python -m pytest_flopbudget calibrate'")
    assert set(device.efficiency) == set(OP_CLASSES)
    assert path.read_text().startswith(
        "# Written by 'python -m pytest_flopbudget calibrate --quick' in ")


def test_peak_and_bandwidth_are_work_over_the_fake_seconds(fake: dict[str, Any]) -> None:
    device = fake["device"]
    # 2 x 2048^3 = 17,179,869,184 FLOPs in 1.7179869184 ms
    assert device.peak("fp32") == 1e13
    # 4 x 32 MiB cache = 128 MiB copied: 2 x 134,217,728 bytes in 268.435456 us
    assert device.bandwidth == 1e12
    assert device.onchip_bytes == 33_554_432 and device.memory_bytes == 17_179_869_184


def test_overheads_are_excess_time_per_operator_and_their_medians(fake: dict[str, Any]) -> None:
    device = fake["device"]
    # the median of the twelve kinds: (18 + 20) / 2 us
    assert device.overhead == 19e-6
    # one kind each: its own; elementwise (relu 10, add 12), norm (layer_norm 25, batch_norm
    # 15) and recurrent (lstm 11, gru 44): the medians of theirs
    assert device.overheads == {
        "conv": 20e-6, "depthwise_conv": 60e-6, "matmul": 15e-6, "attention": 40e-6,
        "pooling": 30e-6, "data": 18e-6, "aten.lstm": 11e-6, "aten.gru": 44e-6,
        "elementwise": 11e-6, "norm": 20e-6, "recurrent": 27.5e-6}


def test_class_efficiency_is_the_geometric_mean_of_its_cases_on_the_bare_roofline(
        fake: dict[str, Any]) -> None:
    device = fake["device"]
    # (0.5 x 0.5 x 0.5 x 0.25 x 1)^(1/5) = 0.5: relu, add, mul, gelu, sigmoid (clamped)
    assert device.efficiency["elementwise"] == 0.5
    # every other class: all of its cases' time is the overhead the roofline charges anyway
    assert {c: f for c, f in device.efficiency.items() if c != "elementwise"} == \
        dict.fromkeys([c for c in OP_CLASSES if c != "elementwise"], 1.0)


def test_every_figure_has_a_source(fake: dict[str, Any]) -> None:
    sources = fake["device"].sources
    assert set(sources) == {*FIGURES, *(f"overheads.{k}" for k in fake_calibration.TABLE[
        "overheads"])}
    for figure, source in sources.items():
        assert source.startswith(SOURCE_PREFIXES), (figure, source)
    assert sources["peak_flops.fp32"] == (
        f"measured: 2048x2048 fp32 GEMM (torch.mm, 2n^3 FLOPs), median of 3, {context(fake)}")
    assert sources["bandwidth"] == (
        f"measured: streaming copy of 128 MiB fp32 (Tensor.copy_, read + write bytes), median "
        f"of 3, 2 samples disturbed by other processes dropped, DISTURBED: other processes "
        f"were busy during some samples kept (up to 0.30 cores), {context(fake)}")
    chains = ("(time - bare roofline) per operator (per step for recurrent operators) of "
              "chains of 24 tiny operators")
    assert sources["overhead"] == (
        f"measured: median over kinds of {chains} (conv2d 3x3 4->4 at 4x4 20.0 us, depthwise "
        f"3x3 at 4x4 60.0 us, linear 16->16 15.0 us, sdpa of 4 tokens x 4 40.0 us, relu 10.0 "
        f"us, add 12.0 us, layer_norm 25.0 us, batch_norm 15.0 us, max_pool2d 3x3/1 30.0 us, "
        f"cat 18.0 us, lstm 4->4, 64 steps 11.0 us, gru 4->4, 64 steps 44.0 us), median of 3, "
        f"{context(fake)}")
    # each overheads entry names the runs behind it, and only those
    assert sources["overheads.conv"] == (
        f"measured: median of {chains} (conv2d 3x3 4->4 at 4x4 20.0 us), median of 3, "
        f"{context(fake)}")
    assert sources["overheads.recurrent"] == (
        f"measured: median of {chains} (lstm 4->4, 64 steps 11.0 us, gru 4->4, 64 steps "
        f"44.0 us), median of 3, {context(fake)}")
    assert sources["efficiency.elementwise"] == (
        f"measured: geometric mean over relu of 110k elements; add of 2 x 110k elements; mul "
        f"of 2 x 110k elements; gelu of 110k elements; sigmoid of 110k elements of bare "
        f"roofline time / (time - overhead x operators), median of 3, {context(fake)}")
    assert sources["onchip_bytes"] == (
        "read from /sys/devices/system/cpu/cpu0/cache/index3/size (L3 Unified, 32768 KiB), "
        "the largest cache level")
    assert sources["memory_bytes"] == "read from /proc/meminfo (MemTotal)"


def test_the_log_gives_each_figure_as_it_is_measured(fake: dict[str, Any]) -> None:
    lines = fake["lines"]
    assert lines[:3] == [
        "peak fp32         10000.0 GFLOP/s   (2048x2048 GEMM)",
        "bandwidth          1000.0 GB/s      (128 MiB copy)",
        "overhead            19.00 us/op      (median of conv2d 3x3 4->4 at 4x4 20.0 us, "
        "depthwise 3x3 at 4x4 60.0 us, linear 16->16 15.0 us, sdpa of 4 tokens x 4 40.0 us, "
        "relu 10.0 us, add 12.0 us, layer_norm 25.0 us, batch_norm 15.0 us, max_pool2d 3x3/1 "
        "30.0 us, cat 18.0 us, lstm 4->4, 64 steps 11.0 us, gru 4->4, 64 steps 44.0 us)",
    ]
    assert [line.split()[1] for line in lines[3:12]] == list(OP_CLASSES)
    assert "efficiency     elementwise     0.500   (5 cases, 0.250 to 1.000)" in lines
    assert lines[12] == (
        "warning: other processes kept this machine busy while measuring bandwidth; those "
        "figures are pessimistic (their sources say so). Calibrate again on a quiet machine.")
    assert lines[13].startswith(f"wrote {fake['path']} in ") and len(lines) == 14


def test_the_quick_plan_times_each_benchmark_once(fake: dict[str, Any]) -> None:
    calls = fake["calls"]
    # (what, repeats, warmup, min_sample_s): the GEMM and the copy, then every chain and
    # every class case with 3 ms samples
    assert calls[:2] == [("gemm", 3, 1, 0.0), ("streaming_copy", 3, 1, 0.0)]
    assert calls[2:14] == [(what, 3, 1, 0.003) for what in fake_calibration.OVERHEAD_US]
    assert [c for c in calls if c[0] in fake_calibration.ELEMENTWISE_S] == \
        [(what, 3, 1, 0.003) for what in fake_calibration.ELEMENTWISE_S]
    assert all(c[1:] == (3, 1, 0.003) for c in calls[14:])
    assert len({c[0] for c in calls}) == len(calls)


def test_calibrated_host_predicts_a_latency(fake: dict[str, Any]) -> None:
    from torch import nn

    from pytest_flopbudget import profile

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4))
    model(torch.randn(1, 3, 8, 8))
    latency = profile(model.eval(), torch.randn(1, 3, 8, 8)).latency(fake["device"])
    # conv, relu, linear (flatten is a view): each pays its class's overhead
    paid = [t for t in latency.ops if t.overhead_seconds]
    assert [(t.op, t.overhead_seconds) for t in paid] == [
        ("aten.conv2d", 20e-6), ("aten.relu", 11e-6), ("aten.linear", 15e-6)]
    # bare roofline at 1e13 FLOP/s, 1e12 B/s (all memory-bound), over the class efficiency:
    # conv 1x3x8x8 -> 1x8x6x6: reads 192 + 216 + 8, writes 288 floats: 2,816 B = 2.816 ns
    #   (15,840 FLOPs: 1.584 ns); relu of 288 floats: 2,304 B = 2.304 ns / 0.5 = 4.608 ns;
    # linear 288 -> 4: reads 288 + 1,152 + 4, writes 4 floats: 5,792 B = 5.792 ns
    # total: 20 + 11 + 15 us + 2.816 + 4.608 + 5.792 ns = 46.013216 us
    assert latency.seconds == pytest.approx(46.013216e-6, rel=1e-12)


def test_calibrate_refuses_a_bad_path_before_measuring(tmp_path: Path) -> None:
    def no_timing(*args: object, **kwargs: object) -> Any:
        raise AssertionError("measured before checking the destination")

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OSError, match="not a directory"):
        calibrate(blocker / "host.toml", quick=True, log=lambda _: None, timer=no_timing)
    with pytest.raises(IsADirectoryError):
        calibrate(tmp_path, quick=True, log=lambda _: None, timer=no_timing)


# --- one real calibration of this machine: the end-to-end smoke test -------------------------
@pytest.fixture
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def test_a_calibration_of_this_machine_with_one_sample_per_benchmark(
        tmp_path: Path, one_thread: None) -> None:
    """The real calibrate(), benchmarks and Timer on this machine's clock, with one sample of
    each benchmark, no warm-up and one torch thread: about 1 s. (A quick calibration, median
    of 3 with retakes at 2 threads, takes 10 to 30 s while xdist and other processes share
    the 2 cores: each 2-thread operator waits for its descheduled second thread.)"""
    from torch import nn

    from pytest_flopbudget import profile

    timer = Timer(patience_s=0.0)

    def one_sample(fn: Callable[[], object], repeats: int, warmup: int = 2,
                   min_sample_s: float = 0.0) -> Timing:
        return timer(fn, 1, warmup=0, min_sample_s=min_sample_s)

    path = tmp_path / "nested" / "host.toml"
    lines: list[str] = []
    returned = calibrate(path, quick=True, log=lines.append, timer=one_sample)
    assert [p.name for p in path.parent.iterdir()] == ["host.toml"]
    device = Catalog.builtin().with_tables(load_host(path), "host.toml").get(HOST)
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
    for figure in FIGURES:
        if figure == "memory_bytes" and device.memory_bytes is None:
            continue
        assert device.sources[figure].startswith(SOURCE_PREFIXES), figure
    assert "median of 1" in device.sources["peak_flops.fp32"]
    assert "2048x2048" in device.sources["peak_flops.fp32"]
    conv, recurrent = device.sources["overheads.conv"], device.sources["overheads.recurrent"]
    assert "conv2d 3x3 4->4" in conv and "relu" not in conv and "lstm" not in conv
    assert "lstm 4->4" in recurrent and "gru 4->4" in recurrent and "conv2d" not in recurrent

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4))
    model(torch.randn(1, 3, 8, 8))
    latency = profile(model.eval(), torch.randn(1, 3, 8, 8)).latency(device)
    assert latency.seconds > 0 and math.isfinite(latency.seconds)
    # conv, relu, linear (flatten is a view): each pays its class's measured overhead (not
    # the median over kinds: on the fake machine 20 + 11 + 15 us < 3 x 19 us)
    paid = [t.overhead_seconds for t in latency.ops if t.overhead_seconds]
    assert paid == [device.overheads[c] for c in ("conv", "elementwise", "matmul")]
    assert latency.seconds >= sum(paid)


# --- the command line -----------------------------------------------------------------------
def test_cli_calibrate_quick_writes_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[dict[str, Any]] = []
    fake_calibration.install(monkeypatch, calls)
    monkeypatch.chdir(tmp_path)
    out = Path("cal") / "host.toml"
    assert main(["calibrate", "--quick", "--out", str(out)]) == 0
    assert [(c["path"], c["quick"]) for c in calls] == [(out, True)]
    stdout = capsys.readouterr().out.splitlines()
    assert stdout[0] == f"calibrating this machine (quick); writing {out} (--out)"
    assert stdout[1] == "peak fp32         10000.0 GFLOP/s   (2048x2048 GEMM)"
    assert stdout[-3:] == [
        "",
        "device 'host': 10000.0 GFLOP/s fp32, 1000.0 GB/s, 19 us per operator (aten.gru 44 us, "
        "aten.lstm 11 us, attention 40 us, conv 20 us, data 18 us, depthwise_conv 60 us, "
        "elementwise 11 us, matmul 15 us, norm 20 us, pooling 30 us, recurrent 27.5 us), "
        "on-chip 32.0 MiB",
        f"written to {tmp_path.resolve() / 'cal' / 'host.toml'}",
    ]
    assert load_host_device(tmp_path / "cal" / "host.toml").peak() == 1e13


def test_cli_reports_a_bad_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    fake_calibration.install(monkeypatch)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["calibrate", "--quick", "--out", str(blocker / "host.toml")]) == 2
    stderr = capsys.readouterr().err
    assert "error:" in stderr and "a_file" in stderr
    assert "Traceback" not in stderr


def test_cli_needs_a_command(tmp_path: Path) -> None:
    # the one run of `python -m pytest_flopbudget` itself: argparse's usage error, nothing else
    env = {"PYTHONPATH": str(TESTS_DIR.parent), "PATH": ""}
    result = subprocess.run([sys.executable, "-m", "pytest_flopbudget"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    assert "calibrate" in result.stderr or "COMMAND" in result.stderr


# --- --flop-calibrate -------------------------------------------------------------------------
STUB_CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS_DIR)!r})
import pytest
import fake_calibration

def pytest_configure(config):  # before the session starts, when --flop-calibrate calibrates
    monkeypatch = pytest.MonkeyPatch()
    config.add_cleanup(monkeypatch.undo)
    fake_calibration.install(monkeypatch)
"""


def test_flop_calibrate_option_writes_host_and_the_session_uses_it(pytester):
    pytester.makeconftest(STUB_CONFTEST)
    pytester.makepyfile("""
import pytest, torch

@pytest.mark.flop_budget(device="host")
def test_on_host(flop_budget):
    assert flop_budget.device.sources["bandwidth"].startswith("measured")
    assert flop_budget.device.peak("fp32") == 1e13  # the fake machine's, read from the file
    flop_budget(torch.nn.Linear(10, 10), torch.randn(1, 10))
""")
    result = pytester.runpytest("--flop-calibrate", "--flop-report")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["flop-calibrate: peak fp32         10000.0 GFLOP/s*",
                                 "flop-calibrate: wrote *host.toml*",
                                 "*test_on_host*Linear*host fp32*passed"])
    assert (pytester.path / ".flopbudget" / "host.toml").is_file()
