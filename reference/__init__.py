"""Reference code for the training-dynamics unit, under the course's own names.

``from reference import train_model_extended`` works as in the course. Names load on first
use (PEP 562), so ``import reference`` costs nothing: the grader's fast commands read the
tables below without paying for torch or matplotlib.

Layout: the course helpers at the top (data, models, training, plots, schedules), the
exercises' and demos' reference runs (``exercises``, ``demos``), the MNIST track in
``reference.mnist``, and work beyond the course in ``reference.extras``.
"""

from __future__ import annotations

import importlib

# Course name -> the module that defines it.
_EXPORTS = {
    "CheckerboardDataset": "data",
    "generate_checkerboard_dataset": "data",
    "SimpleMLP": "models",
    "TinyMLP": "models",
    "count_parameters": "models",
    "TrainingHistory": "training",
    "evaluate": "training",
    "train_model": "training",
    "train_model_extended": "training",
    "plot_boundary_and_loss_lr": "plots",
    "plot_decision_boundary": "plots",
    "plot_loss_and_accuracy": "plots",
    "plot_scheduler_grid": "plots",
}
# The course's model classes, by the name a spec uses for them (``architecture`` checks), without importing torch.
MODELS = {
    "SimpleMLP": "reference.models",
    "TinyMLP": "reference.models",
    "MnistMLP": "reference.mnist.models",
    "MnistCNN": "reference.mnist.models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def model_class(name: str) -> type:
    """The course model class called ``name`` (a key of ``MODELS``)."""
    return getattr(importlib.import_module(MODELS[name]), name)
