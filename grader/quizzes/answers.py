"""A student's quiz answers, read from a .toml, .json or .ipynb file without running any of it."""

from __future__ import annotations

import ast
import json
import pathlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from grader.kernel import untrusted
from grader.kernel.notebook import without_magics
from grader.kernel.untrusted import UnreadableFile
from grader.source_trees import parse as parse_source

try:
    import tomllib  # novermin - Python 3.10 has the same parser as the tomli backport, below
except ModuleNotFoundError:
    import tomli as tomllib

MAX_ANSWERS_BYTES = 2**20
LITERAL_HINT = ("answers must be written out literally, since the grader reads them without running your notebook: "
                'answers = {"q1": "A", "q2": "C"}')


@dataclass(frozen=True)
class QuizAnswers:
    """A student's answers as read from a file; ``error`` says why the file is unusable."""

    answers: dict  # question id -> the raw value given
    path: pathlib.Path | None = None
    quiz: str | None = None  # the quiz the file says it is for
    error: str | None = None
    notes: tuple[str, ...] = ()  # harmless oddities worth telling the student
    outside: dict = field(default_factory=dict)  # answers above or beside the `answers` table, for ids it also has

    def pairs(self) -> list[tuple]:
        """Every (id, answer) the file gives: the table's, then those beside it; the scorer reads what they mean."""
        return [*self.answers.items(), *self.outside.items()]


def read_answers(path: str | pathlib.Path) -> QuizAnswers:
    """A student's answers from a .toml, .json or .ipynb file; never raises for bad input, never runs code."""
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix == ".ipynb":
        return _from_notebook(path)
    try:  # a pipe or device is refused before it is opened, so it cannot block
        raw = untrusted.read_bytes(path, MAX_ANSWERS_BYTES)
    except UnreadableFile as e:
        return QuizAnswers({}, path, error=f"{path}: no such file" if e.kind == "missing" else
                           f"{path}: the file is larger than {MAX_ANSWERS_BYTES // 1024} KB, far more than any "
                           "answers file" if e.kind == "large" else f"{path}: the file {e}")
    if suffix not in (".toml", ".json"):
        return QuizAnswers({}, path, error=f"{path}: expected a .toml, .json or .ipynb answers file")
    kind = "TOML" if suffix == ".toml" else "JSON"
    legacy = ()
    try:
        text = _decoded(raw)
    except UnicodeDecodeError as e:
        if e.reason == NUL and raw.count(b"\x00") * 10 < len(raw):  # a stray NUL; UTF-16 without its mark has many
            return QuizAnswers({}, path, error=f"{path}: the file holds a NUL byte (at byte {e.start}), which no text "
                                               "file has; save it again as plain UTF-8 text")
        if e.reason == NUL:
            return QuizAnswers({}, path, error=f"{path}: its text encoding could not be read (it is not UTF-8, nor "
                                               "UTF-16 with a byte-order mark); save it again as UTF-8 (an editor's "
                                               "encoding setting, or PowerShell's `Out-File -Encoding utf8`)")
        # Not UTF-8 and no NUL: Windows' own 8-bit text (a name with an accent, say), which every byte decodes as.
        text = raw.decode("cp1252", errors="replace")
        legacy = ("the file is not UTF-8; it was read as Windows-1252 (Latin-1) text: save it as UTF-8",)
    if not text.strip():  # the parsers' own words for nothing at all ("Expecting value: line 1") say little
        return QuizAnswers({}, path, error=_empty(path))
    try:
        data = tomllib.loads(text) if suffix == ".toml" else untrusted.loads(text)
        if suffix == ".json":  # TOML itself refuses a key given twice
            twice, data = _json_keys_twice(text)
        else:
            twice = []
    except ValueError as e:  # TOMLDecodeError and JsonLimitError are ValueErrors
        reason = str(e).removeprefix("is not valid JSON: ")
        return QuizAnswers({}, path, error=f"{path}: not valid {kind} ({_parser_hint(reason, kind, text)})")
    except RecursionError:
        return QuizAnswers({}, path, error=f"{path}: not valid {kind} (it is nested too deeply)")
    if twice:
        return QuizAnswers({}, path, error=f"{path}: {_twice_message(twice)}")
    if not isinstance(data, dict):
        return QuizAnswers({}, path, error=f"{path}: expected an object with an `answers` table")
    read = _from_mapping(data, path, "the file")
    return replace(read, notes=(*legacy, *read.notes)) if legacy and read.error is None else read


