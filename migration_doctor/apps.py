from django.apps import AppConfig
from django.core import checks


class MigrationDoctorConfig(AppConfig):
    name = "migration_doctor"
    verbose_name = "Migration doctor"

    def ready(self) -> None:
        from .checks import check_migration_state

        # Database-tagged: Django runs it only when databases are requested
        # (`manage.py check --database default`), never on a plain `check` or runserver.
        checks.register(check_migration_state, checks.Tags.database)
