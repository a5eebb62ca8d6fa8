"""Create or drop one throwaway database for tests/realworld/run.py.

    python -m tests.realworld.dbadmin create|drop BACKEND NAME

Run with each app set's own interpreter (its venv has the drivers).
Connection parameters are the testproject's (PGHOST... / MYSQL_HOST...); a SQLite NAME is a
file path.
"""

from __future__ import annotations

import sys
from pathlib import Path

from testproject.settings import database


def _execute(backend: str, sql: str) -> None:
    cfg = database(backend, "postgres" if backend == "postgres" else "")
    if backend == "postgres":
        import psycopg

        with psycopg.connect(
            host=cfg["HOST"],
            port=cfg["PORT"],
            user=cfg["USER"],
            password=cfg["PASSWORD"],
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        ) as conn:
            conn.execute(sql)
        return
    import MySQLdb

    conn = MySQLdb.connect(
        host=cfg["HOST"],
        port=int(cfg["PORT"]),
        user=cfg["USER"],
        password=cfg["PASSWORD"],
        connect_timeout=5,
    )
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


def main(action: str, backend: str, name: str) -> None:
    if backend == "sqlite":
        path = Path(name)
        path.unlink(missing_ok=True)
        if action == "create":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        return
    if backend == "postgres":
        _execute(backend, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if action == "create":
            _execute(backend, f'CREATE DATABASE "{name}"')
        return
    _execute(backend, f"DROP DATABASE IF EXISTS `{name}`")
    if action == "create":
        _execute(backend, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("create", "drop"):
        sys.exit("usage: python -m tests.realworld.dbadmin create|drop BACKEND NAME")
    main(*sys.argv[1:])
