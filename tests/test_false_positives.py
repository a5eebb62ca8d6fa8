"""False positives on healthy databases (issue 13, items 1-5), each next to the true positive
that must stay: every finding agrees with what Django itself does or reports.

The throwaway apps are in tests/fp_apps/ and installed only by the tests that use them.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections

from migration_doctor.diagnose import Report, diagnose
from migration_doctor.drift import canonical_type
from migration_doctor.findings import Severity
from migration_doctor.modelcheck import project_autodetector

from . import helpers as h
from .conftest import BACKEND, _server_config, add_alias, remove_alias, scratch_database


def problems(report: Report) -> list[dict[str, Any]]:
    return [f.as_dict() for f in report.findings if f.severity >= Severity.WARNING]


def doctor(alias: str, *args: str) -> tuple[int, str]:
    """The command in-process; a diagnosis without the import watch (tests/test_traps.py)."""
    out = io.StringIO()
    watch = {} if "--compare" in args else {"import_watch": False}
    try:
        call_command("migration_doctor", *args, database=alias, stdout=out, **watch)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def install(settings: Any, *labels: str) -> None:
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, *(f"tests.fp_apps.{x}" for x in labels)]


class OnlyOn:
    """Routes migrations to one alias, so makemigrations checks that database's history only."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == self.alias


# -- 1. model-changes under translations -----------------------------------------------------
# makemigrations runs with translations deactivated; the doctor compared lazy verbose names
# in LANGUAGE_CODE: "Benutzer" is not "user", so admin, auth, contenttypes and sessions had
# model-changes (and --deploy failed), and schema drift was not checked for them.


@pytest.mark.parametrize("language", ["de", "fr"])
def test_healthy_project_in_another_language(fresh_db: str, settings: Any, language: str):
    settings.LANGUAGE_CODE = language
    h.migrate(fresh_db)
    assert problems(diagnose(fresh_db)) == []
    status, out = doctor(fresh_db, "--deploy")
    assert status == 0, out


def test_translated_project_still_sees_real_changes_and_drift(
    fresh_db: str, settings: Any, monkeypatch: pytest.MonkeyPatch
):
    settings.LANGUAGE_CODE = "de"
    h.migrate(fresh_db)
    h.alter_field(fresh_db, "auth.Group", "name", null=True)  # drift in a translated app
    from catalog.models import Tag

    monkeypatch.setattr(Tag._meta.get_field("name"), "max_length", 60)
    report = diagnose(fresh_db)
    [changed] = report.find("model-changes")
    assert changed.app == "catalog" and len(changed.evidence["operations"]) == 1
    [drift] = report.find("schema-drift")
    assert drift.app == "auth" and drift.evidence["table"] == "auth_group"


# -- 2. a project's own makemigrations with its own autodetector ------------------------------
# Django 5.2+ `Command.autodetector`: a project that overrides makemigrations to ignore
# verbose names, help texts, validators and choices has no migration to write for them.


def makemigrations_check() -> tuple[int, dict[str, int]]:
    """The project's own `makemigrations --check --dry-run`: status, operations per app."""
    out = io.StringIO()
    try:
        call_command("makemigrations", check=True, dry_run=True, stdout=out, interactive=False)
        status = 0
    except SystemExit as exc:
        status = int(exc.code or 0)
    per_app: dict[str, int] = {}
    app = None
    for line in out.getvalue().splitlines():
        header = re.match(r"Migrations for '([^']+)':", line)
        if header:
            app = header.group(1)
            per_app[app] = 0
        elif app and line.startswith("    ") and line.strip():
            per_app[app] += 1
    return status, per_app


def model_changes_per_app(report: Report) -> dict[str, int]:
    return {f.app or "": len(f.evidence["operations"]) for f in report.find("model-changes")}


def test_model_changes_agree_with_the_projects_own_makemigrations(
    fresh_db: str, settings: Any, monkeypatch: pytest.MonkeyPatch
):
    settings.DATABASE_ROUTERS = [OnlyOn(fresh_db)]
    install(settings, "notes")
    h.migrate(fresh_db)
    # Django's own makemigrations: the cosmetic attributes are changes, both agree.
    status, per_app = makemigrations_check()
    assert status == 1 and per_app == {"notes": 2}
    assert model_changes_per_app(diagnose(fresh_db)) == per_app

    install(settings, "quietcmd")
    assert project_autodetector().__name__ == "QuietAutodetector"
    assert makemigrations_check() == (0, {})
    report = diagnose(fresh_db)
    assert problems(report) == []
    assert doctor(fresh_db, "--deploy")[0] == 0

    # A real change is still one, for the project's makemigrations and for the doctor.
    from tests.fp_apps.notes.models import Note

    monkeypatch.setattr(Note._meta.get_field("title"), "max_length", 120)
    status, per_app = makemigrations_check()
    assert status == 1 and per_app == {"notes": 1}
    assert model_changes_per_app(diagnose(fresh_db)) == per_app


def test_an_override_without_autodetector_attribute_means_djangos(settings, monkeypatch):
    """Django before 5.2 has no `Command.autodetector`: an override runs Django's."""
    from django.core.management.commands import makemigrations
    from django.db.migrations.autodetector import MigrationAutodetector

    install(settings, "quietcmd")
    from tests.fp_apps.quietcmd.management.commands.makemigrations import Command

    monkeypatch.delattr(Command, "autodetector")
    monkeypatch.delattr(makemigrations.Command, "autodetector", raising=False)
    assert project_autodetector() is MigrationAutodetector


