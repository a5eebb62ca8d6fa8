"""The repair ledger: every step --fix applies leaves a trace in the database itself.

django_migrations stores (app, name, applied) only, so a row written by `migrate --fake` is
indistinguishable from a real run. The ledger keeps, per applied step, the finding and its
evidence, the exact SQL, the rows as they were before, and who ran it where. The table is
created by the first repair, never by a diagnosis.
"""

from __future__ import annotations

import datetime
import getpass
import json
import socket
import sys
from dataclasses import dataclass
from typing import Any

import django
from django.apps.registry import Apps
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from . import __version__

LEDGER_TABLE = "migration_doctor_ledger"

_model: Any = None


def ledger_model() -> Any:
    """A model outside the app registry, as MigrationRecorder does for django_migrations."""
    global _model
    if _model is None:

        class LedgerEntry(models.Model):
            created = models.DateTimeField()
            kind = models.CharField(max_length=64)
            check_id = models.CharField(max_length=64)
            app = models.CharField(max_length=255, null=True)
            migration = models.CharField(max_length=255, null=True)
            action = models.CharField(max_length=16)  # record, unrecord, rename, schema, files
            rows = models.TextField()  # JSON list of "app.name" recorded or un-recorded
            step = models.TextField()
            reason = models.TextField()
            evidence = models.TextField()  # JSON
            sql = models.TextField()  # JSON list
            before_rows = models.TextField()  # JSON list of django_migrations rows
            doctor_version = models.CharField(max_length=32)
            django_version = models.CharField(max_length=32)
            command = models.TextField()
            user = models.CharField(max_length=255)
            host = models.CharField(max_length=255)
            backup = models.TextField()

            class Meta:
                apps = Apps()
                app_label = "migration_doctor"
                db_table = LEDGER_TABLE

        _model = LedgerEntry
    return _model


@dataclass(frozen=True)
class LedgerRecord:
    id: int
    created: datetime.datetime
    kind: str
    check_id: str
    app: str | None
    migration: str | None
    action: str
    rows: list[str]
    step: str
    reason: str
    evidence: dict[str, Any]
    sql: list[str]
    before_rows: list[dict[str, Any]]
    doctor_version: str
    django_version: str
    command: str
    user: str
    host: str
    backup: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "created": self.created.isoformat()}


def ensure_table(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        if LEDGER_TABLE in connection.introspection.table_names(cursor):
            return
    with connection.schema_editor() as editor:
        editor.create_model(ledger_model())


# Rows per INSERT when many entries are written at once (well under SQLite's 999 variables
# per statement for its 18 columns: Django's bulk_create splits further where needed).
BATCH = 500


def write_entry(connection: BaseDatabaseWrapper, **fields: Any) -> dict[str, Any]:
    """One ledger entry (see `entry`), written now."""
    return write_entries(connection, [entry(**fields)])[0]


def write_entries(
    connection: BaseDatabaseWrapper, entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Entries made by `entry`, written in batches (a repair of a wiped history records
    thousands of rows: one INSERT each would cost more than the diagnosis); returns them as
    the backup's ledger copy holds them."""
    model = ledger_model()
    objs = [model(**values) for values in entries]
    model.objects.using(connection.alias).bulk_create(objs, batch_size=BATCH)
    return [
        {**values, "created": values["created"].isoformat(), "rows": json.loads(values["rows"])}
        for values in entries
    ]


def entry(
    *,
    kind: str,
    check_id: str,
    app: str | None,
    migration: str | None,
    action: str,
    rows: list[str],
    step: str,
    reason: str,
    evidence: dict[str, Any],
    sql: list[str],
    before_rows: list[dict[str, Any]],
    backup: str,
) -> dict[str, Any]:
    values = {
        "created": timezone.now(),
        "kind": kind,
        "check_id": check_id,
        "app": app,
        "migration": migration,
        "action": action,
        "rows": json.dumps(rows),
        "step": step,
        "reason": reason,
        "evidence": json.dumps(evidence, default=str),
        "sql": json.dumps(sql),
        "before_rows": json.dumps(before_rows, default=str),
        "doctor_version": __version__,
        "django_version": django.get_version(),
        "command": " ".join(sys.argv),
        "user": _user(),
        "host": socket.gethostname(),
        "backup": backup,
    }
    return values


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def read_ledger(connection: BaseDatabaseWrapper) -> list[LedgerRecord]:
    """Every entry, oldest first; none when no repair ever ran (the table does not exist)."""
    with connection.cursor() as cursor:
        if LEDGER_TABLE not in connection.introspection.table_names(cursor):
            return []
    return read_known_ledger(connection)


def read_known_ledger(connection: BaseDatabaseWrapper) -> list[LedgerRecord]:
    """The same in one SELECT, for a diagnosis that already knows the table exists."""
    return [_record(e) for e in ledger_model().objects.using(connection.alias).order_by("id")]


def _record(e: Any) -> LedgerRecord:
    return LedgerRecord(
        id=e.id,
        created=e.created,
        kind=e.kind,
        check_id=e.check_id,
        app=e.app,
        migration=e.migration,
        action=e.action,
        rows=json.loads(e.rows or "[]"),
        step=e.step,
        reason=e.reason,
        evidence=json.loads(e.evidence or "{}"),
        sql=json.loads(e.sql or "[]"),
        before_rows=json.loads(e.before_rows or "[]"),
        doctor_version=e.doctor_version,
        django_version=e.django_version,
        command=e.command,
        user=e.user,
        host=e.host,
        backup=e.backup,
    )
