"""Say, by name, how a student's LR list differs from torch's for one Exercise 3 configuration.

Pure functions: no kernel, no files. Step k means entry k of a list (1-based): the LR read
after k calls of ``scheduler.step()``, as in ``reference.schedules.lr_history``. ``diagnose``
returns the most specific explanation, trying them in this order:

1. ``match``: equal to torch's list (rtol 1e-6);
2. ``not_numbers``, ``rebuilt``, ``constant``: not a flat list of numbers; what a scheduler made
   anew in every iteration gives (the cause named from the code when it shows it); one LR
   repeated throughout (what the value is, and the causes it leaves open);
3. ``rounded``: torch's list rounded (to 4 decimal places, say); one of the readings below, rounded,
   is diagnosed as that reading, and the rounding said too;
4. ``recorded_before_step``, ``one_step_ahead``, ``get_lr``, ``get_lr_before``,
   ``initial_lr_included``: torch's own run of the right scheduler, read at the wrong moment or
   with the wrong call (``grader.diagnosis.lr_fitting.readings``);
5. ``value_in_front``: torch's run with one value put in front that the schedule never sets (a plot's
   starting point); ``wrong_length``: expected 30, got N; the overlap is diagnosed as well;
6. ``total_steps`` (OneCycleLR), ``t_mult`` (warm restarts), ``wrong_parameter``: parameters of
   the same family that reproduce the list, e.g. "This is StepLR(step_size=5, gamma=0.7);
   expected gamma=0.5";
7. ``other_family``: another scheduler class reproduces the list;
8. ``t_mult`` again for restarts no torch parameters explain (T_mult read as an addition);
9. ``differs``: the first step that differs.

A fit is reported only when torch, run with the fitted parameters, reproduces the list to
rtol 1e-6 (``grader.diagnosis.lr_fitting``). ``shared_list`` is a diagnosis across
configurations: one list object filled by every configuration's loop (``shared_lists``), and
``steps_per_reading`` and ``not_its_list`` two the family check makes from the exported scheduler:
it stepped k times for every LR recorded, or the list is another configuration's run
(``grader.checks.schedulers``).
``CodeHints`` carries what the notebook's code shows, so a message names a cause only then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grader.diagnosis.lr_fitting import (RTOL, Fit, as_floats, call, changed, clamped, close, fit, rebuilt_runs,
                                        restarts, rounded, same, torch_runs)
from reference.schedules import BASE_LR, COURSE_CONFIGS, N_STEPS, SchedulerConfig, lr_history


def _equal(value, setting) -> bool:
    """A setting as a scheduler's state keeps it: a fraction worked back from its steps is equal to rounding."""
    if isinstance(value, float) and isinstance(setting, (int, float)) and not isinstance(setting, bool):
        return close(value, float(setting))
    return value == setting


@dataclass(frozen=True)
class Stored:
    """The scheduler a notebook stored under a configuration's name, as its exported state shows it."""

    family: str  # its class
    params: dict  # the configuration's settings, as far as its state keeps them
    base_lrs: tuple[float, ...]  # each param group's LR when the scheduler was made (its initial_lr)

    def unlike(self, config: SchedulerConfig) -> dict:
        """The configuration's settings this scheduler was built with other values of."""
        return {k: v for k, v in self.params.items() if k in config.params and not _equal(v, config.params[k])}

    def built_as(self, config: SchedulerConfig) -> bool:
        """Of the configuration's class, with its settings wherever its state keeps them."""
        return (self.family == config.family and any(k in self.params for k in config.params)
                and not self.unlike(config))


@dataclass(frozen=True)
class CodeHints:
    """What the notebook shows beyond the list: places in its code (``grader.checks.code``), empty when the code
    shows nothing, and the scheduler it stored under the configuration's name."""

    rebuilt: str = ""  # a scheduler made inside the loop that steps it, e.g. "code cell 3, line 7: `s = ...`"
    shared: str = ""  # a list made once, before the loop over the configurations, and stored under every name
    epoch: str = ""  # a scheduler.step() given an argument: scheduler.step(epoch)
    stored: Stored | None = None


@dataclass(frozen=True)
class SharedList:
    """One list stored under several names: the runs of those configurations one after another."""

    names: tuple[str, ...]  # in the export's order, which is the order the runs were appended in
    length: int

    def part(self, name: str) -> tuple[int, int] | None:
        """The entries [start, stop) of ``name``'s own run, when the runs are of equal length."""
        k = len(self.names)
        if self.length % k:
            return None
        size = self.length // k
        i = self.names.index(name)
        return i * size, (i + 1) * size


