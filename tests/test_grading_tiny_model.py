"""The tiny-model exercise end to end: real notebooks, real kernels, checks in the grader's process."""

import dataclasses
import pathlib
import time
import types

import pytest
import torch

from grading_support import FILES as ALL_FILES
from grading_support import by_id as checks
from grading_support import grade, solution, student
from grader.assignments.catalog import Exercise, load_exercise
from grader.checks.models import fed_unlike
from grader.kernel.limits import Limits
from grader.results import Status

FILES = ALL_FILES / "tiny-model"
SOLUTION = solution("tiny-model")
STUDENT = student("tiny-model")


@pytest.fixture(scope="module")
def exercise() -> Exercise:
    return load_exercise("tiny-model")


def test_solution_notebook_scores_full_marks_including_hidden(exercise):
    result = grade(SOLUTION, exercise)
    assert result.status is Status.OK, result.error
    assert result.score == result.max_score == 10
    budget = checks(result)["parameter-budget"]
    assert budget.metrics["n_params"] == budget.metrics["torchinfo_params"] == 21
    # The grader's own recording hook (kernel_probe) is not the student's: nothing about hooks is said.
    assert budget.message == ("Your model has 21 parameters, within the 33-parameter budget. torchinfo counts 21 too. "
                              "The smallest the reference found has 21. That ties or beats the reference's smallest.")
    assert checks(result)["fresh-data"].visibility == "hidden"
    assert result.sandbox["unprivileged_user"] == (__import__("os").geteuid() == 0)


def test_untouched_student_notebook_scores_zero_and_says_what_to_define(exercise):
    result = grade(STUDENT, exercise)
    assert result.score == 0
    assert result.status is Status.ERROR and "NotImplementedError" in result.error
    for check in result.checks:
        assert not check.passed
        assert "must define `model`" in check.message, check.id
    assert "NotImplementedError" in result.traceback


def test_tampering_in_the_kernel_earns_no_accuracy_points(exercise):
    result = grade(FILES / "tampering.ipynb", exercise)
    by_id = checks(result)
    assert by_id["fits-training-data"].points == 0 and not by_id["fits-training-data"].passed
    assert by_id["fresh-data"].points == 0
    accuracy = by_id["fits-training-data"].metrics["accuracy"]
    assert accuracy < 80  # measured by the grader on its own data, whatever the kernel printed
    assert "scores" in by_id["fits-training-data"].message


def test_using_the_reference_solution_is_flagged_and_gates_the_rest(exercise):
    result = grade(FILES / "uses-reference.ipynb", exercise)
    by_id = checks(result)
    assert not by_id["own-model"].passed
    assert "reference.extras.tiny_search" in by_id["own-model"].message and "cell 2" in by_id["own-model"].message
    assert result.score == 0
    # In the official run the reference solution is a stub: the import fails, so no model exists to credit.
    assert "ImportError: this part of the reference is not available in the official run" in result.error
    assert not by_id["fits-training-data"].passed


def test_a_cell_error_after_the_model_exists_still_scores(exercise):
    result = grade(FILES / "crash-midway.ipynb", exercise, hidden=False)
    assert result.status is Status.ERROR
    assert result.error.startswith("code cell 4 raised AttributeError")
    assert result.score == 8  # all public checks
    assert [p.id for p in result.pending] == ["fresh-data"]


def test_a_bigger_model_gets_partial_size_points(exercise):
    result = grade(FILES / "bigger-model.ipynb", exercise, hidden=False)
    budget = checks(result)["parameter-budget"]
    assert budget.metrics["n_params"] == 63 and budget.points == 1.5 and not budget.passed
    assert budget.message == ("Your model has 63 parameters for 50% of the points; the full budget is 33. torchinfo "
                              "counts 63 too. Try fewer hidden units or fewer layers. The smallest the reference found "
                              "has 21.")


def test_a_model_with_the_wrong_number_of_outputs_is_told_so(exercise):
    result = grade(FILES / "unpacked-module.ipynb", exercise, hidden=False)
    fit = checks(result)["fits-training-data"]
    assert not fit.passed
    assert fit.message == ("Your model gives 5 scores per sample, but the data has 3 classes: it must return one score "
                           "per class, of shape (batch, 3), so its last layer needs 3 outputs.")


