"""``profile(model, *inputs)``: a model's cost, in total and per layer.

A :class:`ModelProfile` holds the counted operators of one traced forward and the model's
parameter layout. Totals and layer rows are sums over those operators; nothing is estimated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from torch import nn

from ..core.dtypes import parse_dtype
from ..core.paths import under
from ..core.text import layer_label, shape_text, table
from ..devices.device import Device
from ..devices.roofline import Latency, predict
from . import tracer
from .packed import Describer
from .params import ParamLayout, module_kind
from .records import OpRecord
from .tracer import ModuleCall

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LayerProfile:
    """Cost of one module, by its path in ``model.named_modules()`` (``""`` is the model).

    In ``ModelProfile.layers`` a row holds the module's *own* work: the operators its forward
    ran outside its children (a leaf module's whole work; the functional code of a parent's
    forward). ``ModelProfile.layer(path)`` aggregates a module with all its children.

    ``flops``/``macs`` are counts per forward (all calls summed); ``params`` are parameter
    elements (a weight shared between modules is counted once, at its first owner);
    ``bytes_read``/``bytes_written`` are memory traffic in bytes at the profile's dtype.
    """

    name: str
    kind: str
    calls: int
    flops: int
    macs: int
    params: int
    bytes_read: int
    bytes_written: int
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    unsupported: dict[str, int] = field(default_factory=dict)
    ops: tuple[OpRecord, ...] = field(default=(), repr=False)

    @property
    def bytes(self) -> int:
        """Memory traffic in bytes: ``bytes_read + bytes_written``."""
        return self.bytes_read + self.bytes_written

    @property
    def intensity(self) -> float:
        """Arithmetic intensity in FLOP per byte of traffic (0 when nothing moves)."""
        return self.flops / self.bytes if self.bytes else 0.0

    @property
    def depth(self) -> int:
        """Nesting depth of the module path (0 for the model itself)."""
        return 0 if not self.name else self.name.count(".") + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "calls": self.calls,
            "flops": self.flops,
            "macs": self.macs,
            "params": self.params,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "input_shapes": [list(s) for s in self.input_shapes],
            "output_shapes": [list(s) for s in self.output_shapes],
            "unsupported": dict(self.unsupported),
        }


def _sum_ops(ops: Iterable[OpRecord], dtype: str | None) -> tuple[int, int, int, int]:
    flops = macs = read = written = 0
    for r in ops:
        flops += r.flops
        macs += r.macs
        read += r.read.bytes(dtype)
        written += r.written.bytes(dtype)
    return flops, macs, read, written


@dataclass(frozen=True)
class ModelProfile:
    """The counted cost of one forward of a model.

    ``flops``, ``macs``: per forward; ``params``: unique parameter elements; ``buffers``: unique
    buffer elements; ``bytes_read``/``bytes_written``/``bytes``: memory traffic in bytes at
    ``dtype`` (``None``: each tensor's own dtype); ``peak_activation_bytes``: the most bytes of
    operator-created tensors alive at once; ``unsupported``: ``{aten op: calls}`` for operators
    without a formula (their FLOPs are unknown and not counted, their traffic is);
    ``traced``: ``"fake"`` (shapes only) or ``"real"`` (one real forward, see
    ``fallback_reason``).
    """

    model: str
    records: tuple[OpRecord, ...] = field(repr=False)
    calls: dict[str, ModuleCall] = field(repr=False)
    layout: ParamLayout = field(repr=False)
    peak_activation: dict[str, int] = field(repr=False)
    peak_module: str
    traced: str
    fallback_reason: str = ""
    dtype: str | None = None
    train: bool = False
    notes: tuple[str, ...] = ()  # what the trace could not do as usual, in words

    # -- totals --------------------------------------------------------------------------
    @cached_property
    def _totals(self) -> tuple[int, int, int, int]:
        return _sum_ops(self.records, self.dtype)

    @property
    def flops(self) -> int:
        """Floating-point operations per forward: ``2 * macs`` + all elementwise work."""
        return self._totals[0]

    @property
    def macs(self) -> int:
        """Multiply-accumulates of conv, linear, matmul, attention and recurrent products."""
        return self._totals[1]

    @property
    def bytes_read(self) -> int:
        """Bytes every operator reads (inputs, weights), at ``dtype``."""
        return self._totals[2]

    @property
    def bytes_written(self) -> int:
        """Bytes every operator writes (outputs), at ``dtype``."""
        return self._totals[3]

    @property
    def bytes(self) -> int:
        """Memory traffic in bytes: ``bytes_read + bytes_written``."""
        return self._totals[2] + self._totals[3]

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte of traffic."""
        return self.flops / self.bytes if self.bytes else 0.0

    @property
    def params(self) -> int:
        """Unique parameter elements (tied or shared weights once)."""
        return sum(self.layout.numel.values())

    @property
    def hidden_weights(self) -> dict[str, str]:
        """``{module path: why}`` for modules holding weights the plugin cannot see (a
        packed weight of a class it cannot read): ``params`` and ``weight_bytes`` do not
        include them, and a ``max_params`` or ``max_weight_mb`` budget fails saying so."""
        return dict(self.layout.hidden)

    @property
    def buffers(self) -> int:
        """Unique buffer elements (BatchNorm statistics and the like), not in ``params``."""
        return self.layout.buffers

    @property
    def weight_bytes(self) -> int:
        """Bytes of all parameters at ``dtype`` (their own dtype when ``dtype`` is None)."""
        return self.weight_bytes_at(self.dtype)

    def weight_bytes_at(self, dtype: str | None) -> int:
        """Bytes of all parameters (tied or shared ones once) at ``dtype`` (their own dtype
        when None)."""
        return self.layout.weight_bytes(dtype)

    @property
    def peak_activation_bytes(self) -> int:
        """Peak bytes of tensors created by the forward and alive at the same time, at
        ``dtype``. Weights, buffers and the inputs are not included."""
        return self.peak_activation["native" if self.dtype is None else self.dtype]

    @cached_property
    def unsupported(self) -> dict[str, int]:
        """``{aten operator: calls}`` for operators with no formula."""
        return dict(Counter(r.op for r in self.records if not r.supported))

    # -- layers --------------------------------------------------------------------------
    @cached_property
    def layers(self) -> list[LayerProfile]:
        """One row per module, in the order modules first ran, holding the module's own work.

        Modules that hold parameters but never ran are appended with ``calls == 0``, so the
        rows sum to the totals.
        """
        by_module: dict[str, list[OpRecord]] = {}
        for r in self.records:
            by_module.setdefault(r.module, []).append(r)
        rows = [self._row(path, call, by_module.get(path, ()))
                for path, call in self.calls.items()]
        for path in self.layout.owned:
            if path not in self.calls and self.layout.own_params(path):
                rows.append(self._row(path, None, ()))
        return rows

    def _row(self, path: str, call: ModuleCall | None, ops: Sequence[OpRecord],
             params: int | None = None) -> LayerProfile:
        """One row of ``ops`` (``params``: the module's own, unless given)."""
        flops, macs, read, written = _sum_ops(ops, self.dtype)
        return LayerProfile(
            name=path,
            kind=call.kind if call else self.layout.kinds.get(path, "?"),
            calls=call.calls if call else 0,
            flops=flops,
            macs=macs,
            params=self.layout.own_params(path) if params is None else params,
            bytes_read=read,
            bytes_written=written,
            input_shapes=list(call.input_shapes) if call else [],
            output_shapes=list(call.output_shapes) if call else [],
            unsupported=dict(Counter(r.op for r in ops if not r.supported)),
            ops=tuple(ops),
        )

    def layer(self, name: str) -> LayerProfile:
        """The module at ``name`` aggregated with all its children (``""``: the whole model).

        Raises ``KeyError`` for a path that is not a module of the model.
        """
        if name not in self.layout.kinds:
            close = [p for p in self.layout.kinds if p and (name in p or p in name)][:5]
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise KeyError(f"no module {name!r} in {self.model}{hint}")
        ops = tuple(r for r in self.records if under(r.module, name))
        return self._row(name, self.calls.get(name), ops, self.layout.subtree_params(name))

    # -- training phases -----------------------------------------------------------------
    @property
    def phases(self) -> list[str]:
        """Phases present, in order: ``["forward"]``, or forward, backward (and optimizer)
        for a training step."""
        present = {r.phase for r in self.records}
        return [p for p in ("forward", "backward", "optimizer") if p in present] or ["forward"]

    def phase(self, name: str) -> ModelProfile:
        """The same profile restricted to one phase (``"forward"``, ``"backward"``,
        ``"optimizer"``); totals and layer rows count that phase only."""
        if name not in ("forward", "backward", "optimizer"):
            raise ValueError(f"phase must be 'forward', 'backward' or 'optimizer', got {name!r}")
        return replace(self, records=tuple(r for r in self.records if r.phase == name))

    # -- re-pricing and roofline ----------------------------------------------------------
    def at_dtype(self, dtype: str | None) -> ModelProfile:
        """The same profile with bytes priced at another deployment precision."""
        return replace(self, dtype=parse_dtype(dtype))

    def latency(self, device: Device | str) -> Latency:
        """Roofline-predicted time of this forward on ``device`` (a Device or a name)."""
        return predict(self, device)

    # -- export --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: exact integer totals and one entry per layer row."""
        return {
            "schema": SCHEMA_VERSION,
            "model": self.model,
            "traced": self.traced,
            "fallback_reason": self.fallback_reason,
            **({"notes": list(self.notes)} if self.notes else {}),
            "dtype": self.dtype,
            "flops": self.flops,
            "macs": self.macs,
            "params": self.params,
            "buffers": self.buffers,
            "weight_bytes": self.weight_bytes,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "peak_activation_bytes": self.peak_activation_bytes,
            "unsupported": self.unsupported,
            **({"hidden_weights": self.hidden_weights} if self.hidden_weights else {}),
            "layers": [row.to_dict() for row in self.layers],
            **({"phases": self.phase_totals()} if self.train else {}),
        }

    def phase_totals(self) -> dict[str, dict[str, int]]:
        """``{phase: {"flops", "macs", "bytes"}}`` of a training step."""
        return {name: {"flops": ph.flops, "macs": ph.macs, "bytes": ph.bytes}
                for name in self.phases for ph in (self.phase(name),)}

    def __str__(self) -> str:
        return profile_table(self)


def profile_table(prof: ModelProfile) -> str:
    """A per-layer table of a profile (what ``str(profile)`` prints)."""
    rows = [
        (layer_label(r.name), r.kind, shape_text([list(s) for s in r.output_shapes]),
         f"{r.flops / 1e6:,.3f}", f"{r.macs / 1e6:,.3f}", f"{r.params:,}",
         f"{r.bytes / 1e6:,.3f}")
        for r in prof.layers if r.flops or r.bytes or r.params
    ]
    head = (f"{prof.model}: {prof.flops / 1e6:,.3f} MFLOPs, {prof.macs / 1e6:,.3f} MMACs, "
            f"{prof.params:,} params, {prof.bytes / 1e6:,.3f} MB access"
            f"{' at ' + prof.dtype if prof.dtype else ''} (traced: {prof.traced})")
    lines = [head, *table(("layer", "type", "output", "MFLOPs", "MMACs", "params",
                           "access MB"), rows, right={3, 4, 5, 6})]
    if prof.unsupported:
        ops = ", ".join(f"{op} x{n}" for op, n in sorted(prof.unsupported.items()))
        lines.append(f"unsupported ops (FLOPs not counted): {ops}")
    lines.extend(f"note: {note}" for note in prof.notes)
    for path, why in prof.hidden_weights.items():
        lines.append(f"weights not visible, not in params: {layer_label(path)}: {why}")
    return "\n".join(lines)



def eager_module(model: nn.Module) -> nn.Module:
    """The module that ``torch.compile`` wrapped (its forward counts the same and its layer
    names carry no ``_orig_mod.`` prefix), or ``model`` itself."""
    inner = getattr(model, "_orig_mod", None)
    if isinstance(inner, nn.Module) and type(model).__name__ == "OptimizedModule":
        return inner
    return model


RESERVED = ("dtype", "trace", "train", "optimizer", "loss", "forward_kwargs")
TRACES = ("auto", "fake", "real")


def check_options(model: Any, dtype: str | None = None, trace: str = "auto",
                  train: bool = False, optimizer: Any = None, loss: Any = None,
                  forward_kwargs: Any = None, **kwargs: Any) -> dict[str, Any]:
    """Check :func:`profile`'s options before anything runs; returns the keyword arguments
    ``forward`` gets. A wrong option is a ``TypeError`` or ``ValueError`` naming it (and
    nothing else raises here: no user code runs)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"profile() needs a torch.nn.Module, got {type(model).__name__}")
    lazy = [name for name, p in model.named_parameters() if nn.parameter.is_lazy(p)]
    if lazy:
        raise ValueError(f"{type(model).__name__} has parameters that are not initialized yet "
                         f"({', '.join(lazy[:3])}{', ...' if len(lazy) > 3 else ''}): a lazy "
                         f"module learns its shapes in its first forward; run one forward on "
                         f"an example input before profiling it")
    parse_dtype(dtype)
    if trace not in TRACES:
        raise ValueError(f"trace must be 'auto', 'fake' or 'real', got {trace!r}")
    if not isinstance(train, bool):
        raise TypeError(f"train must be True or False, got {train!r}")
    if (optimizer is not None or loss is not None) and not train:
        raise ValueError("optimizer= and loss= describe a training step: pass train=True")
    if loss is not None and not callable(loss):
        raise TypeError(f"loss must be a function of the output, got {loss!r}")
    if forward_kwargs is None:
        return kwargs
    if not isinstance(forward_kwargs, Mapping) or \
            not all(isinstance(k, str) for k in forward_kwargs):
        raise TypeError(f"forward_kwargs must be a dict of keyword arguments for forward, "
                        f"got {forward_kwargs!r}")
    twice = sorted(set(kwargs) & set(forward_kwargs))
    if twice:
        raise TypeError(f"forward argument {twice[0]!r} given twice: as a keyword argument "
                        f"and in forward_kwargs")
    return {**kwargs, **forward_kwargs}


def profile(model: nn.Module, *inputs: Any, dtype: str | None = None, trace: str = "auto",
            train: bool = False, optimizer: Any = None,
            loss: Callable[[Any], Any] | None = None,
            forward_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> ModelProfile:
    """Count the cost of ``model(*inputs, **kwargs)`` without running its arithmetic.

    ``dtype`` prices memory traffic at a deployment precision (``"fp32"``, ``"fp16"``,
    ``"bf16"``, ``"int8"``; default: each tensor's own dtype). ``trace`` is ``"auto"`` (fake
    tensors, one real forward only if the model needs real values), ``"fake"`` or ``"real"``.
    ``train=True`` counts a training step: the forward with autograd on, the backward of
    ``loss(output)`` (default: a gradient of ones on every output) and, with ``optimizer``, its
    step; ``p.phase("backward")`` etc. split it. Module modes (``.train()``/``.eval()``) are
    used as they are. Keyword arguments go to ``forward``; use ``forward_kwargs`` for one
    named like an option. The model is left exactly as it was.
    """
    forward = check_options(model, dtype, trace, train, optimizer, loss, forward_kwargs,
                            **kwargs)
    model = eager_module(model)
    deploy = parse_dtype(dtype)
    describe = Describer()  # one reading of each packed weight, for layout and trace
    layout = ParamLayout.of(model, describe)
    step = tracer.TrainStep(loss, optimizer) if train else None
    result = tracer.trace(model, inputs, forward, trace, step=step, describe=describe)
    layout = layout.with_stored_weights(model, result.stored_weights)
    for path, call in result.modules.items():  # modules a graph named (TorchScript, export)
        if layout.kinds.get(path) in (None, "Module"):
            layout.kinds[path] = call.kind
    return ModelProfile(
        model=module_kind(model),
        records=tuple(result.records),
        calls=result.modules,
        layout=layout,
        peak_activation=result.peak_activation,
        peak_module=result.peak_module,
        traced=result.mode,
        fallback_reason=result.fallback_reason,
        dtype=deploy,
        train=train,
        notes=(*layout.notes, *result.notes),
    )


__all__ = ["SCHEMA_VERSION", "LayerProfile", "ModelProfile", "ParamLayout", "check_options",
           "profile"]
