"""The kernel's sandbox, observed from inside a real kernel by tests/files/sandbox/probe.ipynb."""

import os
import pathlib
import shutil
import uuid

import nbformat
import pytest

from grader.assignments.catalog import load_spec_file
from grader.grading.engine import run_notebook
from grader.kernel.notebook import read_submission
from grader.kernel.sandbox import needed_paths, scrubbed_env

FILES = pathlib.Path(__file__).parent / "files" / "sandbox"
ROOT_RUN = os.geteuid() == 0


@pytest.fixture(scope="module")
def probe(monkeypatch_module):
    # Outside /tmp on purpose: the sandbox must hide these by name, not because /tmp is covered.
    folder = pathlib.Path(__file__).resolve().parent.parent / "out" / f"sandbox-test-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    yield from _probe(folder, monkeypatch_module)
    shutil.rmtree(folder)


def _probe(folder, monkeypatch_module):
    secret = folder / "secret.txt"
    secret.write_text("instructor secret")
    secret.chmod(0o644)  # readable by anyone: only the sandbox keeps the kernel out
    gradebook = folder / "gradebook"
    gradebook.mkdir()
    (gradebook / "grades.sqlite").write_text("grades")
    monkeypatch_module.setenv("GRADER_SECRET", "in-the-graders-environment")
    monkeypatch_module.setenv("GRADER_TEST_CANARY", "must not reach the kernel")
    nb = nbformat.read(FILES / "probe.ipynb", as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("SECRET_PATH", repr(str(secret))).replace(
        "GRADEBOOK_DIR", repr(str(gradebook)))
    path = folder / "probe.ipynb"
    nbformat.write(nb, path)
    run = run_notebook(read_submission(path), load_spec_file(FILES / "spec.toml"), hide=(str(secret), str(gradebook)))
    assert run.exports.found, run.execution.reason
    yield run


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_environment_is_scrubbed_and_single_threaded(probe):
    values = probe.exports.values["probe"]
    assert "GRADER_SECRET" not in values["env"] and "GRADER_TEST_CANARY" not in values["env"]
    ours = set(scrubbed_env(pathlib.Path("/w")))
    set_by_the_kernel = ("JPY_", "CLICOLOR", "PYDEVD_", "TERM", "PAGER", "GIT_PAGER", "FORCE_COLOR")
    assert [k for k in values["env"] if k not in ours and not k.startswith(set_by_the_kernel)] == []
    assert values["threads"] == 1
    assert values["cwd"].startswith("/") and "grader-" in values["cwd"]


def test_grader_files_are_invisible_to_the_kernel(probe):
    values = probe.exports.values["probe"]
    if not ROOT_RUN:
        assert not probe.sandbox["unprivileged_user"]  # the report must not claim what cannot hold
        pytest.skip("user isolation and private mounts need the grader to run as root (README, sandbox table)")
    assert probe.sandbox["unprivileged_user"] and probe.sandbox["private_mounts"]
    assert values["uid"] >= 61000
    # Covered by /dev/null and by an empty read-only tmpfs, although both are world-readable.
    assert values["secret_file"] == ""
    assert values["gradebook_dir"] == "denied: PermissionError"
    assert values["root_home"] == [".pyenv"] or values["root_home"].startswith("denied")
    assert values["write_repo"] == "refused: PermissionError"


def test_no_network(probe):
    values = probe.exports.values["probe"]
    assert probe.sandbox["no_network"]
    assert values["interfaces"] == ["lo"]
    assert values["network"].startswith("refused")


def test_memory_file_size_and_process_limits(probe):
    values = probe.exports.values["probe"]
    assert values["rlimit_as_mb"] == 2048
    assert values["memory"].startswith("refused")
    assert values["file_size"] == "refused: OSError"


def test_process_limit(probe):
    if not ROOT_RUN:
        pytest.skip("RLIMIT_NPROC is per user: it holds only for the sandbox user, when the grader runs as root")
    assert probe.exports.values["probe"]["processes"].startswith("refused after")


def test_output_is_capped_and_everything_is_reported(probe):
    assert probe.sandbox["outputs_truncated"]
    assert probe.sandbox["timeouts"] and probe.sandbox["scrubbed_env"]
    assert probe.execution.status.value == "ok"


def test_shared_temp_folder_shows_only_this_sandbox(probe):
    values = probe.exports.values["probe"]
    if not ROOT_RUN:
        pytest.skip("private mounts need the grader to run as root (README, sandbox table)")
    # Besides this sandbox, only what the kernel runs from, where a checkout or venv lives in /tmp itself.
    tmp = pathlib.Path(os.path.realpath("/tmp"))
    needed = {pathlib.Path(p).relative_to(tmp).parts[0] for p in needed_paths()
              if pathlib.Path(p).is_relative_to(tmp) and pathlib.Path(p) != tmp}
    sandboxes = [e for e in values["tmp"] if e not in needed]
    assert len(sandboxes) == 1 and sandboxes[0].startswith("grader-")
    assert values["cwd"] == f"/tmp/{sandboxes[0]}/work"


def test_torchvision_imports_in_the_kernel(probe):
    assert probe.exports.values["probe"]["torchvision"] == ["MNIST", "ToTensor"]


def test_one_probe_of_the_sandbox_user_serves_every_uid():
    """Two sandboxes open at once hold two uids (as root); only the first claim runs the probe of what the sandbox
    user can reach, so a batch's workers, each holding whichever uid is free, do not probe every uid again."""
    from grader.kernel import sandbox as sandboxes

    limits = load_spec_file(FILES / "spec.toml").spec.limits
    sandboxes._plan_works.cache_clear()
    sandboxes._USER_PLANS_WORKING.clear()
    first = sandboxes.open_sandbox(limits)
    try:
        probed = sandboxes._plan_works.cache_info().misses
        second = sandboxes.open_sandbox(limits)
        try:
            assert sandboxes._plan_works.cache_info().misses == probed
            if ROOT_RUN:
                assert first.user and second.user and first.user != second.user
                assert second.report["unprivileged_user"]
            else:  # no uid to claim: nothing to probe either
                assert first.user is None and second.user is None
        finally:
            second.kill()
            second.remove()
    finally:
        first.kill()
        first.remove()



def test_a_killed_process_has_ended_before_anyone_reaps_it():
    """What the grader waits for after its kill: every thread of a sandbox's processes out of user code for good.
    A zombie runs nothing; its reaping is up to whatever adopted it (a container's init may never reap)."""
    import subprocess
    import sys
    import time

    from grader.kernel.cgroups import ended

    child = subprocess.Popen([sys.executable, "-c", "import threading, time\n"
                              "threading.Thread(target=time.sleep, args=(60,)).start()\ntime.sleep(60)"])
    try:
        deadline = time.monotonic() + 10
        while len(os.listdir(f"/proc/{child.pid}/task")) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not ended(child.pid)
        child.kill()
        # Its threads each exit once they run again: on a busy machine the leader can be a zombie for a while
        # before the other thread is scheduled, and `ended` says False until that one is exiting too.
        while not ended(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ended(child.pid)
        assert os.path.exists(f"/proc/{child.pid}")  # not reaped: this test has not waited for it
    finally:
        child.kill()
        child.wait()
    assert ended(child.pid)


def test_a_process_that_joins_after_the_kill_is_killed_when_the_group_is_removed():
    """A kernel whose launch was under way when the grader was interrupted joins its group after the grader's kill:
    removing the group kills it, where it once outlived the grader (holding the grader's output pipe open)."""
    import subprocess
    import sys

    from grader.kernel import cgroups

    group = cgroups.create(f"{os.getpid()}.1-late", 256, 16)
    if group is None:
        pytest.skip("no control group: the grader makes them only as root, on a machine with cgroups")
    late = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert group.kill(deadline_s=1.0)  # nothing in it yet
        for procs in group.procs_files:
            pathlib.Path(procs).write_text(str(late.pid))
        assert group.remove(deadline_s=5.0)
        assert late.wait(timeout=10) == -9  # SIGKILL
        assert not any(folder.exists() for folder in group.folders)
    finally:
        late.kill()
        late.wait()


def test_the_prelude_stays_under_the_size_pyzmq_sends_from_a_thread():
    """The kernel echoes each cell as a message, and pyzmq sends one of 64 KB or more from a thread of its own, which a
    kernel under a tight memory limit cannot start: every reply after it broke ("Invalid Signature"). The prelude
    carries the probe and the exporter compressed; uncompressed they outgrew that limit."""
    import zmq

    from grader.kernel.cells import prelude_source

    assert len(prelude_source(True, tuple(f"value_{i}" for i in range(20))).encode()) < zmq.COPY_THRESHOLD // 2


def test_pandas_imports_in_the_kernel_and_a_missing_module_says_what_the_grader_has(tmp_path):
    """Students' notebooks import pandas for a results table, as on Colab: it is there. A module that is not there
    is named with what the grading environment has instead, where the bare ModuleNotFoundError left a notebook that
    runs at home without a reason."""
    cells = ["import pandas as pd\nprobe = {'rows': len(pd.DataFrame({'lr': [0.1, 0.01]}))}",
             "import seaborn_or_anything_not_installed as sns"]
    path = tmp_path / "tables.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    run = run_notebook(read_submission(path), load_spec_file(FILES / "spec.toml"))
    assert run.exports.values["probe"] == {"rows": 2}, run.execution.reason
    assert run.execution.reason.startswith(
        "code cell 2 raised ModuleNotFoundError: No module named 'seaborn_or_anything_not_installed'. The grading "
        "environment has no module 'seaborn_or_anything_not_installed': only your notebook runs there, with torch, "
        "torchvision, numpy, matplotlib, pandas, tqdm, torchinfo")


def test_an_exception_without_a_message_is_named_without_a_dangling_colon(tmp_path):
    """`raise SystemExit` (a script's way to stop) has no message: the reason read "code cell 2 raised SystemExit:"."""
    path = tmp_path / "stops.ipynb"
    cells = ["probe = {'rows': 1}", "raise SystemExit"]
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    run = run_notebook(read_submission(path), load_spec_file(FILES / "spec.toml"))
    assert run.execution.reason == "code cell 2 raised SystemExit"


def test_a_grader_started_through_a_relative_interpreter_path_names_the_interpreter_plainly():
    """`cd tests && ../.venv/bin/python ...`: the kernel was exec'd through that path, which names a folder on the way
    (`tests/..`) that the sandbox user cannot reach, so every kernel failed to start ("Permission denied")."""
    import subprocess
    import sys

    tests = pathlib.Path(__file__).resolve().parent
    relative = os.path.relpath(os.path.normpath(sys.executable), tests)
    assert relative.startswith("..")
    done = subprocess.run([relative, "-c", "import sys; from grader.kernel.sandbox import INTERPRETER\n"
                           "print(sys.executable, INTERPRETER)"], cwd=tests, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(tests.parent)})
    given, used = done.stdout.split()
    assert ".." in given and used == os.path.normpath(sys.executable) and ".." not in used, done.stderr


def test_temp_folders_of_a_grader_killed_outright_go_with_the_next_clean_up(tmp_path, monkeypatch):
    """A sandbox probe's or a cluster job's spec folder is named after its grader, as a sandbox's own is: one whose
    grader was killed with SIGKILL (no exit handler ran) is removed, and a live grader's folder stays."""
    import subprocess
    import sys
    import tempfile

    from grader.kernel.sandbox_files import clean_stale, owned_temp_dir

    left = subprocess.run([sys.executable, "-c", "import os, sys, signal\n"
                           "from grader.kernel.sandbox_files import owned_temp_dir\n"
                           "held = [owned_temp_dir(what) for what in ('probe', 'spec')]\n"
                           "print(*(folder.name for folder in held), flush=True)\n"
                           "os.kill(os.getpid(), signal.SIGKILL)"],
                          capture_output=True, text=True, env=dict(os.environ, TMPDIR=str(tmp_path)), timeout=60)
    orphans = [pathlib.Path(line) for line in left.stdout.split()]
    assert len(orphans) == 2 and all(folder.is_dir() and folder.parent == tmp_path for folder in orphans)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this live grader's own folder beside them
    with owned_temp_dir("probe") as mine:
        mine = pathlib.Path(mine)
        assert mine.parent == tmp_path
        # Only its folders are this test's: a grader another test killed outright may leave a control group too.
        folders = [what for what in clean_stale(tmp_path) if not what.startswith("control group ")]
        assert sorted(folders) == sorted(map(str, orphans))
        assert not any(folder.exists() for folder in orphans) and mine.is_dir()
