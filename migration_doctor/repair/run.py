"""Carrying out a plan: lock, backup, files, schema, rows, re-diagnose.

Where DDL is transactional the whole repair and the diagnosis after it are one transaction,
rolled back when the repair would introduce a finding; elsewhere schema steps commit one by
one and the row changes in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

from django.db import DatabaseError, transaction
from django.db.migrations.recorder import MigrationRecorder

from ..diagnose import Report, diagnose
from ..findings import Finding, Severity
from ..ledger import ensure_table, entry, write_entries
from ..snapshot import DoctorError, first_line, get_connection, missing_sqlite_file
from ..snapshot.rows import RecordedRow
from .backup import mirror_ledger, stored_row, write_backup
from .guard import check_plan
from .lock import lock_in_transaction, repair_lock
from .plan import Plan, build_plan
from .steps import Context, RecordRows, RunOperations, Step

# confirm(step) answers "yes", "no", "all" (this and every later step) or "quit".
Confirm = Callable[[Step], str]
# How the repair diagnoses its database (alias, app labels): diagnose(), or a tenant
# schema's diagnosis (repair/fleet.py), which reads that schema as the fleet does.
Diagnosis = Callable[[str, list[str]], Report]


def _diagnose(diagnosis: Diagnosis | None, database: str, labels: list[str]) -> Report:
    return (diagnosis or diagnose)(database, labels)  # looked up now: tests replace it


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
    # What went wrong after the repair committed (the ledger copy, the diagnosis after),
    # or why it was rolled back: reported with what was done, never instead of it.
    problems: list[str] = field(default_factory=list)
    # Warnings and errors the diagnosis after the repair has and the one before did not.
    introduced: list[Finding] = field(default_factory=list)
    # Steps that ran and were rolled back with everything else, because they would have
    # introduced `introduced` (PostgreSQL, SQLite): none of them is in `applied`.
    rolled_back: list[Step] = field(default_factory=list)

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


def _refuse_missing_file(missing: Path | None) -> None:
    """A SQLite file that does not exist is a fresh database: nothing to repair, and a
    repair must not create it (its lock, its ledger would)."""
    if missing is not None:
        raise DoctorError(
            f"SQLite database file {missing} does not exist yet: run "
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
    """The ledger entry of one step (written by the caller, with others in one batch)."""
    touched = step.rows_touched()
    return entry(
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


def _choose(plan: Plan, confirm: Confirm | None, result: RepairResult) -> list[Step]:
    """The steps answered "yes" (every step without `confirm`); the others are declined."""
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
    return chosen


def not_undoable(ctx: Context, steps: Iterable[Step]) -> str:
    """Why `steps` cannot run inside one transaction that is rolled back when they would
    introduce a finding ("" when they can).

    - MySQL/MariaDB commit each DDL statement implicitly: a plan with a schema step has
      nothing to roll back (one that only changes rows is rolled back like anywhere else).
    - A step that writes source files (a merge migration, a finalised squash): no transaction
      undoes a file, and rows rolled back under changed files would contradict them. Such a
      repair runs as on MySQL, each schema step committed on its own.
    - A migration marked `atomic = False` (CREATE INDEX CONCURRENTLY, a RunSQL that refuses
      a transaction) runs outside one, as `migrate` runs it.
    """
    connection = ctx.connection
    steps = list(steps)
    if not connection.features.can_rollback_ddl and any(s.writes_schema for s in steps):
        return f"DDL could not be rolled back on {connection.vendor}"
    for step in steps:
        if step.writes_files:
            return f"step {step.title!r} writes source files, which no transaction undoes"
        migration = (
            ctx.loader.graph.nodes.get(step.key) if isinstance(step, RunOperations) else None
        )
        if migration is not None and not migration.atomic:
            app, name = migration.app_label, migration.name
            return f"{app}.{name} is not atomic (atomic = False): it runs outside a transaction"
    return ""


def _step_done(
    result: RepairResult,
    step: Step,
    entry: dict[str, Any],
    on_step: Callable[[Step, str], None] | None,
) -> None:
    result.ledger.append(entry)
    result.applied.append(step)
    if on_step:
        on_step(step, "done")


def _apply_rows(ctx: Context, rows: list[Step]) -> None:
    """The row steps in their order, consecutive RecordRows steps together; checkpoint
    `in-rows-N` after each (all still inside the row transaction)."""
    done = 0
    for together, run in groupby(rows, key=lambda step: isinstance(step, RecordRows)):
        steps = list(run)
        if together:
            RecordRows.apply_together(ctx, steps)  # type: ignore[arg-type]
        for step in steps:
            if not together:
                step.apply(ctx)
            done += 1
            checkpoint(f"in-rows-{done}")


def _ensure_tables(connection: Any, chosen: list[Step]) -> None:
    ensure_table(connection)  # the first repair creates the ledger; diagnoses never do
    if any(s.writes_rows for s in chosen):
        # django_migrations dropped (a dump restored without it): re-created as Django's
        # recorder does, before the row changes (outside their transaction where MySQL
        # would commit it).
        MigrationRecorder(connection).ensure_schema()


def _run_committing(
    result: RepairResult,
    chosen: list[Step],
    on_step: Callable[[Step, str], None] | None,
) -> None:
    """Each schema step committed on its own, then every row change in one transaction:
    where DDL cannot be rolled back, an interruption leaves whole steps behind."""
    ctx = result.context
    connection = ctx.connection
    _ensure_tables(connection, chosen)  # before and outside the row transaction
    before = {row.key: row for row in ctx.snapshot.rows}
    for step in [s for s in chosen if not s.writes_rows]:
        sql = ctx.sql_of(step)
        if on_step:
            on_step(step, "running")
        with _locked_transaction(connection):
            step.apply(ctx)
        [done] = write_entries(connection, [_trace(ctx, step, sql, before, result.backup)])
        _step_done(result, step, done, on_step)
        checkpoint(f"after-step-{len(result.applied)}")
    rows = [s for s in chosen if s.writes_rows]
    if rows:
        # The row changes and their ledger entries commit together or not at all.
        with transaction.atomic(using=connection.alias):
            lock_in_transaction(connection)
            entries = [_trace(ctx, step, ctx.sql_of(step), before, result.backup) for step in rows]
            if on_step:
                on_step(rows[0], "running")
            _apply_rows(ctx, rows)
            written = write_entries(connection, entries)
        for step, done in zip(rows, written, strict=True):
            _step_done(result, step, done, on_step)


def _run_undoable(
    result: RepairResult,
    database: str,
    chosen: list[Step],
    labels: list[str],
    on_step: Callable[[Step, str], None] | None,
    diagnosis: Diagnosis | None = None,
) -> bool:
    """Every chosen step, the ledger and the diagnosis after them in ONE transaction,
    committed only when that diagnosis finds nothing the steps introduced; otherwise rolled
    back, so the database is exactly as before. True when it was rolled back.

    SQLite's schema editor refuses to start inside a transaction while foreign key checks
    are on, and they cannot be turned off inside one: off before it (as Django's own
    callers do), every key checked before the commit, back on afterwards. On MySQL/MariaDB
    (rows only: see not_undoable) the ledger and django_migrations tables are created before
    the transaction, since a CREATE TABLE would commit it."""
    ctx = result.context
    connection = ctx.connection
    assert result.before is not None
    before = {row.key: row for row in ctx.snapshot.rows}
    done: list[tuple[Step, dict[str, Any]]] = []
    tables_first = not connection.features.can_rollback_ddl
    if tables_first:
        _ensure_tables(connection, chosen)
    sqlite = connection.vendor == "sqlite"
    checks_off = connection.constraint_checks_disabled() if sqlite else nullcontext()
    with checks_off, transaction.atomic(using=connection.alias):
        lock_in_transaction(connection)
        if not tables_first:  # rolled back with the rest: a first repair leaves no table
            _ensure_tables(connection, chosen)
        schema = [s for s in chosen if not s.writes_rows]
        rows = [s for s in chosen if s.writes_rows]
        entries = []
        for n, step in enumerate(schema, 1):
            entries.append(_trace(ctx, step, ctx.sql_of(step), before, result.backup))
            if on_step:
                on_step(step, "running")
            step.apply(ctx)
            checkpoint(f"after-step-{n}")
        entries += [_trace(ctx, step, ctx.sql_of(step), before, result.backup) for step in rows]
        if on_step and rows:
            on_step(rows[0], "running")
        _apply_rows(ctx, rows)
        done = list(zip(schema + rows, write_entries(connection, entries), strict=True))
        # Read through this connection: the diagnosis sees the uncommitted repair and
        # writes nothing (its read-only transaction is skipped inside this one).
        try:
            result.after = _diagnose(diagnosis, database, labels)
        except (DoctorError, DatabaseError) as exc:
            transaction.set_rollback(True, using=connection.alias)
            result.rolled_back = [s for s, _ in done]
            result.problems.append(
                f"The diagnosis after the repair failed ({first_line(exc)}), so the repair "
                "was rolled back: nothing was changed and the backup is not needed. Run "
                "migration_doctor again to see the state."
            )
            return True
        stale = {key for s, _ in done for key in s.makes_stale()}
        result.introduced = introduced(result.before, result.after, stale)
        if result.introduced:
            transaction.set_rollback(True, using=connection.alias)
            result.rolled_back = [s for s, _ in done]
            return True
        if sqlite:
            connection.check_constraints()  # keys were not checked while off
    for step, written in done:
        _step_done(result, step, written, on_step)
    return False


def _rolled_back_line(result: RepairResult) -> str:
    what = "; ".join(f"{f.kind} ({f.id}) {f.target}: {f.message}" for f in result.introduced)
    backup = f" and the backup {result.backup} is not needed" if result.backup else ""
    return (
        f"the repair was rolled back because it would have introduced {what} -- nothing was "
        f"changed on database {result.plan.database!r}{backup}"
    )


def _introduced_lines(result: RepairResult, why: str) -> list[str]:
    restore = f"; the backup {result.backup} restores the rows" if result.backup else ""
    return [
        f"the repair introduced {f.kind} ({f.id}) {f.target}: {f.message} (not rolled "
        f"back: {why}{restore})"
        for f in result.introduced
    ]


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
    schema: str | None = None,
    diagnosis: Diagnosis | None = None,
) -> RepairResult:
    """Diagnose under the lock, plan, back up, apply, diagnose again.

    Where DDL is transactional (PostgreSQL, SQLite) and no step writes files, the steps and
    the diagnosis after them run in one transaction that is rolled back if that diagnosis
    finds anything they introduced (`not_undoable` says when it cannot be); elsewhere each
    schema step commits, and what was introduced is reported beside what was done.

    `schema` names the tenant schema the connection is on (repair/fleet.py): its own lock,
    and a backup that says so; `diagnosis` reads that schema. `on_step(step, state)` hears
    "running" before a schema step (and before the row changes, with their first step) and
    "done" once it holds (for the one transaction: after its commit).
    """
    labels = list(app_labels)
    if dry_run:
        report = _diagnose(diagnosis, database, labels)
        assert report.snapshot is not None
        _refuse_missing_file(report.snapshot.missing_file)
        plan = build_plan(report, only, allow_data_loss)
        plan.steps = _order(plan.steps)
        result = RepairResult(plan, Context(report.snapshot), True, before=report)
        result.refused = check_plan(result.context, plan.steps, allow_data_loss)
        if on_plan:
            on_plan(result)
        return result
    # Diagnosed once, under the lock: the plan relies only on what is true then. Before
    # it, only what taking the lock needs (a SQLite file's lock sits beside the file).
    connection = get_connection(database, missing_ok=True)
    _refuse_missing_file(missing_sqlite_file(connection))
    why_not = ""
    with repair_lock(connection, lock_timeout, schema) as lock:
        report = _diagnose(diagnosis, database, labels)
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
        chosen = _choose(plan, confirm, result)
        if chosen:
            other = [rows for s in chosen for rows in s.backed_up(result.context)]
            # Without other rows, called as always (the reliability tests wrap this call).
            result.backup = (
                write_backup(connection, backup_path, other, schema=schema)
                if other or schema is not None
                else write_backup(connection, backup_path)
            )
            if on_backup:
                on_backup(result.backup)
            checkpoint("after-backup")
            why_not = not_undoable(result.context, chosen)
            try:
                if why_not:
                    _run_committing(result, chosen, on_step)
                elif _run_undoable(result, database, chosen, labels, on_step, diagnosis):
                    if not result.introduced:
                        return result  # the diagnosis after failed: exit 2, said why
                    result.problems.append(_rolled_back_line(result))
                    return _after_rollback(result, database, labels, diagnosis)
            except DatabaseError as exc:
                # A user that may only read, a full disk, a lost server: one clear line.
                if why_not:
                    done = f"{len(result.applied)} step(s) were applied before it"
                else:
                    done = "the repair was rolled back: nothing was changed"
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
    if result.after is None or why_not:
        _diagnose_after(result, database, labels, why_not, diagnosis)
    return result


def _after_rollback(
    result: RepairResult, database: str, labels: list[str], diagnosis: Diagnosis | None
) -> RepairResult:
    """The database as the rollback left it (as before): what the output shows after."""
    try:
        result.after = _diagnose(diagnosis, database, labels)
    except (DoctorError, DatabaseError) as exc:
        result.after = None
        result.problems.append(
            f"The diagnosis after the rollback failed ({first_line(exc)}); run "
            "migration_doctor again to see the state."
        )
    return result


def _diagnose_after(
    result: RepairResult,
    database: str,
    labels: list[str],
    why: str,
    diagnosis: Diagnosis | None = None,
) -> None:
    """After a repair that committed step by step: what it introduced is reported beside
    what was done (nothing can be undone any more)."""
    try:
        result.after = _diagnose(diagnosis, database, labels)
    except (DoctorError, DatabaseError) as exc:
        result.problems.append(
            f"The diagnosis after the repair failed ({first_line(exc)}); run migration_doctor "
            "again to see the state."
        )
        return
    if result.before is not None and result.applied:
        stale = {key for step in result.applied for key in step.makes_stale()}
        result.introduced = introduced(result.before, result.after, stale)
        result.problems.extend(_introduced_lines(result, why))


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
    # A half-applied migration the data forbids, rolled back, is pending and still forbidden
    # by the same data: the error became that warning, as the repair said it would.
    seen |= {
        ("blocked-by-data", f.app, f.migration, blocked["constraint"].rsplit(" on ", 1)[-1])
        for f in before.findings
        for blocked in f.evidence.get("forbidden_by_data") or ()
    }
    return [
        f
        for f in after.findings
        if f.severity >= Severity.WARNING
        and _identity(f) not in seen
        and not (f.kind == "stale-record" and (f.app, f.migration) in made_stale)
    ]
