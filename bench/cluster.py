"""What grading on a dask cluster costs per task, and how well it keeps 2 workers busy, measured in one run.

1. Per-task overhead: 10 trivial notebooks (``probe = {'ok': 1}``) on a 1-worker LocalCluster (one thread, worker
   processes, ``worker-saturation`` 1.0 as the grader starts it), with ``grade_class(..., cluster=...)``. The tasks
   run one after another on the one worker. A task's overhead is its share of the worker's time beyond grading:
   from the end of the previous task to the end of this one (dask's task stream), minus the worker's own grading
   time (``result.timings["wall"]``); split into the gap between two tasks (the scheduler's round trip) and the
   time around ``grade_submission`` inside the task. The client sees each result later still (its poll, the
   result's transfer, the gradebook's commit): that latency is given apart, and so is the client's own view, the
   interval between two results reaching ``on_result`` minus the grading time (it jitters by the batch's poll
   period). The first task pays the worker's first imports: it is shown apart (from the batch's plan to its
   result). The same 10 notebooks on the local process pool with 1 worker, for comparison.
2. Idle time per worker: 20 notebooks that sleep 1 to 12 s (114 s in all, in a mixed order) on a 2-worker
   LocalCluster, twice into one gradebook: (a) a fresh gradebook, so that the jobs go in folder order, then
   (b) ``regrade=True``, so that ``longest_first`` orders them by the durations (a) stored. From the task stream:
   the makespan (first task start to last task end: cluster start-up is not in it), each worker's busy time
   (its tasks' compute time) and idle time (makespan minus busy), against the makespan of the longest-first (LPT)
   schedule of the same measured task durations on 2 workers.

Goals, for run (b): each worker idle at most the longest single task of that run, and the makespan within 1.15x
the ideal. Exit 1 when missed. Writes out/bench/cluster.md and out/bench/cluster.json.
Run: ``make bench`` or ``.venv/bin/python bench/cluster.py``.
"""

from __future__ import annotations

import os
import pathlib
import random
import statistics
import sys
import tempfile
import time

import nbformat
from common import OUT, record

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from grading_support import one_value_spec

TRIVIAL, SLEEPY = "bench-trivial", "bench-sleep"
N_TRIVIAL = 10
SLEEPS = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 10, 11, 12]  # 114 s in all
IDLE_GOAL = "each worker idle <= the longest single task"
RATIO_GOAL = 1.15


def _notebook(path: pathlib.Path, *cells: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)


def make_exercises(root: pathlib.Path) -> None:
    """Two throwaway exercises, known to the client only (the tasks carry their spec)."""
    for name in (TRIVIAL, SLEEPY):
        (root / name).mkdir(parents=True)
        (root / name / "spec.toml").write_text(one_value_spec(name, cell_timeout_s=60, total_timeout_s=90))
    os.environ["GRADER_EXERCISES"] = str(root)


def make_classes(folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path, dict[str, int]]:
    trivial = folder / "trivial"
    for i in range(N_TRIVIAL):
        _notebook(trivial / f"s{i:02d}.ipynb", "probe = {'ok': 1}")
    sleepy, sleeps = folder / "sleepy", list(SLEEPS)
    random.Random(16).shuffle(sleeps)  # a fixed mixed order: the folder order is not longest first
    by_student = {f"s{i:02d}": s for i, s in enumerate(sleeps)}
    for student, seconds in by_student.items():
        _notebook(sleepy / f"{student}.ipynb", f"import time; time.sleep({seconds})", "probe = {'ok': 1}")
    return trivial, sleepy, by_student


class Batch:
    """One grade_class call: when it planned, each result and when it reached the client (time.time())."""

    def __init__(self):
        self.planned = 0.0
        self.arrivals: list[tuple[float, object]] = []

    def on_plan(self, todo, skipped):
        self.planned = time.time()

    def on_result(self, result):
        self.arrivals.append((time.time(), result))


