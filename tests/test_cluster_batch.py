"""Grading on a dask cluster: what the workers are sent, and that the cluster's failures are never grades.

Real schedulers and workers throughout: an in-process ``LocalCluster`` where a test needs to reach
into the scheduler, and ``dask scheduler`` / ``dask worker`` processes where it must kill them or keep
them away from the client's files.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import nbformat
import pytest
from distributed import Client, LocalCluster  # the cluster extra is part of the test install (make test)
from distributed.diagnostics.plugin import SchedulerPlugin
from grading_support import (FILES, commands_fork_from_this_factory, gradebook_rows, one_value_spec,
                             shared_factory_env, solution)

from grader.assignments.catalog import load_assignment
from grader.cli import main
from grader.grading.batch import grade_class
from grader.grading.cluster_batch import ClusterSession, longest_first
from grader.grading.discover import discover
from grader.grading.jobs import Job
from grader.store.gradebook import Gradebook

SECRET = "cluster-secret-6f1d2c"
DASK = pathlib.Path(sys.executable).with_name("dask")


def _notebook(path: pathlib.Path, *cells: str) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    return path


@pytest.fixture
def probes(tmp_path, monkeypatch):
    """Two throwaway exercises, probe-a (1 point) and probe-b (2 points), known to the client only."""
    root = tmp_path / "exercises"
    for name, points in (("probe-a", 1), ("probe-b", 2)):
        (root / name).mkdir(parents=True)
        spec = one_value_spec(name, cell_timeout_s=60, total_timeout_s=90).replace("points = 1", f"points = {points}")
        (root / name / "spec.toml").write_text(spec)
    monkeypatch.setenv("GRADER_EXERCISES", str(root))
    return root


def _class(folder: pathlib.Path, students: dict[str, tuple[str, ...]]) -> pathlib.Path:
    for student, cells in students.items():
        _notebook(folder / f"{student}.ipynb", *cells)
    return folder


def _config(folder: pathlib.Path, **cluster) -> pathlib.Path:
    lines = ["[cluster]"] + [f"{key} = {json.dumps(value)}" for key, value in cluster.items()]
    (folder / "grader.toml").write_text("\n".join(lines) + "\n")
    return folder / "grader.toml"


class TaskRecorder(SchedulerPlugin):
    """Keeps, for every task the scheduler hands a worker, its key and its pickled run_spec: what any client of
    the scheduler could read."""

    name = "task-recorder"

    def __init__(self):
        self.seen: dict[str, bytes] = {}

    async def start(self, scheduler):
        self.scheduler = scheduler

    def transition(self, key, start, finish, *args, **kwargs):
        if finish == "processing":
            import cloudpickle

            self.seen[str(key)] = cloudpickle.dumps(self.scheduler.tasks[key].run_spec)


def _seen(client) -> dict[str, bytes]:
    return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.plugins[TaskRecorder.name].seen)


@pytest.fixture(scope="module")
def _shared_cluster():
    # Each worker process imports the grader and has a kernel factory, as `grader grade --cluster` has them do:
    # started once for the tests that only grade (they hand the batch a session of their own, which registers none).
    from grader.grading.cluster_factory import KernelFactoryPlugin

    with commands_fork_from_this_factory():  # read as each worker process starts: set only while they start
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0")
    with cluster, Client(cluster) as client:
        client.register_plugin(TaskRecorder())
        client.register_plugin(KernelFactoryPlugin())
        yield cluster, client


@pytest.fixture
def local_cluster(_shared_cluster):
    """Two process workers and a client, with the scheduler's record of tasks handed out cleared."""
    cluster, client = _shared_cluster
    client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.plugins[TaskRecorder.name].seen.clear())
    return cluster, client


def _grade(session, exercise: str, folder: pathlib.Path, book: pathlib.Path, secret: bytes | None = None):
    assignment = load_assignment(exercise)
    with Gradebook.open(book) as gradebook:
        return grade_class(discover(folder, exercise), assignment, gradebook, 1, secret=secret, cluster=session)


