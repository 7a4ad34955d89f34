"""Checks on an early-stopping run: best epoch, stopping point, and the restored model.

A run is either the student's own (``model``, ``history``, ``best_epoch`` exports) or a
dict export made by the grader calling the student's function on public data it made
(``run``). The epochs in ``history`` are the student's numbers; the model's val loss is
measured here, so the three checks together show whether the numbers and the model agree.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from grader.checks.base import CheckContext, CheckFailed, Outcome
from grader.checks.data import data_problem
from grader.checks.registry import Param, check_kind
from grader.loading.values import ExportProblem, ModelValue

if TYPE_CHECKING:
    from grader.loading.model_graph import LoadedModel

REL_TOL = 1e-4  # summed float32 batch losses, recomputed on another process: equal to ~1e-6


@dataclass(frozen=True)
class RunView:
    label: str
    model: LoadedModel | ExportProblem | None
    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    best_epoch: int


def _floats(values, what: str) -> tuple[float, ...]:
    if not isinstance(values, list) or not values:
        raise CheckFailed(f"{what} must be a non-empty list with one value per epoch.")
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what} must hold plain numbers (use loss.item(), not the tensor).") from None


def resolve_run(ctx: CheckContext, run: str, model: str, history: str, best_epoch: str, need_model: bool) -> RunView:
    """The run to check: a dict export from the grader's probe, or the student's separate exports."""
    if run:
        data = ctx.value(run, "dict")
        label = "the grader's own run of your function"
        hist, best, net = data, data.get("best_epoch"), data.get("model")
    else:
        label = "your run"
        hist, best = ctx.value(history, "dict"), ctx.value(best_epoch, "integer")
        net = ctx.value(model) if need_model else None
    where = f"`{run}`" if run else f"`{history}`"
    if "val_loss" not in hist:
        keys = ", ".join(repr(k) for k in hist) or "none"
        raise CheckFailed(f"{where} has no 'val_loss' key (its keys: {keys}): record the validation loss of every "
                          "epoch under 'val_loss', and the training loss under 'train_loss'.")
    val = _floats(hist.get("val_loss"), f"{where}['val_loss']")
    train = _floats(hist.get("train_loss"), f"{where}['train_loss']") if "train_loss" in hist else ()
    if not isinstance(best, (int, float)) or isinstance(best, bool) or not float(best).is_integer():
        raise CheckFailed(f"best_epoch of {label} must be a whole number, got {best!r}.")
    if need_model and not isinstance(net, ModelValue):
        reason = net.message if isinstance(net, ExportProblem) else "it holds no model"
        raise CheckFailed(f"The model of {label} could not be checked: {reason}.")
    return RunView(label, net, train, val, int(best))


def first_minimum(values: tuple[float, ...]) -> int:
    """1-based epoch of the lowest value; ties keep the earlier epoch (improvement must be strict)."""
    return min(range(len(values)), key=lambda i: (values[i], i)) + 1


_RUN_PARAMS = dict(
    run=Param(str, "", "a dict export with model, train_loss, val_loss, best_epoch (the grader's probe)", export=True),
    model=Param(str, "model", export=True),
    history=Param(str, "history", "a dict export with train_loss and val_loss lists", export=True),
    best_epoch=Param(str, "best_epoch", export=True),
)


@check_kind("best_epoch_argmin", **_RUN_PARAMS)
def best_epoch_argmin(ctx: CheckContext, run: str, model: str, history: str, best_epoch: str) -> Outcome:
    """best_epoch must be the epoch with the lowest validation loss (1-based, first of ties)."""
    view = resolve_run(ctx, run, model, history, best_epoch, need_model=False)
    expected, got, val = first_minimum(view.val_loss), view.best_epoch, view.val_loss
    metrics = {"best_epoch": got, "argmin_epoch": expected}
    if got == expected:
        return Outcome(True, f"In {view.label}, best_epoch = {got} is the epoch with the lowest val loss "
                       f"({val[expected - 1]:.4f}).", metrics=metrics)
    lowest = f"the lowest val loss is at epoch {expected} ({val[expected - 1]:.4f})"
    if got == expected - 1:
        why = "epochs are counted from 1: inside a loop over range(n_epochs) use best_epoch = epoch + 1"
    elif 1 <= got <= len(val) and val[got - 1] == val[expected - 1]:
        why = ("on equal val losses the earlier epoch is the best: count an epoch as an improvement only when its "
               "val loss is strictly lower (<, not <=)")
    elif got == len(val):
        why = "best_epoch is the last epoch: update it only when the val loss improves, not every epoch"
    elif view.train_loss and got == first_minimum(view.train_loss):
        why = "best_epoch follows the training loss; early stopping must watch the validation loss"
    else:
        why = "set best_epoch at the moment the val loss reaches a new minimum"
    return Outcome(False, f"In {view.label}, best_epoch is {got} but {lowest}: {why}.", metrics=metrics)


@check_kind("stopped_after_patience", patience=Param(int, doc="epochs without improvement before stopping"),
            n_epochs=Param(int, doc="the epoch budget"), **_RUN_PARAMS)
def stopped_after_patience(ctx: CheckContext, patience: int, n_epochs: int, run: str, model: str, history: str,
                           best_epoch: str) -> Outcome:
    """Training must stop exactly ``patience`` epochs after the best one, or run out of epochs."""
    view = resolve_run(ctx, run, model, history, best_epoch, need_model=False)
    best, ran = first_minimum(view.val_loss), len(view.val_loss)
    expected = min(best + patience, n_epochs)
    metrics = {"epochs_run": ran, "expected_stop": expected}
    if ran == expected:
        how = (f"{patience} epochs after the best epoch {best}" if expected < n_epochs
               else f"at the {n_epochs}-epoch budget, before patience ran out")
        return Outcome(True, f"{view.label.capitalize()} stopped at epoch {ran}: {how}.", metrics=metrics)
    if ran == expected + 1:
        why = ("one epoch late: stop as soon as the count of epochs without improvement reaches patience "
               "(epochs_no_improve >= patience)")
    elif ran == expected - 1:
        why = "one epoch early: count an epoch without improvement only after comparing its val loss with the best"
    elif ran == n_epochs:
        why = ("early stopping never triggered: reset the counter when the val loss improves, add one otherwise, "
               "and break when it reaches patience")
    elif ran > n_epochs:
        why = f"it ran more epochs than its budget of {n_epochs}"
    else:
        why = "reset the counter only on a strict improvement of the val loss, and stop when it reaches patience"
    return Outcome(False, f"{view.label.capitalize()} stopped at epoch {ran}, but its val loss last improved at "
                   f"epoch {best}, so with patience {patience} it should stop at epoch {expected}: {why}.",
                   metrics=metrics)


# How a validation loss may be reported; the course's is the first. Early stopping works the same with any of
# them, so the grader measures all and compares in whichever the student's history uses.
LOSS_CONVENTIONS = {
    "sum of batch means": "the course's: the sum of the batches' mean losses",
    "mean over samples": "the mean loss per sample",
    "mean of batch means": "the mean of the batches' mean losses",
    "sum over samples": "the sum of the per-sample losses",
}


def val_loss_conventions(model: LoadedModel, dataset, batch_size: int) -> tuple[dict[str, float], float]:
    """The model's val loss in every convention of LOSS_CONVENTIONS (unshuffled batches), and its accuracy in %."""
    per_sample, predicted = model.losses(dataset.X, dataset.Y)
    batch_means = [chunk.mean().item() for chunk in per_sample.split(batch_size)]
    losses = {"sum of batch means": math.fsum(batch_means), "mean over samples": per_sample.mean().item(),
              "mean of batch means": math.fsum(batch_means) / len(batch_means),
              "sum over samples": per_sample.sum().item()}
    accuracy = 100 * (predicted == dataset.Y).double().mean().item()
    return losses, accuracy


