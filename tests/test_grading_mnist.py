"""The MNIST exercises graded in real kernels on real MNIST, kept fast with subsets where the recipes allow.

The notebooks read whatever root the grader shows them (``MNIST_ROOT``, read-only) and the grader
measures on the same root, so a subset changes nothing but the run time:
- mnist-sgd: the first 10,000 training and 2,000 test images (its recipe still passes 85% / 95% there);
- mnist-adam: the first 40,000 training images and all 10,000 test images (its recipe reaches 92.0% there,
  93.0% on the full files; with 20,000 only 90.5%, too close to the 90% it needs);
- lr-sweep: 1,200 / 500 images (1e-3 still clearly beats 1e-4: 88.4% against 65.4%);
- sweep mistakes, whose checks compare the runs with each other or read their records: 320 / 300;
- other mistakes whose checks read the architecture, optimizer, preprocessing or steps: 600 / 300;
- batch-size mistakes, told in batches per epoch: 5,000 / 1,000 images (too few steps to push SGD past 95%
  training accuracy, so that mistake keeps the 10,000, where it reaches 96.7%).

Step counts follow the root: an epoch over the 5,000 images of the small root is 79 batches of 64, over the
600 of the tiny one 10, over the 320 of the sweep one 5.
Checks whose logic needs no kernel run on values exported in this process (``mnist_support``).
"""

import dataclasses

import pytest
import torch
from grading_support import FILES, by_id, grade, solution, student
from mnist_support import evaluate, exported, subset_root, unpacked_root
from torch import nn
from torch.nn import functional as F

from grader.checks.data import DataFactory
from grader.checks.mnist import _batches_unlike, rounding, transforms_in_code
from grader.checks.models import measured_accuracy
from grader.loading.values import LoaderExport, OptimizerExport, SchedulerExport
from grader.results import Status
from reference.mnist.models import MnistCNN, MnistMLP

KEEP = "Keep the architecture unchanged; only the training may differ."
COURSE_MLP = "The course's network is linear 784→128, relu, linear 128→10."


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """An untrained 784-128-10 network exported and loaded once: each test sets its records with dataclasses.replace.

    Drawn from a fixed seed: whichever test of this process first asks for it, the same weights (an untrained draw
    lands outside the band of chance accuracy now and then)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return exported(MnistMLP(), tmp_path_factory.mktemp("mlp"))


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    full = unpacked_root(tmp_path_factory)
    base = tmp_path_factory.mktemp("mnist-subsets")
    return {"mnist-sgd": subset_root(full, base / "sgd", 10_000, 2_000),
            "mnist-adam": subset_root(full, base / "adam", 40_000, 10_000),
            "lr-sweep": subset_root(full, base / "cnn", 800, 500),
            "tiny": subset_root(full, base / "tiny", 600, 300),
            "sweep": subset_root(full, base / "sweep", 320, 300),
            "small": subset_root(full, base / "small", 5_000, 1_000)}


def run(roots, exercise, path, root: str = ""):
    return grade(path, exercise, hidden=False, data_root=roots[root or exercise])


@pytest.mark.parametrize("exercise", ["mnist-sgd", "mnist-adam", "lr-sweep"])
def test_solution_passes_every_check(roots, exercise):
    result = run(roots, exercise, solution(exercise))
    assert result.status is Status.OK, result.error
    assert result.score == result.max_score == 11, \
        [(c.id, c.message) for c in result.checks if not c.passed]


@pytest.mark.parametrize("exercise, first_words", [
    ("mnist-sgd", "`history['train_loss']` records no epoch"),
    ("mnist-adam", "`history['train_loss']` records no epoch"),
    ("lr-sweep", "`models` is still empty"),
])
def test_untouched_notebook_scores_zero_with_what_to_do(roots, exercise, first_words):
    result = run(roots, exercise, student(exercise))
    assert result.score == 0
    assert "NotImplementedError" in result.error
    assert result.checks[0].message.startswith(first_words)


def test_a_history_under_other_keys_is_a_loop_that_ran_not_one_that_did_not():
    """Keras-style keys ('loss', 'accuracy', ...) for the given history: the loop ran, and was told it had not, which
    also withheld every check that requires `trained` (0/10 for a model that passed them all)."""
    renamed = evaluate("mnist-sgd", "trained", {"history": {"loss": [0.5] * 15, "accuracy": [90.0] * 15}})
    assert renamed.passed and renamed.fraction == 0.5
    assert renamed.message.startswith("Training ran: `history` holds lists under 'loss', 'accuracy' (15 values), but "
                                      "none under 'train_loss'")
    empty = evaluate("mnist-sgd", "trained", {"history": {"loss": [], "accuracy": []}})
    assert not empty.passed and empty.message.startswith("`history` has no 'train_loss' list, and no other list")
    untouched = evaluate("mnist-sgd", "trained", {"history": {"train_loss": [], "val_acc": []}})
    assert not untouched.passed and untouched.message.startswith("`history['train_loss']` records no epoch")
    per_batch = evaluate("mnist-sgd", "trained", {"history": {"train_loss": [1.0] * 316}, "optimizer": _optimizer(316)})
    assert per_batch.passed and per_batch.fraction == 0.5 and per_batch.message.startswith(
        "Training ran, but `history['train_loss']` holds 316 values, one per `optimizer`.step(): one per batch")


def test_sgd_changed_hidden_size(roots):
    check = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "hidden-256.ipynb", "tiny"))["architecture"]
    assert not check.passed
    assert check.message == ("`model` is not the course's MnistMLP: it has linear 784→256 where the course's has "
                             "linear 784→128; it has linear 256→10 where the course's has linear 128→10. "
                             f"{COURSE_MLP} {KEEP}")


def test_sgd_sequential_mlp_with_a_progress_bar_keeps_what_the_task_fixes(roots):
    result = run(roots, "mnist-sgd", FILES / "mnist-sgd" / "sequential.ipynb", "tiny")
    assert result.status is Status.OK, result.error  # its `from tqdm import tqdm` works in the kernel
    checks = by_id(result)
    assert checks["architecture"].passed and checks["architecture"].message == (
        "`model` has the course's MnistMLP architecture: linear 784→128, relu, linear 128→10 (101,770 parameters).")
    # Its cosine schedule steps per batch: last_epoch counts batches then, and must not be taken for epochs.
    assert checks["fixed-setup"].passed and checks["fixed-setup"].message == (
        "`optimizer` stepped 150 times: 15 epochs of batches of 64 over the 600 training images, as the task fixes.")


def test_sgd_added_dropout_is_named(roots):
    check = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "dropout.ipynb", "tiny"))["architecture"]
    assert not check.passed
    assert check.message == ("`model` is not the course's MnistMLP: it adds dropout (p=0.25) between relu and "
                             f"linear 128→10. {COURSE_MLP} {KEEP}")


def test_sgd_two_epochs_instead_of_fifteen(roots):
    checks = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "two-epochs.ipynb", "tiny"))
    assert not checks["fixed-setup"].passed
    assert checks["fixed-setup"].message == ("`optimizer` stepped 20 times: 2 epochs of batches of 64 over the 600 "
                                             "training images, but the task fixes 15 epochs.")
    # PILToTensor, then a lambda dividing by 255 and flattening: ToTensor's pixels, which lost the point as "changed"
    assert checks["preprocessing"].passed and checks["preprocessing"].message.startswith(
        "The images reached `model` in training unchanged: 512 of the 512 rows of its first training batches")


def test_a_plain_sgd_made_anew_each_epoch_is_counted_by_the_model_s_steps(roots):
    """A learning rate decayed by hand, one new SGD per epoch: the exported optimizer stepped in the last epoch only,
    and the run lost half of fixed-setup as "created anew". The model's parameters took all 15 epochs' steps."""
    check = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "sgd-per-epoch.ipynb", "tiny"))["fixed-setup"]
    assert check.passed, check.message
    assert check.message == (
        "the model's parameters took 150 optimizer steps: 15 epochs of batches of 64 over the 600 training images, "
        "as the task fixes (`optimizer` itself stepped 10 times: a new SGD was made during training (a plain SGD keeps "
        "no state, so that changes nothing but the learning rate)).")


def test_sgd_training_accuracy_too_high(roots):
    checks = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "constant-high-lr.ipynb"))
    assert checks["val-accuracy"].passed
    train = checks["train-accuracy"]
    assert not train.passed and train.metrics["accuracy"] >= 95
    assert "it needs less than 95%" in train.message and "fits the training digits too closely" in train.message


def test_sgd_optimizer_swapped(roots):
    check = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "adam-instead.ipynb", "tiny"))["optimizer"]
    assert not check.passed
    assert check.message.startswith("`optimizer` is torch.optim.adam.Adam, but the task keeps torch's SGD")


def test_sgd_with_momentum_is_more_than_an_lr_change(roots):
    check = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "momentum.ipynb", "tiny"))["optimizer"]
    assert not check.passed
    assert check.message == ("`optimizer` is torch's SGD, but it also sets momentum=0.9 (torch's default is 0), and the "
                             "task changes only the learning rate: create it as optim.SGD(model.parameters(), lr=...).")


def test_a_hand_written_momentum_update_beside_an_exported_plain_sgd_loses_the_optimizer_point(roots):
    """The exported SGD is plain and never steps; the loop updates the weights by hand with momentum. It kept the
    optimizer point (the export alone was read), and train-accuracy's hint spoke of the scheduler it never used."""
    checks = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "hand-momentum.ipynb", "tiny"))
    assert not checks["optimizer"].passed and checks["optimizer"].message.startswith(
        "`optimizer` is torch's SGD, but it did not train `model`: its weights moved from their values at its first "
        "forward pass, but no torch optimizer ever stepped them (the kernel's record)")
    assert "no optimizer or scheduler setting of the notebook's drove this run" in checks["train-accuracy"].message
    assert checks["preprocessing"].passed and checks["architecture"].passed


def test_adam_batch_size_changed(roots):
    check = by_id(run(roots, "mnist-adam", FILES / "mnist-adam" / "batch-128.ipynb", "small"))["fixed-setup"]
    assert not check.passed
    assert check.message == ("`optimizer` stepped 160 times in 4 epochs, 40 times per epoch: batches of 128 over the "
                             "5,000 training images, as `train_loader` makes them, but the task fixes the batch size "
                             "at 64.")


def test_adam_trained_on_its_own_loader_while_exporting_the_given_one(roots):
    check = by_id(run(roots, "mnist-adam", FILES / "mnist-adam" / "own-loader.ipynb", "small"))["fixed-setup"]
    assert not check.passed
    assert check.message == ("`optimizer` stepped 160 times in 4 epochs, 40 times per epoch. Over the 5,000 training "
                             "images that is batches of 125 to 128 images, not 64; or, with batches of 64, epochs of "
                             "2,497 to 2,560 images instead of all 5,000; `train_loader` makes 79 batches of 64 per "
                             "epoch, so the training did not step once on each of its batches: it also stepped on "
                             "other batches (another loader's, say), skipped some, stepped once per several "
                             "(gradients accumulated over them), or did not use `train_loader`.")


def test_adam_scheduler_that_never_stepped_is_named_instead_of_advice(roots):
    checks = by_id(run(roots, "mnist-adam", FILES / "mnist-adam" / "scheduler-never-stepped.ipynb", "tiny"))
    assert checks["fixed-setup"].passed
    train = checks["train-accuracy"]
    assert not train.passed and train.metrics["accuracy"] >= 95
    assert train.message.endswith(
        "it needs less than 95%. Your `scheduler` (StepLR) never stepped: its last_epoch is 0, so it never changed "
        "the learning rate during training. Call scheduler.step() in the training loop, after the optimizer's steps "
        "(once per epoch for a schedule counted in epochs).")
    assert "decay sooner" not in train.message  # no advice on tuning a schedule that never ran


