"""``grader export --gradebook PATH --format csv|gradescope [--out PATH]``."""

from __future__ import annotations

import argparse
import pathlib
import sys

from grader.errors import EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export grades as CSV or Gradescope results.json",
                       description="csv: one row per student with score, max and status per exercise (to stdout "
                                   "without --out). gradescope: <out>/<student>/results.json for every student.")
    p.add_argument("--gradebook", type=pathlib.Path, required=True)
    p.add_argument("--format", choices=("csv", "gradescope"), required=True)
    p.add_argument("--out", type=pathlib.Path)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from grader.render.html import write_page
    from grader.store.gradebook import Gradebook
    from grader.store.lms import csv_table, write_gradescope

    with Gradebook.open(args.gradebook, create=False) as gradebook:
        if args.format == "csv":
            table = csv_table(gradebook)
            if args.out is None:
                sys.stdout.write(table)
            else:
                write_page(args.out, table)
                print(f"wrote {args.out.resolve()}")
        else:
            out = args.out or pathlib.Path("gradescope")
            written = write_gradescope(gradebook, out)
            print(f"wrote {len(written)} results.json files under {out.resolve()}")
    return EXIT_OK
