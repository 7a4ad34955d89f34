"""Verify quiz keys by running their code in the sandbox and comparing what it did with what the key claims.

``grader.kernel.quiz_runner`` runs the code and returns what it did; ``compare`` turns an
expectation and an outcome into the list of differences; ``key_problems`` checks the key
itself against the run: a claim that names an option ("key B: ...", "against option A: ...")
must agree with the ``answer``, and when what the code printed is exactly what one option
says, that option must be the key. ``verify_quizzes`` returns one ``VerifyResult`` per run,
plus one per question that has nothing to run. A run that times out or crashes is a mismatch
with its reason.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from grader.kernel.limits import Limits
from grader.kernel.quiz_runner import SnippetOutcome, printed_lines, run_many, shorten
from grader.quizzes.model import CodeRun, Expectation, Question, Quiz

# The notebooks' limits (memory, processes, file size, no network, unprivileged user), with a
# per-run timeout that suits a snippet rather than a whole notebook.
QUIZ_LIMITS = Limits(cell_timeout_s=60.0, total_timeout_s=60.0)
VERIFIED, MISMATCH, NOT_CHECKABLE = "verified", "mismatch", "not checkable"
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)\b")
# "key B: ...", "key C's fix: ..." back an option; "against option A: ..." argues against one.
CLAIMED_OPTION = re.compile(r"^\s*(?P<against>(?i:against)\s+)?(?:(?i:the)\s+)?(?i:key|option)\s+(?P<label>[A-Z])\b")
# A value an option may quote: a number (not a digit inside a name, nor a range's dash) or a boolean.
VALUE = re.compile(r"(?<![\w.])(?:-(?=\d))?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.]*[A-Za-z_])|\b(?:True|False)\b")


@dataclass(frozen=True)
class VerifyResult:
    quiz: str
    question: str
    status: str  # VERIFIED, MISMATCH or NOT_CHECKABLE
    claim: str  # the key's claim that was checked, or the question's prompt
    detail: str  # mismatch: what differs; not checkable: why; verified: ""
    did: str = ""  # what the code really did
    seconds: float = 0.0


def compare(expect: Expectation, outcome: SnippetOutcome) -> list[str]:
    """The differences between what the key claims and what the code did; empty when the claim holds.

    >>> compare(Expectation("prints 2", stdout="2"), SnippetOutcome(stdout="2  \\n\\n"))
    []
    >>> compare(Expectation("lr", stdout_lines_approx=(0.1, 0.05)), SnippetOutcome(stdout="lr 0.1\\nlr 0.0500001\\n"))
    ['line 2: expected 0.05, printed 0.0500001']
    """
    if outcome.failure:
        return [outcome.failure]
    problems = []
    if expect.stdout is not None and printed_lines(outcome.stdout) != printed_lines(expect.stdout):
        problems.append(f"expected to print {' | '.join(printed_lines(expect.stdout)) or 'nothing'}")
    if expect.stdout_lines_approx is not None:
        problems += _compare_numbers(expect, printed_lines(outcome.stdout))
    if expect.warning is not None and not any(expect.warning in w for w in outcome.warnings):
        problems.append(f"expected a warning containing {expect.warning!r}")
    if expect.no_warning is True and outcome.warnings:
        problems.append("expected no warning at all")
    elif isinstance(expect.no_warning, str) and any(expect.no_warning in w for w in outcome.warnings):
        problems.append(f"expected no warning containing {expect.no_warning!r}")
    if expect.exception is not None and expect.exception not in outcome.exception_bases:
        problems.append(f"expected {expect.exception} to be raised")
    elif expect.exception is None and outcome.exception:
        problems.append(f"raised {outcome.exception}: {shorten(outcome.exception_message)}")
    return problems


def _compare_numbers(expect: Expectation, lines: list[str]) -> list[str]:
    found = [(line, NUMBER.findall(line)) for line in lines if line.strip()]
    numbers = [float(nums[-1]) for _, nums in found if nums]
    wanted = expect.stdout_lines_approx
    if len(numbers) != len(wanted) or len(numbers) != len(found):
        return [f"expected {len(wanted)} printed line(s) ending in the numbers {', '.join(f'{v:g}' for v in wanted)}"]
    return [f"line {i}: expected {want:g}, printed {got:g}"
            for i, (want, got) in enumerate(zip(wanted, numbers), start=1)
            if not math.isclose(want, got, rel_tol=expect.tolerance, abs_tol=1e-12)]


def _values(text: str) -> list[str]:
    return VALUE.findall(text)


def _same(printed: str, quoted: str) -> bool:
    """A printed value is an option's, as rounded to the option's digits (0.0794 for 0.079389, not 0.1 for 0.05)."""
    if quoted in ("True", "False") or printed in ("True", "False"):
        return printed == quoted
    decimals = len(quoted.split(".")[1]) if "." in quoted and "e" not in quoted.lower() else 0
    gap = abs(float(printed) - float(quoted))
    return gap < 0.5 * 10 ** -decimals and gap <= 0.01 * abs(float(quoted)) + 1e-12


def shown_by(question: Question, stdout: str) -> list[str]:
    """The options that quote exactly what the code printed: all its values, or the last value of every line.

    >>> q = Question("q", "", (("A", "It prints 0.05, 0.025"), ("B", "It prints 0.1, 0.05")), "A", "")
    >>> shown_by(q, "epoch 1: lr 0.1000\\nepoch 2: lr 0.0500\\n")
    ['B']
    """
    lines = [line for line in printed_lines(stdout) if line.strip()]
    readings = [_values(stdout)]
    if lines and all(_values(line) for line in lines):
        readings.append([_values(line)[-1] for line in lines])
    matches = []
    for label, text in question.options:
        quoted = _values(text)
        if quoted and any(len(r) == len(quoted) and all(map(_same, r, quoted)) for r in readings):
            matches.append(label)
    return matches


def key_problems(question: Question, run: CodeRun, outcome: SnippetOutcome) -> list[str]:
    """Where the key (``answer``) disagrees with the run's own claim, or with what the run printed."""
    problems, claimed = [], CLAIMED_OPTION.match(run.expect.claim)
    key = question.answer
    if claimed and claimed["label"] not in question.labels:
        problems.append(f"the claim names option {claimed['label']}, which the question does not have")
    elif claimed and claimed["against"] and claimed["label"] == key:
        problems.append(f"the claim argues against option {key}, but {key} is the key")
    elif claimed and not claimed["against"] and claimed["label"] != key:
        problems.append(f"the claim backs option {claimed['label']}, but the key is {key}")
    if (claimed is None or not claimed["against"]) and not outcome.failure:
        shown = shown_by(question, outcome.stdout)
        if shown and key not in shown:
            printed = " | ".join(line for line in printed_lines(outcome.stdout) if line.strip())
            says = f"option {shown[0]} says" if len(shown) == 1 else f"options {', '.join(shown)} say"
            problems.append(f"the code prints {printed}, which is what {says}, but the key is {key}")
    return problems


def verify_quizzes(quizzes: list[Quiz], limits: Limits = QUIZ_LIMITS) -> list[VerifyResult]:
    """One result per run of every question, in quiz order; questions without runs are 'not checkable'.

    All runs share one sandboxed runner (torch is imported once), each in a process of its own.
    """
    jobs = [run for quiz in quizzes for q in quiz.questions for run in q.runs]
    outcomes = iter(run_many([run.code for run in jobs], limits) if jobs else [])
    results = []
    for quiz in quizzes:
        for q in quiz.questions:
            if not q.runs:
                results.append(VerifyResult(quiz=quiz.id, question=q.id, status=NOT_CHECKABLE,
                                            claim=shorten(q.prompt, 100), detail=q.unchecked))
            for run in q.runs:
                outcome = next(outcomes)
                problems = compare(run.expect, outcome) + key_problems(q, run, outcome)
                results.append(VerifyResult(
                    quiz=quiz.id, question=q.id, status=MISMATCH if problems else VERIFIED, claim=run.expect.claim,
                    detail="; ".join(problems), did=outcome.describe(), seconds=round(outcome.seconds, 2)))
    return results

