"""Schema drift: everything is recorded and present, but not as the models say.

Only apps whose migrations are all applied and whose models match their migrations are
compared (elsewhere a difference is expected, and other findings already name it). Types
are compared after a per-backend normalisation; a type the doctor does not know is skipped,
never guessed: a false positive here would teach people to ignore the doctor.
"""

from __future__ import annotations

import re
from functools import lru_cache
from shlex import quote
from typing import Any

from django.apps import apps
from django.db import DatabaseError, models
from django.utils import translation

from .expected import Obj, describe
from .findings import MANAGE, Finding, Fix
from .snapshot import Snapshot
from .snapshot.schema import Table

_INT_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|integer|bigint)\(\d+\)")
_SPACES = re.compile(r"\s+")

_PG_ALIASES = {
    "varchar": "character varying",
    "char": "character",
    "int": "integer",
    "int4": "integer",
    "serial": "integer",
    "int8": "bigint",
    "bigserial": "bigint",
    "int2": "smallint",
    "smallserial": "smallint",
    "bool": "boolean",
    "decimal": "numeric",
    "float8": "double precision",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "time": "time without time zone",
}
_PG_KNOWN = {
    "integer", "bigint", "smallint", "character varying", "character", "text", "boolean",
    "numeric", "double precision", "real", "date", "timestamp with time zone",
    "timestamp without time zone", "time without time zone", "uuid", "jsonb", "json", "inet",
    "cidr", "interval", "bytea",
}  # fmt: skip
_MYSQL_ALIASES = {
    "integer": "int",
    "bool": "tinyint(1)",
    "boolean": "tinyint(1)",
    "numeric": "decimal",
    "double precision": "double",
    "json": "longtext",  # MariaDB: JSON is an alias of LONGTEXT
}
_MYSQL_KNOWN = {
    "int", "bigint", "smallint", "tinyint(1)", "varchar", "char", "longtext", "text",
    "decimal", "double", "real", "date", "datetime", "time", "longblob", "uuid", "json",
}  # fmt: skip
# SQLite gives every declared type containing "INT" the INTEGER affinity: integer, bigint,
# smallint and their unsigned spellings store the same integers (up to 8 bytes), and nothing
# depends on which one the column was declared with. Django itself leaves a foreign key `integer`
# when its target's primary key becomes a BigAutoField (both are `integer` there, so the
# referring tables are not rebuilt), while the model now says `bigint`. Other types keep
# their spelling: a varchar length is not enforced either, but Django rebuilds the table on
# every max_length change, so a different length means a change made outside migrations.
_SQLITE_INTEGER = re.compile(
    r"^(?:(?:tiny|small|medium|big)?int(?:eger)?|int[248]|unsigned big int)(?:\(\d+\))?"
    r"(?: unsigned)?$"
)
_SQLITE_KNOWN = {
    "integer", "bigint", "smallint", "varchar", "char", "text", "bool", "decimal", "real",
    "date", "datetime", "time", "blob", "integer unsigned", "bigint unsigned",
    "smallint unsigned", "uuid",
}  # fmt: skip


@lru_cache(maxsize=1024)  # a pure function called per column, with few distinct spellings
def canonical_type(vendor: str, spelled: str) -> str | None:
    """A comparable spelling of a column type, or None when the doctor does not know it."""
    t = _SPACES.sub(" ", spelled.strip().lower())
    t = re.sub(r"\s*,\s*", ",", t)
    if vendor == "postgresql":
        base, _, rest = t.partition("(")
        base = _PG_ALIASES.get(base.strip(), base.strip())
        if base not in _PG_KNOWN:
            return None
        return base + ("(" + rest if rest else "")
    if vendor == "mysql":
        t = t.replace(" auto_increment", "")
        t = _INT_WIDTH.sub(r"\1", t)
        unsigned = t.endswith(" unsigned")
        t = t.removesuffix(" unsigned")
        t = _MYSQL_ALIASES.get(t, t)
        base, _, rest = t.partition("(")
        base = _MYSQL_ALIASES.get(base, base)
        if base not in _MYSQL_KNOWN and t not in _MYSQL_KNOWN:
            return None
        out = t if base == t or t == "tinyint(1)" else base + "(" + rest
        return out + (" unsigned" if unsigned else "")
    if vendor == "sqlite":
        t = t.replace(" autoincrement", "")
        if _SQLITE_INTEGER.match(t):
            return "integer"
        base = t.partition("(")[0].strip()
        if base not in _SQLITE_KNOWN and t not in _SQLITE_KNOWN:
            return None
        return t
    return None


