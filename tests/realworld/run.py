"""Real-world check: large app sets from PyPI, migrated on every backend, must be healthy.

    python tests/realworld/run.py                      # every set, every backend
    python tests/realworld/run.py --sets shop,cms --backends sqlite
    python tests/realworld/run.py --markdown results.md

For each app set (tests/realworld/requirements-<set>.txt, pinned; settings_<set>.py) a
virtualenv of its own is built under --venvs (reused while its requirements file is
unchanged), with this checkout installed editable. Then, on each backend:

1. the doctor on an empty database: only `unapplied` findings, no error or warning;
2. `migrate`;
3. for each of the set's languages (LANGUAGE_CODE): the doctor must report no error, no
   warning and nothing unapplied, and its `model-changes` findings must name exactly the
   apps and operations of the project's own `makemigrations --check --dry-run`.

A warning Django itself agrees with (an `Expected`, with the reason) must be there instead:
a set whose own `makemigrations --check` fails under a LANGUAGE_CODE, a column type Django
documents it does not migrate.

The upgrade paths migrate a database with an old release (requirements-wagtail-7.0.txt:
Wagtail 7.0 on Django 5.2; requirements-wagtail-5.2.txt: Wagtail 5.2 on Django 4.2, whose
django-taggit 4 migrations taggit 6 has rewritten) and run the current wagtail set on it:
the doctor must find only `unapplied` migrations (plus the infos a fresh install has), and
nothing after `migrate`.

A results table is printed; the exit status is 1 if anything failed. It takes about an hour
on two cores (venvs built once, then reused), so it is not part of .ci/run (90 minutes,
more than half used by the test matrix): run it before every stop that changes what the
doctor reports, and paste the table into the README. Needs PostgreSQL on 127.0.0.1:5432 and
MariaDB on 127.0.0.1:3306 (the servers and variables of the test suite; `--backends sqlite`
without them), and pyenv's Python 3.13 and 3.12 (or --python). Uses only the standard
library, so any Python 3.10+ can run it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BACKENDS = ("sqlite", "postgres", "mysql")
VENDOR = {"sqlite": "sqlite", "postgres": "postgresql", "mysql": "mysql"}
TIMEOUT = 1800


def pyenv(version: str) -> str:
    path = Path(f"/root/.pyenv/versions/{version}/bin/python")
    return str(path) if path.exists() else shutil.which(f"python{version.rsplit('.', 1)[0]}") or ""


@dataclass(frozen=True)
class Expected:
    """A warning the project has for real: Django agrees (see `why`), so it must be there."""

    kind: str
    app: str
    why: str
    backends: tuple[str, ...] = BACKENDS
    languages: tuple[str, ...] = ()  # () for every language


@dataclass
class AppSet:
    name: str
    kind: str
    settings: str
    languages: tuple[str, ...] = ("en", "de")
    python: str = "3.13.0"
    expected: tuple[Expected, ...] = ()
    old: bool = False  # an upgrade path's old release: migrates only, no doctor installed

    @property
    def requirements(self) -> Path:
        return HERE / f"requirements-{self.name}.txt"


USER_ACCOUNTS_LANGUAGE = Expected(
    "model-changes",
    "account",
    "django-user-accounts' Account.language has default=settings.LANGUAGE_CODE and its "
    "migration says 'en-us': under any other LANGUAGE_CODE the project's own makemigrations "
    "--check fails the same way",
    languages=("de",),
)
MARIADB_UUID = Expected(
    "schema-drift",
    "wagtailcore",
    "Django 4.2 created UUIDField columns as char(32); Django 5.0+ uses MariaDB's uuid type "
    "and does not convert existing columns (Django 5.0 release notes, 'Migrating existing "
    "UUIDField on MariaDB 10.7+'); Wagtail's `manage.py convert_mariadb_uuids` does, and the "
    "doctor is clean after it",
    backends=("mysql",),
)

SETS = {
    s.name: s
    for s in [
        AppSet("bare", "startproject (django.contrib.*)", "settings_bare", ("en", "de", "fr")),
        AppSet("wagtail", "CMS: Wagtail 8 and its contrib apps", "settings"),
        AppSet("cms", "CMS: django CMS 5, filer, djangocms-text/-link/-frontend", "settings_cms"),
        AppSet("shop", "e-commerce: django-oscar 4.2 (Django 5.2)", "settings_shop"),
        AppSet(
            "accounts",
            "auth/payments/history/audit: allauth, simple-history, reversion, guardian, axes, "
            "dj-stripe, django-payments",
            "settings_accounts",
        ),
        AppSet(
            "helpdesk",
            "ticketing: django-helpdesk 2.6 with teams (Django 6.0)",
            "settings_helpdesk",
            expected=(USER_ACCOUNTS_LANGUAGE,),
        ),
    ]
}


@dataclass(frozen=True)
class Upgrade:
    """`old` migrates a database, then the set `to` diagnoses it, migrates, diagnoses again."""

    name: str
    kind: str
    old: AppSet
    to: str = "wagtail"
    expected: tuple[Expected, ...] = ()  # after the final migrate
    # The upgrade's documented follow-up per backend (management commands), after which
    # the doctor must be clean without any expected warning.
    then: tuple[tuple[str, tuple[str, ...]], ...] = ()


UPGRADES = {
    u.name: u
    for u in [
        Upgrade(
            "upgrade-7.0",
            "Wagtail 7.0 LTS on Django 5.2 migrated, then Wagtail 8.0 on Django 6.1",
            AppSet("wagtail-7.0", "", "settings", old=True),
        ),
        Upgrade(
            "upgrade-5.2",
            "Wagtail 5.2 on Django 4.2 migrated, then Wagtail 8.0 on Django 6.1 (taggit 4 to 6: "
            "rewritten applied migrations, a DeleteModel)",
            AppSet("wagtail-5.2", "", "settings", python="3.12.1", old=True),
            expected=(MARIADB_UUID,),
            then=(("mysql", ("convert_mariadb_uuids",)),),
        ),
    ]
}


# -- environments -------------------------------------------------------------------------


def build_venv(app_set: AppSet, venvs: Path, python: str | None, log: Any) -> Path:
    """A virtualenv with the set's pinned requirements (and this checkout, editable)."""
    venv = venvs / app_set.name
    interpreter = python or pyenv(app_set.python)
    if not interpreter:
        raise RuntimeError(f"no Python {app_set.python} for {app_set.name} (use --python)")
    stamp = hashlib.sha256(app_set.requirements.read_bytes() + interpreter.encode()).hexdigest()
    if (venv / "stamp").exists() and (venv / "stamp").read_text() == stamp:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    log(f"  building {venv} ({app_set.requirements.name})")
    run([interpreter, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "-q", "--disable-pip-version-check"]
    run([*pip, "install", "-r", str(app_set.requirements)], check=True)
    if not app_set.old:
        run([*pip, "install", "--no-deps", "-e", str(ROOT)], check=True)
    (venv / "stamp").write_text(stamp)
    return venv


def run(
    args: list[str], env: dict[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


class Project:
    """`python -m django ...` for one set, backend and database, in the set's venv."""

    def __init__(self, app_set: AppSet, venv: Path, backend: str, db: str) -> None:
        self.app_set, self.backend, self.db = app_set, backend, db
        self.python = str(venv / "bin" / "python")
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": f"tests.realworld.{app_set.settings}",
            "MIGRATION_DOCTOR_DB": backend,
            "MIGRATION_DOCTOR_DB_NAME": db,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "testproject")]),
            "PYTHONDONTWRITEBYTECODE": "1",
            **({"MIGRATION_DOCTOR_REALWORLD_OLD": "1"} if app_set.old else {}),
        }

    def django(self, *args: str, language: str = "en") -> subprocess.CompletedProcess[str]:
        env = {**self.env, "MIGRATION_DOCTOR_LANGUAGE": language}
        return run([self.python, "-m", "django", *args], env=env)

    def database(self, action: str) -> None:
        run(
            [self.python, "-m", "tests.realworld.dbadmin", action, self.backend, self.db],
            env=self.env,
            check=True,
        )

    def migrate(self) -> None:
        done = self.django("migrate", "--no-input", "-v", "0")
        if done.returncode:
            raise RuntimeError(f"migrate failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

    def doctor(self, language: str = "en") -> dict[str, Any]:
        done = self.django(
            "migration_doctor", "--format", "json", "--fail-on", "warning", language=language
        )
        try:
            report = json.loads(done.stdout)
        except ValueError:
            raise RuntimeError(
                f"no JSON report (exit {done.returncode}):\n{done.stdout[-3000:]}\n"
                f"{done.stderr[-3000:]}"
            ) from None
        if report.get("vendor") != VENDOR[self.backend]:
            raise RuntimeError(f"the report is for {report.get('vendor')}, not {self.backend}")
        report["returncode"] = done.returncode
        return report

    def makemigrations_check(self, language: str = "en") -> dict[str, Counter[str]]:
        """What the project's own `makemigrations --check --dry-run` would write, per app."""
        done = self.django("makemigrations", "--check", "--dry-run", "-v", "1", language=language)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"makemigrations failed:\n{done.stdout}\n{done.stderr}")
        return parse_makemigrations(done.stdout)


