"""The unit's noisy 3x3 checkerboard of 2D points, and the course's standard splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

GRID = 3
NUM_CLASSES = 3


class CheckerboardDataset(Dataset):
    """Points ``X`` (float32, (N, 2)) and labels ``Y`` (int64, (N,)); items are ``(X[i], Y[i])``."""

    def __init__(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"expected as many labels as points, got {Y.shape[0]} and {X.shape[0]}")
        self.X = X
        self.Y = Y

    def __len__(self) -> int:
        return int(self.Y.shape[0])

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[idx], self.Y[idx]


def generate_checkerboard_dataset(n_per_cell: int = 100, noise: float = 0.5, seed: int = 0) -> CheckerboardDataset:
    """Draw ``n_per_cell`` noisy points around each centre of a 3x3 grid, in cell order.

    Cell (i, j) is centred at (i-1, j-1) with label (i+j) % 3, so each anti-diagonal
    is one class. Draws match ``np.random.seed(seed)`` followed by the course's loop,
    but from a local generator, leaving NumPy's global state alone.

    >>> ds = generate_checkerboard_dataset(n_per_cell=20, noise=0.1, seed=0)
    >>> len(ds), ds.X.dtype, ds.Y[:3].tolist(), ds.Y[-1].item()
    (180, torch.float32, [0, 0, 0], 1)
    """
    if n_per_cell < 1:
        raise ValueError(f"expected a positive n_per_cell, got {n_per_cell}")
    if noise < 0:
        raise ValueError(f"expected a non-negative noise, got {noise}")
    rng = np.random.RandomState(seed)
    points, labels = [], []
    for i in range(GRID):
        for j in range(GRID):
            # x before y, each as centre + noise * randn: the course's draw order.
            x = (i - 1) * 1.0 + noise * rng.randn(n_per_cell)
            y = (j - 1) * 1.0 + noise * rng.randn(n_per_cell)
            points.append(np.stack([x, y], axis=1))
            labels.append(np.full(n_per_cell, (i + j) % NUM_CLASSES))
    X = torch.tensor(np.concatenate(points), dtype=torch.float32)
    Y = torch.tensor(np.concatenate(labels), dtype=torch.int64)
    return CheckerboardDataset(X, Y)


@dataclass(frozen=True)
class Splits:
    """The course's train/val/test sets: same distribution, different seeds."""

    train: CheckerboardDataset
    val: CheckerboardDataset
    test: CheckerboardDataset


def course_splits(n_per_cell: int = 20, noise: float = 0.5, seeds: tuple[int, int, int] = (0, 1, 2)) -> Splits:
    """The splits of the early-stopping section and Exercise 2: (20, 0.5) with seeds 0/1/2."""
    train, val, test = (generate_checkerboard_dataset(n_per_cell, noise, s) for s in seeds)
    return Splits(train, val, test)


@dataclass(frozen=True)
class Loaders:
    train: DataLoader
    val: DataLoader
    test: DataLoader


def course_loaders(splits: Splits, batch_size: int = 32) -> Loaders:
    """Train is shuffled, val and test are not, as in the unit."""
    return Loaders(
        DataLoader(splits.train, batch_size=batch_size, shuffle=True),
        DataLoader(splits.val, batch_size=batch_size, shuffle=False),
        DataLoader(splits.test, batch_size=batch_size, shuffle=False),
    )
