"""`grader check` on the tiny-model solution, warm against the fresh-launch path, in one run.

Three figures, each measured here and now on this machine:

1. the command's wall time (a new process each time, as a student runs it), in turns: with the
   warm server (its first run starts it, and is shown apart), cold with the server off
   (``GRADER_WARM_SERVER=0``: one check starts its kernel fresh, sooner than a factory warms up),
   and the fresh-launch path (``--no-factory``); median of ``--repeats``; goal: warm at most 0.5x
   fresh;
2. a ``--watch`` re-check: from the save to the result, and to the table and page written, against
   the student's own cells in that kernel (the engine's clock) and in a fresh one (the fresh-launch
   run's clock: what running them in Jupyter after a restart costs); goal: at most 1.3x, each re-check
   against its own save's cells (the median and the worst of the saves are printed). Each save
   edits a comment, so the model's code stays the same and its capture of the save before is reused
   (``grader.grading.captures``); a second series edits the model's ``forward`` at each save, so
   every save's model is captured anew: by a second kernel beside the run where a core is free
   (``grader.grading.speculation``), and in a third series by the export itself, with that kernel
   off. The same for a heavier exercise (random-seeds: about a second of cells, several models),
   with where the time beyond the cells goes;
3. memory: the proportional set size (PSS) of a kernel after ``import torch``, forked from the
   factory against started fresh (shared pages are what the factory is for).

Run: ``make bench`` or ``.venv/bin/python bench/check_wall.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import nbformat
from common import record

from grader import warm_server
from grader.assignments.catalog import load_exercise, load_spec_file
from grader.commands.check import _report
from grader.grading.captures import CaptureCache
from grader.grading.engine import run_notebook
from grader.grading.watch import watch_notebook
from grader.kernel.factory import FactoryHandle, start_factory
from grader.kernel.notebook import read_submission

NOTEBOOK = pathlib.Path("reference/notebooks/tiny-model.ipynb")
HEAVIER = "random-seeds"  # a watch re-check on cells of about a second, with several models to export
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


HOW = {"warm": ({}, []), "cold": ({warm_server.ENV: "0"}, []), "fresh": ({}, ["--no-factory"])}


def command_walls(folder: pathlib.Path, repeats: int) -> tuple[dict[str, list[float]], float, float]:
    """Each way's wall times; the warm server's first run (it starts the server); the fresh runs' student cells."""
    runtime = folder / "run"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), warm_server.ENV: "600"}  # a server of this bench's own
    walls: dict[str, list[float]] = {how: [] for how in HOW}
    fresh_cells: list[float] = []
    first = 0.0
    try:
        for turn in range(repeats + 1):
            for how, (extra, flags) in HOW.items():
                start = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "grader", "check", str(NOTEBOOK), "--json", "--html",
                                       str(folder / "f.html"), *flags], capture_output=True, env={**env, **extra})
                wall = time.perf_counter() - start
                assert done.returncode == 0, done.stdout.decode()[-800:] + done.stderr.decode()[-800:]
                if how == "warm" and turn == 0:
                    first = wall
                elif turn or how != "warm":
                    walls[how].append(wall)
                if how == "fresh":
                    fresh_cells.append(json.loads(done.stdout)["timings"]["student_cells"])
    finally:
        warm_server.stop_servers(runtime)
    return walls, first, statistics.median(fresh_cells)


def _edit_comment(nb, save: int) -> None:
    nb.cells[-1].source += f"\n# saved {save}"


def _edit_forward(nb, save: int) -> None:
    """A new ``forward`` at each save, computing the same: the model's code changed, so it is captured anew."""
    cell = next(c for c in nb.cells if "return self.net(x)" in c.source)
    cell.source = cell.source.replace("return self.net(x)", f"unchanged_{save} = 1.0\n        return self.net(x) * "
                                      f"unchanged_{save}", 1)


