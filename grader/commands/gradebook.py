"""``grader gradebook check|backup``: SQLite's integrity check, and a consistent copy made with its online backup."""

from __future__ import annotations

import argparse
import pathlib
from datetime import datetime

from grader.errors import EXIT_FAILED, EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gradebook", help="check a gradebook's integrity, or back it up",
                       description="check: run SQLite's integrity check (read-only; exit 1 when the file is "
                                   "damaged). backup: write a consistent copy with SQLite's online backup, safe "
                                   "while a batch is grading into the gradebook.")
    p.add_argument("action", choices=("check", "backup"),
                   help="check: SQLite's integrity check; backup: a consistent copy, made while others may write")
    p.add_argument("--gradebook", type=pathlib.Path, help="default: grading.gradebook in grader.toml, else "
                                                         "gradebook.sqlite")
    p.add_argument("--out", type=pathlib.Path,
                   help="backup: the copy to write (default: <gradebook>-backup-<date>-<time>.sqlite beside it)")
    p.set_defaults(run=run)


def default_out(gradebook: pathlib.Path) -> pathlib.Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return gradebook.with_name(f"{gradebook.stem}-backup-{stamp}{gradebook.suffix or '.sqlite'}")


def run(args: argparse.Namespace) -> int:
    from grader.commands.override import gradebook_path
    from grader.store.maintenance import backup, check, describe_version

    path = gradebook_path(args)
    if args.action == "check":
        health = check(path)
        if not health.ok:
            shown = "; ".join(health.problems[:3]) + (f"; and {len(health.problems) - 3} more"
                                                      if len(health.problems) > 3 else "")
            print(f"{path}: damaged, SQLite's integrity check found {len(health.problems)} problem(s): {shown}. "
                  "Restore a copy made with `grader gradebook backup`, or regrade into a new gradebook")
            return EXIT_FAILED
        print(f"{path}: ok (SQLite integrity check passed; {describe_version(health.schema_version)}, "
              f"{health.students} students, {health.runs} runs)")
        return EXIT_OK
    copy = backup(path, args.out or default_out(path))
    print(f"backed up {path} to {copy.path} ({copy.students} students, {copy.runs} runs; the copy passes SQLite's "
          "integrity check)")
    return EXIT_OK
