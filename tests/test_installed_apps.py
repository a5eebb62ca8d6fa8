"""Source files are the project's own to change, never an installed package's (issue 13.6).

The migrations of `catalog` are installed the way pip installs a distribution: a package in
a `site-packages` directory with its `*.dist-info` beside it (here under tmp_path, put on
sys.path and named by MIGRATION_MODULES). A squash whose replaced migrations are all applied
is information without a file-changing fix there, and `--fix` neither finalises it nor
writes a merge migration into the package; the same files in the project are repaired as
before. Real databases of every backend.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from migration_doctor.classify import foreign_source
from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity

from . import helpers as h
from .test_graph_findings import (
    AFTER_0003,
    CATALOG_ORIGINALS,
    ORIGINALS,
    SAME_CATEGORY_OPTIONS,
    SAME_TAG_NAME,
    SQUASH,
    SQUASH_NAME,
    OnlyAlias,
    catalog_with,
    migration_source,
    one,
)

Install = Callable[[dict[str, str]], Path]


@pytest.fixture
def installed(tmp_path: Path, settings: Any) -> Iterator[Install]:
    """`installed(files)`: catalog's migrations as the installed distribution `mdshop 1.4`.

    Returns the migrations directory inside `<tmp>/venv/lib/python3/site-packages`.
    """
    site = tmp_path / "venv" / "lib" / "python3" / "site-packages"
    top = f"mdshop_{uuid.uuid4().hex[:8]}"
    sys.path.insert(0, str(site))

    def install(files: dict[str, str]) -> Path:
        migrations = site / top / "catalog_migrations"
        migrations.mkdir(parents=True)
        (site / top / "__init__.py").write_text("")
        (migrations / "__init__.py").write_text("")
        for name, source in files.items():
            (migrations / f"{name}.py").write_text(textwrap.dedent(source))
        info = site / "mdshop-1.4.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mdshop\nVersion: 1.4\n")
        (info / "top_level.txt").write_text(f"{top}\n")
        settings.MIGRATION_MODULES = {"catalog": f"{top}.catalog_migrations"}
        importlib.invalidate_caches()
        return migrations

    yield install
    sys.path.remove(str(site))
    for name in [m for m in sys.modules if m.split(".")[0] == top]:
        del sys.modules[name]


@pytest.fixture
def routed(fresh_db: str, settings: Any, tmp_path: Path) -> str:
    """Migrations (and `makemigrations`' history check) go to the test database."""
    settings.DATABASE_ROUTERS = [OnlyAlias(fresh_db)]
    settings.BASE_DIR = tmp_path  # a project whose BASE_DIR holds its venv, as many do
    return fresh_db


def files_of(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.glob("*.py"))}


def test_squash_ready_in_an_installed_package_has_no_file_fix(
    routed: str, installed: Install
) -> None:
    migrations = installed(catalog_with(**{SQUASH_NAME: SQUASH}))
    h.migrate(routed)  # Django applies the squash and records the three it replaces
    before = files_of(migrations)

    report = diagnose(routed)
    finding = one(report, "squash-ready", "catalog", SQUASH_NAME)
    assert finding.severity == Severity.INFO
    assert finding.evidence == {
        "replaced": ORIGINALS,
        "replaced_files_on_disk": ORIGINALS,
        "source": "installed",
        "location": str(migrations.resolve()),
        "package": "mdshop 1.4",
    }
    assert finding.fix.commands == ()  # no `rm .../site-packages/...`
    assert "belong to the installed package mdshop 1.4" in finding.message
    assert [f.kind for f in report.findings] == ["squash-ready"]

    status, out = h.fix(routed, "--only", "squash-ready")
    assert status == 0, out
    assert "): 0 steps" in out, out
    assert (
        f"  - [squash-ready] catalog.{SQUASH_NAME}: its migrations belong to the installed "
        f"package mdshop 1.4 ({migrations.resolve()}): source files change only in the "
        "project's own apps" in out
    )
    assert files_of(migrations) == before  # nothing deleted, `replaces` still there
    assert one(diagnose(routed), "squash-ready", "catalog", SQUASH_NAME)


def test_multiple_leaves_in_an_installed_package_writes_no_merge(
    routed: str, installed: Install
) -> None:
    migrations = installed(
        catalog_with(
            **{
                "0004_a": migration_source([AFTER_0003], SAME_CATEGORY_OPTIONS),
                "0004_b": migration_source([AFTER_0003], SAME_TAG_NAME),
            }
        )
    )
    before = files_of(migrations)

    report = diagnose(routed)
    finding = one(report, "multiple-leaves", "catalog", None)
    assert finding.severity == Severity.ERROR  # Django's migrate still fails on it
    assert finding.evidence == {
        "leaves": ["0004_a", "0004_b"],
        "source": "installed",
        "location": str(migrations.resolve()),
        "package": "mdshop 1.4",
    }
    assert not any("makemigrations --merge" in c for c in finding.fix.commands)
    assert "Do not write a merge migration into" in finding.fix.summary

    status, out = h.fix(routed)
    assert "): 0 steps" in out, out
    assert (
        "  - [multiple-leaves] catalog: its migrations belong to the installed package "
        f"mdshop 1.4 ({migrations.resolve()}): source files change only in the project's "
        "own apps" in out
    ), out
    assert status != 0  # the error is still there
    assert files_of(migrations) == before  # no merge migration written into the package


def test_the_same_squash_in_the_project_is_finalised(
    routed: str, migration_package: Callable[[str, dict[str, str]], str]
) -> None:
    """The counterpart: under BASE_DIR the squash-ready fix deletes and edits, as before."""
    module = migration_package("catalog", catalog_with(**{SQUASH_NAME: SQUASH}))
    h.migrate(routed)
    finding = one(diagnose(routed), "squash-ready", "catalog", SQUASH_NAME)
    assert "source" not in finding.evidence
    base = Path(importlib.import_module(module).__path__[0])
    assert finding.fix.commands == tuple(f"rm {base / f'{n}.py'}" for n in CATALOG_ORIGINALS)


