"""Gradebook exports for learning-management systems: CSV, and Gradescope's results.json."""

from __future__ import annotations

import csv
import io
import json
import pathlib
from collections.abc import Iterable

from grader.results import Status, SubmissionResult
from grader.specs.paths import student_name
from grader.store.gradebook import Gradebook

# Gradescope's test visibilities: hidden checks become visible once grades are published.
VISIBILITY = {"public": "visible", "hidden": "after_published"}


def csv_table(gradebook: Gradebook) -> str:
    """One row per student: score, max and status per exercise, the totals (a missing exercise scores 0), then notes.

    ``notes`` says, per exercise, which of a student's notebooks was graded when there were several, and why an
    ``invalid`` submission was not graded.
    """
    exercises = gradebook.exercises()
    current = {(run.result.student, run.result.exercise): run.result for run in gradebook.current_runs()}
    # An unusable submission has no checks (0/0); it still counts against the exercise's full points.
    full = {e: max((r.max_score for (_, ex), r in current.items() if ex == e), default=0.0) for e in exercises}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", *[f"{e}_{field}" for e in exercises for field in ("score", "max", "status")],
                     "total_score", "total_max", "notes"])
    for student in gradebook.students():
        row, total, total_max, notes = [student], 0.0, 0.0, []
        for exercise in exercises:
            result = current.get((student, exercise))
            total_max += full[exercise]
            if result is None:
                row += ["", f"{full[exercise]:g}", "missing"]
                continue
            row += [f"{round(result.score, 4):g}", f"{full[exercise]:g}", result.status.value]
            total += result.score
            # Which notebook was graded; for an unusable submission (e.g. an ambiguous folder), why none was.
            note = result.note or (result.error if result.status is Status.INVALID else "")
            notes += [f"{exercise}: {note}"] if note else []
        writer.writerow(row + [f"{round(total, 4):g}", f"{total_max:g}", " | ".join(notes)])
    return out.getvalue()


def gradescope_results(results: Iterable[SubmissionResult]) -> dict:
    """Gradescope's results.json for one student: a test per check, across their exercises."""
    results = list(results)
    tests = []
    for result in results:
        if result.error:
            tests.append({"name": f"{result.exercise}: notebook run", "score": 0, "max_score": 0,
                          "output": f"Status {result.status.value}: {result.error}", "visibility": "visible"})
        for check in result.checks:
            tests.append({"name": f"{result.exercise}: {check.title or check.id}", "score": check.points,
                          "max_score": check.max_points, "output": check.message,
                          "visibility": VISIBILITY.get(check.visibility, "visible")})
    summary = "; ".join(f"{r.exercise}: {r.score:g}/{r.max_score:g} ({r.status.value})" + (f", {r.note}" if r.note else "")
                        for r in results)
    return {"score": round(sum(r.score for r in results), 4), "output": summary, "tests": tests,
            "stdout_visibility": "hidden"}


def write_gradescope(gradebook: Gradebook, out: pathlib.Path) -> list[pathlib.Path]:
    """``<out>/<student>/results.json`` for every student."""
    by_student: dict[str, list[SubmissionResult]] = {}
    for run in gradebook.current_runs():
        by_student.setdefault(run.result.student, []).append(run.result)
    written = []
    for student, results in sorted(by_student.items()):
        path = out / student_name(student) / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(gradescope_results(results), indent=2) + "\n")
        written.append(path)
    return written