def _settled_apps(snapshot: Snapshot) -> set[str]:
    """Apps whose every migration is applied: there the models must match the schema."""
    loader = snapshot.graph.loader
    applied = set(loader.applied_migrations)
    unsettled = {key[0] for key in snapshot.expected.plan if key not in applied}
    unsettled |= {e.app for e in snapshot.graph.load_errors}
    return {label for label in loader.migrated_apps if label not in unsettled}


def schema_drift(snapshot: Snapshot, skip_apps: set[str] = frozenset()) -> list[Finding]:  # type: ignore[assignment]
    """`skip_apps`: apps whose models are ahead of their migrations (model-changes).

    Models are read with translations off, as `makemigrations` and `migrate` read them.
    """
    findings: list[Finding] = []
    with translation.override(None):
        findings += _invalid_indexes(snapshot)
        findings += _leftovers(snapshot)
        findings += _columns(snapshot, skip_apps)
    return findings


def _invalid_indexes(snapshot: Snapshot) -> list[Finding]:
    qn = snapshot.connection.ops.quote_name
    out = []
    for table in snapshot.schema.tables.values():
        for index in table.indexes.values():
            if index.valid:
                continue
            out.append(
                Finding(
                    "schema-drift",
                    _owner_app(snapshot, table.name),
                    None,
                    f"Index {index.name} on {table.name} is INVALID: a CREATE INDEX "
                    "CONCURRENTLY was interrupted. PostgreSQL maintains it on every write but "
                    "never uses it, and a unique one still rejects rows.",
                    {"table": table.name, "index": index.name, "columns": list(index.columns)},
                    Fix("Rebuild it.", (f"REINDEX INDEX CONCURRENTLY {qn(index.name)};",)),
                )
            )
    return out


def _leftovers(snapshot: Snapshot) -> list[Finding]:
    """Columns and tables an applied migration removed, still in the database."""
    applied = set(snapshot.graph.loader.applied_migrations)
    expected_live: set[Obj] = set()
    removed_by: dict[Obj, tuple[str, str]] = {}
    for key in snapshot.expected.plan:
        if key not in applied:
            continue
        effect = snapshot.expected.effects[key]
        for obj in effect.removes:
            expected_live.discard(obj)
            removed_by[obj] = key
        for obj in effect.creates:
            expected_live.add(obj)
            removed_by.pop(obj, None)
    out = []
    schema = snapshot.schema
    for obj, key in sorted(removed_by.items()):
        if obj[0] not in ("table", "column"):
            continue
        present = (
            schema.has_table(obj[1]) if obj[0] == "table" else schema.has_column(obj[1], obj[2])
        )
        if not present or (obj[0] == "column" and ("table", obj[1]) in removed_by):
            continue
        col = schema.column(obj[1], obj[2]) if obj[0] == "column" else None
        out.append(
            Finding(
                "schema-drift",
                key[0],
                key[1],
                f"{key[0]}.{key[1]} is applied and removes {describe(obj)}, but it is still in "
                "the database"
                + (
                    " as NOT NULL: inserts that omit it fail."
                    if col is not None and not col.null
                    else "."
                ),
                {"still_present": describe(obj), "null": None if col is None else col.null},
                Fix(
                    "Drop it if it holds nothing you need (check first).",
                    (f"{MANAGE} sqlmigrate {quote(key[0])} {quote(key[1])}",),
                ),
            )
        )
    return out


def _owner_app(snapshot: Snapshot, table: str) -> str | None:
    owner = snapshot.expected.tables.get(table)
    return owner[0] if owner else None