# -- 3. index classes that create nothing on a backend ----------------------------------------
# An Index subclass whose create_sql is empty on SQLite (BRIN, say) was reported as a missing
# index (missing-schema, an error). What the backend does not create is not expected.


def test_index_the_backend_does_not_create_is_not_expected(fresh_db: str, settings: Any):
    install(settings, "archive")
    h.migrate(fresh_db)
    assert problems(diagnose(fresh_db)) == []
    with connections[fresh_db].cursor() as cursor:
        live = connections[fresh_db].introspection.get_constraints(cursor, "archive_event")
    assert ("archive_event_created_brin" in live) == (BACKEND != "sqlite")

    # Where an index is created, it is still missed when it is gone.
    gone = "archive_event_name_idx" if BACKEND == "sqlite" else "archive_event_created_brin"
    table = "archive_event"
    if BACKEND == "mysql":
        h.sql(fresh_db, f"DROP INDEX {h.qn(fresh_db, gone)} ON {h.qn(fresh_db, table)}")
    else:
        h.sql(fresh_db, f"DROP INDEX {h.qn(fresh_db, gone)}")
    [missing] = diagnose(fresh_db).find("missing-schema", "archive")
    assert missing.evidence["missing"] == [f"constraint {gone} on {table}"]


# -- 4. SQLite integer vs bigint --------------------------------------------------------------
# After AutoField -> BigAutoField, SQLite keeps the referring column `integer` (Django does
# not rebuild those tables: both keys are `integer` there) while the model says `bigint`.
# Same INTEGER affinity, same storage: not drift.


def test_foreign_key_to_a_key_moved_to_bigautofield(fresh_db: str, settings: Any):
    install(settings, "ledger")
    h.migrate(fresh_db)
    column = "account_id"
    with connections[fresh_db].cursor() as cursor:
        described = connections[fresh_db].introspection.get_table_description(
            cursor, "ledger_entry"
        )
    live = {c.name: c for c in described}[column]
    if BACKEND == "sqlite":  # the case itself: PostgreSQL and MariaDB altered it to bigint
        assert live.type_code.lower() == "integer"
    assert problems(diagnose(fresh_db)) == []


@pytest.mark.skipif(BACKEND != "sqlite", reason="type affinity is SQLite's")
def test_sqlite_integer_family_compares_by_affinity_and_nothing_else_does():
    same = ["integer", "bigint", "smallint", "int", "integer unsigned", "bigint unsigned"]
    assert {canonical_type("sqlite", t) for t in same} == {"integer"}
    assert canonical_type("sqlite", "varchar(50)") != canonical_type("sqlite", "varchar(80)")
    assert canonical_type("sqlite", "integer") != canonical_type("sqlite", "real")
    assert canonical_type("sqlite", "integer") != canonical_type("sqlite", "text")
    assert canonical_type("sqlite", "point") is None  # INT inside a word: not known, skipped


# -- 5. --compare across vendors ---------------------------------------------------------------
# Both sides were judged by the first database's expected objects: a partial unique index
# PostgreSQL creates and MariaDB cannot was "missing in 'other'".

PARTIAL_UNIQUE = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_product_sku_stock")]
    operations = [
        migrations.AddConstraint(
            model_name="product",
            constraint=models.UniqueConstraint(
                fields=["sku"], condition=models.Q(stock__gt=0), name="catalog_sku_in_stock"
            ),
        ),
    ]
"""


@pytest.fixture
def postgres_and_mariadb(django_db_blocker: Any, tmp_path: Path) -> Iterator[tuple[str, str]]:
    with (
        scratch_database(tmp_path, "md_fp_pg", backend="postgres") as pg,
        scratch_database(tmp_path, "md_fp_my", backend="mysql") as my,
        django_db_blocker.unblock(),
    ):
        add_alias("fp_pg", _server_config(pg, "postgres"))
        add_alias("fp_my", _server_config(my, "mysql"))
        try:
            yield "fp_pg", "fp_my"
        finally:
            remove_alias("fp_pg")
            remove_alias("fp_my")


@pytest.mark.skipif(
    BACKEND == "sqlite",
    reason="compares a PostgreSQL with a MariaDB database: runs with MIGRATION_DOCTOR_DB="
    "postgres or mysql",
)
def test_compare_postgres_with_mariadb(postgres_and_mariadb, migration_package):
    pg, my = postgres_and_mariadb
    migration_package(
        "catalog", {**h.app_migration_sources("catalog"), "0004_partial": PARTIAL_UNIQUE}
    )
    h.migrate(pg)
    h.migrate(my)
    for a, b in ((pg, my), (my, pg)):
        status, out = doctor(a, "--compare", b)
        assert status == 0, out
        assert "same schema for every migration" in out

    # A real difference is still one: the constraint dropped on PostgreSQL.
    h.sql(pg, 'ALTER TABLE "catalog_product" DROP CONSTRAINT IF EXISTS "catalog_sku_in_stock"')
    h.sql(pg, 'DROP INDEX IF EXISTS "catalog_sku_in_stock"')
    status, out = doctor(my, "--compare", pg, "--format", "json")
    assert status == 1
    [schema] = json.loads(out)["schema"]
    assert schema["migration"] == "catalog.0004_partial"
    assert schema[f"missing_in_{pg}"] == ["constraint catalog_sku_in_stock on catalog_product"]
    assert schema[f"missing_in_{my}"] == []
