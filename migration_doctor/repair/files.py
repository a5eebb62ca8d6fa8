"""Repairs that change source files: merge migrations and finishing a squash."""

from __future__ import annotations

import ast
import importlib
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from shlex import quote

from django.core.management import call_command
from django.db.migrations import operations as ops

from ..classify import foreign_source, owner_words
from ..findings import MANAGE, Finding
from ..keys import Key
from ..snapshot import Snapshot
from .steps import Context, RecordRows, Step


def _touched(snapshot: Snapshot, branch: list[Key]) -> set[tuple[str, str, str]]:
    """(app, model, field) — field "" for a whole model — changed along a branch."""
    touched: set[tuple[str, str, str]] = set()
    for key in branch:
        migration = snapshot.graph.graph.nodes[key]
        if migration is None:
            continue
        for op in migration.operations:
            if isinstance(op, ops.fields.FieldOperation):
                touched.add((key[0], op.model_name_lower, op.name_lower))
                if isinstance(op, ops.RenameField):
                    touched.add((key[0], op.model_name_lower, op.new_name_lower))
            elif isinstance(op, ops.models.ModelOperation):
                touched.add((key[0], op.name_lower, ""))
    return touched


@dataclass
class WriteMerge(Step):
    leaves: list[str] = field(default_factory=list)
    writes_files = True
    action = "files"

    def sql(self, ctx: Context) -> list[str]:
        return []

    def apply(self, ctx: Context) -> None:
        call_command(
            "makemigrations", self.app, merge=True, interactive=False, stdout=io.StringIO()
        )
        importlib.invalidate_caches()  # the diagnosis after the repair imports the new file


def merge_step(finding: Finding, snapshot: Snapshot) -> tuple[list[Step], str]:
    app = finding.app
    assert app is not None
    graph = snapshot.graph.graph
    leaves = [(app, n) for n in finding.evidence["leaves"]]
    for leaf in leaves:
        foreign = _foreign(snapshot, leaf)
        if foreign:
            return [], _not_ours(foreign)
    plans = [graph.forwards_plan(leaf) for leaf in leaves]
    common = set(plans[0]).intersection(*map(set, plans[1:]))
    branches = [[k for k in p if k not in common] for p in plans]
    touched = [_touched(snapshot, b) for b in branches]
    clashes: set[tuple[str, str, str]] = set()
    for i, a in enumerate(touched):
        for b in touched[i + 1 :]:
            clashes |= {x for x in a if x in b or (x[0], x[1], "") in b}
            clashes |= {y for y in b if (y[0], y[1], "") in a}
    if clashes:
        names = ", ".join(f"{m}.{f}" if f else m for _, m, f in sorted(clashes))
        return [], (
            f"the leaves change the same model or field ({names}): a merge migration would "
            "hide a real conflict; reconcile the branches by hand"
        )
    return [
        WriteMerge(
            "multiple-leaves",
            app,
            None,
            f"Write the merge migration of {app} ({', '.join(finding.evidence['leaves'])})",
            "the branches touch different models and fields",
            f"{MANAGE} makemigrations --merge {quote(app)}",
            leaves=list(finding.evidence["leaves"]),
        )
    ], ""


def _module_name(snapshot: Snapshot, key: Key) -> str | None:
    migration = snapshot.graph.loader.disk_migrations.get(key)
    return None if migration is None else type(migration).__module__


def _module_file(snapshot: Snapshot, key: Key) -> Path | None:
    name = _module_name(snapshot, key)
    if name is None:
        return None
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    return Path(path) if path else None


def _foreign(snapshot: Snapshot, key: Key) -> dict[str, str] | None:
    path = _module_file(snapshot, key)
    return foreign_source(key[0], str(path) if path else None, _module_name(snapshot, key) or "")


def _not_ours(foreign: dict[str, str]) -> str:
    return (
        f"its migrations belong to {owner_words(foreign)} ({foreign['location']}): source files "
        "change only in the project's own apps"
    )


