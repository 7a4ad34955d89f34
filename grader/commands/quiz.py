"""``grader quiz check ANSWERS --quiz ID`` scores a student's answers; ``grader quiz verify [ID]`` checks the keys."""

from __future__ import annotations

import argparse
import difflib
import pathlib
import sys

from grader.errors import EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE, UnknownAssignment, UserError
from grader.results import Status, SubmissionResult


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quiz", help="score quiz answers, or verify the answer keys by running their code",
                       description="Quizzes live in exercises/quizzes/<id>.toml.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="score an answers file (.toml, .json or .ipynb)",
                               description="Score ANSWERS against the quiz key. Exit 0 if every answer is "
                                           "right, 1 if some are wrong or missing, 2 if the file is unusable.")
    check.add_argument("answers", type=pathlib.Path, help="the answers file: .toml, .json or .ipynb")
    check.add_argument("--quiz", help="quiz id (default: the `quiz` named in the answers file)")
    check.add_argument("--html", type=pathlib.Path, help="where to write the HTML page "
                                                         "(default: ANSWERS with .quiz.html)")
    check.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    check.set_defaults(run=run_check, error_json=error_json)
    verify = actions.add_parser("verify", help="run each question's code and compare it with the key",
                                description="Run the code of every question in a sandbox and compare what it "
                                            "prints, warns and raises with the key's claims. Exit 1 on any "
                                            "mismatch, 2 if a quiz cannot be loaded.")
    verify.add_argument("quiz", nargs="?", help="quiz id or path to a quiz .toml (default: every quiz)")
    verify.set_defaults(run=run_verify)


# --- check -------------------------------------------------------------------------


def error_json(args: argparse.Namespace, error: UserError) -> dict:
    """An unusable answers file still answers in the ``--json`` contract: status ``invalid`` and the reason."""
    return SubmissionResult.invalid(error.assignment or args.quiz or "", args.answers.stem, str(error)).to_json()


def run_check(args: argparse.Namespace) -> int:
    from grader.quizzes.answers import read_answers
    from grader.quizzes.model import load_quiz, quiz_ids
    from grader.quizzes.scoring import answer_problems, same_id, score_quiz
    from grader.render.html import write_page
    from grader.render.quiz import print_scores, quiz_page
    from grader.render.terminal import print_json
    from grader.store.outputs import OutputError, check_output

    html_path = args.html or args.answers.with_suffix(".quiz.html")
    check_output(html_path, "--html", {"the answers file": args.answers})
    answers = read_answers(args.answers)
    named = (args.quiz or answers.quiz or "").strip()  # as written: "Convergence" names the quiz convergence
    quiz_id = next((q for q in quiz_ids() if same_id(named, q)), named)
    if quiz_id not in quiz_ids() and named and not args.quiz:
        # The file's own `quiz` line misspelt ("lr-scheduler"): the one quiz it is close to, as a batch scores it,
        # which the scorer's note then names.
        close = difflib.get_close_matches(named.casefold(), quiz_ids(), n=1, cutoff=0.8)
        quiz_id = close[0] if close else quiz_id
    if not quiz_id:
        raise UserError(answers.error or f"{args.answers}: the file does not say which quiz it answers; pass "
                                         f"--quiz ID (quizzes: {', '.join(quiz_ids())})")
    quiz = load_quiz(quiz_id)
    result = score_quiz(quiz, answers, student=args.answers.stem, quizzes=quiz_ids())
    if result.status is Status.INVALID:  # malformed file, or answers for another quiz
        raise UserError(result.error, assignment=quiz.id)
    problems = answer_problems(quiz, answers)
    if args.json:
        print_json(result.to_json())
    else:
        print_scores(result, quiz, problems)
    try:
        write_page(html_path, quiz_page(result, quiz, problems))
        if not args.json:
            print(f"Feedback page: {html_path.resolve()}")
    except OutputError as e:  # the scores are the answer: the exit code stays their verdict
        print(f"grader quiz check: {e}", file=sys.stderr)
    return EXIT_OK if result.all_passed else EXIT_FAILED


# --- verify ------------------------------------------------------------------------


def _quizzes_to_verify(target: str | None) -> list:
    from grader.quizzes.model import load_quiz, parse_quiz, quiz_ids

    if target and target.endswith(".toml"):
        path = pathlib.Path(target)
        if not path.is_file():
            raise UnknownAssignment(f"{path}: no such file")
        return [parse_quiz(path)]
    return [load_quiz(quiz_id) for quiz_id in ([target] if target else quiz_ids())]


def run_verify(args: argparse.Namespace) -> int:
    from grader.quizzes.verify import MISMATCH, verify_quizzes
    from grader.render.quiz import print_verification

    quizzes = _quizzes_to_verify(args.quiz)
    if not quizzes:
        raise UserError("no quizzes found", exit_code=EXIT_UNUSABLE)
    results = verify_quizzes(quizzes)
    print_verification(results)
    return EXIT_FAILED if any(r.status == MISMATCH for r in results) else EXIT_OK
