"""An unrecorded migration whose columns exist with another type or NULL is not "already
done": recording it (`migrate --fake`) would leave the ORM writing what the migration says
into a column that is something else. Such a migration keeps its kind (table-exists) with
`type_conflicts` evidence, no repair records it, and a stale row beside it is not taken for
its old name (the red team's cases 01 and 02)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from migration_doctor.diagnose import Report, diagnose
from migration_doctor.findings import Severity

from . import helpers as h
from .conftest import BACKEND
from .test_graph_findings import catalog_with, migration_source
from .test_repair_guard import seeded, state
from .test_whole_plan import leaf_apps

AFTER_0003 = [("catalog", "0003_product_sku_stock")]
CODE = "        migrations.AddField('product', 'code', models.CharField({})),\n"
NOT_NULL_CODE = CODE.format("max_length=20, default='none'")
NULL_CODE = CODE.format("max_length=20, null=True")
INTEGER_CODE = "        migrations.AddField('product', 'code', models.IntegerField(null=True)),\n"
VARCHAR_20 = "character varying(20)" if BACKEND == "postgres" else "varchar(20)"


def integer_null(actual: str) -> bool:
    """`integer NULL` as each catalog spells it (MariaDB: int(11), MySQL 8: int)."""
    spellings = ("int(11) NULL", "int NULL") if BACKEND == "mysql" else ("integer NULL",)
    return actual in spellings


def with_0004(name: str, operations: str, **more: str) -> dict[str, str]:
    return catalog_with(**{name: migration_source(AFTER_0003, operations)}, **more)


def add_column(alias: str, definition: str) -> None:
    """The column added by hand (a legacy script, another branch), with a value in it."""
    table, code = h.qn(alias, "catalog_product"), h.qn(alias, "code")
    h.sql(alias, f"ALTER TABLE {table} ADD COLUMN {code} {definition}")


def conflicts(report: Report) -> dict[str, Any]:
    return {
        f"{f.kind} {f.migration}": f.evidence["type_conflicts"]
        for f in report.findings
        if "type_conflicts" in f.evidence
    }


def problems(report: Report) -> list[tuple[str, str | None]]:
    """Warnings and errors, but the models' (the catalog models have no `code` field)."""
    return sorted(
        (f.kind, f.migration)
        for f in report.findings
        if f.severity >= Severity.WARNING and f.kind != "model-changes"
    )


def create_product(alias: str, **values: Any) -> None:
    """An ORM insert, with the models as the migration files define them."""
    models = leaf_apps(alias)
    category = models.get_model("catalog", "Category").objects.using(alias).get(slug="tea")
    models.get_model("catalog", "Product").objects.using(alias).create(
        name="Bancha",
        price=Decimal("2.10"),
        created_at=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
        category=category,
        **values,
    )


def test_a_column_added_by_hand_with_another_type(fresh_db, migration_package):
    """Red-team case 01: 0004 adds code varchar(20) NOT NULL; the column is there as
    `integer NULL`. Not "everything it does is already done", and nothing is recorded."""
    migration_package("catalog", with_0004("0004_code", NOT_NULL_CODE))
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    seeded(fresh_db)
    add_column(fresh_db, "integer NULL")
    h.sql(fresh_db, "UPDATE catalog_product SET code = 7")

    report = diagnose(fresh_db)
    assert problems(report) == [("table-exists", "0004_code")]
    [finding] = report.find("table-exists", "catalog", "0004_code")
    assert finding.id == "migration_doctor.E001"
    [conflict] = finding.evidence["type_conflicts"]
    assert conflict["column"] == "catalog_product.code"
    assert conflict["expected"] == "varchar(20) NOT NULL"
    assert integer_null(conflict["actual"]), conflict
    assert finding.evidence["present"] == ["column catalog_product.code"]
    assert "everything it does is already done" not in finding.message
    assert (
        f"but not as it creates it: catalog_product.code is {conflict['actual']}, not "
        "varchar(20) NOT NULL. Recording it (`migrate --fake`) would leave the project broken"
    ) in finding.message
    assert finding.fix.commands == ("python manage.py sqlmigrate catalog 0004_code",)

    before = state(fresh_db)
    status, out = h.fix(fresh_db)
    assert status == 1, out  # the error stays: it is the people's to settle
    assert (
        f"[table-exists] catalog.0004_code: catalog_product.code is {conflict['actual']}, not "
        "varchar(20) NOT NULL: recording it would leave the project broken"
    ) in out, out
    assert "Record catalog.0004_code" not in out
    assert state(fresh_db) == before  # no row, no column, no value changed
    assert ("catalog", "0004_code") not in h.recorded(fresh_db)


