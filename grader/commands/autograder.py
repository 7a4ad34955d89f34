"""``grader autograder --exercise ID --out autograder.zip``: a Gradescope autograder for one exercise."""

from __future__ import annotations

import argparse
import pathlib

from grader.errors import EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("autograder", help="build a Gradescope autograder zip (setup.sh + run_autograder)",
                       description="Package this grader, one exercise and an instructor secret into a zip that "
                                   "Gradescope's autograder accepts.")
    p.add_argument("--exercise", required=True)
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("autograder.zip"))
    p.add_argument("--secret-file", type=pathlib.Path, help="reuse this secret (default: a new random one)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from grader.grading.secrets import load_secret
    from grader.store.autograder import build_zip

    secret = load_secret(args.secret_file) if args.secret_file else None
    path = build_zip(args.exercise, args.out, secret)
    print(f"wrote {path.resolve()}: upload it as the autograder of a Gradescope programming assignment")
    return EXIT_OK
