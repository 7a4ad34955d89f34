"""Batch wall time for the example class (examples/class.toml, checkerboard exercises) with 1 and 2 workers.

Each run grades every exercise of the class into a fresh gradebook, hidden checks included.
Run: ``make bench`` or ``.venv/bin/python bench/batch_class.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import record

from grader.assignments.catalog import load_assignment
from grader.demo import assemble
from grader.grading.batch import grade_class
from grader.grading.discover import discover
from grader.store.gradebook import Gradebook


def grade_all(workers: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as folder:
        folders = assemble(Path(folder) / "class")
        start, count = time.perf_counter(), 0
        with Gradebook.open(Path(folder) / "gb.sqlite") as gradebook:
            for exercise, path in folders.items():
                assignment = load_assignment(exercise)
                found = discover(path, exercise, assignment.suffixes)
                report = grade_class(found, assignment, gradebook, workers, secret=b"bench")
                count += len(report.graded)
        return time.perf_counter() - start, count


def main() -> int:
    results = {}
    for workers in (1, 2):
        seconds, count = grade_all(workers)
        results[workers] = seconds
        print(f"{workers} worker(s): {count} submissions in {seconds:.1f} s ({seconds / count:.1f} s each)")
    print(f"speed-up with 2 workers: {results[1] / results[2]:.2f}x")
    path = record("batch_class", {"seconds_by_workers": results, "submissions": count})
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
