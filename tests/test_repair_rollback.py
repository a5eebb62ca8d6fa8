"""A repair that would introduce a finding is rolled back where DDL is transactional.

On PostgreSQL and SQLite the steps, their ledger entries and the diagnosis after them are one
transaction: when that diagnosis has a warning or error the one before did not, nothing
commits and the database is byte for byte as before (checksummed here: every table's columns,
constraints and rows, django_migrations and the ledger included). MySQL/MariaDB commit DDL
as it runs: the run reports what it introduced, exits 1, and the backup restores the rows.

The state: catalog.0002_tags was never applied (its tables are absent, its row too), while
0003's columns are present and its row lost; the table order_lines and the column
auth_user.last_login were dropped by hand. The planner re-creates them (schema steps) and
leaves 0003 out: recording it before its dependency 0002 would be an inconsistent history.
The tests stand in for a planner bug (the safety net is for the bugs nobody knows yet): the
`planner_bug` fixture adds that row step back, and the diagnosis after the repair finds the
inconsistent history it introduces.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connections, transaction

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity
from migration_doctor.ledger import LEDGER_TABLE, read_ledger
from migration_doctor.repair import run as repair_run
from migration_doctor.repair import run_repair
from migration_doctor.repair.files import WriteMerge
from migration_doctor.repair.plan import Context, CreateMissing, RecordRows
from migration_doctor.repair.run import not_undoable

from . import helpers as h
from .test_repair_guard import seeded

PLAN = [
    "Re-create column auth_user.last_login",
    "Re-create table order_lines",
    "Record catalog.0003_product_sku_stock without running it",
]
BROKEN = [
    ("missing-schema", "auth", "0001_initial"),
    ("missing-schema", "orders", "0001_initial"),
    ("table-exists", "catalog", "0003_product_sku_stock"),
]
INTRODUCED = "inconsistent-history (migration_doctor.E003) catalog.0003_product_sku_stock"


def checksum(alias: str) -> str:
    """Every table of the database: its columns, constraints and all its rows, sorted."""
    connection = connections[alias]
    digest = hashlib.sha256()
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            columns = connection.introspection.get_table_description(cursor, table)
            names = [c.name for c in columns]
            constraints = connection.introspection.get_constraints(cursor, table)
            digest.update(
                repr((table, [(c.name, c.type_code, c.null_ok) for c in columns])).encode()
            )
            digest.update(
                repr(sorted((k, sorted(v.items())) for k, v in constraints.items())).encode()
            )
            order = ", ".join(str(i) for i in range(1, len(names) + 1))
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)} ORDER BY {order}")
            digest.update(repr([tuple(map(repr, row)) for row in cursor.fetchall()]).encode())
    return digest.hexdigest()


def break_database(alias: str) -> list[tuple[Any, ...]]:
    """The state of the module docstring, with user rows; returns django_migrations' rows."""
    h.migrate(alias)
    seeded(alias)
    from django.contrib.auth.models import User

    user = User.objects.using(alias).create(username="ann", last_login="2024-05-02T10:00Z")
    h.sql(
        alias,
        "INSERT INTO orders_order (customer_id, placed_at, note) VALUES (%s, %s, 'by phone')",
        (user.pk, "2024-05-02 10:00:00"),
    )
    h.remove_field(alias, "auth.User", "last_login")  # SQLite rebuilds the table
    h.drop_table(alias, "order_lines")
    h.drop_table(alias, "catalog_product_tags")
    h.drop_table(alias, "catalog_tag")
    h.unrecord(alias, "catalog", "0002_tags")
    h.unrecord(alias, "catalog", "0003_product_sku_stock")
    return sorted(h.sql(alias, "SELECT id, app, name, applied FROM django_migrations"))


