"""What counts as an improvement: a run on a plateau and a run with tiny falls, judged by the task's strict rule.

The task's rule: an epoch improves when its val loss is strictly below the best so far, and training stops
once ``patience`` epochs in a row did not improve. Runs on the grader's usual data never tie and never fall by
less than the margins students add, so ``<=`` and a ``min_delta`` pass every other check. Each run is judged
against the val losses the student's own function recorded, so no data can make a correct function fail, and
only on what the rule for an improvement decides: on the plateau, whether a tie moved the best epoch or kept
the run from stopping; on the tiny falls, where the run stopped. How a function counts epochs (from 0, one
epoch late) and how it works out best_epoch are the other checks' to judge. A cause is named only when a rule
gives every run exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from grader.checks.base import CheckContext, CheckFailed, Outcome
from grader.checks.probe_runs import refuse_carried_over
from grader.checks.registry import Param, check_kind
from grader.loading.kinds import whole_number

# (this epoch's val loss, the best so far, the epoch) -> whether the epoch is an improvement
Rule = Callable[[float, float, int], bool]
MARGINS = tuple(10 ** (k / 4) for k in range(-32, 5))  # 1e-8 to 10: the margins tried as a min_delta


@dataclass(frozen=True)
class Called:
    """One run of the student's function: what it recorded and reported, and the arguments it was given."""

    export: str
    val_loss: tuple[float, ...]
    best_epoch: int
    patience: int
    n_epochs: int
    lr: float | None = None
    weights_moved: bool | None = None
    train_loss: tuple[float, ...] = ()

    @property
    def ran(self) -> int:
        return len(self.val_loss)


@dataclass(frozen=True)
class Counting:
    """How a function counts, apart from what it calls an improvement: the off-by-ones that other checks judge."""

    first_epoch: int = 1  # the number its best_epoch gives the first epoch
    patience_shift: int = 0  # it stops once the epochs without improvement reach patience + this
    budget_shift: int = 0  # it trains n_epochs + this epochs at most


TASK = Counting()
COUNTINGS = tuple(Counting(f, p, b) for f in (1, 0) for p in (0, -1, 1) for b in (0, -1, 1))


def follow(val_loss: tuple[float, ...], patience: int, n_epochs: int, improves: Rule,
           counting: Counting = TASK) -> tuple[int, int]:
    """(best_epoch as reported, the epoch the run ends at) under ``improves``, counted as ``counting`` counts.

    >>> follow((3.0, 3.0, 3.0, 3.0), patience=2, n_epochs=9, improves=strict)
    (1, 3)
    """
    best, best_epoch, waited = math.inf, 0, 0
    budget = n_epochs + counting.budget_shift
    for epoch, value in enumerate(val_loss[:budget], 1):
        if improves(value, best, epoch):
            best, best_epoch, waited = value, epoch, 0
        else:
            waited += 1
            if waited >= patience + counting.patience_shift:
                return best_epoch - 1 + counting.first_epoch, epoch
    return best_epoch - 1 + counting.first_epoch, budget


def strict(value: float, best: float, epoch: int) -> bool:
    return value < best


def reproduces(run: Called, improves: Rule, counting: Counting = TASK) -> bool:
    """Whether ``improves``, counted as ``counting`` counts, gives exactly the run's best_epoch and its length."""
    return follow(run.val_loss, run.patience, run.n_epochs, improves, counting) == (run.best_epoch, run.ran)


def countings(also: Called | None) -> tuple[Counting, ...]:
    """The countings that give ``also`` (a run without ties or tiny falls) under the task's rule; every counting
    when none does or there is no such run: a mistake in the counting is the other checks' to judge."""
    fitting = tuple(c for c in COUNTINGS if also is not None and reproduces(also, strict, c))
    return fitting or COUNTINGS


def tied_epochs(run: Called) -> tuple[int, ...]:
    """Epochs whose recorded val loss equals the lowest before it: a rounded record, or a fall below float32's
    resolution, can hide a real fall there, so the strict rule may have counted them either way."""
    low, tied = math.inf, []
    for epoch, value in enumerate(run.val_loss, 1):
        if value == low:
            tied.append(epoch)
        low = min(low, value)
    return tuple(tied)


