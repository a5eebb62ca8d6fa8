"""Options that say what they do: no combination silently ignored, no prompt without a
terminal, no traceback when the reader of a pipe goes away, and a dry run whose exit status
is the one the real run would leave."""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from migration_doctor.repair.backup import write_backup

from .. import helpers as h
from .support import assert_one_line

DIAGNOSE, FIX, RESTORE, HISTORY, MIGRATE, GRAPH = (
    "migration_doctor", *(f"migration_doctor_{job}" for job in
                          ("fix", "restore", "history", "migrate", "graph")),
)  # fmt: skip
CONFLICTS = [
    (DIAGNOSE, ["--all-databases", "--compare", "default"], "not allowed with argument"),
    (DIAGNOSE, ["--compare", "default", "--write-baseline"], "not allowed with argument"),
    (DIAGNOSE, ["--all-databases", "--format", "html"], "--format html is not available with"),
    (DIAGNOSE, ["--dry-run"], "--dry-run is an option of migration_doctor_fix"),
    (DIAGNOSE, ["--only", "table-exists"], "--only is an option of migration_doctor_fix"),
    (DIAGNOSE, ["--backup", "x.json"], "--backup is an option of migration_doctor_fix"),
    (DIAGNOSE, ["--allow-data-loss"], "--allow-data-loss is an option of migration_doctor_fix"),
    (DIAGNOSE, ["--restore-anywhere"], "--restore-anywhere is an option of migration_doctor_re"),
    (DIAGNOSE, ["--compare", "default", "--deploy"], "--deploy goes with a diagnosis, not"),
    (DIAGNOSE, ["--write-baseline", "--fail-on", "warning"], "--fail-on goes with a diagnosis"),
    (DIAGNOSE, ["--fix", "--restore", "{backup}"], "not allowed with argument"),  # 0.1 spelling
    (DIAGNOSE, ["--history", "--lock-timeout", "3"], "not an option of migration_doctor_history"),
    (FIX, ["--format", "github"], "invalid choice"),
    (FIX, ["--deploy"], "unrecognized arguments: --deploy"),
    (FIX, ["--baseline", "b.json"], "unrecognized arguments"),
    (RESTORE, ["{backup}", "--format", "json"], "unrecognized arguments"),
    (HISTORY, ["--noinput"], "unrecognized arguments"),
    (MIGRATE, ["--import-timeout", "5"], "unrecognized arguments"),
    (MIGRATE, ["--fail-on", "warning"], "unrecognized arguments"),
    (GRAPH, ["catalog", "--format", "text"], "invalid choice"),
]


@pytest.mark.parametrize(
    "command, args, message",
    CONFLICTS,
    ids=lambda v: " ".join(v) if isinstance(v, list) else v if "_" in v else "",
)
def test_conflicting_options_are_a_usage_error(fresh_db, tmp_path, command, args, message):
    h.migrate(fresh_db)
    backup = write_backup(h.connections[fresh_db], tmp_path / "b.json")
    before = h.recorded(fresh_db)
    argv = [a.format(backup=backup) for a in args]
    with pytest.raises(CommandError) as raised:
        call_command(command, *argv, database=fresh_db, stdout=io.StringIO())
    assert raised.value.returncode == 2
    assert message in str(raised.value)
    assert h.recorded(fresh_db) == before


def test_a_conflict_is_one_line_from_manage_py(child_settings, project):
    run = project.run(child_settings(), "--all-databases", "--compare", "default")
    assert_one_line(run, "argument --compare: not allowed with argument --all-databases")
    assert run.returncode == 2


def broken_for_fix(alias: str) -> None:
    h.migrate(alias)
    h.unrecord(alias, "catalog", "0003_product_sku_stock")  # table-exists: repairable


def test_fix_without_a_terminal_refuses(fresh_db, child_settings, project):
    """CI and `</dev/null`: refuse in one line that names --noinput, change nothing."""
    broken_for_fix(fresh_db)
    before = h.recorded(fresh_db)
    done = subprocess.run(
        project.command("--fix"),
        env=project.env(child_settings()),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project.root,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "EOFError" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.strip()]
    assert "not a terminal" in line and "--noinput" in line, line
    assert done.stdout == ""  # refused before any work, not after printing a plan
    assert h.recorded(fresh_db) == before
    assert not project.base_dir.exists()  # no backup either: nothing was about to change


