"""testproject/manage.py with one test hook, for the concurrent-repair tests.

MIGRATION_DOCTOR_PAUSE=<fault point> makes the repair stop at that point of
migration_doctor/repair/run.py (where MIGRATION_DOCTOR_FAULT would kill it), create the file
MIGRATION_DOCTOR_PAUSED and wait until the file MIGRATION_DOCTOR_RELEASE exists: a repair
held in the middle, holding its lock, for as long as the test wants.
"""

import os
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    here = Path(__file__).resolve().parents[2] / "testproject"
    sys.path[:0] = [str(here), str(here.parent)]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    import django

    django.setup()

    from migration_doctor.repair import run

    kill_at = run.fault_point

    def pause_at(name: str) -> None:
        if os.environ.get("MIGRATION_DOCTOR_PAUSE") == name:
            Path(os.environ["MIGRATION_DOCTOR_PAUSED"]).touch()
            release = Path(os.environ["MIGRATION_DOCTOR_RELEASE"])
            deadline = time.monotonic() + 120
            while not release.exists():
                if time.monotonic() > deadline:
                    sys.exit("pausing_manage: never released")
                time.sleep(0.05)
        kill_at(name)

    run.fault_point = pause_at

    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
