"""What the sandbox gives a grader that is not root, observed by running the launcher as another user.

The README's sandbox table promises, where the machine allows unprivileged user namespaces: the
network, IPC, mount and PID namespaces, a private /proc, /dev/shm, /run and /var/tmp, the grader's
files hidden, and nothing left behind. Run here as ``nobody`` through ``setpriv`` with the system's
Python (the launcher uses the standard library only).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from grader.kernel.sandbox import LAUNCHER

PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else None
NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or PYTHON is None or shutil.which("setpriv") is None,
                                reason="needs root to become another user (setpriv) and a system python3")

PROBE = r"""
import json, os, subprocess, sys
report = {"uid": os.getuid(), "pid": os.getpid(), "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
          "shm": os.listdir("/dev/shm")}
try:
    report["secret"] = open(sys.argv[1]).read()
except OSError as e:
    report["secret"] = f"refused: {type(e).__name__}"
open(f"/dev/shm/{sys.argv[2]}", "w").write("x")
subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(1000)  # {sys.argv[2]}"], start_new_session=True)
print(json.dumps(report))
"""


@pytest.fixture
def shared_folder():
    """A folder another user can read (pytest's own temp folders are private to root)."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="grader-nonroot-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_sandbox_launched_by_another_user_keeps_its_namespaces_hides_files_and_leaves_nothing(shared_folder):
    tmp_path = shared_folder
    if not _userns_allowed():
        pytest.skip("this machine refuses unprivileged user namespaces; the README's table says what holds then")
    marker = f"grader-nonroot-{uuid.uuid4().hex[:8]}"
    secret = tmp_path / "secret.txt"
    secret.write_text("instructor secret")
    secret.chmod(0o644)  # readable by anyone: only the mount namespace keeps the kernel out
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    script.chmod(0o644)
    plan = {"rlimits": {}, "new_netns": True, "namespaces": True, "shm_mb": 4, "hide": [str(secret)]}
    done = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", PYTHON,
                           str(LAUNCHER), json.dumps(plan), "--", PYTHON, str(script), str(secret), marker],
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["uid"] == NOBODY and report["pid"] == 1 and report["processes"][0] == 1
    assert len(report["processes"]) < 5  # its own namespace: not the machine's processes
    assert report["shm"] == [] and report["secret"] == ""  # a private /dev/shm; the secret covered by /dev/null
    assert not pathlib.Path(f"/dev/shm/{marker}").exists()
    time.sleep(0.5)
    assert not [p for p in pathlib.Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, marker)]


def _userns_allowed() -> bool:
    probe = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "unshare",
                            "--user", "--map-current-user", "true"], capture_output=True)
    return probe.returncode == 0


def _cmdline_has(proc: pathlib.Path, marker: str) -> bool:
    try:
        return marker in (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