def shared_lists(histories: dict, n: int = N_STEPS) -> dict[str, SharedList]:
    """The names whose lists are one list longer than a run, equal under at least two names."""
    groups: dict[tuple[float, ...], list[str]] = {}
    for name, value in histories.items():
        lrs = as_floats(value) if isinstance(value, (list, tuple)) or hasattr(value, "tolist") else "-"
        if not isinstance(lrs, str) and len(lrs) > n:
            groups.setdefault(tuple(lrs), []).append(name)
    return {name: SharedList(tuple(names), len(lrs)) for lrs, names in groups.items() if len(names) > 1
            for name in names}


def shared_message(group: SharedList, hints: CodeHints = CodeHints()) -> str:
    """What a shared list is and how to fix it, naming where the code makes it when the code shows it."""
    k = len(group.names)
    part = group.part(group.names[0])
    runs = f"{k} runs of {part[1]} LRs" if part else f"the runs of {k} configurations"
    made = (f"Your code makes it once, before the loop over the configurations ({hints.shared}), and every "
            "configuration's loop appends to it." if hints.shared else
            "That is what one list object filled by every configuration's loop and stored under every name gives.")
    return (f"This list is shared: the same list of {group.length} LRs is stored under {k} names, {runs} one after "
            f"another. {made} Make a new list for each configuration, inside the loop over CONFIGS, and store that one "
            "under its name.")


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
                   base_lr: float, stored: Stored | None = None) -> Diagnosis:
    name = call(found.config)
    if found.config.family != config.family:
        fix = ("Build the scheduler class named in CONFIGS." if stored is None or stored.family != config.family else
               f"The scheduler stored under this name is {_a(config.family)}, so the list is not its run: fill each "
               "list from the scheduler you store under its name.")
        return Diagnosis("other_family", f"This is {name}, {_a(found.config.family)} schedule; expected {config.name}. "
                         + fix, name)
    if stored is not None and stored.family != config.family:  # another class that gives the same numbers
        return Diagnosis("other_family", f"Your list is what {name} gives, but the scheduler stored under this name is "
                         f"{_a(stored.family)}, not {_a(config.family)}. Build {config.name} with torch's "
                         f"{config.family} and the values in CONFIGS, and store it under its name.", name)
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
    return Diagnosis("wrong_parameter", f"{text} {_fit_cause(found, config, base_lr, diffs, stored)}", name)


def _a(word: str) -> str:
    """``word`` with its indefinite article: "a StepLR", "an ExponentialLR", "a OneCycleLR" (said "one")."""
    return f"{'an' if word[0] in 'AEIU' else 'a'} {word}"


def _built_with(built: dict, config: SchedulerConfig) -> str:
    values = ", ".join(f"{k}={v!r}" for k, v in built.items())
    keys = list(built)
    swapped = len(keys) == 2 and all(
        all(isinstance(v, (int, float)) for v in (built[a], config.params.get(b))) and close(built[a], config.params[b])
        for a, b in (keys, keys[::-1]))
    order = (f" ({keys[0]} and {keys[1]} hold each other's values: the arguments were given in another order than "
             f"{config.family}'s own, which keywords avoid)" if swapped else "")
    return f"The scheduler stored under this name was built with {values}{order}: pass the values given in CONFIGS."


def _fit_cause(found: Fit, config: SchedulerConfig, base_lr: float, diffs: dict, stored: Stored | None) -> str:
    """Why a fitted configuration differs, from the scheduler stored under the name where it shows it."""
    built = stored.unlike(config) if stored is not None else {}
    if built:
        return _built_with(built, config)
    if "lr" in diffs:
        fresh = f"Give every scheduler a fresh SGD(..., lr={_g(base_lr)})"
        made = stored.base_lrs[0] if stored is not None and stored.base_lrs else None
        if made is not None and close(made, found.base_lr):
            return f"Its optimizer was made with lr={_g(made)}, as its scheduler records. {fresh}, as the set-up says."
        if made is not None and close(made, base_lr):
            return f"{fresh}: an optimizer reused from an earlier scheduler starts where that one ended."
        return (f"{fresh}: an optimizer made with another LR, or one reused from an earlier scheduler (which starts "
                "where that one ended), gives this.")
    if found.base_lr == base_lr and found.config.name in {c.name for c in COURSE_CONFIGS}:
        return "That is another configuration's list: store each list under its own name."
    return "Use the values given in CONFIGS."


