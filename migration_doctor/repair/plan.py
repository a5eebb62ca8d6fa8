"""Repair plans: each finding the evidence can settle becomes printable, executable steps.

A plan is built from a fresh diagnosis taken under the repair lock, so every step relies on
evidence that is still true when it runs. Steps never drop anything.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from shlex import quote
from typing import Any

from ..classify import live_has
from ..diagnose import Report
from ..expected import Obj, collapse, describe
from ..findings import MANAGE, Finding
from ..keys import Key
from ..snapshot import Snapshot
from ..usermodel import KIND as USER_MODEL_SWITCHED
from .files import finalize_squash_step, merge_step
from .steps import Context as Context  # re-exported: tests build steps by hand
from .steps import (
    CreateMissing,
    DeleteRowIds,
    PlanInput,
    Planner,
    RecordRows,
    RenameRow,
    RollBack,
    RunOperations,
    Step,
    data_in,
)
from .usermodel import plan_user_model_switched


@dataclass
class Plan:
    database: str
    vendor: str
    steps: list[Step] = field(default_factory=list)
    skipped: list[tuple[Finding, str]] = field(default_factory=list)
    # Findings the steps settle (some by a step another finding asked for too).
    covered: list[Finding] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat())

    @property
    def writes_rows(self) -> bool:
        return any(s.writes_rows for s in self.steps)


@dataclass
class Progress:
    """Per operation of an unrecorded migration, what the live schema shows."""

    done: list[int] = field(default_factory=list)
    todo: list[int] = field(default_factory=list)
    # Half-done operations whose tables exist and lack only columns/constraints.
    complete: dict[int, list[Obj]] = field(default_factory=dict)
    # Half-done operations that cannot be finished safely (a removal half done...).
    unsafe: list[int] = field(default_factory=list)
    # RunSQL/RunPython after the last operation known to have run.
    unknown: list[int] = field(default_factory=list)

    @property
    def run(self) -> list[int]:
        return sorted(set(self.todo) | set(self.unknown))


def _op_progress(snapshot: Snapshot, key: Key) -> Progress:
    effect = snapshot.expected.effects[key]
    schema = snapshot.schema
    p = Progress()
    for op in effect.operations:
        missing = [o for o in op.creates if not live_has(schema, o)]
        leftover = [o for o in op.removes if schema.has_table(o[1]) and live_has(schema, o)]
        checked = len(op.creates) + len([o for o in op.removes if schema.has_table(o[1])])
        if not checked:
            continue
        if not missing and not leftover:
            p.done.append(op.index)
        elif len(missing) + len(leftover) == checked:
            p.todo.append(op.index)
        elif not leftover and all(o[0] != "table" for o in missing):
            p.complete[op.index] = missing
            p.done.append(op.index)
        else:
            p.unsafe.append(op.index)
    last_done = max(p.done, default=-1)
    p.unknown = [op.index for op in effect.operations if op.opaque and op.index > last_done]
    return p


def build_plan(
    report: Report, only: set[str] | None = None, allow_data_loss: bool = False
) -> Plan:
    """Steps for every repairable finding of `report` (restricted to `only` kinds if given)."""
    snapshot = report.snapshot
    assert snapshot is not None
    plan = Plan(report.database, report.vendor)
    gs = snapshot.graph
    interlock = ""
    if gs.load_errors:
        e = gs.load_errors[0]
        interlock = f"the migration module {e.module} does not load ({e.error})"
    elif gs.missing_dependencies or gs.cycles:
        interlock = "the migration graph could not be built completely"
    elif gs.disabled_apps:
        interlock = "MIGRATION_MODULES disables migrations for " + ", ".join(
            sorted(gs.disabled_apps)
        )
    recorded_parent: set[Key] = set()
    owned: dict[int, list[Step]] = {}  # the steps each covered finding asked for
    ambiguous = {p.app: p for p in report.positions if p.ambiguous}
    for finding in report.findings:
        if only is not None and finding.kind not in only:
            continue
        if finding.kind not in REPAIRABLE:
            continue
        if finding.app in ambiguous:
            plan.skipped.append(
                (
                    finding,
                    f"{ambiguous[finding.app].describe()}: nothing is repaired automatically",
                )
            )
            continue
        if finding.kind == "squash-ready" and (only is None or "squash-ready" not in only):
            plan.skipped.append((finding, "source files change only with --only squash-ready"))
            continue
        steps, why = _steps_for(finding, snapshot, recorded_parent, allow_data_loss)
        if why:
            plan.skipped.append((finding, why))
            continue
        if interlock and any(s.writes_rows for s in steps):
            plan.skipped.append(
                (finding, f"refused: {interlock}; a half-loaded project must not change rows")
            )
            continue
        steps = _without_repeats(steps, plan.steps)
        for step in steps:
            step.check_id, step.evidence = finding.id, finding.evidence
        for step in steps:
            if not step.proven and not (only and finding.kind in only):
                plan.skipped.append(
                    (
                        finding,
                        f"not proven by evidence ({step.unproven_why}); ask for it "
                        f"with --only {finding.kind}",
                    )
                )
                break
        else:
            plan.steps.extend(steps)
            plan.covered.append(finding)
            owned[id(finding)] = steps
    _drop_out_of_order(plan, snapshot, owned)
    return plan


def _drop_out_of_order(plan: Plan, snapshot: Snapshot, owned: dict[int, list[Step]]) -> None:
    """Leave out every finding whose steps would record a migration before one of its
    dependencies (`InconsistentMigrationHistory` at the next `migrate`), until none does:
    0003's schema may be present while 0002 was never applied."""
    while True:
        late = _recorded_too_early(plan, snapshot, owned)
        if late is None:
            return
        finding, key, parent = late
        mine = owned.pop(id(finding))
        plan.steps = [s for s in plan.steps if all(s is not m for m in mine)]
        plan.covered.remove(finding)
        plan.skipped.append(
            (
                finding,
                f"recording {key[0]}.{key[1]} before its dependency {parent[0]}.{parent[1]}, "
                "which is not applied, would be an inconsistent history: apply "
                f"{parent[0]}.{parent[1]} first ({MANAGE} migrate {quote(parent[0])} "
                f"{quote(parent[1])}), then repair again",
            )
        )


