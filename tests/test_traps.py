"""Import-time traps on real throwaway projects: queries and non-daemon threads at import.

Each test writes a small project to tmp_path (settings, an app with models, views, forms,
urls and a migration), gives it a database of its own — a SQLite file, a PostgreSQL database
and, when MIGRATION_DOCTOR_DB=mysql, a MariaDB/MySQL one — and runs the watch three ways:
`manage.py migration_doctor`, which starts `ImportWatch` beside its diagnosis; `ImportWatch`
alone, the child process `python -m migration_doctor`; and that entry point directly. Fresh
databases make the queries fail (E010); databases migrated before the trap was written make
them succeed (W010). Line numbers are found from markers in the written sources, never hard-coded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from migration_doctor.findings import Finding, Severity
from migration_doctor.traps.child import ImportWatch, parse_faulthandler
from migration_doctor.traps.sql import tables_in

from .conftest import BACKEND, scratch_database
from .projects import initial_migration, manage_py

BACKENDS = ["sqlite", "postgres"] + (["mysql"] if BACKEND == "mysql" else [])
BOUND = 30.0  # seconds: every watch, even of a hanging project, ends well within this
ROOT = Path(__file__).resolve().parent.parent

# -- the throwaway project --------------------------------------------------------------------

SETTINGS = """\
SECRET_KEY = "traps-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["trapshop.apps.TrapshopConfig", "migration_doctor"]
ROOT_URLCONF = "trapsite.urls"
DATABASES = {{"default": {db!r}}}
"""

MANAGE = manage_py("trapsite.settings")

ROOT_URLS = """\
from django.urls import include, path

urlpatterns = [path("shop/", include("trapshop.urls"))]
"""

APPS = """\
from django.apps import AppConfig


class TrapshopConfig(AppConfig):
    name = "trapshop"
"""

MODELS = """\
from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=50)
"""

MIGRATION = initial_migration("Category")

APP_URLS = """\
from django.urls import path

from . import views

urlpatterns = [path("", views.index)]
"""

# The clean versions query lazily and start only harmless threads (a daemon, an idle pool).
VIEWS = """\
from django.http import HttpResponse

from . import services
from .forms import CategoryForm
from .models import Category


def category_names():
    return [c.name for c in Category.objects.all()]


def index(request):
    services.get_client()
    return HttpResponse(", ".join(category_names()) + str(CategoryForm()))
"""

FORMS = """\
from django import forms

from .models import Category


def category_choices():
    return [(c.pk, c.name) for c in Category.objects.all()]


class CategoryForm(forms.Form):
    category = forms.ModelChoiceField(queryset=Category.objects.all())
    other = forms.ChoiceField(choices=category_choices)
"""

SERVICES = """\
import functools
import threading
from concurrent.futures import ThreadPoolExecutor

ticker = threading.Thread(target=threading.Event().wait, name="ticker", daemon=True)
ticker.start()
pool = ThreadPoolExecutor(max_workers=1)
pool.submit(sum, [1, 2]).result()


@functools.cache
def get_client():
    return object()
"""

# The traps. `# <marker>` comments name the lines the findings must point at.
VIEWS_QUERY = """\
from django.http import HttpResponse

from .models import Category

CATEGORY_NAMES = [c.name for c in Category.objects.all()]  # QUERY


def index(request):
    return HttpResponse(", ".join(CATEGORY_NAMES))
"""

VIEWS_IMPORT_FORMS = """\
from django.http import HttpResponse

from .forms import CategoryForm  # IMPORT


def index(request):
    return HttpResponse(str(CategoryForm()))
"""

FORMS_QUERY = """\
from django import forms

from .models import Category


class CategoryForm(forms.Form):
    category = forms.ChoiceField(
        choices=[(c.pk, c.name) for c in Category.objects.all()]  # QUERY
    )
"""

MODELS_QUERY = """\
from django.db import models

print("trapshop.models: this line goes to stderr, never into the report")


class Category(models.Model):
    name = models.CharField(max_length=50)


CATEGORY_NAMES = [c.name for c in Category.objects.all()]  # QUERY
"""

SERVICES_SINGLETON = """\
import threading


