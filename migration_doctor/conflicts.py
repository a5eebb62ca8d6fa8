"""Columns an unrecorded migration creates that exist, but with another type or nullability.

Presence alone says "done": a column added by hand (or by another branch's migration) as
`integer NULL` where the migration creates `varchar(20) NOT NULL` is there, yet recording the
migration (`migrate --fake`) leaves the ORM writing strings into an integer column. Only
what can be known is judged, so that a conflict is never a guess:

- non-relational fields of the migration's own AddField/CreateModel (an unbound relation's
  column type depends on its target, which is not known here), no GeneratedField;
- types both of whose spellings `drift.canonical_type` knows;
- columns no later operation of the plan changes again (AlterField, RenameField,
  RemoveField, a RunSQL naming the table, an operation of the app's own): the schema may
  show either state, and then nothing tells which.

`db_type()` is computed lazily, for the present columns of candidates only: a wiped history
of thousands of migrations makes every migration one, and no project state is rendered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from django.db import connection as default_connection
from django.db import models
from django.db.backends.utils import truncate_name
from django.db.migrations import operations as ops
from django.db.migrations.operations.base import Operation
from django.db.models import Field

from .drift import canonical_type
from .expected import MigrationEffect, Obj, column_of
from .keys import Key
from .snapshot import Snapshot

# One conflict, as the evidence shows it: {"column": "t.c", "expected": ..., "actual": ...}
Conflict = dict[str, str]
_FIELD_CHANGES = (ops.AlterField, ops.RenameField, ops.RemoveField, ops.AddField)


def _flat(op: Operation) -> Iterator[Operation]:
    """An operation, or the database and state operations a SeparateDatabaseAndState holds."""
    if isinstance(op, ops.SeparateDatabaseAndState):
        for inner in (*op.database_operations, *op.state_operations):
            yield from _flat(inner)
    else:
        yield op


def _created_fields(app: str, op: Operation) -> Iterator[tuple[str, str, Any, str | None]]:
    """(model, field name, field, table or None for "the operation's own") for each field an
    operation creates a column for in the database."""
    if isinstance(op, ops.SeparateDatabaseAndState):
        for inner in op.database_operations:
            yield from _created_fields(app, inner)
    elif isinstance(op, ops.AddField):
        yield op.model_name_lower, op.name, op.field, None
    elif isinstance(op, ops.CreateModel):
        # Its auto-created M2M tables have an `id` too: only the model's own table counts.
        table = op.options.get("db_table") or truncate_name(
            f"{app}_{op.name_lower}", default_connection.ops.max_name_length()
        )
        for name, fld in op.fields:
            yield op.name_lower, name, fld, table


def _column(name: str, fld: Any) -> str | None:
    """column_of() without its copy for a plain field: `db_column`, else its name."""
    kind = type(fld)
    if (
        kind.get_attname is Field.get_attname
        and kind.get_attname_column is Field.get_attname_column
    ):
        return fld.db_column or name
    return column_of(name, fld)


def spelled(obj: Conflict) -> str:
    """`shop_item.code is integer NULL, not varchar(20) NOT NULL`."""
    return f"{obj['column']} is {obj['actual']}, not {obj['expected']}"


def conflict_words(conflicts: Sequence[Conflict]) -> str:
    return "; ".join(spelled(c) for c in conflicts)


class TypeConflicts:
    """Per unrecorded migration, its present columns whose type or NULL differs."""

    def __init__(
        self,
        snapshot: Snapshot,
        position: Mapping[Key, int],
        removed_at: Mapping[Obj, list[int]],
    ):
        self.s = snapshot
        self.vendor = snapshot.vendor
        self.connection = snapshot.connection
        self.position = position
        self.removed_at = removed_at
        self._found: dict[Key, list[Conflict]] = {}
        # Built on the first difference only (see _later).
        self._changes: dict[tuple[str, str, str], list[tuple[int, int]]] | None = None
        self._sql: list[tuple[int, int, str, str]] = []  # (migration, op, app, sql lowered)
        self._custom: dict[str, list[tuple[int, int]]] = defaultdict(list)

    def of(self, key: Key, effect: MigrationEffect, present: Iterable[Obj]) -> list[Conflict]:
        """The conflicts among `present` (objects of `effect` the live schema has; read
        once per migration, so a generator spares the callers the look-ups)."""
        found = self._found.get(key)
        if found is not None:
            return found
        found = self._found[key] = []
        columns = {o for o in present if o[0] == "column"}
        if not columns:
            return found
        migration = self.s.graph.graph.nodes[key]
        operations = getattr(migration, "operations", [])
        for op_effect in effect.operations:
            made = [o for o in op_effect.creates if o in columns]
            if not made or op_effect.index >= len(operations):
                continue
            for model, name, fld, table in _created_fields(key[0], operations[op_effect.index]):
                if fld.is_relation or isinstance(fld, models.GeneratedField):
                    continue  # an unbound relation's type depends on its target
                column = _column(name, fld)
                obj = next((o for o in made if o[2] == column and table in (None, o[1])), None)
                if obj is None:
                    continue
                conflict = self._conflict(key, op_effect.index, model, name, fld, obj)
                if conflict is not None:
                    found.append(conflict)
        return found

    def _spelling(self, fld: Any) -> tuple[str, str, bool] | None:
        """(db_type as Django spells it, its canonical form, NULL) or None: not judged."""
        if fld.is_relation or isinstance(fld, models.GeneratedField):
            return None
        try:
            wanted = fld.db_type(self.connection)
        except Exception:
            return None
        canonical = canonical_type(self.vendor, wanted) if wanted else None
        if canonical is None:
            return None
        return wanted, canonical, bool(fld.null) and not fld.primary_key

    def _conflict(
        self, key: Key, index: int, model: str, name: str, fld: Any, obj: Obj
    ) -> Conflict | None:
        table = self.s.schema.table(obj[1])
        live = self.s.schema.column(obj[1], obj[2])
        if table is None or table.kind != "table" or live is None:
            return None  # a view reports every column nullable: nothing declared to compare
        wanted = self._spelling(fld)
        actual = canonical_type(self.vendor, live.type)
        if wanted is None or actual is None:
            return None
        if (wanted[1], wanted[2]) == (actual, live.null):
            return None
        if self._changed_later(key, index, model, name, fld, obj):
            return None

        def null(flag: bool) -> str:
            return "NULL" if flag else "NOT NULL"

        return {
            "column": f"{obj[1]}.{obj[2]}",
            "expected": f"{wanted[0]} {null(wanted[2])}",
            "actual": f"{live.type} {null(live.null)}",
        }

    def _changed_later(
        self, key: Key, index: int, model: str, name: str, fld: Any, obj: Obj
    ) -> bool:
        """Whether anything after this operation may have changed the column again."""
        here = self.position.get(key, -1)
        if any(i > here for i in self.removed_at.get(obj, ())):
            return True  # renamed or removed (and maybe added again) later
        final = self.s.expected.state.models.get((key[0], model))
        field = final.fields.get(name) if final is not None else None
        if field is None or column_of(name, field) != obj[2]:
            return True  # the model was renamed or moved, or the field renamed
        mine, theirs = self._spelling(fld), self._spelling(field)
        if theirs is None or mine is None or (mine[1], mine[2]) != (theirs[1], theirs[2]):
            return True  # the plan ends with another type: the schema may show either
        return self._later(key[0], model, name, obj[1], (here, index))

    def _later(self, app: str, model: str, name: str, table: str, at: tuple[int, int]) -> bool:
        """A later operation on the field, a RunSQL naming the table, or a custom operation
        of the app (A -> B -> A type changes; SQL the state does not see)."""
        if self._changes is None:
            self._index()
        assert self._changes is not None
        if any(p > at for p in self._changes.get((app, model, name.lower()), ())):
            return True
        if any(p > at for p in self._custom.get(app, ())):
            return True
        wanted = table.lower()
        return any((i, j) > at and wanted in sql for i, j, _, sql in self._sql)

    def _index(self) -> None:
        """Every field change, RunSQL and custom operation along the plan, once."""
        changes: dict[tuple[str, str, str], list[tuple[int, int]]] = defaultdict(list)
        for i, key in enumerate(self.s.expected.plan):
            migration = self.s.graph.graph.nodes[key]
            for j, top in enumerate(getattr(migration, "operations", [])):
                for op in _flat(top):
                    if isinstance(op, _FIELD_CHANGES):
                        names = [op.name_lower]
                        if isinstance(op, ops.RenameField):
                            names = [op.old_name_lower, op.new_name_lower]
                        for n in names:
                            changes[(key[0], op.model_name_lower, n)].append((i, j))
                    elif isinstance(op, ops.RunSQL):
                        sql = op.sql if isinstance(op.sql, str) else " ".join(map(str, op.sql))
                        self._sql.append((i, j, key[0], sql.lower()))
                    elif not type(op).__module__.startswith("django."):
                        self._custom[key[0]].append((i, j))
        self._changes = changes
