"""A project's devices, found in pytest and outside it: the project root from a directory
upward, every device file of ``.flopbudget/``, ``host_file``, ``[tool.flopbudget.devices]``,
and ``get_device``/``profile().latency`` from a plain script."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_flopbudget.budgets.config import host_file_setting
from pytest_flopbudget.devices.device import DeviceError
from pytest_flopbudget.devices.device_file import device_toml
from pytest_flopbudget.devices.project import (
    discover,
    find_root,
    get_device,
    project_catalog,
)

ROOT = Path(__file__).resolve().parents[1]


def device_file(path: Path, name: str, bandwidth: float = 1e10, **extra: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = {"peak_flops": 1e11, "bandwidth": bandwidth, **extra,
             "sources": {"peak_flops": "measured: test", "bandwidth": "measured: test"}}
    path.write_text(device_toml(name, table))
    return path


def test_find_root_walks_up_to_a_pyproject_with_the_section_or_a_folder(tmp_path):
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    assert find_root(deep) is None
    (tmp_path / "pyproject.toml").write_text("[tool.flopbudget]\n")
    assert find_root(deep) == tmp_path.resolve()
    # a pyproject.toml without [tool.flopbudget] is not a project: the walk goes on
    (tmp_path / "a" / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert find_root(deep) == tmp_path.resolve()
    # a .flopbudget folder holding no device file (empty, or a baseline saved from a
    # subfolder) does not hide the project above it
    (tmp_path / "a" / "b" / ".flopbudget").mkdir()
    assert find_root(deep) == tmp_path.resolve()
    (tmp_path / "a" / "b" / ".flopbudget" / "baseline.json").write_text("{}")
    assert find_root(deep) == tmp_path.resolve()
    # one holding a device file is a project, the nearest wins
    device_file(tmp_path / "a" / "b" / ".flopbudget" / "board.toml", "board", 2e10)
    assert find_root(deep) == (tmp_path / "a" / "b").resolve()
    (tmp_path / "a" / "pyproject.toml").write_text("not = = toml")
    assert find_root(deep) == (tmp_path / "a" / "b").resolve()  # found before the bad file
    with pytest.raises(DeviceError, match=r"pyproject\.toml is not valid TOML"):
        find_root(tmp_path / "a")


def test_a_folder_pytest_takes_as_its_rootdir_is_the_root(tmp_path):
    # a sub-project with its own pytest configuration and a .flopbudget of baselines, under
    # a repository with [tool.flopbudget]: pytest run in it reads sub/.flopbudget/host.toml,
    # so calibrate run there writes it there
    (tmp_path / "pyproject.toml").write_text("[tool.flopbudget]\n")
    sub = tmp_path / "sub"
    (sub / ".flopbudget").mkdir(parents=True)
    (sub / ".flopbudget" / "baseline.json").write_text("{}")
    (sub / "pyproject.toml").write_text("[tool.pytest.ini_options]\naddopts = ''\n")
    assert find_root(sub / ".flopbudget") == sub.resolve()
    assert host_file_setting(sub)[0] == sub / ".flopbudget" / "host.toml"
    (sub / "pyproject.toml").unlink()
    (sub / "pytest.ini").write_text("[pytest]\n")
    assert find_root(sub) == sub.resolve()
    (sub / "pytest.ini").unlink()
    assert find_root(sub) == tmp_path.resolve()  # baselines alone: the repository's
    for name, text in (("pytest.toml", "[pytest]\n"), ("tox.ini", "[pytest]\n"),
                       ("setup.cfg", "[tool:pytest]\n"),
                       ("pyproject.toml", "[tool.pytest]\nminversion = '9'\n")):
        (sub / name).write_text(text)
        assert find_root(sub) == sub.resolve(), name
        (sub / name).unlink()
    (sub / "tox.ini").write_text("[tox]\n")  # a tox.ini without [pytest] is no root
    assert find_root(sub) == tmp_path.resolve()


def test_a_plain_pyproject_is_the_last_resort(tmp_path):
    # no project marker anywhere: the nearest pyproject.toml, as pytest's last resort
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "a" / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert find_root(deep) == (tmp_path / "a").resolve()


def test_a_bare_flopbudget_folder_is_the_root_when_nothing_above_is_a_project(tmp_path):
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "a" / ".flopbudget").mkdir()
    assert find_root(deep) == (tmp_path / "a").resolve()


def test_every_device_file_joins_by_its_name(tmp_path):
    device_file(tmp_path / ".flopbudget" / "host.toml", "host", 2e10)
    device_file(tmp_path / ".flopbudget" / "rpi5-ort.toml", "rpi5-ort", 3e10,
                fusion="epilogue")
    (tmp_path / ".flopbudget" / "notes.toml").write_text("[other]\nx = 1\n")  # not devices
    found = project_catalog(tmp_path, {"devices": {"mine": {"base": "rpi5-ort",
                                                            "bandwidth": 4e10}}})
    catalog = found.catalog
    assert catalog.get("host").bandwidth == 2e10
    assert catalog.get("rpi5-ort").fusion == "epilogue"
    # [tool.flopbudget.devices] may inherit from a device file's device
    mine = catalog.get("mine")
    assert (mine.bandwidth, mine.fusion) == (4e10, "epilogue")
    assert [p.name for p in found.files] == ["rpi5-ort.toml", "host.toml"]
    assert found.declared == 1
    assert found.host_path == tmp_path / ".flopbudget" / "host.toml"


def test_host_file_elsewhere_wins_and_a_missing_host_says_how_to_calibrate(tmp_path):
    device_file(tmp_path / ".flopbudget" / "host.toml", "host", 2e10)
    device_file(tmp_path / "hw" / "me.toml", "host", 5e10)
    found = project_catalog(tmp_path, {"host_file": "hw/me.toml"})
    assert found.catalog.get("host").bandwidth == 5e10
    empty = project_catalog(tmp_path / "hw", {})
    with pytest.raises(DeviceError, match=r"no calibration file at .*host\.toml: run "
                                          r"'pytest --flop-calibrate' or 'python -m "
                                          r"pytest_flopbudget calibrate'"):
        empty.catalog.get("host")


def test_bad_device_files_name_the_file(tmp_path):
    folder = tmp_path / ".flopbudget"
    device_file(folder / "a.toml", "board")
    device_file(folder / "b.toml", "board")
    with pytest.raises(DeviceError, match=r"'board' is declared by two device files: "
                                          r"\.flopbudget/a\.toml and \.flopbudget/b\.toml"):
        project_catalog(tmp_path)
    (folder / "b.toml").write_text("[devices.board2]\nbandwidth = -1\npeak_flops = 1.0\n")
    with pytest.raises(DeviceError, match=r"\.flopbudget/b\.toml \[devices\]\.board2: "
                                          r"bandwidth must be positive"):
        project_catalog(tmp_path)
    (folder / "b.toml").write_text("oops = = 1")
    with pytest.raises(DeviceError, match=r"\.flopbudget/b\.toml is not valid TOML"):
        project_catalog(tmp_path)
    (folder / "b.toml").write_text("devices = 3\n")
    with pytest.raises(DeviceError, match=r"b\.toml: devices must be a table"):
        project_catalog(tmp_path)
    (folder / "b.toml").unlink()
    device_file(tmp_path / "host.toml", "not-host")
    with pytest.raises(DeviceError, match=r"host\.toml: no \[devices\.host\] table"):
        project_catalog(tmp_path, {"host_file": "host.toml"})


def test_a_device_on_an_uncalibrated_host_says_so_and_the_others_work(tmp_path):
    # base = "host" (the README's example) and figures over host, before any calibration
    declared = {"myhost": {"base": "host", "bandwidth": 1e10}, "host": {"overhead": 2e-6}}
    catalog = project_catalog(tmp_path, {"devices": declared}).catalog
    assert catalog.get("cpu").name == "cpu"
    for name in ("myhost", "host"):
        with pytest.raises(DeviceError, match=r"no calibration file at .*host\.toml: run "):
            catalog.get(name)
    # once calibrated, both build on the file: 2e10 B/s, overhead 2 us over it
    device_file(tmp_path / ".flopbudget" / "host.toml", "host", 2e10)
    catalog = project_catalog(tmp_path, {"devices": declared}).catalog
    assert catalog.get("myhost").bandwidth == 1e10
    assert (catalog.get("host").bandwidth, catalog.get("host").overhead) == (2e10, 2e-6)


def test_a_device_file_replaces_a_device_of_its_name_whole(tmp_path):
    folder = tmp_path / ".flopbudget"
    # a stale default host file with half_rows, the configured host file without: the
    # configured one is the host, nothing of the stale one is left
    device_file(folder / "host.toml", "host", 2e10, half_rows=10.0)
    device_file(tmp_path / "calib" / "host.toml", "host", 5e10)
    host = project_catalog(tmp_path, {"host_file": "calib/host.toml"}).catalog.get("host")
    assert (host.bandwidth, host.half_rows) == (5e10, None)
    # a file named like a built-in (fit --name cpu) is that device, not a mix: the
    # built-in cpu has an int8 peak, the file only fp32
    device_file(folder / "cpu.toml", "cpu", 3e10)
    cpu = project_catalog(tmp_path).catalog.get("cpu")
    assert (cpu.bandwidth, dict(cpu.peak_flops)) == (3e10, {"fp32": 1e11})
    # base = its own name: over the built-in, not a loop (the built-in npu's int8 peak
    # stays, its bandwidth is the file's)
    (folder / "npu.toml").write_text('[devices.npu]\nbase = "npu"\nbandwidth = 2.5e9\n')
    npu = project_catalog(tmp_path).catalog.get("npu")
    assert (npu.bandwidth, "int8" in npu.peak_flops) == (2.5e9, True)
    (folder / "npu.toml").unlink()
    # a copy of the host file beside it declares host twice
    (folder / "host-old.toml").write_text((folder / "host.toml").read_text())
    with pytest.raises(DeviceError, match=r"'host' is declared by two device files: "
                                          r"\.flopbudget/host-old\.toml and "
                                          r"\.flopbudget/host\.toml; keep one"):
        project_catalog(tmp_path)


def test_the_catalog_outside_pytest_survives_odd_files(tmp_path, monkeypatch):
    from pytest_flopbudget.devices import project

    monkeypatch.setattr(project, "_session", None)
    root = tmp_path / "proj"
    device_file(root / ".flopbudget" / "board.toml", "board", 7e9)
    # a dangling link in the folder, and a plain file called .flopbudget above the project
    (root / ".flopbudget" / "baseline.json").symlink_to(tmp_path / "gone.json")
    (tmp_path / ".flopbudget").write_text("not a folder")
    monkeypatch.chdir(root)
    assert get_device("board").bandwidth == 7e9
    # a host_file outside .flopbudget is read again when it changes
    (root / "pyproject.toml").write_text('[tool.flopbudget]\nhost_file = "hw/h.toml"\n')
    device_file(root / "hw" / "h.toml", "host", 2e10)
    assert get_device("host").bandwidth == 2e10
    device_file(root / "hw" / "h.toml", "host", 5e10)
    os.utime(root / "hw" / "h.toml", ns=(1, 1))  # a new time, whatever the clock's grain
    assert get_device("host").bandwidth == 5e10
    (root / "hw" / "h.toml").unlink()
    with pytest.raises(DeviceError, match=r"no calibration file at .*hw/h\.toml"):
        get_device("host")


def test_get_device_outside_pytest_follows_the_current_directory(tmp_path, monkeypatch):
    from pytest_flopbudget.devices import project

    monkeypatch.setattr(project, "_session", None)  # as in a script, not in this session
    project = tmp_path / "proj"
    device_file(project / ".flopbudget" / "board.toml", "board", 7e9)
    (project / "pyproject.toml").write_text(
        "[tool.flopbudget.devices.mine]\nbase = 'board'\nbandwidth = 8e9\n")
    sub = project / "notebooks"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert get_device("board").bandwidth == 7e9
    assert get_device("mine").bandwidth == 8e9
    assert get_device("npu").name == "npu"  # built-ins stay
    with pytest.raises(DeviceError, match="no calibration file at .*proj/.flopbudget/host"):
        get_device("host")
    # a new file is seen at the next call (the catalog is re-read when a file changes)
    device_file(project / ".flopbudget" / "host.toml", "host", 9e9)
    assert get_device("host").bandwidth == 9e9
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DeviceError, match="unknown device 'board'"):
        get_device("board")
    with pytest.raises(DeviceError, match="no calibration file at"):
        get_device("host")
    assert discover(tmp_path) is None


def test_calibrate_destination_by_name(tmp_path):
    sub = tmp_path / "src"
    sub.mkdir()
    (tmp_path / ".flopbudget").mkdir()
    assert host_file_setting(sub)[0] == tmp_path / ".flopbudget" / "host.toml"
    assert host_file_setting(sub, "rpi5-ort")[0] == tmp_path / ".flopbudget" / "rpi5-ort.toml"
    (tmp_path / "pyproject.toml").write_text('[tool.flopbudget]\nhost_file = "hw/h.toml"\n')
    assert host_file_setting(sub)[0] == tmp_path / "hw" / "h.toml"
    # host_file is the host's: other names still go to the folder
    assert host_file_setting(sub, "x")[0] == tmp_path / ".flopbudget" / "x.toml"


def test_a_plain_script_in_a_project_prices_on_its_devices(tmp_path):
    """A script (no pytest) inside a project: profile(m, x).latency("host") and a device
    declared in [tool.flopbudget.devices] that inherits from it."""
    device_file(tmp_path / ".flopbudget" / "host.toml", "host", 1e9, overhead=1e-3)
    (tmp_path / "pyproject.toml").write_text(
        "[tool.flopbudget.devices.slow-host]\nbase = 'host'\noverhead = 2e-3\n")
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "predict.py"
    script.write_text(textwrap.dedent("""
        import torch
        from pytest_flopbudget import get_device, profile

        model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU()).eval()
        prof = profile(model, torch.randn(1, 8))
        # two operators (linear, relu), each paying the overhead
        print(round(prof.latency("host").ms, 3), round(prof.latency("slow-host").ms, 3),
              get_device("host").sources["bandwidth"])
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path / "scripts",
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    # linear 1x8 @ 8x8 + bias: reads 8 + 64 + 8 floats, writes 8: 352 bytes at 1e9 B/s =
    # 0.352 us; relu reads and writes 8 floats: 64 bytes = 0.064 us. host: 2 x 1 ms + 0.416 us
    # = 2.000416 ms -> 2.0; slow-host: 2 x 2 ms -> 4.0
    assert result.stdout.split() == ["2.0", "4.0", "measured:", "test"]


