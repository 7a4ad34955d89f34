"""The one error type for bad input, and the exit codes every command shares.

Each layer raises a subclass of ``UserError`` for what the user gave or asked for (a spec,
a notebook, a gradebook, a secret); ``grader.cli.main`` turns any of them into one message
on stderr, the JSON object with ``--json``, and ``exit_code``. Anything else is a bug in the
grader and exits with ``EXIT_INTERNAL``, never with a code a user could read as a verdict.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the input was usable, but some checks fail
EXIT_UNUSABLE = 2  # not a notebook, unknown exercise, unreadable file, bad option
EXIT_INTERNAL = 3  # the grader itself crashed: its traceback is on stderr
EXIT_INCOMPLETE = 4  # a batch ran, but some submissions were left ungraded (a lost worker or factory: nothing stored)
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class UserError(Exception):
    """A problem with what the user gave or asked for; printed as one message, without a traceback.

    ``assignment`` names the exercise or quiz the problem is about, when one is known, so a
    ``--json`` reply can say which.
    """

    def __init__(self, message: str, *, exit_code: int = EXIT_UNUSABLE, assignment: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.assignment = assignment

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownAssignment(UserError, LookupError):
    """No exercise or quiz has this id; the message lists the ones that exist."""

    def __init__(self, message: str, assignment: str = "") -> None:
        super().__init__(message, assignment=assignment)


class MachineryLost(UserError):
    """The grader's own machinery died under a submission (its kernel factory, the kernel's launcher, the grading
    worker): not the student's outcome, so nothing is stored for it and the next run grades it again."""

    def __init__(self, message: str) -> None:  # one argument: it crosses process boundaries by pickle
        super().__init__(message, exit_code=EXIT_INCOMPLETE)
