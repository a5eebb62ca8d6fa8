"""False positives found on real-world apps (tests/test_realworld.py), each reduced to the
smallest migration that reproduces it, plus the true positive next to it that must stay.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.apps import apps
from django.db import connections, models
from django.db.migrations.loader import MigrationLoader

from migration_doctor.diagnose import Report, diagnose
from migration_doctor.findings import Severity

from . import helpers as h
from .conftest import BACKEND

Package = Callable[[str, dict[str, str]], str]
AFTER_0003 = ("catalog", "0003_product_sku_stock")


def catalog_with(**extra: str) -> dict[str, str]:
    return {**h.app_migration_sources("catalog"), **extra}


def migration(operations: str, dependencies: tuple[tuple[str, str], ...] = (AFTER_0003,)) -> str:
    return (
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = {list(dependencies)!r}\n"
        "    operations = [\n" + textwrap.indent(textwrap.dedent(operations), " " * 8) + "    ]\n"
    )


def problems(report: Report) -> list[dict[str, Any]]:
    return [f.as_dict() for f in report.findings if f.severity >= Severity.WARNING]


# -- PostgreSQL truncates identifiers longer than 63 bytes ----------------------------------
# django-taggit 0003 names a UniqueConstraint with 64 characters; PostgreSQL stores the
# first 63, and the doctor reported the constraint as missing (missing-schema, an error).

LONG_TABLE = "catalog_" + "t" * 56
LONG_COLUMN = "c" * 64
LONG_CONSTRAINT = "catalog_" + "u" * 56
assert len(LONG_TABLE) == len(LONG_COLUMN) == len(LONG_CONSTRAINT) == 64  # MySQL's maximum

LONG_NAMES = f"""\
migrations.CreateModel(
    name="Longname",
    fields=[
        ("id", models.BigAutoField(primary_key=True, serialize=False)),
        ("code", models.CharField(max_length=20, db_column={LONG_COLUMN!r})),
        ("size", models.IntegerField(default=0)),
    ],
    options={{"db_table": {LONG_TABLE!r}}},
),
migrations.AddConstraint(
    model_name="longname",
    constraint=models.UniqueConstraint(fields=["code", "size"], name={LONG_CONSTRAINT!r}),
),
"""


def test_identifiers_longer_than_postgres_keeps(fresh_db: str, migration_package: Package):
    migration_package("catalog", catalog_with(**{"0004_long_names": migration(LONG_NAMES)}))
    h.migrate(fresh_db)
    if BACKEND == "postgres":  # the server really shortened all three
        assert LONG_TABLE[:63] in h.tables(fresh_db)

    report = diagnose(fresh_db, models=False)
    assert problems(report) == []
    assert report.find("untracked-table") == []

    # Still found when it really is missing (dropped through Django, by its long name).
    state = MigrationLoader(connections[fresh_db]).project_state()
    model = state.apps.get_model("catalog", "Longname")
    [constraint] = model._meta.constraints
    model._meta.constraints = []  # what the table becomes: SQLite rebuilds it from this
    with connections[fresh_db].schema_editor() as editor:
        editor.remove_constraint(model, constraint)
    [finding] = diagnose(fresh_db, models=False).find("missing-schema", "catalog")
    assert finding.migration == "0004_long_names"
    assert finding.evidence["missing"] == [f"constraint {LONG_CONSTRAINT} on {LONG_TABLE}"]


# -- A model whose table is a view or a virtual table ---------------------------------------
# wagtailsearch 0006 creates its SQLiteFTSIndexEntry model in the state and, for the
# database, `CREATE VIRTUAL TABLE ... USING fts5(...)` by RunSQL. Every column of an FTS5
# table (and of a view) reads as nullable and untyped: "title: NULL in the database, NOT
# NULL in the model" was reported as schema drift.

if BACKEND == "sqlite":
    CREATE = "CREATE VIRTUAL TABLE catalog_searchentry USING fts5(title, body)"
    DROP = "DROP TABLE catalog_searchentry"
else:
    CREATE = (
        "CREATE VIEW catalog_searchentry AS "
        "SELECT id AS rowid, name AS title, name AS body FROM catalog_product"
    )
    DROP = "DROP VIEW catalog_searchentry"

SEARCH_ENTRY = f"""\
migrations.SeparateDatabaseAndState(
    state_operations=[
        migrations.CreateModel(
            name="SearchEntry",
            fields=[
                ("entry", models.BigIntegerField(primary_key=True, serialize=False,
                                                 db_column="rowid")),
                ("title", models.TextField()),
                ("body", models.TextField(null=True)),
            ],
            options={{"db_table": "catalog_searchentry"}},
        ),
    ],
    database_operations=[migrations.RunSQL({CREATE!r}, {DROP!r})],
),
"""


@pytest.fixture
def search_entry_model() -> Iterator[type[models.Model]]:
    """The model the migration describes, in the app registry for as long as the test runs."""

    class SearchEntry(models.Model):
        entry = models.BigIntegerField(primary_key=True, db_column="rowid")
        title = models.TextField()
        body = models.TextField(null=True)

        class Meta:
            app_label = "catalog"
            db_table = "catalog_searchentry"

    yield SearchEntry
    del apps.all_models["catalog"]["searchentry"]
    apps.clear_cache()


def test_model_on_a_view_or_virtual_table_is_not_drift(
    fresh_db: str, migration_package: Package, search_entry_model: type[models.Model]
):
    migration_package("catalog", catalog_with(**{"0004_search": migration(SEARCH_ENTRY)}))
    h.migrate(fresh_db)
    # The comparison does run for this model (catalog is settled, the model migratable).
    assert search_entry_model._meta.can_migrate(connections[fresh_db])
    report = diagnose(fresh_db, models=False)
    assert problems(report) == []
    live = report.snapshot.schema.table("catalog_searchentry")
    assert live is not None and live.kind == ("virtual" if BACKEND == "sqlite" else "view")

    # An ordinary table of the same app is still compared.
    h.alter_field(fresh_db, "catalog.Category", "name", null=True)
    [drift] = diagnose(fresh_db, models=False).find("schema-drift", "catalog")
    assert drift.evidence["table"] == "catalog_category"


# -- A DeleteModel on a database that never got that far -----------------------------------
# wagtaildocs 0012 creates UploadedDocument and 0013 deletes it. On an empty database the
# table is absent because it was never created, yet 0013 was reported as table-exists
# ("everything it creates is already in the database"), an error before the first migrate.

NOTE_AND_MEMO = """\
migrations.CreateModel(
    name="Note",
    fields=[("id", models.BigAutoField(primary_key=True, serialize=False))],
),
migrations.CreateModel(
    name="Memo",
    fields=[("id", models.BigAutoField(primary_key=True, serialize=False))],
),
"""
DELETE_NOTE = 'migrations.DeleteModel(name="Note"),\n'


@pytest.fixture
def with_delete(migration_package: Package) -> None:
    migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_note_memo": migration(NOTE_AND_MEMO),
                "0005_delete_note": migration(DELETE_NOTE, (("catalog", "0004_note_memo"),)),
            }
        ),
    )


def test_delete_model_on_an_empty_database_is_only_unapplied(fresh_db: str, with_delete: None):
    report = diagnose(fresh_db, models=False)
    assert problems(report) == []
    [finding] = report.find("unapplied", "catalog", "0005_delete_note")
    assert finding.evidence["present"] == []
    assert {f.kind for f in report.findings} == {"unapplied"}


def test_delete_model_already_run_is_still_table_exists(fresh_db: str, with_delete: None):
    h.migrate(fresh_db)
    # The row of the deletion alone is lost: its creator is applied, so the absence counts.
    h.unrecord(fresh_db, "catalog", "0005_delete_note")
    report = diagnose(fresh_db, models=False)
    [finding] = report.find("table-exists", "catalog", "0005_delete_note")
    # What it removes is already absent: evidence apart from what it creates.
    assert finding.evidence["present"] == []
    assert finding.evidence["already_removed"] == ["table catalog_note"]
    assert "table catalog_note removed" in finding.message
    assert finding.fix.commands == ("python manage.py migrate catalog 0005_delete_note --fake",)

    # Both rows lost: the creator's other table is there, so the absence still counts.
    h.unrecord(fresh_db, "catalog", "0004_note_memo")
    report = diagnose(fresh_db, models=False)
    assert report.find("table-exists", "catalog", "0004_note_memo")
    assert report.find("table-exists", "catalog", "0005_delete_note")
    assert {f.kind for f in report.errors} == {"table-exists"}
