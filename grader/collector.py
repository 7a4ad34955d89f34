"""Heavy imports without the garbage collector walking them, again and again, as they grow."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def importing() -> Iterator[None]:
    """Pause the collector while torch (or dask) is imported, then freeze what exists, out of its reach.

    Each step of such an import starts a full collection over everything imported before it: six in a cold
    ``grader grade``, half a second. Frozen, those objects are never walked again, here or in a process forked
    from here. A block that imported nothing freezes nothing; with the collector already off (nested, or the
    caller's choice), it leaves it as it found it.
    """
    if not gc.isenabled():
        yield
        return
    before = len(sys.modules)
    gc.disable()
    try:
        yield
    finally:
        if len(sys.modules) > before:
            gc.freeze()
        gc.enable()
