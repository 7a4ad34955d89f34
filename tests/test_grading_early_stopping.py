"""early-stopping: the student's train_model_extended, checked on its own run and on the grader's calls."""

import copy
import dataclasses
import warnings

import pytest
import torch
from torch import nn, optim
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader

from grading_support import FILES, by_id, grade, round_trip, solution, student
from grader.assignments.catalog import load_exercise
from grader.checks import CheckContext
from grader.checks.base import CheckFailed
from grader.checks.training import (_torch_schedule, accuracy_scale, best_epoch_argmin, resolve_run,
                                    scheduler_cadence)
from grader.diagnosis.restore_messages import RestoreEvidence, why_not_best
from grader.diagnosis.training_code import restore_code, signature
from grader.results import Status
from reference import SimpleMLP, generate_checkerboard_dataset, train_model_extended

CASES = FILES / "early-stopping"
# The grader's call without a validation loader: many fixtures' functions assume one, which that check judges alone
# (test_a_function_that_assumes_a_validation_loader_is_told_where_it_fails); the other tests leave it aside.
NOVAL = "without-validation"


def test_solution_full_marks():
    result = grade(solution("early-stopping"), "early-stopping")
    assert result.status is Status.OK, result.error
    assert result.score == result.max_score == 15.5, [(c.id, c.message) for c in result.checks if not c.passed]
    checks = by_id(result)
    assert checks["strict-improvement"].message == (
        "At lr=0 (the val loss never changes) your function reported best_epoch 1 and stopped at epoch 4: no tie "
        "counted as an improvement. On a run given lr=1e-06, where its val loss fell by 1.5e-05 to 1.8e-05 an epoch, "
        "your function reported best_epoch 12 and ran all 12 epochs: every fall counted as an improvement.")
    assert checks["follows-arguments"].message == (
        "The grader called your function with n_epochs=25, patience=100 and lr=0.01: it trained all 25 epochs, one "
        "optimizer step per training batch. Its Adam optimizer stepped at lr 0.01.")
    assert checks["scheduler-per-epoch"].message.startswith("Your function stepped StepLR(step_size=1, gamma=0.5) once "
                                                            "per epoch, after the epoch's updates")
    assert checks["stopped-after-patience"].message.startswith("Your run stopped at epoch 33: 20 epochs after the best "
                                                               "epoch 13")
    assert checks["loss-records"].message == (
        "In the grader's call of your function, train_loss adds up all of each epoch's 6 training batches, as the "
        "grader measured them (the course's: the sum of the batches' mean losses); val_loss adds up all of each "
        "epoch's 6 validation batches, as the grader measured them (the course's: the sum of the batches' mean "
        "losses).")


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
    assert result.score == result.max_score == 14.5, [(c.id, c.message) for c in result.checks if not c.passed]
    restored = by_id(result)["restored-best"]
    assert restored.metrics["loss_convention"] == "mean over samples"
    assert "your history reports the mean loss per sample, so the grader compares in that scale" in restored.message


@pytest.mark.parametrize("name", ["function-as-a-partial", "function-as-a-callable-object"])
def test_a_partial_or_a_callable_object_is_the_student_s_function(name):
    """functools.partial(fit, optimizer_cls=optim.Adam) and an object with __call__, each a whole correct loop: 0/15,
    "`train_model_extended` must be a function, but it is a partial object", and every other check not credited."""
    result = grade(CASES / f"{name}.ipynb", "early-stopping", hidden=False)
    assert result.status is Status.OK, result.error
    assert result.score == result.max_score == 14.5, [(c.id, c.message) for c in result.checks if not c.passed]


def test_lists_kept_between_calls_are_named_instead_of_what_they_would_mean_for_one_call():
    """The seven result lists are globals, never cleared: each call of the grader's returned the calls before it too,
    and five checks read them as one run's ("the lowest val loss is at epoch 56", "4 scheduler calls in 106
    epochs", "Start the best val loss at float('inf')"), none of them true."""
    result = grade(CASES / "lists-kept-between-calls.ipynb", "early-stopping", hidden=False)
    failed = {c.id: c.message for c in result.checks if not c.passed}
    assert set(failed) == {"grader-run-best-epoch", "grader-run-patience", "grader-run-restored",
                           "restored-without-trigger", "follows-arguments", "best-epoch-without-trigger",
                           "scheduler-per-epoch", "without-validation", "strict-improvement"}, failed
    # Without the grader's notes of its batches a call cannot tell values kept from earlier calls from values appended
    # after its loop: both are named. With them (the 25-epoch call), the last 25 values are the call's own.
    assert failed["grader-run-patience"].startswith(
        "In the grader's own run of your function, your function returned 61 epochs of losses but made 28 passes over "
        "its training loader: 33 more values than the epochs it trained. Two causes give that: lists that still hold "
        "values from before this call")
    assert failed["follows-arguments"].startswith(
        "In the grader's call with n_epochs=25 and patience=100, your function returned 102 epochs of losses but made "
        "25 passes over its training loader: its last 25 values are this call's epochs, as the grader measured its "
        "training batches, and the 77 before them are earlier calls': its lists still hold values from before this "
        "call")
    assert all("still hold values from before this call" in m for m in failed.values())


def test_a_training_loss_per_batch_is_named_as_such_not_as_lists_kept_between_calls():
    """One training loss per batch, in lists made at each call: nine checks said "its lists still hold values from
    before this call" (8.5/15), and scheduler-per-epoch counted its 24 losses as 24 epochs."""
    result = grade(CASES / "train-loss-per-batch.ipynb", "early-stopping", hidden=False)
    failed = {c.id: c.message for c in result.checks if not c.passed}
    assert list(failed) == [NOVAL], failed
    assert failed[NOVAL].endswith("it returned 48 training losses, one per optimizer step (per batch), where the "
                                  "course records one per epoch (the loss over the epoch's batches).")


@pytest.fixture(scope="module")
def graded():
    return {name: grade(CASES / f"{name}.ipynb", "early-stopping", hidden=False)
            for name in ("no-restore", "no-deepcopy", "zero-based-best-epoch", "late-stop", "course-flaw",
                         "per-batch-scheduler", "alias-best-model", "evaluates-before-training", "saves-every-epoch",
                         "best-epoch-from-the-stop", "loss-over-dataset-size", "range-one-short", "ignores-lr",
                         "stops-on-accuracy-copy", "steps-on-validation", "val-batches-of-64", "ties-reset-patience",
                         "min-delta", "val-batches-in-a-dict", "zero-grad-once-per-epoch",
                         "second-model-returned-no-zero-grad", "val-loader-rebound-after-training",
                         "adam-made-each-epoch", "smoothed-default-loss", "zero-grad-after-backward",
                         "globals-in-the-body", "hand-update-own-step", "adamw-by-default", "returns-another-order",
                         "new-iterator-each-batch", "smoothing-tried-on-the-side",
                         "log-line-formats-a-missing-val-loss", "lr-from-a-constant",
                         "accuracy-over-batches-times-size", "first-epoch-only-a-baseline",
                         "optimizer-cached-across-calls", "validates-on-the-training-loader",
                         "stop-epoch-left-out-of-the-history", "histories-cut-at-the-best-epoch",
                         "stops-on-training-loss-without-validation", "asserts-positive-lr",
                         "scheduler-stepped-inside-the-validation-block", "train-loss-of-the-last-batch",
                         "train-loss-never-reset", "val-loss-of-the-last-batch",
                         "validation-backward-through-a-shared-helper", "restored-model-logged-after-the-loop",
                         "fresh-model-of-the-same-class-inside", "bad-epochs-counted-since-the-start",
                         "epoch-budget-from-a-constant", "best-weights-put-into-the-global-model",
                         "lowest-starts-at-zero-validated-in-train-mode", "patience-none-compared-as-a-number",
                         "patience-none-taken-as-zero")}


# Where each function that assumes a validation loader fails when the grader gives it none (the others pass).
ASSUMES_VALIDATION = {
    "log-line-formats-a-missing-val-loss": "TypeError: unsupported format string passed to NoneType.__format__ (in "
                                           "train_model_extended, at `print(f\"[{epoch:3d}] train {running:.4f}",
    "adam-made-each-epoch": "TypeError: 'NoneType' object is not iterable (in one_pass, at `for inputs, targets in "
                            "loader:`)",
    "hand-update-own-step": "AttributeError: 'NoneType' object has no attribute 'dataset' (in batches_of, at `X, Y = "
                            "loader.dataset.X, loader.dataset.Y`)",
    "ignores-lr": "IndexError: list index out of range (in train_model_extended, at `print(f\"epoch {epoch}: "
                  "{total:.4f} / {val_loss[-1]:.4f}\")`)",
    "steps-on-validation": "IndexError: list index out of range (in train_model_extended, at `print(f\"epoch {epoch}: "
                           "{total:.4f} / {val_loss[-1]:.4f}\")`)",
    "range-one-short": "IndexError: list index out of range",
    "loss-over-dataset-size": "IndexError: list index out of range",
    "adamw-by-default": "TypeError: 'NoneType' object is not iterable",
    "smoothed-default-loss": "TypeError: 'NoneType' object is not iterable",
    "zero-grad-after-backward": "TypeError: 'NoneType' object is not iterable",
    "globals-in-the-body": "it recorded 2 training epochs",
    # Given no loader it stops on the training loss, at epoch 3 of the run at lr=0: a placeholder counted one epoch
    # late ends there too, so both remain.
    "stops-on-training-loss-without-validation": "it recorded 3 training epochs. The course trains all n_epochs epochs "
                                                 "then",
    # scheduler.step() inside `if val_dataloader is not None:`: given a scheduler and no loader, it never steps it
    # (15/15 before: the scheduler's own call always had a validation loader).
    "scheduler-stepped-inside-the-validation-block": "and a StepLR scheduler: it never stepped that scheduler in its 8 "
                                                     "epochs",
}


