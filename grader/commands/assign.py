"""``grader assign``: regenerate the student notebooks from the solution notebooks."""

from __future__ import annotations

import argparse

from grader.errors import EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("assign", help="regenerate student notebooks from solution notebooks",
                       description="Write exercises/<id>/<id>.ipynb from reference/notebooks/<id>.ipynb: solution "
                                   "regions become TODOs, outputs are stripped, the exercise id goes into metadata.")
    p.add_argument("exercise", nargs="*", help="exercise ids (default: all with a solution notebook)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from grader.assignments.authoring import assign

    for path in assign(args.exercise or None):
        print(f"wrote {path}")
    return EXIT_OK
