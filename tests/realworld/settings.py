"""A large real-world app set: Wagtail with its contrib apps, plus django.contrib.*.

Used by tests/test_realworld.py to prove that a freshly migrated, healthy database gets
no error or warning from the doctor. The backend comes from MIGRATION_DOCTOR_DB like the
testproject's; MIGRATION_DOCTOR_DB_NAME names the database (the SQLite file path for
sqlite). testproject/ must be on sys.path (for `testproject.settings.database`).
"""

import os
import tempfile
from pathlib import Path

from testproject.settings import database

SECRET_KEY = "migration-doctor-realworld-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
USE_I18N = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SITE_ID = 1

BACKEND = os.environ.get("MIGRATION_DOCTOR_DB", "sqlite")

INSTALLED_APPS = [
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.contrib.settings",
    "wagtail.contrib.search_promotions",
    "wagtail.contrib.table_block",
    "wagtail.contrib.typed_table_block",
    "wagtail.contrib.sitemaps",
    "wagtail.contrib.routable_page",
    "wagtail.contrib.frontend_cache",
    "wagtail.contrib.simple_translation",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.redirects",
    "django.contrib.flatpages",
    "migration_doctor",
]
if BACKEND == "postgres":
    # Wagtail's database search backend uses SearchVectorField and GinIndex there.
    INSTALLED_APPS.append("django.contrib.postgres")

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]

ROOT_URLCONF = "tests.realworld.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wagtail.contrib.settings.context_processors.settings",
            ]
        },
    }
]

_TMP = Path(tempfile.gettempdir()) / "migration_doctor_realworld"
STATIC_URL = "/static/"
STATIC_ROOT = str(_TMP / "static")
MEDIA_URL = "/media/"
MEDIA_ROOT = str(_TMP / "media")

WAGTAIL_SITE_NAME = "migration_doctor realworld"
WAGTAILADMIN_BASE_URL = "http://example.com"
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}

DATABASES = {
    "default": database(
        BACKEND,
        os.environ.get(
            "MIGRATION_DOCTOR_DB_NAME",
            str(_TMP / "db.sqlite3") if BACKEND == "sqlite" else "migration_doctor_realworld",
        ),
    )
}
