"""The tables a statement reads or writes, and the table or column an error says is missing."""

from __future__ import annotations

import re

_NAME = r"(?:`[^`]+`|\"[^\"]+\"|\[[^\]]+\]|[\w$]+)"
_TABLE_RE = re.compile(rf"\b(?:FROM|JOIN|INTO|UPDATE)\s+({_NAME}(?:\s*\.\s*{_NAME})?)", re.I)
_MISSING_TABLE_RES = [
    re.compile(r"no such table: (\S+)"),  # SQLite
    re.compile(r'relation "([^"]+)" does not exist'),  # PostgreSQL
    re.compile(r"Table '([^']+)' doesn't exist"),  # MySQL / MariaDB (1146)
]
_MISSING_COLUMN_RES = [
    re.compile(r"no such column: (\S+)"),
    re.compile(r'column "?([^" ]+)"? does not exist'),
    re.compile(r"Unknown column '([^']+)'"),
]
_SQL_KEYWORDS = {"select", "lateral", "only", "where", "values", "set"}


def _unquote(name: str) -> str:
    parts = [p.strip().strip('`"[]') for p in name.split(".")]
    return parts[-1]


def tables_in(sql: str | None) -> list[str]:
    """The tables a statement names after FROM/JOIN/INTO/UPDATE, unquoted, in order."""
    if not sql:
        return []
    found: list[str] = []
    for match in _TABLE_RE.finditer(sql):
        name = _unquote(match.group(1))
        if name and name.lower() not in _SQL_KEYWORDS and name not in found:
            found.append(name)
    return found


def missing_table(error: str | None) -> str | None:
    for regex in _MISSING_TABLE_RES:
        match = regex.search(error or "")
        if match:
            return _unquote(match.group(1))
    return None


def missing_column(error: str | None) -> str | None:
    for regex in _MISSING_COLUMN_RES:
        match = regex.search(error or "")
        if match:
            return match.group(1)
    return None


def no_table_error(vendor: str, table: str) -> str:
    if vendor == "postgresql":
        return f'relation "{table}" does not exist'
    if vendor == "mysql":
        return f"(1146, \"Table '<database>.{table}' doesn't exist\")"
    return f"no such table: {table}"
