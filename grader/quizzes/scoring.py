"""Score a student's answers against a quiz's key: one CheckResult per question, with its explanation."""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Collection, Mapping

from grader.quizzes.answers import QuizAnswers, is_blank
from grader.errors import UserError
from grader.quizzes.model import Question, Quiz, load_quiz, quiz_ids
from grader.results import CheckResult, Status, SubmissionResult

# What students read; one place, so wording stays consistent between terminal, JSON and HTML.
MSG_RIGHT = "Correct ({given}: {given_text})."
MSG_WRONG = "You chose {given} ({given_text}); the answer is {key} ({key_text}). Why: {explanation}"
MSG_MISSING = "No answer given; the answer is {key} ({key_text}). Why: {explanation}"
MSG_NO_SUCH_OPTION = ("{given_shown} is not an option of this question (its options are {labels}); the answer is "
                      "{key} ({key_text}). Why: {explanation}")
MSG_SEVERAL_OPTIONS = ("{given_shown} gives {count} options ({several}), but this question takes one; the answer is "
                       "{key} ({key_text}). Why: {explanation}")
# A label as students copy it from the sheet: "C.", "(B)", "[b]", "b)", "Option D", "Answer: C", "D!", "B,",
# "C: <the option's text>".
LABELLED = re.compile(r"^(?:(?:option|answer|choice)\s*(?:is\s*)?[:=]?\s*)?[(\[]?\s*([a-z])\s*(?:[.):\],;!?]|\s|$)"
                      r"\s*(.*)$", re.IGNORECASE | re.DOTALL)
ANSWER_KEYS = ("answer", "choice", "option", "value")  # the one key of a question written as a table of its own
# A line copied from the released sheet, which lists each option as "- **B.** <its text>": the list item's marker,
# and the bold around the label.
SHEET_ITEM = re.compile(r"^[-*\u2022]\s+")
BOLD_LABEL = re.compile(r"^(\*\*|__)([a-z][.):]?)\1", re.IGNORECASE)
# What wraps a whole answer without being part of it: markdown's bold, italics and code ("**C**", "`B`"), quotes.
WRAPPED = re.compile(r"^(\*\*|__|[*_`\"'\u2018\u201c])(.+?)(\*\*|__|[*_`\"'\u2019\u201d])$", re.DOTALL)
PAIRS = {"**": "**", "__": "__", "*": "*", "_": "_", "`": "`", '"': '"', "'": "'", "\u2018": "\u2019",
         "\u201c": "\u201d"}
DASHES = re.compile(r"[\s_\u2010-\u2015\u2212]+")  # spaces, underscores and the dashes a word processor puts in
SEPARATOR = re.compile(r"^[\s\-\u2010-\u2015\u2212:]+")  # between a label and the option's text: "C - ", "B – "
ENDING = " .,;!?"  # what may follow a label or a number alone: "C).", "D!", "0.05."
# A label after the option's own text or value, in brackets: "0.05 (B)", "<C's text> (C)".
LABEL_AFTER = re.compile(r"^(.+?)\s*[(\[]\s*([a-z])\s*[)\]]$", re.IGNORECASE | re.DOTALL)
BRACKETS = {"(": ")", "[": "]"}
# Between the labels of an answer that gives several: "B, D", "B or D", "B/D", "B & D", "B D".
BETWEEN_LABELS = re.compile(r"\s*(?:[,;/&+]|\band\b|\bor\b)\s*|\s+", re.IGNORECASE)
# Typographic forms a word processor or a phone puts in an option's text, folded to the ones the key is written in.
TYPOGRAPHIC = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "\u201c": '"',
                             "\u201d": '"', "\u201e": '"', **{chr(c): "-" for c in range(0x2010, 0x2016)},
                             "\u2212": "-"})
MAX_LISTED = 10  # ids named one by one in a problem; a file of thousands says how many more


def _normal(text: str) -> str:
    """Text as it reads: compatibility forms folded (fullwidth "Ｃ" is "C"), invisible format characters (a zero-width
    space pasted along) dropped."""
    return "".join(c for c in unicodedata.normalize("NFKC", text) if unicodedata.category(c) != "Cf")


def _id_key(text: object) -> str:
    return DASHES.sub("-", _normal(str(text)).strip().casefold())


