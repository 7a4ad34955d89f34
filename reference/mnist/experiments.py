"""The MNIST seeds as experiments: SGD schedules (000), Adam schedules (001), the CNN LR sweep (004).

The recipes below are the reference answers; the grader's solution notebooks reuse them.
Every number in the results is measured on full MNIST by these functions; "val" is the
10k test split, as in the seeds. The ``*_report`` functions take the data and the rows, so
tests run them on a small subset for one epoch.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from reference.mnist.data import MnistSplits, load_mnist_splits
from reference.mnist.models import MnistCNN, MnistMLP
from reference.mnist.plots import plot_lr_sweep, plot_recipe_runs
from reference.mnist.training import Logger, MnistRecipe, MnistRun, train_recipe
from reference.results import Comparison, ExperimentResult

# Seed 000: SGD, only the LR value and scheduler may change (15 epochs, batch 64 as in the seed).
SGD_SEED_SETUP = MnistRecipe("sgd", 0.05, 15, "StepLR", (("step_size", 5), ("gamma", 0.5)))
# The seed's own scheduler, halving every epoch instead of every 5: the LRs sum to about
# 2 x 0.05, so training stops moving after a few epochs, at about 93%.
SGD_RECIPE = MnistRecipe("sgd", 0.05, 15, "StepLR", (("step_size", 1), ("gamma", 0.5)))
# Bonus: cosine annealing over the 15 epochs, from a 5x smaller start.
SGD_COSINE_RECIPE = MnistRecipe("sgd", 0.01, 15, "CosineAnnealingLR", (("T_max", 15),))

# Seed 001: Adam, only the LR schedule and the epoch count may change (batch 64).
ADAM_SEED_SETUP = MnistRecipe("adam", 0.01, 10, "StepLR", (("step_size", 3), ("gamma", 0.5)))
# Adam at 0.01 passes 95% train accuracy within its first epoch, so the schedule starts 30x lower and halves after it.
ADAM_RECIPE = MnistRecipe("adam", 3e-4, 2, "StepLR", (("step_size", 1), ("gamma", 0.5)))
# Bonus: ReduceLROnPlateau(patience=2) on the validation loss, from 1e-4 and from the seed's 0.01.
ADAM_PLATEAU_RECIPE = MnistRecipe("adam", 1e-4, 4, "ReduceLROnPlateau", (("patience", 2),))
ADAM_PLATEAU_AT_SEED_LR = MnistRecipe("adam", 0.01, 10, "ReduceLROnPlateau", (("patience", 2),))

# Seed 004: the CNN with Adam at three LRs, 5 epochs, batch 64, each from the same initial weights.
LR_SWEEP_LRS = (1e-4, 1e-3, 1e-2)
LR_SWEEP_EPOCHS = 5
CHECK_SEEDS = (1, 2)  # further seeds each chosen recipe is rerun with, to show the margins hold


@dataclass(frozen=True)
class Task:
    """An exercise's thresholds on eval-mode train accuracy and val accuracy, in %."""

    train_below: float
    val_min: float
    val_strict: bool  # seed 000 says "above 85%", seed 001 "at least 90%"

    def met(self, train_acc: float, val_acc: float) -> bool:
        val_ok = val_acc > self.val_min if self.val_strict else val_acc >= self.val_min
        return train_acc < self.train_below and val_ok

    def describe(self) -> str:
        return f"val {'>' if self.val_strict else '>='} {self.val_min:g}% and train < {self.train_below:g}%"


SGD_TASK = Task(train_below=95.0, val_min=85.0, val_strict=True)
ADAM_TASK = Task(train_below=95.0, val_min=90.0, val_strict=False)


@dataclass(frozen=True)
class Row:
    label: str
    recipe: MnistRecipe
    chosen: bool  # a proposed answer (rerun with CHECK_SEEDS) rather than a set-up shown for contrast


SGD_ROWS = (
    Row("seed 000's set-up", SGD_SEED_SETUP, chosen=False),
    Row("chosen: StepLR(1, 0.5)", SGD_RECIPE, chosen=True),
    Row("bonus: cosine", SGD_COSINE_RECIPE, chosen=True),
)
ADAM_ROWS = (
    Row("seed 001's set-up", ADAM_SEED_SETUP, chosen=False),
    Row("chosen: StepLR(1, 0.5)", ADAM_RECIPE, chosen=True),
    Row("bonus: plateau", ADAM_PLATEAU_RECIPE, chosen=True),
    Row("bonus: plateau at the seed's LR", ADAM_PLATEAU_AT_SEED_LR, chosen=False),
)
# What the seeds print as their results for their own set-ups (train / val accuracy).
SEED_CLAIMS = {"seed 000's set-up": "train 93% / val 87%", "seed 001's set-up": "train 93% / val 91%"}


