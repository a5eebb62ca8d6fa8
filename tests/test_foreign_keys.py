"""Foreign keys the models declare and the database lost: dropped by hand, or a dump
restored without its constraints. Every migration is applied, so it is `schema-drift`, with
the rows that already point at nothing counted."""

from __future__ import annotations

import re

import pytest
from django.db import connections

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity

from . import helpers as h
from .conftest import BACKEND


def problems(alias: str) -> list[tuple[str, str | None, str | None]]:
    return [
        (f.kind, f.app, f.migration)
        for f in diagnose(alias).findings
        if f.severity >= Severity.WARNING
    ]


def drop_category_fk(alias: str) -> None:
    """catalog_product.category_id loses its constraint, as `pg_restore` leaves it when the
    constraint section failed, or a DBA's cleanup."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "catalog_product")
    names = [
        n for n, c in constraints.items() if c["foreign_key"] and c["columns"] == ["category_id"]
    ]
    if connection.vendor == "postgresql":
        h.sql(alias, f"ALTER TABLE catalog_product DROP CONSTRAINT {h.qn(alias, names[0])}")
    elif connection.vendor == "mysql":
        h.sql(alias, f"ALTER TABLE catalog_product DROP FOREIGN KEY {h.qn(alias, names[0])}")
    else:  # SQLite: only a rebuild removes a REFERENCES clause
        [(create,)] = h.sql(
            alias,
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'catalog_product'",
        )
        indexes = h.sql(
            alias,
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'catalog_product' "
            "AND sql IS NOT NULL",
        )
        create = re.sub(
            r'("category_id" bigint NOT NULL) REFERENCES "catalog_category" \("id"\) '
            r"DEFERRABLE INITIALLY DEFERRED",
            r"\1",
            create,
        )
        assert "catalog_category" not in create
        h.sql(alias, "PRAGMA foreign_keys = OFF")
        h.sql(alias, create.replace('"catalog_product"', '"t_new"', 1))
        h.sql(alias, 'INSERT INTO "t_new" SELECT * FROM "catalog_product"')
        h.sql(alias, 'DROP TABLE "catalog_product"')
        h.sql(alias, 'ALTER TABLE "t_new" RENAME TO "catalog_product"')
        for (statement,) in indexes:
            h.sql(alias, statement)
        h.sql(alias, "PRAGMA foreign_keys = ON")


def seed(alias: str) -> int:
    h.sql(alias, "INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea')")
    [(cat,)] = h.sql(alias, "SELECT id FROM catalog_category")
    h.sql(
        alias,
        "INSERT INTO catalog_product (name, price, created_at, category_id, stock) "
        "VALUES ('Sencha', 4.5, '2024-05-01 10:00:00', %s, 7)",
        (cat,),
    )
    return int(cat)


def test_a_foreign_key_dropped_by_hand(fresh_db):
    alias = fresh_db
    h.migrate(alias)
    cat = seed(alias)
    assert problems(alias) == []
    drop_category_fk(alias)

    assert problems(alias) == [("schema-drift", "catalog", None)]
    [finding] = diagnose(alias).find("schema-drift", "catalog")
    assert finding.evidence["table"] == "catalog_product"
    [diff] = finding.evidence["differences"]
    assert diff["column"] == "category_id" and diff["aspect"] == "foreign key"
    assert diff["expected"] == "references catalog_category(id)"
    assert diff["actual"] == "no foreign key"
    assert diff["orphans"] == 0
    assert "none does yet" in finding.message

    # A row that points at nothing, which the constraint would have refused.
    h.sql(alias, "PRAGMA foreign_keys = OFF") if connections[alias].vendor == "sqlite" else None
    h.sql(alias, "UPDATE catalog_product SET category_id = %s", (cat + 100,))
    [finding] = diagnose(alias).find("schema-drift", "catalog")
    [diff] = finding.evidence["differences"]
    assert diff["orphans"] == 1
    assert "1 already do" in finding.message

    if connections[alias].vendor == "sqlite":
        assert finding.fix.commands == ()  # a rebuild, not one statement
        return
    # The statement offered is Django's own, and once the row is fixed it restores the
    # constraint and the diagnosis is clean again.
    [statement] = finding.fix.commands
    assert "FOREIGN KEY" in statement and "catalog_category" in statement
    h.sql(alias, "UPDATE catalog_product SET category_id = %s", (cat,))
    h.sql(alias, statement.rstrip(";"))
    assert problems(alias) == []


@pytest.mark.skipif(
    BACKEND != "mysql", reason="storage engines without foreign keys are MySQL/MariaDB's"
)
def test_a_table_on_an_engine_without_foreign_keys_expects_none(fresh_db):
    alias = fresh_db
    h.migrate(alias)
    # A table converted to MyISAM (an old server default): InnoDB refuses the conversion
    # while the keys exist, and MyISAM keeps none.
    connection = connections[alias]
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "catalog_product_tags")
    for name in [n for n, c in constraints.items() if c["foreign_key"]]:
        h.sql(alias, f"ALTER TABLE catalog_product_tags DROP FOREIGN KEY {h.qn(alias, name)}")
    h.sql(alias, "ALTER TABLE catalog_product_tags ENGINE=MyISAM")
    assert not [
        fk
        for t in ("catalog_product_tags",)
        for fk in diagnose(alias).snapshot.schema.table(t).foreign_keys
    ]
    assert problems(alias) == []
