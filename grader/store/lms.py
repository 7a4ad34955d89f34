"""Gradebook exports for learning-management systems: CSV, Canvas's gradebook import CSV, and Gradescope's results.json."""

from __future__ import annotations

import csv
import io
import json
import pathlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from grader.assignments.catalog import load_assignment
from grader.errors import UserError
from grader.results import Status, SubmissionResult
from grader.specs.config import CourseConfig
from grader.specs.late import after_penalty
from grader.specs.paths import student_name
from grader.specs.roster import RosterEntry, match_roster
from grader.store.gradebook import Gradebook, StoredRun
from grader.store.lateness import LateRecord, late_records
from grader.store.outputs import write_output
from grader.store.overrides import WHOLE, FinalScore, final_scores, full_points
from grader.store.roster import load_roster

# Per assignment in the CSV: the final score (late penalty applied), its max and status, the raw score, the percent
# taken off for lateness (empty without a deadline), when it was submitted, and how that is known (manifest, mtime).
PER_ASSIGNMENT = ("score", "max", "status", "raw", "late_penalty", "submitted_at", "time_source")
# Gradescope's test visibilities: hidden checks become visible once grades are published.
VISIBILITY = {"public": "visible", "hidden": "after_published"}


@dataclass
class StudentRow:
    """One student of the class as exports list them: the roster's entry and every name they handed in under."""

    name: str  # the roster's name, else the name the submissions carry
    entry: RosterEntry | None
    names: list[str]  # submission names (several when a student handed in under their id and their login)
    runs: dict[str, StoredRun] = field(default_factory=dict)  # assignment -> current run (the latest of all names)
    roster: str = ""  # "" without a roster; "on roster", "no submission", "not on roster", "ambiguous: ..."
    notes: list[str] = field(default_factory=list)


def student_rows(gradebook: Gradebook) -> list[StudentRow]:
    """Everyone on the roster, and everyone who handed something in, once each, by name."""
    current: dict[str, dict[str, StoredRun]] = {}
    for run in gradebook.current_runs():
        current.setdefault(run.result.student, {})[run.result.exercise] = run
    roster = load_roster(gradebook)
    if not roster:
        return [_row(name, None, [name], current, "") for name in gradebook.students()]
    match = match_roster(roster, gradebook.students())
    rows = [_row(e.name, e, [n for n, m in match.matched.items() if m == e], current, "") for e in roster]
    for row in rows:
        row.roster = "on roster" if row.runs else "no submission"
    rows += [_row(name, None, [name], current, "not on roster") for name in match.unknown]
    rows += [_row(name, None, [name], current, "ambiguous: matches " + ", ".join(e.label() for e in entries))
             for name, entries in match.ambiguous.items()]
    return sorted(rows, key=lambda r: (r.name.casefold(), r.entry.student_id if r.entry else ""))


def _row(name: str, entry: RosterEntry | None, names: list[str], current: dict, roster: str) -> StudentRow:
    row = StudentRow(name, entry, sorted(names), roster=roster)
    for exercise in sorted({e for n in names for e in current.get(n, {})}):
        runs = sorted((current[n][exercise] for n in names if exercise in current.get(n, {})), key=lambda r: r.run_id)
        row.runs[exercise] = runs[-1]
        if len(runs) > 1:  # e.g. handed in as "ada" and as "1001": the latest counts, and the CSV says so
            row.notes.append(f"{exercise}: graded under {len(runs)} names ({', '.join(r.result.student for r in runs)})"
                             f"; the latest, {runs[-1].result.student}'s, counts")
    return row


def final_score(run: StoredRun, late: LateRecord | None, final: FinalScore | None = None) -> float:
    """The score that counts: the run's score, the instructor's overrides applied (``final``), then the late penalty."""
    score = final.score if final else run.result.score
    return after_penalty(score, late.percent) if late else score


def override_notes(exercise: str, final: FinalScore | None) -> list[str]:
    """The overrides behind a final score, as the CSV's notes say them."""
    return [f"{exercise}: {a.override.target} overridden to {a.override.points:g} by {a.override.author} "
            f"({a.override.comment})" + (f"; to review: {a.review}" if a.review else "")
            for a in (final.applied if final else ())]


def _figure(value: float) -> str:
    return f"{round(value, 4):g}"


# What a spreadsheet may run as a formula when a cell starts with it (OWASP's list), and a number as _figure writes
# one, which a spreadsheet reads as a number even with its minus sign.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d+(\.\d+)?(e[+-]\d+)?")