@pytest.mark.parametrize("name, says", [
    # StepLR stepped at the top of each epoch: every epoch one step further along; both accuracies in the band.
    ("scheduler-stepped-first-each-epoch", "`scheduler` (StepLR) stepped before its optimizer had stepped at all: the "
     "optimizer had taken 0, 10, 20, 30 steps at its 4 step() calls"),
    # ReduceLROnPlateau (min mode) given the training accuracy: a fixed decay, in the band all the same.
    ("plateau-on-training-accuracy", "`scheduler` decided from another value than the val_loss the task's loop passes "
     "it: its best value, "),
    # Its validation pass runs over train_loader: the val_loss the plateau decided from is a training loss, which the
    # message had called "your val_loss".
    ("validation-pass-over-the-training-loader", "`scheduler` decided from your val_loss (its best value, 2.076, is "
     "your val_loss at epoch 4), but your val_acc after the last epoch, 62.83%, is your model's accuracy on the "
     "training images (62.83%, measured by the grader), not on the validation images (52.33%)"),
    # A loop of its own that passes the plateau `loss`, left over from the last training batch: its best value is
    # in no record, which had passed as "cannot be read"; the kernel's record of each step's loss shows whose it is.
    ("plateau-given-the-last-batch-loss", "`scheduler` decided from the loss of one training batch: its best value, "
     "1.573, is none of the values in `history` but is the cross-entropy of the batch of the model's optimizer step "
     "40 of 40, the last training batch before the scheduler's step() call 4, in the kernel's record of its "
     "training."),
])
def test_a_scheduler_stepped_unlike_the_given_loop_is_measured_in_the_run(roots, name, says):
    """Each passed scheduler-stepping: no check read how the scheduler stepped, or what it was given."""
    check = by_id(run(roots, "mnist-adam", FILES / "mnist-adam" / f"{name}.ipynb", "tiny"))["scheduler-stepping"]
    assert not check.passed and check.message.startswith(says)


def _plateau(best: float, mode: str = "min", calls: tuple | None = (79, 158, 237)) -> SchedulerExport:
    return SchedulerExport("ReduceLROnPlateau", "torch.optim.lr_scheduler", {"best": best, "mode": mode}, None, calls,
                           "ReduceLROnPlateau")


HISTORY = {"train_loss": [0.9, 0.5, 0.4], "train_acc": [80.5, 88.25, 90.0], "val_loss": [0.6, 0.45, 0.41],
           "val_acc": [85.0, 89.5, 90.25]}


@pytest.mark.parametrize("scheduler, passed, says", [
    (None, True, "`scheduler` is None: no scheduler to step, which the task allows."),
    (_plateau(0.41), True, "`scheduler` (ReduceLROnPlateau) stepped 3 times, the first time after 79 optimizer steps, "
     "and decided from your val_loss in 'min' mode: its best value, 0.41, is your val_loss at epoch 3."),
    (_plateau(90.25, "max"), True, "and decided from your val_acc in 'max' mode"),
    (_plateau(90.25, "min"), False, "`scheduler` decided from your val_acc (its best value, 90.25, is your val_acc at "
     "epoch 3), but in 'min' mode, where val_acc needs 'max'. In 'min' mode a value that rises"),
    (_plateau(0.41, "max"), False, "`scheduler` decided from your val_loss (its best value, 0.41, is your val_loss at "
     "epoch 3), but in 'max' mode, where val_loss needs 'min'. Pass it"),
    (_plateau(0.4), False, "`scheduler` decided from another value than the val_loss the task's loop passes it: its "
     "best value, 0.4, is your train_loss at epoch 3 and none of your val_loss values (it is in 'min' mode). Pass it"),
    # A history whose lists are filed under each other's keys reads the same: both are said.
    (_plateau(0.4), False, "If it is given the val_loss already, then `history` files its lists under other keys than "
     "their names (the val_loss under 'train_loss', say)"),
    # Another batching of the val loss than the one recorded: what it decided from cannot be read, so it passes.
    (_plateau(0.4093), True, "its best value, 0.4093, is none of the values in `history`"),
    (_plateau(0.41, calls=None), True, "carries no record of its step() calls"),
    (_plateau(0.41, calls=(0, 79, 158)), False, "the optimizer had taken 0, 79, 158 steps at its 3 step() calls"),
    (_plateau(0.41, calls=(0, 0)), False, "The optimizer you gave `scheduler` (ReduceLROnPlateau) never stepped"),
    # A second scheduler.step() an epoch: two calls with no optimizer step between them, at every epoch but the last.
    (_plateau(0.41, calls=(79, 79, 158, 158, 237, 237)), False, "stepped 6 times, the first time after 79 optimizer "
     "steps, but at 2 points of the run (after 79, 158 optimizer steps) it was called twice with no optimizer step "
     "between the calls"),
    # One more call after training moves no LR the run used.
    (_plateau(0.41, calls=(79, 158, 237, 237)), True, "stepped 4 times"),
    # Per batch, past the 1,000 calls the kernel keeps: the scheduler's own count.
    (SchedulerExport("StepLR", "torch.optim.lr_scheduler", {"last_epoch": 2355}, None, tuple(range(1, 1001)),
                     "StepLR"), True, "`scheduler` (StepLR) stepped 2,355 times, the first time after 1 optimizer "
     "step: after the optimizer"),
    # Past them with no count of its own (step(epoch + i / iters) sets last_epoch to the epoch): at least the record's.
    (SchedulerExport("CosineAnnealingWarmRestarts", "torch.optim.lr_scheduler", {"last_epoch": 14}, None,
                     tuple(range(1, 1001)), "CosineAnnealingWarmRestarts"), True,
     "`scheduler` (CosineAnnealingWarmRestarts) stepped at least 1,000 times, the first time after 1 optimizer step"),
])
def test_what_a_scheduler_stepping_check_reads_from_the_run(scheduler, passed, says):
    outcome = evaluate("mnist-adam", "scheduler-stepping", {"scheduler": scheduler, "history": HISTORY})
    assert outcome.passed is passed and says in outcome.message, outcome.message


def test_a_model_stepped_on_the_validation_images_earns_no_held_out_accuracy(roots):
    """run_epoch(val_loader, train=True): every epoch also stepped the optimizer on the test images, and the accuracy
    measured on them passed the held-out mark (the kernel's record of the first training calls held only the
    training images, so not even the note was said)."""
    checks = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "validation-pass-that-trains.ipynb", "tiny"))
    val = checks["val-accuracy"]
    assert not val.passed and val.points == 0
    assert val.message.startswith("Your model was trained on the test images (the validation set): of the ")
    assert 0.05 < val.metrics["trained_on_share"] < 0.2  # one of each epoch's 11: the 300 test images in one batch
    assert not checks["fixed-setup"].passed


@pytest.mark.parametrize("name, stepping, accuracy", [
    # scheduler.step(val_loss) on a StepLR: torch takes the value as the epoch to jump to, and below 1 the LR never
    # moves. scheduler-stepping passed ("as torch expects"), and on the sgd root the notebook got full marks.
    ("steplr-given-the-val-loss", "`scheduler` (StepLR) stepped 15 times, the first time after 10 optimizer steps, "
     "but it was given a value at its step() calls: its last_epoch is ",
     "Your `scheduler` (StepLR) was given a value at its step() calls"),
    # A second scheduler.step() after the loop's own: StepLR(1, 0.5) quartered the LR each epoch; it passed ("stepped
    # 30 times ... as torch expects") and the accuracy was told to use a larger LR or a slower decay.
    ("scheduler-stepped-twice-an-epoch", "`scheduler` (StepLR) stepped 30 times, the first time after 10 optimizer "
     "steps, but at 14 points of the run (after 10, 20, 30, 40, ... optimizer steps) it was called twice with no "
     "optimizer step between the calls", "Your `scheduler` (StepLR) was stepped faster than its settings say"),
])
def test_a_scheduler_stepped_otherwise_than_once_an_epoch_is_named_in_the_stepping_and_the_accuracy(roots, name,
                                                                                                    stepping, accuracy):
    checks = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / f"{name}.ipynb", "tiny"))
    assert not checks["scheduler-stepping"].passed
    assert checks["scheduler-stepping"].message.startswith(stepping)
    assert accuracy in checks["val-accuracy"].message
    assert "a larger starting learning rate" not in checks["val-accuracy"].message


def test_a_lambda_that_returns_a_learning_rate_is_named_instead_of_advice(roots):
    """LambdaLR(lr_lambda=lambda e: LR0 * exp(-0.4 e)): the optimizer's lr 3e-3 times 3e-3 and less; the model stays
    near chance, and was told "a larger starting learning rate" (its starting lr was fine)."""
    checks = by_id(run(roots, "mnist-adam", FILES / "mnist-adam" / "lambda-returns-a-rate.ipynb", "tiny"))
    assert checks["fixed-setup"].passed
    val = checks["val-accuracy"]
    assert not val.passed and val.metrics["accuracy"] < 50
    assert ("it needs at least 90%. Your `scheduler` (LambdaLR) never let `model` train at its optimizer's lr 0.003: "
            "its first step ran at 9e-06, 0.003 times that, and no step above 9e-06 (the kernel's record). LambdaLR "
            "multiplies the optimizer's lr by what the lambda returns") in val.message
    assert "larger starting learning rate" not in val.message


def test_adam_preprocessing_changed(roots):
    check = by_id(run(roots, "mnist-adam", FILES / "mnist-adam" / "normalize.ipynb", "tiny"))["preprocessing"]
    assert not check.passed
    assert check.message.startswith("The preprocessing changed: the notebook uses Normalize.")


def test_sweep_reported_accuracies_that_are_not_the_models(roots):
    checks = by_id(run(roots, "lr-sweep", FILES / "lr-sweep" / "typed-val-accs.ipynb", "sweep"))
    check = checks["reported-vs-measured"]
    assert not check.passed
    assert "lr=0.0001: reported val 97.00% but the exported model scores" in check.message


def test_sweep_with_one_learning_rate_for_all(roots):
    checks = by_id(run(roots, "lr-sweep", FILES / "lr-sweep" / "same-lr.ipynb", "sweep"))
    assert not checks["1e-3-beats-1e-4"].passed
    # One epoch per rate (to keep the test short): the comparison is said not to hold, and the epochs named too.
    order = checks["1e-3-beats-1e-4"]
    assert order.points == 0 and "lr=0.001 does not beat lr=0.0001 here" in order.message
    assert order.message.startswith("The comparison is of runs trained alike, but your curves record 1 for lr=0.001, "
                                    "1 for lr=0.0001, where the task trains every rate for 5 epochs")
    assert not checks["labels-match-runs"].passed  # the kernel saw every model stepped at lr=0.001
    assert checks["labels-match-runs"].message.startswith(
        "The models are not stored under the rates they trained at: the model under lr=0.0001 was stepped at "
        "lr=0.001; the model under lr=0.01 was stepped at lr=0.001")


def test_a_count_of_correct_predictions_reported_as_the_accuracy_is_named(roots):
    """correct / len(val_loader), one batch: the count itself (188% and more) was told only to report the accuracy of
    the exported model, and the order check called the curve from 30% to 83% ... or above 100% "converging"."""
    checks = by_id(run(roots, "lr-sweep", FILES / "lr-sweep" / "correct-count-not-divided.ipynb", "sweep"))
    assert "lr=0.001: reported val 188.00% but the exported model scores 62.67% (188/300): the count of correct " \
           "predictions itself, not divided by the number of images;" in checks["reported-vs-measured"].message
    assert checks["1e-3-beats-1e-4"].passed


def test_a_reported_curve_above_100_percent_is_not_read_as_converging():
    from grader.checks.mnist import accuracy_curve_summary

    assert accuracy_curve_summary([181.0, 250.0, 308.0]) == ("it holds values above 100% (up to 308), which no share "
                                                             "of the images reaches.")
    assert "converging" in accuracy_curve_summary([36.0, 50.0, 62.0])


def test_a_rounded_report_is_shown_as_reported_not_as_the_grader_s_figure(roots):
    """Accuracies kept as round(acc, 2) pass; the message said "val 62.67% ... as reported" of a report of 0.63."""
    checks = by_id(run(roots, "lr-sweep", FILES / "lr-sweep" / "accuracies-rounded.ipynb", "sweep"))
    check = checks["reported-vs-measured"]
    assert check.passed
    assert check.message.startswith("lr=0.0001: val 27.67% (83/300) where you reported 28%;")
    assert "lr=0.01: val 73.00% (219/300) as reported;" in check.message