def _rounded(run: MnistRun) -> str:
    return f"train {run.eval_train_acc:.0f}% / val {run.final.val_acc:.0f}%"


def _row(row: Row, run: MnistRun, task: Task) -> dict:
    return {"set-up": row.label, "recipe": run.recipe.describe(), "seed": run.recipe.seed,
            "eval train acc (%)": round(run.eval_train_acc, 2),
            "running train acc (%)": round(run.final.running_train_acc, 2),
            "val acc (%)": round(run.final.val_acc, 2), "val loss": round(run.final.val_loss, 4),
            "meets task": "yes" if task.met(run.eval_train_acc, run.final.val_acc) else "no"}


def _lr_changes(run: MnistRun) -> list[int]:
    """Epochs (1-based) whose LR differs from the previous epoch's."""
    return [b.epoch for a, b in zip(run.epochs, run.epochs[1:]) if b.lr != a.lr]


def _plateau_note(run: MnistRun) -> str:
    changes = _lr_changes(run)
    if changes:
        return f"ReduceLROnPlateau lowered the LR before epoch {', '.join(map(str, changes))}."
    losses = [s.val_loss for s in run.epochs]
    why = ("the validation loss fell after every epoch" if all(b < a for a, b in zip(losses, losses[1:]))
           else "the validation loss never stalled for longer than its patience")
    return f"ReduceLROnPlateau never lowered the LR: {why}."


def recipe_report(name: str, title: str, data: MnistSplits, task: Task, rows: Sequence[Row],
                  log: Logger | None = print, check_seeds: Sequence[int] = CHECK_SEEDS) -> ExperimentResult:
    """Train the MLP with each row's recipe (chosen ones also with ``check_seeds``) and tabulate."""
    result = ExperimentResult(name, title)
    emit = result.emitter(log)
    emit(f"Task: {task.describe()}; train accuracy in eval mode on all {len(data.train)} training images, "
         f"val on the {len(data.val)} test images.")
    runs: dict[str, MnistRun] = {}
    for row in rows:
        emit(f"--- {row.label}: {row.recipe.describe()}, seed {row.recipe.seed}")
        run = train_recipe(MnistMLP, data, row.recipe, log=emit, eval_train_each_epoch=True)
        runs[row.label] = run
        result.table.append(_row(row, run, task))
        emit(f"eval train acc {run.eval_train_acc:.2f}%, val acc {run.final.val_acc:.2f}% "
             f"({run.seconds:.1f}s): task {'met' if task.met(run.eval_train_acc, run.final.val_acc) else 'NOT met'}")
        if row.label in SEED_CLAIMS:
            result.comparisons.append(Comparison(f"{row.label}, as the seed reports it", SEED_CLAIMS[row.label],
                                                 _rounded(run)))
        if row.recipe.scheduler == "ReduceLROnPlateau":
            result.notes.append(f"{row.label}: {_plateau_note(run)}")
        for seed in check_seeds if row.chosen else ():
            again = train_recipe(MnistMLP, data, row.recipe.with_(seed=seed))
            result.table.append(_row(row, again, task))
            emit(f"  seed {seed}: eval train acc {again.eval_train_acc:.2f}%, val acc {again.final.val_acc:.2f}%")
    gap = max(abs(s.eval_train_acc - s.val_acc) for run in runs.values() for s in run.epochs)
    result.notes += [
        "eval train acc: the final model in eval mode on the whole training split (what the grader measures); "
        "running train acc: counted during the last epoch, as the seeds print it; val: the 10k test split.",
        f"The overfitting the seeds start from (train 98% against val 75-85%) does not appear with this MLP: "
        f"after every epoch of every run here, train and val accuracy differ by at most {gap:.2f} points. The "
        f"chosen recipes keep train accuracy under {task.train_below:g}% by stopping progress early (the LR "
        f"decays, or training ends, before the model fits further), not by generalising better.",
    ]
    result.data = {"task": asdict(task), "recipes": {row.label: asdict(row.recipe) for row in rows},
                   "epochs": {label: [asdict(s) for s in run.epochs] for label, run in runs.items()}}
    result.figures["curves"] = plot_recipe_runs(runs, task.train_below, task.val_min)
    return result


def sgd_report(data: MnistSplits, log: Logger | None = print, rows: Sequence[Row] = SGD_ROWS,
               check_seeds: Sequence[int] = CHECK_SEEDS) -> ExperimentResult:
    return recipe_report("mnist-sgd", "Seed 000: SGD on MNIST, changing only the LR value and scheduler",
                         data, SGD_TASK, rows, log, check_seeds)


