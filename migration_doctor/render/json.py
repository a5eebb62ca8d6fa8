"""The JSON contract: built from the Report's data, never from rendered text."""

from __future__ import annotations

import json

from ..diagnose import Report


def render_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, default=str) + "\n"
