"""Fault injection: what a hostile or unlucky user can do to a session, and what must hold.

Every case runs a real pytest session (``pytester``) and asserts on its output and exit
status: bad input is one clear message naming the test, option or config key, never a
traceback or an INTERNALERROR, and the other tests still run; the model under test is left
exactly as it was; no file is lost or left half-written, whatever kills the writer.

Exact figures: ``nn.Linear(1000, 1000)`` on one row does 1,000,000 MACs and 2,001,000
FLOPs (2 x 10^6 + 1,000 bias adds) and holds 1,001,000 parameters (10^6 weights + 1,000
biases).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

LINEAR = """
import pytest, torch
from torch import nn

def big():
    return nn.Linear(1000, 1000)

def x():
    return torch.randn(1, 1000)
"""

BIG_TEST = LINEAR + """
@pytest.mark.flop_budget(max_mflops=3)
def test_big(flop_budget):
    flop_budget(big(), x())

def test_plain():
    pass
"""


def clean(result: pytest.RunResult) -> str:
    """All output of a run, after checking it holds no traceback and no INTERNALERROR."""
    text = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in text
    assert "Traceback" not in text
    assert "During handling of the above exception" not in text
    return text


def temps(folder: Path) -> list[str]:
    """Temporary files a writer left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def pyproject(pytester: pytest.Pytester, text: str) -> None:
    pytester.makefile(".toml", pyproject=text)


# == absurd numbers ==========================================================================
@pytest.mark.parametrize("figures,key", [
    ("peak_flops = 1e-320\nbandwidth = 1e9", "peak_flops.fp32 = 1e-320"),
    ("peak_flops = 1e9\nbandwidth = 1e9\noverhead = 1e308", "overhead = 1e+308"),
    ("peak_flops = 1e9\nbandwidth = 1e-320", "bandwidth = 1e-320"),
    ("peak_flops = 1e9\nbandwidth = 1e9\nefficiency = {matmul = 1e-320}",
     "efficiency.matmul = 1e-320"),
    ("peak_flops = 1e3\nbandwidth = 1e9\npipeline_latency_factor = 1e308",
     "pipeline_latency_factor = 1e+308"),
    ("peak_flops = 1e9\nbandwidth = 1e9\ncompute_efficiency = {matmul = 1e-320}",
     "compute_efficiency.matmul = 1e-320"),
], ids=["peak-1e-320", "overhead-1e308", "bandwidth-1e-320", "efficiency-1e-320",
        "pipeline-1e308", "ceiling-1e-320"])
def test_an_absurd_device_figure_is_an_error_naming_the_device_key(pytester, figures, key):
    pyproject(pytester, f"[tool.flopbudget.devices.absurd]\n{figures}\n")
    pytester.makepyfile(test_x=LINEAR + """
@pytest.mark.flop_budget(max_latency_ms=5, device="absurd")
def test_absurd(flop_budget):
    flop_budget(big(), x())

def test_plain():
    pass
""")
    result = pytester.runpytest("--flop-report", "--flop-json=r.json")
    clean(result)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*device 'absurd' (pyproject.toml [[]tool.flopbudget.devices].absurd): the predicted "
        f"time is not a finite number of seconds: {key}*"])
    json.loads((pytester.path / "r.json").read_text())  # still valid JSON


def test_a_huge_but_finite_prediction_reads_compactly(pytester):
    # a MAC array 1e300 channels wide keeps 1000 / 1e300 of itself busy: 2,001,000 FLOPs at
    # 4e12 OP/s x 1e-297 take 5.0025e290 s = 5e+293 ms, (5.0025e293 / 5 - 1) = +1e+295%
    pyproject(pytester, '[tool.flopbudget.devices.wide]\nbase = "npu"\ntile = {reduce = 1e300}\n')
    pytester.makepyfile(test_x=LINEAR + """
@pytest.mark.flop_budget(max_latency_ms=5, device="wide")
def test_wide(flop_budget):
    flop_budget(big(), x())
""")
    result = pytester.runpytest("--flop-report")
    clean(result)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*max_latency_ms: 5e+293 ms > 5 ms (+1e+295%)",
                                 "*test_x.py::test_wide*wide int8*5e+293*OVER"])


def test_a_limit_too_small_for_a_float_still_reads(pytester):
    # 2.001 MFLOPs against 1e-320 MFLOPs: over by a factor no float holds
    pytester.makepyfile(test_x=LINEAR + """
@pytest.mark.flop_budget(max_mflops=1e-320)
def test_tiny(flop_budget):
    flop_budget(big(), x())
""")
    result = pytester.runpytest("--flop-report")
    clean(result)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*max_mflops: 2 MFLOPs > 1e-320 MFLOPs (+inf%)"])