def grade(folder: pathlib.Path, exercise: str, book: pathlib.Path, workers: int = 1, session=None,
          regrade: bool = False) -> tuple[Batch, object]:
    from grader.assignments.catalog import load_assignment
    from grader.grading.batch import grade_class
    from grader.grading.discover import discover
    from grader.store.gradebook import Gradebook

    batch = Batch()
    with Gradebook.open(book) as gradebook:
        report = grade_class(discover(folder, exercise), load_assignment(exercise), gradebook, workers,
                             regrade=regrade, on_plan=batch.on_plan, on_result=batch.on_result, cluster=session)
    bad = [r for r in report.graded if r.score != 1] + report.not_graded
    if bad or len(report.graded) != len(batch.arrivals):
        raise SystemExit(f"the bench's notebooks did not all grade: {bad}")
    return batch, report


def new_tasks(client, seen: set) -> list[dict]:
    """The task stream's records of grading tasks not seen before: key, worker, compute start and stop."""
    tasks = []
    for entry in client.get_task_stream(start=0):
        key = str(entry["key"])
        if key in seen or not key.startswith("grade-"):
            continue
        seen.add(key)
        compute = [s for s in entry["startstops"] if s["action"] == "compute"]
        if compute:
            tasks.append({"key": key, "worker": entry["worker"], "start": compute[0]["start"],
                          "stop": compute[-1]["stop"]})
    return sorted(tasks, key=lambda t: t["start"])


def match(tasks: list[dict], batch: Batch) -> list[tuple[dict, object, float]]:
    """(task, result, arrival) for each task: per worker, tasks run one at a time and reach the client in order."""
    pairs = []
    for worker in {t["worker"] for t in tasks}:
        mine = sorted((t for t in tasks if t["worker"] == worker), key=lambda t: t["stop"])
        arrived = [(at, r) for at, r in batch.arrivals if r.sandbox.get("worker") == worker]
        if len(mine) != len(arrived):
            raise SystemExit(f"worker {worker}: {len(mine)} tasks in the stream, {len(arrived)} results")
        pairs += [(t, r, at) for t, (at, r) in zip(mine, arrived, strict=True)]
    return sorted(pairs, key=lambda p: p[0]["start"])


def lpt(durations: list[float], workers: int) -> float:
    """The makespan of the longest-processing-time-first schedule."""
    loads = [0.0] * workers
    for d in sorted(durations, reverse=True):
        loads[loads.index(min(loads))] += d
    return max(loads)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def local_cluster(workers: int):
    """The cluster `grader grade --cluster local` starts, with its kernel factory on each worker."""
    from grader.grading.cluster_batch import connect
    from grader.specs.config import ClusterSettings

    return connect("local", workers, ClusterSettings(dashboard=""))


def overhead(trivial: pathlib.Path, tmp: pathlib.Path) -> dict:

    with local_cluster(1) as session:
        client = session.client
        client.get_task_stream(start=0, stop=0)  # starts the scheduler's task-stream plugin
        batch, report = grade(trivial, TRIVIAL, tmp / "overhead-cluster.sqlite", session=session)
        tasks = new_tasks(client, set())
    pairs = match(tasks, batch)
    walls = [r.timings["wall"] for _, r, _ in pairs]
    stops = [t["stop"] for t, _, _ in pairs]
    arrivals = [at for _, _, at in pairs]
    # The worker's time per task beyond grading: previous task's end to this one's end, minus the grading time.
    cycle = [stops[k] - stops[k - 1] - walls[k] for k in range(1, len(pairs))]
    gaps = [pairs[k][0]["start"] - stops[k - 1] for k in range(1, len(pairs))]  # between two tasks
    around = [t["stop"] - t["start"] - r.timings["wall"] for t, r, _ in pairs[1:]]  # in the task, around grading
    latency = [at - stop for at, stop in zip(arrivals, stops, strict=True)]  # task end to the client's on_result
    client_over = [arrivals[k] - arrivals[k - 1] - walls[k] for k in range(1, len(pairs))]
    first = arrivals[0] - batch.planned - walls[0]
    local_batch, local = grade(trivial, TRIVIAL, tmp / "overhead-local.sqlite", workers=1)
    local_at = [at for at, _ in local_batch.arrivals]
    local_walls = [r.timings["wall"] for _, r in local_batch.arrivals]
    local_over = [local_at[k] - local_at[k - 1] - local_walls[k] for k in range(1, len(local_at))]
    return {
        "cluster_overhead_s": cycle, "cluster_gap_between_tasks_s": gaps, "cluster_around_grading_s": around,
        "cluster_result_latency_s": latency, "cluster_client_overhead_s": client_over,
        "cluster_first_task_overhead_s": first, "cluster_walls_s": walls,
        "cluster_batch_s": report.seconds, "local_batch_s": local.seconds, "local_walls_s": local_walls,
        "local_client_overhead_s": local_over,
        "cluster_kernel_start": sorted({r.sandbox.get("kernel_start", "?") for r in report.graded}),
        "local_kernel_start": sorted({r.sandbox.get("kernel_start", "?") for r in local.graded}),
    }