_HEADER = re.compile(r"^Migrations for '(?P<app>[^']+)':$")
_SYMBOL = re.compile(r"^[-+~x*>]\s+")  # Django 5.1+ prefixes each operation with a symbol


def parse_makemigrations(out: str) -> dict[str, Counter[str]]:
    changes: dict[str, Counter[str]] = {}
    app = None
    for line in out.splitlines():
        header = _HEADER.match(line)
        if header:
            app = header["app"]
            changes.setdefault(app, Counter())
        elif app and line.startswith("    ") and line.strip():
            changes[app][_SYMBOL.sub("", line.strip())] += 1
        elif not line.startswith("  "):
            app = None
    return changes


def doctor_changes(report: dict[str, Any]) -> dict[str, Counter[str]]:
    return {
        f["app"]: Counter(f["evidence"]["operations"])
        for f in report["findings"]
        if f["kind"] == "model-changes"
    }


# -- checks -------------------------------------------------------------------------------


@dataclass
class Result:
    set_name: str
    backend: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    migrations: int = 0
    infos: Counter[str] = field(default_factory=Counter)
    expected: set[str] = field(default_factory=set)  # "kind app" of Expected warnings seen
    seconds: float = 0.0

    def fail(self, what: str) -> None:
        self.ok = False
        self.problems.append(what)


