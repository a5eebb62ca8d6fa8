from django.apps import AppConfig


class MigrationDoctorConfig(AppConfig):
    name = "migration_doctor"
    verbose_name = "Migration doctor"
