"""The distributions carry what they promise: the typing marker, the license, and (in the
sdist) a test suite that can run: fixtures, helpers, the reliability suite, the test
project."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from .conftest import BACKEND

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.skipif(BACKEND != "sqlite", reason="no database involved: once is enough"),
    pytest.mark.skipif(
        importlib.util.find_spec("build") is None, reason="needs the 'build' package (dev extra)"
    ),
    pytest.mark.skipif(not (ROOT / ".git").exists(), reason="builds from a git checkout"),
]


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # Built from a copy: building in place would leave build/ and *.egg-info in the checkout.
    source = tmp_path_factory.mktemp("src")
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in files:
        target = source / name
        if (ROOT / name).is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((ROOT / name).read_bytes())
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(source)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return out


def test_sdist_carries_a_runnable_test_suite(dists: Path) -> None:
    [sdist] = dists.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    for needed in (
        "LICENSE",
        "CHANGELOG.md",
        "tox.ini",
        "migration_doctor/py.typed",
        "tests/conftest.py",
        "tests/helpers.py",
        "tests/reliability/conftest.py",
        "tests/reliability/support.py",
        "tests/realworld/settings.py",
        "testproject/manage.py",
        "testproject/testproject/settings.py",
        "testproject/catalog/migrations/0001_initial.py",
        "benchmarks/run.py",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.endswith((".sqlite3", ".pyc")) or "__pycache__" in n]


def test_wheel_is_typed_and_licensed(dists: Path) -> None:
    [wheel] = dists.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith("/METADATA"))
    assert "migration_doctor/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names), sorted(names)
    assert "Requires-Python: >=3.11" in metadata
    assert not [n for n in names if n.startswith(("tests/", "testproject/"))]
