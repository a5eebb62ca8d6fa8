"""A wiped history: every migration `table-exists`, a plan of one step per migration.

The text output is grouped by kind and app (a few lines, not four per step); `-v 2` prints
every step; the rows come back in a handful of statements whatever their number (batched,
not one INSERT per row), with each `applied` time of the repair.
"""

from __future__ import annotations

import io

from django.core.management import call_command
from django.db import connections

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity
from migration_doctor.render import repair as render_repair
from migration_doctor.repair import run_repair

from . import helpers as h


def wipe(alias: str) -> set[tuple[str, str]]:
    h.migrate(alias)
    rows = h.recorded(alias)
    h.sql(alias, "DELETE FROM django_migrations")
    return rows


def fix(alias: str, *args: str) -> str:
    out = io.StringIO()
    call_command(
        "migration_doctor_fix", "--noinput", *args, database=alias, stdout=out, stderr=out
    )
    return out.getvalue()


def test_a_large_plan_prints_grouped(fresh_db: str, monkeypatch) -> None:
    wipe(fresh_db)
    plan = run_repair(fresh_db, dry_run=True).plan
    monkeypatch.setattr(render_repair, "GROUP_ABOVE", len(plan.steps) - 1)
    text = fix(fresh_db, "--dry-run")
    assert f": {len(plan.steps)} steps" in text
    assert "     SQL: " not in text and "because:" not in text
    assert "every step with its reason and SQL: -v 2" in text
    # One line per app, in the plan's order, with the count, the step numbers, the names.
    lines = [line for line in text.splitlines() if line.startswith("  [")]
    expected = []
    for app in dict.fromkeys(s.app for s in plan.steps):
        numbers = [i for i, s in enumerate(plan.steps, 1) if s.app == app]
        names = [s.migration for s in plan.steps if s.app == app]
        shown = ", ".join(names if len(names) <= 2 else [names[0], "...", names[-1]])
        run = f"{numbers[0]}-{numbers[-1]}" if len(numbers) > 1 else str(numbers[0])
        count = f"{len(names)} step{'s' if len(names) > 1 else ''}"
        expected.append(f"  [table-exists] {app}: {count} ({run}), record: {shown}")
    assert lines == expected
    assert len(expected) < len(plan.steps)
    # -v 2: every step, its reason and its SQL.
    full = fix(fresh_db, "--dry-run", "-v", "2")
    assert full.count("     SQL: ") == len(plan.steps)
    assert h.recorded(fresh_db) == set()  # a dry run


def test_a_wiped_history_comes_back_in_a_few_statements(
    fresh_db: str, tmp_path, monkeypatch
) -> None:
    rows = wipe(fresh_db)
    monkeypatch.setattr(render_repair, "GROUP_ABOVE", 5)
    seen: list[str] = []

    def spy(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        seen.append(sql)
        return execute(sql, params, many, context)

    plan = run_repair(fresh_db, dry_run=True).plan
    recorded = {key for step in plan.steps for key in step.rows_touched()}
    with connections[fresh_db].execute_wrapper(spy):
        text = fix(fresh_db, "--backup", str(tmp_path / "b.json"))
    assert f"Applied {len(plan.steps)} step(s)." in text, text
    assert "  step 1: done" not in text  # grouped: no line per step
    assert h.recorded(fresh_db) == recorded
    inserts = [s for s in seen if s.lstrip().upper().startswith("INSERT")]
    # The rows and their ledger entries, in batches: not one statement per row.
    assert len(inserts) <= 8, inserts[:5]
    report = diagnose(fresh_db)
    assert [f.as_dict() for f in report.findings if f.severity >= Severity.WARNING] == []
    h.migrate(fresh_db)  # the migrations that change nothing in the schema (unapplied, info)
    assert h.recorded(fresh_db) == rows
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
    # The project works: the ORM writes and reads a row of a touched model.
    from django.contrib.auth.models import Group

    Group.objects.using(fresh_db).create(name="after the repair")
    assert Group.objects.using(fresh_db).filter(name="after the repair").count() == 1


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_grouped_repair_shows_progress_on_a_terminal_only(fresh_db: str, monkeypatch) -> None:
    wipe(fresh_db)
    monkeypatch.setattr(render_repair, "GROUP_ABOVE", 1)
    out, err = Terminal(), Terminal()
    call_command("migration_doctor_fix", "--noinput", database=fresh_db, stdout=out, stderr=err)
    assert "Repairing" in err.getvalue() and "step 1" in err.getvalue()
    assert "Repairing" not in out.getvalue()  # the report itself is untouched
    assert "  step 1: done" not in out.getvalue()  # grouped: no line per step
    # Piped (the same repair again: nothing left to do) or JSON: nothing on stderr.
    wipe(fresh_db)
    piped = io.StringIO()
    call_command("migration_doctor_fix", "--noinput", database=fresh_db, stdout=out, stderr=piped)
    wipe(fresh_db)
    call_command(
        "migration_doctor_fix", "--noinput", "--format", "json", database=fresh_db,
        stdout=Terminal(), stderr=piped,
    )  # fmt: skip
    assert piped.getvalue() == ""
