"""Quizzes: loading and validation, reading answers files, scoring, ``grader quiz check`` and its HTML page."""

import json
import pathlib
import shutil
from html.parser import HTMLParser

import pytest

from grading_support import CHECK_CONTRACT, CONTRACT, by_id, run_cli
from grader.errors import UnknownAssignment
from grader.quizzes.answers import read_answers
from grader.quizzes.model import load_quiz, parse_quiz, quiz_ids
from grader.quizzes.scoring import score_quiz
from grader.specs.toml import SpecError
from grader.results import Status

FILES = pathlib.Path(__file__).parent / "files" / "quizzes"


# --- the shipped quizzes --------------------------------------------------------


def test_shipped_quizzes_load_with_the_expected_sizes():
    assert quiz_ids() == ["convergence", "lr-schedulers", "training-dynamics"]
    sizes = {quiz_id: len(load_quiz(quiz_id).questions) for quiz_id in quiz_ids()}
    assert sizes["lr-schedulers"] == 5 and sizes["convergence"] == 5 and sizes["training-dynamics"] >= 8


def test_every_shipped_question_is_either_checked_by_code_or_says_why_not():
    for quiz_id in quiz_ids():
        for q in load_quiz(quiz_id).questions:
            assert bool(q.runs) != bool(q.unchecked), (quiz_id, q.id)
            assert q.answer in q.labels and q.explanation


def test_the_corrected_seed_002_question_4_keys_the_documented_order():
    q = load_quiz("convergence").question("scheduler-printout")
    key = q.option_text(q.answer)
    assert "0.1000, 0.0500, 0.0500, 0.0250" in key and "optimizer.step() before scheduler.step()" in key
    assert q.runs[0].expect.no_warning == "lr_scheduler.step()"


def test_unknown_quiz_lists_the_known_ones():
    with pytest.raises(UnknownAssignment, match="unknown quiz 'nope' .known: convergence, lr-schedulers"):
        load_quiz("nope")


# --- validation: every error names the file and the field ------------------------

GOOD_QUESTION = '''
[[questions]]
id = "q1"
prompt = "Pick one."
options = ["yes", "no"]
answer = "A"
explanation = "Because."
'''


@pytest.mark.parametrize("body, field, problem", [
    (GOOD_QUESTION.replace('answer = "A"', 'answer = "E"'), "questions[0].answer", "'E' is not one of the options"),
    (GOOD_QUESTION + 'unchecked = "x"\n' + GOOD_QUESTION + 'unchecked = "x"\n', "questions[1].id",
     "duplicate question id 'q1'"),
    (GOOD_QUESTION + '[questions.expect]\nclaim = "c"\nstdout = "1"\n', "questions[0].expect", "needs code to run"),
    (GOOD_QUESTION, "questions[0].unchecked", "must say why"),
    (GOOD_QUESTION + 'code = "print(1)"\n[questions.expect]\nclaim = "c"\n', "questions[0].expect",
     "at least one outcome"),
    (GOOD_QUESTION + 'code = "print(1)"\n[questions.expect]\nclaim = "c"\nstdout = "1"\nstdout_lines_approx = [1]\n',
     "questions[0].expect", "either stdout or stdout_lines_approx"),
    (GOOD_QUESTION + 'code = "print(1"\n[questions.expect]\nclaim = "c"\nstdout = "1"\n', "questions[0].code",
     "not valid Python"),
    (GOOD_QUESTION + 'code = "print(1)"\n[questions.expect]\nclaim = "c"\nstdout = "1"\nstdot = "1"\n',
     "questions[0].expect.stdot", "unknown field"),
    (GOOD_QUESTION + 'unchecked = "x"\nhint = "y"\n', "questions[0].hint", "unknown field"),
    (GOOD_QUESTION.replace('explanation = "Because."', 'explanation = "  "') + 'unchecked = "x"\n',
     "questions[0].explanation", "must not be empty"),
    (GOOD_QUESTION.replace('options = ["yes", "no"]', 'options = {A = "yes", b = "no"}') + 'unchecked = "x"\n',
     "questions[0].options", "labels A-Z"),
    (GOOD_QUESTION.replace('id = "q1"', 'id = "Question 1"') + 'unchecked = "x"\n', "questions[0].id",
     "lower-case letters"),
])
def test_invalid_quiz_files_name_file_and_field(tmp_path, body, field, problem):
    path = tmp_path / "bad.toml"
    path.write_text('id = "bad"\ntitle = "Bad"\n' + body)
    with pytest.raises(SpecError) as err:
        parse_quiz(path)
    assert str(err.value).startswith(f"{path}: {field}: ") and problem in str(err.value)


def test_quiz_id_must_match_the_file_and_toml_must_parse(tmp_path):
    path = tmp_path / "named.toml"
    path.write_text('id = "other"\ntitle = "T"\n' + GOOD_QUESTION + 'unchecked = "x"\n')
    with pytest.raises(SpecError, match="named.toml: id: expected the file name 'named', got 'other'"):
        parse_quiz(path)
    path.write_text("id = ")
    with pytest.raises(SpecError, match="named.toml: not valid TOML"):
        parse_quiz(path)


# --- reading answers ---------------------------------------------------------------