def _epochs_matching(value: float, curve: tuple[float, ...]) -> list[int]:
    return [e + 1 for e, v in enumerate(curve) if math.isclose(value, v, rel_tol=REL_TOL)]


def _convention_of(losses: dict[str, float], curve: tuple[float, ...], best: int) -> tuple[str, list[int]]:
    """The convention the history uses, and the epochs the model matches in it.

    The one where the model matches the best epoch, else one where it matches some epoch, else the course's.
    """
    matches = {name: _epochs_matching(value, curve) for name, value in losses.items()}
    name = (next((n for n, epochs in matches.items() if best in epochs), None)
            or next((n for n, epochs in matches.items() if epochs), None) or "sum of batch means")
    return name, matches[name]


def _restore_diagnosis(source: str) -> str:
    """Read the student's function for the two classic mistakes behind a model that is not the best one."""
    if not source:
        return ""
    code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
    saves = re.findall(r"(\w+)\s*=\s*(.*state_dict\(\).*)", code)
    if saves and not any(re.search(r"deepcopy|\.clone\(|copy\(", rhs) for _, rhs in saves):
        return (" Your function keeps model.state_dict() without copy.deepcopy: that dict holds references to the "
                "live weights, so the saved 'best' state changed with every update. Save "
                "copy.deepcopy(model.state_dict()).")
    if "load_state_dict" not in code:
        return " Your function never calls model.load_state_dict(...) to put the best weights back."
    return (" Restore the best state in every case: also when training uses all its epochs without early stopping "
            "(the course's version restored it only when patience ran out).")


