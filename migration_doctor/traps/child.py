"""The parent's side of the watch: run `python -m migration_doctor` as a child process
while this process diagnoses, and read its findings back.

A second process, as Django's autoreloader uses one: the project's import code (a query, a
thread, a hang) runs there, never in the doctor's own process, and nothing of the watch is
imported or installed in a process that does not run the doctor.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any

from ..findings import Finding
from .explain import finding_from_dict, hang_finding
from .frames import Frame

DEFAULT_TIMEOUT = 60.0  # seconds an import may take before the doctor calls it a hang
KILL_GRACE = 10.0  # the parent kills the child this long after the child's own deadline


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
