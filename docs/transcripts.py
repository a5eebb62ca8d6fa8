#!/usr/bin/env python
"""Regenerate every transcript the documentation shows, from real runs.

    python docs/transcripts.py              # every scenario
    python docs/transcripts.py E001 demo    # only these scenarios
    python docs/transcripts.py --list       # the scenarios' names

Each scenario copies the bundled `testproject/` (or writes a small project of its own) into
a temporary directory, brings its SQLite database into a state with real commands
(`manage.py migrate`, the `sqlite3` shell, `demo.py`, edited migration files), runs the real
`manage.py` commands and writes what they print into `docs/_transcripts/<name>.txt`; the
pages include those files, so running this again updates the documentation. Files the
scenario writes into the project are saved beside them (`<name>.py.txt`) for the pages to
show.

Only machine-specific text is rewritten: a project's temporary directory becomes
`/path/to/project` (`/path/to/checkout` where the demo runs from the checkout's root; the
directory's path has the placeholder's length, so wrapped text wraps as it would there),
the checkout, the virtualenv and the interpreter get placeholders, `user`/`host` stand for
the account, and Python tracebacks are cut to their last line (marked `...`). A scenario whose
output no longer shows what its page explains (a finding id, an exit status) stops the
script: the page would be wrong. Nothing is written into the checkout except
`docs/_transcripts/`. Needs the `sqlite3` command-line shell and `timeout` (coreutils).
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
from tests.projects import LIBRARY_MODELS, manage_py  # noqa: E402  (plain strings)

TESTPROJECT = ROOT / "testproject"
OUT = DOCS / "_transcripts"
PYTHON = sys.executable
TIMEOUT = 300  # seconds for one command; a hang is a bug in the scenario, not a transcript

SCENARIOS: dict[str, Callable[[], None]] = {}


def scenario(function: Callable[[], None]) -> Callable[[], None]:
    SCENARIOS[function.__name__.removeprefix("scenario_").replace("_", "-")] = function
    return function


def child_env() -> dict[str, str]:
    """The environment of a user's shell: none of the test suite's or this script's knobs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MIGRATION_DOCTOR", "DJANGO_", "PYTHON", "PYTEST"))
    }
    env.update(
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONIOENCODING="utf-8",
        PYTHONUNBUFFERED="1",  # stdout and stderr interleave as on a terminal
        PYTHON_COLORS="0",
        NO_COLOR="1",
        COLUMNS="100",
        TZ="UTC",
    )
    return env


CREATED: list[Path] = []  # the temporary directories, removed at the end


def quoted(text: str) -> str:
    """`text` as one shell word, in double quotes where that needs no escaping (as people
    type SQL and Python with single-quoted strings inside)."""
    return f'"{text}"' if not set(text) & set('"$`\\!') else shlex.quote(text)


def same_length_dir(placeholder: str) -> Path:
    """A new temporary directory whose path is as long as `placeholder` where the system's
    temporary directory is short enough (else any new one)."""
    base = tempfile.gettempdir()
    room = len(placeholder) - len(base) - 1 - 8  # mkdtemp adds 8 random characters
    prefix = ("md" + "x" * room)[:room] if room > 0 else "md"
    path = Path(tempfile.mkdtemp(prefix=prefix))
    CREATED.append(path)
    return path