def test_restore_without_a_terminal_refuses(fresh_db, child_settings, project, tmp_path):
    broken_for_fix(fresh_db)
    backup = write_backup(h.connections[fresh_db], tmp_path / "b.json")
    h.unrecord(fresh_db, "catalog")
    before = h.recorded(fresh_db)
    done = subprocess.run(
        project.command("--restore", str(backup)),
        env=project.env(child_settings()),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project.root,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    [line] = [x for x in done.stderr.splitlines() if x.strip()]
    assert "--noinput" in line and "Traceback" not in done.stderr
    assert h.recorded(fresh_db) == before


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_a_closed_pipe_ends_quietly(fresh_db, child_settings, project, fmt):
    """`migration_doctor | head -1`: the reader goes away, the doctor stops without a
    traceback (nor Python's 'Exception ignored' at exit)."""
    broken_for_fix(fresh_db)
    child = subprocess.Popen(
        project.command("--format", fmt, "-v", "2", "--skip-import-watch"),
        env=project.env(child_settings()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=project.root,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # before the child writes a byte
    stderr = child.stderr.read()
    child.wait(timeout=120)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception" not in stderr
    assert child.returncode in (0, 1)


def dry_run(alias: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("migration_doctor_fix", "--dry-run", database=alias, stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_dry_run_exit_status_is_what_the_real_run_would_leave(fresh_db, migration_package):
    broken_for_fix(fresh_db)
    status, out = dry_run(fresh_db)
    assert status == 0, out  # the plan settles the only error
    # An error no repair settles: a recorded migration whose table is gone and whose
    # re-creation needs a file the graph does not have (a missing dependency).
    h.record(fresh_db, "orders", "0004_gone")
    migration_package(
        "orders",
        {
            **h.app_migration_sources("orders"),
            "0004_broken": "from django.db import migrations\n\n"
            "class Migration(migrations.Migration):\n"
            "    dependencies = [\n"
            "        ('orders', '0003_order_default_notes'), ('catalog', '0099_nope'),\n"
            "    ]\n",
        },
    )
    status, out = dry_run(fresh_db)
    assert status == 1, out
    assert "Nothing was changed (--dry-run)." in out
    status, after = h.fix(fresh_db)
    assert status == 1, after  # the real run leaves the same error behind


def test_dry_run_of_a_healthy_database_exits_0(fresh_db):
    h.migrate(fresh_db)
    assert dry_run(fresh_db)[0] == 0


def test_the_demo_names_the_command_for_its_database(tmp_path):
    """The README's first command, then the follow-up it prints, on the demo's database."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env["MIGRATION_DOCTOR_SQLITE"] = str(tmp_path / "demo.sqlite3")
    env["MIGRATION_DOCTOR_DB"] = "sqlite"
    demo = subprocess.run(
        [sys.executable, str(h.TESTPROJECT / "demo.py"), "--skip-import-watch"],
        env=env, capture_output=True, text=True, timeout=300, cwd=h.TESTPROJECT.parent,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    assert "E002 partially-applied" in demo.stdout
    [dry] = [x.strip() for x in demo.stdout.splitlines() if x.strip().endswith("--dry-run")]
    assert dry.startswith(f"MIGRATION_DOCTOR_SQLITE={tmp_path / 'demo.sqlite3'} python ")
    env.pop("MIGRATION_DOCTOR_SQLITE")
    followed = subprocess.run(
        [*shlex.split(dry.split(" ", 1)[1].replace("python", sys.executable, 1)), "-v", "1"],
        env={**env, "MIGRATION_DOCTOR_SQLITE": dry.split(" ", 1)[0].split("=", 1)[1]},
        capture_output=True, text=True, timeout=300, cwd=h.TESTPROJECT.parent,
    )  # fmt: skip
    assert "Dry run for database 'default' (sqlite):" in followed.stdout, followed
    assert "[partially-applied]" in followed.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.sqlite3"]


def test_the_settings_default_is_the_demo_database():
    """Without MIGRATION_DOCTOR_SQLITE, testproject reads testproject/demo.sqlite3."""
    code = "import testproject.settings as s; print(s.DATABASES['default']['NAME'])"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATION_DOCTOR_")}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**env, "PYTHONPATH": str(h.TESTPROJECT)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.strip() == str(h.TESTPROJECT / "demo.sqlite3"), done


def test_a_bad_setting_is_one_line(child_settings, project):
    settings = child_settings()
    module = project.root / f"{settings}.py"
    module.write_text(module.read_text() + "MIGRATION_DOCTOR = {'IGNORE_TABEL': ['x']}\n")
    run = project.run(settings, "--skip-import-watch")
    assert_one_line(run, "Unknown MIGRATION_DOCTOR key(s): IGNORE_TABEL")