def test_answers_from_a_notebook_are_read_as_literals_without_running_it():
    answers = read_answers(FILES / "answers.ipynb")
    assert answers.error is None and answers.quiz == "lr-schedulers"
    # answers = {...} in one cell, answers["..."] = "..." in the next (overriding an earlier choice).
    assert answers.answers == {"purpose": "B", "steplr-constructor": "C", "steplr-three-steps": "B",
                               "step-order": "C", "two-phase": "C"}


@pytest.mark.parametrize("name, reason", [
    ("answers-not-literal.ipynb", "code cell 1, line 4: answers must be written out literally"),
    ("malformed.toml", "not valid TOML"),
    ("missing.json", "no such file"),
    ("../README.md", "expected a .toml, .json or .ipynb answers file"),
    ("../not-a-notebook.ipynb", "not a Jupyter notebook"),
])
def test_unreadable_answers_files_say_why(name, reason):
    answers = read_answers(FILES / name)
    assert answers.error and reason in answers.error and answers.answers == {}


@pytest.mark.parametrize("text, reason, suffix", [
    ('["A", "B"]', "expected an object with an `answers` table", "json"),
    ('{"quiz": "convergence"}', 'has no `answers`; write them as answers = {"q1": "A"', "json"),
    ('{"answers": {"lr-role": "A", "lr-keyword": "B", "lr-role": "C"}}', "'lr-role' is given twice", "json"),
    ('{"answers": ["C", "B"]}', "`answers` must map question ids to option letters, got list", "json"),
    ('{"quiz": 3, "answers": {}}', "`quiz` must be the quiz id as a string", "json"),
    ('{"answers": {"lr-role": ', "not valid JSON", "json"),
    # TOML: what the parser says, with what the student most likely wrote
    ('[answers]\nlr-role = C\n', 'put each answer in quotes, as in lr-role = "C"', "toml"),
    ('[answers]\nlr-role = "A"\nlr-role = "C"\n', "a key is given twice; give each question one answer", "toml"),
    ("[answers]\nlr-role = " + "9" * 5000 + "\n", "a number thousands of digits long", "toml"),
    ('[answers]\nlr-role = "C"\n[Answers]\nlr-keyword = "B"\n', "2 answers tables ('answers', 'Answers')", "toml"),
    # no answers at all: unusable, as a file without a table is, not a 0 score; an empty file says so
    ('quiz = "convergence"\n[answers]\n', 'has no `answers`; write them as answers = {"q1": "A"', "toml"),
    ('{"quiz": "convergence", "answers": {}}', 'has no `answers`; write them as answers = {"q1": "A"', "json"),
    ("", 'the file is empty; write your answers in it: a line [answers], then one line per question', "toml"),
    (" \n", 'the file is empty; write your answers in it: {"answers": {"q1": "A", "q2": "C"}}', "json"),
    ("", 'the file is empty; write your answers in it: answers = {"q1": "A", "q2": "C"} in a code cell', "ipynb"),
])
def test_malformed_answers_say_what_is_wrong(tmp_path, text, reason, suffix):
    path = tmp_path / f"a.{suffix}"
    path.write_text(text)
    assert reason in read_answers(path).error


