"""random-seeds: where each model started, reported figures against the grader's own measurement, and the spread."""

import pytest
import torch
from torch import nn

from grading_support import FILES, by_id, grade, round_trip, solution, student
from grader.assignments.catalog import load_exercise
from grader.checks.base import CheckContext, CheckFailed
from grader.checks.seed_starts import seed_start
from grader.checks.seed_steps import _measured
from grader.checks.seeds import _by_seed, seed_results
from grader.loading.values import Exports
from grader.results import Status
from reference.models import SimpleMLP

CASES = FILES / "random-seeds"
NAMES = ("typed-by-hand", "same-seed", "running-train-acc", "not-restored", "built-first", "one-object", "seeded-once",
         "test-on-val", "stop-epoch", "batch-mean", "stops-on-test", "copied-before-training", "experiment-function",
         "one-model-continued", "swapped-unpack", "train-plus-val", "he-init-seeded-once", "float64-default",
         "training-points-per-seed", "stops-on-val-accuracy", "reset-in-place",
         "one-generator-for-all-seeds", "checkpoint-reloaded-seeded-once",
         "one-unseeded-start-loaded-for-every-seed", "one-checkpoint-file-for-every-seed",
         "rows-zipped-with-seeds-in-another-order", "seed-set-again-each-epoch", "batches-listed-once",
         "steplr-added-to-the-set-up", "no-early-stopping-best-restored", "reset-in-place-after-an-untrained-look",
         "fresh-weights-loaded-into-one-holder", "seed-zero-weights-for-every-seed-copied",
         "models-pickled-whole-and-read-back", "one-row-dict-for-every-seed", "seeds-mistyped-in-a-helper",
         "train-accuracy-from-one-more-training-pass", "loader-with-a-generator-of-its-own")


def test_solution_full_marks_and_matches_the_reference_run():
    result = grade(solution("random-seeds"), "random-seeds")
    assert result.status is Status.OK, result.error
    assert result.score == result.max_score == 12, [(c.id, c.message) for c in result.checks if not c.passed]
    assert by_id(result)["trained-steps"].message == (
        "seed 0: 198 steps, 33 epochs of 6 batches; seed 3: 282 steps, 47 epochs of 6 batches; seed 18: 174 steps, 29 "
        "epochs of 6 batches.")
    message = by_id(result)["reported-vs-measured"].message
    assert "seed 3: matches (val 57.78%, test 66.67%, best epoch 27, as the reference run)" in message
    assert "running figure" in message  # the check says which definition it uses
    assert by_id(result)["seed-start"].message.startswith(
        "Every model starts from the weights of a SimpleMLP built right after its own torch.manual_seed(seed), as its "
        "weights at its first forward pass show.")
    assert "spread of 8.33 points from the seed alone (each model learned from the training split" in \
        by_id(result)["seed-spread"].message


def test_untouched_notebook_scores_zero():
    result = grade(student("random-seeds"), "random-seeds", hidden=False)
    assert result.score == 0
    assert all("`models` is still empty" in c.message for c in result.checks)


@pytest.fixture(scope="module")
def graded():
    return {name: grade(CASES / f"{name}.ipynb", "random-seeds", hidden=False) for name in NAMES}


def test_results_typed_by_hand_are_caught(graded):
    check = by_id(graded["typed-by-hand"])["reported-vs-measured"]
    assert not check.passed
    assert "val_acc reported 53.33%, measured 54.44%" in check.message
    assert "typed by hand" in check.message


def test_rows_filed_under_another_seed_are_the_reports_fault_not_a_re_initialised_model(graded):
    """Seeds trained in a shuffled order, `results = dict(zip(SEEDS, rows))`: each model is its own seed's whole run,
    and was said to be re-initialised with a step count running on from an earlier run."""
    checks = by_id(graded["rows-zipped-with-seeds-in-another-order"])
    reported = checks["reported-vs-measured"]
    assert not reported.passed and "typed by hand" not in reported.message
    assert ("The figures reported for seed 0 are those the grader measures on seed 3's model. The figures reported "
            "for seed 3 are those the grader measures on seed 18's model.") in reported.message
    steps = checks["trained-steps"]
    assert steps.passed and "re-initialised" not in steps.message
    assert steps.message.startswith("seed 0: its weights are the course set-up's own run for seed 0 after epoch 13, "
                                    "and its 198 steps (33 epochs of 6 batches) fit that run, whose best epoch is not "
                                    "the 27 reported beside it")


@pytest.mark.parametrize("name", ["seed-set-again-each-epoch", "batches-listed-once"])
def test_one_batch_order_for_every_epoch_is_measured_from_the_batches_the_model_was_fed(graded, name):
    """`torch.manual_seed(seed)` at the top of each epoch, or `list(train_loader)` once: every epoch the same order,
    which every check passed (12/12)."""
    result = graded[name]
    steps = by_id(result)["trained-steps"]
    assert not steps.passed and result.score == result.max_score - 1
    assert steps.message.startswith("seed 0: its first two epochs fed it the same 180 points in the same order (the "
                                    "kernel's record of its first training batches), where the set-up's loader "
                                    "reshuffles them every epoch")


def test_a_model_kept_at_another_epoch_of_the_set_ups_run_is_named_by_its_epoch(graded):
    """Early stopping on the val accuracy, epochs counted from 0, in a loop of one's own (12/12 before): each model is
    the set-up's run after the epoch of its highest val accuracy, which the grader's own run of the set-up shows."""
    checks = by_id(graded["stops-on-val-accuracy"])
    assert [c.id for c in checks.values() if not c.passed] == ["reported-vs-measured", "restored"]
    restored = checks["restored"].message
    assert restored.startswith(
        "seed 0: it holds the course set-up's weights after epoch 30, the epoch with its highest val accuracy, which "
        "early stopping on it keeps, not those of its best epoch 13, where the val loss was lowest; seed 3: it holds "
        "the course set-up's weights after epoch 25")
    assert restored.endswith(
        "Keep the epoch of the lowest val loss, and stop after 20 epochs without a lower one: the set-up's early "
        "stopping watches the val loss, as train_model_extended does.")
    reported = checks["reported-vs-measured"]
    assert reported.points == 1.5  # the accuracies are right; only the epochs are off
    assert reported.message.startswith(
        "seed 0: best_epoch reported 29, but the exported model is exactly the course set-up's model for this seed "
        "restored to epoch 30, the epoch with its highest val accuracy (epochs counted from 1, as train_model_extended "
        "counts them); yours is one less: counted from 0; seed 3:")


