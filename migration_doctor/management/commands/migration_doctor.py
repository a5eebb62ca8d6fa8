"""`manage.py migration_doctor`: argument parsing and rendering only; logic lives elsewhere."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from migration_doctor.diagnose import diagnose
from migration_doctor.render.json import render_json
from migration_doctor.render.text import render_text
from migration_doctor.snapshot import DoctorError


class Command(BaseCommand):
    help = (
        "Compare django_migrations, the migration files and the live schema; name every "
        "disagreement with its evidence and the exact fix. Reads only; never writes."
    )
    requires_system_checks: list[str] = []  # a broken project is exactly when it is needed
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "app_label", nargs="*", help="Only report findings for these apps (default: all)."
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help='Database alias to diagnose. Defaults to "default".',
        )
        parser.add_argument(
            "--format",
            choices=["text", "json"],
            default="text",
            help="text (for people, default) or json (one object on stdout).",
        )
        parser.add_argument(
            "--fail-on",
            choices=["error", "warning", "never"],
            default="error",
            help="Exit with status 1 when a finding at or above this severity exists "
            "(default: error).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = diagnose(options["database"], options["app_label"])
        except DoctorError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        if options["format"] == "json":
            self.stdout.write(render_json(report), ending="")
        else:
            color: bool | None
            if options.get("force_color"):
                color = True
            elif options.get("no_color") or not self.stdout.isatty():
                color = False
            else:
                color = True
            self.stdout.write(
                render_text(report, verbosity=options["verbosity"], color=color), ending=""
            )
        if report.fails(options["fail_on"]):
            sys.exit(1)
