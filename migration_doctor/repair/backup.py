"""JSON backups of django_migrations, and putting them back exactly.

A backup holds every row exactly as stored (NULLs, text that is no timestamp, MariaDB's zero
dates), which database it was taken from (vendor, file or server and database name), and a
SHA-256 over all of it: `--restore` refuses an edited file, and a backup of another database
unless told otherwise.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.color import no_style
from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.exceptions import MigrationSchemaMissing
from django.db.migrations.recorder import MigrationRecorder

from ..errors import DoctorError, first_line
from ..snapshot import sqlite_file
from ..snapshot.rows import RecordedRow, Stored, read_rows, recorder_table

FORMAT = "migration_doctor-backup"
# 3: version 2 and the rows a repair changes in other tables (content types, permissions);
# 2: stored values and the database's identity; 1: ISO timestamps, alias only. A backup
# without such rows is written as version 2, byte for byte what it always was.
VERSION = 2
VERSION_OTHER_ROWS = 3
READABLE = (1, VERSION, VERSION_OTHER_ROWS)
# (table, columns with the key column first, key values): rows outside django_migrations.
RowSet = tuple[str, tuple[str, ...], list[int]]
DEFAULT_PORTS = {"postgresql": "5432", "mysql": "3306"}
VENDOR_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB"}
# How each server renders its timestamps as text (rows.applied_sql): all a backup can hold.
SERVER_TIMESTAMP = {
    "postgresql": re.compile(
        r"-?infinity|\d{4,}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?([+-]\d\d(:\d\d){0,2})?( BC)?"
    ),
    "mysql": re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?"),
}


def default_path(alias: str, schema: str | None = None, directory: Path | None = None) -> Path:
    """Under the project's directory (BASE_DIR when the settings define it); a tenant
    schema's backup carries the schema's name."""
    base = Path(getattr(settings, "BASE_DIR", None) or Path.cwd()) / "migration_doctor_backups"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    of = f"{alias}-{schema}" if schema is not None else alias
    return (directory or base) / f"{of}-{stamp}.json"


# -- which database ---------------------------------------------------------------------------


def identity(connection: BaseDatabaseWrapper, schema: str | None = None) -> dict[str, str]:
    """The database behind an alias: its vendor and file, or its server and name (and the
    tenant schema, for a schema-per-tenant repair: each schema has its own rows)."""
    vendor = connection.vendor
    if vendor == "sqlite":
        path = sqlite_file(connection)
        return {"vendor": vendor, "name": str(path.resolve()) if path else ":memory:"}
    cfg = connection.settings_dict
    found = {
        "vendor": vendor,
        "name": str(cfg.get("NAME") or ""),
        "host": str(cfg.get("HOST") or "localhost"),
        "port": str(cfg.get("PORT") or DEFAULT_PORTS.get(vendor, "")),
    }
    return found if schema is None else {**found, "schema": schema}


def describe(ident: dict[str, Any]) -> str:
    vendor = VENDOR_NAMES.get(str(ident.get("vendor")), repr(ident.get("vendor")))
    if ident.get("vendor") == "sqlite":
        return f"{vendor} file {ident.get('name')}"
    where = f"{ident.get('host')}:{ident.get('port')}"
    of = f"schema {ident['schema']} of " if "schema" in ident else ""
    return f"{vendor} {of}database {ident.get('name')!r} on {where}"


def foreign(
    document: dict[str, Any], connection: BaseDatabaseWrapper, schema: str | None = None
) -> str | None:
    """Why `document` is not known to be a backup of this database, or of this tenant
    `schema` (None: it is)."""
    there = document.get("identity")
    if not isinstance(there, dict):
        return (
            f"names only the alias {document.get('database')!r} and the vendor "
            f"{document.get('vendor')!r}, not which database it was taken from (format "
            f"version {document.get('version')})"
        )
    if there != identity(connection, schema) or document.get("vendor") != connection.vendor:
        claimed = {**there, "vendor": document.get("vendor")}  # the vendor its rows are for
        return f"belongs to database {document.get('database')!r}: {describe(claimed)}"
    return None


def refusal(
    path: Path, why: str, connection: BaseDatabaseWrapper, schema: str | None = None
) -> DoctorError:
    return DoctorError(
        f"Backup file {path} {why}; this is database {connection.alias!r}: "
        f"{describe(identity(connection, schema))}. Nothing was restored; pass "
        "--restore-anywhere to restore it here anyway."
    )


# -- writing ----------------------------------------------------------------------------------


def encode(value: Stored) -> Any:
    """A stored value as JSON: itself, or bytes (SQLite keeps any type) as {"blob": hex}."""
    return {"blob": value.hex()} if isinstance(value, bytes) else value


def decode(value: Any) -> Stored:
    return bytes.fromhex(value["blob"]) if isinstance(value, dict) else value


def stored_row(row: RecordedRow) -> dict[str, Any]:
    """A row as a backup (and the ledger's `before_rows`) keeps it: exactly as stored."""
    return {
        "id": row.id,
        "app": encode(row.stored_app),
        "name": encode(row.stored_name),
        "applied": encode(row.stored_applied),
    }


def checksum(document: dict[str, Any]) -> str:
    """Version 2 covers everything but the mirrored ledger copy; version 1 only the rows."""
    if document.get("version") == 1:
        covered: Any = document.get("rows")
    else:
        covered = {k: v for k, v in document.items() if k not in ("sha256", "repairs")}
    return hashlib.sha256(json.dumps(covered, sort_keys=True).encode()).hexdigest()


def _table_exists(connection: BaseDatabaseWrapper) -> bool:
    with connection.cursor() as cursor:
        return recorder_table() in connection.introspection.table_names(cursor)


def _write_atomically(path: Path, text: str, what: str) -> None:
    """Never a half-written file under the real name, and no `.tmp` left when it fails."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as exc:
        # Its directory may not be one, or be read-only: then no .tmp was made there.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise DoctorError(f"Cannot write {what} {path}: {_why(path, exc)}.") from None


def _why(path: Path, exc: OSError) -> str:
    """`File exists` from mkdir means a regular file where a directory should be: say so."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is not a directory"
            break
    return exc.strerror or str(exc)


def _read_other(connection: BaseDatabaseWrapper, other: Sequence[RowSet]) -> list[dict[str, Any]]:
    """The rows of `other` as stored now, each table's rows in key order (none of a table
    that does not exist: a restore's safety backup in a database without it)."""
    qn = connection.ops.quote_name
    out = []
    with connection.cursor() as cursor:
        present = set(connection.introspection.table_names(cursor)) if other else set()
        for table, columns, keys in other:
            if not keys or table not in present:
                continue
            marks = ", ".join(["%s"] * len(keys))
            cursor.execute(
                f"SELECT {', '.join(qn(c) for c in columns)} FROM {qn(table)} "
                f"WHERE {qn(columns[0])} IN ({marks}) ORDER BY {qn(columns[0])}",
                list(keys),
            )
            rows = [[encode(v) for v in row] for row in cursor.fetchall()]
            out.append({"table": table, "columns": list(columns), "rows": rows})
    return out


def write_backup(
    connection: BaseDatabaseWrapper,
    path: Path | None = None,
    other: Sequence[RowSet] = (),
    schema: str | None = None,
) -> Path:
    """Every row of django_migrations, before the first write of a repair, and the rows of
    other tables the repair changes (`other`: a content type and its permissions).

    Fails with one line (DoctorError) when the file cannot be written, a full disk or a
    read-only directory, and then nothing has changed yet."""
    path = Path(path) if path else default_path(connection.alias, schema)
    exists = _table_exists(connection)
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "database": connection.alias,
        "vendor": connection.vendor,
        "identity": identity(connection, schema),
        "created": datetime.datetime.now(datetime.UTC).isoformat(),
        "table_existed": exists,
        "rows": [stored_row(r) for r in read_rows(connection, exists)],
    }
    extra = _read_other(connection, other)
    if extra:
        document["version"] = VERSION_OTHER_ROWS
        document["other_rows"] = extra
    document["sha256"] = checksum(document)
    # A backup its own restore would refuse is no backup: refuse the repair instead.
    _check_rows(document, f"Cannot back up django_migrations to {path}: it")
    _write_atomically(path, json.dumps(document, indent=2) + "\n", "the backup file")
    return path


