"""The watch itself: import the project as manage.py does, under the hooks.

Runs in the process `python -m migration_doctor` starts for it (see `__main__`), before
django.setup() and instead of any other work: settings, django.setup(), then the URLconf the
way the system checks import it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import django

from ..findings import Finding, Severity
from .explain import chain, findings_of, hang_finding, sort_key
from .frames import describe_crash, stack_of
from .hooks import Watcher


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
        findings.sort(key=sort_key)
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
            watcher.watch_databases()
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
    if crash is None or any(q.exception is e for q in watcher.queries for e in chain(crash)):
        return None
    return f"importing the project failed: {describe_crash(crash)}"
