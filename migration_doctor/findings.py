"""Findings: plain data that classification produces and renderers consume."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    INFO = 10
    WARNING = 20
    ERROR = 30

    @property
    def label(self) -> str:
        return self.name.lower()


# How fix commands start: the project's manage.py, run from its directory.
MANAGE = "python manage.py"


@dataclass(frozen=True)
class Kind:
    name: str
    check_id: str
    severity: Severity
    title: str
    # Kinds whose severity depends on the evidence carry one check id per severity.
    other_ids: tuple[tuple[Severity, str], ...] = ()


_KINDS = [
    Kind("table-exists", "migration_doctor.E001", Severity.ERROR, "Schema present, row missing"),
    Kind("partially-applied", "migration_doctor.E002", Severity.ERROR, "Migration half applied"),
    Kind(
        "inconsistent-history",
        "migration_doctor.E003",
        Severity.ERROR,
        "Recorded before its dependency",
    ),
    Kind(
        "missing-schema", "migration_doctor.E004", Severity.ERROR, "Row recorded, schema missing"
    ),
    Kind("multiple-leaves", "migration_doctor.E005", Severity.ERROR, "Conflicting migrations"),
    Kind("squash-partial", "migration_doctor.E006", Severity.ERROR, "Squash partly applied"),
    Kind(
        "missing-dependency",
        "migration_doctor.E007",
        Severity.ERROR,
        "Dependency on a missing migration",
    ),
    Kind(
        "migration-load-error",
        "migration_doctor.E008",
        Severity.ERROR,
        "Migration module does not load",
    ),
    Kind("circular-dependency", "migration_doctor.E009", Severity.ERROR, "Circular dependency"),
    Kind(
        "renamed-migration",
        "migration_doctor.E012",
        Severity.ERROR,
        "Migration file renamed after it was applied",
    ),
    Kind(
        "user-model-switched",
        "migration_doctor.E013",
        Severity.ERROR,
        "Custom user model switched on after the first migrate",
    ),
    Kind(
        "tenant-without-schema",
        "migration_doctor.E014",
        Severity.ERROR,
        "Tenant row without its schema",
    ),
    Kind("stale-record", "migration_doctor.W001", Severity.WARNING, "Row for a missing file"),
    Kind(
        "duplicate-record",
        "migration_doctor.W004",
        Severity.WARNING,
        "The same migration recorded twice",
    ),
    Kind("model-changes", "migration_doctor.W002", Severity.WARNING, "Models ahead of migrations"),
    Kind("schema-drift", "migration_doctor.W003", Severity.WARNING, "Schema differs from models"),
    Kind(
        "untracked-column",
        "migration_doctor.W005",
        Severity.WARNING,
        "Column no migration accounts for",
        ((Severity.INFO, "migration_doctor.I006"),),
    ),
    Kind(
        "untracked-constraint",
        "migration_doctor.W006",
        Severity.WARNING,
        "Unique constraint or index no migration accounts for",
        ((Severity.INFO, "migration_doctor.I007"),),
    ),
    Kind(
        "blocked-by-data",
        "migration_doctor.W007",
        Severity.WARNING,
        "Pending migration the data forbids",
    ),
    Kind(
        "schema-without-tenant",
        "migration_doctor.W008",
        Severity.WARNING,
        "Migrated schema without a tenant row",
    ),
    Kind("squash-ready", "migration_doctor.I001", Severity.INFO, "Squash can be finalised"),
    Kind("unapplied", "migration_doctor.I002", Severity.INFO, "Not applied yet"),
    Kind("untracked-table", "migration_doctor.I003", Severity.INFO, "Table no model accounts for"),
    Kind(
        "migrations-disabled",
        "migration_doctor.I004",
        Severity.INFO,
        "App's migrations are disabled",
    ),
    Kind(
        "database-missing",
        "migration_doctor.I005",
        Severity.INFO,
        "SQLite file does not exist yet",
    ),
    Kind(
        "import-time-query",
        "migration_doctor.E010",
        Severity.ERROR,
        "Query while the project is imported",
        ((Severity.WARNING, "migration_doctor.W010"),),
    ),
    Kind(
        "import-time-thread",
        "migration_doctor.E011",
        Severity.ERROR,
        "Non-daemon thread started at import",
    ),
]

KINDS: dict[str, Kind] = {k.name: k for k in _KINDS}


@dataclass(frozen=True)
class Fix:
    summary: str
    commands: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "commands": list(self.commands)}


@dataclass
class Finding:
    kind: str
    app: str | None
    migration: str | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: Fix = Fix("")
    # Only for kinds with `other_ids`: the severity the evidence calls for.
    level: Severity | None = None
    # In the baseline: reported, but it does not fail the run.
    known: bool = False

    def __post_init__(self) -> None:
        kind = KINDS.get(self.kind)
        if kind is None:
            raise ValueError(f"unknown finding kind {self.kind!r}")
        if self.level not in (None, kind.severity, *dict(kind.other_ids)):
            raise ValueError(f"{self.kind} cannot have severity {self.level}")

    @property
    def id(self) -> str:
        kind = KINDS[self.kind]
        return dict(kind.other_ids).get(self.severity, kind.check_id)

    @property
    def severity(self) -> Severity:
        return self.level or KINDS[self.kind].severity

    @property
    def target(self) -> str:
        """`app.migration`, `app` or '' — how people name the subject."""
        if self.app and self.migration:
            return f"{self.app}.{self.migration}"
        return self.app or ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity.label,
            "app": self.app,
            "migration": self.migration,
            "message": self.message,
            "evidence": self.evidence,
            "fix": self.fix.as_dict(),
            "known": self.known,
        }
