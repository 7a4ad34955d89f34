"""``grader feedback --gradebook PATH --out DIR``: per-student HTML pages and the class summary."""

from __future__ import annotations

import argparse
import pathlib
import sys

from grader.errors import EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("feedback", help="write per-student HTML feedback and a class summary",
                       description="Render one self-contained HTML page per student and exercise, and index.html "
                                   "with the class summary, from the gradebook's current results.")
    p.add_argument("--gradebook", type=pathlib.Path, help="the gradebook (default: grading.gradebook in grader.toml)")
    p.add_argument("--out", type=pathlib.Path, required=True, help="the folder to write the pages into")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from grader.render.feedback import write_feedback
    from grader.specs.config import discover, resolve_gradebook
    from grader.store.gradebook import Gradebook
    from grader.store.lateness import apply_late_policy, ignored_extensions
    from grader.store.outputs import check_output, gradebook_files

    config = discover(getattr(args, "config", None))
    path = resolve_gradebook(args.gradebook, config)
    check_output(args.out, "--out", gradebook_files(path, config), folder=True)
    with Gradebook.open(path, create=False) as gradebook:
        if config:  # pages show the due dates, extensions and late policy grader.toml sets now
            apply_late_policy(gradebook, config)
            for line in ignored_extensions(gradebook):
                print(f"grader feedback: {line}", file=sys.stderr)
        report = write_feedback(gradebook, args.out)
    print(f"wrote {len(report.pages)} feedback pages and the class summary: {report.index.resolve()}")
    return EXIT_OK
