"""Checks on an early-stopping run: best epoch, stopping point, the restored model, and the scheduler's cadence.

A run is either the student's own (``model``, ``history``, ``best_epoch`` exports) or a
dict export made by the grader calling the student's function on public data it made
(``run``). The epochs in ``history`` are the student's numbers; the model's val loss is
measured here, so the three checks together show whether the numbers and the model agree.
When the model is not the best state, ``grader.diagnosis.restore_messages`` says why, from
further measurements (the untrained model, a run whose patience ran out) and the code's facts.
``scheduler_cadence`` reads a probe run that counted each scheduler.step() call
(``grader.diagnosis.lr_cadence``).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from grader.checks.base import CheckContext, CheckFailed, Outcome, as_curve, describe
from grader.checks.data import data_problem
from grader.checks.gradients import loss_changes, restarts_message
from grader.checks.improvement import COUNTINGS, follow, strict
from grader.checks.mnist import IMPLEMENTATION_FLAGS
from grader.checks.probe_runs import per_step_epochs, refuse_carried_over
from grader.checks.models import same_weights, untrained_cause
from grader.checks.registry import Param, check_kind
from grader.checks.schedulers import ReplayError, replay
from grader.diagnosis.lr_cadence import CadenceRun, diagnose
from grader.diagnosis.loss_readings import LAST_BATCH, LOSS_CONVENTIONS, conventions
from grader.diagnosis.lr_fitting import as_floats
from grader.diagnosis.restore_messages import NO_NEW_BEST, RestoreEvidence, why_not_best
from grader.diagnosis.training_code import cell_line, restore_code, signature
from grader.loading.kinds import whole_number
from grader.loading.values import ExportProblem, LoaderExport, ModelValue, OptimizerExport, SchedulerExport
from grader.source_trees import parse as parse_source

if TYPE_CHECKING:
    from grader.loading.model_graph import LoadedModel

REL_TOL = 1e-4  # summed float32 batch losses, recomputed on another process: equal to ~1e-6
MAX_PLOTTED = 100  # LRs of one list kept in the details for the feedback plot


@dataclass(frozen=True)
class RunView:
    label: str
    model: LoadedModel | ExportProblem | None
    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    best_epoch: int
    initial: LoadedModel | None = None  # the model before training, where the probe kept a copy


def _floats(values, what: str) -> tuple[float, ...]:
    values = as_curve(values)
    if not values:
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
        refuse_carried_over(data, label)
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
    if run:
        _check_order(hist, {"train_loss": train, "val_loss": val})
    if not whole_number(best):
        # A list where best_epoch belongs: in a grader's run, the function returned the last two items swapped.
        order = (f" Item 6 of what your function returned, where the course's order puts best_epoch, is a list: "
                 f"return {COURSE_ORDER} in that order." if run and isinstance(best, (list, tuple)) else "")
        got = (f"a list of {len(best)}, [{', '.join(map(repr, best[:3]))}, ...]"
               if isinstance(best, (list, tuple)) and len(best) > 3 else repr(best))
        raise CheckFailed(f"best_epoch of {label} must be a whole number, got {got}.{order}")
    if need_model and not isinstance(net, ModelValue):
        reason = net.message if isinstance(net, ExportProblem) else f"where the model belongs it holds {describe(net)}"
        raise CheckFailed(f"The model of {label} could not be checked: {reason}.")
    initial = hist.get("initial") if run else None
    return RunView(label, net, train, val, int(best), initial if isinstance(initial, ModelValue) else None)


# Where the course's 7-tuple (model, train_loss, train_acc, val_loss, val_acc, best_epoch, lr_history) puts each loss.
RETURNED_AT = {"train_loss": (2, "train", "training"), "val_loss": (4, "val", "validation")}
COURSE_ORDER = "(model, train_loss, train_acc, val_loss, val_acc, best_epoch, lr_history)"


def accuracy_scale(values: tuple[float, ...], points: int) -> str:
    """"percent" or "fraction" where every value is a whole number of ``points`` in that scale, as an accuracy over
    them is; "" otherwise. A loss lands within 1e-3 of such a value about one time in 500 per epoch, so three
    epochs or more that all do are not a loss; whole numbers alone (a rounded loss) are not told either way."""
    if len(values) < 3 or points < 1 or all(float(v).is_integer() for v in values):
        return ""
    for scale, top in (("percent", 100.0), ("fraction", 1.0)):
        if all(0 <= v <= top for v in values) and _whole_of(values, points, top):
            return scale
    return ""


def _whole_of(values, points: int, top: float = 100.0) -> bool:
    """Whether every value is a whole number of ``points`` on a scale where all of them make ``top``."""
    return all(abs(v * points / top - round(v * points / top)) <= 1e-3 for v in values)


def _check_order(hist: dict, series: dict[str, tuple[float, ...]]) -> None:
    """Fail a grader's run whose losses are accuracies: the function returns the course's items in another order,
    and every reading of the run (best epoch, stop, restore) would blame logic that may well be right."""
    points = hist.get("points") if isinstance(hist.get("points"), dict) else {}
    for key, values in series.items():
        place, split, words = RETURNED_AT[key]
        size = points.get(split)
        scale = accuracy_scale(values, size) if type(size) is int else ""
        if scale:
            shown = ", ".join(f"{v:g}" for v in values[:4])
            raise CheckFailed(
                f"In the grader's own run of your function, item {place} of what it returned, where the course's "
                f"order puts the {split} losses, holds accuracies: {shown}, ... are each a whole number of the "
                f"grader's {size} {words} points, as a {'percentage' if scale == 'percent' else 'fraction'}. Return "
                f"{COURSE_ORDER} in that order: whoever calls the function reads each item by its place.")


def first_minimum(values: tuple[float, ...]) -> int:
    """1-based epoch of the lowest value; ties keep the earlier epoch (improvement must be strict)."""
    return min(range(len(values)), key=lambda i: (values[i], i)) + 1


_RUN_PARAMS = dict(
    run=Param(str, "", "a dict export with model, train_loss, val_loss, best_epoch (the grader's probe)", export=True),
    model=Param(str, "model", export=True),
    history=Param(str, "history", "a dict export with train_loss and val_loss lists", export=True),
    best_epoch=Param(str, "best_epoch", export=True),
)


def _not_whole(curve: tuple[float, ...], size: int, where: str, split: str) -> str:
    """What to say when an accuracy of ``curve`` is not a whole number of the ``size`` points it was counted over
    (100 * correct / size); "" when each is."""
    off = next((v for v in curve if not _whole_of([v], size)), None)
    if off is None:
        return ""
    total = next((t for t in range(size + 1, 2 * size + 1) if _whole_of(curve, t)), None) if len(curve) >= 3 else None
    cause = (f"every value is a whole number of {total} instead: a total of {total} rather than the {size} points (the "
             "number of batches times the batch size counts a short last batch as full)" if total else
             "averaging the batches' own accuracies, or a total other than the number of points, gives values like "
             "this")
    return (f"{where} holds {off:g}, which is {off * size / 100:.4g} of the {size} {split} points, not a whole "
            f"number: {cause}. Count the accuracy as 100 * correct / total over every point (len(loader.dataset)), "
            "each once")


@check_kind("accuracy_history", history=Param(str, "history", "a dict export with train_acc, val_acc and val_loss "
                                              "lists", export=True),
            points=Param(dict, {}, "the number of points of the run's sets, e.g. { train = 180, val = 180 }: each "
                                   "accuracy must be a whole number of them, in percent"))
def accuracy_history(ctx: CheckContext, history: str, points: dict | None = None) -> Outcome:
    """train_acc and val_acc hold one accuracy per epoch, in percent, as val_loss holds one loss per epoch: with
    ``points``, each a whole number of its set's points."""
    hist = ctx.value(history, "dict")
    epochs = len(as_curve(hist.get("val_loss")) or ())
    curves = {}
    for key in ("train_acc", "val_acc"):
        if key not in hist:
            keys = ", ".join(map(str, hist)) or "none"
            raise CheckFailed(f"`{history}` has no '{key}' key (its keys: {keys}): record the accuracy of every epoch "
                              f"under '{key}', in percent.")
        curves[key] = _floats(hist[key], f"`{history}`['{key}']")
    wrong = [f"`{history}`['{key}'] has {len(v)} values for the {epochs} epochs of its val_loss: record one per "
             "epoch" for key, v in curves.items() if epochs and len(v) != epochs]
    values = [v for curve in curves.values() for v in curve]
    if any(v < 0 or v > 100 for v in values):
        wrong.append(f"The accuracies in `{history}` run from {min(values):g} to {max(values):g}: an accuracy in "
                     "percent lies between 0 and 100")
    elif all(v <= 1 for v in values):
        # No model of the set-up scores 1% or less at any epoch (two classes): these are fractions of 1.
        shown = ", ".join(f"{v:.4g}" for v in curves["val_acc"][:3])
        wrong.append(f"The accuracies in `{history}` are fractions of 1 (val_acc {shown}, ...): the task reports "
                     "accuracy in percent, 100 * correct / total")
    elif fractions := [key for key, curve in curves.items() if curve and all(v <= 1 for v in curve)]:
        # One curve in percent, the other at most 1 at every epoch: that one is fractions, however it is counted.
        key, other = fractions[0], next(k for k in curves if k != fractions[0])
        shown = ", ".join(f"{v:.4g}" for v in curves[key][:3])
        wrong.append(f"`{history}`['{key}'] holds fractions of 1 ({shown}, ...) where {other} is in percent: the task "
                     "reports both in percent, 100 * correct / total")
    else:
        off = {key: _not_whole(curve, points[key[:-4]], f"`{history}`['{key}']", key[:-4]) for key, curve in
               curves.items() if type((points or {}).get(key[:-4])) is int}
        # Judged by the validation pass, which goes through its loader once: training accuracies alone are off too in
        # a loop that draws its batches otherwise (a new iterator per batch), which follows-arguments judges.
        wrong += [m for m in off.values() if m] if off.get("val_acc") else []
    if wrong:
        return Outcome(False, "; ".join(wrong) + ".")
    return Outcome(True, f"train_acc and val_acc hold one accuracy per epoch ({epochs}), in percent.")


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
    falls = [e for e in range(2, len(val) + 1) if val[e - 1] < val[e - 2]]  # epochs below the one before
    previous = ("an epoch improves when its val loss is strictly lower than the best so far, not than the previous "
                "epoch's")
    if got == expected - 1:
        why = "epochs are counted from 1: inside a loop over range(n_epochs) use best_epoch = epoch + 1"
    elif 1 <= got <= len(val) and val[got - 1] == val[expected - 1]:
        why = ("on equal val losses the earlier epoch is the best: count an epoch as an improvement only when its "
               "val loss is strictly lower (<, not <=)")
    elif falls and got == falls[-1] and got != len(val):
        why = f"best_epoch is the last epoch whose val loss fell below the epoch before's: {previous}"
    elif got == len(val):
        why = "best_epoch is the last epoch: update it only when the val loss improves, not every epoch"
        others = [f"it is set on every fall below the epoch before: {previous}"] if falls and got == falls[-1] else []
        if view.train_loss and got == first_minimum(view.train_loss):  # both fit: a training loss lowest at the end
            others.append("it follows the training loss, whose lowest is at the last epoch too: early stopping must "
                          "watch the validation loss")
        why += f" (or {'; or '.join(others)})" if others else ""
    elif view.train_loss and got == first_minimum(view.train_loss):
        why = "best_epoch follows the training loss; early stopping must watch the validation loss"
    else:
        why = "set best_epoch at the moment the val loss reaches a new minimum"
    return Outcome(False, f"In {view.label}, best_epoch is {got} but {lowest}: {why}.", metrics=metrics)