def _restart_diagnosis(config: SchedulerConfig, lrs: list[float], ref: list[float], n: int) -> Diagnosis | None:
    """Restarts that no torch parameters explain, e.g. cycles growing by T_mult steps instead of T_mult times."""
    mine, want = restarts(lrs), restarts(ref)
    if config.family != "CosineAnnealingWarmRestarts" or not mine or not want or mine == want or mine[0] != want[0]:
        return None
    lengths = [b - a for a, b in zip([0] + mine, mine)]
    t_0, t_mult = config.params["T_0"], config.params["T_mult"]
    cycles = ", ".join(map(str, _cycles(t_0, t_mult, n)))
    measured = f"Your LR restarts at steps {_steps(mine)} (cycles of {_steps(lengths)} steps) instead of {_steps(want)}"
    added = len(lengths) > 1 and t_mult > 1 and all(b - a == t_mult for a, b in zip(lengths, lengths[1:]))
    if not added:  # nothing in the lengths points at T_mult: say what torch's class gives, and no more
        return Diagnosis("restarts", f"{measured}, where torch's CosineAnnealingWarmRestarts(T_0={t_0}, "
                         f"T_mult={t_mult}) restarts after cycles of {cycles} steps, the last one included. Use "
                         "torch's class with the values in CONFIGS, rather than a schedule built another way.")
    return Diagnosis("t_mult", f"{measured}. With T_0={t_0}, T_mult={t_mult} each cycle is T_mult times as long as the "
                     f"one before ({cycles} steps): T_mult multiplies, it does not add. Use torch's "
                     "CosineAnnealingWarmRestarts with the values in CONFIGS.")


def _rebuilt(config: SchedulerConfig, lrs: list[float], n: int, base_lr: float, hints: CodeHints) -> Diagnosis | None:
    """The list a scheduler made anew in every iteration gives: named as the cause when the code shows it."""
    if not any(same(lrs, run) for run in rebuilt_runs(config, len(lrs), base_lr).values()):
        return None
    constant = all(close(v, lrs[0]) for v in lrs)
    fix = f"Make the optimizer and its scheduler once per configuration, before the loop of {n} steps."
    if hints.rebuilt:
        seen = "repeats one LR at every step" if constant else "never follows torch's schedule"
        return Diagnosis("rebuilt", f"Your list {seen}: your code makes the scheduler inside the loop that steps it "
                         f"({hints.rebuilt}), so every iteration starts a new schedule and steps it once. {fix}")
    if constant:  # one repeated LR has other possible causes: _constant says which
        return None
    return Diagnosis("rebuilt", f"Your list is exactly what a new {config.family} made in every iteration and stepped "
                     "once gives: each iteration starts a new schedule from the optimizer's current LR. " + fix)


def _constant(value: float, runs: dict, base_lr: float) -> Diagnosis:
    """One LR throughout: what the value is and the causes it leaves open."""
    ref, initial = runs["after"], runs["initial"][0]
    never = "the LR read from something that never changes (optimizer.defaults['lr'], a number saved before the loop)"
    if close(value, initial):
        seen = "That is the starting LR: the LR you read never changed. "
        causes = [never, "the LR read from another optimizer than the one the scheduler drives"]
    elif close(value, base_lr):  # OneCycleLR's start is its own (max_lr / div_factor), not the optimizer's lr
        seen = (f"That is the lr the optimizer was made with, which this scheduler replaces with its own from the "
                f"start ({_g(initial)}): the LR you read is not the one the optimizer steps with. ")
        causes = [never]
    elif close(value, ref[0]):
        seen = "That is the LR after one scheduler.step(), as if every value came from a scheduler stepped once. "
        causes = []
    else:
        seen, causes = "", ["the LR read from another optimizer or scheduler than this configuration's"]
    if close(value, ref[0]):
        causes.append("a scheduler (or optimizer) made anew in each iteration")
    return Diagnosis("constant", f"Your list repeats one LR, {_g(value)}, at every step, while torch's goes from "
                     f"{_g(ref[0])} to {_g(ref[-1])}. {seen}The grader cannot tell why from your "
                     f"code; it could be {', or '.join(causes)}. Read optimizer.param_groups[0]['lr'] after each "
                     "scheduler.step(), with the optimizer and its scheduler made once, before the loop.")