def test_an_infinite_loop_times_out_within_the_limit(exercise):
    fast = Exercise(dataclasses.replace(exercise.spec, limits=Limits(cell_timeout_s=5, total_timeout_s=60,
                                                                     export_timeout_s=30)), exercise.checks)
    start = time.monotonic()
    result = grade(FILES / "infinite-loop.ipynb", fast, hidden=False)
    elapsed = time.monotonic() - start
    assert result.status is Status.TIMEOUT
    assert result.error == "code cell 4 did not finish within 5 s (the per-cell limit)"
    assert elapsed < 5 + 30  # the 5 s limit plus kernel start, torch import and the export
    # The loop was interrupted and the model defined before it was still graded.
    assert checks(result)["fits-training-data"].passed


def test_a_cell_that_ignores_the_interrupt_is_stopped_without_waiting_out_the_export_limit(exercise, tmp_path):
    """A loop that catches KeyboardInterrupt: interrupted at its limit, it ran on, and the export cell queued behind it
    for its own limit (219 s for a 120 s cell, told "did not finish within 120 s")."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import time\nwhile True:\n    try:\n        time.sleep(0.1)\n"
                                          "    except BaseException:\n        pass")]
    nbformat.write(nb, tmp_path / "stubborn.ipynb")
    fast = Exercise(dataclasses.replace(exercise.spec, limits=Limits(cell_timeout_s=3, total_timeout_s=60,
                                                                     export_timeout_s=300, interrupt_grace_s=2)),
                    exercise.checks)
    result = grade(tmp_path / "stubborn.ipynb", fast, hidden=False)
    assert result.status is Status.TIMEOUT
    assert result.error == ("code cell 1 did not finish within 3 s (the per-cell limit), and it did not stop when "
                            "interrupted (2 s), so it was stopped without exporting any value")


def test_a_dying_kernel_is_an_error_with_a_reason(exercise):
    result = grade(FILES / "kernel-dies.ipynb", exercise, hidden=False)
    assert result.status is Status.ERROR
    assert result.error.startswith("the kernel died (exit code 3)")
    assert result.score == 0
    assert all("Not graded: the kernel died" in c.message for c in result.checks)


def test_a_booby_trapped_export_runs_nothing_in_the_grader(exercise, tmp_path):
    marker = pathlib.Path("/tmp/grader-test-pwned-marker")
    marker.unlink(missing_ok=True)
    result = grade(FILES / "malicious-export.ipynb", exercise, hidden=False)
    assert not marker.exists()
    # The export keeps its own torch.save (sealed before any student cell): the patch changes nothing, so the
    # model the notebook trained is what is graded.
    assert checks(result)["fits-training-data"].passed, checks(result)["fits-training-data"].message


def test_a_kernel_whose_messaging_is_patched_ends_in_a_graded_error(exercise):
    result = grade(FILES / "tampering-protocol.ipynb", exercise, hidden=False)
    assert result.status is Status.ERROR
    assert "patching modules it relies on (such as json)" in result.error
    assert result.score == 0


UNREGISTERED = (" Tensors the module does not register are what count_parameters and torchinfo leave out: plain "
                "tensors, and layers or nn.Parameters kept in a Python list or dict (register those in an "
                "nn.ModuleList or nn.ParameterList).")
# What the budget counts besides parameters (rule: grader/loading/model_graph.py). Each memoriser fits its training
# points, so the accuracy measured is 100%: the budget must stop it, and so must `a-network`, as nothing in it could be
# trained (no parameters at all) or its recall classifies with every parameter at 0.
MEMORISERS = {
    "memorise-buffers.ipynb": (901, ("Your model has 0 parameters, but stores 900 numbers in buffers (`points`: 360, "
                                     "`votes`: 540) and 1 number written into the forward pass as a value (such as "
                                     "-200); the budget counts both: 901 numbers; the full budget is 33. torchinfo "
                                     "counts 0 parameters, as it counts parameters only.")),
    "memorise-constant.ipynb": (541, ("Your model has 0 parameters, but stores 540 numbers in constant tensors (made "
                                      "in the forward pass or taken from outside the model: 360 + 180) and 1 number "
                                      "written into the forward pass as a value (such as 2); the budget counts both: "
                                      "541 numbers; the full budget is 33. torchinfo counts 0 parameters, as it counts "
                                      "parameters only." + UNREGISTERED)),
    # Its 180 points' coordinates, each in (x - c) ** 2: the whole-number exponents are h * h, and count nothing.
    "memorise-floats.ipynb": (360, ("Not credited until `fits-training-data` passes. Your model has 0 parameters, but "
                                    "stores 360 numbers written into the forward pass as values (such as -0.823595, "
                                    "-1.2553, -0.959984); the budget counts both: 360 numbers for 25% of the points; "
                                    "the full budget is 33. torchinfo counts 0 parameters, as it counts parameters "
                                    "only.")),
    "memorise-hook.ipynb": (911, ("Your model has 9 parameters, but stores 900 numbers in constant tensors (made in "
                                  "the forward pass or taken from outside the model: 360 + 540) and 2 numbers written "
                                  "into the forward pass as values (such as -500, 50); the budget counts both: 911 "
                                  "numbers; the full budget is 33. torchinfo counts 9 parameters, as it counts "
                                  "parameters only." + UNREGISTERED + " Your model's forward hooks ran while the "
                                  "grader captured it, so what they compute and keep is counted too: a forward hook "
                                  "on the model (recall).")),
}


def test_a_rule_with_a_trained_layer_beside_it_is_no_network(exercise):
    """Each point's anti-diagonal from floor() and ==, five times its one-hot, plus a 9-parameter linear head scaled by
    0.1: it passed as a network with 19 numbers, under the reference's smallest, though the rule alone scores 100%."""
    by_id = checks(grade(FILES / "rule-with-a-layer-beside-it.ipynb", exercise, hidden=False))
    learned = by_id["a-network"]
    assert not learned.passed and learned.metrics["accuracy_without_parameters"] == 100.0
    assert learned.message.startswith("`model` still scores 100.00% on the 180 points with every one of its 9 "
                                      "parameters set to 0 (100.00% as trained): what classifies the points is a rule "
                                      "its code computes from them through `floor`, `eq`")
    assert by_id["fits-training-data"].points == 0 and by_id["parameter-budget"].points == 0


