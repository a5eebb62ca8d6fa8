"""A repair step that would lose data or break inserts is refused before anything changes.

Each state is one the doctor still misreads one migration at a time (a later migration done
by hand, never recorded): the plan it builds would drop or rebuild away the user's column,
or add a column every insert then fails on. The guard replays the plan's SQL against the
live schema first; the database must come out byte for byte as it went in.
"""

from __future__ import annotations

import io
import json
from typing import Any

from django.core.management import call_command
from django.db import connections

from migration_doctor.diagnose import diagnose
from migration_doctor.repair.guard import Replay, check_plan, split_statements
from migration_doctor.repair.plan import Context, CreateMissing
from migration_doctor.snapshot.schema import Column, LiveSchema, Table

from . import helpers as h
from .test_graph_findings import catalog_with, migration_source

AFTER_0003 = [("catalog", "0003_product_sku_stock")]


def ops_0004(operations: str) -> dict[str, str]:
    return catalog_with(**{"0004_by_hand": migration_source(AFTER_0003, operations)})


def state(alias: str) -> tuple[list[tuple[Any, ...]], dict[str, list[tuple[Any, ...]]]]:
    """Every row of django_migrations and every table's columns and rows."""
    rows = sorted(h.sql(alias, "SELECT id, app, name, applied FROM django_migrations"))
    connection = connections[alias]
    tables = {}
    with connection.cursor() as cursor:
        names = sorted(connection.introspection.table_names(cursor))
        for table in names:
            desc = connection.introspection.get_table_description(cursor, table)
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            data = sorted(map(repr, cursor.fetchall()))
            tables[table] = [(c.name, c.null_ok) for c in desc] + [tuple(data)]
    return rows, tables


def seeded(alias: str) -> None:
    h.sql(alias, "INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea')")
    cat = h.sql(alias, "SELECT id FROM catalog_category")[0][0]
    h.sql(
        alias,
        "INSERT INTO catalog_product (name, price, created_at, category_id, stock, "
        "stock_keeping_unit) VALUES ('Sencha', 4.5, '2024-05-01 10:00:00', %s, 7, 'SEN-1')",
        (cat,),
    )


