"""What a function's per-epoch training loss adds up, against each training batch's loss the grader measured.

The grader's own call of the student's function notes every training batch's mean cross-entropy, worked out from
the model's outputs and the batch's labels; ``grader.diagnosis.loss_readings`` reads the record against them.
"""

from __future__ import annotations

import math

from grader.checks.base import CheckContext, CheckFailed, Outcome, as_curve
from grader.checks.registry import Param, check_kind
from grader.diagnosis.loss_readings import (LAST_BATCH, LOSS_CONVENTIONS, RUNNING, EpochLosses, read_record,
                                            record_fault)


def epoch_losses(noted: object) -> list[EpochLosses]:
    """The grader's notes ([pass over the training loader, batch mean loss, batch size], in order) by epoch: the
    batches of one pass make one epoch. Notes that are not such triples are left out."""
    epochs: dict[int, list[tuple[float, int]]] = {}
    for note in noted if isinstance(noted, list) else []:
        if (isinstance(note, list) and len(note) == 3 and type(note[0]) is int and isinstance(note[1], float)
                and math.isfinite(note[1]) and type(note[2]) is int and note[2] > 0):
            epochs.setdefault(note[0], []).append((note[1], note[2]))
    return [EpochLosses(tuple(m for m, _ in batches), tuple(n for _, n in batches))
            for _, batches in sorted(epochs.items())]


@check_kind("training_loss_record",
            run=Param(str, "grader_run_full", "a dict export of the grader's call of the function, with the "
                      "train_loss it returned and batch_losses ([pass over the training loader, the batch's mean "
                      "cross-entropy, its size] for each training batch of the model handed in)", export=True))
def training_loss_record(ctx: CheckContext, run: str) -> Outcome:
    """Each epoch's train_loss adds up all of that epoch's training batches, in an accepted convention.

    A record that is the last batch's loss at every epoch the grader can tell, or a total that goes on from the epochs
    before at every epoch after the first, fails; one it cannot match to the batches is not scored."""
    data = ctx.value(run, "dict")
    try:
        reported = [float(v) for v in as_curve(data.get("train_loss")) or []]
    except (TypeError, ValueError):
        reported = []  # not plain numbers: the checks of the records say so
    epochs = epoch_losses(data.get("batch_losses"))
    if not reported or not epochs or len(reported) != len(epochs):
        return Outcome(True, f"In the grader's call of your function, train_loss holds {len(reported)} values and "
                       f"the grader measured {len(epochs)} epochs of training batches, so the two cannot be set side "
                       "by side (follows-arguments judges the epochs run).", metrics={"undecided": 1})
    counts = {len(epoch.means) for epoch in epochs}
    batches = f"{counts.pop()}" if len(counts) == 1 else f"up to {max(counts)}"
    called = f"In the grader's call of your function ({len(reported)} epochs of {batches} training batches), "
    read = read_record(reported, epochs)
    fault = record_fault(read)
    if fault is not None:
        own = epochs[fault.epoch - 1]
        details = {"reading": fault.reading, "epochs": len(read)}
        if fault.reading in LAST_BATCH:
            raise CheckFailed(
                f"{called}the train_loss it returned for each epoch is {LAST_BATCH[fault.reading]} alone, as the "
                f"grader measured it from the model's outputs: at epoch {fault.epoch} your {fault.value:.6g}, where "
                f"the epoch's {len(own.means)} batches' losses add up to {own.totals[0]:.6g}. The earlier batches of "
                "each epoch are left out (a total set with `=` at each batch, say, or reset inside the loop over the "
                "batches). Add every batch's loss to the epoch's total, `total += loss.item()` inside the loop, as "
                "the task's training pass does.", details=details)
        raise CheckFailed(
            f"{called}the train_loss it returned goes on adding up the batches of the epochs before: at epoch "
            f"{fault.epoch} your {fault.value:.6g} is {RUNNING[fault.reading]} of epochs 1 to {fault.epoch} together, "
            f"as the grader measured every batch from the model's outputs, where that epoch's own batches add up to "
            f"{own.totals[0]:.6g}. The total is not set back to 0 when an epoch begins (made once, before the loop "
            "over the epochs). Start each epoch's total at 0, inside the loop over the epochs, as the task's training "
            "pass does.", details=details)
    found = {r.reading for r in read if r.reading in LOSS_CONVENTIONS}
    if len(found) == 1 and all(r.reading for r in read):
        return Outcome(True, f"{called}the train_loss of each epoch adds up all of that epoch's batches, as the grader "
                       f"measured them: it is {LOSS_CONVENTIONS[found.pop()]}.")
    shown = next((r for r in read if not r.reading), read[0] if read else None)
    number, value = (shown.epoch, shown.value) if shown else (1, reported[0])
    own = epochs[number - 1]
    return Outcome(True, f"In the grader's call of your function, train_loss could not be read as one way of adding "
                   f"up each epoch's training batches (at epoch {number} your {value:.6g}; the grader measured the "
                   f"{len(own.means)} batches' losses adding up to {own.totals[0]:.6g}, a mean of "
                   f"{own.totals[0] / len(own.means):.6g}), so it is not scored.", metrics={"undecided": 1})