def test_results_in_another_form_cost_the_report_check_not_the_models_measured_order(roots):
    """results as a list of {"lr", "train_losses", "val_accs"} dicts: the order check, which measures the models, lost
    its 3 points to "`results` must be a dict" beside reported-vs-measured's."""
    checks = by_id(run(roots, "lr-sweep", FILES / "lr-sweep" / "results-as-a-list.ipynb", "sweep"))
    assert checks["1e-3-beats-1e-4"].passed, checks["1e-3-beats-1e-4"].message
    assert [c.id for c in checks.values() if not c.passed] == ["reported-vs-measured"]
    assert checks["reported-vs-measured"].message == "`results` must be a dict, but it is a list."


def test_curves_that_also_record_the_untrained_model_are_a_record_off_not_runs_trained_unlike(roots):
    """Every rate trained 5 epochs, alike; val_accs also holds the untrained accuracy first (6 values). The order
    check said the runs were not trained alike ("your curves record 6 ...") and took 1.5 of its 3 points."""
    checks = by_id(run(roots, "lr-sweep", FILES / "lr-sweep" / "untrained-accuracy-recorded-first.ipynb", "sweep"))
    assert checks["1e-3-beats-1e-4"].passed, checks["1e-3-beats-1e-4"].message
    assert "holds 5 values and its val_accs 6" in checks["reported-vs-measured"].message
    assert [c.id for c in checks.values() if not c.passed] == ["reported-vs-measured"]


def test_sweep_with_swapped_labels(roots):
    checks = by_id(run(roots, "lr-sweep", FILES / "lr-sweep" / "swapped-labels.ipynb", "sweep"))
    assert checks["architecture"].passed  # the CNN as one nn.Sequential
    assert checks["reported-vs-measured"].passed  # each report matches the model stored beside it
    labels = checks["labels-match-runs"]
    assert not labels.passed  # trained 1e-2 first, stored under 1e-4: the LRs the kernel saw each model stepped at
    assert labels.message.startswith("The models are not stored under the rates they trained at: the model under "
                                     "lr=0.0001 was stepped at lr=0.01; the model under lr=0.01 was stepped at "
                                     "lr=0.0001")


@pytest.mark.parametrize("name, check, says", [
    # One loss per batch: every accuracy as reported, and the curve read as "converging" for full marks.
    ("per-batch-losses", "reported-vs-measured", "lr=0.0001: val 27.67% (83/300) as reported, but "
     "`results[0.0001]['train_losses']` holds 25 values and its val_accs 5: record one of each per epoch"),
    # `return batch_loss.item()` after the batch loop: each epoch's last batch, a falling curve given full marks.
    ("loss-of-the-last-batch", "reported-vs-measured", "lr=0.0001: val 27.67% (83/300) as reported, but its "
     "train_losses are each epoch's last batch's loss alone: the kernel recorded the loss of each of its 5 optimizer "
     "steps an epoch, and epoch 1's "),
    # The batches' mean losses summed and divided by the training images: 64 times too small, "converging" for 3/3.
    ("batch-means-per-image", "reported-vs-measured", "lr=0.0001: val 27.67% (83/300) as reported, but its "
     "train_losses are each epoch's sum of the batches' mean losses divided by the 320 training images: the kernel "
     "recorded the loss of each of its 5 optimizer steps an epoch, and epoch 1's "),
    # Validated every other epoch: the losses (5) were blamed for the accuracies' length (3).
    ("val-accuracy-every-other-epoch", "reported-vs-measured", "`results[0.0001]['train_losses']` holds 5 values and "
     "its val_accs 3: record one of each per epoch"),
    # iter(train_loader) made once: epochs 2 to 5 trained on nothing, their losses 0, read as "converging" for 3/3.
    ("one-iterator-for-all-epochs", "reported-vs-measured", "`results[0.0001]['train_losses']` is 0 at epochs 2, 3, "
     "4, 5: no batch was counted there"),
    # SGD for 1e-2 only: it moved least, and the labels were blamed, which the kernel's record shows are right.
    ("sgd-for-the-largest-rate", "labels-match-runs", "though the kernel saw each model stepped at the rate it is "
     "stored under: they were trained with different optimizers (lr=0.0001: Adam, lr=0.001: Adam, lr=0.01: SGD)"),
    # The 1e-2 run filed under 1e-4: the comparison was credited as if it were of the two rates.
    ("models-keyed-in-reverse", "1e-3-beats-1e-4", "The comparison is of runs trained alike, but the model under "
     "lr=0.0001 was stepped at lr=0.01 (lr=0.001 does not beat lr=0.0001 here"),
    # Dropout left on while the notebook measured: told to measure on the validation loader, which it did.
    ("dropout-measured-in-train-mode", "reported-vs-measured", "measured on the validation loader (the test split) "
     "and with the model in eval mode (it has dropout, which acts otherwise in training mode: a count taken without "
     "model.eval() differs from the grader's), as the seed does: the correct predictions over all its images"),
])
def test_sweep_records_unlike_what_they_claim_are_told_what_was_measured(roots, name, check, says):
    result = run(roots, "lr-sweep", FILES / "lr-sweep" / f"{name}.ipynb", "sweep")
    failed = by_id(result)[check]
    # A loss record off beside accuracies that match costs half of the reports' points.
    record_only = check == "reported-vs-measured" and name != "dropout-measured-in-train-mode"
    assert not failed.passed and failed.points == (failed.max_points / 2 if record_only else 0)
    assert says in failed.message


def test_one_model_trained_on_from_rate_to_rate_is_told_by_its_steps_not_also_by_a_batch_size(roots):
    """Snapshots of one model trained on at each rate: its steps since its start are those of every run so far, which
    also read as "another batch size, or other training data" for the later rate."""
    compared = by_id(run(roots, "lr-sweep", FILES / "lr-sweep" / "one-model-trained-on-with-snapshots.ipynb",
                         "sweep"))["1e-3-beats-1e-4"]
    assert not compared.passed and compared.points == 1.5
    assert "the models' parameters took 50 (lr=0.001) and 25 (lr=0.0001) optimizer steps" in compared.message
    assert "a new optimizer took over the model's parameters 1 time" in compared.message
    assert "batch size" not in compared.message


def test_preprocessing_that_cannot_be_read_is_said_so():
    used, unclear = transforms_in_code(((3, "t = getattr(transforms, name)()"),))
    assert unclear == ["cell 3 picks a transform by name"]
    used, unclear = transforms_in_code(((1, "from torchvision.transforms import Normalize, ToTensor"),))
    assert used == {"Normalize", "ToTensor"} and unclear == []


@pytest.mark.parametrize("code, built", [
    # A Normalize left in a comment was read as used: correct work lost preprocessing's point.
    ("# transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])\n"
     "transform = transforms.ToTensor()\n", {"ToTensor"}),
    # Under another name the transform was not found at all ("cannot be decided": half the point).
    ("import torchvision.transforms as T\nto_tensor = T.ToTensor()\n", {"ToTensor"}),
    ("from torchvision import transforms as tf\nt = tf.Compose([tf.ToTensor(), tf.Normalize((0.5,), (0.5,))])\n",
     {"Compose", "ToTensor", "Normalize"}),
    ("import torchvision\nt = torchvision.transforms.Normalize((0.5,), (0.5,))\n", {"Normalize"}),
    ("%matplotlib inline\nfrom torchvision.transforms import v2\nt = v2.RandomRotation(10)\n", {"RandomRotation"}),
    # only the labels go through a target_transform; ToPILImage makes a digit to look at: neither touches the images
    ("data = MNIST(root, transform=transforms.ToTensor(), target_transform=transforms.Lambda(lambda y: y))\n"
     "picture = transforms.ToPILImage()(data[0][0])\n", {"ToTensor"}),
    ("to_label = transforms.Lambda(lambda y: y)\ndata = MNIST(root, transform=transforms.ToTensor(), "
     "target_transform=to_label)\n", {"ToTensor"}),
    ("shift = transforms.Lambda(lambda y: y)\ndata = MNIST(root, transform=shift, target_transform=shift)\n",
     {"Lambda"}),
])
def test_transforms_are_read_from_the_syntax_under_any_name_and_never_from_comments(code, built):
    assert transforms_in_code(((2, code),)) == (built, [])


# --- without a kernel: models exported in this process, values built by hand -------------------------------------


class MatmulMLP(nn.Module):
    """784-128-10 with raw parameters, weights stored (in, out): the same layers as nn.Linear's."""

    def __init__(self):
        super().__init__()
        self.w1, self.b1 = nn.Parameter(torch.randn(784, 128) * 0.01), nn.Parameter(torch.zeros(128))
        self.w2, self.b2 = nn.Parameter(torch.randn(128, 10) * 0.01), nn.Parameter(torch.zeros(10))

    def forward(self, x):
        return torch.relu(x.reshape(x.size(0), -1) @ self.w1 + self.b1) @ self.w2 + self.b2


class SoftmaxMLP(MnistMLP):
    def forward(self, x):
        return F.softmax(super().forward(x), dim=1)


class EvalDropoutMLP(MnistMLP):
    def forward(self, x):
        return self.fc2(F.dropout(self.relu(self.fc1(self.flatten(x))), 0.2))  # training=True, even in eval()


class SpareLayerMLP(MnistMLP):
    def __init__(self):
        super().__init__()
        self.spare = nn.Linear(128, 64)  # defined, never called


class UnpaddedCNN(MnistCNN):
    def __init__(self):
        super().__init__()
        self.conv[0] = nn.Conv2d(1, 16, 3)
        self.fc[1] = nn.Linear(32 * 6 * 6, 128)


class SamePaddedCNN(MnistCNN):  # padding="same" on a 3x3 kernel is padding 1: it lost 9 of 10 points
    def __init__(self):
        super().__init__()
        self.conv[0] = nn.Conv2d(1, 16, 3, padding="same")
        self.conv[3] = nn.Conv2d(16, 32, 3, padding="same")


class LogSoftmaxMLP(MnistMLP):  # trained with NLLLoss: the same network and training as logits with cross-entropy
    def forward(self, x):
        return torch.log_softmax(super().forward(x), dim=-1)


class BatchLogSoftmaxMLP(MnistMLP):  # over the batch: each image's scores depend on the others'
    def forward(self, x):
        return nn.functional.log_softmax(super().forward(x), dim=0)


class ClampMLP(MnistMLP):  # relu written as clamp(min=0), as torch's own "learning by examples" tutorial does
    def forward(self, x):
        return self.fc2(self.fc1(x.flatten(1)).clamp(min=0))


class ClampAtOneMLP(MnistMLP):  # another bound is no relu
    def forward(self, x):
        return self.fc2(self.fc1(x.flatten(1)).clamp(min=0, max=1))


class DoubleMLP(MnistMLP):  # kept in float64, as a notebook that feeds numpy's float64 pixels does
    def __init__(self):
        super().__init__()
        self.double()


class TransposedMLP(nn.Module):  # x @ W.T + b: aten.numpy_T was off the rebuild allowlist (3 of 10 points)
    def __init__(self):
        super().__init__()
        self.W1, self.b1 = nn.Parameter(torch.randn(128, 784) * 0.01), nn.Parameter(torch.zeros(128))
        self.W2, self.b2 = nn.Parameter(torch.randn(10, 128) * 0.01), nn.Parameter(torch.zeros(10))

    def forward(self, x):
        return torch.relu(x.reshape(x.shape[0], -1) @ self.W1.T + self.b1) @ self.W2.T + self.b2


