"""Run a model's forward once and record what every aten operator costs, per module.

The forward runs under a ``TorchDispatchMode`` that sees every aten operator, including the
functional ones a ``forward`` calls directly (``torch.bmm``, ``x @ w``). By default it runs on
fake tensors: shapes propagate, no arithmetic happens, and the cost of counting depends on the
number of operators, not on FLOPs or input size. Every real (or meta) tensor an operator
receives, the model's weights and buffers included, is swapped for a fake twin first, so an
in-place write (a BatchNorm running-stat update) lands on the twin and never on the model.

When the forward needs real values (``.item()``, data-dependent shapes), the trace falls back to
one real forward; writes to the model's buffers then go to private copies. Small integer CPU
tensors (sequence lengths) keep their values on fake tensors (``known_values``), so packing
a sequence by its lengths, or ``.item()`` of one, needs no real forward.

A dequantize operator (``quantized_decomposed``) that reads an integer tensor of the model
reads a weight stored quantized (PT2E, torchao): the trace reports it
(:attr:`Trace.stored_weights`) and the profile counts it in ``params``.

The forward runs under ``torch.inference_mode()``: composite operators (``linear``, ``lstm``,
``scaled_dot_product_attention``) then reach the mode whole, and are counted by their own
formula whatever kernel would run them. A composite without a formula is decomposed and its
parts are counted. Modules are tracked with global forward hooks installed for the trace only.

A formula receives each call bound to its operator's schema (:func:`.registry.bind`: every
argument by name, defaults filled in), tensors as shapes; a formula that fails lists its
operator as unsupported, with the error, instead of hiding it.
"""

from __future__ import annotations

import functools
import logging
import warnings
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import (
    DataDependentOutputException,
    DynamicOutputShapeException,
    FakeTensor,
    FakeTensorMode,
    UnsupportedOperatorException,
)
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_map

from ..core.access import ZERO_ACCESS, Access
from ..core.dtypes import DEPLOY_DTYPES
from ..core.paths import ROOT
from . import ops as _ops  # noqa: F401  (registers the formulas)
from .costs import TensorMeta, Work, access_of
from .known_values import NeedsValues
from .model_guard import ModelState, model_tensors, preserved, reachable_tensors
from .ops.quantized import DEQUANTIZE_OPS
from .optimizers import step_records
from .packed import Describer, is_script_object
from .params import module_kind
from .records import OpRecord
from .registry import Formula, bind, destinations, is_free, lookup, written_arguments
from .script_scopes import ScriptScopes
from .stand_ins import QUERIES, StandIns, has_rule


@dataclass
class ModuleCall:
    """How one module (by path) was called during the trace."""

    path: str
    kind: str
    calls: int = 0
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)


@dataclass
class Trace:
    """Everything one traced forward produced."""

    records: list[OpRecord]
    modules: dict[str, ModuleCall]  # in first-call order
    unsupported: Counter[str]
    peak_activation: dict[str, int]  # "native" and each deployment dtype -> bytes
    peak_module: str
    mode: str  # "fake" or "real"
    fallback_reason: str = ""
    notes: list[str] = field(default_factory=list)
    # integer tensors of the model read as weights by a dequantize operator (PT2E, torchao):
    # id of the model's tensor -> ids of the model's tensors among that call's other
    # arguments (its scales and zero points)
    stored_weights: dict[int, frozenset[int]] = field(default_factory=dict)


class TraceError(RuntimeError):
    """The model could not be traced (the message says why and what to do)."""


def _nested_text(func: Any) -> str:
    """Why a nested tensor stops the trace, and what to do."""
    return (f"{func._schema.name} got a nested tensor (torch.nested), which the counting "
            f"formulas do not size: an nn.TransformerEncoder in eval given a "
            f"src_key_padding_mask makes one to skip the padding; build it with "
            f"enable_nested_tensor=False to count the padded computation, or pass no mask")


def _shapes(obj: Any) -> list[tuple[int, ...]]:
    leaves, _ = tree_flatten(obj)
    return [tuple(int(s) for s in t.shape) for t in leaves if isinstance(t, torch.Tensor)]


