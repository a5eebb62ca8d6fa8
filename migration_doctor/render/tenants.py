"""A tenant fleet as text: healthy schemas counted, the same finding across schemas once.

A finding is "the same" across schemas when its kind, app and migration are: it is printed
once, with how many schemas have it and the first few of their names, then the message,
evidence and fix of the first of them.
"""

from __future__ import annotations

import io
from collections import defaultdict

from rich.text import Text

from ..diagnose import Report
from ..findings import Finding, Severity
from .safe import shown
from .text import _STYLE, _console, _headline, _indented, _plural, print_body

NAMES_SHOWN = 5


def _names(names: list[str]) -> str:
    listed = ", ".join(shown(n) for n in names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return listed + (f" and {more} more" if more > 0 else "")


def render_fleet_text(
    reports: list[Report],
    *,
    database: str,
    public: str,
    queries: int,
    library: str = "django-tenants",
    verbosity: int = 1,
    color: bool | None = None,
    width: int = 100,
) -> str:
    findings = [f for r in reports for f in r.findings]
    errors = sum(f.severity == Severity.ERROR for f in findings)
    warnings = sum(f.severity == Severity.WARNING for f in findings)
    infos = sum(f.severity == Severity.INFO for f in findings)
    healthy = [r.schema or "" for r in reports if not r.findings]
    buffer = io.StringIO()
    console = _console(buffer, color, width)
    head = (
        f"migration_doctor: database {database!r}, {_plural(len(reports), 'schema')} "
        f"({library}): {_plural(errors, 'error')}, {_plural(warnings, 'warning')}, "
        f"{_plural(infos, 'info')}; {queries} statements"
    )
    console.print(_headline(shown(head), findings), soft_wrap=True)
    console.print(f"{_plural(len(healthy), 'schema')} healthy: rows, files and schema agree.")
    groups: dict[tuple[str, str, str, str], list[tuple[str, Finding]]] = defaultdict(list)
    for report in reports:
        for finding in report.findings:
            key = (finding.id, finding.kind, finding.app or "", finding.migration or "")
            groups[key].append((report.schema or "", finding))
    order = sorted(groups, key=lambda k: (-int(groups[k][0][1].severity), k[2], k[3], k[1]))
    for key in order:
        members = groups[key]
        names = [name for name, _ in members]
        first = members[0][1]
        tenants_only = public not in names and first.kind != "schema-without-tenant"
        word = "tenant" if tenants_only else "schema"
        line = Text(f"{_plural(len(names), word)}: ")
        line.append(f"{key[0].rsplit('.', 1)[-1]} {first.kind}", style=_STYLE[first.severity])
        if first.target:
            line.append(f"  {shown(first.target)}")
        line.append(f" — {_names(names)}")
        console.print()
        console.print(line, soft_wrap=True)
        if first.kind == "unapplied" and verbosity < 2:
            continue
        if len(names) > 1:
            console.print(_indented(Text(f"as in {shown(names[0])}:", style="dim"), 4, width))
        print_body(console, first, verbosity, width)
    return buffer.getvalue()
