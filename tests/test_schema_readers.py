"""The whole-schema readers against real databases of the backend chosen by MIGRATION_DOCTOR_DB.

Statements are counted with connection.execute_wrapper, not just by the reader's own
counter, because "a fixed number of queries whatever the size of the schema" is the
reason these readers exist.
"""

from __future__ import annotations

import os

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from migration_doctor.snapshot.schema import LiveSchema
from migration_doctor.snapshot.schema_readers import PRIMARY_INDEX, READERS, introspect

from .helpers import statements_of

BACKEND = os.environ.get("MIGRATION_DOCTOR_DB", "sqlite")
MAX_QUERIES = 4

APP_TABLES = {
    "catalog_category",
    "catalog_product",
    "catalog_tag",
    "catalog_product_tags",
    "order_lines",
    "orders_order",
    "django_migrations",
    "auth_user",
}


def quote(connection: BaseDatabaseWrapper, name: str) -> str:
    """connection.ops.quote_name, plus doubling of embedded quotes (which it leaves alone)."""
    mark = connection.ops.quote_name("x")[0]
    return connection.ops.quote_name(name.replace(mark, mark * 2))


def execute(alias: str, *statements: str) -> None:
    with connections[alias].cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def read(alias: str) -> tuple[LiveSchema, list[str]]:
    """introspect() with every statement it sends recorded; checks they are all SELECTs."""
    connection = connections[alias]
    connection.ensure_connection()  # connection set-up statements are not the reader's
    schemas: list[LiveSchema] = []
    sent = statements_of(alias, lambda: schemas.append(introspect(connection)))
    [schema] = schemas
    assert schema.queries == len(sent)
    assert all(sql.lstrip().upper().startswith("SELECT") for sql in sent), sent
    return schema, sent


@pytest.fixture
def migrated(fresh_db: str) -> str:
    call_command("migrate", database=fresh_db, verbosity=0)
    return fresh_db


def test_readers_cover_the_supported_vendors() -> None:
    assert set(READERS) == {"sqlite", "postgresql", "mysql"}


def test_testproject_schema(migrated: str) -> None:
    schema, sent = read(migrated)
    assert len(sent) <= MAX_QUERIES
    assert schema.vendor == connections[migrated].vendor
    assert schema.case_insensitive is (BACKEND != "postgres")
    assert set(schema.tables) >= APP_TABLES
    assert all(t.kind == "table" for t in schema.tables.values())

    sku = schema.column("catalog_product", "stock_keeping_unit")
    assert sku is not None and sku.null is True
    assert sku.type in {"varchar(32)", "character varying(32)"}
    category = schema.column("catalog_product", "category_id")
    assert category is not None and category.null is False
    assert not schema.has_column("catalog_product", "sku")  # db_column wins

    lines = schema.tables["order_lines"]
    assert any(
        fk.columns == ("product_id",)
        and fk.ref_table == "catalog_product"
        and fk.ref_columns == ("id",)
        for fk in lines.foreign_keys
    ), lines.foreign_keys
    assert {fk.ref_table for fk in lines.foreign_keys} == {"catalog_product", "orders_order"}
    assert schema.has_constraint("order_lines", "order_line_unique_product")
    unique = lines.indexes["order_line_unique_product"]
    assert unique.unique and not unique.primary
    assert unique.columns == ("order_id", "product_id")

    product = schema.tables["catalog_product"]
    assert product.indexes["catalog_product_name_idx"].columns == ("name",)
    assert not product.indexes["catalog_product_name_idx"].unique
    primary = [i for i in product.indexes.values() if i.primary]
    assert len(primary) == 1 and primary[0].columns == ("id",) and primary[0].unique
    if BACKEND == "sqlite":
        assert primary[0].name == PRIMARY_INDEX
    assert all(i.valid for i in product.indexes.values())


