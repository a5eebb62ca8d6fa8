"""`migration_doctor --all-schemas` on a real django-tenants project (PostgreSQL).

A throwaway project on disk (shared app `customers` with the tenant model, tenant app
`shop`), tenants created the way django-tenants does (auto_create_schema migrates each), then
broken by hand: a row deleted where the column stays (table-exists), a migration rolled back
(unapplied), a tenant row deleted with its schema left (schema-without-tenant), a schema
dropped with its row left (tenant-without-schema). The command runs as manage.py would.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from .conftest import BACKEND, _server_config, scratch_database
from .projects import initial_migration, manage_py

try:
    import django_tenants  # noqa: F401

    HAVE_TENANTS = True
except ImportError:
    HAVE_TENANTS = False

needs_tenants = pytest.mark.skipif(
    BACKEND != "postgres" or not HAVE_TENANTS,
    reason="schema-per-tenant needs PostgreSQL (MIGRATION_DOCTOR_DB=postgres)"
    if BACKEND != "postgres"
    else "django-tenants is not installed",
)

SETTINGS = """\
SECRET_KEY = "tenants-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SHARED_APPS = ["django_tenants", "customers", "django.contrib.contenttypes", "migration_doctor"]
TENANT_APPS = ["django.contrib.contenttypes", "shop"]
INSTALLED_APPS = SHARED_APPS + [a for a in TENANT_APPS if a not in SHARED_APPS]
TENANT_MODEL = "customers.Client"
TENANT_DOMAIN_MODEL = "customers.Domain"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DATABASES = {{"default": {db!r}}}
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

SHOP_MODELS = """\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=50)
    note = models.TextField(default="")
"""

SHOP_0001 = initial_migration("Item")

SHOP_0002 = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.AddField("item", "note", models.TextField(default="")),
    ]
"""

TENANTS = """\
import sys

import django
django.setup()
from customers.models import Client

for name in sys.argv[1:]:
    Client.objects.create(schema_name=name, name=name)
"""

# Statements the fleet's diagnosis sends, as execute_wrapper sees them.
COUNT = """\
import django
django.setup()
from django.db import connection
from migration_doctor.tenants import diagnose_schemas

seen = []
def spy(execute, sql, params, many, context):
    seen.append(sql)
    return execute(sql, params, many, context)

with connection.execute_wrapper(spy):
    fleet, reports = diagnose_schemas()
