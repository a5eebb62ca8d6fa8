"""System checks: `check --database` reports the doctor's errors; migrate is never blocked."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import BaseCommand, SystemCheckError

from migration_doctor import checks as doctor_checks

from . import helpers as h


def table_exists_state(alias: str) -> None:
    h.migrate(alias)
    # catalog.0002 creates tables: `migrate` fails on them on every backend.
    h.unrecord(alias, "catalog", "0002_tags")
    h.unrecord(alias, "catalog", "0003_product_sku_stock")


def run_check(alias: str) -> str:
    out = io.StringIO()
    call_command("check", databases=[alias], stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_registered_with_the_database_tag() -> None:
    assert doctor_checks.check_migration_state in checks.registry.registry.get_checks()
    assert checks.Tags.database in doctor_checks.check_migration_state.tags


def test_check_reports_error_findings_with_their_ids(fresh_db: str) -> None:
    table_exists_state(fresh_db)
    with pytest.raises(SystemCheckError) as excinfo:
        run_check(fresh_db)
    text = str(excinfo.value)
    assert "catalog.0002_tags: (migration_doctor.E001) catalog.0002_tags is not recorded" in text
    assert "HINT: Record it without running it." in text
    assert "$ python manage.py migrate catalog 0002_tags --fake" in text
    assert "catalog.0003_product_sku_stock: (migration_doctor.E001)" in text
    assert "System check identified 2 issues" in text


def test_check_messages(fresh_db: str) -> None:
    table_exists_state(fresh_db)
    messages = doctor_checks.check_migration_state(databases=[fresh_db])
    assert [(m.id, m.obj, m.level) for m in messages] == [
        ("migration_doctor.E001", "catalog.0002_tags", checks.ERROR),
        ("migration_doctor.E001", "catalog.0003_product_sku_stock", checks.ERROR),
    ]
    message = messages[0]
    assert message.msg.startswith("catalog.0002_tags is not recorded, but everything")
    assert message.hint == (
        "Record it without running it.\n\t  $ python manage.py migrate catalog 0002_tags --fake"
    )
    # Named apps (`manage.py check orders --database x`) limit the findings.
    from django.apps import apps

    orders = [apps.get_app_config("orders")]
    assert doctor_checks.check_migration_state(app_configs=orders, databases=[fresh_db]) == []


def test_silenced_by_id(fresh_db: str, settings: Any) -> None:
    table_exists_state(fresh_db)
    settings.SILENCED_SYSTEM_CHECKS = ["migration_doctor.E001"]
    run_check(fresh_db)  # no SystemCheckError


def test_healthy_database_passes(fresh_db: str) -> None:
    h.migrate(fresh_db)
    assert doctor_checks.check_migration_state(databases=[fresh_db]) == []
    run_check(fresh_db)


def test_not_run_without_databases(fresh_db: str) -> None:
    """A plain `check` (and runserver) never touches a database."""
    table_exists_state(fresh_db)
    # Django runs checks tagged "database" only when databases are asked for.
    [registered] = [
        c
        for c in checks.registry.registry.get_checks(include_deployment_checks=True)
        if c is doctor_checks.check_migration_state
    ]
    assert set(registered.tags) == {checks.Tags.database}
    assert doctor_checks.check_migration_state(databases=None) == []


def test_unreachable_database_is_e000(fresh_db: str, tmp_path: Any) -> None:
    from .conftest import add_alias, remove_alias

    # A directory: SQLite cannot open it. (A file that does not exist yet is a fresh
    # database, tests/test_missing_sqlite.py, and no error.)
    gone = str(tmp_path)
    add_alias("doctor_gone", {"ENGINE": "django.db.backends.sqlite3", "NAME": gone})
    try:
        [message] = doctor_checks.check_migration_state(databases=["doctor_gone"])
    finally:
        remove_alias("doctor_gone")
    assert message.id == "migration_doctor.E000"
    assert message.level == checks.ERROR
    assert "'doctor_gone'" in message.msg


def test_migrate_is_not_blocked_by_the_check(fresh_db: str) -> None:
    """migrate runs the database checks first; ours stays silent so Django's own error shows."""
    table_exists_state(fresh_db)
    with pytest.raises(Exception) as excinfo:
        call_command(
            "migrate",
            "catalog",
            database=fresh_db,
            skip_checks=False,  # call_command skips checks by default; manage.py does not
            verbosity=0,
            stdout=io.StringIO(),
        )
    assert not isinstance(excinfo.value, SystemCheckError)
    assert "already exists" in str(excinfo.value)  # table "catalog_tag" already exists


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["manage.py", "migrate"], "migrate"),
        (["/srv/app/manage.py", "test", "orders"], "test"),
        (["/venv/bin/django-admin", "makemigrations"], "makemigrations"),
        (["/venv/lib/python3.12/site-packages/django/__main__.py", "migrate"], "migrate"),
        (["/venv/bin/pytest", "test"], None),  # a directory called test, not a command
        (["/venv/lib/python3.12/site-packages/pytest/__main__.py", "migrate"], None),
        (["manage.py"], None),
    ],
)
def test_argv_fallback(argv: list[str], expected: str | None) -> None:
    assert doctor_checks._argv_command(argv) == expected


def test_commands_on_the_stack() -> None:
    class Command(BaseCommand):
        def handle(self, *args: Any, **options: Any) -> None:
            self.seen = doctor_checks.running_commands()

    Command.__module__ = "myproject.management.commands.migrate"
    command = Command()
    command.handle()
    assert command.seen == ["migrate"]
    assert doctor_checks.running_commands() == []  # pytest is no management command
