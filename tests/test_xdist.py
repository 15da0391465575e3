"""Under xdist (``-n 2``) the plugin writes exactly what a serial run writes.

One project is run twice, serially and with ``-n 2``, each run with every output at once: the
terminal summary (``--flop-report``, ``-v`` for its hotspot tables), ``--flop-json``,
``--flop-html``, a baseline comparison (``--flop-baseline``, ``--flop-max-growth``,
``--flop-markdown``) and a saved baseline (``--flop-save-baseline``) that merges into the file
already there, in a run filtered by ``-k``. Both runs are given the same relative file names, so
their terminal summaries compare line for line; each run's files are read before the next run
replaces them, and each starts from the same files.

The project (fp32 on the default ``cpu``, one input row):

* ``test_vibration``: the seed-000 classifier on ``npu``, over its 5 ms latency budget: fails,
  and its hotspots name the ``lstm``.
* ``test_linear[n]``, n = 1..4, ``nn.Linear(1000, 500 n)`` under ``max_mflops=3``: 1,000 x 500 n
  MACs, FLOPs = 1,000,000 n + 500 n (bias) = 1,000,500 n: n = 1, 2 pass; n = 3 (3,001,500) and
  n = 4 (4,002,000) fail.
* ``test_net``: ``Net`` = ``features`` Linear(1000, 1000) then ``classifier`` Linear(1000,
  2000): 2,001,000 + 4,002,000 = 6,003,000 FLOPs. The baseline (``OLD``, written by hand) has
  it with a 1000-wide classifier: 2 x 2,001,000 = 4,002,000 FLOPs, so it grew by 50.0% > 10%
  and fails.
* ``test_typo``: a marker with a typo: an error, no measurement, no HTML section.
* ``test_deselected``: deselected by ``-k``.

Baseline comparison: ``test_net`` regressed; ``test_linear[1]`` and ``[2]`` are in the
baseline with the figures a run saves (so within limits); ``test_vibration``, ``test_linear[3]``
and ``[4]`` are new; ``test_deselected`` and ``test_gone`` (no longer in the file) are missing.
Saving over a copy of that baseline: the 6 tests profiled replace or join their entries,
``test_deselected``'s is kept (not run, still collected), ``test_gone``'s dropped (its file was
collected without it; under xdist the workers' collections are gathered).

Derivation of ``OLD``: ``Linear(1000, w)`` reads x (1,000) + W (1,000 w) + b (w) floats and
writes w. ``nn.Linear(1000, 500)``: 500,000 MACs, 1,000,500 FLOPs, 500,500 params = 2,002,000
weight bytes, access (1,000 + 500,000 + 500 + 500) x 4 = 2,008,000 bytes, activation (its
output) 2,000 bytes; on ``cpu`` (20 GB/s, 5 us per operator, memory-bound) 2,008,000 / 20e9 s
+ 5 us = 105.4 us. ``Linear(1000, 1000)``: 1,000,000 MACs, 2,001,000 FLOPs, 1,001,000 params =
4,004,000 bytes, access 4,012,000 bytes, 4,000 activation bytes, 200.6 + 5 = 205.6 us.
``Net(1000)``: twice that, 8,000 activation bytes (both outputs alive at once).
``nn.Linear(10, 10)``: 100 MACs, 210 FLOPs, 110 params = 440 bytes, access (10 + 100 + 10 +
10) x 4 = 520 bytes, 40 activation bytes, 520 / 20e9 s + 5 us = 5.026 us.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_html_report import CONFTEST, parse, sections

PROJECT = """
import pytest, torch
from torch import nn
from reference_models import VibrationClassifier

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Linear(1000, 1000)
        self.classifier = nn.Linear(1000, 2000)

    def forward(self, x):
        return self.classifier(self.features(x))

def x():
    return torch.randn(1, 1000)

@pytest.mark.flop_budget(max_latency_ms=5, device="npu")
def test_vibration(flop_budget):
    flop_budget(VibrationClassifier().eval(), torch.randn(1, 1, 1024))

@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.flop_budget(max_mflops=3)
def test_linear(flop_budget, n):
    flop_budget(nn.Linear(1000, 500 * n), x())

def test_net(flop_budget):
    flop_budget(Net().eval(), x())

@pytest.mark.flop_budget(max_mflop=3)
def test_typo(flop_budget):
    pass

def test_deselected(flop_budget):
    flop_budget(nn.Linear(10, 10), torch.randn(1, 10))
