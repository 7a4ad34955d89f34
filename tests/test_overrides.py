"""Overrides with an audit trail, one student's regrade, and ``grader status``, on a graded quiz class.

Quizzes grade without a kernel, so the class is cheap: ada answered one question wrong, ben every
question right, cara handed in a file that is not TOML.
"""

import csv
import json
import shutil

import pytest

from grading_support import FILES, run_cli
from grader.results import CheckResult, Status, SubmissionResult
from grader.store.gradebook import Gradebook
from grader.store.overrides import Override, final_score, review_reason

QUIZZES = FILES / "quizzes"
COMMENT = "A is defensible: the question did not say plain SGD"


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines at the console's width


@pytest.fixture(scope="module")
def quiz_class(tmp_path_factory):
    """The folder and gradebook of a graded quiz class, before any override."""
    root = tmp_path_factory.mktemp("quiz-class")
    folder = root / "class"
    folder.mkdir()
    shutil.copy(QUIZZES / "convergence-one-wrong.toml", folder / "ada.toml")
    shutil.copy(QUIZZES / "perfect.toml", folder / "ben.toml")
    shutil.copy(QUIZZES / "malformed.toml", folder / "cara.toml")
    book = root / "gradebook.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADER_SECRET", "override-test-secret")
        from grader.cli import main

        assert main(["grade", str(folder), "--exercise", "convergence", "--gradebook", str(book), "--workers", "1",
                     "--json"]) == 0
    return folder, book


@pytest.fixture
def graded(quiz_class, tmp_path, monkeypatch):
    """A copy of the graded class each test may change."""
    folder, book = tmp_path / "class", tmp_path / "gradebook.sqlite"
    shutil.copytree(quiz_class[0], folder)
    shutil.copy(quiz_class[1], book)
    monkeypatch.setenv("GRADER_SECRET", "override-test-secret")
    return folder, book


def _grade(capsys, folder, book, *extra):
    code, out, err = run_cli(capsys, "grade", folder, "--exercise", "convergence", "--gradebook", book,
                             "--workers", "1", "--json", *extra)
    assert code == 0, err
    return [json.loads(line)["student"] for line in out.splitlines()], _flat(err)


def test_an_override_shows_with_its_comment_survives_regrades_and_is_flagged_when_the_result_changes(
        graded, capsys, tmp_path):
    folder, book = graded
    code, out, _ = run_cli(capsys, "override", "ada", "convergence", "--check", "lr-role", "--points", 1,
                           "--comment", COMMENT, "--by", "kim", "--gradebook", book)
    assert code == 0 and out == (f"override recorded: ada's convergence, check lr-role: 1 point (the grader gave "
                                 f"fail 0/1), by kim: {COMMENT}\n")
    assert run_cli(capsys, "override", "cara", "convergence", "--points", 3, "--comment", "answers sent by email",
                   "--by", "kim", "--gradebook", book)[0] == 0

    # A regrade of unchanged work keeps both, and flags neither.
    graded_now, err = _grade(capsys, folder, book, "--regrade")
    assert graded_now == ["ada", "ben", "cara"] and "Override to review" not in err
    code, out, _ = run_cli(capsys, "overrides", "--gradebook", book)
    lines = out.splitlines()
    assert lines[0] == "2 overrides in force:"
    assert lines[1].startswith("ada  convergence  lr-role  1 point (graded fail 0/1)  by kim, ")
    assert lines[1].endswith(f": {COMMENT}") and "REVIEW" not in out
    assert lines[2].startswith("cara  convergence  (whole score)  3 points (graded invalid 0/0)  by kim, ")

    # ada hands in again with the answer the grader wanted: her override stays, flagged for a person to look at.
    shutil.copy(QUIZZES / "perfect.toml", folder / "ada.toml")
    graded_now, err = _grade(capsys, folder, book)
    assert graded_now == ["ada"]
    assert ("Override to review: ada, check lr-role (1 point by kim): the grader's result for lr-role changed: fail "
            "0/1 when overridden, pass 1/1 now; it stays in force until it is recorded again or removed (`grader "
            "overrides --review`)") in err
    code, out, _ = run_cli(capsys, "overrides", "--review", "--gradebook", book)
    assert out.splitlines()[0] == "1 overrides in force, 1 to review:"
    assert out.splitlines()[1].endswith(f"{COMMENT}  REVIEW: the grader's result for lr-role changed: fail 0/1 when "
                                        "overridden, pass 1/1 now")

    # The student's page shows it, with its comment; the summary marks it.
    out_dir = tmp_path / "feedback"
    assert run_cli(capsys, "feedback", "--gradebook", book, "--out", out_dir)[0] == 0
    cara = _flat((out_dir / "convergence" / "cara.html").read_text())
    assert ('<span class="score">3 / 5</span> points <span class="tag">(changed by your instructor; the grader gave '
            '0)') in cara
    assert ("<strong>Changed by your instructor:</strong> <ul><li>the whole score: 3 / 5 points, instead of the "
            "grader's 0. answers sent by email <span class=\"tag\">kim, ") in cara
    ada = _flat((out_dir / "convergence" / "ada.html").read_text())
    assert f"check <code>lr-role</code>: 1 / 1 points, instead of the grader's 1. {COMMENT}" in ada
    assert "override; the grader gave 0" in _flat((out_dir / "index.html").read_text())

    # The CSV's final score is the override's; the notes say who gave it and why.
    assert run_cli(capsys, "export", "--gradebook", book, "--format", "csv", "--out", tmp_path / "grades.csv")[0] == 0
    rows = {row["name"]: row for row in csv.DictReader((tmp_path / "grades.csv").read_text().splitlines())}
    assert (rows["cara"]["convergence_score"], rows["cara"]["convergence_raw"]) == ("3", "0")
    assert "convergence: the whole score overridden to 3 by kim (answers sent by email)" in rows["cara"]["notes"]
    assert rows["ada"]["convergence_score"] == "5" and "to review: the grader's result for lr-role changed" in \
        rows["ada"]["notes"]
    # Gradescope's results.json carries it as a test of its own, and the comment.
    assert run_cli(capsys, "export", "--gradebook", book, "--format", "gradescope", "--out", tmp_path / "gs")[0] == 0
    results = json.loads((tmp_path / "gs" / "cara" / "results.json").read_text())
    assert results["score"] == 3 == sum(t["score"] for t in results["tests"])
    assert results["tests"][-1]["output"] == "The score is set to 3: answers sent by email"


