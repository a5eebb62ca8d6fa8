"""Import-time traps: queries and non-daemon threads that run while Django imports a project.

Two failure modes meet users before any migration runs:

* a module-level query (``NAMES = [c.name for c in Category.objects.all()]`` in a views,
  forms or models module) makes ``migrate`` fail on a fresh database with ``no such table``;
* a non-daemon thread started at import keeps ``manage.py`` alive forever after its work.

`watch_project` imports a project the way management commands do — ``django.setup()``, then
the URLconf the way the system checks import it — with hooks on every SQL statement and every
``threading.Thread``; it must run in a process where ``django.setup()`` has not run yet
(``python -m migration_doctor``). `ImportWatch` runs that in a child process for callers where
Django is already set up (the management command): ``start()`` it early, ``result()`` late.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Protocol

import django

from .findings import KINDS, Finding, Fix, Severity

DEFAULT_TIMEOUT = 60.0  # seconds an import may take before the doctor calls it a hang
KILL_GRACE = 10.0  # the parent kills the child this long after the child's own deadline
THREAD_GRACE = 0.5  # live non-daemon threads get this long to finish before they count
SQL_LIMIT = 300

APP_LOADING = "app loading"
READY = "ready()"
URLCONF = "URLconf import"
UNWATCHED = "unknown"  # a thread started before manage.py's own watch began

# -- where a frame comes from ---------------------------------------------------------------

_DOCTOR_DIR = str(Path(__file__).resolve().parent) + os.sep
_DJANGO_DIR = str(Path(django.__file__).resolve().parent) + os.sep


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get("stdlib"), paths.get("platstdlib")}
    return tuple(str(Path(d).resolve()) + os.sep for d in dirs if d)


_STDLIB_DIRS = _stdlib_dirs()


@lru_cache(maxsize=4096)
def origin(filename: str) -> str:
    """'doctor', 'django', 'third-party', 'stdlib' or 'user' (the project's own code)."""
    if not filename or filename.startswith("<"):
        return "stdlib"  # <frozen importlib._bootstrap>, <string>
    try:
        path = str(Path(filename).resolve())
    except (OSError, RuntimeError):
        path = filename
    if path.startswith(_DOCTOR_DIR):
        return "doctor"
    if path.startswith(_DJANGO_DIR):
        return "django"
    parts = Path(path).parts
    if "site-packages" in parts or "dist-packages" in parts:
        return "third-party"
    if path.startswith(_STDLIB_DIRS):
        return "stdlib"
    return "user"


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    module: str | None
    function: str

    @property
    def origin(self) -> str:
        return origin(self.file)

    def where(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line}

    def short(self) -> str:
        return f"{self.file}:{self.line} ({self.function})"


def _frame(f: FrameType, line: int | None = None) -> Frame:
    module = f.f_globals.get("__name__")
    return Frame(
        file=f.f_code.co_filename,
        line=line if line is not None else (f.f_lineno or 0),
        module=module if isinstance(module, str) else None,
        function=f.f_code.co_name,
    )


def stack_of(f: FrameType | None) -> list[Frame]:
    """Frames from `f` outwards: innermost first."""
    frames = []
    while f is not None:
        frames.append(_frame(f))
        f = f.f_back
    return frames


def traceback_stack(tb: TracebackType | None) -> list[Frame]:
    """The frames of a traceback, innermost first."""
    frames = []
    while tb is not None:
        frames.append(_frame(tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return frames[::-1]


def blame(stack: Sequence[Frame]) -> Frame | None:
    """The innermost frame of the project's own code; else of a third-party package; else
    the innermost frame that is not the doctor's."""
    for wanted in ("user", "third-party"):
        for frame in stack:
            if frame.origin == wanted:
                return frame
    return next((f for f in stack if f.origin != "doctor"), None)


def user_stack(stack: Sequence[Frame], limit: int = 8) -> list[str]:
    """The project's frames, outermost first: how the import reached the culprit. Empty
    when there is only one (file and line already say it)."""
    frames = [f.short() for f in reversed(stack) if f.origin == "user"]
    return frames[-limit:] if len(frames) > 1 else []


# -- what the hooks record ------------------------------------------------------------------


@dataclass
class Query:
    sql: str | None  # None: connecting to the database failed
    error: str | None  # None: it succeeded
    exception: BaseException | None
    stack: list[Frame]
    phase: str
    vendor: str
    ready_app: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass
class ThreadStart:
    thread: threading.Thread
    name: str
    target: str | None
    stack: list[Frame]
    created: list[Frame]
    phase: str
    ready_app: str | None = None
    running: list[Frame] = field(default_factory=list)  # where an unwatched thread is now


@dataclass
class WatchOutcome:
    """What importing the project did. `problem`: importing stopped for a reason no finding
    explains (an ImportError, a syntax error); `settings_error`: the settings do not import."""

    findings: list[Finding]
    settings_module: str | None
    database: str = "default"
    vendor: str = "unknown"
    problem: str | None = None
    settings_error: str | None = None

    @property
    def status(self) -> int:
        if self.settings_error:
            return 2
        if any(f.severity >= Severity.ERROR for f in self.findings):
            return 1
        return 2 if self.problem else 0

    def as_dict(self) -> dict[str, Any]:
        def count(severity: Severity) -> int:
            return sum(1 for f in self.findings if f.severity == severity)

        return {
            "version": 1,
            "settings": self.settings_module,
            "database": self.database,
            "vendor": self.vendor,
            "django": django.get_version(),
            "summary": {
                "errors": count(Severity.ERROR),
                "warnings": count(Severity.WARNING),
                "infos": count(Severity.INFO),
            },
            "findings": [f.as_dict() for f in self.findings],
            "problem": self.problem or self.settings_error,
        }


def _describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:SQL_LIMIT]


def _callable_name(target: object) -> str | None:
    if target is None:
        return None
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if name:
        return f"{module}.{name}" if module else str(name)
    return repr(target)[:100]


def _thread_target(thread: threading.Thread) -> str | None:
    """What the thread runs: its target, else its class's run()."""
    return _callable_name(getattr(thread, "_target", None)) or _callable_name(type(thread).run)


class Watcher:
    """Hooks on SQL execution, failed connections and thread creation/start.

    Statements are recorded only from the thread that imports the project; threads are
    recorded from any thread while the watch lasts.
    """

    def __init__(self) -> None:
        self.queries: list[Query] = []
        self.starts: list[ThreadStart] = []
        self.created: weakref.WeakKeyDictionary[threading.Thread, list[Frame]] = (
            weakref.WeakKeyDictionary()
        )
        self.ident = threading.get_ident()
        self.stage = "setup"
        self.active = False
        self._undo: list[Callable[[], None]] = []

    # phase of the import, from the app registry's own flags
    def phase(self) -> str:
        if self.stage == "urlconf":
            return URLCONF
        from django.apps import apps

        if apps.models_ready and not apps.ready:
            return READY
        return APP_LOADING

    @staticmethod
    def ready_app(frame: FrameType | None) -> str | None:
        """The label of the app whose ready() is running, if any."""
        from django.apps import AppConfig

        while frame is not None:
            if frame.f_code.co_name == "ready":
                owner = frame.f_locals.get("self")
                if isinstance(owner, AppConfig):
                    return owner.label
            frame = frame.f_back
        return None

    def _context(self, frame: FrameType | None) -> tuple[list[Frame], str, str | None]:
        phase = self.phase()
        return stack_of(frame), phase, self.ready_app(frame) if phase == READY else None

    def _patch(self, owner: type, name: str, replacement: Callable[..., Any]) -> None:
        original = owner.__dict__[name]
        setattr(owner, name, replacement)
        self._undo.append(lambda: setattr(owner, name, original))

    def install(self) -> None:
        from django.db.backends.base.base import BaseDatabaseWrapper
        from django.db.backends.utils import CursorWrapper

        watcher = self
        run_sql = CursorWrapper.__dict__["_execute_with_wrappers"]
        connect = BaseDatabaseWrapper.ensure_connection
        thread_init = threading.Thread.__init__
        thread_start = threading.Thread.start

        def _execute_with_wrappers(
            cursor: CursorWrapper, sql: Any, params: Any, many: bool, executor: Any
        ) -> Any:
            if not watcher.active or threading.get_ident() != watcher.ident:
                return run_sql(cursor, sql, params, many, executor)
            stack, phase, ready_app = watcher._context(sys._getframe(1))
            vendor = cursor.db.vendor
            try:
                result = run_sql(cursor, sql, params, many, executor)
            except Exception as exc:
                watcher.queries.append(
                    Query(str(sql), _describe_error(exc), exc, stack, phase, vendor, ready_app)
                )
                raise
            watcher.queries.append(Query(str(sql), None, None, stack, phase, vendor, ready_app))
            return result

        def ensure_connection(db: BaseDatabaseWrapper) -> None:
            if not watcher.active or threading.get_ident() != watcher.ident:
                return connect(db)
            try:
                return connect(db)
            except Exception as exc:
                stack, phase, ready_app = watcher._context(sys._getframe(1))
                watcher.queries.append(
                    Query(None, _describe_error(exc), exc, stack, phase, db.vendor, ready_app)
                )
                raise

        def __init__(thread: threading.Thread, *args: Any, **kwargs: Any) -> None:
            thread_init(thread, *args, **kwargs)
            if watcher.active:
                watcher.created[thread] = stack_of(sys._getframe(1))

        def start(thread: threading.Thread) -> None:
            if watcher.active:
                stack, phase, ready_app = watcher._context(sys._getframe(1))
                watcher.starts.append(
                    ThreadStart(
                        thread=thread,
                        name=thread.name,
                        target=_thread_target(thread),
                        stack=stack,
                        created=watcher.created.get(thread, []),
                        phase=phase,
                        ready_app=ready_app,
                    )
                )
            return thread_start(thread)

        self._patch(CursorWrapper, "_execute_with_wrappers", _execute_with_wrappers)
        self._patch(BaseDatabaseWrapper, "ensure_connection", ensure_connection)
        self._patch(threading.Thread, "__init__", __init__)
        self._patch(threading.Thread, "start", start)
        self.active = True

    def uninstall(self) -> None:
        self.active = False
        while self._undo:
            self._undo.pop()()

    @contextlib.contextmanager
    def watching(self) -> Iterator[Watcher]:
        self.install()
        try:
            yield self
        finally:
            self.uninstall()

    def live_threads(self, grace: float = THREAD_GRACE) -> list[ThreadStart]:
        """Threads started during the watch that are alive, not daemons, and would keep the
        interpreter from exiting (an idle ThreadPoolExecutor worker would not)."""
        candidates = [
            s
            for s in self.starts
            if _running(s.thread)
            and not s.thread.daemon
            and s.thread is not threading.current_thread()
        ]
        _give(grace, [s.thread for s in candidates])
        return [s for s in candidates if _running(s.thread) and not _idle_pool_worker(s.thread)]


def _give(grace: float, threads: Sequence[threading.Thread]) -> None:
    """Let `threads` finish within `grace` seconds in all."""
    deadline = time.monotonic() + grace
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _running(thread: threading.Thread) -> bool:
    """Alive, or still running although marked stopped: an exception raised into a join()
    of it (the doctor's deadline) makes Python 3.12 and older mark the joined thread
    stopped while it runs on."""
    return thread.is_alive() or (thread.ident or -1) in sys._current_frames()


def lingering_threads(grace: float = THREAD_GRACE) -> list[threading.Thread]:
    """Live non-daemon threads (other than this one and the main thread) that would keep the
    interpreter from exiting, after giving them `grace` seconds to finish."""
    me, main = threading.current_thread(), threading.main_thread()
    found = [t for t in threading.enumerate() if t not in (me, main) and not t.daemon]
    _give(grace, found)
    return [t for t in found if t.is_alive() and not _idle_pool_worker(t)]


def _idle_pool_worker(thread: threading.Thread) -> bool:
    """An idle concurrent.futures worker: the interpreter's exit hook stops it."""
    frame = sys._current_frames().get(thread.ident or -1)
    inner: list[FrameType] = []
    while frame is not None:
        if frame.f_code.co_name == "_worker" and frame.f_code.co_filename.endswith(
            os.path.join("concurrent", "futures", "thread.py")
        ):
            return all(origin(f.f_code.co_filename) == "stdlib" for f in inner)
        inner.append(frame)
        frame = frame.f_back
    return False


# -- the tables a statement reads or writes ---------------------------------------------------

_NAME = r"(?:`[^`]+`|\"[^\"]+\"|\[[^\]]+\]|[\w$]+)"
_TABLE_RE = re.compile(rf"\b(?:FROM|JOIN|INTO|UPDATE)\s+({_NAME}(?:\s*\.\s*{_NAME})?)", re.I)
_MISSING_TABLE_RES = [
    re.compile(r"no such table: (\S+)"),  # SQLite
    re.compile(r'relation "([^"]+)" does not exist'),  # PostgreSQL
    re.compile(r"Table '([^']+)' doesn't exist"),  # MySQL / MariaDB (1146)
]
_MISSING_COLUMN_RES = [
    re.compile(r"no such column: (\S+)"),
    re.compile(r'column "?([^" ]+)"? does not exist'),
    re.compile(r"Unknown column '([^']+)'"),
]
_SQL_KEYWORDS = {"select", "lateral", "only", "where", "values", "set"}


def _unquote(name: str) -> str:
    parts = [p.strip().strip('`"[]') for p in name.split(".")]
    return parts[-1]


def tables_in(sql: str | None) -> list[str]:
    """The tables a statement names after FROM/JOIN/INTO/UPDATE, unquoted, in order."""
    if not sql:
        return []
    found: list[str] = []
    for match in _TABLE_RE.finditer(sql):
        name = _unquote(match.group(1))
        if name and name.lower() not in _SQL_KEYWORDS and name not in found:
            found.append(name)
    return found


def missing_table(error: str | None) -> str | None:
    for regex in _MISSING_TABLE_RES:
        match = regex.search(error or "")
        if match:
            return _unquote(match.group(1))
    return None


def missing_column(error: str | None) -> str | None:
    for regex in _MISSING_COLUMN_RES:
        match = regex.search(error or "")
        if match:
            return match.group(1)
    return None


def _no_table_error(vendor: str, table: str) -> str:
    if vendor == "postgresql":
        return f'relation "{table}" does not exist'
    if vendor == "mysql":
        return f"(1146, \"Table '<database>.{table}' doesn't exist\")"
    return f"no such table: {table}"


# -- findings -----------------------------------------------------------------------------------


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
        fails_with = _no_table_error(shown.vendor, table) if table else "no such table"
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
    running = blame(first.running) if first.running else None
    module = started.module if started else running.module if running else None
    if started is None and running is not None:
        placed = (
            "started before the doctor's watch began (by the settings, manage.py or an app "
            f"listed before migration_doctor in INSTALLED_APPS), now running at {_place(running)}"
        )
    elif created and created != started:
        placed = f"created at {_place(created)} and started at {_place(started)}"
    else:
        placed = f"started at {_place(started)}"
    count = f"{len(starts)} non-daemon threads" if len(starts) > 1 else "A non-daemon thread"
    during = f", during {first.phase}" if first.phase != UNWATCHED else ""
    message = (
        f"{count} ({first.name!r}, target {first.target or 'unknown'}) {placed}"
        f" in {module or 'the project'}{during}, "
        f"{'are' if len(starts) > 1 else 'is'} still running when importing ends. Python waits "
        "for every non-daemon thread before the process exits, so `manage.py makemigrations`, "
        "`migrate` and every other command finish their work and then hang forever."
    )
    if first.phase == UNWATCHED:
        message += (
            " `python -m migration_doctor` watches the import from its very start and names "
            "the line that started it."
        )
    evidence: dict[str, Any] = {
        "thread_name": first.name,
        "target": first.target,
        "started_at": started.where() if started else None,
        "created_at": created.where() if created else None,
        "phase": first.phase,
        "module": module,
    }
    if running is not None:
        evidence["running_at"] = running.where()
    if len(starts) > 1:
        evidence["threads"] = len(starts)
    evidence["stack"] = user_stack(first.stack or first.running)
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
    interrupted: bool = False,
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
    how = (
        "the doctor stopped the process"
        if killed
        else "the doctor interrupted it"
        if interrupted
        else "the doctor stopped waiting"
    )
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


def _sort_key(f: Finding) -> tuple[int, str, str, int]:
    where = f.evidence.get("started_at") or f.evidence.get("stuck_at") or f.evidence
    return (-int(f.severity), f.app or "", str(where.get("file") or ""), where.get("line") or 0)


def _chain(exc: BaseException) -> Iterator[BaseException]:
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
        chain = list(_chain(crash))
        for q in queries:
            if q.exception is not None and any(q.exception is e for e in chain):
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
    findings.sort(key=_sort_key)
    return findings


def describe_crash(exc: BaseException) -> str:
    frame = blame(traceback_stack(exc.__traceback__))
    shown = frame is not None and frame.origin in ("user", "third-party")
    at = f" ({frame.file}, line {frame.line})" if frame and shown else ""
    return f"{type(exc).__name__}: {_describe_error(exc)}{at}"


# -- the watch itself -----------------------------------------------------------------------------


class SettingsError(Exception):
    """The settings module cannot be imported: the doctor cannot run."""


def _import_settings(settings_module: str | None) -> None:
    from django.conf import settings

    if settings_module:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    if not os.environ.get("DJANGO_SETTINGS_MODULE") and not settings.configured:
        raise SettingsError(
            "no settings module: pass --settings=<module> or set DJANGO_SETTINGS_MODULE"
        )
    try:
        settings.INSTALLED_APPS  # noqa: B018 - imports the settings module
    except Exception as exc:
        name = os.environ.get("DJANGO_SETTINGS_MODULE")
        hint = ""
        if (
            isinstance(exc, ModuleNotFoundError)
            and name
            and exc.name
            and (name == exc.name or name.startswith(exc.name + "."))
        ):
            hint = " (is the project directory on the path? run from it or use --pythonpath)"
        raise SettingsError(
            f"cannot import settings module {name!r}: {describe_crash(exc)}{hint}"
        ) from exc


def _walk_urlpatterns(patterns: Any, depth: int = 0) -> None:
    from django.urls import URLResolver

    if depth > 50:
        return
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _walk_urlpatterns(pattern.url_patterns, depth + 1)


def import_urlconf() -> None:
    """Import the URLconf the way the system checks do (check_url_config): every included
    URLconf, and the modules of the custom error handlers."""
    from django.conf import settings

    if not getattr(settings, "ROOT_URLCONF", None):
        return
    from django.core.checks.urls import check_resolver
    from django.urls import get_resolver

    resolver = get_resolver()
    _walk_urlpatterns(resolver.url_patterns)
    check_resolver(resolver)


def _database() -> tuple[str, str]:
    from django.db import DEFAULT_DB_ALIAS, connections

    try:
        return DEFAULT_DB_ALIAS, connections[DEFAULT_DB_ALIAS].vendor
    except Exception:
        return DEFAULT_DB_ALIAS, "unknown"


def watch_project(
    settings_module: str | None = None,
    *,
    urlconf: bool = True,
    timeout: float | None = None,
    on_timeout: Callable[[WatchOutcome], None] | None = None,
) -> WatchOutcome:
    """Import the project (django.setup(), then the URLconf) while watching every statement
    and thread; never raises for the project's errors. Call it before django.setup().

    With `timeout`, a daemon watchdog calls `on_timeout` with the findings so far plus a hang
    finding if importing has not finished by then (`on_timeout` should report and exit the
    process with os._exit — the stuck import cannot be interrupted).
    """
    from django.apps import apps

    if apps.ready or apps.loading:
        raise RuntimeError("watch_project() must run before django.setup()")
    name = settings_module or os.environ.get("DJANGO_SETTINGS_MODULE")
    watcher = Watcher()
    finished = threading.Event()
    main = threading.current_thread()

    def watchdog() -> None:
        assert timeout is not None and on_timeout is not None
        if finished.wait(timeout):
            return
        frames = sys._current_frames().get(main.ident or -1)
        stuck = stack_of(frames)
        alive = watcher.live_threads(grace=0.0)
        findings = findings_of(watcher, None, name, threads=alive)
        names = [s.name for s in alive]
        findings.append(hang_finding(timeout, stuck, watcher.phase(), name, names))
        findings.sort(key=_sort_key)
        database, vendor = _database()
        on_timeout(WatchOutcome(findings, name, database, vendor))

    if timeout is not None and on_timeout is not None:
        threading.Thread(target=watchdog, name="migration_doctor watchdog", daemon=True).start()

    crash: BaseException | None = None
    try:
        with watcher.watching():
            try:
                _import_settings(settings_module)
            except SettingsError as exc:
                return WatchOutcome([], name, settings_error=str(exc))
            try:
                django.setup()
                watcher.stage = "urlconf"
                if urlconf:
                    import_urlconf()
            except (Exception, SystemExit) as exc:  # sys.exit() at import stops it too
                crash = exc
            threads = watcher.live_threads()
    finally:
        finished.set()
    findings = findings_of(watcher, crash, name, threads)
    database, vendor = _database()
    return WatchOutcome(findings, name, database, vendor, problem=_problem(watcher, crash))


def _problem(watcher: Watcher, crash: BaseException | None) -> str | None:
    """Why importing stopped, when no finding explains it (no watched query raised it)."""
    if crash is None or any(q.exception is e for q in watcher.queries for e in _chain(crash)):
        return None
    return f"importing the project failed: {describe_crash(crash)}"


class TrapWatch(Protocol):
    """An import-time watch the diagnosis collects: InProcessWatch or ImportWatch."""

    problem: str | None

    def result(self) -> list[Finding]: ...

    def close(self) -> None: ...


# -- the watch inside manage.py's own process ---------------------------------------------------

COMMAND = "migration_doctor"
_setup_watcher: Watcher | None = None


def watch_setup() -> bool:
    """Start watching django.setup() from inside it when this process is
    `manage.py migration_doctor` (or django-admin's): MigrationDoctorConfig calls it while the
    app registry imports the app configs, before any models module or ready() runs. The
    command then takes the watcher over (`take_setup_watcher`) and needs no second process,
    no second copy of the project in memory, to report import-time traps."""
    global _setup_watcher
    from django.apps import apps

    if _setup_watcher is not None or not apps.loading or apps.ready:
        return False
    argv = _management_argv()
    if argv is None or len(argv) < 2 or argv[1] != COMMAND or "--skip-import-watch" in argv:
        return False
    watcher = Watcher()
    watcher.install()
    _setup_watcher = watcher
    previous = sys.excepthook

    def excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        previous(kind, exc, tb)
        if _setup_watcher is watcher and not apps.ready:  # django.setup() itself crashed
            _report_setup_crash(watcher, exc)

    sys.excepthook = excepthook
    return True


def _management_argv() -> list[str] | None:
    """The argv of the ManagementUtility whose execute() is running django.setup() in this
    thread, if any: what manage.py and django-admin really run, not pytest or a script."""
    from django.core.management import ManagementUtility

    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self") if frame.f_code.co_name == "execute" else None
        if isinstance(owner, ManagementUtility):
            return list(owner.argv)
        frame = frame.f_back
    return None


def _report_setup_crash(watcher: Watcher, exc: BaseException) -> None:
    """manage.py crashed inside django.setup() (a failed query in models.py or ready()):
    after Python's traceback, name the culprit as the doctor would."""
    watcher.uninstall()
    with contextlib.suppress(Exception):
        from .render.text import render_findings

        findings = findings_of(watcher, exc, current_settings_module(), threads=[])
        if not findings:
            return
        errors = sum(1 for f in findings if f.severity >= Severity.ERROR)
        headline = (
            "migration_doctor: manage.py crashed in django.setup(), before the command could "
            f"run; the import-time watch saw why: {errors} error{'' if errors == 1 else 's'}"
        )
        text = render_findings(headline, findings, empty="", color=False, width=100)
        stream = sys.__stderr__ or sys.stderr
        stream.write("\n" + text)
        stream.flush()


def take_setup_watcher() -> Watcher | None:
    """The watcher `watch_setup` installed, paused (nothing the command does is recorded),
    or None. The caller uninstalls it, or hands it to an InProcessWatch."""
    global _setup_watcher
    watcher, _setup_watcher = _setup_watcher, None
    if watcher is not None:
        watcher.active = False
    return watcher


def _unwatched_threads(watcher: Watcher) -> list[ThreadStart]:
    """Live non-daemon threads started before the watcher was installed: they keep the
    process alive all the same. Only where they run now is known."""
    recorded = {id(s.thread) for s in watcher.starts}
    frames = sys._current_frames()
    found = []
    for thread in lingering_threads(grace=0.0):
        if id(thread) in recorded:
            continue
        running = stack_of(frames.get(thread.ident or -1))
        found.append(
            ThreadStart(
                thread, thread.name, _thread_target(thread), [], [], UNWATCHED, None, running
            )
        )
    return found


class ImportHang(BaseException):
    """Raised in the importing thread at its deadline. Not an Exception: the project's
    `except Exception` must not swallow it."""


@contextlib.contextmanager
def interrupt_after(seconds: float) -> Iterator[list[list[Frame]]]:
    """Raise ImportHang in this (the main) thread after `seconds`, and every second after
    that while the code swallows it; yields a list that receives the stack it interrupted.

    A signal wakes the blocking calls an import hangs in (join(), wait(), sleep(), sockets)
    and unwinds the import, releasing its import locks. Code holding the GIL (a C loop)
    cannot be interrupted: faulthandler dumps every thread's stack and ends the process a
    little later. Outside the main thread or without SIGALRM there is no deadline."""
    fired: list[list[Frame]] = []
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield fired
        return
    armed = [True]

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        if not armed[0]:
            return
        if not fired:
            fired.append(stack_of(frame))
        raise ImportHang

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    faulthandler.dump_traceback_later(seconds + KILL_GRACE, exit=True)
    try:
        yield fired
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


@dataclass
class InProcessWatch:
    """The import-time watch of `manage.py migration_doctor`, inside its own process.

    `watcher` recorded django.setup() (see `watch_setup`); `run()` imports the URLconf the
    way the system checks do, in the main thread as they do, under the same watch, and
    interrupts it after `timeout` seconds (`interrupt_after`), so a hanging import is
    reported instead of hanging the doctor. Run it before the diagnosis loads the migration
    files: a module they share with the URLconf is then imported (and watched) here first,
    as in `migrate`, whose checks run before its loader. `stranded` says the process must
    end with os._exit: a non-daemon thread would otherwise keep it alive after the report.
    """

    watcher: Watcher
    settings_module: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    problem: str | None = field(default=None, init=False)
    _findings: list[Finding] | None = field(default=None, init=False, repr=False)

    @property
    def stranded(self) -> bool:
        return any(f.kind == "import-time-thread" for f in self._findings or [])

    def run(self) -> InProcessWatch:
        if self._findings is not None:
            return self
        if self.settings_module is None:
            self.settings_module = current_settings_module()
        watcher, name = self.watcher, self.settings_module
        watcher.ident = threading.get_ident()
        watcher.stage = "urlconf"
        crash: BaseException | None = None
        fired: list[list[Frame]] = []
        try:
            with interrupt_after(self.timeout) as fired:
                watcher.active = True
                try:
                    import_urlconf()
                finally:
                    watcher.active = False
        except ImportHang:
            pass
        except (Exception, SystemExit) as exc:  # sys.exit() at import stops it too
            crash = exc
        finally:
            watcher.uninstall()
        if fired:
            alive = watcher.live_threads(grace=0.0)
            findings = findings_of(watcher, None, name, threads=alive)
            names = [s.name for s in alive]
            hang = hang_finding(self.timeout, fired[0], URLCONF, name, names, interrupted=True)
            findings.append(hang)
        else:
            findings = findings_of(watcher, crash, name, watcher.live_threads())
            self.problem = _problem(watcher, crash)
        findings += [_thread_finding([s], name) for s in _unwatched_threads(watcher)]
        findings.sort(key=_sort_key)
        self._findings = findings
        return self

    def result(self) -> list[Finding]:
        return list(self.run()._findings or [])

    def close(self) -> None:
        self.watcher.uninstall()


# -- the watch in a child process -------------------------------------------------------------


def finding_from_dict(data: dict[str, Any]) -> Finding:
    """The inverse of Finding.as_dict()."""
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


_FAULT_FRAME = re.compile(r'^\s*File "(.+)", line (\d+) in (\S+)')


def parse_faulthandler(text: str) -> list[Frame]:
    """The main thread's frames (innermost first) from a faulthandler dump: the last
    'Thread 0x…' block is the main thread's."""
    blocks: list[list[Frame]] = []
    for line in text.splitlines():
        if line.startswith(("Thread 0x", "Current thread 0x")):
            blocks.append([])
            continue
        match = _FAULT_FRAME.match(line)
        if match and blocks:
            blocks[-1].append(Frame(match[1], int(match[2]), None, match[3]))
    return blocks[-1] if blocks else []


def _child_path() -> str:
    entries = [os.getcwd() if p == "" else p for p in sys.path]
    extra = os.environ.get("PYTHONPATH")
    if extra:
        entries.append(extra)
    seen: list[str] = []
    for entry in entries:
        if entry and entry not in seen:
            seen.append(entry)
    return os.pathsep.join(seen)


def current_settings_module() -> str | None:
    from django.conf import settings

    if settings.configured:
        module = getattr(settings, "SETTINGS_MODULE", None)
        if module:
            return str(module)
    return os.environ.get("DJANGO_SETTINGS_MODULE") or None


@dataclass
class ImportWatch:
    """Watch the project's import in a child process (`python -m migration_doctor`).

    ``watch = ImportWatch().start()`` at the beginning, ``watch.result()`` at the end: the
    child runs while the caller does other work. `result()` returns the findings and never
    raises for the child's failures; when the watch could not run, `problem` says why.
    The child's import is given `timeout` seconds; it reports a hang itself, and is killed
    `kill_grace` seconds later if even that fails (reported as a hang too).
    """

    settings_module: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    kill_grace: float = KILL_GRACE
    python: str = sys.executable
    cwd: str | None = None
    problem: str | None = field(default=None, init=False)
    elapsed: float | None = field(default=None, init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _out: IO[bytes] | None = field(default=None, init=False, repr=False)
    _err: IO[bytes] | None = field(default=None, init=False, repr=False)
    _started: float = field(default=0.0, init=False, repr=False)
    _findings: list[Finding] | None = field(default=None, init=False, repr=False)

    def command(self) -> list[str]:
        return [
            self.python,
            "-m",
            "migration_doctor",
            f"--settings={self.settings_module}",
            "--format=json",
            f"--timeout={self.timeout:g}",
        ]

    def start(self) -> ImportWatch:
        if self._proc is not None or self._findings is not None:
            return self
        if self.settings_module is None:
            self.settings_module = current_settings_module()
        if not self.settings_module:
            self.problem = (
                "the import-time watch needs a settings module (DJANGO_SETTINGS_MODULE); "
                "settings configured in code cannot be re-imported"
            )
            self._findings = []
            return self
        env = dict(os.environ)
        env["PYTHONPATH"] = _child_path()
        env["DJANGO_SETTINGS_MODULE"] = self.settings_module
        env.pop("RUN_MAIN", None)  # never let the child believe it is a reloader process
        # Files, not pipes: a chatty child never blocks. Closed by result() / close().
        self._out = tempfile.TemporaryFile()  # noqa: SIM115
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        self._started = time.monotonic()
        try:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._out,
                stderr=self._err,
                cwd=self.cwd,
                env=env,
                start_new_session=os.name == "posix",
            )
        except OSError as exc:
            self.problem = f"cannot start {self.python}: {exc}"
            self._findings = []
            self._close_files()
        return self

    def _kill(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            if os.name == "posix":
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait()

    def _close_files(self) -> None:
        for handle in (self._out, self._err):
            if handle is not None:
                handle.close()

    def close(self) -> None:
        """Stop the child if it still runs (result() does this itself)."""
        self._kill()
        self._close_files()

    def __enter__(self) -> ImportWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def result(self) -> list[Finding]:
        if self._findings is not None:
            return list(self._findings)
        if self._proc is None:
            self.start()
            return self.result()
        proc = self._proc
        deadline = self._started + self.timeout + self.kill_grace
        killed = False
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            killed = True
        finally:
            self._kill()
        self.elapsed = time.monotonic() - self._started
        assert self._out is not None and self._err is not None
        self._out.seek(0)
        self._err.seek(0)
        out = self._out.read().decode("utf-8", "replace")
        err = self._err.read().decode("utf-8", "replace")
        self._close_files()
        self._findings = self._interpret(proc.returncode, out, err, killed)
        return list(self._findings)

    def _interpret(self, status: int, out: str, err: str, killed: bool) -> list[Finding]:
        data: dict[str, Any] | None = None
        with contextlib.suppress(ValueError):
            loaded = json.loads(out)
            if isinstance(loaded, dict) and "findings" in loaded:
                data = loaded
        if data is not None:
            self.problem = data.get("problem")
            return [finding_from_dict(f) for f in data["findings"]]
        if killed or "Timeout (" in err:
            stuck = parse_faulthandler(err)
            return [hang_finding(self.timeout, stuck, None, self.settings_module, killed=True)]
        lines = [line for line in err.strip().splitlines() if line.strip()]
        self.problem = lines[-1] if lines else f"the import-time watch exited with status {status}"
        return []


def watch_in_subprocess(
    settings_module: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> list[Finding]:
    """Run the watch in a child process and wait for it: ImportWatch(...).start().result()."""
    return ImportWatch(settings_module, timeout=timeout).start().result()
