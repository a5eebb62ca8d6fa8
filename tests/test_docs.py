"""The documentation builds with warnings as errors, has a page per finding id, and its
usage page names every option of the command: a new kind or option without documentation
fails here, not in a reader's hands."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from migration_doctor.findings import KINDS
from migration_doctor.management.commands.migration_doctor import Command

from .conftest import BACKEND

DOCS = Path(__file__).resolve().parent.parent / "docs"
# Options every management command has; Django documents them.
DJANGO_COMMON = {
    "-h",
    "--help",
    "--version",
    "-v",
    "--verbosity",
    "--settings",
    "--pythonpath",
    "--traceback",
    "--no-color",
    "--force-color",
    "--skip-checks",
}

pytestmark = [
    pytest.mark.skipif(BACKEND != "sqlite", reason="no database involved: once is enough"),
    pytest.mark.skipif(not (DOCS / "conf.py").is_file(), reason="no docs/ beside the tests"),
    pytest.mark.skipif(
        not all(importlib.util.find_spec(m) for m in ("sphinx", "myst_parser")),
        reason="needs sphinx and myst-parser (the docs extra: pip install -e '.[docs]')",
    ),
]


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as CI builds it (into a temporary directory, not docs/_build)."""
    out = tmp_path_factory.mktemp("docs") / "html"
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", DOCS, out],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    return out


def finding_ids() -> list[tuple[str, str]]:
    """(check id, kind) for every id a finding can carry."""
    return [
        (check_id, kind.name)
        for kind in KINDS.values()
        for check_id in (kind.check_id, *(i for _, i in kind.other_ids))
    ]


def test_the_docs_build_with_warnings_as_errors(html: Path) -> None:
    assert (html / "index.html").is_file()
    assert (html / "usage.html").is_file()


@pytest.mark.parametrize(("check_id", "kind"), finding_ids(), ids=[i for i, _ in finding_ids()])
def test_every_finding_id_has_its_page(html: Path, check_id: str, kind: str) -> None:
    code = check_id.rsplit(".", 1)[1]
    page = DOCS / "findings" / f"{code}.md"
    assert page.is_file(), f"no page {page.relative_to(DOCS)} for {check_id} ({kind})"
    text = page.read_text()
    assert text.startswith(f"# {code} `{kind}`"), f"{page.name} is not titled {code} `{kind}`"
    assert f"`{check_id}`" in text
    assert (html / "findings" / f"{code}.html").is_file()
    assert f"]({code}.md)" in (DOCS / "findings" / "index.md").read_text(), (
        f"{code} is missing from the findings index"
    )


def command_options() -> list[str]:
    parser = Command().create_parser("manage.py", "migration_doctor")
    return sorted(
        option
        for action in parser._actions
        for option in action.option_strings
        if option not in DJANGO_COMMON
    )


def test_every_option_is_on_the_usage_page() -> None:
    usage = (DOCS / "usage.md").read_text()
    missing = [
        option
        for option in command_options()
        if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", usage)
    ]
    assert not missing, f"docs/usage.md does not mention {', '.join(missing)}"
    assert "--fix" in command_options()  # the parser really was read
