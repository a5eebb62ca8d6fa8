"""Schema-per-tenant PostgreSQL (django-tenants, django-pgschemas): the public schema and
every tenant schema diagnosed, each against the apps that belong there, in a fixed number of
statements.

The fleet is read in six statements whatever the number of tenants (the schemas, the tenant
rows, the three catalog queries for every schema at once, every django_migrations in one
UNION ALL); the migration files are loaded once per distinct set of recorded rows (once,
on a healthy fleet) and the expected schema computed once per app set (django-tenants:
shared apps for the public schema, tenant apps for the tenants; django-pgschemas: the APPS of
settings.TENANTS["public"], of each static tenant, of "default" for the dynamic tenants).
Each schema is then classified by the same functions as a single database
(diagnose.report_of).

django-tenants' multi-type tenants (HAS_MULTI_TYPE_TENANTS) are detected and refused in one
line: not supported yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from shlex import quote
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from .diagnose import Report, check_app_labels, report_of
from .errors import DoctorError, first_line
from .expected import ExpectedSchema, compute
from .findings import MANAGE, Finding, Fix
from .snapshot import Snapshot, _read_only, count_queries, get_connection
from .snapshot.graph import GraphSnapshot, load_graph
from .snapshot.rows import RecordedRow, pg_schema_name, read_rows_of_schemas, recorder_table
from .snapshot.schema import LiveSchema
from .snapshot.schema_readers import read_postgresql_schemas

NEEDS = (
    "--all-schemas and --schema need a schema-per-tenant PostgreSQL setup "
    "(django-tenants or django-pgschemas)"
)
DJANGO_TENANTS = "django-tenants"
PGSCHEMAS = "django-pgschemas"


@dataclass(frozen=True)
class TenantSetup:
    alias: str
    public: str
    tenant_model: str  # "customers.Client"; "" for django-pgschemas with static tenants only
    table: str  # the tenant model's table, in the public schema
    column: str  # its schema_name column
    extra: tuple[str, ...]  # PG_EXTRA_SEARCH_PATHS: shared schemas, not tenants
    library: str = DJANGO_TENANTS
    # django-pgschemas' static tenants (their schema is their key in settings.TENANTS), and
    # its CLONE_REFERENCE (a schema migrated as a tenant, that new tenants are cloned from).
    static: tuple[str, ...] = ()
    reference: str = ""
    # The apps the router migrates into a schema: (schema, apps), "" for any other tenant.
    apps: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def app_set(self, schema: str) -> tuple[str, ...]:
        """The key of the expected schema: schemas with the same apps expect the same."""
        sets = dict(self.apps)
        return sets.get(schema, sets.get("", ()))


def detect() -> TenantSetup:
    """The django-tenants or django-pgschemas setup the settings describe, or one DoctorError
    saying why not."""
    if hasattr(settings, "TENANTS") and not hasattr(settings, "TENANT_MODEL"):
        return _detect_pgschemas(getattr(settings, "TENANTS"))  # noqa: B009  (not in stubs)
    names = ("TENANT_MODEL", "SHARED_APPS", "TENANT_APPS")
    missing = [n for n in names if not hasattr(settings, n)]
    if len(missing) == len(names):
        raise DoctorError(
            f"{NEEDS}: the settings have no TENANT_MODEL, SHARED_APPS, TENANT_APPS "
            "(django-tenants) and no TENANTS (django-pgschemas)."
        )
    if missing:
        raise DoctorError(f"{NEEDS}: the settings have no {', '.join(missing)}.")
    if getattr(settings, "HAS_MULTI_TYPE_TENANTS", False):
        raise DoctorError(
            f"{NEEDS}: multi-type tenants (HAS_MULTI_TYPE_TENANTS) are not supported yet."
        )
    alias = getattr(settings, "TENANT_DB_ALIAS", DEFAULT_DB_ALIAS)
    if alias not in connections.settings:
        raise DoctorError(f"{NEEDS}: TENANT_DB_ALIAS {alias!r} is not in DATABASES.")
    connection = connections[alias]
    if connection.vendor != "postgresql" or not hasattr(connection, "set_schema"):
        engine = connection.settings_dict.get("ENGINE")
        raise DoctorError(
            f"{NEEDS}: DATABASES[{alias!r}]['ENGINE'] is {engine}, "
            "not django_tenants.postgresql_backend."
        )
    label = str(getattr(settings, "TENANT_MODEL"))  # noqa: B009  (not in django-stubs)
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        raise DoctorError(f"{NEEDS}: TENANT_MODEL {label!r} is no model.") from None
    public = getattr(settings, "PUBLIC_SCHEMA_NAME", "public")
    return TenantSetup(
        alias=alias,
        public=public,
        tenant_model=label,
        table=model._meta.db_table,
        column=model._meta.get_field("schema_name").column,
        extra=tuple(getattr(settings, "PG_EXTRA_SEARCH_PATHS", ())),
        apps=(
            (public, tuple(getattr(settings, "SHARED_APPS"))),  # noqa: B009
            ("", tuple(getattr(settings, "TENANT_APPS"))),  # noqa: B009
        ),
    )


def _detect_pgschemas(tenants: Any) -> TenantSetup:
    """django-pgschemas: settings.TENANTS names the public schema's apps ("public"), the
    dynamic tenants' model and apps ("default", optional), and every static tenant (any
    other key, its schema of that name) with its own apps; its router migrates by the same
    keys (django_pgschemas.routers.TenantAppsRouter)."""
    if not isinstance(tenants, dict) or not isinstance(tenants.get("public"), dict):
        raise DoctorError(f"{NEEDS}: settings.TENANTS is no dict with a 'public' dict in it.")
    alias = getattr(settings, "PGSCHEMAS_TENANT_DB_ALIAS", DEFAULT_DB_ALIAS)
    engine = str(connections.settings.get(alias, {}).get("ENGINE", ""))
    if alias in connections.settings and "pgschemas" not in engine:
        # Refused before importing django_pgschemas: its import connects a pre_delete
        # receiver that reads settings.TENANTS on every delete of the process.
        raise DoctorError(
            f"{NEEDS}: DATABASES[{alias!r}]['ENGINE'] is {engine}, "
            "not django_pgschemas.postgresql."
        )
    try:
        from django_pgschemas.postgresql.base import DatabaseWrapper
    except (ImportError, ImproperlyConfigured) as exc:
        raise DoctorError(
            f"{NEEDS}: settings.TENANTS is set but django_pgschemas does not import: "
            f"{first_line(exc)}."
        ) from None
    if alias not in connections.settings:
        raise DoctorError(f"{NEEDS}: PGSCHEMAS_TENANT_DB_ALIAS {alias!r} is not in DATABASES.")
    if not isinstance(connections[alias], DatabaseWrapper):
        raise DoctorError(
            f"{NEEDS}: DATABASES[{alias!r}]['ENGINE'] is {engine}, "
            "not django_pgschemas.postgresql."
        )
    default = tenants.get("default")
    default = default if isinstance(default, dict) else {}
    label = str(default.get("TENANT_MODEL", ""))
    table = column = ""
    if label:
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            raise DoctorError(
                f"{NEEDS}: TENANTS['default']['TENANT_MODEL'] {label!r} is no model."
            ) from None
        table = model._meta.db_table
        column = model._meta.get_field("schema_name").column
    static = tuple(k for k in tenants if k not in ("public", "default"))
    return TenantSetup(
        alias=alias,
        public="public",  # django-pgschemas' public schema has no other name
        tenant_model=label,
        table=table,
        column=column,
        extra=tuple(getattr(settings, "PGSCHEMAS_EXTRA_SEARCH_PATHS", ())),
        library=PGSCHEMAS,
        static=static,
        reference=str(default.get("CLONE_REFERENCE") or ""),
        apps=(
            ("public", tuple(tenants["public"].get("APPS", ()))),
            *((k, tuple(tenants[k].get("APPS", ()))) for k in static),
            ("", tuple(default.get("APPS", ()))),
        ),
    )


_NAMESPACES = """
SELECT n.nspname::text, ARRAY(
    SELECT c.relname::text FROM pg_catalog.pg_class AS c
    WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s::text[])
)
FROM pg_catalog.pg_namespace AS n
WHERE n.nspname NOT LIKE 'pg\\_%%' AND n.nspname <> 'information_schema'
ORDER BY 1
"""


@dataclass
class Fleet:
    setup: TenantSetup
    tenants: list[str]  # static tenants, then the schema names the tenant table holds
    schemas: dict[str, set[str]]  # every schema -> which of our two tables it holds
    live: dict[str, LiveSchema]
    rows: dict[str, list[RecordedRow]]
    queries: list[str] = field(default_factory=list)


def read_fleet(setup: TenantSetup, wanted: list[str]) -> Fleet:
    """Schemas, tenant rows, then the catalog and django_migrations of every schema
    diagnosed (`wanted`, or public and every tenant when empty): six statements. A read the
    database refuses is one line."""
    connection = get_connection(setup.alias)
    try:
        return _read_fleet(connection, setup, wanted)
    except DatabaseError as exc:
        raise DoctorError(
            f"Cannot read the tenant schemas on database {setup.alias!r}: {first_line(exc)}."
        ) from exc


def _read_fleet(connection: Any, setup: TenantSetup, wanted: list[str]) -> Fleet:
    queries: list[str] = []
    table = recorder_table()
    with count_queries(connection, queries), _read_only(connection):
        with connection.cursor() as cursor:
            cursor.execute(_NAMESPACES, [[table, setup.table]])
            schemas = {name: set(found) for name, found in cursor.fetchall()}
            tenants = list(setup.static)
            if setup.reference in schemas:  # not a tenant before createrefschema makes it
                tenants.append(setup.reference)
            if setup.table and setup.table in schemas.get(setup.public, ()):
                qn = connection.ops.quote_name
                cursor.execute(
                    f"SELECT {qn(setup.column)} FROM {pg_schema_name(setup.public)}."
                    f"{qn(setup.table)} ORDER BY 1"
                )
                known = set(tenants)
                tenants += [str(n) for (n,) in cursor.fetchall() if str(n) not in known]
        for name in wanted:
            if name != setup.public and name not in tenants and name not in schemas:
                raise DoctorError(f"No schema or tenant named {name!r}.")
        targets = [n for n in (wanted or [setup.public, *tenants]) if n in schemas]
        live = read_postgresql_schemas(connection, targets)
        migrated = [n for n in targets if table in schemas[n]]
        rows = read_rows_of_schemas(connection, migrated)
    return Fleet(setup, tenants, schemas, live, rows, queries)


def check_schema(setup: TenantSetup, name: str) -> None:
    """One line when `name` is no schema of the tenant database (a typo in --schema)."""
    with get_connection(setup.alias).cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", [name])
        if cursor.fetchone() is None:
            raise DoctorError(f"No schema named {name!r} on database {setup.alias!r}.")


@contextmanager
def on_schema(connection: Any, name: str) -> Iterator[None]:
    """The connection on `name`, its router and search path following it: django-tenants'
    connection.set_schema, or django-pgschemas' activate() (its active schema is one for
    every connection of the thread)."""
    if hasattr(connection, "set_schema"):
        previous = connection.tenant
        connection.set_schema(name)
        try:
            yield
        finally:
            connection.set_tenant(previous)
        return
    from django_pgschemas import Schema, activate, get_current_schema
    from django_pgschemas.utils import is_valid_schema_name

    if not is_valid_schema_name(name):  # its backend would refuse the search path
        raise DoctorError(f"Schema {name!r} is no schema name django-pgschemas accepts.")
    previous = get_current_schema()
    activate(Schema.create(name))
    try:
        yield
    finally:
        activate(previous)


def tenant_command(command: str, schema: str, library: str = DJANGO_TENANTS) -> str:
    """A `migrate` command that names its schema: django-tenants' is migrate_schemas
    --schema S; django-pgschemas' is migrateschema, whose --schema takes every word after
    it, so it goes last (before a comment). django-pgschemas' own `migrate` would run on
    every schema. Other commands are left as they are."""
    plain = f"{MANAGE} migrate"
    if command != plain and not command.startswith(plain + " "):
        return command
    if library == DJANGO_TENANTS:
        return command.replace(plain, f"{MANAGE} migrate_schemas --schema {schema}", 1)
    args, sep, comment = command[len(plain) :].partition("  #")
    return f"{MANAGE} migrateschema{args} --schema {quote(schema)}{sep}{comment}"


def _tenant_commands(finding: Finding, schema: str, library: str = DJANGO_TENANTS) -> None:
    commands = tuple(tenant_command(c, schema, library) for c in finding.fix.commands)
    finding.fix = Fix(finding.fix.summary, commands)


def _single(setup: TenantSetup, vendor: str, name: str, finding: Finding) -> Report:
    return Report(setup.alias, vendor, [finding], 0, schema=name)


def without_schema(setup: TenantSetup, name: str) -> Finding:
    if name in setup.static:
        return Finding(
            "tenant-without-schema",
            None,
            None,
            f"Static tenant {name!r} of settings.TENANTS has no schema {name}: every request "
            "routed to it fails with: relation ... does not exist (the search path names a "
            "missing schema).",
            {"schema": name, "setting": f"TENANTS[{name!r}]"},
            Fix(
                "Create the schema and migrate it (migrateschema creates a missing one), or "
                "remove the tenant from settings.TENANTS.",
                (f"{MANAGE} migrateschema --schema {quote(name)}",),
            ),
        )
    if setup.library == PGSCHEMAS:
        fix = Fix(
            "Create the schema and migrate it (migrateschema creates a missing one), or delete "
            "the tenant's row.",
            (f"{MANAGE} migrateschema --schema {quote(name)}",),
        )
    else:
        fix = Fix(
            "Create the missing schemas (and migrate them), or delete the tenant's row.",
            (f"{MANAGE} create_missing_schemas",),
        )
    return Finding(
        "tenant-without-schema",
        None,
        None,
        f"Tenant {name!r} has a row in {setup.table} but schema {name} does not exist: every "
        f"request for it fails with: relation ... does not exist (the search path names a "
        "missing schema).",
        {"schema": name, "tenant_table": setup.table},
        fix,
    )


def without_tenant(setup: TenantSetup, name: str) -> Finding:
    if setup.library == DJANGO_TENANTS:
        nobody = f"no row of {setup.table}"
    elif setup.table:
        nobody = f"no row of {setup.table} (nor a key of settings.TENANTS)"
    else:
        nobody = "no key of settings.TENANTS"
    evidence = {"schema": name, "tenant_table": setup.table} if setup.table else {"schema": name}
    return Finding(
        "schema-without-tenant",
        None,
        None,
        f"Schema {name} has a django_migrations table (it was migrated as a tenant) but "
        f"{nobody} names it: a tenant deleted without its schema (the data stays), or a "
        "tenant's row lost.",
        evidence,
        Fix(
            f"If the tenant was deleted, back the schema up and drop it; if its row was lost, "
            f"create the tenant again with schema_name={name!r}."
        ),
    )


def _state(rows: list[RecordedRow], live: LiveSchema) -> tuple[object, ...]:
    """All a schema's classification reads of it, each parsed `applied` as its rank among the
    schema's own (only their order is compared): tenants migrated at other times to the same
    state have the same state. The tables' repr holds every field of every table."""
    rank = {t: i for i, t in enumerate(sorted({r.applied for r in rows if r.applied}))}
    recorded = tuple(
        (r.id, r.stored_app, r.stored_name, rank[r.applied] if r.applied else r.stored_applied)
        for r in rows
    )
    return recorded, repr(live.tables)


