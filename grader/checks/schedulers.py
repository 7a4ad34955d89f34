"""Exercise 3's checks: the twelve LR lists against torch, the exported schedulers replayed, the step order.

- ``lr_family``: the course configurations of one scheduler class, each list compared with
  torch's own run (``reference.schedules.lr_history``, rtol 1e-6) and a mismatch explained
  by ``grader.diagnosis.lr_fitting``; partial credit per configuration. ``details["curves"]`` holds
  ``{name: {"reference": [...], "student": [...], "diagnosis": kind}}`` for the feedback plot
  (``grader.render.lr_plots.lr_comparison_figure``).
- ``scheduler_replay``: every exported scheduler is rebuilt here from its class name, its
  state_dict and its optimizer's first param group, stepped 30 times on a fresh SGD, and
  must reproduce the reported list (also when the list is only read at the wrong moment:
  that mistake costs points in ``lr_family``, not here). Only the torch classes in
  ``REBUILD`` are rebuilt; the exported class and module names are looked up in that table
  and never imported. A list typed in by hand has no scheduler behind it and fails.
- ``step_order``: read from the code (AST), every loop that steps both must call
  ``optimizer.step()`` before ``scheduler.step()``. The LR values come out the same either
  way, so only the code can show this mistake.
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import re
from collections.abc import Callable

from grader.checks.base import CheckContext, CheckFailed, Outcome, describe
from grader.checks.registry import Param, check_kind
from grader.diagnosis.lr_fitting import as_floats, call, same
from grader.diagnosis.lr_messages import Diagnosis, diagnose
from grader.loading.values import OptimizerExport, SchedulerExport
from reference.schedules import COURSE_CONFIGS, N_STEPS, SchedulerConfig, lr_history

TORCH_MODULE = "torch.optim.lr_scheduler"
MAX_MILESTONES = 1000
MAX_PLOTTED = 100  # LRs of one list kept in the details: enough to plot, bounded in the gradebook


# --- lr_family ---------------------------------------------------------------------------


def _missing(name: str, histories: dict, export: str) -> str:
    keys = [k for k in histories if isinstance(k, str)]
    near = difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
    hint = f' (the closest key is "{near[0]}")' if near else ""
    return f'`{export}` has no entry "{name}"{hint}. Use the names in CONFIGS as keys, exactly as written.'


@check_kind(
    "lr_family",
    figure="lr_curves",
    export=Param(str, "lr_histories", "the export holding {configuration name: list of LRs}", export=True),
    family=Param(str, doc="a scheduler class of the course configurations, e.g. 'StepLR'",
                 choices=lambda: {c.family for c in COURSE_CONFIGS}),
)
def lr_family(ctx: CheckContext, export: str, family: str) -> Outcome:
    """One scheduler family's configurations against torch's own runs (rtol 1e-6), each mistake named."""
    histories = ctx.value(export, "dict")
    configs = [c for c in COURSE_CONFIGS if c.family == family]
    curves: dict[str, dict] = {}
    problems: dict[str, list[str]] = {}  # one message per diagnosis, naming every configuration it fits
    for config in configs:
        value = histories.get(config.name)
        if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):  # a tensor arrives as a tensor
            found = diagnose(config, value)
        elif config.name in histories:
            found = Diagnosis("not_numbers", f"It must be a list of {N_STEPS} numbers, but it is {describe(value)}.",
                              reference=tuple(lr_history(config)))
        else:
            found = Diagnosis("missing", _missing(config.name, histories, export), reference=tuple(lr_history(config)))
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
    "StepLR": _args("#step_size", "gamma"),
    "MultiStepLR": _milestones,
    "ExponentialLR": _args("gamma"),
    "CosineAnnealingLR": _args("T_max", "eta_min"),
    "CosineAnnealingWarmRestarts": _args("#T_0", "#T_mult", "eta_min"),
    "ConstantLR": _args("factor", "#total_iters"),
    "LinearLR": _args("start_factor", "end_factor", "#total_iters"),
    "PolynomialLR": _args("#total_iters", "power"),
    "OneCycleLR": _one_cycle,
}


def _group(export: SchedulerExport) -> dict:
    optimizer = export.optimizer
    if not isinstance(optimizer, OptimizerExport) or not optimizer.param_groups:
        raise ReplayError("it was exported without its optimizer")
    return optimizer.param_groups[0]


def replay(export: SchedulerExport, n: int = N_STEPS) -> tuple[str, float, list[float]]:
    """(the rebuilt call, the LR before any step, the LR after each of ``n`` steps) of a fresh copy."""
    if export.module != TORCH_MODULE or export.cls not in REBUILD:
        where = f" from `{export.module}`" if export.module != TORCH_MODULE else ""
        raise ReplayError(f"it is a `{export.cls}`{where}; the grader replays only torch's own "
                          f"{', '.join(REBUILD)}")
    import torch
    from torch.optim import lr_scheduler

    cls, read = getattr(lr_scheduler, export.cls), REBUILD[export.cls]
    state, group = export.state, _group(export)
    base = state.get("base_lrs")
    if not isinstance(base, list) or not base:
        raise ReplayError("its state has no `base_lrs`")
    args = read(state, group)
    try:
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=_num({"base_lrs": base[0]}, "base_lrs"))
        scheduler = cls(optimizer, **args)
        initial = optimizer.param_groups[0]["lr"]
        lrs = []
        for _ in range(n):
            optimizer.step()
            scheduler.step()
            lrs.append(optimizer.param_groups[0]["lr"])
    except (ValueError, TypeError, ZeroDivisionError, OverflowError) as e:
        raise ReplayError(f"torch refuses its settings ({e})") from None
    shown = {k: v for k, v in args.items() if k not in ("cycle_momentum", "three_phase") or v}
    return call(SchedulerConfig(export.cls, shown)), initial, lrs


def _backing_problem(reported: object, value: object, n: int) -> str | None:
    """Why ``value`` does not show that ``reported`` came from a scheduler run; None when it does."""
    if value is None:
        return ("no scheduler is stored under this name, so nothing shows the list came from a scheduler run. "
                "Store the scheduler you stepped, e.g. schedulers[name] = scheduler")
    if not isinstance(value, SchedulerExport):
        return f"the entry is {describe(value)}, not a scheduler"
    last = value.state.get("last_epoch")
    if last != n:
        done = "it was never stepped" if last == 0 else f"it was stepped {last} times, not {n}"
        return f"its last_epoch is {last!r:.20}: {done}. Store each scheduler after exactly {n} steps"
    try:
        rebuilt, initial, run = replay(value, n)
    except ReplayError as e:
        return f"it cannot be verified: {e}"
    lrs = as_floats(reported)
    if isinstance(lrs, str):
        return "there is no list of numbers to compare with it"
    current = _group(value).get("lr")
    if isinstance(current, (int, float)) and not same([current], run[-1:]):
        return (f"its optimizer is at lr={current:.6g}, but {n} steps of {rebuilt} end at {run[-1]:.6g}: something "
                "else changed that optimizer's LR, such as another scheduler on the same optimizer. Give each "
                "scheduler a fresh optimizer")
    # The same run read before the step, or with the initial LR in front, is still that scheduler's run.
    if any(same(lrs, variant) for variant in (run, [initial] + run, [initial] + run[:-1])):
        return None
    k = next((i for i, (a, b) in enumerate(zip(lrs, run)) if not same([a], [b])), min(len(lrs), n))
    theirs = f"{lrs[k]:.6g}" if k < len(lrs) else "nothing"
    ours = f"{run[k]:.6g}" if k < n else "nothing"
    return (f"replayed from its state, {rebuilt} gives {ours} at step {k + 1}, but your list has {theirs}: "
            "the list did not come from this scheduler. Fill each list from the scheduler you store under its name")


@check_kind(
    "scheduler_replay",
    export=Param(str, "lr_histories", "the export holding {configuration name: list of LRs}", export=True),
    schedulers=Param(str, "schedulers", "the export holding {configuration name: stepped scheduler}", export=True),
)
def scheduler_replay(ctx: CheckContext, export: str, schedulers: str) -> Outcome:
    """Each reported list must be what its exported scheduler, replayed by the grader, produces."""
    histories = ctx.value(export, "dict")
    stored = ctx.value(schedulers, "scheduler_dict")
    names = [c.name for c in COURSE_CONFIGS]
    problems: dict[str, list[str]] = {}  # one message per problem, naming every configuration it affects
    for name in names:
        if name not in histories:
            problem = f"`{export}` has no list for it, so there is nothing to verify"
        else:
            problem = _backing_problem(histories[name], stored.get(name), N_STEPS)
        if problem:
            problems.setdefault(problem, []).append(name)
    failed = sum(len(v) for v in problems.values())
    metrics = {"verified": len(names) - failed, "configs": len(names)}
    if not problems:
        return Outcome(True, f"All {len(names)} lists are what their schedulers produce, replayed by the grader "
                       f"from the exported state ({N_STEPS} steps each).", metrics=metrics)
    text = " ".join(f"{', '.join(affected)}: {problem}." for problem, affected in problems.items())
    return Outcome(False, f"{len(names) - failed}/{len(names)} lists are backed by a scheduler run. {text}",
                   fraction=(len(names) - failed) / len(names), metrics=metrics)


# --- step_order ----------------------------------------------------------------------------

@functools.cache
def _torch_classes() -> tuple[frozenset[str], frozenset[str]]:
    """The names of torch's optimizer and LR scheduler classes."""
    import torch
    from torch.optim import lr_scheduler

    optimizers = {n for n, v in vars(torch.optim).items() if isinstance(v, type) and issubclass(v, torch.optim.Optimizer)}
    schedulers = {n for n, v in vars(lr_scheduler).items() if isinstance(v, type) and n.endswith(("LR", "Plateau"))}
    return frozenset(optimizers), frozenset(schedulers)


LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _parse(source: str) -> ast.Module | None:
    """A cell's AST; IPython magics and shell lines are blanked first so line numbers stay right."""
    cleaned = re.sub(r"(?m)^\s*[%!].*$", "", source)
    try:
        return ast.parse(cleaned)
    except SyntaxError:
        return None


def _callee(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _roles(trees: list[ast.Module]) -> dict[str, str]:
    """Variable -> "optimizer" or "scheduler", from what it was assigned (SGD(...), StepLR(opt, ...))."""
    optimizer_classes, scheduler_classes = _torch_classes()
    roles: dict[str, str] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
                continue
            func, args = node.value.func, node.value.args
            if _callee(func) in optimizer_classes:
                role = "optimizer"
            elif (_callee(func) in scheduler_classes or "lr_scheduler" in ast.unparse(func)
                  or any(roles.get(ast.unparse(a)) == "optimizer" for a in args)):
                role = "scheduler"
            else:
                continue
            for target in node.targets:
                roles[ast.unparse(target)] = role
    return roles


def _role(receiver: str, roles: dict[str, str]) -> str:
    if receiver in roles:
        return roles[receiver]
    lowered = receiver.lower()
    return "scheduler" if "sched" in lowered else "optimizer" if "opt" in lowered else ""


def step_orders(cells: tuple[tuple[int, str], ...]) -> list[tuple[int, int, str, str]]:
    """(cell, line, receiver, verdict) for each loop stepping a scheduler; verdict is ok, scheduler-first or alone."""
    parsed = [(cell, tree) for cell, source in cells if (tree := _parse(source)) is not None]
    roles = _roles([tree for _, tree in parsed])
    found: dict[tuple[int, int], tuple[int, int, str, str]] = {}
    for cell, tree in parsed:
        for loop in (n for n in ast.walk(tree) if isinstance(n, LOOPS)):
            calls = sorted((n for n in ast.walk(loop) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                            and n.func.attr == "step" and not n.args), key=lambda n: (n.lineno, n.col_offset))
            steps = [(c, ast.unparse(c.func.value)) for c in calls]
            first = {}
            for node, receiver in steps:
                first.setdefault(_role(receiver, roles), (node, receiver))
            if "scheduler" not in first:
                continue
            node, receiver = first["scheduler"]
            if "optimizer" not in first:
                verdict = "alone"
            else:
                verdict = "ok" if (first["optimizer"][0].lineno, first["optimizer"][0].col_offset) < \
                    (node.lineno, node.col_offset) else "scheduler-first"
            key = (cell, node.lineno)
            if key not in found or verdict != "ok":  # an inner loop's verdict is the one that counts
                found[key] = (cell, node.lineno, receiver, verdict)
    return list(found.values())


@check_kind("step_order", export=Param(str, "lr_histories", "checked only once the notebook defines it", export=True))
def step_order(ctx: CheckContext, export: str) -> Outcome:
    """Read from the code: each loop calls optimizer.step() before scheduler.step()."""
    ctx.value(export)  # nothing to credit before the lists exist
    orders = step_orders(ctx.code_cells)
    details = {"loops": [list(o) for o in orders]}
    wrong = [o for o in orders if o[3] == "scheduler-first"]
    if wrong:
        where = "; ".join(f"code cell {c}, line {line} (`{r}.step()`)" for c, line, r, _ in wrong)
        raise CheckFailed(f"scheduler.step() comes before optimizer.step() in your loop: {where}. The LRs you record "
                          "come out the same here, but in training the first update would already use the second LR "
                          "of the schedule, and torch warns about it. Call optimizer.step() first, then "
                          "scheduler.step().", details=details)
    if any(o[3] == "ok" for o in orders):
        return Outcome(True, "Your loop calls optimizer.step() before scheduler.step(), the order torch expects.",
                       details=details)
    alone = [o for o in orders if o[3] == "alone"]
    if alone:
        c, line, r, _ = alone[0]
        raise CheckFailed(f"Your loop in code cell {c} steps `{r}` (line {line}) without calling optimizer.step(). "
                          "Call optimizer.step() and then scheduler.step() in each iteration, as in training; "
                          "torch warns when the scheduler steps first.", details=details)
    raise CheckFailed("No loop in your notebook calls optimizer.step() and then scheduler.step(). Write the loop of "
                      f"{N_STEPS} iterations that steps both, optimizer first, and records the LR after each.",
                      details=details)