def fix_json(alias: str, *args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    try:
        call_command(
            "migration_doctor_fix", "--noinput", "--format", "json", *args,
            database=alias, stdout=out,
        )  # fmt: skip
    except SystemExit as exc:
        return int(exc.code or 0), json.loads(out.getvalue())
    return 0, json.loads(out.getvalue())


def assert_refused(alias: str, *expected: str) -> None:
    before = state(alias)
    status, out = h.fix(alias)
    assert status == 1, out
    assert "Refused before anything changed" in out, out
    for text in expected:
        assert text in out, out
    assert "Backup of django_migrations" not in out  # refused before the backup, too
    assert state(alias) == before
    status, document = fix_json(alias, "--dry-run")
    assert status == 1 and document["refused"], document


def test_a_rebuild_would_not_carry_a_column_added_by_hand(fresh_db):
    """A recorded migration's column was dropped (missing-schema) and someone added a
    column of their own to the same table: on SQLite re-creating the missing column
    rebuilds the table from the migration state, without the hand-made column and its
    values. Elsewhere ADD COLUMN keeps it, and the repair runs."""
    h.migrate(fresh_db)
    seeded(fresh_db)
    table, qn = h.qn(fresh_db, "catalog_product"), h.qn(fresh_db, "stock")
    h.sql(fresh_db, f"ALTER TABLE {table} DROP COLUMN {qn}")
    h.sql(fresh_db, f"ALTER TABLE {table} ADD COLUMN {h.qn(fresh_db, 'legacy_code')} text")
    h.sql(fresh_db, f"UPDATE {table} SET {h.qn(fresh_db, 'legacy_code')} = 'L-1'")
    if connections[fresh_db].vendor == "sqlite":
        assert_refused(fresh_db, "without carrying column(s) legacy_code")
    else:
        status, out = h.fix(fresh_db)
        assert status == 0, out
        assert "Refused" not in out
    assert h.sql(fresh_db, "SELECT legacy_code FROM catalog_product") == [("L-1",)]


def test_a_column_no_field_fills_is_refused(fresh_db, migration_package):
    """What the doctor used to plan for a field removed by hand (0004, never recorded):
    re-create 0003's column NOT NULL without a default, which no field of the migration
    state fills. Whole-plan inference no longer plans it; the guard refuses it anyway."""
    migration_package("catalog", ops_0004("        migrations.RemoveField('product', 'stock'),\n"))
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    seeded(fresh_db)
    h.sql(
        fresh_db,
        f"ALTER TABLE {h.qn(fresh_db, 'catalog_product')} DROP COLUMN {h.qn(fresh_db, 'stock')}",
    )
    report = diagnose(fresh_db)
    step = CreateMissing(
        "missing-schema", "catalog", "0003_product_sku_stock", "Re-create stock", "",
        objects=[("column", "catalog_product", "stock")],
    )  # fmt: skip
    problems = check_plan(Context(report.snapshot), [step], allow_data_loss=False)
    assert problems == [
        "it would leave NOT NULL column catalog_product.stock without a default, which no "
        "field of the migration state fills: every insert through the ORM would fail"
    ]


def test_not_null_column_without_default_on_a_table_with_rows(fresh_db, migration_package):
    """A recorded migration's NOT NULL column was dropped by hand: adding it back without a
    default to a table that holds rows fails (PostgreSQL), or invents values (MariaDB)."""
    migration_package(
        "catalog",
        ops_0004("        migrations.AddField('product', 'weight', models.IntegerField()),\n"),
    )
    h.migrate(fresh_db, "catalog")
    h.sql(fresh_db, "INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea')")
    h.sql(
        fresh_db,
        "INSERT INTO catalog_product (name, price, created_at, category_id, stock, weight) "
        "SELECT 'Sencha', 4.5, '2024-05-01 10:00:00', id, 7, 250 FROM catalog_category",
    )
    h.sql(
        fresh_db,
        f"ALTER TABLE {h.qn(fresh_db, 'catalog_product')} DROP COLUMN {h.qn(fresh_db, 'weight')}",
    )
    assert_refused(fresh_db, "NOT NULL column catalog_product.weight without a default")


def test_completing_a_migration_does_not_drop_data_without_the_flag(fresh_db, migration_package):
    """A half-applied migration whose remaining operation removes a column holding data:
    running it is what migrate would do, and it loses the values: only with the flag."""
    migration_package(
        "catalog",
        ops_0004(
            "        migrations.AddField('product', 'note', models.TextField(null=True)),\n"
            "        migrations.RemoveField('product', 'stock'),\n"
        ),
    )
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    seeded(fresh_db)
    h.run_operations(fresh_db, "catalog", "0004_by_hand", [0])
    assert_refused(fresh_db, "catalog_product.stock (1)", "--allow-data-loss")
    status, out = h.fix(fresh_db, "--allow-data-loss")
    assert status == 0, out
    assert ("catalog", "0004_by_hand") in h.recorded(fresh_db)
    h.migrate(fresh_db)
    assert h.sql(fresh_db, "SELECT name, note FROM catalog_product") == [("Sencha", None)]


# -- the replay itself, on Django's statement shapes (no database) -------------------------


def schema(*columns: str) -> LiveSchema:
    live = LiveSchema("sqlite")
    live.tables["t"] = Table("t", columns={c: Column(c, "integer", False) for c in columns})
    return live


def test_replay_recognises_sqlite_rebuilds():
    rebuild = [
        'CREATE TABLE "new__t" ("id" integer NOT NULL PRIMARY KEY, "a" integer NOT NULL, '
        '"b" integer NOT NULL, CONSTRAINT "x" CHECK ("a" >= 0))',
        'INSERT INTO "new__t" ("id", "a", "b") SELECT "id", "a", 0 FROM "t"',
        'DROP TABLE "t"',
        'ALTER TABLE "new__t" RENAME TO "t"',
    ]
    assert Replay(schema("id", "a"), lambda t: True).run(rebuild) == []
    lost = Replay(schema("id", "a", "c"), lambda t: True).run(rebuild)
    assert lost == ["it would rebuild table t without carrying column(s) c and their values"]
    nulls = [rebuild[0], rebuild[1].replace("0 FROM", "NULL FROM"), *rebuild[2:]]
    assert Replay(schema("id", "a"), lambda t: False).run(nulls) == []
    assert (
        "NOT NULL column t.b without a default"
        in Replay(schema("id", "a"), lambda t: True).run(nulls)[0]
    )


def test_replay_tracks_columns_across_statements():
    replay = Replay(schema("id", "a"), lambda t: True)
    problems = replay.run(
        [
            'ALTER TABLE "t" ADD COLUMN "b" integer DEFAULT 0 NOT NULL; '
            'ALTER TABLE "t" ALTER COLUMN "b" DROP DEFAULT',
            'ALTER TABLE "t" RENAME COLUMN "a" TO "c"',
            'ALTER TABLE "t" DROP COLUMN "b"',  # added by the plan itself: no loss
        ]
    )
    assert problems == []
    assert Replay(schema("id", "a"), lambda t: True).run(["ALTER TABLE `t` DROP COLUMN `a`"]) == [
        "it would drop column t.a, which is in the database"
    ]
    assert Replay(schema("id"), lambda t: True).run(['DROP TABLE "t" CASCADE']) == [
        "it would drop table t, which is in the database"
    ]


def test_split_statements_keeps_quoted_semicolons():
    assert split_statements("SET CONSTRAINTS \"a;b\" IMMEDIATE; ALTER TABLE 'x;'") == [
        'SET CONSTRAINTS "a;b" IMMEDIATE',
        "ALTER TABLE 'x;'",
    ]


def test_replay_follows_a_live_table_through_a_rename():
    """A live table renamed, then dropped under its new name, is still the live data; and
    its old name is no longer the live table."""
    assert Replay(schema("id", "a"), lambda t: True).run(
        ['ALTER TABLE "t" RENAME TO "u"', 'DROP TABLE "u"']
    ) == ["it would drop table u, which is in the database"]
    assert (
        Replay(schema("id", "a"), lambda t: True).run(
            ['ALTER TABLE "t" RENAME TO "u"', 'CREATE TABLE "t" ("id" integer)', 'DROP TABLE "t"']
        )
        == []
    )
