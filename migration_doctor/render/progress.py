"""Progress of a fleet run or a long repair on the terminal: targets done, the current one,
elapsed time (rich's progress display, on stderr, gone when it ends).

Only where someone watches: stdout and stderr both terminals and text output. Never in
JSON, never when the output is piped or redirected (CI logs stay what they were).
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from .safe import shown


def watched(stdout: IO[str] | Any, stderr: IO[str] | Any, text: bool) -> bool:
    """Is someone looking at a terminal that this progress would not spoil?"""

    def tty(stream: Any) -> bool:
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())

    return text and tty(stdout) and tty(stderr)


class Shown:
    """`with Shown(enabled, "Diagnosing schemas") as bar: bar.advance(name, total)`; the
    display starts at the first call (when the total is known). A disabled one does
    nothing, so callers never branch on it."""

    def __init__(self, enabled: bool, what: str, stream: IO[str] | None = None):
        self.enabled = enabled
        self.what = what
        self.stream = stream
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Shown:
        return self

    def _start(self, total: int) -> None:
        console = Console(file=self.stream or sys.stderr, highlight=False)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[current]}", markup=False),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.what, total=total, current="")

    def stage(self, what: str) -> None:
        """A new stage (diagnosing, then repairing): the next call starts a new display."""
        if what != self.what:
            self._stop()
            self.what = what

    def current(self, name: str, total: int, done: int | None = None) -> None:
        """What is being worked on now (shown beside the count), of `total`; `done` of them
        finished."""
        if self.enabled and self._progress is None and total > 1:
            self._start(total)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, current=shown(name), completed=done)

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def advance(self, done: str, total: int) -> None:
        """`done` is finished, one of `total`."""
        self.current(done, total)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()
