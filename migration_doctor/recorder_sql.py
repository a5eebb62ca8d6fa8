"""SQL text for django_migrations rows, shown to people as the equivalent of a repair or a fix.

What runs is always Django's ORM or parameterised SQL; these strings are for reading and
copying, quoted for the connection's backend.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.backends.base.base import BaseDatabaseWrapper

from .snapshot.rows import recorder_table


def sql_literal(value: str, vendor: str = "") -> str:
    """A string literal for SQL shown to people (what runs is always parameterised)."""
    if vendor == "mysql":  # backslash is an escape character in MySQL strings
        value = value.replace("\\", "\\\\")
    return "'" + value.replace("'", "''") + "'"


def delete_row_sql(connection: BaseDatabaseWrapper, app: str, name: str) -> str:
    qn, v = connection.ops.quote_name, connection.vendor
    return (
        f"DELETE FROM {qn(recorder_table())} WHERE {qn('app')} = {sql_literal(app, v)} "
        f"AND {qn('name')} = {sql_literal(name, v)};"
    )


def insert_row_sql(
    connection: BaseDatabaseWrapper, app: str, name: str, applied: str | None = None
) -> str:
    """`applied`: a timestamp to show, else the database's CURRENT_TIMESTAMP."""
    qn, v = connection.ops.quote_name, connection.vendor
    when = sql_literal(applied, v) if applied else "CURRENT_TIMESTAMP"
    return (
        f"INSERT INTO {qn(recorder_table())} ({qn('app')}, {qn('name')}, {qn('applied')}) "
        f"VALUES ({sql_literal(app, v)}, {sql_literal(name, v)}, {when});"
    )


def delete_ids_sql(connection: BaseDatabaseWrapper, ids: Iterable[int]) -> str:
    """By id: a NULL app or name matches no `=`, and MySQL's `=` ignores case."""
    qn = connection.ops.quote_name
    return f"DELETE FROM {qn(recorder_table())} WHERE {qn('id')} IN ({', '.join(map(str, ids))});"


def rename_row_sql(connection: BaseDatabaseWrapper, row_id: int, name: str) -> str:
    qn, v = connection.ops.quote_name, connection.vendor
    return (
        f"UPDATE {qn(recorder_table())} SET {qn('name')} = "
        f"{sql_literal(name, v)} WHERE {qn('id')} = {row_id};"
    )