def _probe(ctx: CheckContext, name: str) -> dict:
    """The grader's run ``name`` where it exists; {} where it is not named or missing (optional evidence)."""
    try:
        return ctx.value(name, "dict") if name else {}
    except CheckFailed:
        return {}


def _missing_epochs(ctx: CheckContext, run: str) -> tuple[int, int] | None:
    """(epochs run, epochs recorded) of a grader's run whose loaders counted more passes than its history holds
    epochs, one pass over each loader an epoch; None where the counts do not show that (a function that validates
    before training, or twice an epoch, counts its two loaders unalike and is never read so)."""
    data = _probe(ctx, run)
    recorded = len(as_curve(data.get("val_loss")) or ())
    passes = data.get("train_passes"), data.get("val_passes")
    if all(whole_number(n) for n in passes) and passes[0] == passes[1] > recorded > 0:
        return int(passes[0]), recorded
    return None


def _missing_said(who: str, missing: tuple[int, int]) -> str:
    return (f"{who} went through its training and validation loaders {missing[0]} times each, one pass of each an "
            f"epoch, but its history holds {missing[1]} epochs: it leaves epochs it ran out of its history (the "
            "epoch it stopped at, or the epochs after the best, say). Record every epoch's values before deciding "
            "whether to stop, and return the lists whole.")


@check_kind("stopped_after_patience", patience=Param(int, doc="epochs without improvement before stopping"),
            n_epochs=Param(int, doc="the epoch budget"),
            probe=Param(str, "", "for the student's own run: a grader's run of the same function whose loaders "
                                 "counted their passes, which tells a history that leaves out epochs it ran (read "
                                 "where it exists: a self-check without it still judges the run)"), **_RUN_PARAMS)
def stopped_after_patience(ctx: CheckContext, patience: int, n_epochs: int, run: str, model: str, history: str,
                           best_epoch: str, probe: str = "") -> Outcome:
    """Training must stop exactly ``patience`` epochs after the best one, or run out of epochs."""
    view = resolve_run(ctx, run, model, history, best_epoch, need_model=False)
    best, ran = first_minimum(view.val_loss), len(view.val_loss)
    expected = min(best + patience, n_epochs)
    metrics = {"epochs_run": ran, "expected_stop": expected}
    if ran == expected:
        how = (f"{patience} epochs after the best epoch {best}" if expected < n_epochs
               else f"at the {n_epochs}-epoch budget, before patience ran out")
        return Outcome(True, f"{view.label.capitalize()} stopped at epoch {ran}: {how}.", metrics=metrics)
    missing = _missing_epochs(ctx, run or probe)
    if missing:  # where it stopped cannot be read from such a history: no cause of a count
        who = view.label.capitalize() if run else f"The grader's own run of your function (`{probe}`)"
        own = "" if run else f"Your history holds {ran} epochs, and where your run stopped cannot be read from it. "
        return Outcome(False, own + _missing_said(who, missing), metrics=metrics)
    # One epoch off says only that the count is off by one, not which of the usual ways: each is listed, none named.
    # A counter reset on every fall below the epoch before, not below the best so far, stops later or never: where
    # the recorded losses put that rule's stop at the run's own, it is said as what the losses fit, not as the cause.
    by_previous = _stop_comparing_with_previous(view.val_loss, patience)
    fits_previous = (f"; its stop also fits a counter reset whenever the val loss falls below the epoch before's "
                     f"rather than below the best so far (with these val losses that counter reaches {patience} "
                     f"{f'at epoch {ran}' if by_previous == ran else 'in no epoch'})"
                     if by_previous == ran or by_previous is None and ran == n_epochs else "")
    own_best = view.best_epoch
    if own_best != best and 1 <= own_best and ran == own_best + patience:
        # The count is right from the epoch the run itself picked: what is wrong is which epoch it picked.
        why = (f"it stopped {patience} epochs after epoch {own_best}, the one it reports as best_epoch, so its count "
               f"of epochs without improvement works, from the wrong best epoch: its rule for a new best watches "
               f"something else than the val loss (the val accuracy, say, or the training loss), where the lowest val "
               f"loss is epoch {best}'s. Count a new best, and reset the counter, when the val loss is strictly lower "
               "than the best so far")
    elif ran == expected + 1 and view.val_loss[-1] == view.val_loss[best - 1]:
        # The very float of the best epoch again, last: the restored model evaluated once more after the loop gives it.
        why = (f"one epoch late, or one value too many: the last val loss recorded, {view.val_loss[-1]:.6g}, is epoch "
               f"{best}'s exactly, what an evaluation of the restored model appended after the loop records. If so, "
               "record one value per epoch and nothing after the loop; if not, the count of epochs without "
               "improvement is off by one (a test with > where >= belongs, say): stop as soon as the epochs since the "
               "best one reach patience")
    elif ran == expected + 1:
        why = ("one epoch late. The count of epochs without improvement is off by one, for example a test with > "
               "where >= belongs, or a count that starts at 0 on the first epoch without improvement: stop as soon as "
               "the epochs since the best one reach patience")
    elif ran == patience < n_epochs and (best > 1 or view.best_epoch != best):
        # Every epoch counted, the first included, which improves on any best a fresh call starts from.
        why = f"it stopped after exactly {patience} epochs, so its count went up at every epoch, the first one too: "
        why += (f"no val loss counted as an improvement (best_epoch is {view.best_epoch}). {NO_NEW_BEST} does that"
                if view.best_epoch != best else
                "improvements are seen (best_epoch is right), but the count goes up at every epoch, improving ones too")
        batches = _patience_in_batches(ctx, run or probe, ran - best, patience)
        why += (f"; or, as well, patience counted in batches (or optimizer steps), {patience} of them at {batches} an "
                f"epoch{_probe_said(run, probe)}" if batches else "")
        why += ": reset the counter to 0 on each strict improvement of the best val loss, add one otherwise"
    elif ran == expected - 1:
        why = ("one epoch early. The count of epochs without improvement is off by one, for example an epoch counted "
               "before its val loss is compared with the best, or an epoch counted from 1 compared with a best index "
               "counted from 0: stop as soon as the epochs since the best one reach patience")
    elif ran == n_epochs:
        why = ("early stopping never triggered: reset the counter when the val loss improves on the best so far, add "
               "one otherwise, and break when it reaches patience")
    elif ran > n_epochs:
        why = f"it ran more epochs than its budget of {n_epochs}"
    elif best < ran < n_epochs:
        gap = ran - best
        stopped = (f"it stopped {gap} epoch{'s' if gap != 1 else ''} after its best epoch, where a run with "
                   f"patience={gap} stops. If the run was given patience={patience}, ")
        # Too soon and too late have different usual causes; each is only an example of what the stop shows.
        batches = _patience_in_batches(ctx, run or probe, gap, patience)
        # Both readings can fit one run: then neither is the cause, and both are said with what each fits.
        never_reset = (f", or a count never reset to 0 when the val loss improves (with these val losses it reaches "
                       f"{patience} at epoch {ran})" if _stop_never_reset(view.val_loss, patience) == ran else "")
        soon = (f"its count reached patience too soon: it stopped {gap} epoch{'s' if gap != 1 else ''} after its best, "
                f"what patience counted in batches (or optimizer steps) gives, {patience} of them at {batches} an "
                f"epoch{_probe_said(run, probe)}{never_reset}" if batches else
                "its count of epochs without improvement reached patience too soon, for example a count never "
                "reset to 0 when the val loss improves (it counts every epoch without improvement since the start)"
                if ran > patience else "its count of epochs without improvement reached patience too soon (it stopped "
                f"at epoch {ran}, before {patience} epochs could pass, so it counts something else: batches, say)")
        late = ("its count of epochs without improvement started again after the best epoch, for example on a val "
                "loss that only tied the best, or that improved on the epoch before but not on the best, or on "
                "another loss than the val loss")
        why = (stopped + (soon if ran < expected else late) + ": reset the counter to 0 on each strict improvement "
               "of the best val loss, add one otherwise, and stop when it reaches patience")
    else:
        why = "reset the counter only on a strict improvement of the val loss, and stop when it reaches patience"
    return Outcome(False, f"{view.label.capitalize()} stopped at epoch {ran}, but its val loss last improved at "
                   f"epoch {best}, so with patience {patience} it should stop at epoch {expected}: {why}"
                   f"{fits_previous if ran > expected else ''}.", metrics=metrics)


