"""House rules, read from the source with ``ast``: which layer may import which, no import cycles, short functions.

Every ``import`` and ``from ... import`` counts, including those inside functions and under
``TYPE_CHECKING``: a lazy import is still a dependency. Relative imports are resolved.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Folder -> the package it is installed as (setuptools package-dir, see pyproject.toml).
FOLDERS = {
    "edgeship": "edgeship",
    "train": "edgeship.train",
    "compress": "edgeship.compress",
    "export": "edgeship.export",
    "runtime": "edgeship.runtime",
}

# -- layers ----------------------------------------------------------------------------------------
# Most specific prefix first. ``edgeship`` alone is the package's front door (``edgeship/__init__.py``:
# the version and core's errors re-exported): Python runs it before any ``edgeship.*`` module, so
# importing it adds no dependency beyond core. Everything else in ``edgeship/`` is the orchestrator.
_LAYER_PREFIXES = (
    ("edgeship.core", "core"),
    ("edgeship.runtime.serve", "serve"),
    ("edgeship.runtime", "runtime"),
    ("edgeship.export", "export"),
    ("edgeship.compress", "compress"),
    ("edgeship.train", "train"),
)
ORCHESTRATOR = "orchestrator"
LAYERS = ("core", "root", "runtime", "serve", "export", "compress", "train", ORCHESTRATOR)

# Whom each layer may import (its own layer always included). ARCHITECTURE.md: stages depend forward
# only; the runtime imports nothing above it; export never imports train. compress uses train's fit
# loop (today's code needs nothing from export, so compress -> export is not allowed).
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "root": frozenset({"root", "core"}),
    "runtime": frozenset({"runtime", "core"}),
    "serve": frozenset({"serve", "runtime", "core", "root"}),  # root: ``edgeship.__version__`` in /health
    "export": frozenset({"export", "runtime", "core"}),
    "compress": frozenset({"compress", "train", "core"}),
    "train": frozenset({"train", "core"}),
    ORCHESTRATOR: frozenset(LAYERS),
}

# Imports of another package's ``_private`` module still to be replaced by that package's exports
# (importer module, imported module). Owned by the parity rework; empty this as it lands.
PENDING_PRIVATE: frozenset[tuple[str, str]] = frozenset()

# -- cycles ----------------------------------------------------------------------------------------
ALLOWED_CYCLES: frozenset[frozenset[str]] = frozenset({
    # The dataset registry: _datasets holds register_dataset and imports the modules that register
    # into it (images, text) so that list_datasets() is complete; those import the decorator back.
    frozenset({"edgeship.train._datasets", "edgeship.train._images", "edgeship.train._text"}),
})
# Cycles being removed elsewhere (not registries): add one only with its fix under way, delete it when it lands.
PENDING_CYCLES: frozenset[frozenset[str]] = frozenset()

# -- function length -------------------------------------------------------------------------------
MAX_FUNCTION_LINES = 60
# Functions still too long, being split elsewhere: add one only with its split under way, delete it when it lands.
PENDING_LONG: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool

    @property
    def package(self) -> str:
        """The package this module's relative imports and private modules belong to."""
        return self.name if self.is_package else self.name.rpartition(".")[0]

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


@dataclass(frozen=True)
class Edge:
    importer: Module
    target: str  # the module imported (``from pkg import name`` with ``name`` not a module: ``pkg``)
    line: int

    def __str__(self) -> str:
        return f"{self.importer.rel}:{self.line} {self.importer.name} -> {self.target}"


def _module_of(path: Path) -> Module:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts[0] = FOLDERS[parts[0]]
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return Module(".".join(parts), path, is_package)


@cache
def modules() -> dict[str, Module]:
    found = [_module_of(p) for folder in FOLDERS for p in sorted((ROOT / folder).rglob("*.py"))]
    return {m.name: m for m in found}


def _targets(node: ast.Import | ast.ImportFrom, mod: Module) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names)
        return
    if node.level:
        base = mod.package.split(".")
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        yield sub if sub in modules() else source


