"""One diagnosis: snapshot, classify, filter. The entry point tests and commands call."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import django
from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, connections

from .baseline import mark_known, read_baseline
from .classify import classify
from .conf import DoctorSettings, doctor_settings
from .datacheck import blocked_pending, forbidden_by_data
from .drift import schema_drift
from .errors import DoctorError
from .findings import Finding, Severity
from .leftovers import untracked_columns, untracked_indexes, untracked_uniques
from .modelcheck import model_changes
from .position import AppPosition, schema_positions
from .snapshot import Snapshot, missing_file_findings, take_snapshot
from .usermodel import user_model_switched

if TYPE_CHECKING:
    from .traps.child import ImportWatch

# Databases diagnosed at once by --all-databases (one connection each).
MAX_WORKERS = 8
SEVERITY_ORDER = {"error": Severity.ERROR, "warning": Severity.WARNING, "info": Severity.INFO}
# Before a deploy these fail too: a recorded migration whose file the release removed,
# models the release changed without a migration, and a pending migration the data forbids.
DEPLOY_BLOCKERS = {"stale-record", "model-changes", "blocked-by-data"}


@dataclass
class Report:
    database: str
    vendor: str
    findings: list[Finding]
    queries: int
    snapshot: Snapshot | None = field(default=None, repr=False)
    # What `migrate` would apply, in order ("app.name").
    pending: list[str] = field(default_factory=list)
    deploy: bool = False
    # Apps whose live schema stands elsewhere than their rows say (position.py).
    positions: list[AppPosition] = field(default_factory=list)
    # The PostgreSQL schema diagnosed, in a schema-per-tenant fleet (tenants.py).
    schema: str | None = None

    def of_severity(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    @property
    def errors(self) -> list[Finding]:
        return self.of_severity(Severity.ERROR)

    @property
    def warnings(self) -> list[Finding]:
        return self.of_severity(Severity.WARNING)

    @property
    def infos(self) -> list[Finding]:
        return self.of_severity(Severity.INFO)

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}

    def find(
        self, kind: str, app: str | None = None, migration: str | None = None
    ) -> list[Finding]:
        return [
            f
            for f in self.findings
            if f.kind == kind
            and (app is None or f.app == app)
            and (migration is None or f.migration == migration)
        ]

    def fails(self, fail_on: str = "error") -> bool:
        if fail_on == "never":
            return False
        threshold = SEVERITY_ORDER[fail_on]
        return any(
            not f.known
            and (f.severity >= threshold or (self.deploy and f.kind in DEPLOY_BLOCKERS))
            for f in self.findings
        )

    def as_dict(self) -> dict[str, object]:
        extra: dict[str, object] = {"pending": self.pending} if self.deploy else {}
        return {
            "version": 1,
            "database": self.database,
            **({"schema": self.schema} if self.schema is not None else {}),
            "vendor": self.vendor,
            "django": django.get_version(),
            "summary": {
                "errors": len(self.errors),
                "warnings": len(self.warnings),
                "infos": len(self.infos),
            },
            "findings": [f.as_dict() for f in self.findings],
            "positions": [p.as_dict() for p in self.positions],
            **extra,
        }


def check_app_labels(app_labels: Iterable[str]) -> list[str]:
    labels = list(app_labels)
    for label in labels:
        try:
            apps.get_app_config(label)
        except LookupError:
            raise DoctorError(f"No installed app with label {label!r}.") from None
    return labels


def migrated_aliases() -> list[str]:
    """Aliases that routers allow migrations on, for at least one installed app."""
    from django.db import connections, router

    return [
        alias
        for alias in connections
        if any(router.allow_migrate(alias, c.label) for c in apps.get_app_configs())
    ]


def diagnose_each(
    aliases: list[str], one: Callable[[str], Report], workers: int = MAX_WORKERS
) -> list[tuple[str, Report | DoctorError]]:
    """Every alias diagnosed at the same time, each on its own connection (Django's are per
    thread), in the order given: twenty remote databases cost the slowest chain of round
    trips, not the sum of them. An SQLite database in memory exists only on the connection
    that made it: those, and a single alias, are diagnosed in this thread."""

    def run(alias: str) -> Report | DoctorError:
        try:
            return one(alias)
        except DoctorError as exc:
            return exc

    def in_thread(alias: str) -> Report | DoctorError:
        try:
            return run(alias)
        finally:
            connections.close_all()  # this worker's own connections

    def in_memory(alias: str) -> bool:
        connection = connections[alias]
        return connection.vendor == "sqlite" and connection.is_in_memory_db()  # type: ignore[attr-defined]

    here = [a for a in aliases if len(aliases) == 1 or in_memory(a)]
    results: dict[str, Report | DoctorError] = {a: run(a) for a in here}
    elsewhere = [a for a in aliases if a not in results]
    if elsewhere:
        with ThreadPoolExecutor(max_workers=min(workers, len(elsewhere))) as pool:
            results.update(zip(elsewhere, pool.map(in_thread, elsewhere), strict=True))
    return [(alias, results[alias]) for alias in aliases]


def _sort_key(f: Finding) -> tuple[int, str, str, str]:
    return (-int(f.severity), f.app or "", f.migration or "", f.kind)


def _ignored(finding: Finding, conf: DoctorSettings) -> bool:
    if finding.app and finding.app in conf.ignore_apps:
        return True
    table = finding.evidence.get("table")
    return isinstance(table, str) and conf.table_ignored(table)


def _apply_settings(findings: list[Finding], conf: DoctorSettings) -> list[Finding]:
    kept = []
    for finding in findings:
        if _ignored(finding, conf):
            continue
        if finding.kind == "untracked-table":
            tables = [t for t in finding.evidence["tables"] if not conf.table_ignored(t["table"])]
            if not tables:
                continue
            finding.evidence["tables"] = tables
        kept.append(finding)
    return kept


def diagnose(
    database: str = DEFAULT_DB_ALIAS,
    app_labels: Iterable[str] = (),
    *,
    models: bool = True,
    baseline: Path | None = None,
    deploy: bool = False,
    import_watch: ImportWatch | None = None,
) -> Report:
    """Read the three sources of truth for `database` and name every disagreement.

    `baseline` (or MIGRATION_DOCTOR["BASELINE"]) marks findings already known; `deploy`
    makes stale rows and unmigrated model changes fail too, and lists what migrate applies.
    `import_watch`, started by the caller beforehand, adds the import-time traps it found.
    """
    labels = check_app_labels(app_labels)
    try:
        snapshot = take_snapshot(database)
    except BaseException:
        if import_watch is not None:
            import_watch.close()
        raise
    return report_of(
        snapshot, labels, models=models, baseline=baseline, deploy=deploy,
        import_watch=import_watch,
    )  # fmt: skip


def report_of(
    snapshot: Snapshot,
    labels: list[str],
    *,
    models: bool = True,
    changed_apps: Iterable[str] = (),
    baseline: Path | None = None,
    deploy: bool = False,
    import_watch: ImportWatch | None = None,
) -> Report:
    """The Report of one snapshot: diagnose() takes one, a tenant fleet one per schema.
    `changed_apps`: apps whose models are ahead of their migrations, reported elsewhere."""
    conf = doctor_settings()
    database = snapshot.alias
    positions = schema_positions(snapshot)
    findings = classify(snapshot, positions)
    forbidden_by_data(snapshot, findings)
    findings += blocked_pending(snapshot, findings)
    findings += untracked_columns(snapshot)
    findings += untracked_uniques(snapshot)
    findings += untracked_indexes(snapshot)
    changed = model_changes(snapshot) if models else []
    findings += changed
    skip = {f.app for f in changed if f.app} | set(changed_apps)
    findings += schema_drift(snapshot, skip_apps=skip)
    findings = user_model_switched(snapshot, findings)  # in place of what the switch causes
    if import_watch is not None:
        findings += import_watch.result()
    findings = _apply_settings(findings, conf)
    if labels:
        findings = [f for f in findings if f.app in labels]
    findings += missing_file_findings(snapshot)  # whatever the app labels
    baseline = baseline or conf.baseline
    if baseline is not None:
        mark_known(findings, read_baseline(baseline))
    findings.sort(key=_sort_key)
    applied = set(snapshot.graph.loader.applied_migrations)
    pending = [
        f"{a}.{n}"
        for a, n in snapshot.expected.plan
        if (a, n) not in applied and (not labels or a in labels)
    ]
    return Report(
        database=database,
        vendor=snapshot.vendor,
        findings=findings,
        queries=len(snapshot.queries),
        snapshot=snapshot,
        pending=pending,
        deploy=deploy,
        positions=[
            p
            for app, p in sorted(positions.items())
            if not p.agrees and (not labels or app in labels)
        ],
    )
