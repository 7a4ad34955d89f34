"""Quizzes: ``exercises/quizzes/<id>.toml``, loaded and validated.

A quiz has ``id`` (= file stem), ``title``, ``source`` and ``[[questions]]``: ``id``, ``prompt``,
``options`` (a list lettered A, B, ... or a table letter -> text), ``answer`` (the key),
``explanation`` (shown for wrong answers), ``points`` (default 1). A key that code can check has
``code`` (shown) + ``[questions.expect]``, and/or ``[[questions.runs]]`` (``code`` + ``expect``).
An ``expect`` names the key's ``claim`` and outcomes: ``stdout``, ``stdout_lines_approx``
(+ ``tolerance``), ``warning``, ``no_warning``, ``exception``; ``probe`` is code appended only when
verifying. Otherwise ``unchecked`` says why. Errors name the file and the field.
"""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass
from typing import ClassVar

from grader.errors import UnknownAssignment
from grader.specs.paths import quizzes_root
from grader.specs.toml import SpecError, Table, load_toml

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
OUTCOMES = ("stdout", "stdout_lines_approx", "warning", "no_warning", "exception")
ANSWERS_SUFFIXES = (".toml", ".json", ".ipynb")  # what a student's answers file may be


@dataclass(frozen=True)
class Expectation:
    """What running a question's code must show for its key to hold."""

    claim: str  # the key's claim this checks, in words
    stdout: str | None = None  # exact, after stripping trailing spaces per line
    stdout_lines_approx: tuple[float, ...] | None = None  # last number on each non-empty printed line
    tolerance: float = 1e-6  # relative, for stdout_lines_approx
    warning: str | None = None  # substring of "Category: message" of some raised warning
    no_warning: str | bool | None = None  # no warning containing this; True: no warning at all
    exception: str | None = None  # the type name (or a base class name) of the exception raised
    probe: str = ""  # appended to the code when verifying, never shown to students


@dataclass(frozen=True)
class CodeRun:
    code: str  # what is executed: the code plus the probe
    expect: Expectation


@dataclass(frozen=True)
class Question:
    id: str
    prompt: str
    options: tuple[tuple[str, str], ...]  # (label, text), in display order
    answer: str
    explanation: str
    points: float = 1.0
    code: str = ""
    runs: tuple[CodeRun, ...] = ()
    unchecked: str = ""  # why no run can check the key

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.options)

    def option_text(self, label: str) -> str:
        return dict(self.options).get(label, "")


@dataclass(frozen=True)
class Quiz:
    id: str
    title: str
    path: pathlib.Path
    questions: tuple[Question, ...]
    source: str = ""

    kind: ClassVar[str] = "quiz"  # an assignment scored from an answers file, without running code
    suffixes: ClassVar[tuple[str, ...]] = ANSWERS_SUFFIXES

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)

    @property
    def max_points(self) -> float:
        return sum(q.points for q in self.questions)

    @property
    def files(self) -> tuple[pathlib.Path, ...]:
        """What its results depend on, besides the grader's code: the quiz file."""
        return (self.path,)


def quiz_ids(root: pathlib.Path | None = None) -> list[str]:
    return sorted(p.stem for p in (root or quizzes_root()).glob("*.toml"))


def load_quiz(quiz_id: str, root: pathlib.Path | None = None) -> Quiz:
    """The quiz ``quiz_id``; UnknownAssignment lists the ones that exist, SpecError says what is wrong in the file."""
    root = root or quizzes_root()
    path = root / f"{quiz_id}.toml"
    if not quiz_id or "/" in quiz_id or not path.is_file():
        raise UnknownAssignment(f"unknown quiz {quiz_id!r} (known: {', '.join(quiz_ids(root)) or 'none'})", quiz_id)
    return parse_quiz(path)


def parse_quiz(path: pathlib.Path) -> Quiz:
    """Read and validate one quiz file."""
    path = pathlib.Path(path)
    top = Table(load_toml(path), path, "")
    quiz = Quiz(id=top.get("id", str), title=top.get("title", str), path=path, source=top.get("source", str, ""),
                questions=tuple(_question(t) for t in top.tables("questions")))
    top.reject_unknown()
    if quiz.id != path.stem:
        raise SpecError.at(path, "id", f"expected the file name {path.stem!r}, got {quiz.id!r}")
    if not quiz.questions:
        raise SpecError.at(path, "questions", "a quiz needs at least one [[questions]] entry")
    ids = [q.id for q in quiz.questions]
    for i in (i for i, qid in enumerate(ids) if qid in ids[:i]):
        raise SpecError.at(path, f"questions[{i}].id", f"duplicate question id {ids[i]!r}")
    return quiz