def test_pytest_session_sees_device_files_and_the_header_names_them(pytester):
    device_file(pytester.path / ".flopbudget" / "board.toml", "board", 7e9)
    pytester.makepyfile("""
import pytest, torch

@pytest.mark.flop_budget(device="board")
def test_on_board(flop_budget):
    assert flop_budget.device.bandwidth == 7e9
    flop_budget(torch.nn.Linear(4, 4), torch.randn(1, 4))
""")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["flopbudget: *device files (1: board)*"])


def test_a_config_error_in_pytest_leaves_the_project_devices_as_a_script_sees_them(pytester):
    # a typo in a budget key errors the budgeted tests; a plain test pricing on the
    # project's npu (bandwidth 1e6 B/s over the built-in's) still gets the project's npu,
    # not the built-in one in its place
    pytester.makepyprojecttoml("""
[tool.flopbudget]
max_mflop = 5

[tool.flopbudget.devices.npu]
bandwidth = 1e6
""")
    pytester.makepyfile("""
import pytest
from pytest_flopbudget import get_device

def test_plain():
    assert get_device("npu").bandwidth == 1e6

@pytest.mark.flop_budget(max_mflops=1)
def test_budgeted(flop_budget):
    pass
""")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*unknown key 'max_mflop'*"])


def test_unreadable_project_devices_in_pytest_say_why_when_asked_for(pytester):
    (pytester.path / ".flopbudget").mkdir()
    (pytester.path / ".flopbudget" / "board.toml").write_text("oops = = 1")
    pytester.makepyfile("""
import pytest
from pytest_flopbudget import get_device
from pytest_flopbudget.devices.device import DeviceError

def test_plain():
    with pytest.raises(DeviceError, match=r"device 'npu': the project's devices could "
                                          r"not be read: .*board\\.toml is not valid TOML"):
        get_device("npu")
""")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "x..y"])
def test_a_calibration_name_that_is_not_a_file_name_is_an_error(tmp_path, monkeypatch,
                                                                capsys, name):
    from pytest_flopbudget import __main__ as cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["calibrate", "--quick", "--name", name]) == 2
    assert f"error: --name: device name {name!r} cannot name a file in .flopbudget/" in (
        capsys.readouterr().err)
    assert list(tmp_path.rglob("*")) == []  # nothing measured, nothing written


