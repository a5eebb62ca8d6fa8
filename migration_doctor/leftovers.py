"""Columns in a model's table that no migration accounts for.

A branch switch leaves them behind (the migration that added the column is on the other
branch, its row stale or pruned), as do hand-run `ALTER TABLE`s and restored dumps. Django
never mentions them, until an insert fails: a leftover `NOT NULL` column without a default
makes every insert through the ORM fail. A column that any migration of the plan creates or
removes (a pending `RemoveField` included) is accounted for; so is anything of a table no
model owns (that is `untracked-table`).
"""

from __future__ import annotations

from shlex import quote

from .findings import Finding, Fix, Severity
from .snapshot import Snapshot

MANAGE = "python manage.py"


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
                    f"every insert into {app}.{model} fails (NOT NULL constraint failed: "
                    f"{where})."
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
