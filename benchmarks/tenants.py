"""Benchmark: `migration_doctor --all-schemas` on a django-tenants fleet of 1,000 tenant schemas.

    python benchmarks/tenants.py                   # 1,000 tenants (built once, then cached)
    python benchmarks/tenants.py --tenants 50      # a quick check
    python benchmarks/tenants.py --profile         # cProfile and tracemalloc of one fleet run

The project (generated into benchmarks/.cache/tenants/): a shared app `customers` with the
tenant model and the domain model, and six tenant apps of nine models and four migrations
each (FKs within and across apps, indexes, unique constraints, an M2M and an AlterField), 60
tables per tenant schema plus django_migrations and django_content_type.

The database (PostgreSQL, `md_bt_<hash>`, the hash of the project's files and the number of
tenants) is built once: `migrate_schemas --shared`, one template tenant created the way
django-tenants does it (auto_create_schema migrates it), then cloned: its `pg_dump
--schema-only` with the schema name substituted, plus its django_migrations and
django_content_type rows (dated n hours later for tenant n), loaded by two psql processes, one
transaction per schema. The
tenant and domain rows are inserted in the public schema, then ANALYZE. A marker written
last (and the tenant, schema and row counts it records, checked again) lets later runs reuse
the database.

Three tenants are broken at the start of every run, on the cached database: each is dropped,
cloned again from the template and broken the same way, so a run leaves a database the next
run can reuse and a crashed run leaves nothing it does not redo. (a) the row of
crm.0004_tags deleted, its M2M table left (table-exists); (b) column hr_record.code, added by
the applied hr.0002_more, dropped by hand (partially-applied); (c) support.0004_tags rolled
back with `migrate_schemas --schema X support 0003` (unapplied).

Measured, each in a fresh child process (wall time, peak RSS from wait4's rusage), after one
warm-up: the whole fleet (`--all-schemas`), one healthy schema (`--schema`), alternately
--repeat times (medians); the SQL statements of the fleet's diagnosis, counted with
connection.execute_wrapper; for comparison what a user runs today, `tenant_command
showmigrations --schema X` for --sample tenants (one process per tenant, extrapolated to all)
and, with --all-tenants-command, `all_tenants_command showmigrations` (one process for all,
measured); and the fleet's peak RSS for 1/4, 1/2 and all of the tenants (`--schema` lists),
to show how it grows.

Targets (issue 17): the fleet within 3x one schema's wall time; at most 20 SQL statements (all
the doctor sends, not counting the `SET search_path` django-tenants sends for each cursor:
both are printed); the three broken tenants named with the right kinds and nothing else
reported; peak RSS under 1 GB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402

CACHE = HERE / ".cache" / "tenants"
PREFIX = "md_bt"
TIME_TARGET = 3.0
STATEMENT_TARGET = 20
MEMORY_TARGET_MB = 1024
BUILD = 2  # part of the database's name: a change to how it is built builds it anew
TEMPLATE = 1  # tenant_0001 is migrated by django-tenants, every other tenant is its clone
SEARCH_PATH = re.compile(r"^SET\s+search_path\b", re.IGNORECASE)

# -- the project ------------------------------------------------------------------------------

APPS = ["billing", "catalog", "crm", "hr", "inventory", "support"]
MODELS = ["Account", "Entry", "Batch", "Record", "Item", "Note", "Label", "Period", "Rule"]

SETTINGS = """\
import os

SECRET_KEY = "tenants-benchmark-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SHARED_APPS = ["django_tenants", "customers", "django.contrib.contenttypes", "migration_doctor"]
TENANT_APPS = ["django.contrib.contenttypes", {apps}]
INSTALLED_APPS = SHARED_APPS + [a for a in TENANT_APPS if a not in SHARED_APPS]
TENANT_MODEL = "customers.Client"
TENANT_DOMAIN_MODEL = "customers.Domain"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DATABASES = {{
    "default": {{
        "ENGINE": "django_tenants.postgresql_backend",
        "NAME": os.environ["MIGRATION_DOCTOR_DB_NAME"],
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
    }}
}}
"""

MANAGE = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenantbench.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

CUSTOMERS_MODELS = """\
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Client(TenantMixin):
    name = models.CharField(max_length=100)
    auto_create_schema = True


