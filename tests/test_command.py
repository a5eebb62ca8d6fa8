"""The command's contract: formats, exit statuses, one-line errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from . import helpers as h
from .conftest import BACKEND, add_alias, remove_alias

ROOT = Path(__file__).resolve().parent.parent


def run(alias: str, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("migration_doctor", *args, database=alias, stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_json_contract(fresh_db):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "orders", "0002_order_note")
    h.unrecord(fresh_db, "orders", "0003_order_default_notes")
    h.record(fresh_db, "catalog", "0009_gone")
    status, out = run(fresh_db, "--format", "json")
    assert status == 1
    data = json.loads(out)  # exactly one JSON document on stdout
    assert set(data) == {"version", "database", "vendor", "django", "summary", "findings"}
    assert data["version"] == 1 and data["database"] == fresh_db
    assert data["summary"] == {"errors": 1, "warnings": 1, "infos": 1}
    first = data["findings"][0]
    assert set(first) == {
        "id", "kind", "severity", "app", "migration", "message", "evidence", "fix",
    }  # fmt: skip
    assert first["kind"] == "table-exists" and first["id"] == "migration_doctor.E001"
    assert first["migration"] == "0002_order_note"
    assert first["fix"] == {
        "summary": "Record it without running it.",
        "commands": ["python manage.py migrate orders 0002_order_note --fake"],
    }
    assert [f["severity"] for f in data["findings"]] == ["error", "warning", "info"]


def test_text_output_is_plain_when_not_a_terminal(fresh_db):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
    status, out = run(fresh_db)
    assert status == 1
    assert "\x1b[" not in out
    lines = out.splitlines()
    assert lines[0].startswith(f"migration_doctor: database '{fresh_db}'")
    assert "1 error" in lines[0]
    assert "  E001 table-exists  catalog.0003_product_sku_stock" in lines
    assert "      $ python manage.py migrate catalog 0003_product_sku_stock --fake" in lines
    assert all(line == line.rstrip() for line in lines)


def test_force_color(fresh_db):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
    _, out = run(fresh_db, "--force-color")
    assert "\x1b[" in out


def test_healthy_exit_zero_and_fail_on(fresh_db):
    h.migrate(fresh_db)
    assert run(fresh_db)[0] == 0
    h.record(fresh_db, "catalog", "0009_gone")  # a warning
    assert run(fresh_db)[0] == 0
    assert run(fresh_db, "--fail-on", "warning")[0] == 1
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")  # an error
    assert run(fresh_db)[0] == 1
    assert run(fresh_db, "--fail-on", "never")[0] == 0


def test_unknown_alias_and_app_are_command_errors(fresh_db):
    with pytest.raises(CommandError, match="Unknown database alias 'nope'") as exc:
        call_command("migration_doctor", database="nope")
    assert exc.value.returncode == 2
    with pytest.raises(CommandError, match="No installed app with label 'shop'") as exc:
        call_command("migration_doctor", "shop", database=fresh_db)
    assert exc.value.returncode == 2


def test_unreachable_server_is_one_line(django_db_blocker):
    if BACKEND == "sqlite":
        cfg = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/nonexistent/dir/db.sqlite3"}
    else:
        from testproject.settings import database

        cfg = database(BACKEND, "whatever")
        cfg["PORT"] = "1"  # nothing listens there: refused at once
    with django_db_blocker.unblock():
        add_alias("unreachable", cfg)
        try:
            with pytest.raises(
                CommandError, match="Cannot connect to database 'unreachable'"
            ) as e:
                call_command("migration_doctor", database="unreachable")
        finally:
            remove_alias("unreachable")
    assert e.value.returncode == 2
    assert "\n" not in str(e.value)


def test_manage_py_exit_statuses_and_stderr(tmp_path):
    """Through manage.py as users run it: status 2 and one line on stderr, no traceback."""
    env = {**os.environ, "MIGRATION_DOCTOR_DB": "sqlite"}
    env["MIGRATION_DOCTOR_SQLITE"] = str(tmp_path / "cli.sqlite3")
    manage = [sys.executable, str(ROOT / "testproject" / "manage.py")]
    bad = subprocess.run(
        [*manage, "migration_doctor", "--database", "nope"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "CommandError: Unknown database alias 'nope' (DATABASES has: default)."
    ]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
    ok = subprocess.run([*manage, "migration_doctor"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 errors, 0 warnings, 0 infos" in ok.stdout