def fix(alias: str, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(
            "migration_doctor_fix", "--noinput", "--fail-on", "never", *args,
            database=alias, stdout=out, stderr=err,
        )  # fmt: skip
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def warnings_of(alias: str) -> list[tuple[str, str | None, str | None]]:
    report = diagnose(alias)
    return sorted(
        (f.kind, f.app, f.migration) for f in report.findings if f.severity >= Severity.WARNING
    )


def columns(alias: str, table: str) -> set[str]:
    connection = connections[alias]
    with connection.cursor() as cursor:
        return {c.name for c in connection.introspection.get_table_description(cursor, table)}


def foreign_keys_on(alias: str) -> bool:
    return bool(h.sql(alias, "PRAGMA foreign_keys")[0][0])


def assert_project_works(alias: str) -> None:
    """The way out of that state: apply 0002 for real, then --fix; the ORM writes and reads
    every model of the app."""
    from catalog.models import Category, Product, Tag
    from django.contrib.auth.models import User
    from orders.models import Order, OrderLine

    h.migrate(alias, "catalog", "0002_tags")
    status, out, err = fix(alias)
    assert status == 0, out + err
    assert warnings_of(alias) == []
    h.migrate(alias)
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
    cat = Category.objects.using(alias).create(name="Pots", slug="pots")
    tag = Tag.objects.using(alias).create(name="green")
    product = Product.objects.using(alias).create(name="Kyusu", price="30.00", category=cat)
    product.tags.add(tag)
    assert [p.name for p in Product.objects.using(alias).order_by("name")] == ["Kyusu", "Sencha"]
    assert list(Product.objects.using(alias).get(name="Kyusu").tags.all()) == [tag]
    order = Order.objects.using(alias).create(customer=User.objects.using(alias).get())
    OrderLine.objects.using(alias).create(order=order, product=product, quantity=2)
    assert sorted(Order.objects.using(alias).values_list("note", flat=True)) == ["", "by phone"]
    User.objects.using(alias).create(username="bob")
    assert [u.username for u in User.objects.using(alias).order_by("username")] == ["ann", "bob"]
    assert [(line.product.name, line.quantity) for line in order.lines.all()] == [("Kyusu", 2)]


@pytest.fixture
def planner_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planner that records catalog.0003 although its dependency 0002 is not applied."""
    real = repair_run.build_plan

    def buggy(*args: Any, **kwargs: Any) -> Any:
        plan = real(*args, **kwargs)
        if any(f.migration == "0003_product_sku_stock" for f, _ in plan.skipped):
            plan.steps.append(
                RecordRows(
                    "table-exists", "catalog", "0003_product_sku_stock", PLAN[-1], "a bug",
                    rows=[("catalog", "0003_product_sku_stock")],
                )
            )  # fmt: skip
        return plan

    monkeypatch.setattr(repair_run, "build_plan", buggy)


def test_the_planner_never_records_a_migration_before_its_dependency(fresh_db: str) -> None:
    break_database(fresh_db)
    assert warnings_of(fresh_db) == BROKEN
    result = run_repair(fresh_db, dry_run=True)
    assert [s.title for s in result.plan.steps] == PLAN[:-1]
    [(finding, why)] = result.plan.skipped
    assert (finding.kind, finding.migration) == ("table-exists", "0003_product_sku_stock")
    assert why == (
        "recording catalog.0003_product_sku_stock before its dependency catalog.0002_tags, "
        "which is not applied, would be an inconsistent history: apply catalog.0002_tags "
        "first (python manage.py migrate catalog 0002_tags), then repair again"
    )


def test_the_guard_lets_the_buggy_plan_through(fresh_db: str, planner_bug: None) -> None:
    """The premise of the tests below: only the diagnosis after the repair catches it."""
    break_database(fresh_db)
    result = run_repair(fresh_db, dry_run=True)
    assert [s.title for s in result.plan.steps] == PLAN
    assert result.refused == []


def test_a_repair_that_would_introduce_a_finding_leaves_the_database_as_it_was(
    fresh_db: str, tmp_path: Any, planner_bug: None
) -> None:
    connection = connections[fresh_db]
    if not connection.features.can_rollback_ddl:
        pytest.skip("DDL commits implicitly on MySQL/MariaDB: see the test below")
    rows = break_database(fresh_db)
    before = checksum(fresh_db)
    backup = tmp_path / "backup.json"
    status, out, err = fix(fresh_db, "--backup", str(backup))
    assert status == 1, out + err
    assert (
        f"the repair was rolled back because it would have introduced {INTRODUCED}: "
        "catalog.0003_product_sku_stock is recorded as applied but its dependency "
        "catalog.0002_tags is not." in err
    ), err
    assert (
        f"nothing was changed on database {fresh_db!r} and the backup {backup} is not needed"
        in err
    )
    assert "Applied" not in out and "step 1: done" not in out, out
    # Exactly as before: the re-created column, the recorded row and the ledger (its table
    # included: this was the first repair) are all gone with the transaction.
    assert checksum(fresh_db) == before
    assert sorted(h.sql(fresh_db, "SELECT id, app, name, applied FROM django_migrations")) == rows
    assert LEDGER_TABLE not in h.tables(fresh_db)
    assert "order_lines" not in h.tables(fresh_db)
    assert "last_login" not in columns(fresh_db, "auth_user")
    # The diagnosis printed after it is of the database as it is: the same findings.
    assert warnings_of(fresh_db) == BROKEN
    if connection.vendor == "sqlite":
        assert foreign_keys_on(fresh_db)  # switched off for the transaction, on again
    assert_project_works(fresh_db)
    assert [e.step for e in read_ledger(connection)] == PLAN  # the good repair is traced
    if connection.vendor == "sqlite":
        assert foreign_keys_on(fresh_db)


def test_run_repair_says_what_was_rolled_back(fresh_db: str, planner_bug: None) -> None:
    connection = connections[fresh_db]
    if not connection.features.can_rollback_ddl:
        pytest.skip("DDL commits implicitly on MySQL/MariaDB")
    break_database(fresh_db)
    result = run_repair(fresh_db)
    assert result.applied == [] and result.ledger == []
    assert [s.title for s in result.rolled_back] == PLAN
    assert [(f.kind, f.app, f.migration) for f in result.introduced] == [
        ("inconsistent-history", "catalog", "0003_product_sku_stock")
    ]
    assert len(result.problems) == 1, result.problems
    assert result.after is not None  # diagnosed again after the rollback
    assert [f.kind for f in result.after.findings if f.kind == "inconsistent-history"] == []


def test_on_mysql_the_repair_is_reported_and_the_backup_restores_the_rows(
    fresh_db: str, tmp_path: Any, planner_bug: None
) -> None:
    connection = connections[fresh_db]
    if connection.features.can_rollback_ddl:
        pytest.skip("PostgreSQL and SQLite roll the repair back: see the test above")
    rows = break_database(fresh_db)
    backup = tmp_path / "backup.json"
    status, out, err = fix(fresh_db, "--backup", str(backup))
    assert status == 1, out + err
    assert f"the repair introduced {INTRODUCED}: " in err, err
    assert (
        f"(not rolled back: DDL could not be rolled back on mysql; the backup {backup} "
        "restores the rows)" in err
    ), err
    assert f"Applied {len(PLAN)} step(s)." in out, out
    assert [e.step for e in read_ledger(connection)] == PLAN
    assert ("inconsistent-history", "catalog", "0003_product_sku_stock") in warnings_of(fresh_db)
    call_command(
        "migration_doctor_restore", str(backup), "--noinput",
        database=fresh_db, stdout=io.StringIO(),
    )  # fmt: skip
    assert sorted(h.sql(fresh_db, "SELECT id, app, name, applied FROM django_migrations")) == rows
    # The table and the column stay (their DDL committed); 0003 is unrecorded again.
    assert warnings_of(fresh_db) == [("table-exists", "catalog", "0003_product_sku_stock")]
    assert h.sql(fresh_db, "SELECT username, last_login FROM auth_user") == [("ann", None)]
    assert_project_works(fresh_db)


def test_a_step_that_writes_files_is_never_rolled_back(fresh_db: str) -> None:
    """No transaction undoes a written file: with one in the plan, run_repair takes the path
    that commits step by step (as on MySQL), and this is the reason it prints."""
    h.migrate(fresh_db)
    report = diagnose(fresh_db)
    assert report.snapshot is not None
    ctx = Context(report.snapshot)
    merge = WriteMerge("multiple-leaves", "catalog", None, "Write the merge migration", "")
    why = not_undoable(ctx, [merge])
    assert (
        why == "step 'Write the merge migration' writes source files, which no transaction undoes"
    )
    assert not_undoable(ctx, []) == ""  # rows only: one transaction on MySQL too
    column = CreateMissing("missing-schema", "catalog", "0003", "Re-create", "", "")
    expected = (
        ""
        if connections[fresh_db].features.can_rollback_ddl
        else ("DDL could not be rolled back on mysql")
    )
    assert not_undoable(ctx, [column]) == expected


def test_a_failing_evidence_query_inside_the_repair_keeps_its_transaction(fresh_db: str) -> None:
    """The diagnosis after a repair runs inside the repair's transaction; an evidence query
    that fails there (an unreadable table: no evidence either way) must not abort it, which
    PostgreSQL would do to every later statement."""
    h.migrate(fresh_db)
    report = diagnose(fresh_db)
    assert report.snapshot is not None
    with transaction.atomic(using=fresh_db):
        with pytest.raises(DatabaseError):
            report.snapshot.read("SELECT * FROM no_such_table_here")
        assert report.snapshot.read("SELECT COUNT(*) FROM django_migrations")[0][0] > 0
