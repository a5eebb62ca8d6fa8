"""The shortcuts that make the doctor fast change nothing it concludes.

expected.PlanWalk skips Django's whole-state reference scans and caches footprints; with
`shortcuts = False` it walks exactly as Django does. modelcheck.unchanged() skips the
autodetector only when the autodetector is certain to find nothing. Each is compared with
the plain way on the bundled project, on hand-made migrations aimed at the shortcuts' edges
(to_field references to renamed fields, SeparateDatabaseAndState, RenameModel, RunSQL with
state operations) and on a project from benchmarks/generate.py.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import connections, migrations, models
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ModelState, ProjectState

from migration_doctor import expected
from migration_doctor.modelcheck import RecordingQuestioner, unchanged

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _installed() -> tuple[MigrationGraph, set[str]]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return loader.graph, set(loader.unmigrated_apps)


def _add(graph: MigrationGraph, migration: Any) -> None:
    key = (migration.app_label, migration.name)
    graph.add_node(key, migration)


def _wire(graph: MigrationGraph, new: list[Any]) -> None:
    for migration in new:
        for dep in migration.dependencies:
            app, name = dep[0], dep[1]
            if name == "__first__":
                name = min(n for a, n in graph.nodes if a == app)
            graph.add_dependency(migration, (migration.app_label, migration.name), (app, name))


def _edge_migrations() -> list[Any]:
    """Operations where a shortcut could go wrong if it were not exact."""

    def mig(name: str, deps: list[tuple[str, str]], operations: list[Any]) -> Any:
        m = migrations.Migration(name, "edge")
        m.dependencies = deps
        m.operations = operations
        return m

    def pk() -> models.BigAutoField:
        return models.BigAutoField(primary_key=True, serialize=False)

    def noop(apps: Any, schema_editor: Any) -> None:
        pass

    return [
        mig(
            "0001_initial",
            [],
            [
                migrations.CreateModel(
                    "Parent",
                    [("id", pk()), ("code", models.CharField(max_length=10, unique=True))],
                ),
                migrations.CreateModel(
                    "Child",
                    [
                        ("id", pk()),
                        (
                            "parent",
                            models.ForeignKey(
                                "edge.parent", models.CASCADE, to_field="code", null=True
                            ),
                        ),
                        ("peers", models.ManyToManyField("edge.parent", related_name="+")),
                    ],
                ),
                migrations.CreateModel(
                    "Other",
                    [("id", pk()), ("child", models.ForeignKey("edge.child", models.CASCADE))],
                ),
            ],
        ),
        mig(
            "0002_renames",
            [("edge", "0001_initial")],
            [
                migrations.RenameField("parent", "code", "ref"),
                migrations.AlterField(
                    "parent", "ref", models.CharField(max_length=20, unique=True)
                ),
                migrations.RenameField("child", "parent", "owner"),
                migrations.AlterField(
                    "child",
                    "owner",
                    models.ForeignKey("edge.parent", models.SET_NULL, to_field="ref", null=True),
                ),
                migrations.RunPython(noop),
            ],
        ),
        mig(
            "0003_separate",
            [("edge", "0002_renames")],
            [
                migrations.SeparateDatabaseAndState(
                    database_operations=[
                        migrations.AddField("child", "note", models.TextField(default="")),
                        migrations.RenameField("parent", "ref", "reference"),
                    ],
                    state_operations=[
                        migrations.AddField("child", "note", models.TextField(default="")),
                        migrations.RenameField("parent", "ref", "reference"),
                    ],
                ),
                migrations.SeparateDatabaseAndState(
                    database_operations=[migrations.RunSQL("SELECT 1", migrations.RunSQL.noop)],
                    state_operations=[
                        migrations.AddField("other", "x", models.IntegerField(null=True))
                    ],
                ),
            ],
        ),
        mig(
            "0004_rename_model",
            [("edge", "0003_separate")],
            [
                migrations.RenameModel("Parent", "Holder"),
                migrations.AlterField(
                    "child", "peers", models.ManyToManyField("edge.holder", related_name="+")
                ),
                migrations.RunSQL(
                    "SELECT 1",
                    migrations.RunSQL.noop,
                    state_operations=[
                        migrations.AddField("child", "y", models.IntegerField(null=True))
                    ],
                ),
                migrations.RenameField("holder", "reference", "ref2"),
                migrations.AddIndex("child", models.Index(fields=["note"], name="edge_note_idx")),
                migrations.DeleteModel("Other"),
            ],
        ),
    ]


def _generated(tmp_path: Path) -> list[Any]:
    """Fresh Migration objects each call: state_forwards may edit their fields in place."""
    spec = importlib.util.spec_from_file_location("md_bench_generate", BENCHMARKS / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = generate  # dataclasses look their module up
    spec.loader.exec_module(generate)
    files = generate.render(apps=12, migrations=15, models=5, seed=3)
    pkg = f"mdgen_{uuid.uuid4().hex[:10]}"
    root = tmp_path / pkg
    generate.write(root, {k: v for k, v in files.items() if k.startswith("app")})
    (root / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    out = []
    try:
        for path in sorted(root.glob("app*/migrations/0*.py")):
            app = path.parent.parent.name
            module = importlib.import_module(f"{pkg}.{app}.migrations.{path.stem}")
            out.append(module.Migration(path.stem, app))
    finally:
        sys.path.remove(str(tmp_path))
    return out


def _compute(graph: MigrationGraph, alias: str, real_apps: set[str], shortcuts: bool) -> Any:
    old = expected.PlanWalk.shortcuts
    expected.PlanWalk.shortcuts = shortcuts
    try:
        return expected.compute(graph, connections[alias], real_apps=real_apps)
    finally:
        expected.PlanWalk.shortcuts = old


def _fk_targets(state: ProjectState) -> dict[tuple[Any, ...], Any]:
    """What rename_field's reference fix-ups touch, which ModelState equality may not show."""
    out: dict[tuple[Any, ...], Any] = {}
    for key, ms in state.models.items():
        for name, fld in ms.fields.items():
            if fld.remote_field:
                out[(*key, name)] = (
                    getattr(fld.remote_field, "field_name", None),
                    tuple(getattr(fld, "to_fields", ()) or ()),
                    fld.deconstruct()[1:],
                )
    return out


