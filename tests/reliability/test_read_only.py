"""Diagnosis with credentials that cannot write: a PostgreSQL role and a MariaDB user granted
SELECT only, and an SQLite file opened read-only (`mode=ro`; chmod does not stop root).

Any write, DDL or `CREATE TABLE django_migrations` would fail on these connections, so a
diagnosis that completes with the same findings as the owner's proves it wrote nothing; the
statements are captured too and must all be reads. Through manage.py (with the import-time
watch child) the command exits 0/1 with nothing on stderr, and `--fix --dry-run` plans the
repair without a write.

Owner credentials: tests/test_diagnose.py::test_diagnosis_issues_only_reads and
tests/test_graph_findings.py::test_diagnose_only_reads capture the statements, and
tests/test_ledger.py::test_diagnosis_never_creates_the_ledger.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from migration_doctor.diagnose import diagnose

from .. import helpers as h
from ..conftest import BACKEND, _admin_execute, _server_config, add_alias, remove_alias
from ..test_graph_findings import is_read_only
from .support import Project, db_config

BROKEN_KINDS = {
    ("table-exists", "catalog", "0003_product_sku_stock"),
    ("missing-schema", "orders", "0001_initial"),
    ("stale-record", "catalog", "0009_gone"),
}


def _pg_in(database: str, *statements: str) -> None:
    """As the superuser, inside `database` (grants on its schema are per database)."""
    import psycopg

    cfg = _server_config(database)
    with psycopg.connect(
        host=cfg["HOST"],
        port=cfg["PORT"],
        user=cfg["USER"],
        password=cfg["PASSWORD"],
        dbname=database,
        autocommit=True,
        connect_timeout=5,
    ) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.fixture
def reader(fresh_db: str) -> Iterator[str]:
    """A second alias on the fresh database whose credentials can only read it."""
    alias = f"reader_{fresh_db}"
    owner = db_config(fresh_db)
    name = str(owner["NAME"])
    role = f"md_ro_{uuid.uuid4().hex[:10]}"
    if BACKEND == "postgres":
        _admin_execute(f'CREATE ROLE "{role}" LOGIN')
        _pg_in(
            name,
            # Before PostgreSQL 15 every role may create in `public` and make temp tables.
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            f'REVOKE TEMPORARY ON DATABASE "{name}" FROM PUBLIC',
            f'GRANT CONNECT ON DATABASE "{name}" TO "{role}"',
            f'GRANT USAGE ON SCHEMA public TO "{role}"',
            f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"',
            # Tables the test creates later (migrate, the damage) are readable too.
            f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO "{role}"',
        )
        cfg = {**owner, "USER": role, "PASSWORD": ""}
    elif BACKEND == "mysql":
        password = uuid.uuid4().hex
        _admin_execute(f"CREATE USER '{role}'@'%' IDENTIFIED BY '{password}'")
        _admin_execute(f"GRANT SELECT ON `{name}`.* TO '{role}'@'%'")
        cfg = {**owner, "USER": role, "PASSWORD": password}
    else:
        cfg = {**owner, "NAME": f"file:{name}?mode=ro"}
    add_alias(alias, cfg)
    try:
        yield alias
    finally:
        remove_alias(alias)
        if BACKEND == "postgres":
            _pg_in(name, f'DROP OWNED BY "{role}"')
            _admin_execute(f'DROP ROLE IF EXISTS "{role}"')
        elif BACKEND == "mysql":
            _admin_execute(f"DROP USER IF EXISTS '{role}'@'%'")


def make_state(alias: str, state: str) -> None:
    if state == "empty":
        return
    h.migrate(alias)
    if state == "broken":
        h.unrecord(alias, "catalog", "0003_product_sku_stock")
        h.drop_table(alias, "order_lines")
        h.record(alias, "catalog", "0009_gone")


def fingerprint(alias: str) -> Any:
    """Rows, tables and columns; for SQLite the file's bytes themselves."""
    if BACKEND == "sqlite":
        return hashlib.sha256(Path(connections[alias].settings_dict["NAME"]).read_bytes()).digest()
    connection = connections[alias]
    with connection.cursor() as cursor:
        names = sorted(connection.introspection.table_names(cursor))
        schema = {
            t: [c.name for c in connection.introspection.get_table_description(cursor, t)]
            for t in names
        }
    rows = (
        sorted(h.sql(alias, "SELECT id, app, name, applied FROM django_migrations"))
        if "django_migrations" in names
        else None
    )
    return schema, rows


