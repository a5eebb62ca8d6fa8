"""A SQLite file that does not exist yet: a fresh database, diagnosed without creating it.

A newcomer runs the doctor before the first `migrate`: the report is that of an empty
database (everything unapplied, exit 0) plus the info `database-missing` (I005) naming the
file, so that a typo in NAME stays visible. Nothing appears on disk: no database, no
journal, no lock file. `--fix` (and `--fix --dry-run`) refuse in one line, exit 2: run
migrate first. In a child process: tests/reliability/test_bad_input.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity

from . import helpers as h
from .conftest import BACKEND, add_alias, remove_alias

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite files")


def alias_for(name: str, alias: str) -> Iterator[str]:
    add_alias(alias, {"ENGINE": "django.db.backends.sqlite3", "NAME": name})
    try:
        yield alias
    finally:
        remove_alias(alias)


@pytest.fixture
def missing(tmp_path: Path, django_db_blocker: Any) -> Iterator[str]:
    """An alias whose NAME is a file that does not exist, in a directory that does not."""
    with django_db_blocker.unblock():
        yield from alias_for(str(tmp_path / "not" / "yet" / "db.sqlite3"), "rec_missing")


@pytest.fixture
def empty(tmp_path: Path, django_db_blocker: Any) -> Iterator[str]:
    (tmp_path / "empty.sqlite3").touch()
    with django_db_blocker.unblock():
        yield from alias_for(str(tmp_path / "empty.sqlite3"), "rec_empty")


def on_disk(tmp_path: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))


def triples(report: Any) -> list[tuple[str, str | None, str | None]]:
    return sorted((f.kind, f.app, f.migration) for f in report.findings)


def test_a_missing_file_is_diagnosed_as_a_fresh_database(
    missing: str, empty: str, tmp_path: Path
) -> None:
    files = on_disk(tmp_path)
    report = diagnose(missing)
    assert on_disk(tmp_path) == files  # nothing created: no file, no directory, no journal
    [info] = report.find("database-missing")
    assert info.id == "migration_doctor.I005" and info.severity == Severity.INFO
    path = tmp_path / "not" / "yet" / "db.sqlite3"
    assert str(path) in info.message
    assert info.evidence == {"alias": missing, "name": str(path), "path": str(path)}
    assert info.fix.commands == (f"python manage.py migrate --database {missing}",)
    # Exactly what an empty database reports, plus the info.
    assert triples(report) == sorted([*triples(diagnose(empty)), ("database-missing", None, None)])
    assert report.find("unapplied") and not report.fails("warning")
    assert report.queries == 0


def test_a_relative_name_is_named_absolute(
    tmp_path: Path, django_db_blocker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in a relative NAME: the message says which file was looked for."""
    monkeypatch.chdir(tmp_path)
    with django_db_blocker.unblock():
        for alias in alias_for("db.sqlte3", "rec_relative"):
            [info] = diagnose(alias).find("database-missing")
    assert str(tmp_path / "db.sqlte3") in info.message
    assert info.evidence["name"] == "db.sqlte3"
    assert not (tmp_path / "db.sqlte3").exists()


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_every_format_exits_0_and_names_the_file(missing: str, tmp_path: Path, fmt: str) -> None:
    out = io.StringIO()
    call_command(
        "migration_doctor",
        "--format",
        fmt,
        "--fail-on",
        "warning",
        "--no-color",
        database=missing,
        stdout=out,
    )  # fmt: skip: no SystemExit, exit 0
    text = out.getvalue()
    assert "db.sqlite3" in text
    if fmt == "json":
        [info] = [f for f in json.loads(text)["findings"] if f["kind"] == "database-missing"]
        assert info["id"] == "migration_doctor.I005"
    elif fmt == "text":
        assert "I005 database-missing" in text
    assert not (tmp_path / "not").exists()


def test_app_labels_do_not_hide_it(missing: str) -> None:
    report = diagnose(missing, ["catalog"])
    assert report.find("database-missing")
    assert {f.app for f in report.find("unapplied")} == {"catalog"}


@pytest.mark.parametrize("dry_run", [False, True], ids=["fix", "dry-run"])
def test_fix_refuses_and_creates_nothing(missing: str, tmp_path: Path, dry_run: bool) -> None:
    args = ["--fix", "--noinput", "--backup", str(tmp_path / "b.json")]
    with pytest.raises(CommandError, match="does not exist yet: run migrate first") as caught:
        call_command(
            "migration_doctor", *args, *(["--dry-run"] if dry_run else []), database=missing
        )
    assert caught.value.returncode == 2
    assert on_disk(tmp_path) == []  # no database, no lock file, no backup


def test_after_migrate_the_info_is_gone(missing: str, tmp_path: Path) -> None:
    (tmp_path / "not" / "yet").mkdir(parents=True)  # Django creates the file, not its directory
    h.migrate(missing)
    report = diagnose(missing)
    assert report.find("database-missing") == [] and report.findings == []


def test_locked_migrate_creates_the_file_as_migrate_does(tmp_path):
    """`--migrate` is Django's migrate under the lock: on a fresh project it creates the
    database, as the first `migrate` does."""
    import subprocess
    import sys

    from . import helpers as h

    db = tmp_path / "new.sqlite3"
    env = {**__import__("os").environ, "MIGRATION_DOCTOR_SQLITE": str(db)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, str(h.TESTPROJECT / "manage.py"), "migration_doctor_migrate"],
        env={**env, "MIGRATION_DOCTOR_DB": "sqlite"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert db.exists() and db.stat().st_size > 0
