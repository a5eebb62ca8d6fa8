"""Ticketing: django-helpdesk with teams (pinax-teams, pinax-invitations, django-user-accounts,
django-reversion) and django-rest-framework."""

from .common import *  # noqa: F403
from .common import CONTEXT_PROCESSORS, DJANGO_APPS, DOCTOR

INSTALLED_APPS = [
    *DJANGO_APPS,
    "django.contrib.sites",
    "django.contrib.humanize",
    "rest_framework",
    "account",
    "pinax.invitations",
    "pinax.teams",
    "reversion",
    "helpdesk",
    *DOCTOR,
]
CONTEXT_PROCESSORS.append("django.template.context_processors.i18n")
LOGIN_URL = "/helpdesk/login/"
ROOT_URLCONF = "tests.realworld.urls_helpdesk"
# pinax-teams, pinax-invitations and django-user-accounts set no default_auto_field: with
# BigAutoField their own makemigrations would write AlterField migrations (and the doctor,
# agreeing, warns). A project using them keeps AutoField.
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
