"""``grader quiz verify``: the shipped keys hold when their code runs; seed 002's original question 4 does not."""

import pathlib

import pytest

import grader.quizzes.verify as verify_module
from grader.cli import main
from grader.kernel.limits import Limits
from grader.kernel.quiz_runner import SnippetOutcome as Outcome
from grader.kernel.quiz_runner import run_many
from grader.quizzes.model import Expectation, load_quiz, parse_quiz, quiz_ids
from grader.quizzes.verify import MISMATCH, NOT_CHECKABLE, VERIFIED, compare, verify_quizzes

FILES = pathlib.Path(__file__).parent / "files" / "quizzes"
FAULTY = FILES / "faulty-convergence-q4.toml"
WRONG_KEY = FILES / "wrong-key.toml"
WARNING = "Detected call of `lr_scheduler.step()` before `optimizer.step()`"


@pytest.fixture(scope="module")
def verified():
    """Every shipped quiz and the faulty fixture, verified once (one sandbox, one torch import)."""
    quizzes = [load_quiz(quiz_id) for quiz_id in quiz_ids()] + [parse_quiz(FAULTY), parse_quiz(WRONG_KEY)]
    results = verify_quizzes(quizzes)
    return {quiz.id: [r for r in results if r.quiz == quiz.id] for quiz in quizzes}


def test_shipped_quizzes_verify_without_a_mismatch(verified):
    for quiz_id in quiz_ids():
        mismatches = [(r.question, r.detail, r.did) for r in verified[quiz_id] if r.status == MISMATCH]
        assert mismatches == [], quiz_id


def test_which_questions_are_checked_by_execution(verified):
    def questions(quiz_id, status):
        return sorted({r.question for r in verified[quiz_id] if r.status == status})

    assert questions("lr-schedulers", NOT_CHECKABLE) == ["purpose"]
    assert questions("convergence", NOT_CHECKABLE) == ["fast-then-fine"]
    assert questions("training-dynamics", NOT_CHECKABLE) == ["monitor-val-loss", "seed-spread", "split-roles"]
    assert len(questions("training-dynamics", VERIFIED)) == 7
    assert all(r.detail for quiz_id in quiz_ids() for r in verified[quiz_id] if r.status == NOT_CHECKABLE)


def test_corrected_question_4_prints_what_its_key_says_and_the_swapped_order_warns(verified):
    runs = [r for r in verified["convergence"] if r.question == "scheduler-printout"]
    assert [r.status for r in runs] == [VERIFIED, VERIFIED]
    assert "printed epoch 1: lr 0.1000 | epoch 2: lr 0.0500 | epoch 3: lr 0.0500 | epoch 4: lr 0.0250" in runs[0].did
    assert "no warning" in runs[0].did and WARNING in runs[1].did


def test_faulty_fixture_is_flagged_with_what_the_code_really_printed_and_warned(verified):
    printout, order = verified["faulty-convergence-q4"]
    assert printout.status == order.status == MISMATCH
    assert printout.detail.startswith("expected to print epoch 1: lr 0.0500 | epoch 2: lr 0.0500")
    assert "printed epoch 1: lr 0.1000 | epoch 2: lr 0.0500 | epoch 3: lr 0.0500 | epoch 4: lr 0.0250" in printout.did
    assert order.detail == "expected no warning containing 'lr_scheduler.step()'"
    assert f"warned UserWarning: {WARNING}" in order.did


def test_a_key_that_its_own_printout_or_claim_contradicts_is_a_mismatch(verified):
    printout, claim = verified["wrong-key"]
    # The printout claim itself holds: only the options show that the code prints B's answer, not the key's.
    assert printout.status == claim.status == MISMATCH
    assert printout.detail == ("the code prints after epoch 1: lr 0.1000 | after epoch 2: lr 0.0500 | after epoch 3: "
                               "lr 0.0500 | after epoch 4: lr 0.0250, which is what option B says, but the key is A")
    assert claim.detail == "the claim backs option B, but the key is A"


