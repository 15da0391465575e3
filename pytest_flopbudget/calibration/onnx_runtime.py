"""ONNX Runtime as a calibration runtime, and per-node times mapped back to modules.

A model is exported with ``torch.onnx.export(model, inputs, dynamo=True)`` and run in an
``InferenceSession`` on the CPU execution provider with the default graph optimisations and
``intra_op_num_threads = torch.get_num_threads()`` (:func:`session`). ONNX Runtime's profiler
(``SessionOptions.enable_profiling``) writes one event per node and run; the exporter records
on every node the module it came from (``pkg.torch.onnx.name_scopes``), and a node of the
optimised graph is traced back to the exported nodes by the tensors it writes (a fused node
writes its last member's result) or, failing that, reads (:func:`node_modules`).

The calibration (:class:`OnnxRuntime`) exports every row and structural probe as one suite
(one submodule per row, each row reading warm inputs as in a model) in a single graph, runs
it with the profiler, each profiled run paired with one without, and takes a row's time as
the median over runs of its nodes' times less the profiler's own cost, scaled to the
unprofiled run (:func:`row_seconds`). Between two runs of a row the suite passes hundreds of
MiB through the cache, so a row reads its weights from memory (:meth:`OnnxRuntime.cold_rows`);
chains of linears through more and more distinct weight matrices measure what that costs and
from what size a model's weights stop fitting in the cache (:mod:`.weight_chains`).

onnxruntime, onnx and onnxscript are an optional extra: ``pip install
'pytest-flopbudget[onnx]'``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import re
import statistics
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .microbench import Bench, randn
from .structure import MiB, Probe
from .timing import CalibrationError, Pass, Timer, Timing
from .weight_chains import chains_in_processes

INSTALL = "pip install 'pytest-flopbudget[onnx]'"
PACKAGES = ("onnxruntime", "onnx", "onnxscript")
#: What ONNX Runtime appends to the name of a node it moves to the NCHWc layout.
LAYOUT_SUFFIX = "_nchwc"
#: ONNX Runtime's layout conversions into and out of NCHWc.
LAYOUT_OPS = frozenset({"ReorderInput", "ReorderOutput"})
#: The metadata key of an exported node that names its module scopes.
SCOPES = "pkg.torch.onnx.name_scopes"
#: The module path of a suite's warm-up nodes (:class:`Suite`): they pass on exactly what
#: they read, so a node is never attributed to them through the tensors it reads.
WARM = "warm"
#: The module path of a suite's sinks (:class:`Suite`): a row hands its result there (one
#: element is kept), so it is an intermediate tensor of the graph, as a layer's is in a model.
SINK = "sink"


def missing() -> str:
    """``""`` when ONNX Runtime and the exporter's packages are installed, else what to do."""
    absent = [p for p in PACKAGES if importlib.util.find_spec(p) is None]
    if not absent:
        return ""
    return (f"--runtime onnxruntime needs {', '.join(absent)} (not installed): {INSTALL}")


def _require() -> None:
    text = missing()
    if text:
        raise ImportError(text)


def export(model: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path) -> Path:
    """Export ``model(*inputs)`` to ``path`` with ``torch.onnx.export(..., dynamo=True)``
    (its progress lines and warnings kept quiet)."""
    _require()
    quiet = io.StringIO()
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), \
                contextlib.redirect_stderr(quiet):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model.eval(), inputs, dynamo=True, verbose=False)
        program.save(str(path))  # type: ignore[union-attr]
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
    return path


def session(path: Path, profile_prefix: Path | None = None,
            optimized: Path | None = None) -> Any:
    """An ``InferenceSession`` as the calibration measures: CPU execution provider, default
    graph optimisations, ``intra_op_num_threads = torch.get_num_threads()``; with
    ``profile_prefix``, the per-node profiler on; with ``optimized``, the optimised graph
    written there."""
    _require()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def version() -> str:
    """ONNX Runtime's version."""
    import onnxruntime as ort

    return str(ort.__version__)


