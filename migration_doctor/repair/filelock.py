"""The one place that locks a file: `fcntl.flock` on POSIX, `msvcrt.locking` on Windows.

Each is imported only when a repair locks an SQLite database, so nothing else ever imports
anything POSIX-only.
"""

from __future__ import annotations

import os
from typing import IO


def try_lock(handle: IO[str]) -> bool:
    """Take an exclusive lock on `handle` without waiting; False when another holds it.
    Released when the handle is closed (or the process dies)."""
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
