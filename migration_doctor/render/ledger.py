"""`migration_doctor_history`: the ledger's entries as text or JSON.

The ledger's rows are data anyone with write access could have written: the text shows()
every field, the JSON keeps them exact."""

from __future__ import annotations

from ..ledger import LedgerRecord
from .json import render_document
from .safe import shown


def render_history_json(entries: list[LedgerRecord], alias: str, schema: str | None = None) -> str:
    where: dict[str, object] = {"database": alias}
    if schema is not None:
        where["schema"] = schema
    return render_document({"version": 1, **where, "repairs": [e.as_dict() for e in entries]})


def render_history(entries: list[LedgerRecord], alias: str, schema: str | None = None) -> str:
    where = f"database {alias!r}" + (f" (schema {shown(schema)})" if schema is not None else "")
    if not entries:
        return f"No repairs recorded on {where}.\n"
    lines = [f"{len(entries)} repair step(s) recorded on {where}:"]
    for e in entries:
        rows = shown(", ".join(e.rows)) or "(no rows)"
        lines.append(
            f"  #{e.id} {e.created:%Y-%m-%d %H:%M:%S} [{shown(e.kind)}] {shown(e.step)}\n"
            f"      {shown(e.action)} {rows}; by {shown(e.user)}@{shown(e.host)}; "
            f"migration_doctor {shown(e.doctor_version)}, "
            f"Django {shown(e.django_version)}\n"
            f"      because: {shown(e.reason)}\n"
            f"      backup: {shown(e.backup)}"
        )
    return "\n".join(lines) + "\n"
