"""Leaks, escapes and leftovers: a hostile kernel tries them all and the machine shows no trace afterwards.

Root only: the private mounts, the unprivileged user, the PID and IPC namespaces and the control group
need it (the README's sandbox table says what holds for another user).
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import uuid

import nbformat
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from escape import ESCAPE  # noqa: E402

from grader.assignments.catalog import load_spec_file  # noqa: E402
from grading_support import one_value_spec  # noqa: E402
from grader.grading.engine import run_notebook  # noqa: E402
from grader.kernel import cgroups, sandbox_files  # noqa: E402
from grader.kernel.notebook import read_submission  # noqa: E402

SPEC = one_value_spec("escape", cell_timeout_s=120, total_timeout_s=180, export_timeout_s=60, memory_mb=600,
                      max_disk_mb=64, max_shm_mb=16)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox's namespaces, user and control group "
                                                          "need root (README, sandbox table)")


def _processes_with(marker: str) -> list[str]:
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        try:
            line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in line and "pytest" not in line:
            found.append(line)
    return found


@pytest.fixture(scope="module")
def attack(tmp_path_factory):
    marker = f"grader-adv-{uuid.uuid4().hex[:10]}"
    base = tmp_path_factory.mktemp("escape")
    class_folder = base / "class"
    class_folder.mkdir()
    (class_folder / "classmate.ipynb").write_text('{"a classmate": "notebook"}')
    socket_path = f"/dev/shm/{marker}.sock"
    listeners = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
    listeners[0].bind(socket_path)
    listeners[1].bind("\0" + marker)
    for listener in listeners:
        listener.listen(1)
    (base / "escape").mkdir()
    (base / "escape" / "spec.toml").write_text(SPEC)
    source = ESCAPE.format(marker=marker, class_folder=str(class_folder), socket_path=socket_path, abstract=marker)
    notebook = base / "hostile.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), notebook)
    try:
        run = run_notebook(read_submission(notebook), load_spec_file(base / "escape" / "spec.toml"),
                           hide=(str(class_folder),))
    finally:
        for listener in listeners:
            listener.close()
        pathlib.Path(socket_path).unlink(missing_ok=True)
    assert run.exports.found, run.execution.reason
    yield marker, run
    for leftover in pathlib.Path("/dev/shm").glob(f"{marker}*"):
        leftover.unlink()


def test_the_sandbox_reports_what_held(attack):
    _, run = attack
    report = run.sandbox
    assert report["pid_namespace"] and report["ipc_namespace"] and report["private_tmp"]
    assert report["memory_limit"].startswith("whole sandbox") and report["disk_limit_mb"] == 64


def test_files_written_to_shared_places_do_not_reach_the_machine(attack):
    marker, run = attack
    probe = run.exports.values["probe"]
    assert probe["file /dev/shm"].startswith("ok")  # written, into the sandbox's own /dev/shm
    for folder in ("/dev/shm", "/run/lock", "/var/tmp", "/tmp"):
        assert not list(pathlib.Path(folder).glob(f"{marker}*")), folder


def test_a_sysv_segment_dies_with_the_kernel(attack):
    _, run = attack
    key = run.exports.values["probe"]["shm_key"]
    keys = [int(line.split()[0]) for line in pathlib.Path("/proc/sysvipc/shm").read_text().splitlines()[1:]]
    assert key not in keys


def test_the_machines_unix_sockets_are_unreachable(attack):
    probe = attack[1].exports.values["probe"]
    assert probe["socket file"].startswith("refused") and probe["socket abstract"].startswith("refused")


def test_classmates_notebooks_are_invisible(attack):
    probe = attack[1].exports.values["probe"]
    assert probe["class listing"].startswith("refused") and probe["classmate"].startswith("refused")


def test_the_kernel_sees_only_its_own_processes_and_not_the_graders_command_line(attack):
    probe = attack[1].exports.values["probe"]
    assert min(probe["processes"]) == 1 and len(probe["processes"]) < 20
    assert not any("pytest" in line or "grader" in line.split(" ")[0] for line in probe["cmdlines"])


def test_memory_is_limited_for_the_whole_sandbox(attack):
    statuses = attack[1].exports.values["probe"]["memory children"]
    assert len(statuses) == 3 and any(status != 0 for status in statuses)  # 3 x 300 MB do not fit in 680 MB


def test_disk_and_dev_shm_are_capped(attack):
    probe = attack[1].exports.values["probe"]
    assert probe["disk 200 MB"].startswith("refused: OSError")
    assert probe["shm 48 MB"].startswith("refused: OSError")


def test_nothing_the_kernel_started_outlives_it(attack):
    marker, _ = attack
    assert _processes_with(marker) == []


def test_what_a_killed_grader_left_is_cleaned_up_by_the_next_one(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    tag = f"{dead.stdout.strip()}.1"  # a pid that no longer runs, with a start time that cannot match
    root = tmp_path / f"{sandbox_files.PREFIX}{tag}-left"
    (root / "work").mkdir(parents=True)
    group = cgroups.create(f"{tag}-left", 64, 8)
    removed = sandbox_files.clean_stale(tmp_path)
    assert str(root) in removed and not root.exists()
    if group is not None:
        assert f"control group {cgroups.PREFIX}{tag}-left" in removed
        assert not any(folder.exists() for folder in group.folders)
