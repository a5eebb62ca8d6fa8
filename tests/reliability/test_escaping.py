"""Names that try to act instead of being read: ESC/OSC sequences (clear the screen, plant a
hyperlink), CR/LF followed by GitHub workflow commands (`::error::`, `::set-env`), the legacy
`##[command]` the Actions runner executes anywhere in a line, bidi overrides, C0/C1 controls,
rich markup, and a directory whose name is a shell command substitution.

They sit in django_migrations rows (of an installed app and of one that is not), in a table's
name, in a migration file's name and the table it creates, and in the directory of the
migration package. Every human-readable output (text, github, the repair plan, --history,
--compare) shows them escaped; JSON carries them exactly; every printed shell command, pasted
into a shell, names exactly the file or migration it is about and runs nothing else.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
import textwrap
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections

from migration_doctor.diagnose import diagnose
from migration_doctor.render.github import display_path, escape_property
from migration_doctor.render.safe import json_safe, shown, sql_lines

from .. import helpers as h
from ..conftest import add_alias, remove_alias, scratch_database
from ..test_graph_findings import SQUASH, SQUASH_NAME

# Rows of the installed app `catalog` that no file has (stale records).
ROW_NAMES = [
    "0005_\x1b[2J\x1b[H",  # clear the screen
    "0005_\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07",  # an OSC 8 hyperlink
    "0005_\n::error::pwned",  # a workflow command on a line of its own
    "0005_\r::set-env name=X::1",
    "0005_\u202egnp.exe",  # right-to-left override
    "0005_bel\x07del\x7fcsi\x9b2J",  # BEL, DEL, the 8-bit CSI
    "0005 ##[error]legacy",  # the runner's legacy command form, anywhere in a line
    "::warning::at the start",
    "0005_[bold red]markup[/]",
    "0005_\u2028ls\u2029ps\u200bzw\ufeffbom\u2066iso",
    "0005_\t\x0b\x0c\x1c\x85",
]
# A row of an app that is not installed: its fix is a DELETE to paste.
HOSTILE_APP = "\x1b[31mevil\n::error::app"
# A table no model accounts for (untracked-table). MariaDB limits names to 64 characters.
TABLE = "t\x1b[2J\n::error::tbl\u202e"
# A migration file, and the table it creates (table-exists once its row is deleted).
MIGRATION = "0004_\x1b[2J\n::error::file\u202e"
MODEL_TABLE = "m\x1b]8;;x\x07\n::notice::t"
# The directory the migration package lives in (sys.path entry).
DIRECTORY = "pkgs $(touch pwned) `touch pwned` \x1b[2J\n::error::dir"

HOSTILE_MIGRATION = f"""\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_product_sku_stock")]

    operations = [
        migrations.CreateModel(
            name="Hostile",
            fields=[("id", models.BigAutoField(primary_key=True, serialize=False))],
            options={{"db_table": {MODEL_TABLE!r}}},
        ),
    ]
"""


# What may never reach a terminal or a log raw: every control character but the renderer's
# own line feed, every format character (bidi, zero-width, BOM), the line/paragraph separators.
def raw_controls(text: str) -> list[str]:
    return sorted(
        {
            c
            for c in text
            if c != "\n" and unicodedata.category(c) in {"Cc", "Cf", "Cs", "Zl", "Zp"}
        }
    )


def assert_inert(text: str, *, annotations: int = 0) -> None:
    """No raw control/bidi character, no `##[`, and no line that GitHub's runner would take for
    a workflow command (it trims leading whitespace first) except the renderer's own
    `annotations`, which start the line and are one of error/warning/notice."""
    assert raw_controls(text) == [], text
    assert "##[" not in text, text
    commands = [line for line in text.splitlines() if line.lstrip().startswith("::")]
    assert len(commands) == annotations, "\n".join(commands)
    for line in commands:
        assert line.split(" ", 1)[0].split("::")[1] in {"error", "warning", "notice"}, line
        assert line.startswith("::"), line


def assert_names_visible(text: str, *names: str) -> None:
    """Each hostile name is there, escaped (what was done to it, the reader can see); `::` is
    broken up only where a line could start with it, not after `app.`."""
    for name in names:
        assert shown(name) in text or shown(f".{name}")[1:] in text, (name, text)


run = h.doctor


@pytest.fixture
def package(tmp_path: Path, settings: Any) -> Iterator[Path]:
    """The catalog migrations, a squash of them and the hostile migration, in a package under
    DIRECTORY; yields the package's directory."""
    root = tmp_path / DIRECTORY
    name = f"mdesc_{uuid.uuid4().hex[:10]}"
    base = root / name / "catalog"
    base.mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    (base / "__init__.py").write_text("")
    sources = {**h.app_migration_sources("catalog"), SQUASH_NAME: SQUASH}
    sources[MIGRATION] = HOSTILE_MIGRATION
    for stem, source in sources.items():
        (base / f"{stem}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(root))
    settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, "catalog": f"{name}.catalog"}
    yield base
    sys.path.remove(str(root))
    for key in [k for k in sys.modules if k.split(".")[0] == name]:
        del sys.modules[key]


