"""System checks: the doctor's error-level findings as `manage.py check --database` errors.

Registered with the `database` tag, so Django runs it only when databases are asked for
(`manage.py check --database default`, `check --deploy --database default`) and passes their
aliases. Each error-level finding becomes a `checks.Error` carrying the finding's own id
(`migration_doctor.E001` ...), so SILENCED_SYSTEM_CHECKS silences a kind by id.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from django.apps import AppConfig
from django.core import checks

from .render.safe import shown

# Commands during which the check stays silent. `migrate` runs the database checks itself
# (`self.check(databases=[database])`) before it migrates: an error here would stop it with
# a SystemCheckError in front of the real problem, which `migrate` reports itself (and which
# may be exactly what the user is fixing), and a diagnosis there would double the cost of
# every migrate. The same holds for the other migration commands, for `test` (its runner
# calls `check` with the freshly created test databases) and for the doctor's own command.
SKIPPED_COMMANDS = frozenset(
    {
        "migrate",
        "makemigrations",
        "sqlmigrate",
        "showmigrations",
        "squashmigrations",
        "test",
        "migration_doctor",
    }
)
ERROR_ID_UNREACHABLE = "migration_doctor.E000"


def _command_in_frame(frame: FrameType) -> str | None:
    """The name of the management command whose method runs in `frame`, if any."""
    code = frame.f_code
    if not code.co_argcount or code.co_varnames[0] != "self":
        return None
    from django.core.management.base import BaseCommand

    obj = frame.f_locals.get("self")
    if isinstance(obj, BaseCommand):
        # A command's name is its module's name (django.core.management.commands.migrate,
        # or a project's override such as myapp.management.commands.migrate).
        return type(obj).__module__.rsplit(".", 1)[-1]
    return None


def running_commands(frame: FrameType | None = None) -> list[str]:
    """Management commands on the call stack, innermost first.

    The stack is the robust source: `call_command("migrate")` from a script or another
    command, `manage.py test` calling `check` through its runner, and manage.py itself all
    show up as a BaseCommand instance running one of its methods. `sys.argv` is the fallback
    for a check run outside any command's frame (`django.core.checks.run_checks()` called
    directly from a manage.py process).
    """
    found: list[str] = []
    current: FrameType | None = frame if frame is not None else sys._getframe(1)
    while current is not None:
        name = _command_in_frame(current)
        if name is not None:
            found.append(name)
        current = current.f_back
    if not found:
        argv_command = _argv_command(sys.argv)
        if argv_command:
            found.append(argv_command)
    return found


def _argv_command(argv: Sequence[str]) -> str | None:
    """`migrate` for `manage.py migrate ...`, `django-admin migrate`, `python -m django ...`."""
    if len(argv) < 2:
        return None
    program = Path(argv[0])
    if program.name in {"manage.py", "django-admin", "django-admin.py"} or (
        program.name == "__main__.py" and program.parent.name == "django"
    ):
        return argv[1]
    return None


def should_skip() -> bool:
    return any(name in SKIPPED_COMMANDS for name in running_commands(sys._getframe(1)))


def _hint(summary: str, commands: Iterable[str]) -> str | None:
    lines = [shown(summary)] if summary else []
    lines += [f"  $ {shown(command)}" for command in commands]
    # Django prints the hint after "\n\tHINT: "; continuation lines keep that indentation.
    return "\n\t".join(lines) or None


def check_migration_state(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    """Run the doctor on each requested database; its error-level findings become Errors."""
    if not databases or should_skip():
        return []
    from .diagnose import diagnose
    from .errors import DoctorError

    labels = [config.label for config in app_configs] if app_configs is not None else []
    messages: list[checks.CheckMessage] = []
    for alias in databases:
        # Several databases: say which one each message is about.
        where = f" (database {alias!r})" if len(databases) > 1 else ""
        try:
            report = diagnose(alias, labels)
        except DoctorError as exc:
            messages.append(
                checks.Error(
                    f"migration_doctor cannot diagnose database {alias!r}: {shown(exc)}",
                    hint=f"Make the database reachable, then run "
                    f"`python manage.py migration_doctor --database {alias}`.",
                    obj=f"DATABASES[{alias!r}]",
                    id=ERROR_ID_UNREACHABLE,
                )
            )
            continue
        for finding in report.errors:
            if getattr(finding, "known", False):  # in the baseline: reported, never failing
                continue
            messages.append(
                checks.Error(
                    shown(finding.message) + where,
                    hint=_hint(finding.fix.summary, finding.fix.commands),
                    obj=shown(finding.target) or f"database {alias!r}",
                    id=finding.id,
                )
            )
    return messages
