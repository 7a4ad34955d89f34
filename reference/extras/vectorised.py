"""Train many ReLU MLPs at once with stacked weights and batched matmuls.

Each replica reproduces a sequential ``train_model_extended`` run of its own seed:
the same initial weights (built by the real module under ``torch.manual_seed``),
the same shuffle order per epoch (``ShuffleStream``), per-replica mean losses (so
gradients do not mix), elementwise Adam on the stacked tensors, and per-replica
early stopping with best-state restore. Results agree with the sequential loop to
float tolerance, with identical best epochs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from reference.data import CheckerboardDataset


class ShuffleStream:
    """The index order ``DataLoader(shuffle=True)`` yields each epoch, from a private copy of the RNG.

    Every DataLoader iteration draws an int64 base seed from the global generator, and
    a shuffling one then draws the RandomSampler's seed for ``randperm``. A loop that
    also iterates a val loader each epoch draws once more, so pass
    ``other_loaders_per_epoch=1`` to mirror ``train_model_extended`` with validation.
    Construct it where the sequential code would first iterate its loaders.
    """

    def __init__(self, n: int, other_loaders_per_epoch: int = 0, rng_state: torch.Tensor | None = None) -> None:
        self.n = n
        self.other_loaders_per_epoch = other_loaders_per_epoch
        self.generator = torch.Generator()
        self.generator.set_state(torch.get_rng_state() if rng_state is None else rng_state)

    def _draw(self) -> int:
        return int(torch.empty((), dtype=torch.int64).random_(generator=self.generator).item())

    def next_epoch(self) -> torch.Tensor:
        self._draw()  # the train iterator's base seed
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self._draw()))
        for _ in range(self.other_loaders_per_epoch):
            self._draw()  # base seeds of the unshuffled loaders iterated after it
        return order


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The Linear layers of a ReLU MLP in order; rejects anything else."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    others = [m for m in model.modules() if not isinstance(m, (nn.Linear, nn.ReLU, nn.Sequential)) and m is not model]
    if not layers or others:
        raise ValueError(f"expected a ReLU MLP of Linear layers, got {type(model).__name__}")
    return layers


class StackedMLP(nn.Module):
    """S copies of one ReLU MLP; weights (S, out, in), inputs (S, B, in) -> logits (S, B, C)."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        per_model = [linear_layers(m) for m in models]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([layers[i].weight.detach().clone() for layers in per_model]))
            for i in range(len(per_model[0]))
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([layers[i].bias.detach().clone() for layers in per_model]))
            for i in range(len(per_model[0]))
        )
        self.template = copy.deepcopy(models[0])

    @property
    def n_models(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # shared inputs (B, in) -> (S, B, in)
            x = x.expand(self.n_models, *x.shape)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))  # (S, B, out)
            if i < last:
                x = F.relu(x)
        return x

    def replica_state(self, k: int) -> list[torch.Tensor]:
        return [t[k].detach().clone() for pair in zip(self.weights, self.biases) for t in pair]

    def load_replica_state(self, k: int, state: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for t, value in zip((t for pair in zip(self.weights, self.biases) for t in pair), state):
                t[k].copy_(value)

    def to_module(self, k: int) -> nn.Module:
        """Replica ``k`` as an ordinary module of the template's class."""
        module = copy.deepcopy(self.template)
        with torch.no_grad():
            for layer, w, b in zip(linear_layers(module), self.weights, self.biases):
                layer.weight.copy_(w[k])
                layer.bias.copy_(b[k])
        return module


def _per_batch_mean_sum(per_sample: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(S, N) per-sample values -> (S,) sum over consecutive batches of their means, as the course sums."""
    return torch.stack([chunk.mean(dim=1) for chunk in per_sample.split(batch_size, dim=1)], dim=1).double().sum(dim=1)


@dataclass
class ReplicaHistory:
    """One replica's curves, as ``TrainingHistory`` holds them for a sequential run."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False


@dataclass
class StackedRun:
    model: StackedMLP
    histories: list[ReplicaHistory]


@torch.no_grad()
def evaluate_stacked(model: StackedMLP, dataset: CheckerboardDataset, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-replica summed batch loss (S,) and accuracy in % (S,), unshuffled, like ``evaluate``."""
    logits = model(dataset.X)  # (S, N, C)
    S, N, C = logits.shape
    target = dataset.Y.expand(S, N)
    losses = F.cross_entropy(logits.reshape(S * N, C), target.reshape(-1), reduction="none").view(S, N)
    acc = 100 * (logits.argmax(dim=2) == target).double().sum(dim=1) / N
    return _per_batch_mean_sum(losses, batch_size), acc


def train_stacked(
    model: StackedMLP,
    train: CheckerboardDataset,
    shuffles: Sequence[ShuffleStream] | None,
    val: CheckerboardDataset | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 0.01,
    n_epochs: int = 200,
    batch_size: int = 32,
    patience: int | None = None,
) -> StackedRun:
    """Mini-batch training of every replica on its own shuffle order, with per-replica early stopping.

    ``shuffles=None`` keeps the data in its stored order (full-batch training needs no
    shuffle).
    """
    S = model.n_models
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    histories = [ReplicaHistory() for _ in range(S)]
    active = [True] * S
    best_val = [float("inf")] * S
    best_state: list[list[torch.Tensor] | None] = [None] * S
    no_improve = [0] * S
    X, Y = train.X, train.Y
    for epoch in range(1, n_epochs + 1):
        if shuffles is None:
            order = torch.arange(len(Y)).expand(S, len(Y))
        else:
            order = torch.stack([s.next_epoch() for s in shuffles])  # (S, N)
        total_loss = torch.zeros(S, dtype=torch.float64)
        correct = torch.zeros(S, dtype=torch.float64)
        for idx in order.split(batch_size, dim=1):  # idx: (S, B)
            logits = model(X[idx])  # (S, B, C)
            B, C = idx.shape[1], logits.shape[2]
            per_replica = F.cross_entropy(logits.reshape(S * B, C), Y[idx].reshape(-1), reduction="none").view(S, B).mean(1)
            optimizer.zero_grad()
            per_replica.sum().backward()  # replicas share no parameters, so gradients stay separate
            optimizer.step()
            total_loss += per_replica.detach().double()
            correct += (logits.detach().argmax(dim=2) == Y[idx]).double().sum(dim=1)
        train_acc = 100 * correct / len(Y)
        v_loss, v_acc = evaluate_stacked(model, val, batch_size) if val is not None else (None, None)
        for k in range(S):
            if not active[k]:
                continue
            h = histories[k]
            h.train_loss.append(total_loss[k].item())
            h.train_acc.append(train_acc[k].item())
            if v_loss is None:
                continue
            h.val_loss.append(v_loss[k].item())
            h.val_acc.append(v_acc[k].item())
            if h.val_loss[-1] < best_val[k]:
                best_val[k], h.best_epoch, no_improve[k] = h.val_loss[-1], epoch, 0
                best_state[k] = model.replica_state(k)
            else:
                no_improve[k] += 1
                if patience is not None and no_improve[k] >= patience:
                    active[k], h.stopped_early = False, True
        if not any(active):
            break
    if val is not None and patience is not None:
        for k, state in enumerate(best_state):
            if state is not None:
                model.load_replica_state(k, state)
    return StackedRun(model, histories)
