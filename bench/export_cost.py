"""What capturing a student's model costs, against a capture with its batch size fixed: the floor under a watch re-check.

The export cell captures each model with ``torch.export`` and a free batch dimension (``kernel_export.export_model``),
so the grader can run it on any number of samples and can tell whether the model's code fixed its batch size.
Symbolic sizes make torch's fake tensors fall back to Python decompositions; this bench shows what that costs on
the course's models, against a static capture of the same model.

In one warm process, as a kernel waiting for a save is: five rounds thrown away, then the medians of
``--repeats`` rounds, the three captures taken in turns. No goal: the figures go beside the watch bench's
(``check_wall.py``), whose re-check includes the export cell.
Run: ``.venv/bin/python bench/export_cost.py`` (about 20 s).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import common  # first: one thread, as in a kernel
import torch
import torch.export

from grader.kernel.kernel_export import export_model
from reference.mnist.models import MnistCNN, MnistMLP
from reference.models import SimpleMLP, TinyMLP

MODELS = {"tiny-model TinyMLP((5,))": (lambda: TinyMLP((5,)), (2,)),
          "checkerboard SimpleMLP": (SimpleMLP, (2,)),
          "mnist MnistMLP": (MnistMLP, (1, 28, 28)),
          "lr-sweep MnistCNN": (MnistCNN, (1, 28, 28))}


def _medians_ms(captures: dict, repeats: int, warm_up: int = 5) -> dict[str, float]:
    """Each capture's median wall time, taken in turns so that drift in the process or the machine hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in captures}
    for i in range(warm_up + repeats):
        for name, capture in captures.items():
            start = time.perf_counter()
            capture()
            if i >= warm_up:
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(spent) for name, spent in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(f"{'model':28s} {'export cell':>12s} {'free batch':>11s} {'static':>8s}  (medians, ms)")
    rows = {}
    for name, (build, shape) in MODELS.items():
        model = build().eval()
        example = torch.zeros(2, *shape)
        with tempfile.TemporaryDirectory() as folder, torch.no_grad():
            ms = _medians_ms({
                "cell": lambda: export_model(model, list(shape), folder),
                "free": lambda: torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},),
                                                    strict=False),
                "static": lambda: torch.export.export(model, (example,), strict=False)}, args.repeats)
        cell, free, static = ms["cell"], ms["free"], ms["static"]
        rows[name] = {"export_cell_ms": round(cell, 1), "free_batch_ms": round(free, 1), "static_ms": round(static, 1)}
        print(f"{name:28s} {cell:12.1f} {free:11.1f} {static:8.1f}")
    print(f"written {common.record('export_cost', {'repeats': args.repeats, 'models': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
