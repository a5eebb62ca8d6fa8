"""`migration_doctor_fix --all-schemas` on a real django-tenants project (PostgreSQL).

Tenants hold user rows, then break in different ways: a row deleted where the column stays
(table-exists: the row is recorded again), a column dropped by hand (missing-schema: it is
re-created in that tenant's schema, not in public), one whose lock another repair holds
(it fails, the others go on). Afterwards each repaired tenant works through the ORM, its
user rows are unchanged, each has its own backup and ledger, and a backup restores into
its own schema only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migration_doctor.repair.lock import pg_lock_key

from .test_tenants import TenantProject, needs_tenants, project  # noqa: F401  (a fixture)

ORM = """\
import sys

import django
django.setup()
from django_tenants.utils import schema_context
from shop.models import Item

for name in sys.argv[1:]:
    with schema_context(name):
        Item.objects.create(name="after-" + name)
        rows = sorted(Item.objects.values_list("name", "note"))
        print(name, len(rows), rows[0][0])
"""

CHECKSUM = """\
SELECT string_agg(name || ':' || note, ',' ORDER BY id) FROM {schema}.shop_item
"""


def rows_of(site: TenantProject, schema: str) -> str:
    done = site.manage("dbshell", "--", "-At", "-c", CHECKSUM.format(schema=schema))
    return done.stdout.strip()


@pytest.fixture
def fleet(project: TenantProject) -> TenantProject:  # noqa: F811
    (project.root / "orm.py").write_text(ORM)
    project.run("tenants.py", "t1", "acme", "globex", "umbrella")
    for name in ("t1", "acme", "globex", "umbrella"):
        project.sql(f"INSERT INTO {name}.shop_item (name, note) VALUES ('{name}-1', 'kept')")
    for name in ("acme", "globex"):  # the row deleted, the column stays
        project.sql(
            f"DELETE FROM {name}.django_migrations WHERE app = 'shop' AND name = '0002_item_note'"
        )
    project.sql("ALTER TABLE umbrella.shop_item DROP COLUMN note")  # by hand, never recorded
    return project


def fix(site: TenantProject, *args: str) -> tuple[int, dict[str, object]]:
    """The fleet repaired (every schema, unless `args` name some with --schema)."""
    which = args if "--schema" in args else ("--all-schemas", *args)
    run = site.manage("migration_doctor_fix", *which, "--noinput", "--format", "json", check=False)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    return run.returncode, json.loads(run.stdout)


@needs_tenants
def test_fleet_repair_repairs_each_schema_on_its_own(fleet: TenantProject) -> None:
    before = {name: rows_of(fleet, name) for name in ("t1", "acme", "globex")}
    status, document = fix(fleet)
    assert status == 0, document
    statuses = {t["schema"]: t["status"] for t in document["targets"]}
    assert statuses == {"acme": "repaired", "globex": "repaired", "umbrella": "repaired"}
    summary = document["summary"]
    assert summary["repaired"] == ["acme", "globex", "umbrella"]
    assert summary["failed"] == [] and summary["schemas"] == 5  # public, t1 healthy
    after = document["after"]
    assert after["summary"]["errors"] == 0 and after["summary"]["warnings"] == 0
    # The column was re-created in umbrella's schema, not in public's.
    column = fleet.manage(
        "dbshell", "--", "-At", "-c",
        "SELECT table_schema FROM information_schema.columns "
        "WHERE table_name = 'shop_item' AND column_name = 'note' ORDER BY 1",
    ).stdout.split()  # fmt: skip
    assert column == ["acme", "globex", "t1", "umbrella"]
    # User rows unchanged; every touched tenant takes an ORM insert and reads back.
    assert {name: rows_of(fleet, name) for name in before} == before
    orm = fleet.run("orm.py", "acme", "globex", "umbrella", "t1").stdout.split("\n")
    assert [line.split()[:2] for line in orm if line] == [
        ["acme", "2"], ["globex", "2"], ["umbrella", "2"], ["t1", "2"]
    ]  # fmt: skip
    # One backup per schema, each saying which schema it holds; a ledger per schema.
    backups = {t["schema"]: Path(t["repair"]["backup"]) for t in document["targets"]}
    for name, path in backups.items():
        assert path.name.startswith(f"default-{name}-"), path
        assert json.loads(path.read_text())["identity"]["schema"] == name
    history = fleet.manage("migration_doctor_history", "--schema", "acme", "--format", "json")
    document = json.loads(history.stdout)
    assert document["schema"] == "acme"
    [entry] = document["repairs"]
    assert (entry["kind"], entry["migration"]) == ("table-exists", "0002_item_note")
    public = fleet.manage("migration_doctor_history", "--format", "json")
    assert json.loads(public.stdout)["repairs"] == []
    again = fleet.doctor("--all-schemas", "--format", "json")
    assert again.returncode == 0, again.stdout
    assert json.loads(again.stdout)["summary"]["healthy"] == 5


@needs_tenants
def test_a_schema_that_fails_does_not_stop_the_others(fleet: TenantProject) -> None:
    import psycopg

    cfg = fleet.cfg
    with psycopg.connect(
        host=cfg["HOST"], port=cfg["PORT"], user=cfg["USER"], dbname=cfg["NAME"],
        autocommit=True,
    ) as other:  # fmt: skip
        other.execute("SELECT pg_advisory_lock(%s, %s)", pg_lock_key("globex"))
        status, document = fix(fleet)
    assert status == 1
    by = {t["schema"]: t for t in document["targets"]}
    assert by["globex"]["status"] == "failed"
    assert by["globex"]["error"] == (
        "Another migration_doctor repair holds the lock on schema globex of database "
        "'default'; try again when it has finished."
    )
    assert by["globex"]["repair"] is None
    assert by["acme"]["status"] == by["umbrella"]["status"] == "repaired"
    assert document["summary"]["failed"] == ["globex"]
    kinds = {(t["schema"], f["kind"]) for t in document["after"]["targets"] for f in t["findings"]}
    assert kinds == {("globex", "table-exists")}  # untouched, still as it was


@needs_tenants
def test_dry_run_text_groups_the_same_plan_and_changes_nothing(fleet: TenantProject) -> None:
    run = fleet.manage(
        "migration_doctor_fix", "--all-schemas", "--dry-run", "--schema", "acme", check=False
    )
    assert run.returncode == 2  # --all-schemas and --schema exclude each other
    run = fleet.manage("migration_doctor_fix", "--all-schemas", "--dry-run", check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stderr == ""  # no progress display when the output is piped
    lines = run.stdout.splitlines()
    assert lines[0] == (
        "migration_doctor_fix: database 'default', 5 schemas (django-tenants): "
        "3 schemas with something to repair"
    )
    assert "2 schemas: planned (--dry-run) — acme, globex" in lines
    assert "    as in acme:" in lines
    assert "1 schema: planned (--dry-run) — umbrella" in lines
    assert run.stdout.count("Nothing was changed (--dry-run).") == 2  # once per plan shown
    assert "After the repair" not in run.stdout
    still = fleet.doctor("--all-schemas", "--format", "json")
    kinds = {
        (t["schema"], f["kind"])
        for t in json.loads(still.stdout)["targets"]
        for f in t["findings"]
    }
    assert kinds == {
        ("acme", "table-exists"), ("globex", "table-exists"), ("umbrella", "missing-schema")
    }  # fmt: skip


@needs_tenants
def test_a_schema_backup_restores_into_its_own_schema_only(fleet: TenantProject) -> None:
    status, document = fix(fleet, "--schema", "acme", "--schema", "t1")
    assert status == 0, document
    [target] = document["targets"]  # t1 is healthy: nothing to repair
    backup = target["repair"]["backup"]
    wrong = fleet.manage(
        "migration_doctor_restore", backup, "--schema", "globex", "--noinput", check=False
    )
    assert wrong.returncode == 2
    assert "belongs to database 'default': PostgreSQL schema acme of database" in wrong.stderr
    plain = fleet.manage("migration_doctor_restore", backup, "--noinput", check=False)
    assert plain.returncode == 2  # public is not acme either
    done = fleet.manage("migration_doctor_restore", backup, "--schema", "acme", "--noinput")
    assert "into django_migrations on 'default' (schema acme)" in done.stdout
    back = fleet.doctor("--schema", "acme", "--format", "json")
    [report] = json.loads(back.stdout)["targets"]
    assert [f["kind"] for f in report["findings"]] == ["table-exists"]  # as before the fix
    nowhere = fleet.manage(
        "migration_doctor_restore", backup, "--schema", "nowhere", "--noinput", check=False
    )
    assert nowhere.returncode == 2
    assert nowhere.stderr.strip() == (
        "CommandError: No schema named 'nowhere' on database 'default'."
    )
