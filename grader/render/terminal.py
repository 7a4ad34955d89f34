"""Terminal rendering of results: a rich table per submission, and the exercise catalogue.

Every text that comes from a check, a notebook or a file is passed as ``Text``, never as
markup, so a message such as "shapes [3, 4]" prints exactly as written.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from grader.results import Status, SubmissionResult

if TYPE_CHECKING:  # the table of exercises is the only user; the quiz commands must not load the check library
    from grader.assignments.catalog import Exercise

FAILED = "failed"  # the look of a notebook that ran but failed checks: never the green of "ok"
LOOK_STYLE = {"ok": "green", FAILED: "red", "error": "red", "timeout": "yellow", "invalid": "red"}


def _points(value: float) -> str:
    return f"{round(value, 2):g}"


def status_label(result: SubmissionResult) -> tuple[str, str]:
    """(words, look) of a result's status: "ok" only when every check passed; looks are keys of LOOK_STYLE.

    >>> from grader.results import CheckResult
    >>> status_label(SubmissionResult("x", "s", Status.OK, (CheckResult("a", False, 0, 1, "public", ""),)))
    ('ok, 1 of 1 checks failed', 'failed')
    """
    failed = sum(not c.passed for c in result.checks)
    if result.status is Status.OK and failed:
        return f"ok, {failed} of {len(result.checks)} checks failed", FAILED
    return result.status.value, result.status.value


@dataclass(frozen=True)
class Banner:
    """One problem that fails several checks (an export missing or unusable, or a run that stopped), said once."""

    text: str
    needs: str  # the export the checks need, or "*" when the notebook's run gave no values at all
    checks: tuple[str, ...]

    @property
    def mark(self) -> str:
        """What each of its checks shows instead of repeating the text."""
        what = "your notebook to run to the end" if self.needs == "*" else f"`{self.needs}`"
        return f"Needs {what} first: see the note above."

    @property
    def headline(self) -> str:
        return self.text if self.needs != "*" else f"Nothing could be checked: {self.text}"


def shared_problems(result: SubmissionResult) -> tuple[list[Banner], dict[str, Banner]]:
    """The banners for problems that fail two or more checks, and each such check's banner, by check id.

    Reads ``details["needs"]`` and ``details["problem"]`` (``grader.checks.base``); stored messages keep their text.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for check in result.checks:
        needs, problem = check.details.get("needs"), check.details.get("problem")
        if not check.passed and isinstance(needs, str) and isinstance(problem, str):
            groups.setdefault((needs, problem), []).append(check.id)
    banners = [Banner(problem, needs, tuple(ids)) for (needs, problem), ids in groups.items() if len(ids) > 1]
    return banners, {check_id: banner for banner in banners for check_id in banner.checks}


def banner_panels(banners: list[Banner]) -> Group:
    return Group(*(Panel(Text.assemble(Text(b.headline), ("\nNeeded by: ", "bold"), ", ".join(b.checks)),
                         border_style="yellow", title="Fix this first", title_align="left") for b in banners))


def _pending_row(pending) -> tuple:
    if pending.reason:
        return (Text(pending.id), Text("not here", style="dim"), f"–/{_points(pending.max_points)}",
                Text(pending.reason, style="dim"))
    return (Text(f"{pending.id} (hidden)"), Text("later", style="dim"), f"–/{_points(pending.max_points)}",
            Text(f"{pending.title}: graded by your instructor with data you cannot see.", style="dim"))


def _rows(result: SubmissionResult) -> list[tuple]:
    """(check, result, points, message) of each check and each check left for later, as the terminal shows them."""
    _, banner_of = shared_problems(result)
    rows = []
    for check in result.checks:
        mark = Text("pass", style="bold green") if check.passed else Text("FAIL", style="bold red")
        name = check.id + (" (hidden)" if check.visibility == "hidden" else "")
        message = Text(banner_of[check.id].mark, style="yellow") if check.id in banner_of else Text(check.message)
        rows.append((Text(name), mark, f"{_points(check.points)}/{_points(check.max_points)}", message))
    return rows + [_pending_row(pending) for pending in result.pending]


def submission_table(result: SubmissionResult, title: str = "") -> Table:
    table = Table(title=Text(title or f"{result.exercise}: {result.student}"), show_lines=True, expand=True)
    table.add_column("Check", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("Points", justify="right", no_wrap=True)
    table.add_column("What it found / what to do", ratio=1)
    for row in _rows(result):
        table.add_row(*row)
    return table


NARROW_COLUMNS = 72  # below it the table's message column is squeezed away: each check is a block instead


def submission_blocks(result: SubmissionResult, title: str = "") -> Group:
    """The table's rows as blocks (check, result and points on one line, the message under it), for a narrow
    terminal, where the table would drop the messages: what to do is what a student reads the self-check for."""
    blocks = [Text(title or f"{result.exercise}: {result.student}", style="bold")]
    for name, mark, points, message in _rows(result):
        blocks += [Text.assemble("\n", name, "  ", mark, f"  {points}"), Padding(message, (0, 0, 0, 2))]
    return Group(*blocks, Text(""))


def print_submission(result: SubmissionResult, console: Console | None = None, title: str = "") -> None:
    console = console or Console()
    banners, _ = shared_problems(result)
    if banners:
        console.print(banner_panels(banners))
    console.print(submission_table(result, title) if console.width >= NARROW_COLUMNS else
                  submission_blocks(result, title))
    words, look = status_label(result)
    line = Text.assemble(("Score ", "bold"), (f"{_points(result.score)}/{_points(result.max_score)}", "bold"),
                         "  status ", (words, f"bold {LOOK_STYLE[look]}"))
    hidden = sum(p.max_points for p in result.pending if not p.reason)
    if hidden:
        line.append(f"  (+{_points(hidden)} points in hidden checks, graded later)", style="dim")
    console.print(line)
    if result.note:
        console.print(Text(f"Note: {result.note}", style="dim"))
    # The run's reason is already the headline of a "*" banner; said once.
    if result.error and not any(b.needs == "*" and b.text == result.error for b in banners):
        console.print(Text(f"Note: {result.error}", style=LOOK_STYLE[look]))


def print_json(payload: dict, one_line: bool = False) -> None:
    """``payload`` as indented JSON, or on one line (a stream of results: one JSON object per line)."""
    sys.stdout.write(json.dumps(payload, indent=None if one_line else 2) + "\n")
    sys.stdout.flush()


def exercises_table(exercises: list[Exercise], calibration: dict | None = None) -> Table:
    """The catalogue; a check on data drawn from the secret also shows its stored false-fail bound."""
    from grader.grading.calibration import figure_line, read_store  # torch-free: reads the stored figures

    stored = read_store() if calibration is None else calibration
    table = Table(title="Exercises", show_lines=True)
    table.add_column("Exercise", no_wrap=True)
    table.add_column("Title")
    table.add_column("Checks (points, visibility; hidden: how often a correct solution fails)")
    table.add_column("Total", justify="right")
    for exercise in exercises:
        lines = []
        for c in exercise.checks:
            lines.append(f"{c.spec.id}: {_points(c.spec.points)} pts, {c.spec.visibility}"
                         + (f" — {c.spec.title}" if c.spec.title else ""))
            if figure := figure_line(exercise, c, stored):
                lines.append(f"  {figure}")
        table.add_row(exercise.id, Text(exercise.spec.title), Text("\n".join(lines)), _points(exercise.spec.max_points))
    return table
