"""Checks for Exercise 2: one model per seed, reported figures against measured ones, and the spread.

The grader measures every accuracy itself, in eval mode, on its own copies of the splits.
The course prints two kinds of figures: TA is the running accuracy counted during the
best epoch's training pass, while VA and TestA come from eval mode. Reported val and test
accuracy must therefore match the measurement; reported train accuracy may be either kind.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from grader.checks.base import CheckContext, CheckFailed, Outcome, not_a_model
from grader.checks.data import data_problem
from grader.checks.models import measured_accuracy
from grader.checks.registry import Param, check_kind
from grader.loading.values import ModelValue

if TYPE_CHECKING:
    from grader.loading.model_graph import LoadedModel

FIGURES = ("train_acc", "val_acc", "test_acc")


def _by_seed(value: dict, name: str, seeds: list) -> dict[int, object]:
    """``value`` keyed by int seed; string keys like "3" are accepted, anything else is explained."""
    keyed = {}
    for key, item in value.items():
        try:
            keyed[int(key)] = item
        except (TypeError, ValueError):
            raise CheckFailed(f"`{name}` must be keyed by the seed numbers {seeds}; found the key {key!r}.") from None
    return keyed


def seed_models(ctx: CheckContext, models: str, seeds: list) -> dict[int, LoadedModel]:
    """``models`` as {seed: model} for exactly the expected seeds."""
    by_seed = _by_seed(ctx.value(models, "model_dict"), models, seeds)
    missing = [s for s in seeds if s not in by_seed]
    if missing:
        raise CheckFailed(f"`{models}` has no model for seed {', '.join(map(str, missing))}: it needs one per seed "
                          f"in {seeds}.")
    for seed in seeds:
        if not isinstance(by_seed[seed], ModelValue):
            reason = not_a_model(by_seed[seed])
            raise CheckFailed(f"The model for seed {seed} could not be checked: {reason}.")
    return {s: by_seed[s] for s in seeds}


def seed_results(ctx: CheckContext, results: str, seeds: list) -> dict[int, dict]:
    table = _by_seed(ctx.value(results, "dict"), results, seeds)
    for seed in seeds:
        row = table.get(seed)
        if not isinstance(row, dict) or any(not isinstance(row.get(f), (int, float)) for f in FIGURES):
            raise CheckFailed(f"`{results}[{seed}]` must be a dict with numbers for {', '.join(FIGURES)} "
                              "(accuracies in percent) and best_epoch.")
    return table


@functools.lru_cache(maxsize=4)
def _reference_runs(seeds: tuple[int, ...]) -> dict[int, dict]:
    """The course set-up run by the reference, once per process: restored weights and best epochs."""
    import torch

    from reference.data import course_loaders, course_splits
    from reference.models import SimpleMLP
    from reference.training import train_model_extended

    loaders = course_loaders(course_splits())
    runs = {}
    for seed in seeds:
        torch.manual_seed(seed)
        history = train_model_extended(SimpleMLP(), loaders.train, loaders.val, lr=0.01, n_epochs=500,
                                       logging_interval=None, patience=20)
        runs[seed] = {"best_epoch": history.best_epoch, "state": history.model.state_dict()}
    return runs


def matches_reference(model: LoadedModel, seed: int) -> int | None:
    """The reference's best epoch if ``model`` is exactly the course set-up's restored model for ``seed``."""
    import torch

    run = _reference_runs((seed,))[seed]
    same = model.parameters.keys() == run["state"].keys() and all(
        torch.allclose(model.parameters[k], run["state"][k], atol=1e-6) for k in model.parameters)
    return run["best_epoch"] if same else None


def _splits_problem(data: dict) -> str | None:
    if set(data) != {"train", "val", "test"}:
        return f"expected the keys train, val and test, got {', '.join(map(str, data)) or 'none'}"
    return next((f"{split}: {problem}" for split, desc in data.items() if (problem := data_problem(desc))), None)


MODELS = Param(str, "models", "the export holding {seed: model}", export=True)
SEEDS = Param(list, doc="the seeds, e.g. [0, 3, 18]", of=int)


@check_kind("seed_results", models=MODELS, results=Param(str, "results", export=True), seeds=SEEDS,
            data=Param(dict, doc="{train = ..., val = ..., test = ...} data descriptions", check=_splits_problem),
            tolerance=Param((int, float), 0.6, "points allowed between reported and measured val/test accuracy"),
            train_tolerance=Param((int, float), 6.0, "points allowed for train accuracy (running vs eval)"))
def seed_results_match(ctx: CheckContext, models: str, results: str, seeds: list, data: dict, tolerance: float,
                       train_tolerance: float) -> Outcome:
    """Reported accuracies per seed against the grader's own measurement of the exported models."""
    nets, table = seed_models(ctx, models, seeds), seed_results(ctx, results, seeds)
    sets = {split: ctx.data.make(desc, f"{ctx.check_id}-{split}") for split, desc in data.items()}
    lines, good, measured_all = [], 0, {}
    for seed in seeds:
        measured = {f"{split}_acc": measured_accuracy(nets[seed], d.X, d.Y)[0] for split, d in sets.items()}
        measured_all[seed] = {k: round(v, 2) for k, v in measured.items()}
        reported = {f: float(table[seed][f]) for f in FIGURES}
        if all(v <= 1.0 for v in reported.values()) and max(measured.values()) > 1.0:
            lines.append(f"seed {seed}: report accuracies in percent (you gave {reported['val_acc']:g}, "
                         f"the grader measures {measured['val_acc']:.2f}%)")
            continue
        off = [f for f in ("val_acc", "test_acc") if abs(reported[f] - measured[f]) > tolerance]
        if abs(reported["train_acc"] - measured["train_acc"]) > train_tolerance:
            off.insert(0, "train_acc")
        if off:
            shown = "; ".join(f"{f} reported {reported[f]:.2f}%, measured {measured[f]:.2f}%" for f in off)
            lines.append(f"seed {seed}: {shown}")
            continue
        good += 1
        best = matches_reference(nets[seed], seed)
        same = f", best epoch {best}, as the reference run" if best is not None else ""
        lines.append(f"seed {seed}: matches (val {measured['val_acc']:.2f}%, test {measured['test_acc']:.2f}%{same})")
    definition = ("The grader measures each exported model itself in eval mode; reported val and test accuracy must "
                  f"match within {tolerance:g} points. Reported train accuracy may be the course's running figure "
                  f"(TA, counted during the best epoch), so it may differ by up to {train_tolerance:g} points.")
    details = {"measured": measured_all}
    if good == len(seeds):
        return Outcome(True, "; ".join(lines) + ". " + definition, details=details)
    hint = (" Figures that match nothing were typed by hand or come from another model than the one exported: "
            "report what your final, restored models score.")
    return Outcome(False, "; ".join(lines) + "." + hint + " " + definition, fraction=good / len(seeds), details=details)


