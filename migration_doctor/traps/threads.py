"""Which threads would keep the interpreter from exiting.

Used by the watch (threads started at import) and by the doctor's commands, which end their
own process rather than wait for a thread the project started when manage.py imported it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

from .frames import callable_name, origin

THREAD_GRACE = 0.5  # live non-daemon threads get this long to finish before they count


def thread_target(thread: threading.Thread) -> str | None:
    """What the thread runs: its target, else its class's run()."""
    return callable_name(getattr(thread, "_target", None)) or callable_name(type(thread).run)


def give(grace: float, threads: Sequence[threading.Thread]) -> None:
    """Let `threads` finish within `grace` seconds in all."""
    deadline = time.monotonic() + grace
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def lingering_threads(grace: float = THREAD_GRACE) -> list[threading.Thread]:
    """Live non-daemon threads (other than this one and the main thread) that would keep the
    interpreter from exiting, after giving them `grace` seconds to finish."""
    me, main = threading.current_thread(), threading.main_thread()
    found = [t for t in threading.enumerate() if t not in (me, main) and not t.daemon]
    give(grace, found)
    return [t for t in found if t.is_alive() and not idle_pool_worker(t)]


def idle_pool_worker(thread: threading.Thread) -> bool:
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
