from types import ModuleType

from django.apps import AppConfig
from django.core import checks


class MigrationDoctorConfig(AppConfig):
    name = "migration_doctor"
    verbose_name = "Migration doctor"

    def __init__(self, app_name: str, app_module: ModuleType | None) -> None:
        super().__init__(app_name, app_module)
        # Created while django.setup() imports the app configs, before any models module or
        # ready() runs: in `manage.py migration_doctor` (and only there) start watching the
        # import for queries and threads, so the command needs no second process to do it.
        from .traps import watch_setup

        watch_setup()

    def ready(self) -> None:
        from .checks import check_migration_state

        # Database-tagged: Django runs it only when databases are requested
        # (`manage.py check --database default`), never on a plain `check` or runserver.
        checks.register(check_migration_state, checks.Tags.database)