def shorten_tracebacks(text: str) -> str:
    """Keep a Python traceback's last line (the exception) and what follows it."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        head, marker, _ = line.partition("Traceback (most recent call last):")
        if not marker:
            out.append(line)
            i += 1
            continue
        out.append(head + marker)
        out.append("  ...")
        i += 1
        while i < len(lines):
            current = lines[i]
            i += 1
            if not current or current.startswith((" ", "\t", "Traceback (most recent")):
                continue
            if current.startswith(("During handling of", "The above exception")):
                continue
            # An exception line; a chained traceback may follow after a blank line.
            rest = [x for x in lines[i : i + 3] if x]
            if rest and rest[0].startswith(("During handling of", "The above exception")):
                continue
            out.append(current)
            break
    return "\n".join(out)


class Run:
    """One scenario's project directory and the transcript being written."""

    def __init__(self, name: str, placeholder: str = "/path/to/project") -> None:
        self.name = name
        # A directory whose path is as long as its placeholder, so that text wrapped around
        # a path wraps where it would at /path/to/project.
        self.root = same_length_dir(placeholder)
        self.dir = self.root
        self.cwd = self.root
        self.env = child_env()
        self.chunks: list[str] = []
        user = getpass.getuser()
        self.replacements = sorted(
            {
                str(self.root): placeholder,
                str(self.root.resolve()): placeholder,
                str(ROOT): "/path/to/migration_doctor",
                sys.prefix: "/path/to/venv",
                sys.base_prefix: "/path/to/python",
                f"{user}@{socket.gethostname()}": "user@host",
                f'"user": "{user}"': '"user": "user"',
                f'"host": "{socket.gethostname()}"': '"host": "host"',
            }.items(),
            key=lambda kv: -len(kv[0]),
        )

    # -- the project -----------------------------------------------------------------------

    def copy_testproject(self, folder: str = "", db: str | None = "db.sqlite3") -> None:
        """The bundled project, without any database, backup or lock file of the checkout."""
        self.dir = self.root / folder if folder else self.root
        shutil.copytree(
            TESTPROJECT,
            self.dir,
            ignore=shutil.ignore_patterns(
                "*.sqlite3*", "*.lock", "migration_doctor_backups", "__pycache__", "demo"
            ),
            dirs_exist_ok=True,
        )
        self.cwd = self.dir
        if db:
            self.settings(f'DATABASES["default"]["NAME"] = str(BASE_DIR / {db!r})')

    def settings(self, text: str) -> None:
        path = self.dir / "testproject" / "settings.py"
        path.write_text(path.read_text() + "\n" + textwrap.dedent(text).strip() + "\n")

    def write(self, relpath: str, text: str, save: str | None = None) -> None:
        """Write a project file; `save`: also keep it as docs/_transcripts/<save>.py.txt."""
        path = self.dir / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        source = textwrap.dedent(text).lstrip("\n")
        path.write_text(source)
        if save:  # not *.py: linters would read the deliberately broken ones
            (OUT / f"{save}.py.txt").write_text(source)

    def edit(self, relpath: str, old: str, new: str) -> None:
        path = self.dir / relpath
        text = path.read_text()
        if old not in text:
            raise SystemExit(f"{relpath} no longer contains {old!r}: update the scenario")
        path.write_text(text.replace(old, new, 1))

    # -- commands --------------------------------------------------------------------------

    def sh(
        self,
        command: str,
        *,
        show: bool = True,
        status: int | None = 0,
        want: Iterable[str] = (),
        echo_status: bool = True,
        shorten: bool = False,
    ) -> str:
        """Run `command` as a user would type it (`python` is this interpreter).

        `status`: the exit status the page explains (None: any). `want`: text the output
        must contain. Both are checked, so a transcript never silently stops showing what
        its page says.
        """
        argv = shlex.split(command)
        if argv[0] == "python":
            argv[0] = PYTHON
        elif argv[0] == "timeout" and argv[2] == "python":
            argv[2] = PYTHON
        proc = subprocess.run(
            argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=TIMEOUT,
        )
        output = proc.stdout
        problems = []
        if status is not None and proc.returncode != status:
            problems.append(f"exit status {proc.returncode}, expected {status}")
        problems += [f"no {w!r} in the output" for w in want if w not in output]
        if problems:
            raise SystemExit(f"{self.name}: `{command}`: {'; '.join(problems)}\n{output}")
        if show:
            if shorten:
                output = shorten_tracebacks(output)
            text = f"$ {command}\n{output}"
            if not text.endswith("\n"):
                text += "\n"
            if echo_status:
                text += f"$ echo $?\n{proc.returncode}\n"
            self.chunks.append(text)
        return proc.stdout

    def sql(self, statement: str, db: str = "db.sqlite3") -> None:
        """A statement through the sqlite3 shell, shown as typed."""
        self.sh(f"sqlite3 {db} {quoted(statement)}", echo_status=False)

    def save(self, name: str) -> None:
        text = "".join(self.chunks)
        for old, new in self.replacements:
            text = text.replace(old, new)
        text = "\n".join(line.rstrip() for line in text.split("\n")).rstrip("\n") + "\n"
        (OUT / f"{name}.txt").write_text(text)
        self.chunks = []
        print(f"  wrote docs/_transcripts/{name}.txt")


# -- migration sources the scenarios add ------------------------------------------------------


def migration(dependencies: list[tuple[str, str]], operations: str = "") -> str:
    deps = "".join(f"        {d!r},\n" for d in dependencies)
    ops = textwrap.indent(textwrap.dedent(operations).strip("\n"), " " * 8)
    imports = "migrations, models" if "models." in operations else "migrations"
    return (
        f"from django.db import {imports}\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [\n{deps}    ]\n\n"
        f"    operations = [\n{ops + chr(10) if ops else ''}    ]\n"
    )


AFTER_0003 = ("catalog", "0003_product_sku_stock")

# catalog 0001..0003 as one squash, operations as squashmigrations would fold them.
SQUASH_NAME = "0001_squashed_0003_product_sku_stock"
SQUASH = """\
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    replaces = [
        ("catalog", "0001_initial"),
        ("catalog", "0002_tags"),
        ("catalog", "0003_product_sku_stock"),
    ]

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Category",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                ("slug", models.SlugField(unique=True)),
            ],
            options={"verbose_name_plural": "categories"},
        ),
        migrations.CreateModel(
            name="Tag",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=50, unique=True)),
            ],
        ),
        migrations.CreateModel(
            name="Product",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                ("price", models.DecimalField(decimal_places=2, max_digits=10)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "category",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="products",
                        to="catalog.category",
                    ),
                ),
                (
                    "tags",
                    models.ManyToManyField(blank=True, related_name="products", to="catalog.tag"),
                ),
                (
                    "sku",
                    models.CharField(
                        blank=True, db_column="stock_keeping_unit", max_length=32, null=True
                    ),
                ),
                ("stock", models.IntegerField(default=0)),
            ],
            options={
                "indexes": [models.Index(fields=["name"], name="catalog_product_name_idx")],
            },
        ),
    ]
"""

SHOW = "python manage.py migration_doctor"
FIX = "python manage.py migration_doctor_fix"


def project(name: str, migrated: bool = True) -> Run:
    run = Run(name)
    run.copy_testproject()
    if migrated:
        run.sh("python manage.py migrate --verbosity 0", echo_status=False)
    return run


# -- the demo database: the README's walk-through ---------------------------------------------

DEMO = "python testproject/manage.py migration_doctor"


