"""What each migration does to the schema, from the migration state.

The state is advanced once along the plan (no re-rendering per migration, no model
rendering at all): for every operation the doctor compares the schema "footprint" of the
models it touches before and after `state_forwards`. A footprint is the set of tables,
columns, unique constraints and indexes (named ones by name, generated ones by columns) and
named constraints Django's schema editor would create for a model on this connection.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps.registry import Apps
from django.conf import settings
from django.db import connection as default_connection
from django.db import router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import strip_quotes, truncate_name
from django.db.migrations import operations as ops
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ModelState, ProjectState
from django.db.migrations.utils import resolve_relation
from django.db.models import CASCADE, CheckConstraint, ForeignKey, Index, Model, UniqueConstraint

from .gcpause import no_cycle_collection
from .keys import Key

ModelKey = tuple[str, str]
# ("table", table) | ("column", table, column) | ("constraint", table, name)
# | ("constraint", table, name, *columns in order) (a named index on plain columns)
# | ("unique", table, *sorted columns) | ("index", table, *columns in order)
Obj = tuple[str, ...]

# The create_sql of Django's own index and constraint classes: the feature rules describe them.
_DJANGO_CREATE_SQL = (Index.create_sql, UniqueConstraint.create_sql, CheckConstraint.create_sql)
# Operations whose database_forwards does nothing: the state moves, the schema does not.
_STATE_ONLY = (ops.AlterModelOptions, ops.AlterModelManagers)
_OPAQUE = (ops.RunSQL, ops.RunPython)


def collapse(objs: list[Obj]) -> list[Obj]:
    """A table stands for its own columns and constraints in the same list, a column for
    its own unique constraint and index (`unique=True`, `db_index`: adding the field adds
    them)."""
    tables = {o[1] for o in objs if o[0] == "table"}
    columns = {(o[1], o[2]) for o in objs if o[0] == "column"}
    return [
        o
        for o in objs
        if (o[0] == "table" or o[1] not in tables)
        and not (o[0] in ("unique", "index") and len(o) == 3 and (o[1], o[2]) in columns)
    ]


def describe(obj: Obj) -> str:
    if obj[0] == "table":
        return f"table {obj[1]}"
    if obj[0] == "column":
        return f"column {obj[1]}.{obj[2]}"
    if obj[0] == "unique":
        return f"unique ({', '.join(obj[2:])}) on {obj[1]}"
    if obj[0] == "index":
        return f"index ({', '.join(obj[2:])}) on {obj[1]}"
    return f"constraint {obj[2]} on {obj[1]}"


def unique_obj(table: str, columns: Iterable[str]) -> Obj:
    """A unique constraint Django names by a hash (`unique=True`, `unique_together`): the
    database knows it by its columns, whatever the name. Columns sorted: the order of a
    unique constraint changes nothing it forbids."""
    return ("unique", table, *sorted(columns))


def index_obj(table: str, columns: Iterable[str]) -> Obj:
    """An index Django names by a hash (`db_index`, a ForeignKey's own index,
    `index_together`): known by its columns, whatever the name. Columns in order: an index
    on (a, b) serves other queries than one on (b, a)."""
    return ("index", table, *columns)


def named_index_obj(table: str, name: str, columns: Iterable[str] = ()) -> Obj:
    """A named index (Meta.indexes, AddIndex): known by its name and, when it is on plain
    columns, by those columns in order. An index of that name on other columns is another
    index, and the name it holds makes `migrate`'s CREATE INDEX fail."""
    return ("constraint", table, name, *columns)


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
    # Indexes and unique constraints Django may have made that no effect lists: SQLite's
    # table rebuilds lose them (index_together, an index the table's final owner lacks), but
    # until one runs they are there; a table renamed keeps what the plan lets go with its
    # old name. Nothing checks them; nothing reports them as left over either.
    unlisted: set[Obj] = field(default_factory=set)
    # (table, name) of every named index and constraint of the models along the plan,
    # whether the footprint lists it or not (an exclusion constraint's index, say).
    names: set[tuple[str, str]] = field(default_factory=set)


