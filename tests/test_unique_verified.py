"""Unique constraints Django names by a hash (`unique=True`, `unique_together`) are verified
by their columns: a half-failed unique AlterField (MariaDB keeps the DDL before the failing
statement) is half applied, never faked, and a unique constraint dropped by hand is
re-created only when the data allows it."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connections, transaction

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity

from . import helpers as h
from .test_graph_findings import catalog_with, migration_source
from .test_repair_guard import state
from .test_whole_plan import leaf_apps

AFTER_0003 = [("catalog", "0003_product_sku_stock")]
NOTE_THEN_UNIQUE = (
    "        migrations.AddField('category', 'note', "
    "models.CharField(max_length=20, null=True)),\n"
    "        migrations.AlterField('category', 'name', models.CharField(max_length=100, "
    "unique=True)),\n"
)
UNIQUE_NAME = "unique (name) on catalog_category"


def problems(alias: str) -> list[tuple[str, str | None]]:
    return [
        (f.kind, f.migration)
        for f in diagnose(alias).findings
        if f.severity >= Severity.WARNING and f.kind != "model-changes"
    ]


def two_teas(alias: str) -> None:
    h.sql(alias, "INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea')")
    h.sql(alias, "INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea-2')")


def half_failed(alias: str) -> None:
    """0004 run against two categories named Tea: the unique AlterField fails. MariaDB keeps
    the added column; elsewhere the migration rolls back whole, so the column is added by
    hand, as a DBA would when retrying the first half."""
    with pytest.raises(IntegrityError):
        h.migrate(alias, "catalog", "0004_note_unique")
    if connections[alias].vendor != "mysql":
        h.sql(alias, f"ALTER TABLE catalog_category ADD COLUMN {h.qn(alias, 'note')} varchar(20)")


@pytest.fixture
def unique_0004(fresh_db, migration_package):
    migration_package(
        "catalog",
        catalog_with(**{"0004_note_unique": migration_source(AFTER_0003, NOTE_THEN_UNIQUE)}),
    )
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    two_teas(fresh_db)
    return fresh_db


def test_half_failed_unique_alterfield_is_rolled_back_never_faked(unique_0004):
    alias = unique_0004
    half_failed(alias)
    report = diagnose(alias)
    wrong = [
        f for f in report.findings if f.severity >= Severity.WARNING and f.kind != "model-changes"
    ]
    assert [(f.kind, f.migration) for f in wrong] == [("partially-applied", "0004_note_unique")]
    [finding] = wrong
    assert finding.evidence["present"] == ["column catalog_category.note"]
    assert finding.evidence["missing"] == [UNIQUE_NAME]
    assert finding.evidence["forbidden_by_data"] == [
        {
            "constraint": UNIQUE_NAME,
            "duplicates": [{"values": ["Tea"], "rows": 2}],
            "more": False,
        }
    ]
    assert "the data forbids unique (name) on catalog_category (2 rows hold 'Tea')" in (
        finding.message
    )
    assert not any("--fake" in c for c in finding.fix.commands)

    rows_before, tables_before = state(alias)
    status, out = h.fix(alias)
    assert status == 0, out
    assert "Roll back the present part of catalog.0004_note_unique" in out
    assert "Record catalog.0004_note_unique" not in out
    assert ("catalog", "0004_note_unique") not in h.recorded(alias)
    rows_after, tables_after = state(alias)
    assert rows_after == rows_before
    assert "note" not in {c[0] for c in tables_after["catalog_category"][:-1]}
    skip = {"catalog_category", "migration_doctor_ledger"}
    assert {k: v for k, v in tables_after.items() if k not in skip} == {
        k: v for k, v in tables_before.items() if k not in skip
    }
    assert h.sql(alias, "SELECT id, name, slug FROM catalog_category ORDER BY id") == [
        (1, "Tea", "tea"),
        (2, "Tea", "tea-2"),
    ]
    # Pending again, and still forbidden by the same two rows: the warning says so (and
    # the repair does not count it as something it introduced).
    assert problems(alias) == [("blocked-by-data", "0004_note_unique")]
    assert len(diagnose(alias).find("unapplied", "catalog", "0004_note_unique")) == 1

    # Once the names are unique, the migration applies whole and the project works.
    h.sql(alias, "UPDATE catalog_category SET name = 'Green tea' WHERE slug = 'tea-2'")
    h.migrate(alias)
    Category = leaf_apps(alias).get_model("catalog", "Category")
    Category.objects.using(alias).create(name="Oolong", slug="oolong", note="new")
    with pytest.raises(IntegrityError), transaction.atomic(using=alias):
        Category.objects.using(alias).create(name="Oolong", slug="oolong-2")
    assert sorted(Category.objects.using(alias).values_list("name", flat=True)) == [
        "Green tea",
        "Oolong",
        "Tea",
    ]
    assert problems(alias) == []


def test_the_roll_back_never_drops_values_written_since(unique_0004):
    alias = unique_0004
    half_failed(alias)
    h.sql(alias, f"UPDATE catalog_category SET {h.qn(alias, 'note')} = 'kept' WHERE slug = 'tea'")
    before = state(alias)
    status, out = h.fix(alias)
    assert status == 1, out
    assert "would drop data (column catalog_category.note (1))" in out
    assert state(alias) == before


def test_unique_done_by_hand_is_recorded(unique_0004):
    """The whole of 0004 done by hand, the unique index under a name of the DBA's choosing:
    the constraint is recognised by its columns."""
    alias = unique_0004
    h.sql(alias, "UPDATE catalog_category SET name = 'Green tea' WHERE slug = 'tea-2'")
    h.sql(alias, f"ALTER TABLE catalog_category ADD COLUMN {h.qn(alias, 'note')} varchar(20)")
    h.sql(alias, "CREATE UNIQUE INDEX by_hand_name ON catalog_category (name)")
    assert problems(alias) == [("table-exists", "0004_note_unique")]
    [finding] = diagnose(alias).find("table-exists")
    assert UNIQUE_NAME in finding.evidence["present"]
    status, out = h.fix(alias)
    assert status == 0, out
    h.migrate(alias)
    assert problems(alias) == []


def dropped_unique(alias: str) -> None:
    """The unique index of catalog_tag.name (0002) dropped by hand, as a DBA tidying up."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "catalog_tag")
    names = [n for n, c in constraints.items() if c["unique"] and not c["primary_key"]]
    name = names[0]
    if connection.vendor == "postgresql":
        h.sql(alias, f"ALTER TABLE catalog_tag DROP CONSTRAINT {h.qn(alias, name)}")
    elif connection.vendor == "mysql":
        h.sql(alias, f"ALTER TABLE catalog_tag DROP INDEX {h.qn(alias, name)}")
    else:  # SQLite: the UNIQUE of the column definition goes only with a rebuild
        h.sql(alias, "PRAGMA foreign_keys = OFF")
        h.sql(
            alias,
            "CREATE TABLE t_new (id integer PRIMARY KEY AUTOINCREMENT, name varchar(50) NOT NULL)",
        )
        h.sql(alias, "INSERT INTO t_new (id, name) SELECT id, name FROM catalog_tag")
        h.sql(alias, "DROP TABLE catalog_tag")
        h.sql(alias, "ALTER TABLE t_new RENAME TO catalog_tag")
        h.sql(alias, "PRAGMA foreign_keys = ON")


