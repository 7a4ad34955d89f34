"""The unit's plots. Each returns its Figure and never calls ``plt.show()``.

In Jupyter the inline backend shows returned figures by itself; scripts save
them with ``save_figure``. Nothing here needs a display.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.rcParams.setdefault("figure.max_open_warning", 0)
import matplotlib.patches as mpatches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

LIMIT = 2.5
CMAP = "coolwarm"


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Class predictions in eval mode, on the model's device; the model's mode is restored."""
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    preds = model(X.to(device)).argmax(dim=1).cpu()
    model.train(was_training)
    return preds


def plot_decision_boundary(
    dataset, model: nn.Module | None = None, ax: Axes | None = None, title: str | None = None,
    figsize: tuple[float, float] = (2.5, 2.5), limit: float = LIMIT, resolution: int = 300,
) -> Figure:
    """Scatter the points; with a model, shade its predicted classes and print its accuracy."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    X, Y = dataset.X.cpu(), dataset.Y.cpu()
    if model is not None:
        accuracy = 100 * (predict(model, X) == Y).float().mean().item()
        axis = np.linspace(-limit, limit, resolution)
        xx, yy = np.meshgrid(axis, axis)
        grid = torch.tensor(np.c_[xx.ravel(), yy.ravel()], dtype=torch.float32)
        zz = predict(model, grid).numpy().reshape(xx.shape)
        ax.contourf(xx, yy, zz, levels=[-0.5, 0.5, 1.5, 2.5], alpha=0.3, cmap=CMAP)
        ax.text(limit - 0.2, limit - 0.2, f"Acc: {accuracy:.2f}%", ha="right", va="top", fontsize=8,
                bbox=dict(facecolor="white", alpha=0.75, edgecolor="none"))
    ax.scatter(X[:, 0], X[:, 1], c=Y, cmap=CMAP, vmin=0, vmax=2, edgecolors="k", s=14, linewidths=0.5)
    cmap = plt.get_cmap(CMAP)
    ax.legend(handles=[mpatches.Patch(facecolor=cmap(k / 2), edgecolor="k", label=f"Class {k + 1}") for k in range(3)],
              loc="lower right", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=8)
    ax.grid(True, linewidth=0.4)
    return ax.figure


def plot_boundary_row(panels: Sequence[tuple[object, nn.Module | None, str]], size: float = 2.5) -> Figure:
    """Decision boundaries side by side, one ``(dataset, model, title)`` per panel, as the unit shows them."""
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size + 0.2), layout="constrained",
                             squeeze=False)
    for ax, (dataset, model, title) in zip(axes[0], panels):
        plot_decision_boundary(dataset, model, ax=ax, title=title)
    return fig


def _best_epoch_line(ax: Axes, best_epoch: int) -> None:
    if best_epoch is not None and int(best_epoch):
        ax.axvline(best_epoch, color="gray", linestyle="--", linewidth=1, label=f"Best epoch ({best_epoch})")


def plot_loss_and_accuracy(
    train_loss: Sequence[float], val_loss: Sequence[float], train_acc: Sequence[float], val_acc: Sequence[float],
    best_epoch: int = 0, figsize: tuple[float, float] = (6.4, 2.4),
) -> Figure:
    """Loss and accuracy curves side by side, with a dashed line at the best epoch."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    for ax, train, val, label in ((ax_loss, train_loss, val_loss, "Loss"), (ax_acc, train_acc, val_acc, "Accuracy (%)")):
        ax.plot(range(1, len(train) + 1), train, color="tab:green", linewidth=1.5, label="Train")
        if val is not None and len(val):  # a numpy array or tensor has no truth value
            ax.plot(range(1, len(val) + 1), val, color="tab:red", linewidth=1.5, label="Val")
        _best_epoch_line(ax, best_epoch)
        ax.set_title(label.split(" ")[0], fontsize=9)
        ax.set_xlabel("Epoch", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(True, linestyle=":", linewidth=0.5)
        ax.legend(fontsize=7)
    return fig


def plot_boundary_and_loss_lr(
    dataset, model: nn.Module, train_loss: Sequence[float], lr_history: Sequence[float],
    title: str = "Training Set", figsize: tuple[float, float] = (6.4, 2.6),
) -> Figure:
    """Decision boundary (left); training loss with the LR on a log twin axis (right)."""
    fig = plt.figure(figsize=figsize, layout="constrained")
    grid = fig.add_gridspec(1, 2, width_ratios=[1, 2])
    plot_decision_boundary(dataset, model, ax=fig.add_subplot(grid[0, 0]), title=title)
    ax = fig.add_subplot(grid[0, 1])
    epochs = range(1, len(train_loss) + 1)
    ax.plot(epochs, train_loss, color="tab:green", linewidth=1.5, label="Train loss")
    ax.set_xlabel("Epoch", fontsize=8)
    ax.set_ylabel("Loss", fontsize=8, color="tab:green")
    ax.tick_params(labelsize=8)
    ax.set_title("Loss & learning rate", fontsize=9)
    ax.grid(True, linestyle=":", linewidth=0.5)
    ax_lr = ax.twinx()
    ax_lr.plot(epochs, lr_history, color="tab:blue", linestyle="--", linewidth=1, label="Learning rate")
    ax_lr.set_yscale("log")
    ax_lr.set_ylabel("Learning rate", fontsize=8, color="tab:blue")
    ax_lr.tick_params(labelsize=8)
    handles = ax.get_legend_handles_labels()[0] + ax_lr.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=7, loc="upper right")
    return fig


def plot_lr_curves(
    ax: Axes, curves: Mapping[str, Sequence[float]], reference: Sequence[float] | None = None, title: str | None = None
) -> None:
    """LR against step on one axis; an optional reference curve is drawn dashed underneath."""
    if reference is not None:
        ax.plot(range(1, len(reference) + 1), reference, color="black", linestyle="--", linewidth=1.2,
                label="reference", zorder=1)
    for label, lrs in curves.items():
        ax.plot(range(1, len(lrs) + 1), lrs, marker=".", markersize=3, linewidth=1.2, label=label, zorder=2)
    if title:
        ax.set_title(title, fontsize=8)
    ax.set_xlabel("Step", fontsize=7)
    ax.set_ylabel("LR", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.grid(True, linestyle=":", linewidth=0.5)
    ax.legend(fontsize=6)


def plot_scheduler_grid(histories: Mapping[str, Sequence[float]], ncols: int = 3, figsize_per: float = 2.6) -> Figure:
    """One panel per scheduler family, each configuration a curve: the Exercise 3 overview."""
    families: dict[str, dict[str, Sequence[float]]] = {}
    for name, lrs in histories.items():
        family, _, args = name.partition("(")
        families.setdefault(family, {})[args.rstrip(")") or family] = lrs
    n = len(families)
    ncols = 2 if n == 4 else min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(figsize_per * ncols * 1.3, figsize_per * nrows), layout="constrained",
                             squeeze=False)
    for ax, (family, curves) in zip(axes.flat, families.items()):
        plot_lr_curves(ax, curves, title=family)
    for ax in list(axes.flat)[len(families):]:
        ax.set_visible(False)
    return fig


def save_figure(fig: Figure, path: str | pathlib.Path, dpi: int = 120) -> pathlib.Path:
    """Write the figure as PNG and close it, so batch runs do not accumulate figures."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
