"""Exercise 3's checks: the twelve LR lists against torch, the exported schedulers replayed, the step order.

- ``lr_family``: the course configurations of one scheduler class, each list compared with
  torch's own run (``reference.schedules.lr_history``, rtol 1e-6) and a mismatch explained
  by ``grader.diagnosis.lr_messages``; partial credit per configuration. ``details["curves"]`` holds
  ``{name: {"reference": [...], "student": [...], "diagnosis": kind}}`` for the feedback plot
  (``grader.render.lr_plots.lr_comparison_figure``). A cause is named from the code only where
  ``grader.checks.code`` shows it (a scheduler made inside the loop that steps it, one list
  shared by all configurations).
- ``scheduler_replay``: every exported scheduler is rebuilt here from its class name, its
  state_dict and its optimizer's first param group, stepped on a fresh SGD, and read every way
  ``grader.diagnosis.lr_fitting.readings`` knows; the reported list must be one of the readings
  the spec accepts (by default every reading of a run of exactly 30 steps: which one it was is
  ``lr_family``'s business, not this check's). Only the torch classes in ``REBUILD`` are rebuilt;
  the exported class and module names are looked up in that table and never imported. A list
  typed in by hand has no scheduler behind it and fails.
- ``step_order``: read from the code by data flow (``grader.checks.code``), every loop that steps
  a scheduler must call ``optimizer.step()`` before ``scheduler.step()``. The LR values come out
  the same either way, so only the code can show this mistake; where the code cannot be followed,
  the check says so and gives the points. One thing the run shows instead: an exported scheduler
  whose own optimizer never stepped after it was made (torch's record on the optimizer) was stepped
  after another optimizer.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import math
from collections.abc import Callable

from grader import source_trees
from grader.checks.base import CheckContext, CheckFailed, Outcome, as_curve, describe
from grader.checks.code import CodeReport, read_code, step_orders
from grader.checks.data import data_problem
from grader.checks.mnist import OTHER_LABELS, SLACK_IMAGES, rounding
from grader.checks.models import chance_level, measured_accuracy, repeated_calls, scheduler_given_values
from grader.checks.registry import Param, check_kind
from grader.diagnosis.lr_fitting import READINGS, SAME_RUN, as_floats, call, clamped, close, rounded, same
from grader.diagnosis.lr_fitting import readings as read_run
from grader.diagnosis.lr_messages import (CodeHints, Diagnosis, SharedList, Stored, diagnose, diagnose_shared,
                                          shared_lists, shared_message)
from grader.kernel.kernel_probe import MAX_CALLS
from grader.loading.kinds import whole_number
from grader.loading.values import ModelValue, OptimizerExport, SchedulerExport
from reference.schedules import COURSE_CONFIGS, N_STEPS, SchedulerConfig, lr_history

__all__ = ["ReplayError", "lr_family", "replay", "replay_readings", "scheduler_replay", "step_order", "step_orders"]

TORCH_MODULE = "torch.optim.lr_scheduler"
MAX_MILESTONES = 1000
MAX_GROUPS = 16  # param groups replayed for a list that is not the first group's: a state is the student's data
MAX_PLOTTED = 100  # LRs of one list kept in the details: enough to plot, bounded in the gradebook


def code_hints(report: CodeReport) -> CodeHints:
    """The places in the code that show a cause, for the diagnosis messages."""
    return CodeHints(rebuilt=report.rebuilt[0].where() if report.rebuilt else "",
                     shared=report.shared[0].where() if report.shared else "",
                     epoch=report.epochs[0].where() if report.epochs else "")


# --- lr_family ---------------------------------------------------------------------------


def _missing(name: str, histories: dict, export: str, run_error: str = "") -> str:
    # Another configuration's own name is no misspelling of this one, however close: it is that one's entry.
    names = {c.name for c in COURSE_CONFIGS}
    keys = [k for k in histories if isinstance(k, str) and k not in names]
    near = difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
    hint = f' (the closest key is "{near[0]}")' if near else ""
    if run_error and not near:  # the loop stopped before this configuration: its key was never written
        return (f'`{export}` has no entry "{name}": your notebook hit an error before it was filled '
                f"({run_error.rstrip('.')}).")
    return f'`{export}` has no entry "{name}"{hint}. Use the names in CONFIGS as keys, exactly as written.'


@check_kind(
    "lr_family",
    figure="lr_curves",
    export=Param(str, "lr_histories", "the export holding {configuration name: list of LRs}", export=True),
    family=Param(str, doc="a scheduler class of the course configurations, e.g. 'StepLR'",
                 choices=lambda: {c.family for c in COURSE_CONFIGS}),
    schedulers=Param(str, "", "the exported schedulers (scheduler_dict): a list read once every few steps of its "
                     "scheduler is named from their step counts", export=True),
)
def lr_family(ctx: CheckContext, export: str, family: str, schedulers: str = "") -> Outcome:
    """One scheduler family's configurations against torch's own runs (rtol 1e-6), each mistake named."""
    histories = ctx.value(export, "dict")
    exported = ctx.exports.values.get(schedulers) if schedulers else None
    configs = [c for c in COURSE_CONFIGS if c.family == family]
    curves: dict[str, dict] = {}
    problems: dict[str, list[str]] = {}  # one message per diagnosis, naming every configuration it fits
    hints = code_hints(read_code(ctx.code_cells))
    shared = shared_lists(histories, N_STEPS)
    for config in configs:
        value = histories.get(config.name)
        if config.name in shared:
            found = diagnose_shared(config, value, shared[config.name], hints)
        elif isinstance(value, (list, tuple)) or hasattr(value, "tolist"):  # a tensor arrives as a tensor
            scheduler = exported.get(config.name) if isinstance(exported, dict) else None
            own = dataclasses.replace(hints, stored=_stored(scheduler))
            found = _explained_by_scheduler(diagnose(config, value, hints=own), config, scheduler, own)
        elif config.name in histories:
            found = Diagnosis("not_numbers", f"It must be a list of {N_STEPS} numbers, but it is {describe(value)}.",
                              reference=tuple(lr_history(config)))
        else:
            found = Diagnosis("missing", _missing(config.name, histories, export, ctx.run_error),
                              reference=tuple(lr_history(config)))
        curves[config.name] = {"reference": list(found.reference), "student": list(found.student[:MAX_PLOTTED]),
                               "diagnosis": found.kind}
        if not found.ok:
            problems.setdefault(found.message, []).append(config.name)
    matched = len(configs) - sum(len(names) for names in problems.values())
    metrics = {"matched": matched, "configs": len(configs)}
    details = {"family": family, "curves": curves}
    if not problems:
        return Outcome(True, f"All {len(configs)} {family} lists match torch's own scheduler (rtol 1e-6).",
                       metrics=metrics, details=details)
    text = " ".join(f"{', '.join(names)}: {message}" for message, names in problems.items())
    return Outcome(False, f"{matched}/{len(configs)} {family} lists match torch's. {text}",
                   fraction=matched / len(configs), metrics=metrics, details=details)


def _stored(scheduler) -> Stored | None:
    """What an exported scheduler shows of how it was built, for the family messages; None for anything else."""
    if not isinstance(scheduler, SchedulerExport):
        return None
    base = scheduler.state.get("base_lrs")
    lrs = tuple(float(v) for v in base if type(v) in (int, float)) if isinstance(base, list) else ()
    params = {k: v for k, v in scheduler.state.items() if not isinstance(v, (dict, list))}
    phases = scheduler.state.get("_schedule_phases")
    if scheduler.cls == "OneCycleLR" and isinstance(phases, list) and phases and isinstance(phases[0], dict) \
            and type(phases[0].get("end_step")) in (int, float) and type(params.get("total_steps")) is int:
        # OneCycleLR keeps pct_start only as where its first phase ends: pct_start * total_steps - 1.
        params["pct_start"] = (phases[0]["end_step"] + 1) / params["total_steps"]
    return Stored(scheduler.cls, params, lrs if len(lrs) == len(base or ()) else ())


def _explained_by_scheduler(found: Diagnosis, config: SchedulerConfig, scheduler,
                            hints: CodeHints = CodeHints()) -> Diagnosis:
    """``found``, unless the configuration's own exported scheduler, built as the configuration says, shows what a fit
    of other parameters would blame instead (settings changed to match, such as a OneCycleLR's total_steps, keep the
    fit's diagnosis):

    - it was given epochs, scheduler.step(epoch) (``_epochs_given``);
    - it stepped a whole multiple of the LRs recorded: the loop read one LR every k steps; or a whole fraction of them:
      the loop read k LRs per step (a constant list too, where the schedule does not move over those steps);
    - the list is another configuration's own run: the list stored under this name is not its scheduler's.
    """
    n = len(found.student)
    if found.ok or not n or hints.stored is None or not hints.stored.built_as(config):
        return found
    given = _epochs_given(scheduler, n, hints)
    if given:
        shifted = (" Counted from 0, entry k is the LR of epoch k - 1, so your list starts with the initial LR."
                   if scheduler.state["last_epoch"] == n - 1 else "")
        return dataclasses.replace(found, kind="epoch_given", message=(
            f"{given[0].upper()}{given[1:]}. step(epoch) moves the schedule to the epoch given rather than one step "
            f"on (torch deprecates it).{shifted} Call scheduler.step() with no argument."))
    stepped = scheduler.state.get("last_epoch")
    if isinstance(stepped, int) and stepped >= 2 * n and stepped % n == 0:
        k = stepped // n
        return dataclasses.replace(found, kind="steps_per_reading", message=(
            f"Its scheduler stepped {stepped} times for the {n} LRs recorded: {k} scheduler.step() calls per LR read "
            f"(once per batch, say), so the list runs through the schedule {k} times as fast. Record the LR after "
            "every scheduler.step(), one step per LR."))
    values = found.student
    if found.kind != "rebuilt" and isinstance(stepped, int) and 2 <= stepped < n and n % stepped == 0 and all(
            close(v, values[i - i % (n // stepped)]) for i, v in enumerate(values)) and not all(
            close(v, values[0]) for v in values):
        k = n // stepped
        return dataclasses.replace(found, kind="readings_per_step", message=(
            f"Its scheduler stepped {stepped} times for the {n} LRs recorded, and the list holds {stepped} runs of "
            f"{k} equal LRs: {k} LRs read per scheduler.step() (read once per batch while it steps once per epoch, "
            f"say). Step the scheduler once per LR you record, {n} times."))
    if found.kind != "rebuilt" and isinstance(stepped, int) and 2 <= stepped < n and n % stepped == 0 and all(
            close(v, values[0]) for v in values) and all(close(v, values[0]) for v in found.reference[:stepped - 1]):
        # A constant list is every schedule's over steps it does not move in: the counts still show the readings.
        k = n // stepped
        return dataclasses.replace(found, kind="readings_per_step", message=(
            f"Its scheduler stepped {stepped} times for the {n} LRs recorded: {k} LRs read per scheduler.step() "
            f"(read once per batch while it steps once per epoch, say), and over its first {stepped - 1} steps "
            f"torch's schedule keeps {values[0]:.6g}, so your list never changed. Step the scheduler once per LR you "
            f"record, {n} times."))
    if found.kind == "differs":
        try:
            rebuilt, runs = replay_readings(scheduler, n)
        except ReplayError:
            rebuilt, runs = "", {}
        if runs and same(list(values), runs["after"]):
            ref = found.reference
            i = next((i for i, (a, b) in enumerate(zip(values, ref)) if not close(a, b)), 0)
            return dataclasses.replace(found, kind="built_otherwise", message=(
                f"Step {i + 1} differs: expected {ref[i]:.6g}, got {values[i]:.6g}. Replayed from its state, the "
                f"scheduler stored under this name gives exactly your list ({rebuilt}): it was built with a setting "
                f"CONFIGS does not give for "
                f"{config.name} (three_phase, anneal_strategy, a warm-up: settings that change the schedule's "
                "shape). Build it with the values in CONFIGS and torch's defaults for the rest."))
    other = next((c.name for c in COURSE_CONFIGS if c.name != config.name and found.fitted in (c.name, call(c))), None)
    if other is not None and found.kind in ("other_family", "wrong_parameter"):
        return dataclasses.replace(found, kind="not_its_list", message=(
            f"This list is {other}'s, though the scheduler stored under this name is a {config.family} built as "
            "this configuration says: the list is not the one its scheduler made. One list object stored under "
            "every name (emptied and refilled for each configuration, say) shows the last configuration's LRs "
            "under all of them: make a new list for each configuration."))
    return found


# --- scheduler_replay ----------------------------------------------------------------------


class ReplayError(ValueError):
    """The exported scheduler cannot be rebuilt; the message says why, for the student."""


def _num(source: dict, key: str, integer: bool = False) -> int | float:
    value = source.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReplayError(f"its state has no usable `{key}` (got {value!r:.40})")
    if integer and not float(value).is_integer():
        raise ReplayError(f"its `{key}` must be a whole number, got {value!r}")
    return int(value) if integer else value


def _milestones(state: dict, group: dict) -> dict:
    counts = state.get("milestones")
    if not isinstance(counts, dict) or len(counts) > MAX_MILESTONES:
        raise ReplayError("its state has no usable `milestones`")
    steps = []
    for step, count in counts.items():
        if isinstance(step, bool) or not isinstance(step, int) or not isinstance(count, int) or not 0 < count <= 100:
            raise ReplayError("its `milestones` are not whole numbers")
        steps += [step] * count
    return {"milestones": sorted(steps), "gamma": _num(state, "gamma")}


def _one_cycle(state: dict, group: dict) -> dict:
    """OneCycleLR keeps max_lr, initial_lr and min_lr in the param group and pct_start in its phases."""
    phases = state.get("_schedule_phases")
    if not isinstance(phases, list) or len(phases) not in (2, 3) or not isinstance(phases[0], dict):
        raise ReplayError("its state has no usable `_schedule_phases`")
    total = _num(state, "total_steps", integer=True)
    peak, initial, low = _num(group, "max_lr"), _num(group, "initial_lr"), _num(group, "min_lr")
    if total <= 0 or initial <= 0 or low <= 0:
        raise ReplayError("its total_steps and LRs must be positive")
    anneal = state.get("_anneal_func_type", "cos")
    if anneal not in ("cos", "linear"):
        raise ReplayError(f"its anneal strategy {anneal!r:.40} is not 'cos' or 'linear'")
    return {"max_lr": peak, "total_steps": total, "pct_start": (_num(phases[0], "end_step") + 1) / total,
            "div_factor": peak / initial, "final_div_factor": initial / low, "anneal_strategy": anneal,
            "three_phase": len(phases) == 3, "cycle_momentum": False}  # momentum does not change the LR


def _args(*spec: str) -> Callable[[dict, dict], dict]:
    """Constructor arguments read from the state by name; a leading '#' marks a whole number."""
    return lambda state, group: {k.lstrip("#"): _num(state, k.lstrip("#"), k.startswith("#")) for k in spec}


# torch.optim.lr_scheduler classes the grader rebuilds, by name, with how to read their arguments from the state.
REBUILD: dict[str, Callable[[dict, dict], dict]] = {
    "StepLR": _args("step_size", "gamma"),  # torch takes a fractional step_size (last_epoch // it still counts)
    "MultiStepLR": _milestones,
    "ExponentialLR": _args("gamma"),
    "CosineAnnealingLR": _args("T_max", "eta_min"),
    "CosineAnnealingWarmRestarts": _args("#T_0", "#T_mult", "eta_min"),
    "ConstantLR": _args("factor", "#total_iters"),
    "LinearLR": _args("start_factor", "end_factor", "#total_iters"),
    "PolynomialLR": _args("#total_iters", "power"),
    "OneCycleLR": _one_cycle,
}


def _group(export: SchedulerExport, group: int = 0) -> dict:
    optimizer = export.optimizer
    if not isinstance(optimizer, OptimizerExport) or len(optimizer.param_groups) <= group:
        raise ReplayError("it was exported without its optimizer")
    return optimizer.param_groups[group]


def replay_readings(export: SchedulerExport, n: int = N_STEPS, start: float | None = None,
                    group: int = 0) -> tuple[str, dict[str, list[float] | None]]:
    """(the rebuilt call, every reading of ``n`` steps of a fresh copy, as ``lr_fitting.readings`` names them).

    ``start``: the copy is made on an optimizer already at that LR, its initial LR still the exported one, as an
    optimizer reused from an earlier scheduler is. ``group``: the run of that param group of its optimizer.
    """
    # A class of the notebook's on one of torch's is replayed as that one: a list its own code changed will differ.
    own = export.module != TORCH_MODULE
    torch_cls = export.torch_base if own else export.cls
    if torch_cls not in REBUILD:
        where = f" from `{export.module}`" + (f", built on torch's {torch_cls}" if torch_cls else "") if own else ""
        raise ReplayError(f"it is a `{export.cls}`{where}; the grader replays only torch's own {', '.join(REBUILD)}")
    import torch
    from torch.optim import lr_scheduler

    cls, read = getattr(lr_scheduler, torch_cls), REBUILD[torch_cls]
    state = export.state
    base = state.get("base_lrs")
    if not isinstance(base, list) or len(base) <= group:
        raise ReplayError("its state has no `base_lrs`")
    args = read(state, _group(export, group))
    try:
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=_num({"lr": base[group]}, "lr"))
        if start is not None:
            optimizer.param_groups[0].update(initial_lr=base[group], lr=start)
        runs = read_run(optimizer, cls(optimizer, **args), n)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError) as e:
        raise ReplayError(f"torch refuses its settings ({e})") from None
    if len(runs["after"]) < n:
        raise ReplayError(f"torch refuses to step it {n} times")
    shown = {k: v for k, v in args.items() if k not in ("cycle_momentum", "three_phase") or v}
    rebuilt = call(SchedulerConfig(torch_cls, shown))
    return (f"{rebuilt} (torch's class under your {export.cls})" if own else rebuilt), runs


def replay(export: SchedulerExport, n: int = N_STEPS) -> tuple[str, float, list[float]]:
    """(the rebuilt call, the LR before any step, the LR after each of ``n`` steps) of a fresh copy."""
    rebuilt, runs = replay_readings(export, n)
    return rebuilt, runs["initial"][0], runs["after"]


def _epochs_given(scheduler: SchedulerExport, n: int, hints: CodeHints) -> str:
    """Why a scheduler's epoch is not its ``n`` steps when it was given epochs, ``scheduler.step(epoch)``; else "".

    Measured where torch counts the step() calls (``_step_count``, one more than the calls); from the code where it
    keeps no count (CosineAnnealingWarmRestarts).
    """
    last, calls = scheduler.state.get("last_epoch"), scheduler.state.get("_step_count")
    if type(last) is not int or last == n or not 0 <= last <= n:
        return ""
    if type(calls) is int and calls >= 1:
        return (f"its scheduler.step() ran {n} times, yet its schedule stands at epoch {last}: the loop passes an "
                "epoch to step() (scheduler.step(epoch))") if calls - 1 == n else ""
    if hints.epoch:
        return (f"its schedule stands at epoch {last}, not {n}, and your code passes an argument to scheduler.step() "
                f"({hints.epoch})")
    return ""


def _stepped(last: object, n: int, hints: CodeHints) -> str:
    done = "it was never stepped" if last == 0 else "it was stepped once" if last == 1 else \
        f"it was stepped {last} times, not {n}"
    if last == 1 and hints.rebuilt:
        return (f"its last_epoch is 1: {done}. Your code makes the scheduler inside the loop that steps it "
                f"({hints.rebuilt}), so the one you store has seen one step. Make it once, before that loop")
    return f"its last_epoch is {last!r:.20}: {done}. Store each scheduler after exactly {n} steps"


def _backing_problem(reported: object, value: object, n: int, accepted: list[str], hints: CodeHints,
                     expected: list[float] | None = None, family: str = "") -> tuple[str | None, str]:
    """(why ``value`` does not show that ``reported`` came from a scheduler run, or None; the reading it matched).

    ``expected``: torch's list for the configuration the entry is stored under, to tell a right list stored beside
    another configuration's scheduler from a list that no scheduler made.
    """
    if value is None:
        return ("no scheduler is stored under this name, so nothing shows the list came from a scheduler run. "
                "Store the scheduler you stepped, e.g. schedulers[name] = scheduler"), ""
    if not isinstance(value, SchedulerExport):
        return f"the entry is {describe(value)}, not a scheduler", ""
    last = value.state.get("last_epoch")
    if last is None:  # ChainedScheduler keeps none: its members do
        return (f"its state keeps no last_epoch ({value.cls} keeps none of its own), so the grader cannot replay "
                "it: store the scheduler itself, built as CONFIGS says"), ""
    if last != n and not _epochs_given(value, n, hints):
        return _stepped(last, n, hints), ""
    try:
        rebuilt, runs = replay_readings(value, n)
    except ReplayError as e:
        build = f". Build this configuration with torch's {family}, as CONFIGS says" if family and value.cls != family \
            else ""
        return f"it cannot be verified: {e}{build}", ""
    # get_last_lr()'s one-element lists are that run read as it gives it: the family checks take its points, not this.
    single = isinstance(reported, (list, tuple)) and bool(reported) and all(
        isinstance(v, list) and len(v) == 1 for v in reported)
    lrs = as_floats([v[0] for v in reported] if single else reported)
    if isinstance(lrs, str):
        return "there is no list of numbers to compare with it", ""
    run = runs["after"]
    other = _other_group(value, lrs, n, accepted) if _reading(lrs, runs, accepted) is None else None
    if other is not None:  # another param group's run is still this scheduler's
        return None, other
    start = _reused_at(value, lrs, n, run) if not same(lrs, run) else None
    if start is not None and expected is not None and same(lrs, expected):
        # The configuration's own run, from an optimizer at its LR: set after the scheduler was made, which then
        # recorded another initial LR. The list is this scheduler's run all the same.
        return None, "after"
    if start is not None:
        return (f"replayed on an optimizer already at lr={start:.6g} when the scheduler first stepped, {rebuilt} "
                f"gives your list, though the scheduler records an initial LR of {value.state['base_lrs'][0]:.6g}: "
                "an earlier scheduler on the same optimizer left its LR there, or the LR was set by hand after the "
                "scheduler was made. Give each scheduler a fresh optimizer, made with the LR the configuration "
                "starts from"), ""
    current = _group(value).get("lr")
    ends = runs["initial"][last:last + 1]  # after n steps, or at the last epoch it was given
    if isinstance(current, (int, float)) and ends and not same([current], ends):
        at = f"{n} steps of {rebuilt} end" if last == n else f"{rebuilt} at epoch {last} is"
        if not value.calls and value.calls is not None:  # its last_epoch came from a state, not from steps
            return (f"its optimizer is at lr={current:.6g}, but {at} at {ends[0]:.6g}: the stored scheduler never "
                    f"stepped in the run, and its state (last_epoch {last}) was loaded onto an optimizer that did "
                    "not get the state that goes with it. Store the scheduler that ran, or load the optimizer's "
                    "state_dict too"), ""
        reading = _reading(lrs, runs, accepted)
        if reading is not None:  # the list is this scheduler's own run; what moved the optimizer after it, the
            return None, reading  # lists that run shows wrong lose in their family's check
        return (f"its optimizer is at lr={current:.6g}, but {at} at {ends[0]:.6g}: something else changed that "
                "optimizer's LR, such as another scheduler on the same optimizer. Give each scheduler a fresh "
                "optimizer"), ""
    reading = _reading(lrs, runs, accepted)
    if reading is not None:
        return None, reading
    if expected is not None and same(lrs, expected):
        return (f"the list is torch's run of this configuration, but the scheduler stored under its name replays as "
                f"{rebuilt}, another configuration's: store under each name the scheduler that made its list"), ""
    k = next((i for i, (a, b) in enumerate(zip(lrs, run)) if not same([a], [b])), min(len(lrs), n))
    theirs = f"{lrs[k]:.6g}" if k < len(lrs) else "nothing"
    ours = f"{run[k]:.6g}" if k < n else "nothing"
    return (f"replayed from its state, {rebuilt} gives {ours} at step {k + 1}, but your list has {theirs}: "
            "the list did not come from this scheduler. Fill each list from the scheduler you store under its name"), ""


def _other_group(export: SchedulerExport, lrs: list[float], n: int, accepted: list[str]) -> str | None:
    """"group_k" when ``lrs`` is a reading of the run of param group k (of the first 16) with another initial LR than
    the first group's; None otherwise."""
    base = export.state["base_lrs"]
    for group in range(1, min(len(base), MAX_GROUPS)):
        if base[group] == base[0]:  # the same run as the first group's, which was read already
            continue
        try:
            if _reading(lrs, replay_readings(export, n, group=group)[1], accepted) is not None:
                return f"group_{group + 1}"
        except ReplayError:
            continue
    return None


def _reading(lrs: list[float], runs: dict, accepted: list[str]) -> str | None:
    """Which accepted reading of a replayed run ``lrs`` is: the same run read before the step, through get_lr(), with
    the initial LR in front, or rounded ("rounded"), is still that run; None when it is none of them."""
    reading = next((r for r in accepted if same(lrs, runs.get(r))), None)
    if reading is None and any(rounded(lrs, runs.get(r)) for r in accepted):  # the family checks say it is rounded
        reading = "rounded"
    if reading is None and clamped(lrs, runs.get("after")):  # the run, its LR then set by hand: the family checks say
        reading = "clamped"
    after = runs.get("after") or []
    if reading is None and "initial" in accepted and len(lrs) == len(after) + 1 and same(lrs[1:], after):
        reading = "initial"  # the run with another value in front than its initial LR: the family checks name it
    return reading


def _reused_at(export: SchedulerExport, lrs: list[float], n: int, run: list[float]) -> float | None:
    """The LR the optimizer was at when ``export`` was made on it, when that explains ``lrs``: else None. ``run`` is
    its replay from its own initial LR.

    A scheduler that multiplies the current LR (StepLR, CosineAnnealingLR's recursive form) continues from
    whatever LR its optimizer holds, and its run is affine in that LR: with one more replay, two runs solve for it
    from the first entry, and a third, from there, must give the whole list.
    """
    base = export.state["base_lrs"][0]
    try:
        first = [run[0], replay_readings(export, n, base / 2)[1]["after"][0]]
        if math.isclose(first[0], first[1], rel_tol=1e-9) or not lrs:
            return None  # the run does not depend on the LR it starts from (OneCycleLR, warm restarts)
        start = base + (lrs[0] - first[0]) * (base / 2 - base) / (first[1] - first[0])
        if not (math.isfinite(start) and start > 0) or math.isclose(start, base, rel_tol=1e-6):
            return None
        return start if same(lrs, replay_readings(export, n, start)[1]["after"]) else None
    except (ReplayError, IndexError):
        return None


def _readings_problem(value: list) -> str | None:
    unknown = [v for v in value if v not in READINGS]
    return f"unknown readings {unknown}; expected some of {', '.join(READINGS)}" if unknown else None


@check_kind(
    "scheduler_replay",
    export=Param(str, "lr_histories", "the export holding {configuration name: list of LRs}", export=True),
    schedulers=Param(str, "schedulers", "the export holding {configuration name: stepped scheduler}", export=True),
    readings=Param(list, list(SAME_RUN), "the readings of the scheduler's run a list may be (lr_fitting.READINGS)",
                   of=str, check=_readings_problem),
)
def scheduler_replay(ctx: CheckContext, export: str, schedulers: str, readings: list | tuple = SAME_RUN) -> Outcome:
    """Each reported list must be a reading, accepted by the spec, of its exported scheduler replayed by the grader."""
    histories = ctx.value(export, "dict")
    stored = ctx.value(schedulers, "scheduler_dict")
    hints = code_hints(read_code(ctx.code_cells))
    shared = shared_lists(histories, N_STEPS)
    configs = {c.name: c for c in COURSE_CONFIGS}
    names = list(configs)
    problems: dict[str, list[str]] = {}  # one message per problem, naming every configuration it affects
    read: dict[str, int] = {}
    for name in names:
        reading = ""
        if name not in histories:
            problem = f"`{export}` has no list for it, so there is nothing to verify"
        elif name in shared:
            problem = _shared_problem(shared[name], hints)
        else:
            problem, reading = _backing_problem(histories[name], stored.get(name), N_STEPS, readings, hints,
                                                lr_history(configs[name], N_STEPS), configs[name].family)
        if problem:
            problems.setdefault(problem, []).append(name)
        elif reading != "after":
            read[reading] = read.get(reading, 0) + 1
    failed = sum(len(v) for v in problems.values())
    metrics = {"verified": len(names) - failed, "configs": len(names)} | {f"read_{k}": v for k, v in read.items()}
    if not problems:
        groups = {k: v for k, v in read.items() if k.startswith("group_")}
        others = {k: v for k, v in read.items() if k not in groups}
        other = "" if not others else (f" {sum(others.values())} of them are not the LRs as read after each step "
                                       f"({', '.join(sorted(others))}); the family checks say how.")
        other += "" if not groups else (f" {sum(groups.values())} of them are the run of another param group than "
                                        f"the first ({', '.join(sorted(groups))}), which the family checks judge by "
                                        "its values.")
        return Outcome(True, f"All {len(names)} lists are what their schedulers produce, replayed by the grader "
                       f"from the exported state ({N_STEPS} steps each).{other}", metrics=metrics)
    text = " ".join(f"{', '.join(affected)}: {problem}." for problem, affected in problems.items())
    return Outcome(False, f"{len(names) - failed}/{len(names)} lists are backed by a scheduler run. {text}",
                   fraction=(len(names) - failed) / len(names), metrics=metrics)


def _shared_problem(group: SharedList, hints: CodeHints) -> str:
    return shared_message(group, hints).rstrip(".") + ". So this list is not what its scheduler alone produced"


# --- step_order ----------------------------------------------------------------------------


def _unclear(report: CodeReport) -> str:
    shown = "; ".join(report.unclear[:3]) or "the loops step objects whose kind the grader cannot trace"
    return (f"The order of optimizer.step() and scheduler.step() could not be decided from the code: {shown}. The "
            "points are given. Call optimizer.step() and then scheduler.step() on the objects you made, in your loop, "
            "so the order can be read.")


def _graded(value) -> dict:
    """The exported schedulers step-order judges: those under the course's configuration names where the notebook
    uses them (an extra one of its own, tried on the side, is no configuration of the task), and no
    ReduceLROnPlateau, which follows the metric it is given, not a schedule its optimizer's steps advance (torch warns
    of no step before the optimizer's for it)."""
    if not isinstance(value, dict):
        return {}
    names = {c.name for c in COURSE_CONFIGS}
    kept = {k: v for k, v in value.items() if k in names} if names & set(value) else dict(value)
    return {k: v for k, v in kept.items()
            if not (isinstance(v, SchedulerExport) and v.torch_base == "ReduceLROnPlateau")}


def _idle_optimizers(value) -> list[str]:
    """The exported schedulers that stepped while their own optimizer never did after they were made: torch's own
    record on the optimizer, the one behind its warning (a deepcopy keeps none, and is not judged; nor is a scheduler
    the kernel never saw step, whose last_epoch was loaded with load_state_dict onto a fresh optimizer).

    torch's record misses steps made through the optimizer's step method taken before the scheduler wrapped it
    (``update = opt.step``), so a scheduler whose optimizer the kernel saw step as often as the scheduler did is not
    idle.
    """
    if not isinstance(value, dict):
        return []
    return [str(name) for name, s in value.items() if isinstance(s, SchedulerExport) and s.optimizer is not None
            and s.optimizer.stepped_under_scheduler is False and (s.state.get("last_epoch") or 0) > 0
            and s.calls and (s.optimizer.steps or 0) < s.state["last_epoch"]]


def _scheduler_first(value) -> list[str]:
    """The exported schedulers whose first step() came before their optimizer had stepped since the scheduler was
    made, as the kernel counted the optimizer's steps at each scheduler call (a deepcopy keeps no record, and is not
    judged). A step taken before the scheduler existed is no update the schedule came after: torch warns then too."""
    if not isinstance(value, dict):
        return []
    return [str(name) for name, s in value.items()
            if isinstance(s, SchedulerExport) and s.calls and s.steps_since_made[0] <= 0]


def _lrs_alike(exported: dict | None) -> str:
    """"The LRs come out the same" where every exported scheduler stepped exactly the set-up's N_STEPS times (the
    order within an iteration changes no LR read after both); "" where one stepped otherwise (once more before the
    loop, say), whose lists are off."""
    if not exported or not all(isinstance(s, SchedulerExport) and s.state.get("last_epoch") == N_STEPS
                               for s in exported.values()):
        return ""
    return f"The LRs you record come out the same here (each scheduler stepped {N_STEPS} times). "


def _bare_steps(source: str) -> list[tuple[int, str]]:
    """(line, text) of each statement that names a ``.step`` method without calling it (``opt.step``)."""
    try:
        tree = source_trees.parse(source)
    except (SyntaxError, ValueError):
        return []
    return [(node.lineno, ast.unparse(node.value)) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Attribute) and node.value.attr == "step"]


