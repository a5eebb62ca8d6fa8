"""testproject/manage.py with the reliability suite's fault injection (never shipped).

At the named checkpoints of migration_doctor/repair/run.py (`after-backup`,
`after-step-N`, `in-rows-N`):

- MIGRATION_DOCTOR_FAULT=<checkpoint> kills the process with SIGKILL right there, as a power
  cut or `kill -9` would;
- MIGRATION_DOCTOR_PAUSE=<checkpoint> creates the file MIGRATION_DOCTOR_PAUSED and waits
  until the file MIGRATION_DOCTOR_RELEASE exists: a repair held in the middle, holding its
  lock, for as long as the test wants.
"""

import os
import signal
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

    def at_checkpoint(name: str) -> None:
        if os.environ.get("MIGRATION_DOCTOR_PAUSE") == name:
            Path(os.environ["MIGRATION_DOCTOR_PAUSED"]).touch()
            release = Path(os.environ["MIGRATION_DOCTOR_RELEASE"])
            deadline = time.monotonic() + 120
            while not release.exists():
                if time.monotonic() > deadline:
                    sys.exit("faulty_manage: never released")
                time.sleep(0.05)
        if os.environ.get("MIGRATION_DOCTOR_FAULT") == name:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    run.checkpoint = at_checkpoint

    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
