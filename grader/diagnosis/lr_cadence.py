"""Say how often, and when, a training function stepped its scheduler, from what a probe run measured.

Pure functions: no kernel, no torch. The grader's probe hands the function an optimizer and a
scheduler of its own and counts, at each ``scheduler.step()`` call, how many optimizer steps
came before it. The course's convention: one call per epoch, after the epoch's updates, and
``lr_history[k]`` is the LR read after the (k+1)-th call. ``diagnose`` compares the measured
cadence and the recorded list with torch's per-epoch run and names only what the measurement shows:

1. ``own_optimizer``, ``never_stepped``: the given optimizer or scheduler never stepped;
2. ``per_batch``, ``several_per_epoch``, ``next_epoch_start`` (half the points when lr_history is read before
   each call), ``irregular``: not one call per epoch;
3. ``before_updates``: one call per epoch, before the epoch's updates;
4. ``match``;
5. ``step_argument``, ``lr_changed``: the right calls, yet the optimizer's LR is not torch's;
6. the optimizer's LR right, the record read wrong (half the points): ``recorded_before_step``,
   ``initial_lr_included``, ``recorded_per_batch``, ``constant_record``; else ``differs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grader.diagnosis.lr_fitting import close, same

RECORD_ONLY = 0.5  # share of the points when the stepping is right and only the record is read at the wrong moment
WHEN = "once per epoch, after the epoch's updates (after validation), outside the batch loop"
ADVICE = f"Call scheduler.step() {WHEN}."


@dataclass(frozen=True)
class CadenceRun:
    """What the probe measured in one run of the student's function."""

    scheduler: str  # how to name it: "StepLR(step_size=1, gamma=0.5)"
    factor: float | None  # the LR's multiplier per step when it is constant (StepLR with step_size=1), else None
    takes_metric: bool  # ReduceLROnPlateau: step(val_loss) is right
    initial_lr: float
    epochs: int  # epochs the run recorded
    batches: int  # batches per epoch of the probe's loader
    optimizer_steps: int | None  # steps of the optimizer the probe passed; None when not counted
    calls: tuple[int, ...]  # optimizer steps done before each scheduler.step() call
    calls_with_args: int  # calls that passed an argument
    lrs: tuple[float, ...]  # the function's lr_history
    torch_lrs: tuple[float, ...]  # torch's LR after each of `epochs` calls, one per epoch
    final_lr: float | None  # the passed optimizer's LR after the run


@dataclass(frozen=True)
class Cadence:
    kind: str  # one of the names in the module docstring
    message: str
    fraction: float = 0.0

    @property
    def ok(self) -> bool:
        return self.kind == "match"


def _g(values: Sequence[float], n: int = 4) -> str:
    shown = ", ".join(f"{v:.3g}" for v in values[:n])
    return f"[{shown}{', ...' if len(values) > n else ''}]"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _effect(run: CadenceRun, per_epoch: int) -> str:
    """What ``per_epoch`` calls per epoch did to the LR, with the first recorded value against torch's."""
    if run.factor is not None and not run.takes_metric:
        moved = f"the LR was multiplied by {run.factor:g} {_times(per_epoch)} per epoch instead of once"
    else:
        moved = f"the schedule advanced {per_epoch} steps per epoch instead of one"
    if run.lrs and run.torch_lrs:
        moved += (f": after epoch 1 your lr_history records {run.lrs[0]:.3g}, where torch's per-epoch "
                  f"{run.scheduler} gives {run.torch_lrs[0]:.3g}")
    return moved


