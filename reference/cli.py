"""``python -m reference NAME``: run a reference experiment, print its log, write its figures and tables."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
from collections.abc import Callable

from . import demos, exercises
from .results import ExperimentResult, markdown_table, write_result

Experiment = Callable[..., ExperimentResult]

EXPERIMENTS: dict[str, Experiment] = {
    "noise-sweep": demos.noise_sweep,
    "overfitting": demos.overfitting_sweep,
    "early-stopping": demos.early_stopping_demo,
    "steplr-demo": demos.steplr_demo,
    "manual-steplr": demos.manual_steplr_demo,
    "tiny-model": exercises.tiny_model,
    "random-seeds": exercises.random_seeds,
    "schedulers": exercises.schedulers,
    "tiny-search": exercises.tiny_search,
    "seed-variance": exercises.seed_variance,
}


def run(names: list[str], out: pathlib.Path, device: str | None) -> list[tuple[ExperimentResult, float, pathlib.Path]]:
    done = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        result = EXPERIMENTS[name](log=lambda line: print(line, flush=True), device=device)
        folder = write_result(result, out)
        done.append((result, time.perf_counter() - start, folder))
    return done


def summary_table(done: list[tuple[ExperimentResult, float, pathlib.Path]]) -> str:
    rows = []
    for result, seconds, folder in done:
        reproduced, compared = result.reproduced
        rows.append({"experiment": result.name, "published figures reproduced": f"{reproduced}/{compared}" if compared else "-",
                     "seconds": round(seconds, 1), "results": f"{folder.name}/results.md"})
    return markdown_table(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference", description=__doc__)
    parser.add_argument("name", choices=[*EXPERIMENTS, "demo"],
                        help="an experiment, or 'demo' for all of them")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/reference"),
                        help="folder for figures and results (default: out/reference)")
    parser.add_argument("--device", default=None, help="torch device for training, e.g. cuda (default: cpu)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    names = list(EXPERIMENTS) if args.name == "demo" else [args.name]
    done = run(names, args.out, args.device)
    table = summary_table(done)
    if len(done) > 1:
        (args.out / "README.md").write_text("# Reference results\n\n" + table + "\n")
    print("\n" + table)
    print(f"\nFigures and results written to {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
