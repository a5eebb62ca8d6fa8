"""Run `manage.py migration_doctor` in a real child process, as users and deploy scripts do.

A `Project` writes a settings module for the bundled test project pointed at any database
configuration (the test's fresh database, a read-only user, a port where nothing listens)
with the test's throwaway MIGRATION_MODULES, and runs manage.py with it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connections
from django.db.migrations.recorder import MigrationRecorder

from .. import helpers as h

ROOT = Path(__file__).resolve().parents[2]
MANAGE = ROOT / "testproject" / "manage.py"
# manage.py with the fault injection: MIGRATION_DOCTOR_FAULT=<checkpoint> kills the repair
# there, MIGRATION_DOCTOR_PAUSE=<checkpoint> holds it there.
FAULTY_MANAGE = Path(__file__).with_name("faulty_manage.py")
CONNECTION_KEYS = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
# Inherited settings that would change what the child does.
SCRUBBED_ENV = ("MIGRATION_DOCTOR_FAULT", "MIGRATION_DOCTOR_PAUSE", "DJANGO_SETTINGS_MODULE")
_numbers = itertools.count()

# Django's startup plus the doctor's own work, well under any connect timeout.
FAST = 8.0


def recorded_only(alias: str) -> None:
    """A django_migrations table with rows and no schema: enough where nothing is diagnosed
    (and much faster than a real migrate on a server)."""
    MigrationRecorder(connections[alias]).ensure_schema()
    for name in ("0001_initial", "0002_tags", "0003_product_sku_stock"):
        h.record(alias, "catalog", name)


def assert_one_line(run: Run, *expected: str) -> str:
    """Exit 2, exactly one line on stderr, the CommandError, every expected fragment."""
    assert run.returncode == 2, run
    assert "Traceback" not in run.stderr, run
    assert len(run.stderr_lines) == 1, run
    [line] = run.stderr_lines
    assert line.startswith("CommandError: "), run
    for fragment in expected:
        assert fragment in line, run
    return line


def db_config(alias: str, **overrides: Any) -> dict[str, Any]:
    """The connection settings of a test alias, as a child's DATABASES entry."""
    cfg = {k: v for k, v in connections.settings[alias].items() if k in CONNECTION_KEYS}
    cfg["OPTIONS"] = dict(cfg.get("OPTIONS") or {})
    cfg.update(overrides)
    return cfg


@dataclass(repr=False)
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def __repr__(self) -> str:  # what a failing assertion shows
        return (
            f"$ {' '.join(self.args)}\nstatus {self.returncode} after {self.seconds:.1f}s\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


class Project:
    """Settings modules for child processes, written under `root`."""

    def __init__(self, root: Path, base_dir: Path) -> None:
        self.root = root
        self.base_dir = base_dir  # where default backups would land: never the checkout
        self.root.mkdir(parents=True, exist_ok=True)

    def settings(
        self,
        databases: dict[str, dict[str, Any]],
        migration_modules: dict[str, str | None] | None = None,
    ) -> str:
        name = f"md_reliability_settings_{os.getpid()}_{next(_numbers)}"
        (self.root / f"{name}.py").write_text(
            "from pathlib import Path\n\n"
            "from testproject.settings import *  # noqa: F403\n\n"
            f"BASE_DIR = Path({str(self.base_dir)!r})\n"
            f"DATABASES = {databases!r}\n"
            f"MIGRATION_MODULES = {dict(migration_modules or {})!r}\n"
        )
        return name

    def env(self, settings: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        paths = [str(self.root)]
        # Throwaway migration packages (the migration_package fixture) live beside it.
        packages = self.root.parent / "migpkgs"
        if packages.is_dir():
            paths.append(str(packages))
        env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env["DJANGO_SETTINGS_MODULE"] = settings
        env.update(extra or {})
        return env

    def command(self, *args: str, script: Path = MANAGE) -> list[str]:
        return [sys.executable, str(script), *h.command_argv(*args)]

    def run(
        self,
        settings: str,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        script: Path = MANAGE,
    ) -> Run:
        argv = self.command(*args, script=script)
        start = time.monotonic()
        done = subprocess.run(
            argv,
            env=self.env(settings, env),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )
        return Run(argv, done.returncode, done.stdout, done.stderr, time.monotonic() - start)

    def start(
        self,
        settings: str,
        *args: str,
        env: dict[str, str] | None = None,
        script: Path = MANAGE,
    ) -> Background:
        return Background(self, settings, list(args), env or {}, script)


class Background:
    """A child started now and collected later (for concurrent repairs)."""

    def __init__(
        self, project: Project, settings: str, args: list[str], env: dict[str, str], script: Path
    ) -> None:
        self.argv = project.command(*args, script=script)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            env=project.env(settings, env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=project.root,
        )

    def wait(self, timeout: float = 120) -> Run:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = self.proc.communicate()
        return Run(self.argv, self.proc.returncode, out, err, time.monotonic() - self.started)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)


def free_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def refuses(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        try:
            s.connect((host, port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never says a word: a server that
    hangs (overloaded, half-dead, a firewall that swallows packets). Yields the port."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            accepted.append(conn)  # held open, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()
