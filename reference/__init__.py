"""Reference code for the training-dynamics unit, under the course's own names."""

from .data import CheckerboardDataset, generate_checkerboard_dataset
from .models import SimpleMLP, TinyMLP, count_parameters
from .plots import plot_boundary_and_loss_lr, plot_decision_boundary, plot_loss_and_accuracy, plot_scheduler_grid
from .training import TrainingHistory, evaluate, train_model, train_model_extended

__all__ = [
    "CheckerboardDataset",
    "SimpleMLP",
    "TinyMLP",
    "TrainingHistory",
    "count_parameters",
    "evaluate",
    "generate_checkerboard_dataset",
    "plot_boundary_and_loss_lr",
    "plot_decision_boundary",
    "plot_loss_and_accuracy",
    "plot_scheduler_grid",
    "train_model",
    "train_model_extended",
]