def test_an_integer_limit_beyond_any_float_is_one_error(pytester):
    pytester.makepyfile(test_x=LINEAR + """
@pytest.mark.flop_budget(max_params=10**400)
def test_huge(flop_budget):
    flop_budget(big(), x())

def test_plain():
    pass
""")
    result = pytester.runpytest()
    clean(result)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*@flop_budget on test_x.py::test_huge: max_params must be a "
                                 "positive number, got an integer of 401 digits, too large for "
                                 "a float"])


# == unreadable and foreign files ============================================================
def test_a_non_utf8_pyproject_is_one_error_naming_it(pytester):
    # pytest reads a pyproject.toml beside its ini file too (and stops on one that is not
    # UTF-8, before any plugin loads); with -c it reads only the file given
    pytester.mkdir("cfg")
    (pytester.path / "cfg" / "pytest.ini").write_text("[pytest]\n")
    (pytester.path / "pyproject.toml").write_bytes(b'[tool.flopbudget]\ndevice = "np\xffu"\n')
    pytester.makepyfile(test_x=BIG_TEST)
    result = pytester.runpytest("-c", "cfg/pytest.ini", f"--rootdir={pytester.path}")
    clean(result)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["configuration error: pyproject.toml is not UTF-8 text "
                                 "(byte 30: b'\\xff'); TOML files must be UTF-8"])


@pytest.mark.parametrize("content,message", [
    (b'[devices.host]\npeak_flops = {fp32 = 1e9}\nbandwidth = 1\xff', "is not UTF-8 text"),
    (b'[devices.host]\npeak_flops = {fp32 = 1e9}\nbandwid', "is not valid TOML"),
    (b'[tool.something]\nx = 1\n', "no [[]devices.host] table"),
], ids=["non-utf8", "truncated", "foreign"])
def test_a_broken_host_file_is_one_error_naming_it(pytester, content, message):
    folder = pytester.mkdir(".flopbudget")
    (folder / "host.toml").write_bytes(content)
    pytester.makepyfile(test_x=BIG_TEST)
    result = pytester.runpytest()
    clean(result)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"configuration error: *host.toml*{message}*"])


BASELINE = b'{"schema": "pytest-flopbudget-baseline/1", "tests": '


@pytest.mark.parametrize("content,message", [
    (b'\xff\xfe{}', "cannot be read"),
    (BASELINE + b'{"test_x.py::test_big": {"Lin', "is not valid JSON (truncated or corrupt?)"),
    (b"[" * 100_000 + b"]" * 100_000, "is not valid JSON (nested too deeply)"),
    (BASELINE + b"[]}", "'tests' must be an object"),
    (b'{"schema": "pytest-flopbudget/1", "tests": []}', "it is a --flop-json report"),
    (BASELINE + b'{"t": {"m": {"flops": 1' + b"0" * 400 + b"}}}}",
     "'flops' must be a non-negative number, got an integer of 401 digits, too large for a "
     "float"),
], ids=["non-utf8", "truncated", "nested-too-deep", "foreign-shape", "a-json-report",
        "absurd-integer"])