def test_which_files_are_the_projects_own(tmp_path: Path, settings: Any, monkeypatch) -> None:
    """The rule, on real directories: a venv inside BASE_DIR is still installed code."""
    project = tmp_path / "project"
    settings.BASE_DIR = project
    settings.MIGRATION_MODULES = {"named": "somewhere.migrations"}
    own = project / "shop" / "migrations" / "0001_initial.py"
    in_venv = project / ".venv" / "lib" / "python3.13" / "site-packages" / "cms" / "migrations"
    debian = tmp_path / "usr" / "lib" / "python3" / "dist-packages" / "cms" / "migrations"
    elsewhere = tmp_path / "checkout" / "app" / "migrations"
    for path in (own.parent, in_venv, debian, elsewhere):
        path.mkdir(parents=True)
    monkeypatch.chdir(project)

    assert foreign_source("shop", str(own)) is None
    assert foreign_source("cms", str(in_venv / "0001_initial.py"), "cms.migrations.0001") == {
        "source": "installed",
        "location": str(in_venv.resolve()),
    }
    assert foreign_source("cms", str(debian / "0001_initial.py"))["source"] == "installed"
    assert foreign_source("app", str(elsewhere / "0001_initial.py")) == {
        "source": "outside the project",
        "location": str(elsewhere.resolve()),
    }
    # MIGRATION_MODULES is how a project takes over an app's migrations: its choice.
    assert foreign_source("named", str(elsewhere / "0001_initial.py")) is None
    assert foreign_source("shop", None) is None


# -- packages that rewrite migrations their users applied long ago ---------------------------

# django-taggit rewrote 0003 from AlterUniqueTogether into a named UniqueConstraint and 0002
# from AlterIndexTogether into a named AddIndex: databases migrated by the old release hold
# the same index under the name Django generated then.
REWRITES = {
    "unique": (
        "        migrations.AlterUniqueTogether(\n"
        "            name='product', unique_together={('name', 'category')},\n"
        "        ),\n",
        "        migrations.AddConstraint(\n"
        "            model_name='product',\n"
        "            constraint=models.UniqueConstraint(\n"
        "                fields=('name', 'category'), name='catalog_product_name_cat_uniq'\n"
        "            ),\n"
        "        ),\n",
        "catalog_product_name_cat_uniq",
    ),
    "index": (
        "        migrations.RunSQL(\n"
        "            'CREATE INDEX catalog_product_price_stock_0a1b2c3d ON catalog_product "
        "(price, stock)',\n"
        "            'DROP INDEX catalog_product_price_stock_0a1b2c3d',\n"
        "        ),\n",
        "        migrations.AddIndex(\n"
        "            model_name='product',\n"
        "            index=models.Index(\n"
        "                fields=['price', 'stock'], name='catalog_prod_price_idx'\n"
        "            ),\n"
        "        ),\n",
        "catalog_prod_price_idx",
    ),
}


@pytest.mark.parametrize("rewrite", sorted(REWRITES))
@pytest.mark.parametrize("old_release_made_it", [True, False])
def test_an_applied_migration_rewritten_by_its_package_is_not_missing(
    fresh_db: str,
    migration_package: Callable[[str, dict[str, str]], str],
    rewrite: str,
    old_release_made_it: bool,
) -> None:
    old, new, name = REWRITES[rewrite]
    before = migration_source([AFTER_0003], old if old_release_made_it else "")
    migration_package("catalog", catalog_with(**{"0004_x": before}))
    h.migrate(fresh_db)  # the old release, applied long ago
    migration_package("catalog", catalog_with(**{"0004_x": migration_source([AFTER_0003], new)}))

    report = diagnose(fresh_db)
    if old_release_made_it:  # the index is there, under the old name
        assert report.find("missing-schema") == [], [f.as_dict() for f in report.errors]
        assert report.errors == []
    else:  # no index on those columns at all: that is missing
        finding = one(report, "missing-schema", "catalog", "0004_x")
        assert finding.evidence["missing"] == [f"constraint {name} on catalog_product"]


def test_taggit_shape_rewritten_index_then_renamed_by_a_pending_migration(
    fresh_db: str, migration_package: Callable[[str, dict[str, str]], str]
) -> None:
    """taggit 4 -> 6 exactly: 0002 rewritten to a named AddIndex, 0006 RenameIndex(old_fields).

    Before `migrate` the index exists under its old name and nothing is an error; `migrate`
    renames it (Django finds it by its columns), and then everything is clean.
    """
    old, new, name = REWRITES["index"]
    migration_package("catalog", catalog_with(**{"0004_x": migration_source([AFTER_0003], old)}))
    h.migrate(fresh_db)
    rename = (
        "        migrations.RenameIndex(\n"
        f"            model_name='product', new_name='{name}', old_fields=('price', 'stock'),\n"
        "        ),\n"
    )
    migration_package(
        "catalog",
        catalog_with(
            **{
                "0004_x": migration_source([AFTER_0003], new),
                "0005_rename": migration_source([("catalog", "0004_x")], rename),
            }
        ),
    )

    report = diagnose(fresh_db)
    assert report.errors == [], [f.as_dict() for f in report.errors]
    assert one(report, "unapplied", "catalog", "0005_rename")
    h.migrate(fresh_db)
    after = diagnose(fresh_db)
    assert after.errors == [], [f.as_dict() for f in after.errors]
    assert after.find("unapplied") == []
