"""Which submodule of a TorchScript model or an exported program ran each operator.

A scripted or traced model (``torch.jit.script``/``trace``/``load``) runs its submodules
inside the TorchScript interpreter: no forward hook fires, so the counting mode cannot see
which module is running. The scripted graph knows: every node of ``model.inlined_graph``
carries its module hierarchy (``"features(Sequential).0(Conv2d)"``), the chain of
submodule calls that inlined it: a method of the same module is a ``SELF`` step (its
submodules are still the module's), a function an ``UNKNOWN_INSTANCE`` one, and a module
taken from a ``ModuleList`` in a loop is named by its index alone (``"0(EncoderLayer)"``
for ``layers.0``), so each name is looked up among the model's modules, through a
container where it is no direct child (where several fit, the operator stays with the
module around them, noted). :class:`ScriptScopes` lists the graph's operator nodes in
order with their module paths, and matches each operator the interpreter dispatches to the
next node of the same name (wrapping around for loops). What cannot be matched (an operator
the graph does not name: a branch the graph leaves to a function without hierarchy) stays
on the model's own row, and the profile notes how many.

A ``torch.export`` program's module (``ep.module()``) is the same case: its graph calls aten
operators directly, and each node's ``nn_module_stack`` names the module of the eager model
that ran it, so its rows are named as the eager model's are.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from .params import module_kind

_PART = re.compile(r"([^.()]*)\(([^()]*)\)")
_METHOD = "SELF"  # a method of the same module: its submodules are still the module's
_FUNCTION = "UNKNOWN_INSTANCE"  # a function called within the module


Chain = tuple[tuple[str, str], ...]  # (module path, class) from the outermost submodule in


def _in_containers(modules: Mapping[str, str], path: str, name: str, type_name: str
                   ) -> list[str]:
    """The modules ``path.<container>.name`` of class ``type_name`` (a ``ModuleList``
    element called in a loop)."""
    prefix = f"{path}." if path else ""
    depth = prefix.count(".") + 1
    return [p for p, kind in modules.items() if kind == type_name and p.startswith(prefix)
            and p.endswith(f".{name}") and p.count(".") == depth]


def placed_chain(hierarchy: str, modules: Mapping[str, str] | None = None
                 ) -> tuple[Chain, str]:
    """:func:`module_chain`, and the step it could not place among ``modules``
    (``"0(Linear)"``; ``""`` when every step was placed)."""
    path = ""
    chain: list[tuple[str, str]] = []
    for name, type_name in _PART.findall(hierarchy):
        if name == _METHOD:
            continue
        if name == _FUNCTION or not name:
            break
        step = f"{path}.{name}" if path else name
        if modules is not None and step not in modules:
            found = _in_containers(modules, path, name, type_name)
            if len(found) > 1:
                return tuple(chain), f"{name}({type_name})"
            if found:
                step = found[0]
        path = step
        chain.append((path, type_name))
    return tuple(chain), ""


def module_chain(hierarchy: str, modules: Mapping[str, str] | None = None) -> Chain:
    """``(("features", "Sequential"), ("features.0", "Conv2d"))`` for
    ``"features(Sequential).0(Conv2d).SELF(Conv2d)"``: the submodule instances, through
    method calls (``SELF``), up to the first function call; ``()`` for the model's own
    code. With ``modules`` (``{path: class}`` of the model), a name that is no direct child
    is looked for one container down (``"0(Layer)"`` is ``layers.0``); the chain stops
    where several modules fit. A name no module fits is the graph's word (a frozen model
    has no submodules left)."""
    return placed_chain(hierarchy, modules)[0]


def _makes_tensors(node: Any) -> bool:
    """True for a node whose result holds a tensor (an operator the counting mode sees;
    the graph's integer arithmetic never reaches it)."""
    return any("Tensor" in str(out.type()) for out in node.outputs())


class ScriptScopes:
    """The operator nodes of a TorchScript model's graph, in order, with their modules."""

    def __init__(self, nodes: list[tuple[str, Chain]], unplaced: dict[int, str] | None = None,
                 others: dict[int, tuple[range, ...]] | None = None) -> None:
        self.nodes = nodes  # (operator "aten::conv2d", its module chain)
        self.unplaced = unplaced or {}  # node index -> the step its chain could not place
        #: node index -> the node ranges of the other branches of every ``if`` it is in:
        #: once a node of one branch ran, the next operator is not in another
        self.others = others or {}
        self.cursor = 0
        self.kinds: dict[str, str] = {}  # module path -> class, in first-matched order
        self.unmatched: Counter[str] = Counter()
        self.misplaced: Counter[str] = Counter()  # unplaced steps of the nodes matched

    @classmethod
    def of(cls, model: Any) -> ScriptScopes | None:
        """The scopes of a TorchScript model or an exported program's module, or ``None``
        for an eager one (or a graph that cannot be read)."""
        if isinstance(model, torch.fx.GraphModule):
            return cls.of_exported(model)
        if not isinstance(model, torch.jit.ScriptModule):
            return None
        try:
            graph = model.inlined_graph
        except (AttributeError, RuntimeError):
            return None
        nodes: list[tuple[str, Chain]] = []
        unplaced: dict[int, str] = {}
        others: dict[int, tuple[range, ...]] = {}
        modules = {path: module_kind(m) for path, m in model.named_modules() if path}

        def walk(block: Any, looped: bool) -> None:
            for node in block.nodes():
                if not node.kind().startswith("prim::") and _makes_tensors(node):
                    chain, lost = placed_chain(node.getModuleHierarchy(), modules)
                    if lost:
                        unplaced[len(nodes)] = lost
                    nodes.append((node.kind(), chain))
                inner_looped = looped or node.kind() == "prim::Loop"
                branches = []
                for inner in node.blocks():
                    start = len(nodes)
                    walk(inner, inner_looped)
                    branches.append(range(start, len(nodes)))
                # an if's branches are alternatives, not a sequence; inside a loop the next
                # iteration may take the other one, so there they stay in the search
                if node.kind() == "prim::If" and not looped:
                    for taken in branches:
                        rest = tuple(b for b in branches if b is not taken and b)
                        for i in taken:
                            others[i] = others.get(i, ()) + rest

        walk(graph, False)
        return cls(nodes, unplaced, others)

    @classmethod
    def of_exported(cls, model: torch.fx.GraphModule) -> ScriptScopes | None:
        """The scopes of an FX graph whose nodes carry ``nn_module_stack`` (an exported
        program's module); ``None`` for one without (a symbolically traced module calls
        its submodules, whose hooks fire)."""
        nodes: list[tuple[str, Chain]] = []
        named = False
        for node in model.graph.nodes:
            if node.op != "call_function" or not isinstance(node.target, torch._ops.OpOverload):
                continue
            stack = node.meta.get("nn_module_stack") or {}
            named = named or bool(stack)
            chain = tuple((str(path).split("@")[0], str(type_name).rsplit(".", 1)[-1])
                          for path, type_name in stack.values() if path)
            nodes.append((node.target._schema.name, chain))
        return cls(nodes) if named else None

    def match(self, op: str) -> str:
        """The module path of the next graph node running ``op`` (``"aten::conv2d"``),
        searched from the last match on (leaving out the other branches of each ``if`` the
        last match is in, outside loops: they did not run) and then from the start;
        ``""`` (the model) when the graph has no such node."""
        n = len(self.nodes)
        skipped = self.others.get(self.cursor - 1, ()) if self.cursor else ()
        if skipped:
            order: Iterable[int] = itertools.chain(
                (i for i in range(self.cursor, n) if not any(i in r for r in skipped)),
                range(self.cursor))
        else:
            order = itertools.chain(range(self.cursor, n), range(self.cursor))
        for i in order:
            kind, chain = self.nodes[i]
            if kind == op:
                self.cursor = i + 1
                if i in self.unplaced:
                    self.misplaced[self.unplaced[i]] += 1
                for path, type_name in chain:  # outer modules first, as they started
                    self.kinds.setdefault(path, type_name)
                return chain[-1][0] if chain else ""
        self.unmatched[op] += 1
        return ""

    def note(self) -> str:
        """What could not be attributed, in words (``""`` when everything was)."""
        notes = []
        if self.unmatched:
            ops = ", ".join(f"{op} x{n}" for op, n in sorted(self.unmatched.items()))
            notes.append(f"{sum(self.unmatched.values())} operator call(s) not named by "
                         f"the model's graph ({ops}) are charged to the model's own row")
        if self.misplaced:
            steps = ", ".join(f"{step} x{n}" for step, n in sorted(self.misplaced.items()))
            notes.append(f"{sum(self.misplaced.values())} operator call(s) in modules the "
                         f"graph names by an index that fits several of the model's modules "
                         f"({steps}) are charged to the module around them")
        return "; ".join(notes)
