"""`manage.py migration_doctor_restore PATH`: put django_migrations back as a backup of
migration_doctor_fix recorded it (and the other rows it changed), under the repair lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from migration_doctor.command import (
    DoctorCommand,
    add_database,
    add_lock_timeout,
    add_noinput,
    ask,
)
from migration_doctor.render.safe import shown
from migration_doctor.repair.backup import (
    foreign,
    other_row_sets,
    read_backup,
    refusal,
    restore,
    write_backup,
)
from migration_doctor.repair.lock import repair_lock
from migration_doctor.snapshot import get_connection


class Command(DoctorCommand):
    help = (
        "Put django_migrations back exactly as a migration_doctor backup file recorded it. "
        "A backup of another database is refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", metavar="PATH", help="The backup file.")
        add_database(parser, "restore into")
        add_noinput(parser)
        add_lock_timeout(parser)
        parser.add_argument(
            "--restore-anywhere",
            action="store_true",
            help="Restore a backup taken from another database (another vendor, SQLite "
            "file, server or database name), or one that does not say which, anyway.",
        )

    def run(self, options: dict[str, Any]) -> int:
        path = Path(options["path"])
        document = read_backup(path)  # refuses a missing, truncated or edited file first
        connection = get_connection(options["database"])
        why = foreign(document, connection)  # another database's backup, before any question
        if why and not options["restore_anywhere"]:
            raise refusal(path, why, connection)
        other = other_row_sets(document)
        if options["interactive"]:
            also = "".join(f" and {len(k)} of {shown(t)}" for t, _, k in other)
            answer = ask(
                f"Replace every row of django_migrations on {connection.alias!r} with the "
                f"{len(document['rows'])} rows of {shown(path)}{also}? [y/N]: "
            )
            if answer.strip().lower()[:1] != "y":
                self.stdout.write("Nothing restored.")
                return 0
        with repair_lock(connection, options["lock_timeout"]):
            safety = write_backup(connection, None, other=other)
            restored = restore(connection, path, anywhere=options["restore_anywhere"])
        self.stdout.write(shown(restored.message(connection.alias, safety)))
        return 0
