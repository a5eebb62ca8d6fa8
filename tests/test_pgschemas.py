"""`migration_doctor --all-schemas` on a real django-pgschemas project (PostgreSQL).

A throwaway project on disk in the shape django-pgschemas documents: settings.TENANTS with
"public" (the tenant model's app `customers`), a static tenant `www` with its own apps (`shop`
and `blog`) and "default" (dynamic tenants, app `shop`). Tenants are created the way
django-pgschemas does (auto_create_schema migrates each), then broken by hand as in
tests/test_tenants.py. The command runs as manage.py would; the fixes it prints are run too.
"""

from __future__ import annotations

import importlib.util
import io
import json
import shlex
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from .conftest import BACKEND, _server_config, scratch_database
from .projects import initial_migration, manage_py
from .test_tenants import (
    COUNT,
    HEALTHY,
    SHOP_0001,
    SHOP_0002,
    SHOP_MODELS,
    TenantProject,
    break_fleet,
)

# Looked up, not imported: importing django_pgschemas connects a pre_delete receiver that
# reads settings.TENANTS on every delete of this test process.
HAVE_PGSCHEMAS = importlib.util.find_spec("django_pgschemas") is not None

NOT_INSTALLED = (
    "django-pgschemas is not installed (pip install django-pgschemas: 1.3 needs Python 3.12; "
    "on Python 3.11 pip picks 1.1.1, which needs Django < 6.0)"
)
needs_pgschemas = pytest.mark.skipif(
    BACKEND != "postgres" or not HAVE_PGSCHEMAS,
    reason="schema-per-tenant needs PostgreSQL (MIGRATION_DOCTOR_DB=postgres)"
    if BACKEND != "postgres"
    else NOT_INSTALLED,
)

SETTINGS = """\
SECRET_KEY = "pgschemas-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# django-pgschemas' checks import the session model of the db engine: no sessions app here.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
TENANTS = {{
    "public": {{
        "APPS": ["django_pgschemas", "customers", "django.contrib.contenttypes",
                 "migration_doctor"],
    }},
    "www": {{"APPS": ["shop", "blog"], "DOMAINS": ["www.example.com"]}},
    "default": {{
        "TENANT_MODEL": "customers.Client",
        "DOMAIN_MODEL": "customers.Domain",
        "APPS": ["shop"],
        "URLCONF": "pgsite.urls",
    }},
}}
INSTALLED_APPS = ["django_pgschemas", "customers", "django.contrib.contenttypes",
                  "migration_doctor", "shop", "blog"]
DATABASE_ROUTERS = ["django_pgschemas.routers.TenantAppsRouter"]
DATABASES = {{"default": {db!r}}}
"""

CUSTOMERS_MODELS = """\
from django.db import models
from django_pgschemas.models import TenantModel
from django_pgschemas.routing.models import DomainModel


class Client(TenantModel):
    name = models.CharField(max_length=100)


class Domain(DomainModel):
    pass
"""

BLOG_MODELS = """\
from django.db import models


class Post(models.Model):
    name = models.CharField(max_length=50)
"""

TENANTS = """\
import sys

import django
django.setup()
from customers.models import Client

for name in sys.argv[1:]:
    Client.objects.create(schema_name=name, name=name)
"""


class PgSchemasProject(TenantProject):
    """tests/test_tenants.py's project helpers (run, manage, sql, doctor) on other files."""

    settings_module = "pgsite.settings"

    engine = "django_pgschemas.postgresql"

    def files(self, cfg: dict[str, object]) -> dict[str, str]:
        return {
            "manage.py": manage_py("pgsite.settings"),
            "pgsite/__init__.py": "",
            "pgsite/settings.py": SETTINGS.format(db=cfg),
            "pgsite/urls.py": "urlpatterns = []\n",
            "customers/__init__.py": "",
            "customers/models.py": CUSTOMERS_MODELS,
            "customers/migrations/__init__.py": "",
            "shop/__init__.py": "",
            "shop/models.py": SHOP_MODELS,
            "shop/migrations/__init__.py": "",
            "shop/migrations/0001_initial.py": SHOP_0001,
            "shop/migrations/0002_item_note.py": SHOP_0002,
            "blog/__init__.py": "",
            "blog/models.py": BLOG_MODELS,
            "blog/migrations/__init__.py": "",
            "blog/migrations/0001_initial.py": initial_migration("Post"),
            "tenants.py": TENANTS,
            "count.py": COUNT,
        }

    def roll_back(self, schema: str, app: str, target: str) -> None:
        self.manage("migrateschema", app, target, "--schema", schema, "-v", "0")

    def fix(self, command: str) -> None:
        """Run a fix command as printed ("python manage.py ...")."""
        words = shlex.split(command, comments=True)
        assert words[:2] == ["python", "manage.py"], command
        self.manage(*words[2:], "-v", "0")