def test_one_seed_for_all_runs_is_caught(graded):
    checks = by_id(graded["same-seed"])
    assert not checks["seed-spread"].passed
    assert checks["seed-spread"].message.startswith(
        "The models for seeds 0 and 3, 0 and 18, 3 and 18 are identical (they started from the same initial weights).")
    assert not checks["seed-start"].passed and checks["seed-start"].points == pytest.approx(2 / 3, abs=1e-3)
    # Identical trained weights leave two causes: the run seeded with 0 each time, or seed 0's model stored again.
    assert checks["seed-start"].message.startswith(
        "seeds 3 and 18: each model holds the very weights of the model stored for seed 0, which started as a "
        "SimpleMLP built right after torch.manual_seed(0): seed 0's run stored in its place (one checkpoint file that "
        "every seed's run writes over, say, or a copy of the last run), or a run of its own seeded with 0 too")


def test_the_course_running_train_accuracy_is_accepted(graded):
    result = graded["running-train-acc"]
    assert by_id(result)["reported-vs-measured"].passed and by_id(result)["seed-start"].passed
    assert result.score == 10


def test_a_best_epoch_other_than_the_restored_one_is_caught_where_the_grader_knows_the_run(graded):
    """Every figure is right, but best_epoch is where each run stopped: the models are the course set-up's own."""
    check = by_id(graded["stop-epoch"])["reported-vs-measured"]
    assert not check.passed and check.points == 1.5  # the figures are right: half of each seed's share
    assert ("seed 3: best_epoch reported 47, but the exported model is exactly the course set-up's model for this seed "
            "restored to epoch 27, the epoch with its lowest val loss (epochs counted from 1, as train_model_extended "
            "counts them); 47 is the epoch where that run stopped" in check.message)
    assert "Report as best_epoch the epoch whose weights your model holds" in check.message
    assert "typed by hand" not in check.message  # every figure matched: no cause about them


def test_a_mean_of_per_batch_accuracies_is_recognised_and_no_other_cause_is_given(graded):
    """Each batch's accuracy averaged: the last batch of 20 weighs as much as the batches of 32."""
    check = by_id(graded["batch-mean"])["reported-vs-measured"]
    assert not check.passed
    assert ("seed 3: val_acc reported 58.54% is the mean of the per-batch accuracies over batches of 32, not the "
            "accuracy over all the split's points (57.78%)" in check.message)
    assert "count the correct predictions over all the points" in check.message
    assert "typed by hand" not in check.message and "another model" not in check.message


def test_figures_from_an_unrestored_model_do_not_match_and_the_model_is_told_unrestored(graded):
    check = by_id(graded["not-restored"])["reported-vs-measured"]
    assert not check.passed and "measured" in check.message
    assert check.points < 3
    restored = by_id(graded["not-restored"])["restored"]
    assert not restored.passed and restored.points == 0
    assert ("seed 3: it is the course set-up's model for this seed as its run stopped, at epoch 47, not restored to "
            "its best epoch 27" in restored.message)


def test_early_stopping_on_the_test_set_is_recognised_by_its_replay(graded):
    """Figures honest and measured on the right splits, but the epoch was picked by the test loss."""
    result = graded["stops-on-test"]
    restored = by_id(result)["restored"]
    assert not restored.passed and restored.points == 0
    assert ("seed 3: it is the course set-up's run with early stopping on the test set, restored to epoch 35, where "
            "the test loss was lowest; on the validation set the best epoch is 27" in restored.message)
    assert "Early stopping must watch the validation set" in restored.message
    assert by_id(result)["reported-vs-measured"].passed


def test_a_run_other_than_the_course_set_up_is_not_judged_restored_or_not(graded):
    """Its own Adam loop: which epoch its weights are from cannot be told by replaying the course's run."""
    restored = by_id(graded["seeded-once"])["restored"]
    assert restored.passed and "cannot tell which epoch's weights it holds" in restored.message


def test_models_copied_before_training_are_told_never_trained_not_given_the_restore_point(graded):
    """`models[seed] = copy.deepcopy(model)` before train_model_extended trains `model`: the stored models hold the
    course set-up's starting weights, which no training ends at."""
    result = graded["copied-before-training"]
    restored = by_id(result)["restored"]
    assert not restored.passed and restored.points == 0
    assert ("seed 3: it holds the weights the course set-up's model starts from for this seed: the model stored was "
            "never trained (a copy taken before training, say)") in restored.message
    assert by_id(result)["seed-start"].passed  # they were seeded right: their weights show where they started
    spread = by_id(result)["seed-spread"]  # three untrained models differ, but say nothing about seeds in training
    assert not spread.passed and "the models show nothing learned" in spread.message


def test_models_built_before_seeding_are_told_which_build_they_are(graded):
    """All three built after one torch.manual_seed(0), each seeded only afterwards: seed 0's start is still right."""
    result = graded["built-first"]
    check = by_id(result)["seed-start"]
    assert not check.passed and check.points == pytest.approx(2 / 3, abs=1e-3)
    assert check.message.startswith(
        "seed 3: its initial weights are those the 2nd SimpleMLP built after torch.manual_seed(0) gets, not those of "
        "one built right after torch.manual_seed(3): another model was built between that seeding and this one; "
        "seed 18: its initial weights are those the 3rd SimpleMLP built after torch.manual_seed(0) gets")
    assert "What remains possible" not in check.message  # the builds are known, so no list of causes
    assert by_id(result)["reported-vs-measured"].passed and by_id(result)["seed-spread"].passed
    assert result.score == pytest.approx(10 - 4 / 3, abs=1e-3)


def test_one_model_object_stored_for_every_seed_is_named(graded):
    checks = by_id(graded["one-object"])
    assert checks["seed-spread"].message == (
        "`models` stores one and the same model object for seeds 0, 3 and 18: the grader received one model where "
        "each seed needs its own. Build a new model right after each torch.manual_seed(seed), train it, and store "
        "that one under its seed.")
    start = checks["seed-start"]
    assert start.message.startswith(
        "seed 0: the same model object as for seeds 3 and 18, which started as a SimpleMLP built right after "
        "torch.manual_seed(18); seed 3: the same model object as for seeds 0 and 18, which started as")
    assert "Each seed needs its own model object" in start.message
    assert start.points == pytest.approx(2 / 3, abs=1e-3)
    figures = checks["reported-vs-measured"]
    assert "`models` stores one and the same model object for seeds 0, 3 and 18" in figures.message
    assert "seed 18: matches (val 48.89%, test 58.33%, best epoch 9, as the reference run)" in figures.message
    assert "split" not in figures.message.split(". The grader")[0]  # other models' figures: no split named