@pytest.mark.parametrize("make, exercise, problems", [
    (MatmulMLP, "mnist-sgd", ""),
    (SamePaddedCNN, "lr-sweep", ""),
    (TransposedMLP, "mnist-sgd", ""),
    (SoftmaxMLP, "mnist-sgd", "it adds softmax (dim=1) after linear 128→10, at the end"),
    (LogSoftmaxMLP, "mnist-sgd", ""),
    (ClampMLP, "mnist-sgd", ""),
    (DoubleMLP, "mnist-sgd", ""),
    (ClampAtOneMLP, "mnist-sgd", "it has clamp (min=0, max=1) where the course's has relu"),
    (BatchLogSoftmaxMLP, "mnist-sgd", "it adds log_softmax (dim=0) after linear 128→10, at the end"),
    (EvalDropoutMLP, "mnist-sgd", ("it adds dropout (p=0.2, active in eval mode too: F.dropout needs "
                                   "training=self.training) between relu and linear 128→10")),
    (SpareLayerMLP, "mnist-sgd", ("it holds parameters its forward pass never uses: spare.weight [64, 128], "
                                  "spare.bias [64]")),
    (UnpaddedCNN, "lr-sweep", ("it has conv 1→16 3x3, padding 0 where the course's has conv 1→16 3x3, padding 1; it "
                               "has linear 1152→128 where the course's has linear 1568→128")),
])
def test_architecture_is_read_from_the_forward_pass(tmp_path, make, exercise, problems):
    torch.manual_seed(0)
    name = "model" if exercise == "mnist-sgd" else "models"
    net = exported(make(), tmp_path)
    outcome = evaluate(exercise, "architecture", {name: net if name == "model" else {0.001: net}})
    assert outcome.passed is not bool(problems)
    assert ("It ends with log_softmax over the classes" in outcome.message) is (make is LogSoftmaxMLP)
    if problems:
        label = "`model`" if name == "model" else "`models[0.001]`"
        assert outcome.message.startswith(f"{label} is not the course's ") and f": {problems}. The course's" in \
            outcome.message


def _optimizer(steps=None, state_steps=()) -> OptimizerExport:
    return OptimizerExport("SGD", "torch.optim.sgd", ({"lr": 0.05, "n_params": 101770},), {}, steps, state_steps)


LOADER = LoaderExport(64, True, "RandomSampler", False, "MNIST", 5000, "ToTensor()")


def _trained(steps: int):
    """A loaded 784-128-10 model whose parameters the kernel counted ``steps`` optimizer steps for."""
    from grader.loading.model_graph import LoadedModel

    net = MnistMLP()
    parameters = {k: v.detach() for k, v in net.named_parameters()}
    return LoadedModel(torch.fx.symbolic_trace(net), "MnistMLP", (1, 28, 28), parameters,
                       steps={k: steps for k in parameters})


@pytest.mark.parametrize("exercise, values, verdict, message", [
    # drop_last=True: 78 batches an epoch
    ("mnist-sgd", {"optimizer": _optimizer(15 * 78), "history": {"train_loss": [1.0] * 15}}, True,
     "`optimizer` stepped 1,170 times: 15 epochs of batches of 64 over the 5,000 training images, as the task fixes."),
    # no probe count: Adam's own per-parameter step
    ("mnist-adam", {"optimizer": _optimizer(None, (4 * 79,)), "history": {"train_loss": [1.0] * 4}}, True,
     "`optimizer` stepped 316 times: 4 epochs of batches of 64 over the 5,000 training images, as the task fixes."),
    # a new optimizer every epoch: the exported one stepped in the last epoch only
    ("mnist-sgd", {"optimizer": _optimizer(79), "history": {"train_loss": [1.0] * 15}}, False,
     ("`optimizer` stepped 79 times: 1 epoch of batches of 64 over the 5,000 training images (`history` records 15; "
      "if 15 ran, `optimizer` was created anew during training: create it once, before the loop), but the task fixes "
      "15 epochs.")),
    # no history: the scheduler's last_epoch counts the epochs
    ("mnist-sgd", {"optimizer": _optimizer(15 * 40), "train_loader": LOADER,
                   "scheduler": SchedulerExport("StepLR", "torch.optim.lr_scheduler", {"last_epoch": 15}, None)},
     False, ("`optimizer` stepped 600 times in 15 epochs, 40 times per epoch. Over the 5,000 training images that is "
             "batches of 125 to 128 images, not 64; or, with batches of 64, epochs of 2,497 to 2,560 images instead of "
             "all 5,000; `train_loader` makes 79 batches of 64 per epoch, so the training did not step once on each "
             "of its batches: it also stepped on other batches (another loader's, say), skipped some, stepped once "
             "per several (gradients accumulated over them), or did not use `train_loader`.")),
    # the training loader's own batches, 157 an epoch, then the validation loader's two, with train=True: it did use
    # `train_loader` (this was "so the training did not use it")
    ("mnist-sgd", {"optimizer": _optimizer(15 * 81), "train_loader": LOADER, "history": {"train_loss": [1.0] * 15}},
     False, ("`optimizer` stepped 1,215 times in 15 epochs, 81 times per epoch. Over the 5,000 training images that is "
             "batches of 62 images, not 64; or, with batches of 64, epochs of 5,121 to 5,184 images instead of all "
             "5,000; `train_loader` makes 79 batches of 64 per epoch, so the training did not step once on each of "
             "its batches: it also stepped on other batches (another loader's, say), skipped some, stepped once per "
             "several (gradients accumulated over them), or did not use `train_loader`.")),
    # a loader over 90% of the split (random_split): its own batches explain the count (was "batches of 72, not 64")
    ("mnist-adam", {"optimizer": _optimizer(4 * 71), "history": {"train_loss": [1.0] * 4},
                    "train_loader": dataclasses.replace(LOADER, dataset_len=4500)}, False,
     ("`optimizer` stepped 284 times in 4 epochs, 71 times per epoch: batches of 64 over the 4,500 images "
      "`train_loader` holds, as it makes them, but the training split has 5,000: train on all of it.")),
    # one row more than the epochs stepped: the untrained network evaluated first (was "created anew", half the point)
    ("mnist-adam", {"optimizer": _optimizer(4 * 79), "history": {"train_loss": [1.0] * 5}}, True,
     "`optimizer` stepped 316 times: 4 epochs of batches of 64 over the 5,000 training images, as the task fixes "
     "(`history` records 5 values, one more than the epochs stepped: a row before training, say)."),
    # a history filled once per batch: its length is the step count (was "if 316 ran, `optimizer` was created anew")
    ("mnist-adam", {"optimizer": _optimizer(4 * 79), "history": {"train_loss": [1.0] * 316}}, True,
     ("`optimizer` stepped 316 times: 4 epochs of batches of 64 over the 5,000 training images, as the task fixes "
      "(`history` holds one value per optimizer step, not one per epoch: its length counts batches).")),
    # epochs the notebook's choice, but the exported optimizer ran one of the 4 the history records
    ("mnist-adam", {"optimizer": _optimizer(79), "history": {"train_loss": [1.0] * 4}}, False,
     ("`optimizer` stepped 79 times: 1 epoch of batches of 64 over the 5,000 training images (`history` records 4; "
      "if 4 ran, `optimizer` was created anew during training: create it once, before the loop); a new optimizer each "
      "epoch also restarts what it has learnt of the gradients (Adam's running averages, SGD's momentum).")),
    ("mnist-adam", {"optimizer": _optimizer(79), "history": {"train_loss": [1.0]}}, True,
     "`optimizer` stepped 79 times: 1 epoch of batches of 64 over the 5,000 training images, as the task fixes."),
    ("mnist-sgd", {"optimizer": _optimizer(1000), "history": {"train_loss": [1.0] * 15}}, False,
     ("`optimizer` stepped 1,000 times, which is no whole number of epochs of 79 batches of 64 over the 5,000 "
      "training images: the batch size or the training data changed, or an epoch stopped early.")),
    ("mnist-sgd", {"optimizer": _optimizer(None), "history": {"train_loss": [1.0] * 15}}, False,
     ("`optimizer` never stepped, or its steps could not be counted: train with this optimizer, calling its step() "
      "once per batch.")),
    # the loop over the validation loader: 16 batches of 64 an epoch is the 1,000 validation images (was only "batches
    # of 313 to 322 images, not 64")
    ("mnist-sgd", {"optimizer": _optimizer(15 * 16), "history": {"train_loss": [1.0] * 15}}, False,
     ("`optimizer` stepped 240 times in 15 epochs, 16 times per epoch. Over the 5,000 training images that is batches "
      "of 313 to 333 images, not 64; or, with batches of 64, epochs of 961 to 1,024 images instead of all 5,000; that "
      "is the size of the validation split (1,000 images): the loop stepped on the validation images.")),
    # the validation split as the training loader, train=False where train=True belongs (was "train on all of it")
    ("mnist-sgd", {"optimizer": _optimizer(15 * 16), "history": {"train_loss": [1.0] * 15},
                   "train_loader": dataclasses.replace(LOADER, dataset_len=1000)}, False,
     ("`optimizer` stepped 240 times in 15 epochs, 16 times per epoch: batches of 64 over the 1,000 images "
      "`train_loader` holds, as it makes them, but the training split has 5,000: 1,000 is as many as the validation "
      "split holds, so it may be the validation split (train=False where train=True belongs): train on the training "
      "split.")),
    # train + validation in one loader (was "the training split has 5,000: train on all of it")
    ("mnist-sgd", {"optimizer": _optimizer(15 * 94), "history": {"train_loss": [1.0] * 15},
                   "train_loader": dataclasses.replace(LOADER, dataset_len=6000)}, False,
     ("`optimizer` stepped 1,410 times in 15 epochs, 94 times per epoch: batches of 64 over the 6,000 images "
      "`train_loader` holds, as it makes them, but the training split has 5,000: 1,000 of its images come from "
      "elsewhere, as many as the validation split holds: train on the training split alone.")),
    # a plain SGD made anew each epoch (an LR set by hand): the model's parameters took all 15 epochs' steps
    # (was "if 15 ran, `optimizer` was created anew during training", half the point lost)
    ("mnist-sgd", {"optimizer": _optimizer(79), "history": {"train_loss": [1.0] * 15}, "model": _trained(15 * 79)},
     True, ("the model's parameters took 1,185 optimizer steps: 15 epochs of batches of 64 over the 5,000 training "
            "images, as the task fixes (`optimizer` itself stepped 79 times: a new SGD was made during training (a "
            "plain SGD keeps no state, so that changes nothing but the learning rate)).")),
    # a break out of the second epoch after 31 batches: one whole epoch and 31 more (was only "batches of 91")
    ("mnist-adam", {"optimizer": _optimizer(79 + 31), "history": {"train_loss": [1.0] * 2}}, False,
     ("`optimizer` stepped 110 times in 2 epochs, 55 times per epoch. Over the 5,000 training images that is batches "
      "of 91 to 92 images, not 64; or, with batches of 64, epochs of 3,457 to 3,520 images instead of all 5,000; or 1 "
      "whole epoch of 79 batches of 64 and 31 batches of the next: a last epoch stopped early (a break inside the "
      "batch loop, say).")),
    # an Adam made anew each epoch starts its running averages over (the kernel counts 3 restarts): not the set-up
    ("mnist-adam", {"optimizer": dataclasses.replace(_optimizer(79), cls="Adam"), "history": {"train_loss": [1.0] * 4},
                    "model": dataclasses.replace(_trained(4 * 79), optimizer_restarts=3)}, False,
     ("the model's parameters took 316 optimizer steps, 4 epochs of batches of 64 over the 5,000 training images, but "
      "`optimizer` itself stepped 79 times: a new Adam was made during training, which starts its state over (running "
      "averages); create it once, before the loop, and change the learning rate with a scheduler.")),
    # a checkpoint resumed: the new Adam was given the old one's state_dict, and the kernel saw no restart
    ("mnist-adam", {"optimizer": dataclasses.replace(_optimizer(79), cls="Adam"), "history": {"train_loss": [1.0] * 4},
                    "model": _trained(4 * 79)}, True,
     ("the model's parameters took 316 optimizer steps: 4 epochs of batches of 64 over the 5,000 training images, as "
      "the task fixes (`optimizer` itself stepped 79 times: a new Adam was made during training and given its "
      "predecessor's state (load_state_dict), so the run went on as one).")),
])
def test_fixed_setup_counts_steps_over_the_roots_training_images(roots, exercise, values, verdict, message):
    outcome = evaluate(exercise, "fixed-setup", values, roots["small"])
    assert (outcome.passed, outcome.message) == (verdict, message)


