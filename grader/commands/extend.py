"""``grader extend STUDENT ASSIGNMENT --days N``: give one student more time, and apply it to their result now."""

from __future__ import annotations

import argparse
import pathlib
import sys

from grader.errors import EXIT_OK, UnknownAssignment, UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extend", help="give a student extra days for an assignment",
                       description="Record an extension in the gradebook (it takes precedence over [extensions] in "
                                   "grader.toml; --days 0 revokes one) and apply the late policy to the student's "
                                   "current result at once.")
    p.add_argument("student", help="student id, login, email or submission name")
    p.add_argument("assignment", help="exercise or quiz id")
    p.add_argument("--days", type=float, required=True, help="extra days after the due date (0 revokes)")
    p.add_argument("--gradebook", type=pathlib.Path, help="the gradebook (default: grading.gradebook in grader.toml)")
    p.set_defaults(run=run)


def resolve_student(gradebook, student: str) -> tuple[str, str, set[str]]:
    """(the key the extension is stored under, how to name the student, the names they handed in under).

    The key is the roster's student id when the roster lists them, so it holds whatever name they submit under.
    """
    from grader.commands.roster import names
    from grader.specs.paths import student_name
    from grader.specs.roster import match_roster
    from grader.store.roster import load_roster

    roster = load_roster(gradebook)
    match = match_roster(roster, [student_name(student)])
    if match.matched:
        entry = next(iter(match.matched.values()))
        handed_in = match_roster(roster, gradebook.students()).matched
        return entry.student_id, entry.label(), {n for n, e in handed_in.items() if e == entry}
    if match.ambiguous:
        entries = next(iter(match.ambiguous.values()))
        raise UserError(f"{student!r} matches {len(entries)} students on the roster ({names(entries)}): give the "
                        "student id")
    known = {name.casefold(): name for name in gradebook.students()}
    if student_name(student).casefold() in known:
        name = known[student_name(student).casefold()]
        return name, name, {name}
    where = f"not on the roster ({len(roster)} students)" if roster else "no roster imported"
    raise UserError(f"unknown student {student!r}: {where}, and no submission under that name in {gradebook.path}")


def run(args: argparse.Namespace) -> int:
    from grader.assignments.catalog import assignment_ids
    from grader.specs.config import discover, resolve_gradebook
    from grader.specs.late import extension_problem
    from grader.store.gradebook import Gradebook
    from grader.store.lateness import apply_late_policy, grant_extension, ignored_extensions, late_records

    if (problem := extension_problem(args.days)) is not None:  # before anything is stored: see MAX_EXTENSION_DAYS
        raise UserError(f"--days {problem}")
    if args.assignment not in assignment_ids():
        raise UnknownAssignment(f"unknown exercise or quiz {args.assignment!r} (known: {', '.join(assignment_ids())})",
                                args.assignment)
    config = discover(getattr(args, "config", None))
    with Gradebook.open(resolve_gradebook(args.gradebook, config), create=False) as gradebook:
        key, label, handed_in = resolve_student(gradebook, args.student)
        before = late_records(gradebook, args.assignment)
        grant_extension(gradebook, key, args.assignment, args.days)
        after = {(r.student, r.exercise): r for r in apply_late_policy(gradebook, config, args.assignment)} \
            if config else {}
        for line in ignored_extensions(gradebook):
            print(f"grader extend: {line}", file=sys.stderr)
    print(f"{label}: {args.days:g} extra day(s) for {args.assignment}, recorded in {gradebook.path}")
    terms = config.terms(args.assignment) if config else None
    if terms is None or terms.due is None:
        print(f"no due date for {args.assignment} in {config.path if config else 'grader.toml (none found)'}: "
              "it applies once one is set")
    for student in sorted(handed_in):
        record, old = after.get((student, args.assignment)), before.get((student, args.assignment))
        if record is None:
            continue
        was = f" (was {old.final_score:g}: {old.verdict()})" if old and old.final_score != record.final_score else ""
        print(f"current result ({student}): {record.verdict()}; {record.final_score:g} points after the late "
              f"penalty (raw {record.raw_score:g}){was}")
    return EXIT_OK