def test_a_corrupt_baseline_is_one_error_naming_it(pytester, content, message):
    (pytester.path / "b.json").write_bytes(content)
    pytester.makepyfile(test_x=BIG_TEST)
    result = pytester.runpytest("--flop-baseline=b.json")
    text = clean(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--flop-baseline: baseline file b.json" in text and message in text


def test_a_baseline_path_that_is_a_folder_is_one_error(pytester):
    pytester.mkdir("b.json")
    pytester.makepyfile(test_x=BIG_TEST)
    result = pytester.runpytest("--flop-baseline=b.json")
    text = clean(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--flop-baseline: baseline file b.json" in text and "cannot be read" in text


def test_calibrating_into_a_folder_that_is_a_file_is_one_error(pytester):
    (pytester.path / ".flopbudget").write_text("not a folder\n")
    pytester.makepyfile(test_x="def test_plain():\n    pass\n")
    result = pytester.runpytest("--flop-calibrate")
    text = clean(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--flop-calibrate: could not write" in text and ".flopbudget" in text
    assert (pytester.path / ".flopbudget").read_text() == "not a folder\n"


# == the model is left as it was =============================================================
GUARDED = """
from collections import Counter, OrderedDict
import pytest, torch
from torch import nn

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        {init}

    def forward(self, x):
        if {real}:
            x = x[x > -100]          # reads values: the trace falls back to a real forward
        {change}
        return self.fc(x)

def test_unchanged(flop_budget):
    self = Model()
    {before}
    flop_budget(self, torch.randn(1, 4))
    assert flop_budget.record.measurements[0].traced == ("real" if {real} else "fake")
    assert {after}
"""


@pytest.mark.parametrize("real,init,change,before,after", [
    (False, "self.seen = []", "self.seen.append(x.shape)", "", "self.seen == []"),
    (False, "self.counts = {'calls': 0}", "self.counts['calls'] += 1", "",
     "self.counts == {'calls': 0}"),
    (False, "self.cache = {'keys': [], 'steps': {0}}",
     "self.cache['keys'].append(self.fc(x)); self.cache['steps'].add(1)", "",
     "self.cache == {'keys': [], 'steps': {0}}"),
    (True, "self.history = [torch.zeros(4)]", "self.history[0].add_(1)", "",
     "torch.equal(self.history[0], torch.zeros(4))"),
    (True, "pass", "self.fc.weight.data.mul_(2)", "w = self.fc.weight.detach().clone()",
     "torch.equal(self.fc.weight, w)"),
    (True, "pass", "with torch.no_grad(): self.fc.bias[0].fill_(7)",
     "b = self.fc.bias.detach().clone()", "torch.equal(self.fc.bias, b)"),
    (False, "pass", "self.fc.weight.note = 'seen'", "", "not hasattr(self.fc.weight, 'note')"),
    (False, "self.helpers = [nn.ReLU()]", "self.helpers[0].calls = 1", "",
     "not hasattr(self.helpers[0], 'calls')"),
    (False, "pass", "__import__('random').random()",
     "import random; state = random.getstate()", "random.getstate() == state"),
    (False, "self.c = Counter(a=1); self.o = OrderedDict(x=1, y=2)",
     "self.c['a'] += 1; self.o.move_to_end('x')", "",
     "self.c == Counter(a=1) and list(self.o.items()) == [('x', 1), ('y', 2)]"),
], ids=["list-append", "dict-bump", "generator-cache", "real:tensor-in-a-list",
        "real:weight-through-.data", "real:parameter-through-a-view",
        "tensor-attribute", "module-in-a-list", "python-random", "counter-and-ordereddict"])
def test_profiling_leaves_the_model_as_it_was(pytester, real, init, change, before, after):
    fields = {"real": real, "init": init, "change": change, "before": before or "pass",
              "after": after}
    source = GUARDED
    for key, value in fields.items():
        source = source.replace("{" + key + "}", str(value))
    pytester.makepyfile(test_x=source)
    result = pytester.runpytest()
    clean(result)
    result.assert_outcomes(passed=1)


def test_a_forward_that_raises_after_changing_the_model_leaves_it_as_it_was(pytester):
    pytester.makepyfile(test_x="""
import torch
from torch import nn

class Fails(nn.Module):
    def __init__(self):
        super().__init__()
        self.log = ["built"]
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        self.log.append("ran")
        self.fc.note = "touched"
        raise RuntimeError("boom")

def test_fails(flop_budget):
    model = Fails()
    try:
        flop_budget(model, torch.randn(1, 4))
    except RuntimeError:
        pass
    assert model.log == ["built"] and not hasattr(model.fc, "note")
""")
    result = pytester.runpytest()
    clean(result)
    result.assert_outcomes(passed=1)


def test_the_callers_input_tensor_is_not_written_by_a_real_fallback(pytester):
    pytester.makepyfile(test_x="""
import torch
from torch import nn

class InPlace(nn.Module):
    def forward(self, x):
        n = int((x > 0).sum())          # reads a value: a real forward
        return x.relu_() * n

def test_input(flop_budget):
    x = torch.tensor([[-1.0, 2.0]])
    flop_budget(InPlace(), x)
    assert flop_budget.record.measurements[0].traced == "real"
    assert x.tolist() == [[-1.0, 2.0]]
""")
    result = pytester.runpytest()
    clean(result)
    result.assert_outcomes(passed=1)


def test_a_scripted_model_profiles_and_is_left_as_it_was(pytester):
    pytester.makepyfile(test_x="""
import torch
from torch import nn

def test_scripted(flop_budget):
    model = torch.jit.script(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prof = flop_budget(model, torch.randn(1, 4))
    assert prof.macs == 4 * 8 + 8 * 2
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert list(dict(model.named_parameters())) == ["0.weight", "0.bias", "2.weight", "2.bias"]
""")
    result = pytester.runpytest()
    clean(result)
    result.assert_outcomes(passed=1)


# == files: never lost, never half-written ===================================================
OLD = '{"old": true}\n'


def slow_writer_conftest(action: str) -> str:
    """A conftest that makes every report write stop in ``fsync`` (after the data went to
    the temporary file, before it replaces the target) and do ``action`` there. Ctrl-C
    raises ``KeyboardInterrupt`` in that session, as in a terminal, even where this suite
    was started in the background (a shell starts background jobs with SIGINT ignored, and
    Python then leaves it ignored)."""
    return f"""
import os, signal, time
signal.signal(signal.SIGINT, signal.default_int_handler)
def _stop(fd):
    {action}
os.fsync = _stop
"""


@pytest.mark.parametrize("target", ["--flop-json=report.json", "--flop-html=other.html"],
                         ids=["same-file", "another-file-beside-it"])
def test_sigkill_while_writing_keeps_the_old_file_and_the_next_write_removes_the_temp(
        pytester, target):
    report = pytester.path / "report.json"
    report.write_text(OLD)
    pytester.makeconftest(slow_writer_conftest("time.sleep(120)"))
    pytester.makepyfile(test_x=BIG_TEST)
    writer = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                               "--flop-json=report.json"], cwd=pytester.path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not temps(pytester.path) and time.monotonic() < deadline:
            assert writer.poll() is None, "the writer ended before it wrote"
            time.sleep(0.1)
        assert temps(pytester.path), "the writer never started writing"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert report.read_text() == OLD  # the reader still sees the old file...
    assert len(temps(pytester.path)) == 1  # ...and the dead writer's temp is still there
    (pytester.path / "conftest.py").unlink()
    result = pytester.runpytest(target)  # the next write beside it cleans it up
    clean(result)
    assert temps(pytester.path) == []
    if target.startswith("--flop-json"):
        assert json.loads(report.read_text())["summary"]["tests"] == 1
    else:
        assert report.read_text() == OLD


def test_a_live_writers_temp_is_left_to_it(pytester):
    report = pytester.path / "report.json"
    report.write_text(OLD)
    pytester.makeconftest(slow_writer_conftest(
        "open('writing', 'w').close()\n"
        "    while not os.path.exists('go'):\n"
        "        time.sleep(0.05)"))
    pytester.makepyfile(test_x=BIG_TEST)
    writer = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                               "--flop-json=report.json"], cwd=pytester.path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not (pytester.path / "writing").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        live = temps(pytester.path)
        assert len(live) == 1
        (pytester.path / "conftest.py").unlink()
        other = pytester.runpytest("--flop-json=report.json")  # a second session, meanwhile
        clean(other)
        assert live[0] in temps(pytester.path)  # the live writer's temp is not touched
        (pytester.path / "go").touch()
        out, _ = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0, out.decode()
    assert json.loads(report.read_text())["summary"]["tests"] == 1
    assert temps(pytester.path) == []


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_an_interrupt_while_writing_keeps_the_old_file_and_ends_with_one_line(pytester,
                                                                              signame):
    report = pytester.path / "report.json"
    report.write_text(OLD)
    pytester.makeconftest(slow_writer_conftest(f"os.kill(os.getpid(), signal.{signame})"))
    pytester.makepyfile(test_x=BIG_TEST)
    result = pytester.runpytest_subprocess("--flop-json=report.json", "--flop-html=r.html")
    clean(result)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        f"interrupted ({signame}) while writing {report}: it is left as it was, and no "
        "report after it was written"])
    assert report.read_text() == OLD
    assert temps(pytester.path) == []
    assert not (pytester.path / "r.html").exists()