def remove_replaces(source: str) -> str:
    """The squash's source without its `replaces = [...]` statement."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Migration":
            for stmt in node.body:
                targets = (
                    stmt.targets
                    if isinstance(stmt, ast.Assign)
                    else [stmt.target]
                    if isinstance(stmt, ast.AnnAssign)
                    else []
                )
                if any(isinstance(t, ast.Name) and t.id == "replaces" for t in targets):
                    start, end = stmt.lineno - 1, stmt.end_lineno or stmt.lineno
                    return "".join(lines[:start] + lines[end:])
    return source


@dataclass
class FinalizeSquash(Step):
    delete: list[str] = field(default_factory=list)
    squash_file: str = ""
    # Modules whose files change or go: imported copies must not outlive them.
    modules: list[str] = field(default_factory=list)
    replaced: list[Key] = field(default_factory=list)
    writes_files = True
    action = "files"

    def makes_stale(self) -> list[Key]:
        return list(self.replaced)

    def sql(self, ctx: Context) -> list[str]:
        return [f"-- delete {p}" for p in self.delete] + [
            f"-- remove `replaces` from {self.squash_file}"
        ]

    def apply(self, ctx: Context) -> None:
        path = Path(self.squash_file)
        path.write_text(remove_replaces(path.read_text()))
        for p in self.delete:
            Path(p).unlink(missing_ok=True)
        # Otherwise every later load in this process (the diagnosis printed after the
        # repair, a `migrate` in the same process) still sees `replaces`.
        for name in self.modules:
            sys.modules.pop(name, None)
        importlib.invalidate_caches()


def finalize_squash_step(finding: Finding, snapshot: Snapshot) -> tuple[list[Step], str]:
    app, name = finding.app, finding.migration
    assert app is not None and name is not None
    key = (app, name)
    loader = snapshot.graph.loader
    replaced = set(loader.resolved_replaces(key))
    for k in [key, *sorted(replaced)]:
        foreign = _foreign(snapshot, k)
        if foreign:
            return [], _not_ours(foreign)
    dependents = sorted(
        f"{k[0]}.{k[1]}"
        for k, m in loader.disk_migrations.items()
        if k not in replaced and k != key and any(tuple(d) in replaced for d in m.dependencies)
    )
    if dependents:
        return [], (
            f"{', '.join(dependents)} depend on replaced migrations: point them at {name} first"
        )
    squash_file = _module_file(snapshot, key)
    if squash_file is None:
        return [], f"the file of {app}.{name} was not found"
    source = squash_file.read_text()
    if remove_replaces(source) == source:
        return [], f"no `replaces = [...]` statement found in {squash_file} to remove"
    files = [str(p) for p in (_module_file(snapshot, k) for k in sorted(replaced)) if p]
    modules = [m for m in (_module_name(snapshot, k) for k in [key, *sorted(replaced)]) if m]
    steps: list[Step] = [
        FinalizeSquash(
            "squash-ready",
            app,
            name,
            f"Make {app}.{name} a normal migration: delete {len(files)} replaced file(s), "
            "remove `replaces`",
            "every replaced migration is recorded on this database",
            "(by hand: delete the files, edit `replaces` out)",
            delete=files,
            squash_file=str(squash_file),
            modules=modules,
            replaced=sorted(replaced),
        )
    ]
    if key not in snapshot.recorded:
        # Django counts the squash as applied (everything it replaces is recorded) and
        # records it on the next `migrate`. Without `replaces` it is an ordinary migration:
        # unrecorded, `migrate` would run its operations again on existing tables.
        steps.append(
            RecordRows(
                "squash-ready",
                app,
                name,
                f"Record {app}.{name}",
                "everything it replaces is recorded; once it is a normal migration, its own "
                "row is what says it is applied",
                f"{MANAGE} migrate {quote(app)}  # before the files change: Django records the "
                "squash",
                rows=[key],
            )
        )
    return steps, ""
