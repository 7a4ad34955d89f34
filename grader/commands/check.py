"""``grader check NOTEBOOK``: a student's self-check with the public checks, as the official run executes it."""

from __future__ import annotations

import argparse
import pathlib
import sys

from ..catalog import SpecError, UnknownExercise, load_exercise
from ..engine import grade_submission, invalid_result, resolve_data_root
from ..feedback import render_result
from ..notebook import InvalidNotebook, read_submission
from ..render import print_json, print_submission
from ..report import write_page
from .common import EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE
from reference.mnist import MnistNotFound


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="self-check a notebook with the public checks",
                       description="Run NOTEBOOK the way the official grader does (fresh sandboxed kernel) and "
                                   "score the public checks. Exit 0 if all pass, 1 if some fail, 2 if the input is "
                                   "unusable.")
    p.add_argument("notebook", type=pathlib.Path)
    p.add_argument("--exercise", help="exercise id (default: from the notebook's metadata)")
    p.add_argument("--html", type=pathlib.Path, help="where to write the HTML feedback "
                                                     "(default: NOTEBOOK with .feedback.html)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--data-root", type=pathlib.Path,
                   help="MNIST root for the MNIST exercises (default: $MNIST_ROOT, else the bundled files)")
    p.set_defaults(run=run)


def _unusable(args: argparse.Namespace, exercise: str, reason: str) -> int:
    if args.json:
        print_json(invalid_result(exercise, args.notebook.stem, reason).to_json())
    print(f"grader check: {reason}", file=sys.stderr)
    return EXIT_UNUSABLE


def run(args: argparse.Namespace) -> int:
    try:
        submission = read_submission(args.notebook)
    except InvalidNotebook as e:
        return _unusable(args, args.exercise or "", str(e))
    exercise_id = args.exercise or submission.exercise_id
    if not exercise_id:
        return _unusable(args, "", f"{args.notebook}: the notebook does not say which exercise it is; "
                                   "pass --exercise ID (see `grader exercises`)")
    try:
        exercise = load_exercise(exercise_id)
        data_root = resolve_data_root(exercise, args.data_root)
    except (UnknownExercise, SpecError, MnistNotFound) as e:
        return _unusable(args, exercise_id, str(e).strip("'\""))
    result = grade_submission(submission, exercise, student=args.notebook.stem, data_root=data_root)
    if args.json:
        print_json(result.to_json())
    else:
        print_submission(result, title=f"{exercise.spec.title} — self-check (public checks only)")
    html_path = args.html or args.notebook.with_suffix(".feedback.html")
    try:
        write_page(html_path, render_result(result, result.artifacts, exercise.spec.title, self_check=True))
        if not args.json:
            print(f"Feedback page: {html_path.resolve()}")
    except OSError as e:
        print(f"grader check: could not write {html_path}: {e.strerror}", file=sys.stderr)
    return EXIT_OK if result.all_passed else EXIT_FAILED