class Footprints:
    """Computes footprints for one connection, caching router and feature decisions."""

    def __init__(self, connection: BaseDatabaseWrapper):
        self.connection = connection
        self.features = connection.features
        self.max_name = default_connection.ops.max_name_length()
        self._allowed: dict[ModelKey, bool] = {}
        # id(field) -> (field, name, column, indexed). Fields in a migration state are
        # replaced, not edited, when an operation changes them; holding the field keeps its
        # id unique.
        self._columns: dict[int, tuple[Any, str, str | None, bool]] = {}
        self._m2m_indexed: dict[bool, bool] = {}  # db_constraint -> its FKs are indexed
        self._rules: Any = None  # a schema editor asked about fields, never executing
        self._creates: dict[tuple[type, str, str], bool] = {}
        self._editor: Any = None  # collect_sql=True: never entered, never executes
        self.unlisted: set[Obj] = set()  # see ExpectedSchema.unlisted
        self.names: set[tuple[str, str]] = set()  # see ExpectedSchema.names

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
            cached = self._columns.get(id(fld))
            if cached is not None and cached[0] is fld and cached[1] == name:
                column, indexed = cached[2], cached[3]
            else:
                probe = _probe(name, fld)
                column = probe.get_attname_column()[1]
                indexed = bool(column) and self._field_indexed(table, probe)
                self._columns[id(fld)] = (fld, name, column, indexed)
            if column:
                objs.add(("column", table, column))
                if fld.unique and not fld.primary_key:
                    objs.add(unique_obj(table, [column]))
                if indexed:
                    objs.add(index_obj(table, [column]))
        for names in ms.options.get("unique_together") or ():
            columns = [column_of(n, ms.fields[n]) if n in ms.fields else None for n in names]
            if columns and all(columns):
                objs.add(unique_obj(table, [c for c in columns if c]))
        # Gone from Meta since Django 5.1, still in old migrations' state: alter_index_together
        # creates an index for each, but SQLite's table rebuild (any later AlterField) renders
        # the model without it and loses the index: expected only where nothing rebuilds.
        rebuilds = self.connection.vendor == "sqlite"
        for names in ms.options.get("index_together") or ():
            columns = [column_of(n, ms.fields[n]) if n in ms.fields else None for n in names]
            if columns and all(columns):
                obj = index_obj(table, [c for c in columns if c])
                (self.unlisted if rebuilds else objs).add(obj)
        if ms.options.get("order_with_respect_to"):
            objs.add(("column", table, "_order"))
        for index in ms.options.get("indexes", ()):
            if getattr(index, "name", None):
                self.names.add((table, index.name))
            if self._index_created(index) and self._backend_creates(key, ms, table, index):
                objs.add(named_index_obj(table, index.name, _index_columns(ms, index)))
        for constraint in ms.options.get("constraints", ()):
            if getattr(constraint, "name", None):
                self.names.add((table, constraint.name))
            if self._constraint_created(constraint) and self._backend_creates(
                key, ms, table, constraint
            ):
                objs.add(("constraint", table, constraint.name))
        return objs

    def _field_indexed(self, table: str, probe: Any) -> bool:
        """Whether the backend gives this field an index of its own (`db_index`, a
        ForeignKey's): the schema editor's own `_field_should_be_indexed` is asked.

        The MySQL editor asks the table's storage engine there (InnoDB indexes a foreign key
        itself, so Django adds none): a query per table, which the diagnosis never sends.
        It is answered with the server's default engine, the one `migrate` gives a new
        table. A question the editor cannot answer expects nothing (no false alarm).
        """
        if not probe.db_index:
            return False
        if self._rules is None:
            self._rules = self.connection.schema_editor(collect_sql=True)
            self._rules.connection = _Offline(self.connection)
        try:
            return bool(self._rules._field_should_be_indexed(_TableOnly(table), probe))
        except Exception:
            return False

    def _m2m_fk_indexed(self, db_constraint: bool) -> bool:
        """Whether the two ForeignKeys of an auto-created M2M table get their own indexes."""
        answer = self._m2m_indexed.get(db_constraint)
        if answer is None:
            probe = ForeignKey("self", CASCADE, db_constraint=db_constraint)
            probe.name = "m2m"
            answer = self._m2m_indexed[db_constraint] = self._field_indexed("", probe)
        return answer

    def _backend_creates(self, key: ModelKey, ms: ModelState, table: str, obj: Any) -> bool:
        """Whether an index or constraint class with its own `create_sql` makes anything here.

        Django's Index, UniqueConstraint and CheckConstraint follow the feature rules of
        _index_created/_constraint_created. A subclass that writes its own SQL (a BRIN index
        that emits nothing on SQLite, say) is asked: None or an empty statement creates
        nothing, so nothing is expected. The model is rendered on its own for the question,
        and only for such classes; the answer is kept per class, table and name.
        """
        kind = type(obj)
        if kind.create_sql in _DJANGO_CREATE_SQL:
            return True
        cache_key = (kind, table, obj.name)
        answer = self._creates.get(cache_key)
        if answer is None:
            try:
                if self._editor is None:
                    self._editor = self.connection.schema_editor(collect_sql=True)
                statement = obj.create_sql(_render_alone(key[0], ms, table), self._editor)
                answer = statement is not None and bool(str(statement).strip())
            except Exception:
                answer = True  # the question failed, which is no sign that nothing is made
            self._creates[cache_key] = answer
        return answer

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
        yield unique_obj(m2m_table, [f"{from_}_id", f"{to}_id"])  # its unique_together
        if self._m2m_fk_indexed(bool(getattr(fld.remote_field, "db_constraint", True))):
            yield index_obj(m2m_table, [f"{from_}_id"])
            yield index_obj(m2m_table, [f"{to}_id"])

    def _index_created(self, index: Any) -> bool:
        if not getattr(index, "name", None):
            return False
        if index.contains_expressions and not self.features.supports_expression_indexes:
            return False
        return not (index.condition is not None and not self.features.supports_partial_indexes)

    def _constraint_created(self, constraint: Any) -> bool:
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


