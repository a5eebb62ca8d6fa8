"""Human output with rich: a summary line, then findings grouped by app."""

from __future__ import annotations

import io
import textwrap
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.text import Text

from ..diagnose import Report
from ..findings import Finding, Severity
from .safe import shown

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


def format_value(key: str, value: Any) -> str:
    """Evidence as one readable line: file/line pairs, call chains, lists of objects."""
    if isinstance(value, dict) and set(value) == {"file", "line"}:
        return f"{value['file']}, line {value['line']}"
    if isinstance(value, list):
        if key == "stack":
            return " -> ".join(str(v) for v in value)
        shown = ", ".join(
            str(v) if not isinstance(v, dict) else ", ".join(f"{k}={w}" for k, w in v.items())
            for v in value[:12]
        )
        return shown + (f", … ({len(value)} in all)" if len(value) > 12 else "")
    return str(value)


def _evidence_lines(finding: Finding) -> list[str]:
    return [
        shown(f"{key.replace('_', ' ')}: {format_value(key, value)}")
        for key, value in finding.evidence.items()
        if value not in (None, [], {}, "")
    ]


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


def _console(buffer: io.StringIO, color: bool | None, width: int) -> Console:
    return Console(
        file=buffer,
        force_terminal=bool(color),
        no_color=color is False,
        color_system="standard" if color else None,
        width=width,
        highlight=False,
        emoji=False,
    )


def _headline(text: str, findings: list[Finding]) -> Text:
    worst = max((f.severity for f in findings), default=None)
    head = Text(text)
    head.stylize(_STYLE[worst] if worst is not None and worst >= Severity.WARNING else "green")
    return head


def print_findings(
    console: Console, findings: list[Finding], verbosity: int = 1, width: int = 100
) -> None:
    """Findings grouped by app, each with its evidence and fix (shared by every report).

    Every string of a finding is shown() (names in it come from rows and files), printed as
    Text (no markup) and never wrapped by rich, which would split a word at any character:
    textwrap breaks lines only at whitespace."""
    hidden = [f for f in findings if f.kind == "unapplied"] if verbosity < 2 else []
    groups: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        if finding not in hidden:
            groups[finding.app or "(project)"].append(finding)
    for app in sorted(groups, key=lambda a: (a == "(project)", a)):
        console.print()
        console.print(Text(shown(app), style="bold"), soft_wrap=True)
        for finding in groups[app]:
            code = finding.id.rsplit(".", 1)[-1]
            line = Text("  ")
            line.append(f"{code} {finding.kind}", style=_STYLE[finding.severity])
            if finding.migration:
                line.append(f"  {shown(finding.target)}")
            if finding.known:
                line.append("  (known, in the baseline)", style="dim")
            console.print(line, soft_wrap=True)
            print_body(console, finding, verbosity, width)
    if hidden:
        by_app: dict[str, int] = defaultdict(int)
        for f in hidden:
            by_app[f.app or ""] += 1
        listing = ", ".join(f"{shown(a)} ({n})" for a, n in sorted(by_app.items()))
        console.print()
        tail = Text(
            f"{_plural(len(hidden), 'unapplied migration')} without schema present: "
            f"{listing}. `migrate` applies them; -v 2 lists each.",
            style="cyan",
        )
        console.print(_indented(tail, 0, width), soft_wrap=True)


def render_findings(
    headline: str,
    findings: list[Finding],
    *,
    empty: str,
    verbosity: int = 1,
    color: bool | None = None,
    width: int = 100,
) -> str:
    """A headline and findings, for reports that are not a database diagnosis."""
    buffer = io.StringIO()
    console = _console(buffer, color, width)
    console.print(_headline(shown(headline), findings), soft_wrap=True)
    if findings:
        print_findings(console, findings, verbosity, width)
    else:
        console.print(_indented(Text(shown(empty)), 0, width), soft_wrap=True)
    return buffer.getvalue()


def print_body(console: Console, finding: Finding, verbosity: int, width: int) -> None:
    """A finding's message, evidence (verbosity >= 1), fix and commands, indented."""
    console.print(_indented(Text(shown(finding.message)), 4, width), soft_wrap=True)
    if verbosity >= 1:
        for ev in _evidence_lines(finding):
            console.print(_indented(Text(ev, style="dim"), 4, width), soft_wrap=True)
    if finding.fix.summary:
        fix = Text("fix: " + shown(finding.fix.summary), style="green")
        console.print(_indented(fix, 4, width), soft_wrap=True)
    for command in finding.fix.commands:
        console.print(Text(f"      $ {shown(command)}"), soft_wrap=True)


def render_text(
    report: Report,
    *,
    verbosity: int = 1,
    color: bool | None = None,
    width: int = 100,
) -> str:
    """`color`: True forces colour, False forbids it, None decides like a terminal would."""
    buffer = io.StringIO()
    console = _console(buffer, color, width)
    console.print(_headline(summary_line(report), report.findings))
    if report.deploy:
        if report.pending:
            console.print(f"migrate will apply {_plural(len(report.pending), 'migration')}:")
            for name in report.pending:
                console.print(Text(f"  {shown(name)}"), soft_wrap=True)
        else:
            console.print("migrate has nothing to apply.")
    for position in report.positions:
        console.print(Text(shown(position.describe())), soft_wrap=True)
    if not report.findings:
        console.print("No findings: rows, migration files and schema agree.")
        return buffer.getvalue()
    print_findings(console, report.findings, verbosity, width)
    return buffer.getvalue()
