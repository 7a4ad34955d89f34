"""``grader calibrate``: how often a correct solution fails each hidden check over instructor secrets.

Trains the reference solutions (seconds), bounds each hidden check's false-fail probability
(``grader.grading.calibration``) and, with ``--write``, stores the figures that ``grader
exercises`` shows. Exit code 1 when a check is above the target.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from grader.errors import EXIT_OK, UserError

if TYPE_CHECKING:
    from grader.assignments.catalog import Exercise
    from grader.grading.calibration import Calibration

EXIT_ABOVE_TARGET = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="bound how often a correct solution fails each hidden check",
                       description="Train the reference solutions, bound the probability over instructor secrets "
                                   "that each fails a hidden check, and show what wrong solutions score. Exit 1 "
                                   "when a check is above the target of 1e-4.")
    p.add_argument("--exercise", action="append", metavar="ID",
                   help="only this exercise; repeat for several (default: every exercise with hidden data)")
    p.add_argument("--write", action="store_true", help="store the figures in exercises/calibration.json")
    p.add_argument("--simulate", type=int, default=0, metavar="N",
                   help="also grade each correct solution with N random secrets, by the check itself")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from grader.assignments.catalog import load_all, load_exercise
    from grader.grading import calibration as cal

    if args.simulate < 0:
        raise UserError(f"--simulate: expected a non-negative number of secrets, got {args.simulate}")
    exercises = [load_exercise(i) for i in args.exercise] if args.exercise else load_all()
    try:
        results = cal.calibrate(exercises)
    except cal.NotCalibrated as e:
        raise UserError(str(e)) from None
    if not results:
        print("No check of these exercises draws its data from the instructor secret.")
    for result in results:
        print(_block(result))
        if args.simulate:
            print(_simulated(exercises, result, args.simulate))
    if args.write:
        kept = {} if not args.exercise else cal.read_store()
        merged = {**kept, **{(c.exercise, c.check): c for c in results}}
        print(f"Stored in {cal.write_store(list(merged.values()))}")
    return EXIT_OK if all(r.within_target for r in results) else EXIT_ABOVE_TARGET


def _block(result: Calibration) -> str:
    from grader.grading.calibration import TARGET

    verdict = "within" if result.within_target else "ABOVE"
    lines = [f"{result.exercise}/{result.check}: {result.points} points, {result.rule}: a correct solution fails "
             f"with p <= {result.false_fail:.2e} ({verdict} the target {TARGET:g})"]
    lines += [f"  correct: {f.solution}, {f.model}: {f.accuracy:.2f}% expected, fails with p = {f.estimate:.2e} "
              f"(at most {f.bound:.2e})" for f in result.correct]
    lines += [f"  wrong:   {f.solution}, {f.model}: {f.accuracy:.2f}% expected, passes with p = {f.estimate:.2e}"
              for f in result.wrong]
    return "\n".join(lines)


def _simulated(exercises: list[Exercise], result: Calibration, secrets: int) -> str:
    from grader.grading import calibration as cal
    from grader.grading.calibration_solutions import SOLUTIONS

    exercise = next(e for e in exercises if e.id == result.exercise)
    check = next(c for c in exercise.checks if c.spec.id == result.check)
    lines = [f"  simulated: {solution.name} failed {cal.simulate(exercise, check, solution, secrets)} of {secrets} "
             "secrets" for solution in SOLUTIONS[exercise.id] if solution.correct]
    return "\n".join(lines)