def test_remove_ends_an_override_and_the_history_keeps_every_step(graded, capsys):
    _, book = graded
    args = ("ben", "convergence", "--check", "lr-keyword", "--gradebook", book, "--by", "kim")
    assert run_cli(capsys, "override", *args, "--points", 0, "--comment", "copied from ada")[0] == 0
    code, out, _ = run_cli(capsys, "override", *args, "--remove", "--comment", "not copied after all")
    assert code == 0 and out == ("removed the override of check lr-keyword for ben's convergence; the grader's result "
                                 "(pass 1/1) counts again; the history keeps it\n")
    assert run_cli(capsys, "overrides", "--gradebook", book)[1] == "0 overrides in force\n"
    lines = run_cli(capsys, "overrides", "--history", "--gradebook", book)[1].splitlines()
    assert lines[0] == "2 overrides recorded or removed:"
    assert lines[1].startswith("ben  convergence  lr-keyword  0 points (graded pass 1/1)  by kim, ")
    assert lines[2].startswith("ben  convergence  lr-keyword  removed  by kim, ") and lines[2].endswith(
        ": not copied after all")
    code, out, _ = run_cli(capsys, "status", "--gradebook", book, "--student", "ben")
    assert out.splitlines()[1] == "  ben  ok  5/5"  # the grader's score counts again


@pytest.mark.parametrize("args, message", [
    (("zoe", "convergence", "--points", 1, "--comment", "x"),
     "'zoe' has no graded result for convergence in {book}; students graded: ada, ben, cara"),
    (("ada", "convergence", "--check", "lr-rol", "--points", 1, "--comment", "x"),
     ("convergence has no check 'lr-rol' in ada's result; did you mean 'lr-role'? its checks: lr-role, lr-keyword, "
      "high-fixed-lr, scheduler-printout, fast-then-fine")),
    (("ada", "convergence", "--check", "lr-role", "--points", 2, "--comment", "x"),
     "--points must be between 0 and 1 for check lr-role, got 2"),
    (("ada", "convergence", "--points", 6, "--comment", "x"),
     "--points must be between 0 and 5 for the whole score of convergence, got 6"),
    (("ada", "convergence", "--check", "lr-role", "--points", 1, "--comment", "  "),
     "--comment must say why: the student's page shows it beside the points"),
    (("ada", "convergence", "--check", "lr-role"), "--points is required (or --remove to end the override in force)"),
    (("ada", "convergence", "--remove"), "no override in force for ada's convergence, the whole score"),
    (("cara", "convergence", "--check", "lr-role", "--points", 1, "--comment", "x"),
     ("cara's convergence result has no checks (status invalid: {folder}/cara.toml: not valid TOML (Illegal "
      "character '\\n' (at line 4, column 13))); override the whole score instead (leave out --check)")),
    (("ada", "tiny-model", "--points", 1, "--comment", "x"),
     "{book} holds no result for 'tiny-model': graded assignments: convergence"),
])
def test_an_override_that_cannot_be_recorded_says_why(graded, quiz_class, capsys, args, message):
    _, book = graded
    folder = quiz_class[0]  # where the results were graded, as their messages say
    code, out, err = run_cli(capsys, "override", *args, "--gradebook", book)
    assert (code, out) == (2, "")
    assert err == f"grader override: {message.format(book=book, folder=folder)}\n"