# How an answers file is written, by its kind: shown where a file holds nothing to read.
HOW_TO_WRITE = {".toml": 'a line [answers], then one line per question, as q1 = "A"',
                ".json": '{"answers": {"q1": "A", "q2": "C"}}',
                ".ipynb": 'answers = {"q1": "A", "q2": "C"} in a code cell, and save the notebook'}


def _empty(path: pathlib.Path) -> str:
    return f"{path}: the file is empty; write your answers in it: {HOW_TO_WRITE[path.suffix.lower()]}"


def _parser_hint(reason: str, kind: str, text: str = "") -> str:
    """The parser's reason, with what a student most likely wrote to cause it."""
    if "int_max_str_digits" in reason or "Exceeds the limit" in reason:
        return "a number thousands of digits long, which no answer is"
    if "\r" in text and "\n" not in text:
        return (f"{reason}: its lines end in a carriage return alone (an old Mac format); save it with ordinary line "
                "ends")
    if reason.startswith(("Invalid value", "Expecting value")) and any(quote in text for quote in CURLY_QUOTES):
        return (f'{reason}: it uses curly quotes ({" ".join(q for q in CURLY_QUOTES if q in text)}), as a word '
                f'processor types them; write each answer in straight quotes, as in lr-role = "C"')
    if kind == "TOML" and reason.startswith("Cannot overwrite a value"):
        return f"{reason}: a key is given twice; give each question one answer"
    if kind == "TOML" and reason.startswith("Invalid value"):
        return f'{reason}: put each answer in quotes, as in lr-role = "C"'
    if kind == "JSON" and re.search(r",\s*[}\]]", text):
        return f"{reason}: a comma after the last item of an object or list, which JSON does not allow; remove it"
    return reason


CURLY_QUOTES = "\u201c\u201d\u2018\u2019"


NUL = "a NUL byte"


def _decoded(raw: bytes) -> str:
    """The text of an answers file: UTF-8, with or without a byte-order mark, or UTF-16/32 with one (Windows tools).

    UnicodeDecodeError for anything else, NUL bytes included (UTF-16 without its mark reads as UTF-8 with NULs).
    """
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return raw.decode("utf-32")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    if b"\x00" in raw:
        raise UnicodeDecodeError("utf-8", raw, raw.index(b"\x00"), raw.index(b"\x00") + 1, NUL)
    return raw.decode("utf-8-sig")


def is_blank(given: object) -> bool:
    """An answer left empty: the template's blank, or nothing but spaces."""
    return given is None or (isinstance(given, str) and not given.strip())


def _json_keys_twice(text: str) -> tuple[list[str], object]:
    """(keys one JSON object gives twice with other values, the data with each key's answer): json keeps the last
    silently; the same value twice is harmless, and a blank beside an answer (the template's) is none, before or
    after it. The text already passed the limits."""
    twice: list[str] = []

    def pairs(items: list) -> dict:
        seen, kept = {}, {}
        for key, value in items:
            if is_blank(value):
                kept.setdefault(key, value)
                continue
            if key in seen and not _same_answer(seen[key], value):
                twice.append(key)
            seen.setdefault(key, value)
            kept[key] = value
        return kept

    return twice, json.loads(text, object_pairs_hook=pairs)


def _same_answer(first: object, second: object) -> bool:
    """Whether one key given twice says the same both times, as the sheet's labels are written ("C", "c.", "(C)");
    the scorer compares anything else by the option it means."""
    def loose(value: object) -> object:
        return re.sub(r"[\s().\[\]:]", "", value).casefold() if isinstance(value, str) else value

    return first == second or loose(first) == loose(second)


def _twice_message(keys: list) -> str:
    return (f"{', '.join(repr(k) for k in dict.fromkeys(keys))} is given twice; give each question one answer "
            "(only one option counts, so two answers cannot both be scored)")


def _spells(key: object, name: str) -> bool:
    """``key`` is the field ``name`` in any case or spacing ("Answers", " quiz")."""
    return isinstance(key, str) and key.strip().casefold() == name


def _field(data: Mapping, name: str):
    """The key of ``data`` that spells ``name``, or None."""
    return next((k for k in data if _spells(k, name)), None)


