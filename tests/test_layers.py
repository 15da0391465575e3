"""The package's shape: layered sub-packages, each importing only the layers below it.

Every ``import`` in the package is read from its source (module level, inside functions and
under ``TYPE_CHECKING`` alike) and checked against the layer order below. A module may import
its own sub-package and any lower layer; never a sibling or a higher one, and no two modules
may import each other through any chain. Only the counting engine and the calibration import
torch at module level; only the pytest layer (and the package root, for
``pytest.mark.flop_budget``) imports pytest.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pytest_flopbudget

PACKAGE = Path(pytest_flopbudget.__file__).parent
NAME = "pytest_flopbudget"

#: Sub-packages from the bottom up; the same number means siblings that must not meet.
LAYERS = {
    "core": 0,
    "devices": 1,
    "counting": 2,
    "calibration": 3,
    "budgets": 3,
    "ci": 4,
    "reporting": 5,
    "pytest_plugin": 6,
    "": 7,  # the package root: __init__ (the public names) and __main__ (the command line)
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


def imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """``(imported module, line, at module level)`` for every import in the file."""
    package = name if is_package(name) else name.rpartition(".")[0]
    return imports_in(path.read_text(encoding="utf-8"), package, set(modules()))


def imports_in(source: str, package: str, known: set[str]) -> list[tuple[str, int, bool]]:
    """The imports of ``source``, a module of ``package``; ``known`` are the package's
    modules (``from . import x`` imports module ``x`` when it is one)."""
    tree = ast.parse(source)
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        at_top = id(node) in top_level
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno, at_top) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.startswith(NAME):
                # ``from . import charts`` imports a module; ``from .x import y`` a name of x
                for alias in node.names:
                    child = f"{target}.{alias.name}"
                    found.append((child if child in known else target, node.lineno, at_top))
            else:
                found.append((target, node.lineno, at_top))
    return found


def layer_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else ""


def internal_edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in modules().items():
        graph[name] = {target for target, _, _ in imports(name, path)
                       if target.startswith(NAME + ".") or target == NAME}
    return graph


def test_every_sub_package_has_a_layer():
    found = {layer_of(n) for n in modules()}
    assert found == set(LAYERS)


@pytest.mark.parametrize("name", sorted(modules()))
def test_imports_go_down_the_layers(name):
    here = layer_of(name)
    for target, line, _ in imports(name, modules()[name]):
        if not (target == NAME or target.startswith(NAME + ".")):
            continue
        there = layer_of(target)
        if target == NAME:  # the package root: the public API, above everything
            there = ""
        allowed = there == here or LAYERS[there] < LAYERS[here]
        assert allowed, (f"{name} line {line} imports {target}: layer {there or 'root'!r} is "
                         f"not below {here or 'root'!r}")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (``[a, b, a]``), or ``None``."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt in graph and nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles():
    cycle = find_cycle(internal_edges())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_see_function_level_imports_and_cycles():
    # what the checks above rely on: an import inside a function is seen (not at module
    # level), relative imports resolve against the package, and a loop closed through it is
    # a cycle
    source = "import torch\n\ndef f():\n    from ..ci import comparison\n"
    found = imports_in(source, f"{NAME}.budgets", {f"{NAME}.ci.comparison"})
    assert found == [("torch", 1, True), (f"{NAME}.ci.comparison", 4, False)]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


@pytest.mark.parametrize("name", sorted(modules()))
def test_torch_and_pytest_are_imported_only_where_they_belong(name):
    here = layer_of(name)
    for target, line, at_top in imports(name, modules()[name]):
        root = target.split(".")[0]
        if root == "torch" and at_top:
            assert here in ("counting", "calibration"), \
                f"{name} line {line} imports torch at module level"
        if root in ("pytest", "_pytest"):
            assert here in ("pytest_plugin", ""), f"{name} line {line} imports pytest"
        if root == "matplotlib":
            assert name == f"{NAME}.reporting.charts" and not at_top, \
                f"{name} line {line} imports matplotlib"
