"""Score a student's answers against a quiz's key: one CheckResult per question, with its explanation."""

from __future__ import annotations

import difflib
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



def answer_problems(quiz: Quiz, answers: QuizAnswers) -> list[str]:
    """What could not be scored, in the student's terms: unknown ids, odd values, unanswered questions."""
    problems = list(answers.notes)
    for qid in answers.answers:
        if quiz.question(str(qid)) is None:
            close = difflib.get_close_matches(str(qid), [q.id for q in quiz.questions], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{qid!r} is not a question of quiz {quiz.id!r}{hint}; that answer was not scored")
    for q in quiz.questions:
        if q.id in answers.answers and _label(q, answers.answers[q.id]) is None:
            problems.append(f"{q.id}: {answers.answers[q.id]!r} is not an option (options: {', '.join(q.labels)})")
    missing = [q.id for q in quiz.questions if q.id not in answers.answers]
    if missing:
        problems.append(f"no answer for {', '.join(missing)}")
    return problems


def _label(question: Question, given: object) -> str | None:
    """The option label a given answer means ('b ' -> 'B'), or None."""
    if not isinstance(given, str):
        return None
    label = given.strip().upper()
    return label if label in question.labels else None


def score_quiz(quiz: Quiz, answers: QuizAnswers | Mapping, student: str) -> SubmissionResult:
    """One CheckResult per question (id = question id); pure, so batch grading can reuse it."""
    if not isinstance(answers, QuizAnswers):
        answers = QuizAnswers(dict(answers))
    reason = answers.error
    if reason is None and answers.quiz is not None and answers.quiz != quiz.id:
        reason = (f"these answers are for quiz {answers.quiz!r}, not {quiz.id!r}; "
                  f"check them with --quiz {answers.quiz}")
    known = [qid for qid in answers.answers if quiz.question(str(qid)) is not None]
    if reason is None and answers.answers and not known:
        reason = (f"none of the answered ids ({', '.join(map(str, list(answers.answers)[:5]))}) is a question of "
                  f"quiz {quiz.id!r} (its questions: {', '.join(q.id for q in quiz.questions)}); is it the right quiz?")
    if reason is not None:
        return SubmissionResult(exercise=quiz.id, student=student, status=Status.INVALID, error=reason)
    checks = tuple(_score_question(q, answers.answers) for q in quiz.questions)
    problems = answer_problems(quiz, answers)
    return SubmissionResult(exercise=quiz.id, student=student, status=Status.OK, checks=checks,
                            error="; ".join(problems) if problems else None)


def _score_question(q: Question, answers: Mapping) -> CheckResult:
    given = answers.get(q.id)
    label = _label(q, given)
    words = {"key": q.answer, "key_text": q.option_text(q.answer).rstrip("."), "explanation": q.explanation,
             "given": label or given, "given_text": q.option_text(label).rstrip(".") if label else "",
             "labels": ", ".join(q.labels)}
    if q.id not in answers:
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
