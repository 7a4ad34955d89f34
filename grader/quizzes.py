"""Quizzes: ``exercises/quizzes/<id>.toml`` loaded and validated, answers files read, answers scored.

A quiz has ``id`` (= file stem), ``title``, ``source`` and ``[[questions]]``: ``id``, ``prompt``,
``options`` (a list lettered A, B, ... or a table letter -> text), ``answer`` (the key),
``explanation`` (shown for wrong answers), ``points`` (default 1). A key that code can check has
``code`` (shown) + ``[questions.expect]``, and/or ``[[questions.runs]]`` (``code`` + ``expect``).
An ``expect`` names the key's ``claim`` and outcomes: ``stdout``, ``stdout_lines_approx``
(+ ``tolerance``), ``warning``, ``no_warning``, ``exception``; ``probe`` is code appended only when
verifying. Otherwise ``unchecked`` says why. Errors name the file and the field.
"""

from __future__ import annotations

import ast
import difflib
import json
import pathlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass

from .catalog import exercises_root
from .notebook import InvalidNotebook, read_submission
from .results import CheckResult, Status, SubmissionResult
from .spec import SpecError, _Table

MAX_ANSWERS_BYTES = 2**20
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
OUTCOMES = ("stdout", "stdout_lines_approx", "warning", "no_warning", "exception")
LITERAL_HINT = ("answers must be written out literally, since the grader reads them without running your notebook: "
                'answers = {"q1": "A", "q2": "C"}')

# What students read; one place, so wording stays consistent between terminal, JSON and HTML.
MSG_RIGHT = "Correct ({given}: {given_text})."
MSG_WRONG = "You chose {given} ({given_text}); the answer is {key} ({key_text}). Why: {explanation}"
MSG_MISSING = "No answer given; the answer is {key} ({key_text}). Why: {explanation}"
MSG_NO_SUCH_OPTION = ("{given!r} is not an option of this question (its options are {labels}); the answer is "
                      "{key} ({key_text}). Why: {explanation}")


class UnknownQuiz(LookupError):
    pass


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

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)


@dataclass(frozen=True)
class QuizAnswers:
    """A student's answers as read from a file; ``error`` says why the file is unusable."""

    answers: dict  # question id -> the raw value given
    path: pathlib.Path | None = None
    quiz: str | None = None  # the quiz the file says it is for
    error: str | None = None
    notes: tuple[str, ...] = ()  # harmless oddities worth telling the student


def quizzes_root() -> pathlib.Path:
    return exercises_root() / "quizzes"


def quiz_ids(root: pathlib.Path | None = None) -> list[str]:
    return sorted(p.stem for p in (root or quizzes_root()).glob("*.toml"))


def load_quiz(quiz_id: str, root: pathlib.Path | None = None) -> Quiz:
    """The quiz ``quiz_id``; UnknownQuiz lists the ones that exist, SpecError says what is wrong in the file."""
    root = root or quizzes_root()
    path = root / f"{quiz_id}.toml"
    if not quiz_id or "/" in quiz_id or not path.is_file():
        raise UnknownQuiz(f"unknown quiz {quiz_id!r} (known: {', '.join(quiz_ids(root)) or 'none'})")
    return parse_quiz(path)


def parse_quiz(path: pathlib.Path) -> Quiz:
    """Read and validate one quiz file."""
    path = pathlib.Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot be read: {getattr(e, 'strerror', None) or e}") from None
    top = _Table(data, path, "")
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