def scope_module(scopes: str) -> str:
    """The module path of an exported node from its ``name_scopes`` metadata
    (``"['', 'seq', 'seq.1', 'batch_norm']"`` -> ``"seq.1"``; ``"['', 'mean']"`` -> ``""``)."""
    try:
        names = json.loads(scopes.replace("'", '"'))
    except ValueError:
        return ""
    return str(names[-2]) if isinstance(names, list) and len(names) >= 2 else ""


def node_modules(exported: Any, optimized: Any,
                 transparent: frozenset[str] = frozenset({WARM, SINK})) -> dict[str, str]:
    """``{node name of the optimised graph: module path}``: through the exported node that
    wrote the same tensor (a fused node writes its last member's result); a node moved to
    the NCHWc layout (its tensors all new) through the exported tensor its name is made of
    (``relu_nchwc``: the node that wrote ``relu``); else through the exported node that wrote
    one of its inputs. A node that writes and reads only tensors the optimiser made (a
    ``ReorderInput`` of a graph input) belongs to the module of the nearest node that
    consumes what it writes, else of the one that wrote what it reads; ``""`` (the model)
    when none is found. A node is attributed to a module in ``transparent`` only through
    the tensors it writes, never through those it reads."""
    producer: dict[str, str] = {}
    for node in exported.graph.node:
        scopes = next((p.value for p in node.metadata_props if p.key == SCOPES), "")
        for out in node.output:
            producer[out] = scope_module(scopes)
    nodes = list(optimized.graph.node)
    found: dict[str, str | None] = {}
    for node in nodes:
        module = next((producer[t] for t in node.output if t in producer), None)
        base = re.sub(r"_token_\d+$", "", node.name)  # a name made unique
        if module is None and base.endswith(LAYOUT_SUFFIX):
            # ONNX Runtime names a node it moves to the NCHWc layout after the tensor the
            # original wrote ("relu_nchwc": a convolution fused with the ReLU that wrote "relu")
            module = producer.get(base[: -len(LAYOUT_SUFFIX)])
        if module is None:
            module = next((producer[t] for t in node.input
                           if t in producer and producer[t] not in transparent), None)
        found[node.name] = module
    consumers: dict[str, list[str]] = {}
    writer: dict[str, str] = {}
    for node in nodes:
        for t in node.input:
            consumers.setdefault(t, []).append(node.name)
        for t in node.output:
            writer[t] = node.name
    changed = True
    while changed:
        changed = False
        for node in nodes:
            if found[node.name] is not None:
                continue
            down = [found[c] for t in node.output for c in consumers.get(t, ())]
            up = [found[writer[t]] for t in node.input if t in writer]
            module = next((m for m in (*down, *up) if m is not None and m not in transparent),
                          None)
            if module is not None:
                found[node.name] = module
                changed = True
    return {name: module or "" for name, module in found.items()}