@pytest.mark.parametrize("name", MEMORISERS)
def test_a_model_that_stores_its_training_points_gets_no_size_points(exercise, name):
    result = grade(FILES / name, exercise, hidden=False)
    by_id = checks(result)
    total, counted = MEMORISERS[name]
    assert by_id["own-model"].passed and by_id["fits-training-data"].metrics["accuracy"] == 100.0
    learned = by_id["a-network"]
    assert not learned.passed
    if name == "memorise-hook.ipynb":  # 9 parameters its scores read, beside a recall that classifies without them
        assert learned.message.startswith("`model` still scores 100.00% on the 180 points with every one of its 9 "
                                          "parameters set to 0 (100.00% as trained)")
    assert by_id["fits-training-data"].passed == learned.passed, by_id["fits-training-data"].message
    budget = by_id["parameter-budget"]
    assert not budget.passed and budget.points == 0 and budget.metrics["n_params"] == total
    assert budget.message == (counted + " Whatever the model keeps to compute its output counts, trained or not. The "
                              "smallest the reference found has 21.")


def test_parameters_kept_in_a_plain_list_are_named_among_what_a_module_does_not_register(tmp_path):
    """nn.Parameters in `self.weights = [...]`, trained through `Adam(model.weights)`: the module owns none of them.
    It was told to wrap each in nn.Parameter, which each already was."""
    from grading_support import round_trip
    from grader.checks import CheckContext
    from grader.checks.architecture import learned_network
    from grader.checks.data import DataFactory

    class Listed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weights = [torch.nn.Parameter(torch.randn(2, 3)), torch.nn.Parameter(torch.randn(3, 3))]

        def forward(self, x):
            return torch.relu(x @ self.weights[0]) @ self.weights[1]

    exercise = load_exercise("tiny-model")
    exports = round_trip(tmp_path, {"model": Listed()}, [{"name": "model", "kind": "model", "input_shape": [2]}])
    outcome = learned_network(CheckContext(exercise.spec, exports, (), DataFactory(), check_id="a-network"), "model",
                              {"kind": "checkerboard", "n_per_cell": 20, "noise": 0.1, "seed": 0})
    assert not outcome.passed and ("or nn.Parameters or layers kept in a plain Python list, dict or tuple, which a "
                                   "module does not register") in outcome.message
    assert ("or several in an nn.ParameterList or nn.ParameterDict; layers in an nn.ModuleList or nn.Sequential."
            in outcome.message)


