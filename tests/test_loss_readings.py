"""Reading a per-epoch training-loss record against the batches' own losses: the pure part of loss-records."""

from __future__ import annotations

import math
import random

import pytest

from grader.diagnosis.loss_readings import EpochLosses, read_record, record_fault

RNG = random.Random(7)
# Five epochs of six batches (the last one short), each batch's mean loss falling as training goes on.
EPOCHS = [EpochLosses(tuple(2.3 * 0.8 ** e * RNG.uniform(0.7, 1.3) for _ in range(6)), (32, 32, 32, 32, 32, 20))
          for e in range(5)]


def _fault(record):
    return record_fault(read_record(list(record), EPOCHS))


@pytest.mark.parametrize("per_epoch", [
    lambda e: math.fsum(e.means),  # the course's sum of batch means
    lambda e: math.fsum(m * n for m, n in zip(e.means, e.sizes)) / sum(e.sizes),  # a mean per sample
    lambda e: math.fsum(e.means) / len(e.means),  # a mean of batch means
])
def test_a_record_in_an_accepted_convention_has_no_fault(per_epoch):
    assert _fault(map(per_epoch, EPOCHS)) is None


def test_the_last_batch_alone_is_named_at_the_first_epoch():
    fault = _fault(e.means[-1] for e in EPOCHS)
    assert (fault.epoch, fault.reading) == (1, "last batch's mean")


@pytest.mark.parametrize("divide, reading", [
    (lambda done, last: 1, "running sum of batch means"),
    (lambda done, last: len(last.means), "running sum of batch means per batch"),
    (lambda done, last: sum(len(e.means) for e in done), "running mean of batch means"),
])
def test_a_total_never_set_back_to_0_is_named_at_the_last_epoch(divide, reading):
    record = [math.fsum(m for e in EPOCHS[:k + 1] for m in e.means) / divide(EPOCHS[:k + 1], EPOCHS[k])
              for k in range(len(EPOCHS))]
    fault = _fault(record)
    assert (fault.epoch, fault.reading) == (5, reading)


def test_one_unreadable_epoch_gives_the_whole_record_the_benefit_of_the_doubt():
    record = [e.means[-1] for e in EPOCHS]
    record[2] *= 1.01  # no reading of that epoch: a smoothed loss, another criterion
    assert _fault(record) is None


def test_epochs_of_one_batch_tell_nothing():
    single = [EpochLosses((0.5 * (k + 1),), (32,)) for k in range(4)]
    assert read_record([0.5, 1.0, 1.5, 2.0], single) == []


def test_a_pass_that_gives_the_very_losses_of_the_one_before_is_the_same_epoch_read_again():
    from grader.checks.loss_records import epoch_losses

    once = [[1, 0.5, 32], [1, 0.25, 20]]
    again = [[2, 0.5, 32], [2, 0.25, 20]]  # the validation loader gone through again for the accuracy
    later = [[3, 0.4, 32], [3, 0.2, 20]]
    assert epoch_losses(once + again + later) == [EpochLosses((0.5, 0.25), (32, 20)), EpochLosses((0.4, 0.2), (32, 20))]
    assert epoch_losses([*once, ["2", 0.5, 32], [2, float("nan"), 32], "x"]) == [EpochLosses((0.5, 0.25), (32, 20))]