def _patience_in_batches(ctx: CheckContext, run: str, gap: int, patience: int) -> int:
    """The batches an epoch of a grader's run (``run``) has, where both that run's stop and one ``gap`` epochs after the
    best with ``patience`` are where patience counted in batches stops (the first whole epochs past it); else 0."""
    data = _probe(ctx, run)
    batches, val, waited = data.get("batches"), as_curve(data.get("val_loss")) or (), data.get("patience")
    if not (whole_number(batches) and whole_number(waited) and batches > 1 and val):
        return 0
    stops = (len(val) - first_minimum(val), -(-waited // batches)), (gap, -(-patience // batches))
    return int(batches) if all(seen == counted != given for (seen, counted), given in zip(stops, (waited, patience)))\
        else 0


def _probe_said(run: str, probe: str) -> str:
    return "" if run else f" (as the grader's own run of your function, `{probe}`, stops too)"


def _stop_never_reset(val_loss: list[float], patience: int) -> int | None:
    """The epoch at which a count of the epochs that do not improve on the best, never set back to 0, reaches
    ``patience``.

    >>> _stop_never_reset([5.0, 5.1, 4.0, 4.2, 3.0, 3.5], 3)
    6
    """
    best, count = math.inf, 0
    for epoch, value in enumerate(val_loss, 1):
        if value < best:
            best = value
        else:
            count += 1
            if count >= patience:
                return epoch
    return None


def _stop_comparing_with_previous(val_loss: list[float], patience: int) -> int | None:
    """The epoch at which a counter reset whenever the val loss falls below the epoch before's reaches ``patience``.

    >>> _stop_comparing_with_previous([5.0, 4.0, 4.5, 4.2, 4.6, 4.7], 2)
    6
    """
    count = 0
    for epoch in range(2, len(val_loss) + 1):
        count = 0 if val_loss[epoch - 1] < val_loss[epoch - 2] else count + 1
        if count >= patience:
            return epoch
    return None


def _epochs_followed(ran: int, n_epochs: int, patience: int, passes: object = None) -> str:
    """'' when a run that patience could not stop recorded its ``n_epochs`` epochs; else what it did, with the causes
    that remain (``passes``: its passes over the training loader, where counted)."""
    if ran == n_epochs:
        return ""
    called = (f"The grader called your function with n_epochs={n_epochs} and patience={patience}, which cannot run "
              f"out in {n_epochs} epochs, but it recorded {ran} epochs")
    if ran < n_epochs:
        loop = (": a loop over range(1, n_epochs) runs one epoch short (range(1, n_epochs + 1) runs them all)"
                if ran == n_epochs - 1 else "")
        return (f"{called}{loop}. Otherwise something besides patience stops it early: train for all n_epochs "
                "unless the val loss has not improved for patience epochs.")
    if whole_number(passes) and passes == ran > n_epochs + 1:  # each epoch trained: the loop ran them all
        return (f"{called}, more than n_epochs, and went through the training loader {passes} times: its loop runs "
                f"{passes} epochs, bounded by something other than the n_epochs argument (a global, or a number of "
                "its own). Loop over the n_epochs it is given.")
    extra = (": either the loop runs one epoch more (one that counts from 0 up to and including n_epochs, say), or "
             "a val loss is recorded once before training" if ran == n_epochs + 1 else "")
    return f"{called}, more than n_epochs{extra}. Record one value per epoch, for n_epochs epochs at most."


def _lr_followed(first_step: object, lr: float) -> tuple[str | None, str]:
    """Whether the first optimizer step of the run used ``lr`` (None: no step was seen), and what it shows."""
    if not isinstance(first_step, dict) or not isinstance(first_step.get("lr"), list) or not first_step["lr"]:
        return None, "No optimizer took a step in that run, so its learning rate could not be read."
    name = str(first_step.get("optimizer", "optimizer"))
    rates = [v for v in first_step["lr"] if isinstance(v, (int, float))]
    if rates and all(math.isclose(v, lr, rel_tol=1e-6) for v in rates):
        return "", f"Its {name} optimizer stepped at lr {lr:g}."
    shown = ", ".join(f"{v:g}" for v in rates) or "not a number"
    default = _default_lr(name)
    known = f" ({default:g} is {name}'s default, used when no lr is passed)" if default in rates else ""
    return (f"The grader passed lr={lr:g} and no optimizer, but the {name} your function made took its first step "
            f"at lr {shown}{known}: make the optimizer with the lr argument, e.g. {name}(model.parameters(), "
            "lr=lr)."), ""


def _update_settings(group: dict) -> dict:
    """An optimizer's param-group settings that decide its update (lists as tuples; a decoupled weight decay of 0 is
    no weight decay)."""
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in group.items()
                if k not in IMPLEMENTATION_FLAGS and k not in ("params", "lr", "initial_lr")}
    if not settings.get("weight_decay"):
        settings.pop("decoupled_weight_decay", None)
    return settings


def _default_optimizer(nets: tuple, lr: float) -> str:
    """What the optimizer a function made itself (the grader passed none) does otherwise than the course's default,
    Adam(model.parameters(), lr=lr): the classes and param-group settings the kernel saw step the first of ``nets``
    that an optimizer stepped; "" where nothing differs, or where no step was recorded."""
    import torch

    net = next((n for n in nets if getattr(n, "optimizers", ()) and getattr(n, "step_settings", None)), None)
    if net is None:
        return ""
    made = _update_settings(net.step_settings)
    course = _update_settings(torch.optim.Adam([torch.zeros(1)], lr=lr).param_groups[0])
    name = " and ".join(net.optimizers)
    if made.keys() - {"decoupled_weight_decay"} != course.keys() - {"decoupled_weight_decay"}:
        found = f"{name}, whose settings are not Adam's ({', '.join(sorted(made)) or 'none'})"
    else:
        differs = sorted(k for k in made.keys() | course.keys() if made.get(k) != course.get(k))
        if not differs:
            return ""
        found = (f"{name} with " + ", ".join(f"{k}={made.get(k, False)!r}" for k in differs) + ", where Adam(lr=lr) "
                 "has " + ", ".join(f"{k}={course.get(k, False)!r}" for k in differs))
    return (f"The grader passed no optimizer, and your function made {found}. The course's default is "
            "torch.optim.Adam(model.parameters(), lr=lr) with nothing else set: make that one when no optimizer is "
            "given.")


def _steps_said(data: dict) -> str:
    """How the run's optimizer steps were counted, for a run whose count is right or could not be taken."""
    steps = data.get("optimizer_steps")
    if whole_number(steps) and steps:
        return "one optimizer step per training batch"
    return "with no torch optimizer step recorded (an update written by hand), so its steps per batch were not counted"


LR_IGNORED = ("At lr=0 (the grader's run on a plateau) the model's weights still changed: your function does not train "
              "at the lr it is given (an optimizer made with an lr of its own, say). Use the lr argument.")


def _lr_at_zero(ctx: CheckContext, plateau: str, note: str) -> tuple[str, str]:
    """(what is wrong, a note): what the grader's run at lr=0 shows of a function whose learning rate no torch
    optimizer step showed; ``note`` where that run shows nothing either."""
    run = ctx.exports.values.get(plateau) if plateau else None
    if not isinstance(run, dict) or run.get("lr") != 0 or not isinstance(run.get("weights_moved"), bool):
        return "", note
    if not run["weights_moved"]:
        return "", "At lr=0 its weights did not move, so it trains at the lr it is given."
    if run.get("stepped_lrs") == [0.0] and run.get("returned_given") is not False:
        # Its optimizer followed lr=0, so the weights came from elsewhere: not a question of the lr it trains at.
        return ("At lr=0 (the grader's run on a plateau) its optimizer stepped at lr 0, as given, yet the weights of "
                "the model it returned changed: something other than its optimizer's steps put weights into it (a "
                "state loaded from a file or kept from an earlier call, or an update written by hand). Train the model "
                "passed in with the optimizer alone, and restore only a state this call saved."), ""
    if run.get("returned_given") is False and run.get("given_moved") is False:
        returned = ("At lr=0 (the grader's run on a plateau) the model your function returned is not the one the "
                    "grader handed it, and holds other weights than that model started with, while the one handed in "
                    "never changed")
        if run.get("stepped_lrs") == [0.0]:  # its optimizer followed lr=0: the weights were another model's already
            return (f"{returned}; its optimizer stepped at lr 0, as given, so the model returned is one your "
                    "function builds or loads itself, not the model passed in. Train and return the model argument."), ""
        return (f"{returned}: your function trains a model of its own (built or loaded inside it), or a copy of the "
                "one passed in at an lr of its own. Train the model argument, at the lr argument."), ""
    return LR_IGNORED, ""


def _default_lr(optimizer: str) -> float | None:
    """torch's default learning rate of the optimizer class ``optimizer`` (None if it has none, or is not torch's)."""
    import inspect

    import torch

    cls = getattr(torch.optim, optimizer, None)
    try:
        default = inspect.signature(cls).parameters["lr"].default if isinstance(cls, type) else None
    except (KeyError, TypeError, ValueError):
        return None
    return float(default) if isinstance(default, (int, float)) else None


def _steps_followed(steps: object, batches: object, ran: int) -> str:
    """'' when the run's optimizer steps are one per training batch of each recorded epoch (or were not counted)."""
    if not whole_number(steps) or not whole_number(batches) or not steps or not batches or steps == ran * batches:
        return ""
    per = steps / ran
    what = (f"Your function stepped the optimizer {steps} times in its {ran} epochs, {per:g} per epoch, but the "
            f"training loader has {batches} batches")
    if per > batches:
        return f"{what}: it also updates the model on other batches (a validation pass that steps the optimizer, say)."
    return f"{what}: it skips some training batches, or steps once per several of them."


def _kept_start(net: object, start: object) -> bool | None:
    """Whether ``net`` still holds the weights of ``start``, its copy before the run (the grader's own runs are not
    recorded from their first forward pass, so the copy is their start); None where the two cannot be compared."""
    if not isinstance(net, ModelValue) or not isinstance(start, ModelValue) or not getattr(start, "parameters", None):
        return None
    return same_weights(getattr(net, "parameters", {}) or {}, start.parameters)


def _loaders_followed(data: dict, ran: int) -> tuple[list[str], str]:
    """(what the run did instead of going through the loaders it was given, a note on its validation), as the
    grader's loaders counted the passes over them and its hook the model's batches that held only their points (a
    function may cut a loader's dataset into batches itself)."""
    passes = {role: data.get(f"{role}_passes") for role in ("train", "val")}
    fed, own = data.get("fed_batches"), data.get("fed_own_points")
    wrong, note = [], ""
    if passes["train"] == 0 and whole_number(passes["train"]):
        counted = whole_number(fed) and whole_number(own) and fed > 0
        if not counted or own * 4 < fed * 3:
            seen = f", and {own} of its {fed} training batches held only that loader's points" if counted else ""
            wrong.append(f"Your function never went through the training DataLoader it was given, in {ran} epochs"
                         f"{seen}: it trained on other batches (a global `train_loader`, or a loader of other data). "
                         "Train on the loader passed in as an argument.")
    steps, batches = data.get("optimizer_steps"), data.get("batches")
    if all(whole_number(n) for n in (passes["train"], steps, batches)) and batches >= 2 and ran < steps <= \
            passes["train"]:
        # A pass for every step: next(iter(loader)) per batch. Each pass reshuffles, so an epoch is no pass over the
        # training points; the counts show it whatever the loop looks like.
        wrong.append(f"Your function began a new pass over the training DataLoader for each of its {steps} optimizer "
                     f"steps ({passes['train']} passes in {ran} epochs of {batches} batches): each pass reshuffles, "
                     "so an epoch took the first batch of a new shuffle each time, some points twice and others not "
                     "at all. Go through the loader once per epoch (for x, y in dataloader: ...).")
    validated = data.get("fed_val_points")
    if passes["val"] == 0 and whole_number(passes["val"]):
        if whole_number(validated) and not validated:
            twice = (f" (it went through the training loader {passes['train']} times in {ran} epochs: once to train, "
                     "once more to validate, say)" if whole_number(passes["train"]) and passes["train"] >= 2 * ran
                     else "")
            wrong.append(f"Your function never went through the validation DataLoader it was given, in {ran} epochs, "
                         f"and the model it trained was never fed that loader's points{twice}: its val loss measures "
                         "other data (the training loader, or a global `val_loader`) or another model. Validate the "
                         "model passed in on the validation loader passed in.")
        else:
            note = ("It never went through the validation DataLoader it was given, but the model was fed that "
                    "loader's points (its dataset read another way).")
    return wrong, note


def _criterion_followed(ctx: CheckContext, given: str) -> str:
    """What a run given a criterion shows where the function never called it; "" where it did, or cannot tell."""
    if not given:
        return ""
    try:
        data = ctx.value(given, "dict")
    except CheckFailed:  # that run's own check says why it is missing
        return ""
    calls, steps = data.get("criterion_calls"), data.get("optimizer_steps")
    if not (whole_number(calls) and whole_number(steps)) or calls or not steps:
        return ""
    return (f"Given criterion= (a loss of the grader's, in its run with its own optimizer and scheduler), your "
            f"function never called it in its {steps} optimizer steps: it computes its loss another way regardless. "
            "Use the criterion passed in, and make nn.CrossEntropyLoss() only when it is None.")


def _constant_validation(val_loss: tuple[float, ...], moved: bool) -> str:
    """Why a val loss that never changed while the weights did (``moved``) is no measure of the model being trained;
    "" otherwise."""
    if len(val_loss) < 3 or len(set(val_loss)) > 1 or not moved:
        return ""
    return (f"Your function's val loss was {val_loss[0]:.6g} at every one of its {len(val_loss)} epochs, while "
            "training changed the model's weights: its validation pass does not measure the model being trained (a "
            "global `model` evaluated instead of the argument, or a value computed once before the loop, say).")


@check_kind("follows_arguments", run=Param(str, doc="a dict export of a run patience cannot stop: its val_loss, the "
                                           "optimizer's first step as first_step {optimizer, lr}, optimizer_steps and "
                                           "batches (the training loader's), train_passes and val_passes (the "
                                           "passes over each loader given), and fed_batches, fed_own_points and "
                                           "fed_val_points (the model's training batches, those of the training "
                                           "loader's points only, and its batches of the validation loader's points "
                                           "only)", export=True),
            n_epochs=Param(int, doc="the n_epochs the run was called with"),
            patience=Param(int, doc="the patience the run was called with (more than n_epochs)"),
            lr=Param((int, float), doc="the lr the run was called with"),
            plateau=Param(str, "", "a dict export of a run at lr=0 (lr, weights_moved): where no torch optimizer "
                          "step shows the lr used, weights that moved there show an lr ignored", export=True),
            given=Param(str, "", "a dict export of a run given a criterion of the grader's (criterion_calls, "
                        "optimizer_steps): none of its calls shows a criterion argument ignored", export=True))
def follows_arguments(ctx: CheckContext, run: str, n_epochs: int, patience: int, lr: float,
                      plateau: str = "", given: str = "") -> Outcome:
    """A run that patience cannot stop trains all n_epochs epochs, one optimizer step per training batch, at the lr it
    was given, with one optimizer throughout (the kernel's record of the run's models, ``trained`` and ``model``): the
    course's default Adam, where the grader passes none."""
    data = ctx.value(run, "dict")
    refuse_carried_over(data, f"the grader's call with n_epochs={n_epochs} and patience={patience}")
    ran = len(_floats(data.get("val_loss"), f"`{run}`['val_loss']"))
    trained = as_curve(data.get("train_loss"))
    # A val loss more than train losses: a value appended outside the epochs (an evaluation after the restore, say).
    # The train losses count the epochs the optimizer stepped in; the record is named on its own.
    extra = ran - len(trained) if trained and 0 < ran - len(trained) <= 2 else 0
    ran -= extra
    epochs = _epochs_followed(ran, n_epochs, patience, data.get("train_passes"))
    if extra:
        epochs = (f"{epochs} " if epochs else "") + (
            f"Your function's val_loss holds {extra} value{'s' * (extra != 1)} more than its train_loss ({ran + extra} "
            f"against {ran}): one recorded outside the epochs (an evaluation after training, say). Record one of "
            "each per epoch.")
    rate, rate_note = _lr_followed(data.get("first_step"), lr)
    default = _default_optimizer((data.get("trained"), data.get("model")), lr)
    if rate is None:  # no torch optimizer stepped: the run at lr=0 shows whether the lr was followed
        rate, rate_note = _lr_at_zero(ctx, plateau, rate_note)
    elif not rate and (moved := _lr_at_zero(ctx, plateau, "")[0]):  # an lr of its own that equals the one passed
        rate, rate_note = (f"{moved} In this run, given lr={lr:g}, its optimizer stepped at {lr:g} too: a value "
                           "written into the function matches the argument only when the grader passes that same "
                           "value." if moved == LR_IGNORED else moved), ""
    missing = _missing_epochs(ctx, run)
    if missing:  # the steps are judged per epoch run, and the epochs said once, as left out of the history
        epochs = _missing_said("Your function", missing)
    steps = _steps_followed(data.get("optimizer_steps"), data.get("batches"), missing[0] if missing else ran)
    restarted = next((m for m in map(restarts_message, (data.get("trained"), data.get("model"))) if m), "")
    restarted = (f"In {ran} epochs, {restarted}. The course makes one optimizer, before the epoch loop."
                 if restarted else "")
    metrics = {"epochs_run": ran, "n_epochs": n_epochs, "optimizer_steps": data.get("optimizer_steps")}
    trained_net = data.get("trained")
    kept = _kept_start(trained_net, data.get("initial"))
    stepped = isinstance(trained_net, ModelValue) and bool(trained_net.steps or trained_net.idle_steps)
    # Never stepped, it may be a function that trains a copy; unless what it returned is still the start as well.
    returned_start = _kept_start(data.get("model"), data.get("initial"))
    still = (f"The model the grader handed your function never changed in its {ran} epochs: "
             f"{untrained_cause(trained_net)}." if kept and (stepped or returned_start) else "")
    changed = next((c for c in map(loss_changes, (data.get("trained"), data.get("model"))) if c), [])
    changed = (f"The run's loss was not the course's: {'; '.join(changed)} (the kernel's record; the course's default "
               "criterion is plain nn.CrossEntropyLoss()).") if changed else ""
    constant = _constant_validation(_floats(data.get("val_loss"), f"`{run}`['val_loss']")[:ran], kept is False)
    other_batches, validation = _loaders_followed(data, ran)
    wrong = [m for m in (epochs, rate, default, steps, restarted, changed, still, constant, *other_batches,
                         _criterion_followed(ctx, given)) if m]
    if not wrong:
        return Outcome(True, " ".join(filter(None, (
            f"The grader called your function with n_epochs={n_epochs}, patience={patience} and lr={lr:g}: it trained "
            f"all {ran} epochs, {_steps_said(data)}.", rate_note, validation))), metrics=metrics)
    return Outcome(False, " ".join(wrong + [validation] * bool(validation)), fraction=max(0.0, 1 - len(wrong) / 3),
                   metrics=metrics)


@check_kind("trains_without_validation",
            run=Param(str, doc="a dict export of a run called with no validation loader: train_loss, n_epochs, "
                               "patience, optimizer_steps and batches (the training loader's)", export=True),
            full=Param(str, "", "a dict export of a run with validation that patience cannot stop (val_loss, "
                                "n_epochs): a loop that records another number of epochs there too is that loop's "
                                "doing, judged by the check reading that run, not a want of validation",
                       export=True),
            no_patience=Param(str, "", "a dict export of a run given a validation loader and patience=None "
                                       "(val_loss, n_epochs, lr): the course keeps every epoch then, as its early "
                                       "stopping needs a patience", export=True))
def trains_without_validation(ctx: CheckContext, run: str, full: str, no_patience: str = "") -> Outcome:
    """Without a validation loader, or without a patience, the function still runs and trains every epoch.

    Early stopping needs both (the course turns it off otherwise), and the validation pass and a log line must not
    assume a validation loader."""
    patience_said = _without_patience(ctx, no_patience) if no_patience else ""
    try:
        outcome = _without_validation(ctx, run, full)
    except CheckFailed as e:
        raise CheckFailed(" ".join(filter(None, (e.message, patience_said))), e.metrics, e.details) from None
    if patience_said:
        return Outcome(False, f"{outcome.message} {patience_said}", metrics=outcome.metrics)
    return outcome


def _without_patience(ctx: CheckContext, run: str) -> str:
    """What is wrong with the grader's call given patience=None (a crash, or a stop before n_epochs); "" if nothing."""
    try:
        data = ctx.value(run, "dict")
    except CheckFailed as e:
        if run not in ctx.exports.problems:  # not exported at all (an older run of the grader): nothing to judge
            return ""
        return (f"Called with a validation loader and patience=None, your function failed: {e.message.rstrip('.')}. "
                "patience=None means no early stopping, as in the course's function: compare the count with it only "
                "when it is not None (`if patience is not None and waited >= patience`).")
    curve = as_curve(data.get("val_loss")) or as_curve(data.get("train_loss")) or []
    n_epochs, lr = data.get("n_epochs"), data.get("lr")
    if not whole_number(n_epochs) or len(curve) >= n_epochs:
        return ""
    at = f"lr={lr:g}, " if isinstance(lr, (int, float)) else ""
    return (f"Called with a validation loader, {at}patience=None and n_epochs={n_epochs}, your function stopped after "
            f"{len(curve)} epochs: it stops early although no patience was given (None taken as 0, say, or a "
            "patience of its own). patience=None means no early stopping, as in the course's function: train all "
            "n_epochs epochs, and still put the best weights back.")


def _without_validation(ctx: CheckContext, run: str, full: str) -> Outcome:
    try:
        data = ctx.value(run, "dict")
    except CheckFailed as e:
        if run not in ctx.exports.problems:
            raise
        raise CheckFailed(f"{e.message.rstrip('.')}. The course's function takes val_dataloader=None: run the "
                          "validation pass, the early-stopping test and any line that reads a val loss only when a "
                          "validation loader is given.", e.metrics, e.details) from None
    refuse_carried_over(data, "the grader's call with val_dataloader=None")
    n_epochs, patience = data.get("n_epochs"), data.get("patience")
    ran = len(_floats(data.get("train_loss"), f"`{run}`['train_loss']"))
    lr = f"lr={data['lr']:g}, " if isinstance(data.get("lr"), (int, float)) else ""
    called = (f"The grader called your function with val_dataloader=None, {lr}patience={patience}, n_epochs={n_epochs} "
              "and logging_interval=1")
    metrics = {"epochs_run": ran, "n_epochs": n_epochs, "optimizer_steps": data.get("optimizer_steps")}
    wrong = []
    if (trained := per_step_epochs(data)) is not None:  # the epochs then follow from the steps, which are right
        wrong.append(f"{called}: it returned {ran} training losses, one per optimizer step (per batch), where the "
                     "course records one per epoch (the loss over the epoch's batches)." + (
                         "" if trained == n_epochs else f" Its {ran} steps make {trained} epochs of the loader's "
                         f"{data['batches']} batches, not n_epochs={n_epochs}."))
    elif ran != n_epochs and ran - n_epochs != (off := _epochs_off(ctx, full)) and not (
            ran > n_epochs and off is not None and off > 0):  # past its budget with validation too: the loop's doing
        wrong.append(f"{called}: it recorded {ran} training epochs. " + (
            "The course trains all n_epochs epochs then: early stopping works only with both a validation loader and "
            f"a patience, and none was given. "
            f"{_stopped_without_validation(data.get('val_loss'), data.get('train_loss'), patience, n_epochs)}"
            if ran < n_epochs else "That is more than n_epochs: record one training loss per epoch."))
    steps = "" if trained is not None else _steps_followed(data.get("optimizer_steps"), data.get("batches"), ran)
    wrong += [f"Without a validation loader: {steps[0].lower()}{steps[1:]}"] if steps else []
    if data.get("scheduler_steps") == 0 and ran:  # a per-batch or a late step is scheduler-per-epoch's to judge
        wrong.append((f"{called}, and a StepLR scheduler: it" if not wrong else "It was also given a StepLR scheduler, "
                      "and") + f" never stepped that scheduler in its {trained or ran} epochs. Step the scheduler "
                     "every epoch, after the validation pass where there is one, not inside it.")
    if wrong:
        return Outcome(False, " ".join(wrong), metrics=metrics)
    return Outcome(True, f"{called}: it ran, and trained all {ran} epochs, {_steps_said(data)}.", metrics=metrics)


def _stopped_without_validation(val_loss: object, train_loss: object, patience: object, n_epochs: object) -> str:
    """What stopped a run given no validation loader, as far as the val losses and training losses it returned tell."""
    curve = as_curve(val_loss) or []
    numbers = [v for v in curve if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if len(numbers) >= 2 and len(set(numbers)) > 1:
        return (f"Yet it returned {len(curve)} different val losses: it validates on a loader other than the one "
                "passed in (one of the notebook's own, say), and stops on those.")
    if len(numbers) >= 2:
        return (f"It returned {len(curve)} val losses, all {numbers[0]:g}, and stops on them: a placeholder, or the "
                "val loss of a model that does not change (one other than the model it trains, on a loader of the "
                "notebook's own).")
    on_training = _stops_on_training_loss(train_loss, patience, n_epochs)
    if on_training is True:
        return (f"Its training losses fit a stopping test on the training loss (patience {patience}): epoch "
                f"{len(as_floats(train_loss))}, its last, did not improve on the lowest before it, where a placeholder "
                "val loss would have stopped it at another epoch. It watches the training loss when no validation "
                "loader is given; the course turns early stopping off then instead.")
    return ("Something other than a val loss of the loader passed in stops it: a stopping test that runs without one "
            "(on a placeholder such as 0 or inf, which never improves)"
            + ", one that watches the training loss instead (its training losses fit that too)" * (on_training is None)
            + ", or a loader of the notebook's own.")


def _stops_on_training_loss(train_loss: object, patience: object, n_epochs: object) -> bool | None:
    """Whether a stopping test on the training loss (< or <=, its counter off by one or not) ends the run where its
    training losses end: True where no placeholder val loss (which never improves) would end it there too, None where
    one would (both fit), False where the training losses do not fit."""
    curve = as_floats(train_loss)
    if isinstance(curve, str) or not (whole_number(patience) and whole_number(n_epochs)):
        return False
    if not 0 < len(curve) < n_epochs:
        return False
    rules = [(rule, c) for c in COUNTINGS if c.first_epoch == 1 and c.budget_shift == 0
             for rule in (strict, lambda value, best, _: value <= best)]
    if not any(follow(tuple(curve), patience, n_epochs, rule, c)[1] == len(curve) for rule, c in rules):
        return False
    # Where any such count ends on a placeholder that never improves (inf) or never after the first epoch (0).
    placeholders = {follow((held,) * n_epochs, patience, n_epochs, rule, c)[1] for rule, c in rules
                    for held in (math.inf, 0.0)}
    return None if len(curve) in placeholders else True


def _epochs_off(ctx: CheckContext, full: str) -> int | None:
    """How many epochs more (or fewer) than n_epochs the run ``full`` recorded; None without one to read."""
    data = ctx.exports.values.get(full) if full else None
    if not isinstance(data, dict) or not whole_number(data.get("n_epochs")):
        return None
    curve = as_curve(data.get("val_loss"))
    return None if curve is None else len(curve) - data["n_epochs"]


def val_loss_conventions(model: LoadedModel, dataset, batch_size: int, smoothing: float = 0.0,
                         last_batch: bool = False) -> tuple[dict[str, float], float]:
    """The model's val loss in every convention of LOSS_CONVENTIONS (unshuffled batches, cross-entropy with
    ``smoothing`` as its label_smoothing), and its accuracy in %; with ``last_batch``, then the last batch's mean and
    summed loss alone, the readings of a total overwritten at each batch (after every convention, so only a record no
    convention matches is read so)."""
    per_sample, predicted = model.losses(dataset.X, dataset.Y, smoothing)
    chunks = per_sample.split(batch_size)
    batch_means = [chunk.mean().item() for chunk in chunks]
    losses = conventions(math.fsum(batch_means), per_sample.sum().item(), len(per_sample), len(batch_means),
                         mean=per_sample.mean().item())
    if last_batch and len(batch_means) > 1:
        losses.update({"last batch's mean": batch_means[-1], "last batch's sum": chunks[-1].sum().item()})
    accuracy = 100 * (predicted == dataset.Y).double().mean().item()
    return losses, accuracy


def _epochs_matching(value: float, curve: tuple[float, ...]) -> list[int]:
    return [e + 1 for e, v in enumerate(curve) if math.isclose(value, v, rel_tol=REL_TOL)]


def _held(matching: list[int], curve: tuple[float, ...], measured: float, reported: int) -> int | None:
    """The epoch whose weights the model holds: of the epochs whose record it matches, the closest one; on a tie, the
    last epoch, then the one reported as best_epoch, then the earliest."""
    if not matching:
        return None
    gaps = {e: abs(curve[e - 1] - measured) for e in matching}
    smallest = min(gaps.values())
    closest = [e for e in matching if gaps[e] == smallest]
    return next((e for e in (len(curve), reported) if e in closest), closest[0])


def _convention_of(losses: dict[str, float], curve: tuple[float, ...], best: int) -> tuple[str, list[int]]:
    """The convention the history uses, and the epochs the model matches in it.

    The one where the model matches the best epoch, else one where it matches some epoch, else the course's.
    """
    matches = {name: _epochs_matching(value, curve) for name, value in losses.items()}
    name = (next((n for n, epochs in matches.items() if best in epochs), None)
            or next((n for n, epochs in matches.items() if epochs), None) or "sum of batch means")
    return name, matches[name]


def _untrained(view: RunView) -> LoadedModel | None:
    """The run's model before training: the probe's copy, or the weights the kernel recorded at its first pass."""
    if view.initial is not None:
        return view.initial
    recorded = getattr(view.model, "initial", {})
    if not recorded or set(recorded) != set(view.model.parameters):
        return None
    try:
        return view.model.with_parameters(recorded)
    except (KeyError, RuntimeError, ValueError):  # a model whose parameters cannot be paired: no evidence
        return None


def _restored_in(ctx: CheckContext, run: str, dataset, batch_size: int) -> bool | None:
    """Whether the probe run ``run`` returned its best state (None when it cannot be told: no model, or a best epoch
    that is its last, which a run that never restores returns too)."""
    try:
        other = resolve_run(ctx, run, "", "", "", need_model=True)
    except CheckFailed:
        return None
    if first_minimum(other.val_loss) == len(other.val_loss):
        return None
    losses, _ = val_loss_conventions(other.model, dataset, batch_size, last_batch=True)
    target = other.val_loss[first_minimum(other.val_loss) - 1]
    return any(math.isclose(v, target, rel_tol=REL_TOL) for v in losses.values())


def _mode_matters(model: LoadedModel) -> bool:
    return any(word in str(node.target) for node in model.module.graph.nodes for word in ("dropout", "batch_norm"))


def _validation_fed(ctx: CheckContext, probe: str) -> str:
    """What a grader's run of the function fed the model of its validation loader's points: "never" where it never
    went through that loader nor fed them (it validated on other data; a function that reads the loader's dataset
    directly feeds them), "changed" where it went through the loader yet never fed a batch of them as the grader made
    them (normalised in place, say); "" otherwise or where the run counted nothing."""
    data = _probe(ctx, probe)
    passes, fed = data.get("val_passes"), data.get("fed_val_points")
    if not (whole_number(passes) and whole_number(fed)) or fed:
        return ""
    return "changed" if passes else "never"


def _evidence(ctx: CheckContext, view: RunView, dataset, batch_size: int, held: int | None, function: str,
              n_epochs: int, early_run: str, full: tuple | None) -> RestoreEvidence:
    """Everything besides the model's val loss that can show why it is not the best state."""
    untrained, pre_update, is_untrained = _untrained(view), None, False
    if untrained is not None:
        before, _ = val_loss_conventions(untrained, dataset, batch_size)
        if any(math.isclose(v, view.val_loss[0], rel_tol=REL_TOL) for v in before.values()):
            pre_update = view.val_loss[0]
        # The kernel's record is of a model object's first forward pass: for a copy taken during training and first
        # run afterwards, that is its trained state. Only the probe's own copy, or weights matching no trained
        # epoch's record, show a model that was never trained.
        is_untrained = untrained.same_weights(view.model) and (view.initial is not None or held is None)
    source = ctx.function_source(function)
    code = restore_code(source) if source else None
    elsewhere = any(".load_state_dict(" in (text.replace(source, "") if source else text) for _, text in ctx.code_cells)
    fed = _validation_fed(ctx, full[0] if full else "")
    return RestoreEvidence(first_minimum(view.val_loss), len(view.val_loss), held, n_epochs, pre_update,
                           is_untrained, _restored_in(ctx, early_run, dataset, batch_size) if early_run else None,
                           _mode_matters(view.model), code, lambda line: cell_line(ctx.code_cells, source, line),
                           view.best_epoch, elsewhere, fed == "never", _restored_in(ctx, *full) if full else None,
                           fed == "changed")


@check_kind("restored_best", data=Param(dict, doc="the validation set the run used", check=data_problem),
            batch_size=Param(int, 32),
            function=Param(str, "", "the function export to read for a diagnosis", export=True),
            n_epochs=Param(int, 0, "the run's epoch budget, so a message can say whether patience ran out (0: unknown)"),
            early_run=Param(str, "", "a probe run of the same function whose patience ran out, on the same validation "
                            "set: shows whether the function restores at least then", export=True),
            loader=Param(str, "", "the validation DataLoader the run used (optional): its batch size replaces "
                         "batch_size", export=True),
            probe=Param(str, "", "a grader's run of the same function that patience cannot stop, which counted the "
                                 "passes over its validation loader and the model's batches of its points: shows a "
                                 "function that validates on other data, or restores only when it never stops early "
                                 "(read where it exists)"),
            probe_data=Param(dict, {}, "the validation set of the probe run, where it is not ``data`` (batches of "
                                       "batch_size)", check=lambda d: data_problem(d) if d else None),
            **_RUN_PARAMS)
def restored_best(ctx: CheckContext, data: dict, batch_size: int, function: str, n_epochs: int, early_run: str,
                  loader: str, run: str, model: str, history: str, best_epoch: str, probe: str = "",
                  probe_data: dict | None = None) -> Outcome:
    """The exported model must BE the best state: its val loss, measured here, equals the best epoch's."""
    given_batch = batch_size  # the probe's own loaders batch as the spec's default, whatever the student's run did
    view = resolve_run(ctx, run, model, history, best_epoch, need_model=True)
    dataset = ctx.data.make(data, ctx.check_id)
    exported = _loader_batch_size(ctx, loader, len(dataset.Y))
    best = first_minimum(view.val_loss)
    # The notebook's own run summed over its own validation batches; without its loader, the batch sizes a
    # student picks are tried after the course's, and the first one its history matches is the one it used.
    first = exported or batch_size
    # The exported loader is the one the notebook held at its end: one rebound after training (a single batch for a
    # confusion matrix, say), or another loader passed to the function, is not the run's. A run whose loss was
    # smoothed (the kernel's record) has its history in that loss.
    others = [(b, 0.0) for b in dict.fromkeys((batch_size, *OTHER_BATCH_SIZES)) if b != first] if loader else []
    smoothings = (getattr(view.model, "loss_calls", None) or {}).get("label_smoothing", ())
    losses, accuracy, convention, matching, batch_size, smoothing = _as_recorded(
        view, dataset, best, [(first, 0.0), *others, *((first, s) for s in smoothings)], last_batch=True)
    smoothed = (f" (with label_smoothing={smoothing:g}, as the run called cross_entropy: the course's loss has none, "
                "which follows-arguments counts)" if smoothing else "")
    target, last = view.val_loss[best - 1], view.val_loss[-1]
    measured = losses[convention]
    metrics = {"measured_val_loss": round(measured, 6), "best_val_loss": target, "val_accuracy": round(accuracy, 4),
               "loss_convention": convention if matching else "unknown"}
    scale = ("" if convention == "sum of batch means" else
             f" (your history reports {LOSS_CONVENTIONS[convention]}, so the grader compares in that scale)"
             if convention in LOSS_CONVENTIONS else
             f" (your history reports {LAST_BATCH[convention]} of each validation pass alone, so the grader compares "
             "in that reading; loss-records counts the record)") + smoothed
    if batch_size != first:
        scale += f" (summed over validation batches of {batch_size}, as your history matches" + (
            f"; `{loader}` as the notebook ended makes batches of {exported}, so the run used another loader)"
            if exported else ")")
    if best in matching:
        return Outcome(True, f"The model of {view.label} is the restored best state: the grader measures its val loss "
                       f"as {measured:.4f}, as at epoch {best}{scale}.", metrics=metrics)
    held = _held(matching, view.val_loss, measured, view.best_epoch)
    metrics["held_epoch"] = held
    full = (probe, ctx.data.make(probe_data or data, ctx.check_id), given_batch) if probe else None
    evidence = _evidence(ctx, view, dataset, batch_size, held, function, n_epochs, early_run, full)
    why = why_not_best(evidence)
    if held is None and evidence.validated_elsewhere:  # the cause is known: the ways of adding up would only bury it
        return Outcome(False, f"The val loss of the model of {view.label} ({losses[convention]:.4f} measured on the "
                       f"validation set) matches no epoch of its history (best epoch {best}: {target:.4f}).{why}",
                       metrics=metrics)
    if held is None:
        tried = ", ".join(f"{name} {value:.4f}" for name, value in losses.items())
        return Outcome(False, f"The val loss of the model of {view.label} matches no epoch of its history, so the "
                       f"grader cannot tell which epoch's weights it holds: measured on the validation set it is "
                       f"{tried}, but the best epoch {best} recorded {target:.4f}.{why}", metrics=metrics)
    if held == len(view.val_loss):
        found = f"it is the last epoch's model (epoch {held}, val loss {last:.4f})"
    else:
        found = f"it is the model of epoch {held} (val loss {view.val_loss[held - 1]:.4f})"
    return Outcome(False, f"The model of {view.label} is not the best one: the grader measures a val loss of "
                   f"{measured:.4f}{scale}, but the best epoch {best} had {target:.4f}; {found}.{why}",
                   metrics=metrics)


OTHER_BATCH_SIZES = (64, 16, 128, 180, 100, 50, 10, 20, 8, 256, 1)  # validation batch sizes students pick


def _as_recorded(view: RunView, dataset, best: int, candidates: list, last_batch: bool = False) -> tuple:
    """The model's val losses measured under the first of ``candidates`` ((batch size, label smoothing), most trusted
    first) whose losses match an epoch of the history: (losses, accuracy, convention, matching epochs, batch size,
    smoothing); the first candidate's where none does."""
    found = None
    for size, smoothing in candidates:
        losses, accuracy = val_loss_conventions(view.model, dataset, size, smoothing, last_batch)
        convention, matching = _convention_of(losses, view.val_loss, best)
        if matching:
            return losses, accuracy, convention, matching, size, smoothing
        found = found or (losses, accuracy, convention, matching, size, smoothing)
    return found


def _loader_batch_size(ctx: CheckContext, loader: str, points: int) -> int | None:
    """The batch size of the exported loader ``loader`` when it holds the ``points`` of the validation set unshuffled
    (the val losses were summed over its batches); None otherwise."""
    value = ctx.exports.values.get(loader) if loader else None
    if not isinstance(value, LoaderExport) or value.shuffle or value.drop_last or value.dataset_len != points:
        return None
    return value.batch_size if whole_number(value.batch_size) and value.batch_size > 0 else None


def _call_keywords(ctx: CheckContext, run: str, function: str) -> list[str]:
    """The keyword arguments the probe's code passes to the student's function, read from the spec."""
    spec = ctx.exercise.export(run)
    try:
        tree = parse_source(spec.code if spec else "")
    except SyntaxError:
        return []
    return [k.arg for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == function for k in node.keywords if k.arg]


def _missing_parameters(ctx: CheckContext, run: str, function: str) -> None:
    """When the probe's call failed on the signature, raise a message naming the parameters it lacks."""
    problem = ctx.exports.problems.get(run, "")
    found = signature(ctx.function_source(function))
    if not problem.startswith("TypeError") or found is None or found.var_keyword:
        return
    missing = [k for k in _call_keywords(ctx, run, function) if k not in found.names]
    if missing:
        names = " and ".join(f"`{k}`" for k in missing)
        raise CheckFailed(f"The grader calls your {function} with {', '.join(f'{k}=' for k in missing)} as the "
                          f"course's signature has it, but yours has no {names} parameter (it takes "
                          f"{', '.join(found.names)}), so the call failed: {problem}. Add "
                          f"{', '.join(f'{k}=None' for k in missing)} to its parameters and use "
                          f"{'them' if len(missing) > 1 else 'it'} as the course's function does.")


def _no_lr_history(data: dict) -> str:
    length = data.get("returned_length")
    what = f"a {data.get('returned', 'value')}" + (f" of {length} items" if isinstance(length, int) else "")
    found = "None as its 7th item" if "lr_history" in data else f"{what}, with no lr_history"
    return (f"Your function returned {found}: the course's train_model_extended returns (model, train_loss, "
            "train_acc, val_loss, val_acc, best_epoch, lr_history), the last being the LR after each epoch's "
            "scheduler step. Append optimizer.param_groups[0]['lr'] after scheduler.step() in every epoch and "
            "return that list last.")


def _torch_schedule(scheduler: SchedulerExport, initial_lr: float, epochs: int, val_loss) -> tuple[str, list[float]]:
    """(how to name it, torch's LR after each of ``epochs`` per-epoch steps) for the probe's scheduler."""
    if scheduler.cls != "ReduceLROnPlateau":
        try:
            name, _, lrs = replay(scheduler, epochs)
        except ReplayError as e:
            raise CheckFailed(f"The grader cannot replay its own probe's scheduler: {e}.") from None
        return name, lrs
    # ReduceLROnPlateau's schedule depends on the val losses: the course steps it with each epoch's.
    import torch
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    state, metrics = scheduler.state, as_floats(val_loss)
    if isinstance(metrics, str) or len(metrics) < epochs:
        raise CheckFailed("The grader could not read the val losses of its run of your function, which "
                          "ReduceLROnPlateau's schedule depends on: return val_loss with one value per epoch.")
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=initial_lr)
    keys = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "eps")
    plateau = ReduceLROnPlateau(optimizer, min_lr=state["min_lrs"][0], **{k: state[k] for k in keys})
    lrs = []
    for value in metrics[:epochs]:
        plateau.step(value)
        lrs.append(optimizer.param_groups[0]["lr"])
    return f"ReduceLROnPlateau(factor={state['factor']:g}, patience={state['patience']})", lrs


