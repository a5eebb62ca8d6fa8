"""Findings about the migration files themselves, on real databases of every backend.

Each test writes a throwaway migrations package for `catalog` (the bundled files plus or
minus some), brings a fresh database into a real state with real `migrate` runs, and checks
that `diagnose` names the problem with the right evidence: kind, app, migration and the
evidence values. Where the finding proposes a fix that can be run, the test runs it and
checks that `migrate` then succeeds and a new diagnosis has no errors.
"""

from __future__ import annotations

import importlib
import py_compile
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.db.migrations.exceptions import (
    BadMigrationError,
    CircularDependencyError,
    NodeNotFoundError,
)

from migration_doctor.diagnose import Report, diagnose
from migration_doctor.findings import Finding, Severity

from .helpers import app_migration_sources, migrate, record, recorded, statements_of, tables

Package = Callable[[str, dict[str, str]], str]

ORDERS_MIGRATIONS = ["0001_initial", "0002_order_note", "0003_order_default_notes"]
CATALOG_ORIGINALS = ["0001_initial", "0002_tags", "0003_product_sku_stock"]
ORIGINALS = [f"catalog.{name}" for name in CATALOG_ORIGINALS]
AFTER_0003 = ("catalog", "0003_product_sku_stock")


# -- helpers ------------------------------------------------------------------------------


def dump(report: Report) -> list[dict[str, Any]]:
    return [f.as_dict() for f in report.findings]


def one(report: Report, kind: str, app: str | None, migration: str | None) -> Finding:
    """The single finding of `kind` for exactly (app, migration) — None must match None."""
    found = [f for f in report.findings if (f.kind, f.app, f.migration) == (kind, app, migration)]
    assert len(found) == 1, (kind, app, migration, dump(report))
    return found[0]


def assert_no_errors(report: Report) -> None:
    assert report.errors == [], [f.as_dict() for f in report.errors]


def assert_no_warnings(report: Report) -> None:
    assert report.warnings == [], [f.as_dict() for f in report.warnings]


def package_dir(module: str) -> Path:
    return Path(importlib.import_module(module).__path__[0])


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


def catalog_with(**extra: str) -> dict[str, str]:
    return {**app_migration_sources("catalog"), **extra}


# Harmless operations that agree with the models (so they add no model-changes warning).
SAME_CATEGORY_OPTIONS = (
    "        migrations.AlterModelOptions(\n"
    "            name='category',\n"
    "            options={'verbose_name_plural': 'categories'},\n"
    "        ),\n"
)
SAME_TAG_NAME = (
    "        migrations.AlterField(\n"
    "            model_name='tag',\n"
    "            name='name',\n"
    "            field=models.CharField(max_length=50, unique=True),\n"
    "        ),\n"
)
# Operations of migrations that never get into the graph; they would change the state.
TAG_ORDERING = (
    "        migrations.AlterModelOptions(\n"
    "            name='tag',\n"
    "            options={'ordering': ['name']},\n"
    "        ),\n"
)
TAG_COLOUR = (
    "        migrations.AddField(\n"
    "            model_name='tag',\n"
    "            name='colour',\n"
    "            field=models.CharField(max_length=20, null=True, blank=True),\n"
    "        ),\n"
)

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
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                ("slug", models.SlugField(unique=True)),
            ],
            options={"verbose_name_plural": "categories"},
        ),
        migrations.CreateModel(
            name="Tag",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=50, unique=True)),
            ],
        ),
        migrations.CreateModel(
            name="Product",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                ("price", models.DecimalField(decimal_places=2, max_digits=10)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "category",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="products",
                        to="catalog.category",
                    ),
                ),
                (
                    "tags",
                    models.ManyToManyField(blank=True, related_name="products", to="catalog.tag"),
                ),
                (
                    "sku",
                    models.CharField(
                        blank=True, db_column="stock_keeping_unit", max_length=32, null=True
                    ),
                ),
                ("stock", models.IntegerField(default=0)),
            ],
            options={
                "indexes": [models.Index(fields=["name"], name="catalog_product_name_idx")],
            },
        ),
    ]
"""


class OnlyAlias:
    """A router that migrates to one alias only."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == self.alias


