"""Columns and unique constraints in a model's table that no migration accounts for.

A branch switch leaves them behind (the migration that added the column is on the other
branch, its row stale or pruned), as do hand-run `ALTER TABLE`s and restored dumps. Django
never mentions them, until an insert fails: a leftover `NOT NULL` column without a default
makes every insert through the ORM fail. A column that any migration of the plan creates or
removes (a pending `RemoveField` included) is accounted for; so is anything of a table no
model owns (that is `untracked-table`).
"""

from __future__ import annotations

from shlex import quote

from django.db.models import UniqueConstraint

from .expected import Footprints, column_of
from .findings import MANAGE, Finding, Fix, Severity
from .snapshot import Snapshot


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
