"""Per-student feedback pages and the class summary, rendered from a gradebook.

Each page is one self-contained HTML file (inline CSS, images as data URIs) that works
offline. Hidden checks appear with their result and message only; no page shows hidden
data or seeds, since neither is ever stored.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass

from matplotlib.figure import Figure as MplFigure

from grader.assignments.catalog import Assignment, Exercise, load_assignment
from grader.errors import UserError
from grader.render.figures import data_uri, diagnoses, feedback_figures
from grader.render.html import render_page, render_submission, write_page
from grader.render.terminal import status_label
from grader.results import SubmissionResult
from grader.specs.paths import student_name
from grader.specs.roster import match_roster
from grader.store.gradebook import Gradebook, StoredRun
from grader.store.lateness import LateRecord, late_records
from grader.store.overrides import FinalScore, final_scores, full_points, late_after_overrides
from grader.store.roster import load_roster


@dataclass(frozen=True)
class FeedbackReport:
    index: pathlib.Path
    pages: list[pathlib.Path]


def _assignment(assignment_id: str) -> Assignment | None:
    """The assignment a stored result belongs to; None when it is gone or no longer loads."""
    try:
        return load_assignment(assignment_id)
    except UserError:
        return None


def page_title(assignment: Assignment | None, assignment_id: str) -> str:
    if assignment is None:
        return assignment_id
    return assignment.title if isinstance(assignment, Exercise) else f"Quiz: {assignment.title}"


def with_kinds(result: SubmissionResult, assignment: Assignment | None) -> SubmissionResult:
    """Results stored before check kinds were recorded get them from the spec, by check id."""
    if not isinstance(assignment, Exercise) or all(c.kind for c in result.checks):
        return result
    kinds = {c.spec.id: c.kind.name for c in assignment.checks}
    checks = tuple(c if c.kind else dataclasses.replace(c, kind=kinds.get(c.id, "")) for c in result.checks)
    return dataclasses.replace(result, checks=checks)


def page_path(out: pathlib.Path, exercise: str, student: str) -> pathlib.Path:
    return out / exercise / f"{student_name(student)}.html"


def render_result(result: SubmissionResult, artifacts: dict, title: str, self_check: bool = False,
                  late: LateRecord | None = None, final: FinalScore | None = None) -> str:
    """A student's page with the plots and convergence diagnosis that fit the exercise, and when it was handed in."""
    return render_submission(result, title, feedback_figures(result, artifacts), self_check=self_check,
                             diagnoses=diagnoses(artifacts, result), late=late, final=final)


def render_run(run: StoredRun, assignment: Assignment | None, late: LateRecord | None = None,
               final: FinalScore | None = None) -> str:
    return render_result(with_kinds(run.result, assignment), run.artifacts, page_title(assignment, run.result.exercise),
                         late=late_after_overrides(late, final), final=final)


def reason_key(message: str) -> str:
    """A failure's reason with its particulars (numbers) blanked: the same diagnosis for two students groups together.

    >>> reason_key("stopped at epoch 34, best 13") == reason_key("stopped at epoch 29, best 23")
    True
    """
    return re.sub(r"\d+(\.\d+)?", "N", message.strip())


def _histogram(scores: list[float], max_score: float) -> str:
    fig = MplFigure(figsize=(5, 2.2), layout="constrained")
    ax = fig.subplots()
    bins = max(5, min(20, int(max_score) * 2 or 5))
    ax.hist(scores, bins=bins, range=(0, max_score or 1), color="tab:blue", edgecolor="white")
    ax.set_xlabel("score", fontsize=8)
    ax.set_ylabel("students", fontsize=8)
    ax.tick_params(labelsize=7)
    return data_uri(fig)


