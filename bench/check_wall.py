"""Wall time of `grader check` on the tiny-model solution notebook, and what it is made of.

Runs the real command (a fresh process, as a student would) several times, then the engine
in-process for the breakdown: kernel start, the student's cells, the export, loading, checks.
Run: ``make bench`` or ``.venv/bin/python bench/check_wall.py``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

from common import record

from grader.assignments.catalog import load_exercise
from grader.grading.engine import grade_submission
from grader.kernel.notebook import read_submission

NOTEBOOK = "reference/notebooks/tiny-model.ipynb"
REPEATS = 3


def main() -> int:
    walls = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(REPEATS):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "grader.cli", "check", NOTEBOOK, "--html", f"{folder}/f.html"],
                                  capture_output=True)
            walls.append(time.perf_counter() - start)
            assert done.returncode == 0, done.stderr.decode()[-500:]
    exercise = load_exercise("tiny-model")
    breakdowns = [grade_submission(read_submission(NOTEBOOK), exercise, "bench").timings for _ in range(REPEATS)]
    parts = {k: statistics.median(b[k] for b in breakdowns)
             for k in ("kernel_start", "student_cells", "export", "load", "checks", "wall")}
    wall = statistics.median(walls)
    print(f"grader check (fresh process), median of {REPEATS}: {wall:.2f} s")
    print(f"engine wall in-process: {parts['wall']:.2f} s = kernel start {parts['kernel_start']:.2f} + "
          f"student cells {parts['student_cells']:.2f} (torch import included) + export {parts['export']:.2f} + "
          f"load {parts['load']:.3f} + checks {parts['checks']:.3f} + sandbox set-up and teardown")
    print(f"kernel start is {100 * parts['kernel_start'] / wall:.0f}% of the command's wall time; the rest of the "
          f"command is Python start-up and imports ({wall - parts['wall']:.2f} s)")
    path = record("check_wall", {"command_wall_s": walls, "median_command_wall_s": wall, "engine": parts})
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