def demo(name: str, show: bool = False) -> Run:
    """`python testproject/demo.py` in a copy of the checkout's layout (run from its root)."""
    run = Run(name, placeholder="/path/to/checkout")
    run.copy_testproject("testproject", db=None)
    run.cwd = run.root
    run.sh("python testproject/demo.py", show=show, echo_status=False)
    return run


@scenario
def scenario_demo() -> None:
    run = demo("demo", show=True)
    run.save("demo")
    run.sh(DEMO, status=1, want=["4 errors, 2 warnings, 3 infos"])
    run.save("diagnose")
    run.sh(f"{DEMO} orders --verbosity 2", status=1, want=["I002 unapplied"])
    run.save("diagnose-verbose")
    run.sh(f"{DEMO} orders --format json", status=1, want=['"kind": "table-exists"'])
    run.save("json-orders")
    run.sh(f"{DEMO} catalog --format github", status=1, want=["::error file="])
    run.save("github-catalog")
    run.sh(f"{DEMO} orders --deploy", status=1, want=["migrate will apply"])
    run.save("deploy-orders")
    run.sh(f"{DEMO} orders --deploy --format json", status=1, want=['"pending"'])
    run.save("deploy-orders-json")
    run.sh("python testproject/manage.py check --database default", status=1)
    run.save("check")
    run.sh(f"{DEMO}_fix --dry-run catalog orders", want=["Nothing was changed"])
    run.save("dry-run")
    run.sh(f"{DEMO}_fix --dry-run orders --format json", status=0, want=['"dry_run": true'])
    run.save("dry-run-json")
    run.sh(f"{DEMO} --help", want=["--all-databases"], echo_status=False)
    run.save("help")
    for bad in ("--dry-run", "--all-databases --database nope", "--database nope"):
        run.sh(f"{DEMO} {bad}", status=2, want=["CommandError"])
    run.sh(f"{DEMO}_fix --format github", status=2, want=["invalid choice"])
    run.sh(f"{DEMO} --all-databases --compare other", status=2, want=["not allowed with"])
    run.sh(f"{DEMO} nope", status=2, want=["CommandError"])
    run.save("usage-errors")
    run.sh(f"{DEMO}_fix", status=2, want=["--noinput"])
    run.save("no-terminal")
    run.sh(f"{DEMO} --write-baseline", want=["Wrote"])
    run.sh(f"{DEMO} --baseline testproject/migration_doctor_baseline.json", want=["known"])
    run.save("baseline")


@scenario
def scenario_formats() -> None:
    """--graph (mermaid, dot), --format sarif and --format html on the demo database; the
    page is drawn by headless Chromium into docs/_static/html-report.png."""
    run = demo("formats")
    run.sh(f"{DEMO}_graph orders", want=["flowchart TB", "E001"])
    run.save("graph-orders")
    run.sh(f"{DEMO}_graph catalog --format dot", want=["digraph migrations", "E002"])
    run.save("graph-catalog-dot")
    run.sh(f"{DEMO}_graph nope", status=2, want=["CommandError"])
    run.save("graph-unknown")
    sarif = run.sh(f"{DEMO} orders --format sarif", show=False, status=1)
    (run.root / "orders.sarif").write_text(sarif)
    run.chunks.append(f"$ {DEMO} orders --format sarif > orders.sarif\n$ echo $?\n1\n")
    run.sh(
        "python -c \"import json; print(json.dumps(json.load(open('orders.sarif'))"
        "['runs'][0]['results'][0], indent=2))\"",
        echo_status=False,
        want=['"ruleId": "migration_doctor.E001"'],
    )
    run.save("sarif-orders")
    page = run.sh(f"{DEMO} --format html", show=False, status=1)
    (run.root / "report.html").write_text(page)
    run.chunks.append(f"$ {DEMO} --format html > report.html\n$ echo $?\n1\n")
    run.save("html")
    browser = shutil.which("chromium")
    if browser is None:
        raise SystemExit("formats: the screenshot needs chromium (apt-get install chromium)")
    static = DOCS / "_static"
    static.mkdir(exist_ok=True)
    subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={run.root / 'chromium'}",
            f"--screenshot={static / 'html-report.png'}", "--window-size=1200,1600",
            (run.root / "report.html").as_uri(),
        ],
        check=True, capture_output=True, timeout=TIMEOUT, env={**run.env, "HOME": str(run.root)},
    )  # fmt: skip
    print("  wrote docs/_static/html-report.png")


@scenario
def scenario_repair() -> None:
    run = demo("repair")
    run.sh(f"{DEMO}_fix --noinput", want=["Applied 8 step(s)"])
    run.save("fix")
    run.sh(f"{DEMO}_migrate", want=["Holding the lock"])
    run.save("migrate-locked")
    run.sh(f"{DEMO}_history", want=["repair step(s) recorded"], echo_status=False)
    run.save("history")
    run.sh(f"{DEMO}_history --format json", want=['"repairs"'], echo_status=False)
    run.save("history-json")
    run.sql('ALTER TABLE "orders_order" DROP COLUMN "note"', db="testproject/demo.sqlite3")
    run.sh(f"{DEMO} orders", status=1, want=["recorded by: migration_doctor on"])
    run.save("after-drop")
    [backup] = sorted((run.root / "testproject" / "migration_doctor_backups").glob("*.json"))
    run.sh(f"{DEMO}_restore {backup.relative_to(run.root)} --noinput", want=["Restored"])
    run.save("restore")