def watch_rechecks(folder: pathlib.Path, saves: int, exercise_id: str = "tiny-model",
                   edit: Callable = _edit_comment, beside: bool = True) -> list[dict]:
    """Each re-check after a save that ``edit`` makes: from the save to the result, and to the table and page.

    ``beside``: whether a second kernel may capture the save's model while it trains (``CaptureCache.beside``).
    """
    notebook = folder / f"watched-{exercise_id}.ipynb"
    shutil.copy(NOTEBOOK.with_name(f"{exercise_id}.ipynb"), notebook)
    exercise = load_exercise(exercise_id)
    args = argparse.Namespace(json=False, html=folder / "watched.html", notebook=notebook)
    results, stop = [], threading.Event()

    def shown(result) -> None:  # what `grader check --watch` does with each result: the table and the page
        came = time.monotonic()
        with contextlib.redirect_stdout(io.StringIO()):
            _report(args, result, exercise.title)
        results.append((result, came, time.monotonic()))

    with start_factory() as factory:
        thread = threading.Thread(target=watch_notebook, args=(notebook, exercise, factory.handle, shown, stop),
                                  kwargs={"captures": CaptureCache(beside=beside)}, daemon=True)
        thread.start()
        saved = []
        for save in range(saves + 1):
            while len(results) < save + 1:
                time.sleep(0.01)
            if save < saves:
                time.sleep(0.5)  # the student edits; the next kernel starts meanwhile
                nb = nbformat.read(NOTEBOOK.with_name(f"{exercise_id}.ipynb") if edit is _edit_forward else notebook,
                                   as_version=4)
                edit(nb, save)
                # As Jupyter saves: the whole file written beside it, then renamed over it (never seen half-written).
                nbformat.write(nb, notebook.with_suffix(".saving"))
                os.replace(notebook.with_suffix(".saving"), notebook)
                saved.append(time.monotonic())
        stop.set()
        thread.join()
    return [{"to_result": came - at, "to_page": written - at, "student_cells": r.timings["student_cells"],
             "export": r.timings["export"], "load": r.timings["load"], "checks": r.timings["checks"],
             "kernel_start": r.sandbox.get("kernel_start"), "captures": r.sandbox.get("captures")}
            for (r, came, written), at in zip(results[1:], saved)]


def _watch_medians(rechecks: list[dict]) -> dict[str, float]:
    """The medians of one exercise's re-checks, with the time beyond the student's cells that no stage names."""
    median = {key: statistics.median(r[key] for r in rechecks)
              for key in ("to_result", "to_page", "student_cells", "export", "load", "checks")}
    median["rest"] = median["to_result"] - sum(median[k] for k in ("student_cells", "export", "load", "checks"))
    # Each re-check against its own save's cells: how fast the cells ran varies from save to save (0.20-0.28 s for
    # the same tiny-model cells), and a ratio of the two medians would pair one save's result with another's cells.
    ratios = [r["to_result"] / r["student_cells"] for r in rechecks]
    median["ratio"], median["worst"] = statistics.median(ratios), max(ratios)
    median["ratio_of_medians"] = median["to_result"] / median["student_cells"]
    return median


def _watch_line(exercise_id: str, median: dict[str, float]) -> str:
    cells = median["student_cells"]
    return (f"  {exercise_id:13s} result {median['to_result']:.2f} s, page {median['to_page']:.2f} s; cells "
            f"{cells:.2f} s -> {median['ratio']:.2f}x, at worst {median['worst']:.2f}x "
            f"(page {median['to_page'] / cells:.2f}x)"
            f"; beyond the cells: export {median['export']:.3f}, load {median['load']:.3f}, checks "
            f"{median['checks']:.3f}, the rest {median['rest']:.3f} s (the save seen, the kernel stopped)")


