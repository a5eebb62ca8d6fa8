"""`manage.py migration_doctor`: the diagnosis. Reads only; never writes to the database.

One database (the default), every migrated database (`--all-databases`), two compared
(`--compare`), or the findings written to a baseline (`--write-baseline`). The repair side
has commands of its own (`migration_doctor_fix`, `_restore`, `_history`, `_migrate`) and
the graph one too (`migration_doctor_graph`); their old spellings here (`--fix`, ...) still
work for this release, with a deprecation warning.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from django.core.management import load_command_class
from django.core.management.base import CommandParser
from django.db import DEFAULT_DB_ALIAS

from migration_doctor.baseline import write_baseline
from migration_doctor.command import DoctorCommand, add_database, add_fail_on, base_dir
from migration_doctor.compare import compare
from migration_doctor.diagnose import Report, diagnose, diagnose_each, migrated_aliases
from migration_doctor.errors import DoctorError
from migration_doctor.render.compare import render_comparison
from migration_doctor.render.github import render_github
from migration_doctor.render.html import render_html
from migration_doctor.render.json import render_document, render_json, render_json_targets
from migration_doctor.render.safe import shown
from migration_doctor.render.sarif import render_sarif, render_sarif_targets
from migration_doctor.render.tenants import render_fleet_text
from migration_doctor.render.text import render_text
from migration_doctor.snapshot import get_connection
from migration_doctor.tenants import detect, diagnose_schemas, fleet_queries
from migration_doctor.traps.child import DEFAULT_TIMEOUT, ImportWatch

FORMATS = ("text", "json", "github", "html", "sarif")
# The formats of each mode (the first is its default), and the options of a single diagnosis.
MODE_FORMATS = {
    "": FORMATS,
    "all_databases": ("text", "json", "github", "sarif"),
    "compare": ("text", "json"),
    "write_baseline": ("text",),
    "all_schemas": ("text", "json"),
    "schema": ("text", "json"),
}
DIAGNOSIS_ONLY = {"deploy": False, "baseline": None, "import_timeout": DEFAULT_TIMEOUT}

# The old spellings: the mode's option, the command that does it now, and the options of it.
LEGACY = {
    "fix": (
        "migration_doctor_fix",
        ("dry_run", "only", "backup", "allow_data_loss", "lock_timeout", "interactive"),
    ),
    "restore": ("migration_doctor_restore", ("restore_anywhere", "lock_timeout", "interactive")),
    "history": ("migration_doctor_history", ()),
    "migrate": ("migration_doctor_migrate", ("lock_timeout",)),
    "graph": ("migration_doctor_graph", ()),
}
LEGACY_DEFAULTS = {
    "dry_run": False,
    "only": None,
    "backup": None,
    "allow_data_loss": False,
    "lock_timeout": 0.0,
    "restore_anywhere": False,
    "interactive": True,
}
REMOVED_IN = "0.3.0"


def _flag(name: str) -> str:
    return "--" + {"interactive": "noinput"}.get(name, name).replace("_", "-")


def add_legacy_arguments(parser: CommandParser, modes: Any) -> None:
    """The repair options of 0.1, hidden from --help: forwarded with a deprecation warning."""
    hidden = argparse.SUPPRESS
    modes.add_argument("--fix", action="store_true", help=hidden)
    modes.add_argument("--restore", metavar="PATH", help=hidden)
    modes.add_argument("--history", action="store_true", help=hidden)
    modes.add_argument("--migrate", action="store_true", help=hidden)
    modes.add_argument("--graph", metavar="APP", help=hidden)
    parser.add_argument("--dry-run", action="store_true", help=hidden)
    parser.add_argument(
        "--noinput", "--no-input", action="store_false", dest="interactive", help=hidden
    )
    parser.add_argument("--only", help=hidden)
    parser.add_argument("--backup", help=hidden)
    parser.add_argument("--allow-data-loss", action="store_true", help=hidden)
    parser.add_argument("--lock-timeout", type=float, default=0.0, help=hidden)
    parser.add_argument("--restore-anywhere", action="store_true", help=hidden)


class Command(DoctorCommand):
    help = (
        "Compare django_migrations, the migration files and the live schema; name every "
        "disagreement with its evidence and the exact fix. Reads only: "
        "migration_doctor_fix repairs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_label", nargs="*", help="Only report findings of these apps.")
        add_database(parser)
        parser.add_argument(
            "--format",
            choices=[*FORMATS, "mermaid", "dot"],  # the last two: the old --graph only
            default=None,
            help="text (for people, default), json (one object on stdout), github (GitHub "
            "Actions annotations at the migration files), html (one self-contained page with "
            "the migration graphs) or sarif (SARIF 2.1.0, for code scanning).",
        )
        add_fail_on(
            parser,
            "Exit with status 1 when a finding at or above this severity exists (default: error).",
        )
        parser.add_argument(
            "--deploy",
            action="store_true",
            help="Pre-deploy gate: list what migrate will apply and fail when applying would "
            "fail (also on stale rows, model changes without a migration, and data that a "
            "pending migration's unique constraint forbids).",
        )
        parser.add_argument(
            "--skip-import-watch",
            action="store_false",
            dest="import_watch",
            help="Do not watch the project's import (django.setup() and the URLconf, in a "
            "second process) for import-time queries and threads.",
        )
        parser.add_argument(
            "--import-timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            metavar="SECONDS",
            help="How long importing the project may take before it is reported as an "
            f"import-time hang (default {DEFAULT_TIMEOUT:g}).",
        )
        parser.add_argument(
            "--baseline",
            metavar="PATH",
            help="Findings in this baseline file are reported as known and do not fail.",
        )
        modes = parser.add_mutually_exclusive_group()
        modes.add_argument(
            "--all-databases",
            action="store_true",
            help="Diagnose every alias in DATABASES that routers allow migrations on.",
        )
        modes.add_argument(
            "--compare",
            metavar="OTHER_ALIAS",
            help="Compare the recorded history and schema of --database with OTHER_ALIAS.",
        )
        modes.add_argument(
            "--write-baseline",
            metavar="PATH",
            nargs="?",
            const="",
            help="Write the current findings to a baseline file (default: "
            "<BASE_DIR>/migration_doctor_baseline.json) and exit 0.",
        )
        modes.add_argument(
            "--all-schemas",
            action="store_true",
            help="Diagnose the public schema and every tenant schema, each against the apps "
            "that belong there. Needs a schema-per-tenant PostgreSQL setup (django-tenants "
            "or django-pgschemas).",
        )
        modes.add_argument(
            "--schema",
            action="append",
            metavar="NAME",
            help="Diagnose this PostgreSQL schema of a schema-per-tenant setup (django-tenants "
            "or django-pgschemas); repeat for several.",
        )
        add_legacy_arguments(parser, modes)

    def run(self, options: dict[str, Any]) -> int:
        legacy = next((m for m in LEGACY if options.get(m)), None)
        if legacy:
            return self.forward(legacy, options)
        mode = self.mode(options)
        if mode == "all_databases":
            return self.all_databases(options)
        if mode == "compare":
            return self.compare(options)
        if mode == "write_baseline":
            return self.write_baseline(options)
        if mode in ("all_schemas", "schema"):
            return self.schemas(options)
        report = self.diagnose(options["database"], options, watch=options["import_watch"])
        self.render(report, options)
        return 1 if report.fails(options["fail_on"]) else 0

    def mode(self, options: dict[str, Any]) -> str:
        """Which job, after refusing what the parser cannot: an option of another command or
        of a single diagnosis, a format the mode does not have."""
        for name, default in LEGACY_DEFAULTS.items():
            if options.get(name, default) != default:
                owners = " or ".join(LEGACY[m][0] for m in LEGACY if name in LEGACY[m][1])
                raise DoctorError(f"{_flag(name)} is an option of {owners}.")
        given = [m for m in MODE_FORMATS if m and options.get(m) not in (None, False)]
        mode = given[0] if given else ""
        if mode == "write_baseline" or mode == "compare":
            single: dict[str, object] = {**DIAGNOSIS_ONLY, "fail_on": "error"}
            for name, value in single.items():
                if options.get(name, value) != value:
                    raise DoctorError(f"{_flag(name)} goes with a diagnosis, not {_flag(mode)}.")
        fmt = options["format"] = options.get("format") or MODE_FORMATS[mode][0]
        if fmt not in MODE_FORMATS[mode]:
            where = f"with {_flag(mode)}" if mode else "here (it is migration_doctor_graph's)"
            raise DoctorError(
                f"--format {fmt} is not available {where} "
                f"(choose from: {', '.join(MODE_FORMATS[mode])})."
            )
        database = options.get("database", DEFAULT_DB_ALIAS)
        if mode == "all_databases" and database != DEFAULT_DB_ALIAS:
            raise DoctorError("--all-databases and --database cannot be combined.")
        if mode in ("all_schemas", "schema") and database != DEFAULT_DB_ALIAS:
            raise DoctorError(f"{_flag(mode)} reads TENANT_DB_ALIAS: --database does not apply.")
        return mode

    def diagnose(self, alias: str, options: dict[str, Any], watch: bool = False) -> Report:
        # A child process imports the project (as manage.py would) while this one diagnoses.
        import_watch = ImportWatch(timeout=options["import_timeout"]).start() if watch else None
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

    def render(self, report: Report, options: dict[str, Any]) -> None:
        fmt = options["format"]
        if fmt == "json":
            text = render_json(report)
        elif fmt == "github":
            text = render_github(report)
        elif fmt == "html":
            text = render_html(report, apps=options["app_label"])
        elif fmt == "sarif":
            text = render_sarif(report, base_dir=base_dir())
        else:
            text = render_text(report, verbosity=options["verbosity"], color=self.color(options))
        self.stdout.write(text, ending="")

    def all_databases(self, options: dict[str, Any]) -> int:
        worst = 0
        reports: list[Report] = []
        errors: dict[str, str] = {}
        for alias, report in diagnose_each(
            migrated_aliases(), lambda alias: self.diagnose(alias, options)
        ):
            if isinstance(report, DoctorError):
                self.stderr.write(str(report))
                errors[alias] = str(report)
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
            targets = render_sarif_targets(reports, errors, base_dir=base_dir())
            self.stdout.write(targets, ending="")
        return worst

    def schemas(self, options: dict[str, Any]) -> int:
        """A schema-per-tenant fleet: every schema's report, grouped, in one output."""
        setup = detect()  # one line before anything starts when this is no tenant setup
        watch = options["import_watch"]
        import_watch = ImportWatch(timeout=options["import_timeout"]).start() if watch else None
        try:
            with self.progress(options["format"] == "text", "Diagnosing schemas") as progress:
                fleet, reports = diagnose_schemas(
                    options["schema"] or [],
                    options["app_label"],
                    baseline=Path(options["baseline"]) if options["baseline"] else None,
                    deploy=options["deploy"],
                    import_watch=import_watch,
                    on_schema_done=progress.advance,
                )
        finally:
            if import_watch is not None:
                import_watch.close()
        if options["format"] == "json":
            text = render_json_targets(
                reports, {}, options["fail_on"],
                healthy=sum(not r.findings for r in reports),
                statements=fleet_queries(fleet, reports),
            )  # fmt: skip
        else:
            text = render_fleet_text(
                reports,
                database=setup.alias,
                public=setup.public,
                queries=fleet_queries(fleet, reports),
                library=setup.library,
                verbosity=options["verbosity"],
                color=self.color(options),
            )
        self.stdout.write(text, ending="")
        return 1 if any(r.fails(options["fail_on"]) for r in reports) else 0

    def compare(self, options: dict[str, Any]) -> int:
        other = options["compare"]
        get_connection(other)  # one clear line when the alias is wrong or unreachable
        result = compare(options["database"], other)
        if options["format"] == "json":
            self.stdout.write(render_document(result.as_dict()), ending="")
        else:
            self.stdout.write(render_comparison(result), ending="")
        return 1 if result.differs else 0

    def write_baseline(self, options: dict[str, Any]) -> int:
        given = options["write_baseline"]
        if given.endswith(("/", "\\")):  # a directory meant: Path() would drop the slash
            raise DoctorError(f"Cannot write the baseline to {given}: it is a directory.")
        path = Path(given or (base_dir() / "migration_doctor_baseline.json"))
        report = diagnose(options["database"], options["app_label"])
        count = write_baseline(path, report.findings)
        self.stdout.write(
            f"Wrote {count} finding(s) of database {report.database!r} to {shown(path)}."
        )
        return 0

    def forward(self, mode: str, options: dict[str, Any]) -> int:
        """The 0.1 spelling (`migration_doctor --fix ...`): run the command that does it now,
        after saying so on stderr."""
        name, own = LEGACY[mode]
        for option, default in LEGACY_DEFAULTS.items():
            if option not in own and options.get(option, default) != default:
                raise DoctorError(f"{_flag(option)} is not an option of {name} ({_flag(mode)}).")
        self.stderr.write(
            f"warning: `migration_doctor {_flag(mode)}` is deprecated and will be removed in "
            f"migration_doctor {REMOVED_IN}: use `manage.py {name}`."
        )
        command = load_command_class("migration_doctor", name)
        assert isinstance(command, DoctorCommand)
        command.stdout, command.stderr = self.stdout, self.stderr
        positional = {"restore": options["restore"], "graph": options["graph"]}.get(mode)
        parsed = vars(command.create_parser("manage.py", name).parse_args(
            [positional] if positional else []
        ))  # fmt: skip
        shared = ("app_label", "database", "format", "fail_on", "verbosity", "no_color",
                  "force_color", *own)  # fmt: skip
        parsed.update({k: options[k] for k in shared if k in parsed and k in options})
        if options.get("format") is None and "format" in parsed:
            parsed["format"] = None
        return command.run(parsed)