@scenario
def scenario_databases() -> None:
    run = demo("databases")
    run.settings(
        """
        DATABASES["replica"] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "replica.sqlite3"),
        }
        DATABASES["reporting"] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "reporting.sqlite3"),
        }
        """
    )
    run.sh("python testproject/manage.py migrate --database replica --verbosity 0", show=False)
    (run.root / "testproject" / "reporting.sqlite3").write_text("not a database\n")
    run.sh(f"{DEMO} --all-databases --format json", status=2, want=['"unreachable"'])
    run.save("all-databases-json")
    run.sh(f"{DEMO} --compare replica", status=1, want=["comparing"])
    run.save("compare")
    run.sh(f"{DEMO} --compare replica --format json", status=1, want=['"only_in"'])
    run.save("compare-json")


@scenario
def scenario_settings() -> None:
    run = project("settings", migrated=False)
    run.settings('MIGRATION_DOCTOR = {"IGNORE_TABLE": ["legacy_*"]}')
    run.sh(SHOW, status=None, want=["IGNORE_TABLE"], shorten=True)
    run.save("settings-typo")


# -- one scenario per finding id ---------------------------------------------------------------


def django_says(run: Run, command: str, name: str, status: int | None = 1, **kw: object) -> None:
    run.sh(command, status=status, shorten=True, **kw)  # type: ignore[arg-type]
    run.save(name)


@scenario
def scenario_E001() -> None:
    run = project("E001")
    run.sql(
        "DELETE FROM django_migrations WHERE app = 'catalog' "
        "AND name IN ('0002_tags', '0003_product_sku_stock')"
    )
    run.sh(f"{SHOW} catalog", status=1, want=["E001 table-exists"])
    run.save("E001")
    run.sh(f"{FIX} catalog --dry-run", want=["[table-exists]"])
    run.save("E001-fix")
    django_says(run, "python manage.py migrate catalog", "E001-django", want=["already exists"])


@scenario
def scenario_E001_sqlite() -> None:
    """On SQLite an AddField with a default rebuilds the table instead of failing."""
    run = project("E001-sqlite")
    run.sql(
        "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, "
        "email, is_staff, is_active, date_joined) VALUES ('', 0, 'ada', '', '', '', 0, 1, "
        "'2025-01-01 00:00:00')"
    )
    run.sql(
        "INSERT INTO orders_order (customer_id, placed_at, note) "
        "VALUES (1, '2025-01-01 00:00:00', 'gift wrap')"
    )
    run.sql(
        "DELETE FROM django_migrations WHERE app = 'orders' "
        "AND name IN ('0002_order_note', '0003_order_default_notes')"
    )
    run.sh(f"{SHOW} orders", status=1, want=["E001 table-exists"])
    run.sh("python manage.py migrate orders", want=["Applying orders.0002_order_note... OK"])
    run.sql("SELECT id, note FROM orders_order")
    run.save("E001-sqlite")


@scenario
def scenario_E002() -> None:
    run = project("E002")
    run.sql(
        "DELETE FROM django_migrations WHERE app = 'catalog' AND name = '0003_product_sku_stock'"
    )
    run.sql('ALTER TABLE "catalog_product" DROP COLUMN "stock"')
    run.sh(f"{SHOW} catalog", status=1, want=["E002 partially-applied"])
    run.save("E002")
    run.sh(f"{FIX} catalog --dry-run", want=["[partially-applied]"])
    run.save("E002-fix")
    django_says(run, "python manage.py migrate catalog", "E002-django", status=None)


@scenario
def scenario_E003() -> None:
    run = project("E003")
    run.sql(
        "DELETE FROM django_migrations WHERE app = 'admin' "
        "AND name = '0002_logentry_remove_auto_add'"
    )
    run.sh(f"{SHOW} admin", status=1, want=["E003 inconsistent-history"])
    run.save("E003")
    run.sh(f"{FIX} admin --dry-run", want=["[inconsistent-history]"])
    run.save("E003-fix")
    django_says(run, "python manage.py migrate", "E003-django", want=["InconsistentMigration"])


@scenario
def scenario_E004() -> None:
    run = project("E004")
    run.sql('DROP TABLE "catalog_product_tags"')
    run.sh(f"{SHOW} catalog", status=1, want=["E004 missing-schema"])
    run.save("E004")
    run.sh(f"{FIX} catalog --dry-run", want=["[missing-schema]"])
    run.save("E004-fix")
    django_says(
        run,
        "python manage.py shell -c "
        + quoted(
            "from catalog.models import Product; print(Product.tags.through.objects.count())"
        ),
        "E004-django",
        want=["no such table"],
    )


CATEGORY_OPTIONS = """\
migrations.AlterModelOptions(
    name="category",
    options={"verbose_name_plural": "categories"},
),
"""
TAG_NAME = """\
migrations.AlterField(
    model_name="tag",
    name="name",
    field=models.CharField(max_length=50, unique=True),
),
"""
TAG_ORDERING = """\
migrations.AlterModelOptions(
    name="tag",
    options={"ordering": ["name"]},
),
"""


@scenario
def scenario_E005() -> None:
    run = project("E005")
    run.write(
        "catalog/migrations/0004_category_options.py",
        migration([AFTER_0003], CATEGORY_OPTIONS),
        save="E005-0004_category_options",
    )
    run.write(
        "catalog/migrations/0004_tag_name.py",
        migration([AFTER_0003], TAG_NAME),
        save="E005-0004_tag_name",
    )
    run.sh(f"{SHOW} catalog", status=1, want=["E005 multiple-leaves"])
    run.save("E005")
    run.sh(f"{FIX} catalog --dry-run", want=["[multiple-leaves]"])
    run.save("E005-fix")
    django_says(run, "python manage.py migrate", "E005-django", want=["Conflicting migrations"])