def adam_report(data: MnistSplits, log: Logger | None = print, rows: Sequence[Row] = ADAM_ROWS,
                check_seeds: Sequence[int] = CHECK_SEEDS) -> ExperimentResult:
    return recipe_report("mnist-adam", "Seed 001: Adam on MNIST, changing only the LR schedule and epochs",
                         data, ADAM_TASK, rows, log, check_seeds)


def lr_sweep_report(data: MnistSplits, log: Logger | None = print, lrs: Sequence[float] = LR_SWEEP_LRS,
                    epochs: int = LR_SWEEP_EPOCHS) -> ExperimentResult:
    """Seed 004: the CNN with Adam at each LR; per-epoch mean batch loss and val accuracy."""
    result = ExperimentResult("lr-sweep", f"Seed 004: CNN with Adam at {', '.join(f'{lr:g}' for lr in lrs)}, "
                                          f"{epochs} epochs")
    emit = result.emitter(log)
    runs: dict[float, MnistRun] = {}
    for lr in lrs:
        emit(f"--- LR = {lr:g}")
        runs[lr] = run = train_recipe(MnistCNN, data, MnistRecipe("adam", lr, epochs), log=emit)
        result.table.append({
            "lr": lr,
            "train loss by epoch": " / ".join(f"{s.mean_batch_loss:.4f}" for s in run.epochs),
            "val acc by epoch (%)": " / ".join(f"{s.val_acc:.2f}" for s in run.epochs),
            "final val acc (%)": round(run.final.val_acc, 2),
            "eval train acc (%)": round(run.eval_train_acc, 2),
            "seconds": round(run.seconds, 1),
        })
    result.comparisons += _sweep_claims(runs)
    for lr, run in runs.items():  # the seed calls 0.01 unstable; say what this run did
        losses, accs = [s.mean_batch_loss for s in run.epochs], [s.val_acc for s in run.epochs]
        falling = all(b < a for a, b in zip(losses, losses[1:]))
        result.notes.append(f"LR {lr:g}: training loss {'fell every epoch' if falling else 'rose at least once'}; "
                            f"val accuracy between {min(accs):.2f}% and {max(accs):.2f}%.")
    result.notes.append("Train loss is the mean of the batch losses over each epoch, as the seed computes it; "
                        "every LR starts from the same initial weights (torch.manual_seed(0)).")
    result.data = {"curves": {str(lr): {"train_loss": [s.mean_batch_loss for s in run.epochs],
                                        "val_acc": [s.val_acc for s in run.epochs]} for lr, run in runs.items()}}
    result.figures["curves"] = plot_lr_sweep({lr: ([s.mean_batch_loss for s in run.epochs],
                                                   [s.val_acc for s in run.epochs]) for lr, run in runs.items()})
    return result


def _sweep_claims(runs: dict[float, MnistRun]) -> list[Comparison]:
    """The seed's statements about the three LRs, checked on this run (only those whose LRs ran)."""
    final = {lr: run.final.val_acc for lr, run in runs.items()}
    claims = []
    if 1e-3 in final and 1e-4 in final:
        claims.append(Comparison("LR 0.001 beats 0.0001 after the last epoch", "yes",
                                 "yes" if final[1e-3] > final[1e-4] else "no"))
    if 1e-3 in final:
        claims.append(Comparison("LR 0.001 has the highest final val accuracy", "yes",
                                 "yes" if final[1e-3] == max(final.values()) else "no"))
        claims.append(Comparison("LR 0.001 final val accuracy", "~98%", f"~{final[1e-3]:.0f}%"))
    return claims


def mnist_sgd(log: Logger | None = print, device: str | None = None,
              data_root: str | pathlib.Path | None = None) -> ExperimentResult:
    """Seed 000 on full MNIST: the seed's set-up, the chosen StepLR recipe and the cosine bonus."""
    return sgd_report(load_mnist_splits(data_root, device), log)


def mnist_adam(log: Logger | None = print, device: str | None = None,
               data_root: str | pathlib.Path | None = None) -> ExperimentResult:
    """Seed 001 on full MNIST: the seed's set-up, the chosen recipe and the ReduceLROnPlateau bonus."""
    return adam_report(load_mnist_splits(data_root, device), log)


def lr_sweep(log: Logger | None = print, device: str | None = None,
             data_root: str | pathlib.Path | None = None) -> ExperimentResult:
    """Seed 004 on full MNIST: the CNN with Adam at 1e-4, 1e-3 and 1e-2 for 5 epochs."""
    return lr_sweep_report(load_mnist_splits(data_root, device), log)