def test_a_function_that_assumes_a_validation_loader_is_told_where_it_fails(graded):
    """The course's function runs without validation (early stopping off): a log line that formats a missing val loss
    got full marks, as the grader never called the function without a validation loader."""
    failing = {name: by_id(result)[NOVAL] for name, result in graded.items() if not by_id(result)[NOVAL].passed
               and not name.startswith("patience-none")}  # those fail it for their patience=None, with a loader
    assert sorted(failing) == sorted(ASSUMES_VALIDATION)
    for name, check in failing.items():
        assert ASSUMES_VALIDATION[name] in check.message, (name, check.message)
        assert check.points == 0
    crash = failing["log-line-formats-a-missing-val-loss"]
    assert crash.message.startswith("When the grader ran your train_model_extended with val_dataloader=None, lr=0, "
                                    "patience=1, 8 epochs, logging every epoch, it raised TypeError")
    assert crash.message.endswith("run the validation pass, the early-stopping test and any line that reads a val "
                                  "loss only when a validation loader is given.")
    others = [c for c in graded["log-line-formats-a-missing-val-loss"].checks if not c.passed and c.id != NOVAL]
    assert not others, [(c.id, c.message) for c in others]
    # Given no loader, it validated a model that never changes (the notebook's global one) and stopped on that.
    assert ("It returned 2 val losses, all 5.72901, and stops on them: a placeholder, or the val loss of a model that "
            "does not change") in failing["globals-in-the-body"].message
    assert by_id(graded["course-flaw"])[NOVAL].message == (
        "The grader called your function with val_dataloader=None, lr=0, patience=1, n_epochs=8 and "
        "logging_interval=1: it ran, and trained all 8 epochs, one optimizer step per training batch.")
    assert [c.id for c in graded["stops-on-training-loss-without-validation"].checks if not c.passed] == [NOVAL]
    assert failing["stops-on-training-loss-without-validation"].message.endswith(
        "a stopping test that runs without one (on a placeholder such as 0 or inf, which never improves), one that "
        "watches the training loss instead (its training losses fit that too), or a loader of the notebook's own.")


def test_a_train_loss_of_the_last_batch_alone_is_told_by_the_batches_the_grader_measured(graded):
    """`epoch_loss = batch_loss.item()` inside the batch loop (14/14 before): a falling curve of each epoch's last
    batch. The grader's call notes every training batch's loss from the model's outputs and the batch's labels."""
    result = graded["train-loss-of-the-last-batch"]
    assert [c.id for c in result.checks if not c.passed] == ["loss-records"]
    check = by_id(result)["loss-records"]
    assert check.message.startswith(
        "In the grader's call of your function (25 epochs of 6 training batches), the train_loss it returned for each "
        "epoch is the last batch's mean loss alone, as the grader measured it from the model's outputs: at epoch 1 "
        "your ")
    assert check.message.endswith("Add every batch's loss to the epoch's total, `total += loss.item()` inside the "
                                  "loop, as the task's training pass does.")
    # The other functions add up their batches in an accepted convention, or in a way the grader cannot read (label
    # smoothing, batches cut by hand, one pass a batch): never failed for it.
    records = {name: by_id(r)["loss-records"] for name, r in graded.items()
               if name not in ("train-loss-of-the-last-batch", "train-loss-never-reset", "val-loss-of-the-last-batch")}
    assert all(c.passed for c in records.values()), [(n, c.message) for n, c in records.items() if not c.passed]
    assert records["loss-over-dataset-size"].message.startswith(
        "In the grader's call of your function, train_loss adds up all of each epoch's 6 training batches, as the "
        "grader measured them (the sum of the batches' mean losses divided by the number of samples)")
    assert records["smoothed-default-loss"].metrics == {"undecided": 1}
    assert records["smoothed-default-loss"].message.startswith(
        "In the grader's call of your function, train_loss could not be read as one way of adding up each epoch's "
        "training batches (at epoch 1 your ")


def test_a_train_loss_never_set_back_to_0_is_told_by_the_batches_the_grader_measured(graded):
    """`running_loss = 0.0` before the loop over the epochs: each epoch's train_loss holds every epoch before it too, a
    rising curve that no check read (14/14 before)."""
    result = graded["train-loss-never-reset"]
    assert [c.id for c in result.checks if not c.passed] == ["loss-records"]
    message = by_id(result)["loss-records"].message
    assert message.startswith(
        "In the grader's call of your function (25 epochs of 6 training batches), the train_loss it returned goes on "
        "adding up the batches of the epochs before: at epoch 25 your ")
    assert "is the sum of the batches' mean losses of epochs 1 to 25 together" in message
    assert message.endswith("Start each epoch's total at 0, inside the loop over the epochs, as the task's training "
                            "pass does.")


def test_a_val_loss_of_the_last_batch_alone_is_told_and_the_restore_read_in_its_own_terms(graded):
    """`loss_sum = criterion(pred, y).item()` in the validation helper: early stopping watched one batch of 20 points,
    and restored-best (three checks) said the model "matches no epoch of its history, so the grader cannot tell which
    epoch's weights it holds", where it holds the best epoch's by its own record."""
    result = graded["val-loss-of-the-last-batch"]
    assert [c.id for c in result.checks if not c.passed] == ["loss-records"]
    assert by_id(result)["loss-records"].message.startswith(
        "In the grader's call of your function (25 epochs of 6 validation batches), the val_loss it returned for each "
        "epoch is the last batch's mean loss alone, as the grader measured it from the model's outputs: at epoch 1 ")
    restored = by_id(result)["restored-best"]
    assert restored.message.endswith(
        "(your history reports the last batch's mean loss of each validation pass alone, so the grader compares in "
        "that reading; loss-records counts the record).")
    assert restored.metrics["loss_convention"] == "last batch's mean"


def test_a_function_that_refuses_lr_0_is_called_without_validation_at_the_course_s_lr(graded):
    """The run without a validation loader is at lr=0; an `assert lr > 0` is not a want of the course's fallback."""
    checks = by_id(graded["asserts-positive-lr"])
    assert checks[NOVAL].passed, checks[NOVAL].message
    assert checks[NOVAL].message.startswith("The grader called your function with val_dataloader=None, lr=0.01, ")
    assert "it raised AssertionError: the learning rate must be positive" in checks["strict-improvement"].message


@pytest.mark.parametrize("train_loss, says", [
    # Stopped at epoch 4, the first whose training loss did not improve: no placeholder count ends there.
    ((5.0, 4.9, 4.8, 4.85), "It watches the training loss when no validation loader is given"),
    # Stopped at epoch 2 (or 3) on a loss that did not improve: a placeholder with its count off by one ends there too.
    ((5.0, 5.1), "one that watches the training loss instead (its training losses fit that too)"),
    ((5.0, 4.9, 4.95), "one that watches the training loss instead"),
    # Stopped at epoch 2 though the training loss improved: not a test on it.
    ((5.0, 4.9), "(on a placeholder such as 0 or inf, which never improves), or a loader of the notebook's own."),
])
def test_a_run_without_validation_stopped_by_its_training_loss_is_named_where_no_placeholder_fits(tmp_path, train_loss,
                                                                                                   says):
    """A function that stops on the training loss when given no validation loader got 15/15: the grader's run at
    lr=0.01 fell every one of its 4 epochs. At lr=0 the training loss only wanders with the batches' make-up."""
    run = {"train_loss": list(train_loss), "val_loss": [], "n_epochs": 8, "patience": 1, "lr": 0.0,
           "optimizer_steps": 6 * len(train_loss), "batches": 6}
    exports = round_trip(tmp_path, {"grader_noval_run": run}, [{"name": "grader_noval_run", "kind": "dict"}])
    ctx = CheckContext(load_exercise("early-stopping").spec, exports, (), None, check_id=NOVAL)
    outcome = next(c for c in load_exercise("early-stopping").checks if c.spec.id == NOVAL).evaluate(ctx)
    assert not outcome.passed
    assert f"it recorded {len(train_loss)} training epochs" in outcome.message
    assert says in outcome.message
    assert ("It watches the training loss" in outcome.message) == (len(train_loss) == 4)


def test_an_lr_written_into_the_function_is_caught_by_the_run_at_lr_0_though_it_equals_the_one_passed(graded):
    """Adam(..., lr=LEARNING_RATE) with the course's 0.01 written in: the run given lr=0.01 stepped at 0.01, and only
    a run without a recorded step was compared with the run at lr=0 (15/15, strict-improvement pointing here)."""
    result = graded["lr-from-a-constant"]
    failed = [c for c in result.checks if not c.passed]
    assert [c.id for c in failed] == ["follows-arguments"], [(c.id, c.message) for c in failed]
    assert failed[0].message.startswith("At lr=0 (the grader's run on a plateau) the model's weights still changed: "
                                        "your function does not train at the lr it is given")
    assert failed[0].message.endswith("In this run, given lr=0.01, its optimizer stepped at 0.01 too: a value written "
                                      "into the function matches the argument only when the grader passes that same "
                                      "value.")


def test_accuracies_over_batches_times_the_batch_size_are_not_whole_numbers_of_the_points(graded):
    """100 * correct / (len(loader) * batch_size): 6 batches of 32 for 180 points, every accuracy 6.25% low (full
    marks before: the check read only the count and the range)."""
    result = graded["accuracy-over-batches-times-size"]
    failed = [c for c in result.checks if not c.passed]
    assert [c.id for c in failed] == ["accuracies"], [(c.id, c.message) for c in failed]
    assert failed[0].message.startswith(
        "`history`['train_acc'] holds 31.7708, which is 57.19 of the 180 train points, not a whole number: every "
        "value is a whole number of 192 instead: a total of 192 rather than the 180 points (the number of batches "
        "times the batch size counts a short last batch as full)")
    assert "`history`['val_acc'] holds 37.5, which is 67.5 of the 180 val points" in failed[0].message
    assert all(by_id(graded[name])["accuracies"].passed for name in ("min-delta", "course-flaw"))


def test_a_function_returning_the_course_s_items_in_another_order_is_told_so_not_sent_to_fix_its_logic(graded):
    """(model, train_loss, val_loss, train_acc, ...): its stopping and restore are right, and the checks that read the
    grader's runs blamed the best epoch, the patience count and the restore, one by one."""
    result = graded["returns-another-order"]
    failed = {c.id: c for c in result.checks if not c.passed and c.id != NOVAL}
    assert set(failed) == {"grader-run-best-epoch", "grader-run-patience", "grader-run-restored",
                           "restored-without-trigger", "best-epoch-without-trigger"}
    for check in failed.values():
        assert check.message.startswith(
            "In the grader's own run of your function, item 4 of what it returned, where the course's order puts "
            "the val losses, holds accuracies: 33.3333, 34.4444, 45, 42.7778, ... are each a whole number of the "
            "grader's 180 validation points, as a percentage. Return (model, train_loss, train_acc, val_loss, "
            "val_acc, best_epoch, lr_history) in that order"), check.message
    assert result.max_score - result.score == 3  # its own run, unpacked alike, is right: best epoch, stop, restore