def _cadence_run(data: dict) -> CadenceRun:
    """The probe's measurements as numbers, with torch's per-epoch schedule for the same scheduler."""
    scheduler, calls, initial_lr = data.get("scheduler"), data.get("calls"), data.get("initial_lr")
    if not isinstance(scheduler, SchedulerExport) or not isinstance(initial_lr, (int, float)) or \
            not isinstance(calls, list) or not all(isinstance(c, list) and len(c) == 2 and
                                                   all(isinstance(v, int) for v in c) for c in calls):
        raise CheckFailed("The grader's own probe did not record its scheduler; this is not your mistake.")
    if data.get("lr_history") is None:
        raise CheckFailed(_no_lr_history(data))
    lrs = as_floats(data["lr_history"])
    if isinstance(lrs, str):
        raise CheckFailed(f"The lr_history your function returned cannot be read: {lrs}.")
    train = data.get("train_loss")
    # A training loss per optimizer step counts steps: the epochs are those steps over the loader's batches.
    epochs = per_step_epochs(data) or (len(train) if isinstance(train, list) and train else len(lrs))
    steps, batches = data.get("optimizer_steps"), data.get("batches")
    if not epochs:
        raise CheckFailed("Your function recorded no epoch when the grader ran it: train_loss and lr_history "
                          "are empty.")
    name, torch_lrs = _torch_schedule(scheduler, float(initial_lr), epochs, data.get("val_loss"))
    state, group = scheduler.state, (scheduler.optimizer.param_groups[:1] if scheduler.optimizer else [{}])[0]
    constant = {"StepLR": state.get("step_size") == 1, "ExponentialLR": True}.get(scheduler.cls, False)
    final = group.get("lr")
    return CadenceRun(name, state.get("gamma") if constant else None, scheduler.cls == "ReduceLROnPlateau",
                      float(initial_lr), epochs, int(batches or 0),
                      steps if isinstance(steps, int) else None, tuple(c[0] for c in calls),
                      sum(1 for c in calls if c[1]), tuple(lrs), tuple(torch_lrs),
                      final if isinstance(final, (int, float)) else None)