@pytest.fixture
def makemigrations(fresh_db: str, settings: Any) -> Callable[..., None]:
    """`makemigrations` whose history check looks at the test database, not at 'default'.

    Without routers makemigrations checks the history of the default database only, which
    is not the one these tests break (and on SQLite opening it would create the file).
    """
    settings.DATABASE_ROUTERS = [OnlyAlias(fresh_db)]

    def run(*args: str, **options: Any) -> None:
        call_command("makemigrations", *args, interactive=False, verbosity=0, **options)
        importlib.invalidate_caches()  # the new module must be importable at once

    return run


def django_migrate(alias: str) -> None:
    call_command("migrate", database=alias, verbosity=0)


# -- 1. multiple leaves -------------------------------------------------------------------


def test_multiple_leaves(
    fresh_db: str, migration_package: Package, makemigrations: Callable[..., None]
) -> None:
    migrate(fresh_db)  # deployed; then two branches each added a catalog migration
    module = migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_a": migration_source([AFTER_0003], SAME_CATEGORY_OPTIONS),
                "0004_b": migration_source([AFTER_0003], SAME_TAG_NAME),
            }
        ),
    )

    report = diagnose(fresh_db)
    finding = one(report, "multiple-leaves", "catalog", None)
    assert finding.severity == Severity.ERROR
    assert finding.evidence == {"leaves": ["0004_a", "0004_b"]}
    assert (
        "Conflicting migrations detected; multiple leaf nodes in the migration graph: "
        "(0004_a, 0004_b in catalog)." in finding.message
    )
    assert finding.fix.commands == ("python manage.py makemigrations --merge catalog",)
    assert [f.kind for f in report.errors] == ["multiple-leaves"]

    # Django's own words, as quoted.
    with pytest.raises(CommandError, match=r"Conflicting migrations.*0004_a, 0004_b in catalog"):
        django_migrate(fresh_db)

    # The proposed fix: it writes the merge migration into the throwaway package.
    makemigrations("catalog", merge=True)
    merges = sorted(p.stem for p in package_dir(module).glob("0005_merge*.py"))
    assert len(merges) == 1, merges
    django_migrate(fresh_db)
    assert {("catalog", "0004_a"), ("catalog", "0004_b"), ("catalog", merges[0])} <= recorded(
        fresh_db
    )
    after = diagnose(fresh_db)
    assert after.find("multiple-leaves") == []
    assert_no_errors(after)
    assert_no_warnings(after)


# -- 2. squash partly applied, replaced files deleted ---------------------------------------


def test_squash_partial(fresh_db: str, migration_package: Package) -> None:
    migrate(fresh_db, "catalog", "0002_tags")  # the bundled files, deployed long ago
    migration_package("catalog", {SQUASH_NAME: SQUASH})  # since then: squashed, originals gone

    report = diagnose(fresh_db)
    finding = one(report, "squash-partial", "catalog", SQUASH_NAME)
    assert finding.severity == Severity.ERROR
    ev = finding.evidence
    assert ev["recorded"] == ["catalog.0001_initial", "catalog.0002_tags"]
    assert ev["not_recorded"] == ["catalog.0003_product_sku_stock"]
    assert ev["deleted_files"] == ORIGINALS
    assert sorted(ev["missing"]) == [
        "column catalog_product.stock",
        "column catalog_product.stock_keeping_unit",
    ]
    assert {"table catalog_product", "table catalog_tag", "table catalog_product_tags"} <= set(
        ev["present"]
    )
    # The squash is not reported a second time as an ordinary half-applied migration,
    # and nothing else is an error (orders and the contrib apps are simply unapplied).
    assert [f.kind for f in report.errors] == ["squash-partial"]
    assert report.find("unapplied", "catalog") == []
    assert report.find("stale-record") == []

    with pytest.raises(NodeNotFoundError, match="some of the replaced migrations are already"):
        django_migrate(fresh_db)


# -- 3. squash ready to be finalised --------------------------------------------------------


