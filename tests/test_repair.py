"""--fix on real broken databases: the repaired database migrates and no user row is lost."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity
from migration_doctor.repair import run_repair
from migration_doctor.repair.backup import write_backup

from . import helpers as h


def seed(alias: str) -> dict[str, int]:
    """User data in every table of the bundled apps, to count after the repair."""
    h.sql(
        alias, "INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea'), ('Pots', 'pots')"
    )
    h.sql(alias, "INSERT INTO catalog_tag (name) VALUES ('green'), ('black')")
    cat = h.sql(alias, "SELECT id FROM catalog_category WHERE slug = 'tea'")[0][0]
    h.sql(
        alias,
        "INSERT INTO catalog_product (name, price, created_at, category_id, stock, "
        "stock_keeping_unit) VALUES (%s, %s, %s, %s, %s, %s)",
        ("Sencha", "4.50", "2024-05-01 10:00:00", cat, 7, "SEN-1"),
    )
    return counts(alias)


def counts(alias: str) -> dict[str, int]:
    tables = ["catalog_category", "catalog_tag", "catalog_product"]
    return {t: h.sql(alias, f"SELECT COUNT(*) FROM {h.qn(alias, t)}")[0][0] for t in tables}


def assert_repaired(alias: str, before: dict[str, int]) -> None:
    h.migrate(alias)  # Django agrees: nothing left that migrate chokes on
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
    report = diagnose(alias)
    assert [f.as_dict() for f in report.findings if f.severity >= Severity.WARNING] == []
    assert counts(alias) == before


def dump(alias: str) -> tuple[list[tuple], dict[str, list[tuple]]]:
    """Every django_migrations row and the columns of every table: what --dry-run must keep."""
    rows = sorted(h.sql(alias, "SELECT id, app, name, applied FROM django_migrations"))
    connection = connections[alias]
    schema = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            desc = connection.introspection.get_table_description(cursor, table)
            schema[table] = [(c.name, c.type_code, c.null_ok) for c in desc]
    return rows, schema


def test_table_exists_repair(fresh_db, tmp_path):
    h.migrate(fresh_db)
    before = seed(fresh_db)
    h.unrecord(fresh_db, "catalog", "0002_tags")
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
    backup = tmp_path / "backup.json"
    status, out = h.fix(fresh_db, "--backup", str(backup))
    assert status == 0, out
    assert f"Backup of django_migrations written to {backup}" in out
    assert ("catalog", "0002_tags") in h.recorded(fresh_db)
    saved = json.loads(backup.read_text())
    assert ("catalog", "0002_tags") not in {(r["app"], r["name"]) for r in saved["rows"]}
    assert_repaired(fresh_db, before)


def test_partially_applied_repair_runs_only_the_missing_operation(fresh_db):
    h.migrate(fresh_db, "catalog", "0002_tags")
    h.run_operations(fresh_db, "catalog", "0003_product_sku_stock", [0])
    h.sql(fresh_db, "INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea')")
    cat = h.sql(fresh_db, "SELECT id FROM catalog_category")[0][0]
    h.sql(
        fresh_db,
        "INSERT INTO catalog_product (name, price, created_at, category_id, stock_keeping_unit)"
        " VALUES ('Sencha', 4.5, '2024-05-01 10:00:00', %s, 'SEN-1')",
        (cat,),
    )
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert "Run the missing operation(s) of catalog.0003_product_sku_stock: Add field stock" in out
    # The value stored in the column that was already there survived.
    assert h.sql(fresh_db, "SELECT stock_keeping_unit, stock FROM catalog_product") == [
        ("SEN-1", 0)
    ]
    h.migrate(fresh_db)
    assert_repaired(fresh_db, counts(fresh_db))


def test_inconsistent_history_present_records_dependency(fresh_db):
    h.migrate(fresh_db)
    before = seed(fresh_db)
    h.unrecord(fresh_db, "catalog", "0001_initial")
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert out.count("Record catalog.0001_initial") == 1  # once for both dependents
    assert_repaired(fresh_db, before)


def test_inconsistent_history_absent_applies_dependency(fresh_db):
    h.migrate(fresh_db)
    before = seed(fresh_db)
    h.unrecord(fresh_db, "catalog", "0002_tags")
    h.drop_table(fresh_db, "catalog_product_tags")
    h.drop_table(fresh_db, "catalog_tag")
    before["catalog_tag"] = 0  # dropped by the breakage itself
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert "Apply catalog.0002_tags for real" in out
    assert_repaired(fresh_db, before)


def test_missing_column_table_and_m2m_are_recreated(fresh_db):
    h.migrate(fresh_db)
    before = seed(fresh_db)
    h.remove_field(fresh_db, "catalog.Product", "stock")
    h.drop_table(fresh_db, "catalog_product_tags")
    h.drop_table(fresh_db, "order_lines")
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert "Re-create column catalog_product.stock" in out
    assert "Re-create table catalog_product_tags" in out
    assert "Re-create table order_lines" in out
    assert_repaired(fresh_db, before)


def test_stale_record_repair(fresh_db):
    h.migrate(fresh_db)
    before = seed(fresh_db)
    h.record(fresh_db, "catalog", "0009_gone")
    h.record(fresh_db, "legacy", "0001_initial")
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert not {("catalog", "0009_gone"), ("legacy", "0001_initial")} & h.recorded(fresh_db)
    assert_repaired(fresh_db, before)


def test_dry_run_changes_nothing(fresh_db):
    h.migrate(fresh_db)
    seed(fresh_db)
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
    h.remove_field(fresh_db, "catalog.Product", "stock")
    h.drop_table(fresh_db, "order_lines")
    h.record(fresh_db, "catalog", "0009_gone")
    before = dump(fresh_db)
    out = io.StringIO()
    call_command("migration_doctor_fix", "--dry-run", database=fresh_db, stdout=out)
    text = out.getvalue()
    assert "Nothing was changed (--dry-run)." in text
    assert "SQL: " in text and "Django: " in text
    assert dump(fresh_db) == before


def test_restore_brings_back_exact_rows(fresh_db, tmp_path):
    h.migrate(fresh_db)
    h.record(fresh_db, "catalog", "0009_gone")
    rows_before = sorted(h.sql(fresh_db, "SELECT id, app, name, applied FROM django_migrations"))
    backup = write_backup(connections[fresh_db], tmp_path / "b.json")
    assert h.fix(fresh_db)[0] == 0
    assert ("catalog", "0009_gone") not in h.recorded(fresh_db)
    out = io.StringIO()
    call_command(
        "migration_doctor_restore", str(backup), "--noinput", database=fresh_db, stdout=out
    )
    assert "Restored" in out.getvalue()
    assert sorted(h.sql(fresh_db, "SELECT id, app, name, applied FROM django_migrations")) == (
        rows_before
    )
    h.record(fresh_db, "catalog", "0010_new")  # the id sequence still works after a restore


@pytest.mark.parametrize(
    "damage, message",
    [
        ("missing", "does not exist"),
        ("truncated", "not valid JSON"),
        ("edited", "checksum mismatch"),
    ],
)
def test_restore_refuses_bad_backups(fresh_db, tmp_path, damage, message):
    h.migrate(fresh_db)
    rows_before = sorted(h.sql(fresh_db, "SELECT id, app, name FROM django_migrations"))
    path = write_backup(connections[fresh_db], tmp_path / "b.json")
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_text(path.read_text()[:200])
    else:
        path.write_text(path.read_text().replace("0001_initial", "0001_initiax", 1))
    with pytest.raises(CommandError, match=message) as exc:
        call_command("migration_doctor_restore", str(path), "--noinput", database=fresh_db)
    assert exc.value.returncode == 2
    assert sorted(h.sql(fresh_db, "SELECT id, app, name FROM django_migrations")) == rows_before


def test_unproven_repair_is_skipped_unless_asked(fresh_db, migration_package):
    sources = h.app_migration_sources("catalog")
    sources["0004_colour"] = """
        from django.db import migrations, models


        def paint(apps, schema_editor):
            pass


        class Migration(migrations.Migration):
            dependencies = [("catalog", "0003_product_sku_stock")]
            operations = [
                migrations.AddField("tag", "colour", models.CharField(max_length=7, null=True)),
                migrations.RunPython(paint),
            ]
    """
    migration_package("catalog", sources)
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0004_colour")
    report = diagnose(fresh_db)
    [partial] = report.find("partially-applied", "catalog", "0004_colour")
    status, out = h.fix(fresh_db)
    assert status == 1
    assert "not proven by evidence" in out and "--only partially-applied" in out
    assert ("catalog", "0004_colour") not in h.recorded(fresh_db)
    status, out = h.fix(fresh_db, "--only", "partially-applied")
    assert status == 0, out
    assert ("catalog", "0004_colour") in h.recorded(fresh_db)
    assert partial.evidence["not_known_to_have_run"] == ["RunPython(paint)"]


def test_refuses_row_changes_when_a_module_does_not_load(fresh_db, migration_package):
    h.migrate(fresh_db)
    sources = h.app_migration_sources("catalog")
    sources["0004_broken"] = "from django.db import migrations\ndef broken(:\n"
    migration_package("catalog", sources)
    h.record(fresh_db, "orders", "0009_gone")
    status, out = h.fix(fresh_db)
    assert "refused: the migration module" in out and "0004_broken" in out
    assert ("orders", "0009_gone") in h.recorded(fresh_db)
    assert status == 1


def test_second_repair_waits_then_exits_2(fresh_db):
    from migration_doctor.repair.lock import LockHeld, repair_lock

    h.migrate(fresh_db)
    h.record(fresh_db, "catalog", "0009_gone")
    other = "other_" + fresh_db
    from .conftest import add_alias, remove_alias

    add_alias(other, connections.settings[fresh_db])
    try:
        with repair_lock(connections[other]):
            with pytest.raises(CommandError, match="holds the lock") as exc:
                call_command(
                    "migration_doctor_fix", "--noinput", "--lock-timeout", "0.5",
                    database=fresh_db,
                )  # fmt: skip
            assert exc.value.returncode == 2
            with pytest.raises(LockHeld):
                run_repair(fresh_db)
    finally:
        remove_alias(other)
    assert ("catalog", "0009_gone") in h.recorded(fresh_db)
    assert h.fix(fresh_db)[0] == 0


def test_default_backup_lands_under_base_dir(fresh_db, settings, tmp_path):
    settings.BASE_DIR = tmp_path
    h.migrate(fresh_db)
    h.record(fresh_db, "catalog", "0009_gone")
    status, out = h.fix(fresh_db)
    assert status == 0
    [path] = list(Path(tmp_path, "migration_doctor_backups").glob(f"{fresh_db}-*.json"))
    assert str(path) in out


def test_two_missing_columns_of_one_table(fresh_db):
    """Each column is added onto the table as it is: SQLite's rebuild must not invent one."""
    h.migrate(fresh_db)
    before = seed(fresh_db)
    h.remove_field(fresh_db, "catalog.Product", "sku")
    h.remove_field(fresh_db, "catalog.Product", "stock")
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert h.sql(fresh_db, "SELECT name, stock, stock_keeping_unit FROM catalog_product") == [
        ("Sencha", 0, None)
    ]
    assert_repaired(fresh_db, before)


