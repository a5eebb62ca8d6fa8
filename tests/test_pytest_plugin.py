"""The pytest plugin, run in inner pytest sessions against the bundled project on SQLite.

Each inner session is a subprocess (`pytester.runpytest_subprocess`) with its own Django
setup: DJANGO_SETTINGS_MODULE=testproject.settings, pytest-django, a SQLite test database in
memory. The plugin comes in through its `pytest11` entry point, as in a user's project.
"""

from __future__ import annotations

import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from . import helpers as h

pytest_plugins = ["pytester"]

# Breaks the test database right after pytest-django created it, the way a reused test
# database or a hand-edited fixture does: catalog.0003's columns exist, its row does not.
BREAKING_CONFTEST = """
    import pytest
    from django.db import connection


    @pytest.fixture(scope="session")
    def django_db_setup(django_db_setup, django_db_blocker):
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM django_migrations "
                "WHERE app = 'catalog' AND name = '0003_product_sku_stock'"
            )
"""

USES_THE_DATABASE = """
    import pytest
    from catalog.models import Category


    @pytest.mark.django_db
    def test_uses_the_database():
        assert Category.objects.count() == 0
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An inner project: the bundled settings on SQLite, pytest-django, no dev database."""
    dev_db = tmp_path / "never-created.sqlite3"
    monkeypatch.setenv("MIGRATION_DOCTOR_DB", "sqlite")
    monkeypatch.setenv("MIGRATION_DOCTOR_SQLITE", str(dev_db))
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    pytester.makeini(
        f"""
        [pytest]
        DJANGO_SETTINGS_MODULE = testproject.settings
        pythonpath = {h.TESTPROJECT}
        """
    )
    return dev_db


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "pytest_django", "-p", "no:cacheprovider", *args)


def output(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)


def test_entry_point_is_registered() -> None:
    [ep] = [ep for ep in entry_points(group="pytest11") if ep.name == "migration_doctor"]
    assert ep.value == "migration_doctor.pytest_plugin"