def test_the_same_column_with_the_right_type_is_recorded(fresh_db, migration_package):
    """The control: the column added by hand as the migration creates it is E001 as before,
    and the repair records the migration; the ORM then writes the column."""
    migration_package("catalog", with_0004("0004_code", NOT_NULL_CODE))
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    seeded(fresh_db)
    add_column(fresh_db, "varchar(20) NOT NULL DEFAULT 'none'")

    report = diagnose(fresh_db)
    assert problems(report) == [("table-exists", "0004_code")]
    [finding] = report.find("table-exists", "catalog", "0004_code")
    assert "type_conflicts" not in finding.evidence
    assert "everything it does is already done" in finding.message

    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert "Record catalog.0004_code without running it" in out
    assert ("catalog", "0004_code") in h.recorded(fresh_db)
    h.migrate(fresh_db)
    create_product(fresh_db, code="abc")
    assert sorted(h.sql(fresh_db, "SELECT code FROM catalog_product")) == [("abc",), ("none",)]
    assert problems(diagnose(fresh_db)) == []


@pytest.mark.parametrize("other_branch", ["integer", "same-column"])
def test_a_branch_switch_is_not_a_rename(fresh_db, migration_package, other_branch):
    """Red-team case 02: branch B's 0004_b_code (code integer NULL) ran; branch A's
    0004_a_code adds code varchar(20) NOT NULL. Not the same migration renamed: the stale
    row stays a stale row, and 0004_a_code says what differs. The control: where branch B's
    migration made the very column, the row is renamed as before."""
    theirs = INTEGER_CODE if other_branch == "integer" else NOT_NULL_CODE
    migration_package("catalog", with_0004("0004_b_code", theirs))
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    seeded(fresh_db)
    h.migrate(fresh_db)
    migration_package("catalog", with_0004("0004_a_code", NOT_NULL_CODE))  # branch A

    report = diagnose(fresh_db)
    if other_branch == "same-column":
        assert problems(report) == [("renamed-migration", "0004_a_code")]
        assert conflicts(report) == {}
        return
    assert problems(report) == [("stale-record", "0004_b_code"), ("table-exists", "0004_a_code")]
    assert report.find("renamed-migration") == []
    [conflict] = conflicts(report)["table-exists 0004_a_code"]
    assert conflict["column"] == "catalog_product.code"
    assert conflict["expected"] == "varchar(20) NOT NULL" and integer_null(conflict["actual"])

    products = state(fresh_db)[1]["catalog_product"]
    status, out = h.fix(fresh_db)
    assert status == 1, out  # the stale row is deleted, the error stays
    assert "Rename the row" not in out and "Record catalog.0004_a_code" not in out, out
    assert "[table-exists] catalog.0004_a_code: catalog_product.code is" in out, out
    assert state(fresh_db)[1]["catalog_product"] == products
    catalog = {n for a, n in h.recorded(fresh_db) if a == "catalog"}
    assert catalog == set(h.app_migration_sources("catalog"))  # only the stale row went
    after = diagnose(fresh_db)
    assert problems(after) == [("table-exists", "0004_a_code")]
    assert conflicts(after) == conflicts(report)


@pytest.mark.parametrize(
    ("creates", "by_hand", "expected", "actual"),
    [
        (NOT_NULL_CODE, "varchar(20) NULL", "varchar(20) NOT NULL", f"{VARCHAR_20} NULL"),
        (
            NULL_CODE,
            "varchar(20) NOT NULL DEFAULT 'x'",
            "varchar(20) NULL",
            f"{VARCHAR_20} NOT NULL",
        ),
    ],
    ids=["null-in-the-database", "not-null-in-the-database"],
)  # fmt: skip
def test_only_null_differs(fresh_db, migration_package, creates, by_hand, expected, actual):
    migration_package("catalog", with_0004("0004_code", creates))
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    seeded(fresh_db)
    add_column(fresh_db, by_hand)

    report = diagnose(fresh_db)
    assert problems(report) == [("table-exists", "0004_code")]
    assert conflicts(report) == {
        "table-exists 0004_code": [
            {"column": "catalog_product.code", "expected": expected, "actual": actual}
        ]
    }
    before = state(fresh_db)
    status, out = h.fix(fresh_db)
    assert status == 1 and "Not repaired" in out, out
    assert state(fresh_db) == before