# A fixed rule fits the board without learning anything: the colour read off each point's square. Its accuracy is
# 100%, so only `a-network`, reading the graph and its gradients, can tell it from a network.
RULES = {
    "rule-by-squares.ipynb": "`model` has no parameters, so nothing in it can be trained: what it computes is fixed by "
                             "its code and whatever it stores (through `floor`, `eq`, which have no gradient).",
    "unused-layer.ipynb": "`model` has 9 parameters (`fc.weight`, `fc.bias`), but its forward pass never reads them, so "
                          "it computes a fixed rule (through `round`, `eq`, which have no gradient).",
    "rule-with-offsets.ipynb": "`model`'s scores do not change with any of its 2 parameters at any of the 180 points: "
                               "they pass through `round`, `eq`, which have no gradient, so no training could change "
                               "what it predicts.",
    # A table of scores per square, trained: the parameters learn, but the point reaches them only as its cell index.
    "table-per-square.ipynb": "`model`'s scores do not move with the point at any of the 180 points: the point reaches "
                              "its 27 parameters only through a cast to torch.int64, which has no gradient, so what "
                              "it learns is one answer per value of that step (a table of the squares, say)",
}


@pytest.mark.parametrize("name", RULES)
def test_a_fixed_rule_that_fits_is_not_credited_as_a_network(exercise, name):
    result = grade(FILES / name, exercise, hidden=False)
    by_id = checks(result)
    rule = by_id["a-network"]
    assert not rule.passed and rule.message.startswith(RULES[name]), rule.message
    assert "layers with weights (nn.Linear, or weight tensors of your own) trained by an optimizer" in rule.message
    fit = by_id["fits-training-data"]
    assert fit.metrics["accuracy"] == 100.0 and fit.points == 0
    assert fit.message.startswith("Not credited until `a-network` passes.")
    assert result.score == 1.0  # its own work, nothing more


def test_batchnorm_running_stats_count_and_an_honest_model_still_fits(exercise):
    result = grade(FILES / "batchnorm.ipynb", exercise, hidden=False)
    assert checks(result)["fits-training-data"].passed
    budget = checks(result)["parameter-budget"]
    assert budget.passed and budget.points == 3 and budget.metrics["n_params"] == 33
    assert budget.metrics["torchinfo_params"] == budget.metrics["parameters"] == 27
    assert budget.message == ("Your model has 27 parameters, and stores 6 numbers in buffers (`norm.running_mean`: 3, "
                              "`norm.running_var`: 3); the budget counts both: 33 numbers, within the 33-number "
                              "budget. torchinfo counts 27 parameters, as it counts parameters only. The smallest the "
                              "reference found has 21.")


def test_an_accuracy_far_below_chance_is_said_to_be_systematic_not_a_lack_of_training():
    """Below what predicting one class scores, by more than a guessing model could fall (about 1e-6): more training
    is not the advice; what remains is listed."""
    import torch

    from grader.checks.models import below_chance

    labels = torch.arange(3).repeat(60)  # the 180 balanced training points
    said = below_chance(100 * 20 / 180, labels)
    assert said.startswith("That is below the 33.3% that always predicting one class would score")
    assert "inputs other than the raw inputs" in said
    assert below_chance(20.0, labels) == ""  # 4.3 standard deviations below: still within what guessing can do
    rare = torch.cat([torch.zeros(900, dtype=torch.long), torch.ones(100, dtype=torch.long)])
    assert below_chance(7.0, rare) == "" and below_chance(5.0, rare) != ""  # the rarest class sets the mark: 10%


