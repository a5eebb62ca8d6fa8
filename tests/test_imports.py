"""The package's import graph reads top-down: no cycle, no import hidden in a function.

Every `import` of a migration_doctor module is read from the source with `ast` (module
level, `if TYPE_CHECKING:` blocks and function bodies alike), relative imports resolved, so
a cycle cannot hide behind a lazy import or a type-checking-only one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import migration_doctor

PACKAGE = "migration_doctor"
ROOT = Path(migration_doctor.__file__).parent

# Function-level imports that are there on purpose, each for a reason other than a cycle.
DEFERRED = {
    # Django's convention: apps.py imports nothing of the app before the registry is ready.
    ("migration_doctor.apps", "migration_doctor.checks"),
    # The system check is registered on every manage.py command; the diagnosis (Django's
    # migration machinery) is imported only when `check --database` runs it.
    ("migration_doctor.checks", "migration_doctor.diagnose"),
    ("migration_doctor.checks", "migration_doctor.errors"),
    # The pytest plugin is loaded by every pytest run of a project that installs the app;
    # the diagnosis is imported only when a session uses the fixture or the marker.
    ("migration_doctor.pytest_plugin", "migration_doctor.diagnose"),
    ("migration_doctor.pytest_plugin", "migration_doctor.errors"),
    ("migration_doctor.pytest_plugin", "migration_doctor.render.text"),
    # The import watch's child starts lean: the renderer only after the watch is over.
    ("migration_doctor.__main__", "migration_doctor.render.text"),
}


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute name `from ... import` reads from, relative levels resolved."""
    if not node.level:
        return node.module or ""
    # In a package's __init__ one dot is the package itself; elsewhere the module's parent.
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The package modules an import statement names (`from p import m`: the module p.m)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    source = _resolve(module, path, node)
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        yield submodule if submodule in MODULES else source


def _runs(module: str, target: str) -> set[str]:
    """What importing `target` from `module` runs: it and the packages above it that
    `module`'s own import has not started already."""
    if target != PACKAGE and not target.startswith(PACKAGE + "."):
        return set()
    if target not in MODULES:
        target = target.rpartition(".")[0]  # `import migration_doctor.x.name` of a name
    parts = target.split(".")
    chain = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    started = module.split(".")
    return chain - {".".join(started[:i]) for i in range(1, len(started) + 1)}


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, path: Path):
        self.module, self.path = module, path
        self.depth = 0
        self.edges: set[str] = set()
        self.deferred: list[tuple[str, int]] = []

    def visit_import(self, node: ast.Import | ast.ImportFrom) -> None:
        for target in _targets(self.module, self.path, node):
            runs = _runs(self.module, target)
            self.edges |= runs
            if self.depth and runs:
                self.deferred.append((target, node.lineno))

    visit_Import = visit_ImportFrom = visit_import

    def visit_function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_function


def _graph() -> tuple[dict[str, set[str]], list[tuple[str, str, int]]]:
    graph: dict[str, set[str]] = {}
    deferred: list[tuple[str, str, int]] = []
    for module, path in MODULES.items():
        visitor = _Imports(module, path)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        graph[module] = visitor.edges
        deferred += [(module, target, line) for target, line in visitor.deferred]
    return graph, deferred


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` (its first module repeated at the end), or []."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str]:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return []
        path.append(module)
        for target in sorted(graph.get(module, ())):
            found = visit(target)
            if found:
                return found
        path.pop()
        done.add(module)
        return []

    for module in sorted(graph):
        found = visit(module)
        if found:
            return found
    return []


def test_every_module_is_read():
    assert {"migration_doctor.repair.plan", "migration_doctor.diagnose"} <= set(MODULES)
    graph, _ = _graph()
    # Both spellings of an import are resolved: absolute and relative.
    fix = "migration_doctor.management.commands.migration_doctor_fix"
    assert "migration_doctor.repair.plan" in graph[fix]
    assert "migration_doctor.snapshot" in graph["migration_doctor.diagnose"]


def test_the_cycle_finder_finds_one():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_resolving_relative_imports():
    init = ROOT / "snapshot" / "__init__.py"
    node = ast.parse("from . import graph").body[0]
    assert isinstance(node, ast.ImportFrom)
    assert list(_targets("migration_doctor.snapshot", init, node)) == [
        "migration_doctor.snapshot.graph"
    ]
    node = ast.parse("from ..expected import Key").body[0]
    assert isinstance(node, ast.ImportFrom)
    module = ROOT / "snapshot" / "graph.py"
    assert list(_targets("migration_doctor.snapshot.graph", module, node)) == [
        "migration_doctor.expected"
    ]
    # Importing a module of another package runs that package's __init__ first.
    assert _runs("migration_doctor.diagnose", "migration_doctor.snapshot.rows") == {
        "migration_doctor.snapshot",
        "migration_doctor.snapshot.rows",
    }
    # ... but not the package a module of it is imported from (it has started already).
    assert _runs("migration_doctor.snapshot.graph", "migration_doctor.snapshot.rows") == {
        "migration_doctor.snapshot.rows"
    }


def test_no_import_cycle():
    graph, _ = _graph()
    cycle = _cycle(graph)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_no_function_level_import_but_the_documented_ones():
    _, deferred = _graph()
    found = {(module, target) for module, target, _ in deferred}
    unexpected = sorted(
        f"{MODULES[module].relative_to(ROOT.parent)}:{line} imports {target}"
        for module, target, line in deferred
        if (module, target) not in DEFERRED
    )
    assert not unexpected, "function-level imports:\n" + "\n".join(unexpected)
    # The allow-list stays short: an entry whose import is gone goes too.
    assert sorted(DEFERRED - found) == []
