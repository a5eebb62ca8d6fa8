"""One diagnosis: snapshot, classify, filter. The entry point tests and commands call."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import django
from django.apps import apps
from django.db import DEFAULT_DB_ALIAS

from .classify import classify
from .drift import schema_drift
from .findings import Finding, Severity
from .modelcheck import model_changes
from .snapshot import DoctorError, Snapshot, take_snapshot

SEVERITY_ORDER = {"error": Severity.ERROR, "warning": Severity.WARNING, "info": Severity.INFO}


@dataclass
class Report:
    database: str
    vendor: str
    findings: list[Finding]
    queries: int
    snapshot: Snapshot | None = field(default=None, repr=False)

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
        return any(f.severity >= threshold for f in self.findings)

    def as_dict(self) -> dict[str, object]:
        return {
            "version": 1,
            "database": self.database,
            "vendor": self.vendor,
            "django": django.get_version(),
            "summary": {
                "errors": len(self.errors),
                "warnings": len(self.warnings),
                "infos": len(self.infos),
            },
            "findings": [f.as_dict() for f in self.findings],
        }


def check_app_labels(app_labels: Iterable[str]) -> list[str]:
    labels = list(app_labels)
    for label in labels:
        try:
            apps.get_app_config(label)
        except LookupError:
            raise DoctorError(f"No installed app with label {label!r}.") from None
    return labels


def _sort_key(f: Finding) -> tuple[int, str, str, str]:
    return (-int(f.severity), f.app or "", f.migration or "", f.kind)


def diagnose(
    database: str = DEFAULT_DB_ALIAS,
    app_labels: Iterable[str] = (),
    *,
    models: bool = True,
) -> Report:
    """Read the three sources of truth for `database` and name every disagreement."""
    labels = check_app_labels(app_labels)
    snapshot = take_snapshot(database)
    findings = classify(snapshot)
    changed = model_changes(snapshot) if models else []
    findings += changed
    findings += schema_drift(snapshot, skip_apps={f.app for f in changed if f.app})
    if labels:
        findings = [f for f in findings if f.app in labels]
    findings.sort(key=_sort_key)
    return Report(
        database=database,
        vendor=snapshot.vendor,
        findings=findings,
        queries=len(snapshot.queries),
        snapshot=snapshot,
    )
