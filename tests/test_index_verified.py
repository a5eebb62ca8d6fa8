"""Indexes Django names by a hash (`db_index`, a ForeignKey's own index, `index_together`) are
verified by their table and columns, and only where the backend makes them: MySQL/MariaDB
InnoDB indexes a foreign key itself (Django adds none), PostgreSQL's extra `_like` index is
never expected. One dropped by hand is re-created; one a half-applied migration never made
(MariaDB keeps the column, the deferred CREATE INDEX never ran) is completed; one already
there under the name a pending migration gives it is what `migrate` trips over."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, connections

from migration_doctor.diagnose import diagnose
from migration_doctor.expected import index_obj
from migration_doctor.findings import Severity

from . import helpers as h
from .test_graph_findings import catalog_with, migration_source
from .test_whole_plan import leaf_apps

AFTER_0003 = [("catalog", "0003_product_sku_stock")]
BARCODE = (
    "        migrations.AddField('product', 'barcode', "
    "models.CharField(max_length=20, null=True, db_index=True)),\n"
)
STOCK_INDEXED = (
    "        migrations.AlterField('product', 'stock', "
    "models.IntegerField(default=0, db_index=True)),\n"
)
TOGETHER = "        migrations.AlterIndexTogether('product', {('stock', 'price')}),\n"
BARCODE_INDEX = "index (barcode) on catalog_product"


def problems(alias: str) -> list[tuple[str, str | None]]:
    return [
        (f.kind, f.migration)
        for f in diagnose(alias).findings
        if f.severity >= Severity.WARNING and f.kind != "model-changes"
    ]


def live_indexes(alias: str, table: str) -> dict[str, list[str]]:
    """Django's own introspection: non-unique indexes by name -> columns."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        name: c["columns"]
        for name, c in constraints.items()
        if c["index"] and not c["unique"] and not c["primary_key"] and not name.endswith("_like")
    }


def drop_index(alias: str, table: str, columns: list[str]) -> str:
    """Drop, as a DBA would, the plain index on exactly `columns` (PostgreSQL's `_like`
    twin stays: it is no substitute)."""
    [name] = [n for n, cols in live_indexes(alias, table).items() if cols == columns]
    if connections[alias].vendor == "mysql":
        h.sql(alias, f"ALTER TABLE {h.qn(alias, table)} DROP INDEX {h.qn(alias, name)}")
    else:
        h.sql(alias, f"DROP INDEX {h.qn(alias, name)}")
    return name


def with_0004(migration_package, name: str, operations: str) -> None:
    migration_package("catalog", catalog_with(**{name: migration_source(AFTER_0003, operations)}))


def product_works(alias: str, **values: object) -> None:
    """An ORM insert and read through the models as the migration files define them."""
    apps = leaf_apps(alias)
    Category = apps.get_model("catalog", "Category")
    Product = apps.get_model("catalog", "Product")
    category = Category.objects.using(alias).create(name="Tea", slug=f"tea-{len(values)}")
    Product.objects.using(alias).create(name="Sencha", price=4, category=category, **values)
    assert Product.objects.using(alias).filter(name="Sencha", **values).count() == 1


def test_expected_indexes_are_the_ones_the_backend_makes(fresh_db):
    """A ForeignKey's index is expected where Django makes one, never on MySQL/MariaDB
    (InnoDB's own index backs the constraint): asked of the schema editor, and the migrated
    database agrees on every backend."""
    alias = fresh_db
    h.migrate(alias)
    report = diagnose(alias)
    effects = report.snapshot.expected.effects
    creates = {o for key, e in effects.items() if key[0] == "catalog" for o in e.creates}
    fk_index = index_obj("catalog_product", ["category_id"])
    m2m_index = index_obj("catalog_product_tags", ["tag_id"])
    if connections[alias].vendor == "mysql":
        assert fk_index not in creates and m2m_index not in creates
    else:
        assert {fk_index, m2m_index} <= creates
        assert ["category_id"] in live_indexes(alias, "catalog_product").values()
    assert [f for f in report.findings if f.severity >= Severity.INFO] == []


