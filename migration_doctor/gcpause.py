"""Pausing Python's cyclic garbage collector: its own module, below both the graph loader
and the plan walk that use it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Pause Python's cyclic garbage collector around bulk, allocation-only work.

    Loading thousands of migration modules and walking the plan allocate hundreds of
    thousands of objects that all stay alive; meanwhile the collector's full collections
    re-scan the whole heap for nothing (a quarter of the doctor's CPU time on 3,000
    migrations). Reference counting still frees what can be freed, and the collector
    resumes afterwards as it was: the survivors are then looked at once, by the next
    young collection, instead of again and again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