def mirror_ledger(path: Path, entries: list[dict[str, Any]]) -> None:
    """Copy the repair's ledger entries into its backup file (the checksum leaves them out).

    Runs after the repair committed; a DoctorError here leaves the backup as it was."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DoctorError(f"Cannot read the backup file {path} back: {exc}.") from None
    document["repairs"] = [*document.get("repairs", []), *entries]
    text = json.dumps(document, indent=2, default=str) + "\n"
    _write_atomically(Path(path), text, "the ledger copy into the backup file")


# -- reading and restoring --------------------------------------------------------------------


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
    if document.get("version") not in READABLE:
        raise DoctorError(
            f"Backup file {path} has format version {document.get('version')!r}; this "
            f"migration_doctor reads versions {', '.join(map(str, READABLE[:-1]))} and "
            f"{READABLE[-1]}."
        )
    rows = document.get("rows")
    if not isinstance(rows, list) or document.get("sha256") != checksum(document):
        raise DoctorError(f"Backup file {path} was edited or truncated (checksum mismatch).")
    _check_rows(document, f"Backup file {path}")
    _check_other(document, f"Backup file {path}")
    return document


def _check_other(document: dict[str, Any], subject: str) -> None:
    """Version 3's other tables: a name, columns (the key first), rows of that many values."""
    if document.get("version") != VERSION_OTHER_ROWS:
        return
    sets = document.get("other_rows")
    if not isinstance(sets, list):
        raise DoctorError(f"{subject} has no list of other rows.")
    for entry in sets:
        columns = entry.get("columns") if isinstance(entry, dict) else None
        if not (
            isinstance(entry, dict)
            and set(entry) == {"table", "columns", "rows"}
            and isinstance(entry["table"], str)
            and isinstance(columns, list)
            and columns
            and all(isinstance(c, str) for c in columns)
            and isinstance(entry["rows"], list)
            and all(
                isinstance(r, list)
                and len(r) == len(columns)
                and all(_text(v, True) or isinstance(v, (int, float)) for v in r)
                for r in entry["rows"]
            )
        ):
            raise DoctorError(f"{subject} has a malformed set of other rows: {entry!r}.")


