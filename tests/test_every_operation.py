"""Every built-in operation, done and never recorded (a dump restored without its
django_migrations rows, a row deleted by hand): the doctor sees exactly the effect the
backend really made, on every backend. Its migration is `table-exists` and nothing else;
`--fix` records it without touching a value; `migrate` and the ORM work afterwards; the
re-diagnosis is clean. And not applied at all, the same migration is only `unapplied`:
its effect is never seen where it is not.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any

import pytest
from django.db import models

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity

from . import helpers as h
from .test_graph_findings import migration_source
from .test_repair_guard import seeded, state
from .test_whole_plan import leaf_apps

CATALOG_0003 = ("catalog", "0003_product_sku_stock")
ORDERS_0003 = ("orders", "0003_order_default_notes")

# name: (app, operations of 0004, models to write and read afterwards)
OPERATIONS: dict[str, tuple[str, str, list[str]]] = {
    "AddField": (
        "catalog",
        "migrations.AddField('category', 'note', models.CharField(max_length=20, null=True))",
        ["catalog.Category"],
    ),
    "AddField-unique": (
        "catalog",
        "migrations.AddField('category', 'code', "
        "models.CharField(max_length=10, null=True, unique=True))",
        ["catalog.Category"],
    ),
    "AddField-m2m": (
        "catalog",
        "migrations.AddField('category', 'tags', models.ManyToManyField(to='catalog.tag'))",
        ["catalog.Category"],
    ),
    "RemoveField": ("catalog", "migrations.RemoveField('product', 'stock')", ["catalog.Product"]),
    "RenameField": (
        "catalog",
        "migrations.RenameField('product', 'stock', 'quantity')",
        ["catalog.Product"],
    ),
    "AlterField-db_column": (
        "catalog",
        "migrations.AlterField('product', 'sku', models.CharField(max_length=32, null=True, "
        "blank=True, db_column='sku_code'))",
        ["catalog.Product"],
    ),
    "AlterField-unique": (
        "catalog",
        "migrations.AlterField('category', 'name', models.CharField(max_length=100, unique=True))",
        ["catalog.Category"],
    ),
    "AddIndex": (
        "catalog",
        "migrations.AddIndex('product', models.Index(fields=['price'], name='cat_price_idx'))",
        ["catalog.Product"],
    ),
    "RemoveIndex": (
        "catalog",
        "migrations.RemoveIndex('product', 'catalog_product_name_idx')",
        ["catalog.Product"],
    ),
    "RenameIndex": (
        "catalog",
        "migrations.RenameIndex('product', new_name='cat_prod_nm_idx', "
        "old_name='catalog_product_name_idx')",
        ["catalog.Product"],
    ),
    "AddConstraint-check": (
        "catalog",
        "migrations.AddConstraint('product', models.CheckConstraint("
        "condition=models.Q(stock__gte=0), name='stock_not_negative'))",
        ["catalog.Product"],
    ),
    "AddConstraint-unique": (
        "catalog",
        "migrations.AddConstraint('product', models.UniqueConstraint("
        "fields=['name', 'category'], name='product_name_per_category'))",
        ["catalog.Product"],
    ),
    "RemoveConstraint": (
        "orders",
        "migrations.RemoveConstraint('orderline', 'order_line_unique_product')",
        ["orders.OrderLine"],
    ),
    "AlterUniqueTogether": (
        "catalog",
        "migrations.AlterUniqueTogether('product', {('name', 'category')})",
        ["catalog.Product"],
    ),
    "CreateModel": (
        "catalog",
        "migrations.CreateModel('Shelf', [('id', models.BigAutoField(primary_key=True)), "
        "('label', models.CharField(max_length=20, unique=True)), "
        "('tags', models.ManyToManyField(to='catalog.tag'))])",
        ["catalog.Shelf"],
    ),
    "DeleteModel": (
        "catalog",
        "migrations.RemoveField('product', 'tags'),\n        migrations.DeleteModel('Tag')",
        ["catalog.Product"],
    ),
    "RenameModel": ("catalog", "migrations.RenameModel('Tag', 'Label')", ["catalog.Label"]),
    "AlterModelTable": (
        "catalog",
        "migrations.AlterModelTable('category', 'catalog_cats')",
        ["catalog.Category"],
    ),
    "AlterOrderWithRespectTo": (
        "catalog",
        "migrations.AlterOrderWithRespectTo('product', 'category')",
        ["catalog.Product"],
    ),
    "SeparateDatabaseAndState": (
        "catalog",
        "migrations.SeparateDatabaseAndState(database_operations=[migrations.AddField("
        "'category', 'note', models.CharField(max_length=20, null=True))], state_operations=["
        "migrations.AddField('category', 'note', models.CharField(max_length=20, null=True))])",
        ["catalog.Category"],
    ),
    "AddField-with-RunPython.noop": (
        "catalog",
        "migrations.AddField('category', 'note', models.CharField(max_length=20, null=True)),"
        "\n        migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)",
        ["catalog.Category"],
    ),
}


@pytest.fixture(params=sorted(OPERATIONS))
def operation(request, fresh_db, migration_package):
    """The app's migrations plus 0004 doing the operation; the database at 0003, seeded."""
    app, source, touched = OPERATIONS[request.param]
    before = CATALOG_0003 if app == "catalog" else ORDERS_0003
    sources = h.app_migration_sources(app)
    sources["0004_op"] = migration_source([before], f"        {source},\n")
    migration_package(app, sources)
    h.migrate(fresh_db)
    h.migrate(fresh_db, app, before[1])
    seeded(fresh_db)
    return fresh_db, app, touched