class Poller:
    def __init__(self):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.poll, name="poller")  # CREATED
        self.thread.start()  # STARTED

    def poll(self):
        while not self.stop.wait(0.1):
            pass


poller = Poller()  # SINGLETON
"""

APPS_READY_THREAD = """\
import threading

from django.apps import AppConfig


def heartbeat():
    threading.Event().wait(3600)


class TrapshopConfig(AppConfig):
    name = "trapshop"

    def ready(self):
        beat = threading.Thread(target=heartbeat, name="heartbeat")  # CREATED
        beat.start()  # STARTED
"""

VIEWS_JOIN = """\
import threading

from django.http import HttpResponse


def warm_cache():
    threading.Event().wait(3600)


warmer = threading.Thread(target=warm_cache, name="warmer")  # CREATED
warmer.start()  # STARTED
warmer.join()  # STUCK


def index(request):
    return HttpResponse("")
"""

VIEWS_GIL = """\
import re

from django.http import HttpResponse

SLOW = re.match(r"(a+)+$", "a" * 64 + "b")  # STUCK


def index(request):
    return HttpResponse("")
"""

VIEWS_C_LOOP = """\
from django.http import HttpResponse

TOTAL = sum(range(10**13))  # STUCK


def index(request):
    return HttpResponse(str(TOTAL))
"""

VIEWS_BROKEN_IMPORT = """\
from django.http import HttpResponse

from .nowhere import helper  # BROKEN


def index(request):
    return HttpResponse(helper())
"""


@dataclass
class Project:
    root: Path
    backend: str
    settings: str = "trapsite.settings"

    def write(self, relpath: str, source: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    def file(self, relpath: str) -> str:
        return str(self.root / relpath)

    def line(self, relpath: str, marker: str) -> int:
        lines = (self.root / relpath).read_text().splitlines()
        found = [n for n, text in enumerate(lines, 1) if text.rstrip().endswith(f"# {marker}")]
        assert len(found) == 1, (relpath, marker)
        return found[0]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
        env.pop("DJANGO_SETTINGS_MODULE", None)
        return env

    def manage(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def doctor(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """`python -m migration_doctor ...`, the entry point for projects manage.py can't run."""
        return subprocess.run(
            [sys.executable, "-m", "migration_doctor", *args],
            cwd=cwd or self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=BOUND * 2,
        )

    def command(self, *args: str) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
        """`manage.py migration_doctor --format=json ...`: the report and the process. It must
        end on its own, whatever threads the project leaves running."""
        started = time.monotonic()
        run = self.manage("migration_doctor", "--format=json", *args, timeout=BOUND * 2)
        assert time.monotonic() - started < BOUND, "the command did not end by itself"
        assert run.returncode in (0, 1), run.stderr
        return json.loads(run.stdout), run

    def watch(self, timeout: float = 20.0, **kw: Any) -> tuple[list[Finding], ImportWatch]:
        """The management command's path: ImportWatch, started and collected."""
        started = time.monotonic()
        watch = ImportWatch(self.settings, timeout=timeout, cwd=str(self.root), **kw).start()
        findings = watch.result()
        assert time.monotonic() - started < BOUND
        return findings, watch


@pytest.fixture(params=BACKENDS)
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    """A clean project (no traps) with an empty database of its own."""
    from testproject.settings import database

    backend: str = request.param
    with scratch_database(tmp_path, "md_traps", backend) as name:
        yield _project(tmp_path, backend, database(backend, name))


def _project(tmp_path: Path, backend: str, cfg: dict[str, object]) -> Project:
    proj = Project(tmp_path / "site", backend)
    proj.write("manage.py", MANAGE)
    proj.write("trapsite/__init__.py", "")
    proj.write("trapsite/settings.py", SETTINGS.format(db=cfg))
    proj.write("trapsite/urls.py", ROOT_URLS)
    proj.write("trapshop/__init__.py", "")
    proj.write("trapshop/apps.py", APPS)
    proj.write("trapshop/models.py", MODELS)
    proj.write("trapshop/migrations/__init__.py", "")
    proj.write("trapshop/migrations/0001_initial.py", MIGRATION)
    proj.write("trapshop/urls.py", APP_URLS)
    proj.write("trapshop/views.py", VIEWS)
    proj.write("trapshop/forms.py", FORMS)
    proj.write("trapshop/services.py", SERVICES)
    return proj


