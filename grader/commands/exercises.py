"""``grader exercises``: list the exercises with their checks and points, after validating every spec."""

from __future__ import annotations

import argparse

from grader.errors import EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exercises", help="list exercises with their checks and points",
                       description="Load and fully validate every exercise spec, then list the exercises with "
                                   "their checks and points. A spec error names the file and the field (exit 2).")
    p.add_argument("--kinds", action="store_true",
                   help="list the check kinds a spec may use, with their parameters (Markdown), instead")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.kinds:
        from grader.checks.registry import kinds_markdown

        print(kinds_markdown())
        return EXIT_OK
    from rich.console import Console

    from grader.assignments.catalog import load_all
    from grader.render.terminal import exercises_table

    Console().print(exercises_table(load_all()))
    return EXIT_OK