def test_question_ids_at_the_top_level_are_answers_too(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('quiz = "convergence"\nlr-role = "C"\nhigh-fixed-lr = "d"\n')
    answers = read_answers(path)
    assert answers.error is None and answers.quiz == "convergence"
    assert answers.answers == {"lr-role": "C", "high-fixed-lr": "d"}


def _notebook(tmp_path, *cells: str) -> pathlib.Path:
    import nbformat
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    return path


def test_answers_as_students_write_them_are_read_and_scored_as_meant(tmp_path):
    """The sheet's labels copied with their punctuation, an option's own text, ids in other case, a byte-order mark,
    UTF-16 from PowerShell, lines above the [answers] header, a blank left from the template."""
    quiz = load_quiz("convergence")
    toml = tmp_path / "a.toml"
    toml.write_bytes("\ufeffquiz = 'Convergence'\nlr-role = 'C.'\n[answers]\n' LR-Keyword' = '(b)'\n"
                     "high-fixed-lr = 'Option D'\nscheduler-printout = ''\n".encode("utf-8"))
    result = score_quiz(quiz, read_answers(toml), "s")
    assert result.status is Status.OK, result.error
    outcomes = {c.id: c.details["outcome"] for c in result.checks}
    assert outcomes == {"lr-role": "right", "lr-keyword": "right", "high-fixed-lr": "right",
                        "scheduler-printout": "missing", "fast-then-fine": "missing"}
    assert "read lr-role from outside the `answers` table" in result.note
    assert "lr-role" not in (result.error or "")  # a note, not a problem: that answer was scored

    fast_then_fine = quiz.question("fast-then-fine").option_text("C")
    utf16 = tmp_path / "b.json"
    utf16.write_text(json.dumps({"answers": {"lr-role": f"c: {quiz.question('lr-role').option_text('C')}",
                                             "fast-then-fine": fast_then_fine.upper(), "lr-keyword": "B or C",
                                             "high-fixed-lr": "BD", "scheduler-printout": None}}), encoding="utf-16")
    outcomes = {c.id: c.details["outcome"] for c in score_quiz(quiz, read_answers(utf16), "s").checks}
    assert outcomes == {"lr-role": "right", "fast-then-fine": "right", "lr-keyword": "no-such-option",
                        "high-fixed-lr": "no-such-option", "scheduler-printout": "missing"}


def test_top_level_answers_with_a_value_that_is_no_label_are_still_scored(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('lr-role = "C"\nlr-keyword = 0.01\n')
    result = score_quiz(load_quiz("convergence"), read_answers(path), "s")
    assert result.status is Status.OK and result.score == 1
    assert "lr-keyword: 0.01 is not an option" in result.error


def test_an_id_given_twice_is_refused_not_scored_by_its_last_answer(tmp_path):
    assert "'lr-role' is given twice" in read_answers(_notebook(tmp_path, 'answers = {"lr-role": "A", "lr-role": "C"}')
                                                      ).error
    mixed = score_quiz(load_quiz("convergence"), {"lr-role": "A", "LR-ROLE": "C"}, "s")
    assert mixed.status is Status.INVALID and "lr-role is answered twice" in mixed.error


def test_two_answers_that_are_no_option_under_two_spellings_of_one_id_are_refused_not_one_dropped():
    quiz = load_quiz("convergence")
    both = score_quiz(quiz, {"lr-role": "E", "LR_ROLE": "the second one"}, "s")
    assert both.status is Status.INVALID and "lr-role is answered twice" in both.error
    same = score_quiz(quiz, {"lr-role": "E", "LR_ROLE": "e"}, "s")  # one non-answer, twice: scored, and named
    assert same.status is Status.OK and "lr-role: 'E' is not an option" in same.error
    for wrapped in ("**C** or D", "B, C", "*C or D*"):  # emphasis does not make two options one
        assert score_quiz(quiz, {"lr-role": wrapped}, "s").checks[0].details["outcome"] == "no-such-option"


def test_a_notebook_may_read_its_answers_and_hold_prose_that_is_not_python(tmp_path):
    path = _notebook(tmp_path, 'quiz = "convergence"\nanswers = {"lr-role": "C"}', "for k, v in answers.items():\n"
                     "    print(k, v)\nanswers.get('lr-role')", "Notes for the quiz = see lecture 3",
                     "kept = answers\nkept = None\ndef show(sheet):\n    print(sheet['lr-role'])\nshow(answers)")
    answers = read_answers(path)
    assert answers.error is None and answers.answers == {"lr-role": "C"}


def test_a_lone_surrogate_in_an_answer_is_refused_in_one_line_by_both_printers(tmp_path):
    import subprocess
    import sys

    (tmp_path / "s.json").write_text('{"lr-role": "\\ud800", "lr-keyword": "B"}')
    notebook = _notebook(tmp_path, 'answers = {"lr-role": "C", "lr-keyword": "\\udfff"}')
    for path, held, extra in ((tmp_path / "s.json", "'\\ud800'", ()), (tmp_path / "s.json", "'\\ud800'", ("--json",)),
                              (notebook, "'\\udfff'", ())):
        # A process of its own: its stdout encodes strictly, as a terminal's does (capsys would take anything).
        done = subprocess.run([sys.executable, "-m", "grader", "quiz", "check", str(path), "--quiz", "convergence",
                               *extra], capture_output=True, text=True, check=False, timeout=120, cwd=tmp_path)
        where = "the file" if path.suffix == ".json" else "the notebook"
        error = (f"{path}: {where} holds {held}, with a lone surrogate (half of a UTF-16 pair, which is no "
                 "character); write each answer as plain text")
        assert (done.returncode, done.stderr) == (2, f"grader quiz check: {error}\n")
        assert json.loads(done.stdout)["error"] == error if extra else done.stdout == ""
    assert not list(tmp_path.glob("*.html"))


ALL_RIGHT = 'answers = {"lr-role": "C", "lr-keyword": "B", "high-fixed-lr": "D", "scheduler-printout": "B", ' \
            '"fast-then-fine": "C"}'


@pytest.mark.parametrize("change", ['print(answers.pop("lr-role"))', 'del answers["lr-role"]',
                                    'answers["lr-role"] += " or B"', 'if True:\n    answers["lr-role"] = "A"',
                                    'answers["lr-role"], answers["lr-keyword"] = "A", "A"',
                                    'for k in answers:\n    answers[k] = "A"', 'quiz, answers = "convergence", {}',
                                    'mine = answers\nmine["lr-role"] = "A"',
                                    'def fill(sheet):\n    sheet.update({"lr-role": "A"})\nfill(answers)'])
def test_a_notebook_that_changes_its_answers_anywhere_else_is_refused_not_scored_as_first_written(tmp_path, change):
    answers = read_answers(_notebook(tmp_path, ALL_RIGHT, change))
    assert answers.answers == {} and "code cell 2" in answers.error and "changes `answers` otherwise" in answers.error


def test_what_a_file_says_twice_or_spells_otherwise_is_read_as_meant(tmp_path):
    above = tmp_path / "above.toml"
    above.write_text('lr-role = "A"\n[answers]\nlr-role = "C"\n')
    refused = score_quiz(load_quiz("convergence"), read_answers(above), "s")
    assert refused.status is Status.INVALID and "lr-role is answered twice, with different answers" in refused.error
    assert "inside the `answers` table and beside it" in refused.error
    spelled = tmp_path / "spelled.json"
    spelled.write_text('{"Quiz": " ", "Answers": {"lr-role": "C", "LR-Role": "c.", "quiz": "convergence"}}')
    answers = read_answers(spelled)
    assert answers.quiz == "convergence" and answers.error is None
    assert score_quiz(load_quiz("convergence"), answers, "s").score == 1
    number = tmp_path / "number.toml"
    number.write_text("steplr-three-steps = 0.05\n")
    scored = score_quiz(load_quiz("lr-schedulers"), read_answers(number), "s")
    assert [c.details["outcome"] for c in scored.checks if c.id == "steplr-three-steps"] == ["right"]
    bare = tmp_path / "bare.json"
    bare.write_bytes('{"answers": {"lr-role": "C"}}'.encode("utf-16-le"))  # UTF-16 without its byte-order mark
    assert "its text encoding could not be read" in read_answers(bare).error


def test_notebook_that_changes_answers_in_code_is_refused(tmp_path):
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('answers = {}\nanswers.update({"q1": "A"})')])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert "code cell 1, line 2: the grader reads only top-level `answers = {...}`" in read_answers(path).error