DROPPED = pytest.mark.parametrize(
    "operations, migration, columns",
    [
        (BARCODE, "0004_barcode", ["barcode"]),
        (TOGETHER, "0004_together", ["stock", "price"]),
    ],
    ids=["db_index", "index_together"],
)


def dropped_by_hand(alias, migration_package, operations, migration, columns) -> str:
    """The whole plan applied, then the index of 0004 dropped by a DBA tidying up."""
    if migration == "0004_together" and h.connections[alias].vendor == "sqlite":
        pytest.skip("SQLite's table rebuilds lose index_together indexes: never expected there")
    with_0004(migration_package, migration, operations)
    h.migrate(alias)
    return drop_index(alias, "catalog_product", columns)


@DROPPED
def test_an_index_dropped_by_hand_is_missing(
    fresh_db, migration_package, operations, migration, columns
):
    alias = fresh_db
    dropped_by_hand(alias, migration_package, operations, migration, columns)
    assert problems(alias) == [("missing-schema", migration)]
    [finding] = diagnose(alias).find("missing-schema")
    assert finding.evidence["missing"] == [f"index ({', '.join(columns)}) on catalog_product"]
    assert finding.evidence["present"] == (
        ["column catalog_product.barcode"] if "barcode" in columns else []
    )
    assert "read the whole of catalog_product" in finding.message


@DROPPED
def test_an_index_dropped_by_hand_is_recreated(
    fresh_db, migration_package, operations, migration, columns
):
    alias = fresh_db
    dropped = dropped_by_hand(alias, migration_package, operations, migration, columns)
    status, out = h.fix(alias)
    assert status == 0, out
    assert f"Re-create index ({', '.join(columns)}) on catalog_product" in out
    assert live_indexes(alias, "catalog_product").get(dropped) == columns
    product_works(alias, **({"barcode": "4006381333931"} if "barcode" in columns else {}))
    assert problems(alias) == []


def half_applied(alias: str, migration_package) -> None:
    """The column of an indexed AddField is there, its index is not and the migration is not
    recorded: what MariaDB keeps when a later operation of the migration fails (Django runs
    an AddField's CREATE INDEX at the end of the migration, which never comes)."""
    with_0004(migration_package, "0004_barcode", BARCODE)
    h.migrate(alias)
    drop_index(alias, "catalog_product", ["barcode"])
    h.unrecord(alias, "catalog", "0004_barcode")


def test_a_half_applied_add_field_lacks_its_index(fresh_db, migration_package):
    alias = fresh_db
    half_applied(alias, migration_package)
    assert problems(alias) == [("partially-applied", "0004_barcode")]
    [finding] = diagnose(alias).find("partially-applied")
    assert finding.evidence["present"] == ["column catalog_product.barcode"]
    assert finding.evidence["missing"] == [BARCODE_INDEX]


def test_a_half_applied_add_field_gets_its_index(fresh_db, migration_package):
    """The repair completes the operation with its index and records the migration."""
    alias = fresh_db
    half_applied(alias, migration_package)
    status, out = h.fix(alias)
    assert status == 0, out
    assert ("catalog", "0004_barcode") in h.recorded(alias)
    assert ["barcode"] in live_indexes(alias, "catalog_product").values()
    product_works(alias, barcode="4006381333931")
    h.migrate(alias)
    assert problems(alias) == []


def test_mariadb_keeps_the_column_not_the_index(fresh_db, migration_package):
    """The real thing on MariaDB: the unique AlterField after the indexed AddField fails over
    two equal names; the added column stays, its deferred index never ran."""
    alias = fresh_db
    if connections[alias].vendor != "mysql":
        pytest.skip("only MySQL/MariaDB keep the DDL of a failed migration")
    unique = (
        "        migrations.AlterField('category', 'name', "
        "models.CharField(max_length=100, unique=True)),\n"
    )
    with_0004(migration_package, "0004_barcode", BARCODE + unique)
    h.migrate(alias, "catalog", "0003_product_sku_stock")
    h.sql(alias, "INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea')")
    h.sql(alias, "INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea-2')")
    with pytest.raises(IntegrityError):
        h.migrate(alias, "catalog", "0004_barcode")
    [finding] = diagnose(alias).find("partially-applied", "catalog", "0004_barcode")
    assert finding.evidence["present"] == ["column catalog_product.barcode"]
    assert finding.evidence["missing"] == ["unique (name) on catalog_category", BARCODE_INDEX]


