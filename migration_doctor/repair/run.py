"""Carrying out a plan: lock, backup, files, schema, rows in one transaction, re-diagnose."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import DatabaseError, transaction
from django.db.migrations.recorder import MigrationRecorder

from ..diagnose import Report, diagnose
from ..findings import Finding, Severity
from ..ledger import ensure_table, write_entry
from ..snapshot import DoctorError, first_line
from ..snapshot.rows import RecordedRow
from .backup import mirror_ledger, stored_row, write_backup
from .guard import check_plan
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
    # Why the guard refused the plan before anything changed (empty: it did not).
    refused: list[str] = field(default_factory=list)
    before: Report | None = None
    # What went wrong after the repair committed (the ledger copy, the diagnosis after):
    # reported with what was done, never instead of it.
    problems: list[str] = field(default_factory=list)
    # Warnings and errors the diagnosis after the repair has and the one before did not.
    introduced: list[Finding] = field(default_factory=list)

    def would_leave(self) -> list[Finding]:
        """The findings a real run of this plan leaves (all of them when it is refused)."""
        assert self.before is not None
        if self.refused:
            return list(self.before.findings)
        settled = {id(f) for f in self.plan.covered}
        return [f for f in self.before.findings if id(f) not in settled]


def checkpoint(name: str) -> None:
    """Named moments of a repair (`after-backup`, `after-step-N`, `in-rows-N`) where an
    interruption leaves a known state. Nothing happens here; the reliability tests replace
    this function in their own manage.py to kill or hold the process at such a moment."""


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
    return stored_row(row)  # exactly as stored, as the backup keeps it


def _refuse_missing_file(report: Report) -> None:
    """A SQLite file that does not exist is a fresh database: nothing to repair, and a
    repair must not create it (its lock, its ledger would)."""
    assert report.snapshot is not None
    if report.snapshot.missing_file is not None:
        raise DoctorError(
            f"SQLite database file {report.snapshot.missing_file} does not exist yet: run "
            "migrate first (--fix repairs an existing database, it never creates one)."
        )


def _mirror(result: RepairResult) -> None:
    """Copy the ledger entries into the backup; after the commit a failure is a problem to
    report beside what was done, not an exception that would hide it."""
    if not result.ledger or result.backup is None:
        return
    try:
        mirror_ledger(result.backup, result.ledger)
    except DoctorError as exc:
        result.problems.append(
            f"{exc} The backup {result.backup} itself is intact, and the ledger table holds "
            "what was done (--history)."
        )


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
        _refuse_missing_file(report)
        assert report.snapshot is not None
        plan = build_plan(report, only, allow_data_loss)
        plan.steps = _order(plan.steps)
        result = RepairResult(plan, Context(report.snapshot), True, before=report)
        result.refused = check_plan(result.context, plan.steps, allow_data_loss)
        if on_plan:
            on_plan(result)
        return result
    report = diagnose(database, labels)
    _refuse_missing_file(report)
    assert report.snapshot is not None
    connection = report.snapshot.connection
    with repair_lock(connection, lock_timeout) as lock:
        # Diagnose again under the lock: the plan relies only on what is true now.
        report = diagnose(database, labels)
        assert report.snapshot is not None
        plan = build_plan(report, only, allow_data_loss)
        plan.steps = _order(plan.steps)
        result = RepairResult(plan, Context(report.snapshot), False, lock=lock, before=report)
        # Before any question is asked and before the backup: nothing has changed yet.
        result.refused = check_plan(result.context, plan.steps, allow_data_loss)
        if on_plan:
            on_plan(result)
        if not plan.steps or result.refused:
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
            other = [rows for s in chosen for rows in s.backed_up(result.context)]
            # Without other rows, called as always (the reliability tests wrap this call).
            result.backup = (
                write_backup(connection, backup_path, other)
                if other
                else write_backup(connection, backup_path)
            )
            if on_backup:
                on_backup(result.backup)
            checkpoint("after-backup")
            try:
                ensure_table(connection)  # the first repair creates the ledger; diagnoses never do
                if any(s.writes_rows for s in chosen):
                    # django_migrations dropped (a dump restored without it): re-created as
                    # Django's recorder does, before and outside the row transaction (SQLite's
                    # schema editor refuses to run inside one, MySQL commits DDL).
                    MigrationRecorder(connection).ensure_schema()
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
                    checkpoint(f"after-step-{len(result.applied)}")
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
                            checkpoint(f"in-rows-{len(entries)}")
                    result.ledger.extend(entries)
                    result.applied.extend(rows)
                    for step in rows:
                        if on_step:
                            on_step(step, "done")
            except DatabaseError as exc:
                # A user that may only read, a full disk, a lost server: one clear line.
                done = f"{len(result.applied)} step(s) were applied before it"
                _mirror(result)
                raise DoctorError(
                    " ".join(
                        [
                            f"The database refused a write ({first_line(exc)}); {done}. The "
                            f"backup is {result.backup}; diagnose again to see the state.",
                            *result.problems,
                        ]
                    )
                ) from exc
            except BaseException:
                _mirror(result)  # interrupted: still trace what committed
                raise
            _mirror(result)
    try:
        result.after = diagnose(database, labels)
    except (DoctorError, DatabaseError) as exc:
        result.problems.append(
            f"The diagnosis after the repair failed ({first_line(exc)}); run migration_doctor "
            "again to see the state."
        )
        return result
    if result.before is not None and result.applied:
        stale = {key for step in result.applied for key in step.makes_stale()}
        result.introduced = introduced(result.before, result.after, stale)
        result.problems.extend(
            f"the repair introduced {f.kind} ({f.id}) {f.target}: {f.message}"
            for f in result.introduced
        )
    return result


def _identity(finding: Finding) -> tuple[Any, ...]:
    table = finding.evidence.get("table")
    return (finding.kind, finding.app, finding.migration, table if isinstance(table, str) else "")


def introduced(
    before: Report, after: Report, made_stale: Collection[tuple[str, str]] = ()
) -> list[Finding]:
    """Warnings and errors after a repair that the diagnosis before it did not have: the
    repair caused them, and it did not succeed even if everything else is clean. Rows a
    step left without a file on purpose (`made_stale`) are no surprise."""
    seen = {_identity(f) for f in before.findings}
    return [
        f
        for f in after.findings
        if f.severity >= Severity.WARNING
        and _identity(f) not in seen
        and not (f.kind == "stale-record" and (f.app, f.migration) in made_stale)
    ]
