"""Backups that always restore, only where they belong, and a disk that fails around them.

- Every row round-trips exactly as stored: NULL app, name or applied (a hand-made table
  allows them), text that is no timestamp on SQLite (`''`, `yesterday`, `2025-13-45`, a `T`
  separator, numbers, bytes), MariaDB's zero date, PostgreSQL's `infinity`. The stored values
  are compared with the database's own rendering (SQLite `quote()`, a cast to text).
- Diagnosis with such rows works in every format; a NULL app is a stale record whose shown
  DELETE (by id) removes exactly that row.
- `--restore` refuses a backup of another database (another SQLite file, another database
  on the server, another vendor, an older backup that does not say) unless
  `--restore-anywhere`; editing the recorded identity is a checksum mismatch.
- A backup that cannot be written (a parent that is a regular file, a full disk, a read-only
  file system) stops `--fix` before any change: one line, exit 2, no `.tmp`. When the disk
  fills after the commit, the report of what was done still prints, with the backup's path
  and a warning; no `.tmp` is left and the backup still verifies. Full and read-only disks are
  real tmpfs mounts where the test may mount one (root with CAP_SYS_ADMIN), and a
  monkeypatched `os.fsync` raising ENOSPC everywhere. chmod is not used: tests run as root.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from migration_doctor.diagnose import diagnose
from migration_doctor.errors import DoctorError
from migration_doctor.ledger import read_ledger
from migration_doctor.repair import backup as backup_module
from migration_doctor.repair import run as run_module
from migration_doctor.repair.backup import checksum, read_backup, write_backup

from .. import helpers as h
from ..conftest import BACKEND, _server_config, add_alias, remove_alias, scratch_database
from .support import Project, assert_one_line, recorded_only

TABLE = "django_migrations"
TS = "2024-01-02 03:04:05"
# Values a column `applied` can hold on each backend that are no ordinary timestamp.
ODD_APPLIED: dict[str, list[Any]] = {
    "sqlite": [
        "",
        "yesterday",
        "2025-13-45 99:00:00",
        "2024-01-02T03:04:05",
        "2024-01-02 03:04:05.5+02:00",
        12345,
        1.5,
        b"\x00\xffbytes",
    ],
    "postgres": ["infinity", "-infinity", "2024-01-02 03:04:05.123456+00"],
    "mysql": ["0000-00-00 00:00:00", "2024-01-02 03:04:05.123456"],
}
# The one a careless hand writes, that Python's datetime cannot read.
MALFORMED = {
    "sqlite": "2025-13-45 99:00:00",
    "postgres": "infinity",
    "mysql": "0000-00-00 00:00:00",
}


def stored(alias: str) -> list[tuple[Any, ...]]:
    """Every row as the database itself renders it: types, NULLs and text exactly."""
    if BACKEND == "sqlite":
        sql = f"SELECT id, quote(app), quote(name), quote(applied) FROM {TABLE} ORDER BY id"
    elif BACKEND == "postgres":
        sql = f"SELECT id, app, name, CAST(applied AS TEXT) FROM {TABLE} ORDER BY id"
    else:
        sql = f"SELECT id, app, name, CAST(applied AS CHAR) FROM `{TABLE}` ORDER BY id"
    return h.sql(alias, sql)


def make_nullable(alias: str) -> None:
    """django_migrations as a hand-made table (or an old dump) may define it: NULLs allowed."""
    if BACKEND == "postgres":
        h.sql(
            alias,
            f"ALTER TABLE {TABLE} ALTER COLUMN app DROP NOT NULL, "
            "ALTER COLUMN name DROP NOT NULL, ALTER COLUMN applied DROP NOT NULL",
        )
    elif BACKEND == "mysql":
        h.sql(
            alias,
            f"ALTER TABLE {TABLE} MODIFY app varchar(255) NULL, MODIFY name varchar(255) NULL, "
            "MODIFY applied datetime(6) NULL",
        )
    else:
        for statement in (
            "CREATE TABLE md_new (id integer NOT NULL PRIMARY KEY AUTOINCREMENT, "
            "app varchar(255) NULL, name varchar(255) NULL, applied datetime NULL)",
            f"INSERT INTO md_new SELECT id, app, name, applied FROM {TABLE}",
            f"DROP TABLE {TABLE}",
            f"ALTER TABLE md_new RENAME TO {TABLE}",
        ):
            h.sql(alias, statement)


def insert(alias: str, app: Any, name: Any, applied: Any) -> None:
    h.sql(
        alias,
        f"INSERT INTO {h.qn(alias, TABLE)} (app, name, applied) VALUES (%s, %s, %s)",
        (app, name, applied),
    )


def restore(alias: str, path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command(
        "migration_doctor_restore", str(path), "--noinput", *args, database=alias, stdout=out
    )
    return out.getvalue()


def refused(alias: str, path: Path, *args: str) -> str:
    with pytest.raises(CommandError) as caught:
        restore(alias, path, *args)
    assert caught.value.returncode == 2
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.fixture
def migrated(fresh_db: str) -> str:
    h.migrate(fresh_db)
    return fresh_db


@pytest.fixture
def odd(migrated: str) -> str:
    """NULLs in every column, and every odd `applied` of the backend, on stale and real rows."""
    make_nullable(migrated)
    insert(migrated, None, "0001_initial", TS)
    insert(migrated, "legacy", None, TS)
    insert(migrated, "legacy", "0002_never_applied", None)
    for i, value in enumerate(ODD_APPLIED[BACKEND]):
        insert(migrated, "catalog", f"0009_odd_{i}", value)
    h.sql(
        migrated,
        f"UPDATE {h.qn(migrated, TABLE)} SET applied = %s WHERE app = 'catalog' "
        "AND name = '0001_initial'",
        (ODD_APPLIED[BACKEND][0],),
    )
    return migrated


@pytest.fixture
def other_db(django_db_blocker: Any, tmp_path: Path) -> Iterator[str]:
    """A second, empty database of the same backend."""
    alias = "rec_other"
    with scratch_database(tmp_path, "md_other") as name, django_db_blocker.unblock():
        add_alias(alias, _server_config(name))
        try:
            yield alias
        finally:
            remove_alias(alias)


# -- item 1: every row, exactly as stored ---------------------------------------------------


def test_the_backup_of_fix_restores_every_row_exactly_as_stored(odd: str, tmp_path: Path) -> None:
    before = stored(odd)
    path = tmp_path / "backup.json"
    status, text = h.fix(odd, "--backup", str(path))
    assert status == 0, text
    assert stored(odd) != before  # the stale rows went
    document = read_backup(path)  # its own restore accepts it
    assert {"id": document["rows"][-1]["id"]} != {}
    nulls = [r for r in document["rows"] if None in (r["app"], r["name"], r["applied"])]
    assert {(r["app"], r["name"]) for r in nulls} == {
        (None, "0001_initial"),
        ("legacy", None),
        ("legacy", "0002_never_applied"),
    }
    assert "None" not in {r["app"] for r in document["rows"]}
    assert "Restored" in restore(odd, path)
    assert stored(odd) == before


def test_write_backup_and_restore_round_trip(odd: str, tmp_path: Path) -> None:
    before = stored(odd)
    path = write_backup(connections[odd], tmp_path / "b.json")
    h.sql(odd, f"DELETE FROM {h.qn(odd, TABLE)}")
    insert(odd, "junk", "0001_junk", TS)
    restore(odd, path)
    assert stored(odd) == before
    insert(odd, "catalog", "0010_after", TS)  # the id sequence goes on after the highest id


def test_a_null_app_is_a_stale_record_and_its_delete_removes_exactly_that_row(
    odd: str,
) -> None:
    report = diagnose(odd)
    [finding] = report.find("stale-record", "", "0001_initial")
    [statement] = finding.fix.commands
    assert "None" not in statement and " IN (" in statement  # by id: `= NULL` matches nothing
    count = len(stored(odd))
    with connections[odd].cursor() as cursor:
        cursor.execute(statement.rstrip(";"))
    rows = stored(odd)
    assert len(rows) == count - 1
    assert all(row[1] not in (None, "NULL") for row in rows)


# -- item 6: a timestamp nobody can parse -----------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_a_malformed_timestamp_is_diagnosed_in_every_format(migrated: str, fmt: str) -> None:
    bad = MALFORMED[BACKEND]
    h.record(migrated, "catalog", "0009_gone")
    h.sql(migrated, f"UPDATE {h.qn(migrated, TABLE)} SET applied = %s", (bad,))
    out = io.StringIO()
    call_command(
        "migration_doctor", "--format", fmt, "--no-color", database=migrated, stdout=out
    )  # a warning only: exit 0
    text = out.getvalue()
    assert "0009_gone" in text, text
    if fmt == "json":
        [finding] = [f for f in json.loads(text)["findings"] if f["kind"] == "stale-record"]
        assert finding["evidence"]["row_applied"] is None
    report = diagnose(migrated)
    assert report.errors == []
    assert [(f.app, f.migration) for f in report.find("stale-record")] == [
        ("catalog", "0009_gone")
    ]


# -- item 2: only where it belongs ----------------------------------------------------------


def test_restore_refuses_another_databases_backup(
    migrated: str, other_db: str, tmp_path: Path
) -> None:
    path = write_backup(connections[migrated], tmp_path / "b.json")
    recorded_only(other_db)
    before = stored(other_db)
    message = refused(other_db, path)
    source = connections[migrated].settings_dict["NAME"]
    assert f"belongs to database {migrated!r}" in message
    assert str(Path(source).resolve() if BACKEND == "sqlite" else source) in message
    assert "--restore-anywhere" in message
    assert stored(other_db) == before
    restore(other_db, path, "--restore-anywhere")
    assert stored(other_db) == stored(migrated)


def test_the_same_database_under_another_alias_is_its_own(
    migrated: str, tmp_path: Path, django_db_blocker: Any
) -> None:
    """Another alias, and for SQLite a `file:` URI through a symlink: the same database."""
    path = write_backup(connections[migrated], tmp_path / "b.json")
    before = stored(migrated)
    h.record(migrated, "catalog", "0009_after_the_backup")
    cfg = dict(connections.settings[migrated])
    if BACKEND == "sqlite":
        link = tmp_path / "link.sqlite3"
        link.symlink_to(cfg["NAME"])
        cfg["NAME"] = f"file:{link}?mode=rw"
    add_alias("rec_same", cfg)
    try:
        restore("rec_same", path)
    finally:
        remove_alias("rec_same")
    assert stored(migrated) == before


@pytest.mark.parametrize("field", ["database", "vendor", "identity"])
def test_an_edited_identity_is_a_checksum_mismatch(
    migrated: str, tmp_path: Path, field: str
) -> None:
    path = write_backup(connections[migrated], tmp_path / "b.json")
    document = json.loads(path.read_text())
    if field == "identity":
        document["identity"]["name"] += "_elsewhere"
    else:
        elsewhere = "sqlite" if BACKEND != "sqlite" else "postgresql"  # rows valid there too
        document[field] = elsewhere if field == "vendor" else "other"
    path.write_text(json.dumps(document))
    assert "checksum mismatch" in refused(migrated, path)
    # Re-signed by a careful hand: still not this database's backup.
    document["sha256"] = checksum(document)
    path.write_text(json.dumps(document))
    if field == "database":  # the alias is only a local name: the identity decides
        restore(migrated, path)
    else:
        assert "--restore-anywhere" in refused(migrated, path)


def test_a_backup_of_another_vendor_is_refused(
    migrated: str, tmp_path: Path, django_db_blocker: Any
) -> None:
    if BACKEND == "sqlite":
        pytest.skip("the SQLite backup is restored into a server on postgres and mysql")
    with scratch_database(tmp_path, "md_lite", backend="sqlite") as name:
        add_alias("rec_lite", _server_config(name, "sqlite"))
        try:
            h.migrate("rec_lite")
            path = write_backup(connections["rec_lite"], tmp_path / "lite.json")
            expected = sorted((a, n) for a, n in h.recorded("rec_lite"))
        finally:
            remove_alias("rec_lite")
    before = stored(migrated)
    message = refused(migrated, path)
    assert f"SQLite file {Path(name).resolve()}" in message and "--restore-anywhere" in message
    assert stored(migrated) == before
    restore(migrated, path, "--restore-anywhere")  # the naive SQLite text, as a server stores it
    assert sorted(h.recorded(migrated)) == expected
    assert diagnose(migrated).errors == []


def test_a_version_1_backup_says_no_database_and_needs_the_flag(
    migrated: str, tmp_path: Path
) -> None:
    rows = [
        {"id": 1, "app": "contenttypes", "name": "0001_initial", "applied": f"{TS}+00:00"},
        {"id": 2, "app": "catalog", "name": "0009_old", "applied": "2024-01-02T03:04:05"},
    ]
    document = {
        "format": "migration_doctor-backup",
        "version": 1,
        "database": migrated,
        "vendor": connections[migrated].vendor,
        "rows": rows,
    }
    document["sha256"] = checksum(document)
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(document))
    assert "names only the alias" in refused(migrated, path)
    restore(migrated, path, "--restore-anywhere")
    assert sorted(h.recorded(migrated)) == [
        ("catalog", "0009_old"),
        ("contenttypes", "0001_initial"),
    ]
    assert diagnose(migrated).find("stale-record", "catalog", "0009_old")


# -- item 3: a disk that fails around the backup ------------------------------------------------


def rows_and_tables(alias: str) -> Any:
    return sorted(h.recorded(alias)), sorted(h.tables(alias))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*.tmp")) if directory.is_dir() else []


@pytest.fixture
def broken(migrated: str) -> str:
    """A stale row of an app that is not installed and a lost row: two row steps."""
    h.record(migrated, "legacy", "0001_initial")
    h.unrecord(migrated, "catalog", "0003_product_sku_stock")
    return migrated


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A real tmpfs (a full or read-only disk that stops root too), or skip."""
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> None:
    with contextlib.suppress(OSError), open(directory / "filler", "wb") as handle:
        while True:
            handle.write(b"\0" * 4096)
            handle.flush()


