"""Models vs migration state: what `makemigrations --check` would complain about."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.questioner import MigrationQuestioner
from django.db.migrations.state import ProjectState

from .findings import Finding, Fix
from .snapshot import Snapshot


class RecordingQuestioner(MigrationQuestioner):
    """Answers like a non-interactive run, but notes where makemigrations would stop to ask."""

    def __init__(self) -> None:
        super().__init__(defaults={"ask_initial": True})
        self.not_null: list[tuple[str, str]] = []

    def ask_not_null_addition(self, field_name: str, model_name: str) -> Any:
        self.not_null.append((model_name, field_name))
        return None

    def ask_not_null_alteration(self, field_name: str, model_name: str) -> Any:
        self.not_null.append((model_name, field_name))
        return None


def model_changes(snapshot: Snapshot) -> list[Finding]:
    gs = snapshot.graph
    if gs.load_errors or gs.missing_dependencies or gs.cycles:
        return []  # the state is incomplete: every model would look new
    questioner = RecordingQuestioner()
    autodetector = MigrationAutodetector(
        snapshot.expected.state.clone(),
        ProjectState.from_apps(apps),
        questioner,
    )
    changes = autodetector.changes(graph=gs.graph)
    findings = []
    for app, migrations in sorted(changes.items()):
        operations = [op.describe() for m in migrations for op in m.operations]
        not_null = [f"{m}.{f}" for m, f in questioner.not_null if (app, m.lower()) in _models(app)]
        message = (
            f"The models of {app!r} differ from its migrations ({len(operations)} change(s): "
            f"{'; '.join(operations[:3])}{'…' if len(operations) > 3 else ''}). "
            "`makemigrations --check` fails and the next `makemigrations` will write these."
        )
        if not_null:
            message += (
                f" {', '.join(not_null)}: non-nullable without a default, makemigrations will "
                "ask for a one-off default."
            )
        findings.append(
            Finding(
                "model-changes",
                app,
                None,
                message,
                {"operations": operations, "non_nullable_without_default": not_null},
                Fix("Write the migration.", (f"python manage.py makemigrations {app}",)),
            )
        )
    return findings


def _models(app: str) -> set[tuple[str, str]]:
    try:
        config = apps.get_app_config(app)
    except LookupError:
        return set()
    return {(app, m._meta.model_name or "") for m in config.get_models()}
