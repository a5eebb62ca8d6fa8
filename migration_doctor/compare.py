"""Two databases side by side: what each has recorded, and whether the schema agrees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .classify import live_has
from .expected import collapse, describe
from .snapshot import Snapshot, take_snapshot


@dataclass
class Comparison:
    a: str
    b: str
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    squashes: list[dict[str, Any]] = field(default_factory=list)
    schema: list[dict[str, Any]] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.only_in_a or self.only_in_b or self.squashes or self.schema)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "databases": [self.a, self.b],
            "only_in": {self.a: self.only_in_a, self.b: self.only_in_b},
            "squashes": self.squashes,
            "schema": self.schema,
        }


def _squash_state(snapshot: Snapshot, key: tuple[str, str]) -> str:
    targets = snapshot.graph.loader.resolved_replaces(key)
    done = sum(t in snapshot.recorded for t in targets)
    return "applied" if done == len(targets) else "partial" if done else "unapplied"


def compare(a: str, b: str) -> Comparison:
    """Recorded history and schema of database `a` against database `b`."""
    sa, sb = take_snapshot(a), take_snapshot(b)
    result = Comparison(a, b)
    ra, rb = sa.recorded, sb.recorded
    result.only_in_a = [f"{x}.{y}" for x, y in sorted(ra - rb)]
    result.only_in_b = [f"{x}.{y}" for x, y in sorted(rb - ra)]
    for key in sorted(sa.graph.loader.replacements):
        state_a, state_b = _squash_state(sa, key), _squash_state(sb, key)
        if state_a != state_b:
            result.squashes.append({"migration": f"{key[0]}.{key[1]}", a: state_a, b: state_b})
    applied_a = set(sa.graph.loader.applied_migrations)
    applied_b = set(sb.graph.loader.applied_migrations)
    for key in sa.expected.plan:
        if key not in applied_a or key not in applied_b:
            continue
        # Each database against what its own backend creates: a partial unique index that
        # MariaDB never makes is not missing there.
        effect_a, effect_b = sa.expected.effects[key], sb.expected.effects.get(key)
        if effect_b is None:
            continue  # the squash states differ: already reported above
        missing_a = [
            describe(o)
            for o in collapse([o for o in effect_a.creates if not live_has(sa.schema, o)])
        ]
        missing_b = [
            describe(o)
            for o in collapse([o for o in effect_b.creates if not live_has(sb.schema, o)])
        ]
        if missing_a != missing_b:
            result.schema.append(
                {
                    "migration": f"{key[0]}.{key[1]}",
                    f"missing_in_{a}": missing_a,
                    f"missing_in_{b}": missing_b,
                }
            )
    return result
