"""A custom user model switched on after the first migrate, on throwaway projects.

AUTH_USER_MODEL cannot change inside one process, so each test writes a project to tmp_path
(admin, auth, contenttypes, sessions and a third-party-like `library` app with a foreign key
and a many-to-many to the user model), migrates it with auth.User in a child process, gives
it users with password hashes, groups, permissions, admin log entries and sessions, then
switches settings to accounts.User and drives `manage.py migration_doctor` and Django itself
in further child processes. The backend is MIGRATION_DOCTOR_DB's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import BACKEND, scratch_database
from .projects import LIBRARY_MODELS, manage_py

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = {"sqlite": "sqlite", "postgres": "postgresql", "mysql": "mysql"}

SETTINGS = """\
SECRET_KEY = "user-switch-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "library", "migration_doctor",
] + EXTRA_APPS
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
    "OPTIONS": {{"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]}},
}}]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, still a hash
DATABASES = {{"default": {db!r}}}
"""

MANAGE = manage_py("umsite.settings")


# As a third-party package ships it: a swappable dependency on the user model.
LIBRARY_MIGRATION = """\
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]
    operations = [
        migrations.CreateModel(
            name="Loan",
            fields=[
                ("id", models.BigAutoField(
                    auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                )),
                ("title", models.CharField(max_length=50)),
                ("borrower", models.ForeignKey(
                    on_delete=django.db.models.deletion.CASCADE, to=settings.AUTH_USER_MODEL
                )),
                ("watchers", models.ManyToManyField(
                    related_name="watched", to=settings.AUTH_USER_MODEL
                )),
            ],
        ),
    ]
"""

ACCOUNTS_APPS = """\
from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = {auto!r}
"""

# Users, groups, permissions, admin log entries, sessions and the library's rows.
SEED = """\
import django
django.setup()
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.backends.db import SessionStore
from library.models import Loan

staff = Group.objects.create(name="staff")
staff.permissions.add(Permission.objects.get(codename="change_user"))
for name in ("ann", "bob", "cyd"):
    user = User.objects.create_user(name, f"{name}@example.com", f"pw-{name}")
    if name != "cyd":
        user.groups.add(staff)
    user.user_permissions.add(Permission.objects.get(codename="view_group"))
    LogEntry.objects.create(
        user=user, content_type=ContentType.objects.get_for_model(User),
        object_id=str(user.pk), object_repr=name, action_flag=ADDITION,
    )
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    loan = Loan.objects.create(title=f"book of {name}", borrower=user)
    loan.watchers.add(user)
"""

# What the users have, as the application sees it; `create` adds a user and a log entry.
STATE = """\
import json
import sys

import django
django.setup()
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth import authenticate, get_user, get_user_model
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from library.models import Loan

User = get_user_model()
users = {}
for user in User.objects.order_by("pk"):
    name = user.username
    found = authenticate(username=name, password=f"pw-{name}")
    users[name] = {
        "pk": user.pk,
        "authenticates": found is not None and found.pk == user.pk,
        "groups": sorted(g.name for g in user.groups.all()),
        "permissions": sorted(user.get_all_permissions()),
        "log": sorted((e.object_repr, e.user.username) for e in user.logentry_set.all()),
        "loans": sorted(loan.title for loan in Loan.objects.filter(borrower=user)),
        "watching": sorted(loan.title for loan in user.watched.all()),
    }
sessions = []
for session in Session.objects.order_by("session_key"):
    request = HttpRequest()
    request.session = SessionStore(session.session_key)
    sessions.append(getattr(get_user(request), "username", None))
out = {"model": User._meta.label, "table": User._meta.db_table, "users": users,
       "sessions": sorted(s or "" for s in sessions)}
