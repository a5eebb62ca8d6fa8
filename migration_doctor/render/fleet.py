"""A fleet repair (`migration_doctor_fix --all-schemas`) as text and JSON.

Schemas whose repair came to the same thing (the same status and the same step titles) are
printed once, with how many and the first few names, then the plan of the first of them; a
schema that failed is named with its reason. The fleet's diagnosis after follows.
"""

from __future__ import annotations

from typing import Any

from ..repair.fleet import STATUSES, FleetRepair, SchemaRepair
from .json import render_document, targets_document
from .repair import render_plan, repair_document
from .safe import shown
from .tenants import _names, render_fleet_text
from .text import _plural

STATUS_WORDS = {
    "failed": "failed",
    "refused": "refused before anything changed",
    "rolled-back": "rolled back: the repair would have introduced a finding",
    "introduced": "repaired, but the repair introduced a finding",
    "repaired": "repaired",
    "planned": "planned (--dry-run)",
    "declined": "every step declined",
}


def _signature(repair: SchemaRepair) -> tuple[str, ...]:
    result = repair.result
    titles = tuple(s.title for s in result.plan.steps) if result is not None else ()
    return (repair.status, repair.why, *titles)


def _indent(text: str, by: int = 4) -> list[str]:
    return [" " * by + line if line else line for line in text.rstrip("\n").splitlines()]


def render_fleet_repair(
    fleet: FleetRepair,
    *,
    verbosity: int = 1,
    color: bool | None = None,
    plans_shown: bool = False,
) -> str:
    """`plans_shown`: each plan was printed as it came (interactive), not again here."""
    setup = fleet.setup
    repairs = fleet.repairs
    head = (
        f"migration_doctor_fix: database {setup.alias!r}, "
        f"{_plural(len(fleet.before), 'schema')} ({setup.library}): "
        f"{_plural(len(repairs) + len(fleet.not_reached), 'schema')} with something to repair"
    )
    out = [shown(head)]
    groups: dict[tuple[str, ...], list[SchemaRepair]] = {}
    for repair in repairs:
        groups.setdefault(_signature(repair), []).append(repair)
    # Failures first, then the largest groups, then by the first schema's name.
    order = sorted(
        groups, key=lambda k: (STATUSES.index(k[0]), -len(groups[k]), groups[k][0].schema)
    )
    for key in order:
        members = groups[key]
        first = members[0]
        names = [m.schema for m in members]
        out.append("")
        out.append(f"{_plural(len(names), 'schema')}: {STATUS_WORDS[key[0]]} — {_names(names)}")
        if first.why:
            out.append(f"    {shown(first.why)}")
        result = first.result
        if result is None:
            continue
        if not plans_shown:
            if len(names) > 1:
                out.append(f"    as in {shown(first.schema)}:")
            out.extend(_indent(render_plan(result, verbosity)))
        backups = [m.result.backup for m in members if m.result and m.result.backup]
        if backups:
            where = shown(backups[0]) if len(backups) == 1 else shown(backups[0].parent)
            also = "" if len(backups) == 1 else f" ({len(backups)} files, one per schema)"
            out.append(f"    backup: {where}{also}")
        for problem in result.problems:
            out.append(f"    {shown(problem)}")
    if fleet.not_reached:
        out.append("")
        out.append(
            f"{_plural(len(fleet.not_reached), 'schema')}: not reached (quit) — "
            f"{_names(fleet.not_reached)}"
        )
    text = "\n".join(out) + "\n"
    if fleet.after:
        text += "\nAfter the repair:\n"
        text += render_fleet_text(
            fleet.after,
            database=setup.alias,
            public=setup.public,
            queries=fleet.after_statements,
            library=setup.library,
            verbosity=verbosity,
            color=color,
        )
    return text


def fleet_repair_document(fleet: FleetRepair, fail_on: str) -> dict[str, Any]:
    targets = []
    for repair in fleet.repairs:
        result = repair.result
        targets.append(
            {
                "schema": repair.schema,
                "status": repair.status,
                "error": repair.why or None,
                "repair": repair_document(result) if result is not None else None,
            }
        )
    summary: dict[str, Any] = {"schemas": len(fleet.before), "to_repair": len(fleet.repairs)}
    for status in STATUSES:
        summary[status.replace("-", "_")] = fleet.of_status(status)
    summary["not_reached"] = fleet.not_reached
    return {
        "version": 1,
        "database": fleet.setup.alias,
        "dry_run": fleet.dry_run,
        "targets": targets,
        "summary": summary,
        "after": targets_document(fleet.after, {}, fail_on) if fleet.after else None,
    }


def render_fleet_repair_json(fleet: FleetRepair, fail_on: str) -> str:
    return render_document(fleet_repair_document(fleet, fail_on))