@pytest.mark.parametrize("order, passed", [("stored", False), ("shuffled", True), ("stored after a stray call", True),
                                           ("stored, then steps on shuffled batches", True),
                                           ("stored, then steps on batches in stored order", False)])
def test_batches_taken_in_the_files_order_are_not_shuffled_whatever_the_loader_says(roots, order, passed):
    """Tensors sliced 64 at a time in the files' order, every epoch, beside an exported DataLoader that shuffles and
    is never used: fixed-setup read its shuffle=True and passed. The kernel records the rows in the order fed. A look
    at the untrained net over the images in stored order, in training mode with gradients on, before a shuffled
    training failed it too: the batches the optimizer steps followed (sampled across the run) tell the two apart."""
    from grader.kernel.kernel_probe import row_signatures

    train = DataFactory(None, roots["small"]).make({"kind": "mnist", "split": "train"}).X
    first = {"stored": train[:256], "shuffled": train[torch.randperm(len(train))[:256]],
             "stored after a stray call": torch.cat([torch.rand(2, 1, 28, 28), train[:254]])}.get(order, train[:256])
    stepped = {"stored, then steps on shuffled batches": train[torch.randperm(len(train))[:40]],
               "stored, then steps on batches in stored order": train[::64][:40]}.get(order)
    model = dataclasses.replace(_trained(15 * 79), input_rows=tuple(row_signatures(first)),
                                stepped_rows=tuple(row_signatures(stepped)) if stepped is not None else ())
    outcome = evaluate("mnist-sgd", "fixed-setup", {"optimizer": _optimizer(15 * 79), "train_loader": LOADER,
                                                    "history": {"train_loss": [1.0] * 15}, "model": model},
                       roots["small"])
    assert outcome.passed is passed, outcome.message
    if not passed:
        assert outcome.message == (
            "`model`'s first 128 training inputs were the first 128 training images in their stored order (the "
            "kernel's record of its first training-mode calls), so the data was not shuffled, whatever `train_loader` "
            "says, or these calls were an evaluation in training mode with gradients on (no model.eval(), no "
            "torch.no_grad()) before training: draw the batches from a DataLoader with shuffle=True, which reshuffles "
            "every epoch, and evaluate under model.eval() and torch.no_grad().")


def test_sweep_reports_are_compared_to_the_image(roots, tmp_path):
    cnn = MnistCNN()
    with torch.no_grad():  # it answers "4" for every image: 9.83% of the tiny subset's training digits, 12.33% of its test
        cnn.fc[3].weight.zero_()
        cnn.fc[3].bias.copy_(F.one_hot(torch.tensor(4), 10).float())
    net = exported(cnn, tmp_path)
    data = DataFactory(None, roots["tiny"])
    test_set = data.make({"kind": "mnist", "split": "test"})
    n = len(test_set.Y)
    val = measured_accuracy(net, *vars(test_set).values())[1]
    train = measured_accuracy(net, *vars(data.make({"kind": "mnist", "split": "train"})).values())[0]
    lrs = (0.0001, 0.001, 0.01)

    def check(reported: list[float]):
        results = {lr: {"train_losses": [2.3, 2.3], "val_accs": [0.1, r]} for lr, r in zip(lrs, reported)}
        return evaluate("lr-sweep", "reported-vs-measured", {"models": dict.fromkeys(lrs, net), "results": results},
                        roots["tiny"])

    assert abs(train - 100 * val / n) > 0.5  # the premise: a training accuracy is no validation accuracy here
    assert check([(val + 2) / n, (val - 2) / n, 100 * val / n]).passed  # two images off, and in percent
    three_off = check([(val + 3) / n, val / n, val / n])
    assert not three_off.passed and three_off.message.startswith(
        f"lr=0.0001: reported val {100 * (val + 3) / n:.2f}% but the exported model scores {100 * val / n:.2f}% "
        f"({val}/{n});")
    as_train = check([train / 100, val / n, val / n])
    assert not as_train.passed
    assert f", and {train:.2f}% on the training images: the report is its training accuracy" in as_train.message


def test_a_training_loss_curve_summed_over_each_batch_is_told_and_a_mean_one_is_not(roots, tmp_path):
    """train_losses as the sum of each batch's per-sample losses (reduction='sum', 64 per batch): the reports of
    accuracy matched, so the sweep passed with a curve 64 times a mean loss."""
    cnn = MnistCNN()
    with torch.no_grad():
        cnn.fc[3].weight.zero_()
        cnn.fc[3].bias.copy_(F.one_hot(torch.tensor(4), 10).float())
    net = exported(cnn, tmp_path)
    test_set = DataFactory(None, roots["tiny"]).make({"kind": "mnist", "split": "test"})
    val = measured_accuracy(net, test_set.X, test_set.Y)[1] / len(test_set.Y)
    train = DataFactory(None, roots["tiny"]).make({"kind": "mnist", "split": "train"})
    own = float(F.cross_entropy(net(train.X[:2048].float()), train.Y[:2048]))
    lrs = (0.0001, 0.001, 0.01)

    def check(curve: list[float]):
        results = {lr: {"train_losses": curve, "val_accs": [val, val]} for lr in lrs}
        return evaluate("lr-sweep", "reported-vs-measured", {"models": dict.fromkeys(lrs, net), "results": results},
                        roots["tiny"])

    summed = check([64 * 2.5, 64 * own])
    assert not summed.passed and summed.fraction == 0.5  # the accuracies match: half of each rate's share
    assert f"lr=0.0001: val {100 * val:.2f}% ({round(val * len(test_set.Y))}/{len(test_set.Y)}) as reported, but its " \
           f"reported training losses run from 160 to {64 * own:.4g}" in summed.message and "64 times less" in \
           summed.message and "Report the accuracy" not in summed.message
    assert check([2.5, own]).passed  # a mean loss
    assert check([64 * 2.5, 4 * own]).passed  # its last epoch near the model's own loss: not another scale
    # The batches' mean losses summed and divided by the number of images: 64 times too small (it was "converging").
    per_image = check([0.6 / 64, own / 64])
    assert not per_image.passed and "64 times more" in per_image.message and "divided by the number of images" in \
        per_image.message
    assert check([0.03, own / 4]).passed  # a last epoch a few times under the model's own: no other scale
    assert check([0.2, own / 64]).passed  # a first epoch a run from an untrained model may average: no other scale


def test_rounded_reports_are_allowed_their_rounding():
    assert rounding(0.9731) == pytest.approx(0.00005) and rounding(97) == 0.5 and rounding(97.3) == pytest.approx(0.05)
    assert rounding(2 / 3) == 0.0


def test_sweep_labels_name_one_run_stored_twice_and_missing_records(tmp_path):
    torch.manual_seed(0)
    net = exported(MnistCNN(), tmp_path / "a")
    net.initial = {k: v + 0.01 for k, v in net.parameters.items()}
    twice = evaluate("lr-sweep", "labels-match-runs", {"models": {0.0001: net, 0.001: net, 0.01: net}})
    assert not twice.passed and twice.message.startswith("The models under lr=0.0001, lr=0.001 and lr=0.01 are one "
                                                         "model stored 3 times")
    other_net = exported(MnistCNN(), tmp_path / "b")
    pair = evaluate("lr-sweep", "labels-match-runs", {"models": {0.0001: net, 0.001: other_net, 0.01: net}})
    assert pair.message.startswith("The models under lr=0.0001 and lr=0.01 are one model stored twice")
    unrecorded = dataclasses.replace(net, initial={}, parameters={k: v + 0.5 for k, v in net.parameters.items()})
    other = dataclasses.replace(net, parameters={k: v - 0.5 for k, v in net.parameters.items()})
    missing = evaluate("lr-sweep", "labels-match-runs", {"models": {0.0001: net, 0.001: unrecorded, 0.01: other}})
    assert missing.passed and "could not be checked" in missing.message and \
        "the model under lr=0.001 never ran forward in your notebook" in missing.message
    # Three models, each loaded from one checkpoint file that every run overwrote: distinct objects, one run's weights.
    loaded = {lr: dataclasses.replace(unrecorded) for lr in (0.0001, 0.001, 0.01)}
    alike = evaluate("lr-sweep", "labels-match-runs", {"models": loaded})
    assert not alike.passed and alike.message.startswith("The models under lr=0.0001 and lr=0.001 hold exactly the "
                                                         "same weights: one run's weights stored under two rates")


@pytest.mark.parametrize("notebook, says", [
    # A deep copy keeps its original's recorded start (kernel_probe), so its labels are measured; so does a new model
    # loaded with a state_dict() taken of the trained one (it was "could not be checked").
    ("deepcopy-after-training", "Each model moved farther from its starting weights the higher its learning rate"),
    ("state-dict-copies", "Each model moved farther from its starting weights the higher its learning rate")])
def test_sweep_models_stored_as_copies_after_training_keep_the_labels_point(roots, notebook, says):
    """Correct sweeps that store a copy of each trained model; they were told "one run, or one model stored twice"."""
    checks = by_id(run(roots, "lr-sweep", FILES / "lr-sweep" / f"{notebook}.ipynb", "sweep"))
    assert all(c.passed for c in checks.values()), [(c.id, c.message) for c in checks.values() if not c.passed]
    labels = checks["labels-match-runs"]
    assert labels.message.startswith(says) and "one run" not in labels.message


def test_sweep_models_that_never_trained_are_named_as_such_not_as_one_run(roots):
    """Each run's optimizer was built on another model: three distinct models, none of them ever updated."""
    labels = by_id(run(roots, "lr-sweep", FILES / "lr-sweep" / "optimizer-on-another-model.ipynb", "sweep"))[
        "labels-match-runs"]
    assert not labels.passed
    assert labels.message.startswith("The models under lr=0.0001, lr=0.001 and lr=0.01 never changed from the weights "
                                     "recorded at the first forward pass")
    assert "never trained" in labels.message and "one run" not in labels.message


@pytest.mark.parametrize("notebook, says", [
    # SGD with momentum: every other check passes, and the kernel records no optimizer but the one stepping
    ("sgd-momentum", "the models were trained with SGD, where the task trains each with Adam"),
    # one model's parameters, reset in place, and one Adam for all three rates: the starts match, the steps grow
    ("one-adam-reset", "an optimizer kept for them carries its state over too"),
    # a StepLR in every run, and Adam with weight decay and AMSGrad: the kernel records the LRs and the settings
    # each model's parameters were stepped with
    ("steplr-in-every-run", "the learning rate changed during training (lr=0.001's from 0.001 down to 0.00025 and "
                            "lr=0.0001's from 0.0001 down to 2.5e-05, as the optimizer stepped)"),
    ("adam-weight-decay-amsgrad", "the Adam optimizers were made with amsgrad=True (torch's default is False), "
                                  "weight_decay=0.001 (torch's default is 0)"),
])
def test_sweeps_trained_unlike_the_task_are_measured_by_the_steps_that_made_each_model(roots, notebook, says):
    """Both got 10/10: the labels, starts and curves are all right. The kernel's per-parameter step record shows
    what the runs did instead."""
    result = run(roots, "lr-sweep", FILES / "lr-sweep" / f"{notebook}.ipynb", "sweep")
    failed = [c for c in result.checks if not c.passed]
    assert [c.id for c in failed] == ["1e-3-beats-1e-4"], [(c.id, c.message) for c in failed]
    assert failed[0].points == 1.5 and says in failed[0].message, failed[0].message


def test_an_lr_range_of_the_sweep_s_own_rates_also_names_a_model_trained_on_from_rate_to_rate(mlp):
    """One model trained on from lr=1e-4 to 1e-3: its record holds both runs' LRs, and the clause on a changed LR
    named only a scheduler or an LR set by hand."""
    from grader.checks.mnist import _trained_unlike

    on = dataclasses.replace(mlp, step_lrs=(0.0001, 0.001, 0.0001, 0.001))
    assert "a model trained on from one rate's run to the next" in " ".join(_trained_unlike({0.0001: mlp, 0.001: on},
                                                                                            ""))
    scheduled = dataclasses.replace(mlp, step_lrs=(0.001, 0.00025, 0.00025, 0.001))  # a StepLR: not a rate of the sweep
    said = " ".join(_trained_unlike({0.0001: mlp, 0.001: scheduled}, ""))
    assert "a scheduler, or an LR set by hand in the loop" in said and "rate's run" not in said