def test_an_index_already_there_under_the_name_a_pending_migration_gives_it(
    fresh_db, migration_package
):
    """0004 ran, its row is gone (a dump restored without it): `migrate` fails on the index
    it creates under the name it already has. The finding quotes Django's error (checked
    against the real one), and recording the migration is the repair."""
    alias = fresh_db
    if h.connections[alias].vendor == "sqlite":
        pytest.skip("SQLite's table rebuilds lose index_together indexes: never expected there")
    with_0004(migration_package, "0004_together", TOGETHER)
    h.migrate(alias)
    h.unrecord(alias, "catalog", "0004_together")
    [name] = [
        n
        for n, cols in live_indexes(alias, "catalog_product").items()
        if cols == ["stock", "price"]
    ]
    assert problems(alias) == [("table-exists", "0004_together")]
    [finding] = diagnose(alias).find("table-exists")
    assert finding.evidence["present"] == ["index (stock, price) on catalog_product"]
    quoted = finding.message.split("`migrate` fails with: ", 1)[1].rstrip(".")
    assert name in quoted
    with pytest.raises(DatabaseError) as raised:
        h.migrate(alias)
    assert quoted in str(raised.value)

    status, out = h.fix(alias)
    assert status == 0, out
    assert ("catalog", "0004_together") in h.recorded(alias)
    product_works(alias, stock=3)
    h.migrate(alias)
    assert problems(alias) == []


NOTE = (
    "        migrations.CreateModel('Note', [\n"
    "            ('id', models.BigAutoField(primary_key=True)),\n"
    "            ('sent', models.DateTimeField()),\n"
    "        ]),\n"
)
NOTE_SENT_INDEX = (
    "        migrations.AlterField('note', 'sent', models.DateTimeField(db_index=True)),\n"
)
MOVED_NOTE = (
    "        migrations.SeparateDatabaseAndState(state_operations=[\n"
    "            migrations.CreateModel('Note', [\n"
    "                ('id', models.BigAutoField(primary_key=True)),\n"
    "                ('sent', models.DateTimeField()),\n"
    "            ], options={'db_table': 'catalog_note'}),\n"
    "        ]),\n"
)
GONE_NOTE = (
    "        migrations.SeparateDatabaseAndState(state_operations=[\n"
    "            migrations.DeleteModel('Note'),\n"
    "        ]),\n"
)
RENAMED_NOTE = "        migrations.AlterModelTable('note', None),\n"


NOTE_SENT_UNIQUE = (
    "        migrations.AlterField('note', 'sent', models.DateTimeField(unique=True)),\n"
)


@pytest.mark.parametrize("sent", [NOTE_SENT_INDEX, NOTE_SENT_UNIQUE], ids=["index", "unique"])
def test_a_model_moved_to_another_app_by_state_then_renamed(fresh_db, migration_package, sent):
    """As django-oscar moves Notification from customer to communication: catalog creates
    Note and indexes `sent` (or makes it unique); orders takes Note over by state only (its
    model has no such index) and catalog forgets it; orders then renames the table. After
    `migrate` nothing is missing: the index went with the old table name as far as the plan
    can tell. The database renamed the table with it: no leftover either."""
    after = [("catalog", "0003_product_sku_stock")]
    migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_note": migration_source(after, NOTE),
                "0005_note_sent": migration_source([("catalog", "0004_note")], sent),
                "0006_note_gone": migration_source(
                    [("catalog", "0005_note_sent"), ("orders", "0004_note")], GONE_NOTE
                ),
            }
        ),
    )
    orders = h.app_migration_sources("orders")
    last = max(orders)
    migration_package(
        "orders",
        {
            **orders,
            "0004_note": migration_source(
                [("orders", last), ("catalog", "0005_note_sent")], MOVED_NOTE
            ),
            "0005_note_table": migration_source(
                [("orders", "0004_note"), ("catalog", "0006_note_gone")], RENAMED_NOTE
            ),
        },
    )
    h.migrate(fresh_db)
    assert "orders_note" in h.tables(fresh_db)
    report = diagnose(fresh_db)
    wrong = [
        f.as_dict()
        for f in report.findings
        if f.severity >= Severity.WARNING and f.kind != "model-changes"
    ]
    assert wrong == []
    assert report.positions == []
    connection = connections[fresh_db]
    with connection.cursor() as cursor:
        kept = connection.introspection.get_constraints(cursor, "orders_note").values()
    unique = sent == NOTE_SENT_UNIQUE
    assert any(c["columns"] == ["sent"] and c["unique"] == unique for c in kept)
    assert report.find("untracked-constraint") == []