def test_squash_ready(fresh_db: str, migration_package: Package) -> None:
    module = migration_package("catalog", catalog_with(**{SQUASH_NAME: SQUASH}))
    migrate(fresh_db)  # Django applies the squash and records the three it replaces
    assert {("catalog", n) for n in [*CATALOG_ORIGINALS, SQUASH_NAME]} <= recorded(fresh_db)

    report = diagnose(fresh_db)
    finding = one(report, "squash-ready", "catalog", SQUASH_NAME)
    assert finding.severity == Severity.INFO
    assert finding.evidence == {"replaced": ORIGINALS, "replaced_files_on_disk": ORIGINALS}
    assert_no_errors(report)
    assert_no_warnings(report)
    assert [f.kind for f in report.findings] == ["squash-ready"]

    # The runnable part of the fix: delete the replaced files (they are in the package).
    base = package_dir(module)
    assert finding.fix.commands == tuple(f"rm {base / f'{n}.py'}" for n in CATALOG_ORIGINALS)
    for command in finding.fix.commands:
        path = Path(command.removeprefix("rm "))
        assert path.parent == base
        path.unlink()
    importlib.invalidate_caches()
    django_migrate(fresh_db)
    after = diagnose(fresh_db)
    assert_no_errors(after)
    assert_no_warnings(after)
    assert after.find("stale-record") == []  # the rows of the replaced files are expected
    assert one(after, "squash-ready", "catalog", SQUASH_NAME).evidence == {
        "replaced": ORIGINALS,
        "replaced_files_on_disk": [],
    }


# -- 4. dependency on a migration that does not exist ---------------------------------------


@pytest.mark.parametrize(
    "dependency",
    [("catalog", "0099_nope"), ("ghost", "0001_initial")],
    ids=["same-app", "app-not-installed"],
)
def test_missing_dependency(
    fresh_db: str, migration_package: Package, dependency: tuple[str, str]
) -> None:
    migrate(fresh_db)
    record(fresh_db, "orders", "0042_gone")
    migration_package(
        "catalog",
        catalog_with(**{"0004_x": migration_source([AFTER_0003, dependency], TAG_ORDERING)}),
    )

    report = diagnose(fresh_db)
    finding = one(report, "missing-dependency", "catalog", "0004_x")
    ev = finding.evidence
    assert ev["dependency"] == f"{dependency[0]}.{dependency[1]}"
    assert ev["file"].endswith("/catalog/0004_x.py")
    assert (
        "NodeNotFoundError: Migration catalog.0004_x dependencies reference nonexistent "
        f"parent node {dependency!r}" in finding.message
    )
    if dependency[0] == "catalog":
        assert ev["app_has_migrations"] is True
        assert ev["nearest"].startswith("catalog.")
        assert ev["nearest"].removeprefix("catalog.") in ev["existing"]
        assert set(CATALOG_ORIGINALS) <= set(ev["existing"])
        assert "0099_nope" not in ev["existing"]
    else:
        assert ev["app_has_migrations"] is False
        assert ev["existing"] == []
        assert "nearest" not in ev
        assert "'ghost' is not installed" in finding.fix.summary
    assert len(report.find("missing-dependency")) == 1

    # The rest of the project is still diagnosed.
    stale = one(report, "stale-record", "orders", "0042_gone")
    assert stale.evidence["app_installed"] is True
    assert [f.kind for f in report.errors] == ["missing-dependency"]

    with pytest.raises(NodeNotFoundError, match=dependency[1]):
        django_migrate(fresh_db)


def test_missing_dependency_nearest_is_a_usable_target(
    fresh_db: str, migration_package: Package
) -> None:
    migrate(fresh_db)
    sources = catalog_with(**{"0004_x": migration_source([AFTER_0003, ("catalog", "0099_nope")])})
    module = migration_package("catalog", sources)

    finding = one(diagnose(fresh_db), "missing-dependency", "catalog", "0004_x")
    nearest = finding.evidence["nearest"]
    # Apply the proposed fix, as an editor and a new process would.
    target = nearest.removeprefix("catalog.")
    path = package_dir(module) / "0004_x.py"
    path.write_text(migration_source([AFTER_0003, ("catalog", target)]))
    sys.modules.pop(f"{module}.0004_x", None)
    importlib.invalidate_caches()
    assert nearest != "catalog.0004_x", "the fix would make 0004_x depend on itself"
    django_migrate(fresh_db)
    assert_no_errors(diagnose(fresh_db))


