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
from .conftest import BACKEND, add_alias, remove_alias, scratch_database

ROOT = Path(__file__).resolve().parent.parent


run = h.doctor


def test_json_contract(fresh_db):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "orders", "0002_order_note")
    h.unrecord(fresh_db, "orders", "0003_order_default_notes")
    h.record(fresh_db, "catalog", "0009_gone")
    status, out = run(fresh_db, "--format", "json")
    assert status == 1
    data = json.loads(out)  # exactly one JSON document on stdout
    assert set(data) == {
        "version", "database", "vendor", "django", "summary", "findings", "positions",
    }  # fmt: skip
    # Where each app's schema stands when that is not where its rows say.
    assert data["positions"] == [
        {
            "app": "orders",
            "rows": "0001_initial",
            "schema": ["0003_order_default_notes"],
            "ambiguous": False,
            "mismatches": 0,
            "through": ["0002_order_note", "0003_order_default_notes"],
            "shown": ["0002_order_note"],
        }
    ]
    assert data["version"] == 1 and data["database"] == fresh_db
    assert data["summary"] == {"errors": 1, "warnings": 1, "infos": 1}
    first = data["findings"][0]
    assert set(first) == {
        "id", "kind", "severity", "app", "migration", "message", "evidence", "fix", "known",
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
    assert run(fresh_db, watch=True)[0] == 0
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


def test_unreachable_server_is_one_line(django_db_blocker, tmp_path):
    if BACKEND == "sqlite":
        # A file that does not exist is a fresh database (tests/test_missing_sqlite.py); one
        # that cannot be opened, a directory, is SQLite's "unreachable".
        cfg = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path)}
    else:
        from testproject.settings import database

        cfg = database(BACKEND, "whatever")
        cfg["PORT"] = "1"  # nothing listens there: refused at once
    with django_db_blocker.unblock():
        add_alias("unreachable", cfg)
        try:
            expected = "Cannot connect to database 'unreachable'"
            with pytest.raises(CommandError, match=expected) as e:
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


def test_deploy_lists_pending_and_fails_on_stale_rows(fresh_db):
    h.migrate(fresh_db, "catalog", "0002_tags")
    status, out = run(fresh_db, "--deploy")
    assert status == 0, out
    assert "migrate will apply" in out
    assert "  catalog.0003_product_sku_stock" in out.splitlines()
    data = json.loads(run(fresh_db, "--deploy", "--format", "json")[1])
    assert "catalog.0003_product_sku_stock" in data["pending"]
    h.record(fresh_db, "catalog", "0009_removed_by_the_release")
    assert run(fresh_db)[0] == 0  # a warning normally
    assert run(fresh_db, "--deploy")[0] == 1  # a blocker before a deploy


def test_deploy_fails_when_migrate_would_fail(fresh_db):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "orders", "0002_order_note")
    h.unrecord(fresh_db, "orders", "0003_order_default_notes")
    status, out = run(fresh_db, "--deploy")
    assert status == 1
    assert "orders.0002_order_note" in out and "E001 table-exists" in out


def test_baseline_adopts_known_findings(fresh_db, tmp_path):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "orders", "0002_order_note")
    h.unrecord(fresh_db, "orders", "0003_order_default_notes")
    baseline = tmp_path / "baseline.json"
    status, out = run(fresh_db, "--write-baseline", str(baseline))
    assert status == 0 and str(baseline) in out
    status, out = run(fresh_db, "--baseline", str(baseline))
    assert status == 0, out
    assert "(known, in the baseline)" in out
    data = json.loads(run(fresh_db, "--baseline", str(baseline), "--format", "json")[1])
    assert [f["known"] for f in data["findings"] if f["kind"] == "table-exists"] == [True]
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")  # something new
    assert run(fresh_db, "--baseline", str(baseline))[0] == 1


def test_ignore_tables_and_apps_setting(fresh_db, settings):
    h.migrate(fresh_db)
    h.sql(fresh_db, f"CREATE TABLE {h.qn(fresh_db, 'postgis_spatial_ref')} (id integer)")
    h.sql(fresh_db, f"CREATE TABLE {h.qn(fresh_db, 'keep_me')} (id integer)")
    h.record(fresh_db, "orders", "0009_gone")
    settings.MIGRATION_DOCTOR = {"IGNORE_TABLES": ["postgis_*"], "IGNORE_APPS": ["orders"]}
    data = json.loads(run(fresh_db, "--format", "json")[1])
    kinds = {(f["kind"], f["app"]) for f in data["findings"]}
    assert ("stale-record", "orders") not in kinds
    [untracked] = [f for f in data["findings"] if f["kind"] == "untracked-table"]
    assert [t["table"] for t in untracked["evidence"]["tables"]] == ["keep_me"]
    settings.MIGRATION_DOCTOR = {"IGNORE_TABLE": []}
    with pytest.raises(Exception, match="Unknown MIGRATION_DOCTOR key"):
        run(fresh_db)


