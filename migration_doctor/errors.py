"""The one exception every layer raises when the doctor cannot run."""

from __future__ import annotations


class DoctorError(Exception):
    """The doctor cannot run (bad alias, unreachable server, bad input): one line for the
    user, exit status 2."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
