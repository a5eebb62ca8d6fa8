"""`python -m migration_doctor --settings=mysite.settings`: the import-time watch alone.

The process `manage.py migration_doctor` starts beside itself to watch the project's import
(`traps.child.ImportWatch`, with --format=json), and the entry point for projects whose
manage.py crashes (or hangs) before any command runs: a query in models.py or
AppConfig.ready(), a thread started at import. It imports the project the way
manage.py does — django.setup(), then the URLconf as the system checks import it — while
watching every SQL statement and every thread, prints the findings and exits:
0 nothing at error level, 1 an error-level finding, 2 the doctor cannot run (the settings do
not import, or importing stopped for a reason that is not a query — one line on stderr).

The process always ends with os._exit(), so a non-daemon thread the project starts can never
keep it alive, and a watchdog reports where importing is stuck after --timeout seconds.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, NoReturn

from .findings import Severity
from .traps.child import DEFAULT_TIMEOUT
from .traps.watch import WatchOutcome, watch_project

WIDTH = 100
_EMIT = threading.Lock()
_STDERR: IO[str] = sys.__stderr__ or sys.stderr


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m migration_doctor",
        description=(
            "Import the Django project the way manage.py does and report database queries "
            "and non-daemon threads that run at import time. For projects whose manage.py "
            "crashes or hangs before any command runs; otherwise `manage.py migration_doctor` "
            "includes this watch."
        ),
    )
    parser.add_argument(
        "--settings",
        help='The Python path to a settings module, e.g. "myproject.settings.main". If not '
        "provided, the DJANGO_SETTINGS_MODULE environment variable will be used.",
    )
    parser.add_argument(
        "--pythonpath",
        help='A directory to add to the Python path, e.g. "/home/djangoprojects/myproject".',
    )
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"Seconds importing may take before it is reported as a hang "
        f"(default {DEFAULT_TIMEOUT:g}).",
    )
    return parser.parse_args(argv)


def render_text(outcome: WatchOutcome) -> str:
    from .render.text import render_findings  # after the watch: keeps the child's start lean

    findings = outcome.findings
    errors = sum(1 for f in findings if f.severity == Severity.ERROR)
    warnings = sum(1 for f in findings if f.severity == Severity.WARNING)
    headline = (
        f"migration_doctor: import-time watch of {outcome.settings_module!r} "
        f"(database {outcome.database!r}, {outcome.vendor}): "
        f"{errors} error{'' if errors == 1 else 's'}, "
        f"{warnings} warning{'' if warnings == 1 else 's'}"
    )
    empty = (
        "No import-time queries or threads: importing the project runs no SQL and leaves "
        "no non-daemon thread running."
        if not outcome.problem
        else "No import-time queries or threads before importing stopped."
    )
    text = render_findings(headline, findings, empty=empty, color=False, width=WIDTH)
    return text + (f"\nnote: {outcome.problem}\n" if outcome.problem else "")


def emit(outcome: WatchOutcome, fmt: str, out: IO[str]) -> NoReturn:
    """Print the report and end the process at once, whatever threads still run."""
    with _EMIT:
        try:
            faulthandler.cancel_dump_traceback_later()
            if fmt == "json":
                out.write(json.dumps(outcome.as_dict(), indent=2, default=str) + "\n")
            elif not outcome.settings_error:
                out.write(render_text(outcome))
            out.flush()
            problem = outcome.settings_error or outcome.problem
            if problem and outcome.status == 2:
                _STDERR.write(f"migration_doctor: {problem}\n")
            _STDERR.flush()
        finally:
            os._exit(outcome.status)


def main(argv: list[str] | None = None) -> NoReturn:
    args = parse_args(argv)
    if args.pythonpath:
        sys.path.insert(0, args.pythonpath)
    if sys.path and sys.path[0] == "":
        sys.path[0] = str(Path.cwd())
    if args.settings:
        os.environ["DJANGO_SETTINGS_MODULE"] = args.settings
    out = sys.stdout
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        sys.stderr.write(
            "migration_doctor: no settings module: pass --settings=<module> or set "
            "DJANGO_SETTINGS_MODULE\n"
        )
        sys.stderr.flush()
        os._exit(2)
    # Whatever the project prints while it is imported goes to stderr: stdout is the report.
    sys.stdout = sys.stderr
    # Last resort if the import holds the GIL forever: dump every thread's stack and exit.
    faulthandler.dump_traceback_later(args.timeout + 3, exit=True, file=_STDERR)
    try:
        outcome = watch_project(
            args.settings,
            timeout=args.timeout,
            on_timeout=lambda o: emit(o, args.format, out),
        )
    except KeyboardInterrupt:
        os._exit(130)  # a plain exit would wait for the project's non-daemon threads
    except BaseException:
        traceback.print_exc(file=_STDERR)
        _STDERR.flush()
        os._exit(2)
    emit(outcome, args.format, out)


if __name__ == "__main__":
    main()