def _all_recorded(value) -> bool:
    """Whether every exported scheduler carries the kernel's record of its step() calls (a deepcopy carries none)."""
    return isinstance(value, dict) and bool(value) and all(isinstance(s, SchedulerExport) and s.calls
                                                           for s in value.values())


@check_kind("step_order", export=Param(str, "lr_histories", "checked only once the notebook defines it", export=True),
            schedulers=Param(str, "", "the exported schedulers (scheduler_dict), whose optimizers' step() calls the "
                             "run counted: a loop that steps another optimizer fails", export=True))
def step_order(ctx: CheckContext, export: str, schedulers: str = "") -> Outcome:
    """Read from the code by data flow: each loop calls optimizer.step() before scheduler.step(); and, measured in
    the run, each exported scheduler's own optimizer stepped."""
    ctx.value(export)  # nothing to credit before the lists exist
    report = read_code(ctx.code_cells)
    orders = report.orders
    details = {"loops": [list(o) for o in orders], "unclear": list(report.unclear)}
    exported = _graded(ctx.exports.values.get(schedulers)) if schedulers else None
    wrong = [o for o in orders if o.verdict == "scheduler-first"]
    if wrong and _all_recorded(exported) and not _scheduler_first(exported) and not _idle_optimizers(exported):
        # The run's record clears every exported scheduler: the loop read in the code made none of them (a function
        # never called, or replaced by a later definition), or an optimizer step the reader did not see came first.
        where = "; ".join(f"code cell {o.cell}, line {o.line}" for o in wrong)
        return Outcome(True, f"Each of your {len(exported)} exported schedulers first stepped after its optimizer had "
                       "stepped since the scheduler was made (the grader counts each optimizer's steps at every "
                       f"scheduler call), so they trained in the order torch expects. The loop at {where} reads as "
                       "scheduler.step() first: either it made none of them (a function never called, or replaced "
                       "later), or an optimizer step the grader could not see in the code came before it. Keep "
                       "optimizer.step() before scheduler.step() there too.", details=details)
    if wrong:
        where = "; ".join(f"code cell {o.cell}, line {o.line} (`{o.receiver}.step()`)" for o in wrong)
        raise CheckFailed(f"scheduler.step() comes before optimizer.step() in your loop: {where}. "
                          f"{_lrs_alike(exported)}In training the first update would already use the second LR of the "
                          "schedule, and torch warns about it. Call optimizer.step() first, then scheduler.step().",
                          details=details)
    idle = _idle_optimizers(exported)
    if idle and any(o.verdict in ("ok", "undecided") for o in orders):
        if len(idle) == len(exported):
            which = f"The optimizers behind all {len(idle)} of your exported schedulers"
        else:
            listed = ", ".join(f"`{name}`" for name in idle[:3]) + (f" and {len(idle) - 3} more" if len(idle) > 3
                                                                    else "")
            which = f"The optimizer{'s' if len(idle) > 1 else ''} behind {listed}"
        raise CheckFailed(f"{which} never stepped after {'its' if len(idle) == 1 else 'their'} scheduler was made, "
                          "though the schedulers stepped (torch keeps that record on each optimizer, for its warning). "
                          "So the optimizer.step() in your loop steps another optimizer, and torch warns that a "
                          "scheduler stepped before its optimizer. Step the optimizer you gave to the scheduler.",
                          details=details)
    alone = [o for o in orders if o.verdict == "alone"]
    if alone and idle and len(idle) == len(exported):  # the code and the run agree: no optimizer step at all
        o = alone[0]
        bare = _bare_steps(dict(ctx.code_cells).get(o.cell, ""))
        said = (f" `{bare[0][1]}` (line {bare[0][0]}) names the step method without calling it: without "
                "parentheses it does nothing." if bare else "")
        raise CheckFailed(f"Your loop in code cell {o.cell} steps `{o.receiver}` (line {o.line}) without calling "
                          f"optimizer.step(), and the run agrees: no optimizer behind your schedulers ever stepped."
                          f"{said} Call optimizer.step() and then scheduler.step() in each iteration, as in training.",
                          details=details)
    first = _scheduler_first(exported)
    if first:
        more = f" and {len(first) - 3} more" if len(first) > 3 else ""
        listed = ", ".join(f"`{name}`" for name in first[:3]) + more
        raise CheckFailed(f"{len(first)} of your exported schedulers ({listed}) stepped before their optimizer had "
                          "stepped since the scheduler was made: at their first scheduler.step() call the optimizer "
                          "had taken no step since (the grader counts each optimizer's steps at every scheduler call; "
                          f"a step taken before the scheduler existed is not one it came after). {_lrs_alike(exported)}"
                          "In training the first update would already use the second LR of the schedule, and torch "
                          "warns about it. Call optimizer.step() first, then scheduler.step().",
                          details=details)
    if any(o.verdict == "ok" for o in orders):
        return Outcome(True, "Your loop calls optimizer.step() before scheduler.step(), the order torch expects.",
                       details=details)
    if any(o.verdict == "undecided" for o in orders) or report.unclear and not alone:
        if _all_recorded(exported):  # every scheduler's step() calls were counted: the run decides, not the code
            return Outcome(True, f"Each of your {len(exported)} exported schedulers first stepped after its optimizer "
                           "had stepped since the scheduler was made (the grader counts each optimizer's steps at "
                           "every scheduler call), so they ran in the order torch expects; the code alone could not "
                           "show it.", details=details)
        return Outcome(True, _unclear(report), metrics={"undecided": 1}, details=details)
    if alone:
        o = alone[0]
        raise CheckFailed(f"Your loop in code cell {o.cell} steps `{o.receiver}` (line {o.line}) without calling "
                          "optimizer.step(). Call optimizer.step() and then scheduler.step() in each iteration, as in "
                          "training; torch warns when the scheduler steps first.", details=details)
    raise CheckFailed("No loop in your notebook calls optimizer.step() and then scheduler.step(). Write the loop of "
                      f"{N_STEPS} iterations that steps both, optimizer first, and records the LR after each.",
                      details=details)


