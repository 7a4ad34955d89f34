"""20 trivial 3-question notebooks, graded the way environment.md measured the peers on this machine.

The peers' figures (same machine kind, 20 notebooks, one at a time): raw nbclient 17.6 s,
nbgrader autograde 23.3 s, otter grade_submission 85.4 s, otter CLI 175.6 s. This grader runs
each notebook in its sandboxed kernel, exports the answers and checks in its own process that each
is defined with its declared kind.
Run: ``make bench`` or ``.venv/bin/python bench/peers_trivial.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from common import record

PEERS = {"raw nbclient": 17.6, "nbgrader autograde": 23.3, "otter grade_submission": 85.4, "otter run CLI": 175.6}
SPEC = """id = "trivial"
title = "Three trivial questions"
[[exports]]
name = "q1"
kind = "number"
[[exports]]
name = "q2"
kind = "list"
[[exports]]
name = "q3"
kind = "dict"
[[checks]]
id = "q1"
kind = "defined"
points = 1
params = { value = "q1" }
[[checks]]
id = "q2"
kind = "defined"
points = 1
params = { value = "q2" }
[[checks]]
id = "q3"
kind = "defined"
points = 1
params = { value = "q3" }
"""
CELLS = ["q1 = 6 * 7", "q2 = [n + 1 for n in range(3)]", "q3 = {'answer': 'yes'}"]


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "exercises" / "trivial").mkdir(parents=True)
        (root / "exercises" / "trivial" / "spec.toml").write_text(SPEC)
        (root / "exercises" / "trivial" / "trivial.ipynb").write_text("{}")
        os.environ["GRADER_EXERCISES"] = str(root / "exercises")
        from grader.assignments.catalog import load_exercise
        from grader.grading.batch import grade_class
        from grader.grading.discover import discover
        from grader.store.gradebook import Gradebook

        submissions = root / "class"
        submissions.mkdir()
        for i in range(20):
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
            nbformat.write(nb, submissions / f"student{i:02d}.ipynb")
        timings = {}
        for workers in (1, 2):
            with Gradebook.open(root / f"gb{workers}.sqlite") as gradebook:
                start = time.perf_counter()
                report = grade_class(discover(submissions, "trivial"), load_exercise("trivial"), gradebook, workers)
                timings[workers] = time.perf_counter() - start
                assert all(r.score == 3 for r in report.graded), [r.error for r in report.graded]
    for name, seconds in PEERS.items():
        print(f"{name:28}{seconds:7.1f} s   (environment.md)")
    for workers, seconds in timings.items():
        print(f"{'this grader, ' + str(workers) + ' worker(s)':28}{seconds:7.1f} s")
    path = record("peers_trivial", {"this_grader_s": timings, "peers_s": PEERS, "notebooks": 20})
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