@check_kind("scheduler_cadence", figure="lr_curves",
            run=Param(str, doc="the probe's dict export: the function's results, the scheduler it was given, the "
                      "optimizer steps before each scheduler.step() call, batches per epoch", export=True),
            function=Param(str, "", "the function export, to name a parameter the grader's call needs", export=True))
def scheduler_cadence(ctx: CheckContext, run: str, function: str) -> Outcome:
    """The function steps the scheduler it is given once per epoch, after the updates, and records the LR after it."""
    if function and run in ctx.exports.problems:
        _missing_parameters(ctx, run, function)
    data = ctx.value(run, "dict")
    refuse_carried_over(data, "the grader's call with a StepLR scheduler")
    history = data.get("lr_history")
    # lr_history.append(scheduler.get_last_lr()): one-element lists, read as the LRs they hold so the stepping is
    # still judged; the reading keeps at most the half point the spec gives a right cadence read wrong.
    wrapped = isinstance(history, list) and bool(history) and all(
        isinstance(v, (list, tuple)) and len(v) == 1 for v in history)
    measured = _cadence_run({**data, "lr_history": [v[0] for v in history]} if wrapped else data)
    verdict = diagnose(measured)
    metrics = {"scheduler_calls": len(measured.calls), "epochs": measured.epochs, "batches": measured.batches,
               "verdict": verdict.kind}
    curve = {"reference": list(measured.torch_lrs), "student": list(measured.lrs[:MAX_PLOTTED]),
             "diagnosis": verdict.kind}
    details = {"family": measured.scheduler.split("(")[0], "curves": {measured.scheduler: curve}}
    steps = data.get("optimizer_steps")
    if data.get("moved") is False and whole_number(steps) and steps and data.get("forwards") == 0:
        # The given optimizer stepped, the model handed in never ran forward, and the returned model is as it started:
        # the function trained another model. (One that ran and never moved is the gradients' doing: other checks.)
        still = (f" The model your function returned never changed, though the optimizer it was given stepped {steps} "
                 "times, and the model passed in never ran: that optimizer holds the parameters of the model passed "
                 "in, and the function trained another (a copy made inside it, say). Train the model you are given, "
                 "so that a caller's optimizer and scheduler act on it.")
        return Outcome(False, verdict.message + still, fraction=min(verdict.fraction or float(verdict.ok), 0.5),
                       metrics=metrics, details=details)
    if wrapped:
        listed = (" Each lr_history entry is also a one-element list (scheduler.get_last_lr() returns one per param "
                  "group): record the number, scheduler.get_last_lr()[0] or optimizer.param_groups[0]['lr'].")
        return Outcome(False, verdict.message + listed, fraction=0.5 if verdict.ok else min(verdict.fraction or 0.0, 0.5),
                       metrics=metrics, details=details)
    return Outcome(verdict.ok, verdict.message, fraction=verdict.fraction, metrics=metrics, details=details)


