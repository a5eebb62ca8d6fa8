"""Windows has no fcntl, termios, resource, pwd or grp: a diagnosis must not need them (many
developers fixing a local database are on Windows). The one POSIX-only call of a repair
sits behind migration_doctor/repair/filelock.py."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from . import helpers as h
from .conftest import BACKEND

POSIX_ONLY = ("fcntl", "termios", "resource", "pwd", "grp")

SCRIPT = f"""
import sys
for name in {POSIX_ONLY!r}:
    sys.modules[name] = None  # `import name` now raises ImportError, as on Windows
import django
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
try:
    call_command("migration_doctor", "--skip-import-watch")
except SystemExit as exc:
    print("exit", exc.code)
print("loaded:", sorted(n for n in {POSIX_ONLY!r} if sys.modules.get(n) is not None))
"""


@pytest.mark.skipif(BACKEND != "sqlite", reason="no server involved: SQLite is enough")
def test_diagnosis_imports_nothing_posix_only(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATION_DOCTOR_")}
    env.update(
        DJANGO_SETTINGS_MODULE="testproject.settings",
        MIGRATION_DOCTOR_SQLITE=str(tmp_path / "win.sqlite3"),
        PYTHONPATH=os.pathsep.join([str(h.TESTPROJECT), str(h.TESTPROJECT.parent)]),
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "migration_doctor: database 'default' (sqlite): 0 errors, 0 warnings" in done.stdout
    assert "loaded: []" in done.stdout


def test_the_file_lock_seam_locks(tmp_path):
    from migration_doctor.repair.filelock import try_lock

    path = tmp_path / "x.lock"
    with path.open("a") as first, path.open("a") as second:
        assert try_lock(first)
        assert not try_lock(second)  # flock locks per open file description
    with path.open("a") as third:
        assert try_lock(third)  # released when its holder closed it
