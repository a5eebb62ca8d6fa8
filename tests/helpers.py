"""Ways to break a database the way real projects break, for the tests."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.management import call_command
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

TESTPROJECT = Path(__file__).resolve().parent.parent / "testproject"


def migrate(alias: str, app: str | None = None, target: str | None = None, **kw: Any) -> None:
    args = [a for a in (app, target) if a]
    call_command("migrate", *args, database=alias, verbosity=0, **kw)


def sql(alias: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with connections[alias].cursor() as cursor:
        cursor.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []


def qn(alias: str, name: str) -> str:
    return connections[alias].ops.quote_name(name)


def unrecord(alias: str, app: str, name: str | None = None) -> None:
    """Delete rows of django_migrations, as a careless hand or a restored dump does."""
    if name is None:
        sql(alias, f"DELETE FROM {qn(alias, 'django_migrations')} WHERE app = %s", (app,))
    else:
        sql(
            alias,
            f"DELETE FROM {qn(alias, 'django_migrations')} WHERE app = %s AND name = %s",
            (app, name),
        )


def record(alias: str, app: str, name: str) -> None:
    sql(
        alias,
        f"INSERT INTO {qn(alias, 'django_migrations')} (app, name, applied) VALUES (%s, %s, %s)",
        (app, name, "2024-01-02 03:04:05"),
    )


def recorded(alias: str) -> set[tuple[str, str]]:
    return {
        (a, n) for a, n in sql(alias, f"SELECT app, name FROM {qn(alias, 'django_migrations')}")
    }


def tables(alias: str) -> list[str]:
    connection = connections[alias]
    with connection.cursor() as cursor:
        return list(connection.introspection.table_names(cursor))


def drop_table(alias: str, table: str) -> None:
    sql(alias, f"DROP TABLE {qn(alias, table)}")


def remove_field(alias: str, model_label: str, field_name: str) -> None:
    """Drop a column through the schema editor (SQLite rebuilds the table)."""
    model = apps.get_model(model_label)
    with connections[alias].schema_editor() as editor:
        editor.remove_field(model, model._meta.get_field(field_name))


def alter_field(alias: str, model_label: str, field_name: str, **changes: Any) -> None:
    """Change a column behind Django's back (e.g. null=True, max_length=300)."""
    model = apps.get_model(model_label)
    old = model._meta.get_field(field_name)
    new = copy.copy(old)
    for key, value in changes.items():
        setattr(new, key, value)
    with connections[alias].schema_editor() as editor:
        editor.alter_field(model, old, new)


def run_operations(alias: str, app: str, name: str, indexes: list[int]) -> None:
    """Apply only some operations of a migration, as a migration that failed halfway does."""
    executor = MigrationExecutor(connections[alias])
    loader = executor.loader
    migration = loader.get_migration(app, name)
    parents = [p for p in loader.graph.node_map[(app, name)].parents]
    state = loader.project_state([p.key for p in parents], at_end=True)
    with connections[alias].schema_editor(atomic=False) as editor:
        for i, operation in enumerate(migration.operations):
            new_state = state.clone()
            operation.state_forwards(app, new_state)
            if i in indexes:
                operation.database_forwards(app, editor, state, new_state)
            state = new_state


def app_migration_sources(app: str) -> dict[str, str]:
    """The bundled app's migration sources, to build throwaway packages from."""
    source = TESTPROJECT / app / "migrations"
    return {p.stem: p.read_text() for p in sorted(source.glob("0*.py"))}


def statements_of(alias: str, action: Any) -> list[str]:
    """Every SQL statement `action()` sends through `alias`."""
    seen: list[str] = []

    def spy(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with connections[alias].execute_wrapper(spy):
        action()
    return seen


# Tests name a job by its 0.1 flag (`--fix ...`) and run the command that does it now; the old
# spelling itself is tested in tests/test_command.py.
JOBS = {
    "--fix": "migration_doctor_fix",
    "--restore": "migration_doctor_restore",
    "--history": "migration_doctor_history",
    "--migrate": "migration_doctor_migrate",
    "--graph": "migration_doctor_graph",
}


def command_argv(*args: str) -> list[str]:
    """The command and its arguments for `args`, a diagnosis unless the first is a job."""
    if args and args[0] in JOBS:
        return [JOBS[args[0]], *args[1:]]
    return ["migration_doctor", *args]


def doctor(alias: str, *args: str, watch: bool = False) -> tuple[int, str]:
    """The command in-process: its exit status and stdout; the import watch
    (tests/test_traps.py) only when asked."""
    out = io.StringIO()
    name, *rest = command_argv(*args)
    extra = {"import_watch": watch} if name == "migration_doctor" else {}
    try:
        call_command(name, *rest, database=alias, stdout=out, **extra)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def fix(alias: str, *args: str) -> tuple[int, str]:
    """`migration_doctor_fix --noinput ...` on `alias`: its exit status and stdout."""
    out = io.StringIO()
    try:
        call_command("migration_doctor_fix", "--noinput", *args, database=alias, stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()
