"""Exit codes and the user-error type shared by the commands."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the input was usable, but some checks fail
EXIT_UNUSABLE = 2  # not a notebook, unknown exercise, unreadable file


class UserError(Exception):
    """A problem with what the user asked for; printed without a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_UNUSABLE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
