"""Carrying out a plan: lock, backup, files, schema, rows in one transaction, re-diagnose."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from ..diagnose import Report, diagnose
from .backup import write_backup
from .lock import repair_lock
from .plan import Context, Plan, Step, build_plan

# confirm(step) answers "yes", "no", "all" (this and every later step) or "quit".
Confirm = Callable[[Step], str]


@dataclass
class RepairResult:
    plan: Plan
    context: Context
    dry_run: bool
    backup: Path | None = None
    lock: str = ""
    applied: list[Step] = field(default_factory=list)
    declined: list[Step] = field(default_factory=list)
    after: Report | None = None


def _order(steps: Iterable[Step]) -> list[Step]:
    """Files first (they change the graph), then schema, then rows (one transaction)."""
    steps = list(steps)
    return (
        [s for s in steps if s.writes_files]
        + [s for s in steps if s.writes_schema]
        + [s for s in steps if s.writes_rows]
    )


def run_repair(
    database: str,
    app_labels: Iterable[str] = (),
    *,
    only: set[str] | None = None,
    dry_run: bool = False,
    confirm: Confirm | None = None,
    backup_path: Path | None = None,
    lock_timeout: float = 0.0,
    on_plan: Callable[[RepairResult], None] | None = None,
    on_step: Callable[[Step, str], None] | None = None,
    on_backup: Callable[[Path], None] | None = None,
) -> RepairResult:
    labels = list(app_labels)
    if dry_run:
        report = diagnose(database, labels)
        assert report.snapshot is not None
        plan = build_plan(report, only)
        plan.steps = _order(plan.steps)
        result = RepairResult(plan, Context(report.snapshot), True)
        if on_plan:
            on_plan(result)
        return result
    report = diagnose(database, labels)
    assert report.snapshot is not None
    connection = report.snapshot.connection
    with repair_lock(connection, lock_timeout) as lock:
        # Diagnose again under the lock: the plan relies only on what is true now.
        report = diagnose(database, labels)
        assert report.snapshot is not None
        plan = build_plan(report, only)
        plan.steps = _order(plan.steps)
        result = RepairResult(plan, Context(report.snapshot), False, lock=lock)
        if on_plan:
            on_plan(result)
        if not plan.steps:
            result.after = report
            return result
        chosen: list[Step] = []
        answer_all = confirm is None
        for step in plan.steps:
            answer = "yes" if answer_all else confirm(step)  # type: ignore[misc]
            if answer == "quit":
                result.declined.extend(s for s in plan.steps if s not in chosen)
                break
            if answer == "all":
                answer_all, answer = True, "yes"
            (chosen if answer == "yes" else result.declined).append(step)
        if chosen:
            result.backup = write_backup(connection, backup_path)
            if on_backup:
                on_backup(result.backup)
            ctx = result.context
            for step in [s for s in chosen if not s.writes_rows]:
                step.apply(ctx)
                result.applied.append(step)
                if on_step:
                    on_step(step, "done")
            rows = [s for s in chosen if s.writes_rows]
            if rows:
                with transaction.atomic(using=connection.alias):
                    for step in rows:
                        step.apply(ctx)
                result.applied.extend(rows)
                for step in rows:
                    if on_step:
                        on_step(step, "done")
    result.after = diagnose(database, labels)
    return result