def _question(t: Table) -> Question:
    qid = t.get("id", str)
    if not ID_PATTERN.match(qid):
        raise t.fail("id", f"expected lower-case letters, digits, '-' or '_', got {qid!r}")
    options = _options(t)
    answer = t.get("answer", str)
    if answer not in dict(options):
        raise t.fail("answer", f"the key {answer!r} is not one of the options {', '.join(l for l, _ in options)}")
    code = t.get("code", str, "")
    runs = []
    if "expect" in t.data:
        if not code:
            raise t.fail("expect", "an expectation needs code to run: add `code` to the question")
        runs.append(_run(code, t.table("expect"), t, "expect"))
    for run in t.tables("runs"):
        runs.append(_run(run.get("code", str), run.table("expect"), run, "expect"))
        run.reject_unknown()
    unchecked = t.get("unchecked", str, "")
    if runs and unchecked:
        raise t.fail("unchecked", "this question has code to check its key; drop `unchecked`")
    if not runs and not unchecked.strip():
        raise t.fail("unchecked", "a question without [questions.expect] or [[questions.runs]] must say why its "
                                   "key cannot be checked by running code")
    question = Question(id=qid, prompt=t.text("prompt"), options=options, answer=answer,
                        explanation=t.text("explanation"), points=t.number("points", 1.0), code=code,
                        runs=tuple(runs), unchecked=unchecked)
    t.reject_unknown()
    return question


def _options(t: Table) -> tuple[tuple[str, str], ...]:
    raw = t.get("options", (list, dict))
    pairs = list(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", raw)) if isinstance(raw, list) else list(raw.items())
    if len(pairs) < 2 or len(raw) > 26:
        raise t.fail("options", f"expected 2 to 26 options, got {len(raw)}")
    for label, text in pairs:
        if not re.fullmatch(r"[A-Z]", label):
            raise t.fail("options", f"expected option labels A-Z, got {label!r}")
        if not isinstance(text, str) or not text.strip():
            raise t.fail(f"options.{label}", f"expected the option's text, got {text!r}")
    return tuple((label, text.strip()) for label, text in pairs)


def _run(code: str, e: Table, owner: Table, key: str) -> CodeRun:
    """One run: the code, its expectation, validated so that verify can only fail on the facts."""
    approx = e.get("stdout_lines_approx", list, None)
    if approx is not None and (not approx or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                      for v in approx)):
        raise e.fail("stdout_lines_approx", f"expected a non-empty list of numbers, got {approx!r}")
    expect = Expectation(
        claim=e.text("claim"), stdout=e.get("stdout", str, None),
        stdout_lines_approx=tuple(float(v) for v in approx) if approx is not None else None,
        tolerance=e.number("tolerance", 1e-6), warning=e.get("warning", str, None),
        no_warning=e.get("no_warning", (str, bool), None), exception=e.get("exception", str, None),
        probe=e.get("probe", str, ""))
    e.reject_unknown()
    if not any(getattr(expect, name) is not None for name in OUTCOMES):
        raise owner.fail(key, f"expected at least one outcome to check: {', '.join(OUTCOMES)}")
    if expect.stdout is not None and expect.stdout_lines_approx is not None:
        raise owner.fail(key, "give either stdout or stdout_lines_approx, not both")
    if expect.no_warning is False:
        raise owner.fail(f"{key}.no_warning", "expected a substring or true, got false")
    if expect.exception is not None and not expect.exception.isidentifier():
        raise owner.fail(f"{key}.exception", f"expected an exception type name, got {expect.exception!r}")
    source = code.rstrip("\n") + ("\n" + expect.probe if expect.probe else "") + "\n"
    try:
        compile(source, "question.py", "exec")
    except SyntaxError as err:
        raise owner.fail("code", f"not valid Python (line {err.lineno}: {err.msg})") from None
    return CodeRun(code=source, expect=expect)


