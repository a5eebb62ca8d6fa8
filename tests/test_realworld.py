"""No false positives on a large real-world app set: Wagtail, its contrib apps, taggit,
modelcluster and django.contrib.* (squashes, RunSQL, RunPython, M2M, custom tables, a
SQLite FTS5 virtual table, a PostgreSQL constraint name longer than 63 bytes...).

Each test runs `python -m django` in a subprocess with tests/realworld/settings.py against
a database of its own on the backend MIGRATION_DOCTOR_DB selects, so Wagtail's apps never
meet the testproject's in-process registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import BACKEND, scratch_database

pytest.importorskip("wagtail", reason="wagtail is not installed: the real-world app set needs it")

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 900
VENDOR = {"sqlite": "sqlite", "postgres": "postgresql", "mysql": "mysql"}


class RealWorld:
    """`python -m django ...` with the real-world settings, on one database."""

    def __init__(self, db_name: str) -> None:
        paths = [str(ROOT), str(ROOT / "testproject")]
        inherited = os.environ.get("PYTHONPATH")
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.realworld.settings",
            "MIGRATION_DOCTOR_DB": BACKEND,
            "MIGRATION_DOCTOR_DB_NAME": db_name,
            "PYTHONPATH": os.pathsep.join([*paths, *([inherited] if inherited else [])]),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    def migrate(self) -> None:
        done = self.run("migrate", "--no-input", "-v", "0")
        assert done.returncode == 0, f"migrate failed:\n{done.stdout}\n{done.stderr}"

    def doctor(self) -> tuple[int, dict[str, Any]]:
        done = self.run("migration_doctor", "--format", "json", "--fail-on", "warning")
        try:
            report = json.loads(done.stdout)
        except ValueError:
            pytest.fail(f"no JSON report (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        assert report["vendor"] == VENDOR[BACKEND]  # the backend under test, not a default
        return done.returncode, report


def _explain(report: dict[str, Any]) -> str:
    """Every error and warning with its evidence: what a failure must show."""
    lines = [f"summary: {report['summary']}"]
    for f in report["findings"]:
        if f["severity"] != "info":
            lines.append(f"{f['severity']} {f['id']} {f['kind']} {f['app']}.{f['migration']}")
            lines.append(f"    {f['message']}")
            lines.append(f"    evidence: {json.dumps(f['evidence'], default=str)}")
    return "\n".join(lines)


@pytest.fixture
def realworld(tmp_path: Path) -> Iterator[RealWorld]:
    """A brand-new, empty database of the selected backend, dropped afterwards."""
    with scratch_database(tmp_path, "md_rw") as name:
        yield RealWorld(name)


def test_freshly_migrated_realworld_database_is_healthy(realworld):
    realworld.migrate()
    code, report = realworld.doctor()
    assert report["summary"]["errors"] == 0, _explain(report)
    assert report["summary"]["warnings"] == 0, _explain(report)
    assert code == 0, _explain(report)
    assert not any(f["kind"] == "unapplied" for f in report["findings"])
    assert {f["kind"] for f in report["findings"]} <= {"squash-ready", "untracked-table"}


def test_empty_realworld_database_is_only_unapplied(realworld):
    """Before `migrate`, every migration is simply unapplied: nothing is half done."""
    code, report = realworld.doctor()
    assert report["summary"]["errors"] == 0, _explain(report)
    assert report["summary"]["warnings"] == 0, _explain(report)
    assert code == 0, _explain(report)
    assert {f["kind"] for f in report["findings"]} == {"unapplied"}
