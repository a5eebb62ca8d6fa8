"""Findings about the migration files themselves, on real databases of every backend.

Each test writes a throwaway migrations package for `catalog` (the bundled files plus or
minus some), brings a fresh database into a real state with real `migrate` runs, and checks
that `diagnose` names the problem with the right evidence — and, where the finding proposes
a fix, that the fix works.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.db.migrations.exceptions import CircularDependencyError

from migration_doctor.diagnose import Report, diagnose
from migration_doctor.findings import Finding

from .helpers import app_migration_sources, migrate, record, recorded, tables

Package = Callable[[str, dict[str, str]], str]

ORDERS_MIGRATIONS = ["0001_initial", "0002_order_note", "0003_order_default_notes"]


def one(report: Report, kind: str, app: str | None, migration: str | None) -> Finding:
    """The single finding of `kind` for exactly (app, migration); migration None included."""
    found = [f for f in report.findings if (f.kind, f.app, f.migration) == (kind, app, migration)]
    assert len(found) == 1, (kind, app, migration, [f.as_dict() for f in report.findings])
    return found[0]


def summary(report: Report) -> list[tuple[str, str | None, str | None]]:
    return [(f.kind, f.app, f.migration) for f in report.findings]


def no_errors(report: Report) -> None:
    assert report.errors == [], [f.as_dict() for f in report.errors]


def migration_source(dependencies: list[tuple[str, str]], operations: str = "") -> str:
    deps = "".join(f"        {dep!r},\n" for dep in dependencies)
    return (
        "from django.db import migrations, models\n"
        "\n"
        "\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [\n"
        f"{deps}"
        "    ]\n"
        "\n"
        "    operations = [\n"
        f"{operations}"
        "    ]\n"
    )


def tag_field(name: str) -> str:
    """A harmless operation: a nullable column on Tag."""
    return (
        "        migrations.AddField(\n"
        "            model_name='tag',\n"
        f"            name={name!r},\n"
        "            field=models.CharField(max_length=20, null=True, blank=True),\n"
        "        ),\n"
    )


TAG_OPTIONS = (
    "        migrations.AlterModelOptions(\n"
    "            name='tag',\n"
    "            options={'ordering': ['name']},\n"
    "        ),\n"
)

AFTER_0003 = ("catalog", "0003_product_sku_stock")

# catalog 0001..0003 as one hand-written squash, operations mirroring the originals.
SQUASH_NAME = "0001_squashed_0003_product_sku_stock"
SQUASH = """\
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    replaces = [
        ("catalog", "0001_initial"),
        ("catalog", "0002_tags"),
        ("catalog", "0003_product_sku_stock"),
    ]

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Category",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("slug", models.SlugField(unique=True)),
            ],
            options={"verbose_name_plural": "categories"},
        ),
        migrations.CreateModel(
            name="Tag",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=50, unique=True)),
            ],
        ),
        migrations.CreateModel(
            name="Product",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=200)),
                ("price", models.DecimalField(decimal_places=2, max_digits=10)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("category", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="products", to="catalog.category")),
                ("tags", models.ManyToManyField(blank=True, related_name="products", to="catalog.tag")),
                ("sku", models.CharField(blank=True, db_column="stock_keeping_unit", max_length=32, null=True)),
                ("stock", models.IntegerField(default=0)),
            ],
            options={
                "indexes": [models.Index(fields=["name"], name="catalog_product_name_idx")],
            },
        ),
    ]