# Half of a UTF-16 pair on its own: JSON's "\ud800" and a notebook's '\ud800' decode to one, which is no character,
# and no terminal, page or JSON reply can print it.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(data: object) -> str | None:
    """The first string (a key or a value, at any depth) of ``data`` that holds a lone surrogate; None if none does."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and LONE_SURROGATE.search(item):
            return item
        if isinstance(item, Mapping):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack += list(item)
    return None


def _from_mapping(data: Mapping, path: pathlib.Path, where: str) -> QuizAnswers:
    if (text := _lone_surrogate(data)) is not None:  # refused here, for every format: the printers stay safe
        shown = ascii(text if len(text) <= 40 else text[:40] + "...")
        return QuizAnswers({}, path, error=f"{path}: {where} holds {shown}, with a lone surrogate (half of a UTF-16 "
                                           "pair, which is no character); write each answer as plain text")
    tables = [k for k in data if _spells(k, "answers")]
    if len(tables) > 1:
        return QuizAnswers({}, path, error=f"{path}: {where} has {len(tables)} answers tables "
                                           f"({', '.join(map(repr, tables))}); put every answer in one")
    fields = {name: _field(data, name) for name in ("quiz", "student", "answers")}
    answers = data.get(fields["answers"]) if fields["answers"] is not None else None
    quiz = data.get(fields["quiz"]) if fields["quiz"] is not None else None
    if isinstance(answers, dict):  # `quiz` and `student` written inside the table are still those fields
        if (quiz is None or isinstance(quiz, str) and not quiz.strip()) and _field(answers, "quiz"):
            quiz = answers[_field(answers, "quiz")]
        answers = {k: v for k, v in answers.items() if not (_spells(k, "quiz") or _spells(k, "student"))}
    if quiz is not None and not isinstance(quiz, str):
        return QuizAnswers({}, path, error=f"{path}: `quiz` must be the quiz id as a string, got {quiz!r}")
    quiz = quiz.strip() or None if isinstance(quiz, str) else None  # a blank id says nothing
    flat = {k: v for k, v in data.items() if k not in fields.values()}
    if answers is None and flat:
        # Question ids at the top level: `q1 = "A"` is as clear as a table. A value that is no option's label
        # is scored as such, and keys that are no question are named, as in a table.
        return QuizAnswers(flat, path, quiz)
    no_answers = (f"{path}: {where} has no `answers`; write them as "
                  'answers = {"q1": "A", "q2": "C", ...}')
    if answers is None:
        return QuizAnswers({}, path, quiz, error=no_answers)
    if not isinstance(answers, dict):
        return QuizAnswers({}, path, quiz, error=f"{path}: `answers` must map question ids to option letters, "
                                                 f"got {type(answers).__name__}")
    # Lines above a TOML file's [answers] header are outside the table: read as answers where the table has none.
    # Those the table also has are kept apart, for the scorer to compare by what they mean ("C" and "c." agree).
    outside = {k: v for k, v in flat.items() if k not in answers}
    if not answers and not outside:  # an empty table hands in nothing, as a file without one does: not a 0 score
        return QuizAnswers({}, path, quiz, error=no_answers)
    notes = (f"read {', '.join(map(str, outside))} from outside the `answers` table as answers",) if outside else ()
    return QuizAnswers(dict(answers) | outside, path, quiz, notes=notes,
                       outside={k: v for k, v in flat.items() if k in answers})


def _from_notebook(path: pathlib.Path) -> QuizAnswers:
    """Find ``answers = {...}`` (and ``quiz = "..."``) in the code cells, read as literals, without running."""
    from grader.kernel.notebook import (  # nbformat: only for notebooks
        InvalidNotebook,
        read_notebook_bytes,
        read_submission,
    )

    try:
        raw = read_notebook_bytes(path)
        if not raw.strip():
            return QuizAnswers({}, path, error=_empty(path))
        cells = read_submission(path, raw).code_cells()
    except InvalidNotebook as e:
        return QuizAnswers({}, path, error=str(e))
    found: dict = {}
    trees = []
    for number, source in cells:
        try:
            trees.append((number, parse_source(without_magics(source))))
        except (SyntaxError, ValueError, RecursionError, MemoryError):  # null bytes, nesting past the parser's limit
            if re.search(r"^\s*(answers|quiz)\s*(\[|=)", source, re.MULTILINE):
                return QuizAnswers({}, path, error=f"{path}: code cell {number} has a syntax error, so its "
                                                   "answers cannot be read; fix it and save the notebook")
    functions = {node.name: node for _, tree in trees for node in ast.walk(tree)
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for number, tree in trees:
        for node in tree.body:
            problem = _take_assignment(node, found)
            if problem:
                return QuizAnswers({}, path, error=f"{path}: code cell {number}, line {node.lineno}: {problem}")
        changed = _other_write(tree) or _write_through(tree, trees, functions)
        if changed is not None:
            return QuizAnswers({}, path, error=f"{path}: code cell {number}, line {changed.lineno}: the grader reads "
                                               "only top-level `answers = {...}` and `answers[\"q1\"] = \"A\"` lines, "
                                               f"and this line changes `answers` otherwise; {LITERAL_HINT}")
    return _from_mapping(found, path, "the notebook")


def _read_line(node: ast.stmt) -> bool:
    """A top-level line the grader reads: ``answers = {...}``, ``answers["q1"] = "A"``, ``quiz = "..."``."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
        return False
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return all(isinstance(t, ast.Name) or isinstance(t, ast.Subscript) and _is_answers(t.value) for t in targets)