@check_kind("scheduler_stepping", export=Param(str, "scheduler", "the scheduler (None: the task allows none)",
                                               export=True),
            history=Param(str, "history", "the per-epoch records, each list under its own key: what a "
                          "ReduceLROnPlateau's best value is among them says what it decided from", export=True),
            metric=Param(str, "val_loss", "the history key of the value the task's loop passes to ReduceLROnPlateau"),
            also=Param(dict, {}, "other history keys a ReduceLROnPlateau may decide from, each with the mode it needs "
                       "(e.g. { val_acc = \"max\" })"),
            records=Param(dict, {}, "{ model = export, accuracy = history key, val = data, train = data }: where the "
                          "recorded accuracy after the last epoch is the model's on the training split and not on the "
                          "validation one, a ReduceLROnPlateau fed those records decided from the training data",
                          check=lambda d: next(filter(None, (data_problem(d[k]) for k in ("val", "train") if k in d)),
                                               None)))
def scheduler_stepping(ctx: CheckContext, export: str, history: str, metric: str, also: dict,
                       records: dict | None = None) -> Outcome:
    """Measured in the run: each step() after an optimizer step, none twice in a row, a plateau one on the metric.

    A second call with no optimizer step since moves the schedule on untrained; a ReduceLROnPlateau must decide from
    the task's metric (its best value is one of the recorded ``metric`` values)."""
    sched = None if ctx.exports.values.get(export, ...) is None else ctx.value(export)
    if sched is None:
        return Outcome(True, f"`{export}` is None: no scheduler to step, which the task allows.")
    if not isinstance(sched, SchedulerExport):
        raise CheckFailed(f"`{export}` is {type(sched).__name__}, not a torch LR scheduler (or None).")
    named = f"`{export}` ({sched.cls})"
    if sched.calls is None:  # a copy: the kernel recorded the calls of the object it was copied from
        return Outcome(True, f"{named} carries no record of its step() calls (a copy of the one that stepped, say): "
                       "the order of its steps cannot be measured.", metrics={"undecided": 1})
    calls = list(sched.calls)
    if not calls:
        raise CheckFailed(f"{named} never stepped: its step() was not called on the object the notebook ends with, so "
                          "the LR stayed at the schedule's first value and the rest of it did nothing. Call "
                          f"{export}.step() once an epoch, after the epoch's training, as the given loop does (or, if "
                          "the loop steps another scheduler object, keep that one under this name).")
    # Counted from the scheduler's making: an update taken before it existed is none the schedule came after.
    since, made = sched.steps_since_made, " since it was made" if sched.made_at else ""
    if all(c <= 0 for c in since):
        raise CheckFailed(f"The optimizer you gave {named} never stepped{made}: at each of its {len(calls)} step() "
                          f"calls it had taken 0 steps{made} (the kernel counts them at every call), so the schedule "
                          "set the LR of an optimizer that did not train the model. Make the scheduler on the "
                          "optimizer the loop steps, after making that optimizer, and make each only once.")
    if since[0] <= 0:
        counts = ", ".join(f"{c:,}" for c in since[:4]) + (", ..." if len(since) > 4 else "")
        raise CheckFailed(f"{named} stepped before its optimizer had stepped {made.strip() or 'at all'}: the "
                          f"optimizer had taken {counts} steps{made} at its {len(calls)} step() calls (the kernel "
                          "counts them at every call). Each epoch then trains at the LR one step further along the "
                          "schedule than you set, and torch warns about it. Call scheduler.step() after the epoch's "
                          "optimizer steps, as the given loop does.", details={"calls": calls[:50]})
    # The kernel keeps its first MAX_CALLS calls; beyond them, the scheduler's own count says how many there were.
    last = sched.state.get("last_epoch")
    stepped = last if len(calls) >= MAX_CALLS and whole_number(last) and last > len(calls) else len(calls)
    # At the record's end and no count of its own beyond it (a step(epoch) with fractions sets last_epoch itself).
    times = f"at least {stepped:,} times" if stepped == len(calls) >= MAX_CALLS else f"{stepped:,} times"
    said = (f"{named} stepped {'once' if stepped == 1 else times}, the first time after "
            f"{since[0]:,} optimizer step{'s' if since[0] != 1 else ''}{made}")
    repeated = repeated_calls(calls)
    if repeated:
        return Outcome(False, f"{said}, but {repeated}. Each such call moves the schedule on by one more step with no "
                       "training between: the LR then changes faster than the schedule's settings say. Call "
                       f"{export}.step() once an epoch, after the epoch's training, as the given loop does.",
                       details={"calls": calls[:50]})
    given = scheduler_given_values(ctx, export, subject="it")
    if given:
        return Outcome(False, f"{said}, but {given}")
    if sched.torch_base != "ReduceLROnPlateau":
        return Outcome(True, f"{said}: after the optimizer, as torch expects.")
    return _plateau_metric(ctx, sched, export, said, history, {metric: "min", **also}, records or {})


