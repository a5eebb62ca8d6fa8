"""GitHub Actions annotations: one workflow command per finding, then a plain summary line.

    ::error file=shop/migrations/0002_tags.py,line=6,title=migration_doctor.E001 table-exists::...

GitHub shows each one on the pull request's diff, at the migration file the finding is about
(the `class Migration` line, or the failing line for a module that does not load). Escaping
follows GitHub's toolkit (`@actions/core` command.ts): in the data `%`, CR and LF; in property
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
    except OSError:
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
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(base).as_posix()
    except ValueError:
        return resolved.as_posix()


def _module_file(report: Report, app: str, migration: str) -> str | None:
    """The file of a migration on disk, found the way the classifier finds it."""
    module_name: str | None = None
    snapshot = report.snapshot
    if snapshot is not None:
        instance = snapshot.graph.loader.disk_migrations.get((app, migration))
        if instance is not None:
            module_name = type(instance).__module__
    if module_name is None:  # a report without its snapshot: only what is imported already
        from django.db.migrations.loader import MigrationLoader

        package, _ = MigrationLoader.migrations_module(app)
        module_name = f"{package}.{migration}" if package else None
    module = sys.modules.get(module_name) if module_name else None
    file = getattr(module, "__file__", None)
    return file if isinstance(file, str) and file.endswith(".py") else None


def _evidence_location(evidence: dict[str, Any]) -> tuple[str | None, int | None]:
    """A file/line the evidence names itself (import-time findings name the module's line)."""
    for where in (evidence, evidence.get("started_at"), evidence.get("stuck_at")):
        if isinstance(where, dict) and isinstance(where.get("file"), str):
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
        "file": display_path(file, cwd) if file else None,
        "line": line if file else None,
        "title": f"{finding.id} {finding.kind}",
    }
    return workflow_command(COMMAND[finding.severity], properties, message)


def render_github(report: Report, *, cwd: Path | None = None) -> str:
    lines = [annotation(report, finding, cwd) for finding in report.findings]
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"