@pytest.fixture
def project(tmp_path: Path) -> PgSchemasProject:
    with scratch_database(tmp_path, prefix="md_pgs") as name:
        project = PgSchemasProject(tmp_path / "site", _server_config(name))
        project.manage("makemigrations", "customers", "-v", "0")
        project.manage("migrate", "-v", "0")  # django-pgschemas' migrate: public and www
        yield project


@pytest.fixture
def broken(project: PgSchemasProject) -> PgSchemasProject:
    return break_fleet(project)


def findings_of(document: dict) -> set[tuple[str, str, str | None, str | None]]:
    return {
        (t["schema"], f["kind"], f["app"], f["migration"])
        for t in document["targets"]
        for f in t["findings"]
    }


def fix_of(document: dict, schema: str) -> list[str]:
    (target,) = (t for t in document["targets"] if t["schema"] == schema)
    (finding,) = target["findings"]
    return finding["fix"]["commands"]


@needs_pgschemas
def test_all_schemas_finds_each_broken_tenant(broken: PgSchemasProject) -> None:
    run = broken.doctor("--all-schemas", "--format", "json")
    assert run.returncode == 1, run.stdout + run.stderr
    document = json.loads(run.stdout)
    assert findings_of(document) == {
        ("acme", "table-exists", "shop", "0002_item_note"),
        ("globex", "unapplied", "shop", "0002_item_note"),
        ("ghost", "schema-without-tenant", None, None),
        ("lost", "tenant-without-schema", None, None),
    }
    schemas = [t["schema"] for t in document["targets"]]
    assert set(schemas) == {"public", "www", *HEALTHY, "acme", "globex", "ghost", "lost"}
    assert len(schemas) == 9
    summary = document["summary"]
    assert summary["healthy"] == 5  # public, the static tenant www, t1, t2, t3
    assert (summary["errors"], summary["warnings"], summary["infos"]) == (2, 1, 1)
    assert sorted(summary["failed"]) == ["acme", "lost"]
    # Each fix names its schema with migrateschema (whose --schema takes every word after it).
    assert fix_of(document, "acme") == [
        "python manage.py migrateschema shop 0002_item_note --fake --schema acme"
    ]
    assert fix_of(document, "globex") == [
        "python manage.py migrateschema shop 0002_item_note --schema globex"
    ]
    assert fix_of(document, "lost") == ["python manage.py migrateschema --schema lost"]
    for schema in ("acme", "globex", "lost"):
        for command in fix_of(document, schema):
            broken.fix(command)
    again = broken.doctor("--schema", "acme", "--schema", "globex", "--schema", "lost")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 schemas healthy: rows, files and schema agree." in again.stdout


@needs_pgschemas
def test_text_names_the_library_and_a_static_tenant_without_schema(
    project: PgSchemasProject,
) -> None:
    project.run("tenants.py", "t1", "acme", "globex", "initech")
    for name in ("acme", "globex", "initech"):
        project.sql(
            f"DELETE FROM {name}.django_migrations WHERE app = 'shop' AND name = '0002_item_note'"
        )
    project.sql("DROP SCHEMA www CASCADE")
    run = project.doctor("--all-schemas")
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(
        "migration_doctor: database 'default', 6 schemas (django-pgschemas): 4 errors"
    )
    assert "2 schemas healthy: rows, files and schema agree." in lines  # public, t1
    assert "3 tenants: E001 table-exists  shop.0002_item_note — acme, globex, initech" in lines
    assert "1 tenant: E014 tenant-without-schema — www" in lines
    assert "Static tenant 'www' of settings.TENANTS has no schema www" in run.stdout
    assert "      $ python manage.py migrateschema --schema www" in lines
    assert "schema-without-tenant" not in run.stdout
    project.fix("python manage.py migrateschema --schema www")
    one = project.doctor("--schema", "www", "--schema", "t1")
    assert one.returncode == 0, one.stdout + one.stderr
    assert "2 schemas healthy" in one.stdout