def strict_outcomes(run: Called, ways: tuple[Counting, ...]) -> dict[tuple[int, int], bool]:
    """(best_epoch, end) the strict rule can give, counted each of ``ways``, with each tied epoch (``tied_epochs``)
    taken either way. Each maps to whether it needs a tie taken as a fall.

    The best value is always the lowest so far, whichever way a tie goes: only the best epoch and the count
    branch, so the states stay few.
    """
    tied = set(tied_epochs(run))
    found: dict[tuple[int, int], bool] = {}
    for way in ways:
        budget, limit = run.n_epochs + way.budget_shift, run.patience + way.patience_shift
        states, low = {(0, 0, False)}, math.inf  # (best epoch, epochs without improvement, a tie taken as a fall)
        for epoch, value in enumerate(run.val_loss[:budget], 1):
            moved = set()
            for best, waited, used in states:
                if value < low:
                    moved.add((epoch, 0, used))
                    continue
                if epoch in tied:
                    moved.add((epoch, 0, True))
                if waited + 1 >= limit:
                    key = (best - 1 + way.first_epoch, epoch)
                    found[key] = found.get(key, True) and used
                else:
                    moved.add((best, waited + 1, used))
            states, low = moved, min(low, value)
        for best, _, used in states:
            key = (best - 1 + way.first_epoch, budget)
            found[key] = found.get(key, True) and used
    return found


def _called(ctx: CheckContext, name: str) -> Called:
    data = ctx.value(name, "dict")
    val = data.get("val_loss")
    if not isinstance(val, list) or not val or not all(isinstance(v, (int, float)) for v in val):
        raise CheckFailed(f"The grader's run `{name}` of your function recorded no list of val losses (got "
                          f"{type(val).__name__}): return the val loss history as the fourth item.")
    best = data.get("best_epoch")
    if not whole_number(best):
        raise CheckFailed(f"The grader's run `{name}` of your function returned best_epoch {best!r}: it must be a "
                          "whole number (the 1-based best epoch).")
    if not whole_number(data.get("patience")) or not whole_number(data.get("n_epochs")):
        raise CheckFailed(f"The grader's run `{name}` does not say the patience and n_epochs it passed; this is the "
                          "grader's mistake, not yours: tell your instructor.")
    moved = data.get("weights_moved")
    lr = data.get("lr")
    train = data.get("train_loss")
    train = tuple(float(v) for v in train) if isinstance(train, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in train) else ()
    return Called(name, tuple(float(v) for v in val), int(best), int(data["patience"]), int(data["n_epochs"]),
                  float(lr) if isinstance(lr, (int, float)) else None, moved if isinstance(moved, bool) else None,
                  train)


def _optional(ctx: CheckContext, name: str) -> tuple[Called | None, str]:
    """The run ``name``, or None and why it cannot be read."""
    if not name:
        return None, ""
    try:
        return _called(ctx, name), ""
    except CheckFailed as e:
        return None, e.message


def _did(run: Called) -> str:
    stopped = (f"stopped at epoch {run.ran}" if run.ran < run.n_epochs else f"ran all {run.n_epochs} epochs"
               if run.ran == run.n_epochs else f"ran {run.ran} epochs")
    return f"your function reported best_epoch {run.best_epoch} and {stopped}"


def _over_budget(run: Called, at: str) -> str:
    """The undecided note for a run longer than the n_epochs it was given; "" for any other. Such a run follows another
    epoch budget, so where it stopped says nothing of how it counts an improvement."""
    if run.ran <= run.n_epochs:
        return ""
    return (f"{at} {_did(run)}, given n_epochs={run.n_epochs}: it follows another epoch budget (the check of its "
            "arguments judges that), so how it counts an improvement was not judged on this run.")


def _falls(run: Called) -> str:
    falls = [a - b for a, b in zip(run.val_loss, run.val_loss[1:]) if b < a]
    if not falls:
        return "where its val loss never fell"
    low, high = f"{min(falls):.2g}", f"{max(falls):.2g}"
    ties = len(tied_epochs(run))
    tied = f", and {ties} epoch{'s' if ties > 1 else ''} tied the best before" if ties else ""
    return f"where its val loss fell by {low if low == high else f'{low} to {high}'} an epoch{tied}"


def _cause(runs: list[Called], ways: tuple[Counting, ...]) -> str:
    """The one simple rule that gives every run exactly, counted one way throughout, if there is one: never a guess."""
    def all_given(improves: Rule) -> bool:
        return any(all(reproduces(r, improves, c) for r in runs) for c in ways)

    if all_given(lambda v, best, e: v <= best):
        # A tolerance added to the best (val < best + min_delta) counts ties too, and these runs cannot tell the two.
        return ("Your function's runs are exactly what counting an equal val loss as an improvement gives (<= where "
                "the task has <, or a margin added to the best, val < best + min_delta): on a plateau that resets "
                "the count every epoch, so patience never runs out.")
    margins = [m for m in MARGINS if all_given(lambda v, best, e, m=m: v < best - m)]
    falls = [a - b for r in runs for a, b in zip(r.val_loss, r.val_loss[1:]) if b < a]
    if margins and falls and margins[0] > max(falls):
        # Margins above every fall these runs saw: no fall counted at all, which a best kept from an earlier call
        # gives as well as a margin, and nothing here tells the two apart.
        return (f"Your function's runs are exactly what counting no fall as an improvement gives: a margin larger "
                f"than every fall they recorded (any from {margins[0]:.1g}: a min_delta, or val losses rounded before "
                "they are compared), or a best val loss kept from before this call (a global, or a default argument) "
                "that none of its val losses beats. The task counts every strictly lower val loss as an improvement, "
                "and each call starts its best at float('inf').")
    if margins:
        return (f"Your function's runs are exactly what counting a fall only when it exceeds a margin gives (any "
                f"margin from {margins[0]:.1g} to {margins[-1]:.1g} gives them all): a min_delta does this, and so do "
                "val losses rounded before they are compared. The task counts every strictly lower val loss as an "
                "improvement, however small.")
    return ""


