"""Terminal rendering of results: a rich table per submission, and the exercise catalogue."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.results import Status, SubmissionResult

if TYPE_CHECKING:  # the table of exercises is the only user; the quiz commands must not load the check library
    from grader.assignments.catalog import Exercise

STATUS_STYLE = {Status.OK: "green", Status.ERROR: "red", Status.TIMEOUT: "yellow", Status.INVALID: "red"}


def _points(value: float) -> str:
    return f"{round(value, 2):g}"


def submission_table(result: SubmissionResult, title: str = "") -> Table:
    table = Table(title=title or f"{result.exercise}: {result.student}", show_lines=True, expand=True)
    table.add_column("Check", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("Points", justify="right", no_wrap=True)
    table.add_column("What it found / what to do", ratio=1)
    for check in result.checks:
        mark = Text("pass", style="bold green") if check.passed else Text("FAIL", style="bold red")
        name = check.id + (" (hidden)" if check.visibility == "hidden" else "")
        table.add_row(name, mark, f"{_points(check.points)}/{_points(check.max_points)}", check.message)
    for pending in result.pending:
        table.add_row(f"{pending.id} (hidden)", Text("later", style="dim"), f"–/{_points(pending.max_points)}",
                      Text(f"{pending.title}: graded by your instructor with data you cannot see.", style="dim"))
    return table


def print_submission(result: SubmissionResult, console: Console | None = None, title: str = "") -> None:
    console = console or Console()
    console.print(submission_table(result, title))
    style = STATUS_STYLE[result.status]
    line = Text.assemble(("Score ", "bold"), (f"{_points(result.score)}/{_points(result.max_score)}", "bold"),
                         "  status ", (result.status.value, f"bold {style}"))
    if result.pending:
        extra = sum(p.max_points for p in result.pending)
        line.append(f"  (+{_points(extra)} points in hidden checks, graded later)", style="dim")
    console.print(line)
    if result.error:
        console.print(Text(f"Note: {result.error}", style=style))


def print_json(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")


def exercises_table(exercises: list[Exercise]) -> Table:
    table = Table(title="Exercises", show_lines=True)
    table.add_column("Exercise", no_wrap=True)
    table.add_column("Title")
    table.add_column("Checks (points, visibility)")
    table.add_column("Total", justify="right")
    for exercise in exercises:
        checks = "\n".join(f"{c.spec.id}: {_points(c.spec.points)} pts, {c.spec.visibility}"
                           + (f" — {c.spec.title}" if c.spec.title else "") for c in exercise.checks)
        table.add_row(exercise.id, exercise.spec.title, checks, _points(exercise.spec.max_points))
    return table
