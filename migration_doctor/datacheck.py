"""Whether the data lets a half-applied migration be completed, or a pending one apply.

MySQL and MariaDB keep the DDL that ran before a statement failed: `0004` adds a column, then
makes `Category.name` unique while two rows share a name, and the database is left with the
column and without the constraint. Completing it would fail the same way and faking it would
record a constraint the data forbids; the finding says so, with the offending values, and
the repair rolls the present part back instead. A pending migration that adds such a
constraint fails the same way at the next `migrate` (`blocked-by-data`), and so does one that
adds a unique field with one value for every existing row (Django computes a default once,
even a callable one: its docs' "Migrations that add unique fields"). One read-only query per
such constraint, none on a healthy database or one without pending unique changes.
"""

from __future__ import annotations

from shlex import quote
from typing import Any

from django.db import DatabaseError
from django.db.migrations import operations as ops
from django.db.models import NOT_PROVIDED

from .expected import MigrationEffect, describe
from .findings import MANAGE, Finding, Fix
from .snapshot import Snapshot

SAMPLE = 5  # duplicate value groups shown per constraint
HALF_APPLIED = ("partially-applied", "squash-partial")
CHECKED = (*HALF_APPLIED, "missing-schema")


def duplicates(
    snapshot: Snapshot, table: str, columns: tuple[str, ...]
) -> tuple[list[dict[str, Any]], bool]:
    """Up to SAMPLE groups of rows sharing `columns` (NULLs never collide), and whether there
    are more."""
    connection = snapshot.connection
    qn = connection.ops.quote_name
    cols = ", ".join(qn(c) for c in columns)
    not_null = " AND ".join(f"{qn(c)} IS NOT NULL" for c in columns)
    sql = (
        f"SELECT {cols}, COUNT(*) FROM {qn(table)} WHERE {not_null} GROUP BY {cols} "
        f"HAVING COUNT(*) > 1 ORDER BY COUNT(*) DESC LIMIT {SAMPLE + 1}"
    )
    try:
        rows = snapshot.read(sql)
    except DatabaseError:  # unreadable table: no evidence either way
        return [], False
    groups = [
        {"values": [None if v is None else str(v) for v in row[:-1]], "rows": int(row[-1])}
        for row in rows[:SAMPLE]
    ]
    return groups, len(rows) > SAMPLE


def forbidden_by_data(snapshot: Snapshot, findings: list[Finding]) -> None:
    """Mark half-applied migrations, and recorded ones missing a unique constraint, where
    the data forbids the constraint."""
    schema = snapshot.schema
    for finding in findings:
        if finding.kind not in CHECKED or finding.app is None or finding.migration is None:
            continue
        effect = snapshot.expected.effects.get((finding.app, finding.migration))
        if effect is None:
            continue
        blocked = []
        missing = set(finding.evidence.get("missing", ()))
        for obj in effect.creates:
            if obj[0] != "unique" or describe(obj) not in missing or schema.has_object(obj):
                continue
            table, columns = obj[1], tuple(obj[2:])
            if not all(schema.has_column(table, c) for c in columns):
                continue
            groups, more = duplicates(snapshot, table, columns)
            if groups:
                blocked.append({"constraint": describe(obj), "duplicates": groups, "more": more})
        if blocked:
            _explain(finding, blocked)


def _explain(finding: Finding, blocked: list[dict[str, Any]]) -> None:
    first = blocked[0]
    group = first["duplicates"][0]
    values = ", ".join("NULL" if v is None else repr(v) for v in group["values"])
    finding.evidence["forbidden_by_data"] = blocked
    half = finding.kind in HALF_APPLIED
    finding.message += (
        f" It cannot be {'completed' if half else 're-created'}: the data forbids "
        f"{first['constraint']} "
        f"({group['rows']} rows hold {values}"
        + (" and more values repeat" if len(first["duplicates"]) > 1 or first["more"] else "")
        + (
            "). Recording it without running it would claim a constraint the database does "
            "not enforce."
            if half
            else "). Until the values are unique the constraint cannot be added."
        )
    )
    app, name = quote(finding.app or ""), quote(finding.migration or "")
    if not half:
        finding.fix = Fix(
            "Make the values unique, then re-create the constraint (the repair does once "
            "they are).",
            (f"{MANAGE} migration_doctor_fix  # once the duplicate values are gone",),
        )
        return
    finding.fix = Fix(
        "Roll the present part back (the repair does, while it holds no data), make the values "
        "unique, then apply the migration whole.",
        (
            f"{MANAGE} migration_doctor_fix",
            f"{MANAGE} migrate {app} {name}  # once the duplicate values are gone",
        ),
    )


def _unique_error(vendor: str, table: str, columns: tuple[str, ...], values: str) -> str:
    """The error `migrate` stops with (the index name is Django's hash, left out)."""
    if vendor == "postgresql":
        return (
            f"could not create unique index ... DETAIL:  Key ({', '.join(columns)})=({values}) "
            "is duplicated."
        )
    if vendor == "mysql":
        return f"(1062, \"Duplicate entry '{values}' for key ...\")"
    # SQLite rebuilds the table to add the constraint: the copy into new__<table> fails.
    return f"UNIQUE constraint failed: {', '.join(f'new__{table}.{c}' for c in columns)}"