@pytest.mark.parametrize("values, scale", [
    ((100 * 60 / 180, 100 * 62 / 180, 100 * 81 / 180), "percent"),
    ((float(torch.tensor(100 * 61 / 180, dtype=torch.float32)), 100 * 62 / 180, 45.0), "percent"),  # float32 rounding
    ((60 / 180, 62 / 180, 81 / 180), "fraction"),
    ((6.6418, 6.5991, 6.5684), ""),  # summed val losses
    ((0.9313, 0.7261, 0.5526), ""),  # mean ones, below 1 as a fraction is
    ((5.0, 10.0, 15.0), ""),  # whole numbers: a rounded loss is as likely
    ((100 * 60 / 180, 100 * 62 / 180), ""),  # too few epochs to tell
])
def test_an_accuracy_is_told_from_a_loss_by_its_steps_of_one_point(values, scale):
    assert accuracy_scale(values, 180) == scale


@pytest.mark.parametrize("train_loss, says", [
    ((9.0, 8.0, 7.0, 6.0), " (or it follows the training loss, whose lowest is at the last epoch too: early stopping "
                           "must watch the validation loss)."),
    ((9.0, 6.0, 7.0, 8.0), "."),  # a best_epoch updated every epoch, and a training loss lowest elsewhere
])
def test_a_last_epoch_best_names_the_training_loss_where_it_fits_too(tmp_path, train_loss, says):
    """A best_epoch that follows a training loss falling every epoch was told only to stop updating it every epoch."""
    history = {"train_loss": list(train_loss), "val_loss": [5.0, 4.0, 4.5, 4.8]}
    exports = round_trip(tmp_path, {"history": history, "best_epoch": 4},
                         [{"name": "history", "kind": "dict"}, {"name": "best_epoch", "kind": "integer"}])
    ctx = CheckContext(load_exercise("early-stopping").spec, exports, (), None, check_id="best-epoch")
    outcome = best_epoch_argmin(ctx, "", "model", "history", "best_epoch")
    assert not outcome.passed
    assert outcome.message == ("In your run, best_epoch is 4 but the lowest val loss is at epoch 2 (4.0000): "
                               "best_epoch is the last epoch: update it only when the val loss improves, not every "
                               "epoch" + says)


@pytest.mark.parametrize("val_loss, best, says", [
    ([5.0, 4.0, 4.5, 4.2, 4.6], 4, "best_epoch is the last epoch whose val loss fell below the epoch before's: an "
                                  "epoch improves when its val loss is strictly lower than the best so far, not than "
                                  "the previous epoch's."),
    ([5.0, 4.0, 4.5, 4.2], 4, "best_epoch is the last epoch: update it only when the val loss improves, not every "
                              "epoch (or it is set on every fall below the epoch before: an epoch improves when its "
                              "val loss is strictly lower than the best so far, not than the previous epoch's)."),
])
def test_a_best_epoch_kept_by_comparing_with_the_previous_epoch_is_told_so(tmp_path, val_loss, best, says):
    """`if val_loss[-1] < val_loss[-2]`: best_epoch then marks the last fall, and was told to stop updating it every
    epoch, or nothing at all, where the student's code updates it only on what it takes for an improvement."""
    history = {"train_loss": [9.0, 6.0, 7.0, 8.0, 8.5][:len(val_loss)], "val_loss": val_loss}
    exports = round_trip(tmp_path, {"history": history, "best_epoch": best},
                         [{"name": "history", "kind": "dict"}, {"name": "best_epoch", "kind": "integer"}])
    ctx = CheckContext(load_exercise("early-stopping").spec, exports, (), None, check_id="best-epoch")
    outcome = best_epoch_argmin(ctx, "", "model", "history", "best_epoch")
    assert not outcome.passed and outcome.message.endswith(says)


@pytest.mark.parametrize("history, says", [
    ({"train_acc": [40.0, 52.5, 61.0], "val_acc": [38.9, 50.0, 55.6]}, None),
    # correct / total without the 100: every check reading the losses passed, and no check read the accuracies
    ({"train_acc": [0.4, 0.525, 0.61], "val_acc": [0.389, 0.5, 0.556]},
     "The accuracies in `history` are fractions of 1 (val_acc 0.389, 0.5, 0.556, ...): the task reports accuracy in "
     "percent, 100 * correct / total."),
    # val_acc as a fraction, train_acc in percent: the whole-number test said 0.4 was 0.72 of the 180 points
    ({"train_acc": [40.0, 52.5, 61.0], "val_acc": [0.4, 0.5, 0.556]},
     "`history`['val_acc'] holds fractions of 1 (0.4, 0.5, 0.556, ...) where train_acc is in percent: the task reports "
     "both in percent, 100 * correct / total."),
    ({"train_acc": [40.0, 52.5], "val_acc": [38.9, 50.0, 55.6]},
     "`history`['train_acc'] has 2 values for the 3 epochs of its val_loss: record one per epoch."),
    ({"val_acc": [38.9, 50.0, 55.6]}, "`history` has no 'train_acc' key (its keys: train_loss, val_loss, val_acc)"),
])
def test_the_accuracies_are_one_per_epoch_in_percent(tmp_path, history, says):
    from grader.checks.training import accuracy_history

    history = {"train_loss": [3.0, 2.0, 1.0], "val_loss": [5.0, 4.0, 4.5], **history}
    exports = round_trip(tmp_path, {"history": history}, [{"name": "history", "kind": "dict"}])
    ctx = CheckContext(load_exercise("early-stopping").spec, exports, (), None, check_id="accuracies")
    try:
        outcome = accuracy_history(ctx, "history")
    except CheckFailed as e:
        outcome = e
    if says is None:
        assert outcome.passed and outcome.message == "train_acc and val_acc hold one accuracy per epoch (3), in percent."
    else:
        assert not getattr(outcome, "passed", False) and str(getattr(outcome, "message", outcome)).startswith(says)


def test_a_model_replaced_by_what_load_state_dict_returns_is_named_so_not_a_list(tmp_path):
    """``model = model.load_state_dict(best)`` returns load_state_dict's result, a tuple: it was called a list."""
    net = nn.Linear(2, 2)
    run = {"model": net.load_state_dict(nn.Linear(2, 2).state_dict()), "train_loss": [3.0, 2.0, 1.0],
           "val_loss": [5.0, 4.0, 4.5], "best_epoch": 2}
    exports = round_trip(tmp_path, {"grader_run": run}, [{"name": "grader_run", "kind": "dict"}])
    with pytest.raises(CheckFailed) as failed:
        resolve_run(CheckContext(load_exercise("early-stopping").spec, exports, (), None, check_id="restored"),
                    "grader_run", "", "", "", need_model=True)
    assert str(failed.value) == (
        "The model of the grader's own run of your function could not be checked: where the model belongs it holds "
        "what load_state_dict returns (it loads the weights into the model in place and returns only the keys that did "
        "not match: keep the model, not the call's result).")


@pytest.mark.parametrize("best, says", [
    ([0.01] * 28, "best_epoch of the grader's own run of your function must be a whole number, got a "
                                "list of 28, [0.01, 0.01, 0.01, ...]. Item 6 of what your function returned, where the "
                                "course's order puts best_epoch, is a list: return (model, train_loss, train_acc, "
                                "val_loss, val_acc, best_epoch, lr_history) in that order."),
    (2.5, "best_epoch of the grader's own run of your function must be a whole number, got 2.5."),
])
def test_a_best_epoch_that_is_a_list_in_the_grader_s_run_names_the_returned_order(tmp_path, best, says):
    """lr_history and best_epoch returned swapped: told only that best_epoch must be a whole number."""
    run = {"train_loss": [3.0, 2.0, 1.0], "val_loss": [5.0, 4.0, 4.5], "best_epoch": best}
    exports = round_trip(tmp_path, {"grader_run": run}, [{"name": "grader_run", "kind": "dict"}])
    ctx = CheckContext(load_exercise("early-stopping").spec, exports, (), None, check_id="best-epoch")
    with pytest.raises(CheckFailed) as failed:
        best_epoch_argmin(ctx, "grader_run", "model", "history", "best_epoch")
    assert str(failed.value) == says


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
    assert "Patience never ran out in this run (25 of 25 epochs), and in the grader's run where it did run out, your " \
           "function put the best state back" in flaw.message


def failed(result) -> dict:
    return {c.id: c.message for c in result.checks if not c.passed}


def test_stepping_the_scheduler_per_batch_is_measured_and_costs_only_that_point(graded):
    result = graded["per-batch-scheduler"]
    assert result.score == result.max_score - 1
    assert failed(result) == {"scheduler-per-epoch": (
        "Your function called scheduler.step() 24 times in 4 epochs of 6 batches: once per batch, after each "
        "optimizer.step(), so the LR was multiplied by 0.5 6 times per epoch instead of once: after epoch 1 your "
        "lr_history records 0.000156, where torch's per-epoch StepLR(step_size=1, gamma=0.5) gives 0.005. Call "
        "scheduler.step() once per epoch, after the epoch's updates (after validation), outside the batch loop.")}


def test_an_alias_of_the_model_is_named_as_the_code_shows_it(graded):
    messages = failed(graded["alias-best-model"])
    assert sorted(messages) == ["grader-run-restored", "restored-best", "restored-without-trigger",
                                "scheduler-per-epoch"]
    alias = ("Your function sets `best_model = model` (code cell 2, line 33): that copies nothing, `best_model` is the "
             "same object as `model`, so it changed with every update and the function returned the last weights.")
    assert messages["restored-best"].endswith("it is the last epoch's model (epoch 33, val loss 6.0347). " + alias +
                                              " Copy the weights when the val loss improves: best_state = "
                                              "copy.deepcopy(model.state_dict()), and model.load_state_dict(best_state)"
                                              " after the loop (or best_model = copy.deepcopy(model)).")
    for check in ("grader-run-restored", "restored-without-trigger"):
        assert alias in messages[check]
        assert "in every case" not in messages[check] and "load_state_dict(...)" not in messages[check]
    assert messages["scheduler-per-epoch"].startswith(
        "The grader calls your train_model_extended with scheduler= as the course's signature has it, but yours has "
        "no `scheduler` parameter (it takes model, dataloader, val_dataloader, criterion, optimizer, lr, n_epochs, "
        "logging_interval, patience), so the call failed: TypeError: ")