if "create" in sys.argv:
    new = User.objects.create_user("dee", "dee@example.com", "pw-dee")
    entry = LogEntry.objects.create(
        user=new, content_type=ContentType.objects.get_for_model(User),
        object_id=str(new.pk), object_repr="dee", action_flag=ADDITION,
    )
    out["created"] = [authenticate(username="dee", password="pw-dee") == new, entry.user_id]
print(json.dumps(out))
"""

# Every table's columns and rows: what a refused repair must leave exactly as it was.
DUMP = """\
import json

import django
django.setup()
from django.db import connection

out = {}
with connection.cursor() as cursor:
    for table in sorted(connection.introspection.table_names(cursor)):
        if table.startswith("migration_doctor"):
            continue  # the ledger of repairs (none ran) and the lock
        desc = connection.introspection.get_table_description(cursor, table)
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
        rows = sorted(repr(r) for r in cursor.fetchall())
        out[table] = {"columns": [(c.name, c.null_ok) for c in desc], "rows": rows}
print(json.dumps(out))
"""

# A table for the new model made before the repair, holding one user of its own.
NEW_TABLE = """\
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db import connection

User = get_user_model()
with connection.schema_editor() as editor:
    editor.create_model(User)
User.objects.create_user("stray", password="pw-stray")
"""


@dataclass
class Project:
    root: Path
    backend: str
    cfg: dict[str, Any]

    def write(self, relpath: str, source: str) -> None:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))

    def settings(self, extra_apps: list[str], user_model: str | None = None) -> None:
        text = f"EXTRA_APPS = {extra_apps!r}\n" + SETTINGS.format(db=self.cfg)
        if user_model:
            text += f"AUTH_USER_MODEL = {user_model!r}\n"
        self.write("umsite/settings.py", text)

    def run(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), str(ROOT), env.get("PYTHONPATH", "")])
        env["DJANGO_SETTINGS_MODULE"] = "umsite.settings"
        return subprocess.run(
            [sys.executable, *args], cwd=self.root, env=env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("manage.py", *args)

    def ok(self, *args: str) -> str:
        done = self.manage(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def script(self, source: str, *args: str) -> Any:
        self.write("_script.py", source)
        done = self.run("_script.py", *args)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    def switch(
        self,
        model_source: str,
        auto: str = "django.db.models.AutoField",
        user_model: str = "accounts.User",
    ) -> None:
        """Add the accounts app with its user model, point AUTH_USER_MODEL at it and write
        its initial migration with makemigrations, as a project does."""
        self.write("accounts/__init__.py", "")
        self.write("accounts/apps.py", ACCOUNTS_APPS.format(auto=auto))
        self.write("accounts/models.py", model_source)
        self.write("accounts/migrations/__init__.py", "")
        self.settings(["accounts"], user_model)
        self.ok("makemigrations", "accounts", "-v", "0")

    def doctor(self) -> dict[str, Any]:
        done = self.manage("migration_doctor", "--format=json")
        assert done.returncode in (0, 1), done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """The project migrated with auth.User and seeded, before the switch."""
    from testproject.settings import database

    with scratch_database(tmp_path, "md_um", BACKEND) as name:
        cfg = database(BACKEND, name)
        proj = Project(tmp_path / "site", BACKEND, cfg)
        proj.write("manage.py", MANAGE)
        proj.write("umsite/__init__.py", "")
        proj.settings([])
        proj.write("library/__init__.py", "")
        proj.write("library/models.py", LIBRARY_MODELS)
        proj.write("library/migrations/__init__.py", "")
        proj.write("library/migrations/0001_initial.py", LIBRARY_MIGRATION)
        proj.ok("migrate", "-v", "0")
        proj.script(SEED)
        yield proj


# The switch both ways: keeping auth_user, and the default table name with extra fields.
SAME_TABLE = """\
from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    class Meta:
        db_table = "auth_user"
"""

NEW_TABLE_MODEL = """\
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    bio = models.TextField(blank=True, default="")
    nickname = models.CharField(max_length=30, null=True, blank=True)
    karma = models.IntegerField(default=0)
