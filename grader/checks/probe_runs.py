"""The grader's own calls of a student's function: what the lists a call returned say of the call itself."""

from __future__ import annotations

import math

from grader.checks.base import CheckFailed, as_curve
from grader.checks.loss_records import epoch_losses
from grader.diagnosis.loss_readings import LOSS_CONVENTIONS, REL_TOL
from grader.loading.kinds import whole_number


def per_step_epochs(data: dict) -> int | None:
    """Where a call returned one training loss per optimizer step (per batch, the loader making more than one), the
    epochs those steps make over the loader's batches, as the grader counted both; None otherwise."""
    train = as_curve(data.get("train_loss")) or []
    steps, batches = data.get("optimizer_steps"), data.get("batches")
    if not (whole_number(steps) and whole_number(batches) and batches > 1 and len(train) == steps > 0):
        return None
    return _epochs(steps, batches)


def _epochs(steps: int, batches: int) -> int:
    """The epochs ``steps`` optimizer steps make over a loader of ``batches`` batches, the last one begun."""
    return -(-steps // batches)


def refuse_carried_over(data: object, label: str) -> None:
    """CheckFailed where a call returned more epochs of training losses than it trained in (the passes over the
    grader's training loader, or its optimizer steps over the loader's batches, as the grader counted them), and its
    val losses too, or a count no one-loss-per-step reading gives: lists that still hold earlier calls' values, on
    which no other reading of the call stands. Nothing where the call was not counted."""
    if not isinstance(data, dict):
        return
    train = as_curve(data.get("train_loss")) or []
    passes, steps, batches = data.get("train_passes"), data.get("optimizer_steps"), data.get("batches")
    if whole_number(passes) and passes > 0:
        made, said = passes, f"made {passes} passes over its training loader"
    elif whole_number(steps) and steps > 0 and whole_number(batches) and batches > 0:
        made = _epochs(steps, batches)
        said = f"took {steps} optimizer steps, {made} epoch{'s' * (made != 1)} of the loader's {batches} batches"
    else:
        return
    # More training losses than epochs is also one per batch, in lists made fresh: the val losses (one per epoch) or
    # one loss per optimizer step of this call show those, and the checks of the losses name them.
    val = as_curve(data.get("val_loss")) or []
    per_batch = per_step_epochs(data) is not None or (whole_number(batches) and len(train) == made * batches)
    if len(train) > made and not (val and len(val) <= made) and not per_batch:
        surplus, at = len(train) - made, _own_epochs_at(train, data.get("batch_losses"))
        if at == "start":
            cause = (f"its first {made} values are this call's epochs, as the grader measured its training batches, "
                     f"and the {surplus} after them {'was' if surplus == 1 else 'were'} appended outside the epoch "
                     "loop (an evaluation of the restored model after it, say). Record one value per epoch")
        elif at == "end":
            cause = (f"its last {made} values are this call's epochs, as the grader measured its training batches, "
                     f"and the {surplus} before them are earlier calls': its lists still hold values from before this "
                     "call (lists made once outside the function, as globals or as a default argument such as "
                     "history=[], and appended to at every call). Make new lists inside the function at each call")
        else:  # no batch records of this call: both causes put values in the lists that no epoch of it made
            cause = (f"{surplus} more value{'s' * (surplus != 1)} than the epochs it trained. Two causes give "
                     "that: lists that still hold values from before this call (made once outside the function, as "
                     "globals or as a default argument such as history=[], and appended to at every call), or values "
                     "appended outside the epoch loop (an evaluation of the restored model after it, say). Record "
                     "one value per epoch, in lists made inside the function at each call")
        raise CheckFailed(f"In {label}, your function returned {len(train)} epochs of losses but {said}: {cause}; "
                          "until then nothing else this call returned can be read as its own.")


def _own_epochs_at(train: list, notes: object) -> str:
    """"start" where the first values of ``train`` are the call's own epochs, as the grader's notes of its training
    batches read them in one accepted convention, "end" where the last ones are; "" where the notes cannot tell."""
    epochs = epoch_losses(notes)
    if len(epochs) < 2 or len(train) <= len(epochs):
        return ""

    def own(values: list) -> bool:
        try:
            read = [{name for name, value in epoch.readings().items()
                     if name in LOSS_CONVENTIONS and math.isclose(float(x), value, rel_tol=REL_TOL)}
                    for x, epoch in zip(values, epochs)]
        except (TypeError, ValueError):
            return False
        return bool(set.intersection(*read))

    return "start" if own(train[:len(epochs)]) else "end" if own(train[-len(epochs):]) else ""