# --- scoring -----------------------------------------------------------------------


def test_perfect_answers_score_full_marks():
    result = score_quiz(load_quiz("convergence"), read_answers(FILES / "perfect.toml"), "perfect")
    assert result.status is Status.OK and result.error is None
    assert result.score == result.max_score == 5 and result.all_passed
    assert [c.id for c in result.checks] == [q.id for q in load_quiz("convergence").questions]
    assert all(c.visibility == "public" and c.message.startswith("Correct") for c in result.checks)


def test_partial_answers_score_what_can_be_scored_and_say_what_could_not():
    quiz = load_quiz("training-dynamics")
    result = score_quiz(quiz, read_answers(FILES / "partial.json"), "partial")
    checks = {c.id: c for c in result.checks}
    assert result.status is Status.OK and result.score == 6 and result.max_score == 10
    assert checks["patience-walkthrough"].passed  # "c" counts as "C"
    wrong = checks["deepcopy-snapshot"]
    assert not wrong.passed and wrong.details == {"given": "B", "key": "C", "outcome": "wrong"}
    assert wrong.message.startswith("You chose B (best = dict(model.state_dict())); the answer is C")
    assert quiz.question("deepcopy-snapshot").explanation in wrong.message
    assert checks["seed-spread"].details["outcome"] == "missing"
    assert checks["seed-spread"].message.startswith("No answer given; the answer is B")
    assert checks["plateau-needs-metric"].details["outcome"] == "no-such-option"
    no_such = checks["plateau-needs-metric"].message
    assert "'E' is not an option of this question (its options are A, B, C, D)" in no_such
    assert "'seed-spred' is not a question of quiz 'training-dynamics' (did you mean 'seed-spread'?)" in result.error
    assert "no answer for seed-spread" in result.error


def test_a_plain_mapping_can_be_scored_too():
    result = score_quiz(load_quiz("lr-schedulers"), {"purpose": "B", "two-phase": 3}, "s")
    assert result.score == 1 and "two-phase: 3 is not an option" in result.error


@pytest.mark.parametrize("answers, reason", [
    (FILES / "malformed.toml", "not valid TOML"),
    (FILES / "wrong-quiz.toml", "these answers are for quiz 'lr-schedulers', not 'convergence'"),
])
def test_unusable_answers_are_invalid_not_zero(answers, reason):
    result = score_quiz(load_quiz("convergence"), read_answers(answers), "s")
    assert result.status is Status.INVALID and reason in result.error and result.checks == ()


def test_answers_that_match_no_question_are_probably_for_another_quiz():
    result = score_quiz(load_quiz("convergence"), {"purpose": "B", "two-phase": "C"}, "s")
    assert result.status is Status.INVALID and "check that it is the right quiz" in result.error


# --- the command ---------------------------------------------------------------------


def test_check_perfect_json_follows_the_contract_and_exits_0(capsys, tmp_path):
    code, out, err = run_cli(capsys, "quiz", "check", FILES / "perfect.toml", "--quiz", "convergence", "--json",
                             "--html", tmp_path / "p.html")
    assert code == 0, err
    payload = json.loads(out)
    assert set(payload) == CONTRACT and all(set(c) == CHECK_CONTRACT for c in payload["checks"])
    assert payload["exercise"] == "convergence" and payload["student"] == "perfect"
    assert payload["status"] == "ok" and payload["score"] == payload["max_score"] == 5 and payload["error"] is None


def test_check_partial_prints_the_table_and_explanations_and_exits_1(capsys, tmp_path):
    code, out, err = run_cli(capsys, "quiz", "check", FILES / "partial.json", "--html", tmp_path / "p.html")
    assert code == 1, err
    flat = " ".join(out.split())  # rich wraps long lines
    assert "deepcopy-snapshot" in out and "WRONG" in out and "no such option" in out and "no answer" in out
    assert "Score 6/10" in flat and "did you mean 'seed-spread'?" in flat
    assert "Only copy.deepcopy copies the tensors themselves." in flat  # the explanation of a wrong answer


def test_check_notebook_answers_with_quiz_from_the_notebook(capsys, tmp_path):
    code, out, err = run_cli(capsys, "quiz", "check", FILES / "answers.ipynb", "--json", "--html", tmp_path / "a.html")
    assert code == 0, err
    assert json.loads(out)["exercise"] == "lr-schedulers"


