"""What the kernel's probe records of a run, observed through a real kernel: initial weights, steps, shared objects."""

import pathlib

import pytest
import torch

from grader.assignments.catalog import load_spec_file
from grading_support import kernel_factory
from grader.grading.engine import run_notebook
from grader.kernel.notebook import read_submission
from reference.models import SimpleMLP

FILES = pathlib.Path(__file__).parent / "files" / "kernel"


@pytest.fixture(scope="module")
def exports():
    run = run_notebook(read_submission(FILES / "records.ipynb"), load_spec_file(FILES / "spec.toml"),
                       factory=kernel_factory())
    assert run.exports.found, run.execution.reason
    return run.exports.values


def test_initial_weights_are_those_of_the_first_forward_pass(exports):
    torch.manual_seed(3)
    expected = SimpleMLP().state_dict()
    shared = exports["models"][0]
    assert shared.initial.keys() == shared.parameters.keys()
    assert all(torch.equal(shared.initial[k], expected[k]) for k in shared.initial)
    assert not all(torch.equal(shared.parameters[k], expected[k]) for k in shared.parameters)  # it trained


def test_a_model_that_never_ran_forward_has_no_initial_weights(exports):
    assert exports["never_run"].initial == {}


def test_one_object_stored_under_two_keys_is_one_loaded_model(exports):
    assert exports["models"][0] is exports["models"][3]
    assert exports["models"][18] is not exports["models"][0]


def test_optimizer_steps_are_counted(exports):
    assert exports["optimizer"].steps == 5 and exports["optimizer"].state_steps == ()
    assert exports["adam"].steps == 3 and exports["adam"].state_steps == (3,)


def test_the_steps_that_used_a_gradient_left_from_the_step_before_are_counted(exports):
    """However the loop clears .grad (set to None, zeroed in place, through .data), a step after a cleared gradient
    counts as cleared, a validation backward pass after the step included; a loop that never clears it, or clears
    it now and then, carries it (as its copies do, and the parameters load_state_dict(assign=True) puts in place). The first step is never judged: nothing came before it; nor is a step whose
    gradient was assigned to .grad (torch.autograd.grad), which adds nothing to what it held."""
    loops = exports["loops"]
    judged = {name: (model.judged_steps, model.carried_steps) for name, model in loops.items()}
    assert judged == {"per step": (7, 0), "in place": (7, 0), "through .data": (7, 0), "after validation": (7, 0),
                      "never": (7, 7), "every fourth step": (7, 6), "copy of never": (7, 7),
                      "never, reloaded with assign=True": (7, 7),
                      "autograd.grad assigned": (0, 0)}


def test_the_learning_rates_and_settings_a_model_was_stepped_with_are_recorded(exports):
    adam_model, sgd_model = exports["models"][18], exports["models"][0]
    assert adam_model.step_lrs == (0.01, 0.01, 0.01, 0.01) and sgd_model.step_lrs == (0.1, 0.1, 0.1, 0.1)
    assert adam_model.step_settings["betas"] == [0.9, 0.999] and adam_model.step_settings["weight_decay"] == 0
    assert "lr" not in adam_model.step_settings and "params" not in adam_model.step_settings


def test_what_a_model_was_fed_in_training_is_recorded(exports):
    """The first training-mode calls' inputs: normal points (randn) reach below 0 and above 0; a model that never ran
    has no record."""
    low, high = exports["models"][0].input_range
    assert low < 0 < high and exports["never_run"].input_range == ()
    calls = exports["models"][0].input_ranges  # each call's own, the first 20
    assert 0 < len(calls) <= 20 and (min(c[0] for c in calls), max(c[1] for c in calls)) == (low, high)


def test_the_points_a_model_was_stepped_on_are_recorded_through_the_run_and_an_evaluation_is_not(exports):
    """The first row of each training-mode call an optimizer step followed: the three training batches', not those of
    the two passes in training mode with gradients on that no step followed."""
    from grader.kernel.kernel_probe import row_signatures

    trained = torch.stack([torch.arange(8.0).reshape(4, 2)[0] + 10 * k for k in range(3)])
    assert exports["stepped_on"].stepped_rows == tuple(row_signatures(trained))
    assert exports["never_run"].stepped_rows == ()


def test_a_model_fed_other_shapes_in_training_than_the_tasks_is_told_where_to_reshape(exports):
    assert ("Your model was fed inputs of shape [4] in training (the kernel's record), but the task's model takes "
            "[2, 2], as the task's loader makes them, and the grader runs it so: flatten inside the model "
            "(nn.Flatten() as its first layer") in exports["misfed"].message