def _check_rows(document: dict[str, Any], subject: str) -> None:
    seen: set[int] = set()
    vendor = document.get("vendor")
    for row in document["rows"]:
        if not (
            isinstance(row, dict)
            and set(row) == {"id", "app", "name", "applied"}
            and isinstance(row["id"], int)
            and not isinstance(row["id"], bool)
            and row["id"] not in seen
            and _valid(row, vendor, document.get("version"))
        ):
            raise DoctorError(f"{subject} has a malformed row: {row!r}.")
        seen.add(row["id"])


def _valid(row: dict[str, Any], vendor: Any, version: Any) -> bool:
    if version == 1:  # names as text, applied as an ISO timestamp
        names = isinstance(row["app"], str) and isinstance(row["name"], str)
        return names and _iso(row["applied"])
    sqlite = vendor == "sqlite"
    if not all(_text(row[k], sqlite) for k in ("app", "name")):
        return False
    applied = row["applied"]
    if applied is None:
        return True
    if sqlite:  # the column keeps whatever was written: any text, a number, bytes
        return _text(applied, True) or (
            isinstance(applied, (int, float)) and not isinstance(applied, bool)
        )
    pattern = SERVER_TIMESTAMP.get(str(vendor))
    return isinstance(applied, str) and pattern is not None and bool(pattern.fullmatch(applied))


def _text(value: Any, blob_ok: bool) -> bool:
    if value is None or isinstance(value, str):
        return True
    if blob_ok and isinstance(value, dict) and set(value) == {"blob"}:
        try:
            bytes.fromhex(value["blob"])
        except (TypeError, ValueError):
            return False
        return True
    return False