@pytest.mark.parametrize("steps, says", [
    (5 * 19, ""), (5 * 18, ""),  # batches of 64 over 1,200 images, the last one kept or dropped
    (5 * 5, "the model for lr=0.001 took 25 optimizer steps, 5 per epoch over the 5 epochs its curves record, where "
            "batches of 64 over the 1,200 training images make 19: another batch size, or other training data"),
    (3 * 19, ""),  # 3 epochs of batches of 64, as its curves record: the epochs are named elsewhere, not the batches
])
def test_a_sweep_s_batch_size_is_read_from_each_model_s_steps(steps, says, mlp):
    """Batches of 256 in every run (the task fixes 64) got 11/11: the runs are alike among themselves."""
    net = dataclasses.replace(mlp, steps={"fc1.weight": steps})
    epochs = {0.001: 3 if steps == 3 * 19 else 5}
    assert " ".join(_batches_unlike({0.001: net}, epochs, 1200, 64)) == says


def _trained_by(cls: str, group: dict) -> OptimizerExport:
    return OptimizerExport(cls, f"torch.optim.{cls.lower()}", ({"lr": 0.01, "initial_lr": 0.01, "n_params": 101770}
                                                              | group,), {}, 100)


def test_what_a_cycling_scheduler_does_to_the_optimizer_is_the_schedulers(mlp):
    """OneCycleLR moves Adam's first beta (and SGD's momentum) with the LR by default: not the student's setting, but
    plain SGD with momentum is no longer plain SGD."""
    net = mlp
    cycle = SchedulerExport("OneCycleLR", "torch.optim.lr_scheduler", {"cycle_momentum": True, "use_beta1": True,
                                                                        "last_epoch": 300}, None)
    adam = _trained_by("Adam", {"betas": [0.9499, 0.999], "eps": 1e-8, "weight_decay": 0, "amsgrad": False})
    outcome = evaluate("mnist-adam", "optimizer", {"optimizer": adam, "scheduler": cycle, "model": net})
    assert outcome.passed and outcome.message == (
        "`optimizer` is torch's Adam (starting learning rate 0.01). Its first beta moves with your OneCycleLR "
        "(cycle_momentum=True, the default): that is the scheduler's doing, not a change of the optimizer.")
    moved = dataclasses.replace(adam, param_groups=({**adam.param_groups[0], "betas": [0.9499, 0.99]},))
    outcome = evaluate("mnist-adam", "optimizer", {"optimizer": moved, "scheduler": cycle, "model": net})
    assert not outcome.passed and "betas[1]=0.99 (torch's default is 0.999)" in outcome.message

    sgd = _trained_by("SGD", {"momentum": 0.95})
    sgd_cycle = dataclasses.replace(cycle, state={**cycle.state, "use_beta1": False})
    outcome = evaluate("mnist-sgd", "optimizer", {"optimizer": sgd, "scheduler": sgd_cycle, "model": net})
    assert not outcome.passed and outcome.message == (
        "`optimizer` is torch's SGD, but your OneCycleLR gave it momentum=0.95 (it cycles the momentum unless made "
        "with cycle_momentum=False), and the task keeps plain SGD: pass cycle_momentum=False.")


def test_a_model_still_at_its_first_weights_is_told_so_not_to_train_longer(roots, mlp):
    """The kernel records each parameter at its module's first forward pass: weights that never moved are not a
    learning-rate problem."""
    net = mlp
    never = dataclasses.replace(net, initial=dict(net.parameters))
    outcome = evaluate("mnist-adam", "val-accuracy", {"model": never}, roots["tiny"])
    assert not outcome.passed and "Every weight of `model` is still what it was at its first forward pass. If `model` " \
        "is the network your loop trained, it never learned" in outcome.message
    assert "no optimizer ever stepped its parameters" in outcome.message
    # The kernel counts the steps that found these parameters without a gradient: zero_grad() between backward() and
    # step() is named, where it was one cause among several.
    idle = dataclasses.replace(never, idle_steps=316)
    said = evaluate("mnist-adam", "val-accuracy", {"model": idle}, roots["tiny"]).message
    assert "Its optimizer stepped 316 times, and not once found a gradient on its parameters: zero_grad() is " \
        "called between backward() and step()" in said and "made for other parameters" not in said
    stuck = dataclasses.replace(never, steps={k: 316 for k in never.parameters})
    assert "took 316 optimizer steps with gradients, yet never changed: a learning rate of 0" in evaluate(
        "mnist-adam", "val-accuracy", {"model": stuck}, roots["tiny"]).message
    moved = dataclasses.replace(net, initial={k: v + 1 for k, v in net.parameters.items()})
    # Weights that moved get other advice: which depends on the untrained net's random accuracy, so only its absence
    assert "still what it was" not in evaluate("mnist-adam", "val-accuracy", {"model": moved}, roots["tiny"]).message


def test_a_scheduler_stepped_once_per_batch_is_named_when_the_accuracy_falls_short(roots, mlp):
    net = mlp  # untrained (a fixed draw): it falls short; nothing recorded, so no "first weights" advice
    per_batch = SchedulerExport("StepLR", "torch.optim.lr_scheduler", {"last_epoch": 3752, "step_size": 2},
                                OptimizerExport("Adam", "torch.optim.adam", ({"lr": 1e-9},), {}, 3752))
    outcome = evaluate("mnist-adam", "val-accuracy", {"model": net, "scheduler": per_batch}, roots["tiny"])
    assert not outcome.passed and "Your `scheduler` (StepLR) stepped 3,752 times, about as often as its optimizer " \
        "(3,752 steps): once per batch." in outcome.message
    per_epoch = dataclasses.replace(per_batch, state={"last_epoch": 4, "step_size": 2})
    outcome = evaluate("mnist-adam", "val-accuracy", {"model": net, "scheduler": per_epoch}, roots["tiny"])
    assert "once per batch" not in outcome.message  # at chance (untrained), what remains is said instead of tuning
    assert "that always predicting one class scores: the model shows nothing learned" in outcome.message


def test_a_scheduler_made_with_an_optimizer_that_never_stepped_is_named(roots, mlp):
    """`ExponentialLR(optim.SGD(model.parameters(), lr=0.1), 0.6)`, then another SGD for the loop: the scheduler
    stepped each epoch, the LR that trained stayed 0.1, and the advice was to let the scheduler decay it sooner."""
    orphan = SchedulerExport("ExponentialLR", "torch.optim.lr_scheduler", {"last_epoch": 15, "gamma": 0.6},
                             OptimizerExport("SGD", "torch.optim.sgd", ({"lr": 0.1 * 0.6 ** 15},), {}, 0))
    outcome = evaluate("mnist-adam", "val-accuracy", {"model": mlp, "scheduler": orphan}, roots["tiny"])
    assert ("Your `scheduler` (ExponentialLR) stepped 15 times, but the optimizer it was made with never stepped (the "
            "kernel's count): it set the learning rate of an optimizer that trained nothing") in outcome.message
    # The kernel's export: an optimizer the probe counted no step of never stepped (0, not unknown).
    from grader.kernel import kernel_probe
    from grader.kernel.kernel_export import _optimizer

    never = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    assert _optimizer(never, vars(kernel_probe))["steps"] == 0 and _optimizer(never, None)["steps"] is None


def test_sweep_keys_and_curves_in_torch_s_own_types_are_read(tmp_path):
    """Rates from torch.logspace are float32 (1e-4 is 9.9999997e-05), and a curve may be kept in a tensor: both were
    "has no entry for lr=0.0001" and "must be a list of numbers", for a correct sweep."""
    from grader.checks.base import CheckFailed
    from grader.checks.mnist import _curve, _pick

    rates = torch.logspace(-4, -2, 3)
    table = {float(lr): {"val_accs": torch.tensor([0.65, 0.88, 0.94], dtype=torch.float64)} for lr in rates}
    row = _pick(table, 1e-4, "results")
    assert _curve(row, "val_accs", 1e-4, "results") == pytest.approx([0.65, 0.88, 0.94])
    with pytest.raises(CheckFailed, match=r"has no entry for lr=0.1 \(its keys: 9.99"):
        _pick(table, 0.1, "results")


@pytest.mark.parametrize("transform, passed, says", [
    # torchvision's v2 spelling of ToTensor lost half a point as "uses ToDtype, ToImage".
    ("Compose(\n      ToImage()\n      ToDtype(scale=True)\n)", True, "ToDtype + ToImage, the same pixels as ToTensor"),
    # ... and with PILToTensor, which lost it as "uses PILToTensor, ToDtype"
    ("Compose(\n      PILToTensor()\n      ToDtype(scale=True)\n)", True, "PILToTensor + ToDtype"),
    ("Compose(\n      ToImage()\n      ToDtype()\n)", False, "the notebook uses ToDtype, ToImage"),
    # A lambda normalising inside the pipeline passed as "unchanged (ToTensor)".
    ("Compose(\n    ToTensor()\n    <function <lambda> at 0x7f3a>\n)", False, "a function of your own"),
    ("Compose(\n    ToTensor()\n    Lambda()\n)", False, "a function of your own"),
])
def test_preprocessing_reads_torchvision_s_v2_spelling_and_functions_of_the_notebook_s_own(transform, passed, says):
    loader = dataclasses.replace(LOADER, transform=transform)
    outcome = evaluate("mnist-sgd", "preprocessing", {"train_loader": loader})
    assert outcome.passed is passed and says in outcome.message


def test_pil_to_tensor_made_float32_is_read_as_to_tensor_from_the_code():
    """transforms.ConvertImageDtype(torch.float32) after PILToTensor gives ToTensor's pixels to the bit; its repr in
    the loader hides the dtype, so the code shows it. It lost half a point as "uses ConvertImageDtype, PILToTensor"."""
    from grader.assignments.catalog import load_exercise
    from grader.checks import CheckContext
    from grader.loading.values import Exports

    exercise = load_exercise("mnist-sgd")
    check = next(c for c in exercise.checks if c.spec.id == "preprocessing")
    loader = dataclasses.replace(LOADER, transform="Compose(\n    PILToTensor()\n    ConvertImageDtype()\n)")
    for dtype, passed in (("torch.float32", True), ("torch.float16", False)):
        code = ((1, "import torch\nfrom torchvision import transforms as T\n"
                    f"tf = T.Compose([T.PILToTensor(), T.ConvertImageDtype({dtype})])\n"),)
        outcome = check.evaluate(CheckContext(exercise.spec, Exports(values={"train_loader": loader}, found=True), code,
                                              None, check_id="preprocessing"))
        assert outcome.passed is passed, outcome.message


def test_a_setting_changed_in_a_later_param_group_is_named_with_its_group(mlp):
    net = mlp
    plain = {"momentum": 0, "dampening": 0, "weight_decay": 0, "nesterov": False, "maximize": False}
    sgd = OptimizerExport("SGD", "torch.optim.sgd", ({"lr": 0.05, "n_params": 202} | plain,
                                                     {"lr": 0.05, "n_params": 101568} | plain | {"weight_decay": 1e-3}),
                          {}, 100)
    outcome = evaluate("mnist-sgd", "optimizer", {"optimizer": sgd, "model": net})
    assert not outcome.passed
    assert "weight_decay=0.001 in param group 2 (torch's default is 0)" in outcome.message


