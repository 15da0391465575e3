"""The cold-weight probes of ONNX Runtime: chains of linears timed in a fresh process.

A runtime that packs its weights once (ONNX Runtime) fetches weights that come from memory
before a product's arithmetic, and a model keeps its weights in the cache up to a size that
depends on where its memory sits: in a fresh process, each chain loaded into memory just
mapped and dropped once timed, a chain of 16-row linears on distinct 2.25 MiB weight
matrices ran as fast at 14 matrices (31.5 MiB) as on one (0.048 against 0.045 ms a linear)
and took all its weights from memory from 25 (0.090-0.095); in a process that had allocated
and freed hundreds of MiB before (a calibration's), or with every chain's session alive at
once, 14 already took 0.076-0.095 ms. A model is deployed in a process of its own, so the
chains run in one (:func:`chains_in_process`), one session at a time (:func:`chain_seconds`).
Where a process's memory sits is a draw: in six fresh processes, 14 matrices took 0.043,
0.043, 0.047, 0.049, 0.057 and 0.070 ms a linear, 21 matrices 0.055-0.084 (one matrix:
0.044-0.047). The calibration takes the mean over :data:`CHAIN_PROCESSES` processes
(:func:`chains_in_processes`), what a model's process can expect.

The chain (:func:`chain_model`) is built with ``onnx.helper``, not exported: an export of the
longest (56 linears here) would take longer than its timing.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .structure import ROWS_FEW, ROWS_WIDTH
from .timing import CalibrationError, Timer, Timing

#: Seconds the timing process may take.
CHAIN_TIMEOUT = 300.0
#: Fresh processes the chains are timed in, one after the other, per pass.
CHAIN_PROCESSES = 3
#: ``subprocess.run``'s signature, as far as :func:`chains_in_process` uses it.
Runner = Callable[..., "subprocess.CompletedProcess[str]"]

_CODE = ("import json, sys\n"
         "from pytest_flopbudget.calibration.weight_chains import chain_seconds\n"
         "print(json.dumps(chain_seconds(*json.loads(sys.argv[1]))))\n")


def chain_model(copies: int, rows: int = ROWS_FEW, width: int = ROWS_WIDTH) -> Any:
    """An ONNX model of ``copies`` MatMul nodes in a chain, each on its own ``width`` x
    ``width`` weight matrix (an initializer, scaled by ``1 / sqrt(width)`` so the values
    keep their size), from a ``rows`` x ``width`` input ``x`` to the output ``y``: the cold
    probes' linear run through ``copies`` distinct weight matrices, as a model's layers run.
    ``copies`` 0: one Identity node, what a run costs besides its linears."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    generator = np.random.default_rng(copies)
    scale = np.float32(1 / width ** 0.5)
    weights = [numpy_helper.from_array(
        generator.standard_normal((width, width), dtype=np.float32) * scale, f"w{i}")
        for i in range(copies)]
    nodes = [helper.make_node("MatMul", ["x" if i == 0 else f"h{i}", f"w{i}"],
                              ["y" if i == copies - 1 else f"h{i + 1}"], name=f"matmul{i}")
             for i in range(copies)] or [helper.make_node("Identity", ["x"], ["y"])]
    graph = helper.make_graph(
        nodes, f"chain{copies}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, width])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def chain_seconds(counts: Sequence[int], threads: int, repeats: int, warmup: int,
                  min_sample_s: float, patience_s: float) -> list[list[float]]:
    """Per count of ``counts``: the chain of that many linears (:func:`chain_model`) in an
    ONNX Runtime session of its own (CPU execution provider, default graph optimisations,
    ``threads`` intra-op threads), built, timed with :class:`~.timing.Timer` and dropped
    before the next: ``[seconds per linear, samples kept, samples dropped, disturbed]``.
    A run's own cost (``InferenceSession.run`` on one Identity node, timed first: about 4
    us here, a tenth of a linear's) comes off each chain's time before it is shared out
    among its linears, so a chain of one is not dearer per linear than a longer one."""
    import numpy as np
    import onnxruntime as ort

    timer = Timer(patience_s)
    x = np.random.default_rng(0).standard_normal((ROWS_FEW, ROWS_WIDTH), dtype=np.float32)
    out: list[list[float]] = []
    run_s = 0.0
    for copies in (0, *counts):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        sess = ort.InferenceSession(chain_model(copies).SerializeToString(), options,
                                    providers=["CPUExecutionProvider"])
        timing = timer(functools.partial(sess.run, None, {"x": x}), repeats,
                       warmup=warmup, min_sample_s=min_sample_s)
        del sess  # its memory freed before the next chain is loaded
        if not copies:
            run_s = timing.seconds
            continue
        per_linear = max(timing.seconds - run_s, 0.0) / copies
        out.append([per_linear, timing.kept, timing.dropped, timing.disturbed])
    return out


def chains_in_process(counts: Sequence[int], threads: int, repeats: int, warmup: int,
                      min_sample_s: float, patience_s: float,
                      run: Runner = subprocess.run) -> list[Timing]:
    """:func:`chain_seconds` in a fresh Python process (this interpreter), as
    :class:`~.timing.Timing` per count. Raises :class:`~.timing.CalibrationError` when the
    process fails or prints something else."""
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    args = json.dumps([list(counts), threads, repeats, warmup, min_sample_s, patience_s])
    what = "the process timing the cold-weight chains of linears"
    try:
        done = run([sys.executable, "-c", _CODE, args], env={**os.environ, "PYTHONPATH": path},
                   capture_output=True, text=True, timeout=CHAIN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise CalibrationError(f"{what} did not finish in {CHAIN_TIMEOUT:g} s") from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise CalibrationError(f"{what} did not run: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr or "").strip().splitlines()[-1:] or ["no message"]
        raise CalibrationError(f"{what} exited with {done.returncode}: {last[0]}")
    try:
        timings = [Timing(float(s), int(kept), int(dropped), float(worst))
                   for s, kept, dropped, worst in json.loads(done.stdout)]
    except (ValueError, TypeError) as exc:
        raise CalibrationError(f"{what} printed {done.stdout.strip()[:80]!r}, not timings "
                               f"({exc})") from None
    if len(timings) != len(counts):
        raise CalibrationError(f"{what} timed {len(timings)} chains, not {len(counts)}")
    return timings


def chains_in_processes(counts: Sequence[int], threads: int, repeats: int, warmup: int,
                        min_sample_s: float, patience_s: float,
                        processes: int = CHAIN_PROCESSES,
                        timed: Callable[..., list[Timing]] = chains_in_process
                        ) -> list[Timing]:
    """:func:`chains_in_process` in ``processes`` fresh processes, one after the other (each
    with an equal share of ``patience_s``): per count, the mean of their seconds per
    linear, the samples they kept and dropped added up, the worst disturbance."""
    runs = [timed(counts, threads, repeats, warmup, min_sample_s,
                  patience_s / max(processes, 1)) for _ in range(max(processes, 1))]
    return [Timing(sum(t.seconds for t in per) / len(per), sum(t.kept for t in per),
                   sum(t.dropped for t in per), max(t.disturbed for t in per))
            for per in zip(*runs, strict=True)]


__all__ = ["chain_model", "chain_seconds", "chains_in_process", "chains_in_processes"]