def test_one_model_re_initialised_in_place_for_each_seed_keeps_its_start_and_steps_points(graded):
    """reset_parameters() on each layer right after torch.manual_seed(seed): the same weights as a new SimpleMLP, and
    every model is the set-up's own run. It lost 2 of 12: the record of the object's first forward pass (seed 0's)
    was taken as every seed's start, and its step count ran on across the seeds."""
    result = graded["reset-in-place"]
    assert result.score == result.max_score, [(c.id, c.message) for c in result.checks if not c.passed]
    checks = by_id(result)  # reset_parameters() gives the object's record a new start at every seed
    assert checks["seed-start"].message.startswith(
        "Every model starts from the weights of a SimpleMLP built right after its own torch.manual_seed(seed)")
    assert checks["trained-steps"].message == ("seed 0: 198 steps, 33 epochs of 6 batches; seed 3: 282 steps, 47 "
                                               "epochs of 6 batches; seed 18: 174 steps, 29 epochs of 6 batches.")


def test_a_run_past_its_patience_from_the_seed_s_own_start_is_not_taken_for_a_re_initialised_object(graded):
    """No patience: 90 epochs each, the best weights put back. The weights are the set-up's run at its best epoch, as a
    re-initialised object's would be, but each model's record starts at its own seed's build: its 540 steps are this
    run's. It was told the object ran forward before a re-initialisation, and kept the point."""
    steps = by_id(graded["no-early-stopping-best-restored"])["trained-steps"]
    assert not steps.passed and steps.metrics == {"off": 3}, steps.message
    assert ("seed 0: its parameters took 540 optimizer steps; 540 steps are 90 epochs of 6 batches, where best_epoch "
            "13 implies 33") in steps.message
    assert "a run that went on past its patience" in steps.message and "re-initialised" not in steps.message


@pytest.mark.parametrize("name", ["reset-in-place-after-an-untrained-look", "fresh-weights-loaded-into-one-holder"])
def test_one_object_given_each_seed_s_fresh_weights_starts_each_run_there(graded, name):
    """One model object for every seed, each seed's start put into it after the object had run: reset_parameters() on
    its layers (after an untrained evaluation, so the run is not the set-up's own replay), or a new SimpleMLP's
    state_dict() loaded. torch's initialisers and the load of a fresh build start the object's record again: each
    seed's start and steps are its own. It lost seed-start and trained-steps (the record kept seed 0's start and ran
    its count on), or trained-steps with "never trained"."""
    result = graded[name]
    assert result.score == result.max_score, [(c.id, c.message) for c in result.checks if not c.passed]
    assert by_id(result)["seed-start"].message.startswith("Every model starts from the weights of a SimpleMLP built "
                                                          "right after its own torch.manual_seed(seed)")


def test_seed_zero_s_weights_loaded_for_every_seed_are_each_copy_s_start(graded):
    """Every seed's model given seed 0's fresh weights, each stored as a deep copy: the copy now carries what was
    loaded into its original, so seeds 3 and 18 are told where they started (it passed, unchecked, and trained-steps
    said two of them never trained)."""
    result = graded["seed-zero-weights-for-every-seed-copied"]
    start, steps = by_id(result)["seed-start"], by_id(result)["trained-steps"]
    assert not start.passed and steps.passed, steps.message
    assert ("seed 3: its initial weights are those of a SimpleMLP built right after torch.manual_seed(0), not "
            "torch.manual_seed(3): it was seeded with 0, built before its own torch.manual_seed(3) was called, or "
            "given such a model's weights (load_state_dict)") in start.message


def test_a_loader_generator_shared_by_all_seeds_is_not_said_to_leave_the_seed_alone(graded):
    """One DataLoader with a generator seeded once, for every seed: each run's batch order follows the runs before it.
    seed-spread said its spread came "from the seed alone" because every model learned from the training split."""
    message = by_id(graded["one-generator-for-all-seeds"])["seed-spread"].message
    assert "from the seed alone" not in message
    assert ("between the seeds' runs, each of which learned from the training split (the kernel's record shows); "
            "whether anything besides the seed differs between them (a batch order drawn from a generator the runs "
            "share, say) the grader cannot tell") in message


def test_a_mistyped_seed_costs_its_share_of_each_check_not_the_checks(graded):
    """SEEDS = [0, 3, 8]: seeds 0 and 3 are the reference's runs, yet every seed check scored 0 ("has no model for seed
    18"): 2 of 10 points for one wrong digit."""
    result = graded["seeds-mistyped-in-a-helper"]
    checks = by_id(result)
    for check in ("reported-vs-measured", "restored", "seed-start", "trained-steps", "seed-spread"):
        assert not checks[check].passed
        assert checks[check].points == pytest.approx(checks[check].max_points * 2 / 3, abs=1e-3), check
        assert "nothing for seed 18 of [0, 3, 18]" in checks[check].message
        assert "seed 8 instead, which the task does not use: a seed typed otherwise?" in checks[check].message
    assert "seed 3: matches (val 57.78%, test 66.67%, best epoch 27" in checks["reported-vs-measured"].message


def test_a_model_trained_on_after_its_best_weights_were_put_back_is_not_restored(graded):
    """A hand-written pass over the training loader for the train accuracy steps Adam once more: the model holds no
    epoch's weights, and restored passed ("its run is not the course set-up's own, so the grader cannot tell")."""
    checks = by_id(graded["train-accuracy-from-one-more-training-pass"])
    restored = checks["restored"]
    assert not restored.passed and restored.points == 0
    assert restored.message.startswith(
        "seed 0: its run is the course set-up's (its start, its first batches and its optimizer, as the kernel recorded "
        "them), which stops at epoch 33 after 198 optimizer steps, but its parameters took 204, and its weights are no "
        "epoch's of that run: it was trained on after its run ended;")
    assert "train it no further" in restored.message
    assert checks["seed-start"].passed


def test_a_batch_order_that_does_not_follow_the_seed_is_measured(graded):
    """A DataLoader with a generator of its own, set to one seed before every run: each seed's run saw the same batches
    in the same order, and it got full marks."""
    steps = by_id(graded["loader-with-a-generator-of-its-own"])["trained-steps"]
    assert not steps.passed and steps.points == 0
    assert "seeds 0, 3 and 18 fed their models the same first training points in the same order" in steps.message
    assert "so the runs differ by their start alone" in steps.message
    # Seeded once before the loop, the runs draw their orders one after another: each its own, none the set-up's.
    assert "same order" not in by_id(graded["seeded-once"])["trained-steps"].message