"""

ORIGINALS = [f"catalog.{name}" for name in app_migration_sources("catalog")]


def catalog_with(**extra: str) -> dict[str, str]:
    return {**app_migration_sources("catalog"), **extra}


# -- 1. multiple leaves ------------------------------------------------------------------


def test_multiple_leaves(fresh_db: str, migration_package: Package) -> None:
    migrate(fresh_db)  # deployed; then two branches each added a catalog migration
    migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_a": migration_source([AFTER_0003], TAG_OPTIONS),
                "0004_b": migration_source([AFTER_0003], tag_field("colour")),
            }
        ),
    )

    report = diagnose(fresh_db)
    finding = one(report, "multiple-leaves", "catalog", None)
    assert finding.migration is None
    assert finding.evidence == {"leaves": ["0004_a", "0004_b"]}
    assert "Conflicting migrations detected" in finding.message
    assert finding.fix.commands == ("python manage.py makemigrations --merge catalog",)

    with pytest.raises(CommandError, match="Conflicting migrations"):
        call_command("migrate", database=fresh_db, verbosity=0)

    # The proposed fix; it writes the merge migration into the throwaway package.
    call_command("makemigrations", "catalog", merge=True, interactive=False, verbosity=0)
    importlib.invalidate_caches()
    migrate(fresh_db)
    after = diagnose(fresh_db)
    assert after.find("multiple-leaves") == []
    no_errors(after)
    assert ("catalog", "0004_a") in recorded(fresh_db)
    assert ("catalog", "0004_b") in recorded(fresh_db)


# -- 2. squash partly applied, replaced files deleted ----------------------------------------


def test_squash_partial(fresh_db: str, migration_package: Package) -> None:
    migrate(fresh_db, "catalog", "0002_tags")  # the bundled files, as deployed long ago
    migration_package("catalog", {SQUASH_NAME: SQUASH})  # the files were squashed since

    report = diagnose(fresh_db)
    finding = one(report, "squash-partial", "catalog", SQUASH_NAME)
    ev = finding.evidence
    assert ev["recorded"] == ["catalog.0001_initial", "catalog.0002_tags"]
    assert ev["not_recorded"] == ["catalog.0003_product_sku_stock"]
    assert ev["deleted_files"] == ORIGINALS
    assert "column catalog_product.stock" in ev["missing"]
    assert "column catalog_product.stock_keeping_unit" in ev["missing"]
    assert "table catalog_product" in ev["present"]
    assert "table catalog_tag" in ev["present"]
    assert "column catalog_product.stock" not in ev["present"]
    # The squash is not also reported as an ordinary partial migration.
    assert report.find("partially-applied", "catalog") == []
    assert report.find("table-exists", "catalog") == []

    with pytest.raises(Exception):  # noqa: B017 - Django's error differs between versions
        call_command("migrate", database=fresh_db, verbosity=0)


# -- 3. squash ready to be finalised ---------------------------------------------------------


def test_squash_ready(fresh_db: str, migration_package: Package) -> None:
    migration_package("catalog", catalog_with(**{SQUASH_NAME: SQUASH}))
    migrate(fresh_db)
    assert {("catalog", n.split(".")[1]) for n in ORIGINALS} <= recorded(fresh_db)

    report = diagnose(fresh_db)
    finding = one(report, "squash-ready", "catalog", SQUASH_NAME)
    assert finding.severity.label == "info"
    assert finding.evidence == {"replaced": ORIGINALS, "replaced_files_on_disk": ORIGINALS}
    assert len(finding.fix.commands) == 3
    assert all(c.startswith("rm ") and c.endswith(".py") for c in finding.fix.commands)
    no_errors(report)
    assert report.warnings == [], [f.as_dict() for f in report.warnings]


# -- 4. dependency on a migration that does not exist -----------------------------------------


@pytest.mark.parametrize(
    ("dependency", "nearest"),
    [(("catalog", "0099_nope"), True), (("ghost", "0001_initial"), False)],
    ids=["same-app", "app-not-installed"],
)
def test_missing_dependency(
    fresh_db: str, migration_package: Package, dependency: tuple[str, str], nearest: bool
) -> None:
    migrate(fresh_db)
    record(fresh_db, "orders", "0042_gone")
    migration_package(
        "catalog",
        catalog_with(**{"0004_x": migration_source([AFTER_0003, dependency], TAG_OPTIONS)}),
    )

    report = diagnose(fresh_db)
    finding = one(report, "missing-dependency", "catalog", "0004_x")
    ev = finding.evidence
    assert ev["dependency"] == f"{dependency[0]}.{dependency[1]}"
    if nearest:
        assert ev["app_has_migrations"] is True
        assert ev["nearest"].startswith("catalog.")
        assert ev["nearest"][len("catalog.") :] in app_migration_sources("catalog") | {
            "0004_x": ""
        }
        assert "0099_nope" not in ev["existing"]
    else:
        assert ev["app_has_migrations"] is False
        assert "nearest" not in ev
        assert "not installed" in finding.fix.summary
    assert "NodeNotFoundError" in finding.message
    assert len(report.find("missing-dependency")) == 1

    # The rest of the project is still diagnosed.
    stale = one(report, "stale-record", "orders", "0042_gone")
    assert stale.evidence["app_installed"] is True
    assert [f for f in report.errors if f.kind != "missing-dependency"] == []

    with pytest.raises(Exception, match="0099_nope|ghost"):  # noqa: B017
        call_command("migrate", database=fresh_db, verbosity=0)


# -- 5. migration modules that do not load ---------------------------------------------------

BROKEN_SYNTAX = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_product_sku_stock")]

    operations = [
        migrations.RunSQL("SELECT 1",
    }
"""
BROKEN_SYNTAX_LINE = 9  # the mismatched bracket

