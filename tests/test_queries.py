"""The doctor's cost in statements does not grow with the schema."""

from __future__ import annotations

from migration_doctor.diagnose import diagnose

from . import helpers as h


def statements(alias: str) -> list[str]:
    return h.statements_of(alias, lambda: diagnose(alias))


def test_statement_count_is_constant(fresh_db):
    h.migrate(fresh_db)
    before = statements(fresh_db)
    for i in range(40):
        h.sql(fresh_db, f"CREATE TABLE {h.qn(fresh_db, f'extra_{i}')} (id integer, v integer)")
    after = statements(fresh_db)
    assert len(before) == len(after) <= 12