def test_a_val_loss_recorded_before_the_updates_is_measured_not_blamed_on_the_restore(graded):
    messages = failed(graded["evaluates-before-training"])
    assert sorted(messages) == ["grader-run-restored", "restored-best", "restored-without-trigger",
                                "scheduler-per-epoch"]
    assert messages["restored-best"] == (
        "The model of your run is not the best one: the grader measures a val loss of 5.9030, but the best epoch 16 "
        "had 5.7582; it is the model of epoch 17 (val loss 5.9030). Epoch 1's recorded val loss, 6.5967, is that of "
        "the untrained model: your function measures each epoch's val loss before that epoch's training pass, so "
        "each record belongs to the weights of the epoch before, while the copy taken at a new best already has that "
        "epoch's updates (the model's val loss is epoch 17's record). Evaluate the validation set after the epoch's "
        "updates, then compare and save.")
    assert "it is the model of epoch 36" in messages["grader-run-restored"]
    assert "matches no epoch of its history" in messages["restored-without-trigger"]
    for message in messages.values():
        assert "in every case" not in message
    assert "Epoch 1's recorded val loss, 6.8630, is that of the untrained model" in messages["restored-without-trigger"]
    assert messages["scheduler-per-epoch"].startswith("Your function returned a tuple of 6 items, with no lr_history: "
                                                      "the course's train_model_extended returns (model, train_loss, ")


def test_a_copy_taken_every_epoch_is_named_and_a_late_lr_record_costs_half(graded):
    result = graded["saves-every-epoch"]
    checks = by_id(result)
    every = ("`kept = deepcopy(model.state_dict())` (code cell 2, line 37) copies the weights in every epoch, not only "
             "when the val loss improves, so a state it puts back is a recent epoch's, not the best one's. Take the "
             "copy inside the `if` that records a new best.")
    for check in ("restored-best", "grader-run-restored", "restored-without-trigger"):
        assert not checks[check].passed and checks[check].message.endswith(every)
    assert "it is the last epoch's model (epoch 33" in checks["restored-best"].message
    cadence_check = checks["scheduler-per-epoch"]
    assert (cadence_check.passed, cadence_check.points) == (False, 0.5)
    assert cadence_check.message.startswith("Your function steps the scheduler once per epoch, after the epoch's "
                                            "updates, as it should, but it records the LR before scheduler.step(): "
                                            "lr_history starts with the initial LR 0.01")


# --- in the grader's process: the cadence probe on training functions written here ------------------------------


