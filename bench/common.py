"""Shared bench plumbing: one-thread timing and a JSON record under out/bench/."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)
OUT = pathlib.Path(os.environ.get("BENCH_OUT", "out/bench"))


def timed(fn: Callable[[], object], repeats: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeats`` runs, and the last run's result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def record(name: str, data: dict) -> pathlib.Path:
    OUT.mkdir(parents=True, exist_ok=True)
    data = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__, "threads": 1, **data}
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
