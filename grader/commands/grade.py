"""``grader grade SUBMISSIONS_DIR --exercise ID``: batch-grade a class into the gradebook."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import secrets as token
import sys
import textwrap

from grader.errors import EXIT_OK, UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grade", help="batch-grade a class folder into a gradebook",
                       description="Grade SUBMISSIONS_DIR/<student>.ipynb or SUBMISSIONS_DIR/<student>/*.ipynb with "
                                   "public and hidden checks. Resumable: unchanged submissions already graded are "
                                   "skipped. With --json, prints one JSON object per graded submission (JSON Lines).")
    p.add_argument("submissions", type=pathlib.Path)
    p.add_argument("--exercise", required=True, help="the exercise or quiz id (see `grader exercises`)")
    p.add_argument("--gradebook", type=pathlib.Path, default=pathlib.Path("gradebook.sqlite"))
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel kernels (default: cores)")
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--scheduler", help="dask scheduler address (with --executor dask); default: a local cluster")
    p.add_argument("--regrade", action="store_true",
                   help="grade again even if unchanged (also: with a secret other than the gradebook's results used)")
    p.add_argument("--secret-file", type=pathlib.Path,
                   help="instructor secret for hidden checks (default: $GRADER_SECRET, else <gradebook>.secret)")
    p.add_argument("--data-root", type=pathlib.Path,
                   help="MNIST root for the MNIST exercises (default: $MNIST_ROOT, else the bundled files)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def instructor_secret(args: argparse.Namespace) -> tuple[bytes, pathlib.Path | None]:
    """The secret, and the file it lives in (hidden from kernels); created next to the gradebook if none is given."""
    from grader.grading.secrets import load_secret

    if args.secret_file:
        return load_secret(args.secret_file), args.secret_file
    secret = load_secret()
    if secret:
        return secret, None
    path = args.gradebook.with_name(args.gradebook.name + ".secret")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        os.write(fd, token.token_hex(32).encode())
        os.close(fd)
        print(f"grader grade: created an instructor secret for hidden checks at {path}; keep it to regrade "
              "consistently", file=sys.stderr)
    return load_secret(path), path


def summary_table(results, title: str):
    from rich.markup import escape
    from rich.table import Table

    from grader.render.terminal import LOOK_STYLE, status_label

    table = Table(title=escape(title))
    for column in ("Student", "Status", "Score", "Time", "Note"):
        table.add_column(column, justify="right" if column in ("Score", "Time") else "left")
    for r in sorted(results, key=lambda r: r.student):
        words, look = status_label(r)
        note = "; ".join(text for text in (r.error, r.note) if text)
        table.add_row(escape(r.student), f"[{LOOK_STYLE[look]}]{escape(words)}[/]",
                      f"{round(r.score, 2):g}/{r.max_score:g}", f"{r.timings.get('wall', 0):.1f}s",
                      escape(textwrap.shorten(note, 120, placeholder=" …")))
    return table


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from grader.assignments.catalog import Exercise, load_assignment
    from grader.grading.batch import check_secret, grade_class
    from grader.grading.discover import discover
    from grader.grading.engine import resolve_data_root
    from grader.store.gradebook import Gradebook

    if not args.submissions.is_dir():
        raise UserError(f"{args.submissions} is not a folder of submissions")
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    assignment = load_assignment(args.exercise)
    suffixes = assignment.suffixes
    found = discover(args.submissions, assignment.id, suffixes)
    if not found:
        raise UserError(f"{args.submissions} holds no submissions: expected one {' or '.join(suffixes)} file per "
                        f"student, as {args.submissions}/<student>{suffixes[0]} or inside "
                        f"{args.submissions}/<student>/")
    data_root = resolve_data_root(assignment, args.data_root) if isinstance(assignment, Exercise) else None
    gradebook = Gradebook.open(args.gradebook)
    try:
        secret, secret_path = instructor_secret(args)
        check_secret(gradebook, secret, assignment.id, args.regrade)  # before anything is graded or shown
    except UserError:
        gradebook.close()
        raise
    # Kernels see none of it: the secret, the gradebook, and the classmates' notebooks.
    hide = tuple(str(p) for p in (secret_path, args.gradebook.resolve().parent, args.submissions.resolve()) if p)
    console = Console(stderr=args.json)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=args.json)
    with gradebook, progress:
        task = progress.add_task(f"grading {assignment.id}", total=None)

        def planned(todo: int, skipped: int) -> None:
            progress.update(task, total=todo)
            if skipped:
                progress.console.print(f"{skipped} unchanged submission(s) already graded: skipped (use --regrade)")

        def done(result) -> None:
            progress.advance(task)
            if args.json:
                sys.stdout.write(json.dumps(result.to_json()) + "\n")
                sys.stdout.flush()

        report = grade_class(found, assignment, gradebook, args.workers, args.executor, args.scheduler,
                             args.regrade, secret, hide, planned, done,
                             data_root=str(data_root) if data_root else None)
    if not args.json:
        console.print(summary_table(report.graded, f"{assignment.title}: {len(report.graded)} graded, "
                                                   f"{len(report.skipped)} skipped, {report.seconds:.1f}s"))
        console.print(f"Gradebook: {args.gradebook.resolve()}")
    # A batch that ran is a success, whatever the notebooks did: their outcomes are in the gradebook.
    return EXIT_OK