BROKEN_IMPORT = """\
from django.db import migrations

import nonexistent_module_xyz


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_product_sku_stock")]
    operations = []
"""
BROKEN_IMPORT_LINE = 3

NO_MIGRATION_CLASS = """\
from django.db import migrations


class Migrashun(migrations.Migration):
    dependencies = [("catalog", "0003_product_sku_stock")]
    operations = []
"""


@pytest.mark.parametrize(
    ("name", "source", "line", "error"),
    [
        ("0004_broken", BROKEN_SYNTAX, BROKEN_SYNTAX_LINE, "SyntaxError"),
        ("0004_imports", BROKEN_IMPORT, BROKEN_IMPORT_LINE, "ModuleNotFoundError"),
        ("0004_noclass", NO_MIGRATION_CLASS, None, "BadMigrationError"),
    ],
    ids=["syntax-error", "import-error", "no-migration-class"],
)
def test_migration_load_error(
    fresh_db: str,
    migration_package: Package,
    name: str,
    source: str,
    line: int | None,
    error: str,
) -> None:
    migrate(fresh_db)
    module = migration_package(
        "catalog",
        catalog_with(
            **{name: source, "0005_after": migration_source([("catalog", name)], TAG_OPTIONS)}
        ),
    )

    report = diagnose(fresh_db)
    finding = one(report, "migration-load-error", "catalog", name)
    ev = finding.evidence
    assert ev["module"] == f"{module}.{name}"
    assert ev["file"].endswith(f"/catalog/{name}.py")
    assert ev["line"] == line
    assert ev["error"].startswith(error)
    if error == "ModuleNotFoundError":
        assert "nonexistent_module_xyz" in ev["error"]
    if line is not None:
        assert finding.fix.summary.startswith(f"Correct {ev['file']}:{line}")
    assert finding.fix.commands == (f"python -m py_compile {ev['file']}",)

    # The dependent of the broken module is a consequence, not a finding of its own.
    assert report.find("missing-dependency") == []
    assert [f for f in report.findings if f.migration == "0005_after"] == []
    # Everything else is diagnosed: one error, the healthy orders app has none.
    assert [f.kind for f in report.errors] == ["migration-load-error"]
    assert [f for f in report.findings if f.app == "orders"] == []

    # Django stops at the same module.
    with pytest.raises(Exception):  # noqa: B017 - SyntaxError, ImportError, BadMigrationError
        call_command("migrate", database=fresh_db, verbosity=0)


# -- 6. circular dependency ---------------------------------------------------------------


def test_circular_dependency(fresh_db: str, migration_package: Package) -> None:
    migrate(fresh_db)
    migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_a": migration_source([AFTER_0003, ("catalog", "0005_b")], TAG_OPTIONS),
                "0005_b": migration_source([("catalog", "0004_a")], tag_field("colour")),
            }
        ),
    )

    report = diagnose(fresh_db)
    found = report.find("circular-dependency", "catalog")
    assert len(found) == 1, summary(report)
    finding = found[0]
    assert finding.migration in {"0004_a", "0005_b"}
    cycle = finding.evidence["cycle"]
    assert "catalog.0004_a" in cycle
    assert "catalog.0005_b" in cycle
    assert set(cycle) == {"catalog.0004_a", "catalog.0005_b"}
    files = finding.evidence["files"]
    assert sorted(f.rsplit("/", 1)[-1] for f in files) == ["0004_a.py", "0005_b.py"]
    assert [f.kind for f in report.errors] == ["circular-dependency"]

    with pytest.raises(CircularDependencyError):
        call_command("migrate", database=fresh_db, verbosity=0)


# -- 7. models ahead of the migrations ----------------------------------------------------


