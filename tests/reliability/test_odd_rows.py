"""django_migrations rows nobody should have written: empty names, quotes, unicode, spaces,
SQL, duplicates. Each is data: diagnosed as a stale (or duplicate) record under its exact
name, and --fix deletes exactly that row and nothing else.

Duplicates of real rows: tests/test_diagnose.py::test_duplicate_rows_are_reported_and_repaired.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import Severity

from .. import helpers as h
from ..conftest import BACKEND

# Names a hand, a script or a restored dump can leave in django_migrations.
ODD_NAMES = [
    " ",
    "0004_it's",
    '0004_"quoted"',
    "0004_`backtick`",
    "0004 with spaces",
    "0004_café_ünïcode_日本語",
    "0004_emoji_🚀",
    "0004_back\\slash",
    "0004_percent_%s_%(name)s_%%",
    "0004'); DROP TABLE django_migrations; --",
    "0004_tab\tand\nnewline",
    "SELECT",
]
ODD_APPS = ["lé gacy", "it's", "select", " "]  # apps that are not installed
EMPTY = (
    "BUG: build_plan() asserts `app and name` for stale-record and duplicate-record, so a row "
    "with an empty app or name (diagnosed correctly) makes --fix end in an AssertionError "
    "traceback before any write"
)


def all_rows(alias: str) -> Counter[tuple[str, str]]:
    return Counter(
        (a, n)
        for a, n in h.sql(alias, f"SELECT app, name FROM {h.qn(alias, 'django_migrations')}")
    )


def assert_healthy(alias: str) -> None:
    report = diagnose(alias)
    assert [f.as_dict() for f in report.findings if f.severity >= Severity.WARNING] == []


@pytest.fixture
def migrated(fresh_db: str) -> str:
    h.migrate(fresh_db)
    return fresh_db


def test_odd_names_are_stale_records_under_their_exact_names(migrated: str, tmp_path) -> None:
    real = all_rows(migrated)
    odd = {("catalog", name) for name in ODD_NAMES} | {(app, "0001_initial") for app in ODD_APPS}
    for app, name in sorted(odd):
        h.record(migrated, app, name)
    assert all_rows(migrated) == real + Counter(odd)  # the server kept every one as written

    report = diagnose(migrated)
    stale = {(f.app, f.migration) for f in report.find("stale-record")}
    assert stale == odd
    assert report.errors == []
    assert {f.kind for f in report.findings} == {"stale-record"}
    for finding in report.find("stale-record"):
        installed = finding.app == "catalog"
        assert finding.evidence["app_installed"] is installed
        if installed:
            assert finding.fix.commands == ("python manage.py migrate catalog --prune",)

    # The JSON carries them byte for byte.
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command(
            "migration_doctor", "--format", "json", "--fail-on", "warning",
            database=migrated, stdout=out,
        )  # fmt: skip
    document = json.loads(out.getvalue())
    assert {
        (f["app"], f["migration"]) for f in document["findings"] if f["kind"] == "stale-record"
    } == odd

    status, text = h.fix(migrated, "--backup", str(tmp_path / "backup.json"))
    assert status == 0, text
    assert all_rows(migrated) == real  # exactly the odd rows went, every real row stayed
    assert_healthy(migrated)
    h.migrate(migrated)


def test_the_exact_delete_shown_for_an_uninstalled_app_deletes_exactly_that_row(
    migrated: str,
) -> None:
    """For apps that are not installed the fix is SQL to run by hand: it must be right."""
    real = all_rows(migrated)
    odd = [(app, name) for app in ODD_APPS for name in ("0001_initial", "0002_it's ok")]
    for app, name in odd:
        h.record(migrated, app, name)
    findings = {(f.app, f.migration): f for f in diagnose(migrated).find("stale-record")}
    assert set(findings) == set(odd)
    for key in odd:
        [statement] = findings[key].fix.commands
        assert statement.startswith("DELETE FROM ")
        with connections[migrated].cursor() as cursor:
            cursor.execute(statement.rstrip(";"))  # verbatim, as a person would paste it
        assert key not in all_rows(migrated)
    assert all_rows(migrated) == real


@pytest.mark.parametrize(
    "name",
    [
        "0001_back\\slash",
        # Were backslashes not escaped on MySQL, the shown statement would read
        # ... AND `name` = '0001_x\'' OR 1=1 -- ' and delete every row of django_migrations.
        "0001_x\\' OR 1=1 -- ",
    ],
    ids=["backslash", "backslash-quote-injection"],
)
def test_the_exact_delete_handles_backslashes(migrated: str, name: str) -> None:
    real = all_rows(migrated)
    h.record(migrated, "legacy", name)
    [finding] = diagnose(migrated).find("stale-record", "legacy", name)
    [statement] = finding.fix.commands
    try:
        with connections[migrated].cursor() as cursor:
            cursor.execute(statement.rstrip(";"))
    finally:
        remaining = all_rows(migrated)
        h.unrecord(migrated, "legacy")
    assert remaining == real


NEAR_MISS = (
    "BUG: the stale-record repair deletes with WHERE app = %s AND name = %s; MySQL/MariaDB's "
    "default collation ignores case and trailing spaces, so deleting the stale row "
    "'0001_INITIAL' (or '0002_tags ') also deletes the real row '0001_initial' ('0002_tags')"
)


def test_rows_that_differ_from_real_ones_only_by_case_or_spaces(migrated: str, tmp_path) -> None:
    real = all_rows(migrated)
    near = {
        ("catalog", "0001_INITIAL"),
        ("catalog", "0002_tags "),
        ("catalog", " 0003_product_sku_stock"),
    }
    for app, name in sorted(near):
        h.record(migrated, app, name)
    report = diagnose(migrated)
    assert {(f.app, f.migration) for f in report.find("stale-record")} == near
    status, text = h.fix(migrated, "--backup", str(tmp_path / "backup.json"))
    assert all_rows(migrated) == real  # every real row is still there
    assert status == 0, text
    assert_healthy(migrated)


def test_empty_app_or_name(migrated: str, tmp_path) -> None:
    real = all_rows(migrated)
    empty = {("catalog", ""), ("", "0001_initial"), ("", "")}
    for app, name in sorted(empty):
        h.record(migrated, app, name)
    report = diagnose(migrated)
    assert {(f.app, f.migration) for f in report.find("stale-record")} == empty
    [legacy] = report.find("stale-record", "", "0001_initial")
    assert legacy.fix.commands[0].endswith(
        "= '' AND \"name\" = '0001_initial';".replace('"', "`" if BACKEND == "mysql" else '"')
    )
    before = all_rows(migrated)
    try:
        status, text = h.fix(migrated, "--backup", str(tmp_path / "backup.json"))
    finally:
        assert all_rows(migrated) in (before, real)  # failed before any write, or done
    assert status == 0, text
    assert all_rows(migrated) == real
    assert_healthy(migrated)


def test_duplicated_odd_rows(migrated: str, tmp_path) -> None:
    """The same odd row three times: one stale record; --fix removes all three copies."""
    real = all_rows(migrated)
    for _ in range(3):
        h.record(migrated, "catalog", "0004_it's")
        h.record(migrated, "catalog", "0004 ünï code")
    report = diagnose(migrated)
    assert {(f.app, f.migration) for f in report.find("stale-record")} == {
        ("catalog", "0004_it's"),
        ("catalog", "0004 ünï code"),
    }
    status, text = h.fix(migrated, "--backup", str(tmp_path / "backup.json"))
    assert status == 0, text
    assert all_rows(migrated) == real
    assert_healthy(migrated)


def test_text_report_shows_odd_names(migrated: str) -> None:
    for name in (" ", "0004_it's", "0004 with spaces", "0004_café"):
        h.record(migrated, "catalog", name)
    out = io.StringIO()
    call_command("migration_doctor", "--no-color", database=migrated, stdout=out)
    text: Any = out.getvalue()
    assert "W001 stale-record  catalog.0004_it's" in text
    assert "W001 stale-record  catalog.0004 with spaces" in text
    assert "W001 stale-record  catalog.0004_café" in text
    assert text.count("W001 stale-record") == 4