def test_fixture_on_a_healthy_project(pytester: pytest.Pytester, inner: Path) -> None:
    pytester.makepyfile(
        test_state="""
        from django.db import connection


        def test_migration_state(migration_doctor):
            assert not migration_doctor.errors
            assert migration_doctor.vendor == "sqlite"
            assert migration_doctor.database == "default"
            # The test database pytest-django made, never the development database.
            assert connection.settings_dict["NAME"].startswith("file:memorydb_default")
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert not inner.exists()


def test_option_on_a_healthy_project(pytester: pytest.Pytester, inner: Path) -> None:
    pytester.makepyfile(test_db=USES_THE_DATABASE, test_plain="def test_plain():\n    pass\n")
    result = run(pytester, "--migration-doctor")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= migration_doctor =*",
            "migration_doctor: database 'default' (sqlite): 0 errors, 0 warnings, 0 infos "
            "(test database file:memorydb_default*",
        ]
    )
    assert not inner.exists()


def test_option_fails_the_session_before_any_test(pytester: pytest.Pytester, inner: Path) -> None:
    pytester.makeconftest(BREAKING_CONFTEST)
    pytester.makepyfile(test_db=USES_THE_DATABASE)
    result = run(pytester, "--migration-doctor")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes()  # no test ran against the broken test database
    result.stdout.fnmatch_lines(
        [
            "*= migration_doctor =*",
            "migration_doctor: the test database 'default' (sqlite) has 1 error-level finding:",
            "  migration_doctor.E001 table-exists: catalog.0003_product_sku_stock",
            "    catalog.0003_product_sku_stock is not recorded, but everything it does is*",
            "*",
            "*",
            "    fix: Record it without running it.",
            "      $ python manage.py migrate catalog 0003_product_sku_stock --fake",
            "migration_doctor: database 'default' (sqlite): 1 error, 0 warnings, 0 infos*",
        ]
    )
    assert "has 1 error-level finding (migration_doctor.E001)" in output(result)


def test_ini_option_and_its_override(pytester: pytest.Pytester, inner: Path) -> None:
    pytester.makeini(
        f"""
        [pytest]
        DJANGO_SETTINGS_MODULE = testproject.settings
        pythonpath = {h.TESTPROJECT}
        migration_doctor = true
        """
    )
    pytester.makeconftest(BREAKING_CONFTEST)
    pytester.makepyfile(test_db=USES_THE_DATABASE)
    failed = run(pytester)
    assert failed.ret == pytest.ExitCode.TESTS_FAILED
    assert "migration_doctor.E001 table-exists: catalog.0003_product_sku_stock" in output(failed)
    run(pytester, "--no-migration-doctor").assert_outcomes(passed=1)


def test_marker_fails_only_the_marked_test(pytester: pytest.Pytester, inner: Path) -> None:
    pytester.makeconftest(BREAKING_CONFTEST)
    pytester.makepyfile(
        test_marked="""
        import pytest


        @pytest.mark.migration_doctor
        def test_marked():
            raise AssertionError("the body does not run when the test database is broken")


        @pytest.mark.migration_doctor
        @pytest.mark.django_db(transaction=True)
        def test_marked_transactional():
            raise AssertionError("nor here")


        def test_unmarked():
            pass
        """
    )
    result = run(pytester, "-rf")
    result.assert_outcomes(failed=2, passed=1)
    text = output(result)
    assert "the body does not run" not in text and "nor here" not in text
    result.stdout.fnmatch_lines(
        [
            "*_ test_marked _*",
            "migration_doctor: the test database 'default' (sqlite) has 1 error-level finding:",
            "  migration_doctor.E001 table-exists: catalog.0003_product_sku_stock",
        ]
    )
    assert "FAILED test_marked.py::test_marked - Failed: migration_doctor" in text


def test_marker_passes_on_a_healthy_project(pytester: pytest.Pytester, inner: Path) -> None:
    pytester.makepyfile(
        test_marked="""
        import pytest


        @pytest.mark.migration_doctor
        def test_marked():
            pass
        """
    )
    run(pytester, "--strict-markers").assert_outcomes(passed=1)
    assert not inner.exists()


def test_fixture_sees_the_broken_state(pytester: pytest.Pytester, inner: Path) -> None:
    pytester.makeconftest(BREAKING_CONFTEST)
    pytester.makepyfile(
        test_state="""
        def test_migration_state(migration_doctor):
            assert [(f.id, f.app, f.migration) for f in migration_doctor.errors] == [
                ("migration_doctor.E001", "catalog", "0003_product_sku_stock")
            ]
        """
    )
    run(pytester).assert_outcomes(passed=1)


def test_marker_is_registered(pytester: pytest.Pytester, inner: Path) -> None:
    result = run(pytester, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.migration_doctor: fail this test when *"])


def test_harmless_without_django(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No pytest-django, no settings: the plugin loads and stays out of the way."""
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    pytester.makepyfile(
        test_plain="""
        import pytest


        def test_plain():
            pass


        @pytest.mark.migration_doctor
        def test_marked():
            pass


        def test_fixture(migration_doctor):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider", "-rE")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_marked*",
            "migration_doctor needs pytest-django (pip install pytest-django), *",
            "*ERROR at setup of test_fixture*",
            "migration_doctor needs pytest-django (pip install pytest-django), *",
        ]
    )
    usage = pytester.runpytest_subprocess("-p", "no:django", "--migration-doctor")
    assert usage.ret == pytest.ExitCode.USAGE_ERROR
    usage.stderr.fnmatch_lines(["ERROR: --migration-doctor needs pytest-django*"])


def test_not_configured_fails_clearly(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    pytester.makepyfile(
        test_fixture=textwrap.dedent(
            """
            def test_plain():
                pass


            def test_fixture(migration_doctor):
                pass
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "pytest_django", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*migration_doctor: Django settings are not configured*"])