"""

REQUIRED_FIELD = """\
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    badge = models.CharField(max_length=10)
"""


def _only_switch(report: dict[str, Any]) -> dict[str, Any]:
    serious = [f for f in report["findings"] if f["severity"] in ("error", "warning")]
    assert [f["kind"] for f in serious] == ["user-model-switched"], serious
    return serious[0]


def _assert_moved(
    project: Project, before: dict[str, Any], table: str, again: bool = False
) -> None:
    """`again`: a second time, after the user and log entry of the first were created."""
    after = project.script(STATE, *(() if again else ("create",)))
    if again:
        dee = after["users"].pop("dee")
        assert dee["authenticates"] and dee["log"] == [["dee", "dee"]]
        after["created"] = [True, dee["pk"]]
    assert after["model"] == "accounts.User" and after["table"] == table
    # The user model's own permissions moved with its content type; nothing else changed.
    moved = {f"auth.{a}_user": f"accounts.{a}_user" for a in ("add", "change", "delete", "view")}
    expected = {
        name: {**u, "permissions": sorted(moved.get(p, p) for p in u["permissions"])}
        for name, u in before["users"].items()
    }
    assert after["users"] == expected  # passwords, groups, permissions, log, loans
    assert all(u["authenticates"] for u in after["users"].values())
    assert after["sessions"] == ["ann", "bob", "cyd"]  # still logged in
    assert after["created"][0] is True and after["created"][1] > max(
        u["pk"] for u in before["users"].values()
    )
    project.ok("migrate", "-v", "0")
    project.ok("makemigrations", "--check", "--dry-run")
    report = project.doctor()
    assert [f for f in report["findings"] if f["severity"] != "info"] == []


def test_same_table_records_and_moves_the_content_type(project: Project, tmp_path: Path) -> None:
    before = project.script(STATE)
    assert before["table"] == "auth_user"
    assert all(u["authenticates"] for u in before["users"].values())
    project.switch(SAME_TABLE)
    finding = _only_switch(project.doctor())
    ev = finding["evidence"]
    assert finding["id"] == "migration_doctor.E013"
    assert finding["migration"] == "0001_initial" and finding["app"] == "accounts"
    assert "is applied before its dependency accounts.0001_initial" in finding["message"]
    assert ev["repair"] == "record" and ev["users"] == 3 and ev["old_model"] == "auth.User"
    assert {"django_admin_log.user_id", "library_loan.borrower_id"} <= set(ev["references"])
    assert "library_loan_watchers.user_id" in ev["references"]
    assert ev["misfits"] == [] and "username" in ev["matching_columns"]
    backup = tmp_path / "backup.json"
    out = project.ok("migration_doctor_fix", "--noinput", "--backup", str(backup))
    assert "Move content type auth.user to accounts.user" in out
    assert "RENAME" not in out  # the table stays: nothing but rows change
    _assert_moved(project, before, "auth_user")
    # --restore puts the content type back with django_migrations.
    saved = json.loads(backup.read_text())
    assert saved["version"] == 3
    assert saved["other_rows"][0]["table"] == "django_content_type"
    project.ok("migration_doctor_restore", str(backup), "--noinput")
    assert _only_switch(project.doctor())["evidence"]["repair"] == "record"


def test_new_table_renames_and_keeps_every_foreign_key(project: Project) -> None:
    before = project.script(STATE)
    project.switch(NEW_TABLE_MODEL)
    finding = _only_switch(project.doctor())
    ev = finding["evidence"]
    assert ev["repair"] == "rename" and ev["new_table"] == "accounts_user"
    assert not ev["new_table_present"]
    assert {a["field"] for a in ev["added_fields"]} == {"bio", "nickname", "karma"}
    assert {m["new_table"] for m in ev["m2m_tables"]} == {
        "accounts_user_groups",
        "accounts_user_user_permissions",
        "library_loan_watchers",
    }
    dump = project.script(DUMP)
    dry = project.manage("migration_doctor_fix", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    rename = "RENAME TABLE" if BACKEND == "mysql" else "RENAME TO"
    assert rename in dry.stdout and "accounts_user_user_permissions" in dry.stdout
    assert "karma" in dry.stdout and "django_content_type" in dry.stdout
    if BACKEND == "postgres":  # the identity sequences follow their tables' names
        assert 'ALTER SEQUENCE "auth_user_id_seq" RENAME TO "accounts_user_id_seq"' in dry.stdout
    assert project.script(DUMP) == dump  # --dry-run changed nothing
    backup = project.root / "backup.json"
    out = project.ok("migration_doctor_fix", "--noinput", "--backup", str(backup))
    assert "Applied 4 step(s)." in out
    _assert_moved(project, before, "accounts_user")
    tables = project.script(DUMP)
    assert "auth_user" not in tables and "auth_user_groups" not in tables
    assert all("md5$" in r for r in tables["accounts_user"]["rows"])  # the hashes moved
    # Restored rows over renamed tables (or a repair interrupted after its schema steps, on
    # MariaDB): the move is finished again from where the tables are.
    _restore_then_resume(project, backup, "django_migrations and 1 of django_content_type")
    out = project.ok("migration_doctor_fix", "--noinput")
    assert "Applied 2 step(s)." in out and "RENAME" not in out
    _assert_moved(project, before, "accounts_user", again=True)


def _restore_then_resume(project: Project, backup: Path, counted: str) -> None:
    """--restore says what it put back and what stays; its safety backup holds the other
    rows too; the diagnosis then names the state `resume`."""
    saved = json.loads(backup.read_text())
    out = " ".join(project.ok("migration_doctor_restore", str(backup), "--noinput").split())
    assert f"rows into {counted}" in out, out
    stay = out.split("these changes of the repair stay: ")[1]
    assert "Rename auth_user to accounts_user" in stay.split(". `python")[0]
    assert "E013 with repair `resume`, which `--fix` finishes again" in out
    safety_path = Path(out.split("the rows it replaced are in ")[1].split(")")[0])
    safety = json.loads(safety_path.read_text())
    assert [s["table"] for s in safety["other_rows"]] == [s["table"] for s in saved["other_rows"]]
    moved = {tuple(r) for s in safety["other_rows"] for r in s["rows"]}
    assert (saved["other_rows"][0]["rows"][0][0], "accounts", "user") in moved  # as it was
    assert _only_switch(project.doctor())["evidence"]["repair"] == "resume"


CUSTOM_USER = """\
from django.contrib.auth.models import AbstractUser


