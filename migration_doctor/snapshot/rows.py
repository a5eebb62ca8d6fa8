"""Recorded rows: what `django_migrations` says is applied, read with one plain SELECT.

Each row also keeps its values exactly as stored (NULL stays None, a text that is no
timestamp stays that text, MariaDB's zero date stays `0000-00-00 ...`): backups put those
back, whatever the table holds. `app`, `name` and `applied` are what diagnosis uses.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

# A stored value as the driver returns it: text, NULL, or (SQLite keeps any type) a number
# or bytes.
Stored = str | int | float | bytes | None


@dataclass(frozen=True)
class RecordedRow:
    id: int
    app: str  # '' when the column holds NULL (stored_app is None)
    name: str  # '' when the column holds NULL
    applied: datetime.datetime | None  # None when NULL or not a timestamp
    stored_app: Stored
    stored_name: Stored
    stored_applied: Stored  # as the database renders it as text (SQLite: as stored)

    @property
    def key(self) -> tuple[str, str]:
        return (self.app, self.name)

    @property
    def has_null(self) -> bool:
        """A NULL app or name: no statement comparing names with `=` matches this row."""
        return self.stored_app is None or self.stored_name is None


def recorder_table() -> str:
    return str(MigrationRecorder.Migration._meta.db_table)


def applied_sql(connection: BaseDatabaseWrapper) -> str:
    """`applied` as raw as the backend hands it out: no converter, no parsing.

    SQLite's driver would parse a `datetime` column (and raise on `2025-13-45`): the unary
    `+` makes it an expression, which keeps the stored value and its type. The servers
    render their own value as text, zero dates and `infinity` included."""
    column = connection.ops.quote_name("applied")
    if connection.vendor == "sqlite":
        return f"+{column}"
    if connection.vendor == "mysql":
        return f"CAST({column} AS CHAR)"
    return f"CAST({column} AS TEXT)"


def parse_applied(value: Stored, connection: BaseDatabaseWrapper) -> datetime.datetime | None:
    """The timestamp a stored value means, as Django would return it; None if it is none."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:  # '', 'yesterday', '2025-13-45 99:00:00', a zero date, 'infinity'
        return None
    if settings.USE_TZ and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, connection.timezone)
    elif not settings.USE_TZ and timezone.is_aware(parsed):
        parsed = timezone.make_naive(parsed, connection.timezone)
    return parsed


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def read_rows(connection: BaseDatabaseWrapper, table_exists: bool) -> list[RecordedRow]:
    """Every row, duplicates included; no table means nothing applied (and nothing created)."""
    if not table_exists:
        return []
    qn = connection.ops.quote_name
    sql = "SELECT {}, {}, {}, {} FROM {} ORDER BY {}".format(
        qn("id"), qn("app"), qn("name"), applied_sql(connection), qn(recorder_table()), qn("id")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        raw = cursor.fetchall()
    return [_row(connection, *values) for values in raw]


def _row(
    connection: BaseDatabaseWrapper, id_: Any, app: Stored, name: Stored, applied: Stored
) -> RecordedRow:
    return RecordedRow(
        int(id_),
        _text(app),
        _text(name),
        parse_applied(applied, connection),
        stored_app=app,
        stored_name=name,
        stored_applied=applied,
    )


def pg_schema_name(name: str) -> str:
    """A PostgreSQL schema name as an identifier, embedded quotes doubled (Django's
    quote_name does not double them: a schema name comes from the catalog, anything goes)."""
    return '"' + name.replace('"', '""') + '"'


def read_rows_of_schemas(
    connection: BaseDatabaseWrapper, schemas: list[str]
) -> dict[str, list[RecordedRow]]:
    """PostgreSQL: the rows of django_migrations in each of `schemas` (all of which have
    the table), in one UNION ALL statement whatever their number."""
    if not schemas:
        return {}
    qn = connection.ops.quote_name
    table = qn(recorder_table())
    columns = ", ".join([qn("id"), qn("app"), qn("name"), applied_sql(connection)])
    sql = " UNION ALL ".join(
        f"SELECT %s::text, {columns} FROM {pg_schema_name(schema)}.{table}" for schema in schemas
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ({sql}) AS rows ORDER BY 1, 2", schemas)
        raw = cursor.fetchall()
    rows: dict[str, list[RecordedRow]] = {schema: [] for schema in schemas}
    for schema, *values in raw:
        rows[schema].append(_row(connection, *values))
    return rows