ALTER_CODE = migration_source(
    [("catalog", "0004_code")],
    "        migrations.AlterField('product', 'code', models.IntegerField(null=True)),\n",
)


@pytest.mark.parametrize("later", ["unrecorded", "recorded"])
def test_a_later_alterfield_changes_the_type(fresh_db, migration_package, later):
    """0004 adds code varchar(20) NOT NULL, 0005 makes it integer NULL; both ran, and the
    rows of 0004 (and of 0005) are gone. The column shows 0005's type: no conflict, since
    which of the two states the schema shows cannot be told from the column. 0004 is
    recorded as before, and `migrate` runs 0005's AlterField again harmlessly."""
    migration_package(
        "catalog", with_0004("0004_code", NOT_NULL_CODE, **{"0005_alter_code": ALTER_CODE})
    )
    h.migrate(fresh_db)
    seeded(fresh_db)
    # Not NULL: MySQL's re-run of 0005 (MODIFY integer NOT NULL first) would refuse a NULL.
    h.sql(fresh_db, "UPDATE catalog_product SET code = 3")
    h.unrecord(fresh_db, "catalog", "0004_code")
    if later == "unrecorded":
        h.unrecord(fresh_db, "catalog", "0005_alter_code")

    report = diagnose(fresh_db)
    assert conflicts(report) == {}
    [finding] = report.find("table-exists", "catalog", "0004_code")
    assert finding.evidence["present"] == ["column catalog_product.code"]
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert ("catalog", "0004_code") in h.recorded(fresh_db)
    h.migrate(fresh_db)
    create_product(fresh_db, code=5)
    codes = h.sql(fresh_db, "SELECT code FROM catalog_product ORDER BY id")
    assert codes == [(3,), (5,)]
    assert problems(diagnose(fresh_db)) == []


ORIGIN = migration_source(
    [("catalog", "0004_code")],
    "        migrations.AddField('product', 'origin', models.TextField(null=True)),\n",
)


def test_a_recorded_dependent_does_not_get_it_recorded(fresh_db, migration_package):
    """0005 is recorded, 0004 (its dependency) is not and its column is integer NULL:
    the inconsistent history says what differs and is not repaired by recording 0004."""
    migration_package("catalog", with_0004("0004_code", NOT_NULL_CODE, **{"0005_origin": ORIGIN}))
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    seeded(fresh_db)
    h.migrate(fresh_db)
    table, code = h.qn(fresh_db, "catalog_product"), h.qn(fresh_db, "code")
    h.sql(fresh_db, f"ALTER TABLE {table} DROP COLUMN {code}")
    add_column(fresh_db, "integer NULL")
    h.unrecord(fresh_db, "catalog", "0004_code")

    report = diagnose(fresh_db)
    found = conflicts(report)
    assert sorted(found) == ["inconsistent-history 0005_origin", "table-exists 0004_code"]
    assert found["inconsistent-history 0005_origin"] == found["table-exists 0004_code"]
    [history] = report.find("inconsistent-history")
    assert history.evidence["dependency_schema"] == "present"
    assert "recording it as it is would leave the project broken" in history.fix.summary
    before = state(fresh_db)
    status, out = h.fix(fresh_db)
    assert status == 1, out
    assert "[inconsistent-history] catalog.0005_origin: catalog.0004_code: catalog_product" in out
    assert state(fresh_db) == before


def box(label: str) -> str:
    """0004_box: Box with an integer id (AutoField), a label, and tags through an
    auto-created table whose own id is a bigint (DEFAULT_AUTO_FIELD), named to sort first."""
    return migration_source(
        AFTER_0003,
        "        migrations.CreateModel(\n"
        "            name='Box',\n"
        "            fields=[\n"
        "                ('id', models.AutoField(auto_created=True, primary_key=True, "
        "serialize=False, verbose_name='ID')),\n"
        f"                ('label', {label}),\n"
        "                ('tags', models.ManyToManyField(to='catalog.tag', "
        "db_table='catalog_a_box_tags')),\n"
        "            ],\n"
        "        ),\n",
    )


