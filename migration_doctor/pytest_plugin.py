"""pytest plugin: the doctor's diagnosis of the test database, for pytest-django projects.

Registered through the `pytest11` entry point, so it loads in every pytest run of an
environment where migration-doctor is installed. Loading it imports neither Django nor
pytest-django; it touches Django only once pytest-django has configured it, and the database
only when a test, the marker or the option asks. Projects without them are left alone.

* fixture ``migration_doctor`` — the Report of the `default` alias's test database, diagnosed
  once per session right after pytest-django created it (``assert not migration_doctor.errors``);
* ``--migration-doctor`` (or ini ``migration_doctor = true``; ``--no-migration-doctor``
  overrides the ini) — diagnose once at the start of the session; error-level findings stop
  the session before any test runs, listed in a ``migration_doctor`` section;
* marker ``@pytest.mark.migration_doctor`` — that test fails when the test database has
  error-level findings.

Findings in the doctor's baseline (``known``) never fail, as in ``manage.py migration_doctor``.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from .render.safe import shown

if TYPE_CHECKING:
    from .diagnose import Report
    from .findings import Finding

ALIAS = "default"
NAME = "migration_doctor"
MARKER_HELP = (
    "migration_doctor: fail this test when migration_doctor finds error-level problems in the "
    "test database of the 'default' alias (diagnosed once per session)."
)
# Fixtures of pytest-django that make a test a database test for the default alias.
DB_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "live_server",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
    }
)

_marked_report = pytest.StashKey["Report"]()
_session_lines = pytest.StashKey["list[str]"]()
_original_names = pytest.StashKey["dict[str, str]"]()


# -- configuration --------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(NAME, "migration_doctor (diagnose the test database)")
    group.addoption(
        "--migration-doctor",
        action="store_true",
        dest=NAME,
        default=None,
        help="Diagnose the test database of the 'default' alias once, after pytest-django "
        "created it; error-level findings (migration_doctor.E...) fail the session before "
        "any test runs.",
    )
    group.addoption(
        "--no-migration-doctor",
        action="store_false",
        dest=NAME,
        help="Do not diagnose the test database, whatever the migration_doctor ini option says.",
    )
    parser.addini(
        NAME,
        type="bool",
        default=False,
        help="Like --migration-doctor: diagnose the test database once per session.",
    )


def enabled(config: pytest.Config) -> bool:
    option = config.getoption(NAME)
    return bool(config.getini(NAME)) if option is None else bool(option)


def _has_pytest_django(config: pytest.Config) -> bool:
    return any(
        getattr(plugin, "__name__", "") == "pytest_django.plugin"
        for plugin in config.pluginmanager.get_plugins()
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    if enabled(config) and not _has_pytest_django(config):
        raise pytest.UsageError(
            "--migration-doctor needs pytest-django (pip install pytest-django), which "
            "creates the test database it diagnoses."
        )


def _uses_default_db(item: pytest.Item) -> bool:
    """Whether pytest-django already sets up a test database for this test."""
    if item.get_closest_marker("django_db") is not None:
        return True  # its own settings (transaction, databases) are left as they are
    if DB_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    cls = getattr(item, "cls", None)
    if cls is not None:
        from django.test import TransactionTestCase

        return issubclass(cls, TransactionTestCase)
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that asks for the diagnosis is a database test.

    pytest-django creates only the test databases that collected tests need (a `django_db`
    marker, the `db` fixture...). A test that only uses the fixture or the marker gets
    `django_db` added, so the default test database exists when it is diagnosed — never the
    development database behind it.
    """
    if not _has_pytest_django(config):
        return  # the fixture says what is missing; no unknown django_db marker here
    from pytest_django.lazy_django import django_settings_is_configured

    if not django_settings_is_configured():
        return
    from django.conf import settings

    # Before any test database exists: what each alias points at outside the tests.
    config.stash[_original_names] = {
        alias: str(cfg.get("NAME") or "") for alias, cfg in settings.DATABASES.items()
    }
    for item in items:
        wants = item.get_closest_marker(NAME) is not None or NAME in getattr(
            item, "fixturenames", ()
        )
        if wants and not _uses_default_db(item):
            item.add_marker(pytest.mark.django_db)


# -- the diagnosis --------------------------------------------------------------------------


def _test_database_ready(config: pytest.Config, alias: str) -> bool:
    """pytest-django created (or reused) the alias's test database in this session.

    Django's setup_databases points the alias's NAME at the test database (test_<NAME>, TEST
    NAME, SQLite's shared memory, a mirror's): NAME differs from what it was before the
    session, or already is the test database's name (TEST NAME equal to NAME).
    """
    from django.db import connections

    connection = connections[alias]
    current = str(connection.settings_dict.get("NAME") or "")
    original = config.stash.get(_original_names, {}).get(alias)
    if original is not None and current != original:
        return True
    try:
        test_name = getattr(connection.creation, "_get_test_db_name")()  # noqa: B009
    except Exception:  # a backend without Django's method
        return original is None
    return bool(current == test_name)