def test_status_lists_who_failed_what(graded, quiz_class, capsys):
    _, book = graded
    code, out, _ = run_cli(capsys, "status", "--gradebook", book)
    folder = quiz_class[0]
    assert code == 0 and out.splitlines() == [
        "convergence: 3 students:",
        "  ada   ok, 1 of 5 checks failed  4/5  failed: lr-role",
        "  ben   ok                        5/5",
        (f"  cara  invalid                   0/5  {folder}/cara.toml: not valid TOML (Illegal character '\\n' (at "
         "line 4, column 13))")]
    code, out, _ = run_cli(capsys, "status", "--gradebook", book, "--check", "lr-role", "--failed")
    assert out.splitlines()[0] == "convergence: 2 of 3 students failed check lr-role:"
    assert out.splitlines()[1].startswith("  ada   FAIL  0/1  You chose A (Which activation function the layers use)")
    assert out.splitlines()[2].startswith("  cara  FAIL  -  no result: the run ended as invalid")
    rows = json.loads(run_cli(capsys, "status", "--gradebook", book, "--failed", "--json")[1])["rows"]
    assert [(r["student"], r["failed"]) for r in rows] == [("ada", ["lr-role"]), ("cara", [])]
    code, _, err = run_cli(capsys, "status", "--gradebook", book, "--check", "lr-rate")
    assert code == 2 and err == (f"grader status: no result in {book} has a check 'lr-rate' in convergence; checks "
                                 "graded: fast-then-fine, high-fixed-lr, lr-keyword, lr-role, scheduler-printout\n")


def test_grade_one_student_keeps_the_history_and_the_summary_shows_the_latest(graded, capsys):
    folder, book = graded
    assert _grade(capsys, folder, book, "--student", "Ben", "--regrade")[0] == ["ben"]
    assert _grade(capsys, folder, book, "--student", "ben")[0] == []  # unchanged: skipped without --regrade
    with Gradebook.open(book, create=False) as gradebook:
        assert gradebook.run_count() == 4  # ada, ben twice, cara: the regrade added a run
        assert sorted(r.result.student for r in gradebook.current_runs()) == ["ada", "ben", "cara"]
    code, _, err = run_cli(capsys, "grade", folder, "--exercise", "convergence", "--gradebook", book, "--student",
                           "bne")
    assert code == 2 and err == (f"grader grade: no submission of 'bne' in {folder} (did you mean ben?); its "
                                 "students: ada, ben, cara\n")
    # One student regraded with another secret would give the class two sets of hidden data: refused.
    code, _, err = run_cli(capsys, "grade", folder, "--exercise", "convergence", "--gradebook", book, "--student",
                           "ben", "--regrade", "--secret-file", QUIZZES / "perfect.toml")
    assert code == 2 and "holds results graded with another instructor secret" in err


def _result(passed: bool, points: float, status=Status.OK) -> SubmissionResult:
    checks = (CheckResult("a", passed, points, 2, "public", ""), CheckResult("b", True, 3, 3, "public", ""))
    return SubmissionResult("ex", "ada", status, checks=checks if status is Status.OK else ())


def _override(check: str, points: float, graded: dict) -> Override:
    return Override(1, "ada", "ex", check, "set", points, "why", "kim", "2026-12-01T10:00:00+00:00", 1, graded)


def test_final_scores_and_reviews_follow_the_rules():
    check = _override("a", 2.0, {"passed": False, "points": 0.0, "max_points": 2.0})
    whole = _override("", 4.5, {"status": "ok", "score": 3.0, "max_score": 5.0})
    final = final_score(_result(False, 0.0), [check])
    assert (final.raw, final.score, final.max_score, final.to_review) == (3.0, 5.0, 5.0, ())
    assert final_score(_result(False, 0.0), [check, whole]).score == 4.5  # the whole score has the last word
    assert review_reason(check, _result(False, 0.0)) == ""
    assert review_reason(check, _result(False, 1.0)) == ("the grader's result for a changed: fail 0/2 when overridden, "
                                                         "fail 1/2 now")
    # A check the new run did not score still counts at the override's points, and is flagged.
    gone = _result(False, 0.0, Status.INVALID)
    assert final_score(gone, [check]).score == 2.0
    assert review_reason(check, gone) == "the grader's result for a changed: fail 0/2 when overridden, no result now"
    assert final_score(gone, [], full=5.0).max_score == 5.0