"""


def linear_entry(flops: int, macs: int, params: int, access: int, written: int,
                 latency: float) -> dict[str, Any]:
    figures = {"flops": flops, "macs": macs, "params": params, "access": access,
               "latency": latency}
    return {"Linear": {"device": "cpu", "dtype": "fp32", **figures, "weight": 4 * params,
                       "activation": written, "layers": {"": {**figures, "written": written}}}}


LAYER_1000 = {"flops": 2_001_000, "macs": 1_000_000, "params": 1_001_000, "access": 4_012_000,
              "written": 4_000, "latency": 0.0002056}
OLD = {"schema": "pytest-flopbudget-baseline/1", "tests": {
    "test_x.py::test_linear[1]": linear_entry(1_000_500, 500_000, 500_500, 2_008_000, 2_000,
                                              0.0001054),
    "test_x.py::test_linear[2]": linear_entry(2_001_000, 1_000_000, 1_001_000, 4_012_000, 4_000,
                                              0.0002056),
    "test_x.py::test_net": {"Net": {
        "device": "cpu", "dtype": "fp32", "flops": 4_002_000, "macs": 2_000_000,
        "params": 2_002_000, "weight": 8_008_000, "access": 8_024_000, "activation": 8_000,
        "latency": 0.0004112, "layers": {"features": LAYER_1000, "classifier": LAYER_1000}}},
    "test_x.py::test_deselected": linear_entry(210, 100, 110, 520, 40, 5.026e-06),
    "test_x.py::test_gone": {"Gone": {
        "device": "cpu", "dtype": "fp32", "flops": 1, "macs": 0, "params": 0, "weight": 0,
        "access": 4, "activation": 4, "latency": 5e-06, "layers": {}}},
}}
OUTPUTS = ("report.json", "report.html", "report.md", "saved.json")
PROFILED = ["test_x.py::test_linear[1]", "test_x.py::test_linear[2]",
            "test_x.py::test_linear[3]", "test_x.py::test_linear[4]", "test_x.py::test_net",
            "test_x.py::test_vibration"]


def section(result: Any) -> str:
    """The plugin's summary sections (budgets, report table, baseline), up to pytest's own."""
    out = result.stdout.str()
    return out[out.index("= flop budget ="):out.index("short test summary")]


def test_xdist_writes_every_report_exactly_as_a_serial_run(pytester, monkeypatch):
    pytest.importorskip("xdist")
    pytest.importorskip("matplotlib")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)  # never a real CI summary
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_x=PROJECT)
    (pytester.path / "old.json").write_text(json.dumps(OLD))
    args = ("-k", "not deselected", "--flop-report", "-v", "--flop-json=report.json",
            "--flop-html=report.html", "--flop-baseline=old.json", "--flop-max-growth=flops:10%",
            "--flop-markdown=report.md", "--flop-save-baseline=saved.json")
    runs = []
    for extra in (("-p", "no:randomly"), ("-n", "2")):
        (pytester.path / "saved.json").write_text(json.dumps(OLD))  # saved over, merged into
        result = pytester.runpytest(*extra, *args)
        runs.append((result, {name: (pytester.path / name).read_text() for name in OUTPUTS}))
    (serial, serial_files), (parallel, parallel_files) = runs

    for result in (serial, parallel):
        result.assert_outcomes(passed=2, failed=4, errors=1)
        result.stdout.fnmatch_lines(["*flops: 4,002,000 -> 6,003,000 (+50.0%) > max growth "
                                     "10% (--flop-max-growth)"])
    # (xdist's summary line does not count the tests its workers deselect)
    serial.assert_outcomes(passed=2, failed=4, errors=1, deselected=1)
    # the terminal summary, the JSON report, the HTML report, the Markdown and the baseline
    assert section(serial) == section(parallel)
    assert "lstm" in section(parallel)
    assert "compared with old.json: 1 regressed, 2 within limits, 3 new, 2 missing" in \
        section(parallel)
    assert ("baseline saved to saved.json: 7 tests, 7 models (1 kept from the file (not "
            "profiled in this run); 1 dropped (no longer collected): test_x.py::test_gone)") \
        in section(parallel)
    assert serial_files == parallel_files
    # every worker's tests are in the reports; the typo's error has no section of its own
    assert set(sections(parse(parallel_files["report.html"]))) == {
        "test_vibration", "test_net", *(f"test_linear[{n}]" for n in range(1, 5))}
    assert [t["nodeid"] for t in json.loads(parallel_files["report.json"])["tests"]] == \
        sorted([*PROFILED, "test_x.py::test_typo"])
    saved = json.loads(parallel_files["saved.json"])["tests"]
    assert sorted(saved) == sorted([*PROFILED, "test_x.py::test_deselected"])
    assert saved["test_x.py::test_deselected"] == OLD["tests"]["test_x.py::test_deselected"]
    # the hand-written baseline holds what a run saves for the unchanged tests (latency: a
    # sum of floats, to the last bits)
    for nodeid in ("test_x.py::test_linear[1]", "test_x.py::test_linear[2]"):
        (new, new_latency), (old, old_latency) = (
            split_latency(saved[nodeid]["Linear"]), split_latency(OLD["tests"][nodeid]["Linear"]))
        assert new == old
        assert new_latency == pytest.approx(old_latency, rel=1e-12)


def split_latency(entry: dict[str, Any]) -> tuple[dict[str, Any], list[float]]:
    """A baseline entry without its latencies, and its latencies (the model's, then each
    layer's)."""
    rest = {k: v for k, v in entry.items() if k not in ("latency", "layers")}
    layers = {name: {k: v for k, v in figures.items() if k != "latency"}
              for name, figures in entry["layers"].items()}
    return {**rest, "layers": layers}, [entry["latency"], *(figures["latency"] for figures
                                                           in entry["layers"].values())]