def test_seeding_once_outside_the_loop_is_caught(graded):
    result = graded["seeded-once"]
    check = by_id(result)["seed-start"]
    assert not check.passed and check.points == 0
    assert check.message.startswith(
        "seed 0: its initial weights are those of a SimpleMLP built right after torch.manual_seed(42), not "
        "torch.manual_seed(0): it was seeded with 42, built before its own torch.manual_seed(0) was called, or given "
        "such a model's weights (load_state_dict); "
        "seeds 3 and 18: the initial weights are not those of a SimpleMLP built right after torch.manual_seed(seed)")
    assert ("What remains possible: torch's own generator was never seeded (random.seed, numpy's seed and "
            "torch.cuda.manual_seed leave the one that initialises a model on the CPU as it was), the model was built "
            "before torch.manual_seed(seed) was called, something drew random numbers between seeding and "
            "building") in check.message
    assert by_id(result)["reported-vs-measured"].passed  # its own loop reports what its models score
    assert result.score == 8


def test_best_states_reloaded_from_files_into_new_models_are_judged_by_the_runs_that_made_them(graded):
    """Seeded once, each best state_dict saved with torch.save and loaded into a new SimpleMLP: the new models never
    ran before they were given trained weights, so their start was passed as unknown and the seeding given full
    marks. The checkpoint carries the start of the model it was taken from, as a deep copy does."""
    result = graded["checkpoint-reloaded-seeded-once"]
    check = by_id(result)["seed-start"]
    assert not check.passed and check.message.startswith(
        "seed 0: its initial weights are those of a SimpleMLP built right after torch.manual_seed(42), not "
        "torch.manual_seed(0)")
    assert "could not be checked" not in check.message
    assert result.score == result.max_score - 2 and by_id(result)["trained-steps"].passed


def test_one_unseeded_start_loaded_into_every_seed_s_model_is_not_that_seed_s_start(graded):
    """An unseeded SimpleMLP's state loaded into each seeded model before training ("the same start for a fair
    comparison"): loaded weights were no start at all, and seed-start passed 2/2 saying nothing could be checked."""
    result = graded["one-unseeded-start-loaded-for-every-seed"]
    check = by_id(result)["seed-start"]
    assert not check.passed and check.points == 0
    assert check.message.startswith(
        "seeds 0, 3 and 18: the weights load_state_dict gave the model before its first forward pass, which it "
        "trained from, are not those of a SimpleMLP built right after torch.manual_seed(seed)")
    assert "one model made once and copied into every seed's, say" in check.message
    assert result.score == result.max_score - 2


def test_one_checkpoint_file_overwritten_by_every_seed_is_named_not_blamed_on_the_seeding(graded):
    """Each run seeded and built right, its best state saved to "best_model.pt" and all reloaded after the loop: every
    model is seed 18's run, and seeds 0 and 3 were told only that they were seeded with 18 or built before their
    seeding, the second of which identical trained weights rule out."""
    check = by_id(graded["one-checkpoint-file-for-every-seed"])["seed-start"]
    assert not check.passed and check.message.startswith(
        "seeds 0 and 3: each model holds the very weights of the model stored for seed 18, which started as a "
        "SimpleMLP built right after torch.manual_seed(18): seed 18's run stored in its place (one checkpoint file "
        "that every seed's run writes over, say")
    assert "or a run of its own seeded with 18 too" in check.message  # the final weights cannot tell the two apart
    assert "built before its own torch.manual_seed" not in check.message


def test_test_figure_measured_on_the_validation_split_is_named(graded):
    result = graded["test-on-val"]
    check = by_id(result)["reported-vs-measured"]
    assert not check.passed and check.points == 0
    assert ("seed 0: test_acc reported 53.33% is what the grader measures on the validation split, not the test "
            "split (63.33%); seed 3: test_acc reported 57.78% is what the grader measures on the validation split"
            in check.message)
    assert "test_acc must come from the test data" in check.message
    assert "typed by hand" not in check.message  # every differing figure equals a measurement
    assert by_id(result)["seed-start"].passed and by_id(result)["restored"].passed and result.score == 7


# --- seed_start on exported models, without a kernel: the records are set by hand -------------------------


def _built(seed: int, count: int = 1) -> list[SimpleMLP]:
    torch.manual_seed(seed)
    return [SimpleMLP() for _ in range(count)]


def _trained(net: SimpleMLP) -> dict:
    """``net``'s weights before a small change standing in for training: its record of a start."""
    start = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01)
    return start


def _start(tmp_path, nets: dict, initial: dict):
    """seed_start on ``nets`` exported and loaded back, each with the given recorded initial weights."""
    exercise = load_exercise("random-seeds")
    exports = round_trip(tmp_path, {"models": nets}, [{"name": "models", "kind": "model_dict", "input_shape": [2]}])
    for seed, state in initial.items():
        exports.values["models"][seed].initial = state
    ctx = CheckContext(exercise.spec, exports, (), None, check_id="seed-start")
    return seed_start(ctx, "models", [0, 3, 18], "SimpleMLP")


def test_a_start_from_no_known_seed_lists_what_remains_possible(tmp_path):
    nets = {0: _built(0)[0], 3: _built(0, 2)[1], 18: _built(999)[0]}
    outcome = _start(tmp_path, nets, {s: _trained(net) for s, net in nets.items()})
    assert not outcome.passed and outcome.fraction == pytest.approx(1 / 3)
    assert outcome.message.startswith(
        "seed 3: its initial weights are those the 2nd SimpleMLP built after torch.manual_seed(0) gets, not those of "
        "one built right after torch.manual_seed(3): another model was built between that seeding and this one; "
        "seed 18: the initial weights are not those of a SimpleMLP built right after torch.manual_seed(seed), nor "
        "those of any of the first 4 built after torch.manual_seed(n) for n from 0 to 100")
    assert "What remains possible" in outcome.message


