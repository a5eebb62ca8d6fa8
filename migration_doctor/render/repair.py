"""Text for repair plans and results (the diagnosis renderer prints the report after)."""

from __future__ import annotations

from ..repair.plan import Step
from ..repair.run import RepairResult


def describe_step(number: int, step: Step, sql: list[str]) -> str:
    lines = [f"  {number}. [{step.kind}] {step.title}"]
    lines.append(f"     because: {step.reason}")
    if not step.proven:
        lines.append(f"     NOT PROVEN: {step.unproven_why}")
    for statement in sql:
        for i, part in enumerate(statement.splitlines() or [""]):
            lines.append(("     SQL: " if i == 0 else "          ") + part)
    if step.equivalent:
        lines.append(f"     Django: {step.equivalent}")
    return "\n".join(lines)


def render_plan(result: RepairResult) -> str:
    plan = result.plan
    verb = "Dry run" if result.dry_run else "Repair plan"
    out = [
        f"{verb} for database {plan.database!r} ({plan.vendor}): "
        f"{len(plan.steps)} step{'' if len(plan.steps) == 1 else 's'}"
        + (f", holding the {result.lock}" if result.lock else "")
    ]
    for i, step in enumerate(plan.steps, 1):
        out.append(describe_step(i, step, step.sql(result.context)))
    if plan.skipped:
        out.append("Not repaired:")
        for finding, why in plan.skipped:
            out.append(f"  - [{finding.kind}] {finding.target or '(project)'}: {why}")
    if result.dry_run:
        out.append("Nothing was changed (--dry-run).")
    return "\n".join(out) + "\n"


def render_outcome(result: RepairResult) -> str:
    out = []
    if result.applied:
        out.append(f"Applied {len(result.applied)} step(s).")
    if result.declined:
        out.append(f"Declined {len(result.declined)} step(s).")
    return "\n".join(out) + ("\n" if out else "")
