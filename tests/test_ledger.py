"""Every repair leaves a trace; no repair runs on a half-loaded project."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from migration_doctor.diagnose import diagnose
from migration_doctor.ledger import LEDGER_TABLE

from . import helpers as h


def history(alias: str) -> dict:
    out = io.StringIO()
    call_command("migration_doctor_history", "--format", "json", database=alias, stdout=out)
    return json.loads(out.getvalue())


def test_diagnosis_never_creates_the_ledger(fresh_db):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "orders", "0002_order_note")
    diagnose(fresh_db)
    assert LEDGER_TABLE not in h.tables(fresh_db)
    assert history(fresh_db)["repairs"] == []
    call_command("migration_doctor_fix", "--dry-run", database=fresh_db, stdout=io.StringIO())
    assert LEDGER_TABLE not in h.tables(fresh_db)


def test_each_repair_kind_is_written_to_the_ledger_and_the_backup(fresh_db, tmp_path):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "orders", "0002_order_note")  # table-exists -> record
    h.unrecord(fresh_db, "orders", "0003_order_default_notes")
    h.remove_field(fresh_db, "catalog.Product", "stock")  # missing-schema -> schema
    h.record(fresh_db, "legacy", "0001_initial")  # stale-record -> unrecord
    backup = tmp_path / "b.json"
    status, out = h.fix(fresh_db, "--backup", str(backup))
    assert status == 0, out
    repairs = history(fresh_db)["repairs"]
    by_kind = {r["kind"]: r for r in repairs}
    assert set(by_kind) == {"table-exists", "missing-schema", "stale-record"}
    recorded = by_kind["table-exists"]
    assert recorded["action"] == "record"
    assert recorded["rows"] == ["orders.0002_order_note"]
    assert recorded["check_id"] == "migration_doctor.E001"
    assert recorded["evidence"]["present"] == ["column orders_order.note"]
    assert recorded["sql"][0].startswith("INSERT INTO")
    assert recorded["before_rows"] == []  # there was no row before
    assert recorded["backup"] == str(backup)
    assert recorded["command"] and recorded["user"] and recorded["host"]
    stale = by_kind["stale-record"]
    assert stale["action"] == "unrecord" and stale["rows"] == ["legacy.0001_initial"]
    [before] = stale["before_rows"]
    assert before["app"] == "legacy" and before["applied"].startswith("2024-01-02")
    schema = by_kind["missing-schema"]
    assert schema["action"] == "schema" and schema["sql"]
    mirrored = json.loads(backup.read_text())["repairs"]
    assert [m["kind"] for m in mirrored] == [r["kind"] for r in repairs]
    text = io.StringIO()
    call_command("migration_doctor_history", database=fresh_db, stdout=text)
    assert "[table-exists] Record orders.0002_order_note without running it" in text.getvalue()


def test_diagnosis_names_an_earlier_fake(fresh_db):
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "orders", "0002_order_note")
    h.unrecord(fresh_db, "orders", "0003_order_default_notes")
    assert h.fix(fresh_db)[0] == 0
    h.remove_field(fresh_db, "orders.Order", "note")  # months later: the column is gone
    report = diagnose(fresh_db)
    [finding] = report.find("missing-schema", "orders", "0002_order_note")
    assert finding.evidence["recorded_by"].startswith("migration_doctor on ")
    assert finding.evidence["recorded_by"].endswith("(table-exists fix)")
    assert "that earlier fake is the likely cause" in finding.message
    assert report.find("untracked-table") == []  # the ledger is the doctor's own table


def test_refuses_row_changes_when_migrations_are_disabled(fresh_db, settings):
    h.migrate(fresh_db)
    h.record(fresh_db, "catalog", "0009_gone")
    settings.MIGRATION_MODULES = {"orders": None}
    status, out = h.fix(fresh_db)
    assert status == 0  # a warning remains, no error
    assert "refused: MIGRATION_MODULES disables migrations for orders" in out
    assert ("catalog", "0009_gone") in h.recorded(fresh_db)
    assert LEDGER_TABLE not in h.tables(fresh_db)


def test_transaction_pooling_falls_back_to_transaction_locks(fresh_db, monkeypatch):
    import pytest
    from django.core.management.base import CommandError
    from django.db import connections

    from migration_doctor.repair import lock

    from .conftest import BACKEND, add_alias, remove_alias

    if BACKEND != "postgres":
        pytest.skip("transaction-pooling proxies (PgBouncer) front PostgreSQL only")
    h.migrate(fresh_db)
    h.record(fresh_db, "catalog", "0009_gone")
    monkeypatch.setattr(lock, "transaction_pooled", lambda connection: True)
    other = "pool_" + fresh_db
    add_alias(other, connections.settings[fresh_db])
    try:
        with connections[other].cursor() as cursor:  # a repair elsewhere holds the lock
            cursor.execute("SELECT pg_advisory_lock(%s)", [lock.PG_KEY])
        with pytest.raises(CommandError, match="holds the lock"):
            call_command("migration_doctor_fix", "--noinput", database=fresh_db)
        assert ("catalog", "0009_gone") in h.recorded(fresh_db)
        with connections[other].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock.PG_KEY])
    finally:
        remove_alias(other)
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert "a transaction-pooling proxy was detected" in out
    assert ("catalog", "0009_gone") not in h.recorded(fresh_db)


def test_locked_migrate_never_races_a_repair(fresh_db):
    import pytest
    from django.core.management.base import CommandError
    from django.db import connections

    from migration_doctor.repair.lock import repair_lock

    from .conftest import add_alias, remove_alias

    other = "mig_" + fresh_db
    add_alias(other, connections.settings[fresh_db])
    try:
        with repair_lock(connections[other]):  # a repair is running
            with pytest.raises(CommandError, match="holds the lock") as exc:
                call_command(
                    "migration_doctor_migrate", "--lock-timeout", "0.3", database=fresh_db
                )
            assert exc.value.returncode == 2
            assert "django_migrations" not in h.tables(fresh_db)
    finally:
        remove_alias(other)
    out = io.StringIO()
    call_command("migration_doctor_migrate", database=fresh_db, stdout=out, verbosity=0)
    assert "Holding the" in out.getvalue()
    assert ("catalog", "0003_product_sku_stock") in h.recorded(fresh_db)


@pytest.mark.parametrize("kind", ["partially-applied", "inconsistent-history", "duplicate-record"])
def test_other_repair_kinds_are_traced_too(fresh_db, kind):
    h.migrate(fresh_db)
    if kind == "partially-applied":
        h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
        h.remove_field(fresh_db, "catalog.Product", "stock")
        expected = {("schema", "catalog.0003_product_sku_stock"), ("record", "")}
    elif kind == "inconsistent-history":
        h.unrecord(fresh_db, "catalog", "0002_tags")
        h.drop_table(fresh_db, "catalog_product_tags")
        h.drop_table(fresh_db, "catalog_tag")
        expected = {("schema", "catalog.0002_tags"), ("record", "")}
    else:
        h.record(fresh_db, "catalog", "0002_tags")
        expected = {("unrecord", "")}
    assert h.fix(fresh_db)[0] == 0
    entries = [e for e in history(fresh_db)["repairs"] if e["kind"] == kind]
    seen = {
        (e["action"], f"{e['app']}.{e['migration']}" if e["action"] == "schema" else "")
        for e in entries
    }
    assert expected <= seen, entries
    assert all(e["check_id"].startswith("migration_doctor.") for e in entries)