@pytest.mark.parametrize("keys, says", [
    ((0, 1, 2), "`results` has no row for seeds 3 and 18 (its keys: 0, 1 and 2): it needs one per seed in [0, 3, 18], "
                "keyed by the seed. They are keyed by their position in the list of seeds; key each row by its seed."),
    ((0, 3), "`results` has no row for seed 18 (its keys: 0 and 3): it needs one per seed in [0, 3, 18], keyed by "
             "the seed."),
])
def test_results_without_a_row_for_a_seed_say_which_rows_they_hold(keys, says):
    """Rows keyed by ``enumerate``'s position were told ``results[3]`` held the wrong figures; it holds none."""
    row = {"train_acc": 70.0, "val_acc": 60.0, "test_acc": 55.0, "best_epoch": 13}
    exports = Exports(values={"results": {key: dict(row) for key in keys}}, found=True)
    ctx = CheckContext(load_exercise("random-seeds").spec, exports, (), None, check_id="reported-vs-measured")
    with pytest.raises(CheckFailed) as failed:
        seed_results(ctx, "results", [0, 3, 18])
    assert str(failed.value) == says


def test_without_a_usable_record_the_start_is_not_judged(tmp_path):
    """No record (a copy that never ran forward), a record of trained weights, or one of weights that never changed
    (a copy run only after training looks like that): never a guessed failure."""
    nets = {0: _built(999)[0], 3: _built(3)[0], 18: _built(18)[0]}
    records = {3: {k: v * 10 for k, v in _trained(nets[3]).items()},  # far outside a fresh initialisation
               18: _trained(nets[18])}
    outcome = _start(tmp_path, nets, records)
    assert outcome.passed and outcome.fraction is None
    assert outcome.message == (
        "The model for seed 18 starts from the weights of a SimpleMLP built right after its own "
        "torch.manual_seed(seed), as its weights at its first forward pass show. seed 0: the grader has no record of "
        "its weights before training (a record exists only for a model object that ran forward in a graded run, or a "
        "deep copy of one; weights loaded into another model have none); how it was seeded could not be checked; "
        "seed 3: its weights at its first forward pass lie outside the range of a fresh initialisation, and no "
        "training was recorded from there, so they are not where it started; how it was seeded could not be checked.")
    unchanged = _start(tmp_path / "unchanged", nets, {0: nets[0].state_dict()})
    assert unchanged.passed and unchanged.message.startswith(
        "No model's start could be checked. seed 0: its weights never changed after its first forward pass, so that "
        "pass may have come after training (as for a model given trained weights before it ran); how it was seeded "
        "could not be checked")


def test_a_function_of_the_notebook_s_own_named_like_the_reference_s_is_its_own_work(graded):
    """The whole experiment in the notebook's own `def random_seeds(seeds)`: the reference solution's function name,
    but defined here, not imported."""
    result = graded["experiment-function"]
    assert result.score == result.max_score == 10, [(c.id, c.message) for c in result.checks if not c.passed]


def test_copies_of_one_model_trained_on_from_seed_to_seed_show_the_first_seed_s_start(graded):
    """One SimpleMLP, built once, trained on under each seed; a deepcopy is stored each time. A copy keeps its
    original's recorded start, so seeds 3 and 18 are measured to start where seed 0's model did."""
    check = by_id(graded["one-model-continued"])["seed-start"]
    assert not check.passed and check.points == pytest.approx(2 / 3, abs=1e-4)
    assert ("seed 3: its initial weights are those of a SimpleMLP built right after torch.manual_seed(0), not "
            "torch.manual_seed(3)") in check.message
    assert "seed 18: its initial weights are those of a SimpleMLP built right after torch.manual_seed(0)" in check.message
    # The copies also keep the original's optimizer steps: seed 3's holds seed 0's run (35 epochs) and its own (24),
    # and the new Adam of seed 3's run took over from seed 0's, which had built its averages.
    steps = by_id(graded["one-model-continued"])["trained-steps"].message
    assert ("seed 3: a new optimizer took over the model's parameters 1 time during training, without the state the "
            "one before had built for them") in steps
    assert "; and its parameters took 354 optimizer steps; 354 steps are 59 epochs of 6 batches" in steps
    assert "a model that had trained before this seed's run (one model trained on from seed to seed)" in steps


