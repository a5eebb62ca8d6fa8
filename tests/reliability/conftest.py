"""Fixtures of the reliability suite (the database fixtures come from tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .support import Project, db_config


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """Settings modules and manage.py runs for child processes; backups land in tmp_path."""
    return Project(tmp_path / "child", tmp_path / "base")


@pytest.fixture
def child_settings(fresh_db: str, project: Project, settings: Any) -> Any:
    """`child_settings(**overrides)`: a settings module whose `default` database is the test's
    fresh database (connection settings overridable) with the test's MIGRATION_MODULES."""

    def make(**overrides: Any) -> str:
        return project.settings(
            {"default": db_config(fresh_db, **overrides)},
            dict(getattr(settings, "MIGRATION_MODULES", {}) or {}),
        )

    return make
