"""Manual overrides with an audit trail: a grader's score replaced by a person's, with the reason.

An override sets one check's points (``check_id``) or the whole assignment's score (``check_id`` '')
for one student. Every action is a row of the ``overrides`` table and none is ever changed or
deleted; the latest row per student, assignment and check is the one in force (``current_overrides``).
Each override keeps what the grader had said when it was made (``graded``). It survives every
regrade; when a regrade changes that underlying result, the override is flagged for review (it stays
in force until someone records it again or removes it), never dropped or kept silently.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from grader.errors import UserError
from grader.results import SubmissionResult
from grader.specs.late import after_penalty
from grader.store.gradebook import Gradebook, StoredRun
from grader.store.lateness import LateRecord

WHOLE = ""  # the check_id of an override of the whole assignment's score


@dataclass(frozen=True)
class Override:
    """One row of the audit trail: an override set (``action`` 'set') or removed ('remove')."""

    id: int
    student: str
    exercise: str
    check_id: str  # WHOLE for the assignment's score
    action: str
    points: float | None
    comment: str
    author: str
    created_at: str
    run_id: int | None  # the run whose result it overrode
    graded: dict  # that run's result for the target: {passed, points, max_points} or {status, score, max_score}

    @property
    def target(self) -> str:
        return f"check {self.check_id}" if self.check_id else "the whole score"


@dataclass(frozen=True)
class Applied:
    """An override in force on a result, with what the grader says now and whether a person should look again."""

    override: Override
    graded_now: dict
    review: str  # '' while the grader's result is the one the override was made against; else what changed


@dataclass(frozen=True)
class FinalScore:
    """A result's score as the grader gave it (``raw``) and with its overrides applied (``score``)."""

    raw: float
    score: float
    max_score: float
    applied: tuple[Applied, ...] = ()

    @property
    def to_review(self) -> tuple[Applied, ...]:
        return tuple(a for a in self.applied if a.review)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def graded_now(result: SubmissionResult, check_id: str) -> dict:
    """What the grader says about an override's target: a check's outcome, or the whole result's ({} if absent)."""
    if check_id == WHOLE:
        return {"status": result.status.value, "score": result.score, "max_score": result.max_score}
    check = next((c for c in result.checks if c.id == check_id), None)
    return {} if check is None else {"passed": check.passed, "points": check.points, "max_points": check.max_points}


def describe(graded: dict) -> str:
    """``fail 0/3``, ``ok 7/10``, or ``no result`` for a check the run did not score."""
    if not graded:
        return "no result"
    if "passed" in graded:
        return f"{'pass' if graded['passed'] else 'fail'} {graded['points']:g}/{graded['max_points']:g}"
    return f"{graded['status']} {graded['score']:g}/{graded['max_score']:g}"


def _same(then: dict, now: dict) -> bool:
    if then.keys() != now.keys():
        return False
    return all(math.isclose(v, now[k], abs_tol=1e-9) if isinstance(v, float | int) and not isinstance(v, bool)
               else v == now[k] for k, v in then.items())


def review_reason(override: Override, result: SubmissionResult) -> str:
    """Why an override needs a person's look after a regrade; '' when the grader's result is unchanged."""
    now = graded_now(result, override.check_id)
    if _same(override.graded, now):
        return ""
    what = f"{override.check_id}" if override.check_id else "the score"
    return f"the grader's result for {what} changed: {describe(override.graded)} when overridden, {describe(now)} now"


def full_points(exercise: str, runs: Iterable[StoredRun] = ()) -> float:
    """An assignment's full points, the same whoever handed in what: its spec's or quiz's. For one not defined here
    (a gradebook taken to another course's checkout), the most any of the class's ``runs`` is out of."""
    from grader.assignments.catalog import load_assignment  # the checks' registry: only where points are asked for

    try:
        return load_assignment(exercise).max_points
    except UserError:  # unknown here, or its spec no longer loads
        return max((run.result.max_score for run in runs), default=0.0)