def _one_value_for_all(field: Any) -> bool:
    """Whether AddField gives every existing row the same value: a default (computed once,
    even a callable one), a db_default, or NOT NULL (makemigrations asked for a one-off
    default). Nullable without a default: NULLs never collide."""
    db_default = getattr(field, "db_default", NOT_PROVIDED)
    return bool(field.has_default() or db_default is not NOT_PROVIDED or not field.null)


def blocked_pending(snapshot: Snapshot, findings: list[Finding]) -> list[Finding]:
    """`blocked-by-data` for each pending migration whose unique constraint the rows in the
    database forbid: `migrate` would stop on it (and on MySQL leave it half applied)."""
    out = []
    applied = set(snapshot.graph.loader.applied_migrations)
    # Apps with a pending RunPython/RunSQL so far in the plan: it may fix the data first.
    may_change_data: set[str] = set()
    pending = {(f.app, f.migration): f for f in findings if f.kind == "unapplied"}
    for key in snapshot.expected.plan:
        effect = snapshot.expected.effects.get(key)
        if key in applied or effect is None:
            continue
        finding = pending.get(key)
        migration = snapshot.graph.graph.nodes.get(key)
        if finding is not None and migration is not None and key[0] not in may_change_data:
            blocked = _blocked(snapshot, effect, list(migration.operations))
            if blocked is not None:
                out.append(_blocked_finding(snapshot, finding, blocked))
        if effect.opaque:
            may_change_data.add(key[0])
    return out


def _blocked(
    snapshot: Snapshot, effect: MigrationEffect, operations: list[Any]
) -> dict[str, Any] | None:
    """The first unique constraint of the migration that its table's rows forbid (before any
    RunPython/RunSQL of its own, which may change them), if any."""
    schema = snapshot.schema
    for op_effect in effect.operations:
        if op_effect.opaque:
            return None
        op = operations[op_effect.index] if op_effect.index < len(operations) else None
        for obj in op_effect.creates:
            if obj[0] != "unique" or schema.has_object(obj) or not schema.has_table(obj[1]):
                continue
            table, columns = obj[1], tuple(obj[2:])
            if all(schema.has_column(table, c) for c in columns):
                groups, more = duplicates(snapshot, table, columns)
                if groups:
                    return {
                        "constraint": describe(obj),
                        "table": table,
                        "columns": list(columns),
                        "duplicates": groups,
                        "more": more,
                    }
            elif (
                isinstance(op, ops.AddField)
                and len(columns) == 1
                and _one_value_for_all(op.field)
                and _two_rows(snapshot, table)
            ):
                default = op.field.default
                constant = op.field.has_default() and not callable(default)
                return {
                    "constraint": describe(obj),
                    "table": table,
                    "columns": list(columns),
                    "new_column": columns[0],
                    "value": str(default) if constant else None,
                }
    return None


def _two_rows(snapshot: Snapshot, table: str) -> bool:
    """Whether the table has two rows or more: then one value for all of them collides."""
    qn = snapshot.connection.ops.quote_name
    try:
        rows = snapshot.read(f"SELECT COUNT(*) FROM (SELECT 1 FROM {qn(table)} LIMIT 2) t")
    except DatabaseError:
        return False
    return int(rows[0][0]) > 1


def _blocked_finding(snapshot: Snapshot, pending: Finding, blocked: dict[str, Any]) -> Finding:
    app, name = pending.app or "", pending.migration or ""
    constraint, table, columns = blocked["constraint"], blocked["table"], blocked["columns"]
    if "new_column" in blocked:
        why = (
            f"it adds column {table}.{blocked['new_column']} with {constraint} and gives "
            "every existing row the same value (a default is computed once, even a callable "
            "one)"
        )
        values = "..." if blocked["value"] is None else blocked["value"]
        fix = Fix(
            "Split it as Django's docs show (Migrations that add unique fields): add the field "
            "nullable and not unique, give each row its own value in a RunPython, then make it "
            "unique.",
            (f"{MANAGE} migrate {quote(app)} {quote(name)}  # once it is split",),
        )
    else:
        group = blocked["duplicates"][0]
        values = ", ".join("NULL" if v is None else str(v) for v in group["values"])
        shown = ", ".join("NULL" if v is None else repr(v) for v in group["values"])
        more = len(blocked["duplicates"]) > 1 or blocked["more"]
        why = (
            f"the data forbids {constraint} ({group['rows']} rows hold {shown}"
            + (" and more values repeat" if more else "")
            + ")"
        )
        fix = Fix(
            "Make the values unique first (by hand, or in a data migration before this one), "
            "then migrate.",
            (f"{MANAGE} migrate {quote(app)} {quote(name)}  # once the values are unique",),
        )
    error = _unique_error(snapshot.vendor, table, tuple(columns), values)
    return Finding(
        "blocked-by-data",
        app,
        name,
        f"{app}.{name} is not applied yet, and `migrate` will fail on it: {why}. Django "
        f"says: IntegrityError: {error}"
        + (
            " MySQL/MariaDB keep the DDL that ran before the failing statement."
            if snapshot.vendor == "mysql"
            else ""
        ),
        blocked,
        fix,
    )
