"""A repair is judged by the whole diagnosis after it: anything it introduced, even a
warning, fails the run, whatever --fail-on says."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connections

from migration_doctor.diagnose import Report
from migration_doctor.findings import Finding
from migration_doctor.ledger import read_ledger
from migration_doctor.repair import run as repair_run
from migration_doctor.repair.run import introduced

from . import helpers as h
from .test_repair_rollback import columns


def _report(*findings: Finding) -> Report:
    return Report("default", "sqlite", list(findings), 0)


def test_only_new_warnings_and_errors_count() -> None:
    drift = Finding("schema-drift", "catalog", None, "m", {"table": "catalog_tag"})
    other_drift = Finding("schema-drift", "catalog", None, "m", {"table": "catalog_product"})
    pending = Finding("unapplied", "catalog", "0004_x", "m")
    missing = Finding("missing-schema", "catalog", "0003_product_sku_stock", "m")
    before = _report(drift, Finding("table-exists", "catalog", "0003_product_sku_stock", "m"))
    after = _report(drift, other_drift, pending, missing)
    assert introduced(before, after) == [other_drift, missing]
    assert introduced(after, after) == []


def test_a_repair_that_breaks_something_else_exits_1(fresh_db, monkeypatch) -> None:
    """Something drops a column 0003 created (a stand-in for a step that does more than it
    says): recording 0003 then leaves it missing, and the row is rolled back on every
    backend (the plan only changes rows: one transaction on MySQL too). On PostgreSQL and
    SQLite the drop happens inside the repair's transaction and is rolled back with it;
    MySQL commits DDL, so there it happens between the backup and the rows and stays."""
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
    undoable = connections[fresh_db].features.can_rollback_ddl
    original = repair_run.checkpoint

    def harmful(name: str) -> None:
        original(name)
        if name == ("in-rows-1" if undoable else "after-backup"):
            h.sql(fresh_db, "ALTER TABLE catalog_product DROP COLUMN stock")

    monkeypatch.setattr(repair_run, "checkpoint", harmful)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command(
            "migration_doctor_fix", "--noinput", "--fail-on", "never",
            database=fresh_db, stdout=out, stderr=err,
        )  # fmt: skip
    assert exc.value.code == 1, out.getvalue()
    finding = "missing-schema (migration_doctor.E004) catalog.0003_product_sku_stock"
    assert f"the repair was rolled back because it would have introduced {finding}" in (
        err.getvalue()
    )
    assert "nothing was changed" in err.getvalue()
    assert ("catalog", "0003_product_sku_stock") not in h.recorded(fresh_db)
    assert read_ledger(connections[fresh_db]) == []
    stock = "stock" in columns(fresh_db, "catalog_product")
    # The dropped column is back where the drop was inside the transaction; on MySQL the
    # drop came before it (committed DDL) and stays: the repair did not do it.
    assert stock is undoable
