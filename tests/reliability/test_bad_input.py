"""Bad input through `manage.py migration_doctor` in a real process: one clear line on stderr,
exit status 2, no traceback (unless --traceback), and a bounded wait on a dead server.

In-process coverage elsewhere: tests/test_command.py (unknown alias and app label, a refused
port), tests/test_graph_findings.py (load errors and cycles, finding by finding),
tests/test_repair.py (--restore refusing missing/truncated/edited files).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from migration_doctor.repair.backup import checksum, write_backup
from migration_doctor.snapshot import CONNECT_TIMEOUT

from .. import helpers as h
from ..conftest import BACKEND
from ..test_graph_findings import (
    AFTER_0003,
    TAG_COLOUR,
    TAG_ORDERING,
    catalog_with,
    package_dir,
)
from ..test_graph_findings import migration_source as source_of
from .support import (
    FAST,
    Project,
    assert_one_line,
    db_config,
    free_port,
    recorded_only,
    refuses,
    silent_server,
)

SERVER = pytest.mark.skipif(
    BACKEND == "sqlite", reason="SQLite has no server to be unreachable (see the SQLite tests)"
)
# -- unknown names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuchapp"], "CommandError: No installed app with label 'nosuchapp'."),
        (
            ["--fix", "--noinput", "catalog", "nosuchapp"],
            "CommandError: No installed app with label 'nosuchapp'.",
        ),
        (
            ["--database", "nope"],
            "CommandError: Unknown database alias 'nope' (DATABASES has: default).",
        ),
        (
            ["--fix", "--noinput", "--database", "nope"],
            "CommandError: Unknown database alias 'nope' (DATABASES has: default).",
        ),
    ],
    ids=["app", "app-with-fix", "alias", "alias-with-fix"],
)
def test_unknown_app_label_or_alias(
    fresh_db: str, child_settings: Any, project: Project, args: list[str], message: str
) -> None:
    recorded_only(fresh_db)  # --fix would have plenty to do
    rows = h.recorded(fresh_db)
    run = project.run(child_settings(), *args)
    assert assert_one_line(run) == message
    assert run.seconds < FAST, run
    assert h.recorded(fresh_db) == rows
    assert not project.base_dir.exists()  # no backup: nothing was about to be written


# -- unreachable servers ----------------------------------------------------------------------


def _unreachable(alias: str, how: str) -> tuple[dict[str, Any], str]:
    """Connection settings that cannot work, and the server's (or the driver's) words."""
    port = int(db_config(alias)["PORT"])
    if how == "wrong host":
        # Another loopback address: the servers listen on 127.0.0.1 only.
        if not refuses("127.0.0.2", port):
            pytest.skip(f"something listens on 127.0.0.2:{port}")
        return db_config(alias, HOST="127.0.0.2"), "127.0.0.2"
    if how == "server down":
        return db_config(alias, PORT=str(free_port())), "Cannot connect"
    if how == "wrong password":
        if BACKEND == "postgres":
            # The local server trusts 127.0.0.1 (no password is checked): a user it does not
            # know is refused at the same point of the handshake.
            return db_config(alias, USER="md_no_such_role"), 'role "md_no_such_role"'
        return db_config(alias, PASSWORD="not-the-password"), "Access denied"
    if how == "wrong database":
        name = "md_no_such_database"
        return db_config(alias, NAME=name), name
    raise AssertionError(how)


@SERVER
@pytest.mark.parametrize("how", ["wrong host", "server down", "wrong password", "wrong database"])
def test_unreachable_server_is_one_line(
    fresh_db: str, project: Project, how: str, settings: Any
) -> None:
    cfg, words = _unreachable(fresh_db, how)
    run = project.run(project.settings({"default": cfg}))
    line = assert_one_line(run, "Cannot connect to database 'default'", words)
    assert run.seconds < FAST, run
    assert "\n" not in line


@SERVER
@pytest.mark.parametrize(
    "args",
    [
        ["--fix", "--noinput"],
        ["--fix", "--dry-run"],
        ["--restore", "{backup}", "--noinput"],
        ["--history"],
        ["--migrate"],
        ["--deploy"],
        ["--format", "json"],
        ["--compare", "default"],
        ["--write-baseline", "{baseline}"],
        ["--all-databases"],
    ],
    ids=lambda args: " ".join(args),
)
def test_every_mode_reports_an_unreachable_server_in_one_line(
    fresh_db: str, project: Project, tmp_path: Path, args: list[str]
) -> None:
    recorded_only(fresh_db)
    backup = write_backup(connections[fresh_db], tmp_path / "backup.json")
    cfg, _ = _unreachable(fresh_db, "server down")
    argv = [a.format(backup=backup, baseline=tmp_path / "baseline.json") for a in args]
    run = project.run(project.settings({"default": cfg}), *argv)
    assert run.returncode == 2, run
    assert "Traceback" not in run.stderr, run
    [line] = run.stderr_lines
    # --all-databases goes on with the other aliases: the line has no CommandError prefix.
    assert line.startswith(("CommandError: Cannot connect", "Cannot connect")), run
    assert run.seconds < FAST, run
    assert not (tmp_path / "baseline.json").exists()
    assert not project.base_dir.exists()


@SERVER
def test_unreachable_server_with_traceback_shows_it(fresh_db: str, project: Project) -> None:
    cfg, _ = _unreachable(fresh_db, "server down")
    run = project.run(project.settings({"default": cfg}), "--traceback")
    assert run.returncode != 0, run
    assert "Traceback (most recent call last)" in run.stderr, run
    # The driver's own exception is chained under the doctor's one line.
    assert "The above exception was the direct cause" in run.stderr, run
    assert run.stderr_lines[-1].startswith("django.core.management.base.CommandError: "), run


@SERVER
def test_unreachable_server_with_traceback_keeps_status_2(fresh_db: str, project: Project) -> None:
    cfg, _ = _unreachable(fresh_db, "server down")
    run = project.run(project.settings({"default": cfg}), "--traceback")
    assert run.returncode == 2, run


@SERVER
def test_silent_server_is_cut_off_by_the_default_connect_timeout(
    fresh_db: str, project: Project
) -> None:
    """A server that accepts and never answers: without a timeout the driver waits forever.
    The settings give none, so the doctor's default bound applies."""
    with silent_server() as port:
        cfg = db_config(fresh_db, PORT=str(port))
        cfg["OPTIONS"].pop("connect_timeout", None)
        run = project.run(project.settings({"default": cfg}), timeout=60)
    assert_one_line(run, "Cannot connect to database 'default'")
    assert CONNECT_TIMEOUT - 1 <= run.seconds < CONNECT_TIMEOUT + 5, run


