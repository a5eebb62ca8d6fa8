"""What `django-admin startproject` gives: django.contrib.* only (and the doctor)."""

from .common import *  # noqa: F403
from .common import DJANGO_APPS, DOCTOR

INSTALLED_APPS = [*DJANGO_APPS, *DOCTOR]
ROOT_URLCONF = "tests.realworld.urls_bare"