def _section(exercise: str, title: str, runs: list[StoredRun], out: pathlib.Path, late: dict | None = None,
             roster: list | None = None, finals: dict | None = None) -> dict:
    results = [r.result for r in runs]
    match = match_roster(roster, [r.student for r in results]) if roster else None
    check_rows: dict[str, dict] = {}
    failures: dict[tuple[str, str], dict] = defaultdict(lambda: {"count": 0, "students": [], "example": ""})
    leaderboard = []
    for result in results:
        for check in result.checks:
            row = check_rows.setdefault(check.id, {"id": check.id, "title": check.title, "visibility": check.visibility,
                                                   "passed": 0, "total": 0})
            row["total"] += 1
            row["passed"] += int(check.passed)
            if not check.passed:
                group = failures[(check.id, reason_key(check.message))]
                group.update(count=group["count"] + 1, example=group["example"] or check.message, where=check.id)
                group["students"].append(result.student)
        if result.error:
            group = failures[("run", reason_key(result.error))]
            group.update(count=group["count"] + 1, example=group["example"] or result.error, where=result.status.value)
            group["students"].append(result.student)
        # The leaderboard ranks sizes of models that pass every other public check (own work, 100% fit).
        budget = next((c for c in result.checks if "n_params" in c.metrics), None)
        others = [c for c in result.checks if c is not budget and c.visibility == "public"]
        if budget is not None and all(c.passed for c in others):
            leaderboard.append({"student": result.student, "n_params": budget.metrics["n_params"]})
    max_score = full_points(exercise, runs)  # the assignment's, as the CSV says it: not 0 where every run was unusable
    seconds = [run.duration_s for run in runs]
    return {
        "exercise": exercise, "title": title, "count": len(results), "max_score": max_score,
        "mean": statistics.mean(r.score for r in results) if results else 0.0,
        # By look: a notebook that ran but failed checks is counted apart from one that passed them all.
        "statuses": dict(sorted(Counter(status_label(r)[1] for r in results).items())),
        "median_s": statistics.median(seconds) if seconds else 0.0, "max_s": max(seconds, default=0.0),
        "histogram": _histogram([r.score for r in results], max_score),
        "checks": list(check_rows.values()),
        "leaderboard": sorted(leaderboard, key=lambda row: (row["n_params"], row["student"])),
        "failures": sorted(failures.values(), key=lambda g: (-g["count"], g["where"])),
        "rows": [{"student": run.result.student, "status": status_label(run.result), "score": run.result.score,
                  "max_score": run.result.max_score, "seconds": run.duration_s, "note": run.result.note,
                  "link": page_path(out, exercise, run.result.student).relative_to(out).as_posix(),
                  "late": late_after_overrides((late or {}).get((run.result.student, exercise)),
                                               _overridden(finals, run.result.student, exercise)),
                  "final": _overridden(finals, run.result.student, exercise),
                  "who": _who(match, run.result.student)} for run in runs],
        # On the roster, but nothing handed in for this assignment.
        "missing": [e.label() for e in match.missing] if match else [],
    }


def _overridden(finals: dict | None, student: str, exercise: str) -> FinalScore | None:
    """The student's final score when an instructor's override changes it; else None."""
    final = (finals or {}).get((student, exercise))
    return final if final and final.applied else None


def _who(match, name: str) -> str:
    """The roster's name and id for a submission name; "not on the roster" when a roster matches no one."""
    if match is None:
        return ""
    entry = match.entry(name)
    return entry.label() if entry else ("matches several students on the roster" if name in match.ambiguous
                                        else "not on the roster")


def write_feedback(gradebook: Gradebook, out: str | pathlib.Path) -> FeedbackReport:
    """One page per student and exercise, plus ``index.html`` with the class summary."""
    out = pathlib.Path(out)
    pages, sections = [], []
    late, roster = late_records(gradebook), load_roster(gradebook)
    finals = final_scores(gradebook)  # the instructor's overrides applied
    for exercise in gradebook.exercises():
        runs = list(gradebook.current_runs(exercise))
        assignment = _assignment(exercise)
        for run in runs:
            pages.append(write_page(page_path(out, exercise, run.result.student),
                                    render_run(run, assignment, late.get((run.result.student, exercise)),
                                               finals.get((run.result.student, exercise)))))
        sections.append(_section(exercise, page_title(assignment, exercise), runs, out, late, roster, finals))
    match = match_roster(roster, gradebook.students()) if roster else None
    index = write_page(out / "index.html", render_page("class_index.html", sections=sections,
                                                       students=gradebook.students(), gradebook=str(gradebook.path),
                                                       roster=roster, match=match))
    return FeedbackReport(index, pages)
