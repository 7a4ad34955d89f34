"""``python -m reference NAME``: run a reference experiment, print its log, write its figures and tables."""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pathlib
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reference.results import ExperimentResult

Experiment = Callable[..., "ExperimentResult"]

# Where each experiment lives, imported when it runs: the modules import torch, which a usage error never needs.
EXPERIMENTS: dict[str, str] = {
    "noise-sweep": "reference.demos:noise_sweep",
    "overfitting": "reference.demos:overfitting_sweep",
    "early-stopping": "reference.demos:early_stopping_demo",
    "steplr-demo": "reference.demos:steplr_demo",
    "manual-steplr": "reference.demos:manual_steplr_demo",
    "tiny-model": "reference.exercises:tiny_model",
    "random-seeds": "reference.exercises:random_seeds",
    "schedulers": "reference.exercises:schedulers",
    "tiny-search": "reference.exercises:tiny_search",
    "seed-variance": "reference.exercises:seed_variance",
    "mnist-sgd": "reference.mnist.experiments:mnist_sgd",
    "mnist-adam": "reference.mnist.experiments:mnist_adam",
    "lr-sweep": "reference.mnist.experiments:lr_sweep",
}
# 'demo' stays checkerboard-only: fast, and needing no dataset on disk.
DEMO = ["noise-sweep", "overfitting", "early-stopping", "steplr-demo", "manual-steplr", "tiny-model",
        "random-seeds", "schedulers", "tiny-search", "seed-variance"]


def experiment(name: str) -> Experiment:
    """The function that runs experiment ``name``."""
    module, _, function = EXPERIMENTS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def _call(function: Experiment, device: str | None, data_root: pathlib.Path | None) -> ExperimentResult:
    """Pass ``data_root`` only to experiments that take it (the MNIST ones)."""
    kwargs = {"log": lambda line: print(line, flush=True), "device": device}
    if "data_root" in inspect.signature(function).parameters:
        kwargs["data_root"] = data_root
    return function(**kwargs)


def run(names: list[str], out: pathlib.Path, device: str | None, data_root: pathlib.Path | None = None
        ) -> list[tuple[ExperimentResult, float, pathlib.Path]]:
    from reference.results import write_result

    done = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        result = _call(experiment(name), device, data_root)
        folder = write_result(result, out)
        done.append((result, time.perf_counter() - start, folder))
    return done


def summary_table(done: list[tuple[ExperimentResult, float, pathlib.Path]]) -> str:
    from reference.results import markdown_table

    rows = []
    for result, seconds, folder in done:
        reproduced, compared = result.reproduced
        rows.append({"experiment": result.name, "published figures reproduced": f"{reproduced}/{compared}" if compared else "-",
                     "seconds": round(seconds, 1), "results": f"{folder.name}/results.md"})
    return markdown_table(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference", description=__doc__)
    parser.add_argument("name", choices=[*EXPERIMENTS, "demo"],
                        help="an experiment, or 'demo' for all checkerboard ones (MNIST runs only by name)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/reference"),
                        help="folder for figures and results (default: out/reference)")
    parser.add_argument("--device", default=None,
                        help="torch device for training, e.g. cuda (default: cpu; MNIST: cuda when available)")
    parser.add_argument("--data-root", type=pathlib.Path, default=None,
                        help="MNIST root holding MNIST/raw/, or where to unpack the bundled copy "
                             "(default: $MNIST_ROOT or out/data)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    names = DEMO if args.name == "demo" else [args.name]
    from reference.mnist.data import MnistNotFound

    try:
        done = run(names, args.out, args.device, args.data_root)
    except MnistNotFound as error:  # a user error: say how to fix it, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 1
    table = summary_table(done)
    if len(done) > 1:
        (args.out / "README.md").write_text("# Reference results\n\n" + table + "\n")
    print("\n" + table)
    print(f"\nFigures and results written to {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
