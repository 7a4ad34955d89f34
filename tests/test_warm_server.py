"""The warm server behind ``grader check`` and ``grader grade``: what a command in its own process gives.

The same verdicts, exit codes, pages and gradebooks. Each test gives the server a runtime folder of
its own (``XDG_RUNTIME_DIR``) and stops it afterwards; the other tests run every command cold
(conftest sets ``GRADER_WARM_SERVER=0``).
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import select
import shutil
import signal
import subprocess
import sys
import time
import types

import nbformat
import pytest
from grading_support import (FILES, as_from_a_shell, command_line, descendants, ended, gradebook_rows, one_value_spec,
                              shared_factory_env)

from grader import warm_server

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "reference" / "notebooks" / "tiny-model.ipynb"
STUDENT = ROOT / "exercises" / "tiny-model" / "tiny-model.ipynb"
TINY = FILES / "tiny-model"


def _stop(folder: pathlib.Path) -> None:
    warm_server.stop_servers(folder)
    deadline = time.monotonic() + 30
    while list(folder.glob("grader-warm-*/*/server.pid")) and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """A runtime folder whose one server this module's tests share, stopped (with its factory) at the end."""
    folder = tmp_path_factory.mktemp("warm") / "run"
    folder.mkdir(mode=0o700)
    yield folder
    _stop(folder)


def _env(runtime: pathlib.Path, **extra: str) -> dict:
    return {**os.environ, "XDG_RUNTIME_DIR": str(runtime), warm_server.ENV: "120", "COLUMNS": "200", **extra}


def _check(env: dict, *args, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "check", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _server_pids(runtime: pathlib.Path) -> list[int]:
    return [int(p.read_text()) for p in runtime.glob("grader-warm-*/*/server.pid")]


def _verdict(stdout: str) -> dict:
    payload = json.loads(stdout)
    return {"status": payload["status"], "score": payload["score"], "error": payload["error"],
            "checks": [(c["id"], c["passed"], c["points"], c["message"]) for c in payload["checks"]]}


def test_checks_through_the_server_give_what_a_cold_check_gives(runtime, tmp_path):
    env = _env(runtime)
    first = _check(env, SOLUTION, "--json", "--html", tmp_path / "a.html", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    [server] = _server_pids(runtime)
    again = _check(env, SOLUTION, "--json", "--html", tmp_path / "b.html", cwd=tmp_path)
    wrong = _check(env, STUDENT, "--json", "--html", "wrong.html", cwd=tmp_path)  # a relative path: the client's
    assert _server_pids(runtime) == [server]  # one server answered all three
    cold_env = {**env, warm_server.ENV: "0", **shared_factory_env()}  # in its own process; kernels forked as ever
    cold_right = _check(cold_env, SOLUTION, "--json", "--html", tmp_path / "c.html", cwd=tmp_path)
    cold_wrong = _check(cold_env, STUDENT, "--json", "--html", tmp_path / "d.html", cwd=tmp_path)
    assert (again.returncode, wrong.returncode) == (cold_right.returncode, cold_wrong.returncode) == (0, 1)
    assert _verdict(first.stdout) == _verdict(again.stdout) == _verdict(cold_right.stdout)
    assert _verdict(wrong.stdout) == _verdict(cold_wrong.stdout)
    assert json.loads(again.stdout)["score"] == 8
    assert (tmp_path / "wrong.html").is_file() and "<html" in (tmp_path / "b.html").read_text()


def test_unusable_input_and_the_table_come_back_as_from_a_cold_check(runtime, tmp_path):
    env = _env(runtime)
    (tmp_path / "broken.ipynb").write_text("{ not json")
    broken = _check(env, "broken.ipynb", cwd=tmp_path)
    assert broken.returncode == 2
    assert "broken.ipynb" in broken.stderr and "Traceback" not in broken.stderr
    as_json = _check(env, "broken.ipynb", "--json", cwd=tmp_path)
    assert as_json.returncode == 2 and json.loads(as_json.stdout)["status"] == "invalid"
    table = _check(env, SOLUTION, "--html", tmp_path / "t.html", cwd=tmp_path)
    assert table.returncode == 0
    assert "self-check" in table.stdout and "Score 8/8" in table.stdout and "Feedback page:" in table.stdout
    assert _server_pids(runtime)


def test_the_environment_and_folder_are_each_checks_own(runtime, tmp_path):
    """Two checks of throwaway exercises, each with its own GRADER_EXERCISES and folder, through one server."""
    pids = []
    for name, value in (("one", "1"), ("two", "2")):
        folder = tmp_path / name
        (folder / "exercises" / "probe").mkdir(parents=True)
        (folder / "exercises" / "probe" / "spec.toml").write_text(one_value_spec("probe", "probe", "number"))
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"probe = {value}")],
                                      metadata={"grader": {"exercise": "probe"}})
        nbformat.write(nb, folder / "work.ipynb")
        umask = 0o077 if name == "one" else 0o022
        done = subprocess.run([sys.executable, "-m", "grader", "check", "work.ipynb", "--json"], cwd=folder,
                              env=_env(runtime, GRADER_EXERCISES=str(folder / "exercises")), capture_output=True,
                              text=True, timeout=300, preexec_fn=lambda: os.umask(umask))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["exercise"] == "probe"
        assert (folder / "work.feedback.html").stat().st_mode & 0o777 == 0o666 & ~umask  # the client's umask
        pids += _server_pids(runtime)
    assert len(set(pids)) == 1