def test_an_accuracy_at_chance_lists_what_remains_instead_of_tuning_advice():
    """Points trained against a shuffled copy of their labels score what guessing scores: not 'train longer'."""
    import torch

    from grader.checks.models import at_chance

    labels = torch.arange(3).repeat(60)
    said = at_chance(34.44, labels)
    assert said.startswith("That is about the 33.3% that always predicting one class scores")
    assert "inputs and labels shuffled or sorted apart" in said and "another seed" in said
    assert "scaled or normalised in your notebook" in said  # a model trained on min-max-scaled points scores 33%
    assert at_chance(40.0, labels) == ""  # 1.8 standard deviations above one class's share: it may have learned
    assert at_chance(37.0, labels) != ""
    # 100 Adam steps at lr 0.001 leave the course's net at 33.33%; 500 at 0.01 fit it: a count is said, and a run too
    # short stays among the causes ("longer or faster training alone is unlikely to help" was said of it).
    few = types.SimpleNamespace(steps={"0.weight": 100, "0.bias": 100}, step_lrs=[0.001, 0.001, 0.001, 0.001])
    said = at_chance(33.33, labels, few)
    assert "its training was too short or too slow to leave where it started (the kernel counted 100 optimizer " \
           "steps, at lr 0.001 at most" in said
    assert "unlikely to help" not in said and "inputs and labels shuffled or sorted apart" in said


def test_a_few_literals_that_tip_the_budget_say_how_torchs_own_settings_are_counted():
    """A hand-written leaky ReLU (torch.maximum(x, 0.1 * x)) costs its 0.1; nn.LeakyReLU(0.1) would not: said."""
    from grader.checks.models import _budget_message
    from grader.loading.model_graph import StoredNumbers

    leaky = _budget_message(StoredNumbers(33, 33, {}, {}, (0.1,)), 33, 0.5, 33, ())
    assert "stores 1 number written into the forward pass as a value (such as 0.1)" in leaky
    assert "(nn.LeakyReLU(0.1), F.leaky_relu(x, 0.1)); the same number written into arithmetic does." in leaky
    memoriser = _budget_message(StoredNumbers(0, 0, {}, {}, tuple(range(2, 722))), 0, 0.0, 33, ())
    assert "LeakyReLU" not in memoriser  # hundreds of values are data, not settings
    # Frozen random features: the course's count_parameters (trainable only) printed 27, within the budget.
    frozen = _budget_message(StoredNumbers(51, 27, {}, {}, ()), 51, 0.5, 33, ())
    assert ("That counts all 51 parameters, 24 of them frozen: frozen weights still make the model bigger "
            "(count_parameters, and torchinfo's \"Trainable params\", show only the 27 trainable ones).") in frozen


def test_a_start_loaded_back_after_training_is_named_not_a_learning_rate_of_zero():
    """`best_loss = 0.0`, so no epoch improved and the state copied before training was loaded back: the weights
    moved, and the model was told to look at its learning rate and gradients."""
    from grader.checks.models import untrained

    net = types.SimpleNamespace(parameters={"w": torch.ones(2)}, initial={"w": torch.ones(2)}, steps={"w": 200},
                                idle_steps=0, restored_to_start=True)
    assert untrained(net, "model") == (
        "Every weight of `model` is still what it was at its first forward pass. Its parameters took 200 optimizer "
        "steps, then load_state_dict put back the weights it started from, and no step came after: the state it "
        "restored was saved before training and never replaced (a best state kept only on an improvement that no "
        "epoch made, say).")


def test_zero_grad_between_backward_and_step_is_named_from_the_steps_that_found_no_gradient():
    """The model never moved: it was told one of four causes. The kernel counts the optimizer steps that found its
    parameters without a gradient, and names the one it measured."""
    result = grade(FILES / "zero-grad-before-step.ipynb", "tiny-model", hidden=False)
    fits = checks(result)["fits-training-data"]
    assert not fits.passed
    assert "Its optimizer stepped 300 times, and not once found a gradient on its parameters: zero_grad() is called " \
        "between backward() and step()" in fits.message, fits.message