def test_device_names_that_name_files_are_kept():
    from pytest_flopbudget.devices.project import check_device_name, device_file_path

    for name in ("host", "rpi5-ort", "jetson_orin.int8", "a+b", "7"):
        assert check_device_name(name) == name
    assert device_file_path(Path("/p"), "rpi5-ort") == Path("/p/.flopbudget/rpi5-ort.toml")
    with pytest.raises(DeviceError, match="cannot name a file"):
        device_file_path(Path("/p"), "../../evil")


def test_calibrate_never_writes_over_a_file_that_is_not_a_device_file(tmp_path, monkeypatch,
                                                                     capsys):
    from pytest_flopbudget import __main__ as cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.flopbudget]\n")
    assert cli.main(["calibrate", "--quick", "--out", "pyproject.toml"]) == 2
    assert ("error: --out: pyproject.toml exists and is not a device file (no [devices] "
            "table)") in capsys.readouterr().err
    assert (tmp_path / "pyproject.toml").read_text() == "[tool.flopbudget]\n"


def test_calibrating_a_name_another_device_file_declares_is_refused(tmp_path, monkeypatch,
                                                                   capsys):
    # .flopbudget/calib-2026.toml declares 'board': a board.toml beside it would declare it
    # twice and break every device of the project
    from pytest_flopbudget import __main__ as cli

    monkeypatch.chdir(tmp_path)
    other = device_file(tmp_path / ".flopbudget" / "calib-2026.toml", "board")
    assert cli.main(["calibrate", "--quick", "--name", "board"]) == 2
    assert (f"error: --name: device 'board' is already declared by {other.resolve()}"
            in capsys.readouterr().err.replace(str(other), str(other.resolve())))
    assert sorted(p.name for p in (tmp_path / ".flopbudget").iterdir()) == ["calib-2026.toml"]
