"""Settings for the bundled project; the backend comes from MIGRATION_DOCTOR_DB.

MIGRATION_DOCTOR_DB: sqlite (default), postgres or mysql.
MIGRATION_DOCTOR_SQLITE: path of the SQLite file (default testproject/demo.sqlite3, the
database `python testproject/demo.py` breaks, so the README's commands after the demo read it).
PGHOST/PGPORT/PGUSER/PGPASSWORD and MYSQL_HOST/MYSQL_PORT/MYSQL_USER/MYSQL_PASSWORD
override the local servers' defaults.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "migration-doctor-testproject-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "migration_doctor",
    "catalog",
    "orders",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "testproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


def database(backend: str, name: str = "migration_doctor") -> dict:
    if backend == "postgres":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "OPTIONS": {"connect_timeout": 5},
        }
    if backend == "mysql":
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": name,
            "USER": os.environ.get("MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("MYSQL_PASSWORD", ""),
            "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MYSQL_PORT", "3306"),
            "OPTIONS": {"charset": "utf8mb4", "connect_timeout": 5},
            "TEST": {"CHARSET": "utf8mb4"},
        }
    if backend == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
        }
    raise ValueError(f"MIGRATION_DOCTOR_DB must be sqlite, postgres or mysql, not {backend!r}")


BACKEND = os.environ.get("MIGRATION_DOCTOR_DB", "sqlite")
DATABASES = {
    "default": database(
        BACKEND,
        os.environ.get("MIGRATION_DOCTOR_SQLITE", str(BASE_DIR / "demo.sqlite3"))
        if BACKEND == "sqlite"
        else os.environ.get("MIGRATION_DOCTOR_DB_NAME", "migration_doctor"),
    )
}
