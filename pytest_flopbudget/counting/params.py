"""Which module owns which parameter, and what the parameters weigh.

Parameters are ``named_parameters``, plus the packed weights of quantized modules
(``counting/packed.py``): their weight and bias elements are parameters like a float
layer's, owned by the quantized module, and they weigh their stored bytes (int8 weights, a
float32 scale and an int32 zero point per tensor or channel, float biases). A packed weight
the plugin cannot read is listed in ``hidden`` by module, never counted as 0 in silence.

Integer tensors a model holds as buffers (or plain attributes) and reads through a
dequantize operator, as PT2E quantization and torchao store int8 weights, are weights too:
the trace finds them (:meth:`ParamLayout.with_stored_weights`), and they count as
parameters of the module holding them, weighing their integer bytes and the scales and zero
points dequantized with them, with a note saying so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import torch
from torch import nn

from ..core.access import ZERO_ACCESS, Access
from ..core.paths import under
from .costs import TensorMeta, access_of
from .packed import Describer, PackedCell, PackedWeight, owner, script_objects


@dataclass(frozen=True)
class ParamLayout:
    """Which parameters each module owns. Names are canonical (first) parameter names, so a
    tied weight appears once."""

    numel: dict[str, int]  # canonical parameter name -> elements
    sizes: dict[str, Access]  # canonical name -> its bytes (re-priced by dtype)
    owned: dict[str, list[str]]  # module path -> canonical names it holds directly
    first_owner: dict[str, str]  # canonical name -> module path counted as its owner
    kinds: dict[str, str]  # module path -> class name
    buffers: int  # buffer elements (unique)
    hidden: dict[str, str] = field(default_factory=dict)  # module path -> unseen weights
    notes: tuple[str, ...] = ()  # how weights were found where they are not parameters

    @classmethod
    def of(cls, model: nn.Module, describe: Describer | None = None) -> ParamLayout:
        """The layout of ``model``'s weights; ``describe`` reads packed weights (shared with
        the trace of the same model, so each is unpacked once)."""
        canonical: dict[int, str] = {}
        numel: dict[str, int] = {}
        sizes: dict[str, Access] = {}
        for name, p in model.named_parameters():
            canonical[id(p)] = name
            numel[name] = p.numel()
            sizes[name] = access_of([p])  # a wrapper subclass: the tensors it holds
        owned: dict[str, list[str]] = {}
        first_owner: dict[str, str] = {}
        kinds: dict[str, str] = {}
        for path, module in model.named_modules(remove_duplicate=False):
            kinds.setdefault(path, module_kind(module))
            names = [canonical[id(p)] for p in module._parameters.values() if p is not None]
            if names:
                owned.setdefault(path, [])
                for n in names:
                    if n not in owned[path]:
                        owned[path].append(n)
                    first_owner.setdefault(n, path)
        buffers = sum(b.numel() for b in model.buffers())
        hidden = _packed_params(model, numel, sizes, owned, first_owner, kinds,
                                describe or Describer())
        notes = _graph_constants(model, numel, sizes, owned, first_owner) if not numel else ()
        return cls(numel, sizes, owned, first_owner, kinds, buffers, hidden, notes)

    def with_stored_weights(self, model: nn.Module, stored: Mapping[int, Iterable[int]]
                            ) -> ParamLayout:
        """This layout with the model's integer tensors that a dequantize operator read as
        weights (``stored``: id of the tensor -> ids of its scales and zero points, as
        :attr:`~.tracer.Trace.stored_weights` gives them) counted as parameters: elements
        in ``numel``, bytes (the integer tensor and its quantization parameters) in
        ``sizes``, owned by the module holding them, no longer in ``buffers``; and a note."""
        held = _held_tensors(model)
        weights = [held[i] for i in stored if i in held]
        if not weights:
            return self
        numel, sizes = dict(self.numel), dict(self.sizes)
        owned = {path: list(names) for path, names in self.owned.items()}
        first_owner = dict(self.first_owner)
        buffers = self.buffers
        taken = {id(w.tensor) for w in weights}
        for w in weights:
            qparams = [held[q] for q in stored[id(w.tensor)] if q in held and q not in taken]
            taken.update(id(q.tensor) for q in qparams)
            numel[w.name] = w.tensor.numel()
            sizes[w.name] = access_of([w.tensor, *(q.tensor for q in qparams)])
            owned.setdefault(w.path, []).append(w.name)
            first_owner[w.name] = w.path
            buffers -= sum(h.tensor.numel() for h in (w, *qparams) if h.buffer)
        names = [w.name for w in weights]
        note = (f"{len(weights)} integer tensor(s) the model holds and reads through a "
                f"dequantize operator are weights stored quantized ({', '.join(names[:3])}"
                f"{', ...' if len(names) > 3 else ''}): counted in params "
                f"({sum(w.tensor.numel() for w in weights):,} elements), weighing their "
                f"stored bytes with their scales and zero points")
        return replace(self, numel=numel, sizes=sizes, owned=owned, first_owner=first_owner,
                       buffers=buffers, notes=(*self.notes, note))

    def own_params(self, path: str) -> int:
        """Elements of the parameters counted at ``path`` (their first owner)."""
        return sum(self.numel[n] for n in self.owned.get(path, ()) if
                   self.first_owner[n] == path)

    def subtree_names(self, path: str) -> set[str]:
        """Canonical names of the parameters held anywhere under ``path`` (each once)."""
        return {n for p, held in self.owned.items() if under(p, path) for n in held}

    def subtree_params(self, path: str) -> int:
        """Unique parameter elements held anywhere under ``path``."""
        return sum(self.numel[n] for n in self.subtree_names(path))

    def subtree_weight_bytes(self, path: str, dtype: str | None) -> int:
        """Bytes of the parameters held under ``path``, at their own dtype or at ``dtype``."""
        names = self.subtree_names(path)
        return sum((self.sizes[n] for n in sorted(names)), ZERO_ACCESS).bytes(dtype)

    def weight_bytes(self, dtype: str | None) -> int:
        """Bytes of all parameters at their own dtype or at a deployment precision."""
        return sum(self.sizes.values(), ZERO_ACCESS).bytes(dtype)


class _Held(NamedTuple):
    """A tensor a module holds that is not a parameter: a buffer or a plain attribute."""

    name: str
    path: str  # the module holding it
    tensor: torch.Tensor
    buffer: bool


def _held_tensors(model: nn.Module) -> dict[int, _Held]:
    """The model's buffers and tensor attributes that are not parameters, by id (each at
    its first holder)."""
    params = {id(p) for p in model.parameters()}
    held: dict[int, _Held] = {}
    for path, module in model.named_modules():
        buffers = {k: b for k, b in module._buffers.items() if b is not None}
        attributes = {k: v for k, v in vars(module).items() if isinstance(v, torch.Tensor)}
        for table, is_buffer in ((buffers, True), (attributes, False)):
            for attr, t in table.items():
                if id(t) not in params and id(t) not in held:
                    held[id(t)] = _Held(f"{path}.{attr}" if path else attr, path, t, is_buffer)
    return held


def _packed_entries(name: str, described: PackedWeight | PackedCell
                    ) -> list[tuple[str, TensorMeta, tuple[TensorMeta, ...]]]:
    """``(parameter name, tensor, its quantization parameters)`` of a packed weight."""
    if isinstance(described, PackedCell):
        return [*_packed_entries(f"{name}.ih", described.w_ih),
                *_packed_entries(f"{name}.hh", described.w_hh),
                *((f"{name}.bias_ih", b, ()) for b in (described.b_ih,) if b is not None),
                *((f"{name}.bias_hh", b, ()) for b in (described.b_hh,) if b is not None)]
    entries = [(f"{name}.weight", described.weight, described.scales)]
    if described.bias is not None:
        entries.append((f"{name}.bias", described.bias, ()))
    return entries


def _packed_params(model: nn.Module, numel: dict[str, int], sizes: dict[str, Access],
                   owned: dict[str, list[str]], first_owner: dict[str, str],
                   kinds: dict[str, str], describe: Describer) -> dict[str, str]:
    """Add the packed weights of quantized modules to the layout (in place); return the
    modules whose weights cannot be read, with why."""
    names_of: dict[int, list[str]] = {}
    hidden: dict[str, str] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        for attr, obj in script_objects(module):
            where = owner(path, kinds)
            names = names_of.get(id(obj))
            if names is None:
                described = describe(obj)
                label = f"{path}.{attr}" if path else attr
                if not isinstance(described, (PackedWeight, PackedCell)):
                    hidden.setdefault(where, f"{label} ({described.type_name}): "
                                             f"{described.reason}")
                    continue
                names = names_of[id(obj)] = []
                for name, meta, qparams in _packed_entries(label, described):
                    numel[name] = meta.numel
                    sizes[name] = Access.of([meta, *qparams])
                    names.append(name)
            held = owned.setdefault(where, [])
            for name in names:
                if name not in held:
                    held.append(name)
                first_owner.setdefault(name, where)
    return hidden


def module_kind(module: nn.Module) -> str:
    """A module's class name; a scripted module's is its original class's (``Conv2d``,
    not ``RecursiveScriptModule``)."""
    return str(getattr(module, "original_name", "") or type(module).__name__)


def _floats(value: Any) -> list[torch.Tensor]:
    """The floating-point tensors of a TorchScript value: a tensor, or a list or tuple of
    them (a frozen LSTM's flat weights are one ``List[Tensor]`` constant)."""
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _floats(v)]
    return []