class _HeadFirst(nn.Module):
    """SimpleMLP's layers in a class of a student's own, the output layer declared (and so built) first."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 3)
        self.body = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU())

    def forward(self, x):
        return self.head(self.body(x))


def test_a_class_of_its_own_declared_in_another_order_is_replayed_as_its_own_layers(tmp_path):
    nets = {}
    for seed in (0, 3, 18):
        torch.manual_seed(seed if seed != 18 else 5)
        nets[seed] = _HeadFirst()
    outcome = _start(tmp_path, nets, {s: _trained(net) for s, net in nets.items()})
    assert not outcome.passed and outcome.fraction == pytest.approx(2 / 3)
    assert outcome.message.startswith("seed 18: its initial weights are those of a SimpleMLP built right after "
                                      "torch.manual_seed(5), not torch.manual_seed(18)")
    assert "What remains possible" not in outcome.message


def test_losses_reported_as_accuracies_are_named_as_losses_not_as_typed_by_hand(graded):
    """`val_acc, val_loss = evaluate(...)`: evaluate returns (loss, accuracy), so every figure is a loss."""
    check = by_id(graded["swapped-unpack"])["reported-vs-measured"]
    assert not check.passed and check.points == 0
    assert ("val_acc reported 5.729 is the model's loss on the validation split (the sum of the batches' mean "
            "losses), not its accuracy (53.33%)") in check.message
    assert "train_acc reported 4.422 is the model's loss on the training split" in check.message
    assert "returns (loss, accuracy)" in check.message and "typed by hand" not in check.message


def test_one_figure_given_as_a_fraction_is_named_as_such():
    from grader.checks.seeds import _off_figures

    reported = {"train_acc": 64.44, "val_acc": 0.5333, "test_acc": 0.6333}
    measured = {"train_acc": 64.44, "val_acc": 53.33, "test_acc": 63.33}
    off = _off_figures(reported, measured, {"train_acc": 6, "val_acc": 0.6, "test_acc": 0.6}, {},
                       lambda split: 0.0, lambda split: {"sum of batch means": 5.7})
    assert [(o.figure, o.fraction) for o in off] == [("val_acc", True), ("test_acc", True)]
    assert str(off[0]) == "val_acc reported 0.5333 is the accuracy as a fraction of 1: the grader measures 53.33%"


def test_models_pickled_whole_and_read_back_carry_their_training(graded):
    """torch.save(net) and torch.load: new parameter objects that no optimizer stepped, holding the trained weights
    of nets still alive. Their training and start are the originals' (the plot cell runs them, so their own first
    forward pass saw trained weights: "never trained" was said of such a model, a point lost)."""
    result = graded["models-pickled-whole-and-read-back"]
    assert result.score == result.max_score, [(c.id, c.message) for c in result.checks if not c.passed]
    checks = by_id(result)
    assert checks["trained-steps"].message.startswith("seed 0: 198 steps, 33 epochs of 6 batches; seed 3: 282 steps")
    assert checks["seed-start"].message.startswith("Every model starts from the weights of a SimpleMLP built right "
                                                   "after its own torch.manual_seed(seed)")


def test_one_row_dict_shared_by_every_seed_is_named_not_rows_filed_in_another_order(graded):
    """results = dict.fromkeys(SEEDS, {}): every row is seed 18's figures, and the message said the rows were keyed
    in another order than the models, which the student had not done."""
    reported = by_id(graded["one-row-dict-for-every-seed"])["reported-vs-measured"]
    assert not reported.passed
    assert "Every seed's row holds the very same figures, seed 18's: one row shared by all the seeds" in reported.message
    assert "keyed by the seeds in another" not in reported.message


def test_figures_cut_to_whole_numbers_are_named_as_such():
    """int() on every accuracy: 57.78 reported as 57 was said to come from another model, other data, or typing."""
    from grader.checks.seeds import _off_figures

    reported = {"train_acc": 73.0, "val_acc": 57.0, "test_acc": 66.0}
    measured = {"train_acc": 73.33, "val_acc": 57.78, "test_acc": 66.67}
    off = _off_figures(reported, measured, {"train_acc": 6, "val_acc": 0.6, "test_acc": 0.6}, {},
                       lambda split: 0.0, lambda split: {"sum of batch means": 5.7})
    assert [(o.figure, o.truncated, o.explained) for o in off] == [("val_acc", True, True), ("test_acc", True, True)]
    assert str(off[0]) == "val_acc reported 57 is the grader's measurement, 57.78%, with its decimals cut off"
    assert _off_figures({**reported, "val_acc": 58.0}, measured, {"train_acc": 6, "val_acc": 0.6, "test_acc": 0.6},
                        {}, lambda split: 0.0, lambda split: {})[0].figure == "test_acc"  # 58 is within tolerance


def test_training_on_train_and_val_is_counted_in_the_models_own_optimizer_steps(graded):
    """ConcatDataset([train, val]) with early stopping on val: every figure is the model's own and every start is
    right, so it got full marks. Its parameters took 12 steps per epoch, where the 180 training points give 6."""
    result = graded["train-plus-val"]
    failed = [c for c in result.checks if not c.passed]
    assert [c.id for c in failed] == ["trained-steps"] and failed[0].points == 0, [(c.id, c.message) for c in failed]
    assert "1632 is 12 per epoch over 136 epochs, as many as its best_epoch implies, twice the 6 training batches" in \
        failed[0].message
    assert "the validation set added to the training data" in failed[0].message


@pytest.mark.parametrize("steps, best, passed, says", [
    (33 * 6, 13, True, "33 epochs of 6 batches"),  # stopped 20 epochs after the best
    (13 * 6, 13, True, "13 epochs of 6 batches"),  # a copy taken at the best epoch
    (34 * 6, 12, True, "34 epochs"),  # best_epoch counted from 0 and one epoch late: the other checks' to judge
    (500 * 6, 495, True, "500 epochs"),  # ran out of epochs
    (12 * 6, 13, True, "12 epochs of 6 batches"),  # a copy at the best, with best_epoch one epoch late
    (6, 13, True, "keeps the count it had when copied"),  # deep-copied at epoch 1, then refreshed by load_state_dict
    (33 * 12, 13, False, "twice the 6 training batches"),
    (34 * 12, 13, False, "twice the 6 training batches"),  # train+val, and one epoch late
    (1 * 6 + 45 * 6, 13, False, "46 epochs of 6 batches"),
    (45 * 6, 13, False, "45 epochs of 6 batches, where best_epoch 13 implies 33"),
    (33 * 6 - 1, 13, False, "not a whole number of epochs"),
])
def test_steps_are_judged_against_the_run_the_best_epoch_implies(steps, best, passed, says):
    from grader.checks.seed_steps import seed_steps
    from grader.loading.values import Exports

    exercise = load_exercise("random-seeds")
    net = SimpleMLP()
    exports = Exports(values={"models": {0: _loaded(net, steps)}, "results": {0: {
        "best_epoch": best, "train_acc": 60.0, "val_acc": 50.0, "test_acc": 55.0}}}, found=True)
    outcome = seed_steps(CheckContext(exercise.spec, exports, (), None), models="models", results="results", seeds=[0],
                         batches=6, patience=20, n_epochs=500)
    assert outcome.passed is passed and says in outcome.message, outcome.message


def _loaded(net: nn.Module, steps: int):
    from grader.loading.model_graph import LoadedModel

    parameters = {k: v.detach() for k, v in net.named_parameters()}
    return LoadedModel(torch.fx.symbolic_trace(net), "SimpleMLP", (2,), parameters,
                       steps={k: steps for k in parameters})


@pytest.mark.parametrize("records, passed, says", [
    ({0: (50, 0), 3: (50, 0), 18: (50, 0)}, True, "Every measured optimizer step (150 on 3 models)"),
    ({0: (50, 0), 3: (50, 50), 18: (50, 0)}, False, "Of the 50 optimizer steps measured on `models[3]`, every one"),
    ({0: (50, 42), 3: (50, 50), 18: (50, 0)}, False, "every one used a gradient that still held the step before's: "
                                                      "the loop does not clear them between batches (never, or only now and then"),
    ({0: (50, 41), 3: (50, 0), 18: (50, 0)}, False, "41 used a gradient that still held the step before's, and 9 "
                                                     "one cleared first: the loop clears them only now and then"),
    ({0: (0, 0), 3: (0, 0), 18: (0, 0)}, True, "was not measured"),  # rebuilt from weights: nothing recorded
])
def test_a_step_on_a_gradient_left_from_the_step_before_loses_the_point(records, passed, says):
    """The kernel's count (kernel_probe) against each seed's model: any step that carried a gradient fails, the
    model carrying the most is named, and a model with no measured step is not judged."""
    import dataclasses

    from grader.checks.gradients import gradients_cleared
    from grader.loading.values import Exports

    exercise = load_exercise("random-seeds")
    models = {seed: dataclasses.replace(_loaded(SimpleMLP(), 198), judged_steps=n, carried_steps=carried)
              for seed, (n, carried) in records.items()}
    ctx = CheckContext(exercise.spec, Exports(values={"models": models}, found=True), (), None)
    outcome = gradients_cleared(ctx, models="models")
    assert outcome.passed is passed and says in outcome.message, outcome.message


def test_models_kept_in_a_module_dict_are_handed_over_as_a_dict_of_models(tmp_path):
    """nn.ModuleDict({"0": net, ...}) has no forward of its own: exported as one model it failed every check with
    torch.export's error. It is a container, handed over as its items, as a plain dict is."""
    nets = nn.ModuleDict({str(seed): SimpleMLP() for seed in (0, 3, 18)})
    exports = round_trip(tmp_path, {"models": nets, "layers": nn.ModuleList([SimpleMLP()])},
                         [{"name": "models", "kind": "model_dict", "input_shape": [2]},
                          {"name": "layers", "kind": "model_dict", "input_shape": [2]}])
    models = exports.values["models"]
    assert sorted(models) == ["0", "18", "3"] and all(m.n_params == 483 for m in models.values()), exports.problems
    assert len(exports.values["layers"]) == 1