# -- a named index is known by its name, its table and its columns (in order) --------------

STOCK_PRICE_INDEX = (
    "        migrations.AddIndex('product', "
    "models.Index(fields=['stock', 'price'], name='catalog_stock_price_idx')),\n"
)


def index_by_hand(alias: str, name: str, table: str, columns: list[str]) -> None:
    cols = ", ".join(h.qn(alias, c) for c in columns)
    h.sql(alias, f"CREATE INDEX {h.qn(alias, name)} ON {h.qn(alias, table)} ({cols})")


def test_a_named_index_on_other_columns_is_not_the_index(fresh_db):
    """catalog.0001 names its index catalog_product_name_idx on (name); a DBA re-made it
    under that name on (price). The name is there, the index is not: missing-schema."""
    alias = fresh_db
    h.migrate(alias)
    if connections[alias].vendor == "mysql":
        h.sql(alias, "ALTER TABLE catalog_product DROP INDEX catalog_product_name_idx")
    else:
        h.sql(alias, f"DROP INDEX {h.qn(alias, 'catalog_product_name_idx')}")
    index_by_hand(alias, "catalog_product_name_idx", "catalog_product", ["price"])
    assert problems(alias) == [("missing-schema", "0001_initial")]
    [finding] = diagnose(alias).find("missing-schema")
    assert finding.evidence["missing"] == [
        "constraint catalog_product_name_idx on catalog_product"
    ]
    assert finding.evidence["name_taken"] == [
        {
            "index": "catalog_product_name_idx",
            "table": "catalog_product",
            "columns": ["price"],
            "expected_columns": ["name"],
        }
    ]
    assert "taken by an index on catalog_product (price)" in finding.message
    status, out = h.fix(alias)
    assert status == 1, out  # not repaired: the error stays
    assert "name catalog_product_name_idx is taken" in out, out
    assert problems(alias) == [("missing-schema", "0001_initial")]  # nothing was changed

    h.sql(alias, finding.fix.commands[0])  # the suggested DROP of the index in the way
    status, out = h.fix(alias)
    assert status == 0, out
    assert live_indexes(alias, "catalog_product")["catalog_product_name_idx"] == ["name"]
    assert problems(alias) == []


@pytest.mark.parametrize("live", [["price", "stock"], ["stock"]], ids=["reversed", "fewer"])
def test_a_pending_add_index_whose_name_is_taken(fresh_db, migration_package, live):
    """0004 adds catalog_stock_price_idx on (stock, price); the database has an index of
    that name on other columns (the same ones in another order serve other queries).
    `migrate` fails on the name: an error quoting Django's words (checked against the real
    one), never recorded by the repair."""
    alias = fresh_db
    with_0004(migration_package, "0004_stock_price", STOCK_PRICE_INDEX)
    h.migrate(alias, "catalog", "0003_product_sku_stock")
    index_by_hand(alias, "catalog_stock_price_idx", "catalog_product", live)
    assert problems(alias) == [("partially-applied", "0004_stock_price")]
    [finding] = diagnose(alias).find("partially-applied")
    assert finding.evidence["present"] == []
    assert finding.evidence["missing"] == ["constraint catalog_stock_price_idx on catalog_product"]
    assert finding.evidence["name_taken"][0]["columns"] == live
    quoted = finding.message.split("`migrate` fails with: ", 1)[1].rstrip(".")
    assert "catalog_stock_price_idx" in quoted
    status, out = h.fix(alias)
    assert status == 1, out  # not repaired: the error stays
    assert "name catalog_stock_price_idx is taken" in out, out
    assert ("catalog", "0004_stock_price") not in h.recorded(alias)
    with pytest.raises(DatabaseError) as raised:
        h.migrate(alias)
    assert quoted in str(raised.value)

    h.sql(alias, finding.fix.commands[0])  # the suggested DROP of the index in the way
    h.migrate(alias)
    assert live_indexes(alias, "catalog_product")["catalog_stock_price_idx"] == ["stock", "price"]
    assert problems(alias) == []