@check_kind("history_recorded", history=Param(str, "history", export=True), key=Param(str, "train_loss"),
            min_epochs=Param(int, 1),
            optimizer=Param(str, "", "the optimizer whose step count tells a record per batch from one per epoch, where "
                            "each epoch is many batches", export=True))
def history_recorded(ctx: CheckContext, history: str, key: str, min_epochs: int, optimizer: str) -> Outcome:
    """The training loop ran: ``history[key]`` holds a value per epoch. Other checks can require this one."""
    record = ctx.value(history, "dict")
    curve = as_curve(record.get(key))
    epochs = len(curve) if curve is not None else 0
    opt = ctx.exports.values.get(optimizer) if optimizer else None  # its own checks judge a missing one, not this
    steps = opt.step_count() if isinstance(opt, OptimizerExport) and epochs > 1 else None
    if epochs > 1 and epochs == steps:
        return Outcome(True, f"Training ran, but `{history}['{key}']` holds {epochs:,} values, one per "
                       f"`{optimizer}`.step(): one per batch, where the task records one per epoch (the mean over "
                       "the epoch's batches).", fraction=0.5)
    if epochs >= min_epochs:
        return Outcome(True, f"Training ran: `{history}` records {epochs} epoch{'s' * (epochs != 1)}.",
                       metrics={"epochs": epochs})
    others = {k: len(v) for k, v in ((k, as_curve(v)) for k, v in record.items()) if v and len(v) >= min_epochs}
    if key not in record and others:  # its own names for the record: the loop ran, the task's key is missing
        listed = ", ".join(f"'{k}'" for k in others)
        return Outcome(True, f"Training ran: `{history}` holds lists under {listed} ({max(others.values())} values), "
                       f"but none under '{key}', the key the task's `{history}` uses. Keep the given keys, so that the "
                       "grader and your feedback can read your curves.", fraction=0.5)
    if key not in record:
        return Outcome(False, f"`{history}` has no '{key}' list, and no other list with an entry per epoch: the "
                       f"training loop did not record its epochs. Keep the given `{history}` and its keys, and run the "
                       "notebook again from the top.")
    return Outcome(False, f"`{history}['{key}']` records no epoch: the training loop did not run. Fix the first "
                   "error your notebook reports, then run it again from the top.")