def final_score(result: SubmissionResult, overrides: list[Override] | tuple[Override, ...],
                full: float = 0.0) -> FinalScore:
    """The score with overrides in force: each check override sets that check's points; a whole-score one wins.

    ``full``: the assignment's full points (``full_points``), the maximum of a result that scored none (0/0).
    """
    mine = [o for o in overrides if o.student == result.student and o.exercise == result.exercise]
    score = result.score
    checks = {c.id: c for c in result.checks}
    for o in (o for o in mine if o.check_id != WHOLE):
        score += o.points - (checks[o.check_id].points if o.check_id in checks else 0.0)
    whole = next((o for o in mine if o.check_id == WHOLE), None)
    if whole is not None:
        score = whole.points
    applied = tuple(Applied(o, graded_now(result, o.check_id), review_reason(o, result)) for o in mine)
    return FinalScore(result.score, round(score, 6), result.max_score or full, applied)


def late_after_overrides(late: LateRecord | None, final: FinalScore | None) -> LateRecord | None:
    """The late record with its penalty taken off the overridden score: an override corrects what the grader gave,
    and the late policy still applies on top (an extension, `grader extend`, is how lateness is forgiven)."""
    if late is None or final is None or not final.applied:
        return late
    return dataclasses.replace(late, raw_score=final.score, final_score=after_penalty(final.score, late.percent))


# --- reading -------------------------------------------------------------------------------------


def _override(row: sqlite3.Row) -> Override:
    return Override(row["id"], row["student"], row["exercise"], row["check_id"], row["action"], row["points"],
                    row["comment"], row["author"], row["created_at"], row["run_id"], json.loads(row["graded"]))


def _select(gradebook: Gradebook, table: str, exercise: str | None, student: str | None) -> list[Override]:
    where = [(clause, value) for clause, value in (("exercise = ?", exercise), ("student = ?", student)) if value]
    sql = f"SELECT * FROM {table}" + (" WHERE " + " AND ".join(c for c, _ in where) if where else "")
    conn = gradebook.conn
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(sql + " ORDER BY exercise, student, check_id, id", tuple(v for _, v in where)).fetchall()
    finally:
        conn.row_factory = None
    return [_override(row) for row in rows]


def current_overrides(gradebook: Gradebook, exercise: str | None = None, student: str | None = None) -> list[Override]:
    """The overrides in force, by assignment, student and check."""
    return _select(gradebook, "current_overrides", exercise, student)


def history(gradebook: Gradebook, exercise: str | None = None, student: str | None = None) -> list[Override]:
    """Every override ever recorded or removed, oldest first per target: the audit trail."""
    view = ("(SELECT overrides.*, students.name AS student FROM overrides "
            "JOIN students ON students.id = overrides.student_id)")
    return _select(gradebook, view, exercise, student)


def final_scores(gradebook: Gradebook, exercise: str | None = None) -> dict[tuple[str, str], FinalScore]:
    """(student, assignment) -> the final score of every current result, overrides applied."""
    overrides: dict[tuple[str, str], list[Override]] = {}
    for o in current_overrides(gradebook, exercise):
        overrides.setdefault((o.student, o.exercise), []).append(o)
    runs = list(gradebook.current_runs(exercise))
    full = {e: full_points(e, [run for run in runs if run.result.exercise == e])
            for e in {run.result.exercise for run in runs}}
    return {(run.result.student, run.result.exercise): final_score(
        run.result, overrides.get((run.result.student, run.result.exercise), []), full[run.result.exercise])
        for run in runs}


# --- writing -------------------------------------------------------------------------------------


class OverrideError(UserError):
    """An override that cannot be recorded: the message names what was asked and what exists."""


def _close(name: str, known: list[str]) -> str:
    near = difflib.get_close_matches(name, known, n=1)
    return f"did you mean {near[0]!r}? " if near else ""