def test_agrees_with_django_introspection(migrated: str) -> None:
    """Same columns, order, nullability and constraint names as Django's per-table calls."""
    schema, _ = read(migrated)
    connection = connections[migrated]
    with connection.cursor() as cursor:
        names = connection.introspection.table_names(cursor)
        assert set(names) == set(schema.tables)
        for name in names:
            table = schema.tables[name]
            description = connection.introspection.get_table_description(cursor, name)
            assert [c.name for c in description] == list(table.columns), name
            assert [bool(c.null_ok) for c in description] == [
                c.null for c in table.columns.values()
            ], name
            ours = table.constraint_names()
            django_names = set(connection.introspection.get_constraints(cursor, name))
            invented = {n for n in django_names if n.startswith(("fk_", "__unnamed_constraint"))}
            if BACKEND == "sqlite":
                # Django invents fk_N / __unnamed_constraint_N__ for what SQLite leaves
                # unnamed, and skips the autoindexes we keep.
                assert django_names - invented <= ours, name
            elif BACKEND == "mysql":
                # MariaDB names a column-level CHECK after its column; Django reports it
                # as __unnamed_constraint_N__, we keep the name the catalog has.
                assert django_names - invented == ours - (table.checks & set(table.columns)), name
                assert len(django_names) == len(ours), name
            else:
                assert django_names == ours, name


def _create_tables(alias: str, first: int, last: int) -> None:
    connection = connections[alias]
    for n in range(first, last):
        name = quote(connection, f"bulk_{n:03d}")
        ref = quote(connection, f"bulk_{max(n - 1, 0):03d}")
        execute(
            alias,
            f"CREATE TABLE {name} (id integer PRIMARY KEY, ref_id integer, label varchar(20)"
            f", FOREIGN KEY (ref_id) REFERENCES {ref} (id))",
            f"CREATE INDEX {quote(connection, f'bulk_{n:03d}_label')} ON {name} (label)",
        )


def test_query_count_does_not_grow_with_the_schema(fresh_db: str) -> None:
    _create_tables(fresh_db, 0, 3)
    small, small_sent = read(fresh_db)
    _create_tables(fresh_db, 3, 60)
    large, large_sent = read(fresh_db)

    assert len(small.tables) == 3 and len(large.tables) == 60
    assert len(small_sent) == len(large_sent) <= MAX_QUERIES
    assert small.queries == large.queries == len(large_sent)
    for n in range(60):
        table = large.tables[f"bulk_{n:03d}"]
        assert list(table.columns) == ["id", "ref_id", "label"]
        assert table.indexes[f"bulk_{n:03d}_label"].columns == ("label",)
        [fk] = table.foreign_keys
        assert (fk.columns, fk.ref_table, fk.ref_columns) == (
            ("ref_id",),
            f"bulk_{max(n - 1, 0):03d}",
            ("id",),
        )


HOSTILE_TABLE = 'we"ird tâble select'
HOSTILE_COLUMN = "or der"
HOSTILE_CHECK = "chk 'ôr' \"der\" > 0"
HOSTILE_INDEX = "idx ` ; drop"


def test_hostile_identifiers_are_data(fresh_db: str) -> None:
    connection = connections[fresh_db]
    table, column = quote(connection, HOSTILE_TABLE), quote(connection, HOSTILE_COLUMN)
    execute(
        fresh_db,
        f"CREATE TABLE {table} (id integer PRIMARY KEY, {column} integer NOT NULL, "
        f"CONSTRAINT {quote(connection, HOSTILE_CHECK)} CHECK ({column} > 0))",
        f"CREATE UNIQUE INDEX {quote(connection, HOSTILE_INDEX)} ON {table} ({column})",
    )
    schema, _ = read(fresh_db)

    assert set(schema.tables) == {HOSTILE_TABLE}
    found = schema.tables[HOSTILE_TABLE]
    assert found.name == HOSTILE_TABLE
    assert list(found.columns) == ["id", HOSTILE_COLUMN]
    assert found.columns[HOSTILE_COLUMN].null is False
    assert found.checks == {HOSTILE_CHECK}
    assert found.indexes[HOSTILE_INDEX].columns == (HOSTILE_COLUMN,)
    assert found.indexes[HOSTILE_INDEX].unique
    assert schema.has_constraint(HOSTILE_TABLE, HOSTILE_CHECK)
    assert schema.has_column(HOSTILE_TABLE, HOSTILE_COLUMN)


