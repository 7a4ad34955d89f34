"""SIGINT or SIGTERM stops a batch within seconds: queued jobs cancelled, kernels killed, finished results kept.

Each test runs the real ``grader grade`` in its own process group, as a terminal runs it, and signals it
as Ctrl-C (the whole group) or a job scheduler (the grading process alone) would.
"""

import json
import os
import pathlib
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from grading_support import FAST_CELL_TIMEOUT_S, FILES, as_from_a_shell, shared_factory_env, solution

TINY = FILES / "tiny-model"
# Two notebooks that hang keep both workers busy for their cell limit (FAST_CELL_TIMEOUT_S): a batch that did not
# stop at once could not exit sooner than that.
STOPPED_WITHIN_S = FAST_CELL_TIMEOUT_S - 2


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process."""
    found = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[int(entry.name)] = (int(stat[1]), stat[0], command)
    return found


def _workers(batch_pid: int) -> list[int]:
    """The batch's grading processes: forked from it once it imported torch (``batch._warm_workers``), so they have
    its command line; spawned ones, which would import torch each, are not counted.

    A child the batch starts with ``subprocess`` (the kernel factory, a sandbox probe) also shows the batch's
    command line between its vfork and its exec, so a child counts only if it still does a moment later.
    """
    def same_command() -> set[int]:
        processes = _processes()
        own = processes.get(batch_pid, (0, "", None))[2]
        return {pid for pid, (parent, _, command) in processes.items() if parent == batch_pid and command == own}

    first = same_command()
    if first:
        time.sleep(0.3)
    return sorted(first & same_command())


def _kernels(workers: list[int]) -> list[int]:
    """The running kernels of these workers: their sandbox folders are named after the worker (pid first)."""
    return [pid for pid, (_, state, command) in _processes().items() if state != "Z"
            and "ipykernel_launcher" in command and any(f"grader-{w}." in command for w in workers)]


def _leftovers(workers: list[int]) -> list[str]:
    return sorted(p.name for p in pathlib.Path(tempfile.gettempdir()).glob("grader-*")
                  if any(p.name.startswith(f"grader-{w}.") for w in workers))


def _grade(folder, book, exercises):
    command = [sys.executable, "-m", "grader.cli", "grade", str(folder), "--exercise", "tiny-model",
               "--gradebook", str(book), "--workers", "2", "--json"]
    # As typed in a shell, without the thread settings the test process has: numpy's BLAS then starts a thread pool
    # at import, which would keep the batch from forking its workers (``_workers`` finds none).
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    return command, env | {"GRADER_EXERCISES": str(exercises), "GRADER_SECRET": "interrupt-test-secret"}


def _wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 300):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        assert proc.poll() is None, f"the batch ended (exit code {proc.returncode}) before {what}"
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _runs(book) -> list[tuple]:
    conn = sqlite3.connect(book)
    try:
        return conn.execute("SELECT student, status, score FROM current_runs ORDER BY student").fetchall()
    finally:
        conn.close()


def test_sigint_mid_batch_stops_within_seconds_keeps_what_finished_and_resumes(tmp_path, fast_exercises):
    folder, book = tmp_path / "class", tmp_path / "gradebook.sqlite"
    folder.mkdir()
    shutil.copy(FILES / "not-a-notebook.ipynb", folder / "ada.ipynb")  # finishes at once, no kernel
    shutil.copy(TINY / "waits-forever.ipynb", folder / "bob.ipynb")
    shutil.copy(TINY / "waits-forever.ipynb", folder / "cara.ipynb")
    shutil.copy(solution("tiny-model"), folder / "dan.ipynb")  # queued behind the two that hang
    command, env = _grade(folder, book, fast_exercises)
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr, start_new_session=True,
                                preexec_fn=as_from_a_shell)
    try:
        workers = _wait_for(lambda: len(found := _workers(proc.pid)) == 2 and found, "two workers", proc)
        kernels = _wait_for(lambda: len(_kernels(workers)) == 2 and _kernels(workers), "bob's and cara's kernels",
                            proc)
        assert _runs(book) == [("ada", "invalid", 0.0)]
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole foreground group
        code = proc.wait(timeout=120)
        stopped_after = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    stderr_text = err.read_text()

    # The speed: the hanging kernels were stopped, not waited for.
    assert code == 130 and stopped_after < STOPPED_WITHIN_S, (code, stopped_after, stderr_text)
    assert "Traceback" not in stderr_text
    assert stderr_text.strip().splitlines()[-1] == (
        f"grader grade: interrupted (SIGINT): 1 result(s) kept in {book} (ada); 3 not graded (bob, cara, dan). "
        "Run the same command again to grade what is missing.")
    assert not [pid for pid in kernels if pid in _kernels(workers)]  # no kernel of the batch still runs
    assert _leftovers(workers) == []  # and their sandboxes are gone
    # What was kept: the result that had finished, committed and reported; nothing of the stopped ones.
    lines = out.read_text().splitlines()
    assert json.loads(lines[0])["student"] == "ada" and json.loads("\n".join(lines[1:]))["exit_code"] == 130
    assert _runs(book) == [("ada", "invalid", 0.0)]

    # The resume: the same command grades exactly what is missing (its kernels forked from this process's factory:
    # the resume, not a factory's start, is what this half tests).
    again = subprocess.run(command, env={**env, **shared_factory_env()}, capture_output=True, text=True, timeout=600,
                           check=False)
    assert again.returncode == 0, again.stderr
    resumed = {r["student"]: r for r in map(json.loads, again.stdout.splitlines())}
    assert sorted(resumed) == ["bob", "cara", "dan"]
    # The cell limit still interrupts a hanging cell (a worker ignores Ctrl-C; its kernels must not).
    assert f"did not finish within {FAST_CELL_TIMEOUT_S} s (the per-cell limit)" in resumed["bob"]["error"]
    assert _runs(book) == [("ada", "invalid", 0.0), ("bob", "timeout", 10.0), ("cara", "timeout", 10.0),
                           ("dan", "ok", 10.0)]
    assert sqlite3.connect(book).execute("SELECT count(*) FROM runs").fetchone()[0] == 4  # nothing graded twice


def _stop_while_workers_start(tmp_path, fast_exercises, signum: int, whole_group: bool):
    folder, book = tmp_path / "class", tmp_path / "gradebook.sqlite"
    folder.mkdir()
    for name in ("ada", "bob"):
        shutil.copy(solution("tiny-model"), folder / f"{name}.ipynb")
    command, env = _grade(folder, book, fast_exercises)
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True, preexec_fn=as_from_a_shell) as proc:
        try:
            workers = _wait_for(lambda: _workers(proc.pid), "the first worker process", proc)
            sent = time.monotonic()
            if whole_group:
                os.killpg(proc.pid, signum)
            else:
                os.kill(proc.pid, signum)
            out, err = proc.communicate(timeout=120)
            stopped_after = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, stopped_after, out.decode(), err.decode(), workers, book


def test_ctrl_c_while_the_workers_start_prints_no_traceback_storm(tmp_path, fast_exercises):
    code, stopped_after, _, err, workers, book = _stop_while_workers_start(
        tmp_path, fast_exercises, signal.SIGINT, whole_group=True)
    assert code == 130 and stopped_after < STOPPED_WITHIN_S, (code, stopped_after, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1] == (
        f"grader grade: interrupted (SIGINT): 0 result(s) kept in {book}; 2 not graded (ada, bob). Run the same "
        "command again to grade what is missing.")
    assert _leftovers(workers) == []


def test_sigterm_to_the_grading_process_alone_stops_its_workers_too(tmp_path, fast_exercises):
    code, stopped_after, _, err, workers, _ = _stop_while_workers_start(
        tmp_path, fast_exercises, signal.SIGTERM, whole_group=False)
    assert code == 130 and stopped_after < STOPPED_WITHIN_S, (code, stopped_after, err)
    assert "Traceback" not in err, err
    assert "grader grade: interrupted (SIGTERM): 0 result(s) kept" in err
    assert not [pid for pid in workers if pid in _processes() and _processes()[pid][1] != "Z"]


def test_a_worker_of_a_grader_that_is_pid_1_keeps_working():
    """A grader run as a container's first process (pid 1, as `docker run` starts it): each pool worker took its parent
    for gone and ended itself, and the batch ended in an internal error."""
    # A PID namespace of its own: as root directly, otherwise inside a user namespace that maps the user to root.
    unshare = ["unshare", "-fp", "--mount-proc"] if os.geteuid() == 0 else ["unshare", "-rfp", "--mount-proc"]
    script = ("import os\n"
              "from grader.grading.interrupts import worker_started\n"
              "assert os.getpid() == 1\n"
              "child = os.fork()\n"
              "if child == 0:\n"
              "    worker_started()\n"
              "    os._exit(7)\n"
              "print(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]))\n")
    done = subprocess.run([*unshare, sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=120, cwd=pathlib.Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() == "7", (done.stdout, done.stderr[-2000:])
