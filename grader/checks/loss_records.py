"""What a function's per-epoch training loss adds up, against each training batch's loss the grader measured.

The grader's own call of the student's function notes every training batch's mean cross-entropy, worked out from
the model's outputs and the batch's labels. A recorded epoch loss is then one of the accepted conventions of those
batches (``LOSS_CONVENTIONS``), the last batch's loss alone (a total overwritten at each batch), or neither, which
cannot be read and is not scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from grader.checks.base import CheckContext, CheckFailed, Outcome, as_curve
from grader.checks.registry import Param, check_kind
from grader.checks.training import LOSS_CONVENTIONS

REL_TOL = 1e-6  # the same float32 losses, added up in another order
LAST_BATCH = {
    "last batch's mean": "the last batch's mean loss",
    "last batch's sum": "the last batch's summed loss",
    "last batch's mean per batch": "the last batch's mean loss divided by the number of batches",
    "last batch's mean per sample": "the last batch's mean loss divided by the number of samples",
}


@dataclass(frozen=True)
class EpochLosses:
    """One epoch's training batches as the grader measured them: each batch's mean loss and its size."""

    means: tuple[float, ...]
    sizes: tuple[int, ...]

    def readings(self) -> dict[str, float]:
        """The epoch's loss in every accepted convention, then in each last-batch-only reading."""
        total, samples, batches = math.fsum(self.means), sum(self.sizes), len(self.means)
        summed = math.fsum(m * n for m, n in zip(self.means, self.sizes))
        last = self.means[-1]
        return {"sum of batch means": total, "mean over samples": summed / samples,
                "mean of batch means": total / batches, "sum over samples": summed,
                "sum of batch means per sample": total / samples, "mean of batch sums": summed / batches,
                "last batch's mean": last, "last batch's sum": last * self.sizes[-1],
                "last batch's mean per batch": last / batches, "last batch's mean per sample": last / samples}


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


def reading_of(value: float, epoch: EpochLosses) -> str:
    """The first reading of ``epoch`` (a convention before a last-batch one) that ``value`` is, or ""."""
    return next((name for name, v in epoch.readings().items() if math.isclose(value, v, rel_tol=REL_TOL)), "")


@check_kind("training_loss_record",
            run=Param(str, "grader_run_full", "a dict export of the grader's call of the function, with the "
                      "train_loss it returned and batch_losses ([pass over the training loader, the batch's mean "
                      "cross-entropy, its size] for each training batch of the model handed in)", export=True))
def training_loss_record(ctx: CheckContext, run: str) -> Outcome:
    """Each epoch's train_loss adds up all of that epoch's training batches, in an accepted convention.

    Only a record that is the last batch's loss at every epoch the grader can tell fails; one it cannot match to the
    batches is not scored."""
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
    # One batch an epoch makes every reading the same: such epochs tell nothing.
    judged = [(e + 1, value, epoch, reading_of(value, epoch))
              for e, (value, epoch) in enumerate(zip(reported, epochs)) if len(epoch.means) > 1]
    readings = [r for *_, r in judged]
    counts = {len(epoch.means) for epoch in epochs}
    batches = f"{counts.pop()}" if len(counts) == 1 else f"up to {max(counts)}"
    if len(judged) >= 3 and all(r in LAST_BATCH for r in readings):
        number, value, epoch, reading = judged[0]
        total = epoch.readings()["sum of batch means"]
        raise CheckFailed(
            f"In the grader's call of your function ({len(reported)} epochs of {batches} training batches), "
            f"the train_loss it returned for each epoch is {LAST_BATCH[reading]} alone, as the grader measured it "
            f"from the model's outputs: at epoch {number} your {value:.6g}, where the epoch's {len(epoch.means)} "
            f"batches' losses add up to {total:.6g}. The earlier batches of each epoch are left out (a total set with "
            "`=` at each batch, say, or reset inside the loop over the batches). Add every batch's loss to the "
            "epoch's total, `total += loss.item()` inside the loop, as the task's training pass does.",
            details={"reading": reading, "epochs": len(judged)})
    found = {r for r in readings if r in LOSS_CONVENTIONS}
    if len(found) == 1 and all(readings):
        return Outcome(True, f"In the grader's call of your function ({len(reported)} epochs of {batches} training "
                       "batches), the train_loss of each epoch adds up all of that epoch's batches, as the grader "
                       f"measured them: it is {LOSS_CONVENTIONS[found.pop()]}.")
    number, value, epoch, _ = next((j for j in judged if not j[3]), judged[0]) if judged else (1, reported[0],
                                                                                               epochs[0], "")
    return Outcome(True, f"In the grader's call of your function, train_loss could not be read as one way of adding "
                   f"up each epoch's training batches (at epoch {number} your {value:.6g}; the grader measured the "
                   f"{len(epoch.means)} batches' losses adding up to {epoch.readings()['sum of batch means']:.6g}, "
                   f"a mean of {epoch.readings()['mean of batch means']:.6g}), so it is not scored.",
                   metrics={"undecided": 1})
