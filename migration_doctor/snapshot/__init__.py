"""Three readers, one snapshot: recorded rows, migration files and live schema as plain data.

Everything the classifier needs is read here, once, inside one read-only transaction where
the backend offers one, so the three sources describe the same moment.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from ..errors import DoctorError, first_line
from ..expected import ExpectedSchema, compute
from ..findings import Finding, Fix
from ..ledger import LEDGER_TABLE, LedgerRecord, read_known_ledger
from .graph import GraphSnapshot, load_graph
from .rows import RecordedRow, read_rows, recorder_table
from .schema import LiveSchema
from .schema_readers import introspect

CONNECT_TIMEOUT = 10  # seconds, unless the settings say otherwise
T = TypeVar("T")


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
    # The SQLite file NAME points at, when it does not exist yet: diagnosed as an empty
    # database without opening it (opening would create it).
    missing_file: Path | None = None

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

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read-only query for a finding's evidence, after the snapshot was taken (one per
        finding, none on a healthy database): counted with the snapshot's statements."""
        self.queries.append(sql)
        connection = self.connection
        # Inside a repair's transaction (the diagnosis after it), a failing evidence query
        # would abort the whole transaction on PostgreSQL: a savepoint keeps it usable.
        guard = (
            transaction.atomic(using=self.alias) if connection.in_atomic_block else nullcontext()
        )
        with guard, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    @property
    def connection(self) -> BaseDatabaseWrapper:
        return connections[self.alias]


def sqlite_file(connection: BaseDatabaseWrapper) -> Path | None:
    """The file behind an SQLite NAME (a path or a `file:` URI), absolute; None in memory."""
    name = str(connection.settings_dict.get("NAME") or "")
    if not name or connection.is_in_memory_db():  # type: ignore[attr-defined]
        return None
    if name.startswith("file:"):
        name = urllib.parse.unquote(urllib.parse.urlsplit(name).path)
    return Path(name).absolute()


def missing_sqlite_file(connection: BaseDatabaseWrapper) -> Path | None:
    """The SQLite file of `connection` if it does not exist (yet), else None."""
    if connection.vendor != "sqlite":
        return None
    path = sqlite_file(connection)
    return path if path is not None and not path.exists() else None


def get_connection(
    alias: str = DEFAULT_DB_ALIAS, *, missing_ok: bool = False
) -> BaseDatabaseWrapper:
    """A connected connection, or one clear DoctorError.

    `missing_ok`: a SQLite file that does not exist is returned unopened (opening it would
    create it: diagnosis never writes), for a diagnosis to report it as an empty database.
    """
    if alias not in connections.settings:
        known = ", ".join(sorted(connections.settings))
        raise DoctorError(f"Unknown database alias {alias!r} (DATABASES has: {known}).")
    connection = connections[alias]
    missing = missing_sqlite_file(connection)
    if missing is not None:
        if missing_ok:
            return connection
        name = connection.settings_dict.get("NAME")
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
        raise DoctorError(
            f"Cannot connect to database {alias!r} ({connection.vendor}): {first_line(exc)}"
        ) from exc
    return connection


def _denied(exc: BaseException) -> bool:
    """PostgreSQL's `permission denied for table x`, MySQL's `(1142, "SELECT command
    denied ...")`."""
    text = str(exc).lower()
    return "permission denied" in text or "command denied" in text


def _unreadable(connection: BaseDatabaseWrapper, what: str, exc: BaseException) -> DoctorError:
    why = first_line(exc)
    table = what in (recorder_table(), LEDGER_TABLE)
    hint = (
        f"; the database user needs the SELECT privilege on {what}"
        if table and _denied(exc)
        else ""
    )
    return DoctorError(
        f"Cannot read {what} on database {connection.alias!r} ({connection.vendor}): {why}{hint}."
    )


def _mysql_table_hidden(connection: BaseDatabaseWrapper, table: str) -> DatabaseError | None:
    """MySQL lists only the tables a user has a privilege on: django_migrations missing from
    the catalog may exist and be unreadable. The error of a read names which it is."""
    qn = connection.ops.quote_name
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {qn(table)} WHERE 1 = 0")
    except DatabaseError as exc:
        return exc if _denied(exc) else None
    return None


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
    connection = get_connection(alias, missing_ok=True)
    queries: list[str] = []
    missing = missing_sqlite_file(connection)
    if missing is not None:
        # Before the first `migrate`: an empty database, read without opening the file.
        schema = LiveSchema(vendor=connection.vendor, case_insensitive=True)
        rows: list[RecordedRow] = []
        ledger: list[LedgerRecord] = []
    else:
        with count_queries(connection, queries), _read_only(connection):
            schema = _read(connection, "the schema", lambda: introspect(connection))
            table = recorder_table()
            exists = schema.has_table(table)
            if not exists and connection.vendor == "mysql":
                hidden = _mysql_table_hidden(connection, table)
                if hidden is not None:
                    raise _unreadable(connection, table, hidden)
            rows = _read(connection, table, lambda: read_rows(connection, exists))
            ledger = (
                _read(connection, LEDGER_TABLE, lambda: read_known_ledger(connection))
                if schema.has_table(LEDGER_TABLE)
                else []
            )
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
        missing_file=missing,
    )


def _read(connection: BaseDatabaseWrapper, what: str, read: Callable[[], T]) -> T:
    """A read the database refuses (no privilege on the table) is one line, not a traceback."""
    try:
        return read()
    except DatabaseError as exc:
        raise _unreadable(connection, what, exc) from exc


def missing_file_findings(snapshot: Snapshot) -> list[Finding]:
    """The info that names a SQLite file that does not exist yet: a typo in NAME would
    otherwise read as a database where nothing is applied."""
    path = snapshot.missing_file
    if path is None:
        return []
    name = str(snapshot.connection.settings_dict.get("NAME"))
    option = "" if snapshot.alias == DEFAULT_DB_ALIAS else f" --database {snapshot.alias}"
    return [
        Finding(
            "database-missing",
            None,
            None,
            f"SQLite database file {path} does not exist yet (DATABASES[{snapshot.alias!r}]"
            "['NAME']): diagnosed as a fresh database where nothing is applied. `migrate` "
            "creates it; if the database should exist, NAME is wrong.",
            {"alias": snapshot.alias, "name": name, "path": str(path)},
            Fix(
                "Run migrate to create it, or correct NAME if it is a typo.",
                (f"python manage.py migrate{option}",),
            ),
        )
    ]