def test_asks_step_by_step(fresh_db, monkeypatch):
    h.migrate(fresh_db)
    h.record(fresh_db, "catalog", "0009_gone")
    h.record(fresh_db, "legacy", "0001_initial")
    answers = iter(["n", "y"])
    asked: list[str] = []

    def answer(prompt: str) -> str:
        asked.append(prompt)
        return next(answers)

    monkeypatch.setattr("builtins.input", answer)
    # A terminal, as a person at the keyboard has (tests/reliability/test_options.py: without).
    monkeypatch.setattr("migration_doctor.command.stdin_is_terminal", lambda: True)
    out = io.StringIO()
    call_command("migration_doctor_fix", database=fresh_db, stdout=out)
    assert [p.split("(")[0] for p in asked] == ["Apply step 1 ", "Apply step 2 "]
    assert "Declined 1 step(s)." in out.getvalue()
    rows = h.recorded(fresh_db)
    assert ("catalog", "0009_gone") in rows and ("legacy", "0001_initial") not in rows
    monkeypatch.setattr("builtins.input", lambda prompt: "q")
    call_command("migration_doctor_fix", database=fresh_db, stdout=io.StringIO())
    assert ("catalog", "0009_gone") in h.recorded(fresh_db)


BOX = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_product_sku_stock")]
    operations = [
        migrations.CreateModel(
            "Box",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("label", models.CharField(max_length=20)),
                ("tags", models.ManyToManyField(to="catalog.tag")),
            ],
        ),
    ]
