"""Plan and tear down the sandbox one kernel runs in.

What holds where (recorded per run in ``SubmissionResult.sandbox``):

| measure                         | Linux, grader as root        | Linux, other user           | macOS / other |
|---------------------------------|------------------------------|-----------------------------|---------------|
| fresh kernel, temp working dir  | yes                          | yes                         | yes           |
| scrubbed environment, 1 thread  | yes                          | yes                         | yes           |
| cell / total timeouts           | yes                          | yes                         | yes           |
| memory (RLIMIT_AS), file size,  | yes                          | yes                         | yes (AS is    |
| open files, CPU time            |                              |                             | advisory)     |
| process count (RLIMIT_NPROC)    | yes, per sandbox user        | no: it would count the      | no            |
|                                 |                              | grader's own processes      |               |
| no network                      | new network namespace        | user+network namespace when | no            |
|                                 |                              | the kernel allows it        |               |
| unprivileged user               | yes: uid 61000 + slot        | no: same user as grader     | no            |

As root the kernel cannot read the grader's files (secret, gradebook, hidden data);
as another user it could read what that user can, so run batch grading as root or
in a container when hidden checks matter.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import pathlib
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field

from grader.kernel.limits import Limits

LAUNCHER = pathlib.Path(__file__).with_name("sandbox_launch.py")
SANDBOX_UID_BASE = 61000
MAX_SLOTS = 256
# Environment the kernel needs; everything else from the grader's environment is dropped.
PASS_THROUGH = ("LANG", "LC_ALL", "TZ", "SYSTEMROOT")


@dataclass
class Sandbox:
    """One kernel's sandbox: its folders, environment, limits and the user it runs as."""

    root: pathlib.Path  # holds work/ and conn/; deleted by remove()
    limits: Limits
    user: tuple[int, int] | None = None
    new_netns: bool = False
    env: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    reveal: dict = field(default_factory=dict)  # folder -> entries to bring back under a tmpfs
    hide: list = field(default_factory=list)  # grader paths covered inside the kernel's mount namespace
    readonly: list = field(default_factory=list)  # data the kernel may read but not change
    _slot_lock: object = None

    @property
    def workdir(self) -> pathlib.Path:
        return self.root / "work"

    @property
    def conn_dir(self) -> pathlib.Path:
        return self.root / "conn"

    @property
    def export_dir(self) -> pathlib.Path:
        return self.workdir / ".grader-export"

    def rlimits(self) -> dict:
        limits = {
            "RLIMIT_AS": self.limits.memory_mb * 2**20,
            "RLIMIT_FSIZE": self.limits.max_file_mb * 2**20,
            "RLIMIT_NOFILE": self.limits.max_open_files,
            "RLIMIT_CORE": 0,
            # CPU seconds as a backstop if the wall-clock watchdog itself is killed.
            "RLIMIT_CPU": int(self.limits.total_timeout_s + self.limits.export_timeout_s + 60),
        }
        if self.user:
            limits["RLIMIT_NPROC"] = self.limits.max_processes
        return limits

    def plan_json(self) -> str:
        plan = {"rlimits": self.rlimits(), "user": list(self.user) if self.user else None,
                "new_netns": self.new_netns, "reveal": self.reveal, "hide": self.hide, "readonly": self.readonly}
        return json.dumps(plan, sort_keys=True)

    def wrap(self, command: list[str]) -> list[str]:
        """The kernel command run through the launcher that applies this sandbox."""
        return [sys.executable, str(LAUNCHER), self.plan_json(), "--", *command]

    def kill(self, pid: int | None = None) -> None:
        """Kill everything the kernel started, so nothing changes the exports while the grader reads them."""
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if self.user:
            _kill_user(self.user[0])

    def remove(self) -> None:
        """Remove the folders and free the user slot; call after ``kill``."""
        shutil.rmtree(self.root, ignore_errors=True)
        if self._slot_lock is not None:
            self._slot_lock.close()
            self._slot_lock = None


def _kill_user(uid: int) -> None:
    """SIGKILL every process of the sandbox user: children that left the kernel's process group too."""
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if proc.stat().st_uid == uid:
                os.kill(int(proc.name), signal.SIGKILL)


