"""Recorded rows: what `django_migrations` says is applied, read with one plain SELECT."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.recorder import MigrationRecorder


@dataclass(frozen=True)
class RecordedRow:
    id: int
    app: str
    name: str
    applied: datetime.datetime | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.app, self.name)


def recorder_table() -> str:
    return str(MigrationRecorder.Migration._meta.db_table)


def read_rows(connection: BaseDatabaseWrapper, table_exists: bool) -> list[RecordedRow]:
    """Every row, duplicates included; no table means nothing applied (and nothing created)."""
    if not table_exists:
        return []
    qn = connection.ops.quote_name
    sql = "SELECT {}, {}, {}, {} FROM {} ORDER BY {}".format(
        qn("id"), qn("app"), qn("name"), qn("applied"), qn(recorder_table()), qn("id")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        raw = cursor.fetchall()
    field = MigrationRecorder.Migration._meta.get_field("applied")
    assert isinstance(field, models.Field)
    converters = connection.ops.get_db_converters(field.get_col(field.model._meta.db_table))
    rows = []
    for id_, app, name, applied in raw:
        for converter in converters:
            applied = converter(applied, None, connection)
        if isinstance(applied, str):  # SQLite hands back text when no converter applies
            applied = datetime.datetime.fromisoformat(applied)
        rows.append(RecordedRow(int(id_), str(app), str(name), applied))
    return rows