# -- 5. migration modules that do not load --------------------------------------------------

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
    ("name", "source", "line", "error", "django_error"),
    [
        ("0004_broken", BROKEN_SYNTAX, BROKEN_SYNTAX_LINE, "SyntaxError", SyntaxError),
        (
            "0004_imports",
            BROKEN_IMPORT,
            BROKEN_IMPORT_LINE,
            "ModuleNotFoundError: No module named 'nonexistent_module_xyz'",
            ModuleNotFoundError,
        ),
        (
            "0004_noclass",
            NO_MIGRATION_CLASS,
            None,
            "BadMigrationError",
            BadMigrationError,
        ),
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
    django_error: type[BaseException],
) -> None:
    migrate(fresh_db)
    module = migration_package(
        "catalog",
        catalog_with(
            **{name: source, "0005_after": migration_source([("catalog", name)], TAG_ORDERING)}
        ),
    )

    report = diagnose(fresh_db)
    finding = one(report, "migration-load-error", "catalog", name)
    ev = finding.evidence
    assert ev["module"] == f"{module}.{name}"
    assert ev["file"] == str(package_dir(module) / f"{name}.py")
    assert ev["file"].endswith(f"{name}.py")
    assert ev["line"] == line
    assert ev["error"].startswith(error)
    assert "\n" not in ev["error"]
    where = f"{ev['file']}:{line}" if line else ev["file"]
    assert finding.fix.summary.startswith(f"Correct {where},")
    if django_error is SyntaxError:  # the proposed check reproduces the error
        assert finding.fix.commands == (f"python -m py_compile {ev['file']}",)
        with pytest.raises(py_compile.PyCompileError):
            py_compile.compile(ev["file"], doraise=True)
    elif error.startswith("BadMigrationError"):
        assert finding.fix.commands == ()
    else:
        [command] = finding.fix.commands
        assert f"importlib.import_module('{module}.{name}')" in command
        with pytest.raises(ImportError):
            importlib.import_module(f"{module}.{name}")

    # A dependent of the broken module is a consequence, not a finding of its own.
    assert report.find("missing-dependency") == []
    assert [f.as_dict() for f in report.findings if f.migration == "0005_after"] == []
    # Everything else is diagnosed: one error, and the healthy orders app has none.
    assert [(f.kind, f.migration) for f in report.errors] == [("migration-load-error", name)]
    assert [f.as_dict() for f in report.findings if f.app == "orders"] == []
    assert report.find("stale-record") == []

    # Django stops at the same module.
    with pytest.raises(django_error):
        django_migrate(fresh_db)


# -- 6. circular dependency ---------------------------------------------------------------


def test_circular_dependency(fresh_db: str, migration_package: Package) -> None:
    migrate(fresh_db)
    module = migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_a": migration_source([AFTER_0003, ("catalog", "0005_b")], TAG_ORDERING),
                "0005_b": migration_source([("catalog", "0004_a")], TAG_COLOUR),
            }
        ),
    )

    report = diagnose(fresh_db)
    found = report.find("circular-dependency")
    assert len(found) == 1, dump(report)
    finding = found[0]
    assert finding.app == "catalog"
    # Reported from its first migration whatever the process's string hashes (Django's
    # walk of a set meets the cycle anywhere): the same finding every run.
    assert finding.migration == "0004_a"
    assert finding.evidence["cycle"] == ["catalog.0004_a", "catalog.0005_b"]
    base = package_dir(module)
    assert sorted(finding.evidence["files"]) == [str(base / "0004_a.py"), str(base / "0005_b.py")]
    assert "CircularDependencyError" in finding.message
    # The rest is diagnosed: the cycle is the only error, and no model changes are
    # invented from the incomplete state.
    assert [f.kind for f in report.errors] == ["circular-dependency"]
    assert report.find("missing-dependency") == []
    assert report.find("model-changes") == []

    with pytest.raises(CircularDependencyError):
        django_migrate(fresh_db)


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
    assert finding.severity == Severity.WARNING
    assert finding.evidence == {
        "operations": ["Add field price to product"],
        "non_nullable_without_default": ["product.price"],
    }
    assert "product.price" in finding.message
    assert finding.fix.commands == ("python manage.py makemigrations catalog",)
    assert [(f.kind, f.app) for f in report.findings] == [("model-changes", "catalog")]


