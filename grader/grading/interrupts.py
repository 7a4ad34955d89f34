"""Stopping a batch on SIGINT or SIGTERM: queued jobs cancelled, kernels killed, finished results kept.

The grading process turns both signals into a flag (``Stop``) that the batch polls between results,
so a signal never lands in the middle of a gradebook commit. Worker processes leave Ctrl-C to it:
they start with both signals blocked (inherited from the parent, which blocks them while it spawns
workers), then ignore SIGINT and take SIGTERM as "stop": kill this worker's kernels, remove their
sandboxes, exit. A worker interrupted during its start-up thus never prints a traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Iterator

from grader.errors import EXIT_INTERRUPTED, UserError
from grader.kernel.sandbox import stop_open_sandboxes

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop:
    """Set by the first SIGINT or SIGTERM while a batch runs; ``signum`` says which."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def set(self, signum: int = signal.SIGINT) -> None:
        self.signum = self.signum or signum

    def is_set(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


class BatchInterrupted(UserError):
    """A batch stopped by a signal; what finished is in the gradebook, the rest is graded by running it again."""

    def __init__(self, message: str, kept: list[str], missing: list[str]) -> None:
        super().__init__(message, exit_code=EXIT_INTERRUPTED)
        self.kept, self.missing = kept, missing


@contextlib.contextmanager
def stop_on_signals(stop: Stop | None = None) -> Iterator[Stop]:
    """SIGINT and SIGTERM set ``stop`` instead of raising; the previous handlers come back afterwards."""
    stop = stop or Stop()
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield stop
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, lambda signum, frame: stop.set(signum))
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold SIGINT and SIGTERM (delivered afterwards) while worker processes start: they inherit the mask."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def worker_started() -> None:
    """A worker's initializer: Ctrl-C is the parent's to handle; SIGTERM stops this worker's kernels and ends it, and
    comes when the parent dies, however it dies (a SIGKILL of the batch leaves no worker grading for no one)."""
    # A spawned worker's interpreter ends with a collection of every object torch made, half a second per worker
    # at the end of each batch; frozen first, it is skipped (the process is ending: nothing needs freeing).
    atexit.register(gc.freeze)
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a SIGINT held since start-up is dropped here
    signal.signal(signal.SIGTERM, _stop_worker)
    if sys.platform == "linux":
        from grader.kernel.sandbox_launch import die_with_parent

        if not die_with_parent(signal.SIGTERM, parent):  # the parent died before the signal was armed: no one to serve
            os.kill(os.getpid(), signal.SIGTERM)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


def _stop_worker(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second SIGTERM must not interrupt the clean-up
    try:
        stop_open_sandboxes()  # imported at the top: importing here could meet a half-imported module
    finally:
        os._exit(EXIT_INTERRUPTED)  # no unwinding through the grading code it interrupted