class CustomUser(AbstractUser):
    pass
"""


def test_a_renamed_model_gets_its_columns_and_permissions_renamed(project: Project) -> None:
    before = project.script(STATE)
    project.switch(CUSTOM_USER, user_model="accounts.CustomUser")
    ev = _only_switch(project.doctor())["evidence"]
    assert ev["repair"] == "rename" and ev["new_table"] == "accounts_customuser"
    assert {(m["column"], m["new_column"]) for m in ev["m2m_tables"]} == {
        ("user_id", "customuser_id")
    }
    out = project.ok("migration_doctor_fix", "--noinput")
    assert "column library_loan_watchers.user_id to customuser_id" in " ".join(out.split())
    after = project.script(STATE, "create")
    assert after["model"] == "accounts.CustomUser"
    moved = {
        f"auth.{a}_user": f"accounts.{a}_customuser" for a in ("add", "change", "delete", "view")
    }
    for name, user in before["users"].items():
        assert after["users"][name] == {
            **user,
            "permissions": sorted(moved.get(p, p) for p in user["permissions"]),
        }
    assert after["sessions"] == ["ann", "bob", "cyd"] and after["created"][0] is True
    project.ok("migrate", "-v", "0")
    project.ok("makemigrations", "--check", "--dry-run")
    report = project.doctor()
    assert [f for f in report["findings"] if f["severity"] != "info"] == []


def _assert_refused(project: Project, *expected: str) -> dict[str, Any]:
    finding = _only_switch(project.doctor())
    assert finding["evidence"]["repair"] == "refused"
    before = project.script(DUMP)
    done = project.manage("migration_doctor_fix", "--noinput")
    assert done.returncode == 1, done.stdout + done.stderr
    assert project.script(DUMP) == before
    assert "Not repaired" in done.stdout and "By hand: 1) back up the database" in done.stdout
    text = " ".join(done.stdout.split())
    for words in expected:
        assert words in text, done.stdout
    return finding


def test_a_required_field_without_default_is_refused(project: Project) -> None:
    project.switch(REQUIRED_FIELD)
    finding = _assert_refused(project, "badge: a new required field without a default")
    assert "give badge a default or null=True" in finding["fix"]["summary"]


def test_a_different_primary_key_type_is_refused(project: Project) -> None:
    project.switch(NEW_TABLE_MODEL, auto="django.db.models.BigAutoField")
    _assert_refused(project, "primary key id is a BigAutoField, the table's is a AutoField")


def test_a_populated_new_table_is_refused(project: Project) -> None:
    project.switch(NEW_TABLE_MODEL)
    project.script(NEW_TABLE)
    finding = _assert_refused(project, "accounts_user holds 1 rows")
    assert finding["evidence"]["new_table_rows"] == 1


# What `--fix` did before E013 existed, and what `migrate` then adds: an empty accounts_user
# (and its many-to-many tables) made from the model, accounts.0001_initial recorded, and the
# new model's content type and permissions that post_migrate creates.
STRANDED = """\
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