def test_key_checks_read_the_claims_label_and_the_options_values():
    from grader.kernel.quiz_runner import SnippetOutcome
    from grader.quizzes.model import CodeRun, Question
    from grader.quizzes.verify import key_problems, shown_by

    question = Question("q", "", (("A", "True True"), ("B", "True False"), ("C", "about 0.0794, and 0.0")), "B", "")
    assert shown_by(question, "True False\n") == ["B"]
    assert shown_by(question, "0.07939\n0.0\n") == ["C"]  # to the precision the option quotes
    assert shown_by(question, "epoch 3: 0.07939\nepoch 10: 0.0\n") == ["C"]  # the last value of each line
    against_key = CodeRun("", Expectation("against option B: it warns", warning="x"))
    assert key_problems(question, against_key, SnippetOutcome()) == ["the claim argues against option B, but B is the key"]
    unknown = CodeRun("", Expectation("key E: it prints", stdout="1"))
    assert key_problems(question, unknown, SnippetOutcome(stdout="1")) == [
        "the claim names option E, which the question does not have"]


def test_verify_command_exits_1_on_the_faulty_fixture_and_0_on_the_shipped_ones(verified, capsys, monkeypatch):
    # The runs themselves were made once, by the fixture; here only the command's handling is under test.
    monkeypatch.setattr(verify_module, "verify_quizzes", lambda quizzes: [r for q in quizzes for r in verified[q.id]])
    assert main(["quiz", "verify", str(FAULTY)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "2 mismatch(es)" in out and "It really printed epoch 1: lr 0.1000" in out and WARNING in out
    assert main(["quiz", "verify"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "17 claim(s) verified (15 question(s)), 0 mismatch(es), 5 question(s) not checkable" in out


def test_verify_command_with_an_unknown_quiz_exits_2(capsys):
    assert main(["quiz", "verify", "nope"]) == 2
    assert "unknown quiz 'nope'" in capsys.readouterr().err
    assert main(["quiz", "verify", "missing.toml"]) == 2


def test_timeout_crash_and_exceptions_are_outcomes_with_reasons():
    timeout, crash, raised, expected = run_many(
        ["while True:\n    pass", "import os\nos._exit(3)", "raise ValueError('bad key')", "{}['x']"],
        Limits(cell_timeout_s=2.0, total_timeout_s=2.0))
    assert timeout.failure == "timed out: no result within 2 s"
    assert crash.failure.startswith("crashed (exit code 3)")
    claim = Expectation("prints 1", stdout="1")
    assert compare(claim, timeout) == ["timed out: no result within 2 s"]
    assert compare(claim, raised) == ["expected to print 1", "raised ValueError: bad key"]
    assert "raised ValueError at line 1: bad key" in raised.describe()
    assert compare(Expectation("a lookup fails", exception="LookupError"), expected) == []  # KeyError is one
    wrong_type = Expectation("a lookup fails", exception="TypeError")
    assert compare(wrong_type, expected) == ["expected TypeError to be raised"]


@pytest.mark.parametrize("expect, outcome, problems", [
    (Expectation("c", stdout="a\nb"), Outcome(stdout="a  \nb\n\n"), []),
    (Expectation("c", stdout_lines_approx=(0.1, 0.05)), Outcome(stdout="lr 0.1\nlr 0.05\nlr 0.025\n"),
     ["expected 2 printed line(s) ending in the numbers 0.1, 0.05"]),
    (Expectation("c", stdout_lines_approx=(0.1,), tolerance=1e-3), Outcome(stdout="epoch 3: 0.10004\n"), []),
    (Expectation("c", warning="step()"), Outcome(warnings=("UserWarning: call step() later",)), []),
    (Expectation("c", warning="step()"), Outcome(), ["expected a warning containing 'step()'"]),
    (Expectation("c", no_warning=True), Outcome(warnings=("UserWarning: x",)), ["expected no warning at all"]),
    (Expectation("c", no_warning="lr"), Outcome(warnings=("UserWarning: x",)), []),
])
def test_compare(expect, outcome, problems):
    assert compare(expect, outcome) == problems
