"""`manage.py migration_doctor`: argument parsing and rendering only; logic lives elsewhere."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from migration_doctor.baseline import write_baseline
from migration_doctor.compare import compare, render_comparison
from migration_doctor.diagnose import Report, check_app_labels, diagnose, migrated_aliases
from migration_doctor.findings import KINDS
from migration_doctor.ledger import read_ledger
from migration_doctor.render.github import render_github
from migration_doctor.render.graph import render_app_graph
from migration_doctor.render.html import render_html
from migration_doctor.render.json import render_json, render_json_targets
from migration_doctor.render.repair import render_outcome, render_plan
from migration_doctor.render.safe import json_safe, shown
from migration_doctor.render.sarif import render_sarif, render_sarif_targets
from migration_doctor.render.text import render_text
from migration_doctor.repair import RepairResult, run_repair
from migration_doctor.repair.backup import (
    foreign,
    other_row_sets,
    read_backup,
    refusal,
    restore,
    write_backup,
)
from migration_doctor.repair.lock import repair_lock
from migration_doctor.repair.plan import REPAIRABLE, Step
from migration_doctor.snapshot import DoctorError, get_connection
from migration_doctor.traps import (
    DEFAULT_TIMEOUT,
    ImportWatch,
    InProcessWatch,
    TrapWatch,
    Watcher,
    lingering_threads,
    take_setup_watcher,
)


def _base_dir() -> Path:
    from django.conf import settings

    return Path(getattr(settings, "BASE_DIR", None) or Path.cwd())


# Each mode and the options that belong to it alone; an option given outside its mode, or
# two modes at once, is a usage error rather than silently ignored.
MODES = (
    "fix",
    "restore",
    "history",
    "migrate",
    "compare",
    "write_baseline",
    "all_databases",
    "graph",
)
ONLY_WITH = {
    "dry_run": ("fix",),
    "only": ("fix",),
    "backup": ("fix",),
    "allow_data_loss": ("fix",),
    "lock_timeout": ("fix", "restore", "migrate"),
    "restore_anywhere": ("restore",),
    "interactive": ("fix", "restore"),
    "fail_on": ("", "all_databases", "fix"),
    "deploy": ("", "all_databases"),
    "baseline": ("", "all_databases"),
    "import_timeout": ("", "all_databases"),
}
# The first format of a mode is its default.
FORMATS = {
    "": ("text", "json", "github", "html", "sarif"),
    "all_databases": ("text", "json", "github", "sarif"),
    "fix": ("text", "json"),
    "history": ("text", "json"),
    "compare": ("text", "json"),
    "restore": ("text",),
    "migrate": ("text",),
    "write_baseline": ("text",),
    "graph": ("mermaid", "dot"),
}
ALL_FORMATS = list(dict.fromkeys(f for formats in FORMATS.values() for f in formats))
DEFAULTS = {
    "dry_run": False,
    "only": None,
    "backup": None,
    "allow_data_loss": False,
    "lock_timeout": 0.0,
    "restore_anywhere": False,
    "interactive": True,
    "fail_on": "error",
    "deploy": False,
    "baseline": None,
    "import_timeout": DEFAULT_TIMEOUT,
}


def _flag(name: str) -> str:
    return "--" + {"interactive": "noinput"}.get(name, name).replace("_", "-")


def _given(options: dict[str, Any], name: str) -> bool:
    value = options.get(name)
    return value is not None if name == "write_baseline" else bool(value)


def check_options(options: dict[str, Any]) -> str:
    """Refuse combinations the command would otherwise ignore; the mode ('' a diagnosis)."""
    modes = [m for m in MODES if _given(options, m)]
    if len(modes) > 1:
        raise DoctorError(f"{_flag(modes[0])} and {_flag(modes[1])} cannot be combined.")
    mode = modes[0] if modes else ""
    for name, allowed in ONLY_WITH.items():
        if options.get(name, DEFAULTS[name]) != DEFAULTS[name] and mode not in allowed:
            where = " or ".join(_flag(m) if m else "a diagnosis" for m in allowed)
            raise DoctorError(f"{_flag(name)} goes with {where}.")
    fmt = options.get("format") or FORMATS[mode][0]
    if fmt not in FORMATS[mode]:
        raise DoctorError(
            f"--format {fmt} is not available with {_flag(mode)} "
            f"(choose from: {', '.join(FORMATS[mode])})."
        )
    if mode == "all_databases" and options.get("database", DEFAULT_DB_ALIAS) != DEFAULT_DB_ALIAS:
        raise DoctorError("--all-databases and --database cannot be combined.")
    if mode == "graph" and options.get("app_label"):
        raise DoctorError("--graph takes one app label (--graph APP), not more.")
    return mode


def _stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def ask(prompt: str) -> str:
    """A question on the terminal; without one (CI, `</dev/null`) a one-line refusal."""
    if not _stdin_is_terminal():
        raise DoctorError(
            "Standard input is not a terminal, so the confirmation cannot be asked: "
            "pass --noinput to go ahead without questions."
        )
    try:
        return input(prompt)
    except EOFError:
        raise DoctorError(
            "Standard input closed before the confirmation was answered: pass --noinput "
            "to go ahead without questions."
        ) from None


class Command(BaseCommand):
    help = (
        "Compare django_migrations, the migration files and the live schema; name every "
        "disagreement with its evidence and the exact fix. Reads only, unless --fix or "
        "--restore is given."
    )
    requires_system_checks: list[str] = []  # a broken project is exactly when it is needed
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "app_label", nargs="*", help="Only report (and repair) findings of these apps."
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help='Database alias to diagnose. Defaults to "default".',
        )
        parser.add_argument(
            "--format",
            choices=ALL_FORMATS,
            default=None,
            help="text (for people, default), json (one object on stdout), github (GitHub "
            "Actions annotations at the migration files), html (one self-contained page with "
            "the migration graphs) or sarif (SARIF 2.1.0, for code scanning). With --graph: "
            "mermaid (default) or dot.",
        )
        parser.add_argument(
            "--fail-on",
            choices=["error", "warning", "never"],
            default="error",
            help="Exit with status 1 when a finding at or above this severity exists "
            "(default: error). With --fix: what remains after the repair.",
        )
        parser.add_argument(
            "--deploy",
            action="store_true",
            help="Pre-deploy gate: list what migrate will apply and fail when applying would "
            "fail (also on stale rows and model changes without a migration).",
        )
        parser.add_argument(
            "--skip-import-watch",
            action="store_false",
            dest="import_watch",
            help="Do not watch the project's import (django.setup() and the URLconf) for "
            "import-time queries and threads.",
        )
        parser.add_argument(
            "--import-timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            metavar="SECONDS",
            help="How long importing the URLconf may take before it is reported as an "
            f"import-time hang (default {DEFAULT_TIMEOUT:g}).",
        )
        parser.add_argument(
            "--all-databases",
            action="store_true",
            help="Diagnose every alias in DATABASES that routers allow migrations on.",
        )
        parser.add_argument(
            "--compare",
            metavar="OTHER_ALIAS",
            help="Compare the recorded history and schema of --database with OTHER_ALIAS.",
        )
        parser.add_argument(
            "--graph",
            metavar="APP",
            help="Print the migration graph of APP and the migrations of other apps it "
            "depends on, marked with the findings (--format mermaid or dot).",
        )
        parser.add_argument(
            "--baseline",
            metavar="PATH",
            help="Findings in this baseline file are reported as known and do not fail.",
        )
        parser.add_argument(
            "--write-baseline",
            metavar="PATH",
            nargs="?",
            const="",
            help="Write the current findings to a baseline file (default: "
            "<BASE_DIR>/migration_doctor_baseline.json) and exit 0.",
        )
        repair = parser.add_argument_group("repair")
        repair.add_argument(
            "--fix",
            action="store_true",
            help="Repair what the evidence proves: back up django_migrations, lock, apply "
            "step by step, diagnose again.",
        )
        repair.add_argument(
            "--dry-run",
            action="store_true",
            help="With --fix: print every step with its exact SQL and Django equivalent; "
            "change nothing.",
        )
        repair.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="With --fix/--restore: do not ask for confirmation.",
        )
        repair.add_argument(
            "--only",
            metavar="KIND[,KIND]",
            help="With --fix: repair only these finding kinds (and allow their unproven steps).",
        )
        repair.add_argument(
            "--backup",
            metavar="PATH",
            help="Where to write the JSON backup of django_migrations (default: "
            "<BASE_DIR>/migration_doctor_backups/<alias>-<timestamp>.json).",
        )
        repair.add_argument(
            "--allow-data-loss",
            action="store_true",
            help="With --fix: allow rolling back the present part of a half-applied migration "
            "even when it holds data (it is in no backup: only django_migrations is).",
        )
        repair.add_argument(
            "--lock-timeout",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="How long to wait for another repair's lock before giving up (default 0).",
        )
        repair.add_argument(
            "--migrate",
            action="store_true",
            help="Run Django's migrate (these apps, --database, no input) while holding the "
            "repair lock, so a repair never races a deploy: use it in deploy scripts.",
        )
        repair.add_argument(
            "--history",
            action="store_true",
            help="List the repairs --fix applied to this database (the ledger).",
        )
        repair.add_argument(
            "--restore",
            metavar="PATH",
            help="Put django_migrations back exactly as a backup file recorded it. A backup of "
            "another database (another vendor, SQLite file, server or database name) is "
            "refused.",
        )
        repair.add_argument(
            "--restore-anywhere",
            action="store_true",
            help="With --restore: restore a backup taken from another database (or one that "
            "does not say which) into --database anyway.",
        )

    # The watcher MigrationDoctorConfig installed during django.setup() (command line only),
    # and the in-process watch that took it over.
    setup_watcher: Watcher | None = None
    in_process: InProcessWatch | None = None

    def run_from_argv(self, argv: list[str]) -> None:
        """With --traceback Django re-raises a CommandError and Python exits 1, the status
        reserved for findings: show the traceback, keep the command's own status. A
        non-daemon thread the project started at import would keep the process alive after
        the report, as it does every manage.py command: end the process instead."""
        try:
            try:
                super().run_from_argv(argv)
                sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
            except CommandError as exc:
                traceback.print_exc()
                sys.exit(exc.returncode)
            except BrokenPipeError:
                # The reader went away (`| head`): stop quietly, as command-line tools do.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                sys.exit(1)
        except SystemExit as exc:
            self.leave(exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1)
            raise
        except BaseException:
            traceback.print_exc()
            self.leave(1)
            raise
        self.leave(0)

    def leave(self, status: int) -> None:
        stranded = self.in_process is not None and self.in_process.stranded
        if not stranded and not lingering_threads():
            return
        for stream in (self.stdout, self.stderr, sys.stdout, sys.stderr):
            stream.flush()
        os._exit(status)

    def handle(self, *args: Any, **options: Any) -> None:
        self.setup_watcher = take_setup_watcher()
        try:
            self.dispatch(options)
        finally:
            if self.setup_watcher is not None:
                self.setup_watcher.uninstall()

    def dispatch(self, options: dict[str, Any]) -> None:
        try:
            mode = check_options(options)
            options["format"] = options.get("format") or FORMATS[mode][0]
            if options["restore"]:
                self.restore(options)
                return
            if options["history"]:
                status = self.history(options)
            elif options["migrate"]:
                status = self.locked_migrate(options)
            elif options["fix"]:
                status = self.fix(options)
            elif options["compare"]:
                status = self.compare(options)
            elif options["write_baseline"] is not None:
                status = self.write_baseline(options)
            elif options["all_databases"]:
                status = self.all_databases(options)
            elif options["graph"]:
                status = self.graph(options)
            else:
                report = self.diagnose(options["database"], options, watch=True)
                self.render(report, options)
                status = 1 if report.fails(options["fail_on"]) else 0
        except (DoctorError, ImproperlyConfigured) as exc:
            # A bad MIGRATION_DOCTOR setting is bad input too: one line, status 2.
            raise CommandError(str(exc), returncode=2) from exc
        if status:
            sys.exit(status)

    def diagnose(self, alias: str, options: dict[str, Any], watch: bool = False) -> Report:
        import_watch: TrapWatch | None = None
        if watch and options["import_watch"]:
            timeout = options["import_timeout"]
            if self.setup_watcher is not None:
                # This process was watched since django.setup(): finish with the URLconf here,
                # before the diagnosis loads the migration files (as migrate's checks do).
                self.in_process = InProcessWatch(self.setup_watcher, timeout=timeout).run()
                import_watch = self.in_process
            else:
                # call_command() or a process set up elsewhere: a child process imports the
                # project while this one diagnoses.
                import_watch = ImportWatch(timeout=timeout).start()
        report = diagnose(
            alias,
            options["app_label"],
            baseline=Path(options["baseline"]) if options["baseline"] else None,
            deploy=options["deploy"],
            import_watch=import_watch,
        )
        if import_watch is not None and import_watch.problem:
            self.stderr.write(
                f"note: the import-time watch did not complete: {shown(import_watch.problem)}"
            )
        return report

    def locked_migrate(self, options: dict[str, Any]) -> int:
        # migrate creates a SQLite file that does not exist yet, as the first migrate does.
        connection = get_connection(options["database"], missing_ok=True)
        labels = options["app_label"]
        if len(labels) > 1:
            raise DoctorError("--migrate takes at most one app label, as migrate does.")
        with repair_lock(connection, options["lock_timeout"]) as lock:
            self.stdout.write(f"Holding the {lock} while migrate runs.")
            call_command(
                "migrate",
                *labels,
                database=connection.alias,
                interactive=False,
                verbosity=options["verbosity"],
                stdout=self.stdout._out,
                stderr=self.stderr._out,
            )
        return 0

    def history(self, options: dict[str, Any]) -> int:
        """The ledger's rows are data anyone with write access could have written: the text
        shows() every field, the JSON keeps them exact."""
        connection = get_connection(options["database"])
        entries = read_ledger(connection)
        if options["format"] == "json":
            document = {
                "version": 1,
                "database": connection.alias,
                "repairs": [e.as_dict() for e in entries],
            }
            text = json.dumps(document, indent=2, default=str)
            self.stdout.write(json_safe(text) + "\n", ending="")
            return 0
        if not entries:
            self.stdout.write(f"No repairs recorded on database {connection.alias!r}.")
            return 0
        self.stdout.write(
            f"{len(entries)} repair step(s) recorded on database {connection.alias!r}:"
        )
        for e in entries:
            rows = shown(", ".join(e.rows)) or "(no rows)"
            self.stdout.write(
                f"  #{e.id} {e.created:%Y-%m-%d %H:%M:%S} [{shown(e.kind)}] {shown(e.step)}\n"
                f"      {shown(e.action)} {rows}; by {shown(e.user)}@{shown(e.host)}; "
                f"migration_doctor {shown(e.doctor_version)}, "
                f"Django {shown(e.django_version)}\n"
                f"      because: {shown(e.reason)}\n"
                f"      backup: {shown(e.backup)}"
            )
        return 0

    def compare(self, options: dict[str, Any]) -> int:
        other = options["compare"]
        get_connection(other)  # one clear line when the alias is wrong or unreachable
        result = compare(options["database"], other)
        if options["format"] == "json":
            self.stdout.write(json_safe(json.dumps(result.as_dict(), indent=2)) + "\n", ending="")
        else:
            self.stdout.write(render_comparison(result), ending="")
        return 1 if result.differs else 0

    def graph(self, options: dict[str, Any]) -> int:
        """The graph of one app, marked with the whole diagnosis' findings."""
        app = options["graph"]
        check_app_labels([app])  # an unknown label: one line, before the diagnosis
        report = diagnose(options["database"])
        self.stdout.write(render_app_graph(report, app, options["format"]), ending="")
        return 0

    def write_baseline(self, options: dict[str, Any]) -> int:
        path = Path(options["write_baseline"] or (_base_dir() / "migration_doctor_baseline.json"))
        report = diagnose(options["database"], options["app_label"])
        count = write_baseline(path, report.findings)
        self.stdout.write(
            f"Wrote {count} finding(s) of database {report.database!r} to {shown(path)}."
        )
        return 0

    def all_databases(self, options: dict[str, Any]) -> int:
        worst = 0
        reports: list[Report] = []
        errors: dict[str, str] = {}
        for alias in migrated_aliases():
            try:
                report = self.diagnose(alias, options)
            except DoctorError as exc:
                self.stderr.write(str(exc))
                errors[alias] = str(exc)
                worst = 2
                continue
            reports.append(report)
            if options["format"] not in ("json", "sarif"):
                self.render(report, options)
                self.stdout.write("")
            worst = max(worst, 1 if report.fails(options["fail_on"]) else 0)
        if options["format"] == "json":
            self.stdout.write(render_json_targets(reports, errors, options["fail_on"]), ending="")
        elif options["format"] == "sarif":
            targets = render_sarif_targets(reports, errors, base_dir=_base_dir())
            self.stdout.write(targets, ending="")
        return worst

    # -- output ------------------------------------------------------------------------

    def color(self, options: dict[str, Any]) -> bool:
        if options.get("force_color"):
            return True
        return not (options.get("no_color") or not self.stdout.isatty())

    def render(self, report: Report, options: dict[str, Any]) -> None:
        if options["format"] == "json":
            self.stdout.write(render_json(report), ending="")
        elif options["format"] == "github":
            self.stdout.write(render_github(report), ending="")
        elif options["format"] == "html":
            self.stdout.write(render_html(report, apps=options["app_label"]), ending="")
        elif options["format"] == "sarif":
            self.stdout.write(render_sarif(report, base_dir=_base_dir()), ending="")
        else:
            self.stdout.write(
                render_text(report, verbosity=options["verbosity"], color=self.color(options)),
                ending="",
            )

    # -- repair ------------------------------------------------------------------------

    def fix(self, options: dict[str, Any]) -> int:
        only = None
        if options["only"]:
            only = {k.strip() for k in options["only"].split(",") if k.strip()}
            unknown = sorted(only - set(KINDS))
            if unknown:
                raise DoctorError(f"Unknown finding kind(s) for --only: {', '.join(unknown)}.")
            not_repairable = sorted(only - set(REPAIRABLE))
            if not_repairable:
                raise DoctorError(
                    f"No automatic repair for: {', '.join(not_repairable)} "
                    f"(repairable: {', '.join(REPAIRABLE)})."
                )
        as_json = options["format"] == "json"
        interactive = options["interactive"] and not options["dry_run"] and not as_json
        if interactive and not _stdin_is_terminal():
            ask("")  # refuses in one line before any work, as it would at the first question
        numbers: dict[int, int] = {}

        def on_plan(result: RepairResult) -> None:
            numbers.update({id(s): i for i, s in enumerate(result.plan.steps, 1)})
            if not as_json:
                self.stdout.write(render_plan(result), ending="")

        def confirm(step: Step) -> str:
            answer = ask(
                f"Apply step {numbers.get(id(step), '?')} ({shown(step.title)})? "
                "[y]es/[n]o/[a]ll/[q]uit: "
            )
            return {"y": "yes", "a": "all", "q": "quit"}.get(answer.strip().lower()[:1], "no")

        def on_step(step: Step, state: str) -> None:
            if not as_json:
                self.stdout.write(f"  step {numbers.get(id(step), '?')}: {state}")

        def on_backup(path: Path) -> None:
            if not as_json:
                self.stdout.write(f"Backup of django_migrations written to {shown(path)}")

        result = run_repair(
            options["database"],
            options["app_label"],
            only=only,
            dry_run=options["dry_run"],
            confirm=confirm if interactive else None,
            backup_path=Path(options["backup"]) if options["backup"] else None,
            lock_timeout=options["lock_timeout"],
            allow_data_loss=options["allow_data_loss"],
            on_plan=on_plan,
            on_step=on_step,
            on_backup=on_backup,
        )
        if as_json:
            ctx = result.context
            self.stdout.write(
                json_safe(
                    json.dumps(
                        {
                            "version": 1,
                            "dry_run": result.dry_run,
                            "steps": [s.as_dict(ctx) for s in result.plan.steps],
                            "skipped": [
                                {**f.as_dict(), "reason": why} for f, why in result.plan.skipped
                            ],
                            "refused": result.refused,
                            "backup": str(result.backup) if result.backup else None,
                            "applied": len(result.applied),
                            "after": result.after.as_dict() if result.after else None,
                            "problems": result.problems,
                        },
                        indent=2,
                        default=str,
                    )
                )
                + "\n",
                ending="",
            )
        else:
            self.stdout.write(render_outcome(result), ending="")
            if result.after is not None and not result.dry_run:
                self.stdout.write("After the repair:")
                self.stdout.write(
                    render_text(
                        result.after, verbosity=options["verbosity"], color=self.color(options)
                    ),
                    ending="",
                )
        for problem in result.problems:  # after the commit: beside what was done, not instead
            self.stderr.write(f"warning: {shown(problem)}")
        if result.refused:
            return 1
        if result.dry_run:
            # What a real run would leave behind decides, as it would after --fix.
            assert result.before is not None
            left = dataclasses.replace(result.before, findings=result.would_leave())
            return 1 if left.fails(options["fail_on"]) else 0
        after = result.after
        if after is None and result.problems:
            return 2  # repaired, but what it left could not be diagnosed
        if result.introduced:
            return 1  # the repair made something worse, whatever --fail-on says
        return 1 if after is not None and after.fails(options["fail_on"]) else 0

    def restore(self, options: dict[str, Any]) -> None:
        path = Path(options["restore"])
        document = read_backup(path)  # refuses a missing, truncated or edited file first
        connection = get_connection(options["database"])
        why = foreign(document, connection)  # another database's backup, before any question
        if why and not options["restore_anywhere"]:
            raise refusal(path, why, connection)
        rows = document["rows"]
        other = other_row_sets(document)
        if options["interactive"]:
            also = "".join(f" and {len(k)} of {shown(t)}" for t, _, k in other)
            answer = ask(
                f"Replace every row of django_migrations on {connection.alias!r} with the "
                f"{len(rows)} rows of {shown(path)}{also}? [y/N]: "
            )
            if answer.strip().lower()[:1] != "y":
                self.stdout.write("Nothing restored.")
                return
        with repair_lock(connection, options["lock_timeout"]):
            safety = write_backup(connection, None, other=other)
            restored = restore(connection, path, anywhere=options["restore_anywhere"])
        self.stdout.write(shown(restored.message(connection.alias, safety)))
