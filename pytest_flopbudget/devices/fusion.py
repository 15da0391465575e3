"""What a deployment runtime executes: counted operators grouped into the kernels it runs.

Eager PyTorch runs every aten operator on its own (``fusion = "none"``): one unit per counted
operator, exactly the eager profile. Deployment runtimes (TensorRT, TFLite and the Edge TPU
compiler, RKNN, ncnn, ONNX Runtime, X-CUBE-AI) compile the graph first (``fusion =
"epilogue"``):

* a convolution or matrix product (the *anchor*) absorbs the chain of operators that consume
  its result and nothing else: an eval-mode batch norm (folded into the weights: its
  statistics are never read), an activation, an elementwise add/sub/mul/div with another
  tensor (a residual, a bias, a squeeze-excitation scale), each in turn;
* a chain of pointwise operators that starts anywhere else (a residual add followed by a
  batch norm and a ReLU, the pieces of a decomposed LayerNorm or LRN) is one kernel too,
  its norm parameters read, not folded;
* copies that only change layout (``contiguous``, a reshape that copies) are free;
* everything else runs as it is.

ONNX Runtime on a CPU (``fusion = "onnxruntime"``) applies fewer, named fusions at its
default graph optimisation level (seen in the optimised graphs of models exported with
``torch.onnx.export(..., dynamo=True)``, ONNX Runtime 1.2x CPU execution provider):

* a convolution (any rank, depthwise included; not a transposed one) folds an eval-mode batch
  norm (the exporter already folds it), then takes at most one elementwise add (the NCHWc
  convolution's fused Sum: a residual) and at most one activation (Relu, Clip for ReLU6,
  Sigmoid, Tanh, LeakyRelu, HardSigmoid: ``ConvActivationFusion``), the activation last;
  a ResNet's conv-BN-add-ReLU runs as one node, a GELU after a convolution does not fuse;
* a matrix product takes at most one elementwise add (a bias: ``MatMulAddFusion`` into
  Gemm), one multiplication (a scale: ``FusedMatMul``'s alpha) and one activation of the
  same list (``FusedGemm``), in that order;
* everything else runs as a node of its own: no general elementwise fusion (a chain of
  layer norm, GELU, multiply and add is four nodes), and layout copies are real (Transpose).

A fused group is one kernel: one launch, one read of what comes from outside the group (the
anchor's input and weights, each epilogue's other operand) and one write of its last result.
Its FLOPs are the sum of its operators': fusion changes traffic and launches, never counts.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..core.access import ZERO_ACCESS, Access

#: Operator classes that anchor a fused group.
ANCHORS = ("conv", "depthwise_conv", "matmul")

#: Kinds of pointwise operators: one output element from the same element of each input,
#: so a runtime fuses them into the kernel that produced their input.
POINTWISE_KINDS = frozenset({"arithmetic", "transcendental"})

#: Elementwise operators that are not pointwise (each output needs a whole row).
ROW_OPS = frozenset(f"aten.{name}" for name in (
    "_softmax", "softmax", "_safe_softmax", "_log_softmax", "log_softmax", "_masked_softmax",
    "glu",
))

#: Kinds a runtime folds into the preceding product (their parameters are never read).
FOLDED_KINDS = frozenset({"channel_affine"})

#: Kinds that cost nothing in a compiled graph.
FREE_KINDS = frozenset({"layout"})

#: Activations ONNX Runtime fuses into a convolution or a matrix product (its
#: ``ConvActivationFusion`` and ``FusedGemm`` list: Relu, Clip, Sigmoid, Tanh, LeakyRelu,
#: HardSigmoid), as the aten operators that export to them.
ORT_ACTIVATIONS = frozenset(f"aten.{name}{suffix}" for name in (
    "relu", "hardtanh", "clamp", "clamp_min", "clamp_max", "sigmoid", "tanh", "leaky_relu",
    "hardsigmoid") for suffix in ("", "_"))
#: Elementwise additions (a residual or a bias).
ORT_ADDS = frozenset({"aten.add", "aten.add_", "aten.sub", "aten.sub_"})
ORT_MULS = frozenset({"aten.mul", "aten.mul_", "aten.div", "aten.div_"})


class Record(Protocol):
    """What fusion reads of a counted operator (``counting.records.OpRecord``)."""

    @property
    def op(self) -> str: ...
    @property
    def module(self) -> str: ...
    @property
    def op_class(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def flops(self) -> int: ...
    @property
    def macs(self) -> int: ...
    @property
    def read(self) -> Access: ...
    @property
    def written(self) -> Access: ...
    @property
    def weights(self) -> Access: ...
    @property
    def steps(self) -> int: ...
    @property
    def step_read(self) -> Access: ...
    @property
    def call(self) -> int: ...
    @property
    def inputs(self) -> tuple[int, ...]: ...
    @property
    def mac_dims(self) -> tuple[int, int] | None: ...
    @property
    def lowered(self) -> int: ...
    @property
    def rows(self) -> int: ...
    @property
    def weight_rows(self) -> int: ...
    @property
    def input_macs(self) -> int: ...
    @property
    def runs_as(self) -> str: ...


@dataclass(frozen=True)
class Unit:
    """One kernel the device runs: a counted operator, or a fused group (anchor first).

    ``read``/``written``: bytes from and to memory of the whole unit; ``weights``: the part
    of ``read`` that is model parameters; ``free``: runs at no cost (a layout copy in a
    compiled graph).
    """

    members: tuple[Record, ...]
    flops: int
    read: Access
    written: Access
    weights: Access
    free: bool = False

    @property
    def anchor(self) -> Record:
        return self.members[0]

    @property
    def ops(self) -> tuple[str, ...]:
        """The aten operators the unit runs, in order."""
        return tuple(m.op for m in self.members)

    @property
    def modules(self) -> tuple[str, ...]:
        """The modules whose operators the unit runs (the anchor's first)."""
        return tuple(dict.fromkeys(m.module for m in self.members))

    @classmethod
    def of(cls, record: Record, free: bool = False) -> Unit:
        return cls((record,), record.flops, record.read, record.written, record.weights, free)


def units(records: Sequence[Record], fusion: str) -> list[Unit]:
    """The kernels a runtime with ``fusion`` runs for ``records`` (in execution order)."""
    if fusion == "none":
        return [Unit.of(r) for r in records]
    if fusion == "onnxruntime":
        return _onnxruntime_units(records)
    by_call, consumers = _graph(records)
    absorbed: set[int] = set()
    out: list[Unit] = []
    for r in records:
        if r.call in absorbed and r.call >= 0:
            continue
        if r.kind in FREE_KINDS:
            out.append(Unit.of(r, free=True))
        elif r.call >= 0 and len(by_call[r.call]) == 1 and (r.op_class in ANCHORS
                                                             or _fusable(r)):
            chain = _epilogue(r, by_call, consumers)
            absorbed.update(m.call for m in chain[1:])
            out.append(_group(chain, folds=r.op_class in ANCHORS))
        else:
            out.append(Unit.of(r))
    return out


def _graph(records: Sequence[Record]) -> tuple[dict[int, list[Record]],
                                                dict[int, list[int]]]:
    """``(records by call, consumer calls of each call)``."""
    by_call: dict[int, list[Record]] = {}
    for r in records:
        by_call.setdefault(r.call, []).append(r)
    consumers: dict[int, list[int]] = {}
    for call, stages in by_call.items():
        for source in dict.fromkeys(i for r in stages for i in r.inputs):
            consumers.setdefault(source, []).append(call)
    return by_call, consumers


def _onnxruntime_units(records: Sequence[Record]) -> list[Unit]:
    """The nodes ONNX Runtime runs (see the module docstring)."""
    by_call, consumers = _graph(records)
    absorbed: set[int] = set()
    out: list[Unit] = []
    for r in records:
        if r.call in absorbed and r.call >= 0:
            continue
        single = r.call >= 0 and len(by_call[r.call]) == 1
        if single and r.op_class in ("conv", "depthwise_conv") and r.kind != "transposed_conv":
            chain = _ort_chain(r, by_call, consumers, ("norm", "add", "act"))
        elif single and r.op_class == "matmul":
            chain = _ort_chain(r, by_call, consumers, ("add", "mul", "act"))
        else:
            out.append(Unit.of(r))
            continue
        absorbed.update(m.call for m in chain[1:])
        out.append(_group(chain, folds=True))
    return out


def _ort_step(r: Record) -> str:
    """What an operator can be in an ONNX Runtime epilogue: ``norm``, ``add``, ``mul``,
    ``act`` or ``""`` (none)."""
    if r.steps != 1:
        return ""
    if r.kind in FOLDED_KINDS:
        return "norm"
    if r.op in ORT_ADDS:
        return "add"
    if r.op in ORT_MULS:
        return "mul"
    if r.op in ORT_ACTIVATIONS:
        return "act"
    return ""


def _ort_chain(anchor: Record, by_call: dict[int, list[Record]],
               consumers: dict[int, list[int]], order: tuple[str, ...]) -> list[Record]:
    """The anchor and the epilogue operators ONNX Runtime fuses into it: each consumes only
    the previous one's result, each step of ``order`` at most once and in that order."""
    chain = [anchor]
    tail = anchor.call
    position = 0
    while True:
        after = consumers.get(tail, [])
        if len(after) != 1 or len(by_call[after[0]]) != 1:
            return chain
        nxt = by_call[after[0]][0]
        step = _ort_step(nxt)
        if step not in order[position:]:
            return chain
        position = order.index(step) + 1
        chain.append(nxt)
        tail = nxt.call


def _fusable(r: Record) -> bool:
    """A pointwise operator or a per-channel affine: it can join the kernel before it."""
    return r.steps == 1 and (r.kind in FOLDED_KINDS or (
        r.kind in POINTWISE_KINDS and r.op_class == "elementwise" and r.op not in ROW_OPS))


def _epilogue(anchor: Record, by_call: dict[int, list[Record]],
              consumers: dict[int, list[int]]) -> list[Record]:
    """The anchor and the operators that consume only its (fused) result, in turn."""
    chain = [anchor]
    tail = anchor.call
    while True:
        after = consumers.get(tail, [])
        if len(after) != 1 or len(by_call[after[0]]) != 1:
            return chain
        nxt = by_call[after[0]][0]
        if not _fusable(nxt):
            return chain
        chain.append(nxt)
        tail = nxt.call


def _group(chain: list[Record], folds: bool) -> Unit:
    """One kernel of a chain; ``folds``: the chain starts at a product, into whose weights a
    per-channel affine member is folded."""
    if len(chain) == 1:
        return Unit.of(chain[0])
    anchor = chain[0]
    read, weights = anchor.read, anchor.weights
    for before, member in itertools.pairwise(chain):
        # the member's input from the chain stays in the kernel; a folded norm's
        # parameters are baked into the anchor's weights
        own = member.read - before.written
        if folds and member.kind in FOLDED_KINDS:
            own = own - member.weights
        else:
            weights = weights + member.weights
        read = read + _clamp(own)
    return Unit(tuple(chain), sum(m.flops for m in chain), read, chain[-1].written, weights)


def _clamp(access: Access) -> Access:
    """No negative byte counts (a member that read less than its producer wrote: a view)."""
    return Access(max(access.float_elems, 0), max(access.float_bytes, 0),
                  max(access.fixed_bytes, 0)) if access != ZERO_ACCESS else access
