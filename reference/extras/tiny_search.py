"""Beyond the course: search for the smallest MLP that fits Exercise 1's data perfectly.

Candidates are ReLU MLPs with one or two hidden layers, tried in order of parameter
count. Each is trained from ``restarts`` fixed seeds at once (stacked weights),
full-batch with Adam, for each learning rate in turn, until some restart reaches
100% training accuracy in eval mode, or the best restart stops improving. The first
fit is replayed with the plain sequential loop (``fit_recipe``) before it is
reported, so the recipe is what a student's notebook would run.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from reference.data import CheckerboardDataset, generate_checkerboard_dataset
from reference.models import TinyMLP, mlp_parameter_count
from reference.extras.vectorised import StackedMLP

COURSE_PARAMS = 33


@dataclass(frozen=True)
class TinyRecipe:
    """Everything needed to retrain a fitted tiny model: full-batch Adam from a seed."""

    hidden: tuple[int, ...]
    seed: int
    lr: float
    epochs: int

    @property
    def n_params(self) -> int:
        return mlp_parameter_count(self.hidden)


# Found by ``search_smallest_mlp()`` with its defaults; ``tests/test_tiny_search.py`` replays it.
SMALLEST_KNOWN = TinyRecipe(hidden=(3,), seed=60, lr=0.1, epochs=22)


def exercise1_data() -> CheckerboardDataset:
    return generate_checkerboard_dataset(n_per_cell=20, noise=0.1, seed=0)


def train_accuracy(model: nn.Module, data: CheckerboardDataset) -> float:
    """Accuracy in % on ``data``, in eval mode (the grader's definition)."""
    model.eval()
    with torch.no_grad():
        return 100 * (model(data.X).argmax(dim=-1) == data.Y).double().mean().item()


def fit_recipe(recipe: TinyRecipe, data: CheckerboardDataset | None = None) -> nn.Module:
    """Train ``TinyMLP(recipe.hidden)`` the plain way: seed, build, then full-batch Adam steps."""
    data = data or exercise1_data()
    torch.manual_seed(recipe.seed)
    model = TinyMLP(recipe.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    criterion = nn.CrossEntropyLoss()
    model.train()
    for _ in range(recipe.epochs):
        loss = criterion(model(data.X), data.Y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def candidate_architectures(max_params: int = COURSE_PARAMS, max_width: int = 6) -> list[tuple[int, ...]]:
    """Hidden-width tuples (1 or 2 layers) with at most ``max_params`` parameters, smallest first."""
    shapes: Iterator[tuple[int, ...]] = itertools.chain(
        ((a,) for a in range(1, max_width + 1)),
        itertools.product(range(1, max_width + 1), repeat=2),
    )
    fitting = [s for s in shapes if mlp_parameter_count(s) <= max_params]
    return sorted(fitting, key=lambda s: (mlp_parameter_count(s), len(s), s))


@dataclass(frozen=True)
class Attempt:
    hidden: tuple[int, ...]
    n_params: int
    lr: float
    restarts: int
    epochs_run: int
    fitted_seeds: tuple[int, ...]
    seconds: float
    best_correct: int = 0  # points the best restart classified correctly


@dataclass
class SearchResult:
    best: TinyRecipe | None
    attempts: list[Attempt] = field(default_factory=list)
    seconds: float = 0.0
    verified: bool = False  # the sequential replay of ``best`` also reached 100%

    def sizes_tried(self) -> list[int]:
        return sorted({a.n_params for a in self.attempts})

    def to_json(self) -> dict:
        return {
            "best": asdict(self.best) | {"n_params": self.best.n_params} if self.best else None,
            "verified": self.verified,
            "seconds": round(self.seconds, 2),
            "sizes_tried": self.sizes_tried(),
            "attempts": [asdict(a) for a in self.attempts],
        }


def fit_stacked(model: StackedMLP, data: CheckerboardDataset, lr: float, epochs: int,
                patience: int | None = None) -> tuple[int, torch.Tensor, int]:
    """Full-batch Adam on every replica until one classifies all of ``data``: (steps taken, which fit, best count).

    Also ends when the best replica's count of correct points has not grown for ``patience`` steps:
    on these data every size that failed to fit in 2000 steps had its best count by step 152.
    The search's own loop rather than ``train_stacked``: no per-replica history, and the fit is read
    off the logits each step computes anyway, so a step costs one forward and one backward pass.
    The replicas' numbers are those of ``fit_recipe`` (no dropout or batch norm: train mode = eval).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    X, Y = data.X, data.Y
    targets = Y.repeat(model.n_models)
    best, best_step = -1, 0
    for step in itertools.count():
        logits = model(X)  # (S, N, C)
        correct = (logits.detach().argmax(dim=2) == Y).sum(dim=1)
        fitted = correct == len(Y)
        if int(correct.max()) > best:
            best, best_step = int(correct.max()), step
        stalled = patience is not None and step - best_step >= patience
        if step == epochs or bool(fitted.any()) or stalled:
            return step, fitted, best
        S, N, C = logits.shape
        per_replica = F.cross_entropy(logits.reshape(S * N, C), targets, reduction="none").view(S, N).mean(1)
        optimizer.zero_grad()
        per_replica.sum().backward()  # replicas share no parameters, so gradients stay separate
        optimizer.step()


def _try(hidden: tuple[int, ...], lr: float, restarts: int, epochs: int, patience: int | None,
         data: CheckerboardDataset) -> Attempt:
    start = time.perf_counter()
    models = []
    for seed in range(restarts):
        torch.manual_seed(seed)
        models.append(TinyMLP(hidden))
    steps, fitted, best = fit_stacked(StackedMLP(models), data, lr, epochs, patience)
    seeds = tuple(fitted.nonzero().flatten().tolist())
    return Attempt(hidden, mlp_parameter_count(hidden), lr, restarts, steps, seeds, time.perf_counter() - start,
                   best)


def search_smallest_mlp(
    max_params: int = COURSE_PARAMS,
    restarts: int = 64,
    lrs: tuple[float, ...] = (0.1, 0.03),
    epochs: int = 2000,
    patience: int | None = 300,
    data: CheckerboardDataset | None = None,
    log: Callable[[str], None] = print,
    architectures: list[tuple[int, ...]] | None = None,
) -> SearchResult:
    """Try architectures in order of size; stop at the first size where a restart fits and replays."""
    data = data or exercise1_data()
    result = SearchResult(best=None)
    start = time.perf_counter()
    for hidden in architectures or candidate_architectures(max_params):
        for lr in lrs:
            attempt = _try(hidden, lr, restarts, epochs, patience, data)
            result.attempts.append(attempt)
            status = (f"fits (seeds {list(attempt.fitted_seeds)[:3]})" if attempt.fitted_seeds
                      else f"no fit (best {attempt.best_correct}/{len(data)})")
            log(f"{'-'.join(map(str, (2, *hidden, 3))):>10} | {attempt.n_params:2d} params | lr {lr:<5} | "
                f"{restarts} restarts | {attempt.epochs_run:4d} epochs | {status} | {attempt.seconds:.1f}s")
            for seed in attempt.fitted_seeds:
                recipe = TinyRecipe(hidden, seed, lr, attempt.epochs_run)
                if train_accuracy(fit_recipe(recipe, data), data) == 100.0:
                    result.best, result.verified = recipe, True
                    break
            if result.best:
                break
        if result.best:
            break
    result.seconds = time.perf_counter() - start
    return result
