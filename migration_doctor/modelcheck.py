"""Models vs migration state: what `makemigrations --check` would complain about.

It must agree with the project's own `makemigrations`: the same autodetector (a project may
set its own on an overriding command) and the same language (none: `@no_translations`).
"""

from __future__ import annotations

from importlib import import_module
from shlex import quote
from typing import Any

from django.apps import apps
from django.core.management import get_commands
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.questioner import MigrationQuestioner
from django.db.migrations.state import ModelState, ProjectState
from django.utils import translation

from .findings import MANAGE, Finding, Fix
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


def project_autodetector() -> Any:
    """The autodetector class of the `makemigrations` command this project really runs.

    Django 5.2 added `Command.autodetector`; a project overrides `makemigrations` in one of its
    apps to set its own (one that ignores verbose names or help texts, say). Whatever cannot
    be found or imported leaves Django's: that is what an older Django, or no override, runs.
    """
    app_name: Any = get_commands().get("makemigrations", "django.core")
    if app_name == "django.core":
        return MigrationAutodetector  # Django's own command (importing it costs time)
    try:
        if isinstance(app_name, str):
            command = import_module(f"{app_name}.management.commands.makemigrations").Command
        else:
            command = app_name  # an already loaded command object
        detector = getattr(command, "autodetector", MigrationAutodetector)
    except Exception:
        return MigrationAutodetector
    return detector if callable(detector) else MigrationAutodetector


def model_changes(snapshot: Snapshot) -> list[Finding]:
    # Lazy verbose names compare in the active language; makemigrations has none.
    with translation.override(None):
        return _model_changes(snapshot)


def _model_changes(snapshot: Snapshot) -> list[Finding]:
    gs = snapshot.graph
    if gs.load_errors or gs.missing_dependencies or gs.cycles:
        return []  # the state is incomplete: every model would look new
    current = ProjectState.from_apps(apps)
    detector = project_autodetector()
    if detector is MigrationAutodetector and unchanged(snapshot.expected.state, current):
        # What Django's autodetector would conclude, without its cost. A project's own
        # autodetector may look at anything: it always decides for itself.
        return []
    questioner = RecordingQuestioner()
    autodetector = detector(
        snapshot.expected.state.clone(),
        current,
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
                Fix("Write the migration.", (f"{MANAGE} makemigrations {quote(app)}",)),
            )
        )
    return findings


# Options the autodetector never reads for a model that exists on both sides (Django
# 5.2-6.1): `abstract` (ModelState.from_model keeps an inherited `abstract = False`, migrations
# usually do not), `swappable` (only orders newly created models), `db_tablespace`,
# `required_db_features`, `required_db_vendor` and `auto_created`.
_IGNORED_OPTIONS = frozenset(
    {
        "abstract",
        "swappable",
        "db_tablespace",
        "required_db_features",
        "required_db_vendor",
        "auto_created",
    }
)


def unchanged(old: ProjectState, new: ProjectState) -> bool:
    """True only when `makemigrations` is certain to find nothing between the two states.

    The autodetector compares, for models present on both sides, the fields' deconstruction,
    the options and the managers, and creates or deletes the models present on one side
    only (managed models of unmigrated apps excepted). When all of that is equal it returns
    no change, so the doctor skips it: most of its cost is deep-deconstructing every field
    and index of both states. Anything different, even in a way the autodetector would
    ignore, answers False and the autodetector decides.
    """
    real = old.real_apps

    def relevant(state: ProjectState) -> dict[tuple[str, str], ModelState]:
        return {
            key: ms
            for key, ms in state.models.items()
            if not (key[0] in real and ms.options.get("managed", True))
        }

    before, after = relevant(old), relevant(new)
    if before.keys() != after.keys():
        return False
    for key, a in before.items():
        b = after[key]
        if a.managers != b.managers or _options(a) != _options(b):
            return False
        if a.fields.keys() != b.fields.keys():
            return False
        for name, field in a.fields.items():
            if field.deconstruct()[1:] != b.fields[name].deconstruct()[1:]:
                return False
    return True


def _options(ms: ModelState) -> dict[str, Any]:
    return {k: v for k, v in ms.options.items() if k not in _IGNORED_OPTIONS}


def _models(app: str) -> set[tuple[str, str]]:
    try:
        config = apps.get_app_config(app)
    except LookupError:
        return set()
    return {(app, m._meta.model_name or "") for m in config.get_models()}