def _recorded_on_training(ctx: CheckContext, series: dict[str, list[float]], records: dict) -> str:
    """Where the accuracy recorded after the last epoch is the exported model's on ``records``' training split, to
    the reported digits, and more than half a point off its accuracy on the validation split: what the records then
    measure; "" otherwise (a restored or other model, or splits the model scores alike on, cannot tell)."""
    reported = series.get(records.get("accuracy", ""))
    net = ctx.exports.values.get(records.get("model", ""))
    if not reported or not isinstance(net, ModelValue) or "val" not in records or "train" not in records:
        return ""
    scale = 100 if all(0 <= v <= 1 for v in reported) else 1
    last = reported[-1] * scale
    val, train = (ctx.data.make(records[k], ctx.check_id) for k in ("val", "train"))
    on_val, on_train = measured_accuracy(net, val.X, val.Y)[0], measured_accuracy(net, train.X, train.Y)[0]
    tolerance = SLACK_IMAGES * 100 / len(train.Y) + rounding(reported[-1]) * scale + 1e-9
    if abs(on_train - on_val) <= 0.5 or abs(last - on_train) > tolerance:
        return ""
    return (f"your {records['accuracy']} after the last epoch, {last:.2f}%, is your model's accuracy on the training "
            f"images ({on_train:.2f}%, measured by the grader), not on the validation images ({on_val:.2f}%): your "
            "validation pass runs over the training data, and the val_loss recorded with it is a training loss.")