def _other_best(other: Called | None) -> str:
    """What the grader's other run shows where no rule of the val loss gives every run: a best epoch that is not its
    lowest val loss, counted from 1 or from 0."""
    if other is None or not other.val_loss:
        return ""
    lowest = other.val_loss.index(min(other.val_loss)) + 1
    if other.best_epoch in (lowest, lowest - 1) or not 1 <= other.best_epoch <= other.ran:
        return ""  # its best (from 1 or 0), or none at all: no new best ever counted, which _cause reads
    return (f"In the grader's other run your function reported best_epoch {other.best_epoch}, where its lowest val "
            f"loss is epoch {lowest}'s: its rule for a new best watches something else than the val loss (the val "
            "accuracy, say), which leaves these falls uncounted. Count a new best when the val loss is "
            "strictly lower than the best so far.")


WATCHED = "Early stopping watches the val loss; the best-epoch checks judge which loss yours watches."


def _watches_training(run: Called, ways: tuple[Counting, ...], other: Called | None) -> bool:
    """Whether the task's rule gives the run exactly on its training loss and not on its val loss: a function that
    watches the training loss, whose runs test nothing of how it counts an improvement of the val loss. Where the
    grader's other run is known, it must fit the same reading, counted the same way: a short run on a plateau or tiny
    falls fits it by chance (a function that watches the val accuracy, say)."""
    def given(of: Called, curve: tuple[float, ...], way: Counting) -> bool:
        return len(curve) == of.ran and follow(curve, of.patience, of.n_epochs, strict, way) == (of.best_epoch, of.ran)
    return not any(given(run, run.val_loss, way) for way in ways) and any(
        given(run, run.train_loss, way) and (other is None or given(other, other.train_loss, way)) for way in ways)


def _plateau(flat: Called | None, failed: str, other: Called | None, ways: tuple[Counting, ...]
             ) -> tuple[str, str, str]:
    """(what went wrong, a note, an undecided note) for the run at lr=0."""
    if flat is None:
        return "", "", f"The grader's run on a plateau (lr=0) could not be used, so ties were not tested: {failed}"
    at = f"At lr={flat.lr:g}" if flat.lr is not None else "On the grader's plateau"
    if over := _over_budget(flat, at):
        return "", "", over
    if flat.weights_moved is not False:
        return "", "", (f"{at} the weights still moved (or could not be compared), so the run that should sit on a "
                        "plateau did not, and ties were not tested; the check of the lr your function uses says more.")
    # The weights never moved, so the ties are real: the strict rule counts none of them.
    possible = {follow(flat.val_loss, flat.patience, flat.n_epochs, strict, way) for way in ways}
    latest_best = max(best for best, _ in possible)
    earliest = min(best for best, _ in possible)
    if flat.best_epoch < earliest:  # below any count its other run allows: the first epoch was never a best
        return (f"{at} the val loss never changes, so the first epoch is the best: epoch {earliest}, as your function "
                f"numbers epochs in the grader's other run; but {_did(flat)}: it took the first epoch only "
                "as the value to compare with, not as a best epoch whose weights it keeps. Start the best val loss at "
                "float('inf'), so the first epoch is an improvement like any other."), "", ""
    never_stopped = flat.ran >= flat.n_epochs - 1 and flat.ran > max(end for _, end in possible)
    if flat.best_epoch <= latest_best and not never_stopped:
        return "", f"{at} (the val loss never changes) {_did(flat)}: no tie counted as an improvement.", ""
    if never_stopped and flat.best_epoch <= latest_best and (other is None or other.ran >= other.n_epochs):
        return "", "", (f"{at} {_did(flat)}, but it also ran all its epochs in the grader's other run, so its early "
                        "stopping is the patience checks' to judge, not its ties.")
    if _watches_training(flat, ways, other):
        return "", "", (f"{at} {_did(flat)}: exactly what the task's rule gives on its training loss, which still "
                        "changes between epochs there (the batches come in another order), not on its val loss, "
                        f"which never does; so ties were not tested. {WATCHED}")
    level = f"{flat.val_loss[0]:.4f}" if len(set(flat.val_loss)) == 1 else "the same value"
    what = (f"{at} the weights never change, so every epoch's val loss is {level}: {_did(flat)}, but counting only "
            f"a strictly lower val loss as an improvement keeps epoch 1 as the best and stops {flat.patience} epochs "
            "later")
    if flat.best_epoch <= latest_best:  # the best stayed, yet the count never ran out
        what += (". The best epoch stayed, yet patience never ran out: what remains is a tie that resets the count of "
                 "epochs without improvement, or a count of epochs whose val loss rose rather than of epochs without "
                 "a new best")
    return what + ".", "", ""


