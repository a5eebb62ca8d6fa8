"""GitHub Actions annotations: one workflow command per finding, then a plain summary line.

    ::error file=shop/migrations/0002_tags.py,line=6,title=migration_doctor.E001 table-exists::...

GitHub shows each one on the pull request's diff, at the migration file the finding is about
(the `class Migration` line, or the failing line for a module that does not load); a finding
without a file (a row of an app that is not installed, a deleted file) is an annotation without
one. Names are shown() first (no ESC, bidi or line breaks reach the log), then escaped as
GitHub's toolkit does (`@actions/core` command.ts): in the data `%`, CR and LF; in property
values also `:` and `,`.
"""

from __future__ import annotations

import ast
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..diagnose import Report
from ..findings import Finding, Severity
from .safe import shown
from .text import summary_line

COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, properties: dict[str, Any], message: str) -> str:
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None
    )
    return f"::{command}{' ' + props if props else ''}::{escape_data(message)}"


def migration_class_line(path: str) -> int | None:
    """The line of the top-level `class Migration` in `path`, or None."""
    try:
        stat = Path(path).stat()
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return None
    return _class_line(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=1024)
def _class_line(path: str, mtime_ns: int, size: int) -> int | None:
    try:
        tree = ast.parse(Path(path).read_bytes(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Migration":
            return node.lineno
    return None


def display_path(path: str, cwd: Path | None = None) -> str:
    """Relative to the working directory (the checkout, in Actions) when inside it."""
    base = (cwd or Path.cwd()).resolve()
    try:
        resolved = Path(path).resolve()
    except (OSError, ValueError):
        return path
    try:
        return resolved.relative_to(base).as_posix()
    except ValueError:
        return resolved.as_posix()


def _module_file(report: Report, app: str, migration: str) -> str | None:
    """The file of a migration on disk, found the way the classifier finds it: None for a row
    the loader has no file for (an app that is not installed, a deleted file, MIGRATION_MODULES
    None, a module that failed to load)."""
    snapshot = report.snapshot
    if snapshot is not None:
        instance = snapshot.graph.loader.disk_migrations.get((app, migration))
        module_name = type(instance).__module__ if instance is not None else None
    else:  # a report without its snapshot: only what is imported already
        from django.db.migrations.loader import MigrationLoader

        try:
            package, _ = MigrationLoader.migrations_module(app)
        except LookupError:  # the app is not installed
            return None
        module_name = f"{package}.{migration}" if package else None
    module = sys.modules.get(module_name) if module_name else None
    file = getattr(module, "__file__", None)
    return file if isinstance(file, str) and file.endswith(".py") else None


_OWN_SOURCE = Path(__file__).resolve().parent.parent


def _ours(file: str) -> bool:
    """A file of the doctor itself: the frame an import error names when the migrations
    module does not exist at all. GitHub shows annotations on the project's files."""
    try:
        return Path(file).resolve().is_relative_to(_OWN_SOURCE)
    except (OSError, ValueError):
        return False


def _evidence_location(evidence: dict[str, Any]) -> tuple[str | None, int | None]:
    """A file/line the evidence names itself (import-time findings name the module's line)."""
    for where in (evidence, evidence.get("started_at"), evidence.get("stuck_at")):
        if isinstance(where, dict) and isinstance(where.get("file"), str):
            if _ours(where["file"]):
                return None, None
            line = where.get("line")
            return where["file"], line if isinstance(line, int) else None
    return None, None


def location(report: Report, finding: Finding) -> tuple[str | None, int | None]:
    """(file, line) of the finding, or (None, None) when it has no file."""
    if finding.kind == "migration-load-error":
        file, line = _evidence_location(finding.evidence)
        if file:
            return file, line or migration_class_line(file) or 1
    if finding.app and finding.migration:
        file = _module_file(report, finding.app, finding.migration)
        if file:
            return file, migration_class_line(file) or 1
    file, line = _evidence_location(finding.evidence)
    if file and Path(file).is_file():
        return file, line or 1
    return None, None


def annotation(report: Report, finding: Finding, cwd: Path | None = None) -> str:
    file, line = location(report, finding)
    message = finding.message
    if finding.fix.commands:
        message += f" Fix: {finding.fix.commands[0]}"
    properties: dict[str, Any] = {
        "file": shown(display_path(file, cwd)) if file else None,
        "line": line if file else None,
        "title": f"{finding.id} {finding.kind}",
    }
    return workflow_command(COMMAND[finding.severity], properties, shown(message))


def render_github(report: Report, *, cwd: Path | None = None) -> str:
    lines = [annotation(report, finding, cwd) for finding in report.findings]
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"