def test_runs_from_different_starts_are_not_compared_as_alike(roots, tmp_path):
    """No torch.manual_seed(0) before each model: the recorded starts differ, so more than the rate differs."""
    from grader.checks.mnist import _different_starts

    torch.manual_seed(0)
    a, b = exported(MnistCNN(), tmp_path / "a"), exported(MnistCNN(), tmp_path / "b")
    start = {k: v - 0.01 for k, v in a.parameters.items()}
    same_a, same_b = dataclasses.replace(a, initial=start), dataclasses.replace(b, initial=start)
    assert not _different_starts(same_a, dataclasses.replace(a, initial=start))
    assert _different_starts(same_a, dataclasses.replace(b, initial={k: v - 0.01 for k, v in b.parameters.items()}))
    # weights loaded into a model record no start of their own (it never moved): not a difference of starts
    assert not _different_starts(same_a, dataclasses.replace(b, initial=dict(b.parameters)))
    assert same_b.initial is start


def test_gradients_cleared_once_an_epoch_are_measured_not_guessed(roots):
    """With lr 0.0002, a loop that calls zero_grad() once per epoch can land in the accuracy bands: the kernel's
    record of what .grad held at each step is what shows it (10 batches an epoch here: 5 of 50 steps cleared)."""
    result = run(roots, "mnist-sgd", FILES / "mnist-sgd" / "zero-grad-once-per-epoch.ipynb", "tiny")
    cleared = by_id(result)["gradients-cleared"]
    assert not cleared.passed and cleared.points == 0
    assert cleared.message.startswith("Of the 50 optimizer steps measured on `model`, 45 used a gradient that still "
                                      "held the step before's, and 5 one cleared first: the loop clears them only now "
                                      "and then (once per epoch, say), not before every batch.")


def test_a_loader_made_with_a_batch_sampler_or_a_full_random_subset_is_read_as_it_batches(tmp_path):
    """DataLoader(batch_sampler=BatchSampler(RandomSampler(data), 64, False)) has batch_size None and an unused
    SequentialSampler of its own: it was told "batch size None ... does not shuffle"."""
    from grading_support import round_trip
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SubsetRandomSampler, TensorDataset

    data = TensorDataset(torch.zeros(200, 2), torch.zeros(200, dtype=torch.long))
    loaders = {"batched": DataLoader(data, batch_sampler=BatchSampler(RandomSampler(data), 64, False)),
               "every index": DataLoader(data, batch_size=64, sampler=SubsetRandomSampler(list(range(200)))),
               "some indices": DataLoader(data, batch_size=64, sampler=SubsetRandomSampler(list(range(150))))}
    values = round_trip(tmp_path, loaders, [{"name": n, "kind": "dataloader"} for n in loaders]).values
    assert (values["batched"].batch_size, values["batched"].shuffle, values["batched"].sampler) == \
        (64, True, "RandomSampler")
    assert values["every index"].shuffle and not values["some indices"].shuffle


def test_a_history_kept_in_tensors_is_read_as_its_epochs():
    """history = {k: torch.tensor(v) ...} was told "records no epoch: the training loop did not run", and every
    check behind `trained` was blocked (0/10)."""
    curves = {k: torch.linspace(1.0, 0.1, 15) for k in ("train_loss", "train_acc", "val_loss", "val_acc")}
    outcome = evaluate("mnist-sgd", "trained", {"history": curves})
    assert outcome.passed and outcome.message == "Training ran: `history` records 15 epochs."


def test_a_transform_built_in_the_code_but_not_in_the_loader_is_said_to_be_so():
    """An augmentation the notebook defines but the exported loader does not hold: it was told "the notebook uses
    RandomRotation", which it may not. What was measured, and both possibilities, are said instead."""
    loader = dataclasses.replace(LOADER, transform="ToTensor()")
    outcome = evaluate("mnist-sgd", "preprocessing", {"train_loader": loader},
                       code=((3, "augment = transforms.Compose([transforms.RandomRotation(10), transforms.ToTensor()])"),
                             (4, "transform = transforms.ToTensor()")))
    assert not outcome.passed and outcome.message.startswith(
        "The notebook's code builds RandomRotation, which `train_loader`'s transform (ToTensor()) does not hold: if "
        "the images go through it anywhere")


@pytest.mark.parametrize("fed, passed", [((0.0, 1.0), True), ((0.0, 0.996), True), ((-0.4242, 2.821), False),
                                         ((0.0, 255.0), False), ((), True),
                                         ((0.0, 1 / 255), False)])  # ToTensor, then / 255 again in a Dataset
def test_images_normalised_on_the_way_to_the_model_are_measured_where_the_code_is_silent(fed, passed, mlp):
    """(x - 0.1307) / 0.3081 in the training loop, with ToTensor as the loader's only transform: every reading of the
    code passed it (10/10). The kernel records the range of what the model was fed in its first training batches."""
    net = dataclasses.replace(mlp, input_range=fed)
    loader = dataclasses.replace(LOADER, transform="ToTensor()")
    outcome = evaluate("mnist-sgd", "preprocessing", {"train_loader": loader, "model": net},
                       code=((2, "transform = transforms.ToTensor()"),))
    assert outcome.passed is passed, outcome.message
    if not passed:
        assert outcome.message.startswith(f"The images reached `model` in training with values from {fed[0]:.4g} to "
                                          f"{fed[1]:.4g}")


@pytest.mark.parametrize("feed, passed", [
    (lambda x: x, True),
    (lambda x: (x.double() * 255).round() / 255, True),  # x / 255 in float64 from the bytes: the same pixels
    (lambda x: x.reshape(len(x), -1), True),
    (lambda x: torch.cat([x[:1016], torch.rand(8, 1, 28, 28)]), True),  # a shape check on random numbers, in train mode
    (lambda x: x.flip(-1), False),  # a flip in the lambda: the sums alone would not show it
    (lambda x: torch.cat([x[:980], x[980:].flip(-1)]), False),  # an augmentation on a few images in a hundred
    (lambda x: (x - 0.1307) / 0.3081, False),
    (lambda x: x.half(), True),  # in half precision: the same images to 1e-3, neither changed nor exact
    # Transposed, or shifted a pixel sideways: a position-weighted sum whose weights grow along the row gave a centred
    # digit nearly its own sum (a transposed feed passed, 0.5/0.5)
    (lambda x: x.transpose(-1, -2), False),
    (lambda x: x.roll(1, -1), False),
])
def test_what_reached_the_model_is_compared_row_by_row_with_the_task_s_pixels(roots, feed, passed, mlp):
    """PILToTensor with a lambda dividing by 255, or a lambda flattening the image, lost preprocessing as "a function
    of your own" although the model was fed ToTensor's pixels: the kernel's record of the rows decides first."""
    from grader.kernel.kernel_probe import row_signatures

    train = DataFactory(None, roots["tiny"]).make({"kind": "mnist", "split": "train"})
    drawn = torch.randint(len(train.X), (1024,), generator=torch.Generator().manual_seed(0))
    rows = tuple(row_signatures(feed(train.X[drawn])))
    net = dataclasses.replace(mlp, input_rows=rows, input_range=(0.0, 1.0))
    half = feed(train.X[:1]).dtype == torch.float16  # the code reading decides: here, ToTensor alone
    pipeline = "ToTensor()" if half else "Compose(\n    PILToTensor()\n    Lambda()\n)"
    loader = dataclasses.replace(LOADER, transform=pipeline)
    outcome = evaluate("mnist-sgd", "preprocessing", {"train_loader": loader, "model": net}, data_root=roots["tiny"])
    assert outcome.passed is passed, outcome.message
    if half:
        return
    assert outcome.message.startswith("The images reached `model` in training unchanged") is passed, outcome.message


@pytest.mark.parametrize("feed, split", [
    (lambda x: (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1), "train"),
    (lambda x: 1 - x, "train"),  # inverted: the range is [0, 1] all the same
    (lambda x: x, "test"),  # the validation images: unchanged, and fixed-setup's to name, not this check's
])
def test_noise_or_inversion_in_the_loop_is_measured_where_the_range_and_the_code_show_nothing(roots, feed, split,
                                                                                               mlp):
    """ToTensor in the loader, then Gaussian noise clamped to [0, 1], or 1 - x, in the training loop: the code reads
    as unchanged and the values stay in [0, 1], so it passed. The rows of the first batches show it."""
    from grader.kernel.kernel_probe import row_signatures

    images = DataFactory(None, roots["tiny"]).make({"kind": "mnist", "split": split}).X[:256]
    net = dataclasses.replace(mlp, input_rows=tuple(row_signatures(feed(images))),
                              input_range=(0.0, 1.0))
    loader = dataclasses.replace(LOADER, transform="ToTensor()")
    outcome = evaluate("mnist-sgd", "preprocessing", {"train_loader": loader, "model": net}, data_root=roots["tiny"],
                       code=((2, "transform = transforms.ToTensor()"),))
    assert outcome.passed is (split == "test"), outcome.message
    if split == "train":
        assert outcome.message.startswith("Of the 256 rows of `model`'s first training batches (the kernel's record), "
                                          "0 are the task's images as its transform gives them, even to 1%")


@pytest.mark.parametrize("share", [0, 1 / 19, 1 / 2, 1])
def test_validation_images_in_the_training_record_are_said_beside_the_accuracy_measured_on_them(roots, share, mlp):
    """Trained on the test split (or on train and test together), val-accuracy said nothing of it. The record cannot
    tell training on them from an evaluation left in training mode with gradients on, so it is a note, not a verdict:
    fixed-setup's step count judges the training."""
    from grader.kernel.kernel_probe import row_signatures

    factory = DataFactory(None, roots["tiny"])
    train, test = (factory.make({"kind": "mnist", "split": s}).X for s in ("train", "test"))
    taken = round(300 * share)
    rows = tuple(row_signatures(torch.cat([test[:taken], train[:300 - taken]])))
    net = dataclasses.replace(mlp, input_rows=rows)
    outcome = evaluate("mnist-sgd", "val-accuracy", {"model": net}, data_root=roots["tiny"])
    assert ("it was trained on them, or run on them in training mode" in outcome.message) is (taken * 20 > 300)
    if taken * 20 > 300:  # a note: the record cannot tell training from an evaluation left in training mode
        assert f"Note: {taken} of the 300 rows of `model`'s first training-mode calls (the kernel's record) are " \
               "points of this set" in outcome.message


@pytest.mark.parametrize("fed, passed", [((0.0, 1.0), True), ((0.0, 0.5), False), ((), False)])
def test_pixels_scaled_by_hand_are_decided_by_what_the_model_was_fed(fed, passed, mlp):
    """No transform anywhere (the IDX files read with numpy and divided by 255): the code cannot tell, and it kept half
    the point. Fed exactly [0, 1] in training, the pixels are ToTensor's."""
    net = dataclasses.replace(mlp, input_range=fed)
    outcome = evaluate("mnist-sgd", "preprocessing", {"model": net}, code=((2, "x = images.astype('float32') / 255"),))
    assert outcome.passed is passed and (outcome.fraction == 0.5) is (not passed), outcome.message


@pytest.mark.parametrize("calls, says", [
    ({"cross_entropy": 300, "label_smoothing": (0.1,)}, "cross_entropy was called with label_smoothing=0.1"),
    ({"cross_entropy": 300, "probabilities": 20}, "cross_entropy was given probabilities (rows in [0, 1] that sum to "
                                                  "1) in 20 of its first calls: a softmax before a loss"),
    ({"cross_entropy": 300, "clipped": 316}, "the gradients were clipped (316 clip_grad_norm_/clip_grad_value_ calls "
                                             "that changed them)"),
    ({"cross_entropy": 300, "soft_targets": 20}, "cross_entropy was given targets other than the labels (class "
                                                 "probabilities that are not one-hot, in 20 of its first calls)"),
    ({"cross_entropy": 0, "others": {"mse_loss": 316}}, "the run called mse_loss (316 calls), a loss other than "
                                                        "cross_entropy"),
    ({"cross_entropy": 316, "others": {"mse_loss": 3}}, ""),  # an MSE printed now and then: no training loss
    ({"nll_loss": 316, "nll_not_log_probabilities": 20}, "nll_loss (NLLLoss) was given rows that are not "
                                                         "log-probabilities in 20 of its first calls"),
    ({"cross_entropy": 316}, ""),
])
def test_a_loss_or_gradients_changed_in_the_loop_are_named_from_the_kernels_record(roots, calls, says, mlp):
    """Label smoothing, a softmax before CrossEntropyLoss, and gradient clipping, all in the loop with the model left
    as the course's: each got 10/10. The kernel records the run's cross_entropy calls and clipping."""
    net = dataclasses.replace(mlp, loss_calls=calls)
    outcome = evaluate("mnist-adam", "fixed-setup", {"optimizer": _optimizer(4 * 79), "history": {
        "train_loss": [1.0] * 4}, "model": net}, roots["small"])
    assert outcome.passed is not says and says in outcome.message, outcome.message


