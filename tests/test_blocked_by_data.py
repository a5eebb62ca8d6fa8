"""A pending migration that the data in the database forbids: `blocked-by-data` (W007).

`migrate` would stop on it with an IntegrityError (and MySQL/MariaDB keep the DDL before
the failing statement, leaving it half applied): an `AlterField(unique=True)` over values
that repeat, and an `AddField(unique=True)` that gives every existing row the same default
(Django computes a default once, even a callable one). A pending RunPython before it, in its
app or in the migration itself, may fix the data first: then nothing is claimed.
"""

from __future__ import annotations

import dataclasses

import pytest
from django.db import IntegrityError

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity

from . import helpers as h
from .test_graph_findings import catalog_with, migration_source

AFTER_0003 = [("catalog", "0003_product_sku_stock")]
NAME_UNIQUE = (
    "        migrations.AlterField('category', 'name', "
    "models.CharField(max_length=100, unique=True)),\n"
)
CODE_UNIQUE = (
    "        migrations.AddField('category', 'code', "
    "models.CharField(max_length=20, unique=True, default='-')),\n"
)
DEDUPE = (
    "from django.db import migrations\n"
    "\n"
    "\n"
    "def dedupe(apps, schema_editor):\n"
    "    pass\n"
    "\n"
    "\n"
    "class Migration(migrations.Migration):\n"
    "    dependencies = [('catalog', '0003_product_sku_stock')]\n"
    "    operations = [migrations.RunPython(dedupe, migrations.RunPython.noop)]\n"
)


def categories(alias: str, *names: str) -> None:
    for i, name in enumerate(names):
        h.sql(
            alias,
            "INSERT INTO catalog_category (name, slug) VALUES (%s, %s)",
            (name, f"s{i}"),
        )


def blocked(alias: str) -> list:
    report = diagnose(alias)
    return [f for f in report.findings if f.kind == "blocked-by-data"]


def assert_migrate_fails_as_said(alias: str, message: str) -> None:
    quoted = message.split("IntegrityError: ", 1)[1].split(" MySQL/MariaDB keep")[0]
    with pytest.raises(IntegrityError) as caught:
        h.migrate(alias)
    for part in quoted.rstrip(".").split("..."):
        assert part.strip() in str(caught.value), (part, str(caught.value))


def test_a_unique_constraint_over_repeated_values(fresh_db, migration_package):
    migration_package(
        "catalog", catalog_with(**{"0004_name_unique": migration_source(AFTER_0003, NAME_UNIQUE)})
    )
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    categories(fresh_db, "Tea", "Tea", "Pots")
    [finding] = blocked(fresh_db)
    assert (finding.id, finding.severity) == ("migration_doctor.W007", Severity.WARNING)
    assert (finding.app, finding.migration) == ("catalog", "0004_name_unique")
    assert finding.evidence["constraint"] == "unique (name) on catalog_category"
    assert finding.evidence["duplicates"] == [{"values": ["Tea"], "rows": 2}]
    assert "`migrate` will fail on it: the data forbids unique (name) on catalog_category" in (
        finding.message
    )
    assert "2 rows hold 'Tea'" in finding.message
    # What it says is what happens (MySQL keeps nothing here: the ALTER is one statement).
    assert_migrate_fails_as_said(fresh_db, finding.message)
    # Once the values are unique, nothing blocks it and migrate applies it.
    h.sql(fresh_db, "UPDATE catalog_category SET name = 'Green tea' WHERE slug = 's1'")
    assert blocked(fresh_db) == []
    h.migrate(fresh_db)
    assert ("catalog", "0004_name_unique") in h.recorded(fresh_db)


@pytest.mark.parametrize("rows", [2, 1])
def test_a_unique_field_added_with_one_default_for_every_row(fresh_db, migration_package, rows):
    migration_package(
        "catalog", catalog_with(**{"0004_code": migration_source(AFTER_0003, CODE_UNIQUE)})
    )
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    categories(fresh_db, *["Tea", "Pots"][:rows])
    found = blocked(fresh_db)
    if rows == 1:
        assert found == []  # one row, one value: nothing collides
        h.migrate(fresh_db)
        return
    [finding] = found
    assert finding.evidence["new_column"] == "code"
    assert "gives every existing row the same value" in finding.message
    assert "Migrations that add unique fields" in finding.fix.summary
    assert_migrate_fails_as_said(fresh_db, finding.message)


def test_a_pending_runpython_before_it_may_fix_the_data(fresh_db, migration_package):
    migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_dedupe": DEDUPE,
                "0005_name_unique": migration_source([("catalog", "0004_dedupe")], NAME_UNIQUE),
            }
        ),
    )
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    categories(fresh_db, "Tea", "Tea")
    assert blocked(fresh_db) == []


def test_nullable_without_default_and_healthy_data_block_nothing(fresh_db, migration_package):
    nullable = CODE_UNIQUE.replace("default='-'", "null=True")
    migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_code": migration_source(AFTER_0003, nullable),
                "0005_name_unique": migration_source([("catalog", "0004_code")], NAME_UNIQUE),
            }
        ),
    )
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    categories(fresh_db, "Tea", "Pots")
    report = diagnose(fresh_db)
    assert [f for f in report.findings if f.severity >= Severity.WARNING] == [
        f for f in report.findings if f.kind == "model-changes"
    ]
    h.migrate(fresh_db)


def test_a_deploy_gate_fails_on_it(fresh_db, migration_package):
    """A warning, so a plain diagnosis passes; `--deploy` fails on it (the models here lag
    the migration, a model-changes warning that blocks a deploy too, so it is left out)."""
    migration_package(
        "catalog", catalog_with(**{"0004_name_unique": migration_source(AFTER_0003, NAME_UNIQUE)})
    )
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    categories(fresh_db, "Tea", "Tea")
    status, out = h.doctor(fresh_db, "--deploy")
    assert status == 1
    assert "W007 blocked-by-data  catalog.0004_name_unique" in out
    for deploy in (False, True):
        report = diagnose(fresh_db, deploy=deploy)
        only = dataclasses.replace(
            report, findings=[f for f in report.findings if f.kind != "model-changes"]
        )
        assert only.fails() is deploy
