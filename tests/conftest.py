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
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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


_CHECKOUT = Path(__file__).resolve().parent.parent / "testproject"
_LEFT_BEHIND = ("*.sqlite3", "*.sqlite3-journal", "*.migration_doctor.lock", "*_backups")
_before = pytest.StashKey[set[Path]]()


def _left_behind() -> set[Path]:
    return {p for pattern in _LEFT_BEHIND for p in _CHECKOUT.glob(pattern)}


def pytest_configure(config: pytest.Config) -> None:
    """The bundled project's own SQLite database (testproject/demo.sqlite3) is never opened
    by the tests: a command that looks at every alias (makemigrations checks the history of
    each) would create it empty in the checkout. The default alias and the child processes
    get a file of the session's instead, unless MIGRATION_DOCTOR_SQLITE says otherwise."""
    if os.environ.get("MIGRATION_DOCTOR_SQLITE") or BACKEND != "sqlite":
        return
    path = str(Path(tempfile.mkdtemp(prefix="md_default_")) / "default.sqlite3")
    os.environ["MIGRATION_DOCTOR_SQLITE"] = path
    settings.DATABASES["default"]["NAME"] = path  # the same dict the connection reads


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_before] = _left_behind()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite leaves nothing in the checkout that a later command would pick up (an
    empty SQLite file the next `manage.py migration_doctor` silently diagnoses, backups)."""
    new = sorted(_left_behind() - session.config.stash.get(_before, set()))
    if new:
        sys.stderr.write(
            "\nThe tests left files in the checkout: " + ", ".join(map(str, new)) + "\n"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _server_config(name: str, backend: str = BACKEND) -> dict[str, Any]:
    from testproject.settings import database

    return database(backend, name)


def _admin_execute(sql: str, backend: str = BACKEND) -> None:
    """Run CREATE/DROP DATABASE on the server, outside any Django connection."""
    cfg = _server_config("postgres" if backend == "postgres" else "", backend)
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


def _unavailable(exc: Exception, backend: str = BACKEND) -> None:
    reason = f"{backend} server not reachable: {str(exc).splitlines()[0] if str(exc) else exc!r}"
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


@contextmanager
def scratch_database(tmp_path: Path, prefix: str = "md", backend: str = BACKEND) -> Iterator[str]:
    """An empty database of `backend`; yields its NAME (a file path for SQLite), then drops it.

    Skips (or fails under MIGRATION_DOCTOR_REQUIRE_DB=1) when the server is not reachable.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        path = tmp_path / f"{name}.sqlite3"
        path.touch()  # an empty file is an empty database; the doctor never creates one
        yield str(path)
        return
    try:
        if backend == "postgres":
            _admin_execute(f'CREATE DATABASE "{name}"', backend)
        else:
            _admin_execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4", backend)
    except Exception as exc:  # driver missing or server down
        _unavailable(exc, backend)
    try:
        yield name
    finally:
        if backend == "postgres":
            _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', backend)
        else:
            _admin_execute(f"DROP DATABASE IF EXISTS `{name}`", backend)


@pytest.fixture(autouse=True)
def _nothing_in_the_checkout(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Default backups go under BASE_DIR: never the repository's testproject/."""
    settings.BASE_DIR = tmp_path_factory.mktemp("base_dir")


@pytest.fixture
def fresh_db(django_db_blocker: Any, tmp_path: Path) -> Iterator[str]:
    """An empty database of the selected backend; yields its connection alias."""
    alias = f"doctor{next(_counter)}"
    with scratch_database(tmp_path) as name, django_db_blocker.unblock():
        add_alias(alias, _server_config(name))
        try:
            yield alias
        finally:
            remove_alias(alias)


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