def optimize(path: Path) -> tuple[Path, dict[str, str]]:
    """Write ``path``'s graph as ONNX Runtime optimises it (default level), every node named
    (ONNX Runtime leaves the nodes of expanded functions unnamed, and its profiler would name
    them by an index no file shows), next to ``path``; return that file and each node's
    module (:func:`node_modules`). Running the written graph applies the same optimisations
    again, which change nothing."""
    import onnx

    optimized = path.with_suffix(".opt.onnx")
    session(path, optimized=optimized)
    graph = onnx.load(str(optimized))
    taken = {n.name for n in graph.graph.node}
    for i, node in enumerate(graph.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_n{i}"
            while node.name in taken:
                node.name += "_"
            taken.add(node.name)
    named = path.with_suffix(".named.onnx")
    onnx.save(graph, str(named))
    return named, node_modules(onnx.load(str(path)), graph)


def profile_runs(path: str) -> list[dict[str, float]]:
    """Per run of a profile file: ``{node name: microseconds}`` of its nodes, and under the
    key ``""`` the run's own microseconds (``model_run``)."""
    events = json.loads(Path(path).read_text())
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    nodes = sorted((e for e in events if e.get("cat") == "Node"
                    and str(e.get("name", "")).endswith("_kernel_time")),
                   key=lambda e: e["ts"])
    out: list[dict[str, float]] = []
    i = 0
    for run in runs:
        end = run["ts"] + run["dur"]
        times: dict[str, float] = {"": float(run["dur"])}
        while i < len(nodes) and nodes[i]["ts"] <= end:
            if nodes[i]["ts"] >= run["ts"]:
                name = nodes[i]["name"][: -len("_kernel_time")]
                times[name] = times.get(name, 0.0) + float(nodes[i]["dur"])
            i += 1
        out.append(times)
    return out


def _profiled(model: nn.Module, inputs: tuple[torch.Tensor, ...], runs: int,
              workdir: Path) -> tuple[list[dict[str, float]], dict[str, str], Any]:
    """Export, optimise and profile ``runs`` runs (after 3 warm-ups): the per-run node
    times, each optimised node's module and the session."""
    path, modules = optimize(export(model, inputs, workdir / "model.onnx"))
    sess = session(path, profile_prefix=workdir / "profile")
    feeds = {i.name: x.numpy() for i, x in zip(sess.get_inputs(), inputs, strict=True)}
    for _ in range(3):
        sess.run(None, feeds)
    # the warm-up runs are in the profile too: keep the last `runs`
    for _ in range(runs):
        sess.run(None, feeds)
    per_run = profile_runs(sess.end_profiling())[-runs:]
    return per_run, modules, (sess, feeds)


#: Seconds to wait before a run in the other of two sessions: ONNX Runtime's worker threads
#: spin for a while after a run, and on a machine with as many cores as threads another
#: session's spinning workers hold the cores the next run needs (the suite ran 7-23% slower
#: here alternating between two sessions without a pause). 20 ms was not enough: a suite of
#: six rows ran in 19.1-23.0 ms a run with it, 8.1 ms with 100 ms, and 8.8 ms with no second
#: session at all; its Add of two 4 MiB tensors took 0.25-0.27 ms a run against 0.12, a
#: 197x384 -> 1536 linear 1.8-2.7 ms against 1.15 (alone: 0.09 and 1.14 ms). In the full
#: suite it hit the nodes at its start: the 2048x2048 MatMul of the peak read 152-159
#: GFLOP/s against 188-189 in a session of its own, 182-186 against 184-185 with 100 ms
#: (two passes each); with the GEMM out of the suite for a while, its first 3x3 convolution
#: read 0.27-0.40 ms in three calibrations with 20 ms, 0.21-0.25 in six with 100 ms.
SETTLE_S = 0.1
#: The least share of its profiled time a node keeps when the profiler's cost is taken off.
FLOOR = 0.1
#: Nodes of the model that measures the profiler's own cost per node (:func:`profiler_cost_us`).
COST_NODES = 200


def node_shares(run: dict[str, float], wall_us: float | None = None,
                cost_us: float | None = None) -> dict[str, float]:
    """``{node: microseconds}`` of one profiled run (:func:`profile_runs`).

    Without ``wall_us``: each node's time plus an equal share of the run's time outside the
    nodes. With ``wall_us``, the run's time without the profiler, the nodes add up to it:
    each keeps its profiled time less the profiler's own cost per node (``cost_us``, at most
    all of it but :data:`FLOOR`); then every node is scaled by the same factor, the
    unprofiled time over the trimmed nodes' sum. ``cost_us`` is measured against unprofiled
    runs (:func:`profiler_cost_us`), so it already leaves the executor's own time between
    nodes in the trimmed nodes: what is left to add or take off is the machine running the
    profiled and the unprofiled runs at different speeds, which slows a long node as much
    as a short one. (Spreading it equally, the rule before, gave every node of a 730-node
    calibration suite 17 us more when its unprofiled runs came 8% slower; in a noisier pass
    a 256 KiB relu read 80 us against 23 us.) Without ``cost_us`` the equal share of
    ``wall_us`` minus the nodes' sum is taken off every node, at most all of it but
    :data:`FLOOR`."""
    nodes = {k: v for k, v in run.items() if k}
    count = max(len(nodes), 1)
    spent = sum(nodes.values())
    if wall_us is None:
        gap = max(run[""] - spent, 0.0) / count
        return {node: us + gap for node, us in nodes.items()}
    if cost_us is None:
        gap = (wall_us - spent) / count
        return {node: max(us + gap, us * FLOOR) for node, us in nodes.items()}
    trimmed = {node: max(us - cost_us, us * FLOOR) for node, us in nodes.items()}
    left = sum(trimmed.values())
    scale = wall_us / left if left > 0 else 0.0
    return {node: us * scale for node, us in trimmed.items()}


class _Chain(nn.Module):
    """:data:`COST_NODES` tiny nodes in a row (a ReLU and a scale, alternating)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(COST_NODES // 2):
            x = torch.relu(x) * 1.01
        return x


def profiler_cost_us(workdir: Path, runs: int = 20) -> float:
    """Microseconds the profiler adds to each node's own recorded time: over a chain of
    :data:`COST_NODES` nodes on 16 floats (nanoseconds of work each), the median over
    ``runs`` profiled runs of the nodes' sum, less the median of as many runs without the
    profiler, per node (0 when the profiled nodes add up to less). Its files go in a
    folder of their own under ``workdir``."""
    where = workdir / "profiler-cost"
    where.mkdir(exist_ok=True)
    x = torch.ones(16)
    per_run, _, (_, feeds) = _profiled(_Chain(), (x,), runs, where)
    spent = statistics.median(sum(us for k, us in run.items() if k) for run in per_run)
    nodes = statistics.median(len(run) - 1 for run in per_run)
    plain = plain_run_us(where / "model.onnx", feeds, 3, runs)
    return max(spent - plain, 0.0) / max(nodes, 1)


def layer_times(model: nn.Module, inputs: tuple[torch.Tensor, ...], repeats: int,
                timer: Timer, workdir: Path | None = None) -> tuple[dict[str, float], float]:
    """``({module path: median own seconds}, seconds of one run)`` of ``model`` in ONNX
    Runtime: per-node profiler times summed per module, less the profiler's own cost per
    node (:func:`profiler_cost_us`), made to add up to the run's time measured around
    ``session.run`` without the profiler by :func:`node_shares`."""
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(workdir or tmp)
        per_run, modules, _ = _profiled(model, inputs, repeats, where)
        cost = profiler_cost_us(where)
        sess = session(where / "model.onnx")
        feeds = {i.name: x.numpy() for i, x in zip(sess.get_inputs(), inputs, strict=True)}
        total = timer(lambda: sess.run(None, feeds), max(repeats // 2, 3), warmup=3,
                      min_sample_s=0.05).seconds
    by_module: dict[str, list[float]] = {}
    for run in per_run:
        sums: dict[str, float] = {}
        for node, us in node_shares(run, total * 1e6, cost).items():
            key = modules.get(node, "")
            sums[key] = sums.get(key, 0.0) + us * 1e-6
        for key, seconds in sums.items():
            by_module.setdefault(key, []).append(seconds)
    return {k: statistics.median(v) for k, v in by_module.items()}, total


# --- the calibration runtime ------------------------------------------------------------------
class Suite(nn.Module):
    """Every row and probe as one module: ``b.<i>`` runs row ``i`` on its own inputs and
    returns its outputs, so one export and one session hold them all.

    A row whose ``warm`` flag is set runs as a layer of a model does. It reads its
    floating-point inputs through an elementwise ``Max(x, x)`` node of the suite's module
    :data:`WARM` (exactly ``x``) run just before it: in a model a layer reads what the layer
    before it has just written, from the cache when it fits there, while a suite reads
    hundreds of MiB per run, so a row fed straight from its graph inputs would read them
    from memory every time. And its floating-point results go to the module :data:`SINK`,
    which keeps one element of each: a graph output is a buffer the whole run keeps,
    written cold every run, while a layer's result goes to a buffer the arena hands on
    from a tensor just freed. Neither kind of node is in any row's time. (Measured here:
    the Add of two 256 KiB tensors took 20-34 us in a suite of graph inputs and outputs,
    14-17 us with warm inputs and a sink, and 14 us inside a chain of layers.)
    """

    def __init__(self, benches: Sequence[Bench], warm: Sequence[bool] | None = None) -> None:
        super().__init__()
        self.b = nn.ModuleList(b.module for b in benches)
        self.counts = [len(b.inputs) for b in benches]
        self.warm_rows = list(warm) if warm is not None else [False] * len(benches)
        if len(self.warm_rows) != len(benches):
            raise ValueError(f"{len(self.warm_rows)} warm flags for {len(benches)} rows")
        setattr(self, WARM, _Warm())
        setattr(self, SINK, _Sink())

    def forward(self, *xs: torch.Tensor) -> tuple[Any, ...]:
        outs = []
        i = 0
        warm, sink = getattr(self, WARM), getattr(self, SINK)
        for module, n, warmed in zip(self.b, self.counts, self.warm_rows, strict=True):
            args = xs[i:i + n]
            if warmed:
                args = tuple(warm(x) if x.is_floating_point() else x for x in args)
            out = module(*args)
            outs.append(_sunk(out, sink) if warmed else out)
            i += n
        return tuple(outs)


def _sunk(out: Any, sink: nn.Module) -> Any:
    """``out`` with every floating-point tensor in it passed through ``sink``."""
    if isinstance(out, torch.Tensor):
        return sink(out) if out.is_floating_point() else out
    if isinstance(out, (tuple, list)):
        return tuple(_sunk(o, sink) for o in out)
    return out


class _Sink(nn.Module):
    """The first element of ``x`` in memory order (see :class:`Suite`). Not a reduction:
    ONNX Runtime would take a reduction's input before a transpose, and the row of a
    transpose would run no node at all."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1)[:1]