@pytest.mark.parametrize("since, says", [
    (4 * 79, ""),  # the run's own steps: a fresh model, or one set back to its start before this run
    (6 * 79, "`model`'s parameters took 474 optimizer steps since they were last at their start, 158 more than "
             "`optimizer` made: the model went on from an earlier run"),
])
def test_a_model_carried_on_from_an_earlier_run_is_named_from_the_steps_since_its_start(roots, since, says, mlp):
    """An SGD run, then the Adam run on the same model, never reset: the Adam optimizer and the history agree with
    each other, so the run looked whole (10.5/10.5). The kernel counts the steps since the weights were last at their
    recorded start when an optimizer took over."""
    net = dataclasses.replace(mlp, steps={"fc1.weight": since})
    outcome = evaluate("mnist-adam", "fixed-setup", {"optimizer": _optimizer(4 * 79), "history": {
        "train_loss": [1.0] * 4}, "model": net}, roots["small"])
    assert outcome.passed is not says and says in outcome.message, outcome.message


@pytest.mark.parametrize("calls, passed", [
    (((-0.8, 3.9),) + ((0.0, 1.0),) * 19, True),  # print(model(torch.randn(...)).shape) first, then ToTensor batches
    (((0.0, 1.0),) + ((-0.4242, 2.821),) * 19, False),  # normalised in the loop from the second batch on
])
def test_one_stray_call_is_not_taken_for_the_training(calls, passed, mlp):
    """A shape check on torch.randn before training is a training-mode call too: what most of the first calls were
    fed decides, and a correct notebook that checks its model's shape first is not told its pixels were normalised."""
    net = dataclasses.replace(mlp, input_range=(-0.8, 3.9), input_ranges=calls)
    outcome = evaluate("mnist-sgd", "preprocessing", {"train_loader": dataclasses.replace(LOADER, transform="ToTensor()"),
                                                      "model": net}, code=((2, "transform = transforms.ToTensor()"),))
    assert outcome.passed is passed, outcome.message
    if not passed:
        assert "(the kernel's record of its first training batches: 19 of 20 calls)" in outcome.message


def test_a_history_shown_as_a_dataframe_is_handed_over_as_its_columns(tmp_path):
    """`history = pd.DataFrame(history)` in a last cell, to show it as a table: `trained` failed ("must be a dict, but
    it is a DataFrame object"), and every check that requires it with it: 0/10.5 for a correct run."""
    import pandas as pd

    from grading_support import round_trip

    frame = pd.DataFrame({"train_loss": [0.9, 0.5], "val_acc": [80.0, 88.5]}, index=[1, 2])
    exports = round_trip(tmp_path, {"history": frame, "table": frame}, [{"name": "history", "kind": "dict"},
                                                                          {"name": "table", "kind": "list"}])
    assert exports.values["history"] == {"train_loss": [0.9, 0.5], "val_acc": [80.0, 88.5]}
    assert not isinstance(exports.values["table"], dict)  # only where a dict is asked for


def test_a_results_table_with_labelled_rows_is_handed_over_by_its_labels(tmp_path):
    """`results = pd.DataFrame(results)` (a seed per column, a figure per row): each column became a bare list, the
    figures' names were lost, and random-seeds said `results[0]` must be a dict (and cost trained-steps with it)."""
    import pandas as pd

    from grading_support import round_trip

    rows = {0: {"best_epoch": 13, "val_acc": 53.33}, 3: {"best_epoch": 27, "val_acc": 57.78}}
    exports = round_trip(tmp_path, {"results": pd.DataFrame(rows)}, [{"name": "results", "kind": "dict"}])
    assert exports.values["results"] == rows


def test_a_look_before_shuffled_training_and_a_model_built_again_are_told_from_what_the_run_did(roots):
    """A look at the untrained net over the training images in stored order, in training mode with gradients on, then
    a shuffled training: fixed-setup said the data was not shuffled. A net built again in a cell after training: 9%,
    and the advice was a larger learning rate."""
    looked = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "baseline-look-before-shuffled-training.ipynb",
                       "tiny"))
    assert looked["fixed-setup"].passed, looked["fixed-setup"].message
    again = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "model-built-again-after-training.ipynb", "tiny"))
    assert not again["val-accuracy"].passed
    assert "Nothing in the run's record shows `model` trained: it never ran a forward pass in the notebook" in \
        again["val-accuracy"].message
    assert "larger starting learning rate" not in again["val-accuracy"].message


def _templates(train) -> MnistMLP:
    """A 784-128-10 network that scores well without a step of training: each class's mean image as a template, the
    nearest template winning (its hidden units after the first ten are off; a large bias keeps the ten above 0)."""
    net = MnistMLP()
    x = train.X.reshape(len(train.X), -1).float()
    means = torch.stack([x[train.Y == c].mean(0) for c in range(10)])
    with torch.no_grad():
        for layer in (net.fc1, net.fc2):
            layer.weight.zero_()
            layer.bias.zero_()
        net.fc1.weight[:10] = means
        net.fc1.bias[:10] = 1000 - 0.5 * (means * means).sum(1)
        net.fc2.weight[:, :10] = torch.eye(10)
    return net


def test_a_sweep_trained_on_its_validation_images_reports_no_validation_accuracy(roots, tmp_path):
    """ConcatDataset([train, val]) in the loader: every report matched the grader's measurement on images the models
    had learned, and reported-vs-measured gave all 3 points."""
    from grader.kernel.kernel_probe import row_signatures

    factory = DataFactory(None, roots["tiny"])
    train, test = (factory.make({"kind": "mnist", "split": s}) for s in ("train", "test"))
    net = exported(_templates(train), tmp_path)
    n, val = len(test.Y), measured_accuracy(net, test.X, test.Y)[1]
    assert val > 0.6 * n  # the premise: a model that scores well
    lrs = (0.0001, 0.001, 0.01)
    results = {lr: {"train_losses": [2.3, 1.9], "val_accs": [0.5, val / n]} for lr in lrs}

    def check(first_images):
        nets = {lr: dataclasses.replace(net, stepped_rows=tuple(row_signatures(first_images))) for lr in lrs}
        return evaluate("lr-sweep", "reported-vs-measured", {"models": nets, "results": results}, roots["tiny"])

    assert check(train.X[:40]).passed  # stepped on training images only
    mixed = check(torch.cat([train.X[:30], test.X[:10]]))
    assert not mixed.passed and mixed.fraction == 0
    assert mixed.message.startswith(f"lr=0.0001: val {100 * val / n:.2f}% ({val}/{n}), but the model was trained on "
                                    "the validation images: 10 of the 40 training batches the kernel sampled")
    assert "says nothing of how it does on images it has not seen" in mixed.message


def test_reports_at_chance_of_models_that_score_well_are_read_as_labels_in_another_order(roots, tmp_path):
    """Predictions from a shuffled loader counted against the dataset's own targets: about 10% reported for models
    that score 64-89%, told only that a mean of per-batch accuracies weighs the last batch more."""
    factory = DataFactory(None, roots["tiny"])
    train, test = (factory.make({"kind": "mnist", "split": s}) for s in ("train", "test"))
    net = exported(_templates(train), tmp_path)
    lrs = (0.0001, 0.001, 0.01)
    results = {lr: {"train_losses": [2.3, 1.9], "val_accs": [0.11, 0.1]} for lr in lrs}
    shuffled = evaluate("lr-sweep", "reported-vs-measured", {"models": dict.fromkeys(lrs, net), "results": results},
                        roots["tiny"])
    assert not shuffled.passed
    assert "Every report is about what predicting one class scores, of models that score well: the predictions were " \
           "compared with labels in another order" in shuffled.message
    assert "per-batch accuracies" not in shuffled.message
    beats = evaluate("lr-sweep", "1e-3-beats-1e-4", {"models": {lr: dataclasses.replace(net) for lr in lrs},
                                                    "results": results}, roots["tiny"])
    assert "Your reported curve" not in beats.message  # a report the models do not bear out tells no story of them


def test_sweep_models_copied_before_training_are_named_untrained_in_every_sweep_check(roots, mlp):
    """deepcopy(model) before the loop, exported: three copies that never ran, at chance. Labels were told "one run's
    weights stored under two rates", the order "models stored under each other's rates", the reports a mean of
    per-batch accuracies."""
    lrs = (0.0001, 0.001, 0.01)
    copies = {lr: dataclasses.replace(mlp, loss_calls={"cross_entropy": 39}) for lr in lrs}  # the run's record
    results = {lr: {"train_losses": [2.3, 1.9], "val_accs": [0.5, 0.6 + lr]} for lr in lrs}
    values = {"models": copies, "results": results}
    labels = evaluate("lr-sweep", "labels-match-runs", values, roots["tiny"])
    assert not labels.passed and "none was trained" in labels.message and "one run's" not in labels.message
    assert "a copy taken before training" in labels.message
    order = evaluate("lr-sweep", "1e-3-beats-1e-4", values, roots["tiny"])
    assert not order.passed and "no comparison of rates can be made of models that were not trained" in order.message
    reports = evaluate("lr-sweep", "reported-vs-measured", values, roots["tiny"])
    assert reports.message.count("Nothing in the run's record shows") == 1
    assert "The models exported are not the ones trained." in reports.message
    assert "per-batch accuracies" not in reports.message


def test_images_fed_transposed_are_named_beside_the_accuracy_they_cost(roots, mlp):
    """images.permute(0, 2, 1) before flattening, in training and in the notebook's own evaluation: the grader measured
    19.8% and advised a larger learning rate."""
    from grader.kernel.kernel_probe import row_signatures

    train = DataFactory(None, roots["tiny"]).make({"kind": "mnist", "split": "train"})
    rows = tuple(row_signatures(train.X[:300].transpose(-1, -2)))
    outcome = evaluate("mnist-sgd", "val-accuracy", {"model": dataclasses.replace(mlp, input_rows=rows)},
                       data_root=roots["tiny"])
    assert not outcome.passed
    assert "In training, `model` was fed the task's images with their pixels out of place: 300 of the 300 rows" \
        in outcome.message and "larger starting learning rate" not in outcome.message
    as_given = evaluate("mnist-sgd", "val-accuracy", {"model": dataclasses.replace(
        mlp, input_rows=tuple(row_signatures(train.X[:300])))}, data_root=roots["tiny"])
    assert "out of place" not in as_given.message


def test_a_plateau_scheduler_fed_val_accuracies_at_chance_of_a_model_that_scores_well_fails(roots, tmp_path):
    """A shuffled validation loader's predictions against the dataset's own targets: val_acc about 10% at every epoch,
    ReduceLROnPlateau(mode='max') cutting the LR on it, and scheduler-stepping passed ("decided from your val_acc")."""
    train = DataFactory(None, roots["tiny"]).make({"kind": "mnist", "split": "train"})
    net = exported(_templates(train), tmp_path)
    history = dict(HISTORY, val_acc=[10.5, 12.0, 11.25])
    values = {"scheduler": _plateau(12.0, "max"), "history": history, "model": net}
    outcome = evaluate("mnist-sgd", "scheduler-stepping", values, roots["tiny"])
    assert not outcome.passed
    assert "every val_acc your records hold is about what predicting one class scores (12.00% at best), while your " \
           "model scores" in outcome.message and "So it cut the LR on noise." in outcome.message
    # Records of the model's own accuracy: what it decided from is the task's.
    fair = evaluate("mnist-sgd", "scheduler-stepping", dict(values, history=HISTORY, scheduler=_plateau(90.25, "max")),
                    roots["tiny"])
    assert fair.passed, fair.message