@pytest.mark.parametrize(
    "label", ["models.IntegerField(null=True)", "models.CharField(max_length=30)"]
)
def test_a_table_made_with_other_columns(fresh_db, migration_package, label):
    """A CreateModel whose table exists with label integer NULL (another branch's 0004_box
    ran, its row went): only the model's own columns are compared, so the M2M table's bigint
    id is not taken for Box's integer id."""
    migration_package(
        "catalog", catalog_with(**{"0004_box": box("models.IntegerField(null=True)")})
    )
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0004_box")
    migration_package("catalog", catalog_with(**{"0004_box": box(label)}))

    report = diagnose(fresh_db)
    assert problems(report) == [("table-exists", "0004_box")]
    found = conflicts(report)
    if label.startswith("models.IntegerField"):
        assert found == {}
        return
    [conflict] = found["table-exists 0004_box"]
    assert conflict["column"] == "catalog_box.label"
    assert conflict["expected"] == "varchar(30) NOT NULL" and integer_null(conflict["actual"])


COUNT_PRODUCTS = (
    "from django.db import migrations, models\n"
    "\n"
    "\n"
    "def count_products(apps, schema_editor):\n"
    "    apps.get_model('catalog', 'Product').objects.count()\n"
    "\n"
    "\n"
    "class Migration(migrations.Migration):\n"
    "    dependencies = [('catalog', '0003_product_sku_stock')]\n"
    "    operations = [migrations.RunPython(count_products, migrations.RunPython.noop)]\n"
)


@pytest.mark.parametrize("column", ["integer NULL", "varchar(20) NOT NULL DEFAULT 'none'"])
def test_a_later_migration_of_another_type_does_not_vouch_for_earlier_code(
    fresh_db, migration_package, column
):
    """0004 runs Python, 0005 adds code: with 0005's column there as 0005 creates it, 0004
    ran before it and is recorded (`ran_before`); with the column of another type nothing
    says 0005 (and so 0004) ran: 0004 is pending, and nothing is recorded."""
    migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_count": COUNT_PRODUCTS,
                "0005_code": migration_source([("catalog", "0004_count")], NOT_NULL_CODE),
            }
        ),
    )
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    seeded(fresh_db)
    add_column(fresh_db, column)

    report = diagnose(fresh_db)
    if column.startswith("integer"):
        assert problems(report) == [("table-exists", "0005_code")]
        assert sorted(conflicts(report)) == ["table-exists 0005_code"]
        assert [f.kind for f in report.findings if f.migration == "0004_count"] == ["unapplied"]
        before = state(fresh_db)
        status, out = h.fix(fresh_db)
        assert status == 1, out
        assert state(fresh_db) == before
        return
    assert problems(report) == [("table-exists", "0004_count"), ("table-exists", "0005_code")]
    [count] = report.find("table-exists", "catalog", "0004_count")
    assert count.evidence["ran_before"] == "catalog.0005_code"
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert {("catalog", "0004_count"), ("catalog", "0005_code")} <= h.recorded(fresh_db)


ORIGIN_TOO = "        migrations.AddField('product', 'origin', models.TextField(null=True)),\n"


@pytest.mark.parametrize("value", [7, None], ids=["holding-data", "empty"])
def test_a_half_applied_migration_is_not_completed_over_it(fresh_db, migration_package, value):
    """0004 adds code and origin; code is there as integer NULL, origin is not. Completing
    0004 and recording it would keep the integer: the present part is rolled back instead
    when it holds nothing (then `migrate` creates it as 0004 says), refused when it does."""
    migration_package("catalog", with_0004("0004_code", NOT_NULL_CODE + ORIGIN_TOO))
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    seeded(fresh_db)
    add_column(fresh_db, "integer NULL")
    h.sql(fresh_db, "UPDATE catalog_product SET code = %s", (value,))

    report = diagnose(fresh_db)
    assert problems(report) == [("partially-applied", "0004_code")]
    [conflict] = conflicts(report)["partially-applied 0004_code"]
    assert conflict["column"] == "catalog_product.code" and integer_null(conflict["actual"])
    [finding] = report.find("partially-applied")
    assert "And what is present is not as it creates it: catalog_product.code is" in (
        finding.message
    )
    before = state(fresh_db)
    status, out = h.fix(fresh_db)
    assert "Run the missing operation(s)" not in out, out
    if value is not None:
        assert status == 1, out
        assert "completing and recording it would leave them so; rolling the present part " in out
        assert "would drop data (column catalog_product.code (1))" in out, out
        assert state(fresh_db) == before
        return
    assert status == 0, out
    assert "Roll back the present part of catalog.0004_code (column catalog_product.code)" in out
    h.migrate(fresh_db)
    create_product(fresh_db, code="abc", origin="Shizuoka")
    assert conflicts(diagnose(fresh_db)) == {}
