"""Sphinx configuration: MyST Markdown pages, transcripts from docs/transcripts.py.

Build (warnings are errors, as in CI):

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migration_doctor import __version__  # noqa: E402

project = "migration_doctor"
author = "migration_doctor developers"
copyright = "migration_doctor developers"
version = release = __version__

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_transcripts", "transcripts.py", "README.md"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # `[text](page.md#a-heading)` links resolve

# Transcripts are shell sessions; JSON in them is plain text to the highlighter.
highlight_language = "none"
pygments_style = "sphinx"

html_theme = "furo" if importlib.util.find_spec("furo") else "alabaster"
html_title = f"migration_doctor {release}"
html_static_path: list[str] = []
