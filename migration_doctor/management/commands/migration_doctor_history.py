"""`manage.py migration_doctor_history`: the repairs migration_doctor_fix applied to this
database, from its ledger table."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from migration_doctor.command import DoctorCommand, add_database
from migration_doctor.ledger import read_ledger
from migration_doctor.render.ledger import render_history, render_history_json
from migration_doctor.snapshot import get_connection


class Command(DoctorCommand):
    help = "List the repairs migration_doctor_fix applied to this database (the ledger)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_database(parser, "read")
        parser.add_argument("--format", choices=["text", "json"], default=None)

    def run(self, options: dict[str, Any]) -> int:
        connection = get_connection(options["database"])
        entries = read_ledger(connection)
        if options["format"] == "json":
            self.stdout.write(render_history_json(entries, connection.alias), ending="")
        else:
            self.stdout.write(render_history(entries, connection.alias), ending="")
        return 0