def test_watch_through_the_server_stops_on_ctrl_c(runtime, tmp_path):
    notebook = tmp_path / "work.ipynb"
    notebook.write_bytes(SOLUTION.read_bytes())
    process = subprocess.Popen([sys.executable, "-m", "grader", "check", str(notebook), "--watch"], cwd=tmp_path,
                               env=_env(runtime), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=as_from_a_shell)
    try:
        seen = ""
        deadline = time.monotonic() + 240
        while "Watching" not in seen and time.monotonic() < deadline:
            seen += process.stdout.readline()
        assert "Score 8/8" in seen and "Self-check only: not your grade." in seen
        process.send_signal(signal.SIGINT)  # reaches the client only; it relays it to the check in the server
        assert process.wait(timeout=60) == 0
        assert "Traceback" not in process.stderr.read()
        assert _server_pids(runtime)  # the server stays for the next check
    finally:
        ended(process)


def test_a_client_killed_mid_check_takes_its_check_with_it(runtime, tmp_path):
    folder = tmp_path / "slow"
    (folder / "exercises" / "probe").mkdir(parents=True)
    (folder / "exercises" / "probe" / "spec.toml").write_text(one_value_spec("probe", "probe", "number"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(600)\nprobe = 1")],
                                  metadata={"grader": {"exercise": "probe"}})
    nbformat.write(nb, folder / "work.ipynb")
    env = _env(runtime, GRADER_EXERCISES=str(folder / "exercises"))
    warm = _check(_env(runtime), SOLUTION, "--json", "--html", tmp_path / "w.html", cwd=tmp_path)  # the server is up
    assert warm.returncode == 0, warm.stderr
    [server] = _server_pids(runtime)
    before = descendants(server)
    client = subprocess.Popen([sys.executable, "-m", "grader", "check", "work.ipynb"], cwd=folder, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any("sleep" in command_line(p) or "ipykernel" in command_line(p) for p in descendants(server) - before):
        assert time.monotonic() < deadline, "the check's kernel never started"
        time.sleep(0.2)
    client.kill()
    client.wait()
    deadline = time.monotonic() + 30
    while descendants(server) - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not descendants(server) - before  # the check, its kernel and its sandbox are gone
    assert _server_pids(runtime) == [server]


def test_an_idle_server_exits_and_the_next_check_starts_another(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = _env(runtime, **{warm_server.ENV: "1"})
    assert _check(env, SOLUTION, "--json", "--html", tmp_path / "a.html", cwd=tmp_path).returncode == 0
    deadline = time.monotonic() + 30
    while _server_pids(runtime) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _server_pids(runtime)
    assert not list(runtime.glob("grader-warm-*/*/server.sock"))
    assert _check(env, SOLUTION, "--json", "--html", tmp_path / "b.html", cwd=tmp_path).returncode == 0
    _stop(runtime)


def _grade(runtime: pathlib.Path, folder: pathlib.Path, book: pathlib.Path, exercises: pathlib.Path, **extra: str):
    command = [sys.executable, "-m", "grader", "grade", str(folder), "--exercise", "tiny-model", "--gradebook",
               str(book), "--workers", "2", "--json"]
    return command, _env(runtime, GRADER_EXERCISES=str(exercises), GRADER_SECRET="warm-server-secret", **extra)


def test_a_batch_in_the_server_stores_what_a_batch_in_its_own_process_stores(runtime, tmp_path, fast_exercises):
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(SOLUTION, folder / "ada.ipynb")
    shutil.copy(TINY / "bigger-model.ipynb", folder / "bob.ipynb")
    shutil.copy(TINY / "kernel-dies.ipynb", folder / "cara.ipynb")
    shutil.copy(FILES / "not-a-notebook.ipynb", folder / "dave.ipynb")
    results = {}
    # The cold batch forks its kernels from the test process's factory: its subject is where the batch runs.
    for how, extra in (("warm", {}), ("cold", {warm_server.ENV: "0", **shared_factory_env()})):
        command, env = _grade(runtime, folder, tmp_path / f"{how}.sqlite", fast_exercises, **extra)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        results[how] = {r["student"]: r["status"] for r in map(json.loads, done.stdout.splitlines())}
    assert _server_pids(runtime)  # the warm batch ran in the server (and left it for the next command)
    assert results["warm"] == results["cold"] == {"ada": "ok", "bob": "ok", "cara": "error", "dave": "invalid"}
    warm, cold = gradebook_rows(tmp_path / "warm.sqlite"), gradebook_rows(tmp_path / "cold.sqlite")
    assert warm == cold and len(warm) == 4
    assert warm[0][2] == 10  # ada: every check, hidden ones included, passed


def test_ctrl_c_stops_a_batch_in_the_server_and_keeps_what_finished(runtime, tmp_path, fast_exercises):
    folder, book = tmp_path / "class", tmp_path / "gradebook.sqlite"
    folder.mkdir()
    shutil.copy(FILES / "not-a-notebook.ipynb", folder / "ada.ipynb")  # finishes at once, no kernel
    shutil.copy(TINY / "waits-forever.ipynb", folder / "bob.ipynb")
    shutil.copy(TINY / "waits-forever.ipynb", folder / "cara.ipynb")
    command, env = _grade(runtime, folder, book, fast_exercises)
    warm = _check(_env(runtime), SOLUTION, "--json", "--html", tmp_path / "w.html", cwd=tmp_path)  # the server is up
    assert warm.returncode == 0, warm.stderr
    [server] = _server_pids(runtime)
    before = descendants(server)
    out = tmp_path / "out.txt"
    with open(out, "wb") as stdout:
        proc = subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, preexec_fn=as_from_a_shell)
    try:
        deadline = time.monotonic() + 240
        while sum("ipykernel" in command_line(p) for p in descendants(server) - before) < 2:  # bob's and cara's
            assert time.monotonic() < deadline and proc.poll() is None, "the two kernels never ran"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the client's group; it relays it to the batch
        code = proc.wait(timeout=60)
        stderr = proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stderr.close()
    assert code == 130, stderr
    assert "Traceback" not in stderr and "1 result(s) kept" in stderr and "2 not graded (bob, cara)" in stderr
    assert [r["student"] for r in map(json.loads, out.read_text().splitlines()[:1])] == ["ada"]
    deadline = time.monotonic() + 30
    while descendants(server) - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not descendants(server) - before  # no worker, kernel or sandbox of the batch is left
    assert [row[0] for row in gradebook_rows(book)] == ["ada"]


def test_the_server_learns_a_command_ended_from_a_descriptor_not_its_next_tick():
    """A command's end wakes the server's selector (a pidfd), so its client hears at once."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(write)
        os.read(read, 1)  # ends when the test closes its end
        os._exit(0)
    os.close(read)
    watch = warm_server._exit_watch(pid)
    try:
        running = select.select([watch], [], [], 0)[0] if watch is not None else None
    finally:
        os.close(write)  # the child ends, whatever was seen
    try:
        assert running == []
        assert select.select([watch], [], [], 30)[0] == [watch]
    finally:
        if watch is not None:
            os.close(watch)
        os.waitpid(pid, 0)


def test_a_folder_others_can_enter_is_never_used(tmp_path, monkeypatch):
    runtime = tmp_path / "run"
    (runtime / f"grader-warm-{os.getuid()}").mkdir(parents=True, mode=0o755)
    os.chmod(runtime / f"grader-warm-{os.getuid()}", 0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv(warm_server.ENV, "60")
    assert warm_server.server_folder() is None
    assert warm_server.forward(["check", str(SOLUTION)]) is None  # the check then runs in its own process


def test_turned_off_or_another_import_environment_means_another_server(monkeypatch):
    monkeypatch.setenv(warm_server.ENV, "0")
    assert warm_server.forward(["check", str(SOLUTION)]) is None
    assert warm_server.idle_seconds({warm_server.ENV: "soon"}) == 0
    assert warm_server.idle_seconds({}) == warm_server.IDLE_S
    base = dict(os.environ)
    assert warm_server.server_key(base) == warm_server.server_key(dict(base))
    assert warm_server.server_key(base) != warm_server.server_key({**base, "PYTHONPATH": "/elsewhere"})
    assert warm_server.server_key(base) != warm_server.server_key({**base, "TORCH_LOGS": "+dynamo"})
    # Read when a check runs, not when the server imports: the same server serves every course folder.
    assert warm_server.server_key(base) == warm_server.server_key({**base, "GRADER_EXERCISES": "/course"})


def test_a_server_that_cannot_start_is_said_once_and_the_checks_run_cold(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    site = tmp_path / "site"
    site.mkdir()  # every interpreter with it starts a thread: forking from the server would not be safe
    (site / "sitecustomize.py").write_text("import threading, time\n"
                                           "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n")
    env = _env(runtime, PYTHONPATH=str(site))
    first = _check(env, SOLUTION, "--json", "--html", tmp_path / "a.html", cwd=tmp_path)
    assert first.returncode == 0, first.stderr  # checked in its own process instead
    [failed] = runtime.glob("grader-warm-*/*/failed")
    assert "2 threads before any import" in failed.read_text()  # found at once, not after the server's imports
    log = failed.with_name("server.log")
    size = log.stat().st_size
    again = _check(env, SOLUTION, "--json", "--html", tmp_path / "b.html", cwd=tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout)["score"] == 8
    assert log.stat().st_size == size and not _server_pids(runtime)  # no second try with the same code


# On PYTHONPATH, held by every interpreter: the server's (its folder is its argument) waits for a file before it starts.
HOLD_SERVER = """
import os, sys, time
if any("grader-warm" in arg for arg in sys.argv):
    while not os.path.exists(os.environ["RELEASE_SERVER"]):
        time.sleep(0.05)
"""


def test_ctrl_c_while_the_server_starts_is_one_line_and_exit_130(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    site, release = tmp_path / "site", tmp_path / "release"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HOLD_SERVER)  # the server is still starting whenever Ctrl-C comes
    client = subprocess.Popen([sys.executable, "-m", "grader", "check", str(STUDENT)], cwd=tmp_path,
                              env=_env(runtime, PYTHONPATH=str(site), RELEASE_SERVER=str(release)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=as_from_a_shell)
    try:
        deadline = time.monotonic() + 60
        # server.log: the client has launched the server, and waits for it to listen.
        while not list(runtime.glob("grader-warm-*/*/server.log")) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # past the launch: the client polls for the socket
        client.send_signal(signal.SIGINT)
        out, err = client.communicate(timeout=60)
        assert (client.returncode, out, err) == (130, "", "grader check: interrupted\n")
    finally:
        ended(client)
        release.touch()
        deadline = time.monotonic() + 60  # the server it started goes on starting: stopped once it says its pid
        while not _server_pids(runtime) and time.monotonic() < deadline:
            time.sleep(0.1)
        _stop(runtime)


HELD_CTRL_C = """
import signal, os, sys
from grader.cli import main
# As the server forks a command's child: Ctrl-C held, and a handler that is not SIG_IGN (which would drop it)
signal.signal(signal.SIGINT, lambda *_: None)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
os.kill(os.getpid(), signal.SIGINT)  # the client relays Ctrl-C as soon as it has the child's pid
signal.signal(signal.SIGINT, signal.default_int_handler)  # what the child sets before running the command
sys.exit(main(sys.argv[1:], warm=True))
"""


def test_a_ctrl_c_relayed_before_the_servers_child_runs_the_command_stops_it(tmp_path):
    """Ctrl-C right after the server forked the command: it was dropped, and the whole check ran and printed."""
    done = subprocess.run([sys.executable, "-c", HELD_CTRL_C, "check", str(STUDENT)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={**os.environ, warm_server.ENV: "0"})
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "grader check: interrupted\n")


def test_an_event_loop_left_by_ctrl_c_does_not_complain_when_collected_and_other_errors_still_do():
    """A loop that Ctrl-C interrupted, collected later in another thread, printed "Exception ignored in
    BaseEventLoop.__del__" with a traceback after the watch's one line (now and then, under load)."""
    from grader.commands.check import _quiet_loops

    seen = []
    hook = _quiet_loops(seen.append)
    hook(types.SimpleNamespace(object=asyncio.BaseEventLoop.__del__, exc_value=RuntimeError("x")))
    other = types.SimpleNamespace(object=print, exc_value=ValueError("y"))
    hook(other)
    assert seen == [other]


def _orphaned_factories() -> set[int]:
    """Kernel factories whose grader is gone (reparented to init)."""
    found = set()
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == 1 and "zygote.py" in command_line(int(stat.parent.name)):
            found.add(int(stat.parent.name))
    return found


def test_a_file_shadowing_torch_is_named_and_the_server_it_broke_leaves_no_factory(tmp_path):
    """A `torch.py` of the student's on PYTHONPATH: the warm server launched its factory, then failed importing torch,
    and the factory (which imports the real one) ran on for ever; the check then failed with a traceback it called
    the grader's bug (exit 3)."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    shadow = tmp_path / "mine"
    shadow.mkdir()
    (shadow / "torch.py").write_text("raise RuntimeError('my own torch, for a homework on tensors')\n")
    before = _orphaned_factories()
    done = _check(_env(runtime, PYTHONPATH=str(shadow)), SOLUTION, "--json", "--html", tmp_path / "a.html",
                  cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert json.loads(done.stdout)["error"].startswith(f"{shadow / 'torch.py'} raised RuntimeError (my own torch")
    deadline = time.monotonic() + 20
    while _orphaned_factories() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _orphaned_factories() - before
