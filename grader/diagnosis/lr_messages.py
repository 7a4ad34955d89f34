"""Say, by name, how a student's LR list differs from torch's for one Exercise 3 configuration.

Pure functions: no kernel, no files. Step k means entry k of a list (1-based): the LR read
after k calls of ``scheduler.step()``, as in ``reference.schedules.lr_history``. ``diagnose``
returns the most specific explanation, trying them in this order:

1. ``match``: equal to torch's list (rtol 1e-6);
2. ``not_numbers``, ``constant``: not a flat list of numbers; one LR repeated throughout;
3. ``recorded_before_step``, ``one_step_ahead``, ``get_lr``, ``initial_lr_included``: torch's own
   run of the right scheduler, read at the wrong moment or with the wrong call;
4. ``wrong_length``: expected 30, got N; the overlap is diagnosed as well;
5. ``total_steps`` (OneCycleLR), ``t_mult`` (warm restarts), ``wrong_parameter``: parameters of
   the same family that reproduce the list, e.g. "This is StepLR(step_size=5, gamma=0.7);
   expected gamma=0.5";
6. ``other_family``: another scheduler class reproduces the list;
7. ``t_mult`` again for restarts no torch parameters explain (T_mult read as an addition);
8. ``differs``: the first step that differs.

A fit is reported only when torch, run with the fitted parameters, reproduces the list to
rtol 1e-6 (``grader.diagnosis.lr_fitting``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grader.diagnosis.lr_fitting import RTOL, Fit, as_floats, call, changed, close, fit, restarts, same, torch_runs
from reference.schedules import BASE_LR, COURSE_CONFIGS, N_STEPS, SchedulerConfig, lr_history


@dataclass(frozen=True)
class Diagnosis:
    kind: str  # one of the names in the module docstring
    message: str  # what is wrong and what to do, for the student
    fitted: str = ""  # the configuration that reproduces the list, when one was found
    reference: tuple[float, ...] = ()  # torch's list
    student: tuple[float, ...] = ()  # the student's list as numbers (empty when unusable)

    @property
    def ok(self) -> bool:
        return self.kind == "match"


def _g(x: float) -> str:
    return f"{x:.6g}"


def _steps(steps: Sequence[int]) -> str:
    return ", ".join(map(str, steps)) if steps else "no step"


def _peak(config: SchedulerConfig, base_lr: float) -> int:
    run = lr_history(config, int(config.params["total_steps"]), base_lr)
    return int(np.argmax(run)) + 1


def _cycles(T_0: int, T_mult: int, n: int) -> list[int]:
    lengths = [T_0]
    while sum(lengths) < n and T_mult > 1:
        lengths.append(lengths[-1] * T_mult)
    return lengths


def _fit_diagnosis(found: Fit, config: SchedulerConfig, lrs: list[float], ref: list[float], n: int,
                   base_lr: float) -> Diagnosis:
    name = call(found.config)
    if found.config.family != config.family:
        return Diagnosis("other_family", f"This is {name}, a {found.config.family} schedule; expected {config.name}. "
                         "Build the scheduler class named in CONFIGS.", name)
    diffs = changed(found, config, base_lr)
    start = f" on an optimizer starting at lr={_g(found.base_lr)}" if "lr" in diffs else ""
    wanted = ", ".join(f"{k}={v!r}" for k, v in diffs.items())
    text = f"This is {name}{start}; expected {wanted}."
    if "total_steps" in diffs:
        peaks = f"{_peak(found.config, base_lr)} instead of {_peak(config, base_lr)}"
        return Diagnosis("total_steps", f"{text} The LR peaks at step {peaks}: set total_steps to the number of "
                         f"scheduler.step() calls, {n}.", name)
    if "T_mult" in diffs:
        cycles = ", ".join(map(str, _cycles(config.params["T_0"], config.params["T_mult"], n)))
        return Diagnosis("t_mult", f"{text} Your LR restarts at steps {_steps(restarts(lrs))} instead of "
                         f"{_steps(restarts(ref))}: T_mult multiplies each cycle's length ({cycles} steps).", name)
    hint = " Use the values given in CONFIGS."
    if "lr" in diffs:
        hint = (f" Give every scheduler a fresh SGD(..., lr={_g(base_lr)}): an optimizer reused from an earlier "
                "scheduler starts where that one ended.")
    if found.base_lr == base_lr and found.config.name in {c.name for c in COURSE_CONFIGS}:
        hint = " That is another configuration's list: store each list under its own name."
    return Diagnosis("wrong_parameter", text + hint, name)


def _restart_diagnosis(config: SchedulerConfig, lrs: list[float], ref: list[float], n: int) -> Diagnosis | None:
    """Restarts that no torch parameters explain, e.g. cycles growing by T_mult steps instead of T_mult times."""
    mine, want = restarts(lrs), restarts(ref)
    if config.family != "CosineAnnealingWarmRestarts" or not mine or not want or mine == want or mine[0] != want[0]:
        return None
    lengths = [b - a for a, b in zip([0] + mine, mine)]
    cycles = ", ".join(map(str, _cycles(config.params["T_0"], config.params["T_mult"], n)))
    return Diagnosis("t_mult", f"Your LR restarts at steps {_steps(mine)} (cycles of {_steps(lengths)} steps) instead "
                     f"of {_steps(want)}. With T_0={config.params['T_0']}, T_mult={config.params['T_mult']} each "
                     f"cycle is T_mult times as long as the one before ({cycles} steps): T_mult multiplies, it does "
                     "not add. Use torch's CosineAnnealingWarmRestarts with the values in CONFIGS.")


def _explain(config: SchedulerConfig, lrs: list[float], runs: dict, n: int, base_lr: float) -> Diagnosis:
    """Explain a list of the expected length (or the overlap of a list of another length)."""
    ref = runs["after"]
    k = len(lrs)
    if same(lrs, ref):
        return Diagnosis("match", f"Matches torch's {config.family} (rtol {RTOL:g}).")
    if k > 1 and all(close(v, lrs[0]) for v in lrs) and not all(close(v, ref[0]) for v in ref):
        return Diagnosis("constant", f"Your list repeats one LR, {_g(lrs[0])}, at every step, so it never saw the "
                         "schedule. Read optimizer.param_groups[0]['lr'] after each scheduler.step(); "
                         "optimizer.defaults['lr'] and a value saved before the loop never change.")
    initial = _g(runs["initial"][0])
    if same(lrs, runs["before"]):
        return Diagnosis("recorded_before_step", f"Your list is shifted by one step: it starts with the initial LR "
                         f"{initial} and entry k is the LR after k-1 steps. Read the LR after scheduler.step(), "
                         "not before it, so the initial LR is not in the list.")
    if same(lrs, runs["ahead"]):
        return Diagnosis("one_step_ahead", "Your list is one step ahead: entry 1 is the LR after 2 scheduler.step() "
                         "calls. Create the scheduler just before the loop and step it once per iteration, after "
                         "optimizer.step().")
    if same(lrs, runs["get_lr"]):
        return Diagnosis("get_lr", "You read scheduler.get_lr(), which computes a further step from the current LR "
                         "and is not the LR in use. Read scheduler.get_last_lr()[0] or "
                         "optimizer.param_groups[0]['lr'].")
    for family in [config.family] + sorted({c.family for c in COURSE_CONFIGS} - {config.family}):
        found = fit(family, lrs, config, base_lr)
        if found is not None:
            return _fit_diagnosis(found, config, lrs, ref, n, base_lr)
    restart = _restart_diagnosis(config, lrs, ref, n)
    if restart is not None:
        return restart
    i = next((i for i, (a, b) in enumerate(zip(lrs, ref)) if not close(a, b)), min(k, len(ref)) - 1)
    return Diagnosis("differs", f"Step {i + 1} differs: expected {_g(ref[i])}, got {_g(lrs[i])}. Compare your loop "
                     f"with the set-up: a fresh SGD(..., lr={_g(base_lr)}) and scheduler per configuration, then {n} "
                     "times optimizer.step(); scheduler.step(), reading optimizer.param_groups[0]['lr'] after each.")


def diagnose(config: SchedulerConfig, value: object, n: int = N_STEPS, base_lr: float = BASE_LR) -> Diagnosis:
    """The most specific explanation of how ``value`` differs from torch's list for ``config``."""
    runs = torch_runs(config, n, base_lr)
    ref = runs["after"]
    lrs = as_floats(value)
    if isinstance(lrs, str):
        return Diagnosis("not_numbers", f"{lrs[0].upper()}{lrs[1:]}.", reference=tuple(ref))
    if not lrs:
        return Diagnosis("wrong_length", f"Your list is empty; it needs the {n} LRs read after each scheduler.step().",
                         reference=tuple(ref))
    m = len(lrs)
    if m == n:
        found = _explain(config, lrs, runs, n, base_lr)
    elif m == n + 1 and close(lrs[0], runs["initial"][0]) and not same(lrs[:n], ref):
        rest = _explain(config, lrs[1:], runs, n, base_lr)
        found = Diagnosis("initial_lr_included", f"Your list has {m} LRs because it starts with the initial LR "
                          f"{_g(lrs[0])}, read before the first scheduler.step(). Leave it out: record the LR only "
                          f"after each step, {n} values." + ("" if rest.ok else f" The other {n}: {rest.message}"),
                          rest.fitted)
    elif m > n and same(lrs[:n], ref):
        found = Diagnosis("wrong_length", f"Expected {n} LRs, got {m}; the first {n} match torch's, so your loop ran "
                          f"{m} iterations. Run exactly {n}.")
    elif m < n and same(lrs, ref[:m]):
        found = Diagnosis("wrong_length", f"Expected {n} LRs, got {m}; those {m} match torch's first {m}. Run {n} "
                          "iterations and record the LR after each.")
    else:
        k = min(m, n)
        inner = _explain(config, lrs[:k], torch_runs(config, k, base_lr), n, base_lr)
        found = Diagnosis("wrong_length", f"Expected {n} LRs, got {m}. In the first {k}: {inner.message}", inner.fitted)
    return Diagnosis(found.kind, found.message, found.fitted, tuple(ref), tuple(lrs))
