"""Schema-per-tenant PostgreSQL (django-tenants): the public schema and every tenant schema
diagnosed, each against the apps that belong there, in a fixed number of statements.

The fleet is read in six statements whatever the number of tenants (the schemas, the tenant
rows, the three catalog queries for every schema at once, every django_migrations in one
UNION ALL); the migration files are loaded once per distinct set of recorded rows (once,
on a healthy fleet) and the expected schema computed once per app set (shared apps for the
public schema, tenant apps for the tenants). Each schema is then classified by the same
functions as a single database (diagnose.report_of).

django-pgschemas (settings.TENANTS) and django-tenants' multi-type tenants
(HAS_MULTI_TYPE_TENANTS) are detected and refused in one line: not supported yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
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

NEEDS = "--all-schemas and --schema need a schema-per-tenant PostgreSQL setup (django-tenants)"


@dataclass(frozen=True)
class TenantSetup:
    alias: str
    public: str
    tenant_model: str  # "customers.Client"
    table: str  # the tenant model's table, in the public schema
    column: str  # its schema_name column
    extra: tuple[str, ...]  # PG_EXTRA_SEARCH_PATHS: shared schemas, not tenants


def detect() -> TenantSetup:
    """The django-tenants setup the settings describe, or one DoctorError saying why not."""
    if hasattr(settings, "TENANTS") and not hasattr(settings, "TENANT_MODEL"):
        raise DoctorError(f"{NEEDS}: django-pgschemas (settings.TENANTS) is not supported yet.")
    names = ("TENANT_MODEL", "SHARED_APPS", "TENANT_APPS")
    missing = [n for n in names if not hasattr(settings, n)]
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
    return TenantSetup(
        alias=alias,
        public=getattr(settings, "PUBLIC_SCHEMA_NAME", "public"),
        tenant_model=label,
        table=model._meta.db_table,
        column=model._meta.get_field("schema_name").column,
        extra=tuple(getattr(settings, "PG_EXTRA_SEARCH_PATHS", ())),
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
    tenants: list[str]  # schema names the tenant table holds
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
            tenants: list[str] = []
            if setup.table in schemas.get(setup.public, ()):
                qn = connection.ops.quote_name
                cursor.execute(
                    f"SELECT {qn(setup.column)} FROM {pg_schema_name(setup.public)}."
                    f"{qn(setup.table)} ORDER BY 1"
                )
                tenants = [str(name) for (name,) in cursor.fetchall()]
        for name in wanted:
            if name != setup.public and name not in tenants and name not in schemas:
                raise DoctorError(f"No schema or tenant named {name!r}.")
        targets = [n for n in (wanted or [setup.public, *tenants]) if n in schemas]
        live = read_postgresql_schemas(connection, targets)
        migrated = [n for n in targets if table in schemas[n]]
        rows = read_rows_of_schemas(connection, migrated)
    return Fleet(setup, tenants, schemas, live, rows, queries)


@contextmanager
def on_schema(connection: Any, name: str) -> Iterator[None]:
    """django-tenants' connection on `name` (its router and search path follow it)."""
    previous = connection.tenant
    connection.set_schema(name)
    try:
        yield
    finally:
        connection.set_tenant(previous)


def _tenant_commands(finding: Finding, schema: str) -> None:
    """django-tenants' `migrate` is migrate_schemas: each fix names its schema."""
    plain = f"{MANAGE} migrate"
    commands = tuple(
        c.replace(plain, f"{MANAGE} migrate_schemas --schema {schema}", 1)
        if c == plain or c.startswith(plain + " ")
        else c
        for c in finding.fix.commands
    )
    finding.fix = Fix(finding.fix.summary, commands)


def _single(setup: TenantSetup, vendor: str, name: str, finding: Finding) -> Report:
    return Report(setup.alias, vendor, [finding], 0, schema=name)


def without_schema(setup: TenantSetup, name: str) -> Finding:
    return Finding(
        "tenant-without-schema",
        None,
        None,
        f"Tenant {name!r} has a row in {setup.table} but schema {name} does not exist: every "
        f"request for it fails with: relation ... does not exist (the search path names a "
        "missing schema).",
        {"schema": name, "tenant_table": setup.table},
        Fix(
            "Create the missing schemas (and migrate them), or delete the tenant's row.",
            (f"{MANAGE} create_missing_schemas",),
        ),
    )


def without_tenant(setup: TenantSetup, name: str) -> Finding:
    return Finding(
        "schema-without-tenant",
        None,
        None,
        f"Schema {name} has a django_migrations table (it was migrated as a tenant) but no "
        f"row of {setup.table} names it: a tenant deleted without its schema (the data "
        "stays), or a tenant's row lost.",
        {"schema": name, "tenant_table": setup.table},
        Fix(
            f"If the tenant was deleted, back the schema up and drop it; if its row was lost, "
            f"create the tenant again with schema_name={name!r}."
        ),
    )


def diagnose_schemas(
    schemas: list[str] = (),  # type: ignore[assignment]
    app_labels: list[str] = (),  # type: ignore[assignment]
    *,
    models: bool = True,
    **options: Any,
) -> tuple[Fleet, list[Report]]:
    """One Report per schema (`schemas`, or public and every tenant), plus one per schema
    without a tenant row and per tenant row without a schema."""
    setup = detect()
    labels = check_app_labels(app_labels)
    fleet = read_fleet(setup, list(schemas))
    connection = connections[setup.alias]
    graphs: dict[frozenset[tuple[str, str]], GraphSnapshot] = {}
    expected: dict[tuple[bool, frozenset[tuple[str, str]]], ExpectedSchema] = {}
    reports: list[Report] = []
    changed: set[str] = set()
    for name, live in fleet.live.items():
        rows = fleet.rows.get(name, [])
        recorded = frozenset(row.key for row in rows)
        if recorded not in graphs:
            graphs[recorded] = load_graph(set(recorded))
        graph = graphs[recorded]
        with on_schema(connection, name):
            key = (name == setup.public, frozenset(graph.graph.nodes))
            if key not in expected:
                expected[key] = compute(graph.graph, connection, graph.loader.unmigrated_apps)
            snapshot = Snapshot(
                setup.alias, connection.vendor, rows, graph, live, expected[key], queries=[]
            )
            first = not reports
            report = report_of(
                snapshot, labels, models=models and first, changed_apps=changed, **options
            )
            options.pop("import_watch", None)  # the project's import: reported once
        if first:
            changed = {f.app for f in report.findings if f.kind == "model-changes" and f.app}
        report.schema = name
        for finding in report.findings:
            _tenant_commands(finding, name)
        reports.append(report)
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