def test_a_backup_under_a_regular_file_stops_fix_before_any_change(
    broken: str, child_settings: Any, project: Project, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a directory\n")
    before = rows_and_tables(broken)
    for target in ("notes.txt/backup.json", "notes.txt/sub/backup.json"):
        run = project.run(
            child_settings(), "--fix", "--noinput", "--backup", str(tmp_path / target)
        )
        assert_one_line(run, "Cannot write the backup file", "notes.txt is not a directory")
        assert rows_and_tables(broken) == before
    assert leftovers(tmp_path) == []


def test_a_failed_fsync_stops_fix_before_any_change(
    broken: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(backup_module.os, "fsync", full)
    before = rows_and_tables(broken)
    with pytest.raises(CommandError, match="No space left on device") as caught:
        h.fix(broken, "--backup", str(tmp_path / "b.json"))
    assert caught.value.returncode == 2 and "\n" not in str(caught.value)
    assert rows_and_tables(broken) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".json", ".tmp")) == []


@pytest.mark.parametrize(
    ("options", "words"),
    [("size=16k", "No space left on device"), ("ro", "Read-only file system")],
)
def test_a_full_or_read_only_disk_stops_fix_before_any_change(
    broken: str, tmp_path: Path, options: str, words: str
) -> None:
    with tmpfs(tmp_path / "disk", options) as disk:
        if options != "ro":
            fill(disk)
        before = rows_and_tables(broken)
        with pytest.raises(CommandError, match=words) as caught:
            h.fix(broken, "--backup", str(disk / "b.json"))
        assert caught.value.returncode == 2
        assert rows_and_tables(broken) == before
        assert sorted(p.name for p in disk.iterdir()) == ([] if options == "ro" else ["filler"])


