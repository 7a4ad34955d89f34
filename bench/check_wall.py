"""`grader check` on the tiny-model solution with the warm kernel factory against a fresh launch, in one run.

Three figures, each measured here and now on this machine:

1. the command's wall time (a fresh process, as a student runs it), the factory on against
   ``--no-factory``, alternating, median of ``--repeats``; goal: at most 0.5x;
2. a ``--watch`` re-check after a save, against the time of the student's own cells in that run
   (the engine's clock); goal: at most 1.3x;
3. memory: the proportional set size (PSS) of a kernel after ``import torch``, forked from the
   factory against started fresh (shared pages are what the factory is for).

Run: ``make bench`` or ``.venv/bin/python bench/check_wall.py``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import nbformat
from common import record

from grader.assignments.catalog import load_exercise, load_spec_file
from grader.grading.engine import run_notebook
from grader.grading.watch import watch_notebook
from grader.kernel.factory import FactoryHandle, start_factory
from grader.kernel.notebook import read_submission

NOTEBOOK = pathlib.Path("reference/notebooks/tiny-model.ipynb")
PSS_SPEC = """id = "pss"
title = "Memory of one kernel"
[[exports]]
name = "memory"
kind = "dict"
[[checks]]
id = "memory"
kind = "defined"
points = 1
[checks.params]
value = "memory"
"""
PSS_CELL = """import torch
rollup = dict(line.split(":", 1) for line in open("/proc/self/smaps_rollup") if ":" in line)
memory = {key: int(rollup[key].split()[0]) // 1024 for key in ("Rss", "Pss", "Shared_Clean", "Private_Dirty")}
"""


def command_walls(folder: pathlib.Path, repeats: int) -> dict[str, list[float]]:
    walls: dict[str, list[float]] = {"factory": [], "fresh": []}
    for _ in range(repeats):
        for how, extra in (("factory", []), ("fresh", ["--no-factory"])):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "grader", "check", str(NOTEBOOK), "--html",
                                   str(folder / "f.html"), *extra], capture_output=True)
            walls[how].append(time.perf_counter() - start)
            assert done.returncode == 0, done.stdout.decode()[-800:] + done.stderr.decode()[-800:]
    return walls


def watch_rechecks(folder: pathlib.Path, saves: int) -> list[dict]:
    """Each re-check's wall time and its student cells' time, after a save that changes one cell."""
    notebook = folder / "watched.ipynb"
    shutil.copy(NOTEBOOK, notebook)
    exercise = load_exercise("tiny-model")
    results, stop = [], threading.Event()
    with start_factory() as factory:
        thread = threading.Thread(target=watch_notebook, args=(notebook, exercise, factory.handle, results.append,
                                                                stop), daemon=True)
        thread.start()
        for save in range(saves + 1):
            while len(results) < save + 1:
                time.sleep(0.05)
            if save < saves:
                nb = nbformat.read(notebook, as_version=4)
                nb.cells[-1].source += f"\n# saved {save}"
                nbformat.write(nb, notebook)
        stop.set()
        thread.join()
    return [{"wall": r.timings["wall"], "student_cells": r.timings["student_cells"],
             "kernel_start": r.sandbox.get("kernel_start")} for r in results[1:]]


def kernel_memory(folder: pathlib.Path) -> dict[str, dict]:
    (folder / "pss").mkdir()
    (folder / "pss" / "spec.toml").write_text(PSS_SPEC)
    spec = load_spec_file(folder / "pss" / "spec.toml")
    path = folder / "pss.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PSS_CELL)]), path)
    memory = {}
    with start_factory() as factory:
        for how, handle in (("forked", factory.handle), ("fresh", FactoryHandle(None, "measured fresh"))):
            run = run_notebook(read_submission(path), spec, factory=handle)
            memory[how] = run.exports.values["memory"]
        memory["factory parent RSS"] = {"Rss": _rss_mb(factory.process.pid)}
    return memory


def _rss_mb(pid: int) -> int:
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) // 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--saves", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        walls = command_walls(folder, args.repeats)
        rechecks = watch_rechecks(folder, args.saves)
        memory = kernel_memory(folder)
    factory, fresh = statistics.median(walls["factory"]), statistics.median(walls["fresh"])
    ratios = [r["wall"] / r["student_cells"] for r in rechecks]
    print(f"grader check, tiny-model solution, median of {args.repeats} (alternating):")
    print(f"  warm factory  {factory:6.2f} s")
    print(f"  fresh launch  {fresh:6.2f} s   ratio {factory / fresh:.2f}x (goal <= 0.5x)")
    print(f"watch re-check after a save, {len(rechecks)} saves: wall "
          f"{statistics.median(r['wall'] for r in rechecks):.2f} s against the student's cells "
          f"{statistics.median(r['student_cells'] for r in rechecks):.2f} s: "
          f"{statistics.median(ratios):.2f}x (goal <= 1.3x)")
    print("kernel memory after import torch (MB):")
    for how in ("forked", "fresh"):
        print(f"  {how:7s} " + "  ".join(f"{k} {v}" for k, v in memory[how].items()))
    print(f"  the factory's own parent: RSS {memory['factory parent RSS']['Rss']} MB, shared by every forked kernel")
    path = record("check_wall", {"command_wall_s": walls, "median_factory_s": factory, "median_fresh_s": fresh,
                                 "ratio": factory / fresh, "watch_rechecks": rechecks,
                                 "watch_ratio_median": statistics.median(ratios), "kernel_memory_mb": memory})
    print(f"written {path}")
    print(json.dumps({"ratio": round(factory / fresh, 2), "watch": round(statistics.median(ratios), 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
