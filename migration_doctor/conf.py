"""The MIGRATION_DOCTOR setting, read once per diagnosis."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KNOWN_KEYS = {"IGNORE_TABLES", "IGNORE_APPS", "BASELINE"}


@dataclass(frozen=True)
class DoctorSettings:
    ignore_tables: tuple[str, ...] = ()  # fnmatch patterns: tables managed outside Django
    ignore_apps: frozenset[str] = field(default_factory=frozenset)
    baseline: Path | None = None

    def table_ignored(self, table: str) -> bool:
        return any(fnmatch.fnmatchcase(table, pattern) for pattern in self.ignore_tables)


def doctor_settings() -> DoctorSettings:
    raw: Any = getattr(settings, "MIGRATION_DOCTOR", {}) or {}
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("MIGRATION_DOCTOR must be a dict.")
    unknown = set(raw) - KNOWN_KEYS
    if unknown:
        raise ImproperlyConfigured(
            f"Unknown MIGRATION_DOCTOR key(s): {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(KNOWN_KEYS))})."
        )
    baseline = raw.get("BASELINE")
    return DoctorSettings(
        ignore_tables=tuple(raw.get("IGNORE_TABLES", ())),
        ignore_apps=frozenset(raw.get("IGNORE_APPS", ())),
        baseline=Path(baseline) if baseline else None,
    )
