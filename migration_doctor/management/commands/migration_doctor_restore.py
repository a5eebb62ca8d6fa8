"""`manage.py migration_doctor_restore PATH`: put django_migrations back as a backup of
migration_doctor_fix recorded it (and the other rows it changed), under the repair lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser
from django.db import DEFAULT_DB_ALIAS

from migration_doctor.command import (
    DoctorCommand,
    add_database,
    add_lock_timeout,
    add_noinput,
    ask,
)
from migration_doctor.errors import DoctorError
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
from migration_doctor.tenants import check_schema, detect, on_schema


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
            "--schema",
            metavar="NAME",
            help="Restore into this schema of a schema-per-tenant setup (django-tenants): "
            "the backups of migration_doctor_fix --all-schemas are one per schema.",
        )
        parser.add_argument(
            "--restore-anywhere",
            action="store_true",
            help="Restore a backup taken from another database (another vendor, SQLite "
            "file, server or database name), or one that does not say which, anyway.",
        )

    def run(self, options: dict[str, Any]) -> int:
        path = Path(options["path"])
        document = read_backup(path)  # refuses a missing, truncated or edited file first
        if options["schema"] is None:
            return self.into(path, document, get_connection(options["database"]), None, options)
        setup = detect()
        if options["database"] != DEFAULT_DB_ALIAS:
            raise DoctorError("--schema reads TENANT_DB_ALIAS: --database does not apply.")
        name = options["schema"]
        connection = get_connection(setup.alias)
        check_schema(setup, name)
        with on_schema(connection, name):
            schema = None if name == setup.public else name
            return self.into(path, document, connection, schema, options)

    def into(
        self,
        path: Path,
        document: dict[str, Any],
        connection: Any,
        schema: str | None,
        options: dict[str, Any],
    ) -> int:
        why = foreign(document, connection, schema)  # another database's backup, first
        if why and not options["restore_anywhere"]:
            raise refusal(path, why, connection, schema)
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
        with repair_lock(connection, options["lock_timeout"], schema):
            safety = write_backup(connection, None, other=other, schema=schema)
            restored = restore(
                connection, path, anywhere=options["restore_anywhere"], schema=schema
            )
        self.stdout.write(shown(restored.message(connection.alias, safety, schema)))
        return 0