def explain(report: dict[str, Any], findings: list[dict[str, Any]] | None = None) -> str:
    """Every error and warning (or the given findings) with its evidence."""
    if findings is None:
        findings = [f for f in report["findings"] if f["severity"] != "info"]
    lines = [f"summary: {report['summary']}"]
    for f in findings:
        lines.append(f"  {f['severity']} {f['kind']} {f['app']}.{f['migration']}")
        lines.append(f"      {f['message']}")
        lines.append(f"      evidence: {json.dumps(f['evidence'], default=str)[:600]}")
    return "\n".join(lines)


def check_clean(
    result: Result,
    project: Project,
    language: str,
    allowed_infos: set[str] | None,
    expected: tuple[Expected, ...] = (),
) -> None:
    """The doctor on a fully migrated database: no error, no warning, nothing unapplied.

    A warning listed in `expected` (for this backend and language) must be there instead;
    `model-changes` must name exactly what the project's own makemigrations --check names.
    """
    report = project.doctor(language)
    label = f"after migrate [{language}]"
    wanted = {
        (e.kind, e.app)
        for e in expected
        if project.backend in e.backends and (not e.languages or language in e.languages)
    }
    bad = [
        f
        for f in report["findings"]
        if f["severity"] != "info" and (f["kind"], f["app"]) not in wanted
    ]
    seen = {(f["kind"], f["app"]) for f in report["findings"] if f["severity"] == "warning"}
    if bad:
        result.fail(f"{label}: unexpected errors or warnings\n" + explain(report, bad))
    if wanted - seen:
        result.fail(f"{label}: expected warnings missing: {sorted(wanted - seen)}")
    result.expected |= {f"{k} {a}" for k, a in wanted & seen}
    unapplied = [f for f in report["findings"] if f["kind"] == "unapplied"]
    if unapplied:
        result.fail(f"{label}: unapplied migrations after migrate\n" + explain(report, unapplied))
    kinds = {f["kind"] for f in report["findings"] if f["severity"] == "info"}
    if allowed_infos is not None and kinds - allowed_infos:
        extra = [f for f in report["findings"] if f["kind"] in kinds - allowed_infos]
        result.fail(f"{label}: findings a fresh install does not have\n" + explain(report, extra))
    ours, theirs = doctor_changes(report), project.makemigrations_check(language)
    if ours != theirs:
        result.fail(
            f"{label}: model-changes disagree with makemigrations --check:\n"
            f"  doctor: {json.dumps(ours, sort_keys=True)}\n"
            f"  makemigrations: {json.dumps(theirs, sort_keys=True)}"
        )
    if language == project.app_set.languages[0]:
        result.infos = Counter(f["kind"] for f in report["findings"] if f["severity"] == "info")


