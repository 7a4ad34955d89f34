"""What counts as an improvement: a run on a plateau and a run with tiny falls, judged by the task's strict rule.

The task's rule: an epoch improves when its val loss is strictly below the best so far, and training stops
once ``patience`` epochs in a row did not improve. Runs on the grader's usual data never tie and never fall by
less than the margins students add, so ``<=`` and a ``min_delta`` pass every other check. Each run is judged
against the val losses the student's own function recorded, so no data can make a correct function fail; a
cause is named only when a rule reproduces every run exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from grader.checks.base import CheckContext, CheckFailed, Outcome
from grader.checks.registry import Param, check_kind
from grader.loading.kinds import whole_number

Rule = Callable[[float, float], bool]  # (this epoch's val loss, the best so far) -> whether it is an improvement
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
           counting: Counting = TASK) -> tuple[int, int | None]:
    """(best_epoch reported, stop epoch) under ``improves``; stop None when patience never ran out.

    >>> follow((3.0, 3.0, 3.0, 3.0), patience=2, n_epochs=9, improves=lambda v, best: v < best)
    (1, 3)
    """
    best, best_epoch, waited = math.inf, 0, 0
    for epoch, value in enumerate(val_loss[:n_epochs + counting.budget_shift], 1):
        if improves(value, best):
            best, best_epoch, waited = value, epoch, 0
        else:
            waited += 1
            if waited >= patience + counting.patience_shift:
                return best_epoch - 1 + counting.first_epoch, epoch
    return best_epoch - 1 + counting.first_epoch, None


def reproduces(run: Called, improves: Rule, counting: Counting = TASK) -> bool:
    """Whether ``improves``, counted as ``counting`` counts, gives exactly the run's best_epoch and its length."""
    best, stop = follow(run.val_loss, run.patience, run.n_epochs, improves, counting)
    return best == run.best_epoch and run.ran == (stop if stop is not None else run.n_epochs + counting.budget_shift)


def strict(value: float, best: float) -> bool:
    return value < best


def countings(also: Called | None) -> tuple[Counting, ...]:
    """The countings that give ``also`` (a run without ties or tiny falls) under the task's rule; every counting
    when none does or there is no such run: a mistake in the counting is the other checks' to judge."""
    fitting = tuple(c for c in COUNTINGS if also is not None and reproduces(also, strict, c))
    return fitting or COUNTINGS


def ties_hidden(run: Called) -> bool:
    """Whether a recorded val loss equals the best before it: a rounded record can hide a real fall there."""
    best = math.inf
    for value in run.val_loss:
        if value == best:
            return True
        best = min(best, value)
    return False


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
    return Called(name, tuple(float(v) for v in val), int(best), int(data["patience"]), int(data["n_epochs"]),
                  float(lr) if isinstance(lr, (int, float)) else None, moved if isinstance(moved, bool) else None)


def _did(run: Called) -> str:
    stopped = (f"stopped at epoch {run.ran}" if run.ran < run.n_epochs else f"ran all {run.n_epochs} epochs")
    return f"your function reported best_epoch {run.best_epoch} and {stopped}"


def _should(run: Called) -> str:
    best, stop = follow(run.val_loss, run.patience, run.n_epochs, strict)
    rule = "counting only a strictly lower val loss as an improvement"
    if stop is None and run.ran < run.n_epochs:
        return f"{rule} has epoch {best} as the best at epoch {run.ran}, with patience left, and trains on"
    end = f"stops at epoch {stop}" if stop is not None else f"runs all {run.n_epochs} epochs"
    return f"{rule} keeps epoch {best} and {end}"


def _falls(run: Called) -> str:
    falls = [a - b for a, b in zip(run.val_loss, run.val_loss[1:]) if b < a]
    if not falls:
        return "where its val loss never fell"
    low, high = f"{min(falls):.2g}", f"{max(falls):.2g}"
    return f"where its val loss fell by {low if low == high else f'{low} to {high}'} an epoch"


