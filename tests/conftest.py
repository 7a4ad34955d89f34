"""Shared test set-up: headless plotting and one thread, as every grading kernel runs."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Each `grader check` or `grader grade` a test starts runs in its own process, as it always can;
# test_warm_server turns the warm server on, in a runtime folder of its own, and stops what it started.
os.environ["GRADER_WARM_SERVER"] = "0"

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# The files that take a quarter of a minute or more of a test process, longest first (their tests' times summed from
# a `--junitxml` run). `make test` has pytest-xdist hand whole files to its processes in collection order (--dist
# loadfile --no-loadscope-reorder; by default it puts the files with the most tests first): one of these handed out
# last would leave the other processes idle while it runs.
LONGEST_FIRST = ("test_grading_mnist.py", "test_grading_early_stopping.py", "test_cluster_batch.py",
                 "test_warm_server.py", "test_grading_random_seeds.py", "test_batch.py", "test_grading_tiny_model.py",
                 "test_interrupts.py", "test_kernel_factory.py", "test_cluster_start.py", "test_grading_schedulers.py",
                 "test_gradescope_autograder.py", "test_hostile_input.py", "test_capture_reuse.py", "test_whole_term.py",
                 "test_reproduction.py", "test_quick_check.py", "test_reference_cli.py", "test_gradebook_safety.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file's tests keep their order




@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


# --- a graded class, shared by the batch, export and browser tests ---------------------------------

import shutil  # noqa: E402

from grader.cli import main  # noqa: E402
from grading_support import (  # noqa: E402
    FAST_CELL_TIMEOUT_S, FILES, ROOT, commands_fork_from_this_factory, shared_factory_env, solution)

TINY = FILES / "tiny-model"


@pytest.fixture
def shared_kernel_factory():
    """The commands this test runs, here or in processes it starts, fork their kernels from this process's factory.

    For tests whose subject is a batch rather than how a factory starts, stops or falls back.
    """
    with commands_fork_from_this_factory():
        yield


@pytest.fixture(scope="session")
def fast_exercises(tmp_path_factory):
    """The real tiny-model exercise with an 8-second cell limit, so a hanging notebook stays cheap.

    Its kernels are forked from a factory that has imported torch already, so a correct notebook's
    longest cell takes under a second; a fresh launch's ``import torch`` (several seconds on a loaded
    machine) happens in no test that uses this exercise.
    """
    root = tmp_path_factory.mktemp("exercises")
    shutil.copytree(ROOT / "exercises" / "tiny-model", root / "tiny-model")
    spec = root / "tiny-model" / "spec.toml"
    spec.write_text(spec.read_text().replace("cell_timeout_s = 120", f"cell_timeout_s = {FAST_CELL_TIMEOUT_S}")
                    .replace("total_timeout_s = 300", "total_timeout_s = 30"))
    return root


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory, fast_exercises):
    """A class with a good notebook, a hang, a dying kernel, a non-notebook and a folder of two notebooks."""
    folder = tmp_path_factory.mktemp("class")
    shutil.copy(solution("tiny-model"), folder / "ada.ipynb")
    shutil.copy(TINY / "waits-forever.ipynb", folder / "bob.ipynb")
    shutil.copy(TINY / "kernel-dies.ipynb", folder / "cara.ipynb")
    shutil.copy(FILES / "not-a-notebook.ipynb", folder / "dave.ipynb")
    (folder / "emma").mkdir()
    shutil.copy(TINY / "bigger-model.ipynb", folder / "emma" / "tiny-model.ipynb")
    shutil.copy(TINY / "crash-midway.ipynb", folder / "emma" / "draft.ipynb")
    gradebook = folder.parent / "gradebook.sqlite"
    mp = pytest.MonkeyPatch()
    for name, value in {"GRADER_EXERCISES": str(fast_exercises), "GRADER_SECRET": "batch-test-secret",
                        **shared_factory_env()}.items():
        mp.setenv(name, value)
    try:
        code = main(["grade", str(folder), "--exercise", "tiny-model", "--gradebook", str(gradebook), "--workers", "2"])
    finally:
        mp.undo()
    assert code == 0
    return folder, gradebook


@pytest.fixture(scope="session")
def feedback_dir(graded_class, tmp_path_factory):
    _, gradebook = graded_class
    out = tmp_path_factory.mktemp("feedback")
    assert main(["feedback", "--gradebook", str(gradebook), "--out", str(out)]) == 0
    return out


