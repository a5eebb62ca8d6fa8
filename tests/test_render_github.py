"""GitHub Actions annotations: exact workflow commands for real broken states."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import pytest

from migration_doctor.diagnose import diagnose
from migration_doctor.render.github import (
    display_path,
    escape_data,
    escape_property,
    migration_class_line,
    render_github,
    workflow_command,
)

from . import helpers as h

REPO = h.TESTPROJECT.parent
Package = Callable[[str, dict[str, str]], str]


def plain(text: str) -> str:
    """A message GitHub's escaping leaves alone, so the expected line can quote it raw."""
    assert not any(c in text for c in "%\r\n"), text
    return text


# -- escaping -----------------------------------------------------------------------------


def test_escape_data() -> None:
    assert escape_data("100% done\r\nnext: a,b") == "100%25 done%0D%0Anext: a,b"
    assert escape_data("%0A") == "%250A"  # an escape sequence in the text stays literal


def test_escape_property() -> None:
    assert escape_property("C:\\dir,x/a.py") == "C%3A\\dir%2Cx/a.py"
    assert escape_property("50%\n") == "50%25%0A"


def test_workflow_command() -> None:
    line = workflow_command(
        "error",
        {"file": "odd,dir/a:b.py", "line": 3, "title": "migration_doctor.E001 table-exists"},
        "first: line\nsecond, 5%",
    )
    assert line == (
        "::error file=odd%2Cdir/a%3Ab.py,line=3,title=migration_doctor.E001 table-exists"
        "::first: line%0Asecond, 5%25"
    )
    assert workflow_command("notice", {"file": None, "line": None, "title": "t"}, "m") == (
        "::notice title=t::m"
    )
    assert workflow_command("warning", {}, "m") == "::warning::m"


def test_display_path(tmp_path: Path) -> None:
    inside = tmp_path / "app" / "migrations" / "0001_initial.py"
    assert display_path(str(inside), cwd=tmp_path) == "app/migrations/0001_initial.py"
    elsewhere = tmp_path.parent / "other.py"
    assert display_path(str(elsewhere), cwd=tmp_path) == elsewhere.resolve().as_posix()


def test_migration_class_line(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("import x\n\n\n@decorated\nclass Migration:\n    pass\n")
    assert migration_class_line(str(path)) == 5
    path.write_text("class Migration(:\n")  # edited since: parsed again, no line
    assert migration_class_line(str(path)) is None
    assert migration_class_line(str(tmp_path / "missing.py")) is None


# -- real states --------------------------------------------------------------------------


def test_table_exists_stale_record_and_untracked_table(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0002_tags")
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
    h.record(fresh_db, "orders", "0042_deleted")  # a row whose file is gone: no file to point at
    h.sql(fresh_db, f"CREATE TABLE {h.qn(fresh_db, 'legacy_audit')} (id integer PRIMARY KEY)")
    monkeypatch.chdir(REPO)

    report = diagnose(fresh_db)
    e1 = report.find("table-exists", "catalog", "0002_tags")[0].message
    e2 = report.find("table-exists", "catalog", "0003_product_sku_stock")[0].message
    w1 = report.find("stale-record", "orders", "0042_deleted")[0].message
    i1 = report.find("untracked-table")[0].message
    vendor = report.vendor
    assert render_github(report).splitlines() == [
        "::error file=testproject/catalog/migrations/0002_tags.py,line=6,"
        "title=migration_doctor.E001 table-exists"
        f"::{plain(e1)} Fix: python manage.py migrate catalog 0002_tags --fake",
        "::error file=testproject/catalog/migrations/0003_product_sku_stock.py,line=6,"
        "title=migration_doctor.E001 table-exists"
        f"::{plain(e2)} Fix: python manage.py migrate catalog 0003_product_sku_stock --fake",
        "::warning title=migration_doctor.W001 stale-record"
        f"::{plain(w1)} Fix: python manage.py migrate orders --prune",
        f"::notice title=migration_doctor.I003 untracked-table::{plain(i1)}",
        f"migration_doctor: database '{fresh_db}' ({vendor}): 2 errors, 1 warning, 1 info",
    ]


def test_paths_outside_the_working_directory_stay_absolute(
    fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
    monkeypatch.chdir(tmp_path)
    [line, _summary] = render_github(diagnose(fresh_db, ["catalog"])).splitlines()
    path = (h.TESTPROJECT / "catalog" / "migrations" / "0003_product_sku_stock.py").resolve()
    assert line.startswith(f"::error file={escape_property(path.as_posix())},line=6,")


BROKEN_SYNTAX = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_product_sku_stock")]

    operations = [
        migrations.RunSQL("SELECT 1",
    }
"""

NO_MIGRATION_CLASS = """\
from django.db import migrations


class Migrashun(migrations.Migration):
    dependencies = [("catalog", "0003_product_sku_stock")]
"""


def test_migration_load_error_points_at_the_failing_line(
    fresh_db: str, migration_package: Package, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.migrate(fresh_db)
    module = migration_package(
        "catalog",
        {
            **h.app_migration_sources("catalog"),
            "0004_broken": BROKEN_SYNTAX,
            "0004_noclass": NO_MIGRATION_CLASS,
        },
    )
    package = Path(importlib.import_module(module).__path__[0])
    monkeypatch.chdir(package.parent.parent)  # the migration package is under the cwd
    relative = f"{module.replace('.', '/')}"

    report = diagnose(fresh_db)
    broken = report.find("migration-load-error", "catalog", "0004_broken")[0]
    noclass = report.find("migration-load-error", "catalog", "0004_noclass")[0]
    compile_command = f"python -m py_compile {package / '0004_broken.py'}"
    assert broken.fix.commands == (compile_command,)
    assert render_github(report).splitlines() == [
        f"::error file={relative}/0004_broken.py,line=9,"
        "title=migration_doctor.E008 migration-load-error"
        f"::{plain(broken.message)} Fix: {compile_command}",
        # No Migration class, no line: the first line of the file.
        f"::error file={relative}/0004_noclass.py,line=1,"
        f"title=migration_doctor.E008 migration-load-error::{plain(noclass.message)}",
        f"migration_doctor: database '{fresh_db}' ({report.vendor}): 2 errors, 0 warnings, "
        "0 infos",
    ]


def test_healthy_database_is_only_the_summary(fresh_db: str) -> None:
    h.migrate(fresh_db)
    assert render_github(diagnose(fresh_db)) == (
        f"migration_doctor: database '{fresh_db}' ({diagnose(fresh_db).vendor}): 0 errors, "
        "0 warnings, 0 infos\n"
    )