def _index_columns(ms: ModelState, index: Any) -> list[str]:
    """The columns of a named index of Django's own classes on plain fields, in order
    (a descending `-field` is on the same column); [] where the name alone tells (an
    expression, a third-party class that may write its own SQL)."""
    if not type(index).__module__.startswith("django.") or index.contains_expressions:
        return []
    names = [f.removeprefix("-") for f in index.fields]
    columns = [column_of(n, ms.fields[n]) if n in ms.fields else None for n in names]
    if not columns or not all(columns) or any(ms.fields[n].many_to_many for n in names):
        return []
    return [c for c in columns if c]


class _Offline:
    """The connection as the rule-asking schema editor sees it: everything of the real
    one, except that it never sends a statement (see Footprints._field_indexed)."""

    def __init__(self, connection: BaseDatabaseWrapper):
        self._connection = connection
        self.introspection = _OfflineIntrospection(connection)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def cursor(self) -> None:
        return None


class _OfflineIntrospection:
    def __init__(self, connection: BaseDatabaseWrapper):
        self._connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection.introspection, name)

    def get_storage_engine(self, cursor: Any, table_name: str) -> str:
        """Django's own answer for a table that does not exist yet: the default engine."""
        return str(self._connection.features._mysql_storage_engine)  # type: ignore[attr-defined]


class _TableOnly:
    """A stand-in model for field questions: the editors look at its table name only."""

    def __init__(self, table: str):
        self._meta = type("Meta", (), {"db_table": table})()


def _render_alone(app: str, ms: ModelState, table: str) -> Any:
    """The model class of `ms` in a registry of its own, enough for a `create_sql` call.

    Relations to other models stay unresolved and bases become Model (the state's fields
    already hold inherited ones): building the whole project's registry for one question
    would cost more than the rest of the walk.
    """
    options = {"db_table": table}
    if ms.options.get("db_tablespace"):
        options["db_tablespace"] = ms.options["db_tablespace"]
    alone = ModelState(app, ms.name, list(ms.fields.items()), options, bases=(Model,))
    return alone.render(Apps())


def describe_operation(op: Operation) -> str:
    """Name RunPython/RunSQL by what they run: "Raw Python operation" tells nobody anything."""
    if isinstance(op, ops.RunPython):
        return f"RunPython({getattr(op.code, '__qualname__', repr(op.code))})"
    if isinstance(op, ops.RunSQL):
        sql = op.sql if isinstance(op.sql, str) else "; ".join(map(str, op.sql))
        sql = " ".join(sql.split())
        return f"RunSQL({sql[:60] + '…' if len(sql) > 60 else sql})"
    return op.describe()


def _probe(name: str, fld: Any) -> Any:
    """A copy of the shared state field, named, for questions that must not bind it."""
    probe = copy.copy(fld)
    probe.name = name
    return probe


def column_of(name: str, fld: Any) -> str | None:
    """The column Django gives this field, without binding the shared state field."""
    _, column = _probe(name, fld).get_attname_column()
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