def test_a_pending_add_index_already_there_on_its_columns(fresh_db, migration_package):
    """The same index under its name on (stock, price): done, recording it is the repair."""
    alias = fresh_db
    with_0004(migration_package, "0004_stock_price", STOCK_PRICE_INDEX)
    h.migrate(alias, "catalog", "0003_product_sku_stock")
    index_by_hand(alias, "catalog_stock_price_idx", "catalog_product", ["stock", "price"])
    assert problems(alias) == [("table-exists", "0004_stock_price")]
    status, out = h.fix(alias)
    assert status == 0, out
    assert ("catalog", "0004_stock_price") in h.recorded(alias)
    h.migrate(alias)
    assert problems(alias) == []


NOTE_SENT_NULL = (
    "        migrations.AlterField('note', 'sent', models.DateTimeField(null=True)),\n"
)


def moved_note_kept_table(migration_package) -> None:
    """catalog creates Note and indexes `sent`; orders takes Note over by state only, keeping
    its table catalog_note (as django-oscar does), with no index on `sent`; catalog forgets
    it; then an AlterField of orders' Note, which SQLite does by rebuilding the table from
    orders' model: the index is gone there, and stays on PostgreSQL and MySQL."""
    after = [("catalog", "0003_product_sku_stock")]
    migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_note": migration_source(after, NOTE),
                "0005_note_sent": migration_source([("catalog", "0004_note")], NOTE_SENT_INDEX),
                "0006_note_gone": migration_source(
                    [("catalog", "0005_note_sent"), ("orders", "0004_note")], GONE_NOTE
                ),
            }
        ),
    )
    orders = h.app_migration_sources("orders")
    migration_package(
        "orders",
        {
            **orders,
            "0004_note": migration_source(
                [("orders", max(orders)), ("catalog", "0005_note_sent")], MOVED_NOTE
            ),
            "0005_note_sent_null": migration_source(
                [("orders", "0004_note"), ("catalog", "0006_note_gone")], NOTE_SENT_NULL
            ),
        },
    )


def test_an_index_a_sqlite_rebuild_drops_from_a_moved_model(fresh_db, migration_package):
    """SQLite: catalog.0005's index is not expected (the rebuild by the final owner dropped
    it), before the rebuild it is no leftover either. PostgreSQL, MySQL: it stays and is
    expected, so one dropped by hand is missing."""
    alias = fresh_db
    moved_note_kept_table(migration_package)
    sent = index_obj("catalog_note", ["sent"])
    h.migrate(alias, "orders", "0004_note")
    h.migrate(alias, "catalog")
    assert ["sent"] in live_indexes(alias, "catalog_note").values()  # not rebuilt yet
    report = diagnose(alias)
    assert report.find("untracked-constraint") == []
    assert problems(alias) == []

    h.migrate(alias)
    report = diagnose(alias)
    creates = report.snapshot.expected.effects[("catalog", "0005_note_sent")].creates
    assert problems(alias) == []
    assert report.find("untracked-constraint") == []
    if connections[alias].vendor == "sqlite":
        assert ["sent"] not in live_indexes(alias, "catalog_note").values()
        assert sent not in creates
        assert sent in report.snapshot.expected.unlisted
        return
    assert sent in creates
    drop_index(alias, "catalog_note", ["sent"])
    assert problems(alias) == [("missing-schema", "0005_note_sent")]
    [finding] = diagnose(alias).find("missing-schema")
    assert finding.evidence["missing"] == ["index (sent) on catalog_note"]
