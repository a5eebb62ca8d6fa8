"""Where is the schema really? Per app, the point of its plan that the live schema shows.

Judging each migration alone misreads a later migration done by hand: `0004` renames a
column, someone ran the ALTER and never recorded it, and `0003` then looks incomplete. Here
every position of an app's plan (nothing applied, up to its first migration, ... up to its
last) is scored by the app's tables, columns and named constraints that disagree with the
live schema at that position; the best position is where the schema stands. One
pass along the plan, updating the score object by object, so the cost is linear in the
plan's objects and no state is rendered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .expected import MigrationEffect, Obj
from .keys import Key

if TYPE_CHECKING:
    from .snapshot import Snapshot

BEFORE = "zero"  # the position before the app's first migration, as `migrate app zero`
EXTRA, GONE = 2, 1  # the cost of a present object not expected, of an expected one absent


def _cost(present: bool, expected: bool) -> int:
    if present == expected:
        return 0
    return EXTRA if present else GONE


@dataclass(frozen=True)
class AppPosition:
    """Where the rows put an app, and where its live schema stands."""

    app: str
    rows: str  # the last recorded migration of the app's plan, or BEFORE
    # The positions that explain the schema best (several only when they disagree in a
    # checkable way and fit equally well), each named by its last migration.
    schema: tuple[str, ...]
    mismatches: int  # the disagreement (EXTRA/GONE-weighted) at the best position
    # Unrecorded migrations up to the schema's position (when it is ahead of the rows), and
    # those of them whose whole effect is present.
    through: tuple[str, ...] = ()
    shown: tuple[str, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return len(self.schema) > 1

    @property
    def agrees(self) -> bool:
        return self.schema == (self.rows,)

    def describe(self) -> str:
        if self.ambiguous:
            return (
                f"the schema of {self.app} fits {' and '.join(self.schema)} equally well; "
                f"rows say {self.rows}"
            )
        return f"schema matches {self.app} up to {self.schema[0]}; rows say {self.rows}"

    def as_dict(self) -> dict[str, object]:
        return {
            "app": self.app,
            "rows": self.rows,
            "schema": list(self.schema),
            "ambiguous": self.ambiguous,
            "mismatches": self.mismatches,
            "through": list(self.through),
            "shown": list(self.shown),
        }


def infer_positions(
    plan: Iterable[Key],
    effects: Mapping[Key, MigrationEffect],
    applied: set[Key],
    live: Callable[[Obj], bool],
) -> dict[str, AppPosition]:
    """The schema's position for every app whose plan has checkable objects."""
    by_app: dict[str, list[Key]] = defaultdict(list)
    apps_of: dict[Obj, set[str]] = defaultdict(set)
    for key in plan:
        by_app[key[0]].append(key)
        for obj in (*effects[key].creates, *effects[key].removes):
            apps_of[obj].add(key[0])
    # Objects that migrations of several apps change (a model taken over by another app by
    # state only, then renamed there) do not tell where one app's own plan stands.
    shared = {obj for obj, owners in apps_of.items() if len(owners) > 1}
    positions = {}
    for app, keys in by_app.items():
        position = _infer(app, keys, effects, applied, live, shared)
        if position is not None:
            positions[app] = position
    return positions


def _infer(
    app: str,
    keys: list[Key],
    effects: Mapping[Key, MigrationEffect],
    applied: set[Key],
    live: Callable[[Obj], bool],
    shared: Set[Obj] = frozenset(),
) -> AppPosition | None:
    present: dict[Obj, bool] = {}
    for key in keys:
        effect = effects[key]
        for obj in (*effect.creates, *effect.removes):
            if obj not in present and obj not in shared:
                present[obj] = live(obj)
    if not present:
        return None
    expected = dict.fromkeys(present, False)
    # An object that is there although the position does not explain it weighs double one
    # that the position expects and is gone: things get dropped by hand, but nobody creates
    # a migration's exact table, column and constraint names by chance.
    score = EXTRA * sum(present.values())  # before the first migration nothing is expected
    # scores[i]: after keys[:i]; changed[i]: whether keys[i - 1] moves the expectation.
    scores, changed = [score], [True]
    for key in keys:
        effect = effects[key]
        moved = False
        for obj, state in [
            *((o, False) for o in effect.removes),
            *((o, True) for o in effect.creates),
        ]:
            if obj not in expected:
                continue  # shared with another app's migrations
            if expected[obj] != state:
                score += _cost(present[obj], state) - _cost(present[obj], expected[obj])
                expected[obj] = state
                moved = True
        scores.append(score)
        changed.append(moved)
    best = min(scores)
    # Positions that differ only by migrations without a checkable effect are one position
    # as far as the schema can tell: name each run by its last migration.
    candidates: list[int] = []
    for i, s in enumerate(scores):
        if s != best:
            continue
        if candidates and all(not changed[j] for j in range(candidates[-1] + 1, i + 1)):
            candidates[-1] = i
        else:
            candidates.append(i)
    recorded = max((i + 1 for i, key in enumerate(keys) if key in applied), default=0)
    names = [BEFORE, *(key[1] for key in keys)]
    # The rows' position counts as the schema's when it is among the best fits.
    same_as_rows = next(
        (
            c
            for c in candidates
            if (c >= recorded and all(not changed[j] for j in range(recorded + 1, c + 1)))
            or (c <= recorded and all(not changed[j] for j in range(c + 1, recorded + 1)))
        ),
        None,
    )
    chosen = [recorded] if same_as_rows is not None else candidates
    through: list[str] = []
    shown: list[str] = []
    if len(chosen) == 1 and chosen[0] > recorded:
        for key in keys[: chosen[0]]:
            effect = effects[key]
            if key in applied:
                continue
            through.append(key[1])
            creates = [o for o in effect.creates if o in present]
            removes = [o for o in effect.removes if o in present]
            if not (creates or removes):
                continue
            if all(present[o] for o in creates) and not any(present[o] for o in removes):
                shown.append(key[1])
    return AppPosition(
        app=app,
        rows=names[recorded],
        schema=tuple(names[c] for c in chosen),
        mismatches=best if same_as_rows is None else scores[recorded],
        through=tuple(through),
        shown=tuple(shown),
    )


def schema_positions(snapshot: Snapshot) -> dict[str, AppPosition]:
    expected = snapshot.expected
    return infer_positions(
        expected.plan,
        expected.effects,
        set(snapshot.graph.loader.applied_migrations),
        snapshot.schema.has_object,
    )