class Referrers:
    """Which models have relation fields pointing at (or through) each model, along the plan.

    Django's ProjectState.alter_field and rename_field look for fields referring to the one
    they change by scanning every field of every model in the state (get_references). With
    hundreds of models and hundreds of such operations that scan was most of the doctor's
    time. Only models with a relation to the changed model can refer to it, so those two
    operations run on a view of the state holding just them: the same ModelState objects,
    so every mutation lands in the real state, and get_references finds exactly what it
    would have found over the whole state.

    The index is refreshed for the models an operation touches, and rebuilt from scratch
    after any operation whose reach is not known (custom operations, RenameModel, RunSQL
    with state operations).
    """

    def __init__(self, state: ProjectState):
        self.state = state
        self._targets: dict[ModelKey, set[ModelKey]] | None = None  # source -> targets
        self._sources: dict[ModelKey, set[ModelKey]] = {}  # target -> sources
        self._anything: set[ModelKey] = set()  # sources with an unresolvable relation

    def invalidate(self) -> None:
        self._targets = None

    def refresh(self, keys: Iterable[ModelKey]) -> None:
        if self._targets is None:
            return  # rebuilt from scratch when next needed
        for key in list(keys):
            for target in self._targets.pop(key, ()):
                self._sources[target].discard(key)
            self._anything.discard(key)
            ms = self.state.models.get(key)
            if ms is None:
                continue
            targets: set[ModelKey] = set()
            try:
                for fld in ms.fields.values():
                    remote = fld.remote_field
                    if not remote:
                        continue
                    targets.add(resolve_relation(remote.model, *key))
                    through = getattr(remote, "through", None)
                    if through:
                        targets.add(resolve_relation(through, *key))
            except Exception:
                self._anything.add(key)  # let Django look at it, whatever it holds
            self._targets[key] = targets
            for target in targets:
                self._sources.setdefault(target, set()).add(key)

    def referring(self, key: ModelKey) -> set[ModelKey]:
        """`key` and every model that may refer to it."""
        if self._targets is None:
            self._targets, self._sources, self._anything = {}, {}, set()
            self.refresh(self.state.models)
        return {key} | self._sources.get(key, set()) | self._anything

    def view(self, key: ModelKey) -> dict[ModelKey, ModelState]:
        """The models that may refer to `key` (and `key` itself), in the state's order."""
        wanted = self.referring(key)
        return {k: ms for k, ms in self.state.models.items() if k in wanted}


# Django's own operations that change no model but the one they name (_affected's keys).
_LOCAL = tuple(
    getattr(ops, name)
    for name in (
        "CreateModel", "DeleteModel", "AddField", "RemoveField", "AlterModelTable",
        "AlterModelTableComment", "AlterUniqueTogether", "AlterIndexTogether",
        "AlterOrderWithRespectTo", "AlterModelOptions", "AlterModelManagers", "AddIndex",
        "RemoveIndex", "RenameIndex", "AddConstraint", "RemoveConstraint", "AlterConstraint",
    )
    if hasattr(ops, name)
)  # fmt: skip
# Django's operations whose state change scans every model for references to a field.
_REFERENCE_SCANS = (ops.AlterField, ops.RenameField)


def _no_state_effect(op: Operation) -> bool:
    kind = type(op)
    return kind is ops.RunPython or (kind is ops.RunSQL and not op.state_operations)  # type: ignore[attr-defined]