reads = [s for s in seen if not s.startswith("SET ")]  # SET: django-tenants, per cursor
print(len(seen), len(reads), len(reports), sum(bool(r.findings) for r in reports))
"""


class TenantProject:
    settings_module = "tenantsite.settings"

    engine = "django_tenants.postgresql_backend"

    def __init__(self, root: Path, cfg: dict[str, object]) -> None:
        self.root = root
        self.cfg = {**cfg, "ENGINE": self.engine}
        for rel, text in self.files(self.cfg).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))

    def files(self, cfg: dict[str, object]) -> dict[str, str]:
        return {
            "manage.py": manage_py("tenantsite.settings"),
            "tenantsite/__init__.py": "",
            "tenantsite/settings.py": SETTINGS.format(db=cfg),
            "customers/__init__.py": "",
            "customers/models.py": CUSTOMERS_MODELS,
            "customers/migrations/__init__.py": "",
            "shop/__init__.py": "",
            "shop/models.py": SHOP_MODELS,
            "shop/migrations/__init__.py": "",
            "shop/migrations/0001_initial.py": SHOP_0001,
            "shop/migrations/0002_item_note.py": SHOP_0002,
            "tenants.py": TENANTS,
            "count.py": COUNT,
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": self.settings_module}
        env.pop("PYTHONPATH", None)
        done = subprocess.run(
            [sys.executable, *args], cwd=self.root, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def roll_back(self, schema: str, app: str, target: str) -> None:
        self.manage("migrate_schemas", "--schema", schema, app, target, "-v", "0")

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("manage.py", *args, check=check)

    def sql(self, statement: str) -> None:
        self.manage("dbshell", "--", "-c", statement)

    def doctor(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.manage("migration_doctor", "--skip-import-watch", *args, check=False)


@pytest.fixture
def project(tmp_path: Path) -> TenantProject:
    with scratch_database(tmp_path, prefix="md_hb") as name:
        project = TenantProject(tmp_path / "site", _server_config(name))
        project.manage("makemigrations", "customers", "-v", "0")
        project.manage("migrate_schemas", "--shared", "-v", "0")
        yield project


HEALTHY = ["t1", "t2", "t3"]


def break_fleet(project: TenantProject) -> TenantProject:
    project.run("tenants.py", *HEALTHY, "acme", "globex", "ghost", "lost")
    # acme: the row of shop.0002 deleted, its column still there.
    project.sql(
        "DELETE FROM acme.django_migrations WHERE app = 'shop' AND name = '0002_item_note'"
    )
    # globex: shop.0002 rolled back the way the library does it.
    project.roll_back("globex", "shop", "0001")
    project.sql("DELETE FROM public.customers_client WHERE schema_name = 'ghost'")
    project.sql("DROP SCHEMA lost CASCADE")
    return project


@pytest.fixture
def broken(project: TenantProject) -> TenantProject:
    return break_fleet(project)


@needs_tenants
def test_all_schemas_finds_each_broken_tenant(broken: TenantProject) -> None:
    run = broken.doctor("--all-schemas", "--format", "json")
    assert run.returncode == 1, run.stdout + run.stderr
    document = json.loads(run.stdout)
    found = {
        (t["schema"], f["kind"], f["app"], f["migration"])
        for t in document["targets"]
        for f in t["findings"]
    }
    assert found == {
        ("acme", "table-exists", "shop", "0002_item_note"),
        ("globex", "unapplied", "shop", "0002_item_note"),
        ("ghost", "schema-without-tenant", None, None),
        ("lost", "tenant-without-schema", None, None),
    }
    summary = document["summary"]
    schemas = {t["schema"] for t in document["targets"]}
    assert schemas == {"public", *HEALTHY, "acme", "globex", "ghost", "lost"}
    assert summary["targets"] == 8
    assert summary["healthy"] == 4  # public, t1, t2, t3
    assert (summary["errors"], summary["warnings"], summary["infos"]) == (2, 1, 1)
    assert sorted(summary["failed"]) == ["acme", "lost"]
    acme = next(t for t in document["targets"] if t["schema"] == "acme")
    fix = acme["findings"][0]["fix"]["commands"]
    assert fix == ["python manage.py migrate_schemas --schema acme shop 0002_item_note --fake"]


@needs_tenants
def test_text_groups_the_same_finding_and_counts_healthy_schemas(project: TenantProject) -> None:
    project.run("tenants.py", "t1", "acme", "globex", "initech", "umbrella")
    for name in ("acme", "globex", "initech"):
        project.sql(
            f"DELETE FROM {name}.django_migrations WHERE app = 'shop' AND name = '0002_item_note'"
        )
    run = project.doctor("--all-schemas")
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("migration_doctor: database 'default', 6 schemas (django-tenants)")
    assert "3 schemas healthy: rows, files and schema agree." in lines
    assert "3 tenants: E001 table-exists  shop.0002_item_note — acme, globex, initech" in lines
    assert run.stdout.count("table-exists") == 1  # once for the three
    assert "umbrella" not in run.stdout and "t1" not in run.stdout  # healthy: counted only
    one = project.doctor("--schema", "globex", "--schema", "t1")
    assert one.returncode == 1, one.stdout + one.stderr
    assert "1 tenant: E001 table-exists  shop.0002_item_note — globex" in one.stdout
    assert "1 schema healthy" in one.stdout
    unknown = project.doctor("--schema", "nowhere")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "CommandError: No schema or tenant named 'nowhere'."


@needs_tenants
def test_statements_do_not_grow_with_the_tenants(project: TenantProject) -> None:
    project.run("tenants.py", "a1", "a2", "a3")
    three = project.run("count.py").stdout.split()
    project.run("tenants.py", "b1", "b2", "b3", "b4", "b5")
    eight = project.run("count.py").stdout.split()
    assert three[1:] == ["6", "4", "0"]  # public + 3 tenants, all healthy, in six reads
    assert eight[1:] == ["6", "9", "0"]
    assert three[0] == eight[0]  # the SETs of the search path and transaction too


@pytest.mark.django_db
@pytest.mark.parametrize("option", [["--all-schemas"], ["--schema", "public"]])
def test_refused_without_a_tenant_setup(option: list[str]) -> None:
    """SQLite, MariaDB and plain PostgreSQL projects: one line, exit status 2."""
    with pytest.raises(CommandError) as refused:
        call_command("migration_doctor", *option, stdout=io.StringIO())
    assert refused.value.returncode == 2
    assert str(refused.value) == (
        "--all-schemas and --schema need a schema-per-tenant PostgreSQL setup "
        "(django-tenants or django-pgschemas): the settings have no TENANT_MODEL, SHARED_APPS, "
        "TENANT_APPS (django-tenants) and no TENANTS (django-pgschemas)."
    )


@pytest.mark.django_db
def test_all_schemas_excludes_the_other_modes() -> None:
    with pytest.raises(CommandError, match="not allowed with argument") as refused:
        call_command("migration_doctor", "--all-schemas", "--all-databases")
    assert refused.value.returncode == 2
