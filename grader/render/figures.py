"""Feedback figures from stored artifacts and check details, as self-contained PNG data URIs.

Everything here works from what the gradebook holds (plain data), so pages can be
rendered long after grading. Figures use matplotlib's object API, never pyplot, so
rendering is headless and leaves no global state behind.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure as MplFigure

from grader.checks import REGISTRY
from grader.diagnosis.convergence import Diagnosis, diagnose
from grader.render.html import Figure
from grader.results import SubmissionResult

CLASS_COLOURS = ListedColormap(["#3b4cc0", "#dddddd", "#b40426"])


def data_uri(fig: MplFigure, dpi: int = 110) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def boundary_figure(artifact: dict) -> MplFigure:
    """One panel per model: its predicted class on the grid, with the grader's public points on top."""
    maps = artifact["maps"]
    grid, limit = artifact["grid"], artifact["limit"]
    width, height = 2.7 * len(maps), 2.9
    # Fixed margins (in inches) rather than constrained layout, which took half of the figure's time: every panel
    # is the same square with the same ticks, and the watch mode redraws the page after each save.
    fig = MplFigure(figsize=(width, height))
    axes = fig.subplots(1, len(maps), squeeze=False, gridspec_kw={
        "left": 0.42 / width, "right": 1 - 0.1 / width, "bottom": 0.3 / height, "top": 1 - 0.3 / height,
        "wspace": 0.5 / 2.2})[0]
    points, labels = np.array(artifact["points"]), np.array(artifact["labels"])
    for ax, (name, encoded) in zip(axes, maps.items()):
        classes = np.frombuffer(base64.b64decode(encoded), dtype=np.uint8).reshape(grid, grid)
        ax.imshow(classes, origin="lower", extent=(-limit, limit, -limit, limit), cmap=CLASS_COLOURS, vmin=0, vmax=2,
                  alpha=0.35, interpolation="nearest")
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap=CLASS_COLOURS, vmin=0, vmax=2, s=10, edgecolors="k",
                   linewidths=0.4)
        ax.set_title(name, fontsize=9)
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    return fig


def curves_figure(name: str, curves: dict) -> MplFigure:
    """Loss and accuracy per epoch, train and val, with the best epoch marked."""
    panels = [(key, label) for key, label in (("loss", "Loss"), ("acc", "Accuracy (%)"))
              if f"train_{key}" in curves or f"val_{key}" in curves]
    fig = MplFigure(figsize=(3.4 * len(panels), 2.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    best = curves.get("best_epoch", 0)
    for ax, (key, label) in zip(axes, panels):
        for split, colour in (("train", "tab:green"), ("val", "tab:red")):
            values = curves.get(f"{split}_{key}")
            if values:
                ax.plot(range(1, len(values) + 1), values, color=colour, linewidth=1.5, label=split)
        if best:
            ax.axvline(best, color="gray", linestyle="--", linewidth=1, label=f"best epoch {best}")
        ax.set_title(f"{name}: {label.split(' ')[0].lower()}", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, linestyle=":", linewidth=0.5)
        ax.legend(fontsize=7)
    return fig


def sweep_figure(sweep: dict) -> MplFigure:
    """Training loss and validation accuracy per epoch, one curve per learning rate (the seed-004 figure)."""
    fig = MplFigure(figsize=(7.2, 2.7), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for label, curves in sweep.items():
        ax_loss.plot(range(1, len(curves["train_loss"]) + 1), curves["train_loss"], marker=".", label=label)
        ax_acc.plot(range(1, len(curves["val_acc"]) + 1), curves["val_acc"], marker=".", label=label)
    for ax, title in ((ax_loss, "training loss"), (ax_acc, "validation accuracy (%)")):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, linestyle=":", linewidth=0.5)
        ax.legend(fontsize=7)
    return fig


def _lr_curves(details: list[dict]) -> MplFigure:
    from grader.render.lr_plots import lr_comparison_figure

    return lr_comparison_figure(details)


def _sweep_curves(details: dict) -> dict[str, list[float]]:
    return {label: curves["train_loss"] for label, curves in details.get("sweep", {}).items()}


@dataclass(frozen=True)
class KindFigure:
    """A figure drawn from the details of a check kind's results (``CheckKind.figure`` names it)."""

    draw: Callable[[list[dict]], MplFigure]  # the details of the submission's public results of that kind
    caption: str
    losses: Callable[[dict], dict[str, list[float]]] | None = None  # training-loss curves to diagnose, by label


FIGURES: dict[str, KindFigure] = {
    "lr_curves": KindFigure(_lr_curves, "Your learning-rate curves (solid) over the ones torch computes (dashed)."),
    "lr_sweep": KindFigure(lambda details: sweep_figure({k: v for d in details for k, v in d["sweep"].items()}),
                           "Your sweep as your notebook reported it: training loss and validation accuracy per epoch.",
                           losses=_sweep_curves),
}


def _by_figure(result: SubmissionResult) -> dict[str, list[dict]]:
    """The public results' details, grouped by the figure their check kind draws."""
    groups: dict[str, list[dict]] = {}
    for check in result.checks:
        kind = REGISTRY.get(check.kind)
        # A check failed for want of an export has only that in its details (grader.checks.base), nothing to draw.
        if kind is not None and kind.figure and check.visibility == "public" and check.details \
                and "needs" not in check.details:
            groups.setdefault(kind.figure, []).append(check.details)
    return groups


def diagnoses(artifacts: dict, result: SubmissionResult | None = None) -> list[tuple[str, Diagnosis]]:
    """The convergence diagnosis of every stored pair of loss curves, and of each curve a check kind reports."""
    out = []
    for name, details in _by_figure(result).items() if result else ():
        if FIGURES[name].losses is not None:
            out += [(label, diagnose(curve)) for d in details for label, curve in FIGURES[name].losses(d).items()]
    for name, curves in artifacts.get("curves", {}).items():
        train, val = curves.get("train_loss"), curves.get("val_loss")
        if train:
            out.append((name, diagnose(train, val if val and len(val) == len(train) else None)))
    return out


def feedback_figures(result: SubmissionResult, artifacts: dict) -> list[Figure]:
    """All figures that fit this submission, each with a caption."""
    figures = []
    if "boundary" in artifacts:
        figures.append(Figure(data_uri(boundary_figure(artifacts["boundary"])),
                              "Decision boundary of your model on the grader's public data (points coloured by class)."))
    for name, curves in artifacts.get("curves", {}).items():
        figures.append(Figure(data_uri(curves_figure(name, curves)), f"Loss and accuracy per epoch: {name}."))
    for name, details in _by_figure(result).items():
        figures.append(Figure(data_uri(FIGURES[name].draw(details)), FIGURES[name].caption))
    return figures