@pytest.fixture
def hostile(fresh_db: str, package: Path) -> str:
    """A migrated database with every hostile name in it."""
    h.migrate(fresh_db)
    assert MODEL_TABLE in h.tables(fresh_db)
    h.unrecord(fresh_db, "catalog", MIGRATION)  # table-exists at the hostile file
    for name in ROW_NAMES:
        h.record(fresh_db, "catalog", name)
    h.record(fresh_db, HOSTILE_APP, "0001_initial")
    h.record(fresh_db, "newsletter", ROW_NAMES[2])
    h.sql(fresh_db, f"CREATE TABLE {h.qn(fresh_db, TABLE)} (id integer PRIMARY KEY)")
    return fresh_db


def kinds(alias: str) -> dict[str, set[tuple[str | None, str | None]]]:
    found: dict[str, set[tuple[str | None, str | None]]] = {}
    for f in diagnose(alias).findings:
        found.setdefault(f.kind, set()).add((f.app, f.migration))
    return found


def test_hostile_state_is_diagnosed_under_the_exact_names(hostile: str) -> None:
    found = kinds(hostile)
    assert found["stale-record"] == {("catalog", n) for n in ROW_NAMES} | {
        (HOSTILE_APP, "0001_initial"),
        ("newsletter", ROW_NAMES[2]),
    }
    assert found["table-exists"] == {("catalog", MIGRATION)}
    assert ("catalog", SQUASH_NAME) in found["squash-ready"]
    [untracked] = diagnose(hostile).find("untracked-table")
    assert TABLE in untracked.message


@pytest.mark.parametrize("verbosity", ["1", "2"])
def test_text_output_shows_every_name_escaped(hostile: str, verbosity: str) -> None:
    status, out = run(hostile, "-v", verbosity)
    assert status == 1, out
    assert_inert(out)
    assert_names_visible(out, *ROW_NAMES, HOSTILE_APP, TABLE, MIGRATION, DIRECTORY)
    assert "[bold red]markup[/]" in out  # rich markup in a name is text, not style


def test_colored_text_has_only_the_renderers_own_escape_sequences(hostile: str) -> None:
    status, out = run(hostile, "--force-color")
    assert status == 1
    sgr = re.compile(r"\x1b\[[0-9;]*m")  # rich's colours: the only ESC allowed
    assert sgr.search(out)
    assert_inert(sgr.sub("", out))


def test_github_annotations_are_one_line_each(hostile: str, package: Path) -> None:
    status, out = run(hostile, "--format", "github")
    assert status == 1, out
    report = diagnose(hostile)
    assert_inert(out, annotations=len(report.findings))
    lines = out.splitlines()
    assert len(lines) == len(report.findings) + 1
    assert lines[-1].startswith("migration_doctor: database ")
    # The hostile file is the location of its table-exists annotation, escaped as a property.
    [located] = [line for line in lines if "table-exists" in line]
    path = display_path(str(package / f"{MIGRATION}.py"))
    assert located.startswith(f"::error file={escape_property(shown(path))},line=")
    assert "\\x1b[2J\\n%3A%3Aerror%3A%3Afile\\u202e.py" in located
    assert_names_visible(out, *ROW_NAMES)


def test_json_carries_every_name_exactly(hostile: str) -> None:
    status, out = run(hostile, "--format", "json")
    assert status == 1
    assert raw_controls(out) == [] and "##[" not in out  # what a CI log sees
    document = json.loads(out)
    stale = {
        (f["app"], f["migration"]) for f in document["findings"] if f["kind"] == "stale-record"
    }
    assert stale == {("catalog", n) for n in ROW_NAMES} | {
        (HOSTILE_APP, "0001_initial"),
        ("newsletter", ROW_NAMES[2]),
    }
    [exists] = [f for f in document["findings"] if f["kind"] == "table-exists"]
    assert exists["migration"] == MIGRATION
    [untracked] = [f for f in document["findings"] if f["kind"] == "untracked-table"]
    assert TABLE in untracked["message"]


