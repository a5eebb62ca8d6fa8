"""The progress display: on a terminal only, never in JSON or when the output is piped."""

from __future__ import annotations

import io

from migration_doctor.render.progress import Shown, watched


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_only_where_both_streams_are_terminals_and_the_output_is_text() -> None:
    assert watched(Terminal(), Terminal(), text=True)
    assert not watched(Terminal(), Terminal(), text=False)  # JSON
    assert not watched(io.StringIO(), Terminal(), text=True)  # stdout piped
    assert not watched(Terminal(), io.StringIO(), text=True)  # stderr redirected
    assert not watched(object(), object(), text=True)  # streams without isatty


def test_a_disabled_display_writes_nothing() -> None:
    stream = Terminal()
    with Shown(False, "Diagnosing schemas", stream=stream) as progress:
        progress.advance("acme", 3)
    assert stream.getvalue() == ""


def test_it_shows_the_stage_the_count_and_the_current_target_escaped() -> None:
    stream = Terminal()
    with Shown(True, "Diagnosing schemas", stream=stream) as progress:
        progress.advance("acme", 3)
        progress.advance("globex\x1b[31m", 3)
        progress.stage("Repairing schemas")
        progress.current("initech", 2, done=1)
    out = stream.getvalue()
    assert "Diagnosing schemas" in out and "Repairing schemas" in out
    assert "1/2" in out and "initech" in out
    assert "globex\\x1b[31m" in out  # a name from the database is escaped, never obeyed


def test_one_target_needs_no_display() -> None:
    stream = Terminal()
    with Shown(True, "Repairing", stream=stream) as progress:
        progress.current("step 1", 1)
    assert stream.getvalue() == ""