def test_a_full_disk_is_one_error_naming_the_file_and_the_old_file_stays(pytester):
    report = pytester.path / "report.json"
    report.write_text(OLD)
    pytester.makeconftest(slow_writer_conftest(
        "import errno\n    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))"))
    pytester.makepyfile(test_x=BIG_TEST)
    result = pytester.runpytest_subprocess("--flop-json=report.json")
    clean(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([f"could not write {report}: No space left on device"])
    assert report.read_text() == OLD
    assert temps(pytester.path) == []


def _mount(folder: Path, *options: str) -> bool:
    folder.mkdir(exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs",
                           str(folder)], capture_output=True).returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], capture_output=True)


def test_a_really_full_disk_is_one_error_and_the_old_file_stays(pytester):
    disk = pytester.path / "disk"
    if not _mount(disk, "size=4k"):
        pytest.skip("mounting a small tmpfs needs root")
    try:
        report = disk / "report.json"
        report.write_text(OLD)  # takes the only page
        pytester.makepyfile(test_x=BIG_TEST)
        result = pytester.runpytest(f"--flop-json={report}")
        clean(result)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stdout.fnmatch_lines([f"could not write {report}: No space left on device"])
        assert report.read_text() == OLD
        assert temps(disk) == []
    finally:
        _umount(disk)


@pytest.fixture
def read_only(pytester):
    """A folder holding ``report.json`` that nobody may write to (a chmod, or as root a
    read-only mount)."""
    folder = pytester.mkdir("ro")
    (folder / "report.json").write_text(OLD)
    folder.chmod(0o555)
    mounted = False
    if os.access(folder, os.W_OK):  # root ignores modes
        folder.chmod(0o755)
        if not _mount(folder, "size=64k"):
            pytest.skip("cannot make a read-only folder here")
        mounted = True
        (folder / "report.json").write_text(OLD)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    yield folder
    if mounted:
        _umount(folder)
    else:
        folder.chmod(0o755)