def _capturer(rechecks: list[dict]) -> str:
    """Who captured the saves' models: the second kernel in how many of them (its capture is named in the report)."""
    beside = sum("beside" in (r["captures"] or "") for r in rechecks)
    return f"the second kernel in {beside} of {len(rechecks)} saves, the export in the rest"


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
    parser.add_argument("--saves", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        walls, first, fresh_cells = command_walls(folder, args.repeats)
        rechecks = watch_rechecks(folder, args.saves)
        new_forward = watch_rechecks(folder, args.saves, edit=_edit_forward)
        in_export = watch_rechecks(folder, args.saves, edit=_edit_forward, beside=False)
        heavier = watch_rechecks(folder, args.saves, HEAVIER)
        memory = kernel_memory(folder)
    median = {how: statistics.median(times) for how, times in walls.items()}
    ratio = median["warm"] / median["fresh"]
    tiny, heavy, changed = _watch_medians(rechecks), _watch_medians(heavier), _watch_medians(new_forward)
    alone = _watch_medians(in_export)
    result, page, cells = tiny["to_result"], tiny["to_page"], tiny["student_cells"]
    print(f"grader check, tiny-model solution, median of {args.repeats} (in turns):")
    print(f"  warm server    {median['warm']:6.2f} s   ratio {ratio:.2f}x (goal <= 0.5x); its first run, which "
          f"starts the server: {first:.2f} s")
    print(f"  server off     {median['cold']:6.2f} s   ratio {median['cold'] / median['fresh']:.2f}x")
    print(f"  fresh launch   {median['fresh']:6.2f} s")
    print(f"watch re-check after a save, {len(rechecks)} saves (medians): result {result:.2f} s, table and page "
          f"{page:.2f} s; the student's cells {cells:.2f} s in the forked kernel, {fresh_cells:.2f} s in a fresh one")
    print(f"  result / cells in that kernel, save by save: median {tiny['ratio']:.2f}x, at worst {tiny['worst']:.2f}x "
          f"(goal <= 1.3x; the medians' own ratio {tiny['ratio_of_medians']:.2f}x); page / cells {page / cells:.2f}x; "
          f"result / cells in a fresh kernel {result / fresh_cells:.2f}x")
    print("  each exercise's re-checks (medians):")
    print(_watch_line("tiny-model", tiny))
    print(_watch_line(HEAVIER, heavy))
    print("  each save changing the model's forward (captured anew):")
    print(_watch_line("tiny-model", changed) + f"; captured by {_capturer(new_forward)}")
    print("  the same saves with the second kernel off (each model captured by the export):")
    print(_watch_line("tiny-model", alone))
    print("kernel memory after import torch (MB):")
    for how in ("forked", "fresh"):
        print(f"  {how:7s} " + "  ".join(f"{k} {v}" for k, v in memory[how].items()))
    print(f"  the factory's own parent: RSS {memory['factory parent RSS']['Rss']} MB, shared by every forked kernel")
    path = record("check_wall", {"command_wall_s": walls, "first_warm_s": first, "median_s": median,
                                 "ratio": ratio, "watch_rechecks": rechecks, f"watch_rechecks_{HEAVIER}": heavier,
                                 f"watch_ratio_{HEAVIER}": heavy["ratio"], "fresh_student_cells_s": fresh_cells,
                                 "watch_ratio_median": tiny["ratio"], "watch_ratio_worst": tiny["worst"],
                                 "watch_ratio_of_medians": tiny["ratio_of_medians"],
                                 "watch_rechecks_new_forward": new_forward,
                                 "watch_ratio_new_forward": changed["ratio"], "watch_rechecks_new_forward_alone":
                                 in_export, "watch_ratio_new_forward_alone": alone["ratio"],
                                 "kernel_memory_mb": memory})
    print(f"written {path}")
    print(json.dumps({"ratio": round(ratio, 2), "watch": round(tiny["ratio"], 2),
                      "watch_new_forward": round(changed["ratio"], 2),
                      "watch_new_forward_alone": round(alone["ratio"], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