class Domain(DomainMixin):
    pass
"""

# The template tenant, created as django-tenants does it: saving it creates and migrates
# its schema.
CREATE_TEMPLATE = """\
import sys

import django

django.setup()
from customers.models import Client, Domain

client = Client.objects.create(schema_name=sys.argv[1], name=sys.argv[1])
Domain.objects.create(domain=f"{sys.argv[1]}.example.com", tenant=client, is_primary=True)
"""

COUNT = """\
import json

import django

django.setup()
from django.db import connection
from migration_doctor.tenants import diagnose_schemas, fleet_queries

seen = []


def spy(execute, sql, params, many, context):
    seen.append(sql)
    return execute(sql, params, many, context)


with connection.execute_wrapper(spy):
    fleet, reports = diagnose_schemas()
print(json.dumps({
    "statements": seen,
    "reported": fleet_queries(fleet, reports),
    "reports": len(reports),
}))
"""

PROFILE = """\
import cProfile
import linecache
import pstats
import sys
import time
import tracemalloc

import django

django.setup()
from migration_doctor.tenants import detect, diagnose_schemas, read_fleet

diagnose_schemas()  # warm-up
start = time.perf_counter()
read_fleet(detect(), [])
read = time.perf_counter() - start
start = time.perf_counter()
diagnose_schemas()
whole = time.perf_counter() - start
print(
    f"without the profiler: diagnose_schemas {whole:.2f} s, of which read_fleet {read:.2f} s "
    f"and the classification of each schema {whole - read:.2f} s"
)

profiler = cProfile.Profile()
start = time.perf_counter()
profiler.enable()
diagnose_schemas()
profiler.disable()
print(f"diagnose_schemas: {time.perf_counter() - start:.2f} s under cProfile")
stats = pstats.Stats(profiler, stream=sys.stdout)
stats.sort_stats("cumulative").print_stats(35)
stats.sort_stats("tottime").print_stats(20)

tracemalloc.start(8)
fleet, reports = diagnose_schemas()
current, peak = tracemalloc.get_traced_memory()
print(f"tracemalloc: {current / 2**20:.1f} MB held with the result, peak {peak / 2**20:.1f} MB")
for stat in tracemalloc.take_snapshot().statistics("lineno")[:15]:
    frame = stat.traceback[0]
    line = linecache.getline(frame.filename, frame.lineno).strip()
    if frame.filename == "<string>":  # not this script's lines: code dataclasses generate
        line = "(a dataclass's generated __init__)"
    print(f"{stat.size / 2**20:8.1f} MB {stat.count:9d}  {frame.filename}:{frame.lineno}  {line}")
