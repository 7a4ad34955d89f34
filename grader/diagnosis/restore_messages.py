"""Say why an early-stopping run's model is not its best state, from what the grader measured and the code shows.

Pure functions: no kernel, no torch. The check (``grader.checks.training.restored_best``) measures
which epoch's val loss the exported model has; this module turns that, with the other measurements
of ``RestoreEvidence`` and the facts of ``grader.diagnosis.training_code``, into the causes that
remain. A cause is named only where a measurement or a line of code shows it; otherwise the message
lists what is still possible. Restoring "in every case" is advised only when the run shows it:
the model is the last epoch's, patience did not run out, and no other fact explains it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grader.diagnosis.training_code import RestoreCode


@dataclass(frozen=True)
class RestoreEvidence:
    """What the grader measured about a run whose model is not its best state."""

    best: int  # the epoch with the lowest recorded val loss (1-based)
    epochs: int  # epochs the run recorded
    held: int | None  # the epoch whose recorded val loss the model has (the last such); None: no epoch
    n_epochs: int = 0  # the run's epoch budget; 0 when unknown
    pre_update: float | None = None  # epoch 1's val loss, when it is the untrained model's
    untrained: bool = False  # the model holds the weights it had before training
    early_restored: bool | None = None  # a run of the same function whose patience ran out returned its best state
    mode_matters: bool = False  # the model has dropout or batch norm, so train and eval mode differ
    code: RestoreCode | None = None
    where: Callable[[int], str] = str  # where line n of the function is in the notebook
    reported: int | None = None  # the run's own best_epoch
    loads_elsewhere: bool = False  # the notebook calls load_state_dict outside the function (a helper class, say)
    validated_elsewhere: bool = False  # a grader's run of the function never fed the model the validation points
    full_restored: bool | None = None  # a grader's run of the function that patience could not stop returned its best
    fed_other_values: bool = False  # a grader's run went through the validation loader, never feeding its points as made

    @property
    def stopped(self) -> bool | None:
        """Patience ran out: the run ended before its budget (None when the budget is unknown)."""
        return self.epochs < self.n_epochs if self.n_epochs else None


# What makes a run count no val loss as a new best, the first epoch's included.
NO_NEW_BEST = ("A best val loss that starts lower than any val loss (0, say, where float('inf') belongs), a comparison "
               "the wrong way round, or a best kept from an earlier call")


def _alias(ev: RestoreEvidence) -> str:
    fact, model = ev.code.aliases[0], ev.code.model
    return (f" Your function sets `{fact.code}` ({ev.where(fact.line)}): that copies nothing, `{fact.target}` is the "
            f"same object as `{model}`, so it changed with every update and the function returned the last weights. "
            f"Copy the weights when the val loss improves: best_state = copy.deepcopy({model}.state_dict()), and "
            f"{model}.load_state_dict(best_state) after the loop (or {fact.target} = copy.deepcopy({model})).")


def _live_save(ev: RestoreEvidence) -> str:
    fact = ev.code.live_saves[0]
    return (f" Your function keeps the weights without copy.deepcopy (`{fact.code}`, {ev.where(fact.line)}): what it "
            "keeps are references to the live weights, so the saved 'best' state changed with every update. Save a "
            "copy, such as copy.deepcopy(model.state_dict()), and load it back after the loop.")


def _every_epoch(ev: RestoreEvidence) -> str:
    fact = ev.code.every_epoch_saves[0]
    return (f" `{fact.code}` ({ev.where(fact.line)}) copies the weights in every epoch, not only when the val loss "
            "improves, so a state it puts back is a recent epoch's, not the best one's. Take the copy inside the "
            "`if` that records a new best.")


def _in_every_case(ev: RestoreEvidence) -> str:
    why = f"Patience never ran out in this run ({ev.epochs} of {ev.n_epochs} epochs)"
    if ev.early_restored:
        why += ", and in the grader's run where it did run out, your function put the best state back"
    elif ev.code and ev.code.loads_only_in_loop:
        fact = ev.code.loads[0]
        why += (f", and your function calls load_state_dict only inside the training loop ({ev.where(fact.line)}), "
                "on a path that a run using all its epochs never takes")
    return (f" {why}. Restore the best state in every case: also when training uses all its epochs without early "
            "stopping (the course's version restored it only when patience ran out).")


def _pre_update(ev: RestoreEvidence) -> str:
    held = f" (the model's val loss is epoch {ev.held}'s record)" if ev.held else ""
    return (f" Epoch 1's recorded val loss, {ev.pre_update:.4f}, is that of the untrained model: your function "
            "measures each epoch's val loss before that epoch's training pass, so each record belongs to the weights "
            "of the epoch before, while the copy taken at a new best already has that epoch's updates"
            f"{held}. Evaluate the validation set after the epoch's updates, then compare and save.")


def _last_epoch(ev: RestoreEvidence) -> str:
    """The model is the last epoch's: the code's facts first, then what the run shows."""
    code = ev.code
    if code and code.aliases:
        return _alias(ev)
    if code and code.live_saves:
        return _live_save(ev)
    if code and code.rebinding_loops and not code.loads:
        fact = code.rebinding_loops[0]
        return (f" `{fact.code}` ({ev.where(fact.line)}) binds the loop variable `{fact.target}` to another tensor: "
                "the model's parameter is left as it was, so nothing is put back. Copy the values into it (under "
                f"torch.no_grad(), `{fact.target}.copy_(...)`), or save copy.deepcopy(model.state_dict()) and load it "
                "back with model.load_state_dict(...).")
    if ev.stopped and ev.full_restored:
        return (" Your function puts the best state back when patience never runs out (the grader's run that patience "
                "could not stop returned its best epoch's weights), but not in this run, where patience ran out: the "
                "copy and the restore work, and the restore is skipped on the way out of an early stop (a break or "
                "return that jumps past it, or a generator whose caller's break closes it before its last lines). "
                "Put the best state back on every way out of training.")
    if code and not code.loads and not code.restores_otherwise and ev.loads_elsewhere:
        return (" Your function does not call load_state_dict(...) itself. Your notebook calls it elsewhere: if a "
                "helper the function uses loads the best state back, either what it loads holds the last epoch's "
                "weights (a state_dict kept without copying its tensors: keep_vars=True, or no copy.deepcopy), or it "
                "loads them into another model than the one your function returns (a copy the helper makes); "
                "otherwise nothing puts the best weights back after the loop.")
    if code and not code.loads and not code.restores_otherwise:
        return (" Your function never calls model.load_state_dict(...) to put the best weights back (nor returns a "
                "saved copy).")
    if code and code.every_epoch_saves:
        return _every_epoch(ev)
    if ev.reported is not None and ev.best > 1 and not 1 <= ev.reported <= ev.epochs:
        # No epoch reported as best (the 0 it started from): no copy was taken, whatever the restore does.
        return (f" The run reports best_epoch {ev.reported}, none of its {ev.epochs} epochs: no val loss counted as a "
                f"new best, so no copy of the weights was taken and there was nothing to put back. {NO_NEW_BEST} does "
                "that.")
    if ev.stopped is False and (ev.early_restored or code and code.loads_only_in_loop):
        return _in_every_case(ev)
    ran_out = " although patience ran out" if ev.stopped else ""
    only_early = (", it is put back only when patience runs out (which it never did here: the course's version "
                  "restored it only then)" if ev.stopped is False else "")
    return (f" No earlier state was put back{ran_out}, and the grader cannot see why in your code. What remains: the "
            f"copy is not taken when the val loss improves, it is not a real copy (copy.deepcopy){only_early}, it is "
            "not loaded back after the loop, or it is loaded into another model object than the one returned.")


def why_not_best(ev: RestoreEvidence) -> str:
    """The causes that the measurements and the code leave, as sentences to append to the finding."""
    if ev.untrained:
        return (" These are the weights the model had before training: the state put back was saved before any "
                "update. Copy the weights when the val loss improves, after the epoch's updates.")
    if ev.pre_update is not None and ev.held in (ev.best + 1, None):
        return _pre_update(ev)
    if ev.held is not None and ev.held == ev.reported:
        # The run's own best_epoch is not its lowest val loss: its rule is wrong, whatever its restore does.
        restore = (" (whether it puts a best state back cannot be told here: its best epoch is also its last)"
                   if ev.held == ev.epochs else ", so the copy and its restore work")
        return (f" It is the epoch the run reports as best_epoch{restore}; what differs is which epoch counts as best: "
                f"the lowest val loss is epoch {ev.best}'s. Pick the best epoch by the val loss alone: a new best "
                "whenever it is strictly lower than the best so far.")
    if ev.held == ev.epochs:
        return _last_epoch(ev)
    if ev.held is not None:
        other = "a later" if ev.held > ev.best else "an earlier"
        return (f" The state put back is not the one of epoch {ev.best}, whose val loss set best_epoch: {other} "
                "copy replaced it, the copy is taken at another moment of the epoch than the val loss it is "
                f"compared with, or the one put back is epoch {ev.held}'s of several kept (a list of per-epoch "
                "copies read at the wrong index).")
    if ev.validated_elsewhere:
        return (" The grader's run of your function with a validation loader of its own never went through that "
                "loader, and never fed the model its points: the val loss your function records is measured on other "
                "data (the training loader, or a global `val_loader`), so no epoch of it is the model's on the "
                "validation set, and whether the best state is put back cannot be told from it. Compute the val loss "
                "on the validation loader passed in as an argument.")
    if ev.fed_other_values:
        return (" The grader's run of your function went through the validation loader it was given, yet never fed the "
                "model a batch of that loader's points as the grader made them: the values changed on the way (the "
                "loaders' datasets normalised in place, or the inputs transformed in the loop), so its val loss is the "
                "model's on other values than the grader measures, and no epoch of it can be matched. Leave the data "
                "as the loaders give it, or build any such change into the model.")
    mode = " in eval mode" if ev.mode_matters else ""
    return (" What remains: the history records the val loss in a scale the grader does not know (a sum or mean over "
            "another count of points or batches), it is measured at another moment than after the epoch's updates, "
            "or the model holds no epoch's weights. Record the val loss of the model as it is after each epoch, over "
            f"the whole validation set{mode}, and put back the best epoch's weights.")
