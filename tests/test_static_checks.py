"""Checks that read the notebook's code, and what they take for granted."""

import subprocess
import sys

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