def findings(report: Any) -> list[tuple[Any, ...]]:
    return sorted(
        (f.kind, f.app or "", f.migration or "", repr(sorted(f.evidence.items())))
        for f in report.findings
    )


def test_the_reader_really_cannot_write(fresh_db: str, reader: str) -> None:
    from django.db import DatabaseError

    h.migrate(fresh_db)
    for statement in (
        f"CREATE TABLE {h.qn(reader, 'md_probe')} (id integer)",
        f"DELETE FROM {h.qn(reader, 'django_migrations')}",
    ):
        with pytest.raises(DatabaseError):
            h.sql(reader, statement)
        connections[reader].close()  # a failed statement may leave the transaction aborted
    assert "md_probe" not in h.tables(fresh_db)
    assert len(h.recorded(fresh_db)) > 10


@pytest.mark.parametrize("state", ["empty", "migrated", "broken"])
def test_read_only_credentials_diagnose_like_the_owner(
    fresh_db: str, reader: str, state: str
) -> None:
    make_state(fresh_db, state)
    before = fingerprint(fresh_db)
    expected = diagnose(fresh_db)
    connections[reader].ensure_connection()  # the driver's session set-up is not the doctor's
    reports = []
    sent = h.statements_of(reader, lambda: reports.append(diagnose(reader)))
    [report] = reports
    assert sent
    assert [s for s in sent if not is_read_only(s)] == []
    assert findings(report) == findings(expected)
    if state == "broken":
        assert {(f.kind, f.app, f.migration) for f in report.findings} >= BROKEN_KINDS
    if state == "empty":
        assert h.tables(fresh_db) == []  # no django_migrations, no ledger
    assert fingerprint(fresh_db) == before


@pytest.mark.parametrize(("state", "status"), [("empty", 0), ("migrated", 0), ("broken", 1)])
def test_manage_py_with_read_only_credentials(
    fresh_db: str, reader: str, project: Project, state: str, status: int
) -> None:
    make_state(fresh_db, state)
    before = fingerprint(fresh_db)
    settings = project.settings({"default": db_config(reader)})
    run = project.run(settings)  # with the import-time watch child, as users run it
    assert run.returncode == status, run
    assert run.stderr_lines == [], run
    if state == "broken":
        for _, app, name in BROKEN_KINDS:
            assert f"{app}.{name}" in run.stdout, run
        dry = project.run(settings, "--fix", "--dry-run")
        assert dry.returncode == 0, dry
        assert "Nothing was changed (--dry-run)." in dry.stdout, dry
        assert "Delete the row of catalog.0009_gone" in dry.stdout, dry
    assert fingerprint(fresh_db) == before
    assert not project.base_dir.exists()  # no backup either


@pytest.mark.skipif(BACKEND != "sqlite", reason="the SQLite file is the evidence")
@pytest.mark.parametrize("who", ["owner", "reader"])
def test_sqlite_diagnosis_leaves_the_file_and_its_directory_as_they_were(
    fresh_db: str, reader: str, project: Project, who: str
) -> None:
    """The same bytes, the same modification time, and no -journal, -wal or lock file
    beside the database after `manage.py migration_doctor`, even with write access."""
    make_state(fresh_db, "broken")
    path = Path(connections[fresh_db].settings_dict["NAME"])
    connections[fresh_db].close()
    beside = sorted(p.name for p in path.parent.iterdir())
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    run = project.run(
        project.settings({"default": db_config(reader if who == "reader" else fresh_db)})
    )
    assert run.returncode == 1, run
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in path.parent.iterdir()) == beside


WRITE_DENIED = (
    "BUG: --fix with credentials that cannot write ends in a traceback (exit 1): the backup is "
    "written, then CREATE TABLE migration_doctor_ledger is denied (PostgreSQL, MariaDB); on "
    "SQLite the `file:` URI name breaks the lock file path first"
)


def test_fix_with_read_only_credentials_is_one_line_and_changes_nothing(
    fresh_db: str, reader: str, project: Project
) -> None:
    make_state(fresh_db, "broken")
    before = fingerprint(fresh_db)
    run = project.run(project.settings({"default": db_config(reader)}), "--fix", "--noinput")
    assert fingerprint(fresh_db) == before
    assert run.returncode == 2, run
    assert len(run.stderr_lines) == 1 and "Traceback" not in run.stderr, run