def diagnose_schemas(
    schemas: list[str] = (),  # type: ignore[assignment]
    app_labels: list[str] = (),  # type: ignore[assignment]
    *,
    models: bool = True,
    on_schema_done: Callable[[str, int], None] | None = None,
    **options: Any,
) -> tuple[Fleet, list[Report]]:
    """One Report per schema (`schemas`, or public and every tenant), plus one per schema
    without a tenant row and per tenant row without a schema. `on_schema_done(name, total)`
    after each of the `total` schemas is classified (a progress display)."""
    setup = detect()
    labels = check_app_labels(app_labels)
    fleet = read_fleet(setup, list(schemas))
    connection = connections[setup.alias]
    graphs: dict[frozenset[tuple[str, str]], GraphSnapshot] = {}
    expected: dict[tuple[tuple[str, ...], frozenset[tuple[str, str]]], ExpectedSchema] = {}
    reports: list[Report] = []
    changed: set[str] = set()
    # A healthy report that read nothing but the catalog and the rows stands for every schema
    # in the same state: a fleet of clones is classified once, not once per tenant.
    healthy: dict[tuple[object, ...], Report] = {}
    for name, live in fleet.live.items():
        rows = fleet.rows.get(name, [])
        recorded = frozenset(row.key for row in rows)
        if recorded not in graphs:
            graphs[recorded] = load_graph(set(recorded))
        graph = graphs[recorded]
        with on_schema(connection, name):
            key = (setup.app_set(name), frozenset(graph.graph.nodes))
            if key not in expected:
                expected[key] = compute(graph.graph, connection, graph.loader.unmigrated_apps)
            snapshot = Snapshot(
                setup.alias, connection.vendor, rows, graph, live, expected[key], queries=[]
            )
            first = not reports
            state = (key, _state(rows, live))
            same = healthy.get(state)
            if same is not None:
                report = replace(same, findings=[], pending=[], positions=[], snapshot=snapshot)
            else:
                report = report_of(
                    snapshot, labels, models=models and first, changed_apps=changed, **options
                )
                if not (report.findings or report.pending or report.positions or report.queries):
                    healthy[state] = report
            options.pop("import_watch", None)  # the project's import: reported once
        if first:
            changed = {f.app for f in report.findings if f.kind == "model-changes" and f.app}
        report.schema = name
        for finding in report.findings:
            _tenant_commands(finding, name, setup.library)
        reports.append(report)
        if on_schema_done is not None:
            on_schema_done(name, len(fleet.live))
    vendor = connection.vendor
    for name in schemas or fleet.tenants:
        if name in fleet.tenants and name not in fleet.schemas:
            reports.append(_single(setup, vendor, name, without_schema(setup, name)))
    public_like = {setup.public, *setup.extra}
    for name, holds in fleet.schemas.items():
        if (
            recorder_table() in holds
            and name not in public_like
            and name not in fleet.tenants
            and (not schemas or name in schemas)
        ):
            reports.append(_single(setup, vendor, name, without_tenant(setup, name)))
    return fleet, reports


def fleet_queries(fleet: Fleet, reports: list[Report]) -> int:
    """Statements of the whole fleet: its reads and every finding's evidence read."""
    return len(fleet.queries) + sum(r.queries for r in reports)
