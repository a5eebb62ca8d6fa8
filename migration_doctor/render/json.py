"""The JSON contract: built from the Report's data, never from rendered text; names exact
(json_safe() only spells `##[` another way, see render/safe.py)."""

from __future__ import annotations

import json
from typing import Any

from ..diagnose import Report
from .safe import json_safe


def render_document(document: dict[str, Any]) -> str:
    """Every JSON document the commands print: indented, names exact, one trailing newline."""
    return json_safe(json.dumps(document, indent=2, default=str)) + "\n"


def render_json(report: Report) -> str:
    return render_document(report.as_dict())


def targets_document(
    reports: list[Report], errors: dict[str, str], fail_on: str, **extra: Any
) -> dict[str, Any]:
    """Several databases (or a tenant fleet's schemas) in one object: each target's report,
    the ones that could not be diagnosed, and the totals (a consumer never has to tell an
    array from an object). A schema names its target in `failed`; `extra` adds to summary."""
    targets: list[dict[str, object]] = [r.as_dict() for r in reports]
    targets += [{"version": 1, "database": alias, "error": why} for alias, why in errors.items()]
    return {
        "version": 1,
        "targets": targets,
        "summary": {
            "targets": len(targets),
            "failed": [r.schema or r.database for r in reports if r.fails(fail_on)],
            "unreachable": sorted(errors),
            "errors": sum(len(r.errors) for r in reports),
            "warnings": sum(len(r.warnings) for r in reports),
            "infos": sum(len(r.infos) for r in reports),
            **extra,
        },
    }


def render_json_targets(
    reports: list[Report], errors: dict[str, str], fail_on: str, **extra: Any
) -> str:
    return render_document(targets_document(reports, errors, fail_on, **extra))
