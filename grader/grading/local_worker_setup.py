"""A dask worker preload for the local cluster ``grader grade --cluster local`` starts.

Its workers share the terminal's process group, so Ctrl-C reaches each of them too; the grader
handles it (it stops the batch, kills the kernels, keeps what finished, then closes the cluster),
and a worker dying of it on its own would only print a traceback of its own.
"""

from __future__ import annotations

import signal


def dask_setup(worker) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