def same_id(given: object, wanted: str) -> bool:
    """Whether ``given`` names the question or quiz id ``wanted``: case, spaces, underscores, dashes and a quiz's
    ``.toml`` or the answers template's ``-answers`` aside ("LR_Schedulers.toml" is lr-schedulers)."""
    key = _id_key(given)
    return _id_key(wanted) in (key, key.removesuffix(".toml"), key.removesuffix(".toml").removesuffix("-answers"))


def _question_id(quiz: Quiz, given: object) -> str | None:
    """The quiz's question id a given key names, whatever its case, spaces, underscores or dashes; None if none.

    >>> from grader.quizzes.model import load_quiz
    >>> _question_id(load_quiz("convergence"), " LR_Role")
    'lr-role'
    """
    return next((q.id for q in quiz.questions if same_id(given, q.id)), None)


def _by_question(quiz: Quiz, answers: QuizAnswers) -> tuple[dict, list, list]:
    """(question id -> the value given, keys that name no question, question ids given twice with other values).

    Two answers to one question that mean the same option are one answer; a blank beside an answer is none.
    """
    found: dict = {}
    unknown, twice = [], []
    for key, value in answers.pairs():
        qid = _question_id(quiz, key)
        if qid is None:
            unknown.append(key)
        elif qid not in found or is_blank(found[qid]):
            found[qid] = value
        elif not is_blank(value) and not _same_answer(quiz.question(qid), found[qid], value):
            twice.append(qid)
    return found, unknown, twice


def _same_answer(question: Question, one: object, other: object) -> bool:
    """Whether two answers to ``question`` say the same: one option, or (neither an option) the same text."""
    labels = _label(question, one), _label(question, other)
    if labels[0] is not None or labels[1] is not None:
        return labels[0] == labels[1]
    return one == other or (isinstance(one, str) and isinstance(other, str) and _plain(one) == _plain(other))


