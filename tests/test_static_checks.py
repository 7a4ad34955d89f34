"""Checks that read the notebook's code, and what they take for granted."""

import subprocess
import sys

import pytest

from grader.checks.static import PACKAGE_BASELINE


def test_the_own_work_baseline_is_what_the_course_helpers_and_the_quick_check_load():
    """``own_work`` ignores these modules in a kernel; recomputed here in a fresh interpreter, as a kernel starts."""
    probe = ("import sys, reference, grader.quick\n"
             "[getattr(reference, name) for name in reference.__all__]\n"
             "print(' '.join(sorted(m for m in sys.modules if m == 'reference' or m.startswith('reference.'))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd="/", timeout=120)
    assert done.returncode == 0, done.stderr
    assert frozenset(done.stdout.split()) == PACKAGE_BASELINE


def _own_work(cells: list[str]):
    from grader.assignments.catalog import load_exercise
    from grader.checks import CheckContext
    from grader.checks.static import own_work
    from grader.loading.values import Exports

    ctx = CheckContext(load_exercise("random-seeds").spec, Exports(values={"models": {0: None}}, found=True),
                       tuple(enumerate(cells, 1)), None, check_id="own-runs")
    return own_work(ctx, "models", ["reference.exercises"], ["random_seeds", "seed_line"])


def test_a_model_that_could_not_be_captured_is_still_the_notebook_s_own_unless_refused():
    """A net flattened in the transform, with no Flatten of its own, cannot run on [1, 28, 28]: own-work failed with the
    shape error, though the notebook used nothing of the reference's. A model refused as tampered stays uncredited."""
    from grader.assignments.catalog import load_exercise
    from grader.checks import CheckContext
    from grader.checks.base import CheckFailed
    from grader.checks.static import own_work
    from grader.loading.values import ExportProblem, Exports

    def judged(problem: ExportProblem):
        ctx = CheckContext(load_exercise("mnist-sgd").spec, Exports(values={"model": problem}, found=True),
                           ((1, "model = Net()\n"),), None, check_id="own-work")
        try:
            return own_work(ctx, "model", ["reference.mnist.training"], [])
        except CheckFailed as e:
            return e

    captured = judged(ExportProblem("the model could not be captured for grading: RuntimeError: mat1 and mat2 shapes "
                                    "cannot be multiplied", captured=True))
    assert captured.passed and captured.message == ("`model` is your own: the notebook does not use the reference "
                                                    "solution.")
    assert not getattr(judged(ExportProblem("the model's export is malformed")), "passed", False)


def test_a_name_of_the_reference_solution_that_the_notebook_defines_itself_is_its_own():
    own = ["def seed_line(seed, row):\n    return f'{seed}: {row}'\n",
           "def run(random_seeds):\n    return [seed_line(s, {}) for s in random_seeds]\n",
           "for random_seeds in [[0, 3]]:\n    print(run(random_seeds))\n"]
    assert _own_work(own).passed


def test_a_name_of_the_reference_solution_reached_through_a_module_or_imported_is_flagged():
    through = _own_work(["import reference as r\n", "rows = r.exercises.random_seeds([0, 3, 18])\n"])
    assert not through.passed and through.details["evidence"] == ["cell 2: `random_seeds`"]
    imported = _own_work(["from reference.exercises import seed_line\n", "seed_line(0, {})\n"])
    assert not imported.passed
    assert "cell 1: `reference.exercises`" in imported.details["evidence"]


def test_an_attribute_the_notebook_sets_and_a_cell_with_magics_keep_their_own_names():
    """`self.seed_line = ...`, and a `def random_seeds` under `%%time`, are the notebook's own: the first was read as
    a use of the reference solution, and a cell with a magic did not parse, so nothing in it counted as defined.
    Both scored 0 on the whole exercise (every check requires own-runs)."""
    attribute = ["class Table:\n    def __init__(self):\n        self.seed_line = '{}: {}'\n",
                 "t = Table()\nprint(t.seed_line.format(0, 1))\n"]
    assert _own_work(attribute).passed
    magic = ["%%time\ndef random_seeds(seeds):\n    !echo training\n    return {s: s for s in seeds}\n",
             "%matplotlib inline\nrows = random_seeds([0, 3, 18])\n"]
    assert _own_work(magic).passed
    # the same name read through an imported module is still the reference's, whatever the notebook sets
    through = _own_work(["import reference as r\n", "class T:\n    seed_line = None\n    def __init__(self):\n"
                         "        self.seed_line = r.seed_line\n"])
    assert not through.passed and through.details["evidence"] == ["cell 2: `seed_line`"]


@pytest.mark.parametrize("source, stub", [
    # the release's TODO stub, after the given lines of the template
    ("def f(model, lr=0.01):\n    '''Train.'''\n    loss = None\n    # TODO: train\n"
     "    raise NotImplementedError('TODO: train')\n", True),
    # a complete function that mentions it: a guard, the stub line left commented out, the docstring. Each scored
    # 0/12 as "still the TODO stub" (a substring test), with every other check blocked.
    ("def f(model, val=None, patience=None):\n    if patience is not None and val is None:\n"
     "        raise NotImplementedError('early stopping needs a validation loader')\n    return model\n", False),
    ("def f(model):\n    # raise NotImplementedError('TODO: train')\n    return model\n", False),
    ("def f(model):\n    '''Raises: NotImplementedError: never.'''\n    return model\n", False),
    ("    def f(self):\n        raise NotImplementedError\n", True),  # a method, indented as inspect gives it
])
def test_a_stub_is_a_function_that_raises_not_implemented_in_its_own_body(source, stub):
    from grader.checks.static import always_raises_not_implemented

    assert always_raises_not_implemented(source) is stub