def migrated(project: Project) -> None:
    done = project.manage("migrate", "-v", "0")
    assert done.returncode == 0, done.stderr


def only(findings: list[Finding], kind: str) -> Finding:
    found = [f for f in findings if f.kind == kind]
    assert len(found) == 1, [f.as_dict() for f in findings]
    return found[0]


def dump(findings: list[Finding]) -> list[dict[str, Any]]:
    return [f.as_dict() for f in findings]


def missing_table_error(backend: str) -> str:
    return {
        "sqlite": "no such table: trapshop_category",
        "postgres": 'relation "trapshop_category" does not exist',
        "mysql": "trapshop_category' doesn't exist",
    }[backend]


# -- queries ------------------------------------------------------------------------------------


def test_query_in_views_on_fresh_database_is_an_error(project: Project) -> None:
    project.write("trapshop/views.py", VIEWS_QUERY)
    # What users meet: migrate's system checks import the URLconf and stop on the query.
    failed = project.manage("migrate")
    assert failed.returncode != 0 and missing_table_error(project.backend) in failed.stderr

    findings, watch = project.watch()
    assert watch.problem is None
    f = only(findings, "import-time-query")
    assert (f.id, f.severity, f.app, f.migration) == (
        "migration_doctor.E010", Severity.ERROR, "trapshop", None,
    )  # fmt: skip
    ev = f.evidence
    assert ev["module"] == "trapshop.views"
    assert ev["file"] == project.file("trapshop/views.py")
    assert ev["line"] == project.line("trapshop/views.py", "QUERY")
    assert ev["table"] == "trapshop_category"
    assert ev["outcome"] == "failed" and ev["phase"] == "URLconf import"
    assert missing_table_error(project.backend) in ev["error"]
    assert "trapshop_category" in ev["sql"] and ev["sql"].lstrip().upper().startswith("SELECT")
    assert "table trapshop_category does not exist yet" in f.message
    assert "`migrate` runs the system checks" in f.message
    assert "move the query into a function" in f.fix.summary
    assert "inside the view function" in f.fix.summary
    assert f.fix.commands == ("python -m migration_doctor --settings=trapsite.settings",)
    assert [x for x in findings if x.kind == "import-time-thread"] == []


def test_query_in_views_on_migrated_database_is_a_warning(project: Project) -> None:
    migrated(project)
    project.write("trapshop/views.py", VIEWS_QUERY)
    findings, watch = project.watch()
    assert watch.problem is None
    f = only(findings, "import-time-query")
    assert (f.id, f.severity) == ("migration_doctor.W010", Severity.WARNING)
    ev = f.evidence
    assert ev["outcome"] == "succeeded" and "error" not in ev
    assert (ev["file"], ev["line"], ev["table"]) == (
        project.file("trapshop/views.py"),
        project.line("trapshop/views.py", "QUERY"),
        "trapshop_category",
    )
    assert "It succeeded here because table trapshop_category exists" in f.message
    assert "fresh database" in f.message


def test_query_in_forms_imported_by_views(project: Project) -> None:
    project.write("trapshop/views.py", VIEWS_IMPORT_FORMS)
    project.write("trapshop/forms.py", FORMS_QUERY)
    findings, _ = project.watch()
    f = only(findings, "import-time-query")
    assert f.id == "migration_doctor.E010"
    ev = f.evidence
    assert ev["module"] == "trapshop.forms" and ev["phase"] == "URLconf import"
    assert ev["file"] == project.file("trapshop/forms.py")
    assert ev["line"] == project.line("trapshop/forms.py", "QUERY")
    assert ev["table"] == "trapshop_category"
    # How the import got there: the URLconfs, views.py's import line, then the query.
    via = f"trapshop/views.py:{project.line('trapshop/views.py', 'IMPORT')} (<module>)"
    stack = [frame.split("/site/")[1] for frame in ev["stack"]]
    assert stack[:5] == [
        "trapsite/urls.py:3 (<module>)",
        "trapshop/urls.py:3 (<module>)",
        via,
        "trapshop/forms.py:6 (<module>)",
        f"trapshop/forms.py:{ev['line']} (CategoryForm)",
    ]  # Python < 3.12 adds the comprehension's own frame: trapshop/forms.py:8 (<listcomp>)
    assert "ModelChoiceField" in f.fix.summary and "callable as choices" in f.fix.summary


