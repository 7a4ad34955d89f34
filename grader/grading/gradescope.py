"""Inside a Gradescope autograder: grade the one submission it hands us, and always write a results.json.

``run_autograder`` (see ``grader.store.autograder``) runs ``python -m grader.grading.gradescope``.
A submission that cannot be graded is a graded ``invalid`` result with its reason; should the grader
itself fail, the results.json says so (score 0) and the exit code is non-zero, so it never goes missing.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import traceback

from grader.assignments.catalog import load_exercise
from grader.errors import EXIT_INTERNAL, UserError
from grader.grading.discover import discover
from grader.grading.engine import grade_submission, resolve_data_root
from grader.grading.secrets import hidden_seeds, load_secret
from grader.kernel.notebook import read_submission
from grader.results import SubmissionResult
from grader.store.lms import gradescope_results


def grade(exercise_id: str, submission: pathlib.Path, secret_file: pathlib.Path,
          hide: tuple[str, ...] = ()) -> SubmissionResult:
    """The submission folder's notebook graded with hidden checks; unusable input is an ``invalid`` result.

    The kernel sees neither the secret nor the folders in ``hide`` (the autograder's source, with the solutions).
    """
    exercise = load_exercise(exercise_id)
    notebooks = [f for f in discover(submission.parent, exercise.id) if f.student == submission.name]
    path = notebooks[0].path if notebooks else None
    if path is None:  # none, or several that the discovery rule cannot choose between (its note says which)
        reason = notebooks[0].note if notebooks and notebooks[0].note else "no .ipynb file in the submission"
        return SubmissionResult.invalid(exercise.id, "submission", reason)
    try:
        seeds = hidden_seeds(load_secret(secret_file), exercise.id)
        hidden = (str(secret_file.resolve()), *(str(pathlib.Path(h).resolve()) for h in hide))
        return grade_submission(read_submission(path), exercise, "submission", seeds, include_hidden=True,
                                hide=hidden, data_root=resolve_data_root(exercise, None))
    except UserError as e:
        return SubmissionResult.invalid(exercise.id, "submission", str(e))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.grading.gradescope",
                                     description="Grade one Gradescope submission into its results.json.")
    parser.add_argument("--exercise", required=True, help="the exercise id")
    parser.add_argument("--submission", type=pathlib.Path, required=True, help="the folder Gradescope hands in")
    parser.add_argument("--secret-file", type=pathlib.Path, required=True, help="the instructor secret")
    parser.add_argument("--hide", type=pathlib.Path, action="append", default=[],
                        help="a folder the kernel must not see; repeatable (default: none besides the secret)")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="where to write results.json")
    args = parser.parse_args(argv)
    code = 0
    try:
        results = gradescope_results([grade(args.exercise, args.submission, args.secret_file, tuple(args.hide))])
    except Exception as e:  # noqa: BLE001 - a bug in the grader: the student still gets a result that says so
        traceback.print_exc()
        code = EXIT_INTERNAL
        results = {"score": 0, "output": f"The autograder itself failed ({type(e).__name__}: {e}); this is not "
                   "your notebook's fault. Your instructor can see the log and will regrade.", "tests": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    os.chmod(args.out, 0o644)
    return code


if __name__ == "__main__":
    sys.exit(main())
