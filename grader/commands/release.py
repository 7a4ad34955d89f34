"""``grader release --out DIR``: what students get, without the solutions (see ``grader.store.release``)."""

from __future__ import annotations

import argparse
import pathlib
import sys

from grader.errors import EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("release", help="write the student package: notebooks, quizzes and a self-check wheel "
                                       "without solutions",
                       description="Write DIR/notebooks, DIR/quizzes and DIR/dist/<wheel>: the student notebooks, "
                                   "the quiz questions with an answers file each, and the self-check tool with the "
                                   "exercises and templates. No solution notebook, no reference solution an "
                                   "own-work check forbids (unless the self-check itself imports it: named on "
                                   "stderr), no tests, no secret. Students install it with one `pip install`.")
    p.add_argument("--out", type=pathlib.Path, required=True, help="a new or empty folder to write the package to")
    p.add_argument("--assignment", action="append", metavar="ID",
                   help="release only this exercise or quiz; repeat for several (default: every one)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from grader.store.release import build_release

    release = build_release(args.out, args.assignment, _course_name(args))
    plan = release.plan
    size = release.wheel.stat().st_size / 2**20
    print(f"wrote {release.out.resolve()}: {len(release.notebooks)} notebook(s), {len(release.quizzes) // 2} "
          f"quiz(zes), {release.wheel.relative_to(release.out)} ({size:.1f} MB)")
    print(f"left out: the solution notebooks, the tests, the examples; reference solutions: "
          f"{', '.join(plan.withheld) or 'none'}")
    for kept in plan.kept:
        print(f"warning: {kept.module} is in the package, although the own-work check of "
              f"{' and '.join(kept.forbidden_by)} forbids it: needed by {'; '.join(kept.needed_by)}", file=sys.stderr)
    for line in plan.unavailable:
        print(f"note: not in the student package, as it needs a reference solution: {line}", file=sys.stderr)
    return EXIT_OK


def _course_name(args: argparse.Namespace) -> str:
    """The course's name from ``grader.toml``, when there is one."""
    from grader.specs.config import discover

    config = discover(getattr(args, "config", None))
    return config.name if config else ""