@pytest.mark.parametrize("record, passed, says", [
    ({"optimizers": ("Adam",), "step_lrs": (0.01,) * 4}, True, "33 epochs of 6 batches"),
    ({"optimizers": ("SGD",), "step_lrs": (0.01,) * 4}, False, "trained with SGD, where the set-up trains with Adam"),
    ({"optimizers": ("Adam",), "step_lrs": (0.001,) * 4}, False, "stepped at lr=0.001, where the set-up's is lr=0.01"),
    ({"optimizers": ("Adam",), "step_lrs": (0.01, 0.005, 0.005, 0.01)}, False, "stepped at LRs from 0.005 to 0.01"),
    ({"optimizers": ("Adam",), "step_lrs": (0.01,) * 4, "step_settings": {"weight_decay": 0.001}}, False,
     "its Adam was made with weight_decay=0.001 (torch's default is 0)"),
    ({"idle_steps": 198, "steps": {}, "untrained": True}, False,
     "so it never trained: its optimizer stepped 198 times, and not once found a gradient"),
    ({"steps": {}, "untrained": True}, True, "no optimizer step was recorded"),  # given trained weights before it ran
    # an update written by hand (plain SGD, or an Adam without bias correction): it passed as "not counted"
    ({"steps": {}, "moved": True}, False, "seed 0: its weights moved from their values at its first forward pass, but "
     "no torch optimizer ever stepped them (the kernel's record): an update written by hand (p -= lr * p.grad), or "
     "weights copied in after a first forward pass, where the set-up trains with torch's Adam at lr=0.01"),
    ({"steps": {}, "untrained": True, "seeded": 3}, False,  # a loop stepping a global optimizer made for another model
     "seed 0: its weights are still those of a SimpleMLP built right after torch.manual_seed(3), and the kernel "
     "recorded no optimizer step on them, so it never trained"),
])
def test_how_each_model_was_stepped_is_the_set_ups_or_named(record, passed, says):
    """The kernel's record of each model's optimizer class, LRs and settings: SGD, or Adam at 1e-3, reported honest
    figures and passed every other check."""
    import dataclasses

    from grader.checks.seed_steps import seed_steps
    from grader.loading.values import Exports

    record = dict(record)
    seeded = record.pop("seeded", None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeded if seeded is not None else 1234567)  # no seed the grader knows, unless asked
        net = _loaded(SimpleMLP(), 33 * 6)
    if record.pop("untrained", False):
        net = dataclasses.replace(net, initial=dict(net.parameters))
    if record.pop("moved", False):
        net = dataclasses.replace(net, initial={k: v - 0.01 for k, v in net.parameters.items()})
    net = dataclasses.replace(net, **record)
    exports = Exports(values={"models": {0: net}, "results": {0: {
        "best_epoch": 13, "train_acc": 60.0, "val_acc": 50.0, "test_acc": 55.0}}}, found=True)
    outcome = seed_steps(CheckContext(load_exercise("random-seeds").spec, exports, (), None), models="models",
                         results="results", seeds=[0], batches=6, patience=20, n_epochs=500, optimizer="Adam", lr=0.01)
    assert outcome.passed is passed and says in outcome.message, outcome.message


def test_steps_that_never_found_a_gradient_are_said_so_not_guessed():
    """zero_grad() between backward() and step(): no step judged, and the record says why (it listed a torch-less
    loop or assigned gradients, neither of which it was). Clearing them there is what the check is about: it fails
    (it passed as "not measured", and a function that never trained kept the point)."""
    import dataclasses

    from grader.checks.gradients import gradients_cleared
    from grader.loading.values import Exports

    idle = dataclasses.replace(_loaded(SimpleMLP(), 0), steps={}, idle_steps=198)
    ctx = CheckContext(load_exercise("random-seeds").spec, Exports(values={"models": {0: idle}}, found=True), (), None)
    outcome = gradients_cleared(ctx, models="models")
    assert not outcome.passed and outcome.message.startswith("Its optimizer stepped 198 times and never found a "
                                                             "gradient on the parameters: zero_grad() is called between "
                                                             "backward() and step()")


def test_a_model_that_could_not_be_captured_is_not_judged_on_its_gradients():
    """A model fed flat rows where the task's takes images cannot be captured, and its record went with it: the
    capture error was this check's message too, for a loop that cleared its gradients at every step."""
    from grader.checks.gradients import gradients_cleared
    from grader.loading.values import ExportProblem, Exports

    problem = ExportProblem("mat1 and mat2 shapes cannot be multiplied (56x28 and 784x128)")
    ctx = CheckContext(load_exercise("mnist-sgd").spec, Exports(values={"model": problem}, found=True), (), None)
    outcome = gradients_cleared(ctx, models="model")
    assert outcome.passed and outcome.message.startswith("Not measured: `model` could not be handed to the grader "
                                                         "(mat1 and mat2 shapes cannot be multiplied")


def test_weights_initialised_another_way_and_trained_from_there_are_the_start_that_is_checked(graded):
    """Seeded once with 2024, every model re-initialised with kaiming_normal_: the weights at the first forward pass lie
    outside a fresh SimpleMLP's range, and were taken for trained weights loaded before that pass, so no start could
    be checked and seed-start passed (12/12). The optimizer steps recorded from there show they were the start."""
    check = by_id(graded["he-init-seeded-once"])["seed-start"]
    assert not check.passed and check.points == 0
    assert check.message.startswith("seeds 0, 3 and 18: the initial weights are not those of a SimpleMLP built right "
                                    "after torch.manual_seed(seed)")
    assert "or its weights were changed before training" in check.message


