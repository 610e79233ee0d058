"""The layering in docs/architecture.md, checked on the source: the core (``vidground``) imports none
of the other packages, ``prompts`` only the core, each stage only the core and ``prompts`` (never the
other stage or ``pipelines``), and no module imports itself back through others, lazily or not."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vidground", "prompts", "frame_describer", "temporal_reasoner", "pipelines")
ALLOWED = {
    "vidground": {"vidground"},
    "prompts": {"vidground", "prompts"},
    "frame_describer": {"vidground", "prompts", "frame_describer"},
    "temporal_reasoner": {"vidground", "prompts", "temporal_reasoner"},
    "pipelines": set(PACKAGES),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


#: A whole string naming one of our modules, as registries (``"pkg.module:Class"``) and
#: ``importlib.import_module("pkg.module")`` do: such a string is an import too.
_MODULE_STRING = re.compile(rf"^((?:{'|'.join(PACKAGES)})(?:\.\w+)+)(?::\w+)?$")


def _imports(path: Path, module: str) -> set[str]:
    """Every module of ours that ``path`` imports, at module level or inside a function, or names in a
    string that something imports later (a registry target, an ``import_module`` argument)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # ``from package import module`` names a module when a file of that name exists
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_STRING.match(node.value):
            found.add(_MODULE_STRING.match(node.value)[1])
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    return {name: {t for t in _imports(path, name) if t in files and t != name} for name, path in files.items()}


GRAPH = _graph()


def test_the_graph_covers_every_package():
    assert {name.split(".")[0] for name in GRAPH} == set(PACKAGES)
    assert any(GRAPH.values())


@pytest.mark.parametrize("package", PACKAGES)
def test_a_layer_imports_only_the_layers_below_it(package):
    wrong = sorted(f"{src} -> {dst}" for src, dsts in GRAPH.items() if src.split(".")[0] == package
                   for dst in dsts if dst.split(".")[0] not in ALLOWED[package])
    assert not wrong, "imports that cross the layering:\n" + "\n".join(wrong)


def test_no_import_cycles():
    """Package ``__init__`` modules are left out as targets: importing ``pkg.mod`` runs ``pkg/__init__``
    first by Python's rules, which is not a dependency the code chose."""
    edges = {src: {d for d in dsts if not _is_package(d) or d.split(".")[0] != src.split(".")[0]}
             for src, dsts in GRAPH.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _is_package(name: str) -> bool:
    return (ROOT / name.replace(".", "/") / "__init__.py").exists()


def test_imports_by_name_and_in_functions_are_seen(tmp_path):
    """The check sees every way code reaches a module: lazy imports, relative ones, and module names in
    strings (``importlib.import_module``, registry targets)."""
    src = tmp_path / "mod.py"
    src.write_text("def f():\n    import importlib\n    from frame_describer.sampling import sample_frames\n"
                   "    importlib.import_module('frame_describer.cache')\n"
                   "TARGET = 'pipelines.session:Session'\nDOC = 'see frame_describer.images for why'\n"
                   "from .base import x\n")
    found = _imports(src, "temporal_reasoner.mod")
    assert {"frame_describer.sampling", "frame_describer.cache", "pipelines.session", "temporal_reasoner.base"} <= found
    assert not any("images" in name for name in found)  # prose is not an import
