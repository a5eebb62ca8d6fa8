"""One repair at a time per database: a server-side lock, or a file lock for SQLite.

A tenant schema (django-tenants) is a database of its own for a repair: its lock is
PostgreSQL's two-key advisory lock (the doctor's key, the schema's), so repairs of two
tenants do not wait for each other, and the public schema keeps the database's lock."""

from __future__ import annotations

import hashlib
import time
import urllib.parse
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from django.db.backends.base.base import BaseDatabaseWrapper

from ..snapshot import DoctorError
from .filelock import try_lock

LOCK_NAME = "migration_doctor.repair"
# pg_advisory_lock takes a bigint: a stable number derived from the name.
PG_KEY = zlib.crc32(LOCK_NAME.encode())


def _int4(value: int) -> int:
    """crc32 is unsigned; the two-key advisory lock takes two signed 32-bit integers."""
    return value - (1 << 32) if value >= 1 << 31 else value


def pg_lock_key(schema: str | None) -> list[int]:
    """The advisory lock's arguments: the database's key, or the doctor's and a schema's."""
    if schema is None:
        return [PG_KEY]
    return [_int4(PG_KEY), _int4(zlib.crc32(schema.encode()))]


def _marks(key: list[int]) -> str:
    return ", ".join(["%s"] * len(key))


class LockHeld(DoctorError):
    pass


def transaction_pooled(connection: BaseDatabaseWrapper) -> bool:
    """Behind a transaction-pooling proxy (PgBouncer pool_mode=transaction) two transactions
    may run on two server sessions: a session advisory lock would not hold between them."""
    pids = set()
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute("SELECT pg_backend_pid()")
            pids.add(cursor.fetchone()[0])
    return len(pids) > 1


def lock_in_transaction(connection: BaseDatabaseWrapper) -> None:
    """Take the transaction-level lock inside the current transaction (pooled PostgreSQL)."""
    key = getattr(connection, "_migration_doctor_xact_lock", None)
    if key:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_try_advisory_xact_lock({_marks(key)})", key)
            if not cursor.fetchone()[0]:
                raise LockHeld(_held(connection, 0))


@contextmanager
def repair_lock(
    connection: BaseDatabaseWrapper, timeout: float = 0.0, schema: str | None = None
) -> Iterator[str]:
    """Hold the repair lock for `connection`'s database (or its tenant `schema`); LockHeld
    after `timeout` seconds."""
    vendor = connection.vendor
    key = pg_lock_key(schema)
    of = f" of schema {schema}" if schema is not None else ""
    deadline = time.monotonic() + max(timeout, 0.0)
    if (
        vendor == "postgresql"
        and not connection.in_atomic_block
        and transaction_pooled(connection)
    ):
        connection._migration_doctor_xact_lock = key  # type: ignore[attr-defined]
        try:
            yield (
                f"transaction-level advisory lock{of} (a transaction-pooling proxy was "
                "detected: session locks do not hold there, so each transaction of the "
                "repair takes it)"
            )
        finally:
            connection._migration_doctor_xact_lock = None  # type: ignore[attr-defined]
    elif vendor == "postgresql":
        marks = _marks(key)
        _poll(connection, f"SELECT pg_try_advisory_lock({marks})", key, deadline, timeout, schema)
        try:
            yield f"PostgreSQL advisory lock {', '.join(map(str, key))}{of}"
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_advisory_unlock({marks})", key)
    elif vendor == "mysql":
        # GET_LOCK names are server-wide and at most 64 characters: a digest of the
        # database name keeps two long names from sharing one lock.
        digest = hashlib.sha256(str(connection.settings_dict["NAME"]).encode()).hexdigest()
        name = f"{LOCK_NAME}.{digest[:32]}"
        # Polled: GET_LOCK's own timeout counts whole seconds only.
        _poll(connection, "SELECT GET_LOCK(%s, 0)", [name], deadline, timeout)
        try:
            yield f"MySQL lock {name!r}"
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT RELEASE_LOCK(%s)", [name])
    elif vendor == "sqlite":
        path = Path(sqlite_path(str(connection.settings_dict["NAME"])) + ".migration_doctor.lock")
        handle: IO[str] = path.open("a")
        try:
            while not try_lock(handle):
                if time.monotonic() >= deadline:
                    raise LockHeld(_held(connection, timeout))
                time.sleep(0.2)
            yield f"lock file {path}"
        finally:
            handle.close()
    else:
        raise DoctorError(f"Repairs are not supported on {vendor}.")


def _poll(
    connection: BaseDatabaseWrapper,
    sql: str,
    params: list[int] | list[str],
    deadline: float,
    timeout: float,
    schema: str | None = None,
) -> None:
    """Try a non-blocking lock statement until it answers true or the deadline passes."""
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, params)
            if cursor.fetchone()[0]:
                return
            if time.monotonic() >= deadline:
                raise LockHeld(_held(connection, timeout, schema))
            time.sleep(0.2)


def sqlite_path(name: str) -> str:
    """The file behind an SQLite NAME, which may be a `file:...?mode=rw` URI."""
    if name.startswith("file:"):
        return urllib.parse.unquote(urllib.parse.urlparse(name).path)
    return name


def _held(connection: BaseDatabaseWrapper, timeout: float, schema: str | None = None) -> str:
    waited = f" after waiting {timeout:g}s" if timeout else ""
    of = f"schema {schema} of " if schema is not None else ""
    return (
        f"Another migration_doctor repair holds the lock on {of}database "
        f"{connection.alias!r}{waited}; try again when it has finished."
    )