def _recorded_too_early(
    plan: Plan, snapshot: Snapshot, owned: dict[int, list[Step]]
) -> tuple[Finding, Key, Key] | None:
    """The first covered finding that records a migration whose dependency neither is
    applied nor gets recorded by the plan, with that migration and dependency. A squash
    counts as applied when all it replaces is (as Django's consistency check has it)."""
    loader = snapshot.graph.loader
    will = set(loader.applied_migrations)
    for step in plan.steps:
        will.update(step.rows_recorded())
    for finding in plan.covered:
        for key in (k for step in owned.get(id(finding), []) for k in step.rows_recorded()):
            node = loader.graph.node_map.get(key)
            for parent in sorted(p.key for p in node.parents) if node else []:
                replaced = loader.replacements.get(parent)
                if parent not in will and not (replaced and set(replaced.replaces) <= will):
                    return finding, key, parent
    return None


def _roll_back(
    finding: Finding, snapshot: Snapshot, key: Key, why: str, allow_data_loss: bool
) -> tuple[list[Step], str]:
    app, name = key
    effect = snapshot.expected.effects[key]
    present = [
        o for o in effect.creates if live_has(snapshot.schema, o) and o[0] in ("table", "column")
    ]
    present = collapse(present)
    dropped = {o[1] for o in present if o[0] == "table"}
    dropped_columns = {(o[1], o[2]) for o in present if o[0] == "column"}
    kept = [
        o
        for o in effect.creates
        if o[0] == "unique"
        and live_has(snapshot.schema, o)
        and o[1] not in dropped
        and not any((o[1], c) in dropped_columns for c in o[2:])
    ]
    if kept:
        return [], (
            f"{why}; its present {', '.join(describe(o) for o in kept)} would stay behind a "
            "roll-back: do it by hand"
        )
    # What it removes that is already absent (a column only where its table is there).
    gone = [
        o
        for o in collapse([o for o in effect.removes if o[0] in ("table", "column")])
        if not live_has(snapshot.schema, o)
        and (o[0] == "table" or snapshot.schema.has_table(o[1]))
    ]
    if gone and present:
        # A RenameModel/RenameField half done by hand: dropping the new name would not
        # bring the old one back, and its rows would go with it.
        return [], (
            f"{why}; what it removes is already gone ({', '.join(describe(o) for o in gone)}): "
            f"dropping what it created ({', '.join(describe(o) for o in present)}) would not "
            "bring that back (a rename is undone by renaming back): do it by hand"
        )
    held = data_in(snapshot.connection, present)
    if held and not allow_data_loss:
        data = ", ".join(f"{k} ({v})" for k, v in held.items())
        return [], (
            f"{why}; rolling the present part back would drop data ({data}): do it by hand, "
            "or pass --allow-data-loss"
        )
    return [
        RollBack(
            finding.kind,
            app,
            name,
            f"Roll back the present part of {app}.{name} "
            f"({', '.join(describe(o) for o in present)}); `migrate` then applies it whole",
            f"{why}; " + ("it holds no data" if not held else "--allow-data-loss was given"),
            f"{MANAGE} migrate {quote(app)} {quote(name)}  # after the roll-back",
            key=key,
            objects=present,
        )
    ], ""


