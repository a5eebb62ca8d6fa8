"""Repair of `user-model-switched`: move the users to the new model where nothing is lost.

Only the states usermodel.detect() proves fit are repaired; a refused one keeps its recipe.

- Same table (`db_table = "auth_user"`): move the content type (and its permissions' codenames
  when the model's name changes), record the initial migration.
- New table absent: rename the user table and its many-to-many tables (PostgreSQL: their
  sequences too), rename user-id columns whose name follows the model's, add the new model's
  extra columns as AddField would, then move the content type and record the migration.

Referencing foreign keys follow a renamed table on every supported backend (PostgreSQL keys
refer to the table itself; SQLite 3.26+ rewrites REFERENCES clauses; InnoDB updates the
referencing keys on RENAME TABLE); the step checks it afterwards and fails, before anything
is recorded, if one did not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.text import camel_case_to_spaces

from ..expected import Obj, collapse, describe
from ..findings import MANAGE
from ..keys import Key
from ..recorder_sql import sql_literal
from ..usermodel import KIND
from .steps import (
    Context,
    PlanInput,
    RecordRows,
    SchemaStep,
    Step,
    add_missing,
    data_in,
)

ACTIONS = ("add", "change", "delete", "view")  # Django's default permissions
# (table, columns with the key first, key values): rows a backup keeps besides django_migrations.
RowSet = tuple[str, tuple[str, ...], list[int]]


def _sequences(connection: BaseDatabaseWrapper, table: str) -> list[str]:
    """PostgreSQL sequences owned by `table`'s columns (serial or identity)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        found = connection.introspection.get_sequences(cursor, table)
    return [str(s["name"]) for s in found if s.get("name")]


@dataclass
class RenameUserTables(SchemaStep):
    """Rename tables (and their sequences) and user-id columns for the new user model."""

    tables: list[tuple[str, str]] = field(default_factory=list)  # (old, new)
    columns: list[tuple[str, str, str]] = field(default_factory=list)  # (table, old, new)
    # Tables whose foreign keys point at the user table, by their names after the renames.
    referencing: list[str] = field(default_factory=list)

    def statements(self, connection: BaseDatabaseWrapper) -> list[str]:
        qn = connection.ops.quote_name
        editor = connection.schema_editor(collect_sql=True)  # templates only, never entered
        out = []
        for old, new in self.tables:
            out.append(editor.sql_rename_table % {"old_table": qn(old), "new_table": qn(new)})
            for sequence in _sequences(connection, old):
                if sequence.startswith(old + "_"):
                    renamed = new + sequence[len(old) :]
                    out.append(f"ALTER SEQUENCE {qn(sequence)} RENAME TO {qn(renamed)}")
        for table, old, new in self.columns:
            out.append(
                editor.sql_rename_column
                % {"table": qn(table), "old_column": qn(old), "new_column": qn(new), "type": ""}
            )
        return out

    def _run(self, ctx: Context, collect: bool) -> list[str]:
        connection = ctx.connection
        statements = self.statements(connection)
        if collect:
            return statements
        with connection.schema_editor(atomic=connection.features.can_rollback_ddl) as editor:
            for statement in statements:
                editor.execute(statement)
            self._check_references(connection)
        return statements

    def _check_references(self, connection: BaseDatabaseWrapper) -> None:
        """Every foreign key that pointed at a renamed table points at its new name."""
        old_names = {old.lower() for old, _ in self.tables}
        with connection.cursor() as cursor:
            for table in sorted(set(self.referencing)):
                for name, info in connection.introspection.get_constraints(cursor, table).items():
                    target = info.get("foreign_key")
                    if target and str(target[0]).lower() in old_names:
                        raise RuntimeError(
                            f"foreign key {name} of {table} still references {target[0]} "
                            "after the rename; nothing was recorded"
                        )


@dataclass
class DropEmptyTables(SchemaStep):
    """Drop the new model's empty tables that stand where the old ones are to be renamed to
    (an earlier `migrate` or `--fix` made them). Detection counted their rows and found no
    other table pointing at them; the guard counts again before anything runs."""

    tables: list[str] = field(default_factory=list)  # many-to-many tables first

    def drops(self, ctx: Context) -> list[Obj]:
        return [("table", name) for name in self.tables]

    def _run(self, ctx: Context, collect: bool) -> list[str]:
        connection = ctx.connection
        qn = connection.ops.quote_name
        # No CASCADE: a foreign key that appeared since the diagnosis makes the drop fail.
        statements = [f"DROP TABLE {qn(t)}" for t in self.tables]
        if collect:
            return statements
        with connection.schema_editor(atomic=connection.features.can_rollback_ddl) as editor:
            for table in self.tables:
                if data_in(connection, [("table", table)]):
                    raise RuntimeError(f"{table} holds rows now; nothing was dropped")
            for statement in statements:
                editor.execute(statement)
        return statements


