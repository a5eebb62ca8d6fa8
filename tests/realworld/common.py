"""Settings shared by the real-world app sets (tests/realworld/settings_*.py).

MIGRATION_DOCTOR_DB selects the backend (sqlite, postgres, mysql) like the testproject's;
MIGRATION_DOCTOR_DB_NAME names the database (the SQLite file path for sqlite);
MIGRATION_DOCTOR_LANGUAGE sets LANGUAGE_CODE (default "en"), so the same migrated database
can be diagnosed under several languages. testproject/ must be on sys.path (for
`testproject.settings.database`). A set module star-imports this one and sets
INSTALLED_APPS with DOCTOR in it: empty for the old releases of the upgrade paths
(MIGRATION_DOCTOR_REALWORLD_OLD=1; their venvs do not have the doctor, and one runs
Django 4.2, which it does not support).
"""

import os
import tempfile
from pathlib import Path

import django
from testproject.settings import database

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "migration-doctor-realworld-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
USE_I18N = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = os.environ.get("MIGRATION_DOCTOR_LANGUAGE", "en")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SITE_ID = 1

BACKEND = os.environ.get("MIGRATION_DOCTOR_DB", "sqlite")

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

DOCTOR = (
    ["migration_doctor"]
    if django.VERSION >= (5, 2) and not os.environ.get("MIGRATION_DOCTOR_REALWORLD_OLD")
    else []
)

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

CONTEXT_PROCESSORS = [
    "django.template.context_processors.request",
    "django.contrib.auth.context_processors.auth",
    "django.contrib.messages.context_processors.messages",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": CONTEXT_PROCESSORS},
    }
]

_TMP = Path(tempfile.gettempdir()) / "migration_doctor_realworld"
STATIC_URL = "/static/"
STATIC_ROOT = str(_TMP / "static")
MEDIA_URL = "/media/"
MEDIA_ROOT = str(_TMP / "media")

DATABASES = {
    "default": database(
        BACKEND,
        os.environ.get(
            "MIGRATION_DOCTOR_DB_NAME",
            str(_TMP / "db.sqlite3") if BACKEND == "sqlite" else "migration_doctor_realworld",
        ),
    )
}