def _trainer(mode: str):
    """A train_model_extended that steps its scheduler the way ``mode`` says (and records the LR the course's way)."""

    def train_model_extended(model, dataloader, val_dataloader=None, criterion=None, optimizer=None, scheduler=None,
                             lr=0.01, n_epochs=200, logging_interval=50, patience=None):
        criterion = nn.CrossEntropyLoss() if mode == "own criterion" else criterion or nn.CrossEntropyLoss()
        if mode == "trains a copy":  # the optimizer it is given still holds the original's parameters
            model = copy.deepcopy(model)
        if mode == "own optimizer" or optimizer is None:
            optimizer = optim.Adam(model.parameters(), lr=lr)
        train_loss, val_loss, lr_history = [], [], []
        for epoch in range(n_epochs):
            if mode == "start of epoch" or (mode == "start of the next epoch" and epoch > 0):
                scheduler.step()
            total = 0.0
            for x, y in dataloader:
                loss = criterion(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item()
            train_loss.append(total)
            val_loss.append(sum(criterion(model(x), y).item() for x, y in val_dataloader))
            if mode == "record before":
                lr_history.append(optimizer.param_groups[0]["lr"])
            if mode == "step with the loss":
                scheduler.step(val_loss[-1])
            elif mode not in ("start of epoch", "never", "start of the next epoch"):
                scheduler.step()
            if mode == "twice":
                scheduler.step()
            if mode == "record get_last_lr()":
                lr_history.append(scheduler.get_last_lr())
            elif mode == "record get_lr()":  # a further step's LR, computed from the current one
                lr_history.append(scheduler.get_lr()[0])
            elif mode != "record before":
                lr_history.append(lr if mode == "record lr argument" else optimizer.param_groups[0]["lr"])
        return model, train_loss, [], val_loss, [], 1, lr_history

    return train_model_extended


def cadence(tmp_path, function):
    """The scheduler_cadence check on the spec's own probe, run here on ``function`` as the kernel would."""
    exercise = load_exercise("early-stopping")
    probe = exercise.spec.export("grader_lr_run")
    requests = [{"name": "train_model_extended", "kind": "function"},
                {"name": probe.name, "kind": probe.kind, "code": probe.code}]
    with warnings.catch_warnings():  # torch warns about some of these mistakes; the kernel would just print it
        warnings.simplefilter("ignore")
        exports = round_trip(tmp_path, {"train_model_extended": function}, requests)
    ctx = CheckContext(exercise.spec, exports, (), None, check_id="scheduler-per-epoch")
    return scheduler_cadence(ctx, run="grader_lr_run", function="train_model_extended")


def test_a_criterion_argument_made_anew_regardless_is_measured_by_the_calls_of_the_one_given(tmp_path):
    """`criterion = nn.CrossEntropyLoss()` whatever was passed: the grader never passed one, so full marks."""
    from grader.checks.training import _criterion_followed

    exercise = load_exercise("early-stopping")
    probe = exercise.spec.export("grader_lr_run")
    requests = [{"name": "train_model_extended", "kind": "function"},
                {"name": probe.name, "kind": probe.kind, "code": probe.code}]
    said = {}
    for mode in ("after the updates", "own criterion"):
        exports = round_trip(tmp_path / mode, {"train_model_extended": _trainer(mode)}, requests)
        said[mode] = _criterion_followed(CheckContext(exercise.spec, exports, (), None), "grader_lr_run")
    # A function written without a criterion argument is not given one: the run goes on, judged by the rest.
    def no_criterion(model, dataloader, val_dataloader=None, optimizer=None, scheduler=None, lr=0.01, n_epochs=200,
                     logging_interval=50, patience=None):
        return _trainer("after the updates")(model, dataloader, val_dataloader, None, optimizer, scheduler, lr,
                                              n_epochs, logging_interval, patience)

    exports = round_trip(tmp_path / "none", {"train_model_extended": no_criterion}, requests)
    assert exports.values["grader_lr_run"]["criterion_calls"] is None
    assert exports.values["grader_lr_run"]["optimizer_steps"] == 24
    assert said["after the updates"] == ""
    assert said["own criterion"].startswith("Given criterion= (a loss of the grader's, in its run with its own "
                                            "optimizer and scheduler), your function never called it in its 24 "
                                            "optimizer steps")


def test_the_course_function_steps_once_per_epoch(tmp_path):
    outcome = cadence(tmp_path, train_model_extended)
    assert outcome.passed and outcome.metrics["scheduler_calls"] == 4, outcome.message
    assert outcome.message.endswith("as torch gives: [0.005, 0.0025, 0.00125, 0.000625].")


@pytest.mark.parametrize("mode, verdict, fraction, says", [
    ("after the updates", "match", 1.0, "once per epoch, after the epoch's updates (4 calls in 4 epochs of 6 batches)"),
    ("twice", "several_per_epoch", 0.0, ("8 times in 4 epochs of 6 batches: twice per epoch, so the LR was multiplied "
                                         "by 0.5 twice per epoch instead of once")),
    ("start of epoch", "before_updates", 0.0, "the optimizer had stepped 0, 6, 12, 18 times at the 4 calls"),
    # Each epoch trains at the course's LR; only the last step is missing, and the record reads one epoch behind.
    ("start of the next epoch", "next_epoch_start", 0.5, ("3 times in 4 epochs, at the start of epochs 2 to 4 (after "
                                                          "6, 12, 18 optimizer steps, 6 per epoch)")),
    ("never", "never_stepped", 0.0, "never called scheduler.step(): the LR stayed 0.01 for all 4 epochs"),
    ("own optimizer", "own_optimizer", 0.0, "The optimizer the grader passed as optimizer= never stepped"),
    ("record before", "recorded_before_step", 0.5, "records the LR before scheduler.step()"),
    ("record lr argument", "constant_record", 0.5, "lr_history records the initial LR, 0.01, in every epoch"),
    # stepped right, recorded one epoch ahead: half, as any record read wrong (it was 0: "differs")
    ("record get_lr()", "recorded_ahead", 0.5, "lr_history is one epoch ahead ([0.0025, 0.00125, 0.000625,"),
    ("step with the loss", "step_argument", 0.0, "passes it an argument (4 of 4 calls)"),
    # get_last_lr() appended whole: one-element lists; the stepping is judged (it was not), the record keeps half
    ("record get_last_lr()", "match", 0.5, "Each lr_history entry is also a one-element list"),
    # The given optimizer steps the model passed in, which gets no gradient; the copy trained is never stepped.
    ("trains a copy", "match", 0.5, "The model your function returned never changed, though the optimizer it was "
                                    "given stepped 24 times"),
])
def test_each_cadence_is_named_from_the_measurement(tmp_path, mode, verdict, fraction, says):
    outcome = cadence(tmp_path, _trainer(mode))
    assert outcome.metrics["verdict"] == verdict, outcome.message
    assert (outcome.fraction, outcome.passed) == (fraction, fraction == 1.0)
    assert says in outcome.message


def test_a_scheduler_the_course_steps_with_the_val_loss_is_replayed_on_the_run_s_val_losses(tmp_path):
    model = SimpleMLP()
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    plateau = lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
    data = DataLoader(generate_checkerboard_dataset(10, 0.5, 3), batch_size=32, shuffle=True)
    torch.manual_seed(0)
    run = train_model_extended(model, data, data, optimizer=optimizer, scheduler=plateau, n_epochs=30,
                               logging_interval=None)
    export = round_trip(tmp_path, {"s": plateau}, [{"name": "s", "kind": "scheduler"}]).values["s"]
    name, lrs = _torch_schedule(export, 0.05, 30, run.val_loss)
    assert name == "ReduceLROnPlateau(factor=0.5, patience=1)"
    assert lrs == run.lr_history and lrs[-1] < 0.05  # it did reduce, and the grader's replay agrees


# --- reading the function's code: facts with their lines, nothing for code it cannot follow ----------------------


def test_the_code_reader_finds_aliases_live_states_every_epoch_copies_and_loads():
    code = restore_code('''def fit(net, loader, patience=3):
    best, keep, snap, tied = None, None, None, None
    for epoch in range(10):
        tied = net.state_dict().copy()
        keep = {k: v for k, v in net.state_dict().items()}
        snap = copy.deepcopy(net.state_dict())
        if epoch % 2:
            best, waited = net, 0
            safe = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            net.load_state_dict(snap)
            break
    return best, keep, tied
''')
    assert [(f.line, f.target) for f in code.aliases] == [(8, "best")]
    assert [(f.line, f.target) for f in code.live_saves] == [(4, "tied"), (5, "keep")]
    assert [f.line for f in code.every_epoch_saves] == [6] and code.loads_only_in_loop
    assert code.model == "net" and code.restores_otherwise


def test_the_code_reader_keeps_quiet_on_copies_and_on_code_it_cannot_read():
    code = restore_code('''def fit(model, loader):
    best_model = model
    best_model = copy.deepcopy(model)
    state = dict(copy.deepcopy(model.state_dict()))
    optimizer = optim.Adam(model.parameters())
    model = model.to("cpu")
    model.load_state_dict(state)
    return model
''')
    assert (code.aliases, code.live_saves, code.every_epoch_saves) == ((), (), ())
    assert not code.loads_only_in_loop and not code.restores_otherwise
    assert restore_code("def broken(:\n") is None and signature("x = 1\n") is None
    assert signature("def f(model, *, scheduler=None, **kw): pass").names == ("model", "scheduler")


def test_restoring_in_every_case_is_advised_only_when_patience_did_not_run_out():
    loads_after_loop = restore_code("def f(model):\n    for e in range(3):\n        if e:\n"
                                    "            s = copy.deepcopy(model.state_dict())\n"
                                    "    model.load_state_dict(s)\n    return model\n")
    base = {"best": 5, "held": 12, "code": loads_after_loop}
    ran_out = why_not_best(RestoreEvidence(epochs=12, n_epochs=80, **base))
    assert "although patience ran out" in ran_out and "in every case" not in ran_out
    # Advised where something shows the restore runs only on the early stop: a grader's run that stopped early and
    # was restored, or a load only inside the loop. A load after the loop with nothing known keeps that cause a
    # possibility among the others (a run of that shape is what a best value never beaten gives, too).
    assert "in every case" in why_not_best(RestoreEvidence(epochs=12, n_epochs=12, early_restored=True, **base))
    unknown = why_not_best(RestoreEvidence(epochs=12, n_epochs=12, **base))
    assert "in every case" not in unknown and "cannot see why" in unknown and "only when patience runs out" in unknown
    refuted = why_not_best(RestoreEvidence(epochs=12, n_epochs=12, early_restored=False, **base))
    assert "in every case" not in refuted and "cannot see why" in refuted
    never = why_not_best(RestoreEvidence(epochs=12, n_epochs=12, reported=0, **base))
    assert "reports best_epoch 0" in never and "float('inf')" in never


def test_a_loop_that_only_rebinds_its_variable_is_named_as_the_restore_that_does_nothing():
    """`for p, b in zip(model.parameters(), best): p = b` restores nothing; it was told only that the function never
    calls load_state_dict. Copying into the parameter, or a loop over something else, is no such fact."""
    source = ("def fit(model, loader):\n    best = [p.detach().clone() for p in model.parameters()]\n"
              "    for p, b in zip(model.parameters(), best):\n        p = b  # put the best weights back\n"
              "    return model\n")
    said = why_not_best(RestoreEvidence(best=5, epochs=30, held=30, n_epochs=30, code=restore_code(source),
                                        where=lambda line: f"line {line}"))
    assert said.startswith(" `p = b` (line 4) binds the loop variable `p` to another tensor: the model's parameter "
                           "is left as it was"), said
    copying = source.replace("p = b", "p.data.copy_(b)")
    assert restore_code(copying).rebinding_loops == ()
    assert restore_code(source.replace("zip(model.parameters(), best)", "enumerate(best)")).rebinding_loops == ()


def test_a_model_matching_no_epoch_lists_a_scale_the_grader_does_not_know_among_the_causes():
    """A val loss divided by 192 where the split has 180 points: the restore was exact, and the advice was only to put
    back the best epoch's weights. The measured loss matching no epoch leaves the scale as a cause too."""
    said = why_not_best(RestoreEvidence(best=13, epochs=33, held=None, n_epochs=500))
    assert said.startswith(" What remains: the history records the val loss in a scale the grader does not know")
    assert said.endswith("and put back the best epoch's weights.")


def test_a_model_of_the_reported_best_epoch_blames_the_rule_that_picked_it_not_the_copy():
    """Restore works, but best_epoch came from another rule (val accuracy, the training loss): no copy is blamed."""
    picked = why_not_best(RestoreEvidence(best=13, epochs=40, held=30, reported=30))
    assert picked.startswith(" It is the epoch the run reports as best_epoch, so the copy and its restore work")
    assert "the lowest val loss is epoch 13's" in picked and "copy replaced it" not in picked
    other = why_not_best(RestoreEvidence(best=13, epochs=40, held=30, reported=13))
    assert "a later copy replaced it" in other
    # snapshots[best_epoch - 1] with snapshots[k] the weights after k epochs: the epoch before the best one
    assert ("or the one put back is epoch 30's of several kept (a list of per-epoch copies read at the wrong "
            "index)") in other
    last = why_not_best(RestoreEvidence(best=13, epochs=40, held=40, reported=40))  # no restore would look the same
    assert "whether it puts a best state back cannot be told here" in last and "restore work" not in last


def test_the_epoch_a_model_holds_is_the_closest_record_of_those_within_tolerance():
    """Two epochs' val losses within 1e-4 of each other: the model is the one whose record it equals."""
    from grader.checks.training import _held

    curve = (6.0, 5.5, 5.189694, 5.189890, 5.3)
    assert _held([3, 4], curve, 5.189890, reported=4) == 4
    assert _held([3, 4], curve, 5.189694, reported=4) == 3
    assert _held([2, 5], (1.0, 5.3, 2.0, 2.0, 5.3), 5.3, reported=2) == 5  # a tie: the last epoch first
    assert _held([], curve, 1.0, reported=1) is None


@pytest.mark.parametrize("ran, says", [
    (32, "one epoch early. The count of epochs without improvement is off by one, for example"),
    (34, "one epoch late. The count of epochs without improvement is off by one, for example"),
    # Exactly 10 after the best: what the function does with patience=10, so the run may have been given that.
    (23, "it stopped 10 epochs after its best epoch, where a run with patience=10 stops. If the run was given "
         "patience=20, its count of epochs without improvement reached patience too soon, for example a count never "
         "reset to 0"),
    (14, "it stopped 1 epoch after its best epoch"),
    (40, "where a run with patience=27 stops. If the run was given patience=20, its count of epochs without "
         "improvement started again after the best epoch, for example on a val loss that only tied the best"),
])
def test_a_stop_one_epoch_off_lists_the_usual_causes_and_names_none(tmp_path, ran, says):
    """A length measured one off shows that the count is off, not which of the ways: each is given as an example."""
    from grader.checks.training import stopped_after_patience

    val = [10.0 - e for e in range(13)] + [5.0] * (ran - 13)  # best at epoch 13, flat afterwards
    exports = round_trip(tmp_path, {"history": {"train_loss": val, "val_loss": val}, "best_epoch": 13},
                         [{"name": "history", "kind": "dict"}, {"name": "best_epoch", "kind": "integer"}])
    ctx = CheckContext(load_exercise("early-stopping").spec, exports, (), None, check_id="stopped-after-patience")
    outcome = stopped_after_patience(ctx, patience=20, n_epochs=500, run="", model="model", history="history",
                                     best_epoch="best_epoch")
    assert not outcome.passed and f"stopped at epoch {ran}" in outcome.message and says in outcome.message


@pytest.mark.parametrize("val, ran, says", [
    # Best at epoch 2; every other epoch falls below the one before, so that counter never reaches 3.
    ([5.0, 4.0] + [4.5, 4.2] * 8, 18, "early stopping never triggered: reset the counter when the val loss improves "
     "on the best so far, add one otherwise, and break when it reaches patience; its stop also fits a counter reset "
     "whenever the val loss falls below the epoch before's rather than below the best so far (with these val losses "
     "that counter reaches 3 in no epoch)."),
    # Best at epoch 2, a fall at epoch 4, then three rises: that counter reaches 3 at epoch 7, not 5.
    ([5.0, 4.0, 4.5, 4.2, 4.6, 4.7, 4.8], 7, "that counter reaches 3 at epoch 7)."),
])
def test_a_stop_that_fits_a_counter_reset_on_the_epoch_before_says_so_as_what_the_losses_fit(tmp_path, val, ran, says):
    """`if val_loss < previous_val_loss: counter = 0`: it stops late or never, and was told only to reset the counter
    "when the val loss improves", which it took to be doing."""
    from grader.checks.training import stopped_after_patience

    exports = round_trip(tmp_path, {"history": {"train_loss": val, "val_loss": val}, "best_epoch": 2},
                         [{"name": "history", "kind": "dict"}, {"name": "best_epoch", "kind": "integer"}])
    ctx = CheckContext(load_exercise("early-stopping").spec, exports, (), None, check_id="stopped-after-patience")
    outcome = stopped_after_patience(ctx, patience=3, n_epochs=18, run="", model="model", history="history",
                                     best_epoch="best_epoch")
    assert not outcome.passed and f"stopped at epoch {ran}" in outcome.message
    assert outcome.message.endswith(says)


def test_a_best_epoch_worked_out_from_the_stop_is_caught_where_patience_never_runs_out(graded):
    """`best_epoch = len(val_loss) - patience`: right wherever early stopping triggers, -75 in the grader's run of 25
    epochs with patience 100. The best state itself is kept and restored right."""
    checks = by_id(graded["best-epoch-from-the-stop"])
    assert all(checks[i].passed for i in ("best-epoch", "grader-run-best-epoch", "restored-without-trigger"))
    missed = checks["best-epoch-without-trigger"]
    assert not missed.passed and missed.points == 0
    assert missed.message.startswith("In the grader's own run of your function, best_epoch is -75 but the lowest val "
                                     "loss is at epoch 23")


def test_a_loss_divided_by_the_dataset_size_is_compared_in_its_own_scale(graded):
    result = graded["loss-over-dataset-size"]
    failed = [c for c in result.checks if not c.passed and c.id != NOVAL]
    assert result.max_score == 14.5 and not failed, [(c.id, c.message) for c in failed]
    restored = by_id(result)["restored-best"]
    assert restored.metrics["loss_convention"] == "sum of batch means per sample"
    assert "the sum of the batches' mean losses divided by the number of samples" in restored.message


def test_a_loop_one_epoch_short_costs_a_third_of_follows_arguments_and_nothing_else(graded):
    result = graded["range-one-short"]
    follows = by_id(result)["follows-arguments"]
    lost = result.max_score - by_id(result)[NOVAL].max_points  # it also assumes a validation loader
    assert result.score == pytest.approx(lost - 1 / 3, abs=1e-3), \
        [(c.id, c.message) for c in result.checks if not c.passed]
    assert follows.metrics == {"epochs_run": 24, "n_epochs": 25, "optimizer_steps": 24 * 6}
    assert ("patience=100, which cannot run out in 25 epochs, but it recorded 24 epochs: a loop over range(1, "
            "n_epochs) runs one epoch short") in follows.message


def test_an_optimizer_made_without_the_lr_is_named_with_torch_s_default(graded):
    result = graded["ignores-lr"]
    follows = by_id(result)["follows-arguments"]
    lost = result.max_score - by_id(result)[NOVAL].max_points  # it also assumes a validation loader
    assert result.score == pytest.approx(lost - 1 / 3, abs=1e-3), \
        [(c.id, c.message) for c in result.checks if not c.passed]
    assert follows.message == (
        "The grader passed lr=0.01 and no optimizer, but the Adam your function made took its first step at lr 0.001 "
        "(0.001 is Adam's default, used when no lr is passed): make the optimizer with the lr argument, e.g. "
        "Adam(model.parameters(), lr=lr).")


def test_a_copy_first_run_after_training_is_not_called_untrained(graded):
    # The returned deepcopy runs forward only in a later cell: the kernel's record of its first pass is its trained
    # state, which is not the model before training.
    checks = by_id(graded["stops-on-accuracy-copy"])
    restored = checks["restored-best"]
    assert not restored.passed
    assert "before training" not in restored.message
    assert "it is the model of epoch 30" in restored.message
    assert "It is the epoch the run reports as best_epoch" in restored.message
    assert checks["follows-arguments"].passed


def test_a_best_picked_by_the_val_accuracy_is_named_by_the_stop_it_counts_from(graded):
    """Its stops are patience epochs after the epoch it reports as best: the grader's run was told "patience counted in
    batches" (a 1-epoch gap that ceil(5 / 6) fits), and strict-improvement passed on a training-loss reading of a
    4-epoch run that its other run does not fit."""
    checks = by_id(graded["stops-on-accuracy-copy"])
    for check, own, lowest in (("stopped-after-patience", 30, 13), ("grader-run-patience", 17, 21)):
        message = checks[check].message
        assert not checks[check].passed and "in batches" not in message
        assert f"epochs after epoch {own}, the one it reports as best_epoch, so its count of epochs without improvement " \
               f"works, from the wrong best epoch" in message and f"the lowest val loss is epoch {lowest}'s" in message
    strict = checks["strict-improvement"]
    assert not strict.passed and strict.points == 0.5
    assert "In the grader's other run your function reported best_epoch 17, where its lowest val loss is epoch 21's: " \
           "its rule for a new best watches something else than the val loss" in strict.message
    assert "on its training loss" not in strict.message


def test_a_best_that_starts_at_zero_is_named_by_its_stop_and_its_best_epoch(graded):
    """`lowest = 0.0`: no epoch improves, the run stops after exactly patience epochs and nothing is restored. It was
    told "before 20 epochs could pass, so it counts something else: batches", and that the course's version restores
    only on an early stop. It also validates in training mode with gradients on (no eval(), no no_grad()), which its
    model makes harmless: those batches are validation batches, read as such."""
    checks = by_id(graded["lowest-starts-at-zero-validated-in-train-mode"])
    for check, patience in (("stopped-after-patience", 20), ("grader-run-patience", 5)):
        assert f"it stopped after exactly {patience} epochs, so its count went up at every epoch, the first one too: no " \
               "val loss counted as an improvement (best_epoch is 0)" in checks[check].message
        assert "could pass" not in checks[check].message
    for check in ("restored-best", "restored-without-trigger"):
        assert not checks[check].passed
        assert "reports best_epoch 0, none of its" in checks[check].message
        assert "float('inf')" in checks[check].message and "in every case" not in checks[check].message
    records = checks["loss-records"]
    assert records.passed and "val_loss adds up all of each epoch's 6 validation batches" in records.message


@pytest.mark.parametrize("name, says", [
    ("patience-none-compared-as-a-number", "Called with a validation loader and patience=None, your function failed: "
     "When the grader ran your train_model_extended with a validation loader, patience=None"),
    ("patience-none-taken-as-zero", "Called with a validation loader, lr=0, patience=None and n_epochs=6, your "
     "function stopped after 2 epochs: it stops early although no patience was given"),
])
def test_patience_none_with_a_validation_loader_trains_every_epoch(graded, name, says):
    """The course's default, patience=None, was never called with a validation loader: `strikes >= patience` (a
    TypeError there) and `int(patience or 0)` (a stop at the first epoch without improvement) got 14.5/14.5."""
    result = graded[name]
    check = by_id(result)["without-validation"]
    assert not check.passed and says in check.message
    assert "patience=None means no early stopping" in check.message
    assert result.score == 14.0  # the one mistake, in this check alone


def test_an_optimizer_stepped_on_the_validation_batches_too_is_counted(graded):
    follows = by_id(graded["steps-on-validation"])["follows-arguments"]
    assert not follows.passed and follows.points == pytest.approx(2 / 3, abs=1e-3)
    assert follows.message == (
        "Your function stepped the optimizer 300 times in its 25 epochs, 12 per epoch, but the training loader has 6 "
        "batches: it also updates the model on other batches (a validation pass that steps the optimizer, say).")


def test_a_validation_loader_of_another_batch_size_is_compared_in_its_own_batches(graded):
    """The course's function, with the notebook's `val_loader` in batches of 64: its recorded val losses are sums of
    3 batch means, not 6. It was told "matches no epoch of its history ... over the whole validation set"."""
    result = graded["val-batches-of-64"]
    assert result.score == result.max_score, [(c.id, c.message) for c in result.checks if not c.passed]
    assert by_id(result)["restored-best"].message.startswith("The model of your run is the restored best state")


def test_validation_batches_of_another_size_are_found_without_the_loader_export(graded):
    """The course's function with its loaders in a dict, `loaders["val"]` in batches of 64: no `val_loader` export
    says so. It lost restored-best (2 points), told to record the val loss over the whole validation set and put back
    the best epoch's weights, which it did. The batch sizes students pick are tried after the course's."""
    result = graded["val-batches-in-a-dict"]
    assert result.score == result.max_score, [(c.id, c.message) for c in result.checks if not c.passed]
    assert "summed over validation batches of 64, as your history matches" in by_id(result)["restored-best"].message


def test_a_sum_over_samples_divided_by_the_batches_is_a_known_scale():
    from grader.checks.training import val_loss_conventions

    class Fixed:  # per-sample losses 1..180, predicting class 0 everywhere
        def losses(self, x, y, smoothing=0.0):
            return torch.arange(1, 181, dtype=torch.float64), torch.zeros(180, dtype=torch.long)

    data = generate_checkerboard_dataset(n_per_cell=20, noise=0.5, seed=1)
    losses, _ = val_loss_conventions(Fixed(), data, 32)
    assert losses["mean of batch sums"] == pytest.approx(sum(range(1, 181)) / 6)


@pytest.mark.parametrize("name, says", [
    ("ties-reset-patience", "exactly what counting an equal val loss as an improvement gives (<= where the task has <, "
     "or a margin added to the best, val < best + min_delta)"),
    ("min-delta", "any margin from 6e-05 to 0.1 gives them all): a min_delta does this"),
])
def test_ties_and_margins_lose_only_the_strict_improvement_half_they_show(graded, name, says):
    """`<=` and a min_delta of 1e-3 pass every run on the grader's usual data: only the plateau (lr=0) shows the
    first, and only the tiny falls (lr=1e-6) the second."""
    result = graded[name]
    failed = [c for c in result.checks if not c.passed and c.id != NOVAL]
    assert [c.id for c in failed] == ["strict-improvement"], [(c.id, c.message) for c in failed]
    assert failed[0].points == 0.5 and says in failed[0].message


def test_a_new_iterator_for_every_batch_is_counted_by_the_passes_over_the_loader(graded):
    """`next(iter(dataloader))` for each batch: every step draws the first batch of a new shuffle, so no epoch goes
    through the training points once. The loss curves look like any run's; the loader's count of passes shows it."""
    failed = [c for c in graded["new-iterator-each-batch"].checks if not c.passed and c.id != NOVAL]
    assert [c.id for c in failed] == ["follows-arguments"], [(c.id, c.message) for c in failed]
    assert failed[0].message.startswith("Your function began a new pass over the training DataLoader for each of its "
                                        "150 optimizer steps (150 passes in 25 epochs of 6 batches)")


def test_a_smoothed_loss_tried_on_another_model_is_not_taken_for_the_function_s_own(graded):
    """After the graded run, a cell tries the function on a dropout net with criterion=CrossEntropyLoss(label_smoothing=
    0.1): the loss record was run-wide, and the grader's own run (plain cross_entropy) lost a third of
    follows-arguments for it. Each model's record now holds the losses of its own steps."""
    result = graded["smoothing-tried-on-the-side"]
    assert result.score == result.max_score, [(c.id, c.message) for c in result.checks if not c.passed]


def test_gradients_cleared_once_per_epoch_lose_only_the_point_that_measures_it(graded):
    """The run trains, stops and restores consistently with itself, only on other val losses: the kernel's record of
    what .grad held at each step is the one thing that shows the loop never clears it between batches."""
    failed = [c for c in graded["zero-grad-once-per-epoch"].checks if not c.passed and c.id != NOVAL]
    assert [c.id for c in failed] == ["gradients-cleared"], [(c.id, c.message) for c in failed]
    assert ("Of the 50 optimizer steps measured on the model of the grader's own run of your function, 42 used a "
            "gradient that still held the step before's, and 8 one cleared first") in failed[0].message
    assert "Call optimizer.zero_grad() once per batch" in failed[0].message


def test_validation_gradients_carried_into_the_next_training_step_lose_the_gradients_point(graded):
    """One helper runs backward() for training and validation batches alike and clears after step(): the first step
    of every epoch followed the validation batches' gradients too (14.5/14.5 before: each step found .grad cleared
    since the step before, by the validation pass's own start)."""
    failed = [c for c in graded["validation-backward-through-a-shared-helper"].checks if not c.passed]
    assert [c.id for c in failed] == ["gradients-cleared"], [(c.id, c.message) for c in failed]
    assert failed[0].message.startswith(
        "In the grader's run of your function, 24 optimizer steps used a gradient that still held a backward pass "
        "through the model's outputs on the validation batches (150 such passes in all)")
    assert failed[0].metrics == {"validation_gradient_steps": 24}


def test_values_appended_after_the_loop_are_told_apart_from_lists_kept_between_calls(graded):
    """The restored model evaluated once more and appended to the curves: every call returned one value more than
    it trained, and nine checks said "its lists still hold values from before this call", a cause not there. Where the
    grader noted the call's batches, the first values are the call's own and the cause is named; elsewhere both."""
    result = graded["restored-model-logged-after-the-loop"]
    failed = {c.id: c.message for c in result.checks if not c.passed}
    assert failed["follows-arguments"].startswith(
        "In the grader's call with n_epochs=25 and patience=100, your function returned 26 epochs of losses but made "
        "25 passes over its training loader: its first 25 values are this call's epochs, as the grader measured its "
        "training batches, and the 1 after them was appended outside the epoch loop")
    assert "Two causes give that" in failed["grader-run-patience"]
    assert not any(m.startswith("its lists still hold") for m in failed.values())
    # Its own run: one epoch late by its length, and the last val loss is the best epoch's very float.
    assert "one epoch late, or one value too many: the last val loss recorded" in failed["stopped-after-patience"]
    assert "is epoch 22's exactly" in failed["stopped-after-patience"]


def test_a_model_built_inside_the_function_is_named_not_an_lr_of_its_own(graded):
    """type(model)() seeded inside: at lr=0 the returned model's weights were not the handed-in model's start, which
    follows-arguments read as "does not train at the lr it is given" although its Adam followed lr."""
    failed = {c.id: c for c in graded["fresh-model-of-the-same-class-inside"].checks if not c.passed}
    assert set(failed) == {"follows-arguments", "scheduler-per-epoch"}, failed
    assert failed["follows-arguments"].message.startswith(
        "At lr=0 (the grader's run on a plateau) the model your function returned is not the one the grader handed it")
    assert "its optimizer stepped at lr 0, as given, so the model returned is one your function builds or loads " \
           "itself" in failed["follows-arguments"].message
    assert "an lr of its own" not in failed["follows-arguments"].message


def test_a_count_never_reset_is_named_beside_patience_in_batches_where_both_fit(graded):
    """The grader's run stopped one epoch after its best: patience counted in batches gives that, and so does a count
    never set back to 0 (the cause here); only the first was named."""
    failed = {c.id: c.message for c in graded["bad-epochs-counted-since-the-start"].checks if not c.passed}
    assert set(failed) == {"stopped-after-patience", "grader-run-patience"}, failed
    assert ("what patience counted in batches (or optimizer steps) gives, 5 of them at 6 an epoch, or a count never "
            "reset to 0 when the val loss improves (with these val losses it reaches 5 at epoch 24)"
            ) in failed["grader-run-patience"]


def test_a_model_the_grader_s_calls_change_is_judged_as_the_notebook_left_it(graded):
    """The function restores into the notebook's global `model`: the student's own run is right, but the grader's
    later calls loaded their best states into that object, and the own-run check measured one of theirs (2 points,
    "matches no epoch of its history"). Each value is exported with the weights it had when the export met it."""
    failed = {c.id: c.message for c in graded["best-weights-put-into-the-global-model"].checks if not c.passed}
    assert set(failed) == {"grader-run-restored", "restored-without-trigger"}, failed


def test_a_run_past_its_epoch_budget_is_not_judged_on_how_it_counts_an_improvement(graded):
    """The epoch loop reads a module constant: the run at lr=1e-6 ran 150 epochs where it was given 12, and
    strict-improvement said it "ran all 12 epochs" and took half its points from a correct rule."""
    checks = by_id(graded["epoch-budget-from-a-constant"])
    assert checks["strict-improvement"].passed and checks["strict-improvement"].points == 1.0
    assert ("your function reported best_epoch 150 and ran 150 epochs, given n_epochs=12: it follows another epoch "
            "budget") in checks["strict-improvement"].message
    follows = checks["follows-arguments"]
    assert not follows.passed and "and went through the training loader 123 times: its loop runs 123 epochs, bounded " \
        "by something other than the n_epochs argument" in follows.message
    # The same loop without a validation loader: follows-arguments' to charge, once (0/0.5 here too before).
    assert checks[NOVAL].passed, checks[NOVAL].message


def test_gradients_never_cleared_are_measured_on_the_model_handed_in_when_another_is_returned(graded):
    """The function returns a second model, built before training and loaded with the best weights: it took no step
    of its own, so the record was on the model the grader handed in, which it trained (14/14 before)."""
    failed = [c for c in graded["second-model-returned-no-zero-grad"].checks if not c.passed and c.id != NOVAL]
    assert [c.id for c in failed] == ["gradients-cleared"], [(c.id, c.message) for c in failed]
    assert "every one used a gradient that still held the step before's" in failed[0].message


def test_an_adam_made_anew_each_epoch_costs_a_third_of_follows_arguments(graded):
    """Adam's running averages start again every epoch; the run still trains and stops consistently (13/13 before)."""
    failed = [c for c in graded["adam-made-each-epoch"].checks if not c.passed and c.id != NOVAL]
    assert [c.id for c in failed] == ["follows-arguments"], [(c.id, c.message) for c in failed]
    assert failed[0].points == pytest.approx(2 / 3, abs=1e-4)
    assert failed[0].message.startswith("In 25 epochs, a new optimizer took over the model's parameters 24 times "
                                        "during training, without the state the one before had built for them")


def test_a_smoothed_default_loss_is_compared_in_its_own_loss_and_costs_a_third_of_follows_arguments(graded):
    """CrossEntropyLoss(label_smoothing=0.1) as the function's default: its history is in the smoothed loss, so the
    three restore checks matched no epoch and blamed the restore (3 points). The kernel records the smoothing: the
    restore is measured in that loss, and the loss itself costs what a changed set-up costs."""
    result = graded["smoothed-default-loss"]
    failed = [c for c in result.checks if not c.passed and c.id != NOVAL]
    assert [c.id for c in failed] == ["follows-arguments"], [(c.id, c.message) for c in failed]
    assert failed[0].message == ("The run's loss was not the course's: cross_entropy was called with "
                                 "label_smoothing=0.1 (the kernel's record; the course's default criterion is plain "
                                 "nn.CrossEntropyLoss()).")
    assert "(with label_smoothing=0.1, as the run called cross_entropy" in by_id(result)["restored-best"].message


def test_another_default_optimizer_than_adam_is_named_by_the_settings_it_stepped_with(graded):
    """AdamW made when no optimizer is passed (14/14 before): the settings of its first step are not Adam(lr)'s."""
    failed = [c for c in graded["adamw-by-default"].checks if not c.passed and c.id != NOVAL]
    assert [c.id for c in failed] == ["follows-arguments"], [(c.id, c.message) for c in failed]
    assert failed[0].message == (
        "The grader passed no optimizer, and your function made AdamW with decoupled_weight_decay=True, "
        "weight_decay=0.01, where Adam(lr=lr) has decoupled_weight_decay=False, weight_decay=0. The course's default "
        "is torch.optim.Adam(model.parameters(), lr=lr) with nothing else set: make that one when no optimizer is "
        "given.")


def test_gradients_cleared_between_backward_and_step_are_named_where_the_model_never_trained(graded):
    """zero_grad() after backward(): no step finds a gradient, the model never trains, and every check of the run's
    consistency still holds (13/13 public before). gradients-cleared and follows-arguments name what was measured."""
    failed = {c.id: c for c in graded["zero-grad-after-backward"].checks if not c.passed and c.id != NOVAL}
    assert sorted(failed) == ["follows-arguments", "gradients-cleared"], [(i, c.message) for i, c in failed.items()]
    assert failed["gradients-cleared"].message.startswith("Its optimizer stepped 150 times and never found a "
                                                           "gradient on the parameters: zero_grad() is called between "
                                                           "backward() and step()")
    assert failed["follows-arguments"].message.startswith("The model the grader handed your function never changed "
                                                           "in its 25 epochs: its optimizer stepped 150 times")


def test_a_function_that_trains_and_validates_on_the_notebook_s_globals_is_measured_by_the_grader_s_loaders(graded):
    """The body trains on the global train_loader and validates the global model on the global val_loader: the
    notebook's own run is right and the grader's loaders have as many batches (14/14 before). The grader's loaders
    count the passes over them, and a val loss that never moves while the weights do is no measure of the model."""
    result = graded["globals-in-the-body"]
    failed = {c.id: c for c in result.checks if not c.passed and c.id != NOVAL}
    assert sorted(failed) == ["follows-arguments", "grader-run-restored", "restored-without-trigger"], [
        (i, c.message) for i, c in failed.items()]
    message = failed["follows-arguments"].message
    assert message.startswith("Your function's val loss was 5.72901 at every one of its 25 epochs, while training "
                              "changed the model's weights: its validation pass does not measure the model being "
                              "trained")
    assert ("never went through the training DataLoader it was given, in 25 epochs, and 0 of its 150 training "
            "batches held only that loader's points") in message
    assert ("never went through the validation DataLoader it was given, in 25 epochs, and the model it trained was "
            "never fed that loader's points: its val loss measures other data (the training loader, or a global "
            "`val_loader`) or another model") in message
    assert failed["follows-arguments"].points == 0
    strict = by_id(result)["strict-improvement"]
    assert strict.passed and "with no fall to count, it tests no improvement, so it was not judged" in strict.message


def test_an_update_by_hand_at_its_own_step_size_is_caught_by_the_run_at_lr_0_and_own_batching_is_no_fault(graded):
    """Plain gradient descent written by hand, at a step size of its own: no torch optimizer step shows the lr, so
    follows-arguments passed with "one optimizer step per training batch" (14/14). The run at lr=0 moved. The
    function cuts the loader's own dataset into batches itself, which trains on the loader's points all the same."""
    failed = [c for c in graded["hand-update-own-step"].checks if not c.passed and c.id != NOVAL]
    assert [c.id for c in failed] == ["follows-arguments"], [(c.id, c.message) for c in failed]
    assert failed[0].points == pytest.approx(2 / 3, abs=1e-4)
    assert failed[0].message.startswith("At lr=0 (the grader's run on a plateau) the model's weights still changed: "
                                        "your function does not train at the lr it is given")
    assert "never went through the training DataLoader" not in failed[0].message
    assert failed[0].message.endswith("It never went through the validation DataLoader it was given, but the model "
                                      "was fed that loader's points (its dataset read another way).")


def test_a_call_that_never_returns_is_stopped_and_costs_only_the_checks_that_need_it():
    """The function runs until patience runs out, whatever n_epochs says: at lr=1e-6 every epoch improves, so the
    grader's call never returned, and the export cell's time-out cost every check (0/14 before)."""
    exercise = load_exercise("early-stopping")
    # The spec's 30 s, shortened for the test: still several times what the 123 epochs of the run that returns take.
    limits = dataclasses.replace(exercise.spec.limits, probe_timeout_s=6)
    exercise = dataclasses.replace(exercise, spec=dataclasses.replace(exercise.spec, limits=limits))
    result = grade(CASES / "patience-ends-the-run.ipynb", exercise, hidden=False)
    assert result.status is Status.OK, result.error
    failed = {c.id: c for c in result.checks if not c.passed and c.id != NOVAL}
    assert sorted(failed) == ["follows-arguments", "strict-improvement"], [(c.id, c.message) for c in failed.values()]
    assert "it recorded 123 epochs, more than n_epochs" in failed["follows-arguments"].message
    assert ("at lr=1e-6 (the val loss falls by tiny amounts), 12 epochs with patience 3, it had not returned when its "
            "time was up (still running after 6 s)") in failed["strict-improvement"].message


def test_a_val_loader_rebound_after_training_is_not_taken_for_the_runs(graded):
    """A later cell rebinds val_loader to one batch of 180 for a confusion matrix: the run's own batches of 32 were
    never tried, and restored-best lost its 2 points with causes that were all wrong."""
    result = graded["val-loader-rebound-after-training"]
    assert result.score == result.max_score, [(c.id, c.message) for c in result.checks if not c.passed]
    assert ("(summed over validation batches of 32, as your history matches; `val_loader` as the notebook ended "
            "makes batches of 180, so the run used another loader)") in by_id(result)["restored-best"].message


def _stopper(improves, late: int = 0, record=float, refuse_zero: bool = False, best_from_stop: bool = False,
             watch: str = "val"):
    """A train_model_extended (Adam, sums of batch means) with its own test for an improvement and count to stop,
    applied to the loss ``watch`` names."""
    def train_model_extended(model, dataloader, val_dataloader=None, criterion=None, optimizer=None, scheduler=None,
                             lr=0.01, n_epochs=200, logging_interval=50, patience=None):
        if refuse_zero and lr <= 0:
            raise ValueError("lr must be positive")
        criterion, optimizer = nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=lr)
        train_loss, val_loss, best, best_epoch, waited = [], [], None, 0, 0
        for epoch in range(1, n_epochs + 1):
            train_loss.append(0.0)
            for x, y in dataloader:
                optimizer.zero_grad()
                batch = criterion(model(x), y)
                batch.backward()
                optimizer.step()
                train_loss[-1] += batch.item()
            with torch.no_grad():
                loss = sum(criterion(model(x), y).item() for x, y in val_dataloader)
            val_loss.append(record(loss))
            loss = train_loss[-1] if watch == "train" else loss
            if best is None or improves(loss, best):
                best, best_epoch, waited = loss, epoch, 0
            else:
                waited += 1
                if waited >= patience + late:
                    break
        if best_from_stop:  # the epoch patience counts back from: wrong where patience never ran out
            best_epoch = len(val_loss) - patience
        return model, train_loss, [], val_loss, [], best_epoch, []

    return train_model_extended