def test_query_in_models_crashes_manage_py_and_the_entry_point_names_it(
    project: Project,
) -> None:
    project.write("trapshop/models.py", MODELS_QUERY)
    crashed = project.manage("migration_doctor")  # manage.py dies before any command runs
    assert crashed.returncode != 0 and missing_table_error(project.backend) in crashed.stderr
    # Nothing of the doctor ran in it: installing the app changes no process's django.setup().
    assert "import-time" not in crashed.stderr

    # The entry point, run from elsewhere with --pythonpath, as Django's own option works.
    run = project.doctor(
        "--settings=trapsite.settings",
        f"--pythonpath={project.root}",
        "--format=json",
        cwd=project.root.parent,
    )
    assert run.returncode == 1, run.stderr
    data = json.loads(run.stdout)  # the project's print() went to stderr, not into the JSON
    assert "this line goes to stderr" in run.stderr
    assert data["summary"] == {"errors": 1, "warnings": 0, "infos": 0}
    assert data["problem"] is None and data["settings"] == "trapsite.settings"
    f = data["findings"][0]
    assert (f["id"], f["kind"], f["app"]) == (
        "migration_doctor.E010", "import-time-query", "trapshop",
    )  # fmt: skip
    ev = f["evidence"]
    assert ev["module"] == "trapshop.models" and ev["phase"] == "app loading"
    assert ev["file"] == project.file("trapshop/models.py")
    assert ev["line"] == project.line("trapshop/models.py", "QUERY")
    assert ev["table"] == "trapshop_category" and ev["outcome"] == "failed"
    assert "manage.py crashes before any command runs" in f["message"]
    assert "In models.py" in f["fix"]["summary"]

    # Text, from the project directory: plain lines naming the file and line.
    text = project.doctor("--settings=trapsite.settings")
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert lines[0].startswith("migration_doctor: import-time watch of 'trapsite.settings'")
    assert "1 error" in lines[0]
    assert "  E010 import-time-query" in lines
    assert f"    file: {project.file('trapshop/models.py')}" in lines
    assert f"    line: {project.line('trapshop/models.py', 'QUERY')}" in lines
    assert "      $ python -m migration_doctor --settings=trapsite.settings" in lines

    # The management command's path finds the same thing.
    findings, _ = project.watch()
    assert only(findings, "import-time-query").evidence["line"] == project.line(
        "trapshop/models.py", "QUERY"
    )


def test_query_in_models_on_migrated_database_is_a_warning(project: Project) -> None:
    migrated(project)
    project.write("trapshop/models.py", MODELS_QUERY)
    run = project.doctor("--settings=trapsite.settings", "--format=json")
    assert run.returncode == 0, run.stderr  # warnings only
    (f,) = json.loads(run.stdout)["findings"]
    assert f["id"] == "migration_doctor.W010" and f["evidence"]["outcome"] == "succeeded"
    assert f["evidence"]["line"] == project.line("trapshop/models.py", "QUERY")