def check_unapplied_only(
    result: Result, project: Project, where: str, allowed_infos: set[str]
) -> int:
    """Before `migrate` (empty, or after an upgrade): only unapplied, no error or warning."""
    report = project.doctor()
    other = [
        f
        for f in report["findings"]
        if f["kind"] != "unapplied" and (f["severity"] != "info" or f["kind"] not in allowed_infos)
    ]
    if other or report["returncode"]:
        result.fail(f"{where}: findings other than unapplied\n" + explain(report, other))
    count = sum(1 for f in report["findings"] if f["kind"] == "unapplied")
    if not count:
        result.fail(f"{where}: nothing is unapplied")
    return count


def db_name(set_name: str, backend: str, scratch: Path) -> str:
    safe = re.sub(r"\W", "_", set_name)
    name = f"md_rw_{safe}_{uuid.uuid4().hex[:8]}"
    return str(scratch / f"{name}.sqlite3") if backend == "sqlite" else name


def run_set(app_set: AppSet, venv: Path, backend: str, scratch: Path) -> Result:
    result = Result(app_set.name, backend)
    project = Project(app_set, venv, backend, db_name(app_set.name, backend, scratch))
    start = time.monotonic()
    project.database("create")
    try:
        result.migrations = check_unapplied_only(result, project, "empty database", set())
        project.migrate()
        for language in app_set.languages:
            check_clean(result, project, language, None, app_set.expected)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        result.fail(str(exc))
    finally:
        project.database("drop")
    result.seconds = time.monotonic() - start
    return result


def run_upgrade(
    upgrade: Upgrade, old: Path, new: Path, backend: str, scratch: Path, fresh_infos: set[str]
) -> Result:
    """The old release migrated; the new one finds only unapplied, then nothing after migrate."""
    result = Result(upgrade.name, backend)
    name = db_name(upgrade.name, backend, scratch)
    before = Project(upgrade.old, old, backend, name)
    after = Project(SETS[upgrade.to], new, backend, name)
    start = time.monotonic()
    before.database("create")
    try:
        before.migrate()
        result.migrations = check_unapplied_only(result, after, "after the upgrade", fresh_infos)
        after.migrate()
        for language in after.app_set.languages:
            check_clean(result, after, language, fresh_infos, upgrade.expected)
        for command in dict(upgrade.then).get(backend, ()):
            done = after.django(command)
            if done.returncode:
                raise RuntimeError(f"{command} failed:\n{done.stdout}\n{done.stderr}")
            result.expected.add(f"then `{command}`: clean")
            for language in after.app_set.languages:
                check_clean(result, after, language, fresh_infos)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        result.fail(str(exc))
    finally:
        before.database("drop")
    result.seconds = time.monotonic() - start
    return result


# -- the table ----------------------------------------------------------------------------