@needs_pgschemas
def test_statements_do_not_grow_with_the_tenants(project: PgSchemasProject) -> None:
    project.run("tenants.py", "a1", "a2", "a3")
    three = project.run("count.py").stdout.split()
    project.run("tenants.py", "b1", "b2", "b3", "b4", "b5")
    eight = project.run("count.py").stdout.split()
    assert three[1:] == ["6", "5", "0"]  # public, www and 3 tenants, all healthy, in six reads
    assert eight[1:] == ["6", "10", "0"]
    assert three[0] == eight[0]


@pytest.mark.skipif(not HAVE_PGSCHEMAS, reason=NOT_INSTALLED)
@pytest.mark.django_db
def test_refused_when_the_database_is_not_django_pgschemas() -> None:
    """settings.TENANTS on a plain database (any backend): one line, exit status 2."""
    engine = _server_config("x")["ENGINE"]
    with (
        override_settings(TENANTS={"public": {"APPS": []}}),
        pytest.raises(CommandError) as refused,
    ):
        call_command("migration_doctor", "--all-schemas", stdout=io.StringIO())
    assert refused.value.returncode == 2
    assert str(refused.value) == (
        "--all-schemas and --schema need a schema-per-tenant PostgreSQL setup "
        f"(django-tenants or django-pgschemas): DATABASES['default']['ENGINE'] is {engine}, "
        "not django_pgschemas.postgresql."
    )


ORM = """\
import sys

import django
django.setup()
from django_pgschemas import Schema, activate
from shop.models import Item

for name in sys.argv[1:]:
    activate(Schema.create(name))
    Item.objects.create(name="after-" + name)
    print(name, Item.objects.count())
"""


@needs_pgschemas
def test_fleet_repair_on_django_pgschemas(broken: PgSchemasProject) -> None:
    """Each schema on its own (acme's row recorded again, the static tenant's dropped column
    re-created in www, not in public); what has no repair (globex's pending migration, the
    schema/tenant mismatches) stays reported; the fixes name migrateschema."""
    (broken.root / "orm.py").write_text(ORM)
    broken.sql("INSERT INTO www.shop_item (name, note) VALUES ('kept', 'kept')")
    broken.sql("ALTER TABLE www.shop_item DROP COLUMN note")
    run = broken.manage(
        "migration_doctor_fix", "--all-schemas", "--noinput", "--format", "json", check=False
    )
    assert run.returncode == 1, run.stdout + run.stderr  # globex, ghost, lost remain
    document = json.loads(run.stdout)
    by = {t["schema"]: t for t in document["targets"]}
    assert {name: t["status"] for name, t in by.items()} == {"acme": "repaired", "www": "repaired"}
    [step] = by["acme"]["repair"]["steps"]
    assert step["django"] == (
        "python manage.py migrateschema shop 0002_item_note --fake --schema acme"
    )
    assert json.loads(Path(by["www"]["repair"]["backup"]).read_text())["identity"]["schema"] == (
        "www"
    )
    after = findings_of(document["after"])
    assert after == {
        ("globex", "unapplied", "shop", "0002_item_note"),
        ("ghost", "schema-without-tenant", None, None),
        ("lost", "tenant-without-schema", None, None),
    }
    note = broken.manage(
        "dbshell", "--", "-At", "-c",
        "SELECT table_schema FROM information_schema.columns "
        "WHERE table_name = 'shop_item' AND column_name = 'note' AND table_schema = 'www'",
    ).stdout.split()  # fmt: skip
    assert note == ["www"]
    kept = broken.manage(
        "dbshell", "--", "-At", "-c", "SELECT name, note FROM www.shop_item"
    ).stdout.split()
    assert kept == ["kept|"]  # the row stays; the re-created column takes its default
    assert broken.run("orm.py", "acme", "www").stdout.split() == ["acme", "1", "www", "2"]
