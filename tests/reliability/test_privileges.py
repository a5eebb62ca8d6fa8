"""A database user that may not read django_migrations: one line naming the privilege, exit 2.

PostgreSQL: a role granted SELECT on every table, then `REVOKE SELECT ON django_migrations`
(the SELECT fails with `permission denied for table django_migrations`). MariaDB: a user
granted SELECT table by table, every table but django_migrations: MariaDB then hides the
table from information_schema, so the doctor would read "nothing applied" unless it asks
the table itself. SQLite has no privileges (and chmod does not stop root): not applicable.

Users that may read everything but write nothing: tests/reliability/test_read_only.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .. import helpers as h
from ..conftest import BACKEND, _admin_execute
from .support import Project, assert_one_line, db_config
from .test_read_only import _pg_in, make_state

pytestmark = pytest.mark.skipif(
    BACKEND == "sqlite", reason="SQLite has no privileges (and root reads any file)"
)


@pytest.fixture
def without_select(fresh_db: str) -> Iterator[Callable[[str], dict[str, Any]]]:
    """`without_select(table)`: connection settings of a user that may read every table of
    the fresh database but `table`."""
    name = str(db_config(fresh_db)["NAME"])
    roles: list[str] = []

    def make(table: str) -> dict[str, Any]:
        role = f"md_np_{uuid.uuid4().hex[:10]}"
        roles.append(role)
        if BACKEND == "postgres":
            _admin_execute(f'CREATE ROLE "{role}" LOGIN')
            _pg_in(
                name,
                f'GRANT CONNECT ON DATABASE "{name}" TO "{role}"',
                f'GRANT USAGE ON SCHEMA public TO "{role}"',
                f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"',
                f'REVOKE SELECT ON "{table}" FROM "{role}"',
            )
            return db_config(fresh_db, USER=role, PASSWORD="")
        password = uuid.uuid4().hex
        _admin_execute(f"CREATE USER '{role}'@'%' IDENTIFIED BY '{password}'")
        for other in h.tables(fresh_db):
            if other != table:
                _admin_execute(f"GRANT SELECT ON `{name}`.`{other}` TO '{role}'@'%'")
        return db_config(fresh_db, USER=role, PASSWORD=password)

    yield make
    for role in roles:
        if BACKEND == "postgres":
            _pg_in(name, f'DROP OWNED BY "{role}"')
            _admin_execute(f'DROP ROLE IF EXISTS "{role}"')
        else:
            _admin_execute(f"DROP USER IF EXISTS '{role}'@'%'")


@pytest.mark.parametrize(
    "args",
    [[], ["--format", "json"], ["--format", "github"], ["--deploy"], ["--fix", "--noinput"]],
    ids=lambda args: " ".join(args) or "diagnose",
)
def test_no_select_on_django_migrations_is_one_line(
    fresh_db: str, without_select: Any, project: Project, args: list[str]
) -> None:
    make_state(fresh_db, "broken")
    rows = h.recorded(fresh_db)
    settings = project.settings({"default": without_select("django_migrations")})
    watch = [] if args[:1] == ["--fix"] else ["--skip-import-watch"]  # the diagnosis' option
    run = project.run(settings, *args, *watch)
    line = assert_one_line(run, "Cannot read django_migrations", "SELECT privilege")
    assert ("permission denied" if BACKEND == "postgres" else "command denied") in line
    assert run.stdout == "", run
    assert h.recorded(fresh_db) == rows
    assert not project.base_dir.exists()  # no backup: nothing was about to be written


@pytest.mark.skipif(
    BACKEND != "postgres",
    reason="MariaDB hides a table without privileges: the ledger then reads as absent",
)
def test_no_select_on_the_ledger_is_one_line(
    fresh_db: str, without_select: Any, project: Project, tmp_path: Any
) -> None:
    make_state(fresh_db, "broken")
    assert h.fix(fresh_db, "--backup", str(tmp_path / "b.json"))[0] == 0  # creates the ledger
    settings = project.settings({"default": without_select("migration_doctor_ledger")})
    run = project.run(settings, "--skip-import-watch")
    assert_one_line(run, "Cannot read migration_doctor_ledger", "SELECT privilege")


@pytest.mark.skipif(
    BACKEND != "postgres",
    reason="MariaDB hides tables without privileges from information_schema: an unreadable "
    "app table reads as missing (a limit of the catalog, not of django_migrations)",
)
def test_select_on_django_migrations_is_enough(
    fresh_db: str, without_select: Any, project: Project
) -> None:
    """The refusal is about the doctor's tables: without SELECT on an app table the
    diagnosis (which reads the catalog, not app tables) is the owner's."""
    make_state(fresh_db, "broken")
    owner = project.run(project.settings({"default": db_config(fresh_db)}), "--skip-import-watch")
    settings = project.settings({"default": without_select("catalog_product")})
    run = project.run(settings, "--skip-import-watch")
    assert run.returncode == owner.returncode == 1, run
    assert run.stderr_lines == [], run
    assert run.stdout == owner.stdout, run