def _steps_for(
    finding: Finding,
    snapshot: Snapshot,
    recorded_parent: set[Key],
    allow_data_loss: bool = False,
) -> tuple[list[Step], str]:
    make = PLANNERS.get(finding.kind)
    if make is None:
        return [], "no automatic repair"
    return make(PlanInput(finding, snapshot, recorded_parent, allow_data_loss))


def _plan_stale_record(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    finding, app, name = p.finding, p.finding.app, p.finding.migration
    ev = p.finding.evidence
    assert app is not None and name is not None
    if ev.get("tables_left"):
        return [], (
            f"app {app!r} is not installed but its tables are still there "
            f"({', '.join(ev['tables_left'][:3])}): the row stays for when it comes back; if "
            "it is gone for good, drop its tables and then delete the row"
        )
    # By id: on MySQL a name comparison ignores case and trailing spaces.
    return [
        DeleteRowIds(
            kind,
            app,
            name,
            f"Delete the row of {app}.{name}",
            "no migration file has that name and no squash replaces it",
            finding.fix.commands[0] if finding.fix.commands else "",
            ids=list(ev["ids"]),
        )
    ], ""


def _plan_renamed_migration(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    app, name = p.finding.app, p.finding.migration
    ev = p.finding.evidence
    assert app is not None and name is not None
    return [
        RenameRow(
            kind,
            app,
            name,
            f"Rename the row of {app}.{ev['old_name']} to {app}.{name}",
            f"{app}.{ev['old_name']} has no file; {app}.{name} is not recorded and its "
            "whole effect is in the database",
            "no Django command renames a row",
            row_id=int(ev["row_id"]),
            old_name=str(ev["old_name"]),
        )
    ], ""


def _plan_duplicate_record(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    finding, app, name = p.finding, p.finding.app, p.finding.migration
    ev = p.finding.evidence
    assert app is not None and name is not None
    extra = [i for i in ev["ids"] if i != ev["keep"]]
    return [
        DeleteRowIds(
            kind,
            app,
            name,
            f"Delete the extra rows of {app}.{name} (ids {', '.join(map(str, extra))})",
            f"the row with id {ev['keep']} stays",
            finding.fix.commands[0],
            ids=extra,
        )
    ], ""


def _plan_multiple_leaves(p: PlanInput) -> tuple[list[Step], str]:
    finding, app = p.finding, p.finding.app
    snapshot = p.snapshot
    assert app is not None
    return merge_step(finding, snapshot)


def _plan_squash_ready(p: PlanInput) -> tuple[list[Step], str]:
    finding = p.finding
    snapshot = p.snapshot
    return finalize_squash_step(finding, snapshot)


def _plan_missing_schema(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    app, name = p.finding.app, p.finding.migration
    ev = p.finding.evidence
    snapshot = p.snapshot
    assert app is not None and name is not None
    effect = snapshot.expected.effects[(app, name)]
    missing = [o for o in effect.creates if describe(o) in set(ev["missing"])]
    if ev.get("name_taken"):
        return [], _name_taken_why(ev)
    forbidden = ev.get("forbidden_by_data")
    if forbidden:
        return [], (
            f"the data forbids {forbidden[0]['constraint']} (duplicate values, listed in the "
            "finding): make them unique first"
        )
    return [
        CreateMissing(
            kind,
            app,
            name,
            f"Re-create {', '.join(describe(o) for o in collapse(missing))}",
            f"{app}.{name} is recorded and created them; they are absent",
            f"{MANAGE} sqlmigrate {quote(app)} {quote(name)}  # the statements for these objects",
            objects=collapse(missing),
        )
    ], ""


def _name_taken_why(ev: dict[str, Any]) -> str:
    """An index in the way of a named one: which of the two is right is a decision."""
    taken = ev["name_taken"][0]
    return (
        f"the name {taken['index']} is taken by an index on {taken['table']} "
        f"({', '.join(taken['columns'])}): drop or rename it first (steps never drop anything)"
    )


def _conflicts_words(ev: dict[str, Any]) -> str:
    """`t.c is integer NULL, not varchar(20) NOT NULL` for each of `type_conflicts`."""
    return "; ".join(
        f"{c['column']} is {c['actual']}, not {c['expected']}" for c in ev["type_conflicts"]
    )


def _type_conflicts_why(ev: dict[str, Any]) -> str:
    """A present column of another type or NULL: recording the migration leaves it so."""
    return (
        f"{_conflicts_words(ev)}: recording it would leave the project broken; make the "
        "column what the migration creates first (steps never change a column's type)"
    )


def _plan_table_exists(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    app, name = p.finding.app, p.finding.migration
    ev = p.finding.evidence
    snapshot = p.snapshot
    assert app is not None and name is not None
    if ev.get("type_conflicts"):
        return [], _type_conflicts_why(ev)
    effect = snapshot.expected.effects[(app, name)]
    flag = "--fake-initial" if effect.initial else "--fake"
    step = RecordRows(
        kind,
        app,
        name,
        f"Record {app}.{name} without running it",
        (
            f"it ran before {ev['ran_before']}, which depends on it and is in the database"
            if ev.get("ran_before") and not (ev["present"] or ev.get("already_removed"))
            else "everything it does is already done: "
            + ", ".join(
                [*ev["present"], *(f"{n} removed" for n in ev.get("already_removed", []))][:6]
            )
        ),
        f"{MANAGE} migrate {quote(app)} {quote(name)} {flag}",
        rows=[(app, name)],
    )
    if effect.opaque and not ev.get("ran_before"):
        step.proven = False
        step.unproven_why = f"recording skips {', '.join(effect.opaque)}"
    return [step], ""


def _plan_partially_applied(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    finding, app, name = p.finding, p.finding.app, p.finding.migration
    ev = p.finding.evidence
    snapshot = p.snapshot
    allow_data_loss = p.allow_data_loss
    assert app is not None and name is not None
    key = (app, name)
    progress = _op_progress(snapshot, key)
    if ev.get("name_taken"):
        return [], _name_taken_why(ev)
    if ev.get("type_conflicts"):
        # Completing and recording it would keep the column as it is; rolling the present
        # part back (when it holds no data) lets `migrate` create it as the migration says.
        why = f"{_conflicts_words(ev)}: completing and recording it would leave them so"
        return _roll_back(finding, snapshot, key, why, allow_data_loss)
    forbidden = ev.get("forbidden_by_data")
    if forbidden:
        first = forbidden[0]
        why = (
            f"the data forbids {first['constraint']} ({first['duplicates'][0]['rows']} rows "
            "share a value): completing it would fail and recording it would claim a "
            "constraint the database does not enforce"
        )
        return _roll_back(finding, snapshot, key, why, allow_data_loss)
    if progress.unsafe:
        why = (
            f"operation(s) {', '.join(map(str, progress.unsafe))} of {app}.{name} are "
            "themselves half done in a way that cannot be completed safely"
        )
        return _roll_back(finding, snapshot, key, why, allow_data_loss)
    migration = snapshot.graph.graph.nodes[key]
    assert migration is not None
    run, unknown = progress.run, progress.unknown
    rows = [key]
    if kind == "squash-partial":
        rows += snapshot.graph.loader.resolved_replaces(key)
        rows = [r for r in rows if r not in snapshot.recorded]
    steps: list[Step] = []
    if run or progress.complete:
        described = "; ".join(
            [migration.operations[i].describe() for i in run]
            + [
                f"complete {migration.operations[i].describe()} "
                f"({', '.join(describe(o) for o in objs)})"
                for i, objs in sorted(progress.complete.items())
            ]
        )
        run_step = RunOperations(
            kind,
            app,
            name,
            f"Run the missing operation(s) of {app}.{name}: {described}",
            f"present: {', '.join(ev.get('present', [])) or 'nothing'}; "
            f"missing: {', '.join(ev.get('missing', [])) or 'nothing checkable'}",
            f"{MANAGE} sqlmigrate {quote(app)} {quote(name)}  # only these statements",
            key=key,
            indexes=run,
            complete=progress.complete,
        )
        if unknown:
            run_step.proven = False
            run_step.unproven_why = "whether its RunSQL/RunPython already ran cannot be checked"
        steps.append(run_step)
    steps.append(
        RecordRows(
            kind,
            app,
            name,
            f"Record {', '.join(f'{a}.{n}' for a, n in rows)}",
            "its schema is complete once the operations above ran",
            f"{MANAGE} migrate {quote(app)} {quote(name)} --fake",
            rows=rows,
        )
    )
    return steps, ""


def _plan_inconsistent_history(p: PlanInput) -> tuple[list[Step], str]:
    kind = p.finding.kind
    app, name = p.finding.app, p.finding.migration
    ev = p.finding.evidence
    snapshot = p.snapshot
    recorded_parent = p.recorded_parent
    parent_label = str(ev["not_recorded"])
    papp, _, pname = parent_label.partition(".")
    parent = (papp, pname)
    if ev.get("type_conflicts"):
        return [], f"{parent_label}: {_type_conflicts_why(ev)}"
    if parent in recorded_parent:
        return [], ""  # one plan records a dependency once, for all its dependents
    recorded_parent.add(parent)
    state = ev["dependency_schema"]
    record = RecordRows(
        kind,
        papp,
        pname,
        f"Record {parent_label}",
        f"{app}.{name} depends on it and is recorded",
        "INSERT the row (Django's migrate refuses to run while the history is inconsistent)",
        rows=[parent],
    )
    if state == "present":
        record.reason = f"its schema is present, and {app}.{name} depends on it"
        return [record], ""
    graph = snapshot.graph.graph
    unapplied_parents = [
        p.key
        for p in graph.node_map[parent].parents
        if p.key not in snapshot.graph.loader.applied_migrations
    ]
    if unapplied_parents:
        return [], (
            f"{parent_label} itself depends on unapplied "
            f"{', '.join(f'{a}.{n}' for a, n in unapplied_parents)}: migrate those first"
        )
    complete: dict[int, list[Obj]] = {}
    if state == "partial":
        progress = _op_progress(snapshot, parent)
        if progress.unsafe:
            return [], f"{parent_label} is half applied inside an operation"
        run, unknown, complete = progress.run, progress.unknown, progress.complete
    else:
        migration = graph.nodes[parent]
        assert migration is not None
        run = list(range(len(migration.operations)))
        unknown = [op.index for op in snapshot.expected.effects[parent].operations if op.opaque]
    apply = RunOperations(
        kind,
        papp,
        pname,
        f"Apply {parent_label} for real (un-record {app}.{name}, apply, re-record: its "
        "row stays as it is)",
        f"{parent_label}'s schema is {state}",
        f"{MANAGE} migrate {quote(papp)} {quote(pname)}",
        key=parent,
        indexes=run,
        complete=complete,
    )
    if unknown:
        apply.proven = False
        apply.unproven_why = "it runs RunSQL/RunPython whose effect cannot be checked"
    return [apply, record], ""


def _without_repeats(steps: list[Step], earlier: list[Step]) -> list[Step]:
    """A row is recorded once per plan, whichever findings ask for it (table-exists of a
    migration and the inconsistent-history of its dependents, say)."""
    done = {row for s in earlier if isinstance(s, RecordRows) for row in s.rows}
    ran = {
        (s.key, i)
        for s in earlier
        if isinstance(s, RunOperations)
        for i in [*s.indexes, *s.complete]
    }
    made = {
        o[1] for s in earlier if isinstance(s, CreateMissing) for o in s.objects if o[0] == "table"
    }
    kept: list[Step] = []
    for step in steps:
        if isinstance(step, RecordRows):
            step.rows = [r for r in step.rows if r not in done]
            if not step.rows:
                continue
            done.update(step.rows)
        if isinstance(step, CreateMissing):
            # A table re-created from the applied state already has its later columns.
            step.objects = [o for o in step.objects if o[0] == "table" or o[1] not in made]
            if not step.objects:
                continue
            made.update(o[1] for o in step.objects if o[0] == "table")
        if isinstance(step, RunOperations):
            # A half-applied migration with a recorded dependent is asked for twice.
            step.indexes = [i for i in step.indexes if (step.key, i) not in ran]
            step.complete = {i: o for i, o in step.complete.items() if (step.key, i) not in ran}
            if not step.indexes and not step.complete:
                continue
            ran.update((step.key, i) for i in [*step.indexes, *step.complete])
        kept.append(step)
    return kept


# One planner per repairable kind: (finding, snapshot, plan-wide memory) -> (steps, why not).
PLANNERS: dict[str, Planner] = {
    "stale-record": _plan_stale_record,
    "renamed-migration": _plan_renamed_migration,
    "duplicate-record": _plan_duplicate_record,
    "multiple-leaves": _plan_multiple_leaves,
    "squash-ready": _plan_squash_ready,
    "missing-schema": _plan_missing_schema,
    "table-exists": _plan_table_exists,
    "partially-applied": _plan_partially_applied,
    "squash-partial": _plan_partially_applied,
    "inconsistent-history": _plan_inconsistent_history,
    USER_MODEL_SWITCHED: plan_user_model_switched,
}

# The kinds --fix can repair, in the order of their planners above.
REPAIRABLE = tuple(PLANNERS)
