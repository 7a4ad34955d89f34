"""The grader's own calls of a student's function: what the lists a call returned say of the call itself."""

from __future__ import annotations

from grader.checks.base import CheckFailed, as_curve
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
        raise CheckFailed(f"In {label}, your function returned {len(train)} epochs of losses but {said}: its "
                          "lists still hold values from before this call (lists made once outside the function, "
                          "as globals or as a default argument such as history=[], and appended to at every "
                          "call). Make new lists inside the function at each call; until then nothing else this "
                          "call returned can be read as its own.")
