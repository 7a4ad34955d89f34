"""Apply the sandbox to this process, then exec the kernel: ``python sandbox_launch.py PLAN_JSON -- CMD...``.

Run as a script (not ``-m``) so that nothing but the standard library is imported
before the limits hold. The order matters:

1. a new session, so the grader can signal the whole tree;
2. the control group (memory and processes counted for the whole sandbox), joined first
   so that everything started later is in it;
3. namespaces while still privileged: network, IPC (SysV segments die with the sandbox),
   mounts and PIDs; without root, inside a new user namespace where the kernel allows it;
4. a fork: the child is PID 1 of the new PID namespace, and when it dies the OS kills
   every process left in the namespace, daemons and double forks included. This
   process stays outside as a relay: it forwards signals to the child and exits as the
   child did, and if it is killed the child dies with it (PR_SET_PDEATHSIG);
5. in the child, private mounts: a fresh /proc (the grader's command line and other
   processes are invisible), fresh small tmpfs on /dev/shm, /run, /var/tmp, the shared
   temp folder reduced to this sandbox and what the kernel needs, the grader's secrets
   hidden, the reference solutions replaced by a stub that raises ImportError, and data
   read-only;
6. resource limits, the drop to the unprivileged user, then ``PR_SET_NO_NEW_PRIVS``.

A step the OS refuses is reported on stderr; the grader probes the whole plan once
before trusting it (see ``grader/kernel/sandbox.py``).
"""

import ctypes
import json
import os
import resource
import signal
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
RELAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
# Fresh, small, private instead of the machine's shared ones: what the kernel writes there dies with it.
PRIVATE_DIRS = ("/dev/shm", "/run", "/var/tmp")

_LIBC = ctypes.CDLL(None, use_errno=True)


class SandboxSetupError(OSError):
    pass


def die_with_parent(signum: int, parent: int | None = None) -> bool:
    """Have ``signum`` sent to this process when its parent ends, however it ends; False where ``parent`` (its pid,
    read before) has ended already, so that no signal will come. A parent that is pid 1 (a container's) is a parent
    like any other."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    return parent is None or os.getppid() == parent


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SandboxSetupError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source, target, fstype, flags, data=None) -> None:
    enc = (lambda s: s.encode() if s is not None else None)
    _check(_LIBC.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _reveal_only(folder: str, entries: list) -> None:
    """Cover ``folder`` with an empty tmpfs, then bind back just ``entries`` (names inside it).

    The entries are held open as O_PATH descriptors across the overmount, so no staging
    folder is needed (a staging folder inside ``folder`` would be covered too).
    """
    held = []
    for name in entries:
        path = os.path.join(folder, name)
        held.append((name, os.open(path, os.O_PATH), os.path.isdir(path)))
    _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
    for name, fd, is_dir in held:
        target = os.path.join(folder, name)
        os.mkdir(target) if is_dir else open(target, "w").close()
        _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        os.close(fd)


def _hide(path: str) -> None:
    if os.path.isdir(path):
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "mode=0000,size=4k")
    elif os.path.exists(path):
        _mount("/dev/null", path, None, MS_BIND)


def _stub(path: str, stub: str) -> None:
    """Cover a module's source with a stub that raises ImportError: the reference solution is not there to use."""
    _mount(stub, path, None, MS_BIND)
    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def _read_only(path: str) -> None:
    """The kernel sees ``path`` but cannot change it (e.g. the shared MNIST root)."""
    _mount(path, path, None, MS_BIND | MS_REC)
    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def _limit(name: str, value: int) -> None:
    try:
        resource.setrlimit(getattr(resource, name), (value, value))
    except (ValueError, OSError) as e:
        sys.stderr.write(f"sandbox: {name} not set: {e}\n")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _join_control_group(procs_files: list) -> None:
    for path in procs_files:
        try:
            _write(path, str(os.getpid()))
        except OSError as e:
            raise SandboxSetupError(e.errno or 1, f"join {path}: {e.strerror}") from None


def _unshare(plan: dict, root: bool) -> None:
    flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWUTS if plan.get("namespaces") else 0
    if plan.get("new_netns"):
        flags |= CLONE_NEWNET
    if not flags:
        return
    if not root:
        uid, gid = os.getuid(), os.getgid()
        _check(_LIBC.unshare(flags | CLONE_NEWUSER), "unshare(user namespace)")
        # The same uid inside as outside: the kernel gains no power over the machine's files.
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    else:
        _check(_LIBC.unshare(flags), "unshare(namespaces)")


def _relay(child: int) -> None:
    """Forward signals to the child, wait for it, and end as it ended."""
    for sig in RELAYED:
        signal.signal(sig, lambda signum, frame: os.kill(child, signum))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            os._exit(70)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 70)


def _private_mounts(plan: dict, root: bool) -> None:
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # our mounts never leak to the host
    if plan.get("namespaces"):
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        for folder in PRIVATE_DIRS:
            if os.path.isdir(folder) and not os.path.islink(folder):
                size = plan.get("shm_mb", 64) if folder == "/dev/shm" else 16
                _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={size}m")
    # Shallow folders first, whatever order the plan lists them in: deeper reveals happen inside what the shallower
    # ones bring back (the temp folder, then a venv kept in it).
    for folder, entries in sorted(plan.get("reveal", {}).items(), key=lambda item: item[0].count("/")):
        _reveal_only(folder, entries)
    for path in plan.get("hide", []):
        _hide(path)
    for path in plan.get("stub", []):
        _stub(path, plan["stub_source"])
    for path in plan.get("readonly", []):
        _read_only(path)
    if plan.get("work_mb"):
        _mount("tmpfs", plan["workdir"], "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0700,size={plan['work_mb']}m")
        os.mkdir(os.path.join(plan["workdir"], "tmp"), 0o700)
        os.chdir(plan["workdir"])  # into the new mount: the old folder is now underneath it


def apply(plan: dict) -> None:
    if os.getsid(0) != os.getpid():  # jupyter_client usually made us a session leader already
        os.setsid()
    root = os.geteuid() == 0
    _join_control_group(plan.get("cgroup_procs", []))
    _unshare(plan, root)
    if plan.get("namespaces"):
        child = os.fork()
        if child:
            _relay(child)  # never returns
        # The child: PID 1 of its namespace; its own process group, so signals reach it once, from the relay.
        die_with_parent(signal.SIGKILL)
        os.setpgid(0, 0)
    if plan.get("namespaces") or plan.get("reveal") or plan.get("hide") or plan.get("readonly") or plan.get("stub"):
        _private_mounts(plan, root)
    for name, value in plan["rlimits"].items():
        _limit(name, int(value))
    user = plan.get("user")
    if user:
        uid, gid = user
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    if plan.get("namespaces"):
        die_with_parent(signal.SIGKILL)  # again: changing the uid cleared it
    _LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    os.umask(0o077)


def main(argv: list) -> None:
    plan = json.loads(argv[1])
    command = argv[argv.index("--") + 1:]
    try:
        apply(plan)
    except SandboxSetupError as e:
        sys.stderr.write(f"sandbox: setup failed: {e}\n")
        sys.exit(70)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv)