@scenario
def scenario_E006() -> None:
    run = project("E006", migrated=False)
    run.sh("python manage.py migrate catalog 0002_tags --verbosity 0", echo_status=False)
    run.write(f"catalog/migrations/{SQUASH_NAME}.py", SQUASH, save="squash")
    run.sh(
        "rm catalog/migrations/0001_initial.py catalog/migrations/0002_tags.py "
        "catalog/migrations/0003_product_sku_stock.py",
        echo_status=False,
    )
    run.sh(f"{SHOW} catalog", status=1, want=["E006 squash-partial"])
    run.save("E006")
    run.sh(f"{FIX} catalog --dry-run", want=["[squash-partial]"])
    run.save("E006-fix")
    django_says(run, "python manage.py migrate", "E006-django", want=["NodeNotFoundError"])


@scenario
def scenario_E007() -> None:
    run = project("E007")
    run.write(
        "catalog/migrations/0004_tag_ordering.py",
        migration([AFTER_0003, ("catalog", "0003_product_stock")], TAG_ORDERING),
        save="E007-0004_tag_ordering",
    )
    run.sh(f"{SHOW} catalog", status=1, want=["E007 missing-dependency"])
    run.save("E007")
    django_says(run, "python manage.py migrate", "E007-django", want=["NodeNotFoundError"])