def schedule(tasks: list[dict], pairs, sleeps: dict[str, int], report) -> dict:
    start, end = min(t["start"] for t in tasks), max(t["stop"] for t in tasks)
    makespan = end - start
    durations = [t["stop"] - t["start"] for t in tasks]
    workers = {}
    for worker in sorted({t["worker"] for t in tasks}):
        mine = [t for t in tasks if t["worker"] == worker]
        busy = sum(t["stop"] - t["start"] for t in mine)
        workers[worker] = {"tasks": len(mine), "busy_s": busy, "idle_s": makespan - busy,
                           "first_start_s": min(t["start"] for t in mine) - start,
                           "last_stop_s": max(t["stop"] for t in mine) - start}
    ideal = lpt(durations, 2)
    return {"makespan_s": makespan, "ideal_s": ideal, "ratio": makespan / ideal, "longest_task_s": max(durations),
            "sum_s": sum(durations), "workers": workers, "batch_s": report.seconds,
            "order_sleeps": [sleeps[r.student] for _, r, _ in pairs],  # in the order the tasks started
            "task_durations_s": durations}


def idle_runs(sleepy: pathlib.Path, sleeps: dict[str, int], tmp: pathlib.Path) -> tuple[dict, list[int]]:

    from grader.assignments.catalog import load_assignment
    from grader.grading.cluster_batch import longest_first
    from grader.grading.jobs import Job
    from grader.store.gradebook import Gradebook

    book, seen, runs, expected = tmp / "idle.sqlite", set(), {}, []
    with local_cluster(2) as session:
        client = session.client
        client.wait_for_workers(2)
        client.get_task_stream(start=0, stop=0)
        for name, regrade in (("a", False), ("b", True)):
            if regrade:  # the order the grader is to submit (b) in, from what (a) stored
                with Gradebook.open(book) as gradebook:
                    durations = gradebook.durations(SLEEPY)
                jobs = [Job(s, None, SLEEPY) for s in sorted(sleeps)]
                limit = load_assignment(SLEEPY).spec.limits.total_timeout_s
                expected = [sleeps[job.student] for job in longest_first(jobs, durations, limit)]
            batch, report = grade(sleepy, SLEEPY, book, session=session, regrade=regrade)
            tasks = new_tasks(client, seen)
            runs[name] = schedule(tasks, match(tasks, batch), sleeps, report)
    return runs, expected