@dataclass
class AddUserObjects(SchemaStep):
    """Add what the new model's initial migration creates and the old table lacks, exactly as
    that migration's state defines it (AddField's statements: defaults filled in)."""

    key: Key = ("", "")
    objects: list[Obj] = field(default_factory=list)

    def _run(self, ctx: Context, collect: bool) -> list[str]:
        connection = ctx.connection
        state = ctx.loader.project_state([self.key], at_end=True)
        with connection.schema_editor(
            collect_sql=collect, atomic=connection.features.can_rollback_ddl
        ) as editor:
            add_missing(editor, state, self.objects, connection)
        return list(editor.collected_sql) if collect else []  # deferred statements too


@dataclass
class MoveContentType(Step):
    """Give the old user model's content type to the new one: permissions, admin log entries
    and generic relations keep their content type id."""

    content_type_id: int = 0
    to: tuple[str, str] = ("", "")
    # (id, codename, name) the permissions get when the model's name changes.
    permissions: list[tuple[int, str, str]] = field(default_factory=list)
    # The new model's own content type and its permissions, which post_migrate made and
    # nothing refers to: deleted first, so the old one can take their place.
    unused_content_type: int | None = None
    unused_permissions: list[int] = field(default_factory=list)
    writes_rows = True
    action = "contenttype"

    def _tables(self) -> tuple[str, str]:
        from django.contrib.auth.models import Permission
        from django.contrib.contenttypes.models import ContentType

        return ContentType._meta.db_table, Permission._meta.db_table

    def sql(self, ctx: Context) -> list[str]:
        qn, v = ctx.connection.ops.quote_name, ctx.connection.vendor
        ct, perm = self._tables()
        out = []
        if self.unused_content_type is not None:
            if self.unused_permissions:
                ids = ", ".join(map(str, self.unused_permissions))
                out.append(f"DELETE FROM {qn(perm)} WHERE {qn('id')} IN ({ids});")
            out.append(f"DELETE FROM {qn(ct)} WHERE {qn('id')} = {self.unused_content_type};")
        out += [
            f"UPDATE {qn(ct)} SET {qn('app_label')} = {sql_literal(self.to[0], v)}, "
            f"{qn('model')} = {sql_literal(self.to[1], v)} WHERE {qn('id')} = "
            f"{self.content_type_id};"
        ]
        out += [
            f"UPDATE {qn(perm)} SET {qn('codename')} = {sql_literal(codename, v)}, "
            f"{qn('name')} = {sql_literal(name, v)} WHERE {qn('id')} = {pk};"
            for pk, codename, name in self.permissions
        ]
        return out

    def apply(self, ctx: Context) -> None:
        qn = ctx.connection.ops.quote_name
        ct, perm = self._tables()
        with ctx.connection.cursor() as cursor:
            if self.unused_content_type is not None:
                if self.unused_permissions:
                    marks = ", ".join(["%s"] * len(self.unused_permissions))
                    cursor.execute(
                        f"DELETE FROM {qn(perm)} WHERE {qn('id')} IN ({marks})",
                        self.unused_permissions,
                    )
                cursor.execute(
                    f"DELETE FROM {qn(ct)} WHERE {qn('id')} = %s", (self.unused_content_type,)
                )
            cursor.execute(
                f"UPDATE {qn(ct)} SET {qn('app_label')} = %s, {qn('model')} = %s "
                f"WHERE {qn('id')} = %s",
                (*self.to, self.content_type_id),
            )
            for pk, codename, name in self.permissions:
                cursor.execute(
                    f"UPDATE {qn(perm)} SET {qn('codename')} = %s, {qn('name')} = %s "
                    f"WHERE {qn('id')} = %s",
                    (codename, name, pk),
                )

    def backed_up(self, ctx: Context) -> list[RowSet]:
        ct, perm = self._tables()
        types = [self.content_type_id]
        if self.unused_content_type is not None:
            types.append(self.unused_content_type)
        sets: list[RowSet] = [(ct, ("id", "app_label", "model"), sorted(types))]
        ids = sorted([pk for pk, _, _ in self.permissions] + self.unused_permissions)
        if ids:  # a deleted row is inserted again by --restore, after its content type
            sets.append((perm, ("id", "content_type_id", "codename", "name"), ids))
        return sets


