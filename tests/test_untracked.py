"""`untracked-table` lists only tables nothing accounts for (issue 13.7).

SQLite's virtual tables keep their data in shadow tables (FTS5: x_data, x_idx, x_content,
x_docsize, x_config; R*Tree: x_node, x_parent, x_rowid): they are the virtual table's
storage, not tables of their own. And a table that an unapplied migration drops (a
DeleteModel that came with a package upgrade) is that migration's business. Real databases;
the pending-DeleteModel case on every backend.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connections

from migration_doctor.diagnose import diagnose
from migration_doctor.snapshot.schema_readers import introspect

from . import helpers as h
from .conftest import BACKEND
from .test_graph_findings import AFTER_0003, catalog_with, migration_source, one

Package = Callable[[str, dict[str, str]], str]

sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason="virtual tables are SQLite's")

FTS5_SHADOWS = ["notes_fts_config", "notes_fts_content", "notes_fts_data", "notes_fts_docsize",
                "notes_fts_idx"]  # fmt: skip
RTREE_SHADOWS = ["boxes_node", "boxes_parent", "boxes_rowid"]


def untracked(alias: str) -> list[str]:
    found = diagnose(alias).find("untracked-table")
    return [t["table"] for f in found for t in f.evidence["tables"]]


def make_virtual_tables(alias: str) -> None:
    h.sql(alias, "CREATE VIRTUAL TABLE notes_fts USING fts5(title, body)")
    h.sql(alias, "CREATE VIRTUAL TABLE boxes USING rtree(id, min_x, max_x)")
    h.sql(alias, "INSERT INTO notes_fts (title, body) VALUES ('a', 'b')")


@sqlite_only
def test_fts5_and_rtree_shadow_tables_are_not_listed(fresh_db: str) -> None:
    h.migrate(fresh_db)
    make_virtual_tables(fresh_db)
    assert set(FTS5_SHADOWS + RTREE_SHADOWS) <= set(h.tables(fresh_db))  # they are there

    schema = introspect(connections[fresh_db])
    assert {t: schema.tables[t].kind for t in FTS5_SHADOWS + RTREE_SHADOWS} == dict.fromkeys(
        FTS5_SHADOWS + RTREE_SHADOWS, "shadow"
    )
    # The virtual tables themselves belong to no model: information, as before.
    assert untracked(fresh_db) == ["boxes", "notes_fts"]
    assert diagnose(fresh_db).errors == diagnose(fresh_db).warnings == []


@sqlite_only
def test_shadow_tables_by_name_before_sqlite_3_37(fresh_db: str, monkeypatch: Any) -> None:
    """Without pragma_table_list the shadows of SQLite's own modules are known by name.

    The same real database, read with the statement the reader sends to a library older
    than 3.37 (only the version it sees is lowered).
    """
    h.migrate(fresh_db)
    make_virtual_tables(fresh_db)
    h.sql(fresh_db, "CREATE TABLE notes_fts_archive (id integer)")  # not a shadow name
    connection = connections[fresh_db]
    old = SimpleNamespace(**{**vars(sqlite3), "sqlite_version_info": (3, 36, 0)})
    monkeypatch.setattr(connection, "Database", old)
    sent = h.statements_of(fresh_db, lambda: introspect(connection))
    assert not any("pragma_table_list" in s for s in sent)
    schema = introspect(connection)
    assert [t for t, table in sorted(schema.tables.items()) if table.kind == "shadow"] == sorted(
        FTS5_SHADOWS + RTREE_SHADOWS
    )
    assert schema.tables["notes_fts_archive"].kind == "table"
    assert untracked(fresh_db) == ["boxes", "notes_fts", "notes_fts_archive"]


# catalog 0004 creates a model the code no longer has; the upgrade brings 0005 deleting it.
LEGACY = (
    "        migrations.CreateModel(\n"
    "            name='Legacy',\n"
    "            fields=[\n"
    "                ('id', models.BigAutoField(auto_created=True, primary_key=True,\n"
    "                                           serialize=False, verbose_name='ID')),\n"
    "                ('note', models.CharField(max_length=20)),\n"
    "            ],\n"
    "        ),\n"
)
DELETE_LEGACY = "        migrations.DeleteModel(name='Legacy'),\n"
ZERO_FOUR = ("catalog", "0004_legacy")


def test_table_a_pending_migration_drops_is_not_untracked(
    fresh_db: str, migration_package: Package
) -> None:
    old_release = catalog_with(**{"0004_legacy": migration_source([AFTER_0003], LEGACY)})
    migration_package("catalog", old_release)
    h.migrate(fresh_db)  # the old release, deployed
    h.sql(fresh_db, f"INSERT INTO {h.qn(fresh_db, 'catalog_legacy')} (note) VALUES ('x')")
    migration_package(  # the upgrade, not migrated yet
        "catalog",
        catalog_with(
            **{
                "0004_legacy": migration_source([AFTER_0003], LEGACY),
                "0005_delete_legacy": migration_source([ZERO_FOUR], DELETE_LEGACY),
            }
        ),
    )

    report = diagnose(fresh_db)
    assert "catalog_legacy" in h.tables(fresh_db)
    assert report.find("untracked-table") == []
    pending = one(report, "unapplied", "catalog", "0005_delete_legacy")
    assert "table catalog_legacy" in pending.evidence["missing"]  # its DeleteModel, to do
    assert report.errors == report.warnings == []

    h.migrate(fresh_db)
    after = diagnose(fresh_db)
    assert "catalog_legacy" not in h.tables(fresh_db)
    assert after.errors == after.warnings == []
    assert after.find("untracked-table") == after.find("unapplied") == []


def test_a_table_nothing_accounts_for_is_still_listed(fresh_db: str) -> None:
    h.migrate(fresh_db)
    h.sql(fresh_db, f"CREATE TABLE {h.qn(fresh_db, 'legacy_import')} (id integer)")
    assert untracked(fresh_db) == ["legacy_import"]