TAG_UNIQUE = "unique (name) on catalog_tag"


def test_unique_dropped_by_hand_is_recreated(fresh_db):
    alias = fresh_db
    h.migrate(alias)
    h.sql(alias, "INSERT INTO catalog_tag (name) VALUES ('green')")
    dropped_unique(alias)
    assert problems(alias) == [("missing-schema", "0002_tags")]
    [finding] = diagnose(alias).find("missing-schema")
    assert finding.evidence["missing"] == [TAG_UNIQUE]
    assert "MultipleObjectsReturned" in finding.message
    status, out = h.fix(alias)
    assert status == 0, out
    assert f"Re-create {TAG_UNIQUE}" in out
    assert h.sql(alias, "SELECT name FROM catalog_tag") == [("green",)]
    Tag = leaf_apps(alias).get_model("catalog", "Tag")
    with pytest.raises(IntegrityError), transaction.atomic(using=alias):
        Tag.objects.using(alias).create(name="green")
    Tag.objects.using(alias).create(name="black")
    assert problems(alias) == []


def test_unique_dropped_by_hand_over_duplicates_is_refused(fresh_db):
    alias = fresh_db
    h.migrate(alias)
    dropped_unique(alias)
    h.sql(alias, "INSERT INTO catalog_tag (name) VALUES ('green')")
    h.sql(alias, "INSERT INTO catalog_tag (name) VALUES ('green')")
    [finding] = diagnose(alias).find("missing-schema", "catalog", "0002_tags")
    assert finding.evidence["forbidden_by_data"][0]["duplicates"] == [
        {"values": ["green"], "rows": 2}
    ]
    before = state(alias)
    status, out = h.fix(alias)
    assert status == 1, out
    assert "the data forbids unique (name) on catalog_tag" in out
    assert state(alias) == before


