"""Columns, unique constraints and indexes in a model's table that no migration accounts for.

A branch switch leaves them behind (the migration that added the column is on the other
branch, its row stale or pruned), as do hand-run `ALTER TABLE`s and restored dumps. Django
never mentions them, until an insert fails: a leftover `NOT NULL` column without a default
makes every insert through the ORM fail. A column that any migration of the plan creates or
removes (a pending `RemoveField` included) is accounted for; so is anything of a table no
model owns (that is `untracked-table`). A leftover plain index breaks nothing: it is
information.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from shlex import quote
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation
from django.db.models import UniqueConstraint

from .expected import Footprints, column_of
from .findings import MANAGE, Finding, Fix, Severity
from .snapshot import Snapshot
from .snapshot.schema import Index, Table


def not_null_error(vendor: str, table: str, column: str) -> str:
    """What the database says to an insert that leaves a NOT NULL column without a value."""
    if vendor == "postgresql":
        return (
            f'null value in column "{column}" of relation "{table}" violates not-null constraint'
        )
    if vendor == "mysql":  # strict mode, MariaDB's and MySQL's default
        return f"(1364, \"Field '{column}' doesn't have a default value\")"
    return f"NOT NULL constraint failed: {table}.{column}"


def untracked_columns(snapshot: Snapshot) -> list[Finding]:
    schema, expected = snapshot.schema, snapshot.expected
    key = schema.key
    mentioned: set[tuple[str, str]] = set()
    opaque: set[str] = set()  # apps with RunSQL/RunPython that may add columns of their own
    for migration, effect in expected.effects.items():
        if effect.opaque:
            opaque.add(migration[0])
        for obj in (*effect.creates, *effect.removes):
            if obj[0] == "column":
                mentioned.add((key(obj[1]), key(obj[2])))
    qn = snapshot.connection.ops.quote_name
    findings = []
    for table_name, (app, model) in sorted(expected.tables.items()):
        table = schema.table(table_name)
        if table is None or table.kind != "table":
            continue
        for column in table.columns.values():
            if (key(table_name), key(column.name)) in mentioned:
                continue
            breaks = not column.null and column.default is False
            where = f"{table_name}.{column.name}"
            message = (
                f"Column {where} is in the table of {app}.{model}, but no migration creates it"
                " (a branch switch, a hand-run ALTER TABLE or a restored dump left it)."
            )
            if breaks:
                message += (
                    " It is NOT NULL without a default, and the model does not write it: "
                    f"every insert into {app}.{model} fails with: "
                    f"{not_null_error(snapshot.vendor, table_name, column.name)}."
                )
            elif app in opaque:
                message += f" A RunSQL of {app} may have added it on purpose."
            drop = f"ALTER TABLE {qn(table_name)} DROP COLUMN {qn(column.name)};"
            findings.append(
                Finding(
                    "untracked-column",
                    app,
                    None,
                    message,
                    {
                        "table": table_name,
                        "column": column.name,
                        "type": column.type,
                        "null": column.null,
                        "default": column.default,
                        "model": f"{app}.{model}",
                    },
                    Fix(
                        (
                            "Drop it if nothing needs it (its values are lost: back them up "
                            "first), or give it a default; or add the field and a migration."
                            if breaks
                            else "Nothing to do if it is expected; otherwise drop it, or add "
                            "the field and a migration."
                        ),
                        (drop, f"{MANAGE} makemigrations {quote(app)}") if breaks else (),
                    ),
                    level=Severity.WARNING if breaks else Severity.INFO,
                )
            )
    return findings


def untracked_uniques(snapshot: Snapshot) -> list[Finding]:
    """Unique indexes and constraints no migration makes: a branch's `unique=True` left behind
    by the switch rejects inserts the models allow (IntegrityError on the first duplicate).

    Accounted for: a unique constraint any migration of the plan creates or removes, by its
    columns (Django names `unique=True`/`unique_together` by a hash) or by name (a named
    `UniqueConstraint`), and the primary key. Expression indexes are never judged.
    """
    schema, expected = snapshot.schema, snapshot.expected
    key = schema.key
    by_columns: set[tuple[str, tuple[str, ...]]] = set()
    by_name: set[tuple[str, str]] = set()
    opaque: set[str] = set()
    for migration, effect in expected.effects.items():
        if effect.opaque:
            opaque.add(migration[0])
        for obj in (*effect.creates, *effect.removes):
            if obj[0] == "unique":
                by_columns.add(
                    (key(obj[1]).lower(), tuple(sorted(key(c).lower() for c in obj[2:])))
                )
            elif obj[0] == "constraint":
                by_name.add((key(obj[1]).lower(), key(obj[2]).lower()))
    by_columns |= _named_unique_columns(snapshot)
    by_columns |= {
        (key(o[1]).lower(), tuple(sorted(key(c).lower() for c in o[2:])))
        for o in expected.unlisted
        if o[0] == "unique"
    }
    findings = []
    for table_name, (app, model) in sorted(expected.tables.items()):
        table = schema.table(table_name)
        if table is None or table.kind != "table":
            continue
        folded = key(table_name).lower()
        uniques = [
            (index, tuple(sorted(key(c).lower() for c in index.columns)))
            for index in sorted(table.indexes.values(), key=lambda i: i.name)
            if index.unique and not index.primary and index.columns and "" not in index.columns
        ]
        # A named constraint's columns are accounted for under any other name too (SQLite
        # lists `CONSTRAINT x UNIQUE (...)` as x and as its sqlite_autoindex_*).
        named = {cols for index, cols in uniques if (folded, key(index.name).lower()) in by_name}
        for index, columns in uniques:
            if (folded, columns) in by_columns or columns in named:
                continue
            ran_sql = app in opaque
            shown_columns = ", ".join(index.columns)
            message = (
                f"Unique index {index.name} on {table_name} ({shown_columns}) is in the table "
                f"of {app}.{model}, but no migration creates it (a branch switch, a hand-run "
                "CREATE UNIQUE INDEX or a restored dump left it)."
            )
            message += (
                f" A RunSQL of {app} may have added it on purpose."
                if ran_sql
                else " The model allows duplicates it rejects: the first such insert or update "
                "through the ORM fails with IntegrityError."
            )
            drop = _drop_unique_sql(snapshot, table_name, index.name)
            commands = (*([drop] if drop else []), f"{MANAGE} makemigrations {quote(app)}")
            findings.append(
                Finding(
                    "untracked-constraint",
                    app,
                    None,
                    message,
                    {
                        "table": table_name,
                        "constraint": index.name,
                        "columns": list(index.columns),
                        "model": f"{app}.{model}",
                    },
                    Fix(
                        "Drop it if nothing needs it (it holds no data); or add the constraint "
                        "to the model and a migration."
                        + (
                            ""
                            if drop
                            else " On SQLite it is part of the table's definition: only a "
                            "rebuild of the table removes it."
                        ),
                        commands,
                    ),
                    level=Severity.INFO if ran_sql else Severity.WARNING,
                )
            )
    return findings


def _named_unique_columns(snapshot: Snapshot) -> set[tuple[str, tuple[str, ...]]]:
    """The columns of the named UniqueConstraints of the final state: a database migrated by
    an older release holds the same constraint under another name (django-taggit turned an
    AlterUniqueTogether into a named UniqueConstraint; PostgreSQL keeps Django's truncated
    generated name), and by its columns it is the same constraint."""
    key = snapshot.schema.key
    fp = Footprints(snapshot.connection)
    out: set[tuple[str, tuple[str, ...]]] = set()
    for (app, name), ms in snapshot.expected.state.models.items():
        table = key(fp.table_name(app, name, ms)).lower()
        for constraint in ms.options.get("constraints", ()):
            if not isinstance(constraint, UniqueConstraint) or constraint.condition is not None:
                continue
            if constraint.expressions or not constraint.fields:
                continue
            fields = [ms.fields.get(f) for f in constraint.fields]
            columns = [
                column_of(f, fld) for f, fld in zip(constraint.fields, fields, strict=True) if fld
            ]
            if len(columns) == len(constraint.fields) and all(columns):
                out.add((table, tuple(sorted(key(c).lower() for c in columns if c))))
    return out


def _generated_single(snapshot: Snapshot, table: str, index: Index, model: Any) -> bool:
    """MySQL: a ForeignKey column's one-column index under the name Django generates for
    it. Whether Django made one there depended on the table's storage engine and on
    db_constraint when that migration ran (a ForeignKey(db_constraint=False) gets one,
    wagtail's log entries): not something the plan can tell afterwards."""
    if len(index.columns) != 1:
        return False
    ms = snapshot.expected.state.models.get(model)
    fields = ms.fields.items() if ms is not None else ()
    column = index.columns[0].lower()
    if not any(f.is_relation and (column_of(n, f) or "").lower() == column for n, f in fields):
        return False
    editor: Any = snapshot.connection.schema_editor(collect_sql=True)  # never entered
    return bool(index.name == editor._create_index_name(table, list(index.columns), suffix=""))


def untracked_indexes(snapshot: Snapshot) -> list[Finding]:
    """Plain (non-unique) indexes no migration makes: a branch's `db_index` left behind by
    the switch, a hand-run CREATE INDEX. Information only: an extra index never rejects a
    row; it takes space and slows every write.

    Accounted for: an index any migration of the plan creates or removes, by its columns
    in order where it is plain (`db_index`, a ForeignKey's, `index_together`, a named
    index's: a `_like` or partial index on them is another index) or by its
    name (a named index or constraint of the models anywhere along the plan, whether the
    doctor verifies it or not: an exclusion constraint's index, say); one SQLite's
    rebuilds may have kept; one a RunSQL of the plan names; and those the backend makes of
    its own accord: PostgreSQL's `_like` twin of a varchar/text index, InnoDB's index of a
    foreign key, GeoDjango's spatial index of a geometry column. Never judged: the primary
    key and unique indexes (untracked_uniques; SQLite's autoindexes are unique),
    expression indexes, INVALID ones (schema-drift) and tables no model owns.
    """
    schema, expected = snapshot.schema, snapshot.expected
    key = schema.key
    vendor = snapshot.vendor

    def fold(table: str, columns: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        return key(table).lower(), tuple(key(c).lower() for c in columns)

    by_columns = {fold(o[1], o[2:]) for o in expected.unlisted if o[0] == "index"}
    by_name = {(key(t).lower(), key(n).lower()) for t, n in expected.names}
    by_name |= {
        (key(o[1]).lower(), key(o[2]).lower()) for o in expected.unlisted if o[0] == "constraint"
    }
    opaque: set[str] = set()
    for migration, effect in expected.effects.items():
        if effect.opaque:
            opaque.add(migration[0])
        for obj in (*effect.creates, *effect.removes):
            if obj[0] == "index":
                by_columns.add(fold(obj[1], obj[2:]))
            elif obj[0] == "constraint" and len(obj) > 3:
                # A named index under another name on its columns: a package rewrote its
                # AlterIndexTogether into AddIndex (django-taggit), the database has
                # Django's generated name until a RenameIndex(old_fields=...) runs.
                by_columns.add(fold(obj[1], obj[3:]))
    run_sql = _run_sql_text(snapshot, opaque)
    findings = []
    for table_name, (app, model) in sorted(expected.tables.items()):
        table = schema.table(table_name)
        if table is None or table.kind != "table":
            continue
        folded = key(table_name).lower()
        foreign_keys = {fold(table_name, fk.columns)[1] for fk in table.foreign_keys}
        indexes = sorted(table.indexes.values(), key=lambda i: i.name)
        for index in indexes:
            columns = fold(table_name, index.columns)[1]
            if (
                index.unique
                or index.primary
                or not index.valid
                or not columns
                or "" in columns
                or (index.plain and (folded, columns) in by_columns)
                or (folded, key(index.name).lower()) in by_name
                or key(index.name).lower() in run_sql
                or (vendor == "mysql" and columns in foreign_keys)
                or (
                    vendor == "mysql"
                    and _generated_single(snapshot, table_name, index, (app, model.lower()))
                )
                or (vendor == "postgresql" and _like_twin(index, indexes))
                or _spatial(index, table)
            ):
                continue
            ran_code = app in opaque
            shown_columns = ", ".join(index.columns)
            message = (
                f"Index {index.name} on {table_name} ({shown_columns}) is in the table of "
                f"{app}.{model}, but no migration creates it (a branch switch, a hand-run "
                "CREATE INDEX or a restored dump left it). Nothing fails because of it: it "
                "takes space and slows every write to the table."
            )
            if ran_code:
                message += f" A RunSQL or RunPython of {app} may have added it on purpose."
            twins = [i for i in indexes if vendor == "postgresql" and _like_twin(i, [index])]
            drops = [
                drop_index_sql(snapshot.connection, table_name, i.name) for i in (index, *twins)
            ]
            findings.append(
                Finding(
                    "untracked-constraint",
                    app,
                    None,
                    message,
                    {
                        "table": table_name,
                        "index": index.name,
                        "columns": list(index.columns),
                        "unique": False,
                        "model": f"{app}.{model}",
                    },
                    Fix(
                        "Nothing to do if it is expected (a DBA's index for a slow query, "
                        "say). Otherwise drop it (the statement is only a suggestion; an index "
                        "holds no data), or add it to the model and a migration.",
                        (*drops, f"{MANAGE} makemigrations {quote(app)}"),
                    ),
                    level=Severity.INFO,
                )
            )
    return findings


def _like_twin(index: Index, indexes: list[Index]) -> bool:
    """PostgreSQL's `_like` index (varchar_pattern_ops), which Django adds beside the index,
    unique constraint or primary key of a varchar/text column: never in the expected schema,
    it goes with its twin (one without a twin is left over)."""
    return (
        not index.plain
        and index.name.endswith("_like")
        and len(index.columns) == 1
        and any(o is not index and o.columns == index.columns for o in indexes)
    )


_SPATIAL_TYPES = frozenset(
    {"geometry", "geography", "point", "linestring", "polygon", "multipoint",
     "multilinestring", "multipolygon", "geometrycollection"}
)  # fmt: skip


def _spatial(index: Index, table: Table) -> bool:
    """The spatial index GeoDjango gives a geometry column (`spatial_index=True`): made by
    the backend's schema editor beside the column, never in the expected schema."""
    if index.plain or len(index.columns) != 1:
        return False
    column = table.columns.get(index.columns[0])
    return column is not None and column.type.split("(")[0].strip() in _SPATIAL_TYPES


def _run_sql_text(snapshot: Snapshot, apps: set[str]) -> str:
    """The SQL of every RunSQL of `apps` along the plan, lower-cased: an index it creates
    by name is accounted for."""
    parts: list[str] = []

    def collect(operations: Iterable[Operation]) -> None:
        for op in operations:
            if isinstance(op, ops.SeparateDatabaseAndState):
                collect(op.database_operations)
            elif isinstance(op, ops.RunSQL):
                statements = [op.sql] if isinstance(op.sql, str) else list(op.sql)
                parts.extend(
                    str(s[0] if isinstance(s, (list, tuple)) and s else s) for s in statements
                )

    nodes = snapshot.graph.graph.nodes
    for migration_key in snapshot.expected.plan:
        migration = nodes.get(migration_key) if migration_key[0] in apps else None
        if migration is not None:
            collect(migration.operations)
    return "\n".join(parts).lower()


def quoted_name(connection: BaseDatabaseWrapper, name: str) -> str:
    """An identifier from the database, quoted with its own quote character doubled
    (Django's quote_name leaves an embedded quote as it is)."""
    quote_char = "`" if connection.vendor == "mysql" else '"'
    return quote_char + name.replace(quote_char, quote_char * 2) + quote_char


def drop_index_sql(connection: BaseDatabaseWrapper, table: str, name: str) -> str:
    """The backend's own DROP INDEX statement (its schema editor's sql_delete_index) for a
    plain index: `DROP INDEX IF EXISTS "x"` (PostgreSQL), `DROP INDEX `x` ON `t`` (MySQL)."""
    template = connection.SchemaEditorClass.sql_delete_index
    qn = partial(quoted_name, connection)
    return template % {"table": qn(table), "name": qn(name)} + ";"


def _drop_unique_sql(snapshot: Snapshot, table: str, name: str) -> str:
    """PostgreSQL backs a UNIQUE constraint with an index of its name, which only the
    constraint's own DROP removes; elsewhere the index is the constraint."""
    qn = snapshot.connection.ops.quote_name
    vendor = snapshot.vendor
    if vendor == "postgresql":
        return (
            f"ALTER TABLE {qn(table)} DROP CONSTRAINT IF EXISTS {qn(name)}; "
            f"DROP INDEX IF EXISTS {qn(name)};"
        )
    if vendor == "mysql":
        return f"ALTER TABLE {qn(table)} DROP INDEX {qn(name)};"
    if name.startswith("sqlite_autoindex_"):
        return ""  # part of the table's definition: only a rebuild removes it
    return f"DROP INDEX {qn(name)};"
