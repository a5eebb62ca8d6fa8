"""Two `--fix` processes on one database at once: the second waits at most --lock-timeout
seconds, then exits 2 saying another repair holds the lock, or gets the lock once the first
has finished and finds nothing left to do (`--restore` and `--migrate` wait the same way).
The first is held in the middle of its repair (after a schema step, holding the lock) by
tests/reliability/faulty_manage.py.

In one process with two connections: tests/test_repair.py::test_second_repair_waits_then_exits_2.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from migration_doctor.ledger import read_ledger
from migration_doctor.repair.lock import LockHeld, repair_lock

from .. import helpers as h
from ..conftest import BACKEND, add_alias, remove_alias
from .support import FAST, FAULTY_MANAGE, Project, assert_one_line, db_config
from .test_interrupted import (
    ONE_TRANSACTION,
    PLAN,
    REMAINING,
    SCHEMA_STEPS,
    break_database,
    dump,
    expected_state,
    kinds,
)

LOCK_TIMEOUT = 1.0


def wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_second_repair_waits_for_the_first_and_never_interleaves(
    fresh_db: str, child_settings: Any, project: Project, tmp_path: Path
) -> None:
    healthy, before = break_database(fresh_db)

    def assert_held() -> None:
        """Where the repair is one transaction, nothing of it shows before its commit. The
        doctor's diagnosis sees that (it reads the catalogs): on PostgreSQL the first
        repair's ALTER TABLE holds an ACCESS EXCLUSIVE lock, so reading the table waits."""
        if ONE_TRANSACTION:
            assert kinds(fresh_db) == set(REMAINING)
        else:
            assert dump(fresh_db) == expected_state(healthy, before, 1)

    settings = child_settings()
    paused, release = tmp_path / "paused", tmp_path / "release"
    first_backup = tmp_path / "first.json"
    first = project.start(
        settings, "--fix", "--noinput", "--backup", str(first_backup),
        script=FAULTY_MANAGE,
        env={
            "MIGRATION_DOCTOR_PAUSE": "after-step-1",
            "MIGRATION_DOCTOR_PAUSED": str(paused),
            "MIGRATION_DOCTOR_RELEASE": str(release),
        },
    )  # fmt: skip
    third = None
    try:
        wait_for(paused)
        # The first repair is half way: one schema step done, holding the lock.
        assert_held()

        # A second repair gives up after --lock-timeout seconds, changing nothing.
        second = project.run(
            settings, "--fix", "--noinput", "--lock-timeout", str(LOCK_TIMEOUT),
            "--backup", str(tmp_path / "second.json"),
        )  # fmt: skip
        assert_one_line(
            second,
            "Another migration_doctor repair holds the lock on database 'default'",
            f"after waiting {LOCK_TIMEOUT:g}s",
        )
        assert LOCK_TIMEOUT <= second.seconds < LOCK_TIMEOUT + FAST, second
        assert not (tmp_path / "second.json").exists()
        assert_held()
        # --restore takes the same lock.
        restore = project.run(
            settings, "--restore", str(first_backup), "--noinput", "--lock-timeout", "0"
        )
        assert_one_line(restore, "holds the lock")
        # So does a deploy's migrate run through the doctor.
        migrate = project.run(settings, "--migrate", "--lock-timeout", "0")
        assert_one_line(migrate, "holds the lock")
        assert_held()

        # A third one, patient enough, waits for the first to finish.
        third = project.start(
            settings, "--fix", "--noinput", "--lock-timeout", "60",
            "--backup", str(tmp_path / "third.json"),
        )  # fmt: skip
        time.sleep(1.5)
        assert third.proc.poll() is None, "the third repair did not wait"  # still waiting
        assert_held()
        release.touch()
        done = first.wait()
        after = third.wait()
    finally:
        release.touch()
        first.kill()
        if third is not None:
            third.kill()
    assert done.returncode == 0, done
    assert f"Applied {len(PLAN)} step(s)." in done.stdout, done
    assert after.returncode == 0, after
    # Under the lock it diagnosed again and found the first repair's work done.
    assert "Repair plan for database 'default'" in after.stdout, after
    assert ": 0 steps" in after.stdout, after
    assert not (tmp_path / "third.json").exists()  # nothing to back up: nothing to change

    # Every step ran once, by the first repair.
    ledger = read_ledger(connections[fresh_db])
    assert [e.step for e in ledger] == [title for _, title in PLAN[:SCHEMA_STEPS]] + [
        title for _, title in PLAN[SCHEMA_STEPS:]
    ]
    assert {e.backup for e in ledger} == {str(first_backup)}
    assert dump(fresh_db) == healthy
    assert kinds(fresh_db) == set()
    h.migrate(fresh_db)


MYSQL_WHOLE_SECONDS = (
    "BUG: GET_LOCK(name, int(timeout)) truncates --lock-timeout to whole seconds on "
    "MySQL/MariaDB, which accept a fractional timeout: 1.5 waits 1s, 0.5 does not wait"
)


def test_lock_timeout_is_waited_in_full(fresh_db: str) -> None:
    other = f"holder_{fresh_db}"
    add_alias(other, db_config(fresh_db))
    try:
        with repair_lock(connections[other]):
            start = time.monotonic()
            with (
                pytest.raises(LockHeld, match=r"after waiting 1\.5s"),
                repair_lock(connections[fresh_db], 1.5),
            ):
                pass  # pragma: no cover
            waited = time.monotonic() - start
    finally:
        remove_alias(other)
    assert 1.5 <= waited < 1.5 + FAST


@pytest.mark.skipif(BACKEND == "sqlite", reason="one lock file per SQLite file")
def test_lock_names_of_long_database_names_do_not_collide(
    tmp_path: Path, django_db_blocker: Any
) -> None:
    """Two databases on one server: a repair on one never waits for a repair on the other."""
    from ..conftest import _server_config, scratch_database

    prefix = "md_" + "x" * 45  # both names are 61 characters, unique only at the end
    with (
        scratch_database(tmp_path, prefix) as one,
        scratch_database(tmp_path, prefix) as two,
        django_db_blocker.unblock(),
    ):
        add_alias("lock_one", _server_config(one))
        add_alias("lock_two", _server_config(two))
        try:
            with repair_lock(connections["lock_one"]), repair_lock(connections["lock_two"]):
                pass
        finally:
            remove_alias("lock_one")
            remove_alias("lock_two")


@pytest.mark.skipif(BACKEND != "sqlite", reason="the lock file of an SQLite database")
def test_fix_on_an_sqlite_database_named_by_uri(
    fresh_db: str, child_settings: Any, project: Project, tmp_path: Path
) -> None:
    h.migrate(fresh_db)
    h.record(fresh_db, "catalog", "0009_gone")
    name = connections[fresh_db].settings_dict["NAME"]
    run = project.run(
        child_settings(NAME=f"file:{name}?mode=rw"),
        "--fix", "--noinput", "--backup", str(tmp_path / "b.json"),
    )  # fmt: skip
    assert run.returncode == 0, run
    assert ("catalog", "0009_gone") not in h.recorded(fresh_db)