@functools.cache
def _is_view(func: Any) -> bool:
    """True when every output of ``func`` aliases an input without writing it (a view)."""
    rets = func._schema.returns
    return bool(rets) and all(r.alias_info is not None and not r.alias_info.is_write for r in rets)


@functools.cache
def _is_composite(func: Any) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), "CompositeImplicitAutograd")


def _is_real(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and not isinstance(t, FakeTensor) and not t.is_meta


def _unique_tensors(obj: Any) -> list[torch.Tensor]:
    leaves, _ = tree_flatten(obj)
    seen: dict[int, torch.Tensor] = {}
    for t in leaves:
        if isinstance(t, torch.Tensor):
            seen.setdefault(id(t), t)
    return list(seen.values())


def _meta(obj: Any, describe: Callable[[Any], Any]) -> Any:
    """Tensors as :class:`TensorMeta`, packed weights (``ScriptObject``) as what they hold."""
    return tree_map(lambda t: TensorMeta.of(t) if isinstance(t, torch.Tensor)
                    else describe(t) if is_script_object(t) else t, obj)


class _Activations:
    """Live bytes of the tensors operators create, and their peak at every precision."""

    def __init__(self) -> None:
        self.live: dict[int, Access] = {}
        self.total = ZERO_ACCESS
        self.peak: dict[str, int] = {"native": 0, **{d: 0 for d in DEPLOY_DTYPES}}
        self.peak_module = ROOT
        self.active = True

    def add(self, tensors: list[torch.Tensor], module: str) -> None:
        for t in tensors:
            storage = t.untyped_storage()
            key = id(storage)
            if key in self.live:
                continue
            nbytes = storage.nbytes()
            entry = Access.sized(nbytes // t.dtype.itemsize, nbytes, t.dtype)
            self.live[key] = entry
            self.total = self.total + entry
            weakref.finalize(storage, self._free, key)
        native = self.total.bytes()
        if native > self.peak["native"]:
            self.peak["native"] = native
            self.peak_module = module
        for name in DEPLOY_DTYPES:
            self.peak[name] = max(self.peak[name], self.total.bytes(name))

    def _free(self, key: int) -> None:
        entry = self.live.pop(key, None)
        if entry is not None and self.active:
            self.total = self.total - entry


def _storage_key(t: torch.Tensor) -> int:
    return id(t.untyped_storage())


class _DataFlow:
    """Which operator call produced each tensor, and which tensors are the model's weights,
    both by storage (a view shares its base's storage, so views are looked through; an
    in-place operator becomes the producer of what it wrote)."""

    def __init__(self, model_ids: frozenset[int]) -> None:
        self.model_ids = model_ids
        self.weights: dict[int, int] = {}  # storage -> id of the model's tensor it holds
        self.producer: dict[int, int] = {}
        self.calls = 0

    def note_model_tensor(self, original: torch.Tensor, converted: torch.Tensor) -> None:
        """Remember ``converted`` (a fake twin, a private copy or the tensor itself) as a
        weight when ``original`` is one of the model's parameters or buffers."""
        if id(original) in self.model_ids:
            self.weights[_storage_key(converted)] = id(original)

    def weights_of(self, convert: Callable[[torch.Tensor, bool], torch.Tensor]
                   ) -> Callable[[torch.Tensor, bool], torch.Tensor]:
        """``convert``, remembering what it makes of the model's tensors as weights."""

        def noted(t: torch.Tensor, writes: bool) -> torch.Tensor:
            converted = convert(t, writes)
            self.note_model_tensor(t, converted)
            return converted

        return noted

    def is_weight(self, t: torch.Tensor) -> bool:
        return _storage_key(t) in self.weights

    def model_tensor(self, t: torch.Tensor) -> int | None:
        """The id of the model's tensor that ``t`` (a twin, a copy, a view of one) holds."""
        return self.weights.get(_storage_key(t))

    def call(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor]
             ) -> tuple[int, tuple[int, ...]]:
        """Number this operator call and return ``(call, calls its inputs came from)``."""
        call = self.calls
        self.calls += 1
        sources = tuple(dict.fromkeys(self.producer[k] for k in map(_storage_key, inputs)
                                      if k in self.producer))
        for t in outputs:
            storage = t.untyped_storage()
            key = id(storage)
            if key not in self.producer:
                weakref.finalize(storage, self.producer.pop, key, None)
            self.producer[key] = call
        return call, sources


def _smaller(a: Access, b: Access) -> Access:
    """Componentwise minimum: at most ``b`` of ``a``."""
    return Access(min(a.float_elems, b.float_elems), min(a.float_bytes, b.float_bytes),
                  min(a.fixed_bytes, b.fixed_bytes))


_SCALAR_READS = (torch.ops.aten._local_scalar_dense, torch.ops.aten.item)
# (``item`` decomposes into ``_local_scalar_dense``)
_VALUE_READS = (torch.ops.aten._local_scalar_dense, torch.ops.aten.is_nonzero)


class CountingMode(TorchDispatchMode):
    """Counts every aten operator it sees and attributes it to the running module."""

    # control flow (torch.cond, while_loop) comes here too: see _higher_order
    supports_higher_order_operators = True

    def __init__(self, convert: Callable[[torch.Tensor, bool], torch.Tensor],
                 real_scalars: bool, model_ids: frozenset[int] = frozenset(),
                 quantized: StandIns | None = None, describe: Describer | None = None
                 ) -> None:
        super().__init__()
        self.convert = convert
        # fake traces: quantized tensors and kernels stand-ins (None in a real run)
        self.quantized = quantized
        self.describe = quantized.describe if quantized is not None \
            else describe or Describer()
        self.known = quantized.known if quantized is not None else None
        self.real_scalars = real_scalars
        self.stack: list[str] = [ROOT]
        self.records: list[OpRecord] = []
        self.activations = _Activations()
        self.flow = _DataFlow(model_ids)
        self.phase = "forward"
        self.suppress = False
        # a TorchScript model: its graph names the submodule of each operator (no hooks fire)
        self.script: ScriptScopes | None = None
        self.script_path = ROOT
        self.depth = 0  # nesting of dispatches: 0 for an operator the forward itself called
        self.failure: Exception | None = None  # the last operator, when it raised
        # autograd node -> module path whose forward created it (for backward attribution)
        self.node_modules: dict[Any, str] = {}
        self.stored_weights: dict[int, set[int]] = {}  # see Trace.stored_weights

    def claim(self, outputs: Any, path: str) -> None:
        """Attribute the autograd nodes behind ``outputs`` not yet claimed by an inner module
        to ``path`` (forward hooks fire innermost first)."""
        leaves, _ = tree_flatten(outputs)
        todo = [t.grad_fn for t in leaves if isinstance(t, torch.Tensor) and t.grad_fn]
        while todo:
            node = todo.pop()
            if node is None or node in self.node_modules:
                continue
            self.node_modules[node] = path
            todo.extend(fn for fn, _ in node.next_functions if fn is not None)

    def _module(self) -> str:
        if self.phase == "backward":
            node = torch._C._current_autograd_node()
            return self.node_modules.get(node, ROOT) if node is not None else ROOT
        if self.script is not None and self.script_path:
            return self.script_path
        return self.stack[-1]

    # -- argument conversion -------------------------------------------------------------
    def prepare(self, x: Any) -> Any:
        """An input of the forward as the trace passes it on (fake in a fake trace)."""
        if not isinstance(x, torch.Tensor):
            return x
        converted = self.convert(x, False)
        if self.known is not None and converted is not x:
            self.known.seed(x, converted)
        return converted

    def _convert_args(self, func: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        writes = bool(written_arguments(func))
        conv = self.convert

        def one(x: Any) -> Any:
            if isinstance(x, torch.Tensor):
                converted = conv(x, writes)
                self.flow.note_model_tensor(x, converted)
                if self.known is not None and converted is not x:
                    self.known.seed(x, converted)
                return converted
            if isinstance(x, (list, tuple)):
                return type(x)(one(y) for y in x) if x else x
            return x

        return tuple(one(a) for a in args), {k: one(v) for k, v in kwargs.items()}

    # -- dispatch ------------------------------------------------------------------------
    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if isinstance(func, torch._ops.HigherOrderOperator):
            return self._higher_order(func, args, kwargs)
        packet = func._overloadpacket
        # a scalar read (aten::Int of a traced size) has no tensor node in the graph: it
        # stays with the operator before it
        if self.script is not None and self.depth == 0 and self.phase == "forward" and \
                not is_free(packet) and packet not in _SCALAR_READS:
            self.script_path = self.script.match(func._schema.name)
        self.depth += 1
        try:
            out = self._dispatch(func, args, kwargs)
        except Exception as exc:  # the TorchScript interpreter re-raises it without its type
            self.failure = exc
            raise
        finally:
            self.depth -= 1
        self.failure = None  # an exception the model caught is no cause of a later failure
        return out

    def _dispatch(self, func: Any, args: tuple, kwargs: dict) -> Any:
        packet = func._overloadpacket
        # .item() on a tensor that is not fake (a model constant): read it for real.
        if self.real_scalars and packet in _SCALAR_READS and _is_real(args[0]):
            with _disable_current_modes():
                return func(*args, **kwargs)
        args, kwargs = self._convert_args(func, args, kwargs)
        if self.suppress:
            return func(*args, **kwargs)
        known = self.known
        if known is None:
            return self._call(func, args, kwargs)
        # small integer CPU tensors keep their values (sequence lengths): see known_values
        if packet in _VALUE_READS:
            found, value = known.read(func, args, kwargs)
            if found:  # counted as a real run counts it: a read of the scalar
                self._record(func, lookup(packet), args, kwargs, value)
                return value
        out = self._call(func, args, kwargs)
        known.update(func, args, kwargs, out)
        return out

    def _call(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """Run (or stand in for) an operator on converted arguments and record it."""
        packet = func._overloadpacket
        quantized = self.quantized
        if quantized is not None and has_rule(func):  # a quantized kernel: not run
            out = quantized.run(func, args, kwargs)
            if str(packet) not in QUERIES:
                self._record(func, lookup(packet), args, kwargs, out)
            return out
        if is_free(packet):
            return func(*args, **kwargs)
        formula = lookup(packet)
        if formula is None:
            if _is_composite(func):
                with self:
                    result = func.decompose(*args, **kwargs)
                if result is not NotImplemented:
                    return result
            if _is_view(func):
                return func(*args, **kwargs)
        if quantized is not None and quantized.any_carrier(args, kwargs):
            out = quantized.via_floats(func, args, kwargs)
        else:
            out = func(*args, **kwargs)
        self._record(func, formula, args, kwargs, out)
        return out

    def _higher_order(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """``torch.cond`` and ``while_loop`` run like the Python ``if`` and ``while`` they
        stand for: the branch taken (the iterations run) are counted, attributed like any
        code of the calling module. Which branch is taken depends on a tensor's value, so
        on fake tensors it is data-dependent (a real forward, when allowed). Any other
        higher-order operator stops the trace, named."""
        name = func.name()
        if name == "cond":
            pred, true_fn, false_fn, operands = args
            branch = true_fn if self._truth(func, pred) else false_fn
            with self:
                return branch(*operands)
        if name == "while_loop":
            cond_fn, body_fn, carried, extra = args
            carried = tuple(carried)
            with self:
                while self._truth(func, cond_fn(*carried, *extra)):
                    carried = tuple(body_fn(*carried, *extra))
            return carried
        raise TraceError(
            f"torch.{name} (a higher-order operator) in {self.stack[-1] or 'the model'}'s "
            f"forward cannot be counted: only torch.cond and torch.while_loop are (as the "
            f"if and while they stand for); profile the function it calls as a model of its "
            f"own")

    def _truth(self, func: Any, value: Any) -> bool:
        """A predicate's value: a Python one, a real tensor's (a model constant), or, for a
        fake tensor, data-dependent."""
        if isinstance(value, FakeTensor):
            raise DataDependentOutputException(func)
        if isinstance(value, torch.Tensor):
            with _disable_current_modes():
                return bool(value)
        return bool(value)

    def _record(self, func: Any, formula: Formula | None, args: tuple, kwargs: dict,
                out: Any) -> None:
        name = str(func._overloadpacket)
        module = self._module()
        if written_arguments(func):
            dest = destinations(func)
            kwargs = {k: v for k, v in kwargs.items() if k not in dest}
        inputs = _unique_tensors((args, kwargs))
        outputs = _unique_tensors(out)
        if any(t.is_nested for t in (*inputs, *outputs)):
            raise TraceError(_nested_text(func))
        default_read = access_of(inputs)
        default_written = access_of(outputs)
        default_weights = access_of(t for t in inputs if self.flow.is_weight(t))
        call, sources = self.flow.call(inputs, outputs)
        works: list[Work] | None = None
        op_class = formula.op_class if formula is not None else "elementwise"
        if name in DEQUANTIZE_OPS:  # an int8 weight stored as an integer tensor?
            self._stored_weight(func, args, kwargs)
        if formula is not None:
            try:
                cost = formula.fn(**_meta(bind(func, args, kwargs), self.describe),
                                  result=_meta(out, self.describe))
                works = cost if isinstance(cost, list) else [cost]
            except Exception as exc:  # a formula bug must never hide the op
                name = f"{name} (formula failed: {type(exc).__name__}: {exc})"
        if works is None:
            self.records.append(OpRecord(name, module, "elementwise", 0, 0, default_read,
                                         default_written, supported=False, phase=self.phase,
                                         weights=default_weights, call=call, inputs=sources))
        else:
            for w in works:
                read = default_read if w.reads is None else Access.of(w.reads)
                if w.weights is not None:
                    weights = Access.of(w.weights)
                elif w.reads is None:
                    weights = default_weights
                else:  # the formula lists its reads: no more weights than it reads
                    weights = _smaller(default_weights, read)
                self.records.append(OpRecord(
                    op=name,
                    module=module,
                    op_class=w.op_class or op_class,
                    macs=w.macs,
                    flops=w.flops,
                    read=read,
                    written=default_written if w.writes is None else Access.of(w.writes),
                    steps=w.steps,
                    step_read=Access.of(w.step_reads) if w.step_reads else ZERO_ACCESS,
                    label=w.label,
                    phase=self.phase,
                    weights=weights,
                    call=call,
                    inputs=sources,
                    kind=w.kind,
                    mac_dims=w.mac_dims,
                    lowered=w.lowered,
                    rows=w.rows,
                    weight_rows=w.weight_rows if weights.bytes() else 0,
                    input_macs=w.input_macs,
                    runs_as=w.runs_as,
                ))
        if not written_arguments(func):
            input_ids = {id(t) for t in inputs}
            self.activations.add([t for t in outputs if id(t) not in input_ids], module)

    def _stored_weight(self, func: Any, args: tuple, kwargs: dict) -> None:
        """A dequantize operator whose ``input`` is an integer tensor the model holds reads a
        stored weight (PT2E and torchao keep int8 weights so): remember it, and the model's
        tensors among the call's other arguments as its quantization parameters."""
        bound = bind(func, args, kwargs)
        q = bound.get("input")
        if not isinstance(q, torch.Tensor) or q.is_floating_point() or q.is_complex():
            return
        weight = self.flow.model_tensor(q)
        if weight is None:
            return
        qparams = self.stored_weights.setdefault(weight, set())
        for t in _unique_tensors([v for k, v in bound.items() if k != "input"]):
            held = self.flow.model_tensor(t)
            if held is not None and held != weight:
                qparams.add(held)


@contextmanager
def _module_tracking(mode: CountingMode, paths: dict[int, str],
                     calls: dict[str, ModuleCall]) -> Iterator[None]:
    """Push/pop module paths on the mode's stack with global forward hooks (removed after)."""

    def pre(module: nn.Module, args: Any) -> None:
        path = paths.get(id(module))
        if path is None:
            return
        if torch.is_grad_enabled():
            # autograd history of the inputs not yet claimed was made by the running module
            mode.claim(args, mode.stack[-1])
        mode.stack.append(path)
        call = calls.get(path)
        if call is None:
            call = calls[path] = ModuleCall(path, module_kind(module),
                                            input_shapes=_shapes(args))
        call.calls += 1

    def post(module: nn.Module, args: Any, output: Any) -> None:
        path = paths.get(id(module))
        if path is None:
            return
        if len(mode.stack) > 1 and mode.stack[-1] == path:
            mode.stack.pop()
        if torch.is_grad_enabled():
            mode.claim(output, path)
        call = calls[path]
        if call.calls == 1 and not call.output_shapes:
            call.output_shapes = _shapes(output)

    h1 = nn.modules.module.register_module_forward_pre_hook(pre)
    h2 = nn.modules.module.register_module_forward_hook(post, always_call=True)
    try:
        yield
    finally:
        h1.remove()
        h2.remove()


def _fake_converter(fake_mode: FakeTensorMode, quantized: StandIns
                    ) -> Callable[[torch.Tensor, bool], torch.Tensor]:
    """Real tensors to fake ones. (An integer scalar a traced graph makes without dispatch,
    ``prim::NumToTensor`` of a size, keeps its value through :mod:`.known_values`, which
    holds a private copy: a fake constant would be the tensor itself, and fake mode runs an
    operator on constants for real, in place too.)"""
    memo: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    converter = fake_mode.fake_tensor_converter

    def convert(t: torch.Tensor, _writes: bool) -> torch.Tensor:
        if isinstance(t, FakeTensor):
            return t
        hit = memo.get(id(t))
        if hit is None:
            if t.is_quantized:  # fake tensors cannot be quantized: an integer carrier
                fake = quantized.from_real(t)
            elif t.is_meta:
                fake = converter.from_meta_and_device(fake_mode, t, torch.device("cpu"))
            else:
                fake = fake_mode.from_tensor(t)
            hit = memo[id(t)] = (fake, t)  # keep t alive so its id stays unique
        return hit[0]

    return convert


def _storage(t: torch.Tensor) -> int:
    """The address of a tensor's memory (0 for a tensor without one: sparse, empty)."""
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return 0


def _copy_on_write(model: nn.Module, inputs: Any) -> Callable[[torch.Tensor, bool],
                                                               torch.Tensor]:
    """Real-run converter: the model's buffers, and any tensor an op writes that shares memory
    with a tensor the model holds (in an attribute, a list, a dict: ``.data`` and views
    included) or with the caller's inputs, are replaced by private copies, so the forward
    cannot change the model's data or the caller's tensors."""
    _, buffers = model_tensors(model)
    held = [*reachable_tensors(model), *_unique_tensors(inputs)]
    protected = {_storage(t) for t in held} - {0}
    memo: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def convert(t: torch.Tensor, writes: bool) -> torch.Tensor:
        key = id(t)
        hit = memo.get(key)
        if hit is not None:
            return hit[0]
        if key in buffers or (writes and _storage(t) in protected):
            with torch._C._DisableTorchDispatch():
                copy = t.detach().clone()
            memo[key] = (copy, t)  # keep t alive so its id stays unique
            return copy
        return t

    return convert


@dataclass(frozen=True)
class TrainStep:
    """What a training step adds to the forward: a backward from ``loss(output)`` (default:
    a gradient of ones on every output that requires grad) and, optionally, an optimizer
    step."""

    loss: Callable[[Any], Any] | None = None
    optimizer: Any = None


def _fake_leaves(model: nn.Module, convert: Callable[[torch.Tensor, bool], torch.Tensor]
                 ) -> dict[str, torch.Tensor]:
    """Fake twins of the model's parameters and buffers, as autograd leaves (parameters keep
    their ``requires_grad``), for ``functional_call``."""
    leaves: dict[str, torch.Tensor] = {}
    twins: dict[int, torch.Tensor] = {}  # one twin per parameter, so tied weights stay tied
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) not in twins:
            twin = convert(p, False)
            if twin.requires_grad != p.requires_grad:
                twin.requires_grad_(p.requires_grad)
            twins[id(p)] = twin
        leaves[name] = twins[id(p)]
    for name, b in model.named_buffers(remove_duplicate=False):
        leaves[name] = convert(b, False)
    return leaves


def _forward(model: nn.Module, args: Any, kw: Any, leaves: dict[str, torch.Tensor] | None
             ) -> Any:
    if leaves is None:
        return model(*args, **kw)
    return torch.func.functional_call(model, leaves, args, kw, tie_weights=True)


def _backward(mode: CountingMode, model: nn.Module, out: Any, args: Any, step: TrainStep,
              leaves: dict[str, torch.Tensor] | None) -> None:
    """Run the backward of ``out`` (and the optimizer step) with the phases recorded."""
    target = step.loss(out) if step.loss is not None else out
    mode.claim(target, ROOT)
    outs = [t for t in tree_flatten(target)[0]
            if isinstance(t, torch.Tensor) and t.requires_grad and t.is_floating_point()]
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    wrt = [leaves[n] for n, _ in named] if leaves is not None else [p for _, p in named]
    wrt += [t for t in tree_flatten(args)[0] if isinstance(t, torch.Tensor) and t.requires_grad]
    if not outs or not wrt:
        raise TraceError(f"{type(model).__name__}: nothing to train (no output depends on a "
                         "parameter or input that requires grad)")
    mode.suppress = True  # the seed gradient is not part of the step's cost
    grad_outputs = [torch.ones_like(t) for t in outs]
    mode.suppress = False
    mode.phase = "backward"
    torch.autograd.grad(outs, wrt, grad_outputs, allow_unused=True)
    mode.phase = "optimizer"
    if step.optimizer is not None:
        records, unknown = step_records(step.optimizer, model)
        mode.records.extend(records)
        if unknown:  # listed by name like any operator without a formula
            mode.records.append(OpRecord(unknown, ROOT, "elementwise", 0, 0, ZERO_ACCESS,
                                         ZERO_ACCESS, supported=False, phase="optimizer"))
    mode.phase = "forward"


def _run(model: nn.Module, inputs: tuple, kwargs: dict, mode: CountingMode,
         paths: dict[int, str], prepare: Callable[[Any], Any], grad: bool,
         step: TrainStep | None = None,
         leaves: dict[str, torch.Tensor] | None = None) -> tuple[list[OpRecord], Any]:
    calls: dict[str, ModuleCall] = {}
    mode.script = ScriptScopes.of(model)
    grad_mode = torch.enable_grad() if grad or step else torch.inference_mode()
    with grad_mode, _module_tracking(mode, paths, calls), warnings.catch_warnings():
        # fake weights are never one contiguous chunk; the RNN's warning about it is noise here
        warnings.filterwarnings("ignore", message="RNN module weights are not part")
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
        with mode:
            args = tree_map(prepare, inputs)
            kw = tree_map(prepare, kwargs)
            calls[ROOT] = ModuleCall(ROOT, module_kind(model), input_shapes=_shapes(args))
            mode.stack = [ROOT]
            # a TorchScript graph as written: the executor's optimising passes run operators
            # of their own on the first calls (a frozen model's aten::equal on its constants)
            with torch.jit.optimized_execution(False):
                out = _forward(model, args, kw, leaves)
            if step is not None:
                _backward(mode, model, out, args, step, leaves)
        calls[ROOT].calls = 1
        calls[ROOT].output_shapes = _shapes(out)
    mode.activations.active = False
    if mode.script is not None:  # submodules the scripted graph named, in first-run order
        found = {path: ModuleCall(path, kind, calls=1) for path, kind in
                 mode.script.kinds.items() if path not in calls}
        calls = {ROOT: calls[ROOT], **found, **calls}
    return mode.records, calls


def trace(model: nn.Module, inputs: tuple, kwargs: dict | None = None,
          how: str = "auto", *, grad: bool = False, step: TrainStep | None = None,
          describe: Describer | None = None) -> Trace:
    """Trace one forward of ``model(*inputs, **kwargs)`` (and a training step's backward and
    optimizer step when ``step`` is given).

    ``how``: ``"fake"`` (shapes only; error if the model needs real values), ``"real"`` (one
    real forward), or ``"auto"`` (fake, falling back to real when the model needs real data).
    ``grad=False`` runs under ``inference_mode`` (composites arrive whole, fused inference
    kernels may run); ``grad=True`` runs with autograd on, as a training step does.
    ``describe`` reads packed weights (pass the one the model's layout used: each packed
    weight is then unpacked once).
    """
    if how not in ("auto", "fake", "real"):
        raise ValueError(f"trace must be 'auto', 'fake' or 'real', got {how!r}")
    kwargs = kwargs or {}
    # The root is tracked separately: a module's own forward hooks fire for the root too.
    # (an exported program's _guards_fn is no module of the model that was exported)
    paths = {id(m): name for name, m in model.named_modules() if name and name != "_guards_fn"}
    on_meta = any(t.is_meta for t in (*model.parameters(), *model.buffers()))
    with preserved(model) as state:
        return _trace(model, inputs, kwargs, how, paths, on_meta, grad, step, state,
                      describe or Describer())


def _trace(model: nn.Module, inputs: tuple, kwargs: dict, how: str, paths: dict[int, str],
           on_meta: bool, grad: bool, step: TrainStep | None, state: ModelState,
           describe: Describer) -> Trace:
    fallback_reason = ""
    params, others = model_tensors(model)
    model_ids = frozenset(params | others)
    if how in ("auto", "fake"):
        fake_mode = FakeTensorMode()
        quantized = StandIns(fake_mode, describe)
        convert = _fake_converter(fake_mode, quantized)
        mode = CountingMode(convert, real_scalars=True, model_ids=model_ids,
                            quantized=quantized)
        try:
            with fake_mode, _quiet(logging.getLogger("torch._subclasses.fake_tensor")):
                leaves = _fake_leaves(model, mode.flow.weights_of(convert)) \
                    if step is not None else None
                records, calls = _run(model, inputs, kwargs, mode, paths, mode.prepare, grad,
                                      step, leaves)
            return _finish(mode, records, calls, "fake", "")
        except TraceError:
            raise
        except Exception as exc:
            if how == "fake" or on_meta:
                where = "on the meta device " if on_meta else ""
                raise TraceError(
                    f"{type(model).__name__} cannot be traced on fake tensors {where}"
                    f"because {_why_real(exc, mode.failure)}"
                    + ("; build it on a real device to profile it with one real forward"
                       if on_meta else "; profile it with trace='auto' or 'real'")
                ) from exc
            fallback_reason = _why_real(exc, mode.failure)
            state.restore()  # the real run must not see what the fake attempt left behind
    mode = CountingMode(_copy_on_write(model, (inputs, kwargs)), real_scalars=False,
                        model_ids=model_ids, describe=describe)
    records, calls = _run(model, inputs, kwargs, mode, paths, lambda x: x, grad, step)
    return _finish(mode, records, calls, "real", fallback_reason)


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """Silence a logger that reports the failures a fake trace is allowed to have."""
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


_FAKE_LIMITS = (DataDependentOutputException, DynamicOutputShapeException,
                UnsupportedOperatorException, NeedsValues)


def _why_real(exc: BaseException, inner: BaseException | None = None) -> str:
    """Why a fake trace failed, in words a model author recognises; ``inner`` is the last
    exception an operator raised, which the TorchScript interpreter re-raises as a bare
    ``RuntimeError``."""
    if not isinstance(exc, _FAKE_LIMITS) and isinstance(inner, _FAKE_LIMITS):
        exc = inner
    func = getattr(exc, "func", None)
    if isinstance(func, torch._ops.HigherOrderOperator):
        return (f"torch.{func.name()} takes a branch that depends on a tensor value (the "
                f"branch taken is counted)")
    if isinstance(exc, DataDependentOutputException):
        return f"the forward reads tensor values ({func}: .item(), .tolist(), bool(tensor))"
    if isinstance(exc, DynamicOutputShapeException):
        return f"an output shape depends on tensor values ({func}: nonzero, x[mask], unique)"
    if isinstance(exc, UnsupportedOperatorException):
        return f"{func} has no fake-tensor implementation"
    if isinstance(exc, NeedsValues):  # a stand-in that needs values it was not given
        return str(exc)
    if isinstance(exc, RuntimeError) and "data is not allocated yet" in str(exc):
        return (f"a kernel read a fake tensor's memory inside a composite operator, which "
                f"fake tensors cannot give (a recurrent layer over a packed sequence with "
                f"autograd on, train=True, reads its batch sizes so): {_short(exc)}")
    return f"{type(exc).__name__}: {_short(exc)}"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


def _finish(mode: CountingMode, records: list[OpRecord], calls: dict[str, ModuleCall],
            how: str, reason: str) -> Trace:
    unsupported = Counter(r.op for r in records if not r.supported)
    note = mode.script.note() if mode.script is not None else ""
    return Trace(records, calls, unsupported, dict(mode.activations.peak),
                 mode.activations.peak_module, how, reason, [note] if note else [],
                 {w: frozenset(q) for w, q in mode.stored_weights.items()})