@check_kind("seed_spread", models=MODELS, seeds=SEEDS, data=Param(dict, doc="the test set", check=data_problem))
def seed_spread(ctx: CheckContext, models: str, seeds: list, data: dict) -> Outcome:
    """The seeds must give different models; reports the spread of their test accuracy."""
    nets = seed_models(ctx, models, seeds)
    twins = [(a, b) for i, a in enumerate(seeds) for b in seeds[i + 1:] if nets[a].same_weights(nets[b])]
    if twins:
        pairs = ", ".join(f"{a} and {b}" for a, b in twins)
        return Outcome(False, f"The models for seeds {pairs} are identical: call torch.manual_seed(seed) with each "
                       "run's own seed right before creating its model, so each seed gets its own start.")
    test = ctx.data.make(data, ctx.check_id)
    accs = {s: measured_accuracy(nets[s], test.X, test.Y)[0] for s in seeds}
    low, high = min(accs, key=accs.get), max(accs, key=accs.get)
    spread = accs[high] - accs[low]
    return Outcome(True, f"Test accuracy ranges from {accs[low]:.2f}% (seed {low}) to {accs[high]:.2f}% (seed {high}): "
                   f"a spread of {spread:.2f} points from the seed alone.",
                   metrics={"spread": round(spread, 4), **{f"test_acc_{s}": round(a, 4) for s, a in accs.items()}})


@check_kind("accuracy_each", models=MODELS, seeds=SEEDS, data=Param(dict, check=data_problem),
            min_accuracy=Param((int, float)), describe=Param(str, "the data"))
def accuracy_each(ctx: CheckContext, models: str, seeds: list, data: dict, min_accuracy: float,
                  describe: str) -> Outcome:
    """Each model of a dict must reach ``min_accuracy`` on data the grader makes; partial credit per model."""
    nets = seed_models(ctx, models, seeds)
    dataset = ctx.data.make(data, ctx.check_id)
    accs = {s: measured_accuracy(nets[s], dataset.X, dataset.Y)[0] for s in seeds}
    passing = [s for s in seeds if accs[s] + 1e-9 >= min_accuracy]
    shown = ", ".join(f"seed {s}: {a:.2f}%" for s, a in accs.items())
    message = f"On {describe}: {shown} (needs {min_accuracy:g}% each)."
    return Outcome(len(passing) == len(seeds), message, fraction=len(passing) / len(seeds),
                   metrics={f"accuracy_{s}": round(a, 4) for s, a in accs.items()})
