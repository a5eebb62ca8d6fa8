#!/usr/bin/env python
"""Django's command-line utility for the bundled test project."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # The project lives beside migration_doctor's checkout: make both importable.
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parent)]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