# -- threads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("importer", ["views", "models"])
def test_non_daemon_thread_from_a_singleton(project: Project, importer: str) -> None:
    migrated(project)
    project.write("trapshop/services.py", SERVICES_SINGLETON)
    if importer == "views":
        project.write("trapshop/views.py", "from . import services\n" + VIEWS)
    else:
        project.write("trapshop/models.py", "from . import services\n" + MODELS)
    started = time.monotonic()
    findings, watch = project.watch()
    assert time.monotonic() - started < BOUND
    assert watch.problem is None
    f = only(findings, "import-time-thread")
    assert (f.id, f.severity, f.app) == ("migration_doctor.E011", Severity.ERROR, "trapshop")
    services = project.file("trapshop/services.py")
    ev = f.evidence
    assert ev["thread_name"] == "poller"
    assert ev["target"] == "trapshop.services.Poller.poll"
    assert ev["started_at"] == {
        "file": services,
        "line": project.line("trapshop/services.py", "STARTED"),
    }
    assert ev["created_at"] == {
        "file": services,
        "line": project.line("trapshop/services.py", "CREATED"),
    }
    assert ev["phase"] == ("URLconf import" if importer == "views" else "app loading")
    singleton = f"trapshop/services.py:{project.line('trapshop/services.py', 'SINGLETON')}"
    assert any(singleton in frame for frame in ev["stack"])
    assert "hang forever" in f.message
    assert "daemon=True" in f.fix.summary and "management command" in f.fix.summary
    # The clean project's daemon thread and idle pool worker are never reported.
    assert [x for x in findings if x.kind == "import-time-query"] == []


def assert_ready_thread(project: Project, f: dict[str, Any]) -> dict[str, Any]:
    """APPS_READY_THREAD's finding, as JSON: E011 at the exact lines. Returns its evidence."""
    apps_py = project.file("trapshop/apps.py")
    assert (f["id"], f["app"]) == ("migration_doctor.E011", "trapshop")
    ev: dict[str, Any] = f["evidence"]
    assert (ev["thread_name"], ev["target"], ev["phase"]) == (
        "heartbeat", "trapshop.apps.heartbeat", "ready()",
    )  # fmt: skip
    assert ev["started_at"] == {
        "file": apps_py,
        "line": project.line("trapshop/apps.py", "STARTED"),
    }
    assert ev["created_at"] == {
        "file": apps_py,
        "line": project.line("trapshop/apps.py", "CREATED"),
    }
    return ev


def test_non_daemon_thread_from_ready(project: Project) -> None:
    migrated(project)
    project.write("trapshop/apps.py", APPS_READY_THREAD)
    if project.backend == "sqlite":
        # What users meet: makemigrations does its work, then never exits.
        with pytest.raises(subprocess.TimeoutExpired) as hung:
            project.manage("makemigrations", "--check", "--dry-run", timeout=5)
        assert b"No changes detected" in (hung.value.stdout or b"")
    started = time.monotonic()
    run = project.doctor("--settings=trapsite.settings", "--format=json")
    assert time.monotonic() - started < BOUND
    assert run.returncode == 1, run.stderr
    (f,) = json.loads(run.stdout)["findings"]
    ev = assert_ready_thread(project, f)

    findings, watch = project.watch()
    assert watch.problem is None
    assert only(findings, "import-time-thread").evidence["started_at"] == ev["started_at"]


def test_import_that_waits_forever_is_reported_where_it_waits(project: Project) -> None:
    migrated(project)
    project.write("trapshop/views.py", VIEWS_JOIN)
    started = time.monotonic()
    findings, _ = project.watch(timeout=3)
    assert time.monotonic() - started < BOUND
    views = project.file("trapshop/views.py")
    hang = [f for f in findings if f.evidence.get("hang")]
    assert len(hang) == 1, dump(findings)
    ev = hang[0].evidence
    assert hang[0].kind == "import-time-thread" and hang[0].app == "trapshop"
    assert ev["stuck_at"] == {"file": views, "line": project.line("trapshop/views.py", "STUCK")}
    assert ev["phase"] == "URLconf import" and ev["timeout"] == 3
    assert ev["threads_alive"] == ["warmer"]
    assert "did not finish within 3 s" in hang[0].message
    thread = [f for f in findings if f.kind == "import-time-thread" and not f.evidence.get("hang")]
    assert len(thread) == 1 and thread[0].evidence["thread_name"] == "warmer"
    assert thread[0].evidence["started_at"]["line"] == project.line("trapshop/views.py", "STARTED")


