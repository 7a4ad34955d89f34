"""``grader quiz check ANSWERS --quiz ID`` scores a student's answers; ``grader quiz verify [ID]`` checks the keys."""

from __future__ import annotations

import argparse
import pathlib
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..quiz_verify import MISMATCH, NOT_CHECKABLE, VERIFIED, VerifyResult, verify_quizzes
from ..quizzes import (Quiz, SpecError, UnknownQuiz, answer_problems, load_quiz, parse_quiz, quiz_ids,
                       read_answers, score_quiz)
from ..render import print_json
from ..report import environment, write_page
from ..results import Status, SubmissionResult
from .common import EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE

OUTCOME_STYLE = {"right": ("right", "bold green"), "wrong": ("WRONG", "bold red"),
                 "missing": ("no answer", "bold yellow"), "no-such-option": ("no such option", "bold red")}
VERIFY_STYLE = {VERIFIED: "bold green", MISMATCH: "bold red", NOT_CHECKABLE: "dim"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quiz", help="score quiz answers, or verify the answer keys by running their code",
                       description="Quizzes live in exercises/quizzes/<id>.toml.")
    actions = p.add_subparsers(dest="quiz_command", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="score an answers file (.toml, .json or .ipynb)",
                               description="Score ANSWERS against the quiz key. Exit 0 if every answer is "
                                           "right, 1 if some are wrong or missing, 2 if the file is unusable.")
    check.add_argument("answers", type=pathlib.Path)
    check.add_argument("--quiz", help="quiz id (default: the `quiz` named in the answers file)")
    check.add_argument("--html", type=pathlib.Path, help="where to write the HTML page "
                                                         "(default: ANSWERS with .quiz.html)")
    check.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    check.set_defaults(run=run_check)
    verify = actions.add_parser("verify", help="run each question's code and compare it with the key",
                                description="Run the code of every question in a sandbox and compare what it "
                                            "prints, warns and raises with the key's claims. Exit 1 on any "
                                            "mismatch, 2 if a quiz cannot be loaded.")
    verify.add_argument("quiz", nargs="?", help="quiz id or path to a quiz .toml (default: every quiz)")
    verify.set_defaults(run=run_verify)


# --- check -------------------------------------------------------------------------


def _unusable(args: argparse.Namespace, quiz_id: str, reason: str) -> int:
    if args.json:
        print_json(SubmissionResult(exercise=quiz_id, student=args.answers.stem, status=Status.INVALID,
                                    error=reason).to_json())
    print(f"grader quiz check: {reason}", file=sys.stderr)
    return EXIT_UNUSABLE


def run_check(args: argparse.Namespace) -> int:
    answers = read_answers(args.answers)
    quiz_id = args.quiz or answers.quiz
    if not quiz_id:
        reason = answers.error or (f"{args.answers}: the file does not say which quiz it answers; pass --quiz ID "
                                   f"(quizzes: {', '.join(quiz_ids())})")
        return _unusable(args, "", reason)
    try:
        quiz = load_quiz(quiz_id)
    except (UnknownQuiz, SpecError) as e:
        return _unusable(args, quiz_id, str(e).strip("'\""))
    result = score_quiz(quiz, answers, student=args.answers.stem)
    if result.status is not Status.OK:  # malformed file, or answers for another quiz
        return _unusable(args, quiz.id, result.error)
    problems = answer_problems(quiz, answers)
    if args.json:
        print_json(result.to_json())
    else:
        _print_scores(result, quiz, problems)
    html_path = args.html or args.answers.with_suffix(".quiz.html")
    try:
        write_page(html_path, render_quiz_page(result, quiz, problems))
        if not args.json:
            print(f"Feedback page: {html_path.resolve()}")
    except OSError as e:
        print(f"grader quiz check: could not write {html_path}: {e.strerror}", file=sys.stderr)
    return EXIT_OK if result.all_passed else EXIT_FAILED


def _print_scores(result: SubmissionResult, quiz: Quiz, problems: list[str]) -> None:
    console = Console()
    table = Table(title=f"{quiz.title} — {result.student}", expand=False)
    table.add_column("Question", no_wrap=True)
    table.add_column("Your answer", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("Points", justify="right", no_wrap=True)
    for check in result.checks:
        label, style = OUTCOME_STYLE[check.details["outcome"]]
        table.add_row(check.id, check.details["given"] or "–", Text(label, style=style),
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


def render_quiz_page(result: SubmissionResult, quiz: Quiz, problems: list[str]) -> str:
    """The self-contained HTML page for one scored answers file."""
    questions = {q.id: q for q in quiz.questions}
    return environment().get_template("quiz.html").render(result=result, quiz=quiz, questions=questions,
                                                          problems=problems)


# --- verify ------------------------------------------------------------------------


def _quizzes_to_verify(target: str | None) -> list[Quiz]:
    if target and target.endswith(".toml"):
        path = pathlib.Path(target)
        if not path.is_file():
            raise UnknownQuiz(f"{path}: no such file")
        return [parse_quiz(path)]
    return [load_quiz(quiz_id) for quiz_id in ([target] if target else quiz_ids())]


def run_verify(args: argparse.Namespace) -> int:
    try:
        quizzes = _quizzes_to_verify(args.quiz)
    except (UnknownQuiz, SpecError) as e:
        print(f"grader quiz verify: {str(e).strip(chr(39) + chr(34))}", file=sys.stderr)
        return EXIT_UNUSABLE
    if not quizzes:
        print("grader quiz verify: no quizzes found", file=sys.stderr)
        return EXIT_UNUSABLE
    results = verify_quizzes(quizzes)
    _print_verification(results)
    return EXIT_FAILED if any(r.status == MISMATCH for r in results) else EXIT_OK


def _print_verification(results: list[VerifyResult]) -> None:
    console = Console()
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