def _explain(config: SchedulerConfig, lrs: list[float], runs: dict, n: int, base_lr: float,
             hints: CodeHints = CodeHints()) -> Diagnosis:
    """Explain a list of the expected length (or the overlap of a list of another length)."""
    ref = runs["after"]
    k = len(lrs)
    if same(lrs, ref):
        return Diagnosis("match", f"Matches torch's {config.family} (rtol {RTOL:g}).")
    group = _other_group(config, lrs, base_lr, hints.stored) or _other_start(config, lrs, base_lr, hints.stored)
    if group is not None:
        return group
    rebuilt = _rebuilt(config, lrs, n, base_lr, hints) if k > 1 else None
    if rebuilt is not None:
        return rebuilt
    if k > 1 and all(close(v, lrs[0]) for v in lrs) and not all(close(v, ref[0]) for v in ref):
        built = hints.stored.unlike(config) if hints.stored and hints.stored.family == config.family else {}
        if built:  # its own settings keep it there (a step_size past the run, a gamma of 1): no cause to guess
            return Diagnosis("constant", f"Your list repeats one LR, {_g(lrs[0])}, at every step, while torch's goes "
                             f"from {_g(ref[0])} to {_g(ref[-1])}. {_built_with(built, config)}")
        return _constant(lrs[0], runs, base_lr)
    rounding = next(((reading, how) for reading, run in runs.items() if (how := rounded(lrs, run))), None)
    if rounding is not None:
        return _rounded(config, lrs, runs, *rounding, n, base_lr, hints)
    bound = clamped(lrs, ref)
    if bound is not None:
        kind, value = bound
        moved = f"below {_g(value)} raised" if kind == "floor" else f"above {_g(value)} lowered"
        by_hand = f"{'max' if kind == 'floor' else 'min'}(lr, {_g(value)})"
        return Diagnosis("clamped", f"Your list is torch's {config.family} run with every LR {moved} to {_g(value)}: "
                         f"something sets the LR by hand after scheduler.step() ({by_hand}, say), and the optimizer "
                         "then trains at that LR, not the schedule's. Leave the LR to the scheduler.")
    initial = _g(runs["initial"][0])
    if same(lrs, runs["before"]):
        return Diagnosis("recorded_before_step", f"Your list is shifted by one step: it starts with the initial LR "
                         f"{initial} and entry k is the LR after k-1 steps, as the LR read before scheduler.step() "
                         "gives, or a formula of the step count that starts one step early. Entry k must be the LR "
                         "after k steps (read after scheduler.step()), so the initial LR is not in the list.")
    if same(lrs, runs["ahead"]):
        other = hints.stored.family if hints.stored and hints.stored.family != config.family else ""
        if other:  # made as another class to match: where it drops is its own settings', not a step taken early
            return Diagnosis("one_step_ahead", f"Your list is torch's {config.family} run one step ahead: entry 1 is "
                             "the LR it reaches after 2 scheduler.step() calls. The scheduler stored under this name "
                             f"is a {other}, not a {config.family}, so its own settings say where its LR moves: build "
                             f"this configuration as CONFIGS says, with {config.family}.")
        return Diagnosis("one_step_ahead", "Your list is one step ahead: entry 1 is the LR after 2 scheduler.step() "
                         "calls. Create the scheduler just before the loop and step it once per iteration, after "
                         "optimizer.step().")
    if same(lrs, runs["get_lr"]):
        return Diagnosis("get_lr", "You read scheduler.get_lr(), which computes a further step from the current LR "
                         "and is not the LR in use. Read scheduler.get_last_lr()[0] or "
                         "optimizer.param_groups[0]['lr'].")
    if same(lrs, runs["get_lr_before"]):
        return Diagnosis("get_lr_before", "You read scheduler.get_lr() before each step: get_lr() computes a further "
                         "step from the current LR and is not the LR in use. Read scheduler.get_last_lr()[0] or "
                         "optimizer.param_groups[0]['lr'], after scheduler.step().")
    for family in [config.family] + sorted({c.family for c in COURSE_CONFIGS} - {config.family}):
        found = fit(family, lrs, config, base_lr)
        if found is not None:
            return _fit_diagnosis(found, config, lrs, ref, n, base_lr, hints.stored)
    restart = _restart_diagnosis(config, lrs, ref, n)
    if restart is not None:
        return restart
    i = next((i for i, (a, b) in enumerate(zip(lrs, ref)) if not close(a, b)), min(k, len(ref)) - 1)
    step = f"Step {i + 1} differs: expected {_g(ref[i])}, got {_g(lrs[i])}."
    stored = hints.stored
    if stored is not None and stored.family != config.family:
        return Diagnosis("differs", f"{step} The scheduler stored under this name is {_a(stored.family)}, not "
                         f"{_a(config.family)}: build {config.name} with torch's {config.family}, as CONFIGS says.")
    return Diagnosis("differs", f"{step} Compare your loop with the set-up: a fresh SGD(..., lr={_g(base_lr)}) and "
                     f"scheduler per configuration, then {n} times optimizer.step(); scheduler.step(), reading "
                     "optimizer.param_groups[0]['lr'] after each.")