class PlanWalk:
    """The migration state advanced operation by operation, with what it costs kept small.

    Besides Referrers, it caches each model's footprint until an operation may have changed
    that model: a Django operation of a known kind changes only the model it names (AlterField
    and RenameField may also repoint `to_fields` of models referring to it, which changes no
    footprint), anything else may have changed any model and empties the cache.
    `shortcuts = False` (tests) walks exactly as Django would, with neither.
    """

    shortcuts = True

    def __init__(self, state: ProjectState, fp: Footprints):
        self.state = state
        self.fp = fp
        self.refs = Referrers(state)
        self._footprints: dict[ModelKey, frozenset[Obj]] = {}

    def _plain(self) -> bool:
        """Shortcuts off, or a rendered or relation-tracking state: Django needs it whole."""
        return (
            not self.shortcuts
            or "apps" in self.state.__dict__
            or getattr(self.state, "_relations", None) is not None
        )

    def footprint(self, keys: Iterable[ModelKey]) -> set[Obj]:
        out: set[Obj] = set()
        for key in keys:
            cached = self._footprints.get(key)
            if cached is None:
                cached = frozenset(self.fp.of(self.state, key))
                if self.shortcuts:
                    self._footprints[key] = cached
            out |= cached
        return out

    def forwards(self, op: Operation, app: str, keys: set[ModelKey] | None) -> None:
        """`op.state_forwards(app, state)`, keeping the caches right."""
        kind = type(op)
        touched: Iterable[ModelKey] | None = None  # None: anything may have changed
        if self._plain():
            op.state_forwards(app, self.state)
        elif kind in _REFERENCE_SCANS:
            key = (app, op.model_name_lower)  # type: ignore[attr-defined]
            models = self.state.models
            self.state.models = self.refs.view(key)
            try:
                op.state_forwards(app, self.state)
            finally:
                self.state.models = models
            touched = [key]
        elif kind in _LOCAL and keys is not None:
            op.state_forwards(app, self.state)
            touched = keys
        elif _no_state_effect(op):
            op.state_forwards(app, self.state)
            touched = ()
        else:
            op.state_forwards(app, self.state)
        self.changed(touched)

    def changed(self, keys: Iterable[ModelKey] | None) -> None:
        if keys is None:
            self.refs.invalidate()
            self._footprints.clear()
            return
        keys = list(keys)
        self.refs.refresh(keys)
        for key in keys:
            self._footprints.pop(key, None)

    def database_state(self, ops_: Iterable[Operation], app: str) -> ProjectState:
        """A state the database operations of a SeparateDatabaseAndState may advance freely.

        clone() copies every model of the project, for each such operation. Only the models
        the database operations can change need copying when they are all known kinds; the
        others are shared (read-only) with the real state.
        """
        if self._plain():
            return self.state.clone()
        mutable: set[ModelKey] = set()
        for op in ops_:
            kind = type(op)
            if kind in _REFERENCE_SCANS:
                mutable |= self.refs.referring((app, op.model_name_lower))  # type: ignore[attr-defined]
            elif kind in _LOCAL:
                keys = _affected(op, app, self.state)
                if keys is None:
                    return self.state.clone()
                mutable |= keys
            elif not _no_state_effect(op):
                return self.state.clone()
        state = ProjectState(
            models={k: ms.clone() if k in mutable else ms for k, ms in self.state.models.items()},
            real_apps=self.state.real_apps,
        )
        state.is_delayed = self.state.is_delayed
        return state


def _ordered(objs: set[Obj]) -> list[Obj]:
    order = {"table": 0, "column": 1, "constraint": 2, "unique": 3, "index": 4}
    return sorted(objs, key=lambda o: (o[1], order[o[0]], o[2:]))


def _apply(op: Operation, app: str, walk: PlanWalk) -> tuple[set[Obj], set[Obj], bool]:
    """Advance the walk's state by `op`; return (created, removed, opaque) for the database."""
    state = walk.state
    if isinstance(op, ops.SeparateDatabaseAndState):
        db_walk = PlanWalk(walk.database_state(op.database_operations, app), walk.fp)
        created: set[Obj] = set()
        removed: set[Obj] = set()
        opaque = False
        for db_op in op.database_operations:
            c, r, o = _apply(db_op, app, db_walk)
            created, removed = _compose(created, removed, c, r)
            opaque = opaque or o
        for state_op in op.state_operations:
            state_op.state_forwards(app, state)
        walk.changed(None)
        return created, removed, opaque
    keys = _affected(op, app, state)
    if keys is None:
        keys = {k for k in state.models if k[0] == app}
        before = walk.footprint(keys)
        walk.forwards(op, app, None)
        keys |= {k for k in state.models if k[0] == app}
        after = walk.footprint(keys)
        opaque = True
    else:
        before = walk.footprint(keys)
        walk.forwards(op, app, keys)
        after = walk.footprint(keys)
        opaque = False
    if isinstance(op, _STATE_ONLY) or _noop(op):
        return set(), set(), False
    if isinstance(op, _OPAQUE):
        opaque = True
    return after - before, before - after, opaque


def _noop(op: Operation) -> bool:
    """RunPython.noop and RunSQL.noop (often with state_operations) touch no database: there
    is nothing to verify, and nothing that faking would skip."""
    if isinstance(op, ops.RunPython):
        return op.code is ops.RunPython.noop
    if isinstance(op, ops.RunSQL):
        return op.sql in (ops.RunSQL.noop, [], ())
    return False


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
    with no_cycle_collection():
        return _compute(graph, connection, real_apps)