def _records_at_chance(ctx: CheckContext, series: dict[str, list[float]], records: dict, key: str) -> str:
    """Where every recorded ``key`` value (an accuracy) is about what predicting one class scores while the exported
    model scores well above that on ``records``' validation split: what the records then are; "" otherwise."""
    reported, net = series.get(key), ctx.exports.values.get(records.get("model", ""))
    if not reported or not isinstance(net, ModelValue) or "val" not in records:
        return ""
    scale = 100 if all(0 <= v <= 1 for v in reported) else 1
    val = ctx.data.make(records["val"], ctx.check_id)
    on_val = measured_accuracy(net, val.X, val.Y)[0]
    if chance_level(on_val, val.Y) is not None or any(chance_level(v * scale, val.Y) is None for v in reported):
        return ""
    return (f"every {key} your records hold is about what predicting one class scores ({max(reported) * scale:.2f}% "
            f"at best), while your model scores {on_val:.2f}% on the validation images (measured by the grader): the "
            f"records are not the model's accuracy (its predictions {OTHER_LABELS}).")


def _a_training_batch(ctx: CheckContext, splits: dict, best: float, calls: tuple[int, ...]) -> str:
    """Where ``best`` is the loss of one of the optimizer steps that trained ``splits``' model, as the kernel recorded
    each step's cross-entropy: which step (the last before a step() call of the scheduler's, where it is one of
    ``calls``), for a message; "" otherwise."""
    net = ctx.exports.values.get(splits.get("model", ""))
    losses = getattr(net, "step_losses", ()) if isinstance(net, ModelValue) else ()
    step = next((i + 1 for i, v in enumerate(losses) if v is not None and math.isclose(v, best, rel_tol=1e-9)), None)
    if step is None:
        return ""
    before = (f", the last training batch before the scheduler's step() call {calls.index(step) + 1}"
              if step in calls else "")
    return (f"the cross-entropy of the batch of the model's optimizer step {step:,} of {len(losses):,}{before}, in "
            "the kernel's record of its training")


