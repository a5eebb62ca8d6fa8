"""Human output with rich: a summary line, then findings grouped by app."""

from __future__ import annotations

import io
import textwrap
from collections import defaultdict

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from ..diagnose import Report
from ..findings import Finding, Severity

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(report: Report) -> str:
    known = sum(f.known for f in report.findings)
    return (
        f"migration_doctor: database {report.database!r} ({report.vendor}): "
        f"{_plural(len(report.errors), 'error')}, {_plural(len(report.warnings), 'warning')}, "
        f"{_plural(len(report.infos), 'info')}"
        + (f" ({known} known, in the baseline)" if known else "")
    )


def _evidence_lines(finding: Finding) -> list[str]:
    lines = []
    for key, value in finding.evidence.items():
        if value in (None, [], {}, ""):
            continue
        if isinstance(value, list):
            shown = ", ".join(
                str(v) if not isinstance(v, dict) else ", ".join(f"{k}={w}" for k, w in v.items())
                for v in value[:12]
            )
            if len(value) > 12:
                shown += f", … ({len(value)} in all)"
            value = shown
        lines.append(f"{key.replace('_', ' ')}: {value}")
    return lines


def _indented(text: Text, left: int, width: int = 100) -> Text:
    """Wrap by hand: rich pads wrapped lines with trailing spaces inside a Padding."""
    pad = " " * left
    wrapped = textwrap.fill(
        text.plain,
        width=width,
        initial_indent=pad,
        subsequent_indent=pad,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return Text(wrapped, style=text.style)


def render_text(
    report: Report,
    *,
    verbosity: int = 1,
    color: bool | None = None,
    width: int = 100,
) -> str:
    """`color`: True forces colour, False forbids it, None decides like a terminal would."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=bool(color),
        no_color=color is False,
        color_system="standard" if color else None,
        width=width,
        highlight=False,
        emoji=False,
    )
    worst = max((f.severity for f in report.findings), default=None)
    head = Text(summary_line(report))
    if worst is not None and worst >= Severity.WARNING:
        head.stylize(_STYLE[worst])
    elif worst is None or worst == Severity.INFO:
        head.stylize("green")
    console.print(head)
    if report.deploy:
        if report.pending:
            console.print(f"migrate will apply {_plural(len(report.pending), 'migration')}:")
            for name in report.pending:
                console.print(f"  {name}", soft_wrap=True)
        else:
            console.print("migrate has nothing to apply.")
    if not report.findings:
        console.print("No findings: rows, migration files and schema agree.")
        return buffer.getvalue()

    hidden = [f for f in report.findings if f.kind == "unapplied"] if verbosity < 2 else []
    shown = [f for f in report.findings if f not in hidden]
    groups: dict[str, list[Finding]] = defaultdict(list)
    for finding in shown:
        groups[finding.app or "(project)"].append(finding)
    for app in sorted(groups, key=lambda a: (a == "(project)", a)):
        console.print()
        console.print(Text(app, style="bold"))
        for finding in groups[app]:
            code = finding.id.rsplit(".", 1)[-1]
            line = Text("  ")
            line.append(f"{code} {finding.kind}", style=_STYLE[finding.severity])
            if finding.migration:
                line.append(f"  {finding.target}")
            if finding.known:
                line.append("  (known, in the baseline)", style="dim")
            console.print(line)
            console.print(_indented(Text(finding.message), 4, width), soft_wrap=True)
            if verbosity >= 1:
                for ev in _evidence_lines(finding):
                    console.print(_indented(Text(ev, style="dim"), 4, width), soft_wrap=True)
            if finding.fix.summary:
                fix = Text("fix: " + finding.fix.summary, style="green")
                console.print(_indented(fix, 4, width), soft_wrap=True)
            for command in finding.fix.commands:
                console.print(f"      $ {escape(command)}", soft_wrap=True)
    if hidden:
        by_app: dict[str, int] = defaultdict(int)
        for f in hidden:
            by_app[f.app or ""] += 1
        listing = ", ".join(f"{a} ({n})" for a, n in sorted(by_app.items()))
        console.print()
        tail = Text(
            f"{_plural(len(hidden), 'unapplied migration')} without schema present: "
            f"{listing}. `migrate` applies them; -v 2 lists each.",
            style="cyan",
        )
        console.print(_indented(tail, 0, width), soft_wrap=True)
    return buffer.getvalue()
