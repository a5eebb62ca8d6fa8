"""`manage.py migration_doctor_fix`: repair what the diagnosis proves.

Plan, lock, back up, apply step by step, diagnose again (see repair/run.py); `--dry-run`
prints the plan with its exact SQL and changes nothing. `--all-schemas` / `--schema` repair
a schema-per-tenant fleet, each schema on its own (see repair/fleet.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser
from django.db import DEFAULT_DB_ALIAS

from migration_doctor import command as cli
from migration_doctor.command import (
    DoctorCommand,
    add_database,
    add_fail_on,
    add_lock_timeout,
    add_noinput,
    ask,
)
from migration_doctor.errors import DoctorError
from migration_doctor.findings import KINDS
from migration_doctor.render.fleet import render_fleet_repair, render_fleet_repair_json
from migration_doctor.render.repair import (
    grouped,
    render_outcome,
    render_plan,
    render_repair_json,
)
from migration_doctor.render.safe import shown
from migration_doctor.render.text import render_text
from migration_doctor.repair import RepairResult, run_repair
from migration_doctor.repair.fleet import FleetRepair, repair_fleet
from migration_doctor.repair.plan import REPAIRABLE
from migration_doctor.repair.steps import Step
from migration_doctor.tenants import detect

ANSWERS = {"y": "yes", "a": "all", "q": "quit"}


def repair_kinds(only: str | None) -> set[str] | None:
    """`--only KIND[,KIND]`, each a kind the doctor can repair."""
    if not only:
        return None
    kinds = {k.strip() for k in only.split(",") if k.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise DoctorError(f"Unknown finding kind(s) for --only: {', '.join(unknown)}.")
    not_repairable = sorted(kinds - set(REPAIRABLE))
    if not_repairable:
        raise DoctorError(
            f"No automatic repair for: {', '.join(not_repairable)} "
            f"(repairable: {', '.join(REPAIRABLE)})."
        )
    return kinds


def choices(options: dict[str, Any], only: set[str] | None, confirm: Any) -> dict[str, Any]:
    """What the user chose, the same for one database and for a fleet."""
    return {
        "only": only,
        "dry_run": options["dry_run"],
        "confirm": confirm,
        "lock_timeout": options["lock_timeout"],
        "allow_data_loss": options["allow_data_loss"],
    }


def exit_status(result: RepairResult, fail_on: str) -> int:
    if result.refused:
        return 1
    if result.dry_run:
        # What a real run would leave behind decides, as it would after the repair.
        assert result.before is not None
        left = dataclasses.replace(result.before, findings=result.would_leave())
        return 1 if left.fails(fail_on) else 0
    if result.after is None and result.problems:
        return 2  # repaired, but what it left could not be diagnosed
    if result.introduced:
        return 1  # the repair made something worse, whatever --fail-on says
    return 1 if result.after is not None and result.after.fails(fail_on) else 0


def fleet_status(fleet: FleetRepair, fail_on: str) -> int:
    """1 when a schema's repair failed, was refused or rolled back, or when what the fleet
    is left with (a dry run: would be left with) fails --fail-on."""
    if any(not r.ok for r in fleet.repairs) or fleet.not_reached:
        return 1
    if fleet.dry_run:
        planned = {r.schema: r.result for r in fleet.repairs if r.result is not None}
        for report in fleet.before:
            result = planned.get(report.schema or "")
            left = result.would_leave() if result is not None else report.findings
            if dataclasses.replace(report, findings=left).fails(fail_on):
                return 1
        return 0
    return 1 if any(r.fails(fail_on) for r in fleet.after) else 0


class Command(DoctorCommand):
    help = (
        "Repair what migration_doctor's evidence proves: back up django_migrations, lock, "
        "apply step by step, diagnose again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_label", nargs="*", help="Only repair findings of these apps.")
        add_database(parser, "repair")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print every step with its exact SQL and Django equivalent; change nothing.",
        )
        add_noinput(parser)
        parser.add_argument(
            "--only",
            metavar="KIND[,KIND]",
            help="Repair only these finding kinds (and allow their unproven steps).",
        )
        parser.add_argument(
            "--backup",
            metavar="PATH",
            help="Where to write the JSON backup of django_migrations (default: "
            "<BASE_DIR>/migration_doctor_backups/<alias>-<timestamp>.json).",
        )
        parser.add_argument(
            "--allow-data-loss",
            action="store_true",
            help="Allow rolling back the present part of a half-applied migration even when "
            "it holds data (it is in no backup: only django_migrations is).",
        )
        add_lock_timeout(parser)
        parser.add_argument("--format", choices=["text", "json"], default=None)
        add_fail_on(
            parser,
            "Exit with status 1 when what remains after the repair has a finding at or "
            "above this severity (default: error).",
        )
        fleet = parser.add_mutually_exclusive_group()
        fleet.add_argument(
            "--all-schemas",
            action="store_true",
            help="Repair the public schema and every tenant schema that needs it, each with "
            "its own lock, backup and ledger (--backup names a directory). Needs a "
            "schema-per-tenant PostgreSQL setup (django-tenants).",
        )
        fleet.add_argument(
            "--schema",
            action="append",
            metavar="NAME",
            help="Repair this schema of a schema-per-tenant setup; repeat for several.",
        )

    def run(self, options: dict[str, Any]) -> int:
        only = repair_kinds(options["only"])
        as_json = options["format"] == "json"
        interactive = options["interactive"] and not options["dry_run"] and not as_json
        if interactive and not cli.stdin_is_terminal():
            ask("")  # refuses in one line before any work, as it would at the first question
        if options["all_schemas"] or options["schema"]:
            return self.fleet(options, only, interactive)
        numbers: dict[int, int] = {}
        quiet = [False]  # a grouped plan prints no line per step done: progress instead
        progress = self.progress(not as_json and not interactive, "Repairing")

        def on_plan(result: RepairResult) -> None:
            numbers.update({id(s): i for i, s in enumerate(result.plan.steps, 1)})
            if not as_json:
                self.stdout.write(render_plan(result, options["verbosity"]), ending="")
                quiet[0] = grouped(result, options["verbosity"])

        def confirm(step: Step) -> str:
            answer = ask(
                f"Apply step {numbers.get(id(step), '?')} ({shown(step.title)})? "
                "[y]es/[n]o/[a]ll/[q]uit: "
            )
            return ANSWERS.get(answer.strip().lower()[:1], "no")

        def on_step(step: Step, state: str) -> None:
            number = numbers.get(id(step), 0)
            if state == "running":
                if quiet[0]:
                    title = f"step {number}: {step.title}"
                    progress.current(title, len(numbers), done=number - 1)
            elif not as_json and not quiet[0]:
                self.stdout.write(f"  step {number or '?'}: {state}")

        def on_backup(path: Path) -> None:
            if not as_json:
                self.stdout.write(f"Backup of django_migrations written to {shown(path)}")

        with progress:
            result = run_repair(
                options["database"],
                options["app_label"],
                backup_path=Path(options["backup"]) if options["backup"] else None,
                on_plan=on_plan,
                on_step=on_step,
                on_backup=on_backup,
                **choices(options, only, confirm if interactive else None),
            )
        self.report(result, options)
        return exit_status(result, options["fail_on"])

    def fleet(self, options: dict[str, Any], only: set[str] | None, interactive: bool) -> int:
        """Each schema repaired on its own; the plans printed as they come when questions
        are asked, grouped at the end otherwise (with progress on a terminal)."""
        if options["database"] != DEFAULT_DB_ALIAS:
            raise DoctorError(
                "--all-schemas and --schema read TENANT_DB_ALIAS: --database does not apply."
            )
        detect()  # one line before anything starts when this is no tenant setup
        as_json = options["format"] == "json"
        verbosity = options["verbosity"]
        progress = self.progress(not as_json and not interactive, "Diagnosing schemas")

        def on_plan(schema: str, result: RepairResult) -> None:
            if interactive:
                self.stdout.write(f"Schema {shown(schema)}:")
                self.stdout.write(render_plan(result, verbosity), ending="")

        def confirm(step: Step) -> str:
            answer = ask(f"Apply {shown(step.title)}? [y]es/[n]o/[a]ll/[q]uit: ")
            return ANSWERS.get(answer.strip().lower()[:1], "no")

        def on_target(schema: str, number: int, total: int) -> None:
            progress.stage("Repairing schemas")
            progress.current(schema, total, done=number - 1)

        with progress:
            fleet = repair_fleet(
                options["schema"] or [],
                options["app_label"],
                backup_dir=Path(options["backup"]) if options["backup"] else None,
                **choices(options, only, confirm if interactive else None),
                on_target=on_target,
                on_plan=on_plan,
                on_step=None,
                on_schema_done=lambda name, total: progress.advance(name, total),
            )
        if as_json:
            self.stdout.write(render_fleet_repair_json(fleet, options["fail_on"]), ending="")
        else:
            text = render_fleet_repair(
                fleet, verbosity=verbosity, color=self.color(options), plans_shown=interactive
            )
            self.stdout.write(text, ending="")
        return fleet_status(fleet, options["fail_on"])

    def report(self, result: RepairResult, options: dict[str, Any]) -> None:
        if options["format"] == "json":
            self.stdout.write(render_repair_json(result), ending="")
        else:
            self.stdout.write(render_outcome(result), ending="")
            if result.after is not None and not result.dry_run:
                self.stdout.write("After the repair:")
                color = self.color(options)
                text = render_text(result.after, verbosity=options["verbosity"], color=color)
                self.stdout.write(text, ending="")
        for problem in result.problems:  # after the commit: beside what was done, not instead
            self.stderr.write(f"warning: {shown(problem)}")