BROKEN = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_product_sku_stock")]

    operations = [
        migrations.RunSQL("UPDATE catalog_product SET stock = 0 WHERE stock < 0",
    }
"""


@scenario
def scenario_E008() -> None:
    run = project("E008")
    run.write("catalog/migrations/0004_clamp_stock.py", BROKEN, save="E008-0004_clamp_stock")
    run.sh(f"{SHOW} catalog", status=1, want=["E008 migration-load-error"])
    run.save("E008")
    django_says(run, "python manage.py migrate", "E008-django", want=["SyntaxError"])


@scenario
def scenario_E009() -> None:
    run = project("E009")
    run.write(
        "catalog/migrations/0004_tag_ordering.py",
        migration([AFTER_0003, ("catalog", "0005_category_options")], TAG_ORDERING),
        save="E009-0004_tag_ordering",
    )
    run.write(
        "catalog/migrations/0005_category_options.py",
        migration([("catalog", "0004_tag_ordering")], CATEGORY_OPTIONS),
        save="E009-0005_category_options",
    )
    run.sh(f"{SHOW} catalog", status=1, want=["E009 circular-dependency"])
    run.save("E009")
    django_says(run, "python manage.py migrate", "E009-django", want=["CircularDependencyError"])


@scenario
def scenario_E012() -> None:
    run = project("E012")
    run.sh(
        "mv catalog/migrations/0003_product_sku_stock.py catalog/migrations/0003_sku_and_stock.py",
        echo_status=False,
    )
    run.sh(f"{SHOW} catalog", status=1, want=["E012 renamed-migration"])
    run.save("E012")
    run.sh(f"{FIX} catalog --dry-run", want=["[renamed-migration]"])
    run.save("E012-fix")
    django_says(run, "python manage.py migrate", "E012-django", want=["duplicate column"])


@scenario
def scenario_W001() -> None:
    run = project("W001")
    run.sql(
        "INSERT INTO django_migrations (app, name, applied) VALUES "
        "('catalog', '0004_product_barcode', '2025-03-01 10:00:00'), "
        "('newsletter', '0001_initial', '2023-06-12 08:30:00')"
    )
    run.sh(SHOW, status=0, want=["W001 stale-record"])
    run.save("W001")
    run.sh(f"{SHOW}_fix --dry-run", want=["[stale-record]"])
    run.save("W001-fix")
    django_says(run, "python manage.py showmigrations catalog", "W001-django", status=0)


@scenario
def scenario_W002() -> None:
    run = project("W002")
    run.edit(
        "catalog/models.py",
        "    stock = models.IntegerField(default=0)\n",
        "    stock = models.IntegerField(default=0)\n"
        "    weight = models.DecimalField(max_digits=6, decimal_places=2)\n",
    )
    run.sh(f"{SHOW} catalog", status=0, want=["W002 model-changes"])
    run.save("W002")
    django_says(run, "python manage.py makemigrations --check", "W002-django", status=None)


@scenario
def scenario_W003() -> None:
    run = project("W003")
    run.sql('ALTER TABLE "django_content_type" ADD COLUMN "name" varchar(100) NULL')
    run.sh(f"{SHOW} contenttypes", status=0, want=["W003 schema-drift"])
    run.save("W003")


BARCODE = """\
migrations.AddField(
    model_name="product",
    name="barcode",
    field=models.CharField(default="-", max_length=20),
    preserve_default=False,
),
"""


@scenario
def scenario_W005() -> None:
    """A branch's migration ran, then the branch was switched: its column stays."""
    run = project("W005")
    run.write(
        "catalog/migrations/0004_product_barcode.py",
        migration([AFTER_0003], BARCODE),
        save="W005-0004_product_barcode",
    )
    run.sh("python manage.py migrate --verbosity 0", echo_status=False)
    run.sh("rm catalog/migrations/0004_product_barcode.py", echo_status=False)
    run.sh(f"{SHOW} catalog", status=0, want=["W005 untracked-column"])
    run.save("W005")
    django_says(
        run,
        "python manage.py shell -c "
        + quoted(
            "from catalog.models import Category, Product; "
            "c = Category.objects.create(name='Tea', slug='tea'); "
            "Product.objects.create(name='Sencha', price=4, category=c)"
        ),
        "W005-django",
        want=["NOT NULL constraint failed"],
    )


@scenario
def scenario_I006() -> None:
    run = project("I006")
    run.sql('ALTER TABLE "catalog_product" ADD COLUMN "origin" text NULL')
    run.sh(f"{SHOW} catalog", status=0, want=["I006 untracked-column"])
    run.save("I006")


NAME_UNIQUE = """\
        migrations.AlterField(
            model_name="category",
            name="name",
            field=models.CharField(max_length=100, unique=True),
        ),
"""

NAME_UNIQUE_BY_SQL = """\
        migrations.RunSQL(
            "CREATE UNIQUE INDEX category_name_u ON catalog_category (name)",
            "DROP INDEX category_name_u",
        ),
"""


@scenario
def scenario_W006() -> None:
    """A branch made Category.name unique, then the branch was switched: the index stays."""
    run = project("W006")
    run.write(
        "catalog/migrations/0004_category_name_unique.py",
        migration([AFTER_0003], NAME_UNIQUE),
        save="W006-0004_category_name_unique",
    )
    run.sh("python manage.py migrate --verbosity 0", echo_status=False)
    run.sh("rm catalog/migrations/0004_category_name_unique.py", echo_status=False)
    run.sql("DELETE FROM django_migrations WHERE name = '0004_category_name_unique'")
    run.sh(f"{SHOW} catalog", status=0, want=["W006 untracked-constraint"])
    run.save("W006")
    django_says(
        run,
        "python manage.py shell -c "
        + quoted(
            "from catalog.models import Category; "
            "Category.objects.create(name='Tea', slug='tea'); "
            "Category.objects.create(name='Tea', slug='tea-2')"
        ),
        "W006-django",
        want=["UNIQUE constraint failed"],
    )


@scenario
def scenario_I007() -> None:
    run = project("I007")
    run.write(
        "catalog/migrations/0004_category_name_index.py",
        migration([AFTER_0003], NAME_UNIQUE_BY_SQL),
        save="I007-0004_category_name_index",
    )
    run.sh("python manage.py migrate --verbosity 0", echo_status=False)
    run.sh(f"{SHOW} catalog", status=0, want=["I007 untracked-constraint"])
    run.save("I007")


NAME_INDEXED = """\
        migrations.AlterField(
            model_name="category",
            name="name",
            field=models.CharField(max_length=100, db_index=True),
        ),
"""


@scenario
def scenario_I007_index() -> None:
    """A branch indexed Category.name, then the branch was switched: the index stays."""
    run = project("I007-index")
    run.write(
        "catalog/migrations/0004_category_name_index.py",
        migration([AFTER_0003], NAME_INDEXED),
        save="I007-index-0004_category_name_index",
    )
    run.sh("python manage.py migrate --verbosity 0", echo_status=False)
    run.sh("rm catalog/migrations/0004_category_name_index.py", echo_status=False)
    run.sql("DELETE FROM django_migrations WHERE name = '0004_category_name_index'")
    run.sh(f"{SHOW} catalog", status=0, want=["I007 untracked-constraint", "DROP INDEX"])
    run.save("I007-index")


@scenario
def scenario_W007() -> None:
    """A pending migration makes Category.name unique while two rows share a name."""
    run = project("W007")
    run.sql("INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea'), ('Tea', 'tea-2')")
    run.write(
        "catalog/migrations/0004_category_name_unique.py",
        migration([AFTER_0003], NAME_UNIQUE),
        save="W007-0004_category_name_unique",
    )
    run.sh(f"{SHOW} catalog", status=0, want=["W007 blocked-by-data"])
    run.save("W007")
    django_says(run, "python manage.py migrate catalog", "W007-django", want=["UNIQUE"])


@scenario
def scenario_W004() -> None:
    run = project("W004")
    run.sql(
        "INSERT INTO django_migrations (app, name, applied) SELECT app, name, applied "
        "FROM django_migrations WHERE app = 'orders' AND name = '0001_initial'"
    )
    run.sh(f"{SHOW} orders", status=0, want=["W004 duplicate-record"])
    run.save("W004")
    run.sh(f"{FIX} orders --dry-run", want=["[duplicate-record]"])
    run.save("W004-fix")


@scenario
def scenario_I001() -> None:
    run = project("I001", migrated=False)
    run.write(f"catalog/migrations/{SQUASH_NAME}.py", SQUASH)
    run.sh("python manage.py migrate --verbosity 0", echo_status=False)
    run.sh(f"{SHOW} catalog", status=0, want=["I001 squash-ready"])
    run.save("I001")
    run.sh(f"{FIX} catalog --dry-run --only squash-ready", want=["[squash-ready]"])
    run.edit(
        "orders/migrations/0001_initial.py",
        "('catalog', '0001_initial')",
        f"('catalog', '{SQUASH_NAME}')",
    )
    run.sh(f"{FIX} catalog --dry-run --only squash-ready", want=["delete"])
    run.save("I001-fix")


@scenario
def scenario_I002() -> None:
    run = project("I002", migrated=False)
    run.sh("python manage.py migrate orders 0001_initial --verbosity 0", echo_status=False)
    run.sh(f"{SHOW} orders", status=0, want=["unapplied migrations without schema present"])
    run.sh(f"{SHOW} orders --verbosity 2", status=0, want=["I002 unapplied"])
    run.save("I002")


@scenario
def scenario_I003() -> None:
    run = project("I003")
    run.sql('CREATE TABLE "legacy_audit_log" (id integer PRIMARY KEY, line text)')
    run.sh(SHOW, status=0, want=["I003 untracked-table"])
    run.save("I003")


@scenario
def scenario_I004() -> None:
    run = project("I004")
    run.settings('MIGRATION_MODULES = {"orders": None}')
    run.sh(f"{SHOW} orders", status=0, want=["I004 migrations-disabled"])
    run.save("I004")


@scenario
def scenario_I005() -> None:
    run = project("I005", migrated=False)
    run.settings('DATABASES["default"]["NAME"] = str(BASE_DIR / "db.sqlit3")  # a typo')
    run.sh(SHOW, status=0, want=["I005 database-missing"])
    run.sh("ls", echo_status=False)
    run.save("I005")


@scenario
def scenario_position() -> None:
    run = project("position", migrated=False)
    run.edit("catalog/models.py", "    stock = models", "    quantity = models")
    run.write(
        "catalog/migrations/0004_rename_stock_quantity.py",
        migration([AFTER_0003], 'migrations.RenameField("product", "stock", "quantity"),\n'),
        save="position-0004_rename_stock_quantity",
    )
    run.sh("python manage.py migrate --verbosity 0", echo_status=False)
    run.sh(
        "python manage.py migrate catalog 0003_product_sku_stock --verbosity 0", echo_status=False
    )
    run.sql('ALTER TABLE "catalog_product" RENAME COLUMN "stock" TO "quantity"')
    run.sh(f"{SHOW} catalog", status=1, want=["schema matches catalog up to 0004"])
    run.sh(f"{FIX} catalog --dry-run", want=["Record catalog.0004_rename_stock_quantity"])
    run.save("position")
    django_says(run, "python manage.py migrate catalog", "position-django", status=None)


# -- import-time traps: a small project of their own ------------------------------------------

TRAP_SETTINGS = """\
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["shop", "migration_doctor"]
ROOT_URLCONF = "trapsite.urls"
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE_DIR / "db.sqlite3")}
}
"""
TRAP_MANAGE = manage_py("trapsite.settings")
TRAP_ROOT_URLS = """\
from django.urls import include, path

urlpatterns = [path("shop/", include("shop.urls"))]
"""
TRAP_APP_URLS = """\
from django.urls import path

from . import views

urlpatterns = [path("", views.index)]
"""
TRAP_MODELS = """\
from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=50)
"""
TRAP_MIGRATION = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Category",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=50)),
            ],
        ),
    ]
