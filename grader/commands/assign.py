"""``grader assign``: regenerate the student notebooks from the solution notebooks, once each solution scores full marks."""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import sys
from typing import TYPE_CHECKING

from grader.errors import EXIT_FAILED, EXIT_OK
from grader.results import SubmissionResult

if TYPE_CHECKING:
    from grader.kernel.factory import FactoryHandle


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("assign", help="regenerate student notebooks from solution notebooks",
                       description="Write exercises/<id>/<id>.ipynb from reference/notebooks/<id>.ipynb: solution "
                                   "regions become TODOs, outputs are stripped, the exercise id goes into metadata. "
                                   "Each solution is graded first (public and hidden checks, with a throwaway "
                                   "secret); one that does not get full marks is not released, and the exit code "
                                   "is 1.")
    p.add_argument("exercise", nargs="*", help="exercise ids (default: all with a solution notebook)")
    p.add_argument("--skip-solution-check", action="store_true",
                   help="write without grading the solutions (a quick regeneration after editing text; the MNIST "
                        "solutions take minutes to grade). Not for a release.")
    p.add_argument("--data-root", type=pathlib.Path,
                   help="MNIST root for the MNIST solutions (default: $MNIST_ROOT, else the bundled files)")
    p.set_defaults(run=run)


def grade_solution(exercise_id: str, data_root: pathlib.Path | None,
                   factory: FactoryHandle | None = None) -> SubmissionResult:
    """The solution notebook graded as the official run grades a student's, hidden checks included; its kernel forked
    from ``factory`` where one is given."""
    import secrets

    from grader.assignments.authoring import solution_path
    from grader.assignments.catalog import load_exercise
    from grader.grading.engine import grade_submission, resolve_data_root
    from grader.grading.secrets import hidden_seeds
    from grader.kernel.notebook import read_submission

    exercise = load_exercise(exercise_id)
    seeds = hidden_seeds(secrets.token_bytes(32), exercise.id)  # any secret: a solution must pass with every one
    return grade_submission(read_submission(solution_path(exercise_id)), exercise, "solution", seeds,
                            include_hidden=True, data_root=resolve_data_root(exercise, data_root), factory=factory)


def shortfalls(result: SubmissionResult) -> list[str]:
    """What keeps a solution from full marks: the run's problem and every check short of its points."""
    found = [f"the run ended with status {result.status.value}: {result.error}"] if result.error else []
    found += [f"{c.id} ({c.points:g}/{c.max_points:g}{', hidden' if c.visibility == 'hidden' else ''}): {c.message}"
              for c in result.checks if c.points < c.max_points]
    return found if found or result.checks else ["no check was scored"]


def run(args: argparse.Namespace) -> int:
    from grader.assignments.authoring import assign, render, solution_ids, solution_path
    from grader.kernel.factory import factory_for
    from grader.specs.spec import exercise_reads_mnist

    ids = args.exercise or solution_ids()
    for exercise_id in ids:
        render(exercise_id)  # authoring mistakes first: they cost nothing to find
    refused = []
    checked = [] if args.skip_solution_check else ids
    with factory_for(len(checked), any(map(exercise_reads_mnist, checked))) or contextlib.nullcontext() as factory:
        for exercise_id in checked:
            print(f"grading the solution of {exercise_id} ...", file=sys.stderr, flush=True)
            result = grade_solution(exercise_id, args.data_root, factory.handle if factory else None)
            problems = shortfalls(result)
            if problems:
                refused.append(exercise_id)
                print(f"grader assign: {exercise_id}: not released. Its solution {solution_path(exercise_id)} "
                      f"scores {result.score:g}/{result.max_score:g} on its own checks (public and hidden, with a "
                      "throwaway secret), so the grader would mark down a correct answer:", file=sys.stderr)
                for problem in problems:
                    print(f"  - {problem}", file=sys.stderr)
    released = [i for i in ids if i not in refused]
    for path in assign(released) if released else []:  # assign([]) would mean every exercise
        print(f"wrote {path}")
    return EXIT_FAILED if refused else EXIT_OK