NAME_UNIQUE = (
    "        migrations.AlterField('category', 'name', models.CharField(max_length=100, "
    "unique=True)),\n"
)


@pytest.mark.parametrize("by", ["branch", "runsql"])
def test_a_unique_constraint_left_behind(fresh_db, migration_package, by):
    """Another branch's migration made Category.name unique, then the branch was switched:
    the index stays and rejects duplicates the models allow (a warning). Made by a RunSQL of
    the app instead, it may be on purpose (an info)."""
    alias = fresh_db
    if by == "branch":
        migration_package(
            "catalog",
            catalog_with(**{"0004_name_unique": migration_source(AFTER_0003, NAME_UNIQUE)}),
        )
        h.migrate(alias)
        migration_package("catalog", catalog_with())  # back on the main branch
        h.unrecord(alias, "catalog", "0004_name_unique")  # and its row pruned
    else:
        runsql = (
            "        migrations.RunSQL("
            "'CREATE UNIQUE INDEX cat_name_u ON catalog_category (name)', "
            "migrations.RunSQL.noop),\n"
        )
        migration_package(
            "catalog",
            catalog_with(**{"0004_index_by_sql": migration_source(AFTER_0003, runsql)}),
        )
        h.migrate(alias)
    report = diagnose(alias)
    [finding] = report.find("untracked-constraint")
    assert finding.evidence["table"] == "catalog_category"
    assert finding.evidence["columns"] == ["name"]
    assert finding.id == ("migration_doctor.W006" if by == "branch" else "migration_doctor.I007")
    assert [f.kind for f in report.findings if f.severity >= Severity.WARNING] == (
        ["untracked-constraint"] if by == "branch" else []
    )
    if by == "runsql":
        assert "A RunSQL of catalog may have added it on purpose" in finding.message
        return
    assert "rejects" in finding.message
    # The warning is real: the ORM, which knows no such constraint, cannot insert twice.
    Category = leaf_apps(alias).get_model("catalog", "Category")
    Category.objects.using(alias).create(name="Tea", slug="tea")
    with pytest.raises(IntegrityError), transaction.atomic(using=alias):
        Category.objects.using(alias).create(name="Tea", slug="tea-2")
    # Its fix, run by hand, leaves a clean diagnosis and a working model. On SQLite the
    # UNIQUE is part of the table's definition (an autoindex): only a rebuild removes it.
    if connections[alias].vendor == "sqlite":
        assert finding.fix.commands == ("python manage.py makemigrations catalog",)
        return
    drop, _ = finding.fix.commands
    for statement in drop.split("; "):
        h.sql(alias, statement.rstrip(";"))
    Category.objects.using(alias).create(name="Tea", slug="tea-2")
    assert problems(alias) == []


def test_a_package_that_rewrote_unique_together_as_a_named_constraint(fresh_db, migration_package):
    """django-taggit turned an applied AlterUniqueTogether into a named UniqueConstraint: a
    database migrated by the old release holds the constraint under Django's generated name.
    By its columns it is the same constraint: neither missing nor left over."""
    alias = fresh_db
    together = "        migrations.AlterUniqueTogether('product', {('name', 'category')}),\n"
    named = (
        "        migrations.AddConstraint('product', models.UniqueConstraint("
        "fields=['name', 'category'], name='product_name_category_uniq')),\n"
    )
    migration_package(
        "catalog", catalog_with(**{"0004_unique": migration_source(AFTER_0003, together)})
    )
    h.migrate(alias)
    migration_package(
        "catalog", catalog_with(**{"0004_unique": migration_source(AFTER_0003, named)})
    )
    assert problems(alias) == []
    assert not diagnose(alias).find("untracked-constraint")
