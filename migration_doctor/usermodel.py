"""A custom user model switched on mid-project (`user-model-switched`).

A project migrated with `auth.User` that sets `AUTH_USER_MODEL = "accounts.User"` gets
Django's `InconsistentMigrationHistory: Migration admin.0001_initial is applied before its
dependency accounts.0001_initial`. Recording the dependency, or letting `migrate` create an
empty `accounts_user`, leaves every user, password and foreign key behind in `auth_user`. One
finding says what the state really is: where the users are, what points at them, and whether
the old table's columns fit the new model field by field, which decides if `--fix` can move
them (repair/usermodel.py) or must refuse and give the recipe.

Diagnosis never writes: everything comes from the snapshot, plus one read-only COUNT query
per finding for the rows of the user tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from shlex import quote
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db.backends.utils import strip_quotes, truncate_name
from django.db.migrations import operations as ops
from django.db.models import NOT_PROVIDED

from .drift import canonical_type
from .expected import column_of
from .findings import MANAGE, Finding, Fix
from .keys import Key
from .snapshot import Snapshot

KIND = "user-model-switched"
FIX_COMMAND = f"{MANAGE} migration_doctor_fix --only {KIND}"


@dataclass
class M2M:
    """An auto-created many-to-many table that holds user ids, before and after the switch."""

    field: str  # "groups" (the user model's own) or "library.Loan.watchers"
    table: str  # where it is now (live), or the old name when absent
    new_table: str
    column: str  # the user id column now
    new_column: str
    present: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "table": self.table,
            "new_table": self.new_table,
            "column": self.column,
            "new_column": self.new_column,
        }


@dataclass
class Switch:
    """Everything the finding and the repair need to know about one switch."""

    old_model: str  # "auth.User"
    old_key: tuple[str, str]
    old_table: str
    new_model: str  # settings.AUTH_USER_MODEL as written
    new_key: tuple[str, str]
    new_table: str
    initial: Key
    dependents: list[str]
    source: str  # the table that holds the users now
    # "record" (same table), "rename", "resume" (renamed already), "drop-empty" (an empty
    # new table beside the old one: drop it, then rename), "refused"
    mode: str
    old_present: bool
    new_present: bool
    references: list[str] = field(default_factory=list)
    m2m: list[M2M] = field(default_factory=list)
    matching: list[str] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)
    misfits: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)  # one manual step per misfit
    users: int | None = None
    new_rows: int | None = None
    opaque: list[str] = field(default_factory=list)
    # The initial migration is recorded already (an earlier `--fix`, or `migrate` after
    # recording it, made the new table empty and left the users behind).
    initial_recorded: bool = False
    # The new model's tables that exist beside the old ones, all empty: dropped first.
    empty_tables: list[str] = field(default_factory=list)


def _label(key: Key) -> str:
    return f"{key[0]}.{key[1]}"


def _create_op(snapshot: Snapshot, app: str, model: str) -> tuple[Key, Any] | None:
    """The migration of `app` whose CreateModel makes `model`, and that operation."""
    for key in snapshot.expected.plan:
        if key[0] != app:
            continue
        migration = snapshot.graph.graph.nodes[key]
        for op in getattr(migration, "operations", ()):
            if isinstance(op, ops.CreateModel) and op.name_lower == model:
                return key, op
    return None


def _dependents(snapshot: Snapshot, app: str) -> tuple[list[str], set[Key]]:
    """Recorded migrations whose unrecorded parents are in `app`, in the order Django checks
    them (by row id), and those parents."""
    graph = snapshot.graph.graph
    recorded = snapshot.recorded
    first_id: dict[Key, int] = {}
    for row in snapshot.rows:
        first_id.setdefault(row.key, row.id)
    found: list[Key] = []
    parents: set[Key] = set()
    for key in sorted(recorded, key=lambda k: first_id.get(k, 0)):
        if key not in graph.nodes or key[0] == app:
            continue
        missing = {p.key for p in graph.node_map[key].parents if p.key[0] == app} - recorded
        if missing:
            found.append(key)
            parents |= missing
    return [_label(k) for k in found], parents


def _old_model(snapshot: Snapshot, new_key: tuple[str, str]) -> tuple[tuple[str, str], Any] | None:
    """The swappable user model the database was migrated with (auth.User, usually)."""
    recorded = snapshot.recorded
    for key, ms in snapshot.expected.state.models.items():
        if key == new_key or ms.options.get("swappable") != "AUTH_USER_MODEL":
            continue
        made = _create_op(snapshot, *key)
        if made is not None and made[0] in recorded:
            return key, ms
    return None


def _type_of(fld: Any, name: str, connection: Any) -> str | None:
    probe = fld.clone()
    probe.name = name
    try:
        return probe.db_type(connection)
    except Exception:  # a relation whose target the unbound field cannot resolve
        return None


def _default(fld: Any) -> str | None:
    if getattr(fld, "db_default", NOT_PROVIDED) is not NOT_PROVIDED:
        return f"db_default {fld.db_default!r}"
    if not fld.has_default():
        return None
    value = fld.default
    if callable(value):
        return str(getattr(value, "__qualname__", None) or repr(value))
    return repr(value)


def _table_name(app: str, model: str, options: dict[str, Any], max_name: int | None) -> str:
    return options.get("db_table") or truncate_name(f"{app}_{model}", max_name)


def _m2m_target(fld: Any, owner: str) -> str:
    target = fld.remote_field.model
    if isinstance(target, str):
        return owner if target == "self" else target.rsplit(".", 1)[-1].lower()
    return str(target._meta.model_name)


def _fit(s: Switch, snapshot: Snapshot, op: Any, old_ms: Any) -> None:
    """Field by field: the columns of the table holding the users against the new model."""
    schema = snapshot.schema
    connection = snapshot.connection
    vendor = snapshot.vendor
    table = schema.table(s.source)
    assert table is not None
    accounted: set[str] = set()
    model = s.new_model
    for name, fld in op.fields:
        if fld.many_to_many:
            continue
        column = column_of(name, fld)
        if not column:
            continue
        live = schema.column(s.source, column)
        if live is None:
            default = _default(fld)
            entry = {"field": name, "column": column, "null": bool(fld.null), "default": default}
            if fld.primary_key:
                s.misfits.append(f"primary key {name}: no column {column} in {s.source}")
                s.advice.append(f"declare the primary key of {model} as column {column} has it")
            elif fld.unique and not fld.null:
                s.misfits.append(f"{name}: a new unique field, every existing user needs a value")
                s.advice.append(
                    f"add {name} with null=True in {_label(s.initial)}, fill it, and make it "
                    "unique and required in a later migration"
                )
            elif default is None and not fld.null:
                s.misfits.append(f"{name}: a new required field without a default")
                s.advice.append(
                    f"give {name} a default or null=True in {_label(s.initial)}; make it "
                    "required in a later migration once every user has a value"
                )
            elif getattr(fld, "remote_field", None) is not None:
                s.misfits.append(f"{name}: a new relation (its target is not checked)")
                s.advice.append(f"add {name} in a later migration of {s.new_key[0]}")
            s.added.append(entry)
            continue
        accounted.add(schema.key(live.name))
        wanted = _type_of(fld, name, connection)
        problems = []
        if fld.primary_key and old_ms is not None:
            old_pk = next((f for f in old_ms.fields.values() if f.primary_key), None)
            if old_pk is not None and old_pk.get_internal_type() != fld.get_internal_type():
                problems.append(
                    f"primary key {name} is a {fld.get_internal_type()}, the table's is a "
                    f"{old_pk.get_internal_type()} ({live.type})"
                )
                s.advice.append(
                    f"declare `{name} = models.{old_pk.get_internal_type()}(primary_key=True)` on "
                    f"{model} (or set default_auto_field in its AppConfig), delete "
                    f"{_label(s.initial)} and run makemigrations {s.new_key[0]} again; a later "
                    f"migration can change the primary key type, `migrate` re-types every "
                    "foreign key then"
                )
        if not problems:
            want_t = canonical_type(vendor, wanted) if wanted else None
            live_t = canonical_type(vendor, live.type)
            if wanted is None or (want_t or wanted.lower()) != (live_t or live.type.lower()):
                problems.append(
                    f"{name} is {wanted or 'of an unknown type'}, {live.type} in the table"
                )
                s.advice.append(
                    f"declare {name} as the table has it ({live.type}) in {_label(s.initial)}; "
                    "change its type in a later migration"
                )
            want_null = bool(fld.null) and not fld.primary_key
            if live.null != want_null:
                problems.append(
                    f"{name} is {'NULL' if want_null else 'NOT NULL'}, "
                    f"{'NULL' if live.null else 'NOT NULL'} in the table"
                )
                s.advice.append(
                    f"declare {name} with null={live.null} in {_label(s.initial)}; change it "
                    "in a later migration"
                )
        if problems:
            s.misfits.extend(problems)
        else:
            s.matching.append(column)
    for leftover in table.columns.values():
        if schema.key(leftover.name) not in accounted:
            s.misfits.append(f"column {s.source}.{leftover.name} has no field in {model}")
            s.advice.append(
                f"add a field for column {leftover.name} to {model} in {_label(s.initial)}, or "
                "drop the column if nothing in it is needed"
            )


def _m2m_tables(s: Switch, snapshot: Snapshot, op: Any, old_ms: Any, max_name: int | None) -> None:
    """The user model's own M2M tables, and other models' auto-created M2M tables to it."""
    schema = snapshot.schema
    new_fields = {n: f for n, f in op.fields if f.many_to_many}
    old_fields = {n: f for n, f in old_ms.fields.items() if f.many_to_many} if old_ms else {}
    old_name, new_name = s.old_key[1], s.new_key[1]
    for name, old in sorted(old_fields.items()):
        if old.remote_field.through:
            continue
        new = new_fields.get(name)
        old_target = _m2m_target(old, old_name)
        old_t = old.db_table or truncate_name(f"{strip_quotes(s.old_table)}_{name}", max_name)
        if new is None or new.remote_field.through or _m2m_target(new, new_name) != old_target:
            s.misfits.append(f"{name}: {s.new_model} has no many-to-many field {name} like it")
            s.advice.append(
                f"keep {name} on {s.new_model} (PermissionsMixin gives groups and "
                f"user_permissions), or move the rows of {old_t} elsewhere first"
            )
            continue
        new_t = new.db_table or truncate_name(f"{strip_quotes(s.new_table)}_{name}", max_name)
        old_first = s.old_present and s.source == s.old_table
        s.m2m.append(
            _m2m_entry(schema, name, old_t, new_t, f"{old_name}_id", f"{new_name}_id", old_first)
        )
    # Other apps' auto-created M2M tables name their user column after the user model.
    label = s.new_model.lower()
    for mkey, ms in sorted(snapshot.expected.state.models.items()):
        if mkey in (s.new_key, s.old_key):
            continue
        for name, fld in ms.fields.items():
            target = fld.remote_field.model if fld.many_to_many else None
            if not isinstance(target, str) or target.lower() != label or fld.remote_field.through:
                continue
            owner = _table_name(mkey[0], mkey[1], ms.options, max_name)
            table = fld.db_table or truncate_name(f"{strip_quotes(owner)}_{name}", max_name)
            old_col, new_col = f"{old_name}_id", f"{new_name}_id"
            if mkey[1] == new_name:  # a model of the same name: from_/to_ prefixes
                old_col, new_col = f"to_{old_name}_id", f"to_{new_name}_id"
            field_label = f"{mkey[0]}.{ms.name}.{name}"
            s.m2m.append(_m2m_entry(schema, field_label, table, table, old_col, new_col, False))


def _m2m_entry(
    schema: Any, name: str, old_t: str, new_t: str, old_c: str, new_c: str, old_first: bool
) -> M2M:
    """Where the table and its user column are now: the new names once a repair renamed them
    (`old_first`: the old table while it exists, the users' rows are there)."""
    if old_first and schema.has_table(old_t):
        table = old_t
    else:
        table = new_t if schema.has_table(new_t) else old_t
    column = new_c if schema.has_column(table, new_c) else old_c
    present = schema.has_table(table) and schema.has_column(table, column)
    return M2M(name, table, new_t, column, new_c, present)


def _counts(snapshot: Snapshot, tables: list[str]) -> list[int]:
    """The rows of each table, in one read-only query."""
    if not tables:
        return []
    qn = snapshot.connection.ops.quote_name
    select = ", ".join(f"(SELECT COUNT(*) FROM {qn(t)})" for t in tables)
    return [int(v) for v in snapshot.read(f"SELECT {select}")[0]]


def detect(snapshot: Snapshot) -> Switch | None:
    """The switch, if AUTH_USER_MODEL's initial migration is unrecorded while migrations that
    depend on it are, and an earlier user model's table or the new one holds the users; or
    if it is recorded but its table is absent or empty while the old table, which other
    tables still point at, keeps the users (what recording it, or an earlier `--fix`, did)."""
    label = str(getattr(settings, "AUTH_USER_MODEL", "auth.User"))
    app, _, model = label.partition(".")
    new_key = (app, model.lower())
    if new_key == ("auth", "user") or app not in snapshot.graph.loader.migrated_apps:
        return None
    made = _create_op(snapshot, *new_key)
    if made is None:
        return None
    initial, op = made
    recorded = initial in snapshot.recorded
    dependents, parents = _dependents(snapshot, app)
    if not recorded and (not dependents or parents != {initial}):
        return None
    old = _old_model(snapshot, new_key)
    if old is None:
        return None
    (old_key, old_ms) = old
    schema = snapshot.schema
    max_name = snapshot.connection.ops.max_name_length()
    old_table = _table_name(*old_key, old_ms.options, max_name)
    new_table = _table_name(*new_key, op.options, max_name)
    same = schema.key(old_table) == schema.key(new_table)
    old_present = schema.has_table(old_table)
    new_present = not same and schema.has_table(new_table)
    if (
        recorded
        and (same or not old_present)
        and (same or not new_present or not _content_type_back(snapshot, old_key, app))
    ):
        return None  # a switch that went well, or a project that started with the model
    if same and old_present:
        mode, source = "record", old_table
    elif old_present and not new_present:
        mode, source = "rename", old_table
    elif new_present and not old_present:
        mode, source = "resume", new_table
    elif old_present and new_present:
        mode, source = "both", old_table
    else:
        return None
    s = Switch(
        old_model=f"{old_key[0]}.{old_ms.name}",
        old_key=old_key,
        old_table=old_table,
        new_model=label,
        new_key=new_key,
        new_table=new_table,
        initial=initial,
        dependents=dependents,
        source=source,
        mode=mode,
        old_present=old_present,
        new_present=new_present if not same else old_present,
        initial_recorded=recorded,
    )
    s.opaque = list(snapshot.expected.effects[initial].opaque)
    _fit(s, snapshot, op, old_ms)
    _m2m_tables(s, snapshot, op, old_ms, max_name)
    for entry in s.m2m:
        if not entry.present:
            s.misfits.append(
                f"{entry.field}: table {entry.table} or its column {entry.column} is missing"
            )
            s.advice.append(f"re-create {entry.table} as its migration made it")
    own_m2m = {
        schema.key(m.table) for m in s.m2m if schema.key(m.table) != schema.key(m.new_table)
    }
    s.references = _referencing(schema, {schema.key(source)})
    if recorded and not [
        r for r in s.references if schema.key(r.rsplit(".", 1)[0]) not in own_m2m
    ]:
        return None  # nothing but the old model's own tables points at the old table
    if mode == "both":
        s.empty_tables = [new_table] + [
            m.new_table
            for m in s.m2m
            if schema.key(m.table) != schema.key(m.new_table) and schema.has_table(m.new_table)
        ]
    counts = _counts(snapshot, [source, *s.empty_tables])
    s.users = counts[0]
    if mode == "both":
        s.new_rows = counts[1]
        held = [
            f"{t} holds {n} rows" for t, n in zip(s.empty_tables, counts[1:], strict=True) if n
        ]
        drop = {schema.key(t) for t in s.empty_tables}
        outside = [
            r for r in _referencing(schema, drop) if schema.key(r.rsplit(".", 1)[0]) not in drop
        ]
        if held or outside:
            s.misfits.insert(
                0,
                f"both {old_table} and {new_table} exist"
                + "".join(f", and {h}" for h in held)
                + "".join(f", and {r} points at {new_table}" for r in outside),
            )
            s.advice.insert(0, _both_tables_advice(s, snapshot, outside))
        else:
            s.mode = "drop-empty"
    if s.misfits:
        s.mode = "refused"
    return s


def _content_type_back(snapshot: Snapshot, old_key: tuple[str, str], app: str) -> bool:
    """Whether the old model's content type is back after this repair moved it: a restored
    backup of a repair that found the initial migration recorded. One SELECT, only where the
    ledger says the doctor moved it."""
    if not apps.is_installed("django.contrib.contenttypes") or not any(
        e.kind == KIND and e.action == "contenttype" and e.app == app for e in snapshot.ledger
    ):
        return False
    from django.contrib.contenttypes.models import ContentType

    table = ContentType._meta.db_table
    if not snapshot.schema.has_table(table):
        return False
    qn = snapshot.connection.ops.quote_name
    [(count,)] = snapshot.read(
        f"SELECT COUNT(*) FROM {qn(table)} WHERE {qn('app_label')} = %s AND {qn('model')} = %s",
        old_key,
    )
    return bool(count)


def _referencing(schema: Any, tables: set[str]) -> list[str]:
    """`table.column` of every foreign key that points at one of `tables` (schema keys)."""
    found = [
        f"{table.name}.{column}"
        for table in schema.tables.values()
        for fk in table.foreign_keys
        if schema.key(fk.ref_table) in tables
        for column in fk.columns
    ]
    return sorted(found)


def _both_tables_advice(s: Switch, snapshot: Snapshot, outside: list[str]) -> str:
    qn = snapshot.connection.ops.quote_name
    if s.new_rows:
        return (
            f"decide which users are real: {s.source} holds the users everything points at; "
            f"if the {s.new_rows} rows of {s.new_table} are test users, drop {s.new_table} and "
            "its many-to-many tables, otherwise merge them into "
            f"{s.source} first (keeping its ids)"
        )
    if outside:
        return (
            f"point {', '.join(outside)} at {s.source} again (or drop what was made for the "
            f"empty {s.new_table}), so that nothing but its own tables refers to it"
        )
    return (
        f"drop the empty {s.new_table} (`DROP TABLE {qn(s.new_table)};`) and its empty "
        "many-to-many tables"
    )


# -- the finding -------------------------------------------------------------------------


def _backup_command(snapshot: Snapshot) -> str:
    cfg = snapshot.connection.settings_dict
    name = str(cfg.get("NAME") or "")
    if snapshot.vendor == "sqlite":
        return f"cp {quote(name)} {quote(name + '.before-user-switch')}"
    if snapshot.vendor == "postgresql":
        return f"pg_dump -Fc -f before-user-switch.dump {quote(name)}"
    return f"mysqldump --single-transaction {quote(name)} > before-user-switch.sql"


def _finding(s: Switch, snapshot: Snapshot) -> Finding:
    initial = _label(s.initial)
    users = f"{s.users} user{'' if s.users == 1 else 's'}"
    refs = ", ".join(s.references[:6]) + ("…" if len(s.references) > 6 else "")
    if s.initial_recorded and s.source == s.new_table:
        message = (
            f"AUTH_USER_MODEL is {s.new_model}, {initial} is recorded and table {s.source} "
            f"holds the {users}, but the content type of {s.old_model} is back in "
            "django_content_type (a backup of the doctor's repair was restored): permissions "
            f"granted through it do not apply to {s.new_model}, and admin log entries show "
            "the old model."
        )
    elif s.initial_recorded:
        made = (
            f"its table {s.new_table} is empty: it was created (by recording {initial} and "
            "migrating, or by an earlier `--fix`)"
            if s.new_present
            else f"its table {s.new_table} does not exist"
        )
        message = (
            f"AUTH_USER_MODEL is {s.new_model} and {initial}, which creates it, is recorded, "
            f"but {made} while the project's {users} {'stays' if s.users == 1 else 'stay'} "
            f"in table {s.source} of "
            f"{s.old_model}"
            + (f"; {refs} still point at it" if refs else "")
            + f". Every new {s.new_model} breaks those foreign keys: an admin log entry for "
            "one fails with an IntegrityError."
        )
    else:
        first = s.dependents[0]
        message = (
            f"AUTH_USER_MODEL is {s.new_model}, but {initial}, which creates it, is not "
            f"recorded while {', '.join(s.dependents)} "
            f"{'is' if len(s.dependents) == 1 else 'are'}: the project switched from "
            f"{s.old_model} to a custom user model after its first migrate. Django says: "
            f"InconsistentMigrationHistory: Migration {first} is applied before its "
            f"dependency {initial} on database '{snapshot.alias}'. Table {s.source} holds "
            f"the {users}"
            + (f"; {refs} point at it" if refs else "")
            + ". Recording the dependency or letting `migrate` create an empty table leaves "
            "them behind, and every foreign key with them."
        )
    if s.mode == "record":
        message += f" {s.new_model} keeps table {s.source} and its fields fit."
    elif s.mode == "rename":
        message += f" The columns of {s.source} fit {s.new_model}: renaming keeps every row."
    elif s.mode == "resume":
        message += f" {s.source} was renamed already and fits {s.new_model}."
    elif s.mode == "drop-empty":
        message += (
            f" {', '.join(s.empty_tables)} hold no rows and nothing else points at them; the "
            f"columns of {s.source} fit {s.new_model}: replacing them keeps every row."
        )
    else:
        message += f" It cannot be moved automatically: {'; '.join(s.misfits[:4])}."
    evidence: dict[str, Any] = {
        "old_model": s.old_model,
        "old_table": s.old_table,
        "old_table_present": s.old_present,
        "users": s.users,
        "references": s.references,
        "m2m_tables": [m.as_dict() for m in s.m2m],
        "new_model": s.new_model,
        "new_table": s.new_table,
        "new_table_present": s.new_present,
        "new_table_rows": s.new_rows,
        "initial_migration": initial,
        "initial_recorded": s.initial_recorded,
        "empty_new_tables": s.empty_tables,
        "dependents": s.dependents,
        "matching_columns": s.matching,
        "added_fields": s.added,
        "misfits": s.misfits,
        "repair": s.mode,
    }
    if s.opaque:
        evidence["unverifiable_operations"] = s.opaque
    if s.mode == "refused":
        steps = [f"{i}) {a}" for i, a in enumerate(s.advice, 2)]
        fix = Fix(
            "Not repaired automatically. By hand: 1) back up the database; "
            + "; ".join(steps)
            + f"; {len(steps) + 2}) run the doctor's repair, which then moves the users; "
            f"{len(steps) + 3}) migrate.",
            (
                _backup_command(snapshot),
                f"{FIX_COMMAND} --dry-run",
                FIX_COMMAND,
                f"{MANAGE} migrate",
            ),
        )
    else:
        record = "" if s.initial_recorded else f", record {initial}"
        what = {
            "record": f"record {initial} and move the content type of {s.old_model} and its "
            f"permissions to {s.new_model}",
            "rename": f"rename {s.source} and its many-to-many tables for {s.new_model}, add its "
            f"new columns, move the content type and permissions{record}",
            "resume": f"finish the move: add {s.new_model}'s missing columns, move the content "
            f"type and permissions{record}",
            "drop-empty": f"drop the empty {', '.join(s.empty_tables)}, rename {s.source} and "
            f"its many-to-many tables in their place, add the new columns, move the content "
            f"type and permissions{record}",
        }[s.mode]
        fix = Fix(
            f"Let the doctor {what} (--dry-run prints every statement), then migrate.",
            (f"{FIX_COMMAND} --dry-run", FIX_COMMAND, f"{MANAGE} migrate"),
        )
    return Finding(KIND, s.new_key[0], s.initial[1], message, evidence, fix)


def _only_references(finding: Finding, refs: set[tuple[str, ...]]) -> bool:
    """A drift finding about nothing but columns that refer to the user table."""
    table = finding.evidence.get("table")
    differences = finding.evidence.get("differences")
    if not isinstance(table, str) or not differences:
        return False
    key = table.lower()
    return all((key, str(d.get("column", "")).lower()) in refs for d in differences)


def _only_renamed_columns(finding: Finding, s: Switch) -> bool:
    """A missing-schema finding about nothing but user columns named after the new model
    (`customuser_id`) in M2M tables that still have the old one, their unique pairs and
    indexes."""
    renamed = [m for m in s.m2m if m.column != m.new_column]
    missing = finding.evidence.get("missing") or []
    if not renamed or not missing:
        return False

    def explained(what: str) -> bool:
        for m in renamed:
            if what == f"column {m.new_table}.{m.new_column}":
                return True
            for kind in ("unique", "index"):
                head, tail = f"{kind} (", f" on {m.new_table}"
                if what.startswith(head) and what.endswith(tail):
                    columns = what[len(head) : -len(tail)].rstrip(")")
                    if m.new_column in columns.split(", "):
                        return True
        return False

    return all(explained(str(w)) for w in missing)


def _old_user_column(finding: Finding, s: Switch) -> bool:
    """An untracked unique constraint of an M2M table over its user column under the old
    model's name (`user_id`, where the new model's is `customuser_id`)."""
    table = str(finding.evidence.get("table", "")).lower()
    columns = [str(c).lower() for c in finding.evidence.get("columns") or []]
    return any(
        m.column != m.new_column and m.table.lower() == table and m.column.lower() in columns
        for m in s.m2m
    )


def user_model_switched(snapshot: Snapshot, findings: list[Finding]) -> list[Finding]:
    """`findings` with the switch named once, in place of the inconsistent histories,
    the table-exists or unapplied of the initial migration and the untracked old tables."""
    if snapshot.missing_file is not None:
        return findings
    s = detect(snapshot)
    if s is None:
        return findings
    initial = _label(s.initial)
    key = snapshot.schema.key
    ours = {key(s.old_table), key(s.new_table)} | {key(m.table) for m in s.m2m}
    refs = {tuple(p.lower() for p in r.rsplit(".", 1)) for r in s.references}
    kept: list[Finding] = []
    for f in findings:
        if f.kind == "inconsistent-history" and f.evidence.get("not_recorded") == initial:
            continue
        if (f.app, f.migration) == s.initial and f.kind in (
            "table-exists",
            "partially-applied",
            "unapplied",
            "missing-schema",
        ):
            continue
        if f.kind == "untracked-column" and key(str(f.evidence.get("table", ""))) in ours:
            continue
        if f.kind == "untracked-constraint" and _old_user_column(f, s):
            continue  # the unique pair of an M2M table's user column the repair renames
        if f.kind == "missing-schema" and _only_renamed_columns(f, s):
            continue  # the user columns of other models' M2M tables, renamed by the repair
        if f.kind == "schema-drift" and _only_references(f, refs):
            continue  # foreign keys to the user table typed for the new model's primary key
        if f.kind == "untracked-table":
            tables = [t for t in f.evidence["tables"] if key(t["table"]) not in ours]
            if not tables:
                continue
            if len(tables) != len(f.evidence["tables"]):
                f.evidence["tables"] = tables
                names = ", ".join(str(t["table"]) for t in tables[:8])
                f.message = (
                    f"{len(tables)} table(s) in the database belong to no model or migration: "
                    f"{names}{'…' if len(tables) > 8 else ''}. RunSQL and other tools create "
                    "tables legitimately; listed for information."
                )
        kept.append(f)
    kept.append(_finding(s, snapshot))
    return kept