def test_a_read_only_folder_is_one_error_and_the_old_file_stays(pytester, read_only):
    report = read_only / "report.json"
    pytester.makepyfile(test_x=BIG_TEST)
    result = pytester.runpytest(f"--flop-json={report}")
    clean(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([f"could not write {report}: *"])
    assert report.read_text() == OLD
    assert temps(read_only) == []


def test_concurrent_sessions_saving_one_baseline_leave_one_whole_file(pytester):
    pytester.makepyfile(test_x=BIG_TEST)
    runs = [subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                              "--flop-save-baseline=b.json", f"--flop-json=r{i}.json"],
                             cwd=pytester.path, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT) for i in range(3)]
    for run in runs:
        out, _ = run.communicate(timeout=300)
        assert run.returncode == 0, out.decode()
    document = json.loads((pytester.path / "b.json").read_text())
    assert list(document["tests"]) == ["test_x.py::test_big"]
    assert temps(pytester.path) == []


# == two outputs, one file ===================================================================
@pytest.mark.parametrize("args,message", [
    (["--flop-json=out/r.json", "--flop-html=out/../out/r.json"],
     "--flop-json and --flop-html name the same file (out/r.json)"),
    (["--flop-markdown=b.json", "--flop-save-baseline=b.json"],
     "--flop-markdown and --flop-save-baseline name the same file (b.json)"),
    (["--flop-baseline=b.json", "--flop-json=b.json"],
     "--flop-json names the baseline being compared (--flop-baseline b.json)"),
    (["--flop-baseline=b.json", "--flop-save-baseline=./b.json"],
     "--flop-save-baseline names the baseline being compared (--flop-baseline b.json)"),
    (["--flop-json=pyproject.toml"],
     "--flop-json names the project's configuration (pyproject.toml)"),
], ids=["json-html", "markdown-save", "json-baseline", "save-compared", "json-pyproject"])
def test_two_uses_of_one_file_are_a_usage_error_naming_both(pytester, args, message):
    pyproject(pytester, "[tool.flopbudget]\n")
    pytester.makepyfile(test_x=BIG_TEST)
    pytester.runpytest("--flop-save-baseline=b.json")
    files = {name: (pytester.path / name).read_bytes() for name in ("b.json", "pyproject.toml")}
    result = pytester.runpytest(*args)
    text = clean(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in text
    assert {name: (pytester.path / name).read_bytes() for name in files} == files


@pytest.mark.parametrize("arg,message", [
    ("--flop-json=", "--flop-json needs a file path, got ''"),
    ("--flop-html=out", "--flop-html names a folder (out): give it a file path"),
    ("--flop-json=test_x.py", "--flop-json names an existing source file (test_x.py; a space "
                              "for '=' makes the next argument the path)"),
    ("--flop-markdown=conftest.py", "--flop-markdown names an existing source file "
                                    "(conftest.py;"),
], ids=["empty", "folder", "test-module", "conftest"])
def test_a_report_path_that_is_no_file_path_is_a_usage_error(pytester, arg, message):
    pytester.mkdir("out")
    pytester.makepyfile(test_x=BIG_TEST)
    pytester.makeconftest("")
    sources = {p.name: p.read_bytes() for p in pytester.path.glob("*.py")}
    result = pytester.runpytest(arg)
    text = clean(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in text
    assert {p.name: p.read_bytes() for p in pytester.path.glob("*.py")} == sources


@pytest.mark.parametrize("saving,message", [
    ("", "--flop-json names the baseline being compared (pyproject.toml [tool.flopbudget] "
         "baseline b.json)"),
    ("--flop-save-baseline=new.json", "--flop-json names the project's baseline "
                                      "(pyproject.toml [tool.flopbudget] baseline b.json)"),
], ids=["compared", "while-saving-elsewhere"])
def test_a_report_pointed_at_the_configured_baseline_is_refused(pytester, saving, message):
    pyproject(pytester, '[tool.flopbudget]\nbaseline = "b.json"\n')
    pytester.makepyfile(test_x=BIG_TEST)
    pytester.runpytest("--flop-save-baseline=b.json")  # saving to the configured file is fine
    before = (pytester.path / "b.json").read_bytes()
    result = pytester.runpytest("--flop-json=b.json", *filter(None, [saving]))
    text = clean(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in text
    assert (pytester.path / "b.json").read_bytes() == before


# == verdicts ================================================================================
@pytest.mark.parametrize("source,failing", [
    (LINEAR + """
pytestmark = pytest.mark.flop_budget(max_params=1000)

@pytest.mark.flop_budget(max_mflops=5)
def test_it(flop_budget):
    flop_budget(big(), x())
""", "max_params: 1,001,000 params > 1,000 params (+100000%)"),
    (LINEAR + """
@pytest.mark.flop_budget(max_mflops=1)
class TestIt:
    @pytest.mark.flop_budget(max_mflops=5)
    def test_it(self, flop_budget):
        flop_budget(big(), x())
""", "max_mflops: 2 MFLOPs > 1 MFLOPs (+100%)"),
    (LINEAR + """
@pytest.mark.flop_budget(max_mflops=5)
@pytest.mark.flop_budget(max_mflops=1)
def test_it(flop_budget):
    flop_budget(big(), x())
""", "max_mflops: 2 MFLOPs > 1 MFLOPs (+100%)"),
    (LINEAR + """
@pytest.mark.flop_budget(modules={"0": {"max_params": 1000}})
class TestIt:
    @pytest.mark.flop_budget(modules={"0": {"max_mflops": 5, "max_params": 10**7}})
    def test_it(self, flop_budget):
        flop_budget(nn.Sequential(big()), x())
""", "0: max_params: 1,001,000 params > 1,000 params (+100000%)"),
], ids=["module+function", "class+method", "two-on-one-function", "per-module-limits"])
def test_stacked_markers_keep_the_tightest_limit(pytester, source, failing):
    pytester.makepyfile(test_x=source)
    result = pytester.runpytest()
    clean(result)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{failing}"])


def test_stacked_markers_take_the_device_from_the_closest(pytester):
    pytester.makepyfile(test_x=LINEAR + """
@pytest.mark.flop_budget(device="npu", max_params=1000)
class TestIt:
    @pytest.mark.flop_budget(device="cpu", max_mflops=5)
    def test_it(self, flop_budget):
        flop_budget(big(), x())
""")
    result = pytester.runpytest()
    clean(result)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*flop budget exceeded: Linear on cpu (fp32)*",
                                 "*max_params: 1,001,000 params > 1,000 params*"])


def test_stacked_growth_limits_keep_the_tightest(pytester):
    pytester.makepyfile(test_x=LINEAR + """
SIZE = int(open("size").read())

@pytest.mark.flop_budget(max_growth="flops:1%")
class TestIt:
    @pytest.mark.flop_budget(max_growth="50%")
    def test_it(self, flop_budget):
        flop_budget(nn.Linear(SIZE, 1000), torch.randn(1, SIZE))
""")
    (pytester.path / "size").write_text("1000")
    pytester.runpytest("--flop-save-baseline=b.json").assert_outcomes(passed=1)
    (pytester.path / "size").write_text("1100")  # flops +10%: over 1%, within 50%
    result = pytester.runpytest("--flop-baseline=b.json")
    clean(result)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*> max growth 1% (@flop_budget on test_x.py::TestIt::test_it)"])


def test_an_over_budget_xfail_test_is_xfailed(pytester):
    pytester.makepyfile(test_x=LINEAR + """
@pytest.mark.xfail(reason="known to be heavy")
@pytest.mark.flop_budget(max_mflops=1)
def test_heavy(flop_budget):
    flop_budget(big(), x())
""")
    result = pytester.runpytest("-rxX")
    clean(result)
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["XFAIL test_x.py::test_heavy - known to be heavy"])