"""


def _field(kind: str, app: str, model: str, to: str = "") -> str:
    """A field as Python source, the same in a migration and in models.py."""
    if kind == "name":
        return "models.CharField(max_length=100)"
    if kind == "name200":
        return "models.CharField(max_length=200)"
    if kind == "created":
        return "models.DateTimeField(null=True)"
    if kind == "amount":
        return "models.DecimalField(decimal_places=2, max_digits=10, null=True)"
    if kind == "code":
        return 'models.CharField(default="", max_length=20)'
    if kind == "active":
        return "models.BooleanField(default=True)"
    if kind == "fk":
        return (
            f'models.ForeignKey(null=True, on_delete=models.CASCADE, related_name="{app}_'
            f'{model.lower()}_set", to="{to}")'
        )
    if kind == "m2m":
        return f'models.ManyToManyField(blank=True, related_name="{app}_tagged", to="{to}")'
    raise ValueError(kind)


def _app_plan(i: int) -> tuple[list[str], dict[str, dict[str, str]], dict[str, list[str]]]:
    """The migrations (as source) of app i, the final fields of each model, and its Meta."""
    app = APPS[i]
    fields: dict[str, dict[str, str]] = {m: {} for m in MODELS}
    meta: dict[str, list[str]] = {m: [] for m in MODELS}
    head = "from django.db import migrations, models\n\n\n"

    def migration(deps: list[tuple[str, str]], ops: list[str], initial: bool = False) -> str:
        body = "class Migration(migrations.Migration):\n"
        if initial:
            body += "    initial = True\n"
        body += f"    dependencies = {deps!r}\n    operations = [\n"
        body += "".join(f"        {op},\n" for op in ops)
        return head + body + "    ]\n"

    ops = []
    for m in MODELS:
        fields[m] = {
            "name": _field("name", app, m),
            "created": _field("created", app, m),
            "amount": _field("amount", app, m),
        }
        columns = "".join(f"                ({f!r}, {c}),\n" for f, c in fields[m].items())
        ops.append(
            f"migrations.CreateModel(\n            name={m!r},\n            fields=[\n"
            '                ("id", models.BigAutoField(auto_created=True, primary_key=True, '
            'serialize=False, verbose_name="ID")),\n'
            f"{columns}            ],\n        )"
        )
    sources = [migration([], ops, initial=True)]

    deps = [(app, "0001_initial")]
    ops = []
    for k, m in enumerate(MODELS):
        fields[m]["code"] = _field("code", app, m)
        ops.append(f"migrations.AddField({m.lower()!r}, 'code', {fields[m]['code']})")
        if k:
            fields[m]["parent"] = _field("fk", app, m, f"{app}.{MODELS[k - 1].lower()}")
            ops.append(f"migrations.AddField({m.lower()!r}, 'parent', {fields[m]['parent']})")
    if i:
        upstream = f"{APPS[i - 1]}.account"
        deps.append((APPS[i - 1], "0001_initial"))
        fields["Account"]["upstream"] = _field("fk", app, "upstream", upstream)
        ops.append(f"migrations.AddField('account', 'upstream', {fields['Account']['upstream']})")
    sources.append(migration(deps, ops))

    ops = []
    for m in MODELS[:3]:
        index = f'models.Index(fields=["name", "created"], name="{app}_{m.lower()}_name_idx")'
        meta[m].append(f"indexes = [{index}]")
        ops.append(f"migrations.AddIndex({m.lower()!r}, {index})")
    for m in MODELS[3:6]:
        unique = f'models.UniqueConstraint(fields=["code"], name="{app}_{m.lower()}_code_uniq")'
        meta[m].append(f"constraints = [{unique}]")
        ops.append(f"migrations.AddConstraint({m.lower()!r}, {unique})")
    for m in MODELS[6:]:
        fields[m]["active"] = _field("active", app, m)
        ops.append(f"migrations.AddField({m.lower()!r}, 'active', {fields[m]['active']})")
    sources.append(migration([(app, "0002_more")], ops))

    fields["Account"]["tags"] = _field("m2m", app, "Account", f"{app}.label")
    fields["Entry"]["name"] = _field("name200", app, "Entry")
    ops = [
        f"migrations.AddField('account', 'tags', {fields['Account']['tags']})",
        f"migrations.AlterField('entry', 'name', {fields['Entry']['name']})",
    ]
    sources.append(migration([(app, "0003_indexes")], ops))
    return sources, fields, meta


MIGRATION_NAMES = ["0001_initial", "0002_more", "0003_indexes", "0004_tags"]


def render() -> dict[str, str]:
    """The project's files, all of which shape its database (customers' 0001 comes from
    makemigrations when it is built); the measuring scripts run with `python -c`."""
    files = {
        "manage.py": MANAGE,
        "tenantbench/__init__.py": "",
        "tenantbench/settings.py": SETTINGS.format(apps=", ".join(repr(a) for a in APPS)),
        "customers/__init__.py": "",
        "customers/models.py": CUSTOMERS_MODELS,
        "customers/migrations/__init__.py": "",
        "create_template.py": CREATE_TEMPLATE,
    }
    for i, app in enumerate(APPS):
        sources, fields, meta = _app_plan(i)
        files[f"{app}/__init__.py"] = ""
        files[f"{app}/migrations/__init__.py"] = ""
        for name, source in zip(MIGRATION_NAMES, sources, strict=True):
            files[f"{app}/migrations/{name}.py"] = source
        models = ["from django.db import models\n"]
        for m in MODELS:
            lines = [f"\n\nclass {m}(models.Model):"]
            lines += [f"    {f} = {code}" for f, code in fields[m].items()]
            if meta[m]:
                lines += ["", "    class Meta:"] + [f"        {line}" for line in meta[m]]
            models.append("\n".join(lines) + "\n")
        files[f"{app}/models.py"] = "".join(models)
    return files


def project() -> tuple[Path, str]:
    files = render()
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(rel.encode() + b"\0" + files[rel].encode() + b"\0")
    key = digest.hexdigest()[:12]
    dest = CACHE / f"project-{key}"
    if not (dest / "customers" / "migrations" / "0001_initial.py").exists():
        tmp = dest.with_name(dest.name + ".tmp")
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
        for rel, text in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        env = env_for(tmp, f"{PREFIX}_none")  # makemigrations needs no database
        manage(tmp, env, "makemigrations", "customers", "-v", "0")
        check = manage(tmp, env, "makemigrations", "--check", "--dry-run", check=False)
        if check.returncode:  # the hand-written migrations must match models.py exactly
            sys.exit(f"the generated project is not in sync:\n{check.stdout}{check.stderr}")
        subprocess.run(["rm", "-rf", str(dest)], check=True)
        tmp.rename(dest)
    return dest, key


def env_for(path: Path, db: str) -> dict[str, str]:
    env = bench.child_env("postgres", db)
    env["DJANGO_SETTINGS_MODULE"] = "tenantbench.settings"
    env.pop("PYTHONPATH", None)
    return env


def manage(
    path: Path, env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=path, env=env, capture_output=True, text=True
    )
    if check and done.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done


# -- the database -----------------------------------------------------------------------------


def tenant(n: int) -> str:
    return f"tenant_{n:04d}"


def sql(db: str, statement: str) -> list[tuple[object, ...]]:
    return bench._server("postgres", statement, db)


def server_args(db: str) -> list[str]:
    """psql's and pg_dump's connection options: the server the settings use."""
    cfg = bench.child_env("postgres", db)
    return ["-h", cfg.get("PGHOST", "127.0.0.1"), "-p", cfg.get("PGPORT", "5432"), "-U",
            cfg.get("PGUSER", "postgres"), "-d", db]  # fmt: skip


def psql(db: str, script: Path) -> None:
    """Run a script file with psql, stopping at its first error."""
    cmd = ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", *server_args(db), "-f", str(script)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"psql failed on {db}:\n{done.stderr[-3000:]}")


def template_sql(db: str, dump: Path) -> str:
    """The template tenant's schema as pg_dump writes it (cached beside the marker), with
    its name as the placeholder @SCHEMA@."""
    if not dump.exists():
        done = subprocess.run(
            ["pg_dump", "--schema-only", "--no-owner", "-n", tenant(TEMPLATE), *server_args(db)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        body = re.sub(rf"\b{tenant(TEMPLATE)}\b", "@SCHEMA@", done.stdout)
        dump.write_text(body)
    return dump.read_text()


def clone_script(template: str, names: list[str], dest: Path) -> None:
    """One transaction per schema: its tables, then the template's rows, written to `dest`
    a schema at a time (this process stays small: see main). Tenant n's rows are dated n
    hours after the template's, as if it had been migrated later."""
    source = tenant(TEMPLATE)
    with dest.open("w") as out:
        out.write("SET synchronous_commit = off;\n")
        for name in names:
            hours = int(name.rsplit("_", 1)[1]) - TEMPLATE
            out.write("BEGIN;\n")
            out.write(template.replace("@SCHEMA@", name))
            out.write(
                f"INSERT INTO {name}.django_migrations (app, name, applied) SELECT app, name, "
                f"applied + interval '{hours} hours' FROM {source}.django_migrations "
                "ORDER BY id;\n"
                f"INSERT INTO {name}.django_content_type (app_label, model) "
                f"SELECT app_label, model FROM {source}.django_content_type ORDER BY id;\n"
                "COMMIT;\n"
            )