def test_import_holding_the_interpreter_is_killed_and_reported(project: Project) -> None:
    """The child's watchdog cannot run while the import holds the GIL; faulthandler dumps
    the stacks and the parent still reports the place."""
    if project.backend != "sqlite":
        pytest.skip("no database involved: once is enough")
    project.write("trapshop/views.py", VIEWS_GIL)
    started = time.monotonic()
    findings, _ = project.watch(timeout=2, kill_grace=6)
    assert time.monotonic() - started < BOUND
    (f,) = findings
    assert f.kind == "import-time-thread" and f.evidence["hang"] is True
    assert "the doctor stopped the process" in f.message
    assert f.evidence["stuck_at"] == {
        "file": project.file("trapshop/views.py"),
        "line": project.line("trapshop/views.py", "STUCK"),
    }


def test_child_that_never_answers_is_killed(project: Project) -> None:
    if project.backend != "sqlite":
        pytest.skip("no database involved: once is enough")
    project.write("trapshop/views.py", VIEWS_JOIN)

    class Deaf(ImportWatch):
        def command(self) -> list[str]:  # the child's own deadline far beyond the parent's
            return [*super().command()[:-1], "--timeout=600"]

    started = time.monotonic()
    watch = Deaf("trapsite.settings", timeout=1, kill_grace=2, cwd=str(project.root)).start()
    (f,) = watch.result()
    assert time.monotonic() - started < BOUND
    assert f.kind == "import-time-thread" and f.evidence["hang"] is True
    assert "the doctor stopped the process" in f.message
    assert watch._proc is not None and watch._proc.poll() is not None  # really gone


# -- no traps, and the doctor's own failures ----------------------------------------------------


@pytest.mark.parametrize("state", ["fresh", "migrated"])
def test_project_without_traps_has_no_finding(project: Project, state: str) -> None:
    if state == "migrated":
        migrated(project)
    findings, watch = project.watch()
    assert findings == [] and watch.problem is None
    run = project.doctor("--settings=trapsite.settings")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[1].startswith("No import-time queries or threads")


def test_bad_settings_module(project: Project) -> None:
    run = project.doctor("--settings=trapsite.nosuch")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines()[-1] == (
        "migration_doctor: cannot import settings module 'trapsite.nosuch': "
        "ModuleNotFoundError: No module named 'trapsite.nosuch' (is the project directory on "
        "the path? run from it or use --pythonpath)"
    )
    none = project.doctor()
    assert none.returncode == 2 and "no settings module" in none.stderr
    watch = ImportWatch("trapsite.nosuch", cwd=str(project.root)).start()
    assert watch.result() == []
    assert watch.problem and "cannot import settings module" in watch.problem


def test_import_error_is_a_problem_not_a_finding(project: Project) -> None:
    if project.backend != "sqlite":
        pytest.skip("no database involved: once is enough")
    project.write("trapshop/views.py", VIEWS_BROKEN_IMPORT)
    findings, watch = project.watch()
    assert findings == []
    assert watch.problem is not None
    assert watch.problem.startswith("importing the project failed: ModuleNotFoundError")
    assert f"trapshop/views.py, line {project.line('trapshop/views.py', 'BROKEN')}" in (
        watch.problem
    )
    run = project.doctor("--settings=trapsite.settings")
    assert run.returncode == 2
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith("migration_doctor: importing the project failed: ModuleNotFoundError")
    )


# -- manage.py migration_doctor: the watch inside the command's own process ----------------------

SERVICES_AT_PACKAGE_IMPORT = """\
import threading


def poll(stop):
    while not stop.wait(0.1):  # RUNNING
        pass


poller = threading.Thread(target=poll, args=(threading.Event(),), name="early-poller")
poller.start()
"""


def found(data: dict[str, Any], kind: str) -> dict[str, Any]:
    hits = [f for f in data["findings"] if f["kind"] == kind]
    assert len(hits) == 1, data["findings"]
    return hits[0]