def _current_run(gradebook: Gradebook, student: str, exercise: str) -> StoredRun:
    runs = {run.result.student: run for run in gradebook.current_runs(exercise)}
    if not runs:
        graded = gradebook.exercises()
        raise OverrideError(f"{gradebook.path} holds no result for {exercise!r}: {_close(exercise, graded)}"
                            f"graded assignments: {', '.join(graded) or 'none'}")
    if student not in runs:
        raise OverrideError(f"{student!r} has no graded result for {exercise} in {gradebook.path}; "
                            f"{_close(student, sorted(runs))}students graded: {', '.join(sorted(runs))}")
    return runs[student]


def _ceiling(gradebook: Gradebook, run: StoredRun, check_id: str) -> float:
    """The most points the target can have: the check's, or the assignment's full points in this class."""
    if check_id != WHOLE:
        checks = {c.id: c for c in run.result.checks}
        if check_id not in checks:
            if not checks:
                raise OverrideError(f"{run.result.student}'s {run.result.exercise} result has no checks (status "
                                    f"{run.result.status.value}: {run.result.error}); override the whole score "
                                    "instead (leave out --check)")
            raise OverrideError(f"{run.result.exercise} has no check {check_id!r} in {run.result.student}'s result; "
                                f"{_close(check_id, list(checks))}its checks: {', '.join(checks)}")
        return checks[check_id].max_points
    # An unusable submission scored 0/0: the assignment's full points bound it, as in the CSV.
    return full_points(run.result.exercise, gradebook.current_runs(run.result.exercise))


def _insert(gradebook: Gradebook, student: str, exercise: str, check_id: str, action: str, points: float | None,
            comment: str, author: str, run: StoredRun) -> Override:
    graded = graded_now(run.result, check_id)
    with gradebook.conn:
        student_id = gradebook.conn.execute("SELECT id FROM students WHERE name=?", (student,)).fetchone()[0]
        cursor = gradebook.conn.execute(
            "INSERT INTO overrides(student_id, exercise, check_id, action, points, comment, author, created_at, "
            "run_id, graded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (student_id, exercise, check_id, action, points, comment, author, _now(), run.run_id, json.dumps(graded)))
    return next(o for o in history(gradebook, exercise, student) if o.id == cursor.lastrowid)


def record_override(gradebook: Gradebook, student: str, exercise: str, check_id: str, points: float, comment: str,
                    author: str) -> Override:
    """Set ``check_id``'s points (or the whole score, WHOLE) for a student's current result; a new row each time."""
    run = _current_run(gradebook, student, exercise)
    ceiling = _ceiling(gradebook, run, check_id)
    if not math.isfinite(points) or not 0 <= points <= ceiling:
        raise OverrideError(f"--points must be between 0 and {ceiling:g} for "
                            f"{'check ' + check_id if check_id else 'the whole score of ' + exercise}, got {points:g}")
    if not comment.strip():
        raise OverrideError("--comment must say why: the student's page shows it beside the points")
    return _insert(gradebook, student, exercise, check_id, "set", points, comment.strip(), author, run)


def remove_override(gradebook: Gradebook, student: str, exercise: str, check_id: str, comment: str,
                    author: str) -> Override:
    """End the override in force on a target; the grader's result counts again, and the history keeps both rows."""
    active = [o for o in current_overrides(gradebook, exercise, student) if o.check_id == check_id]
    if not active:
        target = f"check {check_id}" if check_id else "the whole score"
        there = current_overrides(gradebook, exercise, student)
        others = f" (in force: {', '.join(o.target for o in there)})" if there else ""
        raise OverrideError(f"no override in force for {student}'s {exercise}, {target}{others}")
    run = _current_run(gradebook, student, exercise)
    return _insert(gradebook, student, exercise, check_id, "remove", None, comment.strip(), author, run)
