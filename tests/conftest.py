"""Throwaway databases on the backend chosen by MIGRATION_DOCTOR_DB.

Every test that needs a database state gets an empty database of its own (a SQLite file,
a PostgreSQL or MariaDB database created for it) under a fresh connection alias, so each
failure mode is reproduced from scratch with real `migrate` runs. When the server is not
reachable the test is skipped with the reason, unless MIGRATION_DOCTOR_REQUIRE_DB=1 (set by
.ci/run), where it fails.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

BACKEND = os.environ.get("MIGRATION_DOCTOR_DB", "sqlite")
REQUIRE_DB = os.environ.get("MIGRATION_DOCTOR_REQUIRE_DB") == "1"
_counter = itertools.count()


def pytest_report_header(config: pytest.Config) -> str:
    return f"migration_doctor backend: {BACKEND} (MIGRATION_DOCTOR_DB)"


def _server_config(name: str) -> dict[str, Any]:
    from testproject.settings import database

    return database(BACKEND, name)


def _admin_execute(sql: str) -> None:
    """Run CREATE/DROP DATABASE on the server, outside any Django connection."""
    cfg = _server_config("postgres" if BACKEND == "postgres" else "")
    if BACKEND == "postgres":
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
    else:
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


def _unavailable(exc: Exception) -> None:
    reason = f"{BACKEND} server not reachable: {str(exc).splitlines()[0] if str(exc) else exc!r}"
    if REQUIRE_DB:
        pytest.fail(reason + " (MIGRATION_DOCTOR_REQUIRE_DB=1)")
    pytest.skip(reason)


def add_alias(alias: str, cfg: dict[str, Any]) -> None:
    full = connections.configure_settings({"default": {}, alias: dict(cfg)})[alias]
    connections.settings[alias] = full
    settings.DATABASES[alias] = full


def remove_alias(alias: str) -> None:
    if alias in connections.settings:
        connections[alias].close()
        del connections.settings[alias]
    settings.DATABASES.pop(alias, None)
    with contextlib.suppress(AttributeError):
        delattr(connections._connections, alias)


@pytest.fixture
def fresh_db(django_db_blocker: Any, tmp_path: Path) -> Iterator[str]:
    """An empty database of the selected backend; yields its connection alias."""
    n = next(_counter)
    alias = f"doctor{n}"
    name = f"md_{uuid.uuid4().hex[:12]}"
    if BACKEND == "sqlite":
        path = tmp_path / f"{name}.sqlite3"
        path.touch()  # an empty file is an empty database; the doctor never creates one
        cfg = _server_config(str(path))
    else:
        try:
            if BACKEND == "postgres":
                _admin_execute(f'CREATE DATABASE "{name}"')
            else:
                _admin_execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        except Exception as exc:  # driver missing or server down
            _unavailable(exc)
        cfg = _server_config(name)
    with django_db_blocker.unblock():
        add_alias(alias, cfg)
        try:
            yield alias
        finally:
            remove_alias(alias)
            if BACKEND == "postgres":
                _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            elif BACKEND == "mysql":
                _admin_execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def migration_package(tmp_path: Path, settings: Any) -> Any:
    """Write throwaway migration modules and point MIGRATION_MODULES at them.

    Usage: ``migration_package("catalog", {"0001_initial": "...source..."})`` returns the
    dotted module name. Each call gets a unique top-level package so modules never clash
    in sys.modules between tests.
    """
    root = tmp_path / "migpkgs"
    root.mkdir(exist_ok=True)
    sys.path.insert(0, str(root))
    created: list[str] = []

    def make(app_label: str, files: dict[str, str]) -> str:
        pkg = f"mdpkg_{uuid.uuid4().hex[:10]}"
        base = root / pkg / app_label
        base.mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
        (base / "__init__.py").write_text("")
        for name, source in files.items():
            (base / f"{name}.py").write_text(textwrap.dedent(source))
        module = f"{pkg}.{app_label}"
        settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, app_label: module}
        created.append(pkg)
        return module

    yield make
    sys.path.remove(str(root))
    for key in [k for k in sys.modules if k.split(".")[0] in created]:
        del sys.modules[key]
