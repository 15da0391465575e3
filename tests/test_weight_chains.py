"""The cold-weight chains of linears through ONNX Runtime: the model built by hand-checked
shape, the fresh process's answers read (a fake process) and one small real run."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from pytest_flopbudget.calibration.timing import CalibrationError, Timing
from pytest_flopbudget.calibration.weight_chains import (
    chain_model,
    chain_seconds,
    chains_in_process,
    chains_in_processes,
)

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_a_chain_runs_each_linear_on_a_weight_matrix_of_its_own() -> None:
    model = chain_model(3)
    graph = model.graph
    # 3 MatMul nodes, x -> h1 -> h2 -> y, on w0, w1, w2
    assert [n.op_type for n in graph.node] == ["MatMul"] * 3
    assert [list(n.input) for n in graph.node] == [["x", "w0"], ["h1", "w1"], ["h2", "w2"]]
    assert [list(n.output) for n in graph.node] == [["h1"], ["h2"], ["y"]]
    # three distinct 768 x 768 float matrices: 3 x 589,824 elements, 2,359,296 bytes each
    dims = [list(t.dims) for t in graph.initializer]
    assert dims == [[768, 768]] * 3
    assert len({t.raw_data for t in graph.initializer}) == 3
    assert all(len(t.raw_data) == 2_359_296 for t in graph.initializer)
    # the input: 16 rows of 768 features
    shape = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert shape == [16, 768]
    # no linear: one Identity node, what a run costs besides its linears
    empty = chain_model(0).graph
    assert [n.op_type for n in empty.node] == ["Identity"] and not empty.initializer


def _done(stdout: str, returncode: int = 0, stderr: str = "") -> Any:
    return lambda *args, **kwargs: subprocess.CompletedProcess(args, returncode, stdout,
                                                              stderr)


def test_the_process_answers_one_timing_per_chain() -> None:
    printed = json.dumps([[4.6e-5, 5, 0, 0.0], [9.4e-5, 5, 2, 0.3]])
    timings = chains_in_process([1, 56], 2, 5, 2, 0.01, 15.0, run=_done(printed))
    assert timings == [Timing(4.6e-5, 5, 0, 0.0), Timing(9.4e-5, 5, 2, 0.3)]


@pytest.mark.parametrize(("done", "message"), [
    (_done("", 1, "Traceback\nImportError: no onnxruntime"),
     "exited with 1: ImportError: no onnxruntime"),
    (_done("warming up"), "printed 'warming up', not timings"),
    (_done("[[4.6e-05, 5, 0, 0.0]]"), "timed 1 chains, not 2"),
])
def test_a_failed_process_is_a_calibration_error_that_says_how(done: Any, message: str) -> None:
    with pytest.raises(CalibrationError, match=message):
        chains_in_process([1, 56], 2, 5, 2, 0.01, 15.0, run=done)


def test_a_process_that_does_not_start_or_finish_is_a_calibration_error() -> None:
    def late(*args: Any, **kwargs: Any) -> Any:
        raise subprocess.TimeoutExpired("python", 300)

    def missing(*args: Any, **kwargs: Any) -> Any:
        raise OSError("no such interpreter")

    with pytest.raises(CalibrationError, match="did not finish in 300 s"):
        chains_in_process([1], 2, 5, 2, 0.01, 15.0, run=late)
    with pytest.raises(CalibrationError, match="did not run: no such interpreter"):
        chains_in_process([1], 2, 5, 2, 0.01, 15.0, run=missing)


def test_a_runs_own_cost_comes_off_before_the_linears_share_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # on a fake clock: a run costs 4 us besides its linears (the Identity model), a linear
    # 42 us: the chain of 1 takes 46 us, of 4 172 us; per linear (46 - 4) / 1 = 42 and
    # (172 - 4) / 4 = 42 us, not 46 and 43
    import onnx
    import onnxruntime as ort

    from pytest_flopbudget.calibration import weight_chains

    class Session(ort.InferenceSession):  # type: ignore[misc]
        """A real session that knows how many linears its model runs."""

        def __init__(self, model: bytes, *args: Any, **kwargs: Any) -> None:
            super().__init__(model, *args, **kwargs)
            self.linears = sum(n.op_type == "MatMul"
                               for n in onnx.load_from_string(model).graph.node)

    class Clock:
        """A timer that reads 4 us a run and 42 us a linear, whatever the machine does."""

        def __init__(self, patience_s: float) -> None:
            pass

        def __call__(self, fn: Any, repeats: int, warmup: int = 2,
                     min_sample_s: float = 0.0) -> Timing:
            return Timing(4e-6 + 42e-6 * fn.func.__self__.linears, repeats, 0, 0.0)

    monkeypatch.setattr(weight_chains, "Timer", Clock)
    monkeypatch.setattr(ort, "InferenceSession", Session)
    timed = chain_seconds([1, 4], 1, 3, 1, 0.0, 1.0)
    assert [t[0] for t in timed] == [pytest.approx(42e-6), pytest.approx(42e-6)]


def test_the_processes_draws_are_averaged() -> None:
    # three processes: 14 matrices at 43, 49 and 70 us a linear (a draw of where each put
    # its memory), one matrix at 44, 46 and 45 us: means 54 and 45 us; 5 samples kept in
    # each, 2 dropped in the second, the worst disturbance 0.3
    draws = iter([[Timing(44e-6, 5, 0, 0.0), Timing(43e-6, 5, 0, 0.0)],
                  [Timing(46e-6, 5, 2, 0.3), Timing(49e-6, 5, 0, 0.1)],
                  [Timing(45e-6, 5, 0, 0.0), Timing(70e-6, 5, 0, 0.0)]])
    patience: list[float] = []

    def timed(counts: list[int], threads: int, repeats: int, warmup: int,
              min_sample_s: float, patience_s: float) -> list[Timing]:
        patience.append(patience_s)
        return next(draws)

    got = chains_in_processes([1, 14], 2, 5, 2, 0.01, 15.0, processes=3, timed=timed)
    assert got == [Timing(pytest.approx(45e-6), 15, 2, 0.3),
                   Timing(pytest.approx(54e-6), 15, 0, 0.1)]
    assert patience == [5.0, 5.0, 5.0]  # an equal share of the 15 s each


def test_two_short_chains_run_for_real() -> None:
    # in this process, as the fresh one runs them: one timing per chain, per linear
    timed = chain_seconds([1, 2], 1, 3, 1, 0.0, 1.0)
    assert len(timed) == 2
    assert all(len(t) == 4 and t[1] >= 3 for t in timed)
