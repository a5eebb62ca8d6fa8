"""`manage.py migration_doctor_migrate`: Django's migrate under the repair lock.

Django's migrate takes no lock of its own; deploy scripts that run it through this command
never race a repair (or another deploy)."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandParser

from migration_doctor.command import DoctorCommand, add_database, add_lock_timeout
from migration_doctor.diagnose import check_app_labels
from migration_doctor.errors import DoctorError
from migration_doctor.repair.lock import repair_lock
from migration_doctor.snapshot import get_connection


class Command(DoctorCommand):
    help = (
        "Run Django's migrate (this app, --database, no input) while holding the repair "
        "lock, so a repair never races a deploy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_label", nargs="?", help="Only migrate this app, as migrate.")
        add_database(parser, "migrate")
        add_lock_timeout(parser)

    def run(self, options: dict[str, Any]) -> int:
        # migrate creates a SQLite file that does not exist yet, as the first migrate does.
        connection = get_connection(options["database"], missing_ok=True)
        label = options["app_label"]
        if isinstance(label, list):  # forwarded from the old `migration_doctor --migrate`
            if len(label) > 1:
                raise DoctorError("--migrate takes at most one app label, as migrate does.")
            label = label[0] if label else None
        if label:
            check_app_labels([label])  # bad input: one line and status 2, before the lock
        with repair_lock(connection, options["lock_timeout"]) as lock:
            self.stdout.write(f"Holding the {lock} while migrate runs.")
            call_command(
                "migrate",
                *([label] if label else []),
                database=connection.alias,
                interactive=False,
                verbosity=options["verbosity"],
                stdout=self.stdout._out,
                stderr=self.stderr._out,
            )
        return 0
