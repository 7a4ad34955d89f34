"""``grader feedback --gradebook PATH --out DIR``: per-student HTML pages and the class summary."""

from __future__ import annotations

import argparse
import pathlib

from grader.errors import EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("feedback", help="write per-student HTML feedback and a class summary",
                       description="Render one self-contained HTML page per student and exercise, and index.html "
                                   "with the class summary, from the gradebook's current results.")
    p.add_argument("--gradebook", type=pathlib.Path, required=True)
    p.add_argument("--out", type=pathlib.Path, required=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from grader.render.feedback import write_feedback
    from grader.store.gradebook import Gradebook

    with Gradebook.open(args.gradebook, create=False) as gradebook:
        report = write_feedback(gradebook, args.out)
    print(f"wrote {len(report.pages)} feedback pages and the class summary: {report.index.resolve()}")
    return EXIT_OK
