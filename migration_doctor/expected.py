"""What each migration does to the schema, from the migration state.

The state is advanced once along the plan (no re-rendering per migration, no model
rendering at all): for every operation the doctor compares the schema "footprint" of the
models it touches before and after `state_forwards`. A footprint is the set of tables,
columns and named indexes/constraints Django's schema editor would create for a model on
this connection.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection as default_connection
from django.db import router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import strip_quotes, truncate_name
from django.db.migrations import operations as ops
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ModelState, ProjectState

Key = tuple[str, str]
ModelKey = tuple[str, str]
# ("table", table) | ("column", table, column) | ("constraint", table, name)
Obj = tuple[str, ...]

# Operations whose database_forwards does nothing: the state moves, the schema does not.
_STATE_ONLY = (ops.AlterModelOptions, ops.AlterModelManagers)
_OPAQUE = (ops.RunSQL, ops.RunPython)


def describe(obj: Obj) -> str:
    if obj[0] == "table":
        return f"table {obj[1]}"
    if obj[0] == "column":
        return f"column {obj[1]}.{obj[2]}"
    return f"constraint {obj[2]} on {obj[1]}"


@dataclass
class OperationEffect:
    index: int
    description: str
    creates: list[Obj] = field(default_factory=list)
    removes: list[Obj] = field(default_factory=list)
    opaque: bool = False


@dataclass
class MigrationEffect:
    key: Key
    initial: bool
    creates: list[Obj] = field(default_factory=list)
    removes: list[Obj] = field(default_factory=list)
    operations: list[OperationEffect] = field(default_factory=list)
    # Operations whose effect on the database cannot be known (RunSQL, RunPython, custom).
    opaque: list[str] = field(default_factory=list)

    @property
    def checkable(self) -> bool:
        return bool(self.creates or self.removes)


@dataclass
class ExpectedSchema:
    plan: list[Key]
    effects: dict[Key, MigrationEffect]
    state: ProjectState  # after the whole plan
    # table name (as Django spells it) -> model it belongs to in the final state
    tables: dict[str, ModelKey]


class Footprints:
    """Computes footprints for one connection, caching router and feature decisions."""

    def __init__(self, connection: BaseDatabaseWrapper):
        self.connection = connection
        self.features = connection.features
        self.max_name = default_connection.ops.max_name_length()
        self._allowed: dict[ModelKey, bool] = {}

    def migratable(self, app: str, name: str, ms: ModelState) -> bool:
        opts = ms.options
        if opts.get("proxy") or not opts.get("managed", True):
            return False
        swappable = opts.get("swappable")
        if swappable:
            swapped_for = getattr(settings, swappable, None)
            if swapped_for and swapped_for.lower() != f"{app}.{name}":
                return False
        vendor = opts.get("required_db_vendor")
        if vendor and vendor != self.connection.vendor:
            return False
        features = opts.get("required_db_features") or ()
        if not all(getattr(self.features, f, False) for f in features):
            return False
        key = (app, name)
        if key not in self._allowed:
            self._allowed[key] = bool(
                router.allow_migrate(self.connection.alias, app, model_name=name)
            )
        return self._allowed[key]

    def table_name(self, app: str, name: str, ms: ModelState) -> str:
        return ms.options.get("db_table") or truncate_name(f"{app}_{name}", self.max_name)

    def of(self, state: ProjectState, key: ModelKey) -> set[Obj]:
        ms = state.models.get(key)
        if ms is None or not self.migratable(key[0], key[1], ms):
            return set()
        table = self.table_name(key[0], key[1], ms)
        objs: set[Obj] = {("table", table)}
        for name, fld in ms.fields.items():
            if fld.many_to_many:
                objs.update(self._m2m(table, key, name, fld))
                continue
            column = _column(name, fld)
            if column:
                objs.add(("column", table, column))
        if ms.options.get("order_with_respect_to"):
            objs.add(("column", table, "_order"))
        for index in ms.options.get("indexes", ()):
            if self._index_created(index):
                objs.add(("constraint", table, index.name))
        for constraint in ms.options.get("constraints", ()):
            if self._constraint_created(constraint):
                objs.add(("constraint", table, constraint.name))
        return objs

    def _m2m(self, table: str, key: ModelKey, name: str, fld: Any) -> Iterator[Obj]:
        if fld.remote_field.through:  # explicit through: its own CreateModel makes it
            return
        m2m_table = fld.db_table or truncate_name(f"{strip_quotes(table)}_{name}", self.max_name)
        target = fld.remote_field.model
        if isinstance(target, str):
            to = key[1] if target == "self" else target.rsplit(".", 1)[-1].lower()
        else:
            to = target._meta.model_name
        from_ = key[1]
        if to == from_:
            to, from_ = f"to_{to}", f"from_{from_}"
        yield ("table", m2m_table)
        yield ("column", m2m_table, "id")
        yield ("column", m2m_table, f"{from_}_id")
        yield ("column", m2m_table, f"{to}_id")

    def _index_created(self, index: Any) -> bool:
        if not getattr(index, "name", None):
            return False
        if index.contains_expressions and not self.features.supports_expression_indexes:
            return False
        return not (index.condition is not None and not self.features.supports_partial_indexes)

    def _constraint_created(self, constraint: Any) -> bool:
        from django.db.models import CheckConstraint, UniqueConstraint

        if isinstance(constraint, UniqueConstraint):
            f = self.features
            return (
                (not constraint.condition or f.supports_partial_indexes)
                and (not constraint.deferrable or f.supports_deferrable_unique_constraints)
                and (not getattr(constraint, "include", None) or f.supports_covering_indexes)
                and (not constraint.expressions or f.supports_expression_indexes)
                and (
                    getattr(constraint, "nulls_distinct", None) is None
                    or f.supports_nulls_distinct_unique_constraints
                )
            )
        if isinstance(constraint, CheckConstraint):
            return bool(self.features.supports_table_check_constraints)
        return False  # exclusion and third-party constraints: not checked


def describe_operation(op: Operation) -> str:
    """Name RunPython/RunSQL by what they run: "Raw Python operation" tells nobody anything."""
    if isinstance(op, ops.RunPython):
        return f"RunPython({getattr(op.code, '__qualname__', repr(op.code))})"
    if isinstance(op, ops.RunSQL):
        sql = op.sql if isinstance(op.sql, str) else "; ".join(map(str, op.sql))
        sql = " ".join(sql.split())
        return f"RunSQL({sql[:60] + '…' if len(sql) > 60 else sql})"
    return op.describe()


def _column(name: str, fld: Any) -> str | None:
    """The column Django gives this field, without binding the shared state field."""
    probe = copy.copy(fld)
    probe.name = name
    _, column = probe.get_attname_column()
    return column


def _affected(op: Operation, app: str, state: ProjectState) -> set[ModelKey] | None:
    """Models whose footprint `op` may change; None when unknown (whole app is compared)."""
    if isinstance(op, ops.RenameModel):
        old, new = op.old_name_lower, op.new_name_lower
        keys = {(app, old), (app, new)}
        label = f"{app}.{old}"
        for key, ms in state.models.items():
            for fld in ms.fields.values():
                if fld.many_to_many:
                    target = fld.remote_field.model
                    if isinstance(target, str) and target.lower() == label:
                        keys.add(key)
        return keys
    if isinstance(op, ops.fields.FieldOperation):
        return {(app, op.model_name_lower)}
    if isinstance(op, ops.models.IndexOperation):
        return {(app, op.model_name_lower)}
    if isinstance(op, ops.models.ModelOperation):
        return {(app, op.name_lower)}
    return None


def _fp(fp: Footprints, state: ProjectState, keys: Iterable[ModelKey]) -> set[Obj]:
    out: set[Obj] = set()
    for key in keys:
        out |= fp.of(state, key)
    return out


def _ordered(objs: set[Obj]) -> list[Obj]:
    order = {"table": 0, "column": 1, "constraint": 2}
    return sorted(objs, key=lambda o: (o[1], order[o[0]], o[2:]))


def _apply(
    op: Operation, app: str, state: ProjectState, fp: Footprints
) -> tuple[set[Obj], set[Obj], bool]:
    """Advance `state` by `op`; return (created, removed, opaque) for the database."""
    if isinstance(op, ops.SeparateDatabaseAndState):
        db_state = state.clone()
        created: set[Obj] = set()
        removed: set[Obj] = set()
        opaque = False
        for db_op in op.database_operations:
            c, r, o = _apply(db_op, app, db_state, fp)
            created, removed = _compose(created, removed, c, r)
            opaque = opaque or o
        for state_op in op.state_operations:
            state_op.state_forwards(app, state)
        return created, removed, opaque
    keys = _affected(op, app, state)
    if keys is None:
        keys = {k for k in state.models if k[0] == app}
        before = _fp(fp, state, keys)
        op.state_forwards(app, state)
        keys |= {k for k in state.models if k[0] == app}
        after = _fp(fp, state, keys)
        opaque = True
    else:
        before = _fp(fp, state, keys)
        op.state_forwards(app, state)
        after = _fp(fp, state, keys)
        opaque = False
    if isinstance(op, _STATE_ONLY):
        return set(), set(), False
    if isinstance(op, _OPAQUE):
        opaque = True
    return after - before, before - after, opaque


def _compose(
    created: set[Obj], removed: set[Obj], c: set[Obj], r: set[Obj]
) -> tuple[set[Obj], set[Obj]]:
    created, removed = set(created), set(removed)
    for obj in r:
        if obj in created:
            created.discard(obj)
        else:
            removed.add(obj)
    for obj in c:
        if obj in removed:
            removed.discard(obj)
        else:
            created.add(obj)
    return created, removed


def full_plan(graph: MigrationGraph) -> list[Key]:
    """Every node in dependency order, one depth-first pass (Django's order: sorted parents)."""
    order: list[Key] = []
    seen: set[Key] = set()
    for leaf in sorted(graph.leaf_nodes()):
        stack: list[tuple[Key, bool]] = [(leaf, False)]
        while stack:
            key, expanded = stack.pop()
            if expanded:
                order.append(key)
                continue
            if key in seen:
                continue
            seen.add(key)
            stack.append((key, True))
            parents = graph.node_map[key].parents
            for parent in sorted((p.key for p in parents), reverse=True):
                if parent not in seen:
                    stack.append((parent, False))
    return order


def compute(
    graph: MigrationGraph,
    connection: BaseDatabaseWrapper,
    real_apps: Iterable[str] = (),
) -> ExpectedSchema:
    """Walk the whole plan once, recording each migration's schema effect."""
    fp = Footprints(connection)
    state = ProjectState(real_apps=set(real_apps))
    plan = full_plan(graph)
    effects: dict[Key, MigrationEffect] = {}
    for key in plan:
        migration = graph.nodes[key]
        assert migration is not None
        effect = MigrationEffect(key, _is_initial(migration))
        created: set[Obj] = set()
        removed: set[Obj] = set()
        for i, op in enumerate(migration.operations):
            c, r, opaque = _apply(op, key[0], state, fp)
            desc = describe_operation(op)
            effect.operations.append(OperationEffect(i, desc, _ordered(c), _ordered(r), opaque))
            if opaque:
                effect.opaque.append(desc)
            created, removed = _compose(created, removed, c, r)
        effect.creates = _ordered(created)
        effect.removes = _ordered(removed)
        effects[key] = effect
    tables: dict[str, ModelKey] = {}
    for mkey in state.models:
        for obj in fp.of(state, mkey):
            if obj[0] == "table":
                tables[obj[1]] = mkey
    return ExpectedSchema(plan=plan, effects=effects, state=state, tables=tables)


def _is_initial(migration: Any) -> bool:
    """Django's rule for --fake-initial: `initial = True`, or no same-app dependency."""
    if migration.initial is not None:
        return bool(migration.initial)
    return not any(dep[0] == migration.app_label for dep in migration.dependencies)