def test_compare_two_databases(fresh_db, django_db_blocker, tmp_path):
    """Staging against production: different histories and different schema."""
    from django.db import connections

    other = "cmp_" + fresh_db
    cfg = dict(connections.settings[fresh_db])
    h.migrate(fresh_db)
    with scratch_database(tmp_path, "md_cmp") as second:
        add_alias(other, {**cfg, "NAME": second})
        try:
            h.migrate(other, "catalog", "0002_tags")
            h.remove_field(fresh_db, "catalog.Category", "slug")
            status, out = run(fresh_db, "--compare", other)
            assert status == 1
            assert f"Recorded only in '{fresh_db}'" in out
            assert "  catalog.0003_product_sku_stock" in out.splitlines()
            data = json.loads(run(fresh_db, "--compare", other, "--format", "json")[1])
            assert "catalog.0003_product_sku_stock" in data["only_in"][fresh_db]
            [schema] = data["schema"]
            assert schema["migration"] == "catalog.0001_initial"
            assert schema[f"missing_in_{fresh_db}"] == ["column catalog_category.slug"]
            assert schema[f"missing_in_{other}"] == []
            assert run(other, "--compare", other)[0] == 0
        finally:
            remove_alias(other)


class OnlyOn:
    """A router that allows migrations on these aliases only."""

    def __init__(self, *aliases: str) -> None:
        self.aliases = aliases

    def allow_migrate(self, db, app_label, **hints):
        return db in self.aliases


def test_all_databases_reports_each_migrated_alias(fresh_db, settings):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
    from django.db import router

    routers = router.routers
    router.routers = [OnlyOn(fresh_db)]
    try:
        out = io.StringIO()
        with pytest.raises(SystemExit) as exited:
            call_command("migration_doctor", "--all-databases", "--format", "json", stdout=out)
        assert exited.value.code == 1
        data = json.loads(out.getvalue())  # one object, as every mode prints
        assert set(data) == {"version", "targets", "summary"}
        targets = data["targets"]
        assert [d["database"] for d in targets] == [fresh_db]  # "default" takes no migrations
        assert targets[0]["summary"]["errors"] == 1
        assert data["summary"] == {
            "targets": 1,
            "failed": [fresh_db],
            "unreachable": [],
            "errors": 1,
            "warnings": 0,
            "infos": 0,
        }
        with pytest.raises(SystemExit) as exited:
            call_command("migration_doctor", "--all-databases", stdout=io.StringIO())
        assert exited.value.code == 1
    finally:
        router.routers = routers


def test_format_github(fresh_db):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
    status, out = run(fresh_db, "--format", "github")
    assert status == 1
    first, *_, last = out.splitlines()
    assert first.startswith("::error file=")
    assert "catalog/migrations/0003_product_sku_stock.py,line=" in first
    assert "title=migration_doctor.E001 table-exists::" in first
    assert last.startswith("migration_doctor: database")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (["--fix", "--dry-run"], ["migration_doctor_fix", "--dry-run"]),
        (["--history", "--format", "json"], ["migration_doctor_history", "--format", "json"]),
        (["--graph", "orders"], ["migration_doctor_graph", "orders"]),
    ],
    ids=["fix", "history", "graph"],
)
def test_the_old_spelling_works_with_a_deprecation_warning(fresh_db, old, new):
    """0.1's `migration_doctor --fix ...` runs migration_doctor_fix for one more release:
    the same output and status, and a warning on stderr that names the new command."""
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "orders", "0002_order_note")  # something to repair
    before = h.recorded(fresh_db)

    def run_command(name: str, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command(name, *args, database=fresh_db, stdout=out, stderr=err)
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue(), err.getvalue()
        return 0, out.getvalue(), err.getvalue()

    status, out, err = run_command("migration_doctor", *old)
    new_status, new_out, new_err = run_command(*new)
    assert (status, out) == (new_status, new_out)
    assert new_err == ""
    assert err.strip() == (
        f"warning: `migration_doctor {old[0]}` is deprecated and will be removed in "
        f"migration_doctor 0.3.0: use `manage.py {new[0]}`."
    )
    assert h.recorded(fresh_db) == before  # a dry run, a listing, a graph: nothing changed


def test_all_databases_diagnoses_every_alias_at_once(fresh_db, tmp_path, monkeypatch):
    """Each alias on its own connection in its own thread: two diagnoses meet at a barrier
    that a one-after-the-other run would never reach (it raises after 20 s). The output is
    in alias order."""
    import threading

    from django.db import router

    from migration_doctor.management.commands import migration_doctor as command

    from .conftest import _server_config, add_alias, remove_alias, scratch_database

    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
    other = f"{fresh_db}_other"
    barrier = threading.Barrier(2, timeout=20)
    threads: dict[str, str] = {}
    real = command.diagnose

    def meeting(alias, *args, **kwargs):
        threads[alias] = threading.current_thread().name
        barrier.wait()
        return real(alias, *args, **kwargs)

    with scratch_database(tmp_path) as name:
        add_alias(other, _server_config(name))
        routers = router.routers
        router.routers = [OnlyOn(fresh_db, other)]
        monkeypatch.setattr(command, "diagnose", meeting)
        try:
            h.migrate(other)
            out = io.StringIO()
            with pytest.raises(SystemExit) as exited:
                call_command("migration_doctor", "--all-databases", "--format", "json", stdout=out)
        finally:
            router.routers = routers
            remove_alias(other)
    assert exited.value.code == 1
    data = json.loads(out.getvalue())
    assert [t["database"] for t in data["targets"]] == [fresh_db, other]
    assert [t["summary"]["errors"] for t in data["targets"]] == [1, 0]
    assert threads[fresh_db] != threads[other]
    assert threading.main_thread().name not in threads.values()