def _wrong_cadence(run: CadenceRun) -> Cadence | None:
    """The kinds of items 1-3 of the module docstring, or None when it stepped once per epoch after the updates."""
    n, e, b = len(run.calls), run.epochs, run.batches
    counted = f"Your function called scheduler.step() {n} times in {e} epochs of {b} batches"
    if run.optimizer_steps == 0:
        return Cadence("own_optimizer", f"The optimizer the grader passed as optimizer= never stepped in {e} epochs, "
                       "so your function trains with an optimizer of its own. The scheduler changes the LR of the "
                       "optimizer it was built on, the one passed, so the LR your model trains with never followed "
                       "it. When optimizer is given, train with it: optimizer = optimizer or "
                       "optim.Adam(model.parameters(), lr=lr).")
    if n == 0:
        return Cadence("never_stepped", f"Your function never called scheduler.step(): the LR stayed {run.initial_lr:g} "
                       f"for all {e} epochs, where torch's per-epoch {run.scheduler} gives {_g(run.torch_lrs)}. "
                       f"Step the scheduler it is given {WHEN}.")
    if n == e:
        steps = run.optimizer_steps
        if steps and steps % e == 0 and list(run.calls) == [i * (steps // e) for i in range(e)]:
            at = ", ".join(map(str, run.calls))
            return Cadence("before_updates", f"Your function calls scheduler.step() once per epoch, but at the start "
                           f"of each epoch, before its updates (the optimizer had stepped {at} times at the {e} "
                           f"calls), so every epoch trains with the next epoch's LR: epoch 1 already with "
                           f"{run.torch_lrs[0]:.3g} instead of {run.initial_lr:g}. " + ADVICE)
        return None
    steps = run.optimizer_steps
    if steps and n == steps > e and run.calls[0] in (0, 1):
        where = "after" if run.calls[0] == 1 else "before"
        return Cadence("per_batch", f"{counted}: once per batch, {where} each optimizer.step(), so "
                       f"{_effect(run, n // e if n % e == 0 else b)}. " + ADVICE)
    if n % e == 0:
        return Cadence("several_per_epoch", f"{counted}: {_times(n // e)} per epoch, so "
                       f"{_effect(run, n // e)}. " + ADVICE)
    if steps == e * b and e > 1 and list(run.calls) == [i * b for i in range(1, e)]:
        return _next_epoch_start(run)
    return Cadence("irregular", f"{counted}, not once per epoch. " + ADVICE)


def _next_epoch_start(run: CadenceRun) -> Cadence:
    """Calls at the start of epochs 2..n: each epoch trains at torch's per-epoch LR, but the last step never comes."""
    e, b = run.epochs, run.batches
    late = same(list(run.lrs), [run.initial_lr] + list(run.torch_lrs[:-1]))
    record = (f"; lr_history, read before each call, is one epoch behind ({_g(run.lrs)} where torch gives "
              f"{_g(run.torch_lrs)})" if late else "")
    return Cadence("next_epoch_start", f"Your function called scheduler.step() {len(run.calls)} times in {e} epochs, at "
                   f"the start of epochs 2 to {e} (after {', '.join(map(str, run.calls))} optimizer steps, {b} per "
                   f"epoch): each epoch trains at the LR torch's per-epoch {run.scheduler} gives it, but the step "
                   f"after the last epoch never comes{record}. Call scheduler.step() at the end of each epoch, after "
                   "its updates, and record the LR after it.", RECORD_ONLY if late else 0.0)


def _wrong_record(run: CadenceRun) -> Cadence:
    """Stepped once per epoch after the updates: how lr_history relates to the LRs the optimizer had."""
    lrs, ref, e, init = list(run.lrs), list(run.torch_lrs), run.epochs, run.initial_lr
    right = "Your function steps the scheduler once per epoch, after the epoch's updates, as it should"
    if same(lrs, [init] + ref[:-1]):
        return Cadence("recorded_before_step", f"{right}, but it records the LR before scheduler.step(): lr_history "
                       f"starts with the initial LR {init:g} and each entry is one epoch behind ({_g(lrs)} where "
                       f"torch gives {_g(ref)}). Record optimizer.param_groups[0]['lr'] after scheduler.step(), as "
                       "the course does.", RECORD_ONLY)
    if same(lrs, [init] + ref):
        return Cadence("initial_lr_included", f"{right}, but lr_history has {len(lrs)} entries for {e} epochs: it "
                       f"starts with the initial LR {init:g}. Record the LR once per epoch, after scheduler.step(), "
                       "and not before the first epoch.", RECORD_ONLY)
    if run.optimizer_steps and len(lrs) == run.optimizer_steps > e:
        return Cadence("recorded_per_batch", f"{right}, but lr_history has {len(lrs)} entries for {e} epochs, one "
                       "per batch. Append the LR once per epoch, after scheduler.step().", RECORD_ONLY)
    if lrs and all(close(v, init) for v in lrs) and run.final_lr is not None and ref and close(run.final_lr, ref[-1]):
        return Cadence("constant_record", f"{right} (the optimizer's LR ended at {run.final_lr:.3g}, as torch's "
                       f"per-epoch schedule does), but lr_history records the initial LR, {init:g}, in every epoch. "
                       "Record the optimizer's current LR, optimizer.param_groups[0]['lr'], after scheduler.step().",
                       RECORD_ONLY)
    if len(lrs) == e > 1 and same(lrs[:-1], ref[1:]):
        return Cadence("recorded_ahead", f"{right}, but lr_history is one epoch ahead ({_g(lrs)} where torch gives "
                       f"{_g(ref)}): each entry is the LR of the epoch after, as scheduler.get_lr() read after the "
                       "step gives (it computes a further step). Record optimizer.param_groups[0]['lr'] or "
                       "scheduler.get_last_lr()[0] after scheduler.step().", RECORD_ONLY)
    if len(lrs) != e:
        found = f"lr_history has {len(lrs)} entries for {e} epochs"
    else:
        k = next((i for i, (a, b) in enumerate(zip(lrs, ref)) if not close(a, b)), 0)
        found = f"after epoch {k + 1} lr_history records {lrs[k]:.6g}, where torch's {run.scheduler} gives {ref[k]:.6g}"
    return Cadence("differs", f"{right}, but {found}. Record optimizer.param_groups[0]['lr'] once per epoch, right "
                   "after scheduler.step().", RECORD_ONLY)


def _argument_note(run: CadenceRun) -> str:
    if not run.calls_with_args or run.takes_metric:
        return ""
    return (f" Your function also passes an argument to scheduler.step() ({run.calls_with_args} of "
            f"{len(run.calls)} calls): only ReduceLROnPlateau takes one, the val loss; {run.scheduler.split('(')[0]} "
            "reads it as an epoch number and jumps to that point of its schedule. Call step() without arguments.")


def _wrong_lr(run: CadenceRun) -> Cadence | None:
    """Stepped once per epoch after the updates, yet the optimizer's LR is not torch's: what the probe saw do it."""
    ref, lrs = run.torch_lrs, run.lrs
    recorded = f": after epoch 1 lr_history records {lrs[0]:.3g}, where torch gives {ref[0]:.3g}" if lrs else ""
    if run.calls_with_args and not run.takes_metric:
        return Cadence("step_argument", f"Your function calls scheduler.step() once per epoch, after the epoch's "
                       f"updates, but passes it an argument ({run.calls_with_args} of {len(run.calls)} calls): only "
                       f"ReduceLROnPlateau takes one, the val loss; {run.scheduler.split('(')[0]} reads it as an epoch "
                       f"number and jumps to that point of its schedule{recorded}. Call scheduler.step() without "
                       "arguments.")
    if run.final_lr is not None and ref and not close(run.final_lr, ref[-1]):
        return Cadence("lr_changed", f"Your function calls scheduler.step() once per epoch, after the epoch's "
                       f"updates, but the optimizer's LR ended at {run.final_lr:.6g}, where {len(ref)} steps of "
                       f"torch's {run.scheduler} end at {ref[-1]:.6g}: something besides these calls changed the "
                       "optimizer's LR. Let the scheduler alone set it.")
    return None


def diagnose(run: CadenceRun) -> Cadence:
    """The most specific verdict on one probe run (module docstring), with its message and share of the points."""
    found = _wrong_cadence(run)
    if found is not None:
        return Cadence(found.kind, found.message + _argument_note(run), found.fraction)
    if same(list(run.lrs), list(run.torch_lrs)):
        return Cadence("match", f"Your function stepped {run.scheduler} once per epoch, after the epoch's updates "
                       f"({len(run.calls)} calls in {run.epochs} epochs of {run.batches} batches), and lr_history "
                       f"records the LR after each step, as torch gives: {_g(run.lrs)}.", 1.0)
    return _wrong_lr(run) or _wrong_record(run)