def _iso(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _values(
    row: dict[str, Any], document: dict[str, Any], connection: BaseDatabaseWrapper
) -> tuple[Any, ...]:
    """The row's stored values; a timestamp from another vendor (or an ISO timestamp of a
    version 1 backup) is written as this backend writes a datetime."""
    applied = decode(row["applied"])
    if applied is not None and (
        document.get("version") == 1 or document.get("vendor") != connection.vendor
    ):
        try:
            when = datetime.datetime.fromisoformat(str(applied))
            applied = connection.ops.adapt_datetimefield_value(when)
        except ValueError:
            raise DoctorError(
                f"Row id {row['id']} of the backup has applied {applied!r}, which "
                f"{VENDOR_NAMES.get(connection.vendor, connection.vendor)} cannot store; "
                "nothing was restored."
            ) from None
    return (row["id"], decode(row["app"]), decode(row["name"]), applied)


def other_row_sets(document: dict[str, Any]) -> list[RowSet]:
    """The rows outside django_migrations a backup holds, by table, columns and keys: what a
    restore overwrites, so its own safety backup keeps them as they are now."""
    return [
        (e["table"], tuple(e["columns"]), [decode(r[0]) for r in e["rows"]])  # type: ignore[misc]
        for e in document.get("other_rows", [])
    ]


@dataclass
class Restored:
    """What a restore put back, and what it leaves as the repair made it."""

    rows: int  # of django_migrations
    other: list[tuple[str, int]] = field(default_factory=list)  # (table, rows)
    # The schema steps of the repairs the backup was taken for (its mirrored ledger): a
    # restore puts rows back, never the schema.
    schema_steps: list[str] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)

    def message(self, alias: str, safety: Path, schema: str | None = None) -> str:
        alias = repr(alias) if schema is None else f"{alias!r} (schema {schema})"
        if not self.other:  # a backup of django_migrations alone, as it always read
            return (
                f"Restored {self.rows} rows into django_migrations on {alias} "
                f"(the rows it replaced are in {safety})."
            )
        tables = ", ".join(f"{n} of {t}" for t, n in self.other)
        text = (
            f"Restored {self.rows} rows into django_migrations and {tables} on {alias} "
            f"(the rows it replaced are in {safety})."
        )
        if self.schema_steps:
            text += (
                " A restore puts rows back, not the schema; these changes of the repair stay: "
                + "; ".join(self.schema_steps)
                + ". `python manage.py migration_doctor` shows the state that leaves"
            )
            if "user-model-switched" in self.kinds:
                text += (
                    " (for a user model moved to its new table: E013 with repair `resume`, "
                    "which `--fix` finishes again)"
                )
            text += "."
        return text


def restored_summary(document: dict[str, Any], rows: int) -> Restored:
    """`document`'s restore in numbers, and the schema steps its repairs left in place."""
    repairs = [r for r in document.get("repairs", []) if isinstance(r, dict)]
    return Restored(
        rows,
        [(e["table"], len(e["rows"])) for e in document.get("other_rows", [])],
        [str(r.get("step")) for r in repairs if r.get("action") == "schema"],
        {str(r.get("kind")) for r in repairs},
    )


def restore(
    connection: BaseDatabaseWrapper,
    path: Path,
    anywhere: bool = False,
    schema: str | None = None,
) -> Restored:
    """Put django_migrations back exactly as recorded (ids, names, stored values), and the
    other rows a version 3 backup holds (by key: updated, or inserted if gone), atomically.

    `anywhere`: restore a backup of another database (or one that does not say which)."""
    document = read_backup(path)
    why = foreign(document, connection, schema)
    if why and not anywhere:
        raise refusal(path, why, connection, schema)
    values = [_values(r, document, connection) for r in document["rows"]]
    qn = connection.ops.quote_name
    table = qn(recorder_table())
    insert = (
        f"INSERT INTO {table} ({qn('id')}, {qn('app')}, {qn('name')}, {qn('applied')}) "
        "VALUES (%s, %s, %s, %s)"
    )
    try:
        MigrationRecorder(connection).ensure_schema()
        reset = connection.ops.sequence_reset_sql(no_style(), [MigrationRecorder.Migration])
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table}")
            if values:
                cursor.executemany(insert, values)
            for statement in reset:
                cursor.execute(statement)
            _restore_other(connection, cursor, document.get("other_rows", []))
    except (DatabaseError, MigrationSchemaMissing) as exc:
        raise DoctorError(
            f"The database refused the rows of {path} ({first_line(exc)}); nothing was restored."
        ) from exc
    return restored_summary(document, len(values))


def _restore_other(
    connection: BaseDatabaseWrapper, cursor: Any, sets: list[dict[str, Any]]
) -> None:
    qn = connection.ops.quote_name
    for entry in sets:
        table, columns = qn(entry["table"]), [qn(c) for c in entry["columns"]]
        key, rest = columns[0], columns[1:]
        update = f"UPDATE {table} SET {', '.join(f'{c} = %s' for c in rest)} WHERE {key} = %s"
        insert = (
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})"
        )
        for row in entry["rows"]:
            values = [decode(v) for v in row]
            cursor.execute(update, [*values[1:], values[0]])
            if cursor.rowcount == 0:  # MySQL counts matched rows (Django sets FOUND_ROWS)
                cursor.execute(insert, values)
