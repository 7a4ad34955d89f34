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