def test_a_strict_xfail_test_within_budget_is_xpass_strict(pytester):
    pytester.makepyfile(test_x=LINEAR + """
@pytest.mark.xfail(strict=True, reason="should be heavy")
@pytest.mark.flop_budget(max_mflops=5)
def test_light(flop_budget):
    flop_budget(big(), x())
""")
    result = pytester.runpytest("-rxX")
    clean(result)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*should be heavy*"])


def test_a_per_test_table_that_matches_no_test_is_a_warning(pytester):
    pyproject(pytester, '[tool.flopbudget.tests."test_x.py::test_gone"]\nmax_mflops = 1\n'
                        '[tool.flopbudget.tests."test_x.py::test_big"]\nmax_mflops = 5\n')
    pytester.makepyfile(test_x=BIG_TEST)
    result = pytester.runpytest()
    clean(result)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([
        '*warning: pyproject.toml [[]tool.flopbudget.tests]."test_x.py::test_gone" matches '
        'no collected test*'])
    assert "test_x.py::test_big\" matches" not in result.stdout.str()


def test_a_run_narrowed_by_paths_speaks_only_of_tables_of_files_it_collected(pytester):
    pyproject(pytester, '[tool.flopbudget.tests."test_y.py::*"]\nmax_mflops = 1\n'
                        '[tool.flopbudget.tests."test_x.py::test_gone"]\nmax_mflops = 1\n')
    pytester.makepyfile(test_x=BIG_TEST, test_y=BIG_TEST)
    result = pytester.runpytest("test_x.py", "-k", "test_plain")
    clean(result)
    result.stdout.fnmatch_lines(['*"test_x.py::test_gone" matches no collected test*'])
    assert "test_y.py" not in result.stdout.str()