@SERVER
def test_silent_server_respects_the_configured_connect_timeout(
    fresh_db: str, project: Project
) -> None:
    with silent_server() as port:
        cfg = db_config(fresh_db, PORT=str(port))
        cfg["OPTIONS"]["connect_timeout"] = 2
        run = project.run(project.settings({"default": cfg}), "--fix", "--noinput", timeout=60)
    assert_one_line(run, "Cannot connect to database 'default'")
    assert 1.5 <= run.seconds < 2 + FAST, run
    assert not project.base_dir.exists()


# -- SQLite files that are not there or not databases -------------------------------------------


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite files")
def test_missing_sqlite_file_is_a_fresh_database_and_not_created(
    tmp_path: Path, project: Project
) -> None:
    """Before the first migrate: diagnosed as empty (exit 0, the file named); --fix refuses
    in one line. More: tests/test_missing_sqlite.py."""
    missing = tmp_path / "missing.sqlite3"
    settings = project.settings(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(missing)}}
    )
    run = project.run(settings)
    assert run.returncode == 0, run
    assert run.stderr_lines == [], run
    assert "I005 database-missing" in run.stdout and str(missing) in run.stdout, run
    assert_one_line(project.run(settings, "--fix", "--noinput"), "does not exist", "migrate")
    assert not missing.exists()  # opening it would have created an empty database


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite files")
def test_file_that_is_not_a_database_is_one_line(tmp_path: Path, project: Project) -> None:
    garbage = tmp_path / "notes.sqlite3"
    garbage.write_text("these are not the droids you are looking for\n" * 100)
    settings = project.settings(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(garbage)}}
    )
    assert_one_line(project.run(settings), "not a database")


# -- no django_migrations table: not an error -------------------------------------------------


def test_database_without_django_migrations_is_nothing_applied(
    fresh_db: str, child_settings: Any, project: Project
) -> None:
    run = project.run(child_settings())
    assert run.returncode == 0, run
    assert run.stderr_lines == [], run
    assert "0 errors, 0 warnings" in run.stdout, run
    assert "unapplied migrations without schema present" in run.stdout, run
    assert h.tables(fresh_db) == []  # no CREATE TABLE django_migrations, nothing at all
    if BACKEND == "sqlite":
        assert Path(connections[fresh_db].settings_dict["NAME"]).stat().st_size == 0


# -- migration modules that do not load, cycles ---------------------------------------------------

