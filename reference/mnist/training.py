"""Training on ``MnistTensors`` with a ``MnistRecipe``: the seeds' loop, minus the DataLoader.

The loop follows seeds 000/001: zero_grad, forward, backward, step per batch; validation
after each epoch; the scheduler stepped once per epoch after validation
(``ReduceLROnPlateau`` gets the validation loss). Batches and evaluation draw from the
global RNG as the seeds' DataLoaders would, so ``torch.manual_seed(recipe.seed)`` before
building the model makes a seed-style notebook with the same recipe follow the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn, optim

from reference.mnist.data import MnistSplits, MnistTensors

Logger = Callable[[str], None]
OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam}


@dataclass(frozen=True)
class MnistRecipe:
    """Everything a student may change in the seeds' exercises, as one value."""

    optimizer: str  # "sgd" or "adam", with torch's defaults apart from lr
    lr: float  # initial learning rate
    epochs: int
    scheduler: str | None = None  # a class name in torch.optim.lr_scheduler, stepped once per epoch
    scheduler_kwargs: tuple[tuple[str, float | int], ...] = ()  # pairs, so the recipe stays hashable
    batch_size: int = 64  # the seeds' training batch; the exercises forbid changing it
    seed: int = 0  # torch.manual_seed before the model is built

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"expected optimizer in {sorted(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.scheduler is not None and not hasattr(optim.lr_scheduler, self.scheduler):
            raise ValueError(f"expected a class of torch.optim.lr_scheduler, got {self.scheduler!r}")
        if self.lr <= 0 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"expected positive lr, epochs and batch_size, got {self.lr}, {self.epochs}, "
                             f"{self.batch_size}")

    @property
    def kwargs(self) -> dict:
        return dict(self.scheduler_kwargs)

    def with_(self, **changes) -> MnistRecipe:
        """A copy with some fields changed, e.g. ``recipe.with_(seed=1)``."""
        return replace(self, **changes)

    def describe(self) -> str:
        """E.g. ``SGD lr=0.05, StepLR(step_size=5, gamma=0.5), 15 epochs, batch 64``."""
        name = {"sgd": "SGD", "adam": "Adam"}[self.optimizer]
        sched = "constant LR"
        if self.scheduler:
            sched = f"{self.scheduler}({', '.join(f'{k}={v}' for k, v in self.scheduler_kwargs)})"
        return f"{name} lr={self.lr:g}, {sched}, {self.epochs} epochs, batch {self.batch_size}"


def make_optimizer(recipe: MnistRecipe, model: nn.Module) -> optim.Optimizer:
    return OPTIMIZERS[recipe.optimizer](model.parameters(), lr=recipe.lr)


def make_scheduler(recipe: MnistRecipe, optimizer: optim.Optimizer):
    """The recipe's scheduler on ``optimizer``, or None for a constant LR."""
    if recipe.scheduler is None:
        return None
    return getattr(optim.lr_scheduler, recipe.scheduler)(optimizer, **recipe.kwargs)


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    lr: float  # the LR this epoch trained with
    train_loss: float  # per-sample mean over the epoch (seeds 000/001)
    mean_batch_loss: float  # mean of the batch losses (seed 004)
    running_train_acc: float  # %, counted during the epoch, as the seeds print it
    val_loss: float  # per-sample mean
    val_acc: float  # %, eval mode
    eval_train_acc: float | None = None  # %, eval mode on the whole train split, when asked for


@dataclass
class MnistRun:
    recipe: MnistRecipe
    model: nn.Module
    epochs: list[EpochStats] = field(default_factory=list)
    eval_train_acc: float = float("nan")  # %, eval mode on the whole train split after training
    seconds: float = 0.0

    @property
    def final(self) -> EpochStats:
        return self.epochs[-1]


@torch.no_grad()
def evaluate_tensors(model: nn.Module, data: MnistTensors, batch_size: int = 1000,
                     like_loader: bool = False) -> tuple[float, float]:
    """Per-sample mean loss and accuracy (%) in eval mode; the model's mode is restored.

    ``like_loader=True`` draws from the global RNG as iterating an unshuffled DataLoader does.
    """
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=data.device)
    correct = torch.zeros((), dtype=torch.int64, device=data.device)
    batches = data.batches(batch_size, shuffle=False) if like_loader else data.chunks(batch_size)
    for x, y in batches:
        logits = model(x)
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").double()
        correct += (logits.argmax(dim=1) == y).sum()
    model.train(was_training)
    return loss_sum.item() / len(data), 100 * correct.item() / len(data)


def train_epoch(model: nn.Module, data: MnistTensors, optimizer: optim.Optimizer, batch_size: int
                ) -> tuple[float, float, float]:
    """One shuffled pass in train mode: (per-sample mean loss, mean batch loss, running accuracy %)."""
    model.train()
    losses, preds, labels = [], [], []
    for x, y in data.batches(batch_size, shuffle=True):
        optimizer.zero_grad()
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        # Kept as tensors and reduced once after the epoch: per-batch sums cost ~10% of an MLP
        # epoch on a CPU, and on a GPU they would sync every batch.
        losses.append(loss.detach())
        preds.append(logits.argmax(dim=1))
        labels.append(y)
    batch_losses = torch.stack(losses).double()
    sizes = torch.tensor([len(y) for y in labels], dtype=torch.float64, device=batch_losses.device)
    correct = (torch.cat(preds) == torch.cat(labels)).sum().item()
    return ((batch_losses * sizes).sum().item() / len(data), batch_losses.mean().item(),
            100 * correct / len(data))


def epoch_line(stats: EpochStats, n_epochs: int) -> str:
    line = (f"Epoch {stats.epoch:2d}/{n_epochs} | LR {stats.lr:.3g} | train loss {stats.train_loss:.4f} | "
            f"running train acc {stats.running_train_acc:6.2f}% | val loss {stats.val_loss:.4f} | "
            f"val acc {stats.val_acc:6.2f}%")
    if stats.eval_train_acc is not None:
        line += f" | eval train acc {stats.eval_train_acc:6.2f}%"
    return line


def train_recipe(model_factory: Callable[[], nn.Module], data: MnistSplits, recipe: MnistRecipe,
                 log: Logger | None = None, eval_train_each_epoch: bool = False) -> MnistRun:
    """Seed, build the model, train ``recipe.epochs`` epochs; finish with eval-mode train accuracy."""
    start = time.perf_counter()
    torch.manual_seed(recipe.seed)
    model = model_factory().to(data.train.device)
    optimizer = make_optimizer(recipe, model)
    scheduler = make_scheduler(recipe, optimizer)
    run = MnistRun(recipe, model)
    for epoch in range(1, recipe.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        loss, batch_loss, running = train_epoch(model, data.train, optimizer, recipe.batch_size)
        val_loss, val_acc = evaluate_tensors(model, data.val, like_loader=True)
        # Chunked evaluation leaves the RNG alone, so asking for it does not change the run.
        eval_train = evaluate_tensors(model, data.train)[1] if eval_train_each_epoch else None
        if isinstance(scheduler, optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val_loss)
        elif scheduler is not None:
            scheduler.step()
        stats = EpochStats(epoch, lr, loss, batch_loss, running, val_loss, val_acc, eval_train)
        run.epochs.append(stats)
        if log is not None:
            log(epoch_line(stats, recipe.epochs))
    run.eval_train_acc = run.final.eval_train_acc if eval_train_each_epoch else evaluate_tensors(model, data.train)[1]
    run.seconds = time.perf_counter() - start
    return run