def _claim_slot() -> tuple[int, object] | None:
    """A sandbox uid no other grader process is using, held by an flock until the sandbox is removed."""
    lock_dir = pathlib.Path(tempfile.gettempdir()) / "grader-slots"
    lock_dir.mkdir(mode=0o700, exist_ok=True)
    for slot in range(MAX_SLOTS):
        handle = open(lock_dir / f"{slot}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return SANDBOX_UID_BASE + slot, handle
    return None


def needed_paths() -> list[str]:
    """What the kernel must reach: the interpreter, its packages, and this repository (editable installs)."""
    paths = {os.path.realpath(sys.executable), sys.prefix, sys.base_prefix,
             str(pathlib.Path(__file__).resolve().parents[2])}
    paths.update(sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib"))
    return sorted(os.path.realpath(p) for p in paths)


def reveal_plan(paths: list[str]) -> dict[str, list[str]]:
    """For each ancestor the sandbox user cannot traverse, the entries inside it to bring back.

    >>> import tempfile, os; d = tempfile.mkdtemp(); os.makedirs(f"{d}/a/b"); os.chmod(d, 0o700)
    >>> reveal_plan([f"{d}/a/b"]) == {d: ["a"]}
    True
    """
    plan: dict[str, set[str]] = {}
    for path in paths:
        parts = pathlib.PurePosixPath(path).parts
        for depth in range(1, len(parts) - 1):
            folder = str(pathlib.PurePosixPath(*parts[: depth + 1]))
            with contextlib.suppress(OSError):
                if not os.stat(folder).st_mode & stat.S_IXOTH:
                    plan.setdefault(folder, set()).add(parts[depth + 1])
    # Shallow folders first: deeper reveals happen inside what the shallower ones bring back.
    return {folder: sorted(plan[folder]) for folder in sorted(plan, key=lambda f: f.count("/"))}


@functools.lru_cache(maxsize=32)
def _plan_works(plan_json: str) -> bool:
    """Run a plan once with a trivial command: can the sandbox user reach the interpreter and packages?

    Cached per plan, so a batch pays for one probe. A plan that reveals the temp folder
    is probed with a throwaway folder of its own in place of the sandbox's.
    """
    plan = json.loads(plan_json)
    with tempfile.TemporaryDirectory(prefix="grader-probe-") as own:
        tmp = os.path.realpath(tempfile.gettempdir())
        kept = plan.pop("reveal_tmp", None)
        if kept is not None:
            plan["reveal"][tmp] = sorted({pathlib.Path(own).name, *kept})
        probe = subprocess.run([sys.executable, str(LAUNCHER), json.dumps(plan), "--", sys.executable, "-c",
                                "import ipykernel, grader.kernel.limits"], capture_output=True, timeout=120, cwd="/")
    return probe.returncode == 0


def _network_isolation_available() -> bool:
    if sys.platform != "linux":
        return False
    if os.geteuid() == 0:
        return True
    # Unprivileged user namespaces are a kernel setting; test them rather than guess.
    return _plan_works(json.dumps({"rlimits": {}, "new_netns": True}))


def scrubbed_env(workdir: pathlib.Path, extra: dict | None = None) -> dict:
    """The kernel's whole environment: paths into its own folder, one thread, headless plots."""
    venv_bin = str(pathlib.Path(sys.executable).parent)
    env = {k: os.environ[k] for k in PASS_THROUGH if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update({
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir / "tmp"),
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(workdir / ".config" / "matplotlib"),
        "IPYTHONDIR": str(workdir / ".ipython"),
        "JUPYTER_CONFIG_DIR": str(workdir / ".jupyter"),
        "JUPYTER_DATA_DIR": str(workdir / ".local" / "share" / "jupyter"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "GRADER_SANDBOX": "1",  # lets in-notebook helpers (grader.quick) know the official run is on
    })
    env.update(extra or {})
    return env


def open_sandbox(limits: Limits, extra_env: dict | None = None, hide: list[str] | tuple[str, ...] = (),
                 readonly: list[str] | tuple[str, ...] = (), isolate_user: bool = True,
                 isolate_network: bool = True) -> Sandbox:
    """Create the folders, pick the user and decide which measures hold here.

    ``hide`` lists grader files (secret, gradebook folder) the kernel must not see even
    if their permissions would let it; ``readonly`` lists data it may read but not change.
    """
    root = pathlib.Path(tempfile.mkdtemp(prefix="grader-"))
    sandbox = Sandbox(root=root, limits=limits)
    for folder in (sandbox.workdir, sandbox.conn_dir, sandbox.workdir / "tmp"):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if isolate_network:
        sandbox.new_netns = _network_isolation_available()
    if isolate_user and os.geteuid() == 0 and sys.platform == "linux":
        sandbox.readonly = [os.path.realpath(p) for p in readonly if os.path.exists(p)]
        needed = needed_paths() + sandbox.readonly
        sandbox.reveal = reveal_plan(needed)
        # Inside the kernel the shared temp folder shows only this sandbox and what the kernel needs from it
        # (a checkout or venv kept there, read-only data): not other sandboxes, not the grader's temp files.
        tmp = os.path.realpath(tempfile.gettempdir())
        if root.parent == pathlib.Path(tmp) and tmp not in sandbox.reveal:
            kept = {pathlib.Path(p).relative_to(tmp).parts[0] for p in needed
                    if pathlib.Path(p).is_relative_to(tmp) and p != tmp}
            sandbox.reveal[tmp] = sorted({root.name} | kept)
        sandbox.hide = [os.path.realpath(p) for p in hide if os.path.exists(p)]
        claimed = _claim_slot()
        if claimed:
            uid, lock = claimed
            sandbox.user, sandbox._slot_lock = (uid, uid), lock
            probe_plan = json.loads(sandbox.plan_json())
            shown = probe_plan["reveal"].pop(tmp, None)
            # Probe with what stays the same from sandbox to sandbox, so one probe serves a whole batch.
            probe_plan["reveal_tmp"] = None if shown is None else [e for e in shown if e != root.name]
            probe_plan["readonly"] = []  # reading data is not what the probe tests
            if _plan_works(json.dumps(probe_plan, sort_keys=True)):
                _kill_user(uid)  # leftovers of a grader that was killed mid-run
            else:
                sandbox.user, sandbox.reveal, sandbox.hide = None, {}, []
                sandbox._slot_lock = None
                lock.close()
    sandbox.env = scrubbed_env(sandbox.workdir, extra_env)
    os.chmod(root, 0o711)  # the sandbox user may traverse but not list the grader's folder
    if sandbox.user:
        for folder in (sandbox.workdir, sandbox.conn_dir, sandbox.workdir / "tmp"):
            os.chown(folder, *sandbox.user)
    sandbox.report = {
        "fresh_kernel": True,
        "temp_workdir": True,
        "scrubbed_env": True,
        "timeouts": True,
        "rlimits": sorted(sandbox.rlimits()),
        "no_network": sandbox.new_netns,
        "unprivileged_user": sandbox.user is not None,
        "private_mounts": bool(sandbox.reveal or sandbox.hide),
        "read_only_data": bool(sandbox.readonly),
        "output_cap_kb": limits.max_output_kb,
    }
    return sandbox
