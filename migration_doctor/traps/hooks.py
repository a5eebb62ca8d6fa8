"""What the watch records while the project is imported: SQL statements, failed
connections and thread starts, each with the stack that caused it.

Installed only in the watch's own process (`python -m migration_doctor`, which the
management command starts as a child), never in a process that serves the project: the
statements through Django's public hook, `connection.execute_wrapper`; a failed connection
through a wrapper on that process's own connection objects (Django has no hook for a
connect that fails); thread starts by wrapping `threading.Thread` in that process.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from .frames import Frame, describe_error, stack_of
from .threads import THREAD_GRACE, give, idle_pool_worker, thread_target

APP_LOADING = "app loading"
READY = "ready()"
URLCONF = "URLconf import"


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
    created: list[Frame] = field(default_factory=list)
    phase: str = APP_LOADING
    ready_app: str | None = None


class Watcher:
    """Hooks on SQL execution, failed connections and thread creation/start.

    Statements are recorded only from the thread that imports the project (connections are
    per thread); threads are recorded from any thread while the watch lasts.
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
        self._hooks = contextlib.ExitStack()

    def phase(self) -> str:
        """Where the import is, from the app registry's own flags."""
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

    def _watched(self) -> bool:
        return self.active and threading.get_ident() == self.ident

    def _statement(self, execute: Callable[..., Any], sql: Any, params: Any, many: bool,
                   context: dict[str, Any]) -> Any:  # fmt: skip
        """An execute_wrapper: the statement, its outcome and the stack that ran it."""
        if not self._watched():
            return execute(sql, params, many, context)
        stack, phase, ready_app = self._context(sys._getframe(1))
        vendor = context["connection"].vendor
        try:
            result = execute(sql, params, many, context)
        except Exception as exc:
            self.queries.append(
                Query(str(sql), describe_error(exc), exc, stack, phase, vendor, ready_app)
            )
            raise
        self.queries.append(Query(str(sql), None, None, stack, phase, vendor, ready_app))
        return result

    def _watch_connection(self, connection: Any) -> None:
        self._hooks.enter_context(connection.execute_wrapper(self._statement))
        connect = connection.ensure_connection
        watcher = self

        def ensure_connection() -> None:
            try:
                return connect()
            except Exception as exc:
                if watcher._watched():
                    stack, phase, ready_app = watcher._context(sys._getframe(1))
                    error = describe_error(exc)
                    query = Query(None, error, exc, stack, phase, connection.vendor, ready_app)
                    watcher.queries.append(query)
                raise

        connection.ensure_connection = ensure_connection
        self._hooks.callback(vars(connection).pop, "ensure_connection", None)

    def _watch_threads(self) -> None:
        watcher = self
        thread_init = threading.Thread.__init__
        thread_start = threading.Thread.start

        def __init__(thread: threading.Thread, *args: Any, **kwargs: Any) -> None:
            thread_init(thread, *args, **kwargs)
            if watcher.active:
                watcher.created[thread] = stack_of(sys._getframe(1))

        def start(thread: threading.Thread) -> None:
            if watcher.active:
                stack, phase, ready_app = watcher._context(sys._getframe(1))
                created = watcher.created.get(thread, [])
                name, target = thread.name, thread_target(thread)
                watcher.starts.append(
                    ThreadStart(thread, name, target, stack, created, phase, ready_app)
                )
            return thread_start(thread)

        setattr(threading.Thread, "__init__", __init__)  # noqa: B010 - typed as a method
        setattr(threading.Thread, "start", start)  # noqa: B010
        self._hooks.callback(setattr, threading.Thread, "start", thread_start)
        self._hooks.callback(setattr, threading.Thread, "__init__", thread_init)

    def install(self) -> None:
        """Watch every thread from now on; the databases once the settings are imported."""
        self._watch_threads()
        self.active = True

    def watch_databases(self) -> None:
        """Watch every configured database's connection in this thread. Call it once the
        settings are imported, before django.setup()."""
        from django.db import connections

        for alias in connections:
            try:
                connection = connections[alias]
            except Exception:  # a bad ENGINE: the diagnosis reports it
                continue
            self._watch_connection(connection)

    def uninstall(self) -> None:
        self.active = False
        self._hooks.close()

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
            if s.thread.is_alive()
            and not s.thread.daemon
            and s.thread is not threading.current_thread()
        ]
        give(grace, [s.thread for s in candidates])
        return [s for s in candidates if s.thread.is_alive() and not idle_pool_worker(s.thread)]