"""
VIEWS_CLEAN = """\
from django.http import HttpResponse

from .models import Category


def index(request):
    return HttpResponse(", ".join(c.name for c in Category.objects.all()))
"""
VIEWS_QUERY = """\
from django.http import HttpResponse

from .models import Category

CATEGORY_NAMES = [c.name for c in Category.objects.all()]


def index(request):
    return HttpResponse(", ".join(CATEGORY_NAMES))
"""
MODELS_THREAD = """\
import threading

from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=50)


class Poller:
    def __init__(self):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="poller")
        self.thread.start()

    def run(self):
        while not self.stop.wait(0.1):
            pass


poller = Poller()
"""
MODELS_QUERY = """\
from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=50)


CATEGORY_NAMES = [c.name for c in Category.objects.all()]
"""


def trap_project(name: str, views: str = VIEWS_CLEAN, models: str = TRAP_MODELS) -> Run:
    run = Run(name)
    files = {
        "manage.py": TRAP_MANAGE,
        "trapsite/__init__.py": "",
        "trapsite/settings.py": TRAP_SETTINGS,
        "trapsite/urls.py": TRAP_ROOT_URLS,
        "shop/__init__.py": "",
        "shop/urls.py": TRAP_APP_URLS,
        "shop/models.py": models,
        "shop/views.py": views,
        "shop/migrations/__init__.py": "",
        "shop/migrations/0001_initial.py": TRAP_MIGRATION,
    }
    for relpath, text in files.items():
        run.write(relpath, text)
    return run


@scenario
def scenario_traps() -> None:
    run = trap_project("E010", views=VIEWS_QUERY)
    (OUT / "traps-views.py.txt").write_text(VIEWS_QUERY)
    run.sh(SHOW, status=1, want=["E010 import-time-query"])
    run.save("E010")
    django_says(run, "python manage.py migrate", "E010-django", want=["no such table"])

    run = trap_project("W010")
    run.sh("python manage.py migrate --verbosity 0", echo_status=False)
    run.write("shop/views.py", VIEWS_QUERY)
    run.sh(SHOW, status=0, want=["W010 import-time-query"])
    run.save("W010")

    run = trap_project("E011", models=MODELS_THREAD)
    (OUT / "traps-models-thread.py.txt").write_text(MODELS_THREAD)
    run.sh(SHOW, status=1, want=["E011 import-time-thread"])
    run.save("E011")
    django_says(run, "timeout 10 python manage.py check", "E011-django", status=124)

    run = trap_project("crash", models=MODELS_QUERY)
    (OUT / "traps-models-query.py.txt").write_text(MODELS_QUERY)
    run.sh(SHOW, status=1, shorten=True, want=["no such table"])
    run.save("traps-crash")
    run.sh("python -m migration_doctor --settings=trapsite.settings", status=1, want=["E010"])
    run.save("traps-python-m")
    run.sh("python -m migration_doctor --settings=trapsite.settings --format json", status=1)
    run.save("traps-python-m-json")


# -- a custom user model switched on mid-project: a project of its own ----------------------

UM_SETTINGS = """\
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "library",
    "migration_doctor",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE_DIR / "db.sqlite3")}
}
"""
# auth.User's primary key is an AutoField: the new model keeps its type.
UM_ACCOUNTS_APPS = """\
from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.AutoField"
"""
UM_USER = """\
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    bio = models.TextField(blank=True, default="")
    nickname = models.CharField(max_length=30, null=True, blank=True)