@pytest.mark.parametrize("args", [("test_x.py::test_plain",), ("--lf",)])
def test_a_run_that_leaves_tests_out_while_collecting_does_not_warn_of_their_tables(
        pytester, args):
    # node ids on the command line, or --lf (nothing failed before: it runs everything,
    # but it may leave tests out), do not show every test of the file: no warning
    pyproject(pytester, '[tool.flopbudget.tests."test_x.py::test_big"]\nmax_mflops = 5\n')
    pytester.makepyfile(test_x=BIG_TEST)
    result = pytester.runpytest(*args)
    clean(result)
    assert "matches no collected test" not in result.stdout.str()


def test_a_per_test_table_matched_on_xdist_workers_is_not_a_warning(pytester):
    pytest.importorskip("xdist")
    pyproject(pytester, '[tool.flopbudget.tests."test_x.py::test_gone"]\nmax_mflops = 1\n'
                        '[tool.flopbudget.tests."test_x.py::test_big"]\nmax_mflops = 5\n')
    pytester.makepyfile(test_x=BIG_TEST)
    result = pytester.runpytest_subprocess("-n", "2", "--flop-save-baseline=b.json",
                                           "--flop-json=r.json")
    clean(result)
    result.stdout.fnmatch_lines(['*"test_x.py::test_gone" matches no collected test*'])
    assert "test_x.py::test_big\" matches" not in result.stdout.str()
    # the workers measured, the controller wrote both files whole
    assert list(json.loads((pytester.path / "b.json").read_text())["tests"]) == [
        "test_x.py::test_big"]
    assert json.loads((pytester.path / "r.json").read_text())["summary"]["tests"] == 1
    assert temps(pytester.path) == []


@pytest.mark.parametrize("where", ["pyproject", "ini"])
def test_a_configured_baseline_that_does_not_exist_yet_is_no_baseline_yet(pytester, where):
    if where == "pyproject":
        pyproject(pytester, '[tool.flopbudget]\nbaseline = ".flopbudget/baseline.json"\n')
        origin = "pyproject.toml [[]tool.flopbudget] baseline"
    else:
        pytester.makefile(".ini", pytest="[pytest]\nflop_baseline = .flopbudget/baseline.json\n")
        origin = "flop_baseline (ini option)"
    pytester.makepyfile(test_x=BIG_TEST)
    result = pytester.runpytest("--flop-max-growth=5%")
    clean(result)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([
        f"no baseline yet: .flopbudget/baseline.json ({origin}) does not exist; save one "
        "with --flop-save-baseline=.flopbudget/baseline.json"])


