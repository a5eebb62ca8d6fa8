"""Carrying out a plan: lock, backup, files, schema, rows in one transaction, re-diagnose."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import DatabaseError, transaction

from ..diagnose import Report, diagnose
from ..ledger import ensure_table, write_entry
from ..snapshot import DoctorError
from ..snapshot.rows import RecordedRow
from .backup import mirror_ledger, write_backup
from .lock import lock_in_transaction, repair_lock
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
    ledger: list[dict[str, Any]] = field(default_factory=list)


def fault_point(name: str) -> None:
    """Fault injection for the reliability tests: MIGRATION_DOCTOR_FAULT=<name> kills the
    process right here, as a power cut or `kill -9` would."""
    if os.environ.get("MIGRATION_DOCTOR_FAULT") == name:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def _locked_transaction(connection: Any) -> Iterator[None]:
    """Behind a transaction pooler a schema step runs in its own transaction holding the
    transaction-level lock; elsewhere the session lock already covers it."""
    if getattr(connection, "_migration_doctor_xact_lock", False):
        with transaction.atomic(using=connection.alias):
            lock_in_transaction(connection)
            yield
    else:
        yield


def _row(row: RecordedRow) -> dict[str, Any]:
    applied = row.applied.isoformat() if row.applied else None
    return {"id": row.id, "app": row.app, "name": row.name, "applied": applied}


def _trace(
    ctx: Context,
    step: Step,
    sql: list[str],
    before: dict[tuple[str, str], RecordedRow],
    backup: Path | None,
) -> dict[str, Any]:
    touched = step.rows_touched()
    return write_entry(
        ctx.connection,
        kind=step.kind,
        check_id=step.check_id,
        app=step.app,
        migration=step.migration,
        action=step.action,
        rows=[f"{a}.{n}" for a, n in touched],
        step=step.title,
        reason=step.reason,
        evidence=step.evidence,
        sql=sql,
        before_rows=[_row(before[k]) for k in touched if k in before],
        backup=str(backup or ""),
    )


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
    allow_data_loss: bool = False,
    on_plan: Callable[[RepairResult], None] | None = None,
    on_step: Callable[[Step, str], None] | None = None,
    on_backup: Callable[[Path], None] | None = None,
) -> RepairResult:
    labels = list(app_labels)
    if dry_run:
        report = diagnose(database, labels)
        assert report.snapshot is not None
        plan = build_plan(report, only, allow_data_loss)
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
        plan = build_plan(report, only, allow_data_loss)
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
            fault_point("after-backup")
            try:
                ensure_table(connection)  # the first repair creates the ledger; diagnoses never do
                ctx = result.context
                before = {row.key: row for row in ctx.snapshot.rows}
                for step in [s for s in chosen if not s.writes_rows]:
                    sql = step.sql(ctx)
                    with _locked_transaction(connection):
                        step.apply(ctx)
                    result.ledger.append(_trace(ctx, step, sql, before, result.backup))
                    result.applied.append(step)
                    if on_step:
                        on_step(step, "done")
                    fault_point(f"after-step-{len(result.applied)}")
                rows = [s for s in chosen if s.writes_rows]
                if rows:
                    # The row changes and their ledger entries commit together or not at all.
                    with transaction.atomic(using=connection.alias):
                        lock_in_transaction(connection)
                        entries = []
                        for step in rows:
                            sql = step.sql(ctx)
                            step.apply(ctx)
                            entries.append(_trace(ctx, step, sql, before, result.backup))
                            fault_point(f"in-rows-{len(entries)}")
                    result.ledger.extend(entries)
                    result.applied.extend(rows)
                    for step in rows:
                        if on_step:
                            on_step(step, "done")
            except DatabaseError as exc:
                # A user that may only read, a full disk, a lost server: one clear line.
                done = f"{len(result.applied)} step(s) were applied before it"
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise DoctorError(
                    f"The database refused a write ({first}); {done}. The backup is "
                    f"{result.backup}; diagnose again to see the state."
                ) from exc
            finally:
                if result.ledger:
                    mirror_ledger(result.backup, result.ledger)
    result.after = diagnose(database, labels)
    return result