@pytest.mark.parametrize("extra", ["installed", "edge", "generated"])
def test_shortcuts_walk_like_django(fresh_db: str, tmp_path: Path, extra: str) -> None:
    results = []
    for shortcuts in (True, False):
        graph, real_apps = _installed()
        new = {"installed": list, "edge": _edge_migrations, "generated": _generated}
        added = new[extra]() if extra != "generated" else _generated(tmp_path)
        for migration in added:
            _add(graph, migration)
        _wire(graph, added)
        results.append(_compute(graph, fresh_db, real_apps, shortcuts))
    fast, plain = results
    assert fast.plan == plain.plan
    assert fast.effects == plain.effects
    assert fast.tables == plain.tables
    assert fast.state.models == plain.state.models
    assert _fk_targets(fast.state) == _fk_targets(plain.state)
    if extra == "edge":
        child = fast.state.models["edge", "child"]
        assert child.fields["owner"].to_fields == ("ref2",)
        assert ("edge", "other") not in fast.state.models


def _autodetect(old: ProjectState, new: ProjectState) -> dict[str, Any]:
    graph, _ = _installed()
    return MigrationAutodetector(old.clone(), new, RecordingQuestioner()).changes(graph=graph)


def _migration_state(alias: str) -> ProjectState:
    graph, real_apps = _installed()
    return expected.compute(graph, connections[alias], real_apps=real_apps).state


def _edit(state: ProjectState, change: str) -> ProjectState:
    state = state.clone()
    product = state.models["catalog", "product"]
    if change == "alter":
        old = product.fields["name"]
        product.fields["name"] = models.CharField(max_length=old.max_length + 1)
    elif change == "add":
        product.fields["extra"] = models.IntegerField(null=True)
    elif change == "remove":
        del product.fields["name"]
    elif change == "rename":
        product.fields["title"] = product.fields.pop("name")
    elif change == "ordering":
        product.options["ordering"] = ["id"]
    elif change == "index":
        product.options["indexes"] = [
            *product.options["indexes"],
            models.Index(fields=["id"], name="catalog_extra_idx"),
        ]
    elif change == "new_model":
        state.add_model(
            ModelState("catalog", "Extra", [("id", models.AutoField(primary_key=True))])
        )
    elif change == "delete_model":
        state.remove_model("catalog", "product")
    elif change == "manager":
        product.managers = [("things", models.Manager())]
    elif change == "abstract":  # ignored by the autodetector
        product.options["abstract"] = False
    elif change == "tablespace":  # ignored by the autodetector
        product.options["db_tablespace"] = "elsewhere"
    elif change == "bases":  # ignored by the autodetector for a model on both sides
        product.bases = ("catalog.tag",)
    return state


@pytest.mark.parametrize(
    "change",
    [
        "none", "alter", "add", "remove", "rename", "ordering", "index", "new_model",
        "delete_model", "manager", "abstract", "tablespace", "bases",
    ],
)  # fmt: skip
def test_unchanged_only_when_the_autodetector_finds_nothing(fresh_db: str, change: str) -> None:
    old = _migration_state(fresh_db)
    new = _edit(ProjectState.from_apps(apps), change)
    changes = _autodetect(old, new)
    if unchanged(old, new):
        assert changes == {}
        assert change in ("none", "abstract", "tablespace", "bases")
    else:
        assert changes, "unchanged() must be True whenever the autodetector finds nothing here"
