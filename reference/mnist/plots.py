"""Figures of the MNIST experiments: per-epoch curves of several runs. Nothing here shows a window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reference.mnist.training import MnistRun


def _style(ax, title: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.grid(alpha=0.3)


def plot_recipe_runs(runs: Mapping[str, MnistRun], train_max: float, val_min: float) -> Figure:
    """Left: the LR each epoch trained with. Right: eval-mode train (solid) and val (dashed) accuracy."""
    fig, (ax_lr, ax_acc) = plt.subplots(1, 2, figsize=(12, 3.6), layout="constrained")
    for i, (label, run) in enumerate(runs.items()):
        color = f"C{i}"
        epochs = [s.epoch for s in run.epochs]
        ax_lr.plot(epochs, [s.lr for s in run.epochs], color=color, marker=".", label=label)
        # Without per-epoch train evaluation only the running accuracy exists; plot that, dotted.
        evaluated = all(s.eval_train_acc is not None for s in run.epochs)
        train = [s.eval_train_acc if evaluated else s.running_train_acc for s in run.epochs]
        ax_acc.plot(epochs, train, color=color, linestyle="-" if evaluated else ":", marker=".",
                    label=f"{label}: train" + ("" if evaluated else " (running)"))
        ax_acc.plot(epochs, [s.val_acc for s in run.epochs], color=color, linestyle="--", label=f"{label}: val")
    ax_lr.set_yscale("log")
    _style(ax_lr, "learning rate per epoch", "lr")
    ax_lr.legend(fontsize=7)
    ax_acc.axhline(train_max, color="k", linewidth=0.8, label=f"train limit {train_max:g}%")
    ax_acc.axhline(val_min, color="gray", linewidth=0.8, linestyle="--", label=f"val floor {val_min:g}%")
    _style(ax_acc, "accuracy after each epoch (eval mode)", "accuracy (%)")
    # Outside the axes: the curves fill the panel from the val floor to 100%.
    ax_acc.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def plot_lr_sweep(curves: Mapping[float, tuple[Sequence[float], Sequence[float]]]) -> Figure:
    """Seed 004's two panels: mean training loss and validation accuracy per epoch, one line per LR."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for lr, (losses, accs) in curves.items():
        epochs = range(1, len(losses) + 1)
        ax_loss.plot(epochs, losses, marker=".", label=f"LR={lr:g}")
        ax_acc.plot(epochs, accs, marker=".", label=f"LR={lr:g}")
    _style(ax_loss, "Training loss (mean of batch losses)", "loss")
    _style(ax_acc, "Validation accuracy", "accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.legend(fontsize=7)
    return fig