@pytest.mark.parametrize("calls, says", [
    (((-0.51, 0.50),) * 6, "was fed values from -0.51 to 0.5 (the kernel's record of its first training batches), "
                            "but the task's inputs, on which the grader measures it, run from -1.5 to 1.5"),
    (((-1.4, 1.45),) * 6, ""),  # batches of the task's own points reach near both ends
    (((-9.0, 9.0),) + ((-1.3, 1.4),) * 5, ""),  # one stray call (a shape check on torch.randn) does not decide
    # Batches of one point: each call's ends are its two coordinates, mid-range at the median; together they reach
    # both ends of the inputs (they were told their inputs were scaled), scaled ones do not.
    (((-0.2, 0.3), (-1.4, 0.1), (0.2, 1.45), (-0.1, 0.4), (-1.2, -0.3), (0.5, 1.3), (0.0, 0.2)), ""),
    (((0.2, 0.3), (0.0, 0.1), (0.6, 0.9), (0.1, 0.4), (0.05, 0.3), (0.5, 1.0), (0.0, 0.2)), "was fed values from 0 "
     "to 0.9 (the kernel's record of its first training batches)"),
    ((), ""),  # nothing recorded: nothing said
])
def test_an_accuracy_that_falls_short_names_inputs_scaled_on_the_way_to_the_model(calls, says):
    """Standardised points in training, raw ones in the grader's measurement: the hint was to train longer."""
    net = types.SimpleNamespace(input_ranges=calls)
    said = fed_unlike(net, torch.tensor([[-1.5, 0.2], [1.5, -0.3]]), "`model`")
    assert (says in said) if says else said == "", said


def test_a_model_trained_on_standardised_points_is_told_so_not_to_train_longer(exercise):
    """The loop standardises the points on their way in and exports the bare network: on the points themselves it
    misses, and fits-training-data advised more steps or a higher learning rate. The kernel's record of its first
    training batches holds none of the training points."""
    fits = checks(grade(FILES / "standardised-in-the-loop.ipynb", exercise, hidden=False))["fits-training-data"]
    assert not fits.passed and "Train for more steps" not in fits.message
    assert ("0 are among the 180 training points (20 per cell, noise 0.1, seed 0): it learned from other numbers (the "
            "points normalised or otherwise changed on their way to the model, or other data)") in fits.message



@pytest.mark.parametrize("bias, steps, wedges", [(False, 300, True), (True, 5, False), (True, 300, False)])
def test_a_network_without_biases_is_told_it_cannot_fit_not_to_train_longer(tmp_path, bias, steps, wedges):
    """nn.Linear(..., bias=False) throughout: its class regions are wedges from the origin, and the centre cell's
    points share rays with the outer cells'. It was told to train longer, raise the LR or try another seed."""
    from mnist_support import evaluate, exported
    from torch import nn

    from reference.data import generate_checkerboard_dataset

    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(2, 16, bias=bias), nn.ReLU(), nn.Linear(16, 3, bias=bias))
    data = generate_checkerboard_dataset(20, 0.1, 0)
    optimizer = torch.optim.Adam(net.parameters(), 0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(data.X), data.Y).backward()
        optimizer.step()
    outcome = evaluate("tiny-model", "fits-training-data", {"model": exported(net, tmp_path, input_shape=(2,))})
    assert ("its class regions are wedges from the origin" in outcome.message) is wedges, outcome.message
    assert outcome.passed is (bias and steps == 300)
    if wedges:
        assert "Give its layers biases." in outcome.message and "Train for more steps" not in outcome.message


@pytest.mark.parametrize("name, cause", [
    ("softmax-layer-before-cross-entropy", "`model` ends in a softmax, and it was trained with cross_entropy "
                                           "(nn.CrossEntropyLoss; the kernel's record), which applies log-softmax"),
    ("two-linear-layers-no-activation", "Every layer of `model` is linear (linear 2→5, linear 5→3), with no "
                                        "activation between them"),
    # Stuck at 66.67% on every seed tried, and at 88.89% at best: both were told to train longer too.
    ("relu-after-the-last-layer", "`model`'s layers are linear 2→5, linear 5→3, relu: its only activation comes after "
                                  "the last layer"),
    ("sigmoid-scores-into-cross-entropy", "`model` ends in a sigmoid, which squashes each score into (0, 1), and it "
                                          "was trained with cross_entropy"),
])
def test_a_fit_short_of_the_goal_names_what_the_model_s_own_graph_shows(name, cause):
    """Both stall (77.78% and 47.22% after 3000 steps as after 300) and were told to train longer or raise the LR."""
    by_id = checks(grade(FILES / f"{name}.ipynb", "tiny-model", hidden=False))
    fits = by_id["fits-training-data"]
    assert not fits.passed and cause in fits.message
    assert "Train for more steps" not in fits.message