@pytest.mark.parametrize("named", ["convergance", "convergence-answers"])
def test_check_without_a_quiz_id_scores_a_quiz_line_misspelt_or_named_as_the_template(capsys, tmp_path, named):
    """`quiz = "lr-scheduler"` (exit 2, "unknown quiz") where a batch of the same file scored it as asked."""
    path = tmp_path / "mine.toml"
    path.write_text((FILES / "perfect.toml").read_text().replace('quiz = "convergence"', f'quiz = "{named}"'))
    code, out, err = run_cli(capsys, "quiz", "check", path, "--json", "--html", tmp_path / "a.html")
    assert code == 0, err
    assert json.loads(out)["exercise"] == "convergence" and json.loads(out)["score"] == 5


def test_answers_written_in_windows_1252_are_read_with_a_note(tmp_path):
    """`student = "José"` saved as Windows-1252: "its text encoding could not be read", 0 for every answer."""
    path = tmp_path / "a.toml"
    path.write_bytes('student = "Jos\u00e9"\n[answers]\nlr-role = "C"\n'.encode("cp1252"))
    answers = read_answers(path)
    assert answers.error is None and answers.answers == {"lr-role": "C"}
    assert answers.notes[0].startswith("the file is not UTF-8; it was read as Windows-1252")


def test_check_finds_the_quiz_a_file_names_in_another_case(capsys, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text((FILES / "perfect.toml").read_text().replace('quiz = "convergence"', 'quiz = "Convergence"'))
    code, out, err = run_cli(capsys, "quiz", "check", path, "--json", "--html", tmp_path / "a.html")
    assert code == 0, err
    assert json.loads(out)["exercise"] == "convergence"


@pytest.mark.parametrize("args, reason", [
    (["malformed.toml", "--quiz", "convergence"], "not valid TOML"),
    (["wrong-quiz.toml", "--quiz", "convergence"], "these answers are for quiz 'lr-schedulers'"),
    (["perfect.toml", "--quiz", "nope"], "unknown quiz 'nope'"),
    (["answers-not-literal.ipynb"], "must be written out literally"),
    (["malformed.toml"], "not valid TOML"),
])
def test_check_unusable_input_exits_2_with_a_clear_reason(capsys, tmp_path, args, reason):
    code, out, err = run_cli(capsys, "quiz", "check", FILES / args[0], *args[1:], "--html", tmp_path / "x.html")
    assert code == 2 and reason in err and "Traceback" not in err


def test_check_without_a_quiz_id_asks_for_one(capsys, tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('[answers]\nlr-role = "C"\n')
    code, out, err = run_cli(capsys, "quiz", "check", path)
    assert code == 2 and "does not say which quiz it answers; pass --quiz ID" in err


def test_check_unusable_with_json_still_prints_one_object(capsys, tmp_path):
    code, out, err = run_cli(capsys, "quiz", "check", FILES / "wrong-quiz.toml", "--quiz", "convergence", "--json",
                             "--html", tmp_path / "x.html")
    payload = json.loads(out)
    assert code == 2 and set(payload) == CONTRACT and payload["status"] == "invalid" and payload["checks"] == []


def test_check_writes_the_page_next_to_the_answers_by_default(capsys, tmp_path):
    answers = tmp_path / "alice.toml"
    shutil.copy(FILES / "perfect.toml", answers)
    code, out, err = run_cli(capsys, "quiz", "check", answers)
    assert code == 0 and (tmp_path / "alice.quiz.html").is_file()


def test_check_refuses_a_page_that_would_replace_the_answers(capsys, tmp_path):
    answers = tmp_path / "alice.toml"
    shutil.copy(FILES / "perfect.toml", answers)
    code, out, err = run_cli(capsys, "quiz", "check", answers, "--html", answers)
    assert (code, out, err) == (2, "", f"grader quiz check: --html {answers} is the answers file: writing there would "
                                       "replace it; choose another path\n")
    assert answers.read_bytes() == (FILES / "perfect.toml").read_bytes()


# --- the HTML page -------------------------------------------------------------------


class _Rows(HTMLParser):
    """Text of each table row, keyed by the row's class (``outcome-right``, ``outcome-wrong``, ...)."""

    def __init__(self):
        super().__init__()
        self.rows, self.problems, self._row, self._in_note = [], [], None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and (attrs.get("class") or "").startswith("outcome-"):
            self._row = [attrs["class"], ""]
        if tag == "div" and attrs.get("class") == "note":
            self._in_note = True

    def handle_endtag(self, tag):
        if tag == "tr" and self._row:
            self.rows.append((self._row[0], " ".join(self._row[1].split())))
            self._row = None
        if tag == "div":
            self._in_note = False

    def handle_data(self, data):
        if self._row is not None:
            self._row[1] += data
        if self._in_note and data.strip():
            self.problems.append(data.strip())


def test_html_for_a_partly_wrong_answer_set_explains_each_wrong_answer(capsys, tmp_path):
    page = tmp_path / "partial.html"
    run_cli(capsys, "quiz", "check", FILES / "partial.json", "--html", page)
    html = page.read_text()
    assert "<html" in html and "<link" not in html and 'src="http' not in html  # self-contained
    parser = _Rows()
    parser.feed(html)
    quiz = load_quiz("training-dynamics")
    rows = parser.rows
    assert len(rows) == 10
    not_right = [(kind, text) for kind, text in rows if kind != "outcome-right"]
    assert [kind for kind, _ in not_right] == ["outcome-wrong", "outcome-wrong", "outcome-missing",
                                               "outcome-no-such-option"]
    for question_id in ("deepcopy-snapshot", "split-roles", "seed-spread", "plateau-needs-metric"):
        q = quiz.question(question_id)
        text = next(text for _, text in rows if question_id in text)
        shown = " ".join(q.explanation.replace("`", "").split())  # `names` are rendered as <code>
        assert shown in text and f"Answer: {q.answer}" in text
    right = next(text for kind, text in rows if "state-dict-alias" in text)
    assert "Correct." in right and quiz.question("state-dict-alias").explanation[:40] not in right
    assert any("did you mean 'seed-spread'?" in p for p in parser.problems)
    assert "<code>patience</code>" in html  # a `name` in an explanation is shown as code


QUIZ_IDS = ("convergence", "lr-schedulers", "training-dynamics")


@pytest.mark.parametrize("text, suffix", [
    ('lr-role = "C"\n[answers]\nlr-role = "c."\n', "toml"),  # one answer, above the table and in it
    ('{"answers": {"lr-role": "C"}, "lr-role": "c."}', "json"),
    ('{"answers": {"lr-role": "C", "lr-role": "C"}}', "json"),  # a key repeated with its value
    ('[answers]\nlr_role = "C"\n', "toml"),  # ids as Python names, or with spaces
    ('{"answers": {"LR role": "C"}}', "json"),
    ('{"answers": {"lr-role": "", "LR-ROLE": "C"}}', "json"),  # the template's blank beside the answer
    ('[answers]\nlr-role = "[C]"\n', "toml"),
    ('[answers]\nlr-role = "Answer: c"\n', "toml"),
    ('[answers]\nlr-role = "\uff23"\n', "toml"),  # fullwidth, from an East Asian keyboard
    ('[answers]\nlr-role = "C\u200b"\n', "toml"),  # a zero-width space pasted along
    ('{"answers": {"lr-role": "C", "lr-role": "c."}}', "json"),  # one option, given twice in two spellings
    ('[answers]\nlr-role = "C)."\n', "toml"),  # the label's bracket, then the sentence's full stop
    ('[answers]\nlr-role = "(C)."\n', "toml"),
    ('[answers]\nlr-role = "C - {C}"\n', "toml"),  # label, a dash, the option's text
    ('[answers]\nlr-role = "C \u2013 {C}"\n', "toml"),  # the en dash a word processor makes of it
    ('[answers]\nlr-role = "{C_typographic}"\n', "toml"),  # the option's text with typographic quotes and dashes
    ('[answers]\nlr-role = "C!"\n', "toml"),  # a sentence's ending after the label
    ('{"answers": {"lr-role": "c;"}}', "json"),
    ('[answers]\nlr-role = "**C**"\n', "toml"),  # markdown bold, as a notebook's markdown cell shows it
    ('[answers]\nlr-role = "`C`."\n', "toml"),  # code, then the sentence's full stop
    ('[answers]\nlr-role = \'"C"\'\n', "toml"),  # quoted inside the string
    ('[answers]\nlr-role = "C ({C})"\n', "toml"),  # the label, then its option's text in brackets, or the reverse
    ('[answers]\nlr-role = "{C} (C)"\n', "toml"),
    ('[answers]\nlr-role = "C: [{C}]"\n', "toml"),
    # A line copied from the released sheet, which lists each option as "- **C.** <its text>"
    ('[answers]\nlr-role = "- **C.** {C}"\n', "toml"),
    ('[answers]\nlr-role = "**C.**"\n', "toml"),
    ('[answers]\nlr-role = "- C"\n', "toml"),
    ('{"answers": {"lr-role": "C", "lr-role": ""}}', "json"),  # an answer, then the template's blank below it
    ('[answers]\nlr-role = {answer = "C"}\n', "toml"),  # a question as a table of its own
    ('[answers.lr-role]\nchoice = "C"\n', "toml"),
])
def test_one_right_answer_however_it_is_written_scores(tmp_path, text, suffix):
    option = load_quiz("convergence").question("lr-role").option_text("C")
    typographic = option.replace("'", "\u2019").replace("-", "\u2013")
    text = text.replace("{C}", option).replace("{C_typographic}", typographic)
    path = tmp_path / f"a.{suffix}"
    path.write_text(text, encoding="utf-8")
    result = score_quiz(load_quiz("convergence"), read_answers(path), "s", quizzes=QUIZ_IDS)
    assert result.status is Status.OK, result.error
    assert [c.id for c in result.checks if c.passed] == ["lr-role"], result.error


@pytest.mark.parametrize("written, scored", [
    ('"True, False"', True), ('"true; false"', True), ('"True,False"', True),
    ('"(True, False)"', True), ('"[True, False]"', True), ('"B (True, False)"', True),  # as Python prints a pair
    ('"True, True, False"', False), ('"False, True"', False), ('"[False, True]"', False),
    ('"A (True, False)"', False),  # a label beside another option's words is neither
])
def test_an_option_s_words_written_as_a_list_are_that_option(tmp_path, written, scored):
    """The option "True False" (what the code prints) answered "True, False": the key was shown as the answer."""
    path = tmp_path / "a.toml"
    path.write_text(f"[answers]\nreseed-before-model = {written}\n")
    result = score_quiz(load_quiz("training-dynamics"), read_answers(path), "s", quizzes=QUIZ_IDS)
    assert by_id(result)["reseed-before-model"].passed is scored


@pytest.mark.parametrize("written, outcome", [
    ('"5e-2"', "right"), ('".05"', "right"), ('"0.050"', "right"), ("0.05000000000000001", "right"),
    # a sentence's ending, brackets, the label beside its own value: as a label alone is read ("C!", "[C]")
    ('"5e-2."', "right"), ('"0.05!"', "right"), ('"[0.05]"', "right"), ('"(0.05)"', "right"),
    ('"B (0.05)"', "right"), ('"0.05 (B)"', "right"), ('"B: 5e-2"', "right"), ("[0.05]", "right"),
    ('"0.1"', "wrong"), ('"A (0.1)."', "wrong"),
    # near the key is not the key; a label beside another option's value, or two options, is neither
    ('"0.049"', "no-such-option"), ('"0.0501"', "no-such-option"), ('"1e-3"', "no-such-option"),
    ('"[0.049]"', "no-such-option"), ('"B (0.1)"', "no-such-option"), ('"0.1 (B)"', "no-such-option"),
    ('"C: 0.05"', "no-such-option"), ('"(0.05, 0.1)"', "no-such-option"), ('"B, D"', "no-such-option"),
    ('"BD"', "no-such-option"), ('"5%"', "no-such-option"),
])
def test_a_number_is_the_option_that_reads_as_that_number(tmp_path, written, outcome):
    quiz = load_quiz("lr-schedulers")
    path = tmp_path / "a.toml"
    path.write_text(f"[answers]\nsteplr-three-steps = {written}\n")
    checks = {c.id: c for c in score_quiz(quiz, read_answers(path), "s").checks}
    assert checks["steplr-three-steps"].details["outcome"] == outcome, checks["steplr-three-steps"].message


@pytest.mark.parametrize("question, written, outcome", [
    # An option of two numbers, given by its numbers, each to the option's own decimals ("about 0.0794, and 0.0")
    ("cosine-annealing", '"0.0794, 0.0"', "right"), ("cosine-annealing", '"0.07939, 0"', "right"),
    ("cosine-annealing", '"\u22480.0794 and 0"', "right"), ("cosine-annealing", '"0.0794, 0.1"', "wrong"),
    ("cosine-annealing", '"0.0794"', "no-such-option"),  # A's and D's first number alike
    ("cosine-annealing", '"not 0.0794, 0.0"', "no-such-option"), ("cosine-annealing", '"0.079, 0"', "no-such-option"),
    # The printout as a list of its words, and one label given twice
    ("reseed-before-model", '["True", "False"]', "right"), ("reseed-before-model", "[true, false]", "right"),
    ("reseed-before-model", '["False", "True"]', "wrong"), ("reseed-before-model", '"B B"', "right"),
    ("reseed-before-model", '["B", "B"]', "right"), ("reseed-before-model", '["B", "D"]', "no-such-option"),
])
def test_an_option_of_several_words_or_numbers_is_read_in_the_forms_a_student_writes(tmp_path, question, written,
                                                                                     outcome):
    """"0.0794, 0.0" for "about 0.0794, and 0.0", ["True", "False"] for "True False" and "B B" were each "not an
    option": right answers scored 0."""
    path = tmp_path / "a.toml"
    path.write_text(f"[answers]\n{question} = {written}\n", encoding="utf-8")
    checks = {c.id: c for c in score_quiz(load_quiz("training-dynamics"), read_answers(path), "s").checks}
    assert checks[question].details["outcome"] == outcome, checks[question].message


def test_several_options_given_to_a_one_option_question_are_named_as_several(tmp_path):
    """'B, D' was told "is not an option of this question (its options are A, B, C, D)", though both are."""
    path = tmp_path / "a.toml"
    path.write_text('[answers]\nlr-keyword = "B, D"\nhigh-fixed-lr = "BD"\nlr-role = "(A) or (C)"\n'
                    'fast-then-fine = "E, F"\n')
    result = score_quiz(load_quiz("convergence"), read_answers(path), "s")
    checks = by_id(result)
    assert checks["lr-keyword"].message.startswith("'B, D' gives 2 options (B and D), but this question takes one; "
                                                   "the answer is B")
    assert checks["high-fixed-lr"].message.startswith("'BD' gives 2 options (B and D), but this question takes one")
    assert checks["lr-role"].message.startswith("'(A) or (C)' gives 2 options (A and C)")
    assert checks["fast-then-fine"].message.startswith("'E, F' is not an option of this question")
    assert not any(c.passed for c in checks.values())
    assert "lr-keyword: 'B, D' gives 2 options (B and D), but the question takes one" in result.error


def test_a_quiz_field_that_names_no_quiz_is_told_so_not_sent_to_it(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('quiz = "convergance"\n[answers]\nlr-role = "C"\n')
    scored = score_quiz(load_quiz("convergence"), read_answers(path), "s", quizzes=QUIZ_IDS)
    assert scored.status is Status.OK and scored.score == 1
    assert "the file names quiz 'convergance', which is no quiz; scored as 'convergence'" in scored.note
    path.write_text('quiz = "week-3"\n[answers]\nlr-role = "C"\n')
    refused = score_quiz(load_quiz("convergence"), read_answers(path), "s", quizzes=QUIZ_IDS)
    assert refused.status is Status.INVALID and "--quiz week-3" not in refused.error
    assert "which is no quiz (the quizzes: convergence, lr-schedulers, training-dynamics)" in refused.error
    path.write_text('quiz = "lr-schedulers"\n[answers]\nlr-role = "C"\n')
    other = score_quiz(load_quiz("convergence"), read_answers(path), "s", quizzes=QUIZ_IDS)
    assert other.status is Status.INVALID and "check them with --quiz lr-schedulers" in other.error


def test_a_nul_byte_is_named_and_a_flood_of_unknown_ids_is_counted_not_listed(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b'{"answers": {"lr-role": "C"}}\x00')
    assert "the file holds a NUL byte (at byte 29)" in read_answers(path).error
    flood = {"lr-role": "C", **{f"extra-{i}": "A" for i in range(500)}}
    result = score_quiz(load_quiz("convergence"), flood, "s")
    assert result.status is Status.OK and result.score == 1
    assert "and 490 more ids that are no question of quiz 'convergence'" in result.error and len(result.error) < 3000


def test_a_letter_of_another_alphabet_is_named_where_the_answer_looks_right():
    result = score_quiz(load_quiz("convergence"), {"lr-role": "\u0421"}, "s")  # Cyrillic Es
    assert "it holds letters that are not Latin: 'С' (U+0421, CYRILLIC CAPITAL LETTER ES)" in result.error


def test_a_repeated_key_in_a_notebook_s_answers_is_one_answer_when_it_says_the_same():
    """`{"lr-role": "C", ..., "lr-role": "C"}` in a notebook was refused as answered twice, where JSON's was scored."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        same = read_answers(_notebook(pathlib.Path(folder), 'answers = {"lr-role": "C", "lr-keyword": "B", '
                                                            '"lr-role": "c."}'))
        assert same.error is None and score_quiz(load_quiz("convergence"), same, "s").score == 2
        other = read_answers(_notebook(pathlib.Path(folder), 'answers = {"lr-role": "C", "lr-role": "A"}'))
        assert "'lr-role' is given twice" in other.error


@pytest.mark.parametrize("name, text, says", [
    ("curly.toml", 'lr-role = \u201cC\u201d\n', "it uses curly quotes (\u201c \u201d), as a word processor types them; "
     "write each answer in straight quotes"),
    ("comma.json", '{"answers": {"lr-role": "C",}}', "a comma after the last item of an object or list, which JSON "
     "does not allow"),
    ("mac.toml", 'lr-role = "C"\rlr-keyword = "B"\r', "its lines end in a carriage return alone"),
    ("nested.toml", '[convergence]\nlr-role = "C"\n', "your answers sit inside a table named 'convergence'; name that "
     "table `answers`"),
])
def test_a_malformed_answers_file_is_told_what_the_student_most_likely_wrote(tmp_path, name, text, says):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    result = score_quiz(load_quiz("convergence"), read_answers(path), "s", quizzes=QUIZ_IDS)
    assert result.status is Status.INVALID and says in result.error, result.error


def test_the_quiz_s_title_in_its_quiz_field_names_it_and_a_long_or_odd_answer_is_shown_safely(tmp_path):
    quiz = load_quiz("convergence")
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"quiz": quiz.title, "answers": {"lr-role": "C", "lr-keyword": "B" * 400_000,
                                                                "high-fixed-lr": "C\u001b[2J"}}))
    result = score_quiz(quiz, read_answers(path), "s", quizzes=QUIZ_IDS)
    assert result.status is Status.OK and "the file names the quiz by its title" in result.note
    checks = {c.id: c for c in result.checks}
    assert len(checks["lr-keyword"].message) < 1500 and "(400,000 characters)" in checks["lr-keyword"].message
    assert len(result.error) < 1500
    given = checks["high-fixed-lr"].details["given"]
    assert "\x1b" not in given and "\\x1b[2J" in given


def test_an_answer_in_quotes_of_its_own_is_shown_as_python_writes_it(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('[answers]\nlr-role = "\'E\'"\n')  # quotes around an option are read away ("'D'" is D)
    result = score_quiz(load_quiz("convergence"), read_answers(path), "s", quizzes=QUIZ_IDS)
    assert "lr-role: \"'E'\" is not an option" in result.error


def test_a_number_in_a_form_the_grader_does_not_read_is_told_how_to_write_it_and_a_list_of_one_is_its_answer():
    """'5%' for 0.05 was told only "not an option (its options are A, B, C, D)"; ["B"] was not read as B."""
    from grader.quizzes.model import load_quiz
    from grader.quizzes.scoring import score_quiz

    quiz = load_quiz("lr-schedulers")
    said = {c.id: c for c in score_quiz(quiz, {"steplr-three-steps": "5%"}, "ada").checks}["steplr-three-steps"]
    assert not said.passed and ("(The options are numbers: give the letter, or the number as a decimal such as 0.1; "
                                "a percentage, a fraction or a decimal comma is not read.)") in said.message
    listed = {c.id: c for c in score_quiz(quiz, {"steplr-three-steps": ["B"]}, "ada").checks}["steplr-three-steps"]
    assert listed.passed
