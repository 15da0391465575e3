"""The ONNX Runtime path: per-node profiles read and mapped to rows and modules (by hand, on
written-out profiles and graphs), then end to end, small and quick: a calibration of a few
rows through ONNX Runtime and ``compare`` through both runtimes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_flopbudget import __main__ as cli
from pytest_flopbudget.calibration.onnx_runtime import (
    node_modules,
    profile_runs,
    row_seconds,
    scope_module,
)

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("scipy")


def test_scope_module_is_the_last_module_of_the_scopes() -> None:
    assert scope_module("['', 'seq', 'seq.1', '_native_batch_norm_legit_no_training']") == \
        "seq.1"
    assert scope_module("['', 'mean']") == ""
    assert scope_module("not a list") == ""


def _node(op: str, name: str, inputs: list[str], outputs: list[str], scopes: str = ""):
    node = onnx.helper.make_node(op, inputs, outputs, name=name)
    if scopes:
        entry = node.metadata_props.add()
        entry.key, entry.value = "pkg.torch.onnx.name_scopes", scopes
    return node


def _graph(nodes):
    return onnx.helper.make_model(onnx.helper.make_graph(nodes, "g", [], []))


def test_optimised_nodes_map_to_the_module_that_wrote_their_tensor() -> None:
    exported = _graph([
        _node("Conv", "c", ["x"], ["y"], "['', 'seq', 'seq.1', 'bn']"),
        _node("Relu", "r", ["y"], ["z"], "['', 'seq', 'seq.2', 'relu']"),
        _node("Transpose", "t", ["z"], ["w"], "['', 'flat', 'permute']"),
    ])
    optimized = _graph([
        _node("ReorderInput", "ri", ["x"], ["x_nchwc"]),
        _node("Conv", "fused", ["x_nchwc"], ["z"]),  # conv + relu: writes relu's result
        _node("Transpose", "t", ["z"], ["w"]),
    ])
    # ReorderInput reads x, which no exported node wrote, and writes a new tensor: it belongs
    # to the conv that consumes it
    assert node_modules(exported, optimized) == {"ri": "seq.2", "fused": "seq.2", "t": "flat"}


def test_a_layout_converted_conv_belongs_to_the_reorder_that_writes_its_result() -> None:
    exported = _graph([
        _node("Conv", "c", ["x", "w"], ["y"], "['', 'body', 'body.0', 'conv']"),
        _node("Relu", "r", ["y"], ["z"], "['', 'act', 'relu']"),
    ])
    # ONNX Runtime's NCHWc layout: every tensor of the conv is new, only ReorderOutput
    # writes the exported y; the conv is named after y
    optimized = _graph([
        _node("ReorderInput", "ri", ["x"], ["x_nchwc"]),
        _node("Conv", "y_nchwc", ["x_nchwc", "w_nchwc"], ["t1"]),
        _node("ReorderOutput", "ro", ["t1"], ["y"]),
        _node("Relu", "r", ["y"], ["z"]),
        _node("Identity", "lone", ["q"], ["q2"]),  # nothing to go by: the model
    ])
    assert node_modules(exported, optimized) == {
        "ri": "body.0", "y_nchwc": "body.0", "ro": "body.0", "r": "act", "lone": ""}


def test_a_network_in_the_nchwc_layout_keeps_each_conv_its_own_module() -> None:
    exported = _graph([
        _node("Conv", "c1", ["x", "w1"], ["conv2d"], "['', 'a', 'conv']"),
        _node("Clip", "k", ["conv2d"], ["hardtanh"], "['', 'act', 'hardtanh']"),
        _node("Conv", "c2", ["hardtanh", "w2"], ["conv2d_1"], "['', 'b', 'conv']"),
    ])
    # the whole chain runs in NCHWc; only the last ReorderOutput writes an exported tensor:
    # each conv goes by its name (the first fused with the Clip, named after its result)
    optimized = _graph([
        _node("Conv", "hardtanh_nchwc", ["x", "w1n"], ["t1"]),
        _node("Conv", "conv2d_1_nchwc", ["t1", "w2n"], ["t2"]),
        _node("ReorderOutput", "ro", ["t2"], ["conv2d_1"]),
    ])
    assert node_modules(exported, optimized) == {
        "hardtanh_nchwc": "act", "conv2d_1_nchwc": "b", "ro": "b"}


def test_a_node_is_never_attributed_to_the_warm_up_nodes_through_what_it_reads() -> None:
    exported = _graph([
        _node("Max", "m", ["x", "x"], ["xw"], "['', 'warm', 'maximum']"),
        _node("HardSwish", "h", ["xw"], ["y"], "['', 'b.87', 'hardswish']"),
    ])
    # ONNX Runtime writes a HardSigmoid of its own (a tensor no exported node wrote) that
    # reads the warm-up's output: it belongs to the row that consumes it, not to "warm"
    optimized = _graph([
        _node("Max", "m", ["x", "x"], ["xw"]),
        _node("HardSigmoid", "hs", ["xw"], ["t"]),
        _node("Mul", "mul", ["xw", "t"], ["y"]),
    ])
    assert node_modules(exported, optimized) == {"m": "warm", "hs": "b.87", "mul": "b.87"}


def test_a_suite_row_reads_warm_inputs_and_hands_its_result_to_a_sink_in_no_row(
        tmp_path: Path) -> None:
    import torch

    from pytest_flopbudget.calibration.microbench import Bench, fn
    from pytest_flopbudget.calibration.onnx_runtime import Suite, export, optimize

    add = fn("add", "elementwise", torch.add, torch.ones(64), torch.full((64,), 2.0))
    ids = Bench("gather", "data", torch.nn.Embedding(10, 4), (torch.tensor([1, 2, 3]),))
    flip = fn("transpose", "data", lambda x: x.t().contiguous(), torch.ones(8, 4))
    probe = fn("sum", "structure", torch.sum, torch.ones(64))
    suite = Suite([add, ids, flip, probe], [True, True, True, False])
    inputs = (*add.inputs, *ids.inputs, *flip.inputs, *probe.inputs)
    # a warm row's result is its first element (1 + 2 = 3); the probe's is whole
    outs = suite(*inputs)
    assert outs[0].tolist() == [3.0] and outs[3].item() == 64.0
    path, modules = optimize(export(suite, inputs, tmp_path / "suite.onnx"))
    ops = {n.name: n.op_type for n in onnx.load(str(path)).graph.node}
    in_module = {m: sorted(ops[n] for n in ops if modules[n] == m) for m in set(modules.values())}
    # one Max per float input of a warm row: the add's two and the transpose's one (not the
    # integer ids of the embedding, not the probe's)
    assert in_module["warm"] == ["Max"] * 3
    # each row keeps its own nodes: the sink reads the transpose's result in memory order,
    # so ONNX Runtime cannot drop the Transpose
    assert in_module["b.0"] == ["Add"] and in_module["b.2"] == ["Transpose"]
    assert in_module["b.3"] == ["ReduceSum"]
    assert set(in_module["sink"]) <= {"Reshape", "Slice", "Gather"} and in_module["sink"]
    with pytest.raises(ValueError, match="2 warm flags for 3 rows"):
        Suite([add, ids, probe], [True, True])


def test_a_profile_is_read_run_by_run(tmp_path: Path) -> None:
    events = [
        {"cat": "Session", "name": "model_run", "ts": 100, "dur": 50},
        {"cat": "Node", "name": "a_kernel_time", "ts": 105, "dur": 10},
        {"cat": "Node", "name": "b_kernel_time", "ts": 120, "dur": 20},
        {"cat": "Node", "name": "a_fence_before", "ts": 104, "dur": 1},  # not a kernel
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 60},
        {"cat": "Node", "name": "a_kernel_time", "ts": 205, "dur": 12},
        {"cat": "Node", "name": "b_kernel_time", "ts": 220, "dur": 28},
    ]
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(events))
    runs = profile_runs(str(path))
    assert runs == [{"": 50.0, "a": 10.0, "b": 20.0}, {"": 60.0, "a": 12.0, "b": 28.0}]
    # rows: a is in row 0, b in row 1. Run 1: 50 - 30 = 20 us between nodes, 10 us per node:
    # row 0 20 us, row 1 30 us; run 2: 20 us, 10 each: 22 and 38. Medians of two: 21, 34 us
    modules = {"a": "b.0.parts.0", "b": "b.1"}
    assert row_seconds(runs, modules, 2) == [pytest.approx(21e-6), pytest.approx(34e-6)]


ROWS = ("conv-bn-relu 3x3 48->48 at 28x28", "linear 77x768 -> 768", "relu of 256 KiB",
        "gelu of 256 KiB", "layer_norm 196 x 384", "tiny relu")


def test_a_calibration_through_onnx_runtime_end_to_end(tmp_path: Path) -> None:
    """A quick calibration of a few rows: one export of the suite, one profiled pass; the
    device carries ONNX Runtime's fusion, and its sources say what ran."""
    from pytest_flopbudget.calibration.calibrate import run_calibration
    from pytest_flopbudget.calibration.microbench import rows

    by_name = {b.what: b for b in rows()}
    result = run_calibration(tmp_path / "ort.toml", quick=True, runtime="onnxruntime",
                             name="host-ort", benches=[by_name[n] for n in ROWS],
                             log=lambda _: None)
    device = result.device
    assert device.name == "host-ort" and device.fusion == "onnxruntime"
    assert device.fresh_output_bandwidth is None  # ONNX Runtime's arena keeps its memory
    assert all(t.seconds > 0 for t in result.passes[0].rows)  # every row ran some node
    assert "ONNX Runtime" in device.sources["overheads.elementwise"]
    assert ("the fastest of add, sum and copy (the copy timed with PyTorch: the hardware's "
            "bandwidth) over 128 MiB") in device.sources["bandwidth"]
    # the cache's capacity from copies of growing size, timed with PyTorch
    assert "copies of" in device.sources["onchip_bytes"]
    text = (tmp_path / "ort.toml").read_text()
    assert "[devices.host-ort]" in text and "--runtime onnxruntime --name host-ort" in text