def test_a_relu_written_as_clip_at_zero_gets_full_marks():
    """torch.clip(self.fc1(x), min=0): aten.clip was off the allowlist, and the correct 2-4-3 net got 0/10."""
    result = grade(FILES / "clip-at-zero-for-relu.ipynb", "tiny-model")
    assert result.score == result.max_score == 10, [(c.id, c.message) for c in result.checks if not c.passed]


def test_weights_worked_out_by_hand_are_no_network_that_learned():
    """A 2-4-3 ReLU net whose weights were set on paper (the class follows x + y): 10/10, as a network that training
    could change, which nothing did. The kernel saw no optimizer step, and the weights of its first pass."""
    by_id = checks(grade(FILES / "weights-worked-out-by-hand.ipynb", "tiny-model", hidden=True))
    network = by_id["a-network"]
    assert not network.passed and network.message.startswith(
        "`model` computes its scores from 4 parameter tensors (27 numbers), but nothing in the run trained them")
    assert not any(by_id[i].passed for i in ("fits-training-data", "parameter-budget", "fresh-data"))


def test_batches_of_one_point_too_few_epochs_are_told_to_train_longer_not_that_inputs_were_scaled():
    """The task's points one at a time, for 8 epochs: each recorded call's ends were one point's two coordinates, whose
    medians sit mid-board, and the student was told to undo a scaling never applied."""
    result = grade(FILES / "one-point-batches-too-few-epochs.ipynb", "tiny-model", hidden=False)
    fits = checks(result)["fits-training-data"]
    assert not fits.passed and "Train for more steps" in fits.message, fits.message
    assert "another scale" not in fits.message


def test_a_layer_forward_never_reads_is_named_beside_the_numbers_the_scores_come_from():
    """A Linear(5, 5) left registered but unused: "4 parameter tensors (63 numbers)" paired the tensors read with
    every parameter's count."""
    result = checks(grade(FILES / "a-layer-left-unused.ipynb", "tiny-model", hidden=False))
    network, budget = result["a-network"], result["parameter-budget"]
    # The budget counts all 63 (as torchinfo does), and names what to remove rather than "fewer hidden units".
    assert budget.points == 1.5
    assert ("30 of them (`fc_mid.weight`, `fc_mid.bias`) are never read by its forward pass: a layer registered but "
            "not used still counts, so remove it first.") in budget.message
    assert "fewer hidden units" not in budget.message
    assert network.message.startswith(
        "`model` computes its scores from 4 parameter tensors (33 of its 63 numbers: `fc_mid.weight`, `fc_mid.bias` "
        "are never read by its forward pass, yet count among its parameters)"), network.message


def test_a_softmax_over_the_batch_is_named_not_batch_statistics():
    """nn.Softmax(dim=0) as the last layer, with NLLLoss: the score of a point depended on its batch, and the student
    was told to normalise with fixed numbers, which the model never did."""
    fits = checks(grade(FILES / "softmax-over-the-batch.ipynb", "tiny-model", hidden=False))["fits-training-data"]
    assert not fits.passed
    assert "Its graph takes a softmax over dimension 0, the points of the batch (nn.Softmax(dim=0), say)" in fits.message
    assert "Statistics of the batch" not in fits.message


@pytest.mark.parametrize("name", ["swa-average-of-a-data-parallel-net", "whole-model-pickled-and-reloaded",
                                  "torchscript-round-trip", "rbf-centres-with-cdist"])
def test_trained_networks_in_torch_s_own_wrappers_and_round_trips_get_full_marks(name):
    """Each a trained 27- or 33-parameter net that fits: 0 or 1 of 8 before. nn.DataParallel and AveragedModel take
    forward(*args), which the capture's batch spec did not follow; an average, a model saved whole and loaded, or a
    TorchScript round trip holds trained weights that no optimizer stepped ("nothing in the run trained them"), and
    torch's converter lifts a loaded script's parameters as buffers ("no parameters"); torch.cdist was off the
    allowlist."""
    result = grade(FILES / f"{name}.ipynb", "tiny-model", hidden=False)
    assert result.score == result.max_score, [(c.id, c.message) for c in result.checks if not c.passed]
    assert checks(result)["a-network"].metrics["parameters"] in (27, 33)