def test_command_reports_a_urlconf_query_from_its_own_process(project: Project) -> None:
    project.write("trapshop/views.py", VIEWS_QUERY)
    data, run = project.command()
    assert run.returncode == 1
    f = found(data, "import-time-query")
    assert (f["id"], f["app"]) == ("migration_doctor.E010", "trapshop")
    ev = f["evidence"]
    assert (ev["file"], ev["line"], ev["phase"], ev["table"]) == (
        project.file("trapshop/views.py"),
        project.line("trapshop/views.py", "QUERY"),
        "URLconf import",
        "trapshop_category",
    )
    assert missing_table_error(project.backend) in ev["error"]
    # The diagnosis itself still ran: the migration is unapplied on this fresh database.
    assert [x["kind"] for x in data["findings"] if x["kind"] == "unapplied"] == ["unapplied"]


def test_command_reports_a_models_query_seen_during_setup(project: Project) -> None:
    migrated(project)
    # (Its print() would go to stdout, as with every manage.py command: drop it for the JSON.)
    project.write("trapshop/models.py", MODELS_QUERY.replace("print(", "str("))
    data, run = project.command()
    assert run.returncode == 0, run.stderr  # a warning
    f = found(data, "import-time-query")
    assert f["id"] == "migration_doctor.W010"
    ev = f["evidence"]
    assert (ev["phase"], ev["module"], ev["outcome"]) == (
        "app loading",
        "trapshop.models",
        "succeeded",
    )
    assert ev["line"] == project.line("trapshop/models.py", "QUERY")
    skipped, _ = project.command("--skip-import-watch")
    assert [x for x in skipped["findings"] if x["kind"].startswith("import-time")] == []


def test_command_with_a_ready_thread_reports_it_and_exits(project: Project) -> None:
    """makemigrations hangs on this project; the doctor's own command reports and ends."""
    migrated(project)
    project.write("trapshop/apps.py", APPS_READY_THREAD)
    data, run = project.command()
    assert run.returncode == 1
    assert_ready_thread(project, found(data, "import-time-thread"))
    # Every other use of the command ends by itself too, watched or not.
    for args in (["--history"], ["--skip-import-watch", "--format=json"]):
        started = time.monotonic()
        run = project.manage("migration_doctor", *args, timeout=BOUND)
        assert run.returncode == 0 and time.monotonic() - started < BOUND, run.stderr


def test_command_reports_a_hanging_urlconf_import_and_exits(project: Project) -> None:
    if project.backend != "sqlite":
        pytest.skip("no database involved: once is enough")
    migrated(project)
    project.write("trapshop/views.py", VIEWS_JOIN)
    data, run = project.command("--import-timeout=2")
    assert run.returncode == 1
    hang = [f for f in data["findings"] if f["evidence"].get("hang")]
    assert len(hang) == 1, data["findings"]
    ev = hang[0]["evidence"]
    views = project.file("trapshop/views.py")
    assert ev["stuck_at"] == {"file": views, "line": project.line("trapshop/views.py", "STUCK")}
    assert (ev["phase"], ev["timeout"], ev["threads_alive"]) == ("URLconf import", 2, ["warmer"])
    assert "the doctor stopped waiting" in hang[0]["message"]
    thread = [
        f for f in data["findings"] if f["kind"] == "import-time-thread" and f is not hang[0]
    ]
    assert [t["evidence"]["thread_name"] for t in thread] == ["warmer"]
    # The diagnosis ran after the watch gave up: the database is healthy.
    assert data["summary"]["errors"] == 2


def test_command_ends_an_import_that_holds_the_interpreter(project: Project) -> None:
    """A C loop holding the GIL cannot be interrupted: the child's faulthandler names the
    line and ends the child; the command reports it beside its diagnosis."""
    if project.backend != "sqlite":
        pytest.skip("no database involved: once is enough")
    # (The regular expression of VIEWS_GIL checks for signals: it is interrupted.)
    project.write("trapshop/views.py", VIEWS_C_LOOP)
    data, run = project.command("--import-timeout=1")
    assert run.returncode == 1, run.stderr
    (hang,) = [f for f in data["findings"] if f["evidence"].get("hang")]
    assert "the doctor stopped the process" in hang["message"]
    assert hang["evidence"]["stuck_at"] == {
        "file": project.file("trapshop/views.py"),
        "line": project.line("trapshop/views.py", "STUCK"),
    }
    assert [f["kind"] for f in data["findings"] if f["kind"] == "unapplied"] == ["unapplied"]


