"""Plan and tear down the sandbox one kernel runs in.

What holds where is recorded per run in ``SubmissionResult.sandbox``; the README's sandbox table
says it for each kind of machine. As root, on Linux: an unprivileged uid per sandbox; new network,
IPC, mount and PID namespaces; the kernel as PID 1 of its namespace, so that killing it kills
everything it started; a private /proc, /dev/shm, /run and /var/tmp; the shared temp folder
reduced to this sandbox; the grader's secrets, the gradebook and the class folder hidden; a control
group counting memory and processes for the whole sandbox; a size-capped tmpfs for everything it
writes. As another user, the same namespaces where the kernel allows unprivileged user namespaces,
and per-process limits (RLIMIT) only. Elsewhere: a fresh kernel, a temp folder and the limits
Python can set.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import pathlib
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field

from grader.kernel import cgroups, sandbox_files
from grader.kernel.factory import FactoryHandle
from grader.kernel.limits import Limits

LAUNCHER = pathlib.Path(__file__).with_name("sandbox_launch.py")
# The venv's interpreter, its path normalised: one started as `../.venv/bin/python` names a folder on the way that the
# sandbox user may not reach (the kernel then cannot be exec'd). Not resolved: the venv's link is what makes it the
# venv.
INTERPRETER = os.path.normpath(sys.executable)
SANDBOX_UID_BASE = 61000
MAX_SLOTS = 256
# Environment the kernel needs; everything else from the grader's environment is dropped.
PASS_THROUGH = ("LANG", "LC_ALL", "TZ", "SYSTEMROOT")
EXPORT_MB = 600  # the export's own space: the largest weights file the grader loads (512 MB) and its graphs
STUB_NAME = "unavailable.py"
STUB = ('raise ImportError("this part of the reference is not available in the official run: the grader credits '
        'your own work only")\n')


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
    stub: list = field(default_factory=list)  # module files replaced by a stub that raises ImportError
    namespaces: bool = False  # IPC, mount and PID namespaces, private /proc, /dev/shm, /run, /var/tmp
    group: cgroups.ControlGroup | None = None  # memory and processes counted for the whole sandbox
    disk_capped: bool = False  # the folder is a tmpfs of limits.max_disk_mb
    launcher_pid: int | None = None  # the kernel's launcher while it runs: its process group is the kernel's
    factory: FactoryHandle | None = None  # a warm factory to fork the kernel from, else a fresh launch
    _slot_lock: object = None

    @property
    def workdir(self) -> pathlib.Path:
        return self.root / "work"

    @property
    def conn_dir(self) -> pathlib.Path:
        return self.root / "conn"

    @property
    def export_dir(self) -> pathlib.Path:
        """Beside the working folder, not in it: a notebook that fills its disk still leaves room for the export."""
        return self.root / "export"

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

    def plan(self, with_group: bool = True) -> dict:
        """What the launcher applies (``sandbox_launch.apply``)."""
        return {"rlimits": self.rlimits(), "user": list(self.user) if self.user else None,
                "new_netns": self.new_netns, "namespaces": self.namespaces, "shm_mb": self.limits.max_shm_mb,
                "reveal": self.reveal, "hide": self.hide, "readonly": self.readonly, "stub": self.stub,
                "stub_source": str(self.root / STUB_NAME),
                "cgroup_procs": self.group.procs_files if self.group and with_group else [],
                # Without root the folder cannot be a tmpfs on the machine: the working folder becomes one
                # inside the kernel's own mount namespace, capped the same (the export stays outside it).
                "work_mb": self.limits.max_disk_mb if self.namespaces and not self.disk_capped else None,
                "workdir": str(self.workdir)}

    def plan_json(self) -> str:
        return json.dumps(self.plan(), sort_keys=True)

    def wrap(self, command: list[str]) -> list[str]:
        """The kernel command run through the launcher that applies this sandbox."""
        return [INTERPRETER, str(LAUNCHER), self.plan_json(), "--", *command]

    def kill(self, pid: int | None = None, wait: bool = True) -> None:
        """Kill everything the kernel started, so nothing changes the exports while the grader reads them.

        The launcher's process group first (with the PID namespace, its death takes every process of the
        namespace with it), then every member of the control group and every process of the sandbox user,
        repeated until none is left. ``wait=False`` sends the signals once and returns: the processes die
        (tens of milliseconds for a kernel's memory) while the caller does something else, then calls ``kill()``.
        """
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if self.group is not None:
            self.group.kill(deadline_s=5.0 if wait else 0.0)
        if self.user:
            _kill_user(self.user[0], 0.5 if wait else 0.0)

    def remove(self) -> None:
        """Remove the folders and the control group and free the user slot; call after ``kill``."""
        _OPEN.pop(id(self), None)
        if self.group is not None:
            group, self.group = self.group, None
            if not group.remove(deadline_s=0.0):
                # Its killed members still free their memory (tens of milliseconds) or wait to be reaped; they run
                # nothing, so the grader goes on. Not a daemon: the process waits for it (a second at most) to exit.
                threading.Thread(target=group.remove, name="grader-group-removal").start()
        sandbox_files.remove_root(self.root, self.disk_capped)
        if self._slot_lock is not None:
            self._slot_lock.close()
            self._slot_lock = None


# This process's sandboxes not yet removed, so an interrupted batch's worker can stop its kernels at once.
_OPEN: dict[int, Sandbox] = {}


def stop_open_sandboxes() -> int:
    """Kill every kernel this process still runs and remove its sandbox; how many there were.

    Called from a worker's SIGTERM handler, while the code that opened them is suspended mid-way.
    """
    stopped = 0
    for sandbox in list(_OPEN.values()):
        if sandbox.launcher_pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(sandbox.launcher_pid, signal.SIGKILL)
            _reap(sandbox.launcher_pid)  # unreaped, the dead launcher would stay a member of its control group
        sandbox.kill()
        sandbox.remove()
        stopped += 1
    return stopped


def _reap(pid: int, wait_s: float = 1.0) -> None:
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            return
        time.sleep(0.005)


def _user_processes(uid: int) -> list[int]:
    """The live processes of ``uid``: zombies are left out, as they run nothing and only their parent can clear them
    (an orphan's new parent may be a container's init that never reaps)."""
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and proc.stat().st_uid == uid and not cgroups.ended(int(proc.name)):
                found.append(int(proc.name))
    return found


def _kill_user(uid: int, deadline_s: float = 0.5) -> None:
    """SIGKILL every process of the sandbox user, again until none is left (a forking loop races one pass)."""
    cgroups.kill_until_gone(lambda: _user_processes(uid), deadline_s)


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
    return {folder: sorted(entries) for folder, entries in plan.items()}


@functools.lru_cache(maxsize=32)
def _plan_works(plan_json: str) -> bool:
    """Run a plan once with a trivial command: can the sandbox user reach the interpreter and packages?

    Cached per plan, so a batch pays for one probe. A plan that reveals the temp folder
    is probed with a throwaway folder of its own in place of the sandbox's.
    """
    plan = json.loads(plan_json)
    with sandbox_files.owned_temp_dir("probe") as own:
        tmp = os.path.realpath(tempfile.gettempdir())
        kept = plan.pop("reveal_tmp", None)
        if kept is not None:
            plan["reveal"][tmp] = sorted({pathlib.Path(own).name, *kept})
        probe = subprocess.run([INTERPRETER, str(LAUNCHER), json.dumps(plan), "--", INTERPRETER, "-c",
                                "import ipykernel, grader.kernel.limits"], capture_output=True, timeout=120, cwd="/")
    return probe.returncode == 0


# Plans (their user left out) that a sandbox uid was shown to run: the others can run them too, as these uids differ
# only in number (no groups, nothing of their own to reach). A failure stays that uid's own (leftovers of a killed
# grader can exhaust its process limit until _kill_user runs).
_USER_PLANS_WORKING: set[str] = set()


def _user_plan_works(plan: dict, uid: int) -> bool:
    """``_plan_works`` for ``plan`` run as sandbox user ``uid``; probed once for every uid where it works."""
    key = json.dumps({**plan, "user": None}, sort_keys=True)
    if key in _USER_PLANS_WORKING:
        return True
    works = _plan_works(json.dumps({**plan, "user": [uid, uid]}, sort_keys=True))
    if works:
        _USER_PLANS_WORKING.add(key)
    return works


def _network_isolation_available() -> bool:
    if sys.platform != "linux":
        return False
    if os.geteuid() == 0:
        return True
    # Unprivileged user namespaces are a kernel setting; test them rather than guess.
    return _plan_works(json.dumps({"rlimits": {}, "new_netns": True}))


@functools.lru_cache(maxsize=1)
def _namespaces_available() -> bool:
    """Whether IPC, mount and PID namespaces with a fresh /proc work here (as root, or in a user namespace)."""
    if sys.platform != "linux":
        return False
    return _plan_works(json.dumps({"rlimits": {}, "namespaces": True, "shm_mb": 1}))


@functools.lru_cache(maxsize=1)
def _clean_stale_once() -> list[str]:
    """What killed graders left behind, removed once per process (sandbox_files.clean_stale)."""
    return sandbox_files.clean_stale()


def scrubbed_env(workdir: pathlib.Path, extra: dict | None = None) -> dict:
    """The kernel's whole environment: paths into its own folder, one thread, headless plots."""
    venv_bin = str(pathlib.Path(sys.executable).parent)
    env = {k: os.environ[k] for k in PASS_THROUGH if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update({
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir / "tmp"),
        # torch.compile's caches: torch would take the first folder it ever chose, in a factory-forked kernel the
        # factory's own, which the kernel cannot write.
        "TORCHINDUCTOR_CACHE_DIR": str(workdir / "tmp" / "torchinductor"),
        "TRITON_CACHE_DIR": str(workdir / "tmp" / "triton"),
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
                 isolate_network: bool = True, stub: list[str] | tuple[str, ...] = ()) -> Sandbox:
    """Create the folders, pick the user and decide which measures hold here.

    ``hide`` lists grader files (secret, gradebook folder, class folder, solution notebooks) the
    kernel must not see even if their permissions would let it; ``readonly`` lists data it may
    read but not change; ``stub`` lists module files that must raise ImportError when imported.
    """
    _clean_stale_once()
    root, capped = sandbox_files.make_root(limits.max_disk_mb)
    sandbox = Sandbox(root=root, limits=limits, disk_capped=capped)
    _OPEN[id(sandbox)] = sandbox  # from here on, stop_open_sandboxes can remove what exists of it
    os.chmod(root, 0o711)  # the sandbox user may traverse but not list the grader's folder
    for folder in (sandbox.workdir, sandbox.conn_dir, sandbox.workdir / "tmp", sandbox.export_dir):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if capped:
        sandbox_files.cap(sandbox.export_dir, EXPORT_MB)
    linux = sys.platform == "linux"
    if isolate_network:
        sandbox.new_netns = _network_isolation_available()
    sandbox.namespaces = linux and _namespaces_available()
    as_root = isolate_user and os.geteuid() == 0 and linux
    if as_root or sandbox.namespaces:
        veiled = _plan_mounts(sandbox, hide, readonly, stub, reveal_untraversable=as_root)
    if as_root:
        _claim_user(sandbox, veiled)
    if as_root or sandbox.namespaces:
        # Whole-sandbox memory: the processes, and the tmpfs pages they write (disk and /dev/shm).
        memory = limits.memory_mb + (limits.max_disk_mb if capped else 0) + limits.max_shm_mb
        sandbox.group = cgroups.create(root.name[len(sandbox_files.PREFIX):], memory, limits.max_processes)
    sandbox.env = scrubbed_env(sandbox.workdir, extra_env)
    if sandbox.user:
        for folder in (sandbox.workdir, sandbox.conn_dir, sandbox.workdir / "tmp", sandbox.export_dir):
            os.chown(folder, *sandbox.user)
    sandbox.report = _report(sandbox)
    return sandbox


def _plan_mounts(sandbox: Sandbox, hide, readonly, stub, reveal_untraversable: bool) -> list[str]:
    """What the kernel's mount namespace shows: data read-only, secrets hidden, the temp folder reduced.

    Returns the hidden folders shown only in part (``_cover``): hiding, they stay whoever the kernel runs as.
    """
    sandbox.readonly = [os.path.realpath(p) for p in readonly if os.path.exists(p)]
    needed = needed_paths() + sandbox.readonly
    sandbox.reveal = reveal_plan(needed) if reveal_untraversable else {}
    # Inside the kernel the shared temp folder shows only this sandbox and what the kernel needs from it
    # (a checkout or venv kept there, read-only data): not other sandboxes, not the grader's temp files.
    tmp = os.path.realpath(tempfile.gettempdir())
    if sandbox.root.parent == pathlib.Path(tmp) and tmp not in sandbox.reveal:
        kept = {pathlib.Path(p).relative_to(tmp).parts[0] for p in needed
                if pathlib.Path(p).is_relative_to(tmp) and p != tmp}
        sandbox.reveal[tmp] = sorted({sandbox.root.name} | kept)
    fonts = sandbox_files.font_cache()  # the factory's font list: written by the grader only
    hidden = [os.path.realpath(p) for p in (*hide, *([str(fonts)] if fonts else [])) if os.path.exists(p)]
    sandbox.hide = _cover(hidden, [*needed, str(sandbox.root)], sandbox.reveal)
    sandbox.stub = sorted({os.path.realpath(p) for p in stub if os.path.isfile(p)})
    if sandbox.stub:
        (sandbox.root / STUB_NAME).write_text(STUB)
        os.chmod(sandbox.root / STUB_NAME, 0o644)
    return [p for p in hidden if p in sandbox.reveal]


def _cover(hidden: list[str], needed: list[str], reveal: dict[str, list[str]]) -> list[str]:
    """Which of ``hidden`` to cover whole; a folder holding what the kernel runs from becomes a reveal in ``reveal``.

    A gradebook kept in the temp folder, or in a home folder holding the venv, hides its folder: covering that whole
    would take the sandbox or the interpreter from the kernel. Such a folder shows only the entries leading to them.
    A folder the kernel needs whole (a gradebook beside the checkout's own files) is left: the caller names the files
    inside it that must not be seen.

    >>> reveal = {}; _cover(["/srv/secret", "/home/ta", "/opt/venv"], ["/opt/venv", "/home/ta/venv/bin"], reveal)
    ['/srv/secret']
    >>> reveal
    {'/home/ta': ['venv']}
    """
    covered = []
    for path in hidden:
        inside = [p for p in needed if pathlib.PurePosixPath(p).is_relative_to(path)]
        if not inside:
            covered.append(path)
        elif path not in inside:
            kept = {pathlib.PurePosixPath(p).relative_to(path).parts[0] for p in inside}
            reveal[path] = sorted(kept.union(reveal.get(path, [])))
    return covered


def _claim_user(sandbox: Sandbox, veiled: list[str]) -> None:
    """An unprivileged uid for this sandbox, once the whole plan is shown to work for it; else none."""
    claimed = _claim_slot()
    if not claimed:
        return
    uid, lock = claimed
    sandbox.user, sandbox._slot_lock = (uid, uid), lock
    probe_plan = json.loads(json.dumps(sandbox.plan(with_group=False)))  # a copy: the probe edits it
    tmp = os.path.realpath(tempfile.gettempdir())
    shown = probe_plan["reveal"].pop(tmp, None)
    # Probe with what stays the same from sandbox to sandbox, so one probe serves a whole batch.
    probe_plan["reveal_tmp"] = None if shown is None else [e for e in shown if e != sandbox.root.name]
    probe_plan["readonly"] = []  # reading data is not what the probe tests
    probe_plan["hide"], probe_plan["stub"] = [], []
    # This sandbox's own paths would make every probe unique: a batch of 200 would pay 200 probes.
    probe_plan["stub_source"] = probe_plan["workdir"] = ""
    probe_plan["work_mb"] = None
    if _user_plan_works(probe_plan, uid):
        _kill_user(uid)  # leftovers of a grader that was killed mid-run
    else:
        # The kernel runs as the grader's user, but what is hidden stays hidden wherever a mount namespace holds:
        # a failed probe must never show the secret or the solutions.
        sandbox.user = None
        sandbox.reveal = {f: e for f, e in sandbox.reveal.items() if f in veiled} if sandbox.namespaces else {}
        if not sandbox.namespaces:
            sandbox.hide = []
        sandbox._slot_lock = None
        lock.close()


def _report(sandbox: Sandbox) -> dict:
    """Which measures hold for this run, as the gradebook records them."""
    limits, group = sandbox.limits, sandbox.group
    return {
        "fresh_kernel": True,
        "temp_workdir": True,
        "scrubbed_env": True,
        "timeouts": True,
        "rlimits": sorted(sandbox.rlimits()),
        "no_network": sandbox.new_netns,
        "unprivileged_user": sandbox.user is not None,
        "private_mounts": bool(sandbox.reveal or sandbox.hide),
        "solutions_hidden": bool(sandbox.stub),
        "read_only_data": bool(sandbox.readonly),
        "pid_namespace": sandbox.namespaces,  # killing the kernel kills all it started; a private /proc
        "ipc_namespace": sandbox.namespaces,
        "private_tmp": sandbox.namespaces,  # /dev/shm, /run, /var/tmp
        "memory_limit": f"whole sandbox, cgroup v{group.version}" if group else "per process (RLIMIT_AS)",
        "process_limit": (f"whole sandbox, cgroup v{group.version}" if group else
                          "per user (RLIMIT_NPROC)" if sandbox.user else "none"),
        "disk_limit_mb": limits.max_disk_mb if sandbox.disk_capped or sandbox.namespaces else None,
        "output_cap_kb": limits.max_output_kb,
    }
