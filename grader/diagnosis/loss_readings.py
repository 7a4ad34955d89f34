"""Read a per-epoch loss record (training or validation) against each batch's loss, as the grader measured them.

A recorded epoch loss is one of the accepted conventions of that epoch's batches (``LOSS_CONVENTIONS``); the last
batch's loss alone (a total overwritten at each batch); a total that goes on from the epochs before (never set back to
0); or none of these, which cannot be read. Matching is exact, to float rounding: the batches' losses are the values
the student's own code added up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

REL_TOL = 1e-6  # the same float32 losses, added up in another order
# How a loss may be reported; the course's is the first. Early stopping works the same with any of them, so the
# grader measures all and compares in whichever the student's history uses.
LOSS_CONVENTIONS = {
    "sum of batch means": "the course's: the sum of the batches' mean losses",
    "mean over samples": "the mean loss per sample",
    "mean of batch means": "the mean of the batches' mean losses",
    "sum over samples": "the sum of the per-sample losses",
    "sum of batch means per sample": "the sum of the batches' mean losses divided by the number of samples",
    "mean of batch sums": "the sum of the per-sample losses divided by the number of batches",
}
LAST_BATCH = {
    "last batch's mean": "the last batch's mean loss",
    "last batch's sum": "the last batch's summed loss",
    "last batch's mean per batch": "the last batch's mean loss divided by the number of batches",
    "last batch's mean per sample": "the last batch's mean loss divided by the number of samples",
}
RUNNING = {
    "running sum of batch means": "the sum of the batches' mean losses",
    "running sum over samples": "the sum of the per-sample losses",
    "running sum of batch means per batch": "the sum of the batches' mean losses divided by the epoch's batches",
    "running sum over samples per sample": "the sum of the per-sample losses divided by the epoch's samples",
    "running sum of batch means per sample": "the sum of the batches' mean losses divided by the epoch's samples",
    "running sum over samples per batch": "the sum of the per-sample losses divided by the epoch's batches",
    "running mean of batch means": "the mean of the batches' mean losses",
    "running mean over samples": "the mean loss per sample",
}


def conventions(total: float, summed: float, samples: int, batches: int, mean: float | None = None) -> dict[str, float]:
    """An epoch's loss in each of LOSS_CONVENTIONS, from the sum of its batches' mean losses (``total``) and of its
    per-sample losses (``summed``); ``mean``: the mean per sample where it was measured itself (else summed/samples)."""
    return {"sum of batch means": total, "mean over samples": summed / samples if mean is None else mean,
            "mean of batch means": total / batches, "sum over samples": summed,
            "sum of batch means per sample": total / samples, "mean of batch sums": summed / batches}


@dataclass(frozen=True)
class EpochLosses:
    """One epoch's training batches as measured: each batch's mean loss and its size."""

    means: tuple[float, ...]
    sizes: tuple[int, ...]

    @property
    def totals(self) -> tuple[float, float]:
        """(the sum of the batch means, the sum of the per-sample losses)."""
        return math.fsum(self.means), math.fsum(m * n for m, n in zip(self.means, self.sizes))

    def readings(self) -> dict[str, float]:
        """The epoch's loss in every accepted convention, then in each last-batch-only reading."""
        (total, summed), samples, batches = self.totals, sum(self.sizes), len(self.means)
        last = self.means[-1]
        return conventions(total, summed, samples, batches) | {
            "last batch's mean": last, "last batch's sum": last * self.sizes[-1],
            "last batch's mean per batch": last / batches, "last batch's mean per sample": last / samples}


def running_readings(epochs: list[EpochLosses]) -> dict[str, float]:
    """The last epoch's loss read as a total never set back to 0: over the batches of every epoch so far, divided by
    the last epoch's batches or samples, or by all of them (a running mean whose counts go on too)."""
    totals = [epoch.totals for epoch in epochs]
    means, summed = math.fsum(t[0] for t in totals), math.fsum(t[1] for t in totals)
    last = epochs[-1]
    batches, samples = len(last.means), sum(last.sizes)
    return {"running sum of batch means": means, "running sum over samples": summed,
            "running sum of batch means per batch": means / batches, "running sum over samples per sample":
            summed / samples, "running sum of batch means per sample": means / samples,
            "running sum over samples per batch": summed / batches,
            "running mean of batch means": means / sum(len(e.means) for e in epochs),
            "running mean over samples": summed / sum(sum(e.sizes) for e in epochs)}


def reading_of(value: float, epochs: list[EpochLosses]) -> str:
    """The first reading of the last of ``epochs`` that ``value`` is (a convention, then a last-batch one, then,
    from the second epoch on, a running total), or ""."""
    readings = epochs[-1].readings() | (running_readings(epochs) if len(epochs) > 1 else {})
    return next((name for name, v in readings.items() if math.isclose(value, v, rel_tol=REL_TOL)), "")


@dataclass(frozen=True)
class Reading:
    """One epoch of a record, read: its 1-based number, the value recorded, and its reading ("" for none)."""

    epoch: int
    value: float
    reading: str


def read_record(reported: list[float], epochs: list[EpochLosses]) -> list[Reading]:
    """Each epoch's reading, for the epochs of more than one batch (one batch makes every per-epoch reading the
    same, so such an epoch tells nothing); ``reported`` and ``epochs`` run alike."""
    return [Reading(e + 1, value, reading_of(value, epochs[:e + 1]))
            for e, value in enumerate(reported) if len(epochs[e].means) > 1]


def record_fault(read: list[Reading]) -> Reading | None:
    """The epoch that shows what is wrong with the whole record: the first, where every epoch read is the last
    batch's alone (three at least); the last, where every epoch after the first is a running total (two at least);
    None otherwise (any other reading of any epoch gives the benefit of the doubt)."""
    if len(read) >= 3 and all(r.reading in LAST_BATCH for r in read):
        return read[0]
    later = [r for r in read if r.epoch > 1]
    if len(later) >= 2 and all(r.reading in RUNNING for r in later):
        return later[-1]
    return None
