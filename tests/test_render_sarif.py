"""`--format sarif`: valid against the official SARIF 2.1.0 schema (OASIS, errata01; a copy
with its license terms is in tests/data/sarif/, nothing is downloaded), one result per
finding at its migration file, every check id a rule with its help."""

from __future__ import annotations

import io
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from migration_doctor.diagnose import diagnose
from migration_doctor.findings import KINDS
from migration_doctor.render.sarif import SCHEMA as SARIF_SCHEMA
from migration_doctor.render.sarif import render_sarif

from . import helpers as h
from .conftest import add_alias, remove_alias, scratch_database
from .reliability.test_escaping import (  # noqa: F401  (fixtures)
    MIGRATION,
    ROW_NAMES,
    hostile,
    package,
    raw_controls,
)

jsonschema = pytest.importorskip("jsonschema", reason="the test extra: pip install -e '.[test]'")

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "sarif" / "sarif-schema-2.1.0.json").read_text()
)
DOCS = Path(__file__).resolve().parent.parent / "docs" / "findings"


def validate(document: dict[str, Any]) -> None:
    validator = jsonschema.Draft4Validator(SCHEMA)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def run(alias: str | None, *args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    kwargs: dict[str, Any] = {"database": alias} if alias else {}
    try:
        call_command("migration_doctor", *args, stdout=out, import_watch=False, **kwargs)
        status = 0
    except SystemExit as exc:
        status = int(exc.code or 0)
    text = out.getvalue()
    assert raw_controls(text) == [] and "##[" not in text
    return status, json.loads(text)


def break_it(alias: str) -> None:
    h.migrate(alias)
    h.unrecord(alias, "orders", "0002_order_note")  # E001 at orders/migrations/0002...
    h.unrecord(alias, "admin", "0002_logentry_remove_auto_add")  # E003 and I002
    h.record(alias, "catalog", "0004_product_barcode")  # W001: no file
    h.sql(alias, f"CREATE TABLE {h.qn(alias, 'legacy_audit_log')} (id integer PRIMARY KEY)")


def test_the_schema_copy_is_the_official_one() -> None:
    """The validation below can fail: the schema is the real one and rejects bad runs."""
    assert SCHEMA["id"] == SARIF_SCHEMA  # what the documents name as their $schema
    assert (Path(__file__).parent / "data" / "sarif" / "LICENSE.md").is_file()
    with pytest.raises(AssertionError):
        validate({"version": "2.1.0", "runs": [{"results": [{"level": "fatal"}]}]})


def test_one_result_per_finding_at_the_migration_file(fresh_db: str, monkeypatch: Any) -> None:
    break_it(fresh_db)
    monkeypatch.chdir(h.TESTPROJECT.parent)  # the checkout, as in CI
    status, document = run(fresh_db, "--format", "sarif")
    assert status == 1
    validate(document)
    assert (document["version"], document["$schema"]) == ("2.1.0", SARIF_SCHEMA)
    [sarif_run] = document["runs"]
    report = diagnose(fresh_db)
    results = sarif_run["results"]
    assert [
        (r["ruleId"], r["properties"]["app"], r["properties"]["migration"]) for r in results
    ] == [(f.id, f.app, f.migration) for f in report.findings]
    rules = sarif_run["tool"]["driver"]["rules"]
    assert len({r["id"] for r in rules}) == len(rules)
    for result in results:
        rule = rules[result["ruleIndex"]]
        assert rule["id"] == result["ruleId"]
        assert (
            result["level"]
            == {"error": "error", "warning": "warning", "info": "note"}[
                next(f for f in report.findings if f.id == result["ruleId"]).severity.label
            ]
        )
    [e001] = [r for r in results if r["ruleId"] == "migration_doctor.E001"]
    physical = e001["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {
        "uri": "testproject/orders/migrations/0002_order_note.py",
        "uriBaseId": "%SRCROOT%",
    }
    source = (h.TESTPROJECT / "orders" / "migrations" / "0002_order_note.py").read_text()
    line = physical["region"]["startLine"]
    assert source.splitlines()[line - 1].startswith("class Migration")
    assert "--fake" in e001["message"]["text"]  # the fix is in the message
    # A row without a file has no file: a logical location names it.
    [stale] = [r for r in results if r["ruleId"] == "migration_doctor.W001"]
    assert stale["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == (
        "catalog.0004_product_barcode"
    )
    assert sarif_run["automationDetails"]["id"] == f"migration_doctor/{fresh_db}/"
    assert len({r["partialFingerprints"]["migrationDoctorFinding/v1"] for r in results}) == len(
        results
    )


def test_every_check_id_is_a_rule_with_its_docs_page() -> None:
    document = json.loads(render_sarif_empty())
    validate(document)
    rules = document["runs"][0]["tool"]["driver"]["rules"]
    ids = {r["id"] for r in rules}
    assert ids == {k.check_id for k in KINDS.values()} | {
        i for k in KINDS.values() for _, i in k.other_ids
    }
    for rule in rules:
        code = rule["id"].rsplit(".", 1)[1]
        assert (DOCS / f"{code}.md").is_file()
        assert "helpUri" not in rule  # no published site to link to
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert f"docs/findings/{code}.md" in rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    levels = {r["id"]: r["defaultConfiguration"]["level"] for r in rules}
    assert (
        levels["migration_doctor.W010"] == "warning" and levels["migration_doctor.I006"] == "note"
    )


def render_sarif_empty() -> str:
    from migration_doctor.diagnose import Report

    return render_sarif(Report(database="default", vendor="sqlite", findings=[], queries=0))


def test_files_outside_the_working_directory(hostile: str, package: Path, settings: Any) -> None:  # noqa: F811
    """Hostile names: valid SARIF, the file as a URI that decodes to exactly its path;
    relative to BASE_DIR when it is under it, else an absolute file: URI."""
    status, document = run(hostile, "--format", "sarif")
    assert status == 1
    validate(document)
    [result] = [r for r in document["runs"][0]["results"] if r["ruleId"].endswith("E001")]
    location = result["locations"][0]["physicalLocation"]["artifactLocation"]
    file = package / f"{MIGRATION}.py"
    assert "uriBaseId" not in location
    assert urllib.parse.unquote(urllib.parse.urlsplit(location["uri"]).path) == str(file.resolve())
    stale = {
        r["properties"]["migration"]
        for r in document["runs"][0]["results"]
        if r["ruleId"].endswith("W001") and r["properties"]["app"] == "catalog"
    }
    assert stale == set(ROW_NAMES)  # exact in the properties
    settings.BASE_DIR = package.parent.parent
    status, document = run(hostile, "--format", "sarif")
    [result] = [r for r in document["runs"][0]["results"] if r["ruleId"].endswith("E001")]
    location = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location["uriBaseId"] == "BASE_DIR"
    assert (
        urllib.parse.unquote(location["uri"])
        == f"{package.parent.name}/{package.name}/{MIGRATION}.py"
    )
    validate(document)


def test_all_databases_is_one_run_per_database(
    fresh_db: str, tmp_path: Path, settings: Any
) -> None:
    break_it(fresh_db)
    cfg = dict(h.connections.settings[fresh_db])
    with scratch_database(tmp_path, "md_sarif2") as second:
        add_alias("sarif_second", {**cfg, "NAME": second})
        try:
            h.migrate("sarif_second")
            status, document = run(None, "--all-databases", "--format", "sarif")
        finally:
            remove_alias("sarif_second")
    validate(document)
    runs = {r["properties"]["database"]: r for r in document["runs"]}
    assert {fresh_db, "sarif_second"} <= set(runs)
    assert status in (1, 2)  # fresh_db has errors; `default` may be unmigrated or missing
    assert any(r["ruleId"].endswith("E001") for r in runs[fresh_db]["results"])
    assert not [r for r in runs["sarif_second"]["results"] if r["level"] == "error"]
    ids = [r["automationDetails"]["id"] for r in document["runs"]]
    assert len(set(ids)) == len(ids)  # one category per database, never merged
