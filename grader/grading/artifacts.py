"""Plot data for the feedback pages, computed in the grader's process while the exports are at hand.

Only public data goes in: the decision boundary is drawn on the exercise's public
training set, and curves are the student's own numbers. The gradebook stores this as
JSON, so feedback can be rendered any time later without keeping student models.
"""

from __future__ import annotations

import base64

import numpy as np
import torch

from grader.checks.data import DataFactory
from grader.loading.model_graph import LoadedModel
from grader.loading.values import Exports
from grader.specs.spec import ExerciseSpec

GRID = 120
LIMIT = 2.5
CURVE_KEYS = ("train_loss", "val_loss", "train_acc", "val_acc", "lr_history")


def _numbers(values) -> list[float] | None:
    if not isinstance(values, list) or not values:
        return None
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return None


def boundary(model: LoadedModel, limit: float = LIMIT, grid: int = GRID) -> str | None:
    """The model's predicted class on a grid x grid square as base64 uint8, or None if it cannot run on 2-D points."""
    if tuple(model.input_shape) != (2,):
        return None
    axis = torch.linspace(-limit, limit, grid)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    try:
        preds = model.predict(torch.stack([xx.flatten(), yy.flatten()], dim=1))
    except RuntimeError:
        return None
    return base64.b64encode(preds.clamp(0, 255).to(torch.uint8).numpy().tobytes()).decode()


def _models(exports: Exports, names: list[str]) -> dict[str, LoadedModel]:
    found = {}
    for name in names:
        value = exports.values.get(name)
        if isinstance(value, LoadedModel):
            found[name] = value
        elif isinstance(value, dict):
            found.update({f"{name}[{k}]": v for k, v in value.items() if isinstance(v, LoadedModel)})
    return found


def _curves(exports: Exports, names: list[str]) -> dict[str, dict]:
    out = {}
    for name in names:
        value = exports.values.get(name)
        if not isinstance(value, dict):
            continue
        curves = {k: c for k in CURVE_KEYS if (c := _numbers(value.get(k))) is not None}
        if curves:
            best = value.get("best_epoch", exports.values.get("best_epoch") if name == "history" else None)
            curves["best_epoch"] = int(best) if isinstance(best, (int, float)) and not isinstance(best, bool) else 0
            out[name] = curves
    return out


def collect(spec: ExerciseSpec, exports: Exports, data: DataFactory) -> dict:
    """Everything the exercise's feedback page can plot; empty when the notebook exported nothing."""
    feedback = spec.feedback or {}
    artifacts: dict = {}
    desc = feedback.get("boundary_data")
    models = _models(exports, feedback.get("models", []))
    if desc and models and desc.get("seed") != "hidden":
        dataset = data.make(desc, "feedback")
        grids = {name: g for name, m in models.items() if (g := boundary(m)) is not None}
        if grids:
            artifacts["boundary"] = {
                "grid": GRID, "limit": LIMIT, "maps": grids,
                "points": np.round(dataset.X.numpy(), 3).tolist(), "labels": dataset.Y.tolist(),
            }
    curves = _curves(exports, feedback.get("curves", []))
    if curves:
        artifacts["curves"] = curves
    return artifacts