def cell(r: Result | None) -> str:
    if r is None:
        return "—"
    if not r.ok:
        return f"**FAIL** ({len(r.problems)})"
    infos = ", ".join(f"{n} {k}" for k, n in sorted(r.infos.items())) or "no finding"
    expected = f"; expected: {', '.join(sorted(r.expected))}" if r.expected else ""
    return f"0 E / 0 W{expected} ({infos}; {r.seconds:.0f} s)"


Row = tuple[str, str, str, dict[str, Result]]


def table(rows: list[Row], backends: list[str]) -> str:
    head = ["app set", "what", "migrations", "languages", *[VENDOR[b] for b in backends]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, kind, langs, by_backend in rows:
        counts = {r.migrations for r in by_backend.values() if r.migrations}
        migrations = "/".join(str(c) for c in sorted(counts)) or "?"
        cells = [name, kind, migrations, langs, *[cell(by_backend.get(b)) for b in backends]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def expectations(names: list[str]) -> str:
    """The warnings Django agrees with, and why: printed under the table."""
    seen: dict[Expected, None] = {}
    for name in names:
        owner = SETS.get(name) or UPGRADES[name]
        seen.update(dict.fromkeys(owner.expected))
    return "\n".join(
        f"- expected `{e.kind}` on `{e.app}` ({', '.join(VENDOR[b] for b in e.backends)}"
        f"{'; LANGUAGE_CODE ' + ', '.join(e.languages) if e.languages else ''}): {e.why}."
        for e in seen
    )


def main(argv: list[str] | None = None) -> int:
    everything = [*SETS, *UPGRADES]
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(everything), help=", ".join(everything))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    venvs = Path(tempfile.gettempdir()) / "migration_doctor_realworld_venvs"
    parser.add_argument("--venvs", type=Path, default=venvs)
    parser.add_argument("--python", help="interpreter for every venv (default: pyenv's)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    names = [n for n in args.sets.split(",") if n]
    backends = [b for b in args.backends.split(",") if b]
    unknown = (set(names) - set(everything)) | (set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    args.venvs.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(message, flush=True)

    rows: list[Row] = []
    failures: list[Result] = []
    fresh_infos: dict[tuple[str, str], set[str]] = {}
    with tempfile.TemporaryDirectory(prefix="md_rw_") as tmp:
        scratch = Path(tmp)
        for name in names:
            upgrade = UPGRADES.get(name)
            app_set = SETS[upgrade.to] if upgrade else SETS[name]
            by_backend: dict[str, Result] = {}
            kind = upgrade.kind if upgrade else app_set.kind
            languages = ", ".join(app_set.languages)
            try:
                venv = build_venv(app_set, args.venvs, args.python, log)
                old = build_venv(upgrade.old, args.venvs, args.python, log) if upgrade else None
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                for backend in backends:
                    by_backend[backend] = Result(name, backend)
                    by_backend[backend].fail(f"environment: {exc}")
                failures.extend(by_backend.values())
                rows.append((name, kind, languages, by_backend))
                log(f"{name}: environment: {exc}")
                continue
            for backend in backends:
                log(f"{name} on {backend} ...")
                if upgrade:
                    assert old is not None
                    # Infos a fresh install of the new set has (its squashes), else the kinds
                    # a fresh install may have.
                    infos = fresh_infos.get((upgrade.to, backend), {"squash-ready"})
                    result = run_upgrade(upgrade, old, venv, backend, scratch, infos)
                else:
                    result = run_set(app_set, venv, backend, scratch)
                    fresh_infos[name, backend] = set(result.infos)
                by_backend[backend] = result
                log(f"  {cell(result)}")
                if not result.ok:
                    failures.append(result)
                    for problem in result.problems:
                        log("  " + problem.replace("\n", "\n  "))
            rows.append((name, kind, languages, by_backend))
    text = table(rows, backends)
    notes = expectations(names)
    print("\n" + text + ("\n\n" + notes if notes else ""))
    if args.markdown:
        args.markdown.write_text(text + ("\n\n" + notes if notes else "") + "\n")
    print(f"\n{'FAILED' if failures else 'PASSED'}: {len(failures)} failing set/backend pair(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