def _content_type(
    p: PlanInput, old: tuple[str, str], new: tuple[str, str], verbose: str
) -> tuple[list[Step], str]:
    """The step moving the content type, none when there is nothing to move, or why not."""
    if not (apps.is_installed("django.contrib.contenttypes")):
        return [], ""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    connection = p.snapshot.connection
    ct_table, perm_table = ContentType._meta.db_table, Permission._meta.db_table
    if not p.snapshot.schema.has_table(ct_table):
        return [], ""
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn('id')}, {qn('app_label')}, {qn('model')} FROM {qn(ct_table)} "
            f"WHERE {qn('app_label')} IN (%s, %s)",
            (old[0], new[0]),
        )
        found = {(a, m): int(i) for i, a, m in cursor.fetchall() if (a, m) in (old, new)}
    if old not in found:
        return [], ""  # post_migrate creates the new one
    unused: list[int] = []
    if new in found:
        unused_or_none = _unused(p, found[new], ct_table, perm_table)
        if unused_or_none is None:
            return [], (
                f"django_content_type has both {'.'.join(old)} (id {found[old]}) and "
                f"{'.'.join(new)} (id {found[new]}), and rows refer to the latter: decide "
                "which one permissions and admin log entries should keep, move them and "
                "delete the other by hand, then run the repair"
            )
        unused = unused_or_none
    permissions: list[tuple[int, str, str]] = []
    if old[1] != new[1] and apps.is_installed("django.contrib.auth"):
        codes = {f"{a}_{old[1]}": a for a in ACTIONS}
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {qn('id')}, {qn('codename')} FROM {qn(perm_table)} "
                f"WHERE {qn('content_type_id')} = %s",
                (found[old],),
            )
            for pk, codename in cursor.fetchall():
                if codename in codes:
                    action = codes[codename]
                    permissions.append((int(pk), f"{action}_{new[1]}", f"Can {action} {verbose}"))
    moved = ", ".join(p_[1] for p_ in permissions)
    return [
        MoveContentType(
            KIND,
            new[0],
            None,
            f"Move content type {'.'.join(old)} to {'.'.join(new)}"
            + (f" (permissions {moved})" if moved else ""),
            "permissions, group and user permissions and admin log entries refer to it by id",
            "no Django command moves a content type",
            content_type_id=found[old],
            to=new,
            permissions=permissions,
            unused_content_type=found.get(new),
            unused_permissions=unused,
        )
    ], ""


def _unused(p: PlanInput, ct_id: int, ct_table: str, perm_table: str) -> list[int] | None:
    """The permissions of content type `ct_id` if no row anywhere refers to it or to them
    (by every foreign key the schema has to either table), else None."""
    schema = p.snapshot.schema
    connection = p.snapshot.connection
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn('id')} FROM {qn(perm_table)} WHERE {qn('content_type_id')} = %s",
            (ct_id,),
        )
        perms = sorted(int(r[0]) for r in cursor.fetchall())
        checks: list[tuple[str, str, list[int]]] = []
        for table in schema.tables.values():
            for fk in table.foreign_keys:
                target = schema.key(fk.ref_table)
                if target == schema.key(ct_table) and schema.key(table.name) != target:
                    if schema.key(table.name) != schema.key(perm_table):
                        checks += [(table.name, c, [ct_id]) for c in fk.columns]
                elif target == schema.key(perm_table) and perms:
                    checks += [(table.name, c, perms) for c in fk.columns]
        for table_name, column, ids in checks:
            marks = ", ".join(["%s"] * len(ids))
            cursor.execute(
                f"SELECT COUNT(*) FROM {qn(table_name)} WHERE {qn(column)} IN ({marks})", ids
            )
            if int(cursor.fetchone()[0]):
                return None
    return perms


def _present_after(
    schema: Any, obj: Obj, tables: dict[str, str], columns: dict[tuple[str, str], str]
) -> bool:
    """Whether `obj` (named as after the renames) exists under its name before them."""
    before = tables.get(schema.key(obj[1]), obj[1])
    if obj[0] == "table":
        return bool(schema.has_table(before))
    named = [columns.get((schema.key(obj[1]), c), c) for c in obj[2:]]
    if obj[0] in ("column", "unique"):  # a unique constraint is known by its columns
        return bool(schema.has_object((obj[0], before, *named)))
    return bool(schema.has_object((obj[0], before, *obj[2:])))