def _other_group(config: SchedulerConfig, lrs: list[float], base_lr: float, stored: Stored | None) -> Diagnosis | None:
    """The list is the run of another param group than the first (of the first 16), which the stored scheduler also
    drives."""
    for g, lr in enumerate(stored.base_lrs[1:16] if stored is not None else (), start=2):
        if not close(lr, stored.base_lrs[0]) and same(lrs, lr_history(config, len(lrs), lr)):
            return Diagnosis("other_group", f"This is the LR of param group {g} of its optimizer, which starts at "
                             f"lr={_g(lr)}: the set-up's optimizer has one group, SGD(..., lr={_g(base_lr)}), and the "
                             "list is read from it (optimizer.param_groups[0]['lr'], or scheduler.get_last_lr()[0]).")
    return None


def _other_start(config: SchedulerConfig, lrs: list[float], base_lr: float, stored: Stored | None
                 ) -> Diagnosis | None:
    """The list is this configuration's run on an optimizer made with another LR, as the stored scheduler records it
    (a cosine whose eta_min is above that LR rises: no fit of the set-up's LR explains it)."""
    made = stored.base_lrs[0] if stored is not None and stored.base_lrs else None
    if made is None or close(made, base_lr) or not stored.built_as(config):
        return None
    try:
        run = lr_history(config, len(lrs), made)
    except ValueError:
        return None
    if not same(lrs, run):
        return None
    return Diagnosis("wrong_parameter", f"This is {config.name}'s schedule on an optimizer made with lr={_g(made)}, as "
                     f"its scheduler records, where the set-up's starts at lr={_g(base_lr)}. Give every scheduler a "
                     f"fresh SGD(..., lr={_g(base_lr)}), as the set-up says.", call(config))


def _rounded(config: SchedulerConfig, lrs: list[float], runs: dict, reading: str, how: str, n: int, base_lr: float,
             hints: CodeHints) -> Diagnosis:
    """A list that is one of torch's readings, rounded: said as such, with what else is wrong with that reading."""
    fix = ("The grader compares the LRs as read with torch's, to a relative tolerance of 1e-6: store each LR as you "
           "read it, and round only where you print or plot it.")
    if reading == "after":
        return Diagnosis("rounded", f"Your list is torch's {config.family} run rounded to {how}. {fix}")
    inner = _explain(config, runs[reading], runs, n, base_lr, hints)
    return Diagnosis(inner.kind, f"{inner.message} Your values are also rounded to {how}. {fix}", inner.fitted)


def _continues(config: SchedulerConfig, lrs: list[float], base_lr: float) -> bool:
    """Whether ``lrs`` is torch's run of ``config`` for all its length, as a longer loop would give."""
    try:
        return same(lrs, lr_history(config, len(lrs), base_lr))
    except ValueError:  # OneCycleLR cannot run past total_steps
        return False


def _twice_per_step(lrs: list[float], runs: dict) -> str:
    """What a list of two values per step holds, when every second value is torch's list; "" otherwise."""
    after, before = runs["after"], runs["before"]
    if same(lrs[1::2], after) and before and same(lrs[0::2], before):
        return ("Each step's LR comes twice, before and after scheduler.step() (after optimizer.step(), say): every "
                "second value is torch's list.")
    if same(lrs[0::2], after) or same(lrs[1::2], after):
        return "Every second value is torch's list; the others were recorded at another moment of the iteration."
    return ""


