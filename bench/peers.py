"""The same torch submissions graded one at a time by nbgrader, otter, a raw nbclient run and this grader, in one run.

The submissions and each grader's version of the assignment are in bench/peers_assignment.py; the peers
run from their own venv (.venv-peers, nbgrader 0.9.6 and otter-grader 7.0.0) through bench/peers_run.py.
Each row is the wall time of one command that grades every notebook, start-up included. This grader
runs each worker count two ways: each command cold (``GRADER_WARM_SERVER=0``, as every peer runs), and
through its warm server, started beforehand by an untimed batch. Its rows are the median of
``--repeats`` runs, one and more workers in turn: one run's ratio moves by a tenth or more from run to
run. The three graders must give every notebook the same verdict (full marks or not); the raw run
checks nothing.
Writes out/bench/peers.md and out/bench/peers.json.
Run: ``make bench-peers`` (builds .venv-peers first), or ``.venv/bin/python bench/peers.py --n 4``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import peers_assignment as pa
from common import OUT, record

from grader import warm_server

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
GRADERS = ("nbgrader", "otter", "ours_1")


@dataclass
class Row:
    """One timed process: what it ran and, for a grader, each student's (score, max score)."""

    key: str
    label: str
    seconds: float
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)
    lines_at: list[float] = field(default_factory=list)  # when each stdout line came: this grader's results
    runs: list[float] = field(default_factory=list)  # every run's seconds, where ``seconds`` is their median

    def verdicts(self) -> dict[str, bool]:
        return {s: score >= top > 0 for s, (score, top) in self.scores.items()}