def plan_user_model_switched(p: PlanInput) -> tuple[list[Step], str]:
    ev = p.finding.evidence
    if ev["repair"] == "refused":
        return [], (
            "refused, nothing changed: "
            + "; ".join(ev["misfits"][:3])
            + ("…" if len(ev["misfits"]) > 3 else "")
            + "; the finding's fix is the manual recipe"
        )
    snapshot = p.snapshot
    schema = snapshot.schema
    app, _, name = str(ev["initial_migration"]).partition(".")
    initial = (app, name)
    steps: list[Step] = []
    renames: list[tuple[str, str]] = []
    if ev["repair"] == "drop-empty":
        empty = list(ev["empty_new_tables"])
        steps.append(
            DropEmptyTables(
                KIND,
                app,
                name,
                f"Drop the empty {', '.join(empty[1:] + empty[:1])}",
                f"they hold no rows and nothing else points at them; the {ev['users']} user(s) "
                f"are in {ev['old_table']}, which takes their place",
                "DROP TABLE (nothing in them to keep)",
                tables=empty[1:] + empty[:1],  # the many-to-many tables point at the first
            )
        )
    if ev["repair"] in ("rename", "drop-empty"):
        renames.append((ev["old_table"], ev["new_table"]))
    columns: list[tuple[str, str, str]] = []
    for m in ev["m2m_tables"]:
        if schema.key(m["table"]) != schema.key(m["new_table"]):
            renames.append((m["table"], m["new_table"]))
        if m["column"] != m["new_column"]:
            columns.append((m["new_table"], m["column"], m["new_column"]))
    renamed = {schema.key(new): old for old, new in renames}
    if renames or columns:
        moved = {schema.key(old): new for old, new in renames}
        referencing = [
            moved.get(schema.key(ref.rsplit(".", 1)[0]), ref.rsplit(".", 1)[0])
            for ref in ev["references"]
        ]
        steps.append(
            RenameUserTables(
                KIND,
                app,
                name,
                "Rename "
                + ", ".join(f"{o} to {n}" for o, n in renames)
                + "".join(f"; column {t}.{o} to {n}" for t, o, n in columns),
                f"table {ev['old_table']} holds {ev['users']} user(s) and fits {ev['new_model']} "
                "column by column; foreign keys follow the renamed tables",
                "AlterModelTable's statements (no Django command moves a user model)",
                tables=renames,
                columns=columns,
                referencing=referencing,
            )
        )
    column_map = {(schema.key(t), new): old for t, old, new in columns}
    effect = snapshot.expected.effects[initial]
    missing = [o for o in effect.creates if not _present_after(schema, o, renamed, column_map)]
    if missing:
        shown = collapse(missing)
        steps.append(
            AddUserObjects(
                KIND,
                app,
                name,
                f"Add {', '.join(describe(o) for o in shown)}",
                f"{ev['initial_migration']} creates them; each added field has a default or "
                "allows NULL",
                f"{MANAGE} sqlmigrate {app} {name}  # only these statements",
                key=initial,
                objects=shown,
            )
        )
    old_app, _, old_model = str(ev["old_model"]).partition(".")
    new_app, _, new_model = str(ev["new_model"]).partition(".")
    op_options = _initial_options(snapshot, initial, new_model.lower())
    verbose = str(op_options.get("verbose_name") or camel_case_to_spaces(new_model))
    moves, why = _content_type(
        p, (old_app, old_model.lower()), (new_app, new_model.lower()), verbose
    )
    if why:
        return [], why
    steps += moves
    if ev.get("initial_recorded"):
        return steps, ""
    record = RecordRows(
        KIND,
        app,
        name,
        f"Record {ev['initial_migration']}",
        f"{ev['new_model']}'s table holds the users; {', '.join(ev['dependents'])} depend on it",
        "INSERT the row (migrate refuses to run while the history is inconsistent)",
        rows=[initial],
    )
    if ev.get("unverifiable_operations"):
        record.proven = False
        record.unproven_why = f"recording skips {', '.join(ev['unverifiable_operations'])}"
    steps.append(record)
    p.recorded_parent.add(initial)
    return steps, ""


def _initial_options(snapshot: Any, key: Key, model: str) -> dict[str, Any]:
    from django.db.migrations import operations as ops

    migration = snapshot.graph.graph.nodes[key]
    for op in migration.operations:
        if isinstance(op, ops.CreateModel) and op.name_lower == model:
            return dict(op.options)
    return {}
