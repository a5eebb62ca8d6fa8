"""Plain indexes in a model's table that no migration accounts for (issue 14.1): reported as
`untracked-constraint` at info level (I007), with the backend's DROP INDEX as a suggestion;
never the ones Django or the backend make by themselves, nor those a pending migration
creates, a RunSQL names or SQLite's rebuilds may have kept. Real databases, every backend.
"""

from __future__ import annotations

import pytest
from django.db import connections

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity

from . import helpers as h
from .conftest import BACKEND
from .test_graph_findings import AFTER_0003, catalog_with, migration_source

NAME_INDEXED = (
    "        migrations.AlterField('category', 'name', "
    "models.CharField(max_length=100, db_index=True)),\n"
)
STOCK_INDEXED = (
    "        migrations.AlterField('product', 'stock', "
    "models.IntegerField(default=0, db_index=True)),\n"
)


def leftovers(alias: str) -> list[dict[str, object]]:
    """The index findings: (id, table, index, columns)."""
    return [
        {
            "id": f.id,
            "table": f.evidence["table"],
            "columns": f.evidence["columns"],
            "index": f.evidence["index"],
        }
        for f in diagnose(alias).find("untracked-constraint")
        if "index" in f.evidence
    ]


def live_index_names(alias: str, table: str) -> set[str]:
    connection = connections[alias]
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {n for n, c in constraints.items() if c["index"] and not c["primary_key"]}


def index_by_hand(alias: str, name: str, table: str, columns: str) -> None:
    h.sql(alias, f"CREATE INDEX {h.qn(alias, name)} ON {h.qn(alias, table)} ({columns})")


def test_a_fresh_database_has_none(fresh_db):
    """Every index `migrate` made is accounted for: the ForeignKey indexes InnoDB makes on
    MySQL, PostgreSQL's `_like` twins (catalog_tag.name, catalog_category.slug, the varchar
    primary key of django_session), SQLite's autoindexes."""
    h.migrate(fresh_db)
    assert leftovers(fresh_db) == []
    assert [f.as_dict() for f in diagnose(fresh_db).findings] == []


def test_a_branch_switch_leaves_a_db_index(fresh_db, migration_package):
    """A branch indexed Category.name; its migration ran, then the branch was switched (the
    file gone, its row pruned). The index stays: information, and the fix is the exact
    DROP INDEX (with PostgreSQL's `_like` twin), which leaves the doctor with nothing."""
    alias = fresh_db
    migration_package(
        "catalog",
        catalog_with(**{"0004_name_index": migration_source([AFTER_0003], NAME_INDEXED)}),
    )
    h.migrate(alias, "catalog", "0003_product_sku_stock")
    base = live_index_names(alias, "catalog_category")
    h.migrate(alias)
    before = live_index_names(alias, "catalog_category")
    migration_package("catalog", catalog_with())
    h.unrecord(alias, "catalog", "0004_name_index")

    [leftover] = leftovers(alias)
    name = leftover["index"]
    assert leftover == {
        "id": "migration_doctor.I007",
        "table": "catalog_category",
        "columns": ["name"],
        "index": name,
    }
    [finding] = diagnose(alias).find("untracked-constraint")
    assert finding.severity == Severity.INFO
    assert finding.evidence["unique"] is False
    assert "Index " + str(name) + " on catalog_category (name)" in finding.message
    drops = finding.fix.commands[:-1]
    assert finding.fix.commands[-1] == "python manage.py makemigrations catalog"
    like = {n for n in before - base if n.endswith("_like")}
    expected = {
        "postgresql": [f'DROP INDEX IF EXISTS "{name}";']
        + [f'DROP INDEX IF EXISTS "{n}";' for n in sorted(like)],
        "mysql": [f"DROP INDEX `{name}` ON `catalog_category`;"],
        "sqlite": [f'DROP INDEX "{name}";'],
    }[connections[alias].vendor]
    assert list(drops) == expected
    assert len(like) == (1 if connections[alias].vendor == "postgresql" else 0)
    assert diagnose(alias).errors == diagnose(alias).warnings == []

    for statement in drops:
        h.sql(alias, statement)
    assert live_index_names(alias, "catalog_category") == before - {name} - like
    assert [f.as_dict() for f in diagnose(alias).findings] == []


def test_an_index_made_by_hand(fresh_db):
    """A DBA's index for a slow query: reported, its columns in order."""
    alias = fresh_db
    h.migrate(alias)
    index_by_hand(alias, "product_stock_price", "catalog_product", "stock, price")
    assert leftovers(alias) == [
        {
            "id": "migration_doctor.I007",
            "table": "catalog_product",
            "columns": ["stock", "price"],
            "index": "product_stock_price",
        }
    ]