def _setup_test_database(request: pytest.FixtureRequest) -> Any:
    """pytest-django's django_db_setup; its django_db_blocker."""
    # Only pytest-django's fixture names are used: the plugin never imports it at load time.
    if not _has_pytest_django(request.config):
        pytest.fail(
            "migration_doctor needs pytest-django (pip install pytest-django), which creates "
            "the test database it diagnoses.",
            pytrace=False,
        )
    blocker = request.getfixturevalue("django_db_blocker")
    if blocker is None:
        pytest.fail(
            "migration_doctor: Django settings are not configured (DJANGO_SETTINGS_MODULE or "
            "the pytest-django ini option), so there is no test database to diagnose.",
            pytrace=False,
        )
    request.getfixturevalue("django_db_setup")
    return blocker


@pytest.fixture(scope="session")
def migration_doctor(request: pytest.FixtureRequest) -> Report:
    """The migration_doctor Report of the test database of the `default` alias.

    Diagnosed once per session, after pytest-django created the test databases and before
    any test's transaction: ``assert not migration_doctor.errors``.
    """
    blocker = _setup_test_database(request)
    from .diagnose import diagnose
    from .errors import DoctorError

    with blocker.unblock():
        if not _test_database_ready(request.config, ALIAS):
            pytest.fail(
                f"migration_doctor: pytest-django did not create a test database for "
                f"{ALIAS!r} in this session (a test marked django_db(databases=[...]) without "
                f"it?), so there is nothing to diagnose.",
                pytrace=False,
            )
        try:
            return diagnose(ALIAS)
        except DoctorError as exc:
            problem = str(exc)
    pytest.fail(f"migration_doctor cannot diagnose the test database: {problem}", pytrace=False)


def failing(report: Report) -> list[Finding]:
    """Error-level findings that fail a run (not those of the baseline)."""
    return [f for f in report.errors if not getattr(f, "known", False)]


def describe(report: Report, errors: list[Finding]) -> str:
    count = f"{len(errors)} error-level finding{'' if len(errors) == 1 else 's'}"
    lines = [
        f"migration_doctor: the test database {report.database!r} ({report.vendor}) has {count}:"
    ]
    for finding in errors:
        lines.append(f"  {finding.id} {finding.kind}: {shown(finding.target) or '(project)'}")
        lines.append(
            textwrap.fill(
                shown(finding.message),
                100,
                initial_indent=" " * 4,
                subsequent_indent=" " * 4,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
        if finding.fix.summary:
            lines.append(f"    fix: {shown(finding.fix.summary)}")
        lines += [f"      $ {shown(command)}" for command in finding.fix.commands]
    return "\n".join(lines)


@pytest.fixture(autouse=True)
def _migration_doctor_marker(request: pytest.FixtureRequest) -> None:
    """`@pytest.mark.migration_doctor`: diagnose (once) while the test is set up."""
    if request.node.get_closest_marker(NAME) is not None:
        request.node.stash[_marked_report] = request.getfixturevalue(NAME)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """A marked test fails (instead of running) when the test database has errors."""
    report = item.stash.get(_marked_report, None)
    if report is not None:
        errors = failing(report)
        if errors:
            pytest.fail(describe(report, errors), pytrace=False)


@pytest.fixture(autouse=True, scope="session")
def _migration_doctor_session(request: pytest.FixtureRequest) -> None:
    """--migration-doctor: one diagnosis at the start of the session, set up with the first test.

    Error-level findings end the session there: every database test would run against a
    test database whose migration state is broken, and their failures would hide the cause.
    """
    config = request.config
    if not enabled(config):
        return
    blocker = _setup_test_database(request)
    with blocker.unblock():
        ready = _test_database_ready(config, ALIAS)
    if not ready:
        config.stash[_session_lines] = [
            f"migration_doctor: no test uses the database {ALIAS!r}, so pytest-django created "
            "no test database for it; nothing diagnosed."
        ]
        return
    report: Report = request.getfixturevalue(NAME)
    from django.db import connections

    from .render.text import summary_line

    errors = failing(report)
    lines = [describe(report, errors)] if errors else []
    test_name = connections[ALIAS].settings_dict.get("NAME")
    config.stash[_session_lines] = [*lines, f"{summary_line(report)} (test database {test_name})"]
    if errors:
        ids = ", ".join(sorted({f.id for f in errors}))
        pytest.exit(
            f"migration_doctor: the test database {ALIAS!r} has {len(errors)} error-level "
            f"finding{'' if len(errors) == 1 else 's'} ({ids}); see the migration_doctor section",
            returncode=pytest.ExitCode.TESTS_FAILED,
        )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(_session_lines, None)
    if lines is None:
        return
    terminalreporter.section(NAME)
    for line in lines:
        terminalreporter.write_line(line)