"""
UM_USER_REQUIRED = """\
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    badge = models.CharField(max_length=10)
"""
UM_SEED = (
    "from django.contrib.admin.models import ADDITION, LogEntry; "
    "from django.contrib.auth.models import User; "
    "from django.contrib.contenttypes.models import ContentType; "
    "u = User.objects.create_user('ann', password='pw-ann'); "
    "LogEntry.objects.create(user=u, content_type=ContentType.objects.get_for_model(User), "
    "object_id=str(u.pk), object_repr='ann', action_flag=ADDITION)"
)
# What `--fix` did before E013 existed: an empty accounts_user, its initial migration recorded.
UM_STRANDED = (
    "from django.contrib.auth import get_user_model; from django.db import connection; "
    "from django.db.migrations.recorder import MigrationRecorder; "
    "editor = connection.schema_editor(); editor.__enter__(); "
    "editor.create_model(get_user_model()); editor.__exit__(None, None, None); "
    "MigrationRecorder(connection).record_applied('accounts', '0001_initial')"
)


def user_switch_project(name: str, model: str = UM_USER) -> Run:
    """Migrated with auth.User (the admin, and a `library` app with a foreign key and a
    many-to-many to the user model), one user and an admin log entry; then switched to
    accounts.User with makemigrations, as a project does."""
    run = Run(name)
    files = {
        "manage.py": manage_py("umsite.settings"),
        "umsite/__init__.py": "",
        "umsite/settings.py": UM_SETTINGS,
        "library/__init__.py": "",
        "library/models.py": LIBRARY_MODELS,
        "library/migrations/__init__.py": "",
    }
    for relpath, text in files.items():
        run.write(relpath, text)
    run.sh("python manage.py makemigrations library --verbosity 0", show=False)
    run.sh("python manage.py migrate --verbosity 0", show=False)
    run.sh(f"python manage.py shell -c {quoted(UM_SEED)}", show=False)
    run.write("accounts/__init__.py", "")
    run.write("accounts/apps.py", UM_ACCOUNTS_APPS)
    run.write("accounts/models.py", model)
    run.write("accounts/migrations/__init__.py", "")
    settings = run.dir / "umsite" / "settings.py"
    settings.write_text(
        settings.read_text().replace('    "library",\n', '    "accounts",\n    "library",\n')
        + 'AUTH_USER_MODEL = "accounts.User"\n'
    )
    run.sh("python manage.py makemigrations accounts --verbosity 0", show=False)
    return run


@scenario
def scenario_E013() -> None:
    run = user_switch_project("E013")
    django_says(
        run, "python manage.py migrate", "E013-django", want=["InconsistentMigrationHistory"]
    )
    run.sh(f"{SHOW} accounts", status=1, want=["E013 user-model-switched", "repair: rename"])
    run.save("E013")
    backup = "migration_doctor_backups/before-switch.json"
    run.sh(
        f"{SHOW}_fix --noinput --backup {backup}",
        want=["Applied 4 step(s)", "No findings"],
        echo_status=False,
    )
    run.sh("python manage.py migrate", want=["No migrations to apply"], echo_status=False)
    run.sh("python manage.py makemigrations --check", want=["No changes"], echo_status=False)
    run.save("E013-fix")
    run.sh(f"{SHOW}_restore {backup} --noinput", want=["these changes of the repair stay"])
    run.sh(f"{SHOW} accounts", status=1, want=["repair: resume"])
    run.sh(f"{SHOW}_fix --noinput", want=["Applied 2 step(s)", "No findings"])
    run.save("E013-restore")

    run = user_switch_project("E013-stranded")
    run.sh(f"python manage.py shell -c {quoted(UM_STRANDED)}", show=False)
    run.sh("python manage.py migrate --verbosity 0", show=False)
    run.sh(f"{SHOW} accounts", status=1, want=["repair: drop-empty"])
    run.sh(f"{SHOW}_fix --noinput", want=["Drop the empty", "No findings"])
    run.save("E013-stranded")

    run = user_switch_project("E013-refused", model=UM_USER_REQUIRED)
    run.sh(f"{SHOW}_fix --noinput", status=1, want=["repair: refused", "By hand"])
    run.save("E013-refused")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the scenarios' names")
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(SCENARIOS))
        return 0
    unknown = sorted(set(args.names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    for tool in ("sqlite3", "timeout"):
        if shutil.which(tool) is None:
            parser.error(f"the {tool!r} command is needed")
    OUT.mkdir(exist_ok=True)
    try:
        for name in args.names or SCENARIOS:
            print(f"{name}:", flush=True)
            SCENARIOS[name]()
    finally:
        for path in CREATED:
            if args.keep:
                print(f"kept {path}")
            else:
                shutil.rmtree(path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
