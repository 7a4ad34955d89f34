"""Watch mode: a second kernel captures the save's model on the spare core while the first one trains.

Capturing a model whose code changed (torch.export, 30-50 ms) is most of what a re-check costs beyond the
student's cells. So beside the kernel that runs the save, a second sandboxed kernel from the same factory runs
the same cells only until a module is first fed the exported input shape, captures that module under its
digest (``kernel_export.speculate``) and ends itself. If it is done when the first kernel's cells end, the
grader learns its capture (``CaptureCache.learn``) and the export reuses it for a model of the same digest,
checked against the model's own outputs and operations as any reused capture is; a different model, a lost
race or a failed capture leaves the export to capture as usual. It only runs where a second core is free.
"""

from __future__ import annotations

import os
import threading

from grader.grading.captures import CaptureCache
from grader.kernel.execute import Deferred, execute
from grader.kernel.notebook import PreparedNotebook, Submission, prepare
from grader.kernel.sandbox import Sandbox


def spare_core() -> bool:
    """Whether this process may run on two cores or more: the second kernel must not slow the first."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores >= 2


class Speculation:
    """The second kernel of one save: started at once, given the save with ``deliver``, read by ``learn_into``."""

    def __init__(self, sandbox: Sandbox, prelude: str, warm: str) -> None:
        self.sandbox, self.prelude = sandbox, prelude
        self._came = threading.Event()
        self._submission: Submission | None = None
        self.learned: set[str] = set()  # the digests of its captures the grader learned
        self._thread = threading.Thread(target=execute, args=(Deferred(self._prepared(Submission.empty()), self._wait,
                                                                       warm), sandbox),
                                        name="grader-speculation", daemon=True)
        self._thread.start()

    def _prepared(self, submission: Submission) -> PreparedNotebook:
        return prepare(submission, self.prelude, "pass")  # it exports nothing: its capture is written as it runs

    def _wait(self) -> PreparedNotebook | None:
        self._came.wait()
        return self._prepared(self._submission) if self._submission is not None else None

    def deliver(self, submission: Submission | None) -> None:
        """The save the first kernel runs (None: none will come)."""
        self._submission = submission
        self._came.set()

    def learn_into(self, captures: CaptureCache) -> bool:
        """Learn the second kernel's capture, if it wrote one; whether ``captures`` gained one.

        Its sandbox is killed first, so nothing changes the folder while it is read: its kernel ended itself once
        the capture was written (the client notices that only at its next poll), and what it started dies with it.
        """
        if not (self.sandbox.export_dir / "models" / "s1" / "graph.json").exists():
            return False  # it lost the race (or found no model): the export captures as usual
        self.sandbox.kill(self.sandbox.launcher_pid)
        before = set(captures.offered())
        captures.learn(self.sandbox.export_dir)
        self.learned = set(captures.offered()) - before
        return bool(self.learned)

    def close(self) -> None:
        """Stop the second kernel wherever it is and remove its sandbox, in the background: the result goes first.

        Not a daemon thread: the process waits for it (the kill's wait, at most) before it exits.
        """
        if not self._came.is_set():
            self.deliver(None)
        threading.Thread(target=self._stop, name="grader-speculation-stop").start()

    def _stop(self) -> None:
        self.sandbox.kill(self.sandbox.launcher_pid)
        self._thread.join()
        self.sandbox.kill()
        self.sandbox.remove()