class _Warm(nn.Module):
    """``Max(x, x)``: exactly ``x``, written by a node of its own (see :class:`Suite`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(x, x)


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.mm(a, b)


def _add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a + b


def _sum(a: torch.Tensor) -> torch.Tensor:
    return a.sum()


class _Fn(nn.Module):
    def __init__(self, body: Any) -> None:
        super().__init__()
        self.body = body

    def forward(self, *xs: torch.Tensor) -> Any:
        return self.body(*xs)


def probe_bench(probe: Probe) -> Bench:
    """The exportable row that stands for a structural probe in ONNX Runtime: ``gemm N`` a
    MatMul, ``add S`` an Add of two buffers into a third, ``sum S`` a ReduceSum (sizes as
    :func:`~.structure.size_text` writes them)."""
    kind, _, size = probe.what.partition(" ")
    if kind == "gemm":
        n = int(size)
        return Bench(probe.what, "structure", _Fn(_mm), (randn(n, n), randn(n, n)))
    number, unit = size.split()
    nbytes = int(number) * (MiB if unit == "MiB" else 1024)
    x = torch.ones(nbytes // 4)
    if kind == "add":
        return Bench(probe.what, "structure", _Fn(_add), (x, torch.ones_like(x)))
    if kind == "sum":
        return Bench(probe.what, "structure", _Fn(_sum), (x,))
    raise ValueError(f"no ONNX Runtime kernel for probe {probe.what!r}")


#: Row families timed each in its own session without the profiler, not as layers of the
#: suite: tiny operators (``overhead``), which in the suite are mostly the profiler's own
#: cost, and that cost varies from node to node (4 to 6 us here against 1 to 2 us of real
#: work); and recurrent layers (``recurrent``), whose LSTM nodes took 1.26-1.69x as long in
#: the suite as the same LSTM in a session of its own in five of six timings (a GRU
#: 1.09-1.23x; convolution and GELU rows 0.73-0.94x), which put the zoo's LSTM model
#: 24-48% over its measured time.
ALONE_FAMILIES = frozenset({"overhead", "recurrent"})


class OnnxRuntime:
    """ONNX Runtime's CPU execution provider (see the module docstring)."""

    name = "onnxruntime"
    fusion = "onnxruntime"
    #: Streaming kernels of the structural figures, and the one whose sizes give the cache's
    #: capacity. The memory's and the cache's bandwidths are the hardware's: ONNX Runtime's
    #: own Add and ReduceSum stream a cache-resident buffer at a fifth of the speed a copy
    #: reaches here (28-35 against about 157 GB/s), while its matrix kernels read their
    #: operands (an LSTM's recurrent weights at every step) at the hardware's speed. So
    #: ``copy`` (no ONNX node of its own) is timed with PyTorch, the fastest kernel of each
    #: size is the bandwidth, and how much slower ONNX Runtime's elementwise nodes run is
    #: fitted as their efficiency, like every other runtime property.
    stream_kernels: tuple[str, ...] = ("add", "sum", "copy")
    sweep_kernel = "copy"
    stream_note = " (the copy timed with PyTorch: the hardware's bandwidth)"
    batched_input_projection = True
    projection_note = ("ONNX Runtime's CPU LSTM and GRU kernels apply the input weights to the "
                       "whole sequence in one GEMM before the steps (deep_cpu_lstm.cc, "
                       "deep_cpu_gru.cc in onnxruntime/core/providers/cpu/rnn; the export "
                       "keeps each layer of nn.LSTM and nn.GRU as one LSTM or GRU node, and "
                       "unrolls nn.RNN with one MatMul over the whole sequence)")
    #: It packs the weights of a matrix product once, when it loads the model (MLAS's
    #: prepacked GEMM), and a model keeps them in the cache well beyond its size.
    packs_weights_once = True
    rows_repeated = False  # the rows run as layers of one suite

    def __init__(self) -> None:
        _require()
        self._workdir = tempfile.TemporaryDirectory(prefix="flopbudget-ort-")
        self._built: tuple[Path, dict[str, str], tuple[torch.Tensor, ...]] | None = None
        self._layout: frozenset[str] = frozenset()
        self._sessions: dict[str, Probe] = {}
        self._passes = 0
        self._cost_us: float | None = None

    def fresh(self) -> bool:
        return False  # its arena keeps output memory between runs

    def cold_rows(self, benches: Sequence[Bench]) -> list[bool]:
        """The rows run as layers of the suite read their weights from memory; those timed
        in a session of their own (:data:`ALONE_FAMILIES`) from the cache."""
        return [b.family not in ALONE_FAMILIES for b in benches]

    def describe(self) -> str:
        return (f"ONNX Runtime {version()} (CPU execution provider, default graph "
                f"optimisations, {torch.get_num_threads()} intra-op threads; models exported "
                f"by torch {torch.__version__} with dynamo=True)")

    def _build(self, items: Sequence[Bench]) -> tuple[Path, dict[str, str],
                                                      tuple[torch.Tensor, ...]]:
        """Export the suite once, write its optimised graph, map its nodes to rows."""
        if self._built is None:
            work = Path(self._workdir.name)
            inputs = tuple(x for b in items for x in b.inputs)
            # the rows run as layers of a model (warm inputs, a sink for their results); the
            # structural probes stream graph inputs and outputs
            warm = [b.family != "structure" for b in items]
            path, modules = optimize(export(Suite(items, warm), inputs, work / "suite.onnx"))
            self._layout = layout_nodes(path)
            self._built = (path, modules, inputs)
        return self._built

    def measure(self, probes: Sequence[Probe], benches: Sequence[Bench], plan: Any,
                timer: Any) -> Any:
        """One pass: the copies of the structural figures timed with PyTorch (see
        :attr:`stream_kernels`), the cold probes as chains of linears in ``plan.processes``
        fresh processes (:mod:`.weight_chains`), then a new profiled session and one without
        the profiler, ``plan.repeats`` runs of the suite in each, alternating, after
        warm-ups; a row's seconds are the median over runs of its nodes' seconds less the
        profiler's own cost, scaled to the unprofiled run paired with it
        (:func:`row_seconds`). The rows of
        :data:`ALONE_FAMILIES` are timed each in its own session, without the profiler."""
        hardware = [p for p in probes if p.what.startswith("copy ")]
        with torch.inference_mode():
            timed = {p.what: timer(p.run, plan.repeats, warmup=plan.warmup,
                                   min_sample_s=plan.min_sample_s) for p in hardware}
        chains = [p for p in probes if p.copies]  # the cold probes
        missing = ""
        if chains:
            try:
                timings = chains_in_processes([p.copies for p in chains],
                                              torch.get_num_threads(), plan.repeats,
                                              plan.warmup, plan.min_sample_s,
                                              plan.patience_s, plan.processes)
                timed.update(zip((p.what for p in chains), timings, strict=True))
            except CalibrationError as exc:  # the rest of the calibration carries on
                missing = str(exc)
        probes = [p for p in probes if p.what not in timed and not p.copies]
        items = [probe_bench(p) for p in probes] + list(benches)
        path, modules, inputs = self._build(items)
        self._passes += 1
        sess = session(path, profile_prefix=Path(self._workdir.name) / f"pass{self._passes}")
        plain = session(path)
        feeds = {i.name: x.numpy() for i, x in zip(sess.get_inputs(), inputs, strict=True)}
        for _ in range(max(plan.warmup, 1)):
            sess.run(None, feeds)
            plain.run(None, feeds)
        runs = max(plan.repeats, 3)
        walls = []
        # each profiled run followed by one without the profiler (after a pause that lets the
        # other session's workers stop spinning): the machine's speed drifts by a third within
        # minutes here, and a row is a profiled node scaled to its pair
        for _ in range(runs):
            time.sleep(SETTLE_S)
            sess.run(None, feeds)
            time.sleep(SETTLE_S)
            start = time.perf_counter()
            plain.run(None, feeds)
            walls.append((time.perf_counter() - start) * 1e6)
        per_run = profile_runs(sess.end_profiling())[-runs:]
        if self._cost_us is None:
            self._cost_us = profiler_cost_us(Path(self._workdir.name))
        seconds = row_seconds(per_run, modules, len(items), wall_us=walls,
                              cost_us=self._cost_us, skip=self._layout)
        empty = [b.what for b, s in zip(items, seconds, strict=True) if s <= 0]
        if empty:  # nothing to time: an exported row ONNX Runtime optimised away entirely
            raise CalibrationError(
                f"ONNX Runtime ran no node for {len(empty)} calibration row(s) "
                f"({', '.join(empty[:5])}): their exported graphs were optimised away")
        timings = [Timing(s, runs, 0, 0.0) for s in seconds]
        for i, bench in enumerate(items):
            if bench.family in ALONE_FAMILIES:
                timings[i] = timer(self._alone(bench).run, plan.repeats, warmup=plan.warmup,
                                   min_sample_s=plan.min_sample_s)
        return Pass({**timed, **{p.what: t for p, t in zip(probes, timings, strict=False)}},
                    timings[len(probes):], missing)

    def _alone(self, bench: Bench) -> Probe:
        """``bench`` exported and optimised on its own, run in its own session without the
        profiler (built once per calibration), as a probe named like it."""
        if bench.what not in self._sessions:
            work = Path(self._workdir.name) / f"alone{len(self._sessions)}"
            work.mkdir()
            path, _ = optimize(export(bench.module, bench.inputs, work / "row.onnx"))
            sess = session(path)
            feeds = {i.name: x.numpy() for i, x in zip(sess.get_inputs(), bench.inputs,
                                                       strict=True)}
            self._sessions[bench.what] = Probe(bench.what, lambda: sess.run(None, feeds))
        return self._sessions[bench.what]