@pytest.mark.parametrize("improves, kwargs, passed, says", [
    (lambda v, best: v < best, {}, True, "no tie counted as an improvement"),
    (lambda v, best: v < best, {"late": 1}, True, "every fall counted as an improvement"),  # the patience checks' part
    (lambda v, best: v <= best, {}, False, "(<= where the task has <, or a margin added to the best"),
    (lambda v, best: v < best - 1e-4, {}, False, "a min_delta does this"),
    (lambda v, best: v < best, {"record": lambda v: round(v, 2)}, True, "which a rounded record cannot show"),
    (lambda v, best: v < best, {"refuse_zero": True}, True, "could not be used, so ties were not tested"),
    # best_epoch worked out from the stop is the best-epoch checks' to judge, not a rule for an improvement
    (lambda v, best: v < best, {"best_from_stop": True}, True, "every fall counted as an improvement"),
    # a tie in a rounded record excuses nothing where a fall it shows was not counted
    (lambda v, best: v < best - 1e-3, {"record": lambda v: round(v, 4)}, False, "a min_delta does this"),
    # the training loss watched: it still changes at lr=0, so the runs test no rule for the val loss (the best-epoch
    # checks judge the loss watched; this one cost half its points for ties the function never saw)
    (lambda v, best: v < best, {"watch": "train"}, True, "exactly what the task's rule gives on its training loss"),
])
def test_strict_improvement_judges_the_rule_on_the_function_s_own_record(tmp_path, improves, kwargs, passed, says):
    from grader.checks.improvement import strict_improvement

    spec = load_exercise("early-stopping").spec
    requests = [{"name": "train_model_extended", "kind": "function"}]
    requests += [{"name": e.name, "kind": e.kind, "code": e.code}
                 for e in map(spec.export, ("grader_run", "grader_plateau_run", "grader_creep_run"))]
    exports = round_trip(tmp_path, {"train_model_extended": _stopper(improves, **kwargs)}, requests)
    outcome = strict_improvement(CheckContext(spec, exports, (), None, check_id="strict-improvement"),
                                 plateau="grader_plateau_run", creep="grader_creep_run", also="grader_run")
    assert outcome.passed is passed and says in outcome.message, outcome.message


