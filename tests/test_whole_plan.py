"""Whole-plan inference on real databases: a later migration done by hand (never
recorded) explains what an earlier one seems to miss, and the repair records it instead of
re-creating what it removed."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connections
from django.db.migrations.loader import MigrationLoader

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity

from . import helpers as h
from .test_graph_findings import catalog_with, migration_source
from .test_repair_guard import seeded, state

AFTER_0003 = [("catalog", "0003_product_sku_stock")]
BY_HAND = {
    "rename": (
        "        migrations.RenameField('product', 'stock', 'quantity'),\n",
        "RENAME COLUMN {stock} TO {quantity}",
    ),
    "remove": ("        migrations.RemoveField('product', 'stock'),\n", "DROP COLUMN {stock}"),
}


def leaf_apps(alias: str):
    """The models as the migration files define them at their leaves (what makemigrations
    would make the models say): the ORM view of the repaired project."""
    return MigrationLoader(connections[alias]).project_state().apps


@pytest.mark.parametrize("change", sorted(BY_HAND))
def test_a_later_migration_done_by_hand(fresh_db, migration_package, change):
    operation, alter = BY_HAND[change]
    migration_package(
        "catalog", catalog_with(**{"0004_by_hand": migration_source(AFTER_0003, operation)})
    )
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    seeded(fresh_db)
    names = {n: h.qn(fresh_db, n) for n in ("stock", "quantity")}
    h.sql(fresh_db, f"ALTER TABLE {h.qn(fresh_db, 'catalog_product')} " + alter.format(**names))

    report = diagnose(fresh_db)
    wrong = [f for f in report.findings if f.severity >= Severity.ERROR]
    assert [(f.kind, f.migration) for f in wrong] == [("table-exists", "0004_by_hand")]
    [position] = report.positions
    assert position.describe() == (
        "schema matches catalog up to 0004_by_hand; rows say 0003_product_sku_stock"
    )
    data = json.loads(_json(fresh_db))
    assert data["positions"] == [position.as_dict()]
    assert data["positions"][0]["shown"] == ["0004_by_hand"]

    before = state(fresh_db)[1]["catalog_product"]
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert "Record catalog.0004_by_hand without running it" in out
    assert state(fresh_db)[1]["catalog_product"] == before  # no DDL: every value kept
    assert ("catalog", "0004_by_hand") in h.recorded(fresh_db)
    h.migrate(fresh_db)  # Django agrees: nothing left to apply, nothing fails
    # The project works: the ORM (as the migrations define the models) writes and reads.
    models = leaf_apps(fresh_db)
    Product = models.get_model("catalog", "Product")
    Category = models.get_model("catalog", "Category")
    cat = Category.objects.using(fresh_db).get(slug="tea")
    extra = {"quantity": 3} if change == "rename" else {}
    Product.objects.using(fresh_db).create(
        name="Genmaicha",
        price=Decimal("3.20"),
        created_at=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
        category=cat,
        **extra,
    )
    names_ = sorted(Product.objects.using(fresh_db).values_list("name", flat=True))
    assert names_ == ["Genmaicha", "Sencha"]
    if change == "rename":
        assert h.sql(fresh_db, "SELECT quantity FROM catalog_product ORDER BY id") == [(7,), (3,)]
    after = diagnose(fresh_db)
    problems = [
        f.as_dict()
        for f in after.findings
        if f.severity >= Severity.WARNING and f.kind != "model-changes"
    ]
    assert problems == [] and after.positions == []


def _json(alias: str) -> str:
    out = io.StringIO()
    with contextlib.suppress(SystemExit):
        call_command("migration_doctor", "--format", "json", database=alias, stdout=out)
    return out.getvalue()


def renamed_orders(migration_package, dependent: bool) -> None:
    """orders.0002_order_note renamed to 0002_note after it was applied (a rebase, a tidy-up);
    with `dependent`, 0003 (recorded) now depends on the new name."""
    sources = h.app_migration_sources("orders")
    sources["0002_note"] = sources.pop("0002_order_note")
    if dependent:
        sources["0003_order_default_notes"] = sources["0003_order_default_notes"].replace(
            '("orders", "0002_order_note")', '("orders", "0002_note")'
        )
    else:
        del sources["0003_order_default_notes"]
    migration_package("orders", sources)


ROW_0002 = "SELECT id, applied FROM django_migrations WHERE app = 'orders' AND name = %s"


@pytest.mark.parametrize("dependent", [False, True], ids=["last", "with-dependent"])
def test_a_renamed_migration_is_one_finding_and_keeps_its_row(
    fresh_db, migration_package, dependent
):
    h.migrate(fresh_db)
    models = leaf_apps(fresh_db)
    user = models.get_model("auth", "User").objects.using(fresh_db).create(username="ann")
    order = models.get_model("orders", "Order")
    order.objects.using(fresh_db).create(customer_id=user.pk, note="keep")
    if not dependent:
        h.unrecord(fresh_db, "orders", "0003_order_default_notes")
    [(row_id, applied)] = h.sql(fresh_db, ROW_0002, ("0002_order_note",))
    renamed_orders(migration_package, dependent)

    report = diagnose(fresh_db)
    problems = [(f.kind, f.migration) for f in report.findings if f.severity >= Severity.WARNING]
    assert problems == [("renamed-migration", "0002_note")]
    [finding] = report.find("renamed-migration")
    assert finding.id == "migration_doctor.E012"
    assert finding.evidence["row_id"] == row_id
    assert finding.evidence["old_name"] == "0002_order_note"
    dependents = ["orders.0003_order_default_notes"] if dependent else []
    assert finding.evidence["dependents"] == dependents
    assert finding.fix.commands[0].startswith("UPDATE ")

    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert "Rename the row of orders.0002_order_note to orders.0002_note" in out
    assert h.sql(fresh_db, ROW_0002, ("0002_note",)) == [(row_id, applied)]
    h.migrate(fresh_db)
    order = leaf_apps(fresh_db).get_model("orders", "Order")
    order.objects.using(fresh_db).create(customer_id=user.pk)
    notes = sorted(order.objects.using(fresh_db).values_list("note", flat=True))
    assert notes == ["", "keep"]
    after = diagnose(fresh_db)
    assert [f.as_dict() for f in after.findings if f.severity >= Severity.WARNING] == []


def test_django_migrations_dropped(fresh_db):
    """A dump restored without django_migrations, on a project with the contrib apps: every
    migration is table-exists (contenttypes.0002's only Python step is RunPython.noop, which
    proves nothing is skipped); the repair re-creates the table as Django's recorder does,
    outside the row transaction, and records them all."""
    h.migrate(fresh_db)
    seeded(fresh_db)
    data = state(fresh_db)[1]
    expected_rows = h.recorded(fresh_db)
    h.drop_table(fresh_db, "django_migrations")
    report = diagnose(fresh_db)
    kinds = {f.kind for f in report.findings if f.severity >= Severity.WARNING}
    assert kinds == {"table-exists"}, [f.as_dict() for f in report.findings]
    noop = report.find("table-exists", "contenttypes", "0002_remove_content_type_name")
    assert noop and "unverifiable_operations" not in noop[0].evidence
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert "Not repaired" not in out
    # What the schema proves is recorded; migrations without a checkable effect (AlterField
    # of a max_length, RunPython) are left to migrate, which re-runs them harmlessly.
    proven = {(f.app, f.migration) for f in report.find("table-exists")}
    assert h.recorded(fresh_db) == proven and proven < expected_rows
    h.migrate(fresh_db)
    assert h.recorded(fresh_db) == expected_rows
    doctor = ("django_migrations", "migration_doctor_ledger")
    after = state(fresh_db)[1]
    assert {t: v for t, v in after.items() if t not in doctor} == {
        t: v for t, v in data.items() if t not in doctor
    }
    models = leaf_apps(fresh_db)
    user = models.get_model("auth", "User").objects.using(fresh_db).create(username="bo")
    models.get_model("orders", "Order").objects.using(fresh_db).create(customer_id=user.pk)
    assert models.get_model("orders", "Order").objects.using(fresh_db).count() == 1
    assert [f for f in diagnose(fresh_db).findings if f.severity >= Severity.INFO] == []


BARCODE = (
    "        migrations.AddField('product', 'barcode', models.CharField(max_length=20,"
    " default='-'), preserve_default=False),\n"
    "        migrations.AddField('product', 'origin', models.TextField(null=True)),\n"
)


def test_a_branch_switch_leaves_a_column_that_breaks_inserts(fresh_db, migration_package):
    """A migration of another branch ran (NOT NULL barcode without a default, a nullable
    origin), then the branch was switched: its file is gone, its row and columns stay. The
    stale row is reported and pruned; the columns are reported before and after, the NOT NULL
    one as a warning because every insert fails on it."""
    migration_package(
        "catalog", catalog_with(**{"0004_product_barcode": migration_source(AFTER_0003, BARCODE)})
    )
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    seeded(fresh_db)
    h.migrate(fresh_db)  # the existing row gets barcode '-'
    migration_package("catalog", catalog_with())  # back on the main branch
    report = diagnose(fresh_db)
    kinds = sorted((f.kind, f.id, f.evidence.get("column")) for f in report.findings)
    assert ("stale-record", "migration_doctor.W001", None) in kinds
    assert ("untracked-column", "migration_doctor.W005", "barcode") in kinds
    assert ("untracked-column", "migration_doctor.I006", "origin") in kinds
    [warning] = report.find("untracked-column")[:1]
    assert "every insert into catalog.product fails" in warning.message
    status, out = h.fix(fresh_db)
    assert status == 0, out  # a warning; and not something --fix drops data for
    assert "untracked-column" not in out.split("After the repair:")[0]
    after = diagnose(fresh_db)
    assert [(f.kind, f.evidence.get("column")) for f in after.findings] == [
        ("untracked-column", "barcode"),
        ("untracked-column", "origin"),
    ]
    # The warning is real: the ORM, which knows no barcode, cannot insert.
    Product = leaf_apps(fresh_db).get_model("catalog", "Product")
    cat = leaf_apps(fresh_db).get_model("catalog", "Category").objects.using(fresh_db).first()
    with pytest.raises(IntegrityError) as caught:
        Product.objects.using(fresh_db).create(
            name="x", price=1, category_id=cat.pk, created_at="2025-01-01T00:00:00Z"
        )
    # ... with the very error the warning quotes, on each backend.
    quoted = warning.message.split("fails with: ", 1)[1].rstrip(".")
    assert quoted in str(caught.value), (quoted, str(caught.value))


COUNT_PRODUCTS = (
    "from django.db import migrations, models\n"
    "\n"
    "\n"
    "def count_products(apps, schema_editor):\n"
    "    product = apps.get_model('catalog', 'Product')\n"
    "    product.objects.using(schema_editor.connection.alias).count()\n"
    "\n"
    "\n"
    "class Migration(migrations.Migration):\n"
    "    dependencies = [('catalog', '0003_product_sku_stock')]\n"
    "    operations = [\n"
    "        migrations.RemoveField('product', 'stock'),\n"
    "        migrations.RunPython(count_products, migrations.RunPython.noop),\n"
    "    ]\n"
)
STOCK_AGAIN = migration_source(
    [("catalog", "0004_drop_stock")],
    "        migrations.AddField('product', 'stock', models.IntegerField(default=0)),\n",
)
# Without a later change the schema at 0005 is the schema at 0003 (the same column stock):
# two positions fit equally, and nothing is repaired automatically.
ORIGIN = migration_source(
    [("catalog", "0005_stock_again")],
    "        migrations.AddField('product', 'origin', models.TextField(null=True)),\n",
)


@pytest.mark.parametrize("at", ["0006_origin", "0004_drop_stock"])
def test_a_wiped_history_where_a_later_migration_undoes_an_earlier_one(
    fresh_db, migration_package, at
):
    """0004 drops product.stock (and runs Python), 0005 adds a new stock: with every row
    gone and the schema at 0005, 0004's column is there, yet 0004 ran -- 0005, which
    depends on it, is in the database. It is recorded, not reported partially applied (and
    never run again: that would drop the new column's values). At 0004 nothing vouches for
    its Python step, so recording it stays unproven."""
    migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_drop_stock": COUNT_PRODUCTS,
                "0005_stock_again": STOCK_AGAIN,
                "0006_origin": ORIGIN,
            }
        ),
    )
    h.migrate(fresh_db)
    h.migrate(fresh_db, "catalog", at)
    if at == "0006_origin":
        seeded(fresh_db)
    h.sql(fresh_db, "DELETE FROM django_migrations")
    report = diagnose(fresh_db)
    errors = {
        (f.kind, f.app, f.migration)
        for f in report.findings
        if f.severity >= Severity.WARNING and f.kind != "model-changes"  # origin
    }
    if at == "0004_drop_stock":
        # Its column is gone and nothing after it shows: whether its Python ran is unknown.
        [drop] = report.find("partially-applied", "catalog", "0004_drop_stock")
        assert "ran_before" not in drop.evidence
        assert drop.evidence["not_known_to_have_run"] == ["RunPython(count_products)"]
        status, out = h.fix(fresh_db)
        assert "catalog.0004_drop_stock: not proven by evidence" in out, out
        assert ("catalog", "0004_drop_stock") not in h.recorded(fresh_db)
        return
    assert {k for k, _, _ in errors} == {"table-exists"}, [f.as_dict() for f in report.findings]
    [drop] = report.find("table-exists", "catalog", "0004_drop_stock")
    assert drop.evidence["ran_before"] == "catalog.0006_origin"
    assert drop.evidence["changed_again_later"] == ["column catalog_product.stock"]
    assert "which depends on it, is in the database, so it ran before it" in drop.message
    [position] = [p for p in report.positions if p.app == "catalog"]
    assert position.schema == ("0006_origin",)

    before = state(fresh_db)[1]["catalog_product"]
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert "Not repaired" not in out
    assert "Record catalog.0004_drop_stock without running it" in out
    catalog = {n for a, n in h.recorded(fresh_db) if a == "catalog"}
    assert catalog == {
        *h.app_migration_sources("catalog"),
        "0004_drop_stock",
        "0005_stock_again",
        "0006_origin",
    }
    assert state(fresh_db)[1]["catalog_product"] == before  # stock's 7 is kept
    h.migrate(fresh_db)
    models = leaf_apps(fresh_db)
    cat = models.get_model("catalog", "Category").objects.using(fresh_db).get(slug="tea")
    Product = models.get_model("catalog", "Product")
    Product.objects.using(fresh_db).create(
        name="Bancha",
        price=Decimal("2.10"),
        created_at=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
        category=cat,
        stock=2,
    )
    stocks = sorted(Product.objects.using(fresh_db).values_list("stock", flat=True))
    assert stocks == [2, 7]
    after = diagnose(fresh_db)
    problems = [
        f.as_dict()
        for f in after.findings
        if f.severity >= Severity.WARNING and f.kind != "model-changes"  # origin
    ]
    assert problems == []


def test_a_rename_half_done_by_hand_is_never_rolled_back(fresh_db, migration_package):
    """0004 renames Tag to Label; someone renamed the table by hand but not the column of
    the many-to-many table. Rolling back "the present part" would drop catalog_label and
    leave no tag table at all (even empty, even with --allow-data-loss): refused, saying
    why, and nothing changes."""
    migration_package(
        "catalog",
        catalog_with(**{"0004_label": migration_source(AFTER_0003, RENAME_TAG)}),
    )
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    seeded(fresh_db)
    h.sql(
        fresh_db,
        f"ALTER TABLE {h.qn(fresh_db, 'catalog_tag')} RENAME TO {h.qn(fresh_db, 'catalog_label')}",
    )
    [finding] = diagnose(fresh_db).find("partially-applied", "catalog", "0004_label")
    assert finding.evidence["already_removed"] == ["table catalog_tag"]
    before = state(fresh_db)
    status, out = h.fix(fresh_db, "--allow-data-loss")
    assert status == 1, out
    assert (
        "what it removes is already gone (table catalog_tag): dropping what it created "
        "(table catalog_label) would not bring that back" in out
    ), out
    assert state(fresh_db) == before
    assert "catalog_label" in h.tables(fresh_db)


RENAME_TAG = "        migrations.RenameModel('Tag', 'Label'),\n"