def environment(peers_python: Path | None = None, **extra: str) -> dict[str, str]:
    """One thread per process and headless plots for every row, as this grader's kernels run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", **extra}
    if peers_python:
        # As an activated venv: nbgrader runs `alembic` and its kernels by name.
        env["PATH"] = f"{peers_python.parent}{os.pathsep}{env.get('PATH', '')}"
        env.pop("PYTHONPATH", None)
    return env


def run(cmd: list, cwd: Path, env: dict, log: Path) -> tuple[float, str, list[float]]:
    """The wall time and stdout of ``cmd``, and when each stdout line came; its stderr goes to ``log``.

    A failure stops the bench.
    """
    with log.open("w") as err:
        start = time.perf_counter()
        process = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err,
                                   text=True)
        lines, at = [], []
        for line in process.stdout:
            lines.append(line)
            at.append(time.perf_counter() - start)
        process.wait()
        seconds = time.perf_counter() - start
    stdout = "".join(lines)
    log.with_suffix(".out").write_text(stdout)
    if process.returncode != 0:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"failed (exit {process.returncode}): {' '.join(map(str, cmd))}\n{tail}")
    return seconds, stdout, at


def parse_scores(stdout: str) -> dict[str, tuple[float, float]]:
    scores = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            scores[row["student"]] = (float(row.get("score") or 0), float(row.get("max_score") or 0))
    return scores


@dataclass
class Bench:
    """The temporary folder with every format of the assignment, and how to run each grader on it."""

    root: Path
    peers_python: Path
    n: int

    def prepare(self, subs: list[pa.Submission]) -> None:
        peers_env, log = environment(self.peers_python), self.root / "setup.log"
        self.exercises, self.klass = pa.write_ours(self.root / "ours", subs)
        self.course = self.root / "nbgrader" / "course"
        pa.write_nbgrader_source(self.course)
        nbgrader = self.peers_python.with_name("nbgrader")
        run([nbgrader, "generate_assignment", pa.NBGRADER_ID], self.course, peers_env, log)
        pa.write_nbgrader_submissions(self.course, subs)
        self.otter = self.root / "otter"
        pa.write_otter_tests(self.otter)
        run([self.peers_python.with_name("otter"), "generate", "-t", "tests", "-o", "autograder.zip", "--no-config",
             "--no-requirements", "--no-environment"], self.otter, peers_env, log)
        self.otter_subs = pa.write_otter_submissions(self.otter, subs)
        # Warm the page cache of both venvs' torch, so the first timed row pays no cold disk reads.
        warm = ["-c", "import torch, matplotlib.pyplot, nbclient"]
        run([self.peers_python, *warm], self.root, peers_env, log)
        run([sys.executable, *warm], self.root, environment(), log)

    def raw(self) -> Row:
        seconds, out, _ = run([self.peers_python, HERE / "peers_run.py", "raw", self.klass], self.root,
                           environment(self.peers_python), self.root / "raw.log")
        executed = sum(line.startswith("{") for line in out.splitlines())
        assert executed == self.n, f"the raw run executed {executed} of {self.n} notebooks"
        return Row("raw", "raw nbclient, no checks (the floor)", seconds)

    def nbgrader(self) -> Row:
        env = environment(self.peers_python)
        seconds, _, _ = run([self.peers_python.with_name("nbgrader"), "autograde", pa.NBGRADER_ID], self.course, env,
                            self.root / "nbgrader.log")
        _, out, _ = run([self.peers_python, HERE / "peers_run.py", "nbgrader-scores", self.course], self.course, env,
                     self.root / "nbgrader-scores.log")
        return Row("nbgrader", "nbgrader 0.9.6 `nbgrader autograde`", seconds, parse_scores(out))

    def otter_api(self) -> Row:
        seconds, out, _ = run([self.peers_python, HERE / "peers_run.py", "otter", self.otter / "autograder.zip",
                            self.otter_subs], self.otter, environment(self.peers_python), self.root / "otter.log")
        return Row("otter", "otter-grader 7.0.0 `grade_submission`, one process", seconds, parse_scores(out))

    def otter_cli(self) -> Row:
        seconds, out, _ = run([self.peers_python, HERE / "peers_run.py", "otter-cli", self.otter / "autograder.zip",
                            self.otter_subs], self.otter, environment(self.peers_python), self.root / "otter-cli.log")
        return Row("otter_cli", "otter-grader 7.0.0 `otter run`, a process per notebook", seconds, parse_scores(out))

    def ours(self, workers: int, warm: bool = False, attempt: int = 0) -> Row:
        """One batch into a gradebook of its own, so that it grades every notebook."""
        key = f"ours_{'warm_' if warm else ''}{workers}"
        cmd = [sys.executable, "-m", "grader.cli", "grade", self.klass, "--exercise", pa.EXERCISE,
               "--gradebook", self.root / f"{key}-{attempt}.sqlite", "--workers", workers, "--json"]
        seconds, out, at = run(cmd, ROOT, self._our_env(warm), self.root / f"{key}-{attempt}.log")
        how = "through the warm server" if warm else "each command cold"
        return Row(key, f"this grader, `grader grade --workers {workers}`, {how}", seconds, parse_scores(out), at)

    def ours_repeated(self, counts: list[int], warm: bool, repeats: int) -> dict[str, Row]:
        """``repeats`` batches per worker count, the counts in turn (so that a slow spell of the machine touches
        each alike); each row is the median run, with every run's seconds."""
        runs: dict[str, list[Row]] = {}
        for attempt in range(repeats):
            for workers in counts:
                row = self.ours(workers, warm, attempt)
                runs.setdefault(row.key, []).append(row)
                print(f"{row.label}, run {attempt + 1} of {repeats}: {row.seconds:.1f} s", flush=True)
        rows = {}
        for key, done in runs.items():
            middle = sorted(done, key=lambda r: r.seconds)[(len(done) - 1) // 2]
            rows[key] = dataclasses.replace(middle, runs=[r.seconds for r in done])
        return rows

    def factory_warm_up(self) -> float:
        """Seconds from a fresh interpreter to a warm kernel factory, alone: what a cold command waits, at the least,
        before its first kernel can start."""
        script = ("from grader.kernel.factory import start_factory\n"
                  "with start_factory() as factory:\n    assert factory.ready, factory.reason")
        seconds, _, _ = run([sys.executable, "-c", script], ROOT, self._our_env(False), self.root / "factory.log")
        return seconds

    def start_server(self) -> float:
        """The untimed batch that starts this bench's own warm server (its grading and page cache warm too)."""
        cmd = [sys.executable, "-m", "grader.cli", "grade", self.klass, "--exercise", pa.EXERCISE,
               "--gradebook", self.root / "server-start.sqlite", "--workers", 1, "--json"]
        seconds, _, _ = run(cmd, ROOT, self._our_env(True), self.root / "server-start.log")
        return seconds

    def stop_server(self) -> None:
        warm_server.stop_servers(self.root / "run")

    def _our_env(self, warm: bool) -> dict[str, str]:
        (self.root / "run").mkdir(mode=0o700, exist_ok=True)
        return environment(GRADER_EXERCISES=str(self.exercises), GRADER_SECRET="peers-bench",
                           XDG_RUNTIME_DIR=str(self.root / "run"), **{warm_server.ENV: "600" if warm else "0"})


def disagreements(rows: dict[str, Row], subs: list[pa.Submission]) -> list[str]:
    """Each notebook the graders judge differently, or all alike but against what it was written to be."""
    problems = []
    graders = [k for k in rows if k != "raw"]
    for sub in subs:
        said = {rows[g].label: rows[g].verdicts().get(sub.student) for g in graders}
        if len(set(said.values())) > 1 or None in said.values():
            problems.append(f"{sub.student} ({sub.what}): " + "; ".join(f"{g}: {_word(v)}" for g, v in said.items()))
        elif sub.passes not in said.values():
            problems.append(f"{sub.student} ({sub.what}): every grader says {_word(not sub.passes)}, "
                            f"written to {_word(sub.passes)}")
    return problems


def _word(passes: bool | None) -> str:
    return {True: "pass", False: "fail", None: "no result"}[passes]


def table(rows: dict[str, Row], n: int) -> list[str]:
    nbgrader, raw = rows["nbgrader"].seconds, rows["raw"].seconds
    lines = [f"| run | {n} notebooks | per notebook | vs nbgrader | vs raw nbclient |", "|---|---|---|---|---|"]
    for row in rows.values():
        lines.append(f"| {row.label} | {row.seconds:.1f} s | {row.seconds / n:.2f} s | {row.seconds / nbgrader:.2f}x "
                     f"| {row.seconds / raw:.2f}x |")
    return lines


def runs_said(rows: dict[str, Row]) -> list[str]:
    """Every run behind this grader's medians, in the order they ran."""
    return [f"- {row.label}: the {'median' if len(row.runs) % 2 else 'lower middle'} of "
            f"{', '.join(f'{s:.1f}' for s in row.runs)} s" for row in rows.values() if len(row.runs) > 1]


def phases(rows: dict[str, Row]) -> list[str]:
    """Where this grader's time goes: start-up to the first result, the results, and the exit after the last."""
    lines = ["| run | first result | the other results | exit after the last |", "|---|---|---|---|"]
    for row in rows.values():
        if row.key.startswith("ours_") and len(row.lines_at) > 1:
            first, last = row.lines_at[0], row.lines_at[-1]
            lines.append(f"| {row.label} | {first:.1f} s | {len(row.lines_at) - 1} in {last - first:.1f} s | "
                         f"{row.seconds - last:.1f} s |")
    return lines


def speedups(rows: dict[str, Row], workers: int) -> dict[str, float]:
    """This grader with ``workers`` against one worker: each command cold, and through the warm server."""
    return {how: rows[f"ours_{key}1"].seconds / rows[f"ours_{key}{workers}"].seconds
            for how, key in (("cold", ""), ("warm", "warm_")) if f"ours_{key}{workers}" in rows}


def cold_bound(rows: dict[str, Row], workers: int, warm_up: float) -> str:
    """The most ``workers`` cold workers could gain over one on these notebooks: both wait for the factory's warm-up,
    then the one worker's pace past its first result is shared perfectly."""
    one = rows["ours_1"].lines_at
    n, pace = len(one), (one[-1] - one[0]) / (len(one) - 1)
    best = (warm_up + n * pace) / (warm_up + n * pace / workers)
    return (f"Cold, a command's first kernel waits for the kernel factory's warm-up: {warm_up:.1f} s alone (a fresh "
            f"interpreter to a warm factory, measured in this run). With all {n} notebooks at the one-worker pace "
            f"measured past its first result ({pace:.2f} s each) and {workers} workers sharing them perfectly, "
            f"{workers} workers could be at most {best:.2f}x faster than 1 here, cold; the warm server pays that "
            "warm-up once, before its first batch.")


def goals(rows: dict[str, Row], workers: int) -> list[str]:
    """Issue 15's targets for this table: one worker against the peers cold, as they run."""
    one = rows["ours_1"].seconds
    nbgrader, raw = rows["nbgrader"].seconds, rows["raw"].seconds
    checks = [(f"one worker, cold, at most 0.5x nbgrader: {one / nbgrader:.2f}x", one <= 0.5 * nbgrader),
              (f"one worker, cold, at most 0.6x raw nbclient: {one / raw:.2f}x", one <= 0.6 * raw)]
    if workers == 2:
        for how, speedup in speedups(rows, workers).items():
            checks.append((f"2 workers at least 1.7x faster than 1, {how}: {speedup:.2f}x", speedup >= 1.7))
    return [f"- {'met' if ok else 'missed'}: {text}" for text, ok in checks]


def verdict_table(rows: dict[str, Row], subs: list[pa.Submission]) -> list[str]:
    lines = ["| student | submission | written to | nbgrader | otter | this grader |", "|---|---|---|---|---|---|"]
    for sub in subs:
        cells = []
        for g in GRADERS:
            score, top = rows[g].scores.get(sub.student, (0.0, 0.0))
            cells.append(f"{_word(rows[g].verdicts().get(sub.student))} ({score:g}/{top:g})")
        lines.append(f"| {sub.student} | {sub.what} | {_word(sub.passes)} | " + " | ".join(cells) + " |")
    return lines


def report(rows: dict[str, Row], subs: list[pa.Submission], workers: int, loads: tuple, problems: list[str],
           warm_up: float | None = None) -> str:
    n = len(subs)
    about = (f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average {loads[0]:.2f} before and "
             f"{loads[1]:.2f} after. Each row is one command grading all {n} notebooks, start-up included, with "
             "OMP_NUM_THREADS=1 and MPLBACKEND=Agg. Made by `make bench-peers` (bench/peers.py).")
    head = [f"# Peers benchmark: {n} torch submissions, one at a time, measured in one run", "", about, ""]
    body = table(rows, n) + [""] + runs_said(rows) + [""]
    body += [f"This grader with {workers} workers against 1, {how}: {x:.2f}x faster (the medians)."
             for how, x in speedups(rows, workers).items()]
    body += ["", "This grader's time, from its `--json` lines as they came:", ""] + phases(rows)
    if warm_up is not None and workers > 1 and len(rows["ours_1"].lines_at) > 1:
        body += ["", cold_bound(rows, workers, warm_up)]
    body += ["", "Issue 15's targets:"] + goals(rows, workers)
    agree = ["", "## Verdicts (pass = full marks)", ""]
    agree += [f"- {p}" for p in problems] or [
        "The graders agree on every notebook, and with what each was written to be."]
    return "\n".join(head + body + agree + [""] + verdict_table(rows, subs)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="submissions (default 20)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                        help="this grader's second run (default: the cores)")
    parser.add_argument("--peers-python", type=Path, default=ROOT / ".venv-peers" / "bin" / "python",
                        help="the python of the peers' venv (default .venv-peers, built by make bench-peers)")
    parser.add_argument("--otter-cli", action="store_true", help="also time `otter run`, a process per notebook")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each of this grader's rows, whose median is shown (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print where it is")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not args.peers_python.exists():
        print(f"{args.peers_python} is missing: run `make bench-peers`, which builds it", file=sys.stderr)
        return 2
    subs = pa.submissions(args.n)
    folder = tempfile.mkdtemp(prefix="peers-bench-")
    bench = Bench(Path(folder), args.peers_python.absolute(), args.n)
    print(f"preparing {args.n} submissions in each format under {folder}", flush=True)
    bench.prepare(subs)
    loads = [os.getloadavg()[0]]
    peers = [("raw", bench.raw), ("nbgrader", bench.nbgrader), ("otter", bench.otter_api)]
    peers += [("otter_cli", bench.otter_cli)] if args.otter_cli else []
    counts = [1, args.workers] if args.workers > 1 else [1]
    rows = {}
    try:
        warm_up = bench.factory_warm_up()
        print(f"this grader's kernel factory alone, from a fresh interpreter to warm: {warm_up:.1f} s", flush=True)
        for key, step in peers:
            rows[key] = step()
            print(f"{rows[key].label}: {rows[key].seconds:.1f} s", flush=True)
        rows.update(bench.ours_repeated(counts, False, args.repeats))
        print(f"starting this grader's warm server (untimed): {bench.start_server():.1f} s", flush=True)
        rows.update(bench.ours_repeated(counts, True, args.repeats))
    finally:
        bench.stop_server()
    loads.append(os.getloadavg()[0])
    problems = disagreements(rows, subs)
    text = report(rows, subs, args.workers, tuple(loads), problems, warm_up)
    print("\n" + text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "peers.md").write_text(text)
    record("peers", {"notebooks": args.n, "workers": args.workers, "load_average": loads,
                     "seconds": {k: r.seconds for k, r in rows.items()}, "factory_warm_up_s": warm_up,
                     "runs": {k: r.runs for k, r in rows.items() if r.runs},
                     "verdicts": {k: r.verdicts() for k, r in rows.items() if k != "raw"}, "disagreements": problems})
    print(f"written {OUT / 'peers.md'} and {OUT / 'peers.json'}")
    if args.keep:
        print(f"kept {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