@pytest.mark.parametrize("steps, best, says, cause", [
    (67, 47, "67 is 1 per epoch over 67 epochs, as many epochs as its best_epoch implies", "batches"),  # full batch
    (102, 14, "102 steps are 17 epochs of 6 batches, where best_epoch 14 implies 34 (or 14 for a copy taken at the "
              "best epoch); or 3 per epoch over 34 epochs", "length batches"),  # a short run, or batches of 64
    (61, 13, "61 is not a whole number of epochs of 6 batches", "batches"),
    (198, 13, "198 steps are 33 epochs of 6 batches", "length"),
])
def test_a_step_count_is_read_at_other_batches_per_epoch_only_where_it_fits_the_run(steps, best, says, cause):
    """Full-batch training (one step an epoch) was taken for a copy refreshed in place, whose count is whole
    epochs of the loader's batches, and got 12/12."""
    said, left = _measured(steps, best, 20, 500, 6)
    assert says in said and left == cause.split()


def test_a_summary_row_beside_every_seed_s_row_is_left_alone_and_a_misnamed_seed_is_named():
    """`results["summary"] = {mean, std}`, as the notebook's questions invite, cost 4 points as a wrong key."""
    rows = {0: {"val_acc": 50.0}, 3: {"val_acc": 55.0}, 18: {"val_acc": 60.0}, "summary": {"mean": 55.0}}
    assert sorted(_by_seed(rows, "results", [0, 3, 18])) == [0, 3, 18]
    with pytest.raises(CheckFailed, match=r"must be keyed by the seed numbers \[0, 3, 18\]; found the key 'seed_3'"):
        _by_seed({0: {}, "seed_3": {}, 18: {}}, "results", [0, 3, 18])


def test_models_built_under_a_float64_default_are_recognised_and_measured(graded):
    """torch.set_default_dtype(torch.float64) first, a Colab habit: a seed draws other weights in float64, so the
    seeded builds were never recognised (seed-start 0/2 with causes all wrong), and comparing the float64 models
    with the reference's float32 run raised (reported-vs-measured and restored: "could not evaluate", 4 points)."""
    result = graded["float64-default"]
    assert result.score == result.max_score, [(c.id, c.message) for c in result.checks if not c.passed]
    assert by_id(result)["seed-start"].message.startswith("Every model starts from the weights of a SimpleMLP built "
                                                          "right after its own torch.manual_seed(seed)")


def test_a_model_trained_on_another_seed_s_points_is_told_by_the_kernel_s_record_of_its_batches(graded):
    """The training points drawn anew with each run's seed: seeds 3 and 18 learn other points, report honest figures
    and take as many steps (12/12 before). The kernel records each row of a model's first training batches."""
    result = graded["training-points-per-seed"]
    failed = [c for c in result.checks if not c.passed]
    assert [c.id for c in failed] == ["trained-steps"], [(c.id, c.message) for c in failed]
    assert failed[0].points == pytest.approx(1 / 3, abs=1e-4)
    # seed-spread passes, but no longer says its spread comes "from the seed alone"
    assert "not from the seed alone: the models for seeds 3 and 18 learned from other points than the training " \
        "split" in by_id(result)["seed-spread"].message, by_id(result)["seed-spread"].message
    message = failed[0].message
    assert message.startswith("seed 0: 198 steps, 33 epochs of 6 batches; seed 3: of the 512 inputs the kernel "
                              "recorded in its first training batches, 0 are points of the training split: it trained "
                              "on other data"), message


def test_a_run_that_leaves_the_set_up_later_is_not_judged_by_the_replay_s_best_epoch(graded):
    """StepLR added: the LR stays 0.01 for 10 epochs, so seed 3's model held the replay's weights after epoch 7, its own
    best, and lost restored for "not those of its best epoch 27", the replay's, which its run never followed."""
    checks = by_id(graded["steplr-added-to-the-set-up"])
    assert checks["restored"].passed, checks["restored"].message
    assert ("seed 3: it holds the course set-up's weights after epoch 7, and its run then left the set-up's (the "
            "kernel saw it stepped otherwise)") in checks["restored"].message
    assert not checks["trained-steps"].passed and "stepped at LRs from" in checks["trained-steps"].message


def test_the_highest_val_accuracy_of_the_history_is_named_as_that_epoch_s(tmp_path):
    """max(history.val_acc) reported for the restored model: told only "figures that match no measurement ... another
    model, other data, or typed by hand", though the replay of the set-up's run knows every epoch's val accuracy."""
    from grader.checks.data import DataFactory
    from grader.checks.seeds import _course_run, _course_trajectory
    from reference.data import course_loaders, course_splits
    from reference.training import evaluate

    loaders, nets, rows = course_loaders(course_splits()), {}, {}
    for seed in (0, 3, 18):
        net = SimpleMLP()
        net.load_state_dict(_course_run(seed)["state"])
        nets[seed] = net
        rows[seed] = {f"{split}_acc": evaluate(net, getattr(loaders, split))[1] for split in ("train", "val", "test")}
        rows[seed]["best_epoch"] = _course_run(seed)["best_epoch"]
    trajectory = _course_trajectory(0)
    peak = max(trajectory["val_accs"][:trajectory["val"][1]])
    assert peak - rows[0]["val_acc"] > 1  # the premise: the restored model scores less than the run's best epoch did
    rows[0]["val_acc"] = peak
    exercise = load_exercise("random-seeds")
    exports = round_trip(tmp_path, {"models": nets, "results": rows},
                         [{"name": "models", "kind": "model_dict", "input_shape": [2]},
                          {"name": "results", "kind": "dict"}])
    check = next(c for c in exercise.checks if c.spec.id == "reported-vs-measured")
    outcome = check.evaluate(CheckContext(exercise.spec, exports, (), DataFactory(None, None),
                                          check_id="reported-vs-measured"))
    assert not outcome.passed and outcome.fraction == pytest.approx(2 / 3)
    assert f"seed 0: val_acc reported {peak:.2f}% is the highest val accuracy of any epoch of its run (the course " \
           "set-up's, which the grader replays), not what the model stored scores" in outcome.message
    assert "typed by hand" not in outcome.message