def test_view(migrated: str) -> None:
    connection = connections[migrated]
    execute(
        migrated,
        f"CREATE VIEW {quote(connection, 'product names')} AS "
        f"SELECT id, name FROM {quote(connection, 'catalog_product')}",
    )
    schema, sent = read(migrated)
    assert len(sent) <= MAX_QUERIES
    view = schema.tables["product names"]
    assert view.kind == "view"
    assert list(view.columns) == ["id", "name"]
    assert schema.tables["catalog_product"].kind == "table"


def test_same_answer_in_a_read_only_session(migrated: str) -> None:
    """The backend itself refuses writes here, so the reader provably does not write."""
    connection = connections[migrated]
    outside, _ = read(migrated)
    if BACKEND == "postgres":
        with transaction.atomic(using=migrated):
            execute(migrated, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            inside, _ = read(migrated)
    else:
        on, off = {
            "sqlite": ("PRAGMA query_only = ON", "PRAGMA query_only = OFF"),
            "mysql": ("SET SESSION TRANSACTION READ ONLY", "SET SESSION TRANSACTION READ WRITE"),
        }[BACKEND]
        execute(migrated, on)
        try:
            with transaction.atomic(using=migrated):
                inside, _ = read(migrated)
                with pytest.raises(DatabaseError):  # the guard is really on
                    execute(migrated, f"CREATE TABLE {quote(connection, 'nope')} (id integer)")
        finally:
            execute(migrated, off)
    assert inside.tables == outside.tables
    assert inside.queries == outside.queries


def test_backend_specific_catalog_state(fresh_db: str) -> None:
    """What only one backend's catalog can express: one real scenario per backend."""
    {"postgres": _postgres_invalid_index, "sqlite": _sqlite_quirks, "mysql": _mysql_checks}[
        BACKEND
    ](fresh_db)


def _postgres_invalid_index(alias: str) -> None:
    """A failed CREATE UNIQUE INDEX CONCURRENTLY leaves an INVALID index behind."""
    connection = connections[alias]
    assert connection.get_autocommit()  # CONCURRENTLY refuses to run in a transaction
    execute(
        alias,
        "CREATE TABLE dup (id integer PRIMARY KEY, code text, n integer)",
        "INSERT INTO dup VALUES (1, 'a', 1), (2, 'a', 2)",
        "CREATE INDEX dup_expr ON dup (lower(code), n)",
    )
    with pytest.raises(DatabaseError):
        execute(alias, "CREATE UNIQUE INDEX CONCURRENTLY dup_code_uniq ON dup (code)")
    schema, sent = read(alias)
    assert len(sent) <= MAX_QUERIES
    indexes = schema.tables["dup"].indexes
    assert indexes["dup_code_uniq"].valid is False
    assert indexes["dup_code_uniq"].unique
    assert indexes["dup_pkey"].valid and indexes["dup_pkey"].primary
    assert indexes["dup_expr"].columns == ("", "n")  # expression key part: placeholder

    # Partitions, a foreign key to a partitioned table (PostgreSQL clones it once per
    # partition), a materialized view, and a schema that is not on the search path.
    execute(
        alias,
        "CREATE TABLE events (id integer, day date, PRIMARY KEY (id, day))"
        " PARTITION BY RANGE (day)",
        "CREATE TABLE events_2024 PARTITION OF events"
        " FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
        "CREATE TABLE events_2025 PARTITION OF events"
        " FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
        "CREATE TABLE refs (id integer PRIMARY KEY, event_id integer, event_day date,"
        " CONSTRAINT refs_event FOREIGN KEY (event_id, event_day) REFERENCES events (id, day))",
        "CREATE MATERIALIZED VIEW dup_codes AS SELECT DISTINCT code FROM dup",
        "CREATE SCHEMA elsewhere",
        "CREATE TABLE elsewhere.hidden (id integer PRIMARY KEY)",
    )
    schema, sent = read(alias)
    assert len(sent) <= MAX_QUERIES
    assert set(schema.tables) == {"dup", "events", "refs", "dup_codes"}
    assert schema.tables["dup_codes"].kind == "view"
    assert schema.tables["events"].indexes["events_pkey"].columns == ("id", "day")
    assert [(fk.name, fk.columns, fk.ref_table, fk.ref_columns) for fk in
            schema.tables["refs"].foreign_keys] == [
        ("refs_event", ("event_id", "event_day"), "events", ("id", "day"))
    ]  # fmt: skip


def _sqlite_quirks(alias: str) -> None:
    """Generated columns, rowid and composite primary keys, named inline constraints,
    and a view broken by dropping its table (which makes SQLite's pragmas raise)."""
    execute(
        alias,
        'CREATE TABLE "parent" (a text, b text, PRIMARY KEY (b, a)) WITHOUT ROWID',
        'CREATE TABLE "Child" ('
        " id INTEGER PRIMARY KEY,"
        " x text CONSTRAINT x_unique UNIQUE,"
        " y int GENERATED ALWAYS AS (id * 2) VIRTUAL,"
        " z int GENERATED ALWAYS AS (id * 3) STORED,"
        " pa text, pb text,"
        " note text DEFAULT 'CONSTRAINT fake CHECK (1)',"
        ' CONSTRAINT "xy pair" UNIQUE ("x", z),'
        " CONSTRAINT [to parent] FOREIGN KEY (pb, pa) REFERENCES PARENT,"
        " CONSTRAINT `z_pos` CHECK (z > 0))",
        'CREATE INDEX child_expr ON "Child" (lower(x), id)',
        "CREATE TABLE gone (id integer)",
        "CREATE VIEW dangling AS SELECT id FROM gone",
        "CREATE VIEW fine AS SELECT id, x FROM Child",
        "DROP TABLE gone",
    )
    schema, sent = read(alias)
    child = schema.tables["Child"]
    assert list(child.columns) == ["id", "x", "y", "z", "pa", "pb", "note"]
    assert child.columns["id"].null is False and child.columns["id"].type == "integer"
    assert child.indexes[PRIMARY_INDEX].columns == ("id",)
    assert child.checks == {"z_pos"}
    assert child.indexes["x_unique"].columns == ("x",)
    assert child.indexes["xy pair"].columns == ("x", "z")
    assert child.indexes["xy pair"].unique
    assert any(n.startswith("sqlite_autoindex_Child_") for n in child.indexes)
    assert child.indexes["child_expr"].columns == ("", "id")
    [fk] = child.foreign_keys
    assert (fk.name, fk.columns, fk.ref_table, fk.ref_columns) == (
        "to parent",
        ("pb", "pa"),
        "parent",
        ("b", "a"),  # no columns given: the parent's primary key, in key order
    )  # and "parent" as the table is named, not as REFERENCES spelled it
    assert schema.tables["parent"].indexes[PRIMARY_INDEX].columns == ("b", "a")
    assert schema.has_constraint("child", "XY PAIR")  # SQLite folds identifier case

    # The broken view costs one statement per view (only in that case) and no columns.
    assert schema.tables["dangling"].kind == "view"
    assert schema.tables["dangling"].columns == {}
    assert list(schema.tables["fine"].columns) == ["id", "x"]
    assert len(sent) == MAX_QUERIES + 2
    with transaction.atomic(using=alias):  # the failed statement must not spoil it
        again, _ = read(alias)
        execute(alias, "CREATE TABLE still_writable (id integer)")
    assert again.tables == schema.tables


def _mysql_checks(alias: str) -> None:
    """CHECK constraints from the catalog; MariaDB names a column-level CHECK (as used for
    JSONField) after its column, MySQL 8 invents <table>_chk_<n>."""
    connection = connections[alias]
    execute(
        alias,
        "CREATE TABLE docs (id integer PRIMARY KEY, data longtext CHECK (json_valid(data)),"
        " n integer, CONSTRAINT n_positive CHECK (n > 0))",
        "CREATE TABLE other (data longtext CHECK (json_valid(data)))",
    )
    schema, sent = read(alias)
    assert len(sent) <= MAX_QUERIES
    docs = schema.tables["docs"]
    assert docs.columns["data"].type == "longtext"
    assert "n_positive" in docs.checks and len(docs.checks) == 2
    assert len(schema.tables["other"].checks) == 1
    if connection.mysql_is_mariadb:  # type: ignore[attr-defined]
        assert docs.checks == {"data", "n_positive"}
        assert schema.tables["other"].checks == {"data"}  # per table, not per schema
    assert schema.has_constraint("DOCS", "N_POSITIVE")  # case-insensitive lookups