def clone(db: str, template: str, names: list[str], workers: int = 2) -> None:
    """The schemas `names` cloned from the template by `workers` psql processes at once."""
    batches = [names[i::workers] for i in range(workers)]
    errors: list[BaseException] = []

    def load(batch: list[str], script: Path) -> None:
        try:
            clone_script(template, batch, script)
            psql(db, script)
        except BaseException as exc:  # sys.exit in a thread: re-raised below
            errors.append(exc)

    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}_") as tmp:
        threads = [
            threading.Thread(target=load, args=(b, Path(tmp) / f"clone{i}.sql"))
            for i, b in enumerate(batches)
            if b
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


def counts(db: str) -> dict[str, int] | None:
    """Tenant rows, tenant schemas and their django_migrations rows (None: no database)."""
    try:
        rows = sql(db, "SELECT COUNT(*) FROM public.customers_client")[0][0]
        schemas = sql(
            db,
            "SELECT COUNT(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON "
            "n.oid = c.relnamespace WHERE c.relname = 'django_migrations' "
            "AND n.nspname LIKE 'tenant\\_%'",
        )[0][0]
        applied = sql(db, f"SELECT COUNT(*) FROM {tenant(TEMPLATE)}.django_migrations")[0][0]
    except Exception:
        return None
    return {"tenants": int(rows), "schemas": int(schemas), "rows": int(applied)}  # type: ignore[call-overload]


def build(path: Path, key: str, tenants: int, fresh: bool) -> tuple[str, Path, float | None]:
    """The database of `tenants` migrated tenant schemas: reused when its marker and counts
    agree, built otherwise. Returns its name, the template's dump and the build time."""
    db = f"{PREFIX}_{hashlib.sha256(f'{key}-{tenants}-{BUILD}'.encode()).hexdigest()[:12]}"
    marker = CACHE / f"{db}.json"
    dump = CACHE / f"{db}.template.sql"
    if not fresh and marker.exists():
        saved = json.loads(marker.read_text())
        if saved.get("complete") and counts(db) == saved["counts"]:
            return db, dump, None
    marker.unlink(missing_ok=True)
    dump.unlink(missing_ok=True)
    sql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    sql("postgres", f'CREATE DATABASE "{db}"')
    env = env_for(path, db)
    start = time.perf_counter()
    print(f"  building {db}: {tenants} tenant schemas (once; cached afterwards)...", flush=True)
    manage(path, env, "migrate_schemas", "--shared", "-v", "0")
    done = subprocess.run(
        [sys.executable, "create_template.py", tenant(TEMPLATE)],
        cwd=path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        sys.exit(f"creating the template tenant failed:\n{done.stdout}{done.stderr}")
    migrated = time.perf_counter() - start
    template = template_sql(db, dump)
    names = [tenant(n) for n in range(1, tenants + 1) if n != TEMPLATE]
    clone(db, template, names)
    cloned = time.perf_counter() - start - migrated
    values = ", ".join(f"('{n}', '{n}')" for n in names)
    sql(db, f"INSERT INTO public.customers_client (schema_name, name) VALUES {values}")
    sql(
        db,
        "INSERT INTO public.customers_domain (domain, tenant_id, is_primary) "
        "SELECT schema_name || '.example.com', id, true FROM public.customers_client "
        f"WHERE schema_name <> '{tenant(TEMPLATE)}'",
    )
    sql(db, "ANALYZE")
    seconds = time.perf_counter() - start
    found = counts(db)
    if found is None or found["tenants"] != tenants or found["schemas"] != tenants:
        sys.exit(f"the build of {db} is incomplete: {found}")
    marker.write_text(json.dumps({"complete": True, "counts": found, "seconds": seconds}))
    print(
        f"  built in {seconds:.0f} s (shared schema and template tenant migrated in "
        f"{migrated:.1f} s, {len(names)} clones in {cloned:.0f} s)",
        flush=True,
    )
    return db, dump, seconds


# -- the three broken tenants -----------------------------------------------------------------


def victims(tenants: int) -> dict[str, str]:
    """The three broken tenants, one healthy one to diagnose alone, spread over the fleet."""
    picks = [tenants // 4 + 1, tenants // 2 + 1, (3 * tenants) // 4 + 1, tenants]
    return dict(zip(("a", "b", "c", "healthy"), (tenant(n) for n in picks), strict=True))


def expected_findings(v: dict[str, str]) -> set[tuple[str, str, str | None, str | None]]:
    return {
        (v["a"], "table-exists", "crm", "0004_tags"),
        (v["b"], "missing-schema", "hr", "0002_more"),
        (v["c"], "unapplied", "support", "0004_tags"),
    }


def break_tenants(path: Path, db: str, dump: Path, v: dict[str, str]) -> float:
    """Each of the three cloned afresh from the template, then broken: the same state every
    run, whatever the previous run left."""
    start = time.perf_counter()
    three = [v["a"], v["b"], v["c"]]
    for name in three:  # one transaction each: a schema's objects take a lock each
        sql(db, f"DROP SCHEMA IF EXISTS {name} CASCADE")
    clone(db, template_sql(db, dump), three, workers=1)
    # (a) the row of crm.0004_tags deleted, its M2M table and the AlterField left.
    sql(db, f"DELETE FROM {v['a']}.django_migrations WHERE app = 'crm' AND name = '0004_tags'")
    # (b) a column the applied hr.0002_more added, dropped by hand.
    sql(db, f"ALTER TABLE {v['b']}.hr_label DROP COLUMN code")
    # (c) support.0004_tags rolled back the way django-tenants does it.
    manage(path, env_for(path, db), "migrate_schemas", "--schema", v["c"], "support", "0003")
    return time.perf_counter() - start


# -- measurements -----------------------------------------------------------------------------


def findings_of(run: bench.Run) -> tuple[set[tuple[str, str, str | None, str | None]], dict]:
    document = json.loads(run.stdout)
    found = {
        (t["schema"], f["kind"], f["app"], f["migration"])
        for t in document["targets"]
        for f in t["findings"]
    }
    return found, document["summary"]


def checked(run: bench.Run, what: str) -> bench.Run:
    if run.returncode not in (0, 1):
        sys.exit(f"{what} failed ({run.returncode}):\n{run.stdout.decode(errors='replace')}")
    return run


def mb(kb: float) -> str:
    return f"{kb / 1024:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000, help="tenant schemas (1000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (3)")
    parser.add_argument(
        "--sample", type=int, default=5, help="tenants timed with tenant_command (5)"
    )
    parser.add_argument(
        "--all-tenants-command",
        action="store_true",
        help="also time all_tenants_command showmigrations over every tenant (about 1 s a "
        "tenant: 16 minutes at 1,000)",
    )
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached database")
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile and tracemalloc of one fleet run"
    )
    args = parser.parse_args()
    if args.tenants < 5 or args.repeat < 1 or args.sample < 1:
        print("error: --tenants must be at least 5, --repeat and --sample at least 1")
        sys.exit(2)
    CACHE.mkdir(parents=True, exist_ok=True)
    path, key = project()
    db, dump, built = build(path, key, args.tenants, args.fresh)
    env = env_for(path, db)
    v = victims(args.tenants)
    broke = break_tenants(path, db, dump, v)
    print(f"{db}: {args.tenants} tenants; {v['a']}, {v['b']}, {v['c']} broken in {broke:.1f} s")
    py = sys.executable
    if args.profile:
        print(bench.measure([py, "-c", PROFILE], path, env).stdout.decode(errors="replace"))
        return

    doctor = [py, "manage.py", "migration_doctor", "--format", "json", "--skip-import-watch"]
    fleet_cmd = [*doctor, "--all-schemas"]
    one_cmd = [*doctor, "--schema", v["healthy"]]
    for cmd in (fleet_cmd, one_cmd):  # warm-up: .pyc files and the server's caches
        checked(bench.measure(cmd, path, env), " ".join(cmd[2:]))
    fleet: list[bench.Run] = []
    one: list[bench.Run] = []
    for i in range(args.repeat):
        pair = [(fleet, fleet_cmd), (one, one_cmd)]
        for runs, cmd in pair[i % 2 :] + pair[: i % 2]:
            runs.append(checked(bench.measure(cmd, path, env), " ".join(cmd[2:])))
    found, summary = findings_of(fleet[-1])
    single, _ = findings_of(one[-1])

    count_run = bench.measure([py, "-c", COUNT], path, env)
    if count_run.returncode:
        sys.exit(f"statement count failed:\n{count_run.stdout.decode(errors='replace')}")
    count = json.loads(count_run.stdout.decode().strip().splitlines()[-1])
    statements: list[str] = count["statements"]
    doctors = [s for s in statements if not SEARCH_PATH.match(s)]

    show = [py, "manage.py", "tenant_command", "showmigrations"]
    sample = [tenant(n) for n in range(2, 2 + args.sample)]
    checked(bench.measure([*show, f"--schema={sample[0]}"], path, env), "tenant_command")
    per_tenant = [
        checked(bench.measure([*show, f"--schema={s}"], path, env), "tenant_command")
        for s in sample
    ]
    loop = None
    if args.all_tenants_command:
        all_cmd = [py, "manage.py", "all_tenants_command", "showmigrations"]
        loop = checked(bench.measure(all_cmd, path, env), "all_tenants_command")

    growth = []
    names = [tenant(n) for n in range(1, args.tenants + 1)]
    for part in (args.tenants // 4, args.tenants // 2, args.tenants):
        listed = [a for n in ["public", *names[:part]] for a in ("--schema", n)]
        growth.append((part, checked(bench.measure([*doctor, *listed], path, env), "--schema")))

    med = statistics.median
    fleet_s, one_s = med(r.seconds for r in fleet), med(r.seconds for r in one)
    fleet_kb, one_kb = med(r.max_rss_kb for r in fleet), med(r.max_rss_kb for r in one)
    show_s = med(r.seconds for r in per_tenant)
    show_kb = med(r.max_rss_kb for r in per_tenant)
    fleet_cpu, one_cpu = med(r.cpu for r in fleet), med(r.cpu for r in one)
    show_cpu = med(r.cpu for r in per_tenant)
    peak_kb = max(r.max_rss_kb for r in fleet)
    lines = [
        f"{args.tenants} tenant schemas + public, 62 tables per tenant schema; median of "
        f"{args.repeat} runs (after a warm-up), each a fresh process; CPU: user + system time "
        "of the process (the server's work is not in it); peak RSS from wait4.",
        "",
        "| what | command | wall | CPU | peak RSS |",
        "|---|---|---|---|---|",
        f"| whole fleet | `migration_doctor --all-schemas` | {fleet_s:.2f} s | {fleet_cpu:.2f} s "
        f"| {mb(fleet_kb)} |",
        f"| one schema | `migration_doctor --schema {v['healthy']}` | {one_s:.2f} s | "
        f"{one_cpu:.2f} s | {mb(one_kb)} |",
        f"| one tenant | `tenant_command showmigrations --schema=X` (median of "
        f"{len(sample)}) | {show_s:.2f} s | {show_cpu:.2f} s | {mb(show_kb)} |",
        f"| every tenant, one process each | the above x {args.tenants} (extrapolated) | "
        f"{show_s * args.tenants:.0f} s | {show_cpu * args.tenants:.0f} s | |",
    ]
    if loop is not None:
        lines.append(
            f"| every tenant, one process | `all_tenants_command showmigrations` (measured) | "
            f"{loop.seconds:.1f} s | {loop.cpu:.1f} s | {mb(loop.max_rss_kb)} |"
        )
    lines += [
        "",
        "| schemas diagnosed (`--schema` list) | wall | peak RSS | RSS per extra 100 tenants |",
        "|---|---|---|---|",
    ]
    previous: tuple[int, bench.Run] | None = None
    for part, r in growth:
        slope = ""
        if previous is not None:
            per = (r.max_rss_kb - previous[1].max_rss_kb) / (part - previous[0]) * 100
            slope = f"{per / 1024:.1f} MB"
        lines.append(f"| public + {part} | {r.seconds:.2f} s | {mb(r.max_rss_kb)} | {slope} |")
        previous = (part, r)
    sets = len(statements) - len(doctors)
    lines += [
        "",
        f"SQL statements of the fleet's diagnosis (execute_wrapper): {len(statements)} in all, "
        f"{sets} of them django-tenants' `SET search_path`, {len(doctors)} others; the "
        f"command reports {summary['statements']}.",
    ]
    lines += [f"    {' '.join(s.split())[:100]}" for s in doctors]
    if built is not None:
        lines.append(f"Database built in {built:.0f} s.")
    else:
        saved = json.loads((CACHE / f"{db}.json").read_text())
        lines.append(f"Database reused from the cache (built in {saved['seconds']:.0f} s).")
    # subprocess starts children with vfork: a child's wait4 peak is at least this process's.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lines.append(f"This process's own peak RSS: {mb(own)} (a floor under the figures above).")

    want = expected_findings(v)
    ratio = fleet_s / one_s
    results = [
        (
            ratio <= TIME_TARGET,
            f"fleet wall time {ratio:.2f}x one schema's <= {TIME_TARGET}x (CPU "
            f"{fleet_cpu / one_cpu:.2f}x)",
        ),
        (
            len(doctors) <= STATEMENT_TARGET,
            f"{len(doctors)} SQL statements <= {STATEMENT_TARGET} (not counting {sets} "
            f"`SET search_path`; {len(statements)} with them)",
        ),
        (
            found == want and fleet[-1].returncode == 1,
            f"findings: exactly the three broken tenants with their kinds "
            f"({', '.join(f'{s} {k}' for s, k, _, _ in sorted(want))}), exit status 1",
        ),
        (not single, f"one healthy schema ({v['healthy']}): no finding"),
        (
            peak_kb / 1024 < MEMORY_TARGET_MB,
            f"peak RSS {mb(peak_kb)} < {MEMORY_TARGET_MB} MB at {args.tenants} tenants",
        ),
    ]
    print()
    print("\n".join(lines))
    print()
    for ok, text in results:
        print(f"{bench.verdict(ok)} {text}")
    if found != want:
        print(f"  unexpected: {sorted(found - want)}; missing: {sorted(want - found)}")
    sys.exit(0 if all(ok for ok, _ in results) else 1)


if __name__ == "__main__":
    main()