def _creep(slow: Called, ways: tuple[Counting, ...], other: Called | None) -> tuple[str, str, str]:
    """(what went wrong, a note, an undecided note) for the run with tiny falls: judged by where it ended."""
    where = f"given lr={slow.lr:g}, {_falls(slow)}" if slow.lr is not None else _falls(slow)
    if over := _over_budget(slow, f"On a run {where},"):
        return "", "", over
    ends: dict[int, bool] = {}  # where the strict rule can end the run -> whether only with a tie taken as a fall
    for (_, end), tie in strict_outcomes(slow, ways).items():
        ends[end] = ends.get(end, True) and tie
    if _watches_training(slow, ways, other):
        return "", "", (f"On a run {where}, {_did(slow)}: exactly what the task's rule gives on its training loss, not "
                        f"on its val loss, so how it counts a fall of the val loss was not tested. {WATCHED}")
    if slow.ran in ends and not ends[slow.ran]:
        if not any(b < a for a, b in zip(slow.val_loss, slow.val_loss[1:])):
            # No fall to count: the run tests only ties, which the plateau run judges (it is a val pass that never
            # sees the model being trained, say).
            return "", "", (f"On a run {where}, {_did(slow)}: with no fall to count, it tests no improvement, so it "
                            "was not judged.")
        return "", f"On a run {where}, {_did(slow)}: every fall counted as an improvement.", ""
    if slow.ran in ends:
        return "", "", (f"On a run {where}, {_did(slow)}: that fits the task's rule only if some of the tied epochs "
                        "hid a fall, which a rounded record cannot show, so it was not judged.")
    plain = follow(slow.val_loss, slow.patience, slow.n_epochs, strict)[1]
    return (f"On a run {where}, {_did(slow)}, although each fall it recorded is an improvement under the task's "
            f"rule, which ends that run at epoch {plain}."), "", ""


@check_kind("strict_improvement",
            plateau=Param(str, doc="a dict export of a run at lr=0 (val_loss, best_epoch, patience, n_epochs, lr, "
                          "weights_moved): every epoch ties the first", export=True),
            creep=Param(str, doc="a dict export of a run whose val loss falls by tiny amounts (val_loss, best_epoch, "
                        "patience, n_epochs, lr)", export=True),
            also=Param(str, "", "a dict export of another run of the function (with patience and n_epochs): it fixes "
                       "how the function counts, and a cause is named only when it gives this run too", export=True))
def strict_improvement(ctx: CheckContext, plateau: str, creep: str, also: str) -> Outcome:
    """A tie is not an improvement, and every fall is: the task's rule on a plateau and on tiny falls."""
    for name, called in ((creep, "the grader's call at lr=1e-6"), (plateau, "the grader's call at lr=0")):
        refuse_carried_over(ctx.exports.values.get(name), called)
    slow = _called(ctx, creep)
    other, _ = _optional(ctx, also)
    flat, failed = _optional(ctx, plateau)
    ways = countings(other)
    judged = [_plateau(flat, failed, other, ways), _creep(slow, ways, other)]
    wrong = [w for w, _, _ in judged if w]
    notes = [n for _, n, _ in judged if n] + [u for _, _, u in judged if u]
    undecided = sum(1 for _, _, u in judged if u)
    metrics = {"creep_best_epoch": slow.best_epoch, "creep_epochs": slow.ran}
    if flat is not None:
        metrics |= {"plateau_best_epoch": flat.best_epoch, "plateau_epochs": flat.ran}
    if not wrong:
        return Outcome(True, " ".join(notes), metrics=metrics | ({"undecided": undecided} if undecided else {}))
    plateau_known = flat is not None and flat.weights_moved is False
    known = [slow] + ([flat] if plateau_known else []) + ([other] if other else [])
    cause = _cause(known, ways) or _other_best(other)
    return Outcome(False, " ".join(wrong + ([cause] if cause else []) + notes), fraction=1 - len(wrong) / 2,
                   metrics=metrics)