BROKEN_SYNTAX = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_product_sku_stock")]
    operations = [migrations.RunSQL("SELECT 1",]
"""
BROKEN_IMPORT = """\
from django.db import migrations
from catalog.helpers import no_such_helper


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_product_sku_stock")]
    operations = []
"""


@pytest.mark.parametrize("problem", ["syntax error", "import error", "cycle"])
def test_broken_migration_modules_are_findings_and_the_rest_is_diagnosed(
    fresh_db: str,
    migration_package: Any,
    child_settings: Any,
    project: Project,
    problem: str,
) -> None:
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "orders", "0003_order_default_notes")
    h.unrecord(fresh_db, "orders", "0002_order_note")  # another app's problem, to be found
    if problem == "cycle":
        files = {
            "0004_a": source_of([AFTER_0003, ("catalog", "0005_b")], TAG_ORDERING),
            "0005_b": source_of([("catalog", "0004_a")], TAG_COLOUR),
        }
    else:
        files = {"0004_broken": BROKEN_SYNTAX if problem == "syntax error" else BROKEN_IMPORT}
    module = migration_package("catalog", catalog_with(**files))
    run = project.run(child_settings(), "--format", "json", "--skip-import-watch")
    assert run.returncode == 1, run
    assert run.stderr_lines == [], run
    report = json.loads(run.stdout)
    findings = {(f["kind"], f["app"], f["migration"]): f for f in report["findings"]}
    package = package_dir(module)
    if problem == "cycle":
        [cycle] = [f for f in report["findings"] if f["kind"] == "circular-dependency"]
        assert sorted(cycle["evidence"]["files"]) == [
            str(package / "0004_a.py"),
            str(package / "0005_b.py"),
        ]
    else:
        finding = findings["migration-load-error", "catalog", "0004_broken"]
        assert finding["evidence"]["file"] == str(package / "0004_broken.py")
        line = 6 if problem == "syntax error" else 2
        assert finding["evidence"]["line"] == line
    # The rest of the project is still diagnosed.
    assert ("table-exists", "orders", "0002_order_note") in findings


# -- --restore with a backup that cannot be trusted -----------------------------------------------


def _resign(document: dict[str, Any]) -> None:
    """Recompute the checksum, as a tool (or a careful hand) rewriting the file would."""
    document["sha256"] = checksum(document)


def _damage(path: Path, how: str) -> None:
    text = path.read_text()
    document = json.loads(text)
    if how == "missing":
        path.unlink()
    elif how == "empty":
        path.write_text("")
    elif how == "truncated":
        path.write_text(text[: len(text) // 2])
    elif how == "edited":
        path.write_text(text.replace("0002_tags", "0002_tagz", 1))
    elif how == "rows dropped":
        document["rows"] = document["rows"][:1]  # checksum left as it was
        path.write_text(json.dumps(document))
    elif how == "not a backup":
        path.write_text(json.dumps({"rows": document["rows"]}))
    elif how == "a directory":
        path.unlink()
        path.mkdir()
    else:
        row = document["rows"][0]
        if how == "id not a number":
            row["id"] = "1; DROP TABLE django_migrations"
        elif how == "applied not a date":
            # A server stores timestamps only. SQLite keeps any text (a backup must put
            # 'yesterday' back, tests/reliability/test_backup_roundtrip.py): there only a
            # value no column can hold is malformed.
            row["applied"] = "yesterday" if BACKEND != "sqlite" else ["yesterday"]
        elif how == "applied missing":
            del row["applied"]
        elif how == "duplicate ids":
            document["rows"][1]["id"] = row["id"]
        else:
            raise AssertionError(how)
        _resign(document)
        path.write_text(json.dumps(document))


UNVALIDATED = (
    "BUG: read_backup() checks the checksum, id, app and name but not `applied` nor unique "
    "ids; a re-signed backup with such a row ends in a traceback (exit 1) instead of being "
    "refused"
)


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("missing", "does not exist"),
        ("empty", "not valid JSON"),
        ("truncated", "not valid JSON"),
        ("edited", "checksum mismatch"),
        ("rows dropped", "checksum mismatch"),
        ("not a backup", "is not a migration_doctor backup"),
        ("a directory", "Backup file"),
        ("id not a number", "malformed row"),
        pytest.param("applied not a date", "malformed row"),
        pytest.param("applied missing", "malformed row"),
        pytest.param("duplicate ids", ""),
    ],
)  # fmt: skip
def test_restore_refuses_an_untrustworthy_backup_before_any_write(
    fresh_db: str, child_settings: Any, project: Project, tmp_path: Path, how: str, words: str
) -> None:
    recorded_only(fresh_db)
    backup = write_backup(connections[fresh_db], tmp_path / "backup.json")
    h.record(fresh_db, "catalog", "0009_after_the_backup")
    before = sorted(h.sql(fresh_db, "SELECT id, app, name, applied FROM django_migrations"))
    _damage(backup, how)
    run = project.run(child_settings(), "--restore", str(backup), "--noinput")
    after = sorted(h.sql(fresh_db, "SELECT id, app, name, applied FROM django_migrations"))
    assert after == before
    assert_one_line(run, words)
