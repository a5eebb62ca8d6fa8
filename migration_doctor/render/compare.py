"""The comparison of two databases (compare.py), as text for people."""

from __future__ import annotations

from ..compare import Comparison
from .safe import shown


def render_comparison(c: Comparison) -> str:
    """Text for people: rows and table names are shown() (JSON keeps them exact)."""
    lines = [shown(f"migration_doctor: comparing database {c.a!r} with {c.b!r}")]
    if not c.differs:
        lines.append("Same recorded history, same squash states, same schema for every migration.")
        return "\n".join(lines) + "\n"
    for alias, only in ((c.a, c.only_in_a), (c.b, c.only_in_b)):
        if only:
            lines.append(shown(f"Recorded only in {alias!r} ({len(only)}):"))
            lines.extend(f"  {shown(m)}" for m in only)
    if c.squashes:
        lines.append("Squashes in a different state:")
        lines.extend(
            f"  {shown(s['migration'])}: {shown(c.a)}={s[c.a]}, {shown(c.b)}={s[c.b]}"
            for s in c.squashes
        )
    if c.schema:
        lines.append("Recorded in both, but the schema differs:")
        for s in c.schema:
            lines.append(f"  {shown(s['migration'])}")
            for alias in (c.a, c.b):
                missing = s[f"missing_in_{alias}"]
                if missing:
                    lines.append(shown(f"    missing in {alias!r}: {', '.join(missing)}"))
    return "\n".join(lines) + "\n"
