"""``python -m grader.demo``: grade the bundled example class end to end with the real CLI.

Assembles ``<out>/class/<exercise>/<student>.ipynb`` from ``examples/class.toml``, then runs
``grader grade`` per exercise, ``grader feedback`` and ``grader export``, and prints where
everything is. Each step is the command an instructor would type.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import time

from rich.console import Console

from grader.cli import main as grader
from grader.cli import single_threaded
from grader.specs.paths import REPOSITORY, solutions_root

try:
    import tomllib  # novermin - Python 3.10 has the same parser as the tomli backport, below
except ModuleNotFoundError:
    import tomli as tomllib

ROOT = REPOSITORY
MANIFEST = ROOT / "examples" / "class.toml"


def resolve(entry: str) -> pathlib.Path:
    kind, _, rest = entry.partition(":")
    if kind == "solution":
        return solutions_root() / f"{rest}.ipynb"
    if kind == "student":
        from grader.assignments.catalog import load_exercise

        return load_exercise(rest).spec.notebook_path
    return ROOT / entry


def assemble(out: pathlib.Path) -> dict[str, pathlib.Path]:
    """Copy each student's notebook into ``out/<exercise>/<student>.ipynb``; returns the class folders."""
    manifest = tomllib.loads(MANIFEST.read_text())
    folders = {}
    for exercise, students in manifest.items():
        folder = out / exercise
        folder.mkdir(parents=True, exist_ok=True)
        for student, entry in students.items():
            source = resolve(entry)
            shutil.copyfile(source, folder / f"{student}{source.suffix}")
        folders[exercise] = folder
    return folders


def run(out: pathlib.Path, workers: int) -> int:
    console = Console()
    gradebook, feedback = out / "gradebook.sqlite", out / "feedback"
    start = time.monotonic()
    for exercise, folder in assemble(out / "class").items():
        console.rule(f"grader grade {folder} --exercise {exercise}")
        code = grader(["grade", str(folder), "--exercise", exercise, "--gradebook", str(gradebook),
                       "--workers", str(workers)])
        if code != 0:
            return code
    console.rule("grader feedback / grader export")
    for args in (["feedback", "--gradebook", str(gradebook), "--out", str(feedback)],
                 ["export", "--gradebook", str(gradebook), "--format", "csv", "--out", str(out / "grades.csv")],
                 ["export", "--gradebook", str(gradebook), "--format", "gradescope", "--out", str(out / "gradescope")]):
        if grader(args) != 0:
            return 1
    console.print(f"\n[bold]Demo done in {time.monotonic() - start:.0f}s.[/bold]")
    console.print(f"  gradebook       {gradebook.resolve()}")
    console.print(f"  class summary   {(feedback / 'index.html').resolve()}")
    console.print(f"  student pages   {feedback.resolve()}/<exercise>/<student>.html")
    console.print(f"  CSV for an LMS  {(out / 'grades.csv').resolve()}")
    console.print(f"  Gradescope      {(out / 'gradescope').resolve()}/<student>/results.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/demo"))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    single_threaded()  # before numpy's import, as ``grader grade`` typed in a shell does: its workers are forked
    return run(args.out, args.workers)


if __name__ == "__main__":
    sys.exit(main())
