"""Re-check a notebook each time it is saved, with kernels forked from one warm factory.

The self-check of ``grader check``, never the grade: the same sandbox and public checks, rerun
whenever the file's contents change (a save that changes nothing reruns nothing). Each check's
kernel starts while the student is still editing (``engine.grade_next``), so a save costs the
notebook's own cells and the scoring, not a kernel's start.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import threading
import time
from collections.abc import Callable

from grader.assignments.catalog import Exercise
from grader.grading.captures import CaptureCache
from grader.grading.engine import grade_next
from grader.kernel.factory import FactoryHandle
from grader.kernel.notebook import InvalidNotebook, Submission, read_submission
from grader.results import SubmissionResult

POLL_S = 0.002  # a stat() per poll (microseconds); the file is read only when its size, time or inode changed
SETTLE_S = 0.3  # a save that is not a notebook is reported only if the file stays so this long


class _Saves:
    """The watched file's contents as they change: each new version once, read only when its stat changed."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path, self.stat, self.key, self.digest = path, None, None, None

    def changed(self) -> str | None:
        """The new contents' digest (sha256) when the file changed since the last call, else None."""
        try:
            st = os.stat(self.path)
            signature = (st.st_mtime_ns, st.st_size, st.st_ino)
            if signature == self.stat:
                return None
            data = self.path.read_bytes()
        except OSError:  # between an editor's delete and its rename: wait for the next poll
            return None
        self.stat = signature
        # Compared without trailing whitespace: an editor (and nbformat.write) may write the newline at the end
        # apart, and the version caught between the two writes is the same notebook, not a save to check again.
        key = hashlib.sha256(data.rstrip()).hexdigest()
        if key == self.key:
            return None
        self.key, self.digest = key, hashlib.sha256(data).hexdigest()
        return self.digest


def next_save(saves: _Saves, stop: threading.Event,
              on_invalid: Callable[[str, str], None]) -> Submission | None:
    """The next changed version of the watched file as a notebook; None once ``stop`` is set.

    A version that cannot be read is retried once the editor's next write lands; only one that stays
    unreadable for ``SETTLE_S`` goes to ``on_invalid(reason, digest)``.
    """
    waiting = False  # a version already seen (while settling) is still to be read
    while not stop.is_set():
        if waiting or saves.changed() is not None:
            waiting = False
            try:
                return read_submission(saves.path)
            except InvalidNotebook as e:
                settled = _unchanged_for(saves, stop, SETTLE_S)
                if settled is None:
                    return None
                if not settled:
                    waiting = True  # caught half-written: the editor's next write is the save to check
                    continue
                on_invalid(str(e), saves.digest)
        stop.wait(POLL_S)
    return None


def _unchanged_for(saves: _Saves, stop: threading.Event, seconds: float) -> bool | None:
    """True once the file kept its contents for ``seconds``; False as soon as they change; None once ``stop`` is set.

    An editor that writes in place (truncate, then write) is caught mid-save; its next write lands within
    milliseconds, and is read then rather than after the whole settling time.
    """
    deadline = time.monotonic() + seconds
    while not stop.wait(POLL_S):
        if saves.changed() is not None:
            return False
        if time.monotonic() >= deadline:
            return True
    return None


def watch_notebook(path: pathlib.Path, exercise: Exercise, factory: FactoryHandle,
                   on_result: Callable[[SubmissionResult], None], stop: threading.Event,
                   data_root: pathlib.Path | None = None, warm: tuple[str, ...] = (),
                   captures: CaptureCache | None = None) -> int:
    """Check ``path`` now and after every change until ``stop`` is set; returns how many checks ran.

    A save that cannot be read as a notebook (an editor's half-written file) gives an ``invalid``
    result and the next save is checked as usual. ``captures``: the model captures kept across saves.
    """
    saves, checked, captures = _Saves(path), 0, captures or CaptureCache()

    def invalid(reason: str, digest: str) -> None:
        nonlocal checked
        checked += 1
        on_result(SubmissionResult.invalid(exercise.id, path.stem, reason, digest))

    while not stop.is_set():
        result = grade_next(lambda: next_save(saves, stop, invalid), exercise, path.stem, data_root, warm, factory,
                            captures)
        if result is None:
            break
        checked += 1
        on_result(result)
    return checked