@cache
def edges() -> tuple[Edge, ...]:
    """Every import of an ``edgeship`` module by a module in the five folders."""
    out = []
    for mod in modules().values():
        for node in ast.walk(ast.parse(mod.path.read_text(encoding="utf-8"), str(mod.path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                out += [Edge(mod, t, node.lineno) for t in _targets(node, mod) if t.split(".")[0] == "edgeship"]
    return tuple(out)


def layer(name: str) -> str:
    if name == "edgeship":
        return "root"
    for prefix, lay in _LAYER_PREFIXES:
        if name == prefix or name.startswith(prefix + "."):
            return lay
    return ORCHESTRATOR


def _private_owner(target: str) -> str | None:
    """The package whose ``_private`` module ``target`` is (first private segment), else ``None``."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def layer_violations() -> list[str]:
    return [f"{e}  ({layer(e.importer.name)} may not import {layer(e.target)})" for e in edges()
            if layer(e.target) not in ALLOWED[layer(e.importer.name)]]


def private_violations() -> list[str]:
    bad = []
    for e in edges():
        owner = _private_owner(e.target)
        if owner is not None and owner != e.importer.package and (e.importer.name, e.target) not in PENDING_PRIVATE:
            bad.append(f"{e}  (import the name from {owner}, which exports it)")
    return bad


def import_cycles() -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan), over resolved imports."""
    graph: dict[str, set[str]] = {name: set() for name in modules()}
    for e in edges():
        if e.target in graph and e.target != e.importer.name:
            graph[e.importer.name].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def long_functions() -> dict[str, int]:
    """``file::Outer.name`` -> lines (``def`` line to last line) of every function longer than the limit."""
    out: dict[str, int] = {}

    def walk(node: ast.AST, prefix: str, rel: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qual = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    lines = (child.end_lineno or child.lineno) - child.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        out[f"{rel}::{qual}"] = lines
                walk(child, qual + ".", rel)
            else:
                walk(child, prefix, rel)

    for mod in modules().values():
        walk(ast.parse(mod.path.read_text(encoding="utf-8")), "", mod.rel)
    return out


# -- the tests -------------------------------------------------------------------------------------
def test_the_graph_sees_every_stage_and_lazy_imports() -> None:
    """Guard: the walk finds all five folders, resolves relative imports and sees imports inside functions."""
    names = modules()
    assert {"edgeship", "edgeship.core.errors", "edgeship.runtime._bench", "edgeship.runtime.serve._app",
            "edgeship.export.tflite", "edgeship.compress.prune", "edgeship.train._fit"} <= names.keys()
    pairs = {(e.importer.name, e.target) for e in edges()}
    assert ("edgeship.runtime._load", "edgeship.runtime._bundle") in pairs  # `from ._bundle import ...`
    assert ("edgeship.runtime._bench", "edgeship.runtime._profile") in pairs  # inside bench_bundle()
    assert ("edgeship.cli", "edgeship.runtime.serve") in pairs  # inside _cmd_serve()
    assert {layer(n) for n in names} == set(LAYERS)


def test_layers_import_only_what_the_whitelist_allows() -> None:
    assert not layer_violations(), "\n".join(layer_violations())


def test_no_import_of_another_packages_private_module() -> None:
    """Each stage's ``__init__`` exports what others need (same name); importers use ``from edgeship.<stage> import``."""
    assert not private_violations(), "\n".join(private_violations())


def test_no_import_cycles_but_the_registrys() -> None:
    unexpected = [sorted(c) for c in import_cycles() if c not in ALLOWED_CYCLES | PENDING_CYCLES]
    assert not unexpected, unexpected


def test_no_function_longer_than_60_lines() -> None:
    too_long = {name: n for name, n in long_functions().items() if name not in PENDING_LONG}
    assert not too_long, "\n".join(f"{name}: {n} lines" for name, n in sorted(too_long.items()))