def _compute(
    graph: MigrationGraph, connection: BaseDatabaseWrapper, real_apps: Iterable[str]
) -> ExpectedSchema:
    fp = Footprints(connection)
    state = ProjectState(real_apps=set(real_apps))
    walk = PlanWalk(state, fp)
    plan = full_plan(graph)
    effects: dict[Key, MigrationEffect] = {}
    live: set[Obj] = set()  # what the plan so far leaves in the database
    carried: set[Obj] = set()  # see _carried_by_rename
    for key in plan:
        migration = graph.nodes[key]
        assert migration is not None
        effect = MigrationEffect(key, _is_initial(migration))
        created: set[Obj] = set()
        removed: set[Obj] = set()
        for i, op in enumerate(migration.operations):
            c, r, opaque = _apply(op, key[0], walk)
            left = _left_on_removed_tables(live, c, r)
            r |= left
            carried |= _carried_by_rename(left, c, r)
            live -= r  # in place: a copy per operation would be quadratic in the plan
            live |= c
            desc = describe_operation(op)
            effect.operations.append(OperationEffect(i, desc, _ordered(c), _ordered(r), opaque))
            if opaque:
                effect.opaque.append(desc)
            created, removed = _compose(created, removed, c, r)
        effect.creates = _ordered(created)
        effect.removes = _ordered(removed)
        effects[key] = effect
    tables: dict[str, ModelKey] = {}
    final: set[Obj] = set()
    for mkey in state.models:
        footprint = walk.footprint([mkey])
        final |= footprint
        for obj in footprint:
            if obj[0] == "table":
                tables[obj[1]] = mkey
    unlisted = fp.unlisted | carried
    if connection.vendor == "sqlite":
        unlisted |= _without_rebuilt_indexes(effects, tables, final)
    return ExpectedSchema(
        plan=plan, effects=effects, state=state, tables=tables, unlisted=unlisted,
        names=set(fp.names),
    )  # fmt: skip


def _left_on_removed_tables(live: set[Obj], created: set[Obj], removed: set[Obj]) -> set[Obj]:
    """What an earlier owner of a table left on it, gone with the table: django-oscar moves
    Notification from `customer` to `communication` by state only, where the new model has
    no index on date_sent (customer.0005 made one), then renames the table; the index went
    with the old name as far as the plan can tell, not left behind on a missing table."""
    gone = {o[1] for o in removed if o[0] == "table" and o not in created}
    if not gone:
        return set()
    return {o for o in live if o[0] != "table" and o[1] in gone} - removed


def _carried_by_rename(left: set[Obj], created: set[Obj], removed: set[Obj]) -> set[Obj]:
    """The indexes and unique constraints an earlier owner left on a table that one
    operation renames (django-oscar's AlterModelTable of the moved Notification): the
    database renames the table with them, where the plan lets them go (above)."""
    gone = {o[1] for o in removed if o[0] == "table" and o not in created}
    new = {o[1] for o in created if o[0] == "table" and o not in removed}
    if len(gone) != 1 or len(new) != 1:
        return set()
    [table] = new
    return {(o[0], table, *o[2:]) for o in left if o[0] in ("index", "unique", "constraint")}


def _without_rebuilt_indexes(
    effects: dict[Key, MigrationEffect], tables: dict[str, ModelKey], final: set[Obj]
) -> set[Obj]:
    """SQLite rebuilds a table for most changes, from the state of the model that owns it
    then: an index Django named itself that this owner does not have is gone after any
    rebuild (a model moved to another app by state only, keeping its table, where the new
    model lacks a db_index the old one had). Such an index is not expected of a table that
    is still there at the end of the plan; returned, as it may be there all the same."""

    def kept(obj: Obj) -> bool:
        return not (obj[0] == "index" and obj[1] in tables and obj not in final)

    dropped: set[Obj] = set()
    for effect in effects.values():
        dropped.update(o for o in effect.creates if not kept(o))
        effect.creates = [o for o in effect.creates if kept(o)]
        for op in effect.operations:
            op.creates = [o for o in op.creates if kept(o)]
    return dropped


def _is_initial(migration: Any) -> bool:
    """Django's rule for --fake-initial: `initial = True`, or no same-app dependency."""
    if migration.initial is not None:
        return bool(migration.initial)
    return not any(dep[0] == migration.app_label for dep in migration.dependencies)