def _plateau_metric(ctx: CheckContext, sched: SchedulerExport, export: str, said: str, history: str,
                    allowed: dict[str, str], splits: dict) -> Outcome:
    """What a ReduceLROnPlateau decided from: the recorded series its best value is a value of, which must be one of
    ``allowed`` ({history key: the mode it needs}; the first is the task's)."""
    metric = next(iter(allowed))
    best, mode = sched.state.get("best"), sched.state.get("mode", "min")
    records = ctx.exports.values.get(history)
    curves = {str(k): as_curve(v) for k, v in records.items()} if isinstance(records, dict) else {}
    series = {k: [float(v) for v in curve if isinstance(v, (int, float))] for k, curve in curves.items() if curve}
    if not isinstance(best, (int, float)) or not math.isfinite(best):
        return Outcome(True, f"{said}; it holds no best value yet, so what it decided from cannot be read.",
                       metrics={"undecided": 1})

    # The epoch of each recorded series whose value is the scheduler's best, where one is.
    found = {key: epoch for key, values in series.items()
             if (epoch := next((i + 1 for i, v in enumerate(values)
                                if math.isclose(v, best, rel_tol=1e-9, abs_tol=1e-12)), None))}
    for key, needs in allowed.items():
        if key in found and mode == needs:
            noise = _records_at_chance(ctx, series, splits, key) if mode == "max" else ""
            if noise:
                raise CheckFailed(f"`{export}` decided from your {key} (its best value, {best:.4g}, is your {key} at "
                                  f"epoch {found[key]}), but {noise} So it cut the LR on noise. Count the correct "
                                  "predictions against each batch's own labels.", details={"matched": key})
            on_training = _recorded_on_training(ctx, series, splits)
            if on_training:
                raise CheckFailed(f"`{export}` decided from your {key} (its best value, {best:.4g}, is your {key} at "
                                  f"epoch {found[key]}), but {on_training} So it cut the LR on how the model did on "
                                  "the images it trains on. Run the validation pass over the validation loader.",
                                  details={"matched": key})
            return Outcome(True, f"{said}, and decided from your {key} in '{mode}' mode: its best value, {best:.4g}, "
                           f"is your {key} at epoch {found[key]}.")
    if not found:
        batch = _a_training_batch(ctx, splits, best, sched.calls or ())
        if batch:
            raise CheckFailed(f"`{export}` decided from the loss of one training batch: its best value, {best:.4g}, "
                              f"is none of the values in `{history}` but is {batch}. A single batch's loss is "
                              f"not the epoch's {metric}: it judged the plateau on one batch of training data. Pass "
                              f"it the epoch's validation loss, {export}.step({metric}), as the given loop does.",
                              details={"matched": "a training batch's loss"})
        return Outcome(True, f"{said}; its best value, {best:.4g}, is none of the values in `{history}`, so what it "
                       "decided from cannot be read from your records.", metrics={"undecided": 1})
    key, epoch = next(iter(found.items()))
    values = series[key]
    rises = sum(b > a for a, b in zip(values, values[1:])) > (len(values) - 1) / 2
    why = (f" In '{mode}' mode a value that rises as the model learns counts as no improvement, so it cut the LR "
           "whenever it had waited its patience, whatever the training did." if rises and mode == "min" else "")
    fix = f"Pass it the epoch's validation loss, {export}.step({metric}), in 'min' mode, as the given loop does."
    if key in allowed:  # the right value, the wrong direction
        raise CheckFailed(f"`{export}` decided from your {key} (its best value, {best:.4g}, is your {key} at epoch "
                          f"{epoch}), but in '{mode}' mode, where {key} needs '{allowed[key]}'.{why} {fix}",
                          details={"matched": key})
    # The records are read by their keys: lists filed under each other's keys look the same from here.
    raise CheckFailed(f"`{export}` decided from another value than the {metric} the task's loop passes it: its "
                      f"best value, {best:.4g}, is your {key} at epoch {epoch} and none of your {metric} values "
                      f"(it is in '{mode}' mode).{why} {fix} If it is given the {metric} already, then `{history}` "
                      f"files its lists under other keys than their names (the {metric} under '{key}', say): fill "
                      "each key with its own values.", details={"matched": key})