def _after_commit(
    broken: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, disk: Path | None
) -> tuple[int, str, str, Path]:
    """--fix whose disk fills right after the backup is written (a real tmpfs when `disk`,
    else every later fsync fails): the ledger copy into the backup cannot be written."""
    path = (disk or tmp_path) / "b.json"
    real = run_module.write_backup

    def write_then_fill(connection: Any, backup_path: Any) -> Path:
        written = real(connection, backup_path)
        if disk is not None:
            fill(disk)
        else:

            def full(fd: int) -> None:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(backup_module.os, "fsync", full)
        return written

    monkeypatch.setattr(run_module, "write_backup", write_then_fill)
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(
            "migration_doctor_fix", "--noinput", "--backup", str(path),
            database=broken, stdout=out, stderr=err,
        )  # fmt: skip
        status = 0
    except SystemExit as exc:
        status = int(exc.code or 0)
    monkeypatch.undo()
    return status, out.getvalue(), err.getvalue(), path


@pytest.mark.parametrize("how", ["tmpfs", "monkeypatched fsync"])
def test_a_disk_that_fills_after_the_commit_keeps_the_report(
    broken: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    with contextlib.ExitStack() as stack:
        disk = (
            stack.enter_context(tmpfs(tmp_path / "disk", "size=64k")) if how == "tmpfs" else None
        )
        status, out, err, path = _after_commit(broken, tmp_path, monkeypatch, disk)
        assert status == 0, (out, err)
        assert f"Backup of django_migrations written to {path}" in out
        assert "Applied 2 step(s)." in out and "After the repair:" in out, out
        [warning] = [line for line in err.splitlines() if line.strip()]
        assert warning.startswith("warning: Cannot write the ledger copy"), err
        assert "No space left on device" in warning and str(path) in warning
        assert leftovers(path.parent) == []
        document = read_backup(path)  # intact: the rows before the repair, no ledger copy
        assert "repairs" not in document
        assert ("legacy", "0001_initial") in {(r["app"], r["name"]) for r in document["rows"]}
    assert len(read_ledger(connections[broken])) == 2  # the ledger table has what was done
    assert diagnose(broken).find("stale-record") == []


def test_a_failed_diagnosis_after_the_repair_is_reported_with_what_was_done(
    broken: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = run_module.diagnose

    def diagnose_then_lose_the_server(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 2:  # under the lock, after the repair
            raise DoctorError("Cannot connect to database 'x' (server): connection lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "diagnose", diagnose_then_lose_the_server)
    path = tmp_path / "b.json"
    status, out = 0, io.StringIO()
    err = io.StringIO()
    try:
        call_command(
            "migration_doctor_fix", "--noinput", "--backup", str(path),
            database=broken, stdout=out, stderr=err,
        )  # fmt: skip
    except SystemExit as exc:
        status = int(exc.code or 0)
    assert status == 2
    assert str(path) in out.getvalue()
    assert "The diagnosis after the repair failed" in err.getvalue()
    # The plan changes rows only, so on every backend (MySQL too) that diagnosis is inside
    # the repair's transaction: nothing committed, the stale rows are still there and no
    # repair is traced anywhere.
    assert "was rolled back: nothing was changed" in err.getvalue()
    assert "Applied 2 step(s)." not in out.getvalue()
    assert read_ledger(connections[broken]) == []
    assert "repairs" not in read_backup(path)
    after = real(broken)
    assert after.find("stale-record", "legacy", "0001_initial")
    assert after.find("table-exists", "catalog", "0003_product_sku_stock")