def _is_answers(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "answers"


def _write_through(tree: ast.Module, trees: list, functions: dict) -> ast.AST | None:
    """A line of this cell that hands ``answers`` to another name that some code then changes: ``a = answers`` with
    ``a["q1"] = "B"`` anywhere, or ``fill(answers)`` where the notebook's own ``fill`` changes its parameter."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and _bare_answers(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [sub.id for target in targets for sub in ast.walk(target) if isinstance(sub, ast.Name)]
            if any(_other_write(other, name, set(), rebinding=False) for name in names for _, other in trees):
                return node
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions:
            function = functions[node.func.id]
            params = [a.arg for a in function.args.posonlyargs + function.args.args]
            handed = [params[i] for i, arg in enumerate(node.args) if i < len(params) and _is_answers(arg)]
            handed += [k.arg for k in node.keywords if k.arg and _is_answers(k.value)]
            if any(_other_write(function, name, set(), rebinding=False) for name in handed):
                return node
    return None


def _bare_answers(value: ast.AST) -> bool:
    """``answers`` itself, or held in a tuple, list or dict: the same object under another name."""
    if _is_answers(value):
        return True
    items = value.elts if isinstance(value, (ast.Tuple, ast.List, ast.Set)) else \
        value.values if isinstance(value, ast.Dict) else []
    return any(_bare_answers(item) for item in items)


def _other_write(tree: ast.AST, name: str = "answers", read: set | None = None, rebinding: bool = True
                 ) -> ast.AST | None:
    """A statement anywhere in ``tree``, other than the lines read, that changes or deletes ``name`` (and, with
    ``rebinding``, binds it anew): ``del answers[k]``, ``answers.pop(k)`` inside a print, an assignment under ``if``
    or in a tuple."""
    def named(node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id == name

    if read is None:
        read = {id(node) for node in tree.body if _read_line(node)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Delete, ast.For, ast.With)) \
                and id(node) not in read:
            targets = (node.targets if isinstance(node, (ast.Assign, ast.Delete)) else
                       [item.optional_vars for item in node.items if item.optional_vars] if isinstance(node, ast.With)
                       else [node.target])
            if any(isinstance(sub, ast.Subscript) and named(sub.value)
                   or named(sub) and (rebinding or isinstance(node, ast.AugAssign))  # `d |= {...}` changes d itself
                   for target in targets for sub in ast.walk(target)):
                return node
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and named(node.func.value) \
                and node.func.attr not in READ_ONLY:
            return node
    return None


def _take_assignment(node: ast.stmt, found: dict) -> str | None:
    """Record a top-level ``answers``/``quiz`` assignment into ``found``; a reason when it is not a literal."""
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
        if isinstance(node.value, ast.Dict):
            items = [(ast.literal_eval(k), ast.literal_eval(v)) for k, v in zip(node.value.keys, node.value.values)
                     if k is not None]
            twice = [k for i, (k, v) in enumerate(items)
                     if any(k == other and not _same_answer(v, given) for other, given in items[:i])]
            if twice:
                return _twice_message(twice)
        if not item:
            found[key] = value
        elif isinstance(found.get("answers"), dict):
            found["answers"][key] = value
        else:
            return "`answers[...] = ...` comes before `answers = {...}`"
    return None


READ_ONLY = frozenset({"items", "keys", "values", "get", "copy", "__len__", "__contains__"})


