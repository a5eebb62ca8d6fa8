"""GitHub Actions annotations: exact workflow commands for real broken states."""

from __future__ import annotations

import dataclasses
import importlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from migration_doctor.diagnose import diagnose
from migration_doctor.render.github import (
    COMMAND,
    annotation,
    display_path,
    escape_data,
    escape_property,
    location,
    migration_class_line,
    render_github,
    workflow_command,
)
from migration_doctor.render.text import summary_line

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


# -- findings without a file ----------------------------------------------------------------


def break_like_the_demo(alias: str) -> None:
    """testproject/demo.py's breaks, on any backend."""
    h.migrate(alias)
    h.unrecord(alias, "orders", "0002_order_note")
    h.unrecord(alias, "orders", "0003_order_default_notes")
    h.unrecord(alias, "catalog", "0003_product_sku_stock")
    h.remove_field(alias, "catalog.Product", "stock")
    h.drop_table(alias, "catalog_product_tags")
    h.unrecord(alias, "admin", "0002_logentry_remove_auto_add")
    h.record(alias, "catalog", "0004_product_barcode")
    h.record(alias, "newsletter", "0001_initial")
    h.sql(alias, f"CREATE TABLE {h.qn(alias, 'legacy_audit_log')} (id integer PRIMARY KEY)")


def github(alias: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command(
            "migration_doctor", "--format", "github", database=alias, stdout=out,
            import_watch=False,
        )  # fmt: skip
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_the_demo_state_is_annotated_rows_of_uninstalled_apps_without_a_file(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`demo.py --format github` ended in LookupError (no installed app 'newsletter'), exit 1
    and nothing on stdout: a CI gate that fails with no annotation."""
    break_like_the_demo(fresh_db)
    monkeypatch.chdir(REPO)
    status, out = github(fresh_db)
    assert status == 1
    report = diagnose(fresh_db)
    lines = out.splitlines()
    assert lines == [annotation(report, f) for f in report.findings] + [summary_line(report)]
    [newsletter] = report.find("stale-record", "newsletter", "0001_initial")
    [delete] = newsletter.fix.commands
    assert (
        "::warning title=migration_doctor.W001 stale-record"
        f"::{plain(newsletter.message)} Fix: {plain(delete)}"
    ) in lines
    [barcode] = report.find("stale-record", "catalog", "0004_product_barcode")
    assert location(report, barcode) == (None, None)  # its file is gone
    assert lines[-1].startswith(f"migration_doctor: database '{fresh_db}' ")
    # A report without its snapshot (built elsewhere) takes the other lookup: no crash either.
    bare = dataclasses.replace(report, snapshot=None)
    assert location(bare, newsletter) == (None, None)
    assert render_github(bare).splitlines()[-1] == lines[-1]


@pytest.mark.parametrize("modules", ["disabled", "missing module"])
def test_apps_whose_migrations_cannot_be_found_are_annotations_without_a_file(
    fresh_db: str, settings: Any, modules: str
) -> None:
    """MIGRATION_MODULES None, or a migrations module that does not exist, with rows
    recorded: no file to point at, and no crash looking for one."""
    h.migrate(fresh_db)
    h.record(fresh_db, "newsletter", "0001_initial")
    package = None if modules == "disabled" else f"mdpkg_gone_{fresh_db}.catalog"
    settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, "catalog": package}
    report = diagnose(fresh_db)
    catalog = [f for f in report.findings if f.app in {"catalog", "newsletter"}]
    assert catalog
    for report_ in (report, dataclasses.replace(report, snapshot=None)):
        for finding in catalog:
            assert location(report_, finding) == (None, None), finding
        lines = render_github(report_).splitlines()
        assert len(lines) == len(report.findings) + 1
        for finding, line in zip(report.findings, lines, strict=False):
            if finding in catalog:
                assert line.startswith(f"::{COMMAND[finding.severity]} title="), line