def test_model_changes_non_nullable_field(fresh_db: str, migration_package: Package) -> None:
    sources = app_migration_sources("catalog")
    price = "                ('price', models.DecimalField(decimal_places=2, max_digits=10)),\n"
    assert price in sources["0001_initial"]
    sources["0001_initial"] = sources["0001_initial"].replace(price, "")
    migration_package("catalog", sources)
    migrate(fresh_db)

    report = diagnose(fresh_db)
    finding = one(report, "model-changes", "catalog", None)
    assert finding.severity.label == "warning"
    assert finding.evidence["operations"] == ["Add field price to product"]
    assert finding.evidence["non_nullable_without_default"] == ["product.price"]
    assert "product.price" in finding.message
    assert finding.fix.commands == ("python manage.py makemigrations catalog",)
    assert report.find("model-changes", "orders") == []
    no_errors(report)


def test_model_changes_missing_migration(fresh_db: str, migration_package: Package) -> None:
    sources = app_migration_sources("catalog")
    del sources["0003_product_sku_stock"]
    migration_package("catalog", sources)
    migrate(fresh_db)

    report = diagnose(fresh_db)
    finding = one(report, "model-changes", "catalog", None)
    operations = finding.evidence["operations"]
    assert sorted(operations) == ["Add field sku to product", "Add field stock to product"]
    assert finding.evidence["non_nullable_without_default"] == []
    # Schema drift is not reported on top of the model changes it follows from.
    assert report.find("schema-drift", "catalog") == []
    no_errors(report)

    # The proposed fix, written into the throwaway package, then applied.
    call_command("makemigrations", "catalog", interactive=False, verbosity=0)
    importlib.invalidate_caches()
    migrate(fresh_db)
    after = diagnose(fresh_db)
    assert after.find("model-changes") == []
    no_errors(after)
    assert after.warnings == [], [f.as_dict() for f in after.warnings]


def test_no_model_changes_when_healthy(fresh_db: str) -> None:
    migrate(fresh_db)
    report = diagnose(fresh_db)
    assert report.find("model-changes") == []
    no_errors(report)
    assert report.warnings == [], [f.as_dict() for f in report.warnings]


# -- 8. migrations disabled for an app ------------------------------------------------------


def test_migrations_disabled(fresh_db: str, settings: Any) -> None:
    migrate(fresh_db)
    settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, "orders": None}

    report = diagnose(fresh_db)
    finding = one(report, "migrations-disabled", "orders", None)
    assert finding.severity.label == "info"
    assert finding.evidence == {"rows": ORDERS_MIGRATIONS}
    assert report.find("stale-record", "orders") == []
    no_errors(report)


# -- 9. the doctor only reads -------------------------------------------------------------

READ_ONLY_PREFIXES = ("SELECT", "PRAGMA", "SHOW", "SET TRANSACTION", "WITH")
# SQLite opens the doctor's read transaction (transaction.atomic) with a plain BEGIN sent
# through the cursor, so execute_wrapper sees it. It writes nothing; BEGIN IMMEDIATE or
# EXCLUSIVE would take the write lock, and would not be accepted here.
TRANSACTION_CONTROL = {"BEGIN", "BEGIN DEFERRED"}


def is_read_only(statement: str) -> bool:
    text = " ".join(statement.split()).upper().rstrip(";")
    return text.startswith(READ_ONLY_PREFIXES) or text in TRANSACTION_CONTROL


def statements_of(alias: str, action: Callable[[], object]) -> list[str]:
    connection = connections[alias]
    connection.ensure_connection()  # connection set-up statements are not the doctor's
    sent: list[str] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        action()
    return sent


@pytest.mark.parametrize("state", ["migrated", "empty"])
def test_diagnose_only_reads(fresh_db: str, migration_package: Package, state: str) -> None:
    if state == "migrated":
        migrate(fresh_db)
    rows_before = recorded(fresh_db) if state == "migrated" else set()
    tables_before = tables(fresh_db)
    migration_package(
        "catalog",
        catalog_with(**{"0004_broken": BROKEN_SYNTAX, "0005_imports": BROKEN_IMPORT}),
    )

    reports: list[Report] = []
    sent = statements_of(fresh_db, lambda: reports.append(diagnose(fresh_db)))

    assert len(report_errors := reports[0].find("migration-load-error")) == 2, report_errors
    assert sent, "the doctor read nothing"
    writes = [s for s in sent if not is_read_only(s)]
    assert writes == [], writes
    assert tables(fresh_db) == tables_before
    if state == "migrated":
        assert recorded(fresh_db) == rows_before
    else:
        assert "django_migrations" not in tables_before
