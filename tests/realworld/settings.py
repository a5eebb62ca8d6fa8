"""A large real-world app set: Wagtail with its contrib apps, plus django.contrib.*.

Used by tests/test_realworld.py and tests/realworld/run.py to prove that a freshly migrated,
healthy database gets no error or warning from the doctor (see common.py for the
environment variables).
"""

from .common import *  # noqa: F403
from .common import BACKEND, CONTEXT_PROCESSORS, DJANGO_APPS, DOCTOR, MIDDLEWARE

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
    *DJANGO_APPS,
    "django.contrib.sites",
    "django.contrib.redirects",
    "django.contrib.flatpages",
    *DOCTOR,
]
if BACKEND == "postgres":
    # Wagtail's database search backend uses SearchVectorField and GinIndex there.
    INSTALLED_APPS.append("django.contrib.postgres")

MIDDLEWARE = [*MIDDLEWARE, "wagtail.contrib.redirects.middleware.RedirectMiddleware"]
CONTEXT_PROCESSORS.append("wagtail.contrib.settings.context_processors.settings")

ROOT_URLCONF = "tests.realworld.urls"

WAGTAIL_SITE_NAME = "migration_doctor realworld"
WAGTAILADMIN_BASE_URL = "http://example.com"
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
