"""Inside a Gradescope autograder: grade the one submission it hands us, and always write a results.json.

``run_autograder`` (see ``grader.store.autograder``) runs ``python -m grader.grading.gradescope``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

from grader.assignments.catalog import load_exercise
from grader.errors import UserError
from grader.grading.discover import discover
from grader.grading.engine import grade_submission, resolve_data_root
from grader.grading.secrets import hidden_seeds, load_secret
from grader.kernel.notebook import read_submission
from grader.results import SubmissionResult
from grader.store.lms import gradescope_results


def grade(exercise_id: str, submission: pathlib.Path, secret_file: pathlib.Path) -> SubmissionResult:
    """The submission folder's notebook graded with hidden checks; unusable input is an ``invalid`` result."""
    exercise = load_exercise(exercise_id)
    notebooks = [f for f in discover(submission.parent, exercise.id) if f.student == submission.name]
    path = notebooks[0].path if notebooks else None
    if path is None:  # none, or several that the discovery rule cannot choose between (its note says which)
        reason = notebooks[0].note if notebooks and notebooks[0].note else "no .ipynb file in the submission"
        return SubmissionResult.invalid(exercise.id, "submission", reason)
    try:
        seeds = hidden_seeds(load_secret(secret_file), exercise.id)
        return grade_submission(read_submission(path), exercise, "submission", seeds, include_hidden=True,
                                hide=(str(secret_file.resolve()),), data_root=resolve_data_root(exercise, None))
    except UserError as e:
        return SubmissionResult.invalid(exercise.id, "submission", str(e))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.grading.gradescope")
    parser.add_argument("--exercise", required=True)
    parser.add_argument("--submission", type=pathlib.Path, required=True)
    parser.add_argument("--secret-file", type=pathlib.Path, required=True)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)
    result = grade(args.exercise, args.submission, args.secret_file)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(gradescope_results([result]), indent=2) + "\n")
    os.chmod(args.out, 0o644)
    return 0


if __name__ == "__main__":
    sys.exit(main())
