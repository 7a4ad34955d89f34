"""Score a student's answers against a quiz's key: one CheckResult per question, with its explanation."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from grader.quizzes.answers import QuizAnswers
from grader.quizzes.model import Question, Quiz
from grader.results import CheckResult, Status, SubmissionResult

# What students read; one place, so wording stays consistent between terminal, JSON and HTML.
MSG_RIGHT = "Correct ({given}: {given_text})."
MSG_WRONG = "You chose {given} ({given_text}); the answer is {key} ({key_text}). Why: {explanation}"
MSG_MISSING = "No answer given; the answer is {key} ({key_text}). Why: {explanation}"
MSG_NO_SUCH_OPTION = ("{given!r} is not an option of this question (its options are {labels}); the answer is "
                      "{key} ({key_text}). Why: {explanation}")
# A label as students copy it from the sheet: "C.", "(B)", "b)", "Option D", "C: <the option's text>".
LABELLED = re.compile(r"^(?:option\s+)?\(?\s*([a-z])\s*(?:[.):]|\s|$)\s*(.*)$", re.IGNORECASE | re.DOTALL)


def _question_id(quiz: Quiz, given: object) -> str | None:
    """The quiz's question id a given key names, whatever its case or surrounding spaces; None if none."""
    wanted = str(given).strip().casefold()
    return next((q.id for q in quiz.questions if q.id.casefold() == wanted), None)


def _by_question(quiz: Quiz, answers: Mapping) -> tuple[dict, list, list]:
    """(question id -> the value given, keys that name no question, question ids given twice with other values)."""
    found: dict = {}
    unknown, twice = [], []
    for key, value in answers.items():
        qid = _question_id(quiz, key)
        if qid is None:
            unknown.append(key)
        elif qid in found and found[qid] != value and _label(quiz.question(qid), found[qid]) != _label(
                quiz.question(qid), value):
            twice.append(qid)
        else:
            found[qid] = value
    return found, unknown, twice


def _blank(given: object) -> bool:
    return given is None or (isinstance(given, str) and not given.strip())


def answer_problems(quiz: Quiz, answers: QuizAnswers) -> list[str]:
    """What could not be scored, in the student's terms: unknown ids, odd values, unanswered questions."""
    problems = list(answers.notes)
    given, unknown, _ = _by_question(quiz, answers.answers)
    for qid in unknown:
        close = difflib.get_close_matches(str(qid).strip().casefold(), [q.id for q in quiz.questions], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{qid!r} is not a question of quiz {quiz.id!r}{hint}; that answer was not scored")
    for q in quiz.questions:
        if q.id in given and not _blank(given[q.id]) and _label(q, given[q.id]) is None:
            problems.append(f"{q.id}: {given[q.id]!r} is not an option (options: {', '.join(q.labels)})")
    missing = [q.id for q in quiz.questions if _blank(given.get(q.id))]
    if missing:
        problems.append(f"no answer for {', '.join(missing)}")
    return problems


def _plain(text: str) -> str:
    return " ".join(text.split()).rstrip(".").casefold()


def _label(question: Question, given: object) -> str | None:
    """The option label a given answer means, or None.

    'b ', 'B.', '(B)', 'Option B', 'B: <B's text>' and B's text itself all mean B; 'B or C' and 'BC' mean none.
    """
    if isinstance(given, (int, float)) and not isinstance(given, bool):
        given = repr(given)  # a number written unquoted, where an option is that number: 0.05 = "0.05"
    if not isinstance(given, str):
        return None
    text = given.strip()
    if text.upper() in question.labels:
        return text.upper()
    by_text = [label for label, option in question.options if _plain(option) == _plain(text)]
    if len(by_text) == 1:
        return by_text[0]
    labelled = LABELLED.match(text)
    if labelled and labelled[1].upper() in question.labels:
        label, rest = labelled[1].upper(), labelled[2]
        if not rest.strip() or _plain(rest) == _plain(question.option_text(label)):
            return label
    return None


def score_quiz(quiz: Quiz, answers: QuizAnswers | Mapping, student: str) -> SubmissionResult:
    """One CheckResult per question (id = question id); pure, so batch grading can reuse it."""
    if not isinstance(answers, QuizAnswers):
        answers = QuizAnswers(dict(answers))
    reason = answers.error
    if reason is None and answers.quiz is not None and answers.quiz.strip().casefold() != quiz.id.casefold():
        reason = (f"these answers are for quiz {answers.quiz!r}, not {quiz.id!r}; "
                  f"check them with --quiz {answers.quiz}")
    given, _, twice = _by_question(quiz, answers.answers)
    if reason is None and twice:
        reason = (f"{', '.join(dict.fromkeys(twice))} is answered twice, with different answers (the ids differ only "
                  "in case or spaces); give each question one answer")
    if reason is None and answers.answers and not given:
        reason = (f"none of the answered ids ({', '.join(map(str, list(answers.answers)[:5]))}) is a question of "
                  f"quiz {quiz.id!r} (its questions: {', '.join(q.id for q in quiz.questions)}); is it the right quiz?")
    if reason is not None:
        return SubmissionResult(exercise=quiz.id, student=student, status=Status.INVALID, error=reason)
    checks = tuple(_score_question(q, given) for q in quiz.questions)
    problems = answer_problems(quiz, answers)
    return SubmissionResult(exercise=quiz.id, student=student, status=Status.OK, checks=checks,
                            error="; ".join(problems) if problems else None)


def _score_question(q: Question, answers: Mapping) -> CheckResult:
    given = answers.get(q.id)
    label = _label(q, given)
    words = {"key": q.answer, "key_text": q.option_text(q.answer).rstrip("."), "explanation": q.explanation,
             "given": label or given, "given_text": q.option_text(label).rstrip(".") if label else "",
             "labels": ", ".join(q.labels)}
    if _blank(given):
        outcome, message = "missing", MSG_MISSING.format(**words)
    elif label is None:
        outcome, message = "no-such-option", MSG_NO_SUCH_OPTION.format(**words)
    elif label == q.answer:
        outcome, message = "right", MSG_RIGHT.format(**words)
    else:
        outcome, message = "wrong", MSG_WRONG.format(**words)
    right = outcome == "right"
    return CheckResult(id=q.id, passed=right, points=q.points if right else 0.0, max_points=q.points,
                       visibility="public", message=message, title=q.prompt.splitlines()[0],
                       details={"given": label or (None if given is None else str(given)), "key": q.answer,
                                "outcome": outcome})