def test_command_reports_a_thread_started_by_an_app_package(project: Project) -> None:
    """trapshop's package starts a thread when INSTALLED_APPS is imported, before any
    models module: the child watches from its very start and names the line."""
    if project.backend != "sqlite":
        pytest.skip("no database involved: once is enough")
    migrated(project)
    project.write("trapshop/__init__.py", "from . import services  # noqa: F401\n")
    project.write("trapshop/services.py", SERVICES_AT_PACKAGE_IMPORT)
    data, run = project.command()
    assert run.returncode == 1
    f = found(data, "import-time-thread")
    ev = f["evidence"]
    assert (f["app"], ev["thread_name"], ev["target"], ev["phase"]) == (
        "trapshop", "early-poller", "trapshop.services.poll", "app loading",
    )  # fmt: skip
    assert ev["started_at"]["file"] == project.file("trapshop/services.py")


def test_a_process_that_does_not_run_the_doctor_is_untouched(project: Project) -> None:
    """Installing the app imports and installs nothing of the watch: not in a script or a
    web worker, not in manage.py's own process even when it runs the doctor."""
    if project.backend != "sqlite":
        pytest.skip("no database involved: once is enough")
    script = (
        "import sys, threading, django; sys.argv = ['manage.py', 'migration_doctor']; "
        "start = threading.Thread.start; django.setup(); "
        "from django.db import connection; "
        "print(sorted(m for m in sys.modules if m.startswith('migration_doctor.traps')), "
        "threading.Thread.start is start, connection.execute_wrappers)"
    )
    env = {**project.env(), "DJANGO_SETTINGS_MODULE": project.settings}
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=project.root, env=env, capture_output=True, text=True
    )
    assert run.stdout.strip() == "[] True []", run.stderr
    # An abbreviation argparse accepts is the option itself: no watch, no finding.
    project.write("trapshop/views.py", VIEWS_QUERY)
    data, run = project.command("--skip-imp")
    assert [f for f in data["findings"] if f["kind"].startswith("import-time")] == []


@pytest.mark.parametrize("state", ["fresh", "migrated"])
def test_command_on_a_project_without_traps(project: Project, state: str) -> None:
    if state == "migrated":
        migrated(project)
    data, run = project.command()
    assert [f for f in data["findings"] if f["kind"].startswith("import-time")] == []
    assert run.returncode == 0 and "import-time watch" not in run.stderr


# -- pure helpers ---------------------------------------------------------------------------------


def test_tables_in() -> None:
    assert tables_in('SELECT "a"."id" FROM "shop_a" INNER JOIN "shop_b" ON 1') == [
        "shop_a",
        "shop_b",
    ]
    assert tables_in("SELECT `x`.`id` FROM `db`.`shop_x` WHERE 1") == ["shop_x"]
    assert tables_in('INSERT INTO "t" ("a") VALUES (%s)') == ["t"]
    assert tables_in("UPDATE t SET a = 1") == ["t"]
    assert tables_in("SELECT 1") == [] and tables_in(None) == []


def test_parse_faulthandler() -> None:
    dump_text = textwrap.dedent(
        """\
        Timeout (0:00:05)!
        Thread 0x00007f0000000001 (most recent call first):
          File "/usr/lib/python3.12/threading.py", line 355 in wait
          File "/w/other.py", line 3 in loop
        Thread 0x00007f0000000000 (most recent call first):
          File "/usr/lib/python3.12/re/__init__.py", line 167 in match
          File "/p/shop/views.py", line 5 in <module>
        """
    )
    frames = parse_faulthandler(dump_text)
    assert [(f.file, f.line) for f in frames] == [
        ("/usr/lib/python3.12/re/__init__.py", 167),
        ("/p/shop/views.py", 5),
    ]
