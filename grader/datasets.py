"""The data checks measure on, made in the grader's process (hidden sets never enter a kernel).

A check names its data in the spec, e.g. ``{kind = "checkerboard", n_per_cell = 20,
noise = 0.1, seed = 0}``; ``seed = "hidden"`` draws the seed from the instructor secret.
``{kind = "mnist", split = "train"}`` reads the grader's MNIST root (the one the kernel
was shown read-only), pixels exactly as ``ToTensor`` gives them.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from reference.data import CheckerboardDataset, generate_checkerboard_dataset


class DataUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Tensors:
    X: torch.Tensor
    Y: torch.Tensor


@dataclass
class DataFactory:
    hidden_seed: Callable[[str], int] | None = None
    data_root: pathlib.Path | None = None
    _cache: dict = field(default_factory=dict)

    def seed_for(self, desc: dict, label: str) -> int:
        seed = desc.get("seed", 0)
        if seed == "hidden":
            if self.hidden_seed is None:
                raise DataUnavailable("hidden data needs the instructor secret")
            return self.hidden_seed(label)
        return int(seed)

    def _mnist(self, desc: dict) -> Tensors:
        from reference.mnist import MnistNotFound, load_mnist_tensors

        split = desc.get("split", "test")
        if split not in ("train", "test") or self.data_root is None:
            raise DataUnavailable(f"MNIST split {split!r} needs the grader's data root (--data-root)")
        key = ("mnist", str(self.data_root), split)
        if key not in self._cache:
            try:
                data = load_mnist_tensors(self.data_root, train=split == "train")
            except (MnistNotFound, FileNotFoundError) as e:
                raise DataUnavailable(str(e)) from None
            self._cache[key] = Tensors(data.x, data.y)
        return self._cache[key]

    def make(self, desc: dict, label: str = ""):
        """The dataset ``desc`` describes; ``label`` tells hidden sets of different checks apart."""
        kind = desc.get("kind")
        if kind == "mnist":
            return self._mnist(desc)
        if kind != "checkerboard":
            raise DataUnavailable(f"unknown data kind {kind!r}")
        key = (kind, desc.get("n_per_cell"), desc.get("noise"), self.seed_for(desc, label))
        if key not in self._cache:
            self._cache[key] = generate_checkerboard_dataset(int(desc.get("n_per_cell", 20)),
                                                             float(desc.get("noise", 0.5)), key[3])
        return self._cache[key]
