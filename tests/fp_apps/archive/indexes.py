from __future__ import annotations

from typing import Any

from django.db.models import Index


class PortableBrinIndex(Index):
    """BRIN on PostgreSQL, a plain index on MariaDB, nothing on SQLite (an empty statement)."""

    def create_sql(self, model: Any, schema_editor: Any, using: str = "", **kwargs: Any) -> Any:
        vendor = schema_editor.connection.vendor
        if vendor == "sqlite":
            return ""
        if vendor == "postgresql":
            using = " USING brin"
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def remove_sql(self, model: Any, schema_editor: Any, **kwargs: Any) -> Any:
        if schema_editor.connection.vendor == "sqlite":
            return ""
        return super().remove_sql(model, schema_editor, **kwargs)
