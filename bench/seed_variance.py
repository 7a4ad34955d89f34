"""16 seeds of Exercise 2 trained vectorised, against 16 sequential runs, side by side in one run.

Goal: the vectorised 16 seeds take at most 3x the time of one sequential seed.
Run: ``make bench`` or ``.venv/bin/python bench/seed_variance.py``.
"""

from __future__ import annotations

import statistics
import sys

from common import record, timed

import torch
from reference.data import course_loaders, course_splits
from reference.models import SimpleMLP
from reference.training import train_model_extended
from reference.extras.vectorised import ShuffleStream, StackedMLP, train_stacked

N_SEEDS = 16
SETUP = dict(lr=0.01, n_epochs=500, patience=20)


def sequential(seed: int, loaders):
    torch.manual_seed(seed)
    return train_model_extended(SimpleMLP(), loaders.train, loaders.val, logging_interval=None, **SETUP)


def vectorised(seeds, splits):
    models, streams = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(SimpleMLP())
        streams.append(ShuffleStream(len(splits.train), other_loaders_per_epoch=1))
    return train_stacked(StackedMLP(models), splits.train, streams, splits.val, **SETUP)


def main() -> int:
    splits = course_splits()
    loaders = course_loaders(splits)
    seeds = list(range(N_SEEDS))
    per_seed = [timed(lambda s=s: sequential(s, loaders), repeats=3) for s in seeds]
    t_sequential = sum(t for t, _ in per_seed)
    t_one = statistics.mean(t for t, _ in per_seed)
    t_vec, run = timed(lambda: vectorised(seeds, splits), repeats=3)
    same_best = all(h.best_epoch == r.best_epoch for (_, h), r in zip(per_seed, run.histories))
    ratio = t_vec / t_one
    print(f"{'':28}{'seconds':>10}")
    print(f"{'one seed, sequential (mean)':28}{t_one:10.3f}")
    print(f"{'16 seeds, sequential':28}{t_sequential:10.3f}")
    print(f"{'16 seeds, vectorised':28}{t_vec:10.3f}")
    print(f"vectorised 16 / one sequential = {ratio:.2f}x (goal <= 3x); speed-up over 16 sequential "
          f"{t_sequential / t_vec:.1f}x; best epochs identical: {same_best}")
    path = record("seed_variance", {"seeds": N_SEEDS, "one_seed_s": t_one, "sequential_s": t_sequential,
                                    "vectorised_s": t_vec, "ratio_vs_one_seed": ratio, "best_epochs_identical": same_best,
                                    "goal_met": ratio <= 3 and same_best})
    print(f"written {path}")
    return 0 if ratio <= 3 and same_best else 1


if __name__ == "__main__":
    sys.exit(main())