def problems(alias: str) -> list[tuple[str, str | None]]:
    return [
        (f.kind, f.migration)
        for f in diagnose(alias).findings
        if f.severity >= Severity.WARNING and f.kind != "model-changes"
    ]


def test_done_and_never_recorded_is_table_exists(operation):
    alias, app, touched = operation
    h.migrate(alias, app, "0004_op")
    h.unrecord(alias, app, "0004_op")
    assert problems(alias) == [("table-exists", "0004_op")]
    [finding] = diagnose(alias).find("table-exists", app, "0004_op")
    assert "unverifiable_operations" not in finding.evidence

    _, tables_before = state(alias)
    status, out = h.fix(alias)
    assert status == 0, out
    assert (app, "0004_op") in h.recorded(alias)
    _, tables_after = state(alias)
    rows = {"django_migrations", "migration_doctor_ledger"}
    assert {t: v for t, v in tables_after.items() if t not in rows} == {
        t: v for t, v in tables_before.items() if t not in rows
    }
    h.migrate(alias)  # nothing left to apply, nothing fails
    works(alias, touched)
    assert problems(alias) == []


def test_not_done_is_only_unapplied(operation):
    alias, app, _ = operation
    report = diagnose(alias)
    assert problems(alias) == []
    assert report.find("unapplied", app, "0004_op")
    h.migrate(alias)
    assert problems(alias) == []


def works(alias: str, labels: list[str]) -> None:
    """The ORM, as the migrations define the models, writes a row into every touched model
    (and what it needs) and reads every model of the app back."""
    registry = leaf_apps(alias)
    for label in labels:
        model = registry.get_model(label)
        obj = make_row(model, alias)
        assert model.objects.using(alias).filter(pk=obj.pk).exists()
    for model in registry.get_models():
        if model._meta.app_label in {label.split(".")[0] for label in labels}:
            list(model.objects.using(alias).all()[:5])


def make_row(model: Any, alias: str, depth: int = 0) -> Any:
    values: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or field.has_default() or field.null or field.auto_created:
            continue
        if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
            continue
        if field.is_relation:
            assert depth < 4
            values[field.name] = make_row(field.related_model, alias, depth + 1)
        elif isinstance(field, models.DateTimeField):
            values[field.name] = datetime.datetime(2025, 1, 2, tzinfo=datetime.UTC)
        elif isinstance(field, models.DecimalField):
            values[field.name] = decimal.Decimal("1.50")
        elif isinstance(field, (models.IntegerField, models.FloatField)):
            values[field.name] = 1
        elif isinstance(field, models.BooleanField):
            values[field.name] = True
        else:
            values[field.name] = (
                f"{model._meta.model_name[:6]}-{depth}-{datetime.datetime.now().microsecond}"
            )
    return model.objects.using(alias).create(**values)
