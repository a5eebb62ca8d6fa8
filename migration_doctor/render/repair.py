"""Repair plans and results: text (the diagnosis renderer prints the report after) and JSON.

Titles, reasons and SQL name rows, tables and files: each is shown() (see render/safe.py)."""

from __future__ import annotations

from typing import Any

from ..repair.run import RepairResult
from ..repair.steps import Step
from .json import render_document
from .safe import shown, sql_lines

# Plans with more steps than this print grouped unless -v 2.
GROUP_ABOVE = 20


def describe_step(number: int, step: Step, sql: list[str], vendor: str = "") -> str:
    lines = [f"  {number}. [{step.kind}] {shown(step.title)}"]
    lines.append(f"     because: {shown(step.reason)}")
    if not step.proven:
        lines.append(f"     NOT PROVEN: {shown(step.unproven_why)}")
    for statement in sql:
        for i, part in enumerate(sql_lines(statement, vendor)):
            lines.append(("     SQL: " if i == 0 else "          ") + part)
    if step.equivalent:
        lines.append(f"     Django: {shown(step.equivalent)}")
    return "\n".join(lines)


def grouped(result: RepairResult, verbosity: int = 1) -> bool:
    """Large plans print one line per app and kind (a wiped history is thousands of steps,
    four lines each); `-v 2` prints every step."""
    return verbosity < 2 and len(result.plan.steps) > GROUP_ABOVE


def _numbers(numbers: list[int]) -> str:
    """1, 2, 3, 7, 9, 10 -> "1-3, 7, 9-10" (at most four runs, then "...")."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = [str(a) if a == b else f"{a}-{b}" for a, b in runs[:4]]
    return ", ".join(text) + (", ..." if len(runs) > 4 else "")


def _groups(steps: list[Step]) -> list[str]:
    """One line per (kind, app, action), in the plan's order, with its count and steps."""
    by: dict[tuple[str, str, str], list[tuple[int, Step]]] = {}
    for number, step in enumerate(steps, 1):
        by.setdefault((step.kind, step.app or "", step.action), []).append((number, step))
    lines = []
    for (kind, app, action), members in by.items():
        names = [s.migration or s.title for _, s in members]
        if len(names) > 2:
            names = [names[0], "...", names[-1]]
        count = len(members)
        what = f"{count} step{'' if count == 1 else 's'} ({_numbers([n for n, _ in members])})"
        unproven = sum(1 for _, s in members if not s.proven)
        lines.append(
            f"  [{kind}] {shown(app or '(project)')}: {what}, {action or 'change'}: "
            + shown(", ".join(names))
            + (f" -- {unproven} NOT PROVEN" if unproven else "")
        )
    return lines


def render_plan(result: RepairResult, verbosity: int = 1) -> str:
    plan = result.plan
    verb = "Dry run" if result.dry_run else "Repair plan"
    out = [
        f"{verb} for database {plan.database!r} ({plan.vendor}): "
        f"{len(plan.steps):,} step{'' if len(plan.steps) == 1 else 's'}"
        + (f", holding the {shown(result.lock)}" if result.lock else "")
    ]
    if grouped(result, verbosity):
        out.extend(_groups(plan.steps))
        out.append("  (grouped by kind and app; every step with its reason and SQL: -v 2)")
    else:
        for i, step in enumerate(plan.steps, 1):
            out.append(describe_step(i, step, result.context.sql_of(step), plan.vendor))
    if plan.skipped:
        out.append("Not repaired:")
        for finding, why in plan.skipped:
            target = shown(finding.target or "(project)")
            out.append(f"  - [{finding.kind}] {target}: {shown(why)}")
    if result.refused:
        out.append("Refused before anything changed; the repair would harm the database:")
        out.extend(f"  - {shown(why)}" for why in result.refused)
        out.append(
            "  Nothing was changed. Repair these findings by hand, or leave them out with "
            "--only or app labels."
        )
    if result.dry_run:
        out.append("Nothing was changed (--dry-run).")
    return "\n".join(out) + "\n"


def render_outcome(result: RepairResult) -> str:
    out = []
    if result.applied:
        out.append(f"Applied {len(result.applied):,} step(s).")
    if result.declined:
        out.append(f"Declined {len(result.declined):,} step(s).")
    return "\n".join(out) + ("\n" if out else "")


def repair_document(result: RepairResult) -> dict[str, Any]:
    """The plan, what was applied, and the diagnosis after, in one document."""
    ctx = result.context
    return {
        "version": 1,
        "dry_run": result.dry_run,
        "steps": [s.as_dict(ctx) for s in result.plan.steps],
        "skipped": [{**f.as_dict(), "reason": why} for f, why in result.plan.skipped],
        "refused": result.refused,
        "backup": str(result.backup) if result.backup else None,
        "applied": len(result.applied),
        "after": result.after.as_dict() if result.after else None,
        "problems": result.problems,
    }


def render_repair_json(result: RepairResult) -> str:
    """`migration_doctor_fix --format json`."""
    return render_document(repair_document(result))
