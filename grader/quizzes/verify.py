"""Verify quiz keys by running their code in the sandbox and comparing what it did with what the key claims.

``grader.kernel.quiz_runner`` runs the code and returns what it did; ``compare`` turns an
expectation and an outcome into the list of differences; ``verify_quizzes`` returns one
``VerifyResult`` per run, plus one per question that has nothing to run. A run that times
out or crashes is a mismatch with its reason.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from grader.kernel.limits import Limits
from grader.kernel.quiz_runner import SnippetOutcome, printed_lines, run_many, shorten
from grader.quizzes.model import Expectation, Quiz

# The notebooks' limits (memory, processes, file size, no network, unprivileged user), with a
# per-run timeout that suits a snippet rather than a whole notebook.
QUIZ_LIMITS = Limits(cell_timeout_s=60.0, total_timeout_s=60.0)
VERIFIED, MISMATCH, NOT_CHECKABLE = "verified", "mismatch", "not checkable"
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)\b")


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
                problems = compare(run.expect, outcome)
                results.append(VerifyResult(
                    quiz=quiz.id, question=q.id, status=MISMATCH if problems else VERIFIED, claim=run.expect.claim,
                    detail="; ".join(problems), did=outcome.describe(), seconds=round(outcome.seconds, 2)))
    return results

