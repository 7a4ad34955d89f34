"""Start-up of the grader's commands, before and after the layered layout, measured in one run.

The "before" tree is the last commit of the flat layout (``BASELINE``), extracted with
``git archive`` into a temporary folder and put first on ``PYTHONPATH``; "after" is this
checkout. Both run on the same interpreter and packages, alternating, and each figure is
the median of ``--repeats`` fresh processes:

- ``grader --help``, ``grader exercises`` and ``grader quiz check``: wall time of the process;
- ``grader check`` on the tiny-model solution: the command's own start-up, i.e. its wall time
  minus the time spent inside the kernel (``execute``: kernel start, the student's cells and
  the export), which is the same work in both trees.

Goals: ``--help`` and ``quiz check`` under 0.6 s; ``check``'s own start-up at least 2 s shorter.
Run: ``.venv/bin/python bench/startup.py`` (about 3 minutes).
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
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BASELINE = "c0f6d34"  # the flat layout, as it landed before the layered one
OUT = pathlib.Path(os.environ.get("BENCH_OUT", ROOT / "out" / "bench"))
QUIZ = "tests/files/quizzes/perfect.toml"
NOTEBOOK = "reference/notebooks/tiny-model.ipynb"

# Runs ``grader check`` in-process, timing the kernel part (execute) wherever the tree keeps it.
CHECK_DRIVER = r"""
import time
T0 = time.perf_counter()
import contextlib, importlib, io, json, sys
# The flat layout's name first: the editable install would answer a name the old tree lacks from this checkout.
for name in ("grader.execute", "grader.kernel.execute"):
    try:
        module = importlib.import_module(name)
        break
    except ImportError:
        continue
inner, spent = module.execute, []
def timed(*args, **kwargs):
    start = time.perf_counter()
    try:
        return inner(*args, **kwargs)
    finally:
        spent.append(time.perf_counter() - start)
module.execute = timed
from grader.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "total": time.perf_counter() - T0, "kernel": sum(spent)}), file=sys.stderr)
"""


def extract(revision: str, into: pathlib.Path) -> pathlib.Path:
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def env_for(tree: pathlib.Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "GRADER_EXERCISES": str(tree / "exercises"),
            "GRADER_TEMPLATES": str(tree / "templates")}


def wall(tree: pathlib.Path, args: list[str]) -> float:
    code = "import sys\nfrom grader.cli import main\ntry:\n    sys.exit(main(sys.argv[1:]))\nexcept SystemExit as e:\n" \
           "    sys.exit(e.code)\n"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=tree, env=env_for(tree), capture_output=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed in {tree}: {done.stderr.decode()[-800:]}")
    return seconds


def check_startup(tree: pathlib.Path, html: pathlib.Path) -> tuple[float, float]:
    """(the command's wall time, the part of it outside the kernel)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHECK_DRIVER, "check", NOTEBOOK, "--html", str(html)], cwd=tree,
                          env=env_for(tree), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    report = json.loads(done.stderr.strip().splitlines()[-1])
    if report["code"] != 0:
        raise RuntimeError(f"grader check failed in {tree}: {done.stderr[-800:]}")
    return seconds, seconds - report["kernel"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help=f"the revision to compare with (default {BASELINE})")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    commands = {"grader --help": ["--help"], "grader exercises": ["exercises"],
                "grader quiz check": ["quiz", "check", QUIZ, "--quiz", "convergence", "--html", "{tmp}/q.html"]}
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        trees = {"before": extract(args.baseline, pathlib.Path(tmp) / "before"), "after": ROOT}
        times: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
        for _ in range(args.repeats):
            for name, tree in trees.items():  # alternating, so drifts in machine load hit both alike
                for label, command in commands.items():
                    times[name].setdefault(label, []).append(wall(tree, [a.replace("{tmp}", tmp) for a in command]))
        for _ in range(max(3, args.repeats // 2)):
            for name, tree in trees.items():
                total, own = check_startup(tree, pathlib.Path(tmp) / f"{name}.html")
                times[name].setdefault("grader check (wall)", []).append(total)
                times[name].setdefault("grader check (own start-up)", []).append(own)
    medians = {name: {label: statistics.median(v) for label, v in rows.items()} for name, rows in times.items()}
    lines = [f"| command | before ({args.baseline}) | after | change |", "|---|---|---|---|"]
    for label in medians["after"]:
        before, after = medians["before"][label], medians["after"][label]
        lines.append(f"| {label} | {before:.2f} s | {after:.2f} s | {after - before:+.2f} s |")
    table = "\n".join(lines)
    print(table)
    goals = {"grader --help under 0.6 s": medians["after"]["grader --help"] < 0.6,
             "grader quiz check under 0.6 s": medians["after"]["grader quiz check"] < 0.6,
             "grader check's own start-up at least 2 s shorter":
                 medians["before"]["grader check (own start-up)"] - medians["after"]["grader check (own start-up)"] >= 2}
    for goal, met in goals.items():
        print(f"{'met' if met else 'MISSED'}: {goal}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "startup.md").write_text(f"# Start-up, median of {args.repeats} runs\n\n{table}\n")
    (OUT / "startup.json").write_text(json.dumps({"baseline": args.baseline, "runs": times, "medians": medians},
                                                 indent=2) + "\n")
    print(f"written {OUT / 'startup.md'}")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