def _columns(snapshot: Snapshot, skip_apps: set[str]) -> list[Finding]:
    connection = snapshot.connection
    schema = snapshot.schema
    settled = _settled_apps(snapshot) - set(skip_apps)
    vendor = snapshot.vendor
    out = []
    for model in apps.get_models(include_auto_created=True):
        opts = model._meta
        if opts.app_label not in settled or not opts.can_migrate(connection):
            continue
        table = schema.table(opts.db_table)
        if table is None or table.kind != "table":
            # A view or a virtual table (a RunSQL-made FTS5 index behind a model) reports
            # every column nullable and often untyped: there is nothing declared to compare.
            continue
        diffs: list[dict[str, Any]] = []
        for field in opts.local_fields:
            if not field.column or isinstance(field, models.GeneratedField):
                continue
            live = schema.column(opts.db_table, field.column)
            if live is None:
                continue
            want_null = bool(field.null) and not field.primary_key
            if live.null != want_null:
                diffs.append(
                    {
                        "column": field.column,
                        "aspect": "null",
                        "expected": "NULL" if want_null else "NOT NULL",
                        "actual": "NULL" if live.null else "NOT NULL",
                    }
                )
            fk = _foreign_key_diff(snapshot, table, field)
            if fk is not None:
                diffs.append(fk)
            if field.primary_key and opts.auto_created:
                # Auto-created M2M tables get their id type from DEFAULT_AUTO_FIELD when the
                # migration runs, not from the app's default_auto_field: both are legitimate.
                continue
            wanted = field.db_type(connection)
            expected_t = canonical_type(vendor, wanted) if wanted else None
            actual_t = canonical_type(vendor, live.type)
            if expected_t and actual_t and expected_t != actual_t:
                diffs.append(
                    {
                        "column": field.column,
                        "aspect": "type",
                        "expected": wanted,
                        "actual": live.type,
                    }
                )
        if not diffs:
            continue
        described = "; ".join(
            f"{d['column']}: {d['actual']} in the database, {d['expected']} in the model"
            for d in diffs
        )
        fks = [d for d in diffs if d["aspect"] == "foreign key"]
        orphans = sum(int(d.get("orphans") or 0) for d in fks)
        out.append(
            Finding(
                "schema-drift",
                opts.app_label,
                None,
                f"Table {opts.db_table} differs from the {opts.label} model although every "
                f"migration is applied ({described}). Nothing fails until a query meets it "
                "(a NULL where NOT NULL is expected, a value too long for the column"
                + (
                    ", a row pointing at a row that does not exist: "
                    + (f"{orphans} already do" if orphans else "none does yet")
                    if fks
                    else ""
                )
                + ").",
                {"table": opts.db_table, "model": opts.label, "differences": diffs},
                Fix(
                    "Bring the column back in line with a migration (makemigrations cannot see "
                    "this: write an AlterField or RunSQL), or ALTER it by hand"
                    + (
                        " (the foreign key: once no row points at nothing, the statement "
                        "below, from Django's schema editor)."
                        if any(d.get("sql") for d in fks)
                        else "."
                    ),
                    tuple(d["sql"] for d in fks if d.get("sql")),
                ),
            )
        )
    return out


def _foreign_key_diff(snapshot: Snapshot, table: Table, field: Any) -> dict[str, Any] | None:
    """A foreign key the model declares and the database does not enforce (dropped by hand,
    lost by a dump restored without constraints, a target changed outside migrations).

    Only where the backend would have made one: `db_constraint`, a backend with foreign
    keys, a MySQL table on an engine that keeps them, a target table that exists.
    """
    connection = snapshot.connection
    schema = snapshot.schema
    if not (field.remote_field and field.db_constraint and field.concrete):
        return None
    if field.many_to_many or not connection.features.supports_foreign_keys:
        return None
    if not table.enforces_foreign_keys:
        return None
    target = field.target_field
    target_table = schema.table(target.model._meta.db_table)
    if target_table is None or not target_table.enforces_foreign_keys:
        return None
    wanted = (schema.key(target_table.name).lower(), schema.key(target.column).lower())
    column = schema.key(field.column).lower()
    live = [
        fk for fk in table.foreign_keys if [schema.key(c).lower() for c in fk.columns] == [column]
    ]
    points = [
        (schema.key(fk.ref_table).lower(), schema.key((fk.ref_columns or ("",))[0]).lower())
        for fk in live
    ]
    if wanted in points:
        return None
    expected = f"references {target_table.name}({target.column})"
    actual = (
        ", ".join(f"references {fk.ref_table}({', '.join(fk.ref_columns)})" for fk in live)
        or "no foreign key"
    )
    diff: dict[str, Any] = {
        "column": field.column,
        "aspect": "foreign key",
        "expected": expected,
        "actual": actual,
        "orphans": _orphans(snapshot, table.name, field.column, target_table.name, target.column),
    }
    statement = _create_fk_sql(snapshot, field)
    if statement:
        diff["sql"] = statement
    return diff


def _orphans(snapshot: Snapshot, table: str, column: str, target: str, to: str) -> int | None:
    """Rows whose value points at no row of the target: one read-only query, only for a
    foreign key that is missing."""
    qn = snapshot.connection.ops.quote_name
    sql = (
        f"SELECT COUNT(*) FROM {qn(table)} AS s LEFT JOIN {qn(target)} AS t "
        f"ON s.{qn(column)} = t.{qn(to)} WHERE s.{qn(column)} IS NOT NULL AND t.{qn(to)} IS NULL"
    )
    try:
        return int(snapshot.read(sql)[0][0])
    except DatabaseError:
        return None


def _create_fk_sql(snapshot: Snapshot, field: Any) -> str:
    """The statement Django's AlterField runs to add the constraint (none on SQLite, where
    only a table rebuild adds one)."""
    editor: Any = snapshot.connection.schema_editor(collect_sql=True)
    if not editor.sql_create_fk:
        return ""
    try:
        statement = editor._create_fk_sql(field.model, field, "_fk_%(to_table)s_%(to_column)s")
    except Exception:
        return ""
    return f"{statement};"
