"""What every migration_doctor management command shares: exit statuses, one-line errors,
questions on the terminal, and ending a process the project's threads would keep alive.

Each command in management/commands/ has one job and a short `run()`; this base turns
its status into the process's exit status (0 clean, 1 findings or a refused repair, 2 the
doctor cannot run) and every DoctorError into one line on stderr with status 2.
"""

from __future__ import annotations

import math
import os
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from .errors import DoctorError
from .render.progress import Shown, watched
from .traps.threads import lingering_threads


def base_dir() -> Path:
    from django.conf import settings

    return Path(getattr(settings, "BASE_DIR", None) or Path.cwd())


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def ask(prompt: str) -> str:
    """A question on the terminal; without one (CI, `</dev/null`) a one-line refusal."""
    if not stdin_is_terminal():
        raise DoctorError(
            "Standard input is not a terminal, so the confirmation cannot be asked: "
            "pass --noinput to go ahead without questions."
        )
    try:
        return input(prompt)
    except EOFError:
        raise DoctorError(
            "Standard input closed before the confirmation was answered: pass --noinput "
            "to go ahead without questions."
        ) from None


def add_database(parser: CommandParser, what: str = "diagnose") -> None:
    parser.add_argument(
        "--database",
        default=DEFAULT_DB_ALIAS,
        help=f'Database alias to {what}. Defaults to "default".',
    )


def add_noinput(parser: CommandParser) -> None:
    parser.add_argument(
        "--noinput",
        "--no-input",
        action="store_false",
        dest="interactive",
        help="Do not ask for confirmation.",
    )


def add_fail_on(parser: CommandParser, help: str) -> None:
    parser.add_argument(
        "--fail-on", choices=["error", "warning", "never"], default="error", help=help
    )


def seconds(text: str) -> float:
    """A duration: a finite number of seconds, not negative (argparse turns the ValueError
    into one usage line)."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


seconds.__name__ = "number of seconds"  # argparse: "invalid number of seconds value: '-5'"


def add_lock_timeout(parser: CommandParser) -> None:
    parser.add_argument(
        "--lock-timeout",
        type=seconds,
        default=0.0,
        metavar="SECONDS",
        help="How long to wait for another repair's lock before giving up (default 0).",
    )


class DoctorCommand(BaseCommand):
    """A migration_doctor command: `run(options)` returns the exit status."""

    requires_system_checks: list[str] = []  # a broken project is exactly when it is needed
    requires_migrations_checks = False

    def run(self, options: dict[str, Any]) -> int:
        raise NotImplementedError

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """Usage errors (conflicting options, a bad choice) are bad input like any other:
        one line and status 2, from the command line and from call_command() alike."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message: str) -> NoReturn:
            if parser.called_from_command_line:
                parser.exit(2, f"CommandError: {message} (see {parser.prog} --help)\n")
            raise CommandError(f"Error: {message}", returncode=2)

        parser.error = error  # type: ignore[method-assign]
        return parser

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            status = self.run(options)
        except (DoctorError, ImproperlyConfigured) as exc:
            # A bad MIGRATION_DOCTOR setting is bad input too: one line, status 2.
            raise CommandError(str(exc), returncode=2) from exc
        if status:
            sys.exit(status)

    def progress(self, enabled: bool, what: str) -> Shown:
        """A progress display on this command's stderr, when someone watches a terminal
        (render/progress.py); `enabled` is False for JSON and for questions asked."""
        stream = getattr(self.stderr, "_out", sys.stderr)  # OutputWrapper adds newlines
        return Shown(enabled and watched(self.stdout, self.stderr, True), what, stream)

    def color(self, options: dict[str, Any]) -> bool:
        if options.get("force_color"):
            return True
        return not (options.get("no_color") or not self.stdout.isatty())

    def run_from_argv(self, argv: list[str]) -> None:
        """With --traceback Django re-raises a CommandError and Python exits 1, the status
        reserved for findings: show the traceback, keep the command's own status. A
        non-daemon thread the project started at import would keep the process alive after
        the report, as it does every manage.py command: end the process instead."""
        try:
            try:
                super().run_from_argv(argv)
                sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
            except CommandError as exc:
                traceback.print_exc()
                sys.exit(exc.returncode)
            except BrokenPipeError:
                # The reader went away (`| head`): stop quietly, as command-line tools do.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                sys.exit(1)
        except SystemExit as exc:
            self.leave(exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1)
            raise
        except BaseException:
            traceback.print_exc()
            self.leave(1)
            raise
        self.leave(0)

    def leave(self, status: int) -> None:
        if not lingering_threads():
            return
        for stream in (self.stdout, self.stderr, sys.stdout, sys.stderr):
            stream.flush()
        os._exit(status)
