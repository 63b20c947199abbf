"""The one exception type a user is meant to see.

Anything raised as :class:`UserError` is printed by the CLI as a single line with no
traceback and exit code 2 (or ``exit_code``), so its message must say what is wrong and
what to do about it. Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: bad input file, bad flag, unreachable server."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class StageAborted(UserError):
    """A stage stopped on a :class:`UserError` after doing part of its work.

    ``stats`` is the stage's counts at that moment, so the CLI can still print its
    summary (what was kept, how many requests failed) above the error line.
    """

    def __init__(self, error: UserError, stats: object) -> None:
        super().__init__(str(error), error.exit_code)
        self.stats = stats