def test_the_losses_and_clipping_of_a_models_own_steps_are_recorded(exports):
    """Each model's record holds the losses and clipping of the steps that trained it: a smoothed loss tried on another
    model, or on this one with no step after it, is not its training's. Only the first 20 inputs of the run, and
    then the first of every 10th step's, are looked at, so the softmax given to the second call of a step goes unseen."""
    lossy = exports["restarts"]["trained with its own losses"].loss_calls
    assert lossy["label_smoothing"] == (0.2,) and lossy["clipped"] == 1
    assert lossy["cross_entropy"] == 3 and lossy["probabilities"] == 0
    shared = exports["models"][0].loss_calls  # trained with plain cross_entropy; smoothed and clipped afterwards
    assert shared["label_smoothing"] == () and shared["clipped"] == 0 and shared["cross_entropy"] == 5
    # A model no torch optimizer stepped (trained by hand, say) has the run's: every call, whichever model it was for.
    run = exports["never_run"].loss_calls
    assert run["label_smoothing"] == (0.2, 0.3) and run["clipped"] == 1 and run["cross_entropy"] > 20
    assert run["soft_targets"] == 1  # the targets smoothed by hand; one-hot rows are the labels
    assert (run["nll_loss"], run["nll_not_log_probabilities"]) == (2, 1) and run["others"] == {"mse_loss": 1}


def test_an_optimizer_made_anew_during_training_is_counted_where_it_drops_the_state_kept(exports):
    """A new Adam, or SGD with momentum, before each of 3 epochs starts its state again twice; plain SGD keeps no
    state, and a new Adam given the old one's state_dict carries it on: neither restarts anything."""
    restarts = {name: model.optimizer_restarts for name, model in exports["restarts"].items()}
    assert restarts == {"one Adam": 0, "Adam each epoch": 2, "momentum SGD each epoch": 2, "plain SGD each epoch": 0,
                        "Adam each epoch, state loaded": 0, "two runs, carried on": 0, "two runs, reset between": 0,
                        "resumed into a new model": 0, "resumed from a checkpoint": 0,
                        "restored to its start": 0, "trained with its own losses": 0}


def test_the_steps_since_the_weights_were_last_at_their_start_count_one_run(exports):
    """A second run with an optimizer of its own counts from zero where the weights were set back to their recorded
    start first (load_state_dict of the initial state), and goes on counting where they were not."""
    since = {name: max(model.steps.values()) for name, model in exports["restarts"].items()}
    assert since["two runs, carried on"] == 5 and since["two runs, reset between"] == 2
    assert since["one Adam"] == 6 and since["Adam each epoch"] == 6
    # the steps of the run since the reset alone: the first run's are gone with it
    assert set(exports["restarts"]["two runs, reset between"].steps.values()) == {2}


def test_a_model_given_weights_from_elsewhere_before_it_first_ran_has_no_recorded_start(exports):
    """Weights loaded into a new model before its first forward pass that no model of this run held are another
    model's trained weights, not where this one started: no start is recorded, and the record says it was loaded."""
    resumed = exports["restarts"]["resumed into a new model"]
    assert resumed.loaded and resumed.initial == {} and set(resumed.steps.values()) == {2}
    assert not exports["restarts"]["one Adam"].loaded


def test_a_model_given_a_checkpoint_of_this_run_carries_on_its_start_and_steps(exports):
    """A checkpoint (a state_dict() of a model this run trained, written to a file and read back) loaded into a new
    model hands it the start and steps of the model it was taken from, as a deep copy does: a best state reloaded
    into a new model is judged by the run that made it (its seeding, its gradients, its steps)."""
    resumed, shared = exports["restarts"]["resumed from a checkpoint"], exports["models"][0]
    assert not resumed.loaded and resumed.initial.keys() == shared.initial.keys()
    assert all(torch.equal(resumed.initial[k], shared.initial[k]) for k in shared.initial)
    assert resumed.steps == {k: n + 2 for k, n in shared.steps.items()}


def test_a_model_given_its_start_back_after_training_is_told_from_one_that_never_moved(exports):
    """Weights that equal their start after optimizer steps: lr 0 or zero gradients, or a state saved before training
    loaded back after it (a best state never replaced). The record says which, and a step after the load undoes it."""
    restored = exports["restarts"]["restored to its start"]
    assert restored.restored_to_start and set(restored.steps.values()) == {3}
    assert all(torch.equal(restored.parameters[k], restored.initial[k]) for k in restored.initial)
    assert not exports["restarts"]["two runs, reset between"].restored_to_start  # it trained on after the load
    assert not exports["restarts"]["one Adam"].restored_to_start
