"""What grading produces: one ``CheckResult`` per check, one ``SubmissionResult`` per notebook.

``SubmissionResult.to_json()`` is the fixed contract of ``--json``::

    {exercise, student, status: ok|error|timeout|invalid, score, max_score,
     checks: [{id, passed, points, max_points, visibility, message}], error}

``grader check --json`` adds ``timings`` (seconds per stage, as the engine records them); the
contract's keys stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Status(str, Enum):
    OK = "ok"
    ERROR = "error"  # a cell raised, the kernel died, or exports could not be read
    TIMEOUT = "timeout"
    INVALID = "invalid"  # not a notebook, or unusable before execution


@dataclass(frozen=True)
class CheckResult:
    id: str
    passed: bool
    points: float
    max_points: float
    visibility: str  # "public" or "hidden"
    message: str
    title: str = ""
    kind: str = ""  # the check kind that produced it (grader.checks.REGISTRY), so renderers know its details
    metrics: dict = field(default_factory=dict)  # numbers for tables and leaderboards, e.g. {"n_params": 21}
    details: dict = field(default_factory=dict)  # plain data for feedback plots; never hidden data

    def contract(self) -> dict:
        return {"id": self.id, "passed": self.passed, "points": self.points, "max_points": self.max_points,
                "visibility": self.visibility, "message": self.message}


@dataclass(frozen=True)
class PendingCheck:
    """A hidden check that ``grader check`` does not run; the instructor's batch grades it."""

    id: str
    title: str
    max_points: float
    reason: str = ""  # why it is not scored here, when not a hidden check (e.g. "checked in the official run")


@dataclass(frozen=True)
class SubmissionResult:
    exercise: str
    student: str
    status: Status
    checks: tuple[CheckResult, ...] = ()
    error: str | None = None
    pending: tuple[PendingCheck, ...] = ()
    traceback: str = ""  # tail of the first traceback, for feedback
    timings: dict = field(default_factory=dict)  # seconds: kernel_start, execute, export, checks, total
    notebook_sha256: str = ""
    sandbox: dict = field(default_factory=dict)  # which isolation measures held for this run
    artifacts: dict = field(default_factory=dict)  # plot data for feedback (public data only)
    note: str = ""  # for the instructor and the page, e.g. which of a student's notebooks was graded

    @classmethod
    def invalid(cls, exercise: str, student: str, reason: str, sha256: str = "") -> SubmissionResult:
        """A submission that could not be run at all still gets a graded outcome, with the reason."""
        return cls(exercise=exercise, student=student, status=Status.INVALID, error=reason, notebook_sha256=sha256)

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.checks), 6)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_points for c in self.checks), 6)

    @property
    def all_passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def to_json(self, timings: bool = False) -> dict:
        """The ``--json`` contract; ``timings=True`` adds the engine's timings (seconds) as one extra key."""
        contract = {"exercise": self.exercise, "student": self.student, "status": self.status.value,
                    "score": self.score, "max_score": self.max_score, "checks": [c.contract() for c in self.checks],
                    "error": self.error}
        return (contract | {"timings": dict(self.timings)}) if timings else contract