def test_printed_commands_quote_names_and_paths(
    hostile: str, package: Path, tmp_path: Path
) -> None:
    """Pasted into a shell, each command names exactly its migration or file."""
    report = diagnose(hostile)
    [exists] = report.find("table-exists", "catalog", MIGRATION)
    assert [shlex.split(c) for c in exists.fix.commands] == [
        ["python", "manage.py", "migrate", "catalog", MIGRATION, "--fake"]
    ]
    [delete] = report.find("stale-record", HOSTILE_APP, "0001_initial")[0].fix.commands
    assert delete.startswith("DELETE FROM ")  # SQL, quoted as SQL (test_odd_rows.py)

    [squash] = report.find("squash-ready", "catalog", SQUASH_NAME)
    originals = ["0001_initial", "0002_tags", "0003_product_sku_stock"]
    files = [package / f"{n}.py" for n in originals]
    assert [shlex.split(c) for c in squash.fix.commands] == [["rm", str(f)] for f in files]
    # A real shell runs them: exactly those files go, and no substitution runs.
    for command in squash.fix.commands:
        done = subprocess.run(["sh", "-c", command], cwd=tmp_path, capture_output=True)
        assert done.returncode == 0, done
    assert not any(f.exists() for f in files)
    assert (package / f"{SQUASH_NAME}.py").exists()
    assert not list(tmp_path.rglob("pwned")) and not (Path.cwd() / "pwned").exists()


def test_repair_plan_history_and_their_json(hostile: str, tmp_path: Path) -> None:
    status, plan = run(hostile, "--fix", "--dry-run")
    assert "Dry run for database" in plan
    assert_inert(plan)
    assert_names_visible(plan, ROW_NAMES[0], MIGRATION)
    # The INSERT that records the hostile migration: its literal is one line, escaped.
    [insert] = [line for line in plan.splitlines() if "INSERT INTO" in line]
    assert shown(MIGRATION).replace("'", "''") in insert

    status, _ = run(hostile, "--fix", "--noinput", "--backup", str(tmp_path / "b.json"))
    found = kinds(hostile)
    assert "table-exists" not in found
    assert {("catalog", n) for n in ROW_NAMES} & found.get("stale-record", set()) == set()

    status, history = run(hostile, "--history")
    assert status == 0 and "repair step(s) recorded" in history
    assert_inert(history)
    assert_names_visible(history, ROW_NAMES[2], MIGRATION)

    status, out = run(hostile, "--history", "--format", "json")
    assert raw_controls(out) == [] and "##[" not in out
    rows = {row for repair in json.loads(out)["repairs"] for row in repair["rows"]}
    assert f"catalog.{MIGRATION}" in rows
    assert {f"catalog.{n}" for n in ROW_NAMES} <= rows


def test_the_fix_questions_and_its_json(hostile: str, monkeypatch: Any) -> None:
    prompts: list[str] = []
    monkeypatch.setattr("migration_doctor.command.stdin_is_terminal", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "q")
    out = io.StringIO()
    with contextlib.suppress(SystemExit):
        call_command("migration_doctor_fix", database=hostile, stdout=out)
    assert prompts
    assert_inert("\n".join(prompts))
    assert_names_visible("\n".join(prompts), MIGRATION)

    _, text = run(hostile, "--fix", "--dry-run", "--format", "json")
    assert raw_controls(text) == [] and "##[" not in text
    steps = json.loads(text)["steps"]
    assert MIGRATION in {step.get("migration") for step in steps}


def test_system_checks_and_the_pytest_plugin_show_names_escaped(hostile: str) -> None:
    """`manage.py check --database` and a failing pytest run print findings too."""
    from migration_doctor.checks import check_migration_state
    from migration_doctor.pytest_plugin import describe, failing

    messages = check_migration_state(databases=[hostile])
    assert messages
    # Django's own layout: "\n\tHINT: ", and the hint's continuation lines after a tab.
    text = "\n".join(str(m) for m in messages).replace("\n\t", "\n ")
    assert_inert(text)
    assert_names_visible(text, MIGRATION)
    report = diagnose(hostile)
    text = describe(report, failing(report))
    assert_inert(text)
    assert_names_visible(text, MIGRATION)


