"""Late policies: how much of a late submission's score is taken off, per started day after its deadline.

>>> policy = LatePolicy(percent_per_day=10, max_days=5)
>>> policy.describe()
'10% off per started day late; more than 5 days late scores 0'
>>> deadline = datetime(2027, 3, 5, 23, 59, tzinfo=timezone.utc)
>>> policy.assess(deadline + timedelta(hours=25), deadline)
Lateness(days=2, percent=20.0)
>>> policy.assess(deadline + timedelta(days=6), deadline)
Lateness(days=6, percent=100.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone  # noqa: F401 - timezone: the doctest

DAY = timedelta(days=1)
# The longest extension: ten years is more than any term needs, and far inside what a date can be moved by (a
# deadline plus 1e9 days overflows ``datetime``; nan and inf are no number of days at all).
MAX_EXTENSION_DAYS = 3650


def extension_problem(days: float) -> str | None:
    """Why ``days`` cannot be an extension, or None when it can: a finite number from 0 to MAX_EXTENSION_DAYS.

    >>> extension_problem(2.5) is None, extension_problem(float("nan")), extension_problem(1e9)
    (True, 'nan is not a number of days from 0 to 3650', '1e+09 is not a number of days from 0 to 3650')
    """
    if isinstance(days, (int, float)) and not isinstance(days, bool) and math.isfinite(days) \
            and 0 <= days <= MAX_EXTENSION_DAYS:
        return None
    shown = f"{days:g}" if isinstance(days, (int, float)) else repr(days)
    return f"{shown} is not a number of days from 0 to {MAX_EXTENSION_DAYS}"


@dataclass(frozen=True)
class Lateness:
    days: int  # started days after the deadline (and its grace period); 0 when on time
    percent: float  # taken off the score, 0 to 100


@dataclass(frozen=True)
class LatePolicy:
    """A deduction per started day late; a cap on how late a submission is accepted at all."""

    percent_per_day: float = 0.0  # of the student's own score, per started day after the deadline
    max_days: int | None = None  # a submission more days late than this scores 0; None: no limit
    grace_minutes: float = 0.0  # this late still counts as on time (uploads that finish just after the deadline)

    def describe(self) -> str:
        if self.max_days == 0:
            words = "no late submissions: any later than the deadline scores 0"
        else:
            words = f"{self.percent_per_day:g}% off per started day late" if self.percent_per_day else "no deduction"
            if self.max_days is not None:
                words += f"; more than {self.max_days} day{'s' if self.max_days != 1 else ''} late scores 0"
        return words + (f"; {self.grace_minutes:g} minutes' grace" if self.grace_minutes else "")

    def assess(self, submitted: datetime, deadline: datetime) -> Lateness:
        """How late ``submitted`` is after ``deadline`` (both aware), and the percent that costs."""
        late = submitted - deadline
        if late <= timedelta(minutes=self.grace_minutes):
            return Lateness(0, 0.0)
        days = math.ceil(late / DAY)
        if self.max_days is not None and days > self.max_days:
            return Lateness(days, 100.0)
        return Lateness(days, float(min(100.0, days * self.percent_per_day)))


def after_penalty(score: float, percent: float) -> float:
    """The score left once ``percent`` of it is taken off.

    >>> after_penalty(9, 20)
    7.2
    """
    return round(score * (1 - percent / 100), 4)


@dataclass(frozen=True)
class SubmissionTime:
    """When a hand-in was submitted, and how the grader knows."""

    at: datetime  # aware
    source: str  # "manifest" (the submissions.csv the LMS wrote) or "mtime" (the file's modification time)
    detail: str = ""  # which manifest row, or why the file's time was used
