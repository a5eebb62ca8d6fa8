"""Three readers, one snapshot: recorded rows, migration files and live schema as plain data.

Everything the classifier needs is read here, once, inside one read-only transaction where
the backend offers one, so the three sources describe the same moment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from ..expected import ExpectedSchema, compute
from ..ledger import LEDGER_TABLE, LedgerRecord, read_known_ledger
from .graph import GraphSnapshot, load_graph
from .rows import RecordedRow, read_rows, recorder_table
from .schema import LiveSchema, introspect

CONNECT_TIMEOUT = 10  # seconds, unless the settings say otherwise


class DoctorError(Exception):
    """The doctor cannot run (bad alias, unreachable server): one line for the user."""


@dataclass
class Snapshot:
    alias: str
    vendor: str
    rows: list[RecordedRow]
    graph: GraphSnapshot
    schema: LiveSchema
    expected: ExpectedSchema
    queries: list[str]
    # What earlier repairs did (empty until a repair created the ledger table).
    ledger: list[LedgerRecord] = field(default_factory=list)

    def recorded_by_doctor(self, key: tuple[str, str]) -> LedgerRecord | None:
        """The latest repair that recorded this row, if the row is the doctor's doing."""
        label = f"{key[0]}.{key[1]}"
        for entry in reversed(self.ledger):
            if label in entry.rows:
                return entry if entry.action == "record" else None
        return None

    @property
    def recorded(self) -> set[tuple[str, str]]:
        return {row.key for row in self.rows}

    @property
    def connection(self) -> BaseDatabaseWrapper:
        return connections[self.alias]


def get_connection(alias: str = DEFAULT_DB_ALIAS) -> BaseDatabaseWrapper:
    if alias not in connections.settings:
        known = ", ".join(sorted(connections.settings))
        raise DoctorError(f"Unknown database alias {alias!r} (DATABASES has: {known}).")
    connection = connections[alias]
    name = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor == "sqlite" and not connection.is_in_memory_db() and name:  # type: ignore[attr-defined]
        from pathlib import Path

        if not name.startswith("file:") and not Path(name).exists():
            # Opening it would create an empty file: diagnosis never writes.
            raise DoctorError(f"SQLite database file {name} does not exist (alias {alias!r}).")
    if connection.vendor in ("postgresql", "mysql"):
        # A server that does not answer must not hang the doctor: bound the connect.
        options = connection.settings_dict.setdefault("OPTIONS", {})
        options.setdefault("connect_timeout", CONNECT_TIMEOUT)
    try:
        connection.ensure_connection()
        if connection.vendor == "sqlite":
            # SQLite opens lazily: a file that is not a database only fails at a read.
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM sqlite_master LIMIT 1")
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DoctorError(
            f"Cannot connect to database {alias!r} ({connection.vendor}): {first}"
        ) from exc
    return connection


@contextmanager
def _read_only(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """One consistent, read-only view where the backend gives one (PostgreSQL, SQLite)."""
    if connection.in_atomic_block or connection.vendor not in ("postgresql", "sqlite"):
        yield
        return
    with transaction.atomic(using=connection.alias):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


@contextmanager
def count_queries(connection: BaseDatabaseWrapper, sink: list[str]) -> Iterator[None]:
    def wrapper(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        sink.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield


def take_snapshot(alias: str = DEFAULT_DB_ALIAS) -> Snapshot:
    connection = get_connection(alias)
    queries: list[str] = []
    with count_queries(connection, queries), _read_only(connection):
        schema = introspect(connection)
        rows = read_rows(connection, schema.has_table(recorder_table()))
        ledger = read_known_ledger(connection) if schema.has_table(LEDGER_TABLE) else []
    graph = load_graph({row.key for row in rows})
    expected = compute(graph.graph, connection, real_apps=graph.loader.unmigrated_apps)
    return Snapshot(
        alias=alias,
        vendor=connection.vendor,
        rows=rows,
        graph=graph,
        schema=schema,
        expected=expected,
        queries=queries,
        ledger=ledger,
    )
