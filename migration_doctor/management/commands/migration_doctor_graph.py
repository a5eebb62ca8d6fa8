"""`manage.py migration_doctor_graph APP`: the migration graph of one app and what it
depends on, marked with the whole diagnosis' findings, as mermaid or dot."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from migration_doctor.command import DoctorCommand, add_database
from migration_doctor.diagnose import check_app_labels, diagnose
from migration_doctor.render.graph import render_app_graph


class Command(DoctorCommand):
    help = (
        "Print the migration graph of APP and the migrations of other apps it depends on, "
        "marked with the findings."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app", metavar="APP", help="The app label.")
        add_database(parser)
        parser.add_argument("--format", choices=["mermaid", "dot"], default=None)

    def run(self, options: dict[str, Any]) -> int:
        app = options["app"]
        check_app_labels([app])  # an unknown label: one line, before the diagnosis
        report = diagnose(options["database"])
        fmt = options["format"] or "mermaid"
        self.stdout.write(render_app_graph(report, app, fmt), ending="")
        return 0
