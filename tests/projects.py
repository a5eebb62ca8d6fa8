"""Sources of the throwaway projects the tests (and docs/transcripts.py) build: plain
strings, nothing imported, so the docs script can use them without Django's test setup."""

from __future__ import annotations


def manage_py(settings_module: str) -> str:
    """A project's manage.py, as `startproject` writes it."""
    return f"""\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{settings_module}")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""


# A third-party-like app whose models point at the user model, as packages do.
def initial_migration(model: str) -> str:
    """A 0001_initial creating `model` with an id and a name, as makemigrations writes it."""
    return f"""\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="{model}",
            fields=[
                ("id", models.BigAutoField(
                    auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                )),
                ("name", models.CharField(max_length=50)),
            ],
        ),
    ]
"""


LIBRARY_MODELS = """\
from django.conf import settings
from django.db import models


class Loan(models.Model):
    title = models.CharField(max_length=50)
    borrower = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    watchers = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="watched")
"""