def test_a_quoted_name_is_escaped_in_the_drop(fresh_db):
    """A name holding the backend's quote character: the DROP doubles it and runs."""
    alias = fresh_db
    h.migrate(alias)
    quote = "`" if connections[alias].vendor == "mysql" else '"'
    name = f"odd{quote}name"
    escaped = quote + name.replace(quote, quote * 2) + quote
    h.sql(alias, f"CREATE INDEX {escaped} ON catalog_product (stock)")
    [finding] = diagnose(alias).find("untracked-constraint")
    assert finding.evidence["index"] == name
    [drop] = finding.fix.commands[:-1]
    assert escaped in drop
    h.sql(alias, drop)
    assert diagnose(alias).find("untracked-constraint") == []


def test_an_index_a_pending_migration_creates_is_that_migration_s(fresh_db, migration_package):
    """0004 (not applied) indexes Product.stock; the index is already there (made by hand,
    under another name): 0004 is done but unrecorded, the index no leftover."""
    alias = fresh_db
    migration_package(
        "catalog",
        catalog_with(**{"0004_stock_index": migration_source([AFTER_0003], STOCK_INDEXED)}),
    )
    h.migrate(alias, "catalog", "0003_product_sku_stock")
    h.migrate(alias, "orders")
    index_by_hand(alias, "stock_by_hand", "catalog_product", "stock")
    report = diagnose(alias)
    assert [(f.kind, f.migration) for f in report.errors] == [("table-exists", "0004_stock_index")]
    assert leftovers(alias) == []


def test_an_index_a_pending_migration_drops_is_that_migration_s(fresh_db, migration_package):
    """0004 indexed Product.stock and ran; 0005 (not applied) drops the index again."""
    alias = fresh_db
    unindexed = STOCK_INDEXED.replace(", db_index=True", "")
    migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_stock_index": migration_source([AFTER_0003], STOCK_INDEXED),
                "0005_stock_plain": migration_source([("catalog", "0004_stock_index")], unindexed),
            }
        ),
    )
    h.migrate(alias)
    h.migrate(alias, "catalog", "0004_stock_index")
    assert leftovers(alias) == []
    assert diagnose(alias).find("unapplied", "catalog", "0005_stock_plain")


def test_index_together_and_a_removed_unique_together(fresh_db, migration_package):
    """index_together's index (SQLite loses it at the next rebuild, so it is not expected
    there, but until then it is there) and the ForeignKey index MySQL makes when a
    unique_together starting with the foreign key is dropped: neither is a leftover."""
    alias = fresh_db
    together = "        migrations.AlterIndexTogether('product', {('stock', 'price')}),\n"
    unique = "        migrations.AlterUniqueTogether('product', {('category', 'name')}),\n"
    no_unique = "        migrations.AlterUniqueTogether('product', set()),\n"
    migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_together": migration_source([AFTER_0003], together + unique),
                "0005_no_unique": migration_source([("catalog", "0004_together")], no_unique),
            }
        ),
    )
    h.migrate(alias)
    names = live_index_names(alias, "catalog_product")
    assert any(n.endswith("_idx") for n in names)  # the index_together index is there
    if connections[alias].vendor == "mysql":  # Django's own index on the foreign key
        assert any(n.startswith("catalog_product_category_id_") for n in names), names
    assert leftovers(alias) == []


def test_an_index_a_run_sql_names(fresh_db, migration_package):
    """RunSQL's own CREATE INDEX: the plan names it, so it is accounted for; one the RunSQL
    does not name is still reported, with a note that the app runs code."""
    alias = fresh_db
    run_sql = (
        "        migrations.RunSQL('CREATE INDEX catalog_price_by_sql ON catalog_product (price)',"
        " 'DROP INDEX catalog_price_by_sql'),\n"
    )
    migration_package(
        "catalog", catalog_with(**{"0004_by_sql": migration_source([AFTER_0003], run_sql)})
    )
    h.migrate(alias)
    assert leftovers(alias) == []
    index_by_hand(alias, "catalog_other", "catalog_product", "stock")
    assert [x["index"] for x in leftovers(alias)] == ["catalog_other"]
    [finding] = diagnose(alias).find("untracked-constraint")
    assert "A RunSQL or RunPython of catalog may have added it on purpose." in finding.message


def test_never_judged(fresh_db):
    """Unique indexes (W006's), expression indexes, and indexes of tables no model owns."""
    alias = fresh_db
    h.migrate(alias)
    h.sql(alias, "CREATE TABLE legacy_import (id integer, code varchar(10))")
    index_by_hand(alias, "legacy_code", "legacy_import", "code")
    h.sql(alias, "CREATE UNIQUE INDEX product_sku_uniq ON catalog_product (stock_keeping_unit)")
    if connections[alias].vendor != "mysql":  # MariaDB has no expression index
        h.sql(alias, "CREATE INDEX product_lower_name ON catalog_product (lower(name))")
    report = diagnose(alias)
    assert leftovers(alias) == []
    assert [f.evidence["constraint"] for f in report.find("untracked-constraint")] == [
        "product_sku_uniq"
    ]
    assert report.find("untracked-table")