def test_the_restore_message_does_not_say_never_called_where_the_notebook_loads_elsewhere():
    """An EarlyStopping helper class holds state_dict(keep_vars=True) and calls load_state_dict itself: the function
    never does, and the message said it "never calls model.load_state_dict", which the notebook plainly does."""
    code = restore_code("def train_model_extended(model, loader):\n    stopper = Stopper()\n"
                        "    stopper.restore(model)\n    return model\n")
    plain = RestoreEvidence(best=13, epochs=33, held=33, n_epochs=500, code=code)
    assert "Your function never calls model.load_state_dict" in why_not_best(plain)
    helper = dataclasses.replace(plain, loads_elsewhere=True)
    assert why_not_best(helper).startswith(" Your function does not call load_state_dict(...) itself. Your notebook "
                                           "calls it elsewhere: if a helper the function uses loads the best state "
                                           "back, either what it loads holds the last epoch's weights")
    # A restore into a copy the helper makes: the model returned keeps the last weights, and that is among the causes.
    assert "or it loads them into another model than the one your function returns" in why_not_best(helper)
    # Restored where patience never ran out, not here, where it did: the restore is skipped on an early stop.
    skipped = why_not_best(dataclasses.replace(helper, full_restored=True))
    assert "the restore is skipped on the way out of an early stop" in skipped and "keep_vars" not in skipped