"""


def half_created_box(alias: str, migration_package: Any, label: str) -> None:
    """catalog.0004_box half applied: table catalog_box exists, holding one row; its M2M
    table does not."""
    sources = h.app_migration_sources("catalog")
    migration_package("catalog", {**sources, "0004_box": BOX})
    h.migrate(alias, "catalog", "0003_product_sku_stock")
    h.sql(
        alias,
        f"CREATE TABLE {h.qn(alias, 'catalog_box')} "
        "(id integer PRIMARY KEY, label varchar(20) NOT NULL)",
    )
    h.sql(alias, "INSERT INTO catalog_box (id, label) VALUES (1, %s)", (label,))


def test_unsafe_partial_is_rolled_back_only_without_data(fresh_db, migration_package):
    """A CreateModel whose table exists but whose M2M table does not cannot be completed
    safely: the present part is rolled back (never when it holds data, unless allowed)."""
    half_created_box(fresh_db, migration_package, "keep me")
    status, out = h.fix(fresh_db, "--only", "partially-applied")
    assert status == 1
    assert "would drop data (table catalog_box (1))" in out
    assert "catalog_box" in h.tables(fresh_db)
    h.sql(fresh_db, "DELETE FROM catalog_box")
    status, out = h.fix(fresh_db, "--only", "partially-applied")
    assert status == 0, out
    assert "Roll back the present part of catalog.0004_box (table catalog_box)" in out
    assert "catalog_box" not in h.tables(fresh_db)
    h.migrate(fresh_db)  # now migrate applies 0004 whole
    assert {"catalog_box", "catalog_box_tags"} <= set(h.tables(fresh_db))


def test_allow_data_loss_rolls_back_a_part_holding_data(fresh_db, migration_package):
    half_created_box(fresh_db, migration_package, "lose me")
    status, out = h.fix(fresh_db, "--only", "partially-applied", "--allow-data-loss")
    assert status == 0, out
    assert "--allow-data-loss was given" in out
    h.migrate(fresh_db)
