"""One MNIST epoch two ways, side by side in one run: the seeds' DataLoader loop against the fast path.

Both train the 784-128-10 MLP with SGD (lr 0.05, seed 000's) at batch 64 from the same seed.
The fast path draws its shuffles as the DataLoader does, so both see the same batches.
Goal: the fast path is at least 5x faster per epoch on one CPU thread.
Run: ``make bench`` or ``.venv/bin/python bench/mnist_epoch.py``.
"""

from __future__ import annotations

import sys

from common import record, timed

import torch
from torch import nn
from torch.utils.data import DataLoader

from reference.mnist.data import load_mnist, load_mnist_tensors, prepare_mnist_root
from reference.mnist.models import MnistMLP
from reference.mnist.training import evaluate_tensors, train_epoch

GOAL = 5.0
LR, BATCH, SEED = 0.05, 64, 0


def seed_style_epoch(train_set) -> nn.Module:
    """Seed 000's training function, one epoch: DataLoader over ToTensor'd PIL images."""
    torch.manual_seed(SEED)
    loader = DataLoader(train_set, batch_size=BATCH, shuffle=True)
    model = MnistMLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    model.train()
    total_loss, correct = 0.0, 0
    for data, target in loader:
        optimizer.zero_grad()
        output = model(data)
        loss = nn.functional.cross_entropy(output, target)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * data.size(0)
        correct += (output.argmax(dim=1) == target).sum().item()
    return model


def fast_epoch(train) -> nn.Module:
    torch.manual_seed(SEED)
    model = MnistMLP()
    train_epoch(model, train, torch.optim.SGD(model.parameters(), lr=LR), BATCH)
    return model


@torch.no_grad()
def seed_style_accuracy(model: nn.Module, test_set) -> float:
    model.eval()
    correct = sum((model(x).argmax(dim=1) == y).sum().item() for x, y in DataLoader(test_set, batch_size=1000))
    return 100 * correct / len(test_set)


def main() -> int:
    root = prepare_mnist_root()
    t_load_seed, (train_set, test_set) = timed(lambda: (load_mnist(root, True), load_mnist(root, False)))
    t_load_fast, (train, test) = timed(lambda: (load_mnist_tensors(root, True), load_mnist_tensors(root, False)))
    t_seed, model_seed = timed(lambda: seed_style_epoch(train_set), repeats=2)
    t_fast, model_fast = timed(lambda: fast_epoch(train), repeats=3)
    acc_seed, acc_fast = seed_style_accuracy(model_seed, test_set), evaluate_tensors(model_fast, test)[1]
    same_weights = all(torch.equal(a, b) for a, b in zip(model_seed.state_dict().values(),
                                                         model_fast.state_dict().values()))
    ratio = t_seed / t_fast
    met = ratio >= GOAL and abs(acc_seed - acc_fast) <= 0.5
    print(f"{'':34}{'s/epoch':>9}{'load s':>8}{'test acc':>10}")
    print(f"{'seed-style DataLoader + ToTensor':34}{t_seed:9.2f}{t_load_seed:8.2f}{acc_seed:9.2f}%")
    print(f"{'fast path (preloaded tensor)':34}{t_fast:9.2f}{t_load_fast:8.2f}{acc_fast:9.2f}%")
    print(f"speed-up {ratio:.1f}x (goal >= {GOAL:g}x); identical weights after the epoch: {same_weights}; "
          f"goal {'met' if met else 'NOT met'}")
    path = record("mnist_epoch", {"lr": LR, "batch_size": BATCH, "seed": SEED, "seed_style_s": t_seed,
                                  "fast_s": t_fast, "seed_style_load_s": t_load_seed, "fast_load_s": t_load_fast,
                                  "speedup": ratio, "seed_style_test_acc": acc_seed, "fast_test_acc": acc_fast,
                                  "identical_weights": same_weights, "goal": GOAL, "goal_met": met})
    print(f"written {path}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