def test_an_explicit_baseline_that_does_not_exist_is_a_usage_error(pytester):
    pytester.makepyfile(test_x=BIG_TEST)
    result = pytester.runpytest("--flop-baseline=missing.json")
    text = clean(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--flop-baseline: baseline file missing.json" in text and "does not exist" in text


# == the public API ==========================================================================
def test_every_public_name_is_what_the_readme_says_after_every_submodule_is_imported():
    script = """
import importlib, inspect, pkgutil
import pytest
import pytest_flopbudget as pkg

for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    importlib.import_module(info.name)

kinds = {"profile": inspect.isfunction, "get_device": inspect.isfunction,
         "Device": inspect.isclass, "Latency": inspect.isclass, "LayerProfile": inspect.isclass,
         "ModelProfile": inspect.isclass,
         "TraceError": lambda v: inspect.isclass(v) and issubclass(v, Exception),
         "flop_budget": lambda v: isinstance(v, pytest.MarkDecorator),
         "__version__": lambda v: isinstance(v, str)}
assert sorted(kinds) == sorted(pkg.__all__), pkg.__all__
for name, ok in kinds.items():
    exec(f"from pytest_flopbudget import {name} as value")
    assert ok(value), (name, value)
import torch
from pytest_flopbudget import profile
assert profile(torch.nn.Linear(3, 2), torch.randn(1, 3)).macs == 6
print("API OK")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "API OK"


# == messages ================================================================================
def test_dtype_given_to_the_fixture_call_prices_that_profile(pytester):
    pytester.makepyfile(test_x=LINEAR + """
@pytest.mark.flop_budget(max_weight_mb=3, device="npu")   # int8 unless told otherwise
def test_fp16(flop_budget):
    prof = flop_budget(big(), x(), dtype="fp16")
    assert prof.dtype == "fp16" and prof.weight_bytes == 2 * 1_001_000
    assert flop_budget.record.measurements[0].dtype == "fp16"
""")
    result = pytester.runpytest()
    clean(result)
    result.assert_outcomes(passed=1)


def test_the_fixture_through_getfixturevalue_holds_the_test_to_its_budget(pytester):
    pytester.makepyfile(test_x=LINEAR + """
@pytest.mark.flop_budget(max_mflops=1)
def test_dynamic(request):
    request.getfixturevalue("flop_budget")(big(), x())
""")
    result = pytester.runpytest()
    clean(result)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*max_mflops: 2 MFLOPs > 1 MFLOPs (+100%)"])


def test_the_fixture_through_getfixturevalue_without_a_marker_measures(pytester):
    pytester.makepyfile(test_x=LINEAR + """
def test_dynamic(request):
    prof = request.getfixturevalue("flop_budget")(big(), x())
    assert prof.flops == 2_001_000
""")
    result = pytester.runpytest("--flop-report")
    clean(result)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_x.py::test_dynamic*Linear*2.00*1.00*1,001,000*passed"])


@pytest.mark.parametrize("call,message", [
    ('flop_budget(big(), x(), forward_kwargs="x")',
     "forward_kwargs must be a dict of keyword arguments for forward, got 'x'"),
    ("flop_budget(big(), x(), trace='slow')",
     "trace must be 'auto', 'fake' or 'real', got 'slow'"),
    ("flop_budget(big(), x(), dtype='int4')", "unknown dtype 'int4'"),
    ("flop_budget(big, x())", "profile() needs a torch.nn.Module, got function"),
    ("flop_budget.scaling(big(), lambda n: torch.randn(1, 1000), sizes=[8])",
     "sizes must be at least two different positive integers, got [8]"),
    ("flop_budget(nn.LazyLinear(3), x())",
     "LazyLinear has parameters that are not initialized yet (weight, bias)"),
], ids=["forward_kwargs", "trace", "dtype", "not-a-module", "scaling-sizes", "lazy-module"])
def test_a_wrong_profile_option_in_the_fixture_call_is_one_clear_failure(pytester, call,
                                                                          message):
    pytester.makepyfile(test_x=LINEAR + f"""
@pytest.mark.flop_budget(max_mflops=5)
def test_wrong(flop_budget):
    {call}
""")
    result = pytester.runpytest()
    clean(result)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*flop budget: {message}*".replace("[", "[[]")])


@pytest.mark.parametrize("base", ["", 'base = "npu"\n'], ids=["no-base", "base-itself"])
def test_overriding_one_figure_of_a_builtin_device_keeps_the_others(pytester, base):
    pyproject(pytester, f"[tool.flopbudget.devices.npu]\n{base}bandwidth = 5e9\n")
    pytester.makepyfile(test_x=LINEAR + """
@pytest.mark.flop_budget(max_mflops=5, device="npu")
def test_npu(flop_budget):
    flop_budget(big(), x())
    assert flop_budget.device.bandwidth == 5e9
    assert flop_budget.device.peak("int8") == 4e12   # the built-in's
    assert flop_budget.device.default_dtype == "int8"
""")
    result = pytester.runpytest()
    clean(result)
    result.assert_outcomes(passed=1)


def test_a_wrong_per_test_table_errors_only_the_tests_it_matches(pytester):
    # max_mflops = -1 in the table of test_big: test_big errors with it; test_other, also
    # budgeted, runs; a wrong table matching no test is said in the summary
    pyproject(pytester, '[tool.flopbudget.tests."test_x.py::test_big"]\nmax_mflops = -1\n'
                        '[tool.flopbudget.tests."test_x.py::test_gone"]\ndevice = "npu9"\n')
    pytester.makepyfile(test_x=BIG_TEST + """
@pytest.mark.flop_budget(max_mflops=5)
def test_other(flop_budget):
    flop_budget(big(), x())
""")
    result = pytester.runpytest()
    clean(result)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        '*ERROR at setup of test_big*',
        '*[[]tool.flopbudget.tests]."test_x.py::test_big": max_mflops must be a positive '
        'number, got -1*'])
    result.stdout.fnmatch_lines([
        '*"test_x.py::test_gone" matches no collected test*',
        "  and it is wrong: *\"test_x.py::test_gone\": device: unknown device 'npu9'*"])
    # the wrong table that matched is in the summary too (a test without a budget that it
    # matches would not show it)
    result.stdout.fnmatch_lines(['error: *"test_x.py::test_big": max_mflops must be a '
                                 'positive number, got -1 (the budgeted tests it matches '
                                 'error with it)'])
