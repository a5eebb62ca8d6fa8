"""A repair killed with SIGKILL at every point between its steps (MIGRATION_DOCTOR_FAULT of
tests/reliability/faulty_manage.py, at the checkpoints of repair/run.py), in a real
`manage.py migration_doctor --fix` process: the database is exactly as before or as after
each completed step, the backup is on disk and valid, the next diagnosis names what remains,
and a second --fix finishes it.

A failure inside one schema step (the connection lost between two operations of one
migration): tests/test_repair_graph.py::test_interrupted_repair_leaves_whole_operations and
::test_second_fix_completes_an_interrupted_repair.
"""

from __future__ import annotations

import io
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity
from migration_doctor.ledger import LEDGER_TABLE, read_ledger
from migration_doctor.repair import run_repair
from migration_doctor.repair.backup import read_backup

from .. import helpers as h
from ..conftest import BACKEND
from .support import FAULTY_MANAGE, Project

# The plan, in the order run_repair() carries it out: schema steps, then row changes. On
# PostgreSQL and SQLite all of it is one transaction (a kill anywhere leaves the database as
# before); on MySQL/MariaDB each schema step commits on its own, then every row change in one
# transaction.
PLAN = [
    ("missing-schema", "Re-create column catalog_category.slug"),
    ("missing-schema", "Re-create table order_lines"),
    ("table-exists", "Record catalog.0003_product_sku_stock without running it"),
    ("stale-record", "Delete the row of catalog.0009_gone"),
]
SCHEMA_STEPS = 2
ONE_TRANSACTION = BACKEND in ("sqlite", "postgres")
# Fault point -> how many steps are complete when the process dies (MySQL/MariaDB). A kill
# inside the row transaction rolls every row change back; with ONE_TRANSACTION, everything.
FAULTS = {
    "after-backup": 0,
    "after-step-1": 1,
    "after-step-2": 2,
    "in-rows-1": 2,
    "in-rows-2": 2,
}
# What each step repairs, as the diagnosis names it.
REMAINING = [
    ("missing-schema", "catalog", "0001_initial"),
    ("missing-schema", "orders", "0001_initial"),
    ("table-exists", "catalog", "0003_product_sku_stock"),
    ("stale-record", "catalog", "0009_gone"),
]


def dump(alias: str) -> tuple[dict[str, frozenset[str]], Counter[tuple[str, str]]]:
    """The tables with their columns (the ledger aside) and every recorded row."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        schema = {
            t: frozenset(c.name for c in connection.introspection.get_table_description(cursor, t))
            for t in connection.introspection.table_names(cursor)
            if t != LEDGER_TABLE
        }
    rows = Counter((a, n) for a, n in h.sql(alias, "SELECT app, name FROM django_migrations"))
    return schema, rows


def expected_state(healthy: Any, broken: Any, completed: int) -> Any:
    """The database after the first `completed` steps of PLAN, built from the two ends."""
    schema, rows = dict(broken[0]), Counter(broken[1])
    if completed >= 1:
        schema["catalog_category"] = healthy[0]["catalog_category"]
    if completed >= 2:
        schema["order_lines"] = healthy[0]["order_lines"]
    if completed >= len(PLAN):
        rows = Counter(healthy[1])
    return schema, rows


def break_database(alias: str) -> tuple[Any, Any]:
    h.migrate(alias)
    healthy = dump(alias)
    h.remove_field(alias, "catalog.Category", "slug")  # a column dropped by hand
    h.drop_table(alias, "order_lines")  # a table dropped by hand
    h.unrecord(alias, "catalog", "0003_product_sku_stock")  # a row lost
    h.record(alias, "catalog", "0009_gone")  # a row left by a deleted file
    return healthy, dump(alias)


def kinds(alias: str) -> set[tuple[str, str | None, str | None]]:
    report = diagnose(alias)
    return {(f.kind, f.app, f.migration) for f in report.findings if f.severity > Severity.INFO}


@pytest.fixture
def broken(fresh_db: str) -> tuple[Any, Any]:
    healthy, broken = break_database(fresh_db)
    plan = run_repair(fresh_db, dry_run=True).plan
    assert [(s.kind, s.title) for s in plan.steps] == PLAN
    assert kinds(fresh_db) == set(REMAINING)
    return healthy, broken


@pytest.mark.parametrize("fault", list(FAULTS))
def test_killed_repair_leaves_a_known_state_that_the_next_fix_finishes(
    fresh_db: str,
    broken: tuple[Any, Any],
    child_settings: Any,
    project: Project,
    tmp_path: Path,
    fault: str,
) -> None:
    healthy, before = broken
    backup = tmp_path / "backup.json"
    run = project.run(
        child_settings(),
        "--fix",
        "--noinput",
        "--backup",
        str(backup),
        env={"MIGRATION_DOCTOR_FAULT": fault},
        script=FAULTY_MANAGE,
    )
    assert run.returncode == -signal.SIGKILL, run
    completed = 0 if ONE_TRANSACTION else FAULTS[fault]
    for n in range(1, min(completed, SCHEMA_STEPS) + 1):
        assert f"  step {n}: done" in run.stdout, run
    assert f"  step {completed + 1}: done" not in run.stdout, run

    # Exactly the state after the completed steps, nothing half done.
    assert dump(fresh_db) == expected_state(healthy, before, completed)
    # The backup is on disk, verifies, and holds the rows as they were before the repair.
    document = read_backup(backup)
    assert Counter((r["app"], r["name"]) for r in document["rows"]) == before[1]
    assert not Path(str(backup) + ".tmp").exists()
    # The ledger traces each completed step, and only those.
    assert len(read_ledger(connections[fresh_db])) == completed

    # The next diagnosis names what remains.
    assert kinds(fresh_db) == set(REMAINING[completed:])

    # The dead process holds no lock; a second --fix finishes the repair.
    out = io.StringIO()
    call_command(
        "migration_doctor_fix", "--noinput", "--backup", str(tmp_path / "second.json"),
        database=fresh_db, stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    assert f"Applied {len(PLAN) - completed} step(s)." in text, text
    assert kinds(fresh_db) == set()
    assert dump(fresh_db) == expected_state(healthy, before, len(PLAN)) == healthy
    h.migrate(fresh_db)  # Django agrees
    assert len(read_ledger(connections[fresh_db])) == len(PLAN)


def test_a_repair_that_is_not_killed_reaches_the_same_end(
    fresh_db: str, broken: tuple[Any, Any], child_settings: Any, project: Project, tmp_path: Path
) -> None:
    """The reference the killed runs are held to: one uninterrupted run."""
    healthy, _ = broken
    run = project.run(child_settings(), "--fix", "--noinput", "--backup", str(tmp_path / "b.json"))
    assert run.returncode == 0, run
    assert f"Applied {len(PLAN)} step(s)." in run.stdout, run
    assert dump(fresh_db) == healthy
    assert kinds(fresh_db) == set()
