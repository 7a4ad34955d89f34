"""random-seeds: reported figures against the grader's own measurement of the exported models."""

import pytest

from grading_support import FILES, by_id, grade, solution, student
from grader.results import Status

CASES = FILES / "random-seeds"


def test_solution_full_marks_and_matches_the_reference_run():
    result = grade(solution("random-seeds"), "random-seeds")
    assert result.status is Status.OK, result.error
    assert result.score == result.max_score == 10, [(c.id, c.message) for c in result.checks if not c.passed]
    message = by_id(result)["reported-vs-measured"].message
    assert "seed 3: matches (val 57.78%, test 66.67%, best epoch 27, as the reference run)" in message
    assert "running figure" in message  # the check says which definition it uses
    assert "spread of 8.33 points" in by_id(result)["seed-spread"].message


def test_untouched_notebook_scores_zero():
    result = grade(student("random-seeds"), "random-seeds", hidden=False)
    assert result.score == 0
    assert all("`models` is still empty" in c.message for c in result.checks)


@pytest.fixture(scope="module")
def graded():
    return {name: grade(CASES / f"{name}.ipynb", "random-seeds", hidden=False)
            for name in ("typed-by-hand", "same-seed", "running-train-acc", "not-restored")}


def test_results_typed_by_hand_are_caught(graded):
    check = by_id(graded["typed-by-hand"])["reported-vs-measured"]
    assert not check.passed
    assert "val_acc reported 53.33%, measured 54.44%" in check.message
    assert "typed by hand" in check.message


def test_one_seed_for_all_runs_is_caught(graded):
    check = by_id(graded["same-seed"])["seed-spread"]
    assert not check.passed
    assert check.message.startswith("The models for seeds 0 and 3, 0 and 18, 3 and 18 are identical")


def test_the_course_running_train_accuracy_is_accepted(graded):
    result = graded["running-train-acc"]
    assert by_id(result)["reported-vs-measured"].passed
    assert result.score == 8


def test_figures_from_an_unrestored_model_do_not_match(graded):
    check = by_id(graded["not-restored"])["reported-vs-measured"]
    assert not check.passed and "measured" in check.message
    assert check.points < 4
