"""early-stopping: the student's train_model_extended, checked on its own run and on the grader's calls."""

import pytest

from grading_support import FILES, by_id, grade, solution, student
from grader.results import Status

CASES = FILES / "early-stopping"


def test_solution_full_marks():
    result = grade(solution("early-stopping"), "early-stopping")
    assert result.status is Status.OK, result.error
    assert result.score == result.max_score == 10, [(c.id, c.message) for c in result.checks if not c.passed]
    checks = by_id(result)
    assert checks["stopped-after-patience"].message.startswith("Your run stopped at epoch 33: 20 epochs after the best "
                                                               "epoch 13")


def test_untouched_notebook_scores_zero_with_what_to_do():
    result = grade(student("early-stopping"), "early-stopping")
    assert result.score == 0
    assert "NotImplementedError" in result.error
    checks = by_id(result)
    assert "still the TODO stub" in checks["own-function"].message
    assert "must define `history`" in checks["best-epoch"].message
    assert checks["grader-run-patience"].message.startswith(
        "When the grader ran your train_model_extended on its own data (patience 5), it raised NotImplementedError")


def test_another_loss_convention_and_weights_in_a_file_get_full_marks():
    result = grade(CASES / "mean-loss-in-a-file.ipynb", "early-stopping", hidden=False)
    assert result.status is Status.OK, result.error
    assert result.score == result.max_score == 9, [(c.id, c.message) for c in result.checks if not c.passed]
    restored = by_id(result)["restored-best"]
    assert restored.metrics["loss_convention"] == "mean over samples"
    assert "your history reports the mean loss per sample, so the grader compares in that scale" in restored.message


@pytest.fixture(scope="module")
def graded():
    return {name: grade(CASES / f"{name}.ipynb", "early-stopping", hidden=False)
            for name in ("no-restore", "no-deepcopy", "zero-based-best-epoch", "late-stop", "course-flaw")}


def test_no_restore_is_diagnosed(graded):
    message = by_id(graded["no-restore"])["restored-best"].message
    assert "it is the last epoch's model (epoch 33" in message
    assert "never calls model.load_state_dict" in message
    assert not by_id(graded["no-restore"])["grader-run-restored"].passed


def test_state_dict_without_deepcopy_is_diagnosed(graded):
    checks = by_id(graded["no-deepcopy"])
    assert not checks["restored-best"].passed
    assert "without copy.deepcopy" in checks["restored-best"].message
    assert checks["best-epoch"].passed  # the numbers were right; only the saved weights were not


def test_zero_based_best_epoch_is_diagnosed(graded):
    checks = by_id(graded["zero-based-best-epoch"])
    assert checks["best-epoch"].message == ("In your run, best_epoch is 12 but the lowest val loss is at epoch 13 "
                                            "(5.7290): epochs are counted from 1: inside a loop over range(n_epochs) "
                                            "use best_epoch = epoch + 1.")
    assert not checks["grader-run-best-epoch"].passed


def test_stopping_one_epoch_late_is_diagnosed(graded):
    checks = by_id(graded["late-stop"])
    assert "stopped at epoch 34" in checks["stopped-after-patience"].message
    assert "one epoch late" in checks["stopped-after-patience"].message
    assert "one epoch late" in checks["grader-run-patience"].message


def test_the_course_flaw_is_caught_only_where_patience_never_runs_out(graded):
    checks = by_id(graded["course-flaw"])
    assert checks["restored-best"].passed and checks["grader-run-restored"].passed
    flaw = checks["restored-without-trigger"]
    assert not flaw.passed
    assert "it is the last epoch's model (epoch 25" in flaw.message
    assert "also when training uses all its epochs" in flaw.message