@pytest.mark.skipif(BACKEND != "postgres", reason="INVALID indexes exist only on PostgreSQL")
def test_an_invalid_index_is_drift_s(fresh_db):
    """An INVALID index (a failed CREATE INDEX CONCURRENTLY) is schema-drift's business."""
    alias = fresh_db
    h.migrate(alias)
    index_by_hand(alias, "stock_half_built", "catalog_product", "stock")
    h.sql(
        alias,
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'stock_half_built'::regclass",
    )
    report = diagnose(alias)
    assert leftovers(alias) == []
    [drift] = report.find("schema-drift")
    assert drift.evidence["index"] == "stock_half_built"


@pytest.mark.skipif(BACKEND != "postgres", reason="the `_like` twin is PostgreSQL's")
def test_a_like_index_without_its_twin_is_a_leftover(fresh_db):
    """Django drops a `_like` index with its twin; one whose twin is gone stays behind."""
    alias = fresh_db
    h.migrate(alias)
    h.sql(alias, 'CREATE INDEX "catalog_product_name_x_like" ON catalog_product '
          "(name varchar_pattern_ops)")  # fmt: skip
    assert leftovers(alias) == []  # the named index on (name) is its twin
    h.sql(alias, 'DROP INDEX "catalog_product_name_idx"')
    assert [x["index"] for x in leftovers(alias)] == ["catalog_product_name_x_like"]


@pytest.mark.skipif(BACKEND != "mysql", reason="a spatial index without GeoDjango: MariaDB's")
def test_a_spatial_index_is_never_judged(fresh_db):
    """GeoDjango gives a geometry column a SPATIAL index (gist on PostGIS) beside it, which
    the expected schema does not list. GDAL and PostGIS are not installable here, so the
    same catalog, made by hand on MariaDB, stands in: a geometry column and its index."""
    alias = fresh_db
    h.migrate(alias)
    h.sql(alias, "ALTER TABLE catalog_product ADD COLUMN location POINT NOT NULL")
    h.sql(alias, "CREATE SPATIAL INDEX catalog_product_location_id ON catalog_product (location)")
    report = diagnose(alias)
    assert [f.evidence["column"] for f in report.find("untracked-column")] == ["location"]
    assert leftovers(alias) == []


def test_an_index_a_package_renamed_by_rewriting_its_migration(fresh_db, migration_package):
    """django-taggit 4 -> 6: 0002's AlterIndexTogether rewritten into a named AddIndex, and
    a pending RenameIndex(old_fields=...). Before `migrate` the index is there under the
    name Django generated then: the named index, on its columns, not a leftover."""
    alias = fresh_db
    together = "        migrations.AlterIndexTogether('product', {('price', 'stock')}),\n"
    migration_package(
        "catalog", catalog_with(**{"0004_x": migration_source([AFTER_0003], together)})
    )
    h.migrate(alias)  # the old release
    named = (
        "        migrations.AddIndex('product', "
        "models.Index(fields=['price', 'stock'], name='catalog_prod_price_idx')),\n"
    )
    rename = (
        "        migrations.RenameIndex('product', new_name='catalog_prod_price_idx', "
        "old_fields=('price', 'stock')),\n"
    )
    migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_x": migration_source([AFTER_0003], named),
                "0005_rename": migration_source([("catalog", "0004_x")], rename),
            }
        ),
    )
    connection = connections[alias]
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "catalog_product")
    [old_name] = [n for n, c in constraints.items() if c["columns"] == ["price", "stock"]]
    assert old_name != "catalog_prod_price_idx"
    assert leftovers(alias) == []
    assert diagnose(alias).errors == []
    h.migrate(alias)
    assert "catalog_prod_price_idx" in live_index_names(alias, "catalog_product")
    assert leftovers(alias) == []


UNCONSTRAINED_FK = migration_source(
    [("catalog", "0003_product_sku_stock")],
    "        migrations.AddField(\n"
    "            'product', 'origin', models.ForeignKey(\n"
    "                'catalog.category', models.DO_NOTHING, db_constraint=False, null=True,\n"
    "                related_name='+',\n"
    "            ),\n"
    "        ),\n",
)


def test_the_index_of_a_foreign_key_without_constraint_is_not_a_leftover(
    fresh_db, migration_package
):
    """MySQL: Django indexes a ForeignKey(db_constraint=False) itself (no constraint makes
    InnoDB do it), as wagtail's log entries have; whether it did depended on the engine and
    db_constraint when the migration ran, so such an index is never called untracked."""
    migration_package("catalog", catalog_with(**{"0004_origin": UNCONSTRAINED_FK}))
    h.migrate(fresh_db, "catalog")
    assert diagnose(fresh_db).find("untracked-constraint") == []
