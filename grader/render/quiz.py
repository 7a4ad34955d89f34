"""Quiz results in the terminal and as an HTML page, and the report of ``grader quiz verify``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.quizzes.model import Quiz
from grader.quizzes.verify import MISMATCH, NOT_CHECKABLE, VERIFIED, VerifyResult
from grader.render.html import environment
from grader.results import SubmissionResult

OUTCOME_STYLE = {"right": ("right", "bold green"), "wrong": ("WRONG", "bold red"),
                 "missing": ("no answer", "bold yellow"), "no-such-option": ("no such option", "bold red")}
VERIFY_STYLE = {VERIFIED: "bold green", MISMATCH: "bold red", NOT_CHECKABLE: "dim"}


def print_scores(result: SubmissionResult, quiz: Quiz, problems: list[str], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=Text(f"{quiz.title} — {result.student}"), expand=False)
    table.add_column("Question", no_wrap=True)
    table.add_column("Your answer", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("Points", justify="right", no_wrap=True)
    for check in result.checks:
        label, style = OUTCOME_STYLE[check.details["outcome"]]
        table.add_row(Text(check.id), Text(check.details["given"] or "–"), Text(label, style=style),
                      f"{check.points:g}/{check.max_points:g}")
    console.print(table)
    # Explanations under the table, where they have the whole width: only for what was not right.
    for check in result.checks:
        if not check.passed:
            console.print(Text.assemble((check.id, "bold"), ": ", check.message))
            console.print()
    console.print(Text.assemble(("Score ", "bold"), (f"{result.score:g}/{result.max_score:g}", "bold"),
                                "  status ", (result.status.value, "bold green")))
    for problem in problems:
        console.print(Text(f"Not scored: {problem}", style="yellow"))
    if result.note:
        console.print(Text(f"Note: {result.note}", style="dim"))


def quiz_page(result: SubmissionResult, quiz: Quiz, problems: list[str]) -> str:
    """The self-contained HTML page for one scored answers file."""
    questions = {q.id: q for q in quiz.questions}
    return environment().get_template("quiz.html").render(result=result, quiz=quiz, questions=questions,
                                                          problems=problems)


def print_verification(results: list[VerifyResult], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title="Answer keys checked by running their code", show_lines=True)
    table.add_column("Question", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("The key's claim, or why it cannot be checked by running code")
    for r in results:
        table.add_row(f"{r.quiz}\n{r.question}", Text(r.status, style=VERIFY_STYLE[r.status]),
                      r.detail if r.status == NOT_CHECKABLE else r.claim)
    console.print(table)
    # Mismatches in full width below the table: what was claimed, and what the code really did.
    for r in results:
        if r.status == MISMATCH:
            console.print(Text.assemble((f"{r.quiz}/{r.question}", "bold red"), f": {r.claim}\n",
                                        ("  Mismatch: ", "bold"), f"{r.detail}\n", ("  It really ", "bold"), r.did))
            console.print()
    counts = {status: sum(r.status == status for r in results) for status in VERIFY_STYLE}
    questions = {status: len({(r.quiz, r.question) for r in results if r.status == status}) for status in VERIFY_STYLE}
    console.print(Text.assemble(
        (f"{counts[VERIFIED]} claim(s) verified", "bold green"), f" ({questions[VERIFIED]} question(s)), ",
        (f"{counts[MISMATCH]} mismatch(es)", "bold red" if counts[MISMATCH] else "bold"),
        f", {questions[NOT_CHECKABLE]} question(s) not checkable by running code"))
