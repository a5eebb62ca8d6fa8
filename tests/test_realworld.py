"""No false positives on real-world projects (the in-suite part of tests/realworld/run.py).

Wagtail, its contrib apps, taggit, modelcluster and django.contrib.* (squashes, RunSQL,
RunPython, M2M, custom tables, a SQLite FTS5 virtual table and its shadow tables, a
PostgreSQL constraint name longer than 63 bytes...); and a bare `startproject` under
several LANGUAGE_CODEs. The larger app sets from PyPI (django-oscar, django CMS, allauth and
friends, django-helpdesk) and the upgrade path need virtualenvs of their own: run.py.

Each test runs `python -m django` in a subprocess with tests/realworld/settings*.py against
a database of its own on the backend MIGRATION_DOCTOR_DB selects, so those apps never meet
the testproject's in-process registry.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import BACKEND, scratch_database
from .realworld.run import doctor_changes, parse_makemigrations

needs_wagtail = pytest.mark.skipif(
    importlib.util.find_spec("wagtail") is None,
    reason="wagtail is not installed: the real-world app set needs it",
)

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 900
VENDOR = {"sqlite": "sqlite", "postgres": "postgresql", "mysql": "mysql"}


class RealWorld:
    """`python -m django ...` with the real-world settings, on one database."""

    def __init__(self, db_name: str, settings: str = "settings") -> None:
        paths = [str(ROOT), str(ROOT / "testproject")]
        inherited = os.environ.get("PYTHONPATH")
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": f"tests.realworld.{settings}",
            "MIGRATION_DOCTOR_DB": BACKEND,
            "MIGRATION_DOCTOR_DB_NAME": db_name,
            "PYTHONPATH": os.pathsep.join([*paths, *([inherited] if inherited else [])]),
        }

    def run(self, *args: str, language: str = "en") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            env={**self.env, "MIGRATION_DOCTOR_LANGUAGE": language},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    def migrate(self) -> None:
        done = self.run("migrate", "--no-input", "-v", "0")
        assert done.returncode == 0, f"migrate failed:\n{done.stdout}\n{done.stderr}"

    def doctor(self, language: str = "en") -> tuple[int, dict[str, Any]]:
        done = self.run(
            "migration_doctor", "--format", "json", "--fail-on", "warning", language=language
        )
        try:
            report = json.loads(done.stdout)
        except ValueError:
            pytest.fail(f"no JSON report (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        assert report["vendor"] == VENDOR[BACKEND]  # the backend under test, not a default
        return done.returncode, report

    def makemigrations_check(self, language: str = "en") -> dict[str, Any]:
        """The project's own `makemigrations --check --dry-run`: operations per app."""
        done = self.run("makemigrations", "--check", "--dry-run", language=language)
        assert done.returncode in (0, 1), done.stderr
        return parse_makemigrations(done.stdout)


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


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[RealWorld]:
    """A `startproject` (django.contrib.* only) on a brand-new database."""
    with scratch_database(tmp_path, "md_rwb") as name:
        yield RealWorld(name, "settings_bare")


@needs_wagtail
def test_freshly_migrated_realworld_database_is_healthy(realworld):
    realworld.migrate()
    code, report = realworld.doctor()
    assert report["summary"]["errors"] == 0, _explain(report)
    assert report["summary"]["warnings"] == 0, _explain(report)
    assert code == 0, _explain(report)
    # No unapplied migration; no untracked table (the FTS5 shadow tables are the virtual
    # table's storage); only the squashes Wagtail ships, which are not the project's to edit.
    assert {f["kind"] for f in report["findings"]} == {"squash-ready"}
    assert doctor_changes(report) == realworld.makemigrations_check() == {}
    for finding in report["findings"]:
        assert finding["fix"]["commands"] == [], finding  # never `rm .../site-packages/...`
        assert finding["evidence"]["source"] == "installed"
        assert finding["evidence"]["package"].startswith("wagtail ")
        assert "site-packages" in finding["evidence"]["location"]

    done = realworld.run("migration_doctor_fix", "--only", "squash-ready", "--dry-run")
    assert ": 0 steps" in done.stdout, done.stdout + done.stderr
    assert done.stdout.count("source files change only in the project's own apps") == len(
        report["findings"]
    )


@needs_wagtail
def test_empty_realworld_database_is_only_unapplied(realworld):
    """Before `migrate`, every migration is simply unapplied: nothing is half done."""
    code, report = realworld.doctor()
    assert report["summary"]["errors"] == 0, _explain(report)
    assert report["summary"]["warnings"] == 0, _explain(report)
    assert code == 0, _explain(report)
    assert {f["kind"] for f in report["findings"]} == {"unapplied"}


def test_bare_project_is_healthy_in_every_language(bare):
    """LANGUAGE_CODE translates verbose names; makemigrations ignores the language."""
    bare.migrate()
    for language in ("en", "de", "fr"):
        code, report = bare.doctor(language)
        assert report["findings"] == [], (language, _explain(report))
        assert code == 0, (language, _explain(report))
        assert doctor_changes(report) == bare.makemigrations_check(language) == {}