def test_a_batch_of_one_scored_in_another_shape_is_named_not_batch_statistics():
    """forward ending in .squeeze(): one point's scores come back as (3,), and the message blamed statistics of the
    batch computed in forward, which the model has none of."""
    from grader.checks.base import CheckFailed
    from grader.checks.models import check_consistent

    class Squeezed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 3)

        def forward(self, x):
            return self.fc(x).squeeze()

    with pytest.raises(CheckFailed) as raised:
        check_consistent(Squeezed().eval(), torch.rand(40, 2))
    assert raised.value.message.startswith("Your model returns scores of shape (3,) for a batch of one point, where a "
                                           "batch of 32 gives (32, 3)")
    assert "statistics of the batch" not in raised.value.message.lower()


def test_a_model_with_no_record_of_any_run_is_said_to_be_another_object_not_to_train_longer():
    """`model = SimpleNN()` in a cell after training: 9% on MNIST, and the advice was a larger learning rate. It never
    ran forward and no step touched it: the kernel's record says so whatever the accuracy."""
    from grader.checks.models import untrained

    never = types.SimpleNamespace(initial={}, steps={}, idle_steps=0, loaded=False, loss_calls={"cross_entropy": 20})
    said = untrained(never, "model")
    assert said.startswith("Nothing in the run's record shows `model` trained: it never ran a forward pass in the "
                           "notebook, and no optimizer step was recorded on its parameters.")
    assert untrained(types.SimpleNamespace(initial={}, steps={}, idle_steps=0, loaded=True), "model") == ""
    assert untrained(types.SimpleNamespace(initial={}, steps={"w": 3}, idle_steps=0, loaded=False), "model") == ""
    # No record of any run at all (a model built outside a kernel): nothing to say
    assert untrained(types.SimpleNamespace(initial={}, steps={}, idle_steps=0, loaded=False, loss_calls={}),
                     "model") == ""


def test_a_quantised_model_is_named_as_such_when_it_cannot_be_captured():
    """quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8): every check showed torch's internal AttributeError
    about LinearPackedParamsBase, with nothing the student could act on."""
    import warnings

    from grader.kernel.kernel_export import _quantized_advice

    net = torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    with warnings.catch_warnings():  # torch deprecates torch.ao.quantization; students still find it in tutorials
        warnings.simplefilter("ignore")
        quantised = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)
    said = _quantized_advice(quantised)
    assert said.startswith(". Your model holds quantised layers (`0`") and "export the float model" in said
    assert _quantized_advice(net) == ""


def test_a_model_made_again_after_a_run_that_trained_is_told_to_export_the_trained_one(tmp_path):
    """`model = Tiny()` after the loop trained `net`: a-network said "weights written by hand, say" and advised an
    AveragedModel, though the run's record shows a loop computed its loss hundreds of times."""
    from mnist_support import evaluate, exported

    torch.manual_seed(0)
    net = exported(torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)), tmp_path,
                   input_shape=(2,))
    fresh = dataclasses.replace(net, initial=dict(net.parameters))
    ran = evaluate("tiny-model", "a-network", {"model": dataclasses.replace(fresh, loss_calls={"cross_entropy": 300})})
    assert not ran.passed and "though the run called the cross-entropy loss 300 times: if a loop trained, it trained " \
                               "another object (a model made again after training" in ran.message
    by_hand = evaluate("tiny-model", "a-network",
                       {"model": dataclasses.replace(fresh, loss_calls={"cross_entropy": 0})})
    assert not by_hand.passed and "weights written by hand, say" in by_hand.message


def test_a_forward_hook_is_said_to_be_counted_only_where_it_adds_to_the_count():
    """A debugging hook that appends detached activations to a list: "what they compute and keep is counted too",
    though the count was its 33 parameters alone."""
    from grader.checks.models import _budget_message
    from grader.loading.model_graph import StoredNumbers

    hooks = ("a forward hook on `1` (save_acts)",)
    plain = _budget_message(StoredNumbers(33, 33, {}, {}, ()), 33, 1.0, 33, hooks)
    assert "hook" not in plain and plain.startswith("Your model has 33 parameters, within the 33-parameter budget.")
    keeping = _budget_message(StoredNumbers(9, 9, {}, {"lifted_tensor_0": 360}, ()), 9, 0.0, 33, hooks)
    assert "Your model's forward hooks ran while the grader captured it, so what they compute and keep is counted " \
           "too: a forward hook on `1` (save_acts)." in keeping and UNREGISTERED in keeping
