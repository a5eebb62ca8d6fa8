"""Where a frame of the watched import comes from, and which one to blame."""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import django

SQL_LIMIT = 300

_DOCTOR_DIR = str(Path(__file__).resolve().parent.parent) + os.sep
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


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:SQL_LIMIT]


def describe_crash(exc: BaseException) -> str:
    """The exception and the project's line that raised it, in one line."""
    frame = blame(traceback_stack(exc.__traceback__))
    shown = frame is not None and frame.origin in ("user", "third-party")
    at = f" ({frame.file}, line {frame.line})" if frame and shown else ""
    return f"{type(exc).__name__}: {describe_error(exc)}{at}"


def callable_name(target: object) -> str | None:
    if target is None:
        return None
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if name:
        return f"{module}.{name}" if module else str(name)
    return repr(target)[:100]