def test_model_changes_missing_migration(
    fresh_db: str, migration_package: Package, makemigrations: Callable[..., None]
) -> None:
    sources = app_migration_sources("catalog")
    del sources["0003_product_sku_stock"]
    module = migration_package("catalog", sources)
    migrate(fresh_db)

    report = diagnose(fresh_db)
    finding = one(report, "model-changes", "catalog", None)
    assert finding.severity == Severity.WARNING
    assert sorted(finding.evidence["operations"]) == [
        "Add field sku to product",
        "Add field stock to product",
    ]
    assert finding.evidence["non_nullable_without_default"] == []
    # Schema drift is not reported on top of the model changes it follows from.
    assert [(f.kind, f.app) for f in report.findings] == [("model-changes", "catalog")]

    # The proposed fix, written into the throwaway package, then applied.
    makemigrations("catalog")
    written = sorted(p.stem for p in package_dir(module).glob("0003_*.py"))
    assert len(written) == 1, written
    django_migrate(fresh_db)
    assert ("catalog", written[0]) in recorded(fresh_db)
    after = diagnose(fresh_db)
    assert after.find("model-changes") == []
    assert_no_errors(after)
    assert_no_warnings(after)


def test_no_model_changes_when_healthy(fresh_db: str) -> None:
    migrate(fresh_db)
    report = diagnose(fresh_db)
    assert report.find("model-changes") == []
    assert_no_errors(report)
    assert_no_warnings(report)


# -- 8. migrations disabled for an app ------------------------------------------------------


def test_migrations_disabled(fresh_db: str, settings: Any) -> None:
    migrate(fresh_db)
    settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, "orders": None}

    report = diagnose(fresh_db)
    finding = one(report, "migrations-disabled", "orders", None)
    assert finding.severity == Severity.INFO
    assert finding.evidence == {"rows": ORDERS_MIGRATIONS}
    assert finding.fix.commands == ()
    assert report.find("stale-record", "orders") == []
    assert_no_errors(report)


# -- 9. the doctor only reads -------------------------------------------------------------

READ_ONLY_PREFIXES = ("SELECT", "PRAGMA", "SHOW", "SET TRANSACTION", "WITH")
# SQLite's transaction.atomic sends a plain BEGIN through the cursor, so execute_wrapper
# sees it; it writes nothing. (BEGIN IMMEDIATE / EXCLUSIVE would take the write lock.)
TRANSACTION_START = {"BEGIN", "BEGIN DEFERRED"}


def is_read_only(statement: str) -> bool:
    text = " ".join(statement.split()).upper().rstrip(";")
    return text.startswith(READ_ONLY_PREFIXES) or text in TRANSACTION_START


@pytest.mark.parametrize("state", ["migrated", "empty"])
def test_diagnose_only_reads(fresh_db: str, migration_package: Package, state: str) -> None:
    if state == "migrated":
        migrate(fresh_db)
        rows_before = recorded(fresh_db)
    tables_before = tables(fresh_db)
    migration_package(
        "catalog",
        catalog_with(**{"0004_broken": BROKEN_SYNTAX, "0005_imports": BROKEN_IMPORT}),
    )
    connection = connections[fresh_db]
    connection.ensure_connection()  # connection set-up statements are not the doctor's
    reports: list[Report] = []
    sent = statements_of(fresh_db, lambda: reports.append(diagnose(fresh_db)))
    [report] = reports

    assert [f.migration for f in report.find("migration-load-error")] == [
        "0004_broken",
        "0005_imports",
    ]
    assert sent, "the doctor read nothing"
    assert [s for s in sent if not is_read_only(s)] == []
    assert tables(fresh_db) == tables_before
    if state == "migrated":
        assert recorded(fresh_db) == rows_before
    else:
        assert "django_migrations" not in tables_before


def test_a_missing_migrations_module_does_not_point_at_the_doctor(
    fresh_db: str, settings: Any
) -> None:
    settings.MIGRATION_MODULES = {"catalog": "no_such_package.migrations"}
    report = diagnose(fresh_db)
    [error] = report.find("migration-load-error", "catalog")
    import migration_doctor

    where = str(error.evidence["file"] or "")
    assert not where.startswith(str(Path(migration_doctor.__file__).parent)), error.evidence
