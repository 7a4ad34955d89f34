"""What a function's per-epoch training and validation losses add up, against each batch's loss the grader measured.

The grader's own call of the student's function notes every batch's mean cross-entropy, worked out from the model's
outputs and the batch's labels; ``grader.diagnosis.loss_readings`` reads each record against them.
"""

from __future__ import annotations

import math

from grader.checks.base import CheckContext, CheckFailed, Outcome, as_curve
from grader.checks.registry import Param, check_kind
from grader.diagnosis.loss_readings import (LAST_BATCH, LOSS_CONVENTIONS, RUNNING, EpochLosses, read_record,
                                            record_fault)


def epoch_losses(noted: object) -> list[EpochLosses]:
    """The grader's notes ([pass over the loader, batch mean loss, batch size], in order) by epoch: the batches of one
    pass make one epoch, and a pass that gives the very losses of the one before is the same model read again (a
    second pass over the validation loader for the accuracy). Notes that are not such triples are left out."""
    passes: dict[int, list[tuple[float, int]]] = {}
    for note in noted if isinstance(noted, list) else []:
        if (isinstance(note, list) and len(note) == 3 and type(note[0]) is int and isinstance(note[1], float)
                and math.isfinite(note[1]) and type(note[2]) is int and note[2] > 0):
            passes.setdefault(note[0], []).append((note[1], note[2]))
    epochs: list[EpochLosses] = []
    for _, batches in sorted(passes.items()):
        epoch = EpochLosses(tuple(m for m, _ in batches), tuple(n for _, n in batches))
        if not epochs or epoch != epochs[-1]:
            epochs.append(epoch)
    return epochs


RECORDS = (("train_loss", "batch_losses", "training"), ("val_loss", "val_batch_losses", "validation"))


@check_kind("loss_records",
            run=Param(str, "grader_run_full", "a dict export of the grader's call of the function, with the "
                      "train_loss and val_loss it returned, and batch_losses and val_batch_losses ([pass over the "
                      "loader, the batch's mean cross-entropy, its size] for each training batch, and each batch of "
                      "validation points, of the model handed in)", export=True))
def loss_records(ctx: CheckContext, run: str) -> Outcome:
    """Each epoch's train_loss and val_loss add up all of that epoch's batches, in an accepted convention.

    A record that is the last batch's loss at every epoch the grader can tell, or a total that goes on from the epochs
    before at every epoch after the first, fails; one it cannot match to the batches is not scored."""
    data = ctx.value(run, "dict")
    said, undecided = [], False
    for key, notes, role in RECORDS:
        verdict, message = _read(data, key, notes, role)
        if verdict is False:
            raise CheckFailed(message, details={"record": key})
        said.append(message)
        undecided = undecided or verdict is None
    return Outcome(True, f"In the grader's call of your function, {'; '.join(said)}.",
                   metrics={"undecided": 1} if undecided else {})


def _read(data: dict, key: str, notes: str, role: str) -> tuple[bool | None, str]:
    """(True, what it is; False, what is wrong and what to do; None, why it cannot be read) for one record: the
    first and the last to go on from "In the grader's call of your function, ", the other a whole message."""
    try:
        reported = [float(v) for v in as_curve(data.get(key)) or []]
    except (TypeError, ValueError):
        reported = []  # not plain numbers: the checks of the records say so
    epochs = epoch_losses(data.get(notes))
    if not reported or not epochs or len(reported) != len(epochs):
        return None, (f"{key} holds {len(reported)} values where the grader measured {len(epochs)} passes of "
                      f"{role} batches, so the two cannot be set side by side")
    counts = {len(epoch.means) for epoch in epochs}
    batches = f"{counts.pop()}" if len(counts) == 1 else f"up to {max(counts)}"
    called = f"In the grader's call of your function ({len(reported)} epochs of {batches} {role} batches), "
    read = read_record(reported, epochs)
    fault = record_fault(read)
    if fault is not None:
        own = epochs[fault.epoch - 1]
        if fault.reading in LAST_BATCH:
            return False, (
                f"{called}the {key} it returned for each epoch is {LAST_BATCH[fault.reading]} alone, as the grader "
                f"measured it from the model's outputs: at epoch {fault.epoch} your {fault.value:.6g}, where the "
                f"epoch's {len(own.means)} batches' losses add up to {own.totals[0]:.6g}. The earlier batches of each "
                "epoch are left out (a total set with `=` at each batch, say, or reset inside the loop over the "
                "batches). Add every batch's loss to the epoch's total, `total += loss.item()` inside the loop, as "
                f"the task's {role} pass does.")
        return False, (
            f"{called}the {key} it returned goes on adding up the batches of the epochs before: at epoch "
            f"{fault.epoch} your {fault.value:.6g} is {RUNNING[fault.reading]} of epochs 1 to {fault.epoch} together, "
            f"as the grader measured every batch from the model's outputs, where that epoch's own batches add up to "
            f"{own.totals[0]:.6g}. The total is not set back to 0 when an epoch begins (made once, before the loop "
            f"over the epochs). Start each epoch's total at 0, inside the loop over the epochs, as the task's {role} "
            "pass does.")
    found = {r.reading for r in read if r.reading in LOSS_CONVENTIONS}
    if len(found) == 1 and all(r.reading for r in read):
        return True, (f"{key} adds up all of each epoch's {batches} {role} batches, as the grader measured them "
                      f"({LOSS_CONVENTIONS[found.pop()]})")
    shown = next((r for r in read if not r.reading), read[0] if read else None)
    number, value = (shown.epoch, shown.value) if shown else (1, reported[0])
    own = epochs[number - 1]
    return None, (f"{key} could not be read as one way of adding up each epoch's {role} batches (at epoch {number} "
                  f"your {value:.6g}; the grader measured the {len(own.means)} batches' losses adding up to "
                  f"{own.totals[0]:.6g}, a mean of {own.totals[0] / len(own.means):.6g}), so it is not scored")
