"""SARIF 2.1.0, what GitHub code scanning and other platforms ingest: one result per finding,
at the migration file it is about, with every check id as a rule.

One run per database (`--all-databases`: one run each, each with its own
`automationDetails.id`, `migration_doctor/<alias>/`, which GitHub takes as the analysis'
category, so the databases are separate analyses and never merged). A database that cannot
be diagnosed is a run with `executionSuccessful: false` and the reason, and no results.
Paths are relative to the working directory (`%SRCROOT%`: the checkout, in CI), else to
BASE_DIR (`BASE_DIR`), else absolute `file:` URIs. Messages are shown() (people read them on
the platform); URIs and properties are exact.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from pathlib import Path
from typing import Any

from .. import __version__
from ..diagnose import Report
from ..findings import KINDS, Finding, Severity
from .github import location
from .safe import json_safe, shown

SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
# Each id has its page in the documentation the source distribution ships (no site is
# published, so no helpUri: a link to nowhere is worse than none).
DOCS_PAGE = "docs/findings/{code}.md"
LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}

# What each kind means, one sentence (the README's table, docs/findings/index.md).
WHAT = {
    "table-exists": "The migration is not recorded in django_migrations, but all of its "
    "effect is already in the database: migrate fails with 'table already exists'.",
    "partially-applied": "The migration is not recorded and part of its effect is in the "
    "database (it failed halfway): migrate fails on the part that exists.",
    "inconsistent-history": "The migration is recorded before one of its dependencies: "
    "Django raises InconsistentMigrationHistory.",
    "missing-schema": "The migration is recorded, but tables, columns or constraints it "
    "created are missing from the database.",
    "multiple-leaves": "The app has two or more leaf migrations: migrate refuses to run "
    "until they are merged.",
    "squash-partial": "A squashed migration is partly recorded and some of the files it "
    "replaces are gone: Django can use neither.",
    "missing-dependency": "The migration depends on a migration that does not exist "
    "(NodeNotFoundError).",
    "migration-load-error": "A migration module does not import: every migrate and "
    "makemigrations stops with the same exception.",
    "circular-dependency": "Migrations depend on each other in a circle "
    "(CircularDependencyError).",
    "import-time-query": "SQL runs while Django imports the project (models, apps, URLconf): "
    "it fails on a fresh database and slows every command.",
    "import-time-thread": "A non-daemon thread starts while the project is imported and keeps "
    "every management command from exiting.",
    "renamed-migration": "A row of django_migrations names a migration file that was renamed "
    "after it ran; the migration under its new name is not recorded.",
    "stale-record": "A django_migrations row names a migration that has no file.",
    "duplicate-record": "The same migration is recorded more than once in django_migrations.",
    "model-changes": "The models are ahead of the migrations: makemigrations --check would "
    "write a migration.",
    "schema-drift": "A column's type, nullability or foreign key differs from what the models "
    "say, or an index is invalid.",
    "untracked-column": "A column in a model's table that no migration accounts for.",
    "blocked-by-data": "A pending migration adds a unique constraint that the rows already "
    "in the database forbid (repeated values, or one default for every row): the next "
    "migrate stops on it.",
    "untracked-constraint": "A unique constraint in a model's table that no migration "
    "accounts for: it rejects inserts the models allow (or, at info level, a plain index: "
    "it slows writes).",
    "user-model-switched": "AUTH_USER_MODEL was switched to a custom model after the first "
    "migrate: Django raises InconsistentMigrationHistory, and the users are in the old table.",
    "squash-ready": "Every migration a squash replaces is recorded: the squash can be finalised.",
    "unapplied": "The migration is not applied yet and nothing of it is in the database.",
    "untracked-table": "A table that no model or migration accounts for.",
    "migrations-disabled": "The app's migrations are disabled (MIGRATION_MODULES None) while "
    "rows of it are recorded.",
    "database-missing": "The SQLite database file does not exist yet: diagnosed as a fresh "
    "database.",
    "tenant-without-schema": "A tenant row names a PostgreSQL schema that does not exist.",
    "schema-without-tenant": "A migrated PostgreSQL schema that no tenant row names.",
}


def rule_ids() -> list[tuple[str, str, Severity]]:
    """(check id, kind, severity) of every id a finding can carry, in KINDS order."""
    return [
        (check_id, kind.name, severity)
        for kind in KINDS.values()
        for severity, check_id in ((kind.severity, kind.check_id), *kind.other_ids)
    ]


def help_page(check_id: str) -> str:
    return DOCS_PAGE.format(code=check_id.rsplit(".", 1)[-1])


def rules() -> list[dict[str, Any]]:
    out = []
    for check_id, kind, severity in rule_ids():
        title = KINDS[kind].title
        what = WHAT[kind]
        page = help_page(check_id)
        out.append(
            {
                "id": check_id,
                "name": kind,
                "shortDescription": {"text": f"{title} ({kind})"},
                "fullDescription": {"text": what},
                "help": {
                    "text": f"{what} What it means, what Django says, how to reproduce and "
                    f"repair it: {page} in migration_doctor's documentation.",
                    "markdown": f"**{title}** (`{kind}`, `{check_id}`)\n\n{what}\n\n"
                    f"What it means, what Django says, how to reproduce and repair it: "
                    f"`{page}` in migration_doctor's documentation.",
                },
                "defaultConfiguration": {"level": LEVEL[severity]},
                "properties": {"tags": ["django", "migrations", kind]},
            }
        )
    return out


def _under(path: Path, base: Path) -> str | None:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return None


def artifact(file: str, cwd: Path, base_dir: Path | None) -> dict[str, str]:
    """The file as an artifactLocation: relative to the working directory, else to
    BASE_DIR, else an absolute file: URI (percent-encoded: names can hold anything)."""
    try:
        resolved = Path(file).resolve()
    except (OSError, ValueError):
        resolved = Path(file)
    for base, base_id in ((cwd, "%SRCROOT%"), (base_dir, "BASE_DIR")):
        if base is None:
            continue
        relative = _under(resolved, base)
        if relative is not None:
            return {"uri": urllib.parse.quote(relative), "uriBaseId": base_id}
    return {"uri": resolved.as_uri() if resolved.is_absolute() else urllib.parse.quote(file)}


def _fingerprint(report: Report, finding: Finding) -> str:
    text = "\0".join([finding.id, report.database, finding.app or "", finding.migration or ""])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def result(
    report: Report, finding: Finding, index: dict[str, int], cwd: Path, base_dir: Path | None
) -> dict[str, Any]:
    message = finding.message
    if finding.fix.summary:
        message += f" Fix: {finding.fix.summary}"
    if finding.fix.commands:
        message += " " + " ; ".join(f"`{c}`" for c in finding.fix.commands)
    entry: dict[str, Any] = {
        "ruleId": finding.id,
        "ruleIndex": index[finding.id],
        "level": LEVEL[finding.severity],
        "message": {"text": shown(message)},
        "partialFingerprints": {"migrationDoctorFinding/v1": _fingerprint(report, finding)},
        "properties": {
            "kind": finding.kind,
            "app": finding.app,
            "migration": finding.migration,
            "database": report.database,
            "evidence": finding.evidence,
            "fix": finding.fix.as_dict(),
        },
    }
    file, line = location(report, finding)
    if file:
        physical: dict[str, Any] = {"artifactLocation": artifact(file, cwd, base_dir)}
        if line:
            physical["region"] = {"startLine": line}
        entry["locations"] = [{"physicalLocation": physical}]
    elif finding.target:
        entry["locations"] = [
            {
                "logicalLocations": [
                    {
                        "fullyQualifiedName": finding.target,
                        "kind": "module" if finding.migration else "package",
                    }
                ]
            }
        ]
    if finding.known:
        entry["suppressions"] = [
            {"kind": "external", "justification": "In the migration_doctor baseline."}
        ]
    return entry


def _base_ids(cwd: Path, base_dir: Path | None) -> dict[str, Any]:
    ids = {"%SRCROOT%": {"uri": cwd.as_uri() + "/"}}
    if base_dir is not None:
        ids["BASE_DIR"] = {"uri": base_dir.as_uri() + "/"}
    return ids


def _driver() -> dict[str, Any]:
    return {
        "name": "migration_doctor",
        "version": __version__,
        "semanticVersion": __version__,
        "rules": rules(),
    }


def run(report: Report, cwd: Path | None = None, base_dir: Path | None = None) -> dict[str, Any]:
    """One SARIF run: the findings of one database."""
    cwd = (cwd or Path.cwd()).resolve()
    base_dir = base_dir.resolve() if base_dir is not None else None
    index = {check_id: i for i, (check_id, _, _) in enumerate(rule_ids())}
    return {
        "tool": {"driver": _driver()},
        "automationDetails": {"id": f"migration_doctor/{report.database}/"},
        "originalUriBaseIds": _base_ids(cwd, base_dir),
        "invocations": [{"executionSuccessful": True}],
        "results": [result(report, f, index, cwd, base_dir) for f in report.findings],
        "properties": {"database": report.database, "vendor": report.vendor},
    }


def failed_run(alias: str, why: str) -> dict[str, Any]:
    """A database that could not be diagnosed: no results, the reason as a notification."""
    return {
        "tool": {"driver": _driver()},
        "automationDetails": {"id": f"migration_doctor/{alias}/"},
        "invocations": [
            {
                "executionSuccessful": False,
                "toolExecutionNotifications": [
                    {"level": "error", "message": {"text": shown(why)}}
                ],
            }
        ],
        "results": [],
        "properties": {"database": alias},
    }


def document(runs: list[dict[str, Any]]) -> str:
    return (
        json_safe(
            json.dumps(
                {"$schema": SCHEMA, "version": "2.1.0", "runs": runs}, indent=2, default=str
            )
        )
        + "\n"
    )


def render_sarif(report: Report, *, cwd: Path | None = None, base_dir: Path | None = None) -> str:
    return document([run(report, cwd, base_dir)])


def render_sarif_targets(
    reports: list[Report],
    errors: dict[str, str],
    *,
    cwd: Path | None = None,
    base_dir: Path | None = None,
) -> str:
    """`--all-databases`: one run per database, the unreachable ones included."""
    runs = [run(r, cwd, base_dir) for r in reports]
    runs += [failed_run(alias, why) for alias, why in errors.items()]
    return document(runs)
