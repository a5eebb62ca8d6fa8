"""The doctor's cost in statements does not grow with the schema."""

from __future__ import annotations

from django.db import connections

from migration_doctor.diagnose import diagnose

from . import helpers as h


def statements(alias: str) -> list[str]:
    seen: list[str] = []

    def spy(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connections[alias].execute_wrapper(spy):
        diagnose(alias)
    return seen


def test_statement_count_is_constant(fresh_db):
    h.migrate(fresh_db)
    before = statements(fresh_db)
    for i in range(40):
        h.sql(fresh_db, f"CREATE TABLE {h.qn(fresh_db, f'extra_{i}')} (id integer, v integer)")
    after = statements(fresh_db)
    assert len(before) == len(after) <= 12