def _question(t: _Table) -> Question:
    qid = t.get("id", str)
    if not ID_PATTERN.match(qid):
        raise t._fail("id", f"expected lower-case letters, digits, '-' or '_', got {qid!r}")
    options = _options(t)
    answer = t.get("answer", str)
    if answer not in dict(options):
        raise t._fail("answer", f"the key {answer!r} is not one of the options {', '.join(l for l, _ in options)}")
    code = t.get("code", str, "")
    runs = []
    if "expect" in t.data:
        if not code:
            raise t._fail("expect", "an expectation needs code to run: add `code` to the question")
        runs.append(_run(code, t.table("expect"), t, "expect"))
    for run in t.tables("runs"):
        runs.append(_run(run.get("code", str), run.table("expect"), run, "expect"))
        run.reject_unknown()
    unchecked = t.get("unchecked", str, "")
    if runs and unchecked:
        raise t._fail("unchecked", "this question has code to check its key; drop `unchecked`")
    if not runs and not unchecked.strip():
        raise t._fail("unchecked", "a question without [questions.expect] or [[questions.runs]] must say why its "
                                   "key cannot be checked by running code")
    question = Question(id=qid, prompt=_text(t, "prompt"), options=options, answer=answer,
                        explanation=_text(t, "explanation"), points=t.number("points", 1.0), code=code,
                        runs=tuple(runs), unchecked=unchecked)
    t.reject_unknown()
    return question


def _text(t: _Table, key: str) -> str:
    value = t.get(key, str).strip()
    if not value:
        raise t._fail(key, "must not be empty")
    return value


def _options(t: _Table) -> tuple[tuple[str, str], ...]:
    raw = t.get("options", (list, dict))
    pairs = list(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", raw)) if isinstance(raw, list) else list(raw.items())
    if len(pairs) < 2 or len(raw) > 26:
        raise t._fail("options", f"expected 2 to 26 options, got {len(raw)}")
    for label, text in pairs:
        if not re.fullmatch(r"[A-Z]", label):
            raise t._fail("options", f"expected option labels A-Z, got {label!r}")
        if not isinstance(text, str) or not text.strip():
            raise t._fail(f"options.{label}", f"expected the option's text, got {text!r}")
    return tuple((label, text.strip()) for label, text in pairs)


def _run(code: str, e: _Table, owner: _Table, key: str) -> CodeRun:
    """One run: the code, its expectation, validated so that verify can only fail on the facts."""
    approx = e.get("stdout_lines_approx", list, None)
    if approx is not None and (not approx or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                      for v in approx)):
        raise e._fail("stdout_lines_approx", f"expected a non-empty list of numbers, got {approx!r}")
    expect = Expectation(
        claim=_text(e, "claim"), stdout=e.get("stdout", str, None),
        stdout_lines_approx=tuple(float(v) for v in approx) if approx is not None else None,
        tolerance=e.number("tolerance", 1e-6), warning=e.get("warning", str, None),
        no_warning=e.get("no_warning", (str, bool), None), exception=e.get("exception", str, None),
        probe=e.get("probe", str, ""))
    e.reject_unknown()
    if not any(getattr(expect, name) is not None for name in OUTCOMES):
        raise owner._fail(key, f"expected at least one outcome to check: {', '.join(OUTCOMES)}")
    if expect.stdout is not None and expect.stdout_lines_approx is not None:
        raise owner._fail(key, "give either stdout or stdout_lines_approx, not both")
    if expect.no_warning is False:
        raise owner._fail(f"{key}.no_warning", "expected a substring or true, got false")
    if expect.exception is not None and not expect.exception.isidentifier():
        raise owner._fail(f"{key}.exception", f"expected an exception type name, got {expect.exception!r}")
    source = code.rstrip("\n") + ("\n" + expect.probe if expect.probe else "") + "\n"
    try:
        compile(source, "question.py", "exec")
    except SyntaxError as err:
        raise owner._fail("code", f"not valid Python (line {err.lineno}: {err.msg})") from None
    return CodeRun(code=source, expect=expect)


