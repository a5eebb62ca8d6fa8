"""Repairing a schema-per-tenant fleet (`migration_doctor_fix --all-schemas`).

The fleet is diagnosed once (tenants.diagnose_schemas: a fixed number of statements) to
find the schemas with something to repair; each of those is then repaired exactly as a
database of its own (run.run_repair): the connection on that schema, its own lock, its own
backup file, its own ledger table, its own diagnosis under the lock and after. A schema
that fails (its lock held, a refused write, a diagnosis that cannot run) is reported and
the others go on. The fleet is diagnosed again at the end.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import DatabaseError, connections

from ..diagnose import Report
from ..errors import DoctorError, first_line
from ..tenants import (
    TenantSetup,
    detect,
    diagnose_schemas,
    fleet_queries,
    on_schema,
    tenant_command,
)
from .backup import default_path
from .plan import build_plan
from .run import Confirm, Diagnosis, RepairResult, run_repair
from .steps import Step

# What one schema's repair came to, in the order a reader cares about.
STATUSES = ("failed", "refused", "rolled-back", "introduced", "repaired", "planned", "declined")


@dataclass
class SchemaRepair:
    schema: str
    result: RepairResult | None = None
    # Why this schema could not be repaired, in one line (the others went on).
    error: str = ""

    @property
    def status(self) -> str:
        result = self.result
        if self.error or result is None:
            return "failed"
        if not result.dry_run and result.after is None and result.problems:
            return "failed"  # repaired, but the diagnosis after could not run
        if result.refused:
            return "refused"
        if result.rolled_back:
            return "rolled-back"
        if result.introduced:
            return "introduced"
        if result.dry_run:
            return "planned"
        if result.applied:
            return "repaired"
        return "declined"

    @property
    def ok(self) -> bool:
        return self.status in ("repaired", "planned", "declined")

    @property
    def why(self) -> str:
        """The one line that says why it failed ("" when it did not)."""
        if self.error:
            return self.error
        if self.result is not None and self.status == "failed":
            return self.result.problems[0]
        return ""


@dataclass
class FleetRepair:
    setup: TenantSetup
    dry_run: bool
    # The fleet's diagnosis that chose what to repair, and the one after (dry run: none).
    before: list[Report]
    repairs: list[SchemaRepair] = field(default_factory=list)
    after: list[Report] = field(default_factory=list)
    # Schemas not reached because the user answered "quit".
    not_reached: list[str] = field(default_factory=list)
    # The statements of the diagnosis after (tenants.fleet_queries).
    after_statements: int = 0

    def of_status(self, status: str) -> list[str]:
        return [r.schema for r in self.repairs if r.status == status]


def schema_diagnosis(name: str) -> Diagnosis:
    """A tenant schema read as the fleet reads it (its own catalog, not the search path's
    view, which shows the public schema's tables too)."""

    def diagnosis(database: str, labels: list[str]) -> Report:
        _, reports = diagnose_schemas([name], labels)
        for report in reports:
            if report.schema == name and report.snapshot is not None:
                return report
        raise DoctorError(f"Schema {name} does not exist (any more).")

    return diagnosis


def repairable(report: Report, only: set[str] | None, allow_data_loss: bool) -> bool:
    """Does the fleet's diagnosis of this schema give a plan with a step in it?"""
    if report.snapshot is None or not report.findings:
        return False
    return bool(build_plan(report, only, allow_data_loss).steps)


def repair_fleet(
    schemas: list[str],
    app_labels: list[str],
    *,
    only: set[str] | None = None,
    dry_run: bool = False,
    confirm: Confirm | None = None,
    backup_dir: Path | None = None,
    lock_timeout: float = 0.0,
    allow_data_loss: bool = False,
    on_target: Callable[[str, int, int], None] | None = None,
    on_plan: Callable[[str, RepairResult], None] | None = None,
    on_step: Callable[[Step, str], None] | None = None,
    on_backup: Callable[[Path], None] | None = None,
    on_schema_done: Callable[[str, int], None] | None = None,
) -> FleetRepair:
    """Repair every schema of `schemas` (all, when empty) whose diagnosis has a plan.

    `confirm` is asked per step as in a single repair; "all" holds for every later step of
    every schema, "quit" ends the fleet run (the schemas not reached are listed)."""
    setup = detect()
    read, before = diagnose_schemas(schemas, app_labels, on_schema_done=on_schema_done)
    fleet = FleetRepair(setup, dry_run, before, after_statements=fleet_queries(read, before))
    names = [r.schema for r in before if r.schema and repairable(r, only, allow_data_loss)]
    connection = connections[setup.alias]
    answered = {"all": False, "quit": False}

    def ask(step: Step) -> str:
        if answered["all"]:
            return "yes"
        answer = confirm(step)  # type: ignore[misc]
        answered["all"] = answer == "all"
        answered["quit"] = answer == "quit"
        return answer

    def planned(name: str, result: RepairResult) -> None:
        for step in result.plan.steps:  # `migrate` of a tenant names its schema
            if step.equivalent:
                step.equivalent = tenant_command(step.equivalent, name, setup.library)
        if on_plan is not None:
            on_plan(name, result)

    for number, name in enumerate(names, 1):
        if answered["quit"]:
            fleet.not_reached = names[number - 1 :]
            break
        if on_target is not None:
            on_target(name, number, len(names))
        repair = SchemaRepair(name)
        # The public schema keeps the database's own lock and backup identity.
        schema = None if name == setup.public else name
        try:
            with on_schema(connection, name):
                repair.result = run_repair(
                    setup.alias,
                    app_labels,
                    only=only,
                    dry_run=dry_run,
                    confirm=ask if confirm is not None else None,
                    backup_path=default_path(setup.alias, schema, backup_dir)
                    if backup_dir
                    else None,
                    lock_timeout=lock_timeout,
                    allow_data_loss=allow_data_loss,
                    on_plan=functools.partial(planned, name),
                    on_step=on_step,
                    on_backup=on_backup,
                    schema=schema,
                    diagnosis=schema_diagnosis(name),
                )
                for step in repair.result.plan.steps:  # on this schema, for the report
                    repair.result.context.sql_of(step)
        except (DoctorError, DatabaseError) as exc:
            repair.error = first_line(exc)
        fleet.repairs.append(repair)
    if not dry_run and any(r.result is not None and r.result.applied for r in fleet.repairs):
        read, fleet.after = diagnose_schemas(schemas, app_labels)
        fleet.after_statements = fleet_queries(read, fleet.after)
    elif not dry_run:
        fleet.after = before
    return fleet