def test_concurrent_batches_on_one_scheduler_never_share_tasks_and_no_task_holds_the_secret(
        probes, tmp_path, local_cluster):
    cluster, client = local_cluster
    classes = {name: _class(tmp_path / name, {s: (f"probe = {{'exercise': '{name}', 'who': '{s}-marker'}}",)
                                              for s in ("ada", "bob", "cara")}) for name in ("probe-a", "probe-b")}
    reports = {}

    def batch(name):
        with Client(cluster.scheduler_address, set_as_default=False) as own:  # two instructors, one scheduler
            reports[name] = _grade(ClusterSession(own, cluster.scheduler_address), name, classes[name],
                                   tmp_path / f"{name}.sqlite", SECRET.encode())

    threads = [threading.Thread(target=batch, args=(name,)) for name in classes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    for name, points in (("probe-a", 1), ("probe-b", 2)):
        with Gradebook.open(tmp_path / f"{name}.sqlite") as gradebook:
            runs = [run.result for run in gradebook.current_runs()]
        assert sorted((r.student, r.exercise, r.status.value, r.score) for r in runs) == [
            (s, name, "ok", points) for s in ("ada", "bob", "cara")]
        assert all(r.sandbox["worker"].startswith("tcp://127.0.0.1:") for r in runs)  # each says where it ran
        assert reports[name].not_graded == []
    seen = _seen(client)
    keys = sorted(seen)
    assert len(keys) == 6 and all(k.startswith(("grade-probe-a-", "grade-probe-b-")) for k in keys)
    # One task group per exercise: dask's queuing and duration estimates see one kind of task, not 6.
    groups = {k.rsplit("-", 1)[0] for k in keys}
    assert groups == {"grade-probe-a", "grade-probe-b"}
    # What the scheduler holds: the notebooks themselves (the check that it can be read), never the secret.
    assert all(b"-marker" in spec for spec in seen.values())
    assert not any(SECRET.encode() in spec or SECRET.encode().hex().encode() in spec for spec in seen.values())


def test_a_task_cancelled_by_another_client_is_not_graded_and_the_rest_are_kept(probes, tmp_path, local_cluster):
    cluster, client = local_cluster
    # bob's cell outlasts the cancel: a running task cannot be stopped, the worker finishes it and nobody uses it.
    folder = _class(tmp_path / "class", {"ada": ("probe = {'ok': 1}",),
                                         "bob": ("import time; time.sleep(5)", "probe = {'ok': 1}"),
                                         "cara": ("probe = {'ok': 1}",)})

    def cancel_bob():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            processing = [k for keys in client.processing().values() for k in keys]
            bobs = [k for k in processing if k in _keys_of(client, "bob")]
            if bobs:
                from distributed import Future

                client.cancel([Future(bobs[0], client)], force=True)
                return
            time.sleep(0.2)

    threading.Thread(target=cancel_bob, daemon=True).start()
    session = ClusterSession(client, cluster.scheduler_address)
    report = _grade(session, "probe-a", folder, tmp_path / "gb.sqlite")
    assert sorted(r.student for r in report.graded) == ["ada", "cara"]
    assert [(n.student, "cancelled" in n.reason) for n in report.not_graded] == [("bob", True)]
    with Gradebook.open(tmp_path / "gb.sqlite") as gradebook:
        assert sorted(run.result.student for run in gradebook.current_runs()) == ["ada", "cara"]


def _keys_of(client, student: str) -> set[str]:
    """The task keys whose job is ``student``'s (read from the scheduler's copy of the job)."""
    marker = f"{student}.ipynb".encode()
    return {key for key, spec in _seen(client).items() if marker in spec}


def test_workers_with_another_grader_version_refuse_every_job_and_nothing_is_stored(probes, tmp_path, local_cluster,
                                                                                   monkeypatch):
    cluster, client = local_cluster
    folder = _class(tmp_path / "class", {s: ("probe = {'ok': 1}",) for s in ("ada", "bob")})
    monkeypatch.setattr("grader.grading.batch.grader_version", lambda assignment: "0.0.1+spec.0000000000")
    report = _grade(ClusterSession(client, cluster.scheduler_address), "probe-a", folder, tmp_path / "gb.sqlite")
    assert report.graded == [] and sorted(n.student for n in report.not_graded) == ["ada", "bob"]
    reason = report.not_graded[0].reason
    assert "worker tcp://127.0.0.1:" in reason and "the client 0.0.1+spec.0000000000" in reason
    with Gradebook.open(tmp_path / "gb.sqlite") as gradebook:
        assert list(gradebook.current_runs()) == []


def test_a_worker_that_dies_on_a_job_leaves_it_ungraded_with_exit_4(probes, tmp_path, capsys):
    import dask

    folder = _class(tmp_path / "class", {"ada": ("probe = {'ok': 1}",),
                                         "bob": ("import time; time.sleep(30)", "probe = {'ok': 1}")})
    # One task at a time per worker thread (as a grading cluster should run): killing bob's worker kills only his.
    settings = {"distributed.scheduler.allowed-failures": 0, "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(settings):
        with commands_fork_from_this_factory():  # the batch, not a worker's factory, is what this tests
            cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                   dashboard_address="127.0.0.1:0")
        with cluster, Client(cluster) as client:
            client.register_plugin(TaskRecorder())

            def kill_bobs_worker():  # once ada's result is stored (the worker would otherwise take it down too)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    for worker, keys in client.processing().items():
                        if set(map(str, keys)) & _keys_of(client, "bob") and _stored(tmp_path / "gb.sqlite"):
                            os.kill(client.run(os.getpid, workers=[worker])[worker], signal.SIGKILL)
                            return
                    time.sleep(0.2)

            threading.Thread(target=kill_bobs_worker, daemon=True).start()
            code = main(["grade", str(folder), "--exercise", "probe-a", "--gradebook", str(tmp_path / "gb.sqlite"),
                         "--cluster", cluster.scheduler_address])
    err = capsys.readouterr().err
    assert code == 4
    assert "1 submission(s) not graded because of the cluster" in err and "bob: the workers grading it died" in err
    with Gradebook.open(tmp_path / "gb.sqlite") as gradebook:
        assert [run.result.student for run in gradebook.current_runs()] == ["ada"]


def _stored(book: pathlib.Path) -> list[str]:
    """The students with a result in the gradebook, read without waiting on its writer."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{book}?mode=ro", uri=True, timeout=0.1)) as db:
            return [row[0] for row in db.execute("SELECT student FROM current_runs")]
    except sqlite3.Error:
        return []


@contextlib.contextmanager
def _processes(folder: pathlib.Path, workers: int, hide: pathlib.Path | None = None, env: dict | None = None):
    """A ``dask scheduler`` and ``workers`` ``dask worker`` processes, started in ``folder``; with ``hide``, the
    workers run in a mount namespace where that folder is an empty tmpfs. Yields (address, scheduler, workers)."""
    file = folder / "scheduler.json"
    env = {**os.environ, **(env or {})}
    scheduler = subprocess.Popen([str(DASK), "scheduler", "--port", "0", "--no-dashboard", "--scheduler-file",
                                  str(file)], cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [scheduler]
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        worker = [str(DASK), "worker", "--scheduler-file", str(file), "--nthreads", "1", "--no-dashboard"]
        for _ in range(workers):
            command = worker
            if hide is not None:
                shell = f"mount -t tmpfs tmpfs {hide} && cd {folder} && exec " + " ".join(worker)
                command = ["unshare", "-m" if os.geteuid() == 0 else "-rm", "--propagation", "private",
                           "sh", "-c", shell]
            procs.append(subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        yield json.loads(file.read_text())["address"], scheduler, procs[1:]
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM) if proc is not scheduler else proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_workers_elsewhere_without_the_clients_files_grade_as_the_local_pool_does(tmp_path):
    client_side = tmp_path / "client"  # the class, the gradebook and the secret: none of it visible to workers
    folder = client_side / "class"
    folder.mkdir(parents=True)
    shutil.copy(solution("tiny-model"), folder / "ada.ipynb")
    shutil.copy(FILES / "tiny-model" / "memorise-buffers.ipynb", folder / "bob.ipynb")  # a typical mistake
    shutil.copy(FILES / "not-a-notebook.ipynb", folder / "cara.ipynb")
    (folder / "dave").mkdir()  # a student folder without a notebook: graded on the client, no kernel
    (client_side / "secret").write_text(SECRET)
    elsewhere = pathlib.Path(tempfile.mkdtemp(prefix="grader-workers-"))
    common = ["--exercise", "tiny-model", "--secret-file", str(client_side / "secret"), "--json"]
    try:
        local = subprocess.run([sys.executable, "-m", "grader", "grade", str(folder), *common, "--gradebook",
                                str(client_side / "local.sqlite"), "--workers", "2"],
                               capture_output=True, text=True, timeout=600, cwd=client_side,
                               env={**os.environ, **shared_factory_env()})
        assert local.returncode == 0, local.stderr
        probe = subprocess.run(["unshare", "-m" if os.geteuid() == 0 else "-rm", "true"], capture_output=True)
        # Without a mount namespace nothing would hide the client's files, and the test would prove nothing.
        assert probe.returncode == 0, f"no mount namespace to hide the client's files from workers: {probe.stderr!r}"
        with _processes(elsewhere, 1, hide=client_side) as (address, _, _):
            remote = subprocess.run([sys.executable, "-m", "grader", "grade", str(folder), *common, "--gradebook",
                                     str(client_side / "cluster.sqlite"), "--cluster", address],
                                    capture_output=True, text=True, timeout=600, cwd=client_side)
        assert remote.returncode == 0, remote.stderr
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)
    rows = gradebook_rows(client_side / "cluster.sqlite")
    assert rows == gradebook_rows(client_side / "local.sqlite")
    assert [(r[0], r[1], r[2]) for r in rows] == [("ada", "ok", 10.0), ("bob", "ok", rows[1][2]),
                                                  ("cara", "invalid", 0), ("dave", "invalid", 0)]
    assert rows[0][8]  # hidden checks ran on the workers, from seeds the client derived
    graded = {json.loads(line)["student"] for line in remote.stdout.splitlines()}
    assert graded == {"ada", "bob", "cara", "dave"}
    with Gradebook.open(client_side / "cluster.sqlite") as gradebook:
        kernels = {run.result.student: run.result.sandbox.get("kernel_start") for run in gradebook.current_runs()}
    # The worker forks its kernels from a warm factory of its own, as a local batch does.
    assert kernels["ada"] == kernels["bob"] == "forked from the pre-warmed factory"


def test_a_scheduler_lost_mid_batch_keeps_what_was_graded_and_exits_4(probes, tmp_path):
    folder = _class(tmp_path / "class", {"ada": ("probe = {'ok': 1}",)} | {
        s: ("import time; time.sleep(15)", "probe = {'ok': 1}") for s in ("bob", "cara")})
    _config(tmp_path, reconnect_timeout=2)  # what is left is reported 2 s after the scheduler goes (10 s untold)
    with _processes(tmp_path, 1, env=shared_factory_env()) as (address, scheduler, _):
        batch = subprocess.Popen([sys.executable, "-m", "grader", "grade", str(folder), "--exercise", "probe-a",
                                  "--gradebook", str(tmp_path / "gb.sqlite"), "--cluster", address, "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                                 env={**os.environ, "GRADER_EXERCISES": str(probes)})
        first = json.loads(batch.stdout.readline())  # ada's, the shortest: it runs last only if history says so
        scheduler.kill()
        out, err = batch.communicate(timeout=180)
    assert batch.returncode == 4, err
    assert "2 submission(s) not graded because of the cluster" in err
    graded = [first["student"]] + [json.loads(line)["student"] for line in out.splitlines()]
    with Gradebook.open(tmp_path / "gb.sqlite") as gradebook:
        assert sorted(run.result.student for run in gradebook.current_runs()) == sorted(graded)
    assert len(graded) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("what", ["dead", "silent", "no workers"])
def test_a_bad_scheduler_address_is_a_user_error_in_bounded_time_and_writes_nothing(probes, tmp_path, capsys, what):
    folder = _class(tmp_path / "class", {"ada": ("probe = {'ok': 1}",)})
    _config(tmp_path, connect_timeout=3, worker_timeout=3)
    book = tmp_path / "gb.sqlite"
    with contextlib.ExitStack() as stack:
        if what == "dead":
            address = f"tcp://127.0.0.1:{_free_port()}"
        elif what == "silent":  # accepts connections and never answers: the connect timeout must end it
            listener = stack.enter_context(socket.create_server(("127.0.0.1", 0)))
            address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        else:
            cluster = stack.enter_context(LocalCluster(n_workers=0, processes=True, dashboard_address="127.0.0.1:0"))
            address = cluster.scheduler_address
        code = main(["--config", str(tmp_path / "grader.toml"), "grade", str(folder), "--exercise", "probe-a",
                     "--gradebook", str(book), "--cluster", address])
    err = capsys.readouterr().err
    assert code == 2
    expected = "has no workers after 3 s" if what == "no workers" else "cannot reach the dask scheduler at"
    assert expected in err and "Nothing was graded" in err and "Traceback" not in err
    assert not book.exists()


def test_workers_without_mnist_are_named_before_anything_is_written(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "class"
    _notebook(folder / "ada.ipynb", "x = 1")
    (tmp_path / "a-file").write_text("")
    # The workers inherit it: a root that neither holds the files nor can be made (the bundle is unpacked there).
    monkeypatch.setenv("MNIST_ROOT", str(tmp_path / "a-file" / "mnist"))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0") as cluster:
        code = main(["grade", str(folder), "--exercise", "mnist-sgd", "--gradebook", str(tmp_path / "gb.sqlite"),
                     "--cluster", cluster.scheduler_address])
    err = capsys.readouterr().err
    assert code == 2 and "the cluster's workers cannot grade mnist-sgd: worker tcp://127.0.0.1:" in err
    assert "has no MNIST files" in err and "cluster.mnist_root" in err
    assert not (tmp_path / "gb.sqlite").exists()


def test_a_gpu_exercise_asks_for_a_gpu_resource_and_its_kernel_sees_that_one_device(probes, tmp_path, capsys):
    folder = _class(tmp_path / "class", {
        "ada": ("import os\nassert os.environ['CUDA_VISIBLE_DEVICES'] == '3', os.environ.get('CUDA_VISIBLE_DEVICES')",
                "probe = {'ok': 1}")})
    others = _class(tmp_path / "others", {"bob": (
        "import os\nassert os.environ['CUDA_VISIBLE_DEVICES'] == '', os.environ.get('CUDA_VISIBLE_DEVICES')",
        "probe = {'ok': 1}")})
    _config(tmp_path, gpu_exercises=["probe-a"])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                      resources={"GPU": 1}, env={"CUDA_VISIBLE_DEVICES": "3,4"}) as cluster:
        for exercise, where in (("probe-a", folder), ("probe-b", others)):
            code = main(["--config", str(tmp_path / "grader.toml"), "grade", str(where), "--exercise", exercise,
                         "--gradebook", str(tmp_path / f"{exercise}.sqlite"), "--cluster", cluster.scheduler_address,
                         "--json"])
            assert code == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["student"], r["status"], r["score"], r["error"]) for r in results] == [
        ("ada", "ok", 1.0, None), ("bob", "ok", 2.0, None)]
    for exercise in ("probe-a", "probe-b"):  # one notebook a batch: its kernel starts fresh, no worker warms a factory
        with Gradebook.open(tmp_path / f"{exercise}.sqlite") as gradebook:
            assert [run.result.sandbox.get("kernel_start") for run in gradebook.current_runs()] == ["fresh launch"]


def test_jobs_run_longest_expected_first():
    jobs = [Job(name, f"{name}.ipynb", "probe-a") for name in ("ada", "bob", "cara", "dave")]
    order = longest_first(jobs, {"ada": 5.0, "bob": 60.0, "cara": 1.0}, limit_s=300)
    assert [job.student for job in order] == ["bob", "ada", "dave", "cara"]  # dave: the median of the known runs
    assert [job.student for job in longest_first(jobs, {}, 300)] == ["ada", "bob", "cara", "dave"]


AS_WORKER = r"""
import json, pathlib, sys
from grader.assignments.catalog import load_spec_file
from grader.assignments.version import grader_version
from grader.grading.cluster_jobs import grade_cluster_job, pack
from grader.grading.jobs import Job

folder = pathlib.Path(sys.argv[1])
exercise = load_spec_file(folder / "probe" / "spec.toml")
job = pack(Job("ada", str(folder / "ada.ipynb"), "probe"), exercise.spec.path.read_bytes(), grader_version(exercise),
           None, "grade-probe-1")
result = grade_cluster_job(job)
print(json.dumps({"status": result.status.value, "score": result.score, "error": result.error,
                  "sandbox": result.sandbox}))
"""


def test_a_worker_without_root_grades_in_the_user_namespace_sandbox_and_says_what_it_lacks():
    from grading_support import UNPRIVILEGED_UID, run_as_nobody

    result = json.loads(run_as_nobody(AS_WORKER, one_value_spec("probe"), files={
        "ada.ipynb": [f"import os\nassert os.geteuid() == {UNPRIVILEGED_UID}", "probe = {'ok': 1}"]}))
    assert (result["status"], result["score"], result["error"]) == ("ok", 1.0, None)
    sandbox = result["sandbox"]
    # What the README's "other user" column promises, as this worker recorded it ...
    assert sandbox["pid_namespace"] and sandbox["no_network"] and sandbox["private_tmp"] and sandbox["scrubbed_env"]
    assert sandbox["memory_limit"] == "per process (RLIMIT_AS)"
    # ... and what it lacks, in the report itself.
    assert sandbox["unprivileged_user"] is False
    assert f"runs as uid {UNPRIVILEGED_UID}, not root" in sandbox["worker_not_root"]


def test_a_cluster_the_grader_starts_serves_the_dashboard():
    import urllib.request

    from grader.grading.cluster_batch import connect
    from grader.specs.config import ClusterSettings

    with connect("local", 1, ClusterSettings(dashboard="127.0.0.1:0", worker_timeout=60), factories=False) as session:
        assert session.owned and session.dashboard.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(session.dashboard, timeout=30) as page:
            assert page.status == 200 and b"bokeh" in page.read().lower()


def test_a_worker_without_the_graders_code_is_named_not_a_traceback():
    from grader.grading.cluster_batch import ClusterError

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        client.run(lambda: sys.modules.__setitem__("grader.grading.cluster_jobs", None))  # as if not installed
        exercise = load_assignment("tiny-model")
        with pytest.raises(ClusterError) as refused:
            ClusterSession(client, cluster.scheduler_address).check_workers(exercise, "any version")
    assert "cannot grade tiny-model: worker tcp://127.0.0.1:" in str(refused.value)
    assert "it cannot run the grader's code (Exception: ModuleNotFoundError" in str(refused.value)
    assert "install the grader on the workers. Nothing was graded." in str(refused.value)
