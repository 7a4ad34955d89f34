"""``grader export --gradebook PATH --format csv|canvas|gradescope [--out PATH]``."""

from __future__ import annotations

import argparse
import pathlib
import sys

from grader.errors import EXIT_OK, UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export grades as CSV, a Canvas gradebook import, or Gradescope results.json",
                       description="csv: one row per student, name first: per assignment the final score (late "
                                   "penalty applied), max, status, raw score, late penalty and submission time; to "
                                   "stdout without --out. canvas: Canvas's gradebook import CSV (needs the roster). "
                                   "gradescope: <out>/<student>/results.json for every student. With grader.toml, "
                                   "its current due dates, extensions and late policy are applied first.")
    p.add_argument("--gradebook", type=pathlib.Path, help="the gradebook (default: grading.gradebook in grader.toml)")
    p.add_argument("--format", choices=("csv", "canvas", "gradescope"), required=True, help="what to write")
    p.add_argument("--out", type=pathlib.Path,
                   help="the file (csv, canvas) or folder (gradescope) to write (default: stdout for csv and "
                        "canvas, ./gradescope for gradescope)")
    p.add_argument("--assignment", metavar="ID",
                   help="gradescope: only this exercise or quiz, as one Gradescope assignment (default: all of them)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from grader.render.html import write_page
    from grader.specs.config import discover, resolve_gradebook
    from grader.store.gradebook import Gradebook
    from grader.store.lateness import apply_late_policy, ignored_extensions
    from grader.store.lms import canvas_table, csv_table, write_gradescope
    from grader.store.outputs import check_output, gradebook_files

    config = discover(getattr(args, "config", None))
    path = resolve_gradebook(args.gradebook, config)
    if args.out is not None:  # before the gradebook is opened: a mistyped --out must not replace it, or its journal
        check_output(args.out, "--out", gradebook_files(path, config), folder=args.format == "gradescope")
    with Gradebook.open(path, create=False) as gradebook:
        if config:  # grades leave with the due dates, extensions and late policy grader.toml sets now
            apply_late_policy(gradebook, config)
            for line in ignored_extensions(gradebook):
                print(f"grader export: {line}", file=sys.stderr)
        if args.assignment and args.format != "gradescope":
            raise UserError(f"--assignment goes with --format gradescope; --format {args.format} exports every "
                            "assignment")
        if args.format in ("csv", "canvas"):
            table, left_out = canvas_table(gradebook, config) if args.format == "canvas" else (csv_table(gradebook), [])
            if left_out:
                print(f"left out of the Canvas file, not on the roster: {', '.join(left_out)}", file=sys.stderr)
            if args.out is None:
                sys.stdout.write(table)
            else:
                write_page(args.out, table)
                print(f"wrote {args.out.resolve()}")
        else:
            out = args.out or pathlib.Path("gradescope")
            written = write_gradescope(gradebook, out, args.assignment)
            print(f"wrote {len(written)} results.json files under {out.resolve()}")
    return EXIT_OK
