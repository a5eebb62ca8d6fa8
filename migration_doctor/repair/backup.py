"""JSON backups of django_migrations, and putting them back exactly."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.color import no_style
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.recorder import MigrationRecorder

from ..snapshot import DoctorError
from ..snapshot.rows import read_rows, recorder_table

FORMAT = "migration_doctor-backup"


def default_path(alias: str) -> Path:
    """Under the project's directory (BASE_DIR when the settings define it)."""
    base = Path(getattr(settings, "BASE_DIR", None) or Path.cwd())
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return base / "migration_doctor_backups" / f"{alias}-{stamp}.json"


def _digest(rows: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def _table_exists(connection: BaseDatabaseWrapper) -> bool:
    with connection.cursor() as cursor:
        return recorder_table() in connection.introspection.table_names(cursor)


def write_backup(connection: BaseDatabaseWrapper, path: Path | None = None) -> Path:
    """Every row of django_migrations, before the first write of a repair."""
    path = Path(path) if path else default_path(connection.alias)
    exists = _table_exists(connection)
    rows = [
        {
            "id": r.id,
            "app": r.app,
            "name": r.name,
            "applied": r.applied.isoformat() if r.applied else None,
        }
        for r in read_rows(connection, exists)
    ]
    document = {
        "format": FORMAT,
        "version": 1,
        "database": connection.alias,
        "vendor": connection.vendor,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "table_existed": exists,
        "rows": rows,
        "sha256": _digest(rows),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)  # never a half-written backup under the real name
    return path


def mirror_ledger(path: Path, entries: list[dict[str, Any]]) -> None:
    """Copy the repair's ledger entries into its backup file (the checksum covers rows)."""
    document = json.loads(Path(path).read_text())
    document["repairs"] = [*document.get("repairs", []), *entries]
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str) + "\n")
    tmp.replace(path)


def read_backup(path: Path) -> dict[str, Any]:
    """Load and verify a backup; any doubt refuses the restore before a single write."""
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DoctorError(f"Backup file {path} does not exist.") from None
    except (OSError, ValueError) as exc:
        raise DoctorError(f"Backup file {path} is not valid JSON ({exc}).") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise DoctorError(f"{path} is not a migration_doctor backup.")
    rows = document.get("rows")
    if not isinstance(rows, list) or document.get("sha256") != _digest(rows):
        raise DoctorError(f"Backup file {path} was edited or truncated (checksum mismatch).")
    seen: set[int] = set()
    for row in rows:
        if not (
            isinstance(row, dict)
            and set(row) == {"id", "app", "name", "applied"}
            and isinstance(row["id"], int)
            and isinstance(row["app"], str)
            and isinstance(row["name"], str)
            and _is_timestamp(row["applied"])
            and row["id"] not in seen
        ):
            raise DoctorError(f"Backup file {path} has a malformed row: {row!r}.")
        seen.add(row["id"])
    return document


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def restore(connection: BaseDatabaseWrapper, path: Path) -> int:
    """Put django_migrations back exactly as recorded (ids, names, timestamps), atomically."""
    document = read_backup(path)
    Migration = MigrationRecorder.Migration
    rows = [
        Migration(
            id=r["id"],
            app=r["app"],
            name=r["name"],
            applied=datetime.datetime.fromisoformat(r["applied"]),
        )
        for r in document["rows"]
    ]
    MigrationRecorder(connection).ensure_schema()
    with transaction.atomic(using=connection.alias):
        Migration.objects.using(connection.alias).all().delete()
        Migration.objects.using(connection.alias).bulk_create(rows)
        reset = connection.ops.sequence_reset_sql(no_style(), [Migration])
        if reset:
            with connection.cursor() as cursor:
                for statement in reset:
                    cursor.execute(statement)
    return len(rows)
