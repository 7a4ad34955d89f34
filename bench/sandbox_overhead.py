"""What the hardened sandbox costs per submission, against the sandbox before it, measured in one run.

"Before" is the last commit before the hardening (``BASELINE``), extracted with ``git archive`` and
put first on ``PYTHONPATH``; "after" is this checkout. Each grades the same trivial three-cell
notebook (no torch) through the real engine, in a fresh process per tree, alternating, ``--repeats``
submissions each; the figure is the median wall time of one submission (sandbox set-up, kernel,
export, teardown). As root, "after" includes the PID, IPC and mount namespaces, the private
/tmp-like folders, the control group and the tmpfs folders.

Goal: at most 0.3 s more per submission. Run: ``.venv/bin/python bench/sandbox_overhead.py``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
BASELINE = "4702ab0"  # the sandbox as it was before the hardening
OUT = pathlib.Path(os.environ.get("BENCH_OUT", ROOT / "out" / "bench"))
SPEC = """id = "trivial"
title = "Three trivial questions"
[[exports]]
name = "q1"
kind = "number"
[[checks]]
id = "q1"
kind = "defined"
points = 1
[checks.params]
value = "q1"
"""
CELLS = ["q1 = 6 * 7", "q2 = [n + 1 for n in range(3)]", "q3 = {'answer': 'yes'}"]

# Grades the notebook N times in this process and prints each submission's wall time (the engine's own clock).
DRIVER = r"""
import json, pathlib, sys, time
from grader.grading.engine import grade_submission
try:
    from grader.assignments.catalog import load_spec_file
except ImportError:
    from grader.catalog import load_spec_file
try:
    from grader.kernel.notebook import read_submission
except ImportError:
    from grader.notebook import read_submission
spec, notebook, n = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
exercise, submission = load_spec_file(spec), read_submission(notebook)
grade_submission(submission, exercise, "warm-up")  # first run pays for the sandbox probe and imports
walls = []
for _ in range(n):
    start = time.perf_counter()
    result = grade_submission(submission, exercise, "bench")
    walls.append(time.perf_counter() - start)
    assert result.score == 1, result.error
print(json.dumps({"walls": walls, "sandbox": result.sandbox}))
"""


def extract(revision: str, into: pathlib.Path) -> pathlib.Path:
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def run(tree: pathlib.Path, spec: pathlib.Path, notebook: pathlib.Path, n: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", DRIVER, str(spec), str(notebook), str(n)], cwd=tree, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"grading failed in {tree}: {done.stderr[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--repeats", type=int, default=10, help="submissions per tree and round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        folder = pathlib.Path(tmp)
        (folder / "trivial").mkdir()
        (folder / "trivial" / "spec.toml").write_text(SPEC)
        notebook = folder / "trivial.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS]), notebook)
        trees = {"before": extract(args.baseline, folder / "before"), "after": ROOT}
        walls: dict[str, list[float]] = {name: [] for name in trees}
        reports = {}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                measured = run(tree, folder / "trivial" / "spec.toml", notebook, args.repeats)
                walls[name] += measured["walls"]
                reports[name] = measured["sandbox"]
    medians = {name: statistics.median(w) for name, w in walls.items()}
    extra = medians["after"] - medians["before"]
    table = "\n".join([f"| sandbox | median per submission ({len(walls['after'])} submissions) |", "|---|---|",
                       f"| before ({args.baseline}) | {medians['before']:.3f} s |",
                       f"| after (hardened) | {medians['after']:.3f} s |", f"| difference | {extra:+.3f} s |"])
    print(table)
    print("after, what held:", {k: v for k, v in reports["after"].items() if k not in ("rlimits",)})
    met = extra <= 0.3
    print(f"{'met' if met else 'MISSED'}: at most 0.3 s more per submission")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "sandbox_overhead.md").write_text(f"# Sandbox overhead\n\n{table}\n")
    (OUT / "sandbox_overhead.json").write_text(json.dumps({"walls": walls, "medians": medians,
                                                           "reports": reports}, indent=2) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
