"""``grader status``: who failed what, from the gradebook's current results (each student's latest run)."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from grader.errors import EXIT_OK, UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="list who failed what in the gradebook's current results",
                       description="One line per student and assignment: status, score (overrides applied) and the "
                                   "checks that failed. --check ID shows that check for everyone; --failed keeps "
                                   "only the students who failed it (or any check, or whose notebook did not run).")
    p.add_argument("--assignment", help="only this exercise or quiz (default: every graded one)")
    p.add_argument("--check", metavar="ID",
                   help="only this check: its result and message per student (default: one line per student "
                        "and assignment)")
    p.add_argument("--failed", action="store_true", help="only students who failed (the check, or anything)")
    p.add_argument("--student", help="only this student (default: everyone)")
    p.add_argument("--gradebook", type=pathlib.Path, help="default: grading.gradebook in grader.toml, else "
                                                         "gradebook.sqlite")
    p.add_argument("--json", action="store_true", help="one JSON object: {rows: [...]}")
    p.set_defaults(run=run)


def _failed_checks(result) -> list[str]:
    return [c.id for c in result.checks if not c.passed]


def assignment_rows(runs: list, finals: dict, failed_only: bool, late: dict | None = None) -> list[dict]:
    """Per student: status, scores and the failed checks; a run that did not finish counts as failed.

    ``score`` is the one that counts, as the CSV gives it: overrides applied (``finals``), then the late penalty
    (``late``, (student, assignment) -> its record). ``max_score`` is the assignment's full points, as the CSV counts
    them: an unusable submission scored 0/0 still counts against them.
    """
    from grader.render.terminal import status_label
    from grader.store.lms import final_score
    from grader.store.overrides import full_points

    full = full_points(runs[0].result.exercise, runs) if runs else 0.0
    rows = []
    for run in runs:
        result = run.result
        final = finals[(result.student, result.exercise)]
        failed = _failed_checks(result)
        if failed_only and not failed and result.status.value == "ok":
            continue
        record = (late or {}).get((result.student, result.exercise))
        rows.append({"student": result.student, "assignment": result.exercise, "status": status_label(result)[0],
                     "score": final_score(run, record, final), "raw_score": result.score, "max_score": full,
                     "failed": failed, "error": result.error or "", "overrides": len(final.applied),
                     "late_penalty": float(record.percent) if record is not None else 0.0,
                     "overridden_score": final.score if final.applied else None})
    return rows


def check_rows(runs: list, check_id: str, failed_only: bool) -> list[dict]:
    """Per student: one check's outcome; a result without that check (the notebook did not run) counts as failed."""
    rows = []
    for run in runs:
        result = run.result
        check = next((c for c in result.checks if c.id == check_id), None)
        passed = bool(check and check.passed)
        if failed_only and passed:
            continue
        message = check.message if check else f"no result: the run ended as {result.status.value} ({result.error})"
        rows.append({"student": result.student, "assignment": result.exercise, "check": check_id, "passed": passed,
                     "points": check.points if check else 0.0, "max_points": check.max_points if check else None,
                     "message": message})
    return rows


def _line(row: dict, width: int, status_width: int) -> str:
    if "check" in row:
        points = f"{row['points']:g}/{row['max_points']:g}" if row["max_points"] is not None else "-"
        verdict = "pass" if row["passed"] else "FAIL"
        return f"  {row['student']:<{width}}  {verdict}  {points}  {row['message']}"
    score = f"{row['score']:g}/{row['max_score']:g}"
    said = [f"override {row['overridden_score']:g}" if row["overrides"] else "",
            f"late -{row['late_penalty']:g}%" if row.get("late_penalty") else ""]
    if any(said):
        score += f" ({'; '.join(filter(None, said))}; graded {row['raw_score']:g})"
    detail = "; ".join(filter(None, [f"failed: {', '.join(row['failed'])}" if row["failed"] else "", row["error"]]))
    return f"  {row['student']:<{width}}  {row['status']:<{status_width}}  {score}" + (f"  {detail}" if detail else "")


def _check_assignments(gradebook, check_id: str, assignments: list[str]) -> list[str]:
    """The assignments among ``assignments`` whose results have the check; an error naming the checks otherwise."""
    having = [a for a in assignments
              if any(c.id == check_id for run in gradebook.current_runs(a) for c in run.result.checks)]
    if having:
        return having
    known = sorted({c.id for a in assignments for run in gradebook.current_runs(a) for c in run.result.checks})
    raise UserError(f"no result in {gradebook.path} has a check {check_id!r}"
                    + (f" in {assignments[0]}" if len(assignments) == 1 else "")
                    + f"; checks graded: {', '.join(known) or 'none'}")


def run(args: argparse.Namespace) -> int:
    from grader.commands.override import gradebook_name, gradebook_path
    from grader.store.gradebook import Gradebook
    from grader.store.lateness import late_records
    from grader.store.overrides import final_scores

    with Gradebook.open(gradebook_path(args), create=False) as gradebook:
        assignments = gradebook.exercises()
        if args.assignment:
            if args.assignment not in assignments:
                raise UserError(f"{gradebook.path} holds no result for {args.assignment!r}; graded: "
                                f"{', '.join(assignments) or 'nothing yet'}")
            assignments = [args.assignment]
        if args.check:
            assignments = _check_assignments(gradebook, args.check, assignments)
        student = gradebook_name(gradebook, args.student) if args.student else None
        sections = []
        for assignment in assignments:
            runs = [r for r in gradebook.current_runs(assignment) if student is None or r.result.student == student]
            rows = (check_rows(runs, args.check, args.failed) if args.check
                    else assignment_rows(runs, final_scores(gradebook, assignment), args.failed,
                                         late_records(gradebook, assignment)))
            sections.append((assignment, len(runs), rows))
    if args.json:
        sys.stdout.write(json.dumps({"rows": [row for _, _, rows in sections for row in rows]}, indent=2) + "\n")
        return EXIT_OK
    for assignment, count, rows in sections:
        what = f"check {args.check}" if args.check else "any check"
        if args.failed:
            print(f"{assignment}: {len(rows)} of {count} students failed {what}" + (":" if rows else ""))
        else:
            print(f"{assignment}: {count} students" + (f", check {args.check}" if args.check else "") + ":")
        width = max((len(r["student"]) for r in rows), default=0)
        status_width = max((len(r.get("status", "")) for r in rows), default=0)
        for row in rows:
            print(_line(row, width, status_width))
    if not sections:
        print(f"no results in {gradebook.path} yet")
    return EXIT_OK
