"""Submission times, extensions and late penalties in the gradebook.

``grader grade`` stores when each hand-in was submitted (from the manifest, else the file's time),
keyed by its hash, so an unchanged file graded earlier keeps its time. The late policy is then
applied to each current run and stored beside it: the raw score, the percent taken off and the
final score. It is applied again whenever its inputs may have changed (a grade, an extension, an
export with ``grader.toml``), never silently dropped: without a configuration, only runs that have
no record yet get one (their time, no deadline).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from grader.specs.config import CourseConfig, show_time
from grader.specs.late import SubmissionTime, after_penalty, extension_problem
from grader.specs.roster import match_roster
from grader.store.gradebook import Gradebook
from grader.store.roster import load_roster

SOURCES = {"manifest": "from the submissions manifest", "mtime": "the file's modification time"}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class LateRecord:
    """The late policy as applied to one run; empty strings where there is no time or no deadline."""

    run_id: int
    student: str
    exercise: str
    submitted_at: str
    time_source: str
    time_detail: str
    due: str
    extension_days: float
    extension_source: str  # "grader extend" or "grader.toml"; "" without an extension
    days_late: int
    percent: float
    policy: str
    raw_score: float
    final_score: float

    @property
    def deadline(self) -> str:
        """The due time moved by the extension, as pages print it."""
        if not self.due:
            return ""
        return show_time(datetime.fromisoformat(self.due) + timedelta(days=self.extension_days))

    def submitted(self) -> str:
        """``2027-03-06 10:00 +01:00 (from the submissions manifest)``, or why the time is unknown."""
        if not self.submitted_at:
            return "submission time unknown"
        return f"{show_time(datetime.fromisoformat(self.submitted_at))} ({SOURCES.get(self.time_source, '')})"

    def verdict(self) -> str:
        """On time or how late, against which deadline, and what it cost; the policy is ``policy``."""
        if not self.due:
            return "no deadline set"
        extension = (f", with an extension of {self.extension_days:g} day{'s' if self.extension_days != 1 else ''}"
                     if self.extension_days else "")
        if not self.submitted_at:
            return f"deadline {self.deadline}{extension}; submission time unknown, so no penalty"
        if not self.days_late:
            return f"on time (deadline {self.deadline}{extension})"
        days = f"{self.days_late} started day{'s' if self.days_late != 1 else ''} late"
        return f"{days} (deadline {self.deadline}{extension}): {self.percent:g}% off"


def record_times(gradebook: Gradebook, exercise: str, times: dict[tuple[str, str], SubmissionTime]) -> None:
    """Store when each hand-in was submitted: ``times[(student, sha256)]``; a newer manifest replaces older times."""
    now = _now()
    with gradebook.conn:
        gradebook.conn.executemany(
            "INSERT OR REPLACE INTO submission_times(student, exercise, sha256, submitted_at, source, detail, "
            "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(student, exercise, sha, t.at.isoformat(timespec="seconds"), t.source, t.detail, now)
             for (student, sha), t in times.items()])


def grant_extension(gradebook: Gradebook, student: str, exercise: str, days: float) -> None:
    """Record an extension; every one is kept, and the latest for a student and assignment counts (0 revokes)."""
    with gradebook.conn:
        gradebook.conn.execute("INSERT INTO extensions(student, exercise, days, granted_at) VALUES (?, ?, ?, ?)",
                               (student, exercise, float(days), _now()))


def granted_extensions(gradebook: Gradebook) -> dict[tuple[str, str], tuple[int, float]]:
    """(student key casefolded, assignment) -> (order, days) of the latest ``grader extend`` for each.

    A stored number of days that is no extension (inf or 1e9, kept before ``grader extend`` refused them) is
    skipped, so it cannot overflow a deadline for the whole class; ``ignored_extensions`` names it.
    """
    rows = gradebook.conn.execute("SELECT id, student, exercise, days FROM extensions ORDER BY id").fetchall()
    return {(student.casefold(), exercise): (order, days) for order, student, exercise, days in rows
            if extension_problem(days) is None}


def ignored_extensions(gradebook: Gradebook) -> list[str]:
    """One line per stored extension that ``granted_extensions`` skips, saying what to do about it."""
    rows = gradebook.conn.execute("SELECT student, exercise, days, granted_at FROM extensions ORDER BY id").fetchall()
    return [f"ignored the extension for {student} on {exercise} recorded {granted_at} in {gradebook.path}: "
            f"{extension_problem(days)}; give it again with `grader extend`"
            for student, exercise, days, granted_at in rows if extension_problem(days) is not None]


def _extension(keys: set[str], exercise: str, granted: dict, config: CourseConfig | None) -> tuple[float, str]:
    """The extension for a student known by ``keys``: `grader extend`'s latest, else the configuration's."""
    found = [granted[(k, exercise)] for k in keys if (k, exercise) in granted]
    if found:  # the student may have been extended under several names (id, login): the latest counts
        return max(found)[1], "grader extend"
    days = config.extension(keys, exercise) if config else None
    return (days, "grader.toml") if days else (0.0, "")


def apply_late_policy(gradebook: Gradebook, config: CourseConfig | None, exercise: str | None = None) -> list[LateRecord]:
    """Apply the configuration's deadlines, extensions and policy to every current run (of ``exercise``, if given).

    Without a configuration, only runs with no record yet get one, so penalties applied before stay.
    """
    runs = list(gradebook.current_runs(exercise))
    done = {r[0] for r in gradebook.conn.execute("SELECT run_id FROM lateness")}
    match = match_roster(load_roster(gradebook), [r.result.student for r in runs])
    granted = granted_extensions(gradebook)
    rows = []
    for run in runs:
        if config is None and run.run_id in done:
            continue
        result = run.result
        entry = match.entry(result.student)
        keys = {result.student.casefold()} | (entry.aliases() if entry else set())
        time = gradebook.conn.execute(
            "SELECT submitted_at, source, detail FROM submission_times WHERE student=? AND exercise=? AND sha256=?",
            (result.student, result.exercise, result.notebook_sha256)).fetchone() or ("", "", "")
        terms = config.terms(result.exercise) if config else None
        days, source = _extension(keys, result.exercise, granted, config)
        lateness, due, policy = None, "", ""
        if terms is not None and terms.due is not None:
            due, policy = terms.due.isoformat(timespec="seconds"), terms.late_policy.describe()
            if time[0]:
                lateness = terms.late_policy.assess(datetime.fromisoformat(time[0]), terms.due + timedelta(days=days))
        percent = lateness.percent if lateness else 0.0
        rows.append((run.run_id, *time, due, days, source, lateness.days if lateness else 0, percent, policy,
                     result.score, after_penalty(result.score, percent), _now()))
    with gradebook.conn:
        gradebook.conn.executemany(
            "INSERT OR REPLACE INTO lateness(run_id, submitted_at, time_source, time_detail, due, extension_days, "
            "extension_source, days_late, percent, policy, raw_score, final_score, applied_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    records = late_records(gradebook, exercise)
    return [records[(r.result.student, r.result.exercise)] for r in runs
            if (r.result.student, r.result.exercise) in records]


def late_records(gradebook: Gradebook, exercise: str | None = None) -> dict[tuple[str, str], LateRecord]:
    """(student, assignment) -> the record of their current run, for runs that have one."""
    query = ("SELECT l.run_id, c.student, c.exercise, l.submitted_at, l.time_source, l.time_detail, l.due, "
             "l.extension_days, l.extension_source, l.days_late, l.percent, l.policy, l.raw_score, l.final_score "
             "FROM lateness l JOIN current_runs c ON c.id = l.run_id" + (" WHERE c.exercise=?" if exercise else ""))
    rows = gradebook.conn.execute(query, (exercise,) if exercise else ()).fetchall()
    return {(row[1], row[2]): LateRecord(*row) for row in rows}