@check_kind("restored_best", data=Param(dict, doc="the validation set the run used", check=data_problem),
            batch_size=Param(int, 32),
            function=Param(str, "", "the function export to read for a diagnosis", export=True),
            **_RUN_PARAMS)
def restored_best(ctx: CheckContext, data: dict, batch_size: int, function: str, run: str, model: str,
                  history: str, best_epoch: str) -> Outcome:
    """The exported model must BE the best state: its val loss, measured here, equals the best epoch's."""
    view = resolve_run(ctx, run, model, history, best_epoch, need_model=True)
    losses, accuracy = val_loss_conventions(view.model, ctx.data.make(data, ctx.check_id), batch_size)
    best = first_minimum(view.val_loss)
    target, last = view.val_loss[best - 1], view.val_loss[-1]
    convention, matching = _convention_of(losses, view.val_loss, best)
    measured = losses[convention]
    metrics = {"measured_val_loss": round(measured, 6), "best_val_loss": target, "val_accuracy": round(accuracy, 4),
               "loss_convention": convention if matching else "unknown"}
    scale = ("" if convention == "sum of batch means" else
             f" (your history reports {LOSS_CONVENTIONS[convention]}, so the grader compares in that scale)")
    if best in matching:
        return Outcome(True, f"The model of {view.label} is the restored best state: the grader measures its val loss "
                       f"as {measured:.4f}, as at epoch {best}{scale}.", metrics=metrics)
    source = ctx.function_source(function)
    if matching and matching[-1] == len(view.val_loss):
        found = f"it is the last epoch's model (epoch {len(view.val_loss)}, val loss {last:.4f})"
    elif matching:
        found = f"it is the model of epoch {matching[0]} (val loss {view.val_loss[matching[0] - 1]:.4f})"
    else:
        tried = ", ".join(f"{name} {value:.4f}" for name, value in losses.items())
        return Outcome(False, f"The val loss of the model of {view.label} matches no epoch of its history, so the "
                       f"grader cannot tell which epoch's weights it holds: measured on the validation set it is "
                       f"{tried}, but the best epoch {best} recorded {target:.4f}. Record the val loss of the model as "
                       "it is after each epoch, over the whole validation set in eval mode, and put back the best "
                       f"epoch's weights.{_restore_diagnosis(source)}", metrics=metrics)
    return Outcome(False, f"The model of {view.label} is not the best one: the grader measures a val loss of "
                   f"{measured:.4f}{scale}, but the best epoch {best} had {target:.4f}; {found}."
                   f"{_restore_diagnosis(source)}", metrics=metrics)


@check_kind("history_recorded", history=Param(str, "history", export=True), key=Param(str, "train_loss"),
            min_epochs=Param(int, 1))
def history_recorded(ctx: CheckContext, history: str, key: str, min_epochs: int) -> Outcome:
    """The training loop ran: ``history[key]`` holds a value per epoch. Other checks can require this one."""
    curve = ctx.value(history, "dict").get(key)
    epochs = len(curve) if isinstance(curve, list) else 0
    if epochs >= min_epochs:
        return Outcome(True, f"Training ran: `{history}` records {epochs} epoch{'s' * (epochs != 1)}.",
                       metrics={"epochs": epochs})
    return Outcome(False, f"`{history}['{key}']` records no epoch: the training loop did not run. Fix the first "
                   "error your notebook reports, then run it again from the top.")