def answer_problems(quiz: Quiz, answers: QuizAnswers) -> list[str]:
    """What could not be scored, in the student's terms: unknown ids, odd values, unanswered questions."""
    problems = []
    given, unknown, _ = _by_question(quiz, _as_answers(answers))
    for qid in unknown[:MAX_LISTED]:
        close = difflib.get_close_matches(_id_key(qid), [q.id for q in quiz.questions], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{qid!r} is not a question of quiz {quiz.id!r}{hint}; that answer was not scored")
    if len(unknown) > MAX_LISTED:
        problems.append(f"and {len(unknown) - MAX_LISTED} more ids that are no question of quiz {quiz.id!r}")
    for q in quiz.questions:
        if q.id in given and not is_blank(given[q.id]) and _label(q, given[q.id]) is None:
            several = _several(q, given[q.id])
            problems.append(f"{q.id}: {_shown(given[q.id], quoted=True)} gives {len(several)} options "
                            f"({_listed(several)}), but the question takes one" if several else
                            f"{q.id}: {_shown(given[q.id], quoted=True)} is not an option (options: "
                            f"{', '.join(q.labels)})" + _lookalikes(given[q.id]))
    missing = [q.id for q in quiz.questions if is_blank(given.get(q.id))]
    if missing:
        problems.append(f"no answer for {', '.join(missing)}")
    return problems


SHOWN_CHARS = 300  # of an answer echoed back: longer than any option, short of a 400,000-character answer


def _shown(given: object, quoted: bool = False) -> str:
    """An answer as messages and pages show it, cut to SHOWN_CHARS with its length said; ``quoted``: as Python writes
    it (a string in quotes), else as text with its control characters escaped (an escape sequence would act on the
    terminal)."""
    raw = str(given) if isinstance(given, str) or not quoted else repr(given)
    head = raw[:SHOWN_CHARS]
    if quoted and isinstance(given, str):
        text = repr(head)
    else:
        text = "".join(c if c.isprintable() or c == " " else ascii(c)[1:-1] for c in head)
    return text if len(raw) <= SHOWN_CHARS else f"{text}... ({len(raw):,} characters)"


def _lookalikes(given: object) -> str:
    """Letters of other alphabets that look like the labels (Cyrillic "С"), named: the answer looks right otherwise."""
    odd = [c for c in _normal(str(given)) if c.isalpha() and not c.isascii()]
    if not odd:
        return ""
    named = ", ".join(f"{c!r} (U+{ord(c):04X}, {unicodedata.name(c, 'unnamed')})" for c in dict.fromkeys(odd))
    return f"; it holds letters that are not Latin: {named}"


def _plain(text: str) -> str:
    return " ".join(_normal(text).translate(TYPOGRAPHIC).split()).rstrip(".").casefold()


def _unlisted(text: str) -> str:
    """``_plain`` without the commas and semicolons that list its words."""
    return " ".join(_plain(text).replace(",", " ").replace(";", " ").split())


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _label(question: Question, given: object) -> str | None:
    """The option label a given answer means, or None.

    'b ', 'B.', '(B)', 'Option B', 'B: <B's text>', 'B (<B's text>)', '<B's text> (B)' and B's text, words or value
    itself ('[0.05]', '5e-2.') all mean B; 'B or C', 'BC' and a label beside another option's text mean none.
    """
    if isinstance(given, dict) and len(given) == 1 and _id_key(next(iter(given))) in ANSWER_KEYS:
        given = next(iter(given.values()))  # {answer = "B"}, or a table of its own per question: the one answer
    if isinstance(given, (list, tuple)) and len(given) == 1:
        given = given[0]  # ["B"]: one answer, written as a list of one
    elif isinstance(given, (list, tuple)) and given and all(isinstance(v, (str, bool)) for v in given):
        # ["B", "B"] is B; ["True", "False"] (or [true, false]) is the option "True False", if one reads so
        given = given[0] if len({str(v).strip().casefold() for v in given}) == 1 else " ".join(map(str, given))
    if isinstance(given, (int, float)) and not isinstance(given, bool):
        given = repr(given)  # a number written unquoted, where an option is that number: 0.05 = "0.05"
    if not isinstance(given, str):
        return None
    text = _unwrapped(_normal(given).strip())
    copied = BOLD_LABEL.sub(r"\2", SHEET_ITEM.sub("", text)).strip()  # "- **B.** 0.05", as the sheet prints it
    text = _unwrapped(copied) if copied else text
    if text.upper() in question.labels:
        return text.upper()
    if (by_content := _by_content(question, text)) is not None:
        return by_content
    labelled = LABELLED.match(text)
    if labelled and labelled[1].upper() in question.labels:
        label, rest = labelled[1].upper(), _unwrapped(SEPARATOR.sub("", labelled[2]))  # "C - <C's text>", "B (0.05)"
        if not rest.strip(ENDING) or _by_content(question, rest) == label:
            return label
    after = LABEL_AFTER.match(text.rstrip(ENDING))
    if after and after[2].upper() in question.labels and _by_content(question, after[1]) == after[2].upper():
        return after[2].upper()
    repeated = {part.rstrip(ENDING).upper() for part in BETWEEN_LABELS.split(text) if part}
    if len(repeated) == 1 and (label := repeated.pop()) in question.labels and len(BETWEEN_LABELS.split(text)) > 1:
        return label  # "B B": one option, given twice
    return None


def _by_content(question: Question, text: str) -> str | None:
    """The one option whose text, words or value ``text`` gives, without its label; None if none or several do."""
    by_text = [label for label, option in question.options if _plain(option) == _plain(text)]
    if len(by_text) == 1:
        return by_text[0]
    # "True, False" for the option "True False": commas and semicolons between its words change no option here.
    by_words = [label for label, option in question.options if _unlisted(option) == _unlisted(text)]
    if len(by_words) == 1:
        return by_words[0]
    number = _number(text.rstrip(ENDING))  # "5e-2.", ".05" or 0.05000000000000001 where the option reads 0.05
    by_value = [label for label, option in question.options
                if number is not None and (value := _number(_plain(option))) is not None
                and math.isclose(value, number, rel_tol=1e-9, abs_tol=1e-12)]
    if len(by_value) == 1:
        return by_value[0]
    by_numbers = [label for label, option in question.options if _same_numbers(text, option)]
    return by_numbers[0] if len(by_numbers) == 1 else None


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?", re.IGNORECASE)
APPROXIMATELY = {"about", "approximately", "approx", "roughly", "around", "~", "\u2248", "and", ","}


def _same_numbers(text: str, option: str) -> bool:
    """Whether ``text`` gives an option of several numbers ("about 0.0794, and 0.0") by its numbers alone, one for one,
    each to the option's own decimals ("0.07939, 0"), with no word the option does not have ("not")."""
    given, wanted = NUMBER.findall(_plain(text)), NUMBER.findall(_plain(option))
    if len(wanted) < 2 or len(given) != len(wanted):
        return False
    words = set(NUMBER.sub(" ", _unlisted(option)).split()) | APPROXIMATELY
    if any(word not in words for word in NUMBER.sub(" ", _unlisted(text).replace("\u2248", " \u2248 ")).split()):
        return False

    def agrees(g: str, w: str) -> bool:  # the same value, or one the option's figure is a rounding of (to 1%)
        places = len(w.split(".")[1]) if "." in w and "e" not in w.casefold() else 0
        return math.isclose(float(g), float(w), rel_tol=1e-9, abs_tol=1e-12) or (
            round(float(g), places) == float(w) and math.isclose(float(g), float(w), rel_tol=0.01))
    return all(agrees(g, w) for g, w in zip(given, wanted))


def _several(question: Question, given: object) -> list[str]:
    """The labels of an answer that gives more than one option ("B, D", "BD", "B or D", ["B", "D"]); [] otherwise."""
    if isinstance(given, (list, tuple)):
        parts = [part for part in given if isinstance(part, str)] if len(given) > 1 else []
    elif isinstance(given, str):
        text = _unwrapped(_normal(given).strip())
        parts = [part for part in BETWEEN_LABELS.split(text) if part]
        if len(parts) == 1 and text.isupper() and text.isalpha():
            parts = list(text)  # "BD": letters run together
    else:
        return []
    labels = [_unwrapped(_normal(part).strip()).rstrip(ENDING).upper() for part in parts]
    if len(parts) < 2 or not all(label in question.labels for label in labels):
        return []
    distinct = list(dict.fromkeys(labels))
    return distinct if len(distinct) > 1 else []


def _listed(labels: list[str]) -> str:
    return ", ".join(labels[:-1]) + f" and {labels[-1]}"


def _unwrapped(text: str) -> str:
    """``text`` without the markdown emphasis, quotes or brackets around all of it: "**C**", "`C.`", "'C'" and "[C]"
    read as C does, "(True, False)" as True, False."""
    while True:
        bare = text.rstrip(ENDING)  # "**C**." too: the sentence's full stop outside the bold
        wrapped = WRAPPED.match(bare)
        if wrapped and PAIRS[wrapped[1]] == wrapped[3] and wrapped[2].strip():
            text = wrapped[2].strip()
        elif (inside := _bracketed(bare)) is not None:
            text = inside
        else:
            return text


def _bracketed(text: str) -> str | None:
    """What brackets around all of ``text`` hold ("[0.05]" holds 0.05); None where none enclose all of it ("(B) C")."""
    if len(text) < 3 or BRACKETS.get(text[0]) != text[-1]:
        return None
    depth = 0
    for i, c in enumerate(text):
        depth += (c == text[0]) - (c == text[-1])
        if depth == 0 and i < len(text) - 1:
            return None
    return text[1:-1].strip() or None


def _as_answers(answers: QuizAnswers | Mapping) -> QuizAnswers:
    return answers if isinstance(answers, QuizAnswers) else QuizAnswers(dict(answers))


def _other_quiz(quiz: Quiz, named: str | None, quizzes: Collection[str]) -> tuple[str | None, str | None]:
    """(why these answers cannot be scored as ``quiz``, a note when they are scored although the file names
    another spelling); the file's ``quiz`` field against the quiz asked for and the quizzes there are."""
    if named is None or same_id(named, quiz.id):
        return None, None
    if _plain(named) == _plain(quiz.title):  # the quiz's title where its id belongs: it names this quiz all the same
        return None, f"the file names the quiz by its title, {named!r}; scored as {quiz.id!r}"
    if not quizzes or any(same_id(named, other) for other in quizzes):
        return f"these answers are for quiz {named!r}, not {quiz.id!r}; check them with --quiz {named}", None
    if difflib.get_close_matches(_id_key(named), [quiz.id], n=1, cutoff=0.8):
        return None, f"the file names quiz {named!r}, which is no quiz; scored as {quiz.id!r}, as asked"
    return (f"the file names quiz {named!r}, which is no quiz (the quizzes: {', '.join(sorted(quizzes))}); correct "
            f"its `quiz` line, or leave it out and pass --quiz"), None


def names_quiz(quiz_id: str, named: str) -> bool:
    """Whether an answers file's ``quiz`` field names quiz ``quiz_id`` as a batch scores it: by its id in any spelling
    (``same_id``) or by its title."""
    if same_id(named, quiz_id):
        return True
    try:
        quiz = load_quiz(quiz_id)
    except UserError:  # no such quiz: only its id can name it
        return False
    return _other_quiz(quiz, named, quiz_ids())[0] is None  # a misspelling of no other quiz names this one


def score_quiz(quiz: Quiz, answers: QuizAnswers | Mapping, student: str,
               quizzes: Collection[str] = ()) -> SubmissionResult:
    """One CheckResult per question (id = question id); pure, so batch grading can reuse it.

    ``quizzes``: the ids of every quiz, so a file naming one that does not exist is told so.
    """
    answers = _as_answers(answers)
    reason, spelled = answers.error, None
    if reason is None:
        reason, spelled = _other_quiz(quiz, answers.quiz, quizzes)
    given, unknown, twice = _by_question(quiz, answers)
    if reason is None and twice:
        reason = (f"{', '.join(dict.fromkeys(twice))} is answered twice, with different answers (under ids that differ "
                  "in case, spaces or dashes, or inside the `answers` table and beside it); give each question one "
                  "answer")
    nested = [k for k, v in answers.pairs() if k in unknown and isinstance(v, Mapping)]
    if reason is None and nested and not given:
        reason = (f"your answers sit inside a table named {str(nested[0])[:60]!r}; name that table `answers` "
                  '([answers] in TOML, "answers": {...} in JSON), with one question id per line in it')
    if reason is None and unknown and not given:
        reason = (f"none of the answered ids ({', '.join(map(str, unknown[:5]))}) is a question of quiz {quiz.id!r} "
                  f"(its questions: {', '.join(q.id for q in quiz.questions)}); answer each question by its id, "
                  "or check that it is the right quiz")
    if reason is not None:
        return SubmissionResult(exercise=quiz.id, student=student, status=Status.INVALID, error=reason)
    checks = tuple(_score_question(q, given) for q in quiz.questions)
    problems = answer_problems(quiz, answers)
    notes = [*answers.notes, *([spelled] if spelled else [])]
    return SubmissionResult(exercise=quiz.id, student=student, status=Status.OK, checks=checks,
                            error="; ".join(problems) if problems else None, note="; ".join(notes))


def _score_question(q: Question, answers: Mapping) -> CheckResult:
    given = answers.get(q.id)
    label = _label(q, given)
    words = {"key": q.answer, "key_text": q.option_text(q.answer).rstrip("."), "explanation": q.explanation,
             "given": label or given, "given_text": q.option_text(label).rstrip(".") if label else "",
             "labels": ", ".join(q.labels), "given_shown": _shown(given, quoted=True)}
    if is_blank(given):
        outcome, message = "missing", MSG_MISSING.format(**words)
    elif label is None and (several := _several(q, given)):
        outcome = "no-such-option"
        message = MSG_SEVERAL_OPTIONS.format(**words, count=len(several), several=_listed(several))
    elif label is None:
        outcome, message = "no-such-option", MSG_NO_SUCH_OPTION.format(**words)
        if all(_number(_plain(option)) is not None for _, option in q.options):
            message += (f" (The options are numbers: give the letter, or the number as a decimal such as "
                        f"{_plain(q.options[0][1])}; a percentage, a fraction or a decimal comma is not read.)")
    elif label == q.answer:
        outcome, message = "right", MSG_RIGHT.format(**words)
    else:
        outcome, message = "wrong", MSG_WRONG.format(**words)
    right = outcome == "right"
    return CheckResult(id=q.id, passed=right, points=q.points if right else 0.0, max_points=q.points,
                       visibility="public", message=message, title=q.prompt.splitlines()[0],
                       details={"given": label or (None if given is None else _shown(given)), "key": q.answer,
                                "outcome": outcome})
