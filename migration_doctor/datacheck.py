"""Whether the data lets a half-applied migration be completed.

MySQL and MariaDB keep the DDL that ran before a statement failed: `0004` adds a column, then
makes `Category.name` unique while two rows share a name, and the database is left with the
column and without the constraint. Completing it would fail the same way and faking it would
record a constraint the data forbids; the finding says so, with the offending values, and
the repair rolls the present part back instead. One read-only query per missing unique
constraint of a half-applied migration, none on a healthy database.
"""

from __future__ import annotations

from shlex import quote
from typing import Any

from django.db import DatabaseError

from .expected import describe
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
