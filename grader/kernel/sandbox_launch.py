"""Apply the sandbox to this process, then exec the kernel: ``python sandbox_launch.py PLAN_JSON -- CMD...``.

Run as a script (not ``-m``) so that nothing but the standard library is imported
before the limits hold. The order matters:
1. a new session, so the grader can kill the whole process tree;
2. namespaces while still privileged: network, and (as root) a private mount
   namespace in which folders the sandbox user cannot traverse (e.g. a mode-700
   ``/root`` holding the Python installation), and the shared temp folder, are
   replaced by a tmpfs that reveals only the entries the kernel needs, and the
   grader's secrets are hidden;
3. resource limits;
4. the drop to the unprivileged user, then ``PR_SET_NO_NEW_PRIVS``.
A step the OS refuses is reported on stderr; the grader probes the whole plan once
before trusting it (see ``grader/sandbox.py``).
"""

import ctypes
import json
import os
import resource
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_NO_NEW_PRIVS = 38
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18

_LIBC = ctypes.CDLL(None, use_errno=True)


class SandboxSetupError(OSError):
    pass


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


def _read_only(path: str) -> None:
    """The kernel sees ``path`` but cannot change it (e.g. the shared MNIST root)."""
    _mount(path, path, None, MS_BIND | MS_REC)
    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def _limit(name: str, value: int) -> None:
    try:
        resource.setrlimit(getattr(resource, name), (value, value))
    except (ValueError, OSError) as e:
        sys.stderr.write(f"sandbox: {name} not set: {e}\n")


def apply(plan: dict) -> None:
    if os.getsid(0) != os.getpid():  # jupyter_client usually made us a session leader already
        os.setsid()
    root = os.geteuid() == 0
    if plan.get("new_netns"):
        _check(_LIBC.unshare(CLONE_NEWNET if root else CLONE_NEWUSER | CLONE_NEWNET), "unshare(net)")
    if root and (plan.get("reveal") or plan.get("hide") or plan.get("readonly")):
        _check(_LIBC.unshare(CLONE_NEWNS), "unshare(mount)")
        _mount(None, "/", None, MS_REC | MS_PRIVATE)  # our mounts never leak to the host
        for folder, entries in plan.get("reveal", {}).items():
            _reveal_only(folder, entries)
        for path in plan.get("hide", []):
            _hide(path)
        for path in plan.get("readonly", []):
            _read_only(path)
    for name, value in plan["rlimits"].items():
        _limit(name, int(value))
    user = plan.get("user")
    if user:
        uid, gid = user
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
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
