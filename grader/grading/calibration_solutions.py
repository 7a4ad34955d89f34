"""The values each exercise's solutions export, rebuilt from the reference code, for calibrating hidden checks.

Correct solutions are what the solution notebooks (``reference/notebooks``) train, step for step.
Wrong ones show what a hidden check is for: what a model that learned too little scores there.
Each is trained once per process.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

COURSE_SEEDS = (0, 3, 18)


@dataclass(frozen=True)
class Solution:
    name: str
    build: Callable[[], dict]  # {export name: model or {key: model}}, as the notebook defines them
    correct: bool = True

    def values(self) -> dict:
        with one_thread():
            return self.build()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread, as the grader runs a notebook: more threads only slow models this small down."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@functools.cache
def _tiny(steps: int) -> dict:
    """tiny-model's solution: a 2-3-3 ReLU MLP from seed 60, full-batch Adam at 0.1 for ``steps`` steps."""
    from reference.extras.tiny_search import TinyRecipe, fit_recipe

    return {"model": fit_recipe(TinyRecipe(hidden=(3,), seed=60, lr=0.1, epochs=steps))}


@functools.cache
def _course_model(seed: int, epochs: int | None):
    """The course set-up's SimpleMLP from ``seed``: early stopping (patience 20) when ``epochs`` is None,
    else exactly ``epochs`` epochs; 0 is the untrained model."""
    import torch

    from reference.data import course_loaders, course_splits
    from reference.models import SimpleMLP
    from reference.training import train_model_extended

    torch.manual_seed(seed)
    model = SimpleMLP()
    if epochs == 0:
        return model
    loaders = course_loaders(course_splits())
    return train_model_extended(model, loaders.train, loaders.val, lr=0.01, n_epochs=epochs or 500,
                                logging_interval=None, patience=20 if epochs is None else None).model


def _seeds(epochs: int | None) -> Callable[[], dict]:
    return lambda: {"models": {s: _course_model(s, epochs) for s in COURSE_SEEDS}}


def _seed0(epochs: int | None) -> Callable[[], dict]:
    return lambda: {"model": _course_model(0, epochs)}


SOLUTIONS: dict[str, tuple[Solution, ...]] = {
    "tiny-model": (
        Solution("the solution notebook (2-3-3, 200 steps)", lambda: _tiny(200)),
        Solution("the search's minimal fit (2-3-3, 22 steps, just fits)", lambda: _tiny(22)),
        Solution("the same net after 10 steps (86% of its training points)", lambda: _tiny(10), correct=False),
    ),
    "random-seeds": (
        Solution("the solution notebook (seeds 0, 3, 18, early stopping)", _seeds(None)),
        Solution("untrained models", _seeds(0), correct=False),
        Solution("models trained for one epoch", _seeds(1), correct=False),
    ),
    "early-stopping": (
        Solution("the solution notebook (seed 0, patience 20, best state restored)", _seed0(None)),
        Solution("the untrained model", _seed0(0), correct=False),
        Solution("the model after one epoch", _seed0(1), correct=False),
    ),
}