def test_the_cold_weight_chains_give_the_fetch_rate_and_the_half_point(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chains of linears (timed in a fresh process, faked here) set
    ``cold_weight_bandwidth`` and ``cold_weight_bytes``; the rows of the suite are fitted
    with their weights from memory."""
    from pytest_flopbudget.calibration import calibrate as calibrate_module
    from pytest_flopbudget.calibration import onnx_runtime
    from pytest_flopbudget.calibration.calibrate import run_calibration
    from pytest_flopbudget.calibration.microbench import rows
    from pytest_flopbudget.calibration.timing import Timing
    from pytest_flopbudget.counting.profile import profile
    from pytest_flopbudget.devices.roofline import predict

    asked: list[list[int]] = []

    def chains(counts: list[int], *args: Any) -> list[Timing]:  # a quick plan: one process
        # per linear: 46 us on one matrix; 7 and 14 matrices as fast, 18 a quarter and 21
        # three quarters of the way to 94 us, all from 25 matrices up
        asked.append(list(counts))
        share = {1: 0.0, 7: 0.0, 14: 0.0, 18: 0.25, 21: 0.75}
        return [Timing(46e-6 + share.get(n, 1.0) * 48e-6, 3, 0, 0.0) for n in counts]

    monkeypatch.setattr(calibrate_module, "largest_cache", lambda: (32 << 20, "32 MiB"))
    monkeypatch.setattr(onnx_runtime, "chains_in_processes", chains)
    by_name = {b.what: b for b in rows()}
    result = run_calibration(tmp_path / "ort.toml", quick=True, runtime="onnxruntime",
                             benches=[by_name[n] for n in ("linear 77x768 -> 768", "tiny relu")],
                             log=lambda _: None)
    # one matrix, then 1/2, 1, 5/4, 3/2, 7/4, 2, 5/2 and 3 times the 32 MiB cache in 2.25 MiB
    # matrices, and four times it
    assert asked == [[1, 7, 14, 18, 21, 25, 28, 36, 43, 56]]
    device = result.device
    # a linear's call passes 2,359,296 bytes of weights and 16 x 768 x 4 = 49,152 of output
    # through the cache: 2,408,448 bytes; half from memory between 18 matrices (0.25) and 21
    # (0.75), half way: 18 x 2,408,448 + 1.5 x 2,408,448 = 46,964,736 bytes
    assert device.cold_weight_bytes == 46_964_736
    # all from memory from 1.5 x that, 70,447,104 bytes (29.25 matrices): 36, 43 and 56 took
    # 48 us more than one: 2,359,296 / 48e-6 = 49.152 GB/s
    assert device.cold_weight_bandwidth == pytest.approx(49.152e9, rel=1e-3)
    assert "chains of 7, 14, 18, 21, 25, 28, 36, 43, 56 linears" in \
        device.sources["cold_weight_bandwidth"]
    assert "fetched before the arithmetic" in device.sources["cold_weight_bandwidth"]
    assert "half the weights come from memory" in device.sources["cold_weight_bytes"]
    # the linear row ran in the suite, its weights from memory: the fit priced it with them
    # fetched, (768 x 768 + 768) x 4 = 2,362,368 bytes at 49.152 GB/s, 48.06 us, on top of
    # the rest, as its device predicts it when told its weights come from memory (the fit's
    # own device: the file adds a default overhead the fit did not price the row with)
    assert result.fit is not None
    bench = by_name["linear 77x768 -> 768"]
    prof = profile(bench.module, *bench.inputs, trace="fake")
    lat = predict(prof, result.fit.device, cold_share=1.0)
    assert sum(t.cold_weight_seconds for t in lat.ops) == pytest.approx(48.06e-6, rel=1e-3)
    fitted = {name: after for name, _, after, _ in result.fit.rows}
    assert fitted["linear 77x768 -> 768"] == pytest.approx(lat.seconds, rel=1e-6)


def test_chains_that_cannot_be_timed_leave_the_cold_figures_out_and_say_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_flopbudget.calibration import onnx_runtime
    from pytest_flopbudget.calibration.calibrate import run_calibration
    from pytest_flopbudget.calibration.microbench import rows
    from pytest_flopbudget.calibration.timing import CalibrationError

    def fail(*args: Any) -> Any:
        raise CalibrationError("the process timing the cold-weight chains of linears exited "
                               "with 1: MemoryError")

    monkeypatch.setattr(onnx_runtime, "chains_in_processes", fail)
    lines: list[str] = []
    by_name = {b.what: b for b in rows()}
    result = run_calibration(tmp_path / "ort.toml", quick=True, runtime="onnxruntime",
                             benches=[by_name["tiny relu"]], log=lines.append)
    assert ("warning: the process timing the cold-weight chains of linears exited with 1: "
            "MemoryError; the device gets no cold_weight_bandwidth or cold_weight_bytes"
            ) in lines
    device = result.device
    assert device.cold_weight_bandwidth is None and device.cold_weight_bytes == 0
    assert "cold_weight_bandwidth" not in (tmp_path / "ort.toml").read_text()


MODELS = '''
import torch
from torch import nn

def build():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
    return model, torch.randn(1, 3, 16, 16)
'''


@pytest.mark.parametrize("runtime", ["eager", "onnxruntime"])
def test_compare_prints_predicted_next_to_measured(tmp_path: Path, runtime: str,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "models.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["compare", "models.py:build", "--runtime", runtime, "--device", "cpu",
                     "--repeats", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"Sequential on cpu through {runtime}: predicted ")
    assert lines[1].split() == ["layer", "type", "predicted", "ms", "measured", "ms",
                                "pred/meas"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert {"0", "4"} <= set(rows)  # the conv and the linear, each measured
    assert float(rows["4"][3]) > 0


def test_compare_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models.py").write_text("def build():\n    return 3\n")
    assert cli.main(["compare", "models.py:build", "--device", "cpu"]) == 2
    assert capsys.readouterr().err == ("error: models.py:build must return (model, inputs), "
                                       "got int\n")
    assert cli.main(["compare", "models.py", "--device", "cpu"]) == 2
    assert "expected MODULE:FACTORY" in capsys.readouterr().err
    assert cli.main(["compare", "nope_module:build", "--device", "cpu"]) == 2
    assert "cannot import 'nope_module'" in capsys.readouterr().err
    assert cli.main(["compare", "models.py:build", "--device", "nope"]) == 2
    assert "unknown device 'nope'" in capsys.readouterr().err
    # a factory file with a dataclass (it needs its module registered), a factory that
    # raises, and a model whose forward fails: each one line, no traceback
    (tmp_path / "dc.py").write_text(
        "from __future__ import annotations\nfrom dataclasses import dataclass\nimport torch\n"
        "@dataclass\nclass Cfg:\n    width: int = 4\n"
        "def build():\n    return torch.nn.Linear(Cfg().width, 2), torch.randn(1, 4)\n"
        "def broken():\n    raise ValueError('no weights file')\n"
        "class Bad(torch.nn.Module):\n    def forward(self, x):\n"
        "        raise RuntimeError('shape mismatch')\n"
        "def bad():\n    return Bad(), torch.randn(1, 4)\n")
    assert cli.main(["compare", "dc.py:build", "--device", "cpu", "--repeats", "1"]) == 0
    capsys.readouterr()
    assert cli.main(["compare", "dc.py:broken", "--device", "cpu"]) == 2
    assert capsys.readouterr().err == "error: dc.py:broken raised ValueError: no weights file\n"
    assert cli.main(["compare", "dc.py:bad", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot compare dc.py:bad on cpu: ") and "shape mismatch" in err
    assert err.count("\n") == 1


def test_the_comparison_table_marks_fused_layers_and_totals_by_hand() -> None:
    from pytest_flopbudget.calibration.compare import Comparison, LayerTime

    comp = Comparison("Net", "cpu", "eager", [
        LayerTime("conv", "Conv2d", 3e-3, 4e-3),
        LayerTime("relu", "ReLU", 0.0, 1e-3, fused_into="conv"),
        LayerTime("head", "Linear", 1e-3, 0.5e-3),
        LayerTime("flat", "Flatten", 0.0, 0.1e-3),
    ], predicted=4e-3, measured=5e-3)
    lines = comp.lines(top=3)
    # 4 / 5 ms = 0.80x; rows by max(measured, predicted): conv 4, relu 1, head 1 (tie, stable)
    assert lines[0] == ("Net on cpu through eager: predicted 4.000 ms, measured 5.000 ms "
                        "(predicted / measured 0.80x)")
    assert lines[2].split() == ["conv", "Conv2d", "3.0000", "4.0000", "0.75x"]
    # the ReLU runs inside conv's kernel on the device: no time of its own, not "0.00x"
    assert lines[3].split() == ["relu", "ReLU", "in", "conv", "1.0000", "fused"]
    assert lines[4].split() == ["head", "Linear", "1.0000", "0.5000", "2.00x"]
    # one layer left out, with its 0.1 ms measured
    assert lines[5] == "  (1 more layers, 0.100 ms measured)"


def test_row_times_add_up_to_the_unprofiled_run() -> None:
    # two runs of nodes a (row 0) and b (row 1); the profiled runs took 50 and 60 us but a run
    # without the profiler takes 24 us: the profiler cost more than the executor's own time
    runs = [{"": 50.0, "a": 10.0, "b": 20.0}, {"": 60.0, "a": 12.0, "b": 28.0}]
    modules = {"a": "b.0", "b": "b.1"}
    # run 1: (24 - 30) / 2 = -3 us per node: a 7, b 17; run 2: (24 - 40) / 2 = -8: a 4, b 20
    # medians of two: row 0 5.5 us, row 1 18.5 us (they add up to 24 us)
    assert row_seconds(runs, modules, 2, wall_us=24.0) == [pytest.approx(5.5e-6),
                                                            pytest.approx(18.5e-6)]
    # a node keeps at least a tenth of its profiled time: at 4 us unprofiled, run 1: -13 us
    # per node, a max(-3, 1.0) = 1.0, b max(7, 2.0) = 7; run 2: -18 us, a max(-6, 1.2) = 1.2,
    # b max(10, 2.8) = 10; medians: a 1.1 us, b 8.5 us
    assert row_seconds(runs, modules, 2, wall_us=4.0) == [pytest.approx(1.1e-6),
                                                           pytest.approx(8.5e-6)]


def test_the_profilers_own_cost_comes_off_each_node_then_all_scale_to_the_unprofiled_run(
) -> None:
    # the profiler adds 4 us to each node's own time; nodes a (row 0) and b (row 1)
    modules = {"a": "b.0", "b": "b.1"}
    # run 1: a 10, b 20 profiled -> a 6, b 16 (22 us); unprofiled 24 us: every node scaled
    # by 24 / 22 -> a 6.5455, b 17.4545
    # run 2 (disturbed): a 12, b 28 -> a 8, b 24 (32 us), more than 24 us unprofiled: scaled
    # by 24 / 32 = 0.75 -> a 6, b 18
    runs = [{"": 50.0, "a": 10.0, "b": 20.0}, {"": 60.0, "a": 12.0, "b": 28.0}]
    # medians of two: a (6.5455 + 6) / 2 = 6.2727 us, b (17.4545 + 18) / 2 = 17.7273 us
    assert row_seconds(runs, modules, 2, wall_us=24.0, cost_us=4.0) == [
        pytest.approx(6.2727e-6, rel=1e-4), pytest.approx(17.7273e-6, rel=1e-4)]
    # a node faster than the profiler's cost keeps a tenth of its time: a 3 us node with a
    # 4 us cost keeps 0.3 us; b 20 -> 16; 16.3 us against 16.3 us unprofiled: nothing to add
    assert row_seconds([{"": 30.0, "a": 3.0, "b": 20.0}], modules, 2, wall_us=16.3,
                       cost_us=4.0) == [pytest.approx(0.3e-6), pytest.approx(16e-6)]


def test_a_slower_unprofiled_run_lengthens_long_nodes_more_than_short_ones() -> None:
    # a 2 us node and a 198 us node, no profiler cost; the unprofiled run took 250 us, the
    # machine 25% slower: a 2.5 us, b 247.5 us. (An equal share would have given each 25 us
    # more: a 27 us, more than ten times its time.)
    modules = {"a": "b.0", "b": "b.1"}
    assert row_seconds([{"": 205.0, "a": 2.0, "b": 198.0}], modules, 2, wall_us=250.0,
                       cost_us=0.0) == [pytest.approx(2.5e-6), pytest.approx(247.5e-6)]


def test_each_profiled_run_scales_to_the_unprofiled_run_paired_with_it() -> None:
    modules = {"a": "b.0", "b": "b.1"}
    runs = [{"": 40.0, "a": 10.0, "b": 30.0}, {"": 80.0, "a": 20.0, "b": 60.0}]
    # run 1 (40 us of nodes) paired with 20 us unprofiled: x0.5 -> a 5, b 15; run 2 (80 us,
    # the machine twice as slow) with 40 us: x0.5 -> a 10, b 30; medians a 7.5, b 22.5 us
    assert row_seconds(runs, modules, 2, wall_us=[20.0, 40.0], cost_us=0.0) == [
        pytest.approx(7.5e-6), pytest.approx(22.5e-6)]
    # one figure for both runs (30 us): run 1 x0.75 -> a 7.5, b 22.5; run 2 x0.375 -> a 7.5,
    # b 22.5: the same medians here, but a count that does not match is an error
    with pytest.raises(ValueError, match="1 unprofiled runs for 2 profiled ones"):
        row_seconds(runs, modules, 2, wall_us=[20.0], cost_us=0.0)


def test_layout_conversions_count_in_the_run_but_in_no_row() -> None:
    # row 0: conv "c" (30 us) between a ReorderInput "ri" (8 us) and a ReorderOutput "ro"
    # (6 us); row 1: relu "r" (10 us); no profiler cost, the unprofiled run takes the 54 us
    # the nodes took: row 0 is its conv alone
    runs = [{"": 60.0, "ri": 8.0, "c": 30.0, "ro": 6.0, "r": 10.0}]
    modules = {"ri": "b.0", "c": "b.0", "ro": "b.0", "r": "b.1"}
    assert row_seconds(runs, modules, 2, wall_us=54.0, cost_us=0.0,
                       skip=frozenset({"ri", "ro"})) == [pytest.approx(30e-6),
                                                         pytest.approx(10e-6)]


def test_a_row_onnx_runtime_optimises_away_is_a_clear_error(tmp_path: Path) -> None:
    # a reshape to its own shape exports to a graph ONNX Runtime reduces to nothing: no node
    # to time, so the row cannot be measured (never 0 s, which no fit can take)
    import torch
    from torch import nn

    from pytest_flopbudget.calibration.calibrate import run_calibration
    from pytest_flopbudget.calibration.microbench import Bench, randn, rows
    from pytest_flopbudget.calibration.timing import CalibrationError

    class Same(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(x.shape)

    relu = next(b for b in rows() if b.what == "relu of 256 KiB")
    with pytest.raises(CalibrationError, match=r"ONNX Runtime ran no node for 1 calibration "
                       r"row\(s\) \(nothing at all\): their exported graphs were optimised"):
        run_calibration(tmp_path / "ort.toml", quick=True, runtime="onnxruntime",
                        benches=[relu, Bench("nothing at all", "data", Same(), (randn(4, 4),))],
                        log=lambda _: None)
    assert not (tmp_path / "ort.toml").exists()


def test_recurrent_and_tiny_rows_are_timed_each_in_a_session_of_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # an LSTM row and a tiny row run alone (their sessions built once, asked once per pass);
    # the GELU row only as a layer of the suite
    from pytest_flopbudget.calibration.calibrate import run_calibration
    from pytest_flopbudget.calibration.microbench import rows
    from pytest_flopbudget.calibration.onnx_runtime import OnnxRuntime

    alone: list[str] = []
    original = OnnxRuntime._alone

    def spy(self: OnnxRuntime, bench: Any) -> Any:
        alone.append(bench.what)
        return original(self, bench)

    monkeypatch.setattr(OnnxRuntime, "_alone", spy)
    by_name = {b.what: b for b in rows()}
    names = ["gelu of 256 KiB", "LSTM(64, 96) over 80 steps", "tiny relu"]
    result = run_calibration(tmp_path / "ort.toml", quick=True, runtime="onnxruntime",
                             benches=[by_name[n] for n in names], log=lambda _: None)
    assert alone == ["LSTM(64, 96) over 80 steps", "tiny relu"]
    assert all(t.seconds > 0 for t in result.passes[0].rows)