# How a message on a value put in front of a list ends: read as the notebook ends, and kept out.
_LEAVE_IT_OUT = ("; the grader reads the list as the notebook ends). Leave it out of the stored list: the LR only "
                 "after each step, {n} values.")


def diagnose(config: SchedulerConfig, value: object, n: int = N_STEPS, base_lr: float = BASE_LR,
             hints: CodeHints = CodeHints()) -> Diagnosis:
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
        found = _explain(config, lrs, runs, n, base_lr, hints)
    elif m == n + 1 and close(lrs[0], runs["initial"][0]) and not same(lrs[:n], ref):
        rest = _explain(config, lrs[1:], runs, n, base_lr, hints)
        found = Diagnosis("initial_lr_included", f"Your list has {m} LRs because it starts with the initial LR "
                          f"{_g(lrs[0])}: read before the first scheduler.step(), or put in front of the list later "
                          f"(by a plot that starts at step 0, say{_LEAVE_IT_OUT.format(n=n)}"
                          + ("" if rest.ok else f" The other {n}: {rest.message}"), rest.fitted)
    elif m == n + 1 and same(lrs[1:], ref):
        found = Diagnosis("value_in_front", f"Your list has {m} LRs: the last {n} are torch's list, with {_g(lrs[0])} "
                          f"in front of them, which is not an LR this schedule sets (it starts at "
                          f"{_g(runs['initial'][0])}). A value put in front of the list after the run gives this (a "
                          f"plot that starts at step 0 with the optimizer's lr, say{_LEAVE_IT_OUT.format(n=n)}")
    elif m > n and same(lrs[:n], ref) and _continues(config, lrs, base_lr):
        found = Diagnosis("wrong_length", f"Expected {n} LRs, got {m}; the first {n} match torch's, so your loop ran "
                          f"{m} iterations. Run exactly {n}.")
    elif m > n and same(lrs[:n], ref):
        found = Diagnosis("wrong_length", f"Expected {n} LRs, got {m}; the first {n} match torch's, but the other "
                          f"{m - n} are not its next steps, so they came from elsewhere than this run (more than one "
                          f"value recorded per step, or a list that other runs also fill). Record exactly the {n} LRs "
                          "of this configuration's run.")
    elif m < n and same(lrs, ref[:m]):
        found = Diagnosis("wrong_length", f"Expected {n} LRs, got {m}; those {m} match torch's first {m}. Run {n} "
                          "iterations and record the LR after each.")
    elif m == 2 * n and (twice := _twice_per_step(lrs, runs)):
        found = Diagnosis("wrong_length", f"Expected {n} LRs, got {m}: two per iteration. {twice} Record the LR "
                          "once per iteration, after scheduler.step().")
    elif m > n and m % n == 0 and same(lrs[-n:], ref):
        found = Diagnosis("wrong_length", f"Expected {n} LRs, got {m}: {m // n} runs of {n}, and the last {n} are "
                          f"torch's list for this configuration. The {m - n} before them are not this run's: a list "
                          "carried over from the configurations before it, never emptied, gives this. Make a new list "
                          "for each configuration.")
    else:
        k = min(m, n)
        inner = _explain(config, lrs[:k], torch_runs(config, k, base_lr), n, base_lr, hints)
        found = Diagnosis("wrong_length", f"Expected {n} LRs, got {m}. In the first {k}: {inner.message}", inner.fitted)
    return Diagnosis(found.kind, found.message, found.fitted, tuple(ref), tuple(lrs))


def diagnose_shared(config: SchedulerConfig, value: object, group: SharedList, hints: CodeHints = CodeHints(),
                    n: int = N_STEPS) -> Diagnosis:
    """A list shared with other configurations: that, and what is wrong with this configuration's own part."""
    lrs = as_floats(value)
    message = shared_message(group, hints)
    part = group.part(config.name)
    own = diagnose(config, lrs[part[0]:part[1]], n, hints=hints) if part and not isinstance(lrs, str) else None
    if own is not None and not own.ok:
        message += f" In this configuration's own part (entries {part[0] + 1}-{part[1]}): {own.message}"
    return Diagnosis("shared_list", message, own.fitted if own else "", tuple(lr_history(config, n)),
                     tuple(lrs) if not isinstance(lrs, str) else ())