def test_compare_shows_names_escaped(hostile: str, tmp_path: Path) -> None:
    other = "cmp_" + hostile
    cfg = dict(connections.settings[hostile])
    with scratch_database(tmp_path, "md_esc_cmp") as second:
        add_alias(other, {**cfg, "NAME": second})
        try:
            h.migrate(other)
            status, out = run(hostile, "--compare", other)
            assert status == 1, out
            assert_inert(out)
            assert_names_visible(out, *ROW_NAMES, HOSTILE_APP)
            status, out = run(hostile, "--compare", other, "--format", "json")
            only = json.loads(out)["only_in"][hostile]
            assert {f"catalog.{n}" for n in ROW_NAMES} <= set(only)
        finally:
            remove_alias(other)


BROKEN = "0006_\x1b[2J\n::error::broken"


def test_a_hostile_file_that_does_not_load(fresh_db: str, package: Path, monkeypatch: Any) -> None:
    # The squash: before Django 6.0 a replaced migration is not a node to migrate to.
    h.migrate(fresh_db, "catalog", SQUASH_NAME)
    (package / f"{BROKEN}.py").write_text(
        "from django.db import migrations\n\nclass Migration(:\n"
    )
    report = diagnose(fresh_db)
    [error] = report.find("migration-load-error", "catalog", BROKEN)
    [command] = error.fix.commands
    assert shlex.split(command) == ["python", "-m", "py_compile", str(package / f"{BROKEN}.py")]
    for args in ([], ["--format", "github"]):
        status, out = run(fresh_db, *args)
        assert status == 1
        assert_inert(out, annotations=len(report.findings) if args else 0)
        assert shown(BROKEN) in out.replace("%0A", "\n")

    # A module that raises: the `python -c` reproduction keeps the name as data.
    (package / f"{BROKEN}.py").write_text("raise RuntimeError('at import')\n")
    for key in [k for k in sys.modules if k.endswith(BROKEN)]:
        del sys.modules[key]
    [error] = diagnose(fresh_db).find("migration-load-error", "catalog", BROKEN)
    [command] = error.fix.commands
    module = error.evidence["module"]
    assert module.endswith(f".catalog.{BROKEN}")
    assert shlex.split(command) == [
        "python",
        "-c",
        f"import importlib; importlib.import_module({module!r})",
    ]
    assert_inert(run(fresh_db)[1])


# -- the escaping itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("0001_initial", "0001_initial"),
        ("café_日本語 🚀", "café_日本語 🚀"),  # printable unicode stays as it is
        ("\x1b[2J", "\\x1b[2J"),
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("\x00\x7f\x9b", "\\x00\\x7f\\x9b"),
        ("\u202e\u2066\u200b\ufeff\u2028", "\\u202e\\u2066\\u200b\\ufeff\\u2028"),
        ("\udcff", "\\udcff"),  # an undecodable byte of a file name
        ("::error::x", ":\\x3aerror::x"),
        ("a ::error::x", "a :\\x3aerror::x"),
        ("a\u00a0::x", "a\u00a0:\\x3ax"),  # the runner trims Unicode spaces too
        ("nextval('s'::regclass)", "nextval('s'::regclass)"),  # not where a line can start
        ("x ##[error]y", "x #\\x23[error]y"),
        ("[bold]", "[bold]"),
    ],
)
def test_shown(name: str, expected: str) -> None:
    assert shown(name) == expected
    assert_inert(shown(name))


def test_sql_lines_keep_the_statements_line_breaks_and_escape_the_names() -> None:
    statement = "UPDATE t\nSET a = 'x\n::error::y', \"c\nd\" = 1\r\nWHERE b = 'it''s\n'"
    assert sql_lines(statement) == [
        "UPDATE t",
        "SET a = 'x\\n::error::y', \"c\\nd\" = 1",
        "WHERE b = 'it''s\\n'",
    ]
    # MySQL strings escape quotes with backslashes too.
    assert sql_lines("SELECT 'a\\'\n::b'\nFROM t", "mysql") == ["SELECT 'a\\'\\n::b'", "FROM t"]
    assert sql_lines("") == [""]


def test_json_safe_decodes_to_the_same_values() -> None:
    value = {"name": "##[error]x \\##[ ###[", "ctl": "\x1b\n"}
    text = json_safe(json.dumps(value))
    assert "##[" not in text and raw_controls(text) == []
    assert json.loads(text) == value
