"""`manage.py migration_doctor_history`: the repairs migration_doctor_fix applied to this
database, from its ledger table."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.db import DEFAULT_DB_ALIAS

from migration_doctor.command import DoctorCommand, add_database
from migration_doctor.errors import DoctorError
from migration_doctor.ledger import read_ledger
from migration_doctor.render.ledger import render_history, render_history_json
from migration_doctor.snapshot import get_connection
from migration_doctor.tenants import check_schema, detect, on_schema


class Command(DoctorCommand):
    help = "List the repairs migration_doctor_fix applied to this database (the ledger)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_database(parser, "read")
        parser.add_argument("--format", choices=["text", "json"], default=None)
        parser.add_argument(
            "--schema",
            metavar="NAME",
            help="The ledger of this schema of a schema-per-tenant setup (django-tenants).",
        )

    def run(self, options: dict[str, Any]) -> int:
        name = options["schema"]
        if name is None:
            connection = get_connection(options["database"])
            entries = read_ledger(connection)
        else:
            setup = detect()
            if options["database"] != DEFAULT_DB_ALIAS:
                raise DoctorError("--schema reads TENANT_DB_ALIAS: --database does not apply.")
            connection = get_connection(setup.alias)
            check_schema(setup, name)
            with on_schema(connection, name):
                entries = read_ledger(connection)
        if options["format"] == "json":
            self.stdout.write(render_history_json(entries, connection.alias, name), ending="")
        else:
            self.stdout.write(render_history(entries, connection.alias, name), ending="")
        return 0