def _graph_constants(model: nn.Module, numel: dict[str, int], sizes: dict[str, Access],
                     owned: dict[str, list[str]], first_owner: dict[str, str]
                     ) -> tuple[str, ...]:
    """A frozen TorchScript model (``torch.jit.freeze``) has no parameters: its weights
    became tensor constants of its graph (a tensor, or a list of them), or stay attributes
    of submodules it keeps as objects (a fused ``nn.MultiheadAttention``'s
    ``in_proj_weight``). Count their floating-point tensors, each once, as the model's own
    parameters (in place) and say so."""
    if not isinstance(model, torch.jit.ScriptModule):
        return ()
    try:
        graph = model.graph
    except (AttributeError, RuntimeError):
        return ()
    found: dict[int, tuple[str, torch.Tensor]] = {}

    def walk(block: Any) -> None:
        for node in block.nodes():
            if node.kind() == "prim::Constant" and "Tensor" in str(node.output().type()):
                for t in _floats(node.output().toIValue()):
                    found.setdefault(id(t), (f"<graph constant {len(found)}>", t))
            for inner in node.blocks():
                walk(inner)

    walk(graph)
    constants = len(found)
    try:
        kept = torch._C._jit_debug_module_iterators(  # type: ignore[attr-defined]
            model._c)["named_attributes_r"]
    except (AttributeError, KeyError, RuntimeError):
        kept = []
    visible = {path for path, _ in model.named_modules()}
    buffers = {name for name, _ in model.named_buffers()}
    for name, value in kept:
        # only what freezing left on submodules it keeps as plain objects (not modules of
        # the model): a buffer, or a tensor attribute of a module the model shows, is none
        if name in buffers or name.rpartition(".")[0] in visible:
            continue
        for i, t in enumerate(floats := _floats(value)):
            label = name if len(floats) == 1 else f"{name}[{i}]"
            found.setdefault(id(t), (label, t))
    if not found:
        return ()
    for name, t in found.values():
        numel[name] = t.numel()
        sizes[name] = access_of([t])
        owned.setdefault("", []).append(name)
        first_owner[name] = ""
    total = sum(t.numel() for _, t in found.values())
    kept_text = f" and {len(found) - constants} tensor attributes of submodules it keeps " \
        f"as objects" if len(found) > constants else ""
    return (f"the model has no parameters but {constants} floating-point tensor constants in "
            f"its TorchScript graph{kept_text} (a frozen model's weights, {total:,} elements):"
            f" they are counted as the model's own params",)