def spreadsheet_cell(value: str) -> str:
    """A CSV cell no spreadsheet runs as a formula: text that starts as one gets a leading single quote (a student
    file ``=HYPERLINK(...).ipynb`` or a roster name); numbers stay numbers.

    >>> [spreadsheet_cell(v) for v in ("+1+1", "@SUM(1+1)", "=A1", "-2.5", "ada", "")]
    ["'+1+1", "'@SUM(1+1)", "'=A1", '-2.5', 'ada', '']
    """
    if value.startswith(FORMULA_START) and not NUMBER.fullmatch(value):
        return "'" + value
    return value


def _write(writer, cells: list) -> None:
    """One row of an export, every cell made safe for a spreadsheet: the header's titles as much as the names."""
    writer.writerow([spreadsheet_cell("" if cell is None else str(cell)) for cell in cells])


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit - 1].rstrip() + "…"


def csv_table(gradebook: Gradebook) -> str:
    """One row per student, name first: per assignment the final score, max, status, raw score, late penalty and
    submission time with its source; the totals (a missing assignment scores 0), the roster status, then notes.

    ``notes`` says, per assignment, which of a student's notebooks was graded when there were several, why an
    ``invalid`` submission was not graded, and the first line of why a run ended in ``error`` or ``timeout``.
    """
    exercises = gradebook.exercises()
    rows = student_rows(gradebook)
    late = late_records(gradebook)
    finals = final_scores(gradebook)
    # An unusable submission has no checks (0/0); it still counts against the assignment's full points, which are its
    # spec's or quiz's, not the best a classmate's result happened to be out of.
    full = {e: full_points(e, [r.runs[e] for r in rows if e in r.runs]) for e in exercises}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    _write(writer, ["name", "student_id", "email", "submitted_as",
                     *[f"{e}_{field}" for e in exercises for field in PER_ASSIGNMENT],
                     "total_score", "total_max", "roster", "notes"])
    for row in rows:
        entry = row.entry
        cells = [row.name, entry.student_id if entry else "", entry.email if entry else "", " ".join(row.names)]
        total, total_max, notes = 0.0, 0.0, list(row.notes)
        for exercise in exercises:
            total_max += full[exercise]
            run = row.runs.get(exercise)
            if run is None:
                cells += ["", _figure(full[exercise]), "missing", "", "", "", ""]
                continue
            result, record = run.result, late.get((run.result.student, exercise))
            final = finals.get((run.result.student, exercise))
            score = final_score(run, record, final)
            cells += [_figure(score), _figure(full[exercise]), result.status.value, _figure(result.score),
                      _figure(record.percent) if record and record.due else "",
                      record.submitted_at if record else "", record.time_source if record else ""]
            total += score
            # Which notebook was graded; for an unusable submission (e.g. an ambiguous folder), why none was; for a
            # run that crashed or timed out, why, in a line: what the student's page says at length.
            note = result.note or (result.error if result.status is Status.INVALID else "")
            notes += [f"{exercise}: {note}"] if note else []
            if result.status in (Status.ERROR, Status.TIMEOUT) and result.error:
                notes.append(f"{exercise}: {result.status.value}: {_first_line(result.error)}")
            notes += [f"{exercise}: {record.verdict()}"] if record and (record.days_late or record.extension_days) else []
            notes += override_notes(exercise, final)
        _write(writer, cells + [_figure(total), _figure(total_max), row.roster, " | ".join(notes)])
    return out.getvalue()


def canvas_column(exercise: str, config: CourseConfig | None) -> str:
    """The assignment's column in Canvas: the configuration's ``canvas_column``, else its title."""
    if config and config.terms(exercise).canvas_column:
        return config.terms(exercise).canvas_column
    try:
        return load_assignment(exercise).title
    except UserError:
        return exercise


def canvas_table(gradebook: Gradebook, config: CourseConfig | None = None) -> tuple[str, list[str]]:
    """Canvas's gradebook import CSV, and the names left out of it (not on the roster, so Canvas cannot match them).

    Columns as Canvas's own gradebook export: Student, ID (Canvas's user id), SIS User ID (the roster's student id),
    SIS Login ID, Section, then one column per assignment with its final score. A student with no submission has
    an empty cell, which leaves Canvas's grade (and its missing-submission policy) as it is.
    """
    rows = student_rows(gradebook)
    if not any(row.entry for row in rows):
        raise UserError(f"{gradebook.path} has no roster: Canvas matches grades by student id, so run "
                        "`grader roster import ROSTER.csv` first")
    exercises = gradebook.exercises()
    late = late_records(gradebook)
    finals = final_scores(gradebook)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    _write(writer, ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                     *[canvas_column(e, config) for e in exercises]])
    left_out = []
    for row in rows:
        if row.entry is None:
            left_out += row.names
            continue
        e = row.entry
        scores = [_figure(final_score(row.runs[x], late.get((row.runs[x].result.student, x)),
                                      finals.get((row.runs[x].result.student, x)))) if x in row.runs
                  else "" for x in exercises]
        _write(writer, [e.name, e.canvas_id, e.student_id, e.login, e.section, *scores])
    return out.getvalue(), left_out