def plain_run_us(path: Path, feeds: dict[str, Any], warmup: int, runs: int) -> float:
    """Median microseconds of one run of the model at ``path`` in a session without the
    profiler, after ``warmup`` runs."""
    sess = session(path)
    for _ in range(max(warmup, 1)):
        sess.run(None, feeds)
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(None, feeds)
        walls.append((time.perf_counter() - start) * 1e6)
    return statistics.median(walls)


def layout_nodes(path: Path) -> frozenset[str]:
    """Names of the layout conversions (``ReorderInput``, ``ReorderOutput``) of the optimised
    graph at ``path``: where a calibration row's convolutions enter and leave the NCHWc
    layout. A network in that layout converts once at its ends, not around every
    convolution, so they are not a row's time (:func:`row_seconds`'s ``skip``)."""
    import onnx

    graph = onnx.load(str(path))
    return frozenset(n.name for n in graph.graph.node if n.op_type in LAYOUT_OPS)


def row_seconds(per_run: Sequence[dict[str, float]], modules: dict[str, str],
                rows: int, wall_us: float | Sequence[float] | None = None,
                cost_us: float | None = None, skip: frozenset[str] = frozenset()
                ) -> list[float]:
    """Per row of a suite (its nodes' module paths start ``b.<i>``): the median over runs of
    its nodes' seconds (:func:`node_shares`).

    The profiler costs a few microseconds per node, partly inside the nodes' own times
    (3.5-4.3 us per node here: :func:`profiler_cost_us`). With ``wall_us``, the run's time
    without the profiler (one figure for every run, or one per run: the unprofiled run
    paired with it), and ``cost_us``, that cost, the rows add up to what a run costs
    unprofiled (:func:`node_shares`): each node loses the profiler's cost, keeps at least
    :data:`FLOOR` of its time, so no row is ever 0, and all nodes are scaled by one factor
    to the unprofiled time. Taking the whole difference off every node equally (the rule
    before ``cost_us``) floored a calibration whose profiled runs were disturbed: 3x3
    convolutions of about 0.1 ms came out at 3-6 us. Nodes in ``skip`` (the layout
    conversions, :func:`layout_nodes`) count in the run but in no row."""
    def row_of(node: str) -> int | None:
        parts = modules.get(node, "").split(".")
        if len(parts) >= 2 and parts[0] == "b" and parts[1].isdigit():
            return int(parts[1])
        return None

    if wall_us is None or isinstance(wall_us, (int, float)):
        walls: list[float | None] = [wall_us] * len(per_run)
    else:
        walls = list(wall_us)
        if len(walls) != len(per_run):
            raise ValueError(f"{len(walls)} unprofiled runs for {len(per_run)} profiled ones")
    samples: list[list[float]] = [[] for _ in range(rows)]
    for run, wall in zip(per_run, walls, strict=True):
        sums = [0.0] * rows
        for node, us in node_shares(run, wall, cost_us).items():
            index = row_of(node)
            if index is not None and node not in skip:
                sums[index] += us
        for i, total in enumerate(sums):
            samples[i].append(total * 1e-6)
    return [statistics.median(s) if s else 0.0 for s in samples]


__all__ = [
    "INSTALL",
    "OnnxRuntime",
    "Suite",
    "export",
    "layer_times",
    "layout_nodes",
    "missing",
    "node_modules",
    "node_shares",
    "profile_runs",
    "profiler_cost_us",
    "row_seconds",
    "scope_module",
    "session",
]