def table(over: dict, runs: dict, expected: list[int]) -> tuple[str, list[str]]:
    n = N_TRIVIAL

    def row(what: str, values: list[float]) -> str:
        return f"| {what} | {ms(statistics.median(values))} | {ms(max(values))} |"

    lines = [
        f"## 1. Per-task overhead, {n} trivial notebooks, 1 worker (tasks 2 to {n})",
        "",
        ("Overhead of a task = the worker's time from the end of the previous task to the end of this one (dask's "
         "task stream) minus the task's grading time (`timings[\"wall\"]`): what each task costs beyond grading."),
        "",
        "| what | median ms | max ms |",
        "|---|---|---|",
        row("**cluster: overhead per task**", over["cluster_overhead_s"]),
        row("- between two tasks on the worker (scheduler round trip)", over["cluster_gap_between_tasks_s"]),
        row("- in the task, around grade_submission", over["cluster_around_grading_s"]),
        row("cluster: task end to the client's on_result (poll, transfer, commit)", over["cluster_result_latency_s"]),
        row("cluster: client's view, interval between two results minus grading (+-0.2 s poll jitter)",
            over["cluster_client_overhead_s"]),
        row("local pool, 1 worker: client's view, the same", over["local_client_overhead_s"]),
        (f"| cluster: first task, from the batch's plan to its result, minus grading | "
         f"{ms(over['cluster_first_task_overhead_s'])} | |"),
        "",
        "| | s per notebook (batch / n) | median grading time (wall) s | kernel |",
        "|---|---|---|---|",
        (f"| cluster, 1 worker | {over['cluster_batch_s'] / n:.2f} | "
         f"{statistics.median(over['cluster_walls_s']):.2f} | {', '.join(over['cluster_kernel_start'])} |"),
        (f"| local pool, 1 worker | {over['local_batch_s'] / n:.2f} | "
         f"{statistics.median(over['local_walls_s']):.2f} | {', '.join(over['local_kernel_start'])} |"),
        "",
        (f"## 2. Idle time, {len(SLEEPS)} notebooks sleeping {min(SLEEPS)}-{max(SLEEPS)} s ({sum(SLEEPS)} s), "
         "2 workers"),
        "",
        ("Makespan: first task start to last task end (task stream). Ideal: the longest-first (LPT) schedule of "
         "the same measured task durations on 2 workers. (a) fresh gradebook (folder order); (b) --regrade, "
         "ordered by (a)'s durations."),
        "",
        "| run | makespan s | ideal s | makespan / ideal | longest task s | worker | tasks | busy s | idle s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        for i, (worker, w) in enumerate(run["workers"].items()):
            head = (f"| {name} | {run['makespan_s']:.1f} | {run['ideal_s']:.1f} | {run['ratio']:.3f} | "
                    f"{run['longest_task_s']:.1f}") if i == 0 else "| | | | |"
            lines.append(f"{head} | {worker} | {w['tasks']} | {w['busy_s']:.1f} | {w['idle_s']:.1f} |")
    lines += ["", "Start order (seconds each notebook sleeps, in the order the tasks started):", ""]
    lines += [f"- ({name}) {' '.join(map(str, run['order_sleeps']))}" for name, run in runs.items()]
    lines.append(f"- (b), the order longest_first gave them (by (a)'s durations): {' '.join(map(str, expected))}")
    b = runs["b"]
    out_of_order = sum(1 for got, want in zip(b["order_sleeps"], expected, strict=True) if got != want)
    lines.append(f"- (b) started {out_of_order} of {len(expected)} tasks at another place than longest_first's")
    idle_ok = all(w["idle_s"] <= b["longest_task_s"] for w in b["workers"].values())
    ratio_ok = b["ratio"] <= RATIO_GOAL
    goals = [f"{'met' if idle_ok else 'MISSED'}: run (b), {IDLE_GOAL} ({b['longest_task_s']:.1f} s): idle "
             + ", ".join(f"{w['idle_s']:.1f} s" for w in b["workers"].values()),
             f"{'met' if ratio_ok else 'MISSED'}: run (b), makespan <= {RATIO_GOAL}x the ideal: {b['ratio']:.3f}x"]
    lines += ["", "## Goals", ""] + [f"- {g}" for g in goals]
    return "\n".join(lines), [g for g in goals if g.startswith("MISSED")]


def main() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as folder:
        tmp = pathlib.Path(folder)
        make_exercises(tmp / "exercises")
        trivial, sleepy, sleeps = make_classes(tmp / "classes")
        over = overhead(trivial, tmp)
        runs, expected = idle_runs(sleepy, sleeps, tmp)
    text, missed = table(over, runs, expected)
    wall = time.perf_counter() - started
    text = f"# Grading on a dask cluster (LocalCluster, 1 thread per worker)\n\n{text}\n\nBench wall time: {wall:.0f} s\n"
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cluster.md").write_text(text)
    path = record("cluster", {"overhead": over, "runs": runs, "expected_order_b": expected, "bench_wall_s": wall,
                              "missed": missed})
    print(f"written {OUT / 'cluster.md'} and {path}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