def gradescope_results(results: Iterable[SubmissionResult], finals: dict | None = None,
                       late: dict[tuple[str, str], LateRecord] | None = None) -> dict:
    """Gradescope's results.json for one student: a test per check, across their exercises; ``finals``
    ((student, exercise) -> FinalScore) puts the instructor's overrides in, each with its comment, and ``late``
    (the same keys -> LateRecord) the late penalty on top, as in the CSV and the Canvas file."""
    results = list(results)
    tests, total = [], 0.0
    for result in results:
        final = (finals or {}).get((result.student, result.exercise))
        by_check = {a.override.check_id: a.override for a in (final.applied if final else ())}
        if result.error:
            tests.append({"name": f"{result.exercise}: notebook run", "score": 0, "max_score": 0,
                          "output": f"Status {result.status.value}: {result.error}", "visibility": "visible"})
        counted = 0.0
        for check in result.checks:
            override = by_check.get(check.id)
            counted += override.points if override else check.points
            tests.append({"name": f"{result.exercise}: {check.title or check.id}",
                          "score": override.points if override else check.points, "max_score": check.max_points,
                          "output": check.message + (f"\n\nChanged by your instructor from {check.points:g} to "
                                                     f"{override.points:g} points: {override.comment}"
                                                     if override else ""),
                          "visibility": VISIBILITY.get(check.visibility, "visible"),
                          # said, not left to score == max_score: a gate worth 0 points that fails is still a failure
                          "status": "passed" if (override.points >= check.max_points if override else check.passed)
                          else "failed"})
        score = final.score if final else result.score
        whole = by_check.get(WHOLE)
        if whole is not None:  # the whole score set by hand: a test that brings the checks' sum to it
            tests.append({"name": f"{result.exercise}: changed by your instructor", "score": round(score - counted, 4),
                          "max_score": 0, "output": f"The score is set to {whole.points:g}: {whole.comment}",
                          "visibility": "visible"})
        record = (late or {}).get((result.student, result.exercise))
        if record is not None and record.due and record.percent:  # a test that takes the penalty off the score
            penalised = after_penalty(score, record.percent)
            tests.append({"name": f"{result.exercise}: late penalty", "score": round(penalised - score, 4),
                          "max_score": 0, "output": f"Handed in {record.submitted()}: {record.verdict()}. The late "
                                                    f"policy: {record.policy}.", "visibility": "visible"})
            score = penalised
        total += score
    summary = "; ".join(f"{r.exercise}: {r.score:g}/{_out_of(r, finals):g} ({r.status.value})"
                        + (f", {r.note}" if r.note else "") for r in results)
    return {"score": round(total, 4), "output": summary, "tests": tests, "stdout_visibility": "hidden"}


def _out_of(result: SubmissionResult, finals: dict | None) -> float:
    """What a result is out of: an unusable one (0/0) the assignment's full points."""
    final = (finals or {}).get((result.student, result.exercise))
    return final.max_score if final else result.max_score or full_points(result.exercise)


def write_gradescope(gradebook: Gradebook, out: pathlib.Path, assignment: str | None = None) -> list[pathlib.Path]:
    """``<out>/<student>/results.json`` for every student: of every assignment, or only of ``assignment``."""
    runs = list(gradebook.current_runs())
    graded = sorted({run.result.exercise for run in runs})
    if assignment is not None and assignment not in graded:
        raise UserError(f"the gradebook has no results for {assignment} (it has: {', '.join(graded) or 'none'})")
    by_student: dict[str, list[SubmissionResult]] = {}
    for run in runs:
        if assignment is None or run.result.exercise == assignment:
            by_student.setdefault(run.result.student, []).append(run.result)
    written, finals, late = [], final_scores(gradebook, assignment), late_records(gradebook, assignment)
    for student, results in sorted(by_student.items()):
        path = out / student_name(student) / "results.json"
        written.append(write_output(path, json.dumps(gradescope_results(results, finals, late), indent=2) + "\n"))
    return written
