"""A sandbox's folder on the host: its size cap, its owner, and the clean-up of what a killed grader left.

As root, the folder is a tmpfs of the sandbox's disk size, so everything the kernel writes
(working folder, export, temp files) is capped together and charged to its memory group.
Each folder, and each control group, names the grader process that owns it (pid and start time);
what a gone owner left (a batch killed with SIGKILL) is removed, mounts and control groups
included, when the next sandbox opens.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pathlib
import shutil
import tempfile

from grader.kernel import cgroups

PREFIX = "grader-"
MNT_DETACH = 2
_LIBC = ctypes.CDLL(None, use_errno=True)


def font_cache() -> pathlib.Path | None:
    """The folder where the kernel factory keeps matplotlib's font list between batches; None where it cannot.

    Building the list scans every font on the machine (0.2-0.3 s of each cold start). Only the grader's uid writes
    it, and every sandbox hides it (``_plan_mounts``), so no kernel can leave a list for the next one to load.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = pathlib.Path(base) / "grader" / "matplotlib"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError:
        return None
    mine = st.st_uid == os.geteuid() and not st.st_mode & 0o022
    return folder if mine and os.access(folder, os.W_OK) else None


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks, so a reused pid is not mistaken for the owner."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_tag() -> str:
    """This process, as folder and group names carry it: ``<pid>.<start time>``."""
    return f"{os.getpid()}.{_start_time(os.getpid())}"


def _tag_alive(tag: str) -> bool:
    pid, _, start = tag.partition(".")
    return not pid.isdigit() or _start_time(int(pid)) == start


def cap(folder: pathlib.Path, megabytes: int) -> bool:
    """Make ``folder`` a tmpfs of ``megabytes`` (root only); whether it is one now."""
    if os.geteuid() != 0:
        return False
    data = f"size={megabytes}m,mode=0700,nr_inodes=65536".encode()
    return _LIBC.mount(b"tmpfs", str(folder).encode(), b"tmpfs", ctypes.c_ulong(2 | 4), data) == 0  # nosuid,nodev


def owned_temp_dir(what: str) -> tempfile.TemporaryDirectory:
    """A temporary folder named after this process, as a sandbox's is: one a grader killed outright leaves behind is
    removed by the next ``clean_stale``. E.g. ``with owned_temp_dir("probe") as folder: ...``."""
    return tempfile.TemporaryDirectory(prefix=f"{PREFIX}{owner_tag()}-{what}-")


def make_root(disk_mb: int) -> tuple[pathlib.Path, bool]:
    """A new sandbox folder owned by this process, and whether it is a size-capped tmpfs."""
    root = pathlib.Path(tempfile.mkdtemp(prefix=f"{PREFIX}{owner_tag()}-"))
    return root, cap(root, disk_mb)


def remove_root(root: pathlib.Path, capped: bool) -> None:
    if capped:  # MNT_DETACH of the root takes the mounts inside it (the export's) along
        _LIBC.umount2(str(root).encode(), MNT_DETACH)
    shutil.rmtree(root, ignore_errors=True)


def _is_mount(path: pathlib.Path) -> bool:
    with contextlib.suppress(OSError):
        return any(line.split()[4] == str(path) for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines())
    return False


def clean_stale(temp: pathlib.Path | None = None) -> list[str]:
    """Remove sandboxes (control groups, mounts, folders) whose grader died; the names of what went.

    Control groups first: killing their members stops anything that could still write into a folder.
    """
    removed = []
    for name, group in cgroups.existing().items():
        if not _tag_alive(name.partition("-")[0]) and group.kill():
            group.remove()
            removed.append(f"control group {PREFIX}{name}")
    for root in (temp or pathlib.Path(tempfile.gettempdir())).glob(f"{PREFIX}*-*"):
        tag = root.name[len(PREFIX):].partition("-")[0]
        if root.is_dir() and "." in tag and not _tag_alive(tag):
            remove_root(root, _is_mount(root))
            removed.append(str(root))
    return removed
