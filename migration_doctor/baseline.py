"""Baselines: adopt the doctor on a legacy database the way type checkers adopt old code.

Findings already in the baseline are reported as known and do not fail the run; anything
new does. A fingerprint names what a finding is about, not its wording, so it survives
message changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .errors import DoctorError
from .findings import Finding


def fingerprint(finding: Finding) -> str:
    subject = finding.evidence.get("table") or finding.evidence.get("index") or ""
    return "|".join([finding.kind, finding.app or "", finding.migration or "", str(subject)])


def write_baseline(path: Path, findings: Iterable[Finding]) -> int:
    """One line (DoctorError) when the file cannot be written: a directory, no permission."""
    prints = sorted({fingerprint(f) for f in findings})
    if path.is_dir():
        raise DoctorError(f"Cannot write the baseline to {path}: it is a directory.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"version": 1, "findings": prints}, indent=2) + "\n")
    except OSError as exc:
        raise DoctorError(f"Cannot write the baseline to {path}: {exc.strerror or exc}.") from None
    return len(prints)


def read_baseline(path: Path) -> set[str]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise DoctorError(f"Baseline file {path} does not exist.") from None
    except (OSError, ValueError) as exc:
        raise DoctorError(f"Baseline file {path} is not valid JSON ({exc}).") from None
    prints = document.get("findings") if isinstance(document, dict) else None
    if not isinstance(prints, list) or not all(isinstance(p, str) for p in prints):
        raise DoctorError(f"{path} is not a migration_doctor baseline.")
    return set(prints)


def mark_known(findings: Iterable[Finding], known: set[str]) -> None:
    for finding in findings:
        finding.known = fingerprint(finding) in known
