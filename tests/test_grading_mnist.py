"""The MNIST exercises graded in real kernels on real MNIST, kept fast with subsets where the recipes allow.

The notebooks read whatever root the grader shows them (``MNIST_ROOT``, read-only) and the grader
measures on the same root, so a subset changes nothing but the run time:
- mnist-sgd: the first 20,000 training and 2,000 test images (its recipe still passes 85% / 95% there);
- mnist-adam: the full bundled files (with fewer steps per epoch its recipe falls short of 90%);
- lr-sweep: 3,000 / 1,000 images (1e-3 still clearly beats 1e-4);
- mistakes whose check does not depend on how well the model learns: 5,000 / 1,000 images (too few
  steps to push SGD past 95% training accuracy, so that mistake keeps the 20,000).
"""

import pytest

from grading_support import FILES, by_id, grade, solution, student
from grader.checks.mnist import transforms_in_code
from grader.results import Status
from mnist_support import subset_root, unpacked_root


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    full = unpacked_root(tmp_path_factory)
    base = tmp_path_factory.mktemp("mnist-subsets")
    return {"mnist-sgd": subset_root(full, base / "sgd", 20_000, 2_000), "mnist-adam": full,
            "lr-sweep": subset_root(full, base / "cnn", 3_000, 1_000), "small": subset_root(full, base / "small", 5_000, 1_000)}


def run(roots, exercise, path, root: str = ""):
    return grade(path, exercise, hidden=False, data_root=roots[root or exercise])


@pytest.mark.parametrize("exercise", ["mnist-sgd", "mnist-adam", "lr-sweep"])
def test_solution_passes_every_check(roots, exercise):
    result = run(roots, exercise, solution(exercise))
    assert result.status is Status.OK, result.error
    assert result.score == result.max_score == 10, [(c.id, c.message) for c in result.checks if not c.passed]


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


def test_sgd_changed_hidden_size(roots):
    check = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "hidden-256.ipynb", "small"))["architecture"]
    assert not check.passed
    assert "is not the course's MnistMLP: fc1.weight: [256, 784] instead of [128, 784]" in check.message


def test_sgd_training_accuracy_too_high(roots):
    checks = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "constant-high-lr.ipynb"))
    assert checks["val-accuracy"].passed
    train = checks["train-accuracy"]
    assert not train.passed and train.metrics["accuracy"] >= 95
    assert "it needs less than 95%" in train.message and "fits the training digits too closely" in train.message


def test_sgd_optimizer_swapped(roots):
    check = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "adam-instead.ipynb", "small"))["optimizer"]
    assert not check.passed
    assert check.message.startswith("`optimizer` is torch.optim.adam.Adam, but the task keeps torch's SGD")


def test_sgd_with_momentum_is_more_than_an_lr_change(roots):
    check = by_id(run(roots, "mnist-sgd", FILES / "mnist-sgd" / "momentum.ipynb", "small"))["optimizer"]
    assert not check.passed
    assert check.message == ("`optimizer` is torch's SGD, but it also sets momentum=0.9 (torch's default is 0), and the "
                             "task changes only the learning rate: create it as optim.SGD(model.parameters(), lr=...).")


def test_adam_batch_size_changed(roots):
    check = by_id(run(roots, "mnist-adam", FILES / "mnist-adam" / "batch-128.ipynb", "small"))["batch-size"]
    assert not check.passed
    assert check.message == "`train_loader`: its batch size is 128, but the task fixes it at 64."


def test_adam_preprocessing_changed(roots):
    check = by_id(run(roots, "mnist-adam", FILES / "mnist-adam" / "normalize.ipynb", "small"))["preprocessing"]
    assert not check.passed
    assert check.message.startswith("The preprocessing changed: the notebook uses Normalize.")


def test_sweep_reported_accuracies_that_are_not_the_models(roots):
    check = by_id(run(roots, "lr-sweep", FILES / "lr-sweep" / "typed-val-accs.ipynb"))["reported-vs-measured"]
    assert not check.passed
    assert "lr=0.0001: reported val 97.00% but the exported model scores" in check.message


def test_sweep_with_one_learning_rate_for_all(roots):
    check = by_id(run(roots, "lr-sweep", FILES / "lr-sweep" / "same-lr.ipynb"))["1e-3-beats-1e-4"]
    assert not check.passed
    assert "check that each model is trained with its own learning rate" in check.message


def test_preprocessing_that_cannot_be_read_is_said_so():
    used, unclear = transforms_in_code(((3, "t = getattr(transforms, name)()"),))
    assert unclear == ["cell 3 picks a transform by name"]
    used, unclear = transforms_in_code(((1, "from torchvision.transforms import Normalize, ToTensor"),))
    assert used == {"Normalize", "ToTensor"} and unclear == []
