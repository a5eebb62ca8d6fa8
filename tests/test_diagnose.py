"""Each disagreement between rows and schema, reproduced with real migrate runs."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connections
from django.db.migrations.exceptions import InconsistentMigrationHistory

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity

from . import helpers as h
from .conftest import BACKEND


def assert_healthy(alias: str) -> None:
    report = diagnose(alias)
    bad = [f.as_dict() for f in report.findings if f.severity >= Severity.WARNING]
    assert bad == []


def test_healthy_database_has_no_findings(fresh_db):
    h.migrate(fresh_db)
    report = diagnose(fresh_db)
    assert report.findings == []
    assert report.vendor == connections[fresh_db].vendor


def test_empty_database_is_all_unapplied_and_stays_empty(fresh_db):
    report = diagnose(fresh_db)
    assert report.errors == [] and report.warnings == []
    unapplied = report.find("unapplied")
    assert ("catalog", "0001_initial") in {(f.app, f.migration) for f in unapplied}
    assert len(unapplied) == len(report.snapshot.expected.plan)
    assert "django_migrations" not in h.tables(fresh_db)  # diagnosis created nothing


def test_diagnosis_issues_only_reads(fresh_db):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0002_tags")
    seen = h.statements_of(fresh_db, lambda: diagnose(fresh_db))
    assert seen
    for statement in seen:
        head = statement.lstrip().split(None, 1)[0].upper()
        assert head in {"SELECT", "WITH", "PRAGMA", "SHOW", "SET", "BEGIN"}, statement
        if head == "SET":
            assert "READ ONLY" in statement.upper()


def test_table_exists_when_row_missing(fresh_db):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0002_tags")
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
    with pytest.raises(Exception, match="already exists"):
        # Django's own error, the one the finding quotes; the failed CREATE must not stick.
        h.migrate(fresh_db, "catalog", "0002_tags")
    report = diagnose(fresh_db)
    [finding] = report.find("table-exists", "catalog", "0002_tags")
    assert finding.id == "migration_doctor.E001"
    assert "table catalog_tag" in finding.evidence["present"]
    assert "table catalog_product_tags" in finding.evidence["present"]
    assert finding.evidence["missing"] == []
    assert finding.fix.commands == ("python manage.py migrate catalog 0002_tags --fake",)
    [sku] = report.find("table-exists", "catalog", "0003_product_sku_stock")
    assert sku.evidence["present"] == [
        "column catalog_product.stock",
        "column catalog_product.stock_keeping_unit",
    ]
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock", fake=True)
    assert_healthy(fresh_db)


def test_table_exists_initial_proposes_fake_initial_and_the_fix_works(fresh_db):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "orders")
    report = diagnose(fresh_db)
    [initial] = report.find("table-exists", "orders", "0001_initial")
    assert initial.fix.commands == ("python manage.py migrate orders 0001_initial --fake-initial",)
    assert "table order_lines" in initial.evidence["present"]
    assert "constraint order_line_unique_product on order_lines" in initial.evidence["present"]
    [note] = report.find("table-exists", "orders", "0002_order_note")
    assert note.evidence["present"] == ["column orders_order.note"]
    assert note.fix.commands == ("python manage.py migrate orders 0002_order_note --fake",)
    [data] = report.find("unapplied", "orders", "0003_order_default_notes")
    assert data.evidence["unverifiable_operations"] == ["RunPython(fill_notes)"]
    # The proposed commands, run as printed, repair the database.
    h.migrate(fresh_db, "orders", "0001_initial", fake_initial=True)
    h.migrate(fresh_db, "orders", "0002_order_note", fake=True)
    h.migrate(fresh_db)
    assert_healthy(fresh_db)


def test_without_django_migrations_table_everything_present_is_table_exists(fresh_db):
    h.migrate(fresh_db)
    h.drop_table(fresh_db, "django_migrations")
    report = diagnose(fresh_db)
    found = {(f.app, f.migration) for f in report.find("table-exists")}
    assert ("catalog", "0001_initial") in found
    assert ("contenttypes", "0001_initial") in found
    assert "django_migrations" not in h.tables(fresh_db)


def test_partially_applied_migration(fresh_db):
    h.migrate(fresh_db, "catalog", "0002_tags")
    h.run_operations(fresh_db, "catalog", "0003_product_sku_stock", [0])
    report = diagnose(fresh_db)
    [finding] = report.find("partially-applied", "catalog", "0003_product_sku_stock")
    assert finding.id == "migration_doctor.E002"
    assert finding.evidence["present"] == ["column catalog_product.stock_keeping_unit"]
    assert finding.evidence["missing"] == ["column catalog_product.stock"]
    if BACKEND == "sqlite":
        assert "discard" in finding.message
    elif BACKEND == "mysql":
        assert "1060" in finding.message


def test_mysql_failed_migration_leaves_partial_state(fresh_db, migration_package):
    """A real half-applied migration: MySQL keeps the DDL that ran before the failure."""
    sources = h.app_migration_sources("catalog")
    sources["0004_half"] = """
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("catalog", "0003_product_sku_stock")]
            operations = [
                migrations.AddField("tag", "colour", models.CharField(max_length=7, null=True)),
                migrations.RunSQL("SELECT * FROM no_such_table_at_all"),
            ]
    """
    migration_package("catalog", sources)
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    with pytest.raises(Exception):  # noqa: B017 - each backend raises its own error class
        h.migrate(fresh_db, "catalog", "0004_half")
    report = diagnose(fresh_db)
    if connections[fresh_db].features.can_rollback_ddl:
        [finding] = report.find("unapplied", "catalog", "0004_half")
        assert finding.evidence["missing"] == ["column catalog_tag.colour"]
    else:
        [finding] = report.find("partially-applied", "catalog", "0004_half")
        assert finding.evidence["present"] == ["column catalog_tag.colour"]
        assert finding.evidence["missing"] == []
        assert finding.evidence["not_known_to_have_run"] == [
            "RunSQL(SELECT * FROM no_such_table_at_all)"
        ]


def test_inconsistent_history_dependency_schema_present(fresh_db):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0001_initial")
    with pytest.raises(InconsistentMigrationHistory):
        h.migrate(fresh_db)
    report = diagnose(fresh_db)
    findings = report.find("inconsistent-history")
    children = {(f.app, f.migration) for f in findings}
    assert ("catalog", "0002_tags") in children
    assert ("orders", "0001_initial") in children  # cross-app dependency too
    [finding] = report.find("inconsistent-history", "catalog", "0002_tags")
    assert finding.evidence["not_recorded"] == "catalog.0001_initial"
    assert finding.evidence["dependency_schema"] == "present"
    assert "InconsistentMigrationHistory" in finding.message
    insert, migrate_command = finding.fix.commands
    assert migrate_command == "python manage.py migrate"
    assert insert.startswith("INSERT INTO")
    h.sql(fresh_db, insert.rstrip(";").replace("CURRENT_TIMESTAMP", "%s"), ("2024-01-01",))
    h.migrate(fresh_db)
    assert_healthy(fresh_db)


def test_inconsistent_history_dependency_schema_absent(fresh_db):
    h.migrate(fresh_db, "catalog")
    h.unrecord(fresh_db, "catalog", "0002_tags")
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
    h.drop_table(fresh_db, "catalog_product_tags")
    h.drop_table(fresh_db, "catalog_tag")
    h.record(fresh_db, "catalog", "0003_product_sku_stock")
    report = diagnose(fresh_db)
    [finding] = report.find("inconsistent-history", "catalog", "0003_product_sku_stock")
    assert finding.evidence["dependency_schema"] == "absent"
    assert "table catalog_tag" in finding.evidence["missing"]
    delete, apply, refake = finding.fix.commands
    assert delete.startswith("DELETE FROM")
    assert apply == "python manage.py migrate catalog 0002_tags"
    assert refake == "python manage.py migrate catalog 0003_product_sku_stock --fake"
    h.sql(fresh_db, delete.rstrip(";"))
    h.migrate(fresh_db, "catalog", "0002_tags")
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock", fake=True)
    h.migrate(fresh_db)
    assert_healthy(fresh_db)


def test_missing_column(fresh_db):
    h.migrate(fresh_db)
    h.remove_field(fresh_db, "catalog.Product", "stock")
    report = diagnose(fresh_db)
    [finding] = report.find("missing-schema", "catalog", "0003_product_sku_stock")
    assert finding.id == "migration_doctor.E004"
    assert finding.evidence["missing"] == ["column catalog_product.stock"]
    assert finding.evidence["present"] == ["column catalog_product.stock_keeping_unit"]
    assert {"postgresql": "does not exist", "mysql": "1054", "sqlite": "no such column"}[
        report.vendor
    ] in finding.message


def test_missing_table_collapses_its_columns(fresh_db):
    h.migrate(fresh_db)
    h.drop_table(fresh_db, "order_lines")
    report = diagnose(fresh_db)
    [finding] = report.find("missing-schema", "orders", "0001_initial")
    assert "table order_lines" in finding.evidence["missing"]
    assert "table orders_order" in finding.evidence["present"]
    assert "order_lines.quantity" not in finding.message
    assert {"postgresql": "does not exist", "mysql": "1146", "sqlite": "no such table"}[
        report.vendor
    ] in finding.message


def test_missing_everything_proposes_unrecord_and_reapply(fresh_db):
    h.migrate(fresh_db)
    h.remove_field(fresh_db, "orders.Order", "note")
    report = diagnose(fresh_db)
    [finding] = report.find("missing-schema", "orders", "0002_order_note")
    delete, reapply = finding.fix.commands
    assert reapply == "python manage.py migrate orders 0002_order_note"
    h.sql(fresh_db, delete.rstrip(";"))
    h.unrecord(fresh_db, "orders", "0003_order_default_notes")
    h.migrate(fresh_db)
    assert_healthy(fresh_db)


def test_stale_records(fresh_db):
    h.migrate(fresh_db)
    h.record(fresh_db, "catalog", "0009_deleted_long_ago")
    h.record(fresh_db, "legacy", "0001_initial")
    report = diagnose(fresh_db)
    [installed] = report.find("stale-record", "catalog", "0009_deleted_long_ago")
    assert installed.severity == Severity.WARNING
    assert installed.evidence["app_installed"] is True
    assert installed.fix.commands == ("python manage.py migrate catalog --prune",)
    [legacy] = report.find("stale-record", "legacy", "0001_initial")
    assert legacy.evidence["app_installed"] is False
    assert report.errors == []
    call_command("migrate", "catalog", prune=True, database=fresh_db, verbosity=0)
    h.sql(fresh_db, legacy.fix.commands[0].rstrip(";"))
    assert_healthy(fresh_db)


def test_schema_drift_nullability_and_type(fresh_db):
    h.migrate(fresh_db)
    h.alter_field(fresh_db, "catalog.Category", "name", null=True)
    h.alter_field(fresh_db, "catalog.Tag", "name", max_length=80)
    report = diagnose(fresh_db)
    drift = {f.evidence["table"]: f for f in report.find("schema-drift")}
    [null] = drift["catalog_category"].evidence["differences"]
    assert null == {"column": "name", "aspect": "null", "expected": "NOT NULL", "actual": "NULL"}
    [typ] = drift["catalog_tag"].evidence["differences"]
    assert typ["aspect"] == "type" and "80" in typ["actual"] and "50" in typ["expected"]
    assert report.errors == []


@pytest.mark.skipif(BACKEND != "postgres", reason="INVALID indexes exist only on PostgreSQL")
def test_invalid_index(fresh_db):
    h.migrate(fresh_db)
    h.sql(fresh_db, "INSERT INTO catalog_tag (name) VALUES ('a'), ('b')")
    h.sql(fresh_db, "ALTER TABLE catalog_tag DROP CONSTRAINT IF EXISTS catalog_tag_name_key")
    h.sql(fresh_db, "UPDATE catalog_tag SET name = 'same'")
    with pytest.raises(Exception):  # noqa: B017
        h.sql(fresh_db, "CREATE UNIQUE INDEX CONCURRENTLY tag_dupe_idx ON catalog_tag (name)")
    report = diagnose(fresh_db)
    invalid = [f for f in report.find("schema-drift") if f.evidence.get("index") == "tag_dupe_idx"]
    [finding] = invalid
    assert finding.fix.commands == ('REINDEX INDEX CONCURRENTLY "tag_dupe_idx";',)


def test_untracked_table_is_info(fresh_db):
    h.migrate(fresh_db)
    h.sql(fresh_db, f"CREATE TABLE {h.qn(fresh_db, 'legacy_audit')} (id integer)")
    report = diagnose(fresh_db)
    [finding] = report.find("untracked-table")
    assert finding.severity == Severity.INFO
    assert finding.evidence["tables"] == [{"table": "legacy_audit", "kind": "table", "columns": 1}]
    assert report.errors == [] and report.warnings == []


def test_app_label_filter(fresh_db):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "orders", "0002_order_note")
    h.unrecord(fresh_db, "orders", "0003_order_default_notes")
    h.record(fresh_db, "catalog", "0009_gone")
    assert {f.app for f in diagnose(fresh_db, ["orders"]).findings} == {"orders"}
    assert {f.app for f in diagnose(fresh_db, ["catalog"]).findings} == {"catalog"}


def test_duplicate_rows_are_reported_and_repaired(fresh_db):
    h.migrate(fresh_db)
    h.record(fresh_db, "catalog", "0002_tags")
    h.record(fresh_db, "catalog", "0002_tags")
    report = diagnose(fresh_db)
    [finding] = report.find("duplicate-record", "catalog", "0002_tags")
    assert len(finding.evidence["ids"]) == 3
    assert finding.evidence["keep"] == min(finding.evidence["ids"])
    assert report.errors == []
    call_command("migration_doctor_fix", "--noinput", database=fresh_db, stdout=io.StringIO())
    ids = h.sql(
        fresh_db,
        "SELECT id FROM django_migrations WHERE app = 'catalog' AND name = '0002_tags'",
    )
    assert ids == [(finding.evidence["keep"],)]
    assert_healthy(fresh_db)
