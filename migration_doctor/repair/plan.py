"""Repair plans: each finding the evidence can settle becomes printable, executable steps.

A plan is built from a fresh diagnosis taken under the repair lock, so every step relies on
evidence that is still true when it runs. Steps never drop anything.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from shlex import quote
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import operations as ops
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState
from django.utils import timezone

from ..classify import insert_row_sql, live_has, sql_literal
from ..diagnose import Report
from ..expected import Footprints, Key, ModelKey, Obj, collapse, column_of, describe
from ..findings import MANAGE, Finding
from ..snapshot import Snapshot
from ..snapshot.rows import recorder_table


class Context:
    """What steps need to compute SQL and run: the connection and rendered states."""

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot
        self.connection: BaseDatabaseWrapper = snapshot.connection
        self.loader = snapshot.graph.loader
        self._states: dict[tuple[Key, ...], ProjectState] = {}

    def state_before(self, key: Key) -> ProjectState:
        parents = tuple(sorted(p.key for p in self.loader.graph.node_map[key].parents))
        return self._state(parents)

    def applied_state(self) -> ProjectState:
        applied = tuple(
            sorted(k for k in self.loader.applied_migrations if k in self.loader.graph.nodes)
        )
        return self._state(applied)

    def _state(self, nodes: tuple[Key, ...]) -> ProjectState:
        if nodes not in self._states:
            if nodes:
                state = self.loader.project_state(list(nodes), at_end=True)
            else:
                state = ProjectState(real_apps=self.loader.unmigrated_apps)
            self._states[nodes] = state
        return self._states[nodes].clone()


@dataclass
class Step:
    kind: str
    app: str | None
    migration: str | None
    title: str
    reason: str
    equivalent: str = ""
    proven: bool = True
    unproven_why: str = ""
    # The finding the step repairs, for the ledger.
    check_id: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    writes_rows = False
    action = "schema"

    def rows_touched(self) -> list[Key]:
        return []

    def backed_up(self, ctx: Context) -> list[tuple[str, tuple[str, ...], list[int]]]:
        """Rows outside django_migrations this step changes: (table, columns with the key
        first, keys). The backup keeps them and --restore puts them back."""
        return []

    def makes_stale(self) -> list[Key]:
        """Rows this step leaves without a file on purpose (a finalised squash's replaced
        migrations, which Django leaves to `migrate --prune`)."""
        return []

    writes_schema = False
    writes_files = False
    # The step itself made sure that what it drops holds no data (or was allowed to).
    checked_data = False

    def sql(self, ctx: Context) -> list[str]:
        return []

    def drops(self, ctx: Context) -> list[Obj]:
        """Live objects this step sets out to drop (the guard refuses any other drop)."""
        return []

    def apply(self, ctx: Context) -> None:
        raise NotImplementedError

    def as_dict(self, ctx: Context) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "app": self.app,
            "migration": self.migration,
            "title": self.title,
            "reason": self.reason,
            "proven": self.proven,
            "sql": self.sql(ctx),
            "django": self.equivalent,
        }


@dataclass
class RecordRows(Step):
    rows: list[Key] = field(default_factory=list)
    writes_rows = True
    action = "record"

    def rows_touched(self) -> list[Key]:
        return list(self.rows)

    def sql(self, ctx: Context) -> list[str]:
        now = timezone.now().isoformat(sep=" ", timespec="seconds")
        return [insert_row_sql(ctx.connection, a, n, now) for a, n in self.rows]

    def apply(self, ctx: Context) -> None:
        MigrationRecorder(ctx.connection).ensure_schema()
        manager = MigrationRecorder.Migration.objects.using(ctx.connection.alias)
        for app, name in self.rows:
            # Compared in Python: MySQL's collation would call `0001_INITIAL` a match.
            same = manager.filter(app=app, name=name).values_list("app", "name")
            if (app, name) not in set(same):
                manager.create(app=app, name=name)


@dataclass
class DeleteRowIds(Step):
    """Delete rows by id: exactly the rows the snapshot showed (stale rows, extra copies)."""

    ids: list[int] = field(default_factory=list)
    writes_rows = True
    action = "unrecord"

    def rows_touched(self) -> list[Key]:
        return [(self.app or "", self.migration or "")]

    def sql(self, ctx: Context) -> list[str]:
        qn = ctx.connection.ops.quote_name
        ids = ", ".join(map(str, self.ids))
        return [f"DELETE FROM {qn(recorder_table())} WHERE {qn('id')} IN ({ids});"]

    def apply(self, ctx: Context) -> None:
        manager = MigrationRecorder.Migration.objects.using(ctx.connection.alias)
        manager.filter(id__in=self.ids).delete()


@dataclass
class RenameRow(Step):
    """Give one row (by id) the name of the file it was renamed to; id and applied stay."""

    row_id: int = 0
    old_name: str = ""
    writes_rows = True
    action = "rename"

    def rows_touched(self) -> list[Key]:
        return [(self.app or "", self.old_name), (self.app or "", self.migration or "")]

    def sql(self, ctx: Context) -> list[str]:
        qn, v = ctx.connection.ops.quote_name, ctx.connection.vendor
        return [
            f"UPDATE {qn(recorder_table())} SET {qn('name')} = "
            f"{sql_literal(self.migration or '', v)} WHERE {qn('id')} = {self.row_id};"
        ]

    def apply(self, ctx: Context) -> None:
        manager = MigrationRecorder.Migration.objects.using(ctx.connection.alias)
        manager.filter(id=self.row_id).update(name=self.migration)


def add_missing(
    editor: Any, state: ProjectState, objects: list[Obj], connection: BaseDatabaseWrapper
) -> None:
    """Create `objects` (tables, columns, named indexes/constraints) as `state` defines them.

    Missing columns are added one at a time, each onto the model as it is without the
    columns still missing — exactly what AddField does — so SQLite's table rebuild copies
    only columns that exist.
    """
    fp = Footprints(connection)
    tables = {o[1] for o in objects if o[0] == "table"}
    owners: dict[str, ModelKey] = {}
    columns: dict[tuple[str, str], tuple[ModelKey, str]] = {}
    for mkey, ms in state.models.items():
        table = fp.table_name(mkey[0], mkey[1], ms)
        owners[table] = mkey
        for name, fld in ms.fields.items():
            column = column_of(name, fld)
            if column and not fld.many_to_many:
                columns[(table, column)] = (mkey, name)
    rendered = state.apps
    by_table = {m._meta.db_table: m for m in rendered.get_models(include_auto_created=True)}
    for obj in objects:
        if obj[0] != "table":
            continue
        model = by_table.get(obj[1])
        if model is None:
            raise LookupError(f"no model defines table {obj[1]}")
        # The table alone: its M2M tables are separate objects of the plan.
        sql, params = editor.table_sql(model)
        editor.execute(sql, params or None)
        editor.deferred_sql.extend(editor._model_indexes_sql(model))
    wanted = [
        columns[(o[1], o[2])]
        for o in objects
        if o[0] == "column" and o[1] not in tables and (o[1], o[2]) in columns
    ]
    if len(wanted) < len([o for o in objects if o[0] == "column" and o[1] not in tables]):
        raise LookupError("a missing column belongs to no field of the state")
    if wanted:
        current = state.clone()
        for (app, model_name), name in wanted:
            ops.RemoveField(model_name, name).state_forwards(app, current)
        for (app, model_name), name in wanted:
            fld = state.models[(app, model_name)].fields[name]
            add = ops.AddField(model_name, name, fld)
            after = current.clone()
            add.state_forwards(app, after)
            add.database_forwards(app, editor, current, after)
            current = after
    added = {(o[1], o[2]) for o in objects if o[0] == "column"}

    def on_columns(kind: str) -> Iterator[tuple[Any, list[Any]]]:
        """The model and fields of each missing `kind` object ("unique", "index") that no
        table or AddField above made already."""
        for obj in objects:
            if obj[0] != kind or obj[1] in tables:
                continue
            if len(obj) == 3 and (obj[1], obj[2]) in added:
                continue  # the field's AddField made it with the column
            model = by_table[obj[1]]
            by_column = {f.column.lower(): f for f in model._meta.local_fields if f.column}
            yield model, [by_column[c.lower()] for c in obj[2:]]

    for model, fields in on_columns("unique"):
        editor.execute(editor._create_unique_sql(model, fields))
    for model, fields in on_columns("index"):
        # db_index names it without suffix, alter_index_together with "_idx".
        suffix = "" if len(fields) == 1 and getattr(fields[0], "db_index", False) else "_idx"
        editor.execute(editor._create_index_sql(model, fields=fields, suffix=suffix))
    named = [o for o in objects if o[0] == "constraint" and o[1] not in tables]
    # Constraints first: on SQLite adding one rebuilds the table with every index the model
    # has, so an index may exist by the time its turn comes; look before adding.
    named.sort(key=lambda o: any(i.name == o[2] for i in by_table[o[1]]._meta.indexes))
    for obj in named:
        model = by_table[obj[1]]
        if not editor.collect_sql:
            with connection.cursor() as cursor:
                if obj[2] in connection.introspection.get_constraints(cursor, obj[1]):
                    continue
        index = next((i for i in model._meta.indexes if i.name == obj[2]), None)
        if index is not None:
            editor.add_index(model, index)
        else:
            editor.add_constraint(
                model, next(c for c in model._meta.constraints if c.name == obj[2])
            )


class SchemaStep(Step):
    """A step that changes the schema through Django's schema editor.

    `_run(collect=True)` only collects the SQL the editor would run (what --dry-run shows).
    """

    writes_schema = True

    def _run(self, ctx: Context, collect: bool) -> list[str]:
        raise NotImplementedError

    def sql(self, ctx: Context) -> list[str]:
        try:
            return self._run(ctx, collect=True)
        except Exception as exc:  # some operations cannot render SQL without running
            return [f"-- SQL not available without running it: {exc}"]

    def apply(self, ctx: Context) -> None:
        self._run(ctx, collect=False)


@dataclass
class RunOperations(SchemaStep):
    """Run some operations of a migration through the schema editor, as migrate would.

    `complete` maps an operation that is itself half done (a CreateModel whose table exists
    without some columns, as squashes produce) to the objects it still lacks: those are
    added as the state right after that operation defines them.
    """

    key: Key = ("", "")
    indexes: list[int] = field(default_factory=list)
    complete: dict[int, list[Obj]] = field(default_factory=dict)

    def drops(self, ctx: Context) -> list[Obj]:
        effect = ctx.snapshot.expected.effects[self.key]
        return [o for op in effect.operations if op.index in self.indexes for o in op.removes]

    def _run(self, ctx: Context, collect: bool) -> list[str]:
        migration = ctx.loader.graph.nodes[self.key]
        assert migration is not None
        app = self.key[0]
        state = ctx.state_before(self.key)
        connection = ctx.connection
        atomic = migration.atomic and connection.features.can_rollback_ddl
        # Without transactional DDL (MySQL/MariaDB) one operation per schema editor, so an
        # interruption leaves whole operations behind, which the next diagnosis sees.
        shared = collect or atomic
        collected: list[str] = []
        outer = connection.schema_editor(collect_sql=collect, atomic=atomic) if shared else None
        editor_cm = outer if outer is not None else _null()
        with editor_cm as shared_editor:
            for i, op in enumerate(migration.operations):
                new_state = state.clone()
                op.state_forwards(app, new_state)
                if i in self.indexes or i in self.complete:
                    with _editor(connection, shared_editor) as editor:
                        if i in self.indexes:
                            op.database_forwards(app, editor, state, new_state)
                        else:
                            add_missing(editor, new_state, self.complete[i], connection)
                state = new_state
            if collect and shared_editor is not None:
                collected = list(shared_editor.collected_sql)
        return collected


@contextmanager
def _null() -> Iterator[None]:
    yield None


@contextmanager
def _editor(connection: BaseDatabaseWrapper, shared: Any) -> Iterator[Any]:
    if shared is not None:
        yield shared
    else:
        with connection.schema_editor(atomic=False) as editor:
            yield editor


@dataclass
class RollBack(SchemaStep):
    """Remove the present part of a half-applied migration, so `migrate` can apply it whole.

    Only offered when that part cannot be completed safely; never when it holds data,
    unless --allow-data-loss.
    """

    key: Key = ("", "")
    objects: list[Obj] = field(default_factory=list)  # present objects the migration created
    checked_data = True  # _roll_back counted their data first

    def drops(self, ctx: Context) -> list[Obj]:
        return list(self.objects)

    def _run(self, ctx: Context, collect: bool) -> list[str]:
        migration = ctx.loader.graph.nodes[self.key]
        assert migration is not None
        app = self.key[0]
        state = ctx.state_before(self.key)
        for op in migration.operations:
            op.state_forwards(app, state)
        connection = ctx.connection
        fp = Footprints(connection)
        tables = {o[1] for o in self.objects if o[0] == "table"}
        present = {(o[1], o[2]) for o in self.objects if o[0] == "column"}
        # The model as the database has it: the migration's columns that are absent removed.
        live = state.clone()
        drops: list[tuple[ModelKey, str]] = []
        for mkey, ms in state.models.items():
            table = fp.table_name(mkey[0], mkey[1], ms)
            if table in tables:
                continue
            for name, fld in ms.fields.items():
                column = column_of(name, fld)
                if not column or fld.many_to_many:
                    continue
                if (table, column) in present:
                    drops.append((mkey, name))
                elif ("column", table, column) in set(
                    ctx.snapshot.expected.effects[self.key].creates
                ):
                    ops.RemoveField(mkey[1], name).state_forwards(mkey[0], live)
        qn = connection.ops.quote_name
        with connection.schema_editor(
            collect_sql=collect, atomic=connection.features.can_rollback_ddl
        ) as editor:
            for (mapp, model_name), name in drops:
                after = live.clone()
                remove = ops.RemoveField(model_name, name)
                remove.state_forwards(mapp, after)
                remove.database_forwards(mapp, editor, live, after)
                live = after
            for table in sorted(tables):
                editor.execute(editor.sql_delete_table % {"table": qn(table)})
            return list(editor.collected_sql) if collect else []


def data_in(connection: BaseDatabaseWrapper, objs: list[Obj]) -> dict[str, int]:
    """How many rows / non-null values each present object holds (repairs only)."""
    qn = connection.ops.quote_name
    held: dict[str, int] = {}
    with connection.cursor() as cursor:
        for obj in objs:
            if obj[0] == "table":
                cursor.execute(f"SELECT COUNT(*) FROM {qn(obj[1])}")
            elif obj[0] == "column":
                cursor.execute(f"SELECT COUNT(*) FROM {qn(obj[1])} WHERE {qn(obj[2])} IS NOT NULL")
            else:
                continue
            count = int(cursor.fetchone()[0])
            if count:
                held[describe(obj)] = count
    return held


@dataclass
class CreateMissing(SchemaStep):
    """Re-create missing tables, columns and named constraints from the applied state."""

    objects: list[Obj] = field(default_factory=list)

    def _run(self, ctx: Context, collect: bool) -> list[str]:
        connection = ctx.connection
        with connection.schema_editor(
            collect_sql=collect, atomic=connection.features.can_rollback_ddl
        ) as editor:
            add_missing(editor, ctx.applied_state(), self.objects, connection)
            return list(editor.collected_sql) if collect else []


@dataclass
class Plan:
    database: str
    vendor: str
    steps: list[Step] = field(default_factory=list)
    skipped: list[tuple[Finding, str]] = field(default_factory=list)
    # Findings the steps settle (some by a step another finding asked for too).
    covered: list[Finding] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat())

    @property
    def writes_rows(self) -> bool:
        return any(s.writes_rows for s in self.steps)


@dataclass
class Progress:
    """Per operation of an unrecorded migration, what the live schema shows."""

    done: list[int] = field(default_factory=list)
    todo: list[int] = field(default_factory=list)
    # Half-done operations whose tables exist and lack only columns/constraints.
    complete: dict[int, list[Obj]] = field(default_factory=dict)
    # Half-done operations that cannot be finished safely (a removal half done...).
    unsafe: list[int] = field(default_factory=list)
    # RunSQL/RunPython after the last operation known to have run.
    unknown: list[int] = field(default_factory=list)

    @property
    def run(self) -> list[int]:
        return sorted(set(self.todo) | set(self.unknown))


def _op_progress(snapshot: Snapshot, key: Key) -> Progress:
    effect = snapshot.expected.effects[key]
    schema = snapshot.schema
    p = Progress()
    for op in effect.operations:
        missing = [o for o in op.creates if not live_has(schema, o)]
        leftover = [o for o in op.removes if schema.has_table(o[1]) and live_has(schema, o)]
        checked = len(op.creates) + len([o for o in op.removes if schema.has_table(o[1])])
        if not checked:
            continue
        if not missing and not leftover:
            p.done.append(op.index)
        elif len(missing) + len(leftover) == checked:
            p.todo.append(op.index)
        elif not leftover and all(o[0] != "table" for o in missing):
            p.complete[op.index] = missing
            p.done.append(op.index)
        else:
            p.unsafe.append(op.index)
    last_done = max(p.done, default=-1)
    p.unknown = [op.index for op in effect.operations if op.opaque and op.index > last_done]
    return p


def build_plan(
    report: Report, only: set[str] | None = None, allow_data_loss: bool = False
) -> Plan:
    """Steps for every repairable finding of `report` (restricted to `only` kinds if given)."""
    snapshot = report.snapshot
    assert snapshot is not None
    plan = Plan(report.database, report.vendor)
    gs = snapshot.graph
    interlock = ""
    if gs.load_errors:
        e = gs.load_errors[0]
        interlock = f"the migration module {e.module} does not load ({e.error})"
    elif gs.missing_dependencies or gs.cycles:
        interlock = "the migration graph could not be built completely"
    elif gs.disabled_apps:
        interlock = "MIGRATION_MODULES disables migrations for " + ", ".join(
            sorted(gs.disabled_apps)
        )
    recorded_parent: set[Key] = set()
    ambiguous = {p.app: p for p in report.positions if p.ambiguous}
    for finding in report.findings:
        if only is not None and finding.kind not in only:
            continue
        if finding.kind not in REPAIRABLE:
            continue
        if finding.app in ambiguous:
            plan.skipped.append(
                (
                    finding,
                    f"{ambiguous[finding.app].describe()}: nothing is repaired automatically",
                )
            )
            continue
        if finding.kind == "squash-ready" and (only is None or "squash-ready" not in only):
            plan.skipped.append((finding, "source files change only with --only squash-ready"))
            continue
        steps, why = _steps_for(finding, snapshot, recorded_parent, allow_data_loss)
        if why:
            plan.skipped.append((finding, why))
            continue
        if interlock and any(s.writes_rows for s in steps):
            plan.skipped.append(
                (finding, f"refused: {interlock}; a half-loaded project must not change rows")
            )
            continue
        steps = _without_repeats(steps, plan.steps)
        for step in steps:
            step.check_id, step.evidence = finding.id, finding.evidence
        for step in steps:
            if not step.proven and not (only and finding.kind in only):
                plan.skipped.append(
                    (
                        finding,
                        f"not proven by evidence ({step.unproven_why}); ask for it "
                        f"with --only {finding.kind}",
                    )
                )
                break
        else:
            plan.steps.extend(steps)
            plan.covered.append(finding)
    return plan


def _roll_back(
    finding: Finding, snapshot: Snapshot, key: Key, why: str, allow_data_loss: bool
) -> tuple[list[Step], str]:
    app, name = key
    effect = snapshot.expected.effects[key]
    present = [
        o for o in effect.creates if live_has(snapshot.schema, o) and o[0] in ("table", "column")
    ]
    present = collapse(present)
    dropped = {o[1] for o in present if o[0] == "table"}
    dropped_columns = {(o[1], o[2]) for o in present if o[0] == "column"}
    kept = [
        o
        for o in effect.creates
        if o[0] == "unique"
        and live_has(snapshot.schema, o)
        and o[1] not in dropped
        and not any((o[1], c) in dropped_columns for c in o[2:])
    ]
    if kept:
        return [], (
            f"{why}; its present {', '.join(describe(o) for o in kept)} would stay behind a "
            "roll-back: do it by hand"
        )
    held = data_in(snapshot.connection, present)
    if held and not allow_data_loss:
        data = ", ".join(f"{k} ({v})" for k, v in held.items())
        return [], (
            f"{why}; rolling the present part back would drop data ({data}): do it by hand, "
            "or pass --allow-data-loss"
        )
    return [
        RollBack(
            finding.kind,
            app,
            name,
            f"Roll back the present part of {app}.{name} "
            f"({', '.join(describe(o) for o in present)}); `migrate` then applies it whole",
            f"{why}; " + ("it holds no data" if not held else "--allow-data-loss was given"),
            f"{MANAGE} migrate {quote(app)} {quote(name)}  # after the roll-back",
            key=key,
            objects=present,
        )
    ], ""


# One planner per repairable kind: (finding, snapshot, plan-wide memory) -> (steps, why not).
Planner = Callable[["PlanInput"], tuple[list[Step], str]]
PLANNERS: dict[str, Planner] = {}


@dataclass
class PlanInput:
    finding: Finding
    snapshot: Snapshot
    # Dependencies already recorded by this plan (one row for all their dependents).
    recorded_parent: set[Key]
    allow_data_loss: bool = False


def planner(*kinds: str) -> Callable[[Planner], Planner]:
    def register(function: Planner) -> Planner:
        for kind in kinds:
            PLANNERS[kind] = function
        return function

    return register


def _steps_for(
    finding: Finding,
    snapshot: Snapshot,
    recorded_parent: set[Key],
    allow_data_loss: bool = False,
) -> tuple[list[Step], str]:
    make = PLANNERS.get(finding.kind)
    if make is None:
        return [], "no automatic repair"
    return make(PlanInput(finding, snapshot, recorded_parent, allow_data_loss))


@planner("stale-record")
def _plan_stale_record(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    finding, app, name = p.finding, p.finding.app, p.finding.migration
    ev = p.finding.evidence
    assert app is not None and name is not None
    # By id: on MySQL a name comparison ignores case and trailing spaces.
    return [
        DeleteRowIds(
            kind,
            app,
            name,
            f"Delete the row of {app}.{name}",
            "no migration file has that name and no squash replaces it",
            finding.fix.commands[0] if finding.fix.commands else "",
            ids=list(ev["ids"]),
        )
    ], ""


@planner("renamed-migration")
def _plan_renamed_migration(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    app, name = p.finding.app, p.finding.migration
    ev = p.finding.evidence
    assert app is not None and name is not None
    return [
        RenameRow(
            kind,
            app,
            name,
            f"Rename the row of {app}.{ev['old_name']} to {app}.{name}",
            f"{app}.{ev['old_name']} has no file; {app}.{name} is not recorded and its "
            "whole effect is in the database",
            "no Django command renames a row",
            row_id=int(ev["row_id"]),
            old_name=str(ev["old_name"]),
        )
    ], ""


@planner("duplicate-record")
def _plan_duplicate_record(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    finding, app, name = p.finding, p.finding.app, p.finding.migration
    ev = p.finding.evidence
    assert app is not None and name is not None
    extra = [i for i in ev["ids"] if i != ev["keep"]]
    return [
        DeleteRowIds(
            kind,
            app,
            name,
            f"Delete the extra rows of {app}.{name} (ids {', '.join(map(str, extra))})",
            f"the row with id {ev['keep']} stays",
            finding.fix.commands[0],
            ids=extra,
        )
    ], ""


@planner("multiple-leaves")
def _plan_multiple_leaves(p: PlanInput) -> tuple[list[Step], str]:
    from .files import merge_step

    finding, app = p.finding, p.finding.app
    snapshot = p.snapshot
    assert app is not None
    return merge_step(finding, snapshot)


@planner("squash-ready")
def _plan_squash_ready(p: PlanInput) -> tuple[list[Step], str]:
    from .files import finalize_squash_step

    finding = p.finding
    snapshot = p.snapshot
    return finalize_squash_step(finding, snapshot)


@planner("missing-schema")
def _plan_missing_schema(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    app, name = p.finding.app, p.finding.migration
    ev = p.finding.evidence
    snapshot = p.snapshot
    assert app is not None and name is not None
    effect = snapshot.expected.effects[(app, name)]
    missing = [o for o in effect.creates if describe(o) in set(ev["missing"])]
    forbidden = ev.get("forbidden_by_data")
    if forbidden:
        return [], (
            f"the data forbids {forbidden[0]['constraint']} (duplicate values, listed in the "
            "finding): make them unique first"
        )
    return [
        CreateMissing(
            kind,
            app,
            name,
            f"Re-create {', '.join(describe(o) for o in collapse(missing))}",
            f"{app}.{name} is recorded and created them; they are absent",
            f"{MANAGE} sqlmigrate {quote(app)} {quote(name)}  # the statements for these objects",
            objects=collapse(missing),
        )
    ], ""


@planner("table-exists")
def _plan_table_exists(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    app, name = p.finding.app, p.finding.migration
    ev = p.finding.evidence
    snapshot = p.snapshot
    assert app is not None and name is not None
    effect = snapshot.expected.effects[(app, name)]
    flag = "--fake-initial" if effect.initial else "--fake"
    step = RecordRows(
        kind,
        app,
        name,
        f"Record {app}.{name} without running it",
        (
            f"it ran before {ev['ran_before']}, which depends on it and is in the database"
            if ev.get("ran_before") and not (ev["present"] or ev.get("already_removed"))
            else "everything it does is already done: "
            + ", ".join(
                [*ev["present"], *(f"{n} removed" for n in ev.get("already_removed", []))][:6]
            )
        ),
        f"{MANAGE} migrate {quote(app)} {quote(name)} {flag}",
        rows=[(app, name)],
    )
    if effect.opaque and not ev.get("ran_before"):
        step.proven = False
        step.unproven_why = f"recording skips {', '.join(effect.opaque)}"
    return [step], ""


@planner("partially-applied", "squash-partial")
def _plan_partially_applied(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    finding, app, name = p.finding, p.finding.app, p.finding.migration
    ev = p.finding.evidence
    snapshot = p.snapshot
    allow_data_loss = p.allow_data_loss
    assert app is not None and name is not None
    key = (app, name)
    progress = _op_progress(snapshot, key)
    forbidden = ev.get("forbidden_by_data")
    if forbidden:
        first = forbidden[0]
        why = (
            f"the data forbids {first['constraint']} ({first['duplicates'][0]['rows']} rows "
            "share a value): completing it would fail and recording it would claim a "
            "constraint the database does not enforce"
        )
        return _roll_back(finding, snapshot, key, why, allow_data_loss)
    if progress.unsafe:
        why = (
            f"operation(s) {', '.join(map(str, progress.unsafe))} of {app}.{name} are "
            "themselves half done in a way that cannot be completed safely"
        )
        return _roll_back(finding, snapshot, key, why, allow_data_loss)
    migration = snapshot.graph.graph.nodes[key]
    assert migration is not None
    run, unknown = progress.run, progress.unknown
    rows = [key]
    if kind == "squash-partial":
        rows += snapshot.graph.loader.resolved_replaces(key)
        rows = [r for r in rows if r not in snapshot.recorded]
    steps: list[Step] = []
    if run or progress.complete:
        described = "; ".join(
            [migration.operations[i].describe() for i in run]
            + [
                f"complete {migration.operations[i].describe()} "
                f"({', '.join(describe(o) for o in objs)})"
                for i, objs in sorted(progress.complete.items())
            ]
        )
        run_step = RunOperations(
            kind,
            app,
            name,
            f"Run the missing operation(s) of {app}.{name}: {described}",
            f"present: {', '.join(ev.get('present', [])) or 'nothing'}; "
            f"missing: {', '.join(ev.get('missing', [])) or 'nothing checkable'}",
            f"{MANAGE} sqlmigrate {quote(app)} {quote(name)}  # only these statements",
            key=key,
            indexes=run,
            complete=progress.complete,
        )
        if unknown:
            run_step.proven = False
            run_step.unproven_why = "whether its RunSQL/RunPython already ran cannot be checked"
        steps.append(run_step)
    steps.append(
        RecordRows(
            kind,
            app,
            name,
            f"Record {', '.join(f'{a}.{n}' for a, n in rows)}",
            "its schema is complete once the operations above ran",
            f"{MANAGE} migrate {quote(app)} {quote(name)} --fake",
            rows=rows,
        )
    )
    return steps, ""


@planner("inconsistent-history")
def _plan_inconsistent_history(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    app, name = p.finding.app, p.finding.migration
    ev = p.finding.evidence
    snapshot = p.snapshot
    recorded_parent = p.recorded_parent
    parent_label = str(ev["not_recorded"])
    papp, _, pname = parent_label.partition(".")
    parent = (papp, pname)
    if parent in recorded_parent:
        return [], ""  # one plan records a dependency once, for all its dependents
    recorded_parent.add(parent)
    state = ev["dependency_schema"]
    record = RecordRows(
        kind,
        papp,
        pname,
        f"Record {parent_label}",
        f"{app}.{name} depends on it and is recorded",
        "INSERT the row (Django's migrate refuses to run while the history is inconsistent)",
        rows=[parent],
    )
    if state == "present":
        record.reason = f"its schema is present, and {app}.{name} depends on it"
        return [record], ""
    graph = snapshot.graph.graph
    unapplied_parents = [
        p.key
        for p in graph.node_map[parent].parents
        if p.key not in snapshot.graph.loader.applied_migrations
    ]
    if unapplied_parents:
        return [], (
            f"{parent_label} itself depends on unapplied "
            f"{', '.join(f'{a}.{n}' for a, n in unapplied_parents)}: migrate those first"
        )
    complete: dict[int, list[Obj]] = {}
    if state == "partial":
        progress = _op_progress(snapshot, parent)
        if progress.unsafe:
            return [], f"{parent_label} is half applied inside an operation"
        run, unknown, complete = progress.run, progress.unknown, progress.complete
    else:
        migration = graph.nodes[parent]
        assert migration is not None
        run = list(range(len(migration.operations)))
        unknown = [op.index for op in snapshot.expected.effects[parent].operations if op.opaque]
    apply = RunOperations(
        kind,
        papp,
        pname,
        f"Apply {parent_label} for real (un-record {app}.{name}, apply, re-record: its "
        "row stays as it is)",
        f"{parent_label}'s schema is {state}",
        f"{MANAGE} migrate {quote(papp)} {quote(pname)}",
        key=parent,
        indexes=run,
        complete=complete,
    )
    if unknown:
        apply.proven = False
        apply.unproven_why = "it runs RunSQL/RunPython whose effect cannot be checked"
    return [apply, record], ""


def _without_repeats(steps: list[Step], earlier: list[Step]) -> list[Step]:
    """A row is recorded once per plan, whichever findings ask for it (table-exists of a
    migration and the inconsistent-history of its dependents, say)."""
    done = {row for s in earlier if isinstance(s, RecordRows) for row in s.rows}
    ran = {
        (s.key, i)
        for s in earlier
        if isinstance(s, RunOperations)
        for i in [*s.indexes, *s.complete]
    }
    made = {
        o[1] for s in earlier if isinstance(s, CreateMissing) for o in s.objects if o[0] == "table"
    }
    kept: list[Step] = []
    for step in steps:
        if isinstance(step, RecordRows):
            step.rows = [r for r in step.rows if r not in done]
            if not step.rows:
                continue
            done.update(step.rows)
        if isinstance(step, CreateMissing):
            # A table re-created from the applied state already has its later columns.
            step.objects = [o for o in step.objects if o[0] == "table" or o[1] not in made]
            if not step.objects:
                continue
            made.update(o[1] for o in step.objects if o[0] == "table")
        if isinstance(step, RunOperations):
            # A half-applied migration with a recorded dependent is asked for twice.
            step.indexes = [i for i in step.indexes if (step.key, i) not in ran]
            step.complete = {i: o for i, o in step.complete.items() if (step.key, i) not in ran}
            if not step.indexes and not step.complete:
                continue
            ran.update((step.key, i) for i in [*step.indexes, *step.complete])
        kept.append(step)
    return kept


# Planners in modules of their own register on import (they import this module's names).
from . import usermodel as _usermodel  # noqa: E402, F401

# The kinds --fix can repair, in the order of their planners above.
REPAIRABLE = tuple(PLANNERS)