def test_a_first_epoch_taken_only_as_the_baseline_is_caught_on_the_plateau(graded):
    """`best = val_loss[0]` after epoch 1, with no state kept: best_epoch 0 on a plateau, and 15/15, because the
    plateau's rule accepted any best_epoch up to the latest the strict rule allows."""
    check = by_id(graded["first-epoch-only-a-baseline"])["strict-improvement"]
    assert not check.passed and check.message.startswith(
        "At lr=0 the val loss never changes, so the first epoch is the best: epoch 1, as your function numbers epochs "
        "in the grader's other run; but your function reported best_epoch 0")


def test_an_optimizer_kept_from_the_first_call_is_caught_by_the_model_it_left_unchanged(graded):
    """An Adam made on the first call and kept in a global trains the notebook's model in every later call: the
    grader's model never changed, and follows-arguments said it trained all 25 epochs."""
    check = by_id(graded["optimizer-cached-across-calls"])["follows-arguments"]
    assert not check.passed and check.message.startswith(
        "The model the grader handed your function never changed in its 25 epochs: no optimizer ever stepped its "
        "parameters")


LEFT_OUT = ("went through its training and validation loaders {} times each, one pass of each an epoch, but its history "
            "holds {} epochs: it leaves epochs it ran out of its history")


@pytest.mark.parametrize("name, own, probe", [
    # Appended after the test to stop: the stopping epoch is never recorded. Told "one epoch early, the count is off
    # by one", whose fix would make a right counter stop late.
    ("stop-epoch-left-out-of-the-history", 32, (28, 27)),
    # The histories cut to the best epoch after the restore: told a counter reset wrongly, and steps on other batches.
    ("histories-cut-at-the-best-epoch", 13, (28, 23)),
])
def test_a_history_that_leaves_out_epochs_it_ran_is_told_so_not_as_a_counter_off(graded, name, own, probe):
    checks = by_id(graded[name])
    assert checks["grader-run-patience"].message == (
        "The grader's own run of your function " + LEFT_OUT.format(*probe) + " (the epoch it stopped at, or the "
        "epochs after the best, say). Record every epoch's values before deciding whether to stop, and return the "
        "lists whole.")
    stopped = checks["stopped-after-patience"]
    assert not stopped.passed and stopped.message.startswith(
        f"Your history holds {own} epochs, and where your run stopped cannot be read from it. The grader's own run of "
        "your function (`grader_run`) " + LEFT_OUT.format(*probe))
    assert "off by one" not in stopped.message and "counter" not in stopped.message
    follows = checks["follows-arguments"]
    assert ("other batches" not in follows.message) and (follows.passed or LEFT_OUT.format(25, 23) in follows.message)


def test_a_val_loss_measured_on_the_training_loader_is_named_where_the_restore_cannot_be_told(graded):
    """The validation pass loops over the training loader: the restore checks listed a scale, a moment and weights of
    no epoch, none true, and told the student to put back the best weights, which the function does."""
    checks = by_id(graded["validates-on-the-training-loader"])
    for check_id in ("restored-best", "grader-run-restored", "restored-without-trigger"):
        assert not checks[check_id].passed
        assert ("never went through that loader, and never fed the model its points: the val loss your function "
                "records is measured on other data") in checks[check_id].message
        assert "What remains" not in checks[check_id].message


def test_a_validation_loader_gone_through_but_never_fed_as_made_names_the_changed_values():
    """The loaders' datasets standardised in place: the restore checks listed a scale, a moment and the weights, and
    told the student to put back the best epoch's weights, which the function did. The grader's run went through its
    validation loader (one pass an epoch) and never fed the model a batch of its points as it made them."""
    said = why_not_best(RestoreEvidence(best=23, epochs=28, held=None, n_epochs=80, fed_other_values=True))
    assert said.startswith(" The grader's run of your function went through the validation loader it was given, yet "
                           "never fed the model a batch of that loader's points as the grader made them")
    assert "put back the best epoch's weights" not in said
