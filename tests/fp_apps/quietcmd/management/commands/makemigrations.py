"""makemigrations as some projects ship it: Django's, minus migrations for cosmetic changes.

Django 5.2 added `Command.autodetector`; on older versions the attribute is simply unused.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import makemigrations
from django.db import models
from django.db.migrations.autodetector import MigrationAutodetector

IGNORED = ("verbose_name", "help_text", "validators", "choices")


class QuietAutodetector(MigrationAutodetector):
    def deep_deconstruct(self, obj: Any) -> Any:
        result = super().deep_deconstruct(obj)
        if isinstance(obj, models.Field):
            path, args, kwargs = result
            result = (path, args, {k: v for k, v in kwargs.items() if k not in IGNORED})
        return result


class Command(makemigrations.Command):
    autodetector = QuietAutodetector