def read_answers(path: str | pathlib.Path) -> QuizAnswers:
    """A student's answers from a .toml, .json or .ipynb file; never raises for bad input, never runs code."""
    path = pathlib.Path(path)
    if not path.is_file():
        return QuizAnswers({}, path, error=f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".ipynb":
        return _from_notebook(path)
    if suffix not in (".toml", ".json") or path.stat().st_size > MAX_ANSWERS_BYTES:
        return QuizAnswers({}, path, error=f"{path}: expected a .toml, .json or .ipynb answers file "
                                           f"(of at most {MAX_ANSWERS_BYTES // 1024} KB)")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        kind = "TOML" if suffix == ".toml" else "JSON"
        return QuizAnswers({}, path, error=f"{path}: not valid {kind} ({e})")
    if not isinstance(data, dict):
        return QuizAnswers({}, path, error=f"{path}: expected an object with an `answers` table")
    return _from_mapping(data, path, "the file")


def _from_mapping(data: Mapping, path: pathlib.Path, where: str) -> QuizAnswers:
    quiz = data.get("quiz")
    if quiz is not None and not isinstance(quiz, str):
        return QuizAnswers({}, path, error=f"{path}: `quiz` must be the quiz id as a string, got {quiz!r}")
    answers = data.get("answers")
    flat = {k: v for k, v in data.items() if k not in ("quiz", "student")}
    if answers is None and flat and all(isinstance(v, str) for v in flat.values()):
        return QuizAnswers(flat, path, quiz)  # question ids at the top level: `q1 = "A"` is as clear as a table
    if answers is None:
        return QuizAnswers({}, path, quiz, error=f"{path}: {where} has no `answers`; write them as "
                                                 'answers = {"q1": "A", "q2": "C", ...}')
    if not isinstance(answers, dict):
        return QuizAnswers({}, path, quiz, error=f"{path}: `answers` must map question ids to option letters, "
                                                 f"got {type(answers).__name__}")
    extra = sorted(str(k) for k in data if k not in ("quiz", "answers", "student"))
    notes = (f"ignored unknown field(s) in {where}: {', '.join(extra)}",) if extra else ()
    return QuizAnswers(dict(answers), path, quiz, notes=notes)


def _from_notebook(path: pathlib.Path) -> QuizAnswers:
    """Find ``answers = {...}`` (and ``quiz = "..."``) in the code cells, read as literals, without running."""
    try:
        cells = read_submission(path).code_cells()
    except InvalidNotebook as e:
        return QuizAnswers({}, path, error=str(e))
    found: dict = {}
    for number, source in cells:
        try:
            tree = ast.parse(_without_magics(source))
        except SyntaxError:
            if re.search(r"\b(answers|quiz)\s*(\[|=)", source):
                return QuizAnswers({}, path, error=f"{path}: code cell {number} has a syntax error, so its "
                                                   "answers cannot be read; fix it and save the notebook")
            continue
        for node in tree.body:
            problem = _take_assignment(node, found)
            if problem:
                return QuizAnswers({}, path, error=f"{path}: code cell {number}, line {node.lineno}: {problem}")
    return _from_mapping(found, path, "the notebook")


def _without_magics(source: str) -> str:
    # IPython-only lines (%magic, !shell) are not Python; blank them so line numbers stay right.
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _take_assignment(node: ast.stmt, found: dict) -> str | None:
    """Record a top-level ``answers``/``quiz`` assignment into ``found``; a reason when it is not a literal."""
    if _changes_answers(node):
        return "the grader reads only `answers = {...}` and `answers[\"q1\"] = \"A\"` lines; " + LITERAL_HINT
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
        return None
    for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
        item = isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id == "answers"
        if not (item or isinstance(target, ast.Name) and target.id in ("answers", "quiz")):
            continue
        try:
            value = ast.literal_eval(node.value)
            key = ast.literal_eval(target.slice) if item else target.id
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return LITERAL_HINT
        if not item:
            found[key] = value
        elif isinstance(found.get("answers"), dict):
            found["answers"][key] = value
        else:
            return "`answers[...] = ...` comes before `answers = {...}`"
    return None


def _changes_answers(node: ast.stmt) -> bool:
    """``answers.update(...)``, ``answers |= ...``: changes the grader cannot follow without running the code."""
    if isinstance(node, ast.AugAssign):
        return isinstance(node.target, ast.Name) and node.target.id == "answers"
    call = node.value if isinstance(node, ast.Expr) else None
    return (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name) and call.func.value.id == "answers")


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


__all__ = ["CodeRun", "Expectation", "Question", "Quiz", "QuizAnswers", "SpecError", "UnknownQuiz",
           "answer_problems", "load_quiz", "parse_quiz", "quiz_ids", "quizzes_root", "read_answers", "score_quiz"]
