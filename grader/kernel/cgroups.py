"""Whole-sandbox memory and process limits with Linux control groups: v2 where the machine has it, else v1.

A per-process RLIMIT_AS lets several processes together use several times the limit; a control group
counts them together, tmpfs pages they write included. The grader creates one group per sandbox under
its own group, the sandbox's launcher moves itself in before anything else runs, and every process
the kernel starts inherits it. ``kill`` leaves nothing behind (``cgroup.kill`` on v2; on v1, kill every
member until none is left, which the process limit keeps finite).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

MOUNTINFO = pathlib.Path("/proc/self/mountinfo")
PROC_CGROUP = pathlib.Path("/proc/self/cgroup")
PREFIX = "grader-"


@dataclass
class ControlGroup:
    """One sandbox's group: a folder per hierarchy (v1: memory and pids; v2: one)."""

    version: int
    folders: list[pathlib.Path] = field(default_factory=list)

    @property
    def procs_files(self) -> list[str]:
        """Where the launcher writes its pid to join."""
        return [str(folder / "cgroup.procs") for folder in self.folders]

    def members(self) -> set[int]:
        pids: set[int] = set()
        for folder in self.folders:
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
        return pids

    def running(self) -> list[int]:
        """The members that have not yet ended (``ended``): the rest run nothing, and need only be reaped, which
        for an orphaned kernel is up to an init that may take tens of milliseconds, or forever."""
        return [pid for pid in self.members() if not ended(pid)]

    def peak_memory_mb(self) -> float | None:
        """The most memory the sandbox held together, where the kernel reports it."""
        for folder in self.folders:
            for name in ("memory.peak", "memory.max_usage_in_bytes"):
                with contextlib.suppress(OSError, ValueError):
                    return int((folder / name).read_text()) / 2**20
        return None

    def kill(self, deadline_s: float = 5.0) -> bool:
        """SIGKILL every member, again until none is left; True when the group is empty."""
        if self.version == 2:
            with contextlib.suppress(OSError):
                (self.folders[0] / "cgroup.kill").write_text("1")
        return kill_until_gone(self.running, deadline_s)

    def remove(self, deadline_s: float = 1.0) -> bool:
        """Delete the group's folders, trying again until ``deadline_s`` while members are still exiting or not yet
        reaped; call after ``kill``. True when every folder is gone.

        A folder with members cannot go. A member that joined after the kill (a kernel whose launch was under
        way when the grader was interrupted) is killed here, or it would outlive the grader; once the folder is
        gone, none can join.
        """
        end, pause = time.monotonic() + deadline_s, 0.001
        for folder in self.folders:
            while True:
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    kill_until_gone(self.running, 0.0)
                    if time.monotonic() >= end:
                        return False
                    time.sleep(pause)
                    pause = min(2 * pause, 0.02)
        return True


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, filesystem type, options) of every cgroup mount of this process."""
    found = []
    with contextlib.suppress(OSError):
        for line in MOUNTINFO.read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                found.append((fields[4], tail[0], set(tail[2].split(",")) | set(fields[5].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's group per v1 controller, and under "" its v2 group."""
    own = {}
    with contextlib.suppress(OSError):
        for line in PROC_CGROUP.read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                own[controller] = path
    return own


def _v2_parent() -> pathlib.Path | None:
    """A v2 folder under which this process may create groups with the memory and pids controllers."""
    mount = next((point for point, kind, _ in _mounts() if kind == "cgroup2"), None)
    own = _own_paths().get("")
    if mount is None or own is None:
        return None
    parent = pathlib.Path(mount) / own.lstrip("/")
    try:
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
    except OSError:
        return None
    return parent if {"memory", "pids"} <= enabled else None


def _v1_parents() -> dict[str, pathlib.Path]:
    """The v1 folders of this process for the memory and pids controllers, where both are mounted."""
    own, parents = _own_paths(), {}
    for point, kind, options in _mounts():
        for controller in ("memory", "pids"):
            if kind == "cgroup" and controller in options and controller in own:
                parents[controller] = pathlib.Path(point) / own[controller].lstrip("/")
    return parents if len(parents) == 2 else {}


def create(name: str, memory_mb: int, max_processes: int) -> ControlGroup | None:
    """A new group limiting memory (RAM and swap) and processes, or None where this machine gives none."""
    if os.geteuid() != 0:
        return None  # creating groups needs root, or a delegated subtree this grader does not assume
    parent = _v2_parent()
    try:
        if parent is not None:
            folder = parent / f"{PREFIX}{name}"
            folder.mkdir()
            group = ControlGroup(2, [folder])
            (folder / "memory.max").write_text(str(memory_mb * 2**20))
            with contextlib.suppress(OSError):
                (folder / "memory.swap.max").write_text("0")
            (folder / "pids.max").write_text(str(max_processes))
            return group
        parents = _v1_parents()
        if not parents:
            return None
        group = ControlGroup(1, [parents["memory"] / f"{PREFIX}{name}", parents["pids"] / f"{PREFIX}{name}"])
        for folder in group.folders:
            folder.mkdir()
        memory = group.folders[0]
        (memory / "memory.limit_in_bytes").write_text(str(memory_mb * 2**20))
        with contextlib.suppress(OSError):  # swap accounting is optional on v1
            (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_mb * 2**20))
        (group.folders[1] / "pids.max").write_text(str(max_processes))
        return group
    except OSError:
        with contextlib.suppress(UnboundLocalError):
            group.remove()
        return None


def existing() -> dict[str, ControlGroup]:
    """Every group a grader made under this process's groups, by name (without the prefix)."""
    parent = _v2_parent()
    if parent is not None:
        return {p.name[len(PREFIX):]: ControlGroup(2, [p]) for p in parent.glob(f"{PREFIX}*")}
    parents = _v1_parents()
    names = {p.name for folder in parents.values() for p in folder.glob(f"{PREFIX}*")}
    return {n[len(PREFIX):]: ControlGroup(1, [parents["memory"] / n, parents["pids"] / n]) for n in sorted(names)}


PF_EXITING = 0x4  # a task's flag from its first step out (do_exit): it never runs user code or a system call again


def ended(pid: int) -> bool:
    """Whether process ``pid`` can no longer change anything: gone, a zombie, or each of its threads exiting.

    A killed kernel takes tens of milliseconds to free its memory after its last system call returned; a
    thread still inside a system call (a long write, say) is not exiting until that call is done.
    """
    try:
        tasks = [entry.name for entry in os.scandir(f"/proc/{pid}/task")]
    except OSError:
        return True
    for tid in tasks:
        try:
            stat_line = pathlib.Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue  # this thread is gone
        state, *fields = stat_line[stat_line.rindex(")") + 2:].split()
        if state not in ("Z", "X") and not int(fields[5]) & PF_EXITING:
            return False
    return True


def kill_until_gone(processes: Callable[[], Iterable[int]], deadline_s: float) -> bool:
    """SIGKILL each of ``processes()`` and look again, until none is left or ``deadline_s`` has passed (every one
    is signalled at least once, even with no time to wait); True when none is left."""
    end, pause = time.monotonic() + deadline_s, 0.001
    while pids := list(processes()):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() >= end:
            return False
        time.sleep(pause)  # a killed kernel is gone within milliseconds; a forking loop takes rounds
        pause = min(2 * pause, 0.01)
    return True
