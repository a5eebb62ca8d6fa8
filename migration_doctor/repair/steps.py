"""The steps of a repair plan and what they run against: each a printable, executable change.

The planners (plan.py and the modules it draws on) build these; the run executes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import operations as ops
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState
from django.utils import timezone

from ..expected import Footprints, ModelKey, Obj, column_of, describe
from ..findings import Finding
from ..keys import Key
from ..recorder_sql import insert_row_sql, sql_literal
from ..snapshot import Snapshot
from ..snapshot.rows import recorder_table


class Context:
    """What steps need to compute SQL and run: the connection and rendered states."""

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot
        self.connection: BaseDatabaseWrapper = snapshot.connection
        self.loader = snapshot.graph.loader
        self._states: dict[tuple[Key, ...], ProjectState] = {}
        self._sql: dict[int, list[str]] = {}

    def sql_of(self, step: Step) -> list[str]:
        """The step's SQL as the plan was made: computed once, so the plan printed, the
        ledger and a tenant schema's report (rendered after the connection left that
        schema) all show the same statements."""
        if id(step) not in self._sql:
            self._sql[id(step)] = step.sql(self)
        return self._sql[id(step)]

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

    def rows_recorded(self) -> list[Key]:
        """The migrations this step makes applied (rows it inserts or renames to)."""
        return []

    def as_dict(self, ctx: Context) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "app": self.app,
            "migration": self.migration,
            "title": self.title,
            "reason": self.reason,
            "proven": self.proven,
            "sql": ctx.sql_of(self),
            "django": self.equivalent,
        }


# Rows per INSERT when many migrations are recorded at once.
ROW_BATCH = 500


@dataclass
class RecordRows(Step):
    rows: list[Key] = field(default_factory=list)
    writes_rows = True
    action = "record"

    def rows_touched(self) -> list[Key]:
        return list(self.rows)

    def rows_recorded(self) -> list[Key]:
        return list(self.rows)

    def sql(self, ctx: Context) -> list[str]:
        now = timezone.now().isoformat(sep=" ", timespec="seconds")
        return [insert_row_sql(ctx.connection, a, n, now) for a, n in self.rows]

    def apply(self, ctx: Context) -> None:
        MigrationRecorder(ctx.connection).ensure_schema()
        RecordRows.apply_together(ctx, [self])

    @staticmethod
    def apply_together(ctx: Context, steps: list[RecordRows]) -> None:
        """Several RecordRows steps as one: the rows already there read once, the missing
        ones inserted in batches (a wiped history is thousands of rows; one INSERT each cost
        more than its diagnosis). Compared in Python: MySQL's collation would call
        `0001_INITIAL` a match."""
        migration = MigrationRecorder.Migration
        manager = migration.objects.using(ctx.connection.alias)
        wanted = list(dict.fromkeys(key for step in steps for key in step.rows))
        there = set(manager.filter(app__in={app for app, _ in wanted}).values_list("app", "name"))
        now = timezone.now()
        manager.bulk_create(
            [migration(app=a, name=n, applied=now) for a, n in wanted if (a, n) not in there],
            batch_size=ROW_BATCH,
        )


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

    def rows_recorded(self) -> list[Key]:
        return [(self.app or "", self.migration or "")]

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
    # A proxy shares its concrete model's table but defines none of it: never the owner.
    by_table = {
        m._meta.db_table: m
        for m in rendered.get_models(include_auto_created=True)
        if not m._meta.proxy
    }
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
                if collect and i in self.indexes and not op.reduces_to_sql:
                    # As sqlmigrate does: Python (RunPython) is described, never run, when
                    # only the SQL is wanted (a dry run, the plan printed, the guard).
                    assert shared_editor is not None
                    shared_editor.collected_sql.append(
                        f"-- {op.describe()}: runs Python, not shown as SQL"
                    )
                elif i in self.indexes or i in self.complete:
                    with _editor(connection, shared_editor) as editor:
                        if i in self.indexes:
                            op.database_forwards(app, editor, state, new_state)
                        else:
                            add_missing(editor, new_state, self.complete[i], connection)
                state = new_state
        if collect and shared_editor is not None:
            # After the editor closed: its deferred statements are collected then.
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
        # Read after the editor closed: its deferred statements (a new table's foreign keys
        # and indexes) are collected then, and they run too.
        return list(editor.collected_sql) if collect else []


@dataclass
class PlanInput:
    finding: Finding
    snapshot: Snapshot
    # Dependencies already recorded by this plan (one row for all their dependents).
    recorded_parent: set[Key]
    allow_data_loss: bool = False


# One planner per repairable kind: (finding, snapshot, plan-wide memory) -> (steps, why not).
Planner = Callable[[PlanInput], tuple[list[Step], str]]
