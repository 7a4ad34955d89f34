"""``grader override`` records or removes a manual override; ``grader overrides`` lists them (the audit trail)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import pathlib
import sys

from grader.errors import EXIT_OK, UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("override", help="override a student's score on a check or an assignment, with a comment",
                       description="Set the points of one check (--check) or of the whole assignment for a student's "
                                   "current result. The student's page shows it with its comment, every regrade keeps "
                                   "it, and a regrade that changes the grader's result flags it for review (`grader "
                                   "overrides --review`). --remove ends it; the history keeps every step.")
    p.add_argument("student", help="the student, as the gradebook names them (or their roster id, login or email)")
    p.add_argument("assignment", help="exercise or quiz id")
    p.add_argument("--check", default="", metavar="ID", help="the check to override (default: the whole score)")
    p.add_argument("--points", type=float, help="the points to give (required unless --remove)")
    p.add_argument("--comment", help="why: shown to the student beside the points (required unless --remove)")
    p.add_argument("--by", default=None, help="who decided (default: $GRADER_USER, else the login name)")
    p.add_argument("--remove", action="store_true", help="end the override in force; the grader's result counts again")
    p.add_argument("--gradebook", type=pathlib.Path, help="default: grading.gradebook in grader.toml, else "
                                                         "gradebook.sqlite")
    p.set_defaults(run=run)

    q = sub.add_parser("overrides", help="list the overrides in force, and those to review after a regrade",
                       description="One line per override in force: the points given against the grader's, who "
                                   "gave them, when and why; REVIEW where a regrade changed the grader's result "
                                   "since. --history lists every override ever recorded or removed.")
    q.add_argument("--assignment", help="only this exercise or quiz (default: every one)")
    q.add_argument("--student", help="only this student (default: everyone)")
    q.add_argument("--review", action="store_true", help="only the overrides a regrade has flagged for review")
    q.add_argument("--history", action="store_true", help="every override recorded or removed, oldest first")
    q.add_argument("--gradebook", type=pathlib.Path, help="default: grading.gradebook in grader.toml, else "
                                                         "gradebook.sqlite")
    q.add_argument("--json", action="store_true", help="one JSON object: {overrides: [...]}")
    q.set_defaults(run=run_list)


def gradebook_path(args: argparse.Namespace) -> pathlib.Path:
    """``--gradebook``, else grader.toml's, else ``gradebook.sqlite`` (as ``grader grade`` does)."""
    from grader.specs.config import discover, resolve_gradebook

    return resolve_gradebook(args.gradebook, discover(getattr(args, "config", None)),
                             pathlib.Path("gradebook.sqlite"))


def gradebook_name(gradebook, student: str) -> str:
    """The name the gradebook knows ``student`` by: as given, case aside, or through the roster's id or email."""
    from grader.specs.paths import student_name

    names = {name.casefold(): name for name in gradebook.students()}
    for candidate in (student, student_name(student)):
        if candidate.casefold() in names:
            return names[candidate.casefold()]
    try:
        from grader.commands.extend import resolve_student

        _, _, handed_in = resolve_student(gradebook, student)
    except (ImportError, UserError):
        return student  # the store's error lists who there is
    return next(iter(handed_in)) if len(handed_in) == 1 else student


def author(args: argparse.Namespace) -> str:
    if args.by:
        return args.by
    try:
        return os.environ.get("GRADER_USER") or getpass.getuser()
    except (KeyError, OSError):  # no login name in a container without /etc/passwd entry
        return "unknown"


def run(args: argparse.Namespace) -> int:
    from grader.store.gradebook import Gradebook
    from grader.store.overrides import describe, record_override, remove_override

    if args.remove and args.points is not None:
        raise UserError("--remove ends an override: leave out --points")
    if not args.remove and args.points is None:
        raise UserError("--points is required (or --remove to end the override in force)")
    with Gradebook.open(gradebook_path(args), create=False) as gradebook:
        gradebook.ensure_writable()
        student = gradebook_name(gradebook, args.student)
        if args.remove:
            o = remove_override(gradebook, student, args.assignment, args.check, args.comment or '',
                                author(args))
            print(f"removed the override of {o.target} for {o.student}'s {o.exercise}; the grader's result "
                  f"({describe(o.graded)}) counts again; the history keeps it")
        else:
            o = record_override(gradebook, student, args.assignment, args.check, args.points, args.comment or "",
                                author(args))
            print(f"override recorded: {o.student}'s {o.exercise}, {o.target}: {points(o.points)} "
                  f"(the grader gave {describe(o.graded)}), by {o.author}: {o.comment}")
    return EXIT_OK


def points(value: float) -> str:
    """``1 point``, ``2.5 points``."""
    return f"{value:g} point" + ("" if value == 1 else "s")


def when(stamp: str) -> str:
    """``2026-12-02 06:55 UTC`` from the stored ISO time."""
    return stamp[:16].replace("T", " ") + (" UTC" if stamp.endswith("+00:00") else "")


def line(row: dict) -> str:
    """One override as ``grader overrides`` prints it."""
    target = row["check"] or "(whole score)"
    if row["action"] == "remove":
        given = "removed"
    else:
        given = f"{points(row['points'])} (graded {row['graded']})"
    text = (f"{row['student']}  {row['assignment']}  {target}  {given}  by {row['by']}, {when(row['at'])}"
            + (f": {row['comment']}" if row["comment"] else ""))
    return text + (f"  REVIEW: {row['review']}" if row.get("review") else "")


def _rows(gradebook, args: argparse.Namespace) -> list[dict]:
    from grader.store.overrides import current_overrides, describe, history, review_reason

    current = {(run.result.student, run.result.exercise): run.result
               for run in gradebook.current_runs(args.assignment)}
    chosen = (history if args.history else current_overrides)(gradebook, args.assignment, args.student)
    rows = []
    for o in chosen:
        result = current.get((o.student, o.exercise))
        review = review_reason(o, result) if o.action == "set" and result is not None and not args.history else ""
        rows.append({"student": o.student, "assignment": o.exercise, "check": o.check_id, "action": o.action,
                     "points": o.points, "graded": describe(o.graded), "by": o.author, "at": o.created_at,
                     "comment": o.comment, "review": review})
    return [r for r in rows if r["review"]] if args.review else rows


def run_list(args: argparse.Namespace) -> int:
    from grader.store.gradebook import Gradebook

    with Gradebook.open(gradebook_path(args), create=False) as gradebook:
        rows = _rows(gradebook, args)
    if args.json:
        sys.stdout.write(json.dumps({"overrides": rows}, indent=2) + "\n")
        return EXIT_OK
    what = "overrides recorded or removed" if args.history else "overrides in force"
    flagged = sum(1 for r in rows if r["review"])
    print(f"{len(rows)} {what}" + (f", {flagged} to review" if flagged else "") + (":" if rows else ""))
    for row in rows:
        print(line(row))
    return EXIT_OK


def review_lines(gradebook, assignment: str, students: set[str]) -> list[str]:
    """After a batch: the overrides on these students' results that the new results put up for review."""
    from grader.store.overrides import current_overrides, review_reason

    current = {run.result.student: run.result for run in gradebook.current_runs(assignment)}
    lines = []
    for o in current_overrides(gradebook, assignment):
        reason = review_reason(o, current[o.student]) if o.student in students and o.student in current else ""
        if reason:
            lines.append(f"Override to review: {o.student}, {o.target} ({points(o.points)} by {o.author}): {reason}; "
                         f"it stays in force until it is recorded again or removed (`grader overrides --review`)")
    return lines
