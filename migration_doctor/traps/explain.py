"""The findings an import-time watch reports: what happened, where, why it breaks
`migrate` or `makemigrations`, and how to fix the code."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..findings import KINDS, Finding, Fix, Severity
from .frames import SQL_LIMIT, Frame, blame, user_stack
from .hooks import READY, URLCONF, Query, ThreadStart, Watcher
from .sql import missing_column, missing_table, no_table_error, tables_in


def app_of(module: str | None) -> str | None:
    """The label of the installed app whose package holds `module`."""
    if not module:
        return None
    from django.apps import apps

    best = None
    for config in list(apps.app_configs.values()):
        if (module == config.name or module.startswith(config.name + ".")) and (
            best is None or len(config.name) > len(best.name)
        ):
            best = config
    return best.label if best else None


def _recheck_command(settings_module: str | None) -> tuple[str, ...]:
    flag = f" --settings={settings_module}" if settings_module else ""
    return (f"python -m migration_doctor{flag}",)


def _place(frame: Frame | None) -> str:
    if frame is None:
        return "an unknown place"
    return f"{Path(frame.file).name} line {frame.line}"


def _query_fix(frame: Frame | None, phase: str) -> str:
    module = (frame.module or "") if frame else ""
    leaf = module.rsplit(".", 1)[-1]
    if leaf == "forms" or ".forms." in f".{module}.":
        where = (
            "In a form, use a ModelChoiceField with a queryset (querysets are lazy), pass a "
            "callable as choices (`choices=category_choices`, a function returning the list), "
            "or fill the choices in the form's __init__()."
        )
    elif leaf == "views" or ".views." in f".{module}.":
        where = (
            "In a view, compute the value inside the view function or get_queryset()/"
            "get_context_data(), so it runs per request."
        )
    elif leaf == "models":
        where = (
            "In models.py, never evaluate a queryset at module level: put it in a function, "
            "a method or a classmethod that callers use when they need the value."
        )
    elif phase == READY:
        where = (
            "In AppConfig.ready(), do not query: do the work lazily on first use, or in a "
            "post_migrate signal handler or a management command."
        )
    else:
        where = (
            "Wrap the module-level value in a function (e.g. decorated with "
            "functools.cache) and call it where the value is used."
        )
    return (
        "Do not run queries while modules are imported: move the query into a function or "
        "a lazy callable that runs when the value is needed. " + where
    )


def _query_finding(group: list[Query], crashed: bool, settings_module: str | None) -> Finding:
    failed = [q for q in group if q.failed]
    # The failed statement, else the first that names a table (connecting runs the backend's
    # own setup statements, such as MySQL's SELECT @@SQL_AUTO_IS_NULL, from the same line).
    shown = failed[0] if failed else next((q for q in group if tables_in(q.sql)), group[0])
    frame = blame(shown.stack)
    module = frame.module if frame else None
    tables = tables_in(shown.sql)
    gone = missing_table(shown.error)
    table = gone or (tables[0] if tables else None)
    where = f"{module or 'the project'} ({_place(frame)}, during {shown.phase})"
    evidence: dict[str, Any] = {
        "module": module,
        "file": frame.file if frame else None,
        "line": frame.line if frame else None,
        "sql": (shown.sql or "")[:SQL_LIMIT] or None,
        "table": table,
        "outcome": "failed" if failed else "succeeded",
    }
    if failed:
        evidence["error"] = shown.error
    evidence["phase"] = shown.phase
    if len(group) > 1:
        evidence["statements"] = len(group)
    evidence["stack"] = user_stack(shown.stack)

    if shown.phase == URLCONF:
        stops = (
            "`migrate` runs the system checks, which import the URLconf and with it this "
            "module, so on a database that is not migrated yet `migrate` stops before creating "
            "any table"
        )
    else:
        stops = (
            "this module is imported by django.setup(), so on a database that is not migrated "
            "yet manage.py crashes before any command runs — `migrate` included, so it can never "
            "create the table"
        )
    if failed:
        if shown.sql is None:
            why = f"connecting to the database failed: {shown.error}"
        elif gone:
            why = f"table {gone} does not exist yet (the database is not migrated): {shown.error}"
        elif missing_column(shown.error):
            why = (
                f"column {missing_column(shown.error)} does not exist yet (a migration is not "
                f"applied): {shown.error}"
            )
        else:
            why = f"it failed: {shown.error}"
        message = f"{where} runs a database query while Django imports the project, and {why}."
        if crashed:
            message += f" Importing the project stopped there: {stops}."
        else:
            message += (
                " Your code caught the error, so importing went on with a wrong value; "
                f"were it not caught, {stops}."
            )
        level = Severity.ERROR
    else:
        fails_with = no_table_error(shown.vendor, table) if table else "no such table"
        message = (
            f"{where} runs a database query while Django imports the project. It succeeded "
            f"here because {'table ' + table if table else 'the table'} exists, but on a fresh "
            f"database (a new checkout, CI, a new deployment) it fails with `{fails_with}`: "
            f"{stops}. It also runs at every start of every process."
        )
        level = Severity.WARNING
    app = app_of(module) or shown.ready_app
    return Finding(
        "import-time-query",
        app,
        None,
        message,
        evidence,
        Fix(_query_fix(frame, shown.phase), _recheck_command(settings_module)),
        level=level,
    )


THREAD_FIX = (
    "Do not leave a running non-daemon thread behind at import. If the thread may die with "
    "the process, make it a daemon (`threading.Thread(..., daemon=True)`). Otherwise do not "
    "start it while modules are imported: create the object lazily (a function that builds it "
    "on first use instead of a module-level singleton) and start the thread explicitly where "
    "it is needed — a management command, the WSGI/ASGI entry point, or AppConfig.ready() "
    "guarded so management commands do not start it — and stop it (join it) on shutdown."
)


def _thread_finding(starts: list[ThreadStart], settings_module: str | None) -> Finding:
    first = starts[0]
    started = blame(first.stack) if first.stack else None
    created = blame(first.created) if first.created else None
    module = started.module if started else None
    if created and created != started:
        placed = f"created at {_place(created)} and started at {_place(started)}"
    else:
        placed = f"started at {_place(started)}"
    count = f"{len(starts)} non-daemon threads" if len(starts) > 1 else "A non-daemon thread"
    message = (
        f"{count} ({first.name!r}, target {first.target or 'unknown'}) {placed}"
        f" in {module or 'the project'}, during {first.phase}, "
        f"{'are' if len(starts) > 1 else 'is'} still running when importing ends. Python waits "
        "for every non-daemon thread before the process exits, so `manage.py makemigrations`, "
        "`migrate` and every other command finish their work and then hang forever."
    )
    evidence: dict[str, Any] = {
        "thread_name": first.name,
        "target": first.target,
        "started_at": started.where() if started else None,
        "created_at": created.where() if created else None,
        "phase": first.phase,
        "module": module,
    }
    if len(starts) > 1:
        evidence["threads"] = len(starts)
    evidence["stack"] = user_stack(first.stack)
    app = app_of(module) or first.ready_app
    return Finding(
        "import-time-thread",
        app,
        None,
        message,
        evidence,
        Fix(THREAD_FIX, _recheck_command(settings_module)),
    )


HANG_FIX = (
    "Find what the code at the place shown waits for and stop it from waiting at import: "
    "do not join threads, wait on locks, events or network services, or run long work while "
    "modules are imported; move it into a function called when needed. A query blocked by "
    "another transaction's lock also ends here."
)


def hang_finding(
    timeout: float,
    stuck: Sequence[Frame],
    phase: str | None,
    settings_module: str | None,
    threads: Sequence[str] = (),
    *,
    killed: bool = False,
) -> Finding:
    frame = blame(stuck) if stuck else None
    module = frame.module if frame else None
    at = (
        f" It was stuck at {_place(frame)} in {module or 'the project'}"
        + (f", during {phase}" if phase else "")
        + "."
        if frame
        else ""
    )
    how = "the doctor stopped the process" if killed else "the doctor stopped waiting"
    message = (
        f"Importing the project did not finish within {timeout:g} s, so {how} (reported as "
        f"an import-time hang: a thread joined or waited for at import, a lock, a network call "
        f"or a long loop).{at} manage.py hangs the same way before any command runs."
    )
    evidence: dict[str, Any] = {
        "hang": True,
        "timeout": timeout,
        "stuck_at": frame.where() if frame else None,
        "module": module,
        "phase": phase,
    }
    if threads:
        evidence["threads_alive"] = list(threads)
    evidence["stack"] = user_stack(stuck)
    return Finding(
        "import-time-thread",
        app_of(module),
        None,
        message,
        evidence,
        Fix(HANG_FIX, _recheck_command(settings_module)),
    )


def sort_key(f: Finding) -> tuple[int, str, str, int]:
    where = f.evidence.get("started_at") or f.evidence.get("stuck_at") or f.evidence
    return (-int(f.severity), f.app or "", str(where.get("file") or ""), where.get("line") or 0)


def chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def findings_of(
    watcher: Watcher,
    crash: BaseException | None,
    settings_module: str | None,
    threads: Sequence[ThreadStart] | None = None,
) -> list[Finding]:
    queries = list(watcher.queries)
    crashed_by: set[int] = set()
    if crash is not None:
        causes = list(chain(crash))
        for q in queries:
            if q.exception is not None and any(q.exception is e for e in causes):
                crashed_by.add(id(q))
    groups: dict[tuple[str, int], list[Query]] = {}
    for q in queries:
        frame = blame(q.stack)
        key = (frame.file, frame.line) if frame else ("", 0)
        groups.setdefault(key, []).append(q)
    findings = [
        _query_finding(group, any(id(q) in crashed_by for q in group), settings_module)
        for group in groups.values()
    ]
    by_start: dict[tuple[str, int, str, int], list[ThreadStart]] = {}
    for s in watcher.live_threads() if threads is None else threads:
        started = blame(s.stack)
        created = blame(s.created) if s.created else None
        place = (
            started.file if started else "",
            started.line if started else 0,
            created.file if created else "",
            created.line if created else 0,
        )
        by_start.setdefault(place, []).append(s)
    findings += [_thread_finding(group, settings_module) for group in by_start.values()]
    findings.sort(key=sort_key)
    return findings


def finding_from_dict(data: dict[str, Any]) -> Finding:
    """The inverse of Finding.as_dict(): the child's JSON read back by the parent."""
    severity = {s.label: s for s in Severity}[data["severity"]]
    fix = data.get("fix") or {}
    return Finding(
        data["kind"],
        data.get("app"),
        data.get("migration"),
        data.get("message", ""),
        dict(data.get("evidence") or {}),
        Fix(fix.get("summary", ""), tuple(fix.get("commands") or ())),
        level=None if KINDS[data["kind"]].severity == severity else severity,
    )
