"""Re-check a notebook each time it is saved, with kernels forked from one warm factory.

The self-check of ``grader check``, never the grade: the same sandbox and public checks, rerun
whenever the file's contents change (a save that changes nothing reruns nothing).
"""

from __future__ import annotations

import hashlib
import pathlib
import threading
from collections.abc import Callable

from grader.assignments.catalog import Exercise
from grader.grading.engine import grade_submission
from grader.kernel.factory import FactoryHandle
from grader.kernel.notebook import InvalidNotebook, read_submission
from grader.results import SubmissionResult

POLL_S = 0.25


def _contents(path: pathlib.Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:  # between an editor's delete and its rename: wait for the next poll
        return None


def watch_notebook(path: pathlib.Path, exercise: Exercise, factory: FactoryHandle,
                   on_result: Callable[[SubmissionResult], None], stop: threading.Event,
                   data_root: pathlib.Path | None = None, warm: tuple[str, ...] = ()) -> int:
    """Check ``path`` now and after every change until ``stop`` is set; returns how many checks ran.

    A save that cannot be read as a notebook (an editor's half-written file) gives an ``invalid``
    result and the next save is checked as usual.
    """
    checked, last = 0, None
    while not stop.is_set():
        current = _contents(path)
        if current is not None and current != last:
            last = current
            try:
                submission = read_submission(path)
            except InvalidNotebook as e:
                result = SubmissionResult.invalid(exercise.id, path.stem, str(e), current)
            else:
                result = grade_submission(submission, exercise, path.stem, data_root=data_root, warm=warm,
                                          factory=factory)
            checked += 1
            on_result(result)
            continue
        stop.wait(POLL_S)
    return checked