with connection.schema_editor() as editor:
    editor.create_model(get_user_model())
MigrationRecorder(connection).record_applied("accounts", "0001_initial")
"""


def test_an_empty_new_table_made_by_an_earlier_fix_is_replaced(project: Project) -> None:
    before = project.script(STATE)
    project.switch(NEW_TABLE_MODEL)
    project.script(STRANDED)
    project.ok("migrate", "-v", "0")  # runs: nothing unapplied, the history is consistent
    finding = _only_switch(project.doctor())
    ev = finding["evidence"]
    assert ev["repair"] == "drop-empty" and ev["initial_recorded"] is True
    assert ev["new_table_present"] is True and ev["new_table_rows"] == 0 and ev["users"] == 3
    assert ev["empty_new_tables"] == [
        "accounts_user",
        "accounts_user_groups",
        "accounts_user_user_permissions",
    ]
    assert "accounts_user is empty" in finding["message"]
    assert "django_admin_log.user_id" in ev["references"]
    assert {m["table"] for m in ev["m2m_tables"]} >= {"auth_user_groups"}  # the users' rows
    dump = project.script(DUMP)
    dry = project.manage("migration_doctor_fix", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "DROP TABLE" in dry.stdout and "DELETE FROM" in dry.stdout  # the unused content type
    assert project.script(DUMP) == dump
    backup = project.root / "backup.json"
    out = project.ok("migration_doctor_fix", "--noinput", "--backup", str(backup))
    assert "Drop the empty accounts_user_groups" in out and "Record" not in out
    _assert_moved(project, before, "accounts_user")
    # The backup holds both content types and every permission the repair deleted; after
    # --restore the move is finished again.
    saved = {s["table"]: s for s in json.loads(backup.read_text())["other_rows"]}
    assert len(saved["django_content_type"]["rows"]) == 2
    _restore_then_resume(
        project, backup, "django_migrations and 2 of django_content_type, 4 of auth_permission"
    )
    out = project.ok("migration_doctor_fix", "--noinput")
    assert "Applied 1 step(s)." in out and "Record" not in out, out
    _assert_moved(project, before, "accounts_user", again=True)