def _cause(runs: list[Called], ways: tuple[Counting, ...]) -> str:
    """The one simple rule that gives every run exactly, counted one way throughout, if there is one: never a guess."""
    def all_given(improves: Rule) -> bool:
        return any(all(reproduces(r, improves, c) for r in runs) for c in ways)

    if all_given(lambda v, best: v <= best):
        return ("Your function's runs are exactly what counting an equal val loss as an improvement gives (<= where "
                "the task has <): on a plateau that resets the count every epoch, so patience never runs out.")
    margins = [m for m in MARGINS if all_given(lambda v, best, m=m: v < best - m)]
    if margins:
        return (f"Your function's runs are exactly what a rule gives that counts a fall only when it exceeds a margin "
                f"(a min_delta anywhere from {margins[0]:.1g} to {margins[-1]:.1g} gives them all). The task counts "
                "every strictly lower val loss as an improvement, however small: drop the margin.")
    return ("Neither counting ties as improvements nor a margin (min_delta) gives these runs exactly, so the grader "
            "names no cause: compare your function's test for an improvement with the task's (a strictly lower val "
            "loss than the best so far).")


@check_kind("strict_improvement",
            plateau=Param(str, doc="a dict export of a run at lr=0 (val_loss, best_epoch, patience, n_epochs, lr, "
                          "weights_moved): every epoch ties the first", export=True),
            creep=Param(str, doc="a dict export of a run whose val loss falls by tiny amounts (val_loss, best_epoch, "
                        "patience, n_epochs, lr)", export=True),
            also=Param(str, "", "a dict export of another run of the function (with patience and n_epochs): a cause "
                       "is named only when it gives this run too", export=True))
def strict_improvement(ctx: CheckContext, plateau: str, creep: str, also: str) -> Outcome:
    """A tie is not an improvement, and every fall is: the task's rule on a plateau and on tiny falls."""
    slow = _called(ctx, creep)
    other, flat, flat_failed = _optional(ctx, also), _optional(ctx, plateau), ""
    if flat is None:
        try:
            _called(ctx, plateau)
        except CheckFailed as e:  # lr=0 is an unusual argument: a function may refuse it, which costs nothing here
            flat_failed = e.message
    ways = countings(other)
    wrong, notes, undecided = [], [], []
    if flat is None:
        undecided.append(f"The grader's run on a plateau (lr=0) could not be used, so ties were not tested: "
                         f"{flat_failed}")
    elif flat.weights_moved is not False:
        undecided.append(f"At lr={flat.lr:g} the weights still moved (or could not be compared), so the run that "
                         "should sit on a plateau did not, and ties were not tested; the check of the lr your "
                         "function uses says more.")
    elif any(reproduces(flat, strict, c) for c in ways):
        notes.append(f"At lr={flat.lr:g} (the val loss never changes) {_did(flat)}: no tie counted as an improvement.")
    else:
        level = f"{flat.val_loss[0]:.4f}" if len(set(flat.val_loss)) == 1 else "the same value"
        wrong.append(f"At lr={flat.lr:g} the weights never change, so every epoch's val loss is {level}: "
                     f"{_did(flat)}, but {_should(flat)} (patience {flat.patience}).")
    where = f"given lr={slow.lr:g}, {_falls(slow)}" if slow.lr is not None else _falls(slow)
    if any(reproduces(slow, strict, c) for c in ways):
        notes.append(f"On a run {where}, {_did(slow)}: every fall counted as an improvement.")
    elif ties_hidden(slow):
        undecided.append(f"On a run {where}, the val losses your function recorded tie the best before them, so "
                         "whether it counted those epochs cannot be told from them (a rounded record looks like "
                         "this).")
    else:
        wrong.append(f"On a run {where}, {_did(slow)}, but {_should(slow)} (patience {slow.patience}).")
    metrics = {"creep_best_epoch": slow.best_epoch, "creep_epochs": slow.ran}
    if flat is not None:
        metrics |= {"plateau_best_epoch": flat.best_epoch, "plateau_epochs": flat.ran}
    if not wrong:
        return Outcome(True, " ".join(notes + undecided),
                       metrics=metrics | ({"undecided": len(undecided)} if undecided else {}))
    plateau_known = flat is not None and flat.weights_moved is False
    known = [slow] + ([flat] if plateau_known else []) + ([other] if other else [])
    return Outcome(False, " ".join(wrong + [_cause(known, ways)] + notes + undecided), fraction=1 - len(wrong) / 2,
                   metrics=metrics)


def _optional(ctx: CheckContext, name: str) -> Called | None:
    """The run ``name``, or None when there is none or it cannot be read."""
    if not name:
        return None
    try:
        return _called(ctx, name)
    except CheckFailed:
        return None
