"""Checks for Exercise 2: one model per seed, reported figures against measured ones, and the spread.

The grader measures every accuracy itself, in eval mode, on its own copies of the splits.
The course prints two kinds of figures: TA is the running accuracy counted during the
best epoch's training pass, while VA and TestA come from eval mode. Reported val and test
accuracy must therefore match the measurement; reported train accuracy may be either kind.
Where each model started is checked in ``seed_starts``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from grader.checks.base import CheckContext, CheckFailed, Outcome, not_a_model
from grader.checks.data import data_problem
from grader.checks.models import (
    chance_level,
    fed_from,
    learned_elsewhere,
    measured_accuracy,
    never_moved,
    signature_table,
    untrained_cause,
)
from grader.checks.registry import Param, check_kind
from grader.checks.training import val_loss_conventions
from grader.checks.training import REL_TOL as LOSS_TOL
from grader.diagnosis.loss_readings import LOSS_CONVENTIONS
from grader.kernel.kernel_probe import INPUT_ROWS, row_signatures
from grader.loading.kinds import whole_number
from grader.loading.values import ModelValue

if TYPE_CHECKING:
    from grader.loading.model_graph import LoadedModel

FIGURES = ("train_acc", "val_acc", "test_acc")
BATCH = 32  # the course's loaders' batch size
UNSHUFFLED = ("val", "test")  # the course's loaders that keep the split's order, so their batches can be recomputed
SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}
MODELS = Param(str, "models", "the export holding {seed: model}", export=True)
SEEDS = Param(list, doc="the seeds, e.g. [0, 3, 18]", of=int)


def _by_seed(value: dict, name: str, seeds: list) -> dict[int, object]:
    """``value`` keyed by int seed; string keys like "3" are accepted. Other keys (a summary row beside the seeds'
    rows, say) are left alone where every seed has its own, and explained where one has not."""
    keyed, other = {}, []
    for key, item in value.items():
        try:
            keyed[int(key)] = item
        except (TypeError, ValueError):
            other.append(key)
    if other and any(s not in keyed for s in seeds):
        raise CheckFailed(f"`{name}` must be keyed by the seed numbers {seeds}; found the key {other[0]!r}.")
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
    missing = [s for s in seeds if s not in table]
    if missing:
        keys = sorted(table)
        # Rows under 0, 1, 2 for three seeds: keyed by the loop's position (enumerate), not by the seed.
        how = (" They are keyed by their position in the list of seeds; key each row by its seed." if
               keys == list(range(len(seeds))) else "")
        raise CheckFailed(f"`{results}` has no row for {seeds_word(missing)} (its keys: {_listed(keys) or 'none'}): "
                          f"it needs one per seed in {seeds}, keyed by the seed.{how}")
    for seed in seeds:
        row = table.get(seed)
        if (not isinstance(row, dict) or any(not isinstance(row.get(f), (int, float)) for f in FIGURES)
                or not whole_number(row.get("best_epoch"))):
            raise CheckFailed(f"`{results}[{seed}]` must be a dict with numbers for {', '.join(FIGURES)} "
                              "(accuracies in percent) and a whole number for best_epoch.")
    return table


def same_objects(nets: dict[int, LoadedModel]) -> list[list[int]]:
    """Groups of seeds whose entries are one and the same model object (the kernel exports such an object once)."""
    by_object: dict[int, list[int]] = {}
    for seed, net in nets.items():
        by_object.setdefault(id(net), []).append(seed)
    return [g for g in by_object.values() if len(g) > 1]


def _listed(items: list) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def seeds_word(seeds: list[int]) -> str:
    return f"seed{'s' if len(seeds) > 1 else ''} {_listed(seeds)}"


def _present(ctx: CheckContext, models: str, results: str | None, seeds: list) -> tuple[list[int], str]:
    """(the seeds with a model, and a row where ``results`` is read; what is missing, said) where some but not all
    are there; (seeds, "") otherwise, for the check's own messages to speak."""
    try:
        keyed = [_by_seed(ctx.value(models, "model_dict"), models, seeds)]
        keyed += [_by_seed(ctx.value(results, "dict"), results, seeds)] if results else []
    except CheckFailed:
        return seeds, ""
    present = [s for s in seeds if all(s in table for table in keyed)]
    if not present or len(present) == len(seeds):
        return seeds, ""
    missing = [s for s in seeds if s not in present]
    extra = sorted({k for table in keyed for k in table if k not in seeds})
    instead = (f" ({'they hold' if results else 'it holds'} {seeds_word(extra)} instead, which the task does not "
               "use: a seed typed otherwise?)"
               if extra else "")
    where = f"`{models}`" + (f" and `{results}`" if results else "")
    judged = f"{seeds_word(present)} {'are' if len(present) > 1 else 'is'} judged on their own"
    return present, (f"{where} {'have' if results else 'has'} nothing for {seeds_word(missing)} of {seeds}{instead}: "
                     f"that share of this check is lost, and {judged}.")


def per_seed(fn: Callable[..., Outcome]) -> Callable[..., Outcome]:
    """A seed check run on the seeds that were handed in, where some are missing: each missing seed costs its share
    of the points, and the others are judged as they would be (a mistyped seed is not the whole exercise)."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def check(*args, **kwargs) -> Outcome:
        bound = signature.bind(*args, **kwargs)
        ctx, params = bound.arguments.pop("ctx"), bound.arguments
        seeds = params["seeds"]
        present, said = _present(ctx, params["models"], params.get("results"), seeds)
        if not said:
            return fn(ctx, **params)
        try:
            outcome = fn(ctx, **{**params, "seeds": present})
        except CheckFailed as e:
            outcome = Outcome(False, e.message, metrics=e.metrics, details=e.details)
        earned = outcome.fraction if outcome.fraction is not None else float(outcome.passed)
        return Outcome(False, f"{said} {outcome.message}", earned * len(present) / len(seeds), outcome.metrics,
                       outcome.details)
    return check


PATIENCE, MAX_EPOCHS = 20, 500  # the set-up's early stopping


def _stopping(values: list[float], better: Callable[[float, float], bool], final: bool = False
              ) -> tuple[int, int] | None:
    """(best epoch, stop epoch) of early stopping with PATIENCE on ``values`` (one per epoch, from epoch 1), strict
    improvement as in the course; None while it would not have stopped, unless ``final`` (the run ends there)."""
    best, best_epoch, waited = None, 0, 0
    for epoch, value in enumerate(values, start=1):
        if best is None or better(value, best):
            best, best_epoch, waited = value, epoch, 0
        else:
            waited += 1
            if waited >= PATIENCE:
                return best_epoch, epoch
    return (best_epoch, len(values)) if final and values else None


# Keyed by seed alone: every run a check asks about is a prefix of its seed's trajectory.
@functools.lru_cache(maxsize=32)
def _course_trajectory(seed: int) -> dict:
    """The course set-up for ``seed`` trained by the reference epoch by epoch, once per process: the weights before
    training and after each epoch, and where early stopping on the val loss (the set-up's), on the val loss per
    sample, on the test loss and on the val accuracy would have kept and stopped. Stopping changes nothing before it,
    so each of those runs is a prefix of this one; it goes on until all have stopped, MAX_EPOCHS at most."""
    import copy

    import torch

    from reference.data import course_loaders, course_splits
    from reference.models import SimpleMLP
    from reference.training import evaluate, train_one_epoch

    splits = course_splits()
    loaders = course_loaders(splits)
    torch.manual_seed(seed)
    model = SimpleMLP()
    criterion, optimizer = torch.nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=0.01)
    states = [copy.deepcopy(model.state_dict())]
    rows: list = []  # the first training inputs, as the kernel records a student's model's (``input_rows``)

    def note_rows(module, args) -> None:
        if module.training and len(rows) < INPUT_ROWS:
            rows.extend(row_signatures(args[0][: INPUT_ROWS - len(rows)]))
    model.register_forward_pre_hook(note_rows)
    curves: dict[str, list[float]] = {"val": [], "val per sample": [], "test": [], "val accuracy": []}
    lower, higher = (lambda a, b: a < b), (lambda a, b: a > b)
    rules = {"val": lower, "val per sample": lower, "test": lower, "val accuracy": higher}
    while len(states) <= MAX_EPOCHS:
        train_one_epoch(model, loaders.train, criterion, optimizer)
        states.append(copy.deepcopy(model.state_dict()))
        val_loss, val_acc = evaluate(model, loaders.val, criterion)
        # Not through a DataLoader: each pass over one draws a number from torch's generator, and the next epoch's
        # shuffle would not be the set-up's.
        with torch.no_grad():
            model.eval()
            curves["val per sample"].append(criterion(model(splits.val.X), splits.val.Y).item())
            curves["test"].append(sum(criterion(model(x), y).item()
                                      for x, y in zip(splits.test.X.split(BATCH), splits.test.Y.split(BATCH))))
        curves["val"].append(val_loss)
        curves["val accuracy"].append(val_acc)
        if all(_stopping(curves[name], better) for name, better in rules.items()):
            break
    return {"states": states, "rows": tuple(rows), "batches": len(loaders.train), "val_accs": curves["val accuracy"],
            **{name: _stopping(curves[name], better, final=True) for name, better in rules.items()}}


def setup_order(net: ModelValue, seed: int) -> bool | None:
    """Whether the kernel's record of ``net``'s first training inputs is the course set-up's for ``seed``, batch for
    batch: the seed's shuffle of the training split; None where fewer than two batches were recorded."""
    fed = tuple(tuple(row) for row in getattr(net, "input_rows", ()) or ())
    if len(fed) < 2 * BATCH:
        return None
    setup = _course_trajectory(seed)["rows"]
    return fed[:len(setup)] == setup[:len(fed)]


def _course_run(seed: int, restore: bool = True, watch: str = "val") -> dict:
    """The course set-up's run for ``seed``: its model's state, best and stop epochs, and its start.

    ``restore=False`` leaves the model as the run stopped: where one that was never restored ends; ``watch="test"``
    stops early on the test set instead of the validation set.
    """
    trajectory = _course_trajectory(seed)
    best, stopped = trajectory[watch]
    states = trajectory["states"]
    return {"best_epoch": best, "stopped": stopped, "state": states[best if restore else stopped],
            "initial": states[0], "steps": stopped * trajectory["batches"]}


def epoch_held(model: LoadedModel, seed: int) -> int | None:
    """The epoch of the course set-up's run for ``seed`` after which the model's weights are exactly these (0: before
    training); None where they are no epoch's of that run."""
    states = _course_trajectory(seed)["states"]
    return next((epoch for epoch, state in enumerate(states) if _same_state(model, state)), None)


def _same_state(model: LoadedModel, state: dict, initial: bool = False) -> bool:
    """Whether ``model``'s parameters (or, with ``initial``, those it had at its first forward pass) are ``state``."""
    import torch

    tensors = model.initial if initial else model.parameters
    return tensors.keys() == state.keys() and all(
        tensors[k].shape == state[k].shape and torch.allclose(tensors[k].to(state[k].dtype), state[k], atol=1e-6)
        for k in tensors)


def matches_reference(model: LoadedModel, seed: int) -> int | None:
    """The reference's best epoch if ``model`` is exactly the course set-up's restored model for ``seed``."""
    run = _course_run(seed)
    return run["best_epoch"] if _same_state(model, run["state"]) else None


# --- reported figures --------------------------------------------------------------------------


def _splits_problem(data: dict) -> str | None:
    if set(data) != {"train", "val", "test"}:
        return f"expected the keys train, val and test, got {', '.join(map(str, data)) or 'none'}"
    return next((f"{split}: {problem}" for split, desc in data.items() if (problem := data_problem(desc))), None)


@dataclass(frozen=True)
class Off:
    """One reported figure that differs from the grader's measurement, and the other splits it equals."""

    figure: str
    reported: float
    measured: float
    elsewhere: tuple[str, ...]
    batch_mean: bool = False  # it equals the mean of the accuracies of the split's unshuffled batches
    fraction: bool = False  # it is the measured accuracy as a fraction of 1
    loss: str = ""  # the loss convention whose value of the model on this split it equals (is close to, if shuffled)
    lone: bool = False  # of several seeds, the only one whose figure equals that split's: a match chance can give
    truncated: bool = False  # it is the measured accuracy with its decimals cut off (int())
    run_epoch: int = 0  # the epoch of the model's own run (the set-up's, replayed) whose val accuracy it equals
    run_peak: bool = False  # and that is the run's highest val accuracy
    run_best: bool = False  # and that epoch is the run's best (lowest val loss), the one to store restored

    @property
    def explained(self) -> bool:
        return bool((self.elsewhere and not self.lone) or self.batch_mean or self.fraction or self.loss
                    or self.truncated or self.run_epoch)

    def __str__(self) -> str:
        if self.run_best:
            return (f"{self.figure} reported {self.reported:.2f}% is the val accuracy of its run's best epoch, "
                    f"{self.run_epoch} (the course set-up's run, which the grader replays), but the model stored is "
                    f"not that epoch's (measured on it: {self.measured:.2f}%)")
        if self.run_epoch:
            which = "the highest val accuracy of any epoch" if self.run_peak else f"the val accuracy of epoch " \
                f"{self.run_epoch}"
            return (f"{self.figure} reported {self.reported:.2f}% is {which} of its run (the course set-up's, which "
                    f"the grader replays), not what the model stored scores (measured: {self.measured:.2f}%)")
        if self.truncated:
            return (f"{self.figure} reported {self.reported:g} is the grader's measurement, {self.measured:.2f}%, with "
                    "its decimals cut off")
        if self.fraction:
            return (f"{self.figure} reported {self.reported:g} is the accuracy as a fraction of 1: the grader measures "
                    f"{self.measured:.2f}%")
        if self.loss:
            split = self.figure.removesuffix("_acc")
            how = LOSS_CONVENTIONS[self.loss].split(": ", 1)[-1]
            if split not in UNSHUFFLED:  # its batches are shuffled: the same loss, summed in another grouping
                how += ", give or take the grouping a shuffled loader's batches make"
            return (f"{self.figure} reported {self.reported:.4g} is the model's loss on the {SPLIT_WORDS[split]} "
                    f"split ({how}), not its accuracy ({self.measured:.2f}%)")
        if self.batch_mean:
            return (f"{self.figure} reported {self.reported:.2f}% is the mean of the per-batch accuracies over "
                    f"batches of {BATCH}, not the accuracy over all the split's points ({self.measured:.2f}%)")
        if not self.elsewhere:
            return f"{self.figure} reported {self.reported:.2f}%, measured {self.measured:.2f}%"
        own = SPLIT_WORDS[self.figure.removesuffix("_acc")]
        there = _listed([SPLIT_WORDS[s] for s in self.elsewhere])
        if self.lone:
            return (f"{self.figure} reported {self.reported:.2f}%, where the grader measures {self.measured:.2f}% on "
                    f"the {own} split, equals its measurement on the {there} split, but for this seed only: a "
                    "figure from other data can equal it by chance")
        return (f"{self.figure} reported {self.reported:.2f}% is what the grader measures on the {there} split, not "
                f"the {own} split ({self.measured:.2f}%)")


def _batch_mean(net: LoadedModel, dataset) -> float:
    """The mean of the per-batch accuracies over the split's batches of BATCH in order, in %."""
    batches = (net.predict(dataset.X.float()) == dataset.Y).double().split(BATCH)
    return 100 * math.fsum(batch.mean().item() for batch in batches) / len(batches)


def _off_figures(reported: dict, measured: dict, allowed: dict, equal: dict,
                 batch_mean: Callable[[str], float], losses: Callable[[str], dict[str, float]]) -> list[Off]:
    """The figures outside their tolerance, each with what it equals where something does: the accuracy as a
    fraction, the model's loss ``losses(split)`` in some convention, or (``equal``, per figure, or empty) another
    split's accuracy or the mean of per-batch accuracies ``batch_mean(split)``; the last two only on an unshuffled
    split (val, test), computed only then."""
    off = []
    for figure in FIGURES:
        value, split = reported[figure], figure.removesuffix("_acc")
        if abs(value - measured[figure]) <= allowed[figure]:
            continue
        if 0 <= value <= 1 and abs(100 * value - measured[figure]) <= allowed[figure]:
            off.append(Off(figure, value, measured[figure], (), fraction=True))
            continue
        if float(value).is_integer() and value == math.floor(measured[figure]):
            off.append(Off(figure, value, measured[figure], (), truncated=True))
            continue
        # A loss is far below any accuracy a trained model reports: on a shuffled split, within 10% is a match.
        tol = LOSS_TOL if split in UNSHUFFLED else 0.1
        loss = next((name for name, v in losses(split).items() if math.isclose(value, v, rel_tol=tol)), "") \
            if value < 0.5 * measured[figure] else ""
        if loss:
            off.append(Off(figure, value, measured[figure], (), loss=loss))
            continue
        elsewhere = tuple(f.removesuffix("_acc") for f in equal
                          if f != figure and abs(value - measured[f]) <= equal[f])
        by_batch = figure in equal and split in UNSHUFFLED and abs(value - batch_mean(split)) <= equal[figure]
        off.append(Off(figure, value, measured[figure], () if by_batch else elsewhere, by_batch))
    return off


def _in_its_run(off: list[Off], net: LoadedModel, seed: int, equal: float) -> list[Off]:
    """``off``, an unexplained val_acc marked with the epoch of the model's run whose val accuracy it equals, where
    the model is the course set-up's run for ``seed`` (the replay then knows every epoch's figure)."""
    if not any(o.figure == "val_acc" and not o.explained for o in off) or epoch_held(net, seed) is None:
        return off
    trajectory = _course_trajectory(seed)
    accs = trajectory["val_accs"][:trajectory["val"][1]]  # up to the set-up's stop
    marked = []
    best = trajectory["val"][0]
    for o in off:
        epochs = [e for e, acc in enumerate(accs, 1) if abs(o.reported - acc) <= equal]
        if o.figure == "val_acc" and not o.explained and epochs:
            peak = abs(o.reported - max(accs)) <= equal
            at = best if best in epochs else next(
                e for e in epochs if not peak or abs(accs[e - 1] - max(accs)) <= equal)
            o = replace(o, run_epoch=at, run_peak=peak and at != best, run_best=at == best)
        marked.append(o)
    return marked


def _lone_matches(offs: dict[int, list[Off]], seed: int, seeds: int) -> list[Off]:
    """``seed``'s figures, each match on another split marked ``lone`` where, of several seeds, no other seed's same
    figure equals that split: a figure measured on the wrong split is so for every seed the same code measures."""
    def recurs(off: Off) -> bool:
        return any(o.figure == off.figure and set(o.elsewhere) & set(off.elsewhere)
                   for other, row in offs.items() if other != seed for o in row)
    return [replace(o, lone=True) if o.elsewhere and seeds > 1 and not recurs(o) else o
            for o in offs[seed]]


def _rows_of_other_seeds(offs: dict[int, list[Off]], table: dict, measured: dict[int, dict], equal: dict
                         ) -> dict[int, int]:
    """{seed: the one other seed whose model the grader measures at exactly the val and test figures reported for
    it}, for the seeds whose figures are off."""
    whose = {}
    for seed in offs:
        others = [other for other in measured if other != seed and all(
            f in equal and abs(float(table[seed][f]) - measured[other][f]) <= equal[f]
            for f in ("val_acc", "test_acc"))]
        if len(others) == 1:
            whose[seed] = others[0]
    return whose


def _results_hint(offs: dict[int, list[Off]], groups: list[list[int]], models: str,
                  other_points: tuple[int, ...] = ()) -> str:
    """What the differing figures rule in, from what they equal, and from ``other_points`` (the seeds whose models
    the kernel saw learn from points other than the training split's); no cause the numbers do not show."""
    hints = []
    unexplained = {s for s, row in offs.items() for o in row if not o.explained}
    if unexplained & set(other_points):
        seen = sorted(unexplained & set(other_points))
        hints.append(f"The model{'s' * (len(seen) > 1)} of {seeds_word(seen)} learned from other points than the "
                     "set-up's training split (the kernel's record of the first training batches): a figure measured "
                     "on those points is no measurement of the split the set-up fixes. Train and measure every seed "
                     "on the same three splits.")
    shared = [g for g in groups if any(s in offs for s in g)]
    if shared:
        hints.append(" ".join(f"`{models}` stores one and the same model object for seeds {_listed(g)}, so the "
                              "figures of the models that were not stored cannot match it." for g in shared))
    flat = [o for row in offs.values() for o in row]
    if any(o.elsewhere for o in flat):
        hints.append("Where a reported figure equals the grader's measurement of the same model on another split, "
                     "check which data your code measured it on: test_acc must come from the test data, val_acc from "
                     "the validation data and train_acc from the training data.")
    if any(o.batch_mean for o in flat):
        hints.append("A mean of per-batch accuracies gives the points of a smaller last batch more weight than the "
                     "others: count the correct predictions over all the points and divide by their number.")
    if any(o.fraction for o in flat):
        hints.append("Report every accuracy in percent (100 * correct / total).")
    if any(o.run_epoch and not o.run_best for o in flat):
        hints.append("A figure read from the run's history (its highest val accuracy, max(history.val_acc), say) is "
                     "another epoch's than the one the val loss picked and restored: report what the stored model "
                     "scores, evaluated after training.")
    if any(o.truncated for o in flat):
        hints.append("int() drops an accuracy's decimals, which moves it by up to a point: report the figure as "
                     "measured, or rounded (round(acc, 2)).")
    if any(o.loss for o in flat):
        hints.append("A figure that is the model's loss was taken from the wrong place: evaluate(model, loader) "
                     "returns (loss, accuracy), so the accuracy is its second value.")
    if unexplained - set(other_points):
        hints.append("Figures that match no measurement of the exported model come from another model than the one "
                     "exported (for example before its best weights were restored), from other data, or were typed "
                     "by hand: report what your final, restored models score.")
    return " ".join(hints)


@check_kind("seed_results", models=MODELS, results=Param(str, "results", export=True), seeds=SEEDS,
            data=Param(dict, doc="{train = ..., val = ..., test = ...} data descriptions", check=_splits_problem),
            tolerance=Param((int, float), 0.6, "points allowed between reported and measured val/test accuracy"),
            train_tolerance=Param((int, float), 6.0, "points allowed for train accuracy (running vs eval)"))
@per_seed
def seed_results_match(ctx: CheckContext, models: str, results: str, seeds: list, data: dict, tolerance: float,
                       train_tolerance: float) -> Outcome:
    """Reported accuracies per seed against the grader's own measurement of the exported models."""
    nets, table = seed_models(ctx, models, seeds), seed_results(ctx, results, seeds)
    sets = {split: ctx.data.make(desc, f"{ctx.check_id}-{split}") for split, desc in data.items()}
    allowed = {f: train_tolerance if f == "train_acc" else tolerance for f in FIGURES}
    # "Equals" is far tighter than "matches": rounding to one decimal, never one sample's difference.
    equal = {f"{split}_acc": min(0.05, 50 / len(d.Y)) for split, d in sets.items()}
    groups = same_objects(nets)
    shared = {s for g in groups for s in g}  # their figures may describe models never exported
    lines, good, measured_all, offs, epochs_off = [], 0, {}, {}, []
    for seed in seeds:
        measured = {f"{split}_acc": measured_accuracy(nets[seed], d.X, d.Y)[0] for split, d in sets.items()}
        measured_all[seed] = {k: round(v, 2) for k, v in measured.items()}
        reported = {f: float(table[seed][f]) for f in FIGURES}
        if all(v <= 1.0 for v in reported.values()) and max(measured.values()) > 1.0:
            lines.append(f"seed {seed}: report accuracies in percent (you gave {reported['val_acc']:g}, "
                         f"the grader measures {measured['val_acc']:.2f}%)")
            continue
        off = _off_figures(reported, measured, allowed, {} if seed in shared else equal,
                           lambda split, net=nets[seed]: _batch_mean(net, sets[split]),
                           lambda split, net=nets[seed]: val_loss_conventions(net, sets[split], BATCH)[0])
        if off:
            offs[seed] = _in_its_run(off, nets[seed], seed, equal.get("val_acc", 0.05))
            lines.append(seed)  # said once every seed is measured: whether a match on another split recurs
            continue
        best = matches_reference(nets[seed], seed)
        epoch = epoch_held(nets[seed], seed)
        curve = _kept_by(seed, epoch)
        reported_best = int(table[seed]["best_epoch"])
        if curve and reported_best != epoch:  # only where the grader knows the run: the course set-up's
            epochs_off.append(seed)
            stopped = _course_trajectory(seed)[curve][1]
            where = (f"; {stopped} is the epoch where that run stopped" if reported_best == stopped else
                     "; yours is one less: counted from 0" if reported_best == epoch - 1 else "")
            lines.append(f"seed {seed}: best_epoch reported {reported_best}, but the exported model is exactly the "
                         f"course set-up's model for this seed restored to epoch {epoch}, {KEPT_BY[curve]} (epochs "
                         f"counted from 1, as train_model_extended counts them){where}")
            continue
        good += 1
        same = f", best epoch {best}, as the reference run" if best is not None else ""
        lines.append(f"seed {seed}: matches (val {measured['val_acc']:.2f}%, test {measured['test_acc']:.2f}%{same})")
    lines = [f"seed {line}: " + "; ".join(map(str, _lone_matches(offs, line, len(seeds))))
             if isinstance(line, int) else line for line in lines]
    definition = ("The grader measures each exported model itself in eval mode; reported val and test accuracy must "
                  f"match within {tolerance:g} points. Reported train accuracy may be the course's running figure "
                  f"(TA, counted during the best epoch), so it may differ by up to {train_tolerance:g} points.")
    details = {"measured": measured_all}
    if good == len(seeds):
        return Outcome(True, "; ".join(lines) + ". " + definition, details=details)
    train = sets["train"].X
    hint = _results_hint(offs, groups, models, tuple(s for s in offs if learned_elsewhere(nets[s], train) is not None))
    whose = _rows_of_other_seeds(offs, table, measured_all, equal)
    if whose:  # what the figures equal says whose they are: that, not the causes of figures that equal nothing
        # Every row the very same figures, one seed's: a dict shared by all the seeds, not rows filed in another order.
        rows = {tuple(sorted((str(k), repr(v)) for k, v in dict(table[seed]).items())) for seed in seeds}
        one = len(seeds) > 1 and len(rows) == 1 and len(set(whose.values()) | (set(seeds) - set(whose))) == 1
        filed = (" ".join(f"The figures reported for seed {seed} are those the grader measures on seed {other}'s "
                          "model." for seed, other in whose.items()) + (
            f" Every seed's row holds the very same figures, seed {next(iter(set(seeds) - set(whose)))}'s: one row "
            "shared by all the seeds (dict.fromkeys(seeds, {}) makes one dict for every key, and so does one dict "
            "updated in the loop), which the last run to write to it filled in. Make a new dict for each seed's row."
            if one else " Each of those rows is filed under another seed than its model's (rows collected in one "
            "order and keyed by the seeds in another, say): key each row by the seed its model was trained with."))
        hint = filed if set(offs) <= set(whose) else f"{filed} {hint}"
    if epochs_off:
        hint = (hint + " " if hint else "") + ("Report as best_epoch the epoch whose weights your model holds: the "
                                               "best_epoch of that run's history.")
    # A seed whose accuracies match and only best_epoch is off keeps half its share: the figures measured are right.
    return Outcome(False, "; ".join(lines) + "." + (" " + hint if hint else "") + " " + definition,
                   fraction=(good + len(epochs_off) / 2) / len(seeds), details=details)


def _why_untrained(net: ModelValue) -> str:
    """Why, from the kernel's record of its optimizer steps where it holds its own start; else the likeliest cause."""
    return untrained_cause(net) if never_moved(net) else "a copy taken before training, say"


def stepped_unlike(net: ModelValue, optimizer: str, lr: float) -> list[str]:
    """How the kernel saw ``net`` stepped unlike the set-up: by another optimizer class than ``optimizer``, or at
    another LR than ``lr`` (a scheduler, say); [] where its record shows neither."""
    found = []
    used = tuple(getattr(net, "optimizers", ()) or ())
    if optimizer and used and used != (optimizer,):
        found.append(f"trained with {' and '.join(used)}, where the set-up trains with {optimizer}")
    seen = getattr(net, "step_lrs", ()) or ()
    if lr and len(seen) >= 4 and not (math.isclose(seen[2], lr, rel_tol=1e-6)
                                      and math.isclose(seen[3], lr, rel_tol=1e-6)):
        at = f"lr={seen[3]:g}" if math.isclose(seen[2], seen[3], rel_tol=1e-6) else \
            f"LRs from {seen[2]:g} to {seen[3]:g}"
        found.append(f"stepped at {at}, where the set-up's is lr={lr:g}")
    return found


@check_kind("seed_restored", models=MODELS, seeds=SEEDS,
            optimizer=Param(str, "", "the set-up's optimizer class: a model the kernel saw stepped otherwise left the "
                                     "replayed run, and which epoch is its best is not told from the replay"),
            lr=Param(float, 0.0, "the set-up's learning rate, read as optimizer is"))
@per_seed
def seed_restored(ctx: CheckContext, models: str, seeds: list, optimizer: str = "", lr: float = 0.0) -> Outcome:
    """Each model must hold its run's best weights; told where its run is the course set-up's own, replayed here."""
    nets = seed_models(ctx, models, seeds)
    lines, unrestored, on_test, untrained, other_epoch, trained_on = [], [], [], [], [], []
    for seed in seeds:
        net, best, run = nets[seed], matches_reference(nets[seed], seed), _course_run(seed)
        # A model that started elsewhere cannot be any replay of the course set-up: no replay is run for it.
        elsewhere = bool(net.initial) and not _same_state(net, run["initial"], initial=True)
        held = None if elsewhere or best is not None else epoch_held(net, seed)
        curve = _kept_by(seed, held)
        if best is not None:
            lines.append(f"seed {seed}: restored to its best epoch {best}")
        elif curve == "val per sample":
            lines.append(f"seed {seed}: restored to epoch {held}, {KEPT_BY[curve]}")
        elif _same_state(net, run["initial"]):  # no training ends exactly where it began
            untrained.append(seed)
            lines.append(f"seed {seed}: it holds the weights the course set-up's model starts from for this seed: "
                         f"the model stored was never trained ({_why_untrained(net)})")
        elif not elsewhere and _same_state(net, _course_run(seed, restore=False)["state"]):
            unrestored.append(seed)
            lines.append(f"seed {seed}: it is the course set-up's model for this seed as its run stopped, at epoch "
                         f"{run['stopped']}, not restored to its best epoch {run['best_epoch']}")
        elif not elsewhere and _same_state(net, (watched := _course_run(seed, watch="test"))["state"]):
            on_test.append(seed)
            lines.append(f"seed {seed}: it is the course set-up's run with early stopping on the test set, restored to "
                         f"epoch {watched['best_epoch']}, where the test loss was lowest; on the validation set the "
                         f"best epoch is {run['best_epoch']}")
        elif held and curve not in ("val", "val per sample") and stepped_unlike(net, optimizer, lr):
            # On the set-up's path up to epoch `held`, then off it (a scheduler that changes the LR later, say): its
            # own best epoch may be that one, and the trained-steps check says how it was trained.
            lines.append(f"seed {seed}: it holds the course set-up's weights after epoch {held}, and its run then left "
                         "the set-up's (the kernel saw it stepped otherwise), so the grader cannot tell whether that "
                         "was its own best epoch")
        elif held and curve not in ("val", "val per sample"):
            other_epoch.append(seed)
            why = f", {KEPT_BY[curve]}, which early stopping on it keeps" if curve else ""
            lines.append(f"seed {seed}: it holds the course set-up's weights after epoch {held}{why}, not those of its "
                         f"best epoch {run['best_epoch']}, where the val loss was lowest")
        elif net.initial and not elsewhere and (took := max(net.steps.values(), default=0)) > run["steps"] and \
                not getattr(net, "loaded", False) and setup_order(net, seed) and not stepped_unlike(net, optimizer, lr):
            # The set-up's start, batches and optimizer make the set-up's run, step for step: steps past its end
            # that leave every epoch's weights were taken after it.
            trained_on.append(seed)
            lines.append(f"seed {seed}: its run is the course set-up's (its start, its first batches and its "
                         f"optimizer, as the kernel recorded them), which stops at epoch {run['stopped']} after "
                         f"{run['steps']} optimizer steps, but its parameters took {took}, and its weights are no "
                         "epoch's of that run: it was trained on after its run ended")
        else:
            lines.append(f"seed {seed}: its run is not the course set-up's own, so the grader cannot tell which "
                         "epoch's weights it holds")
    message = "; ".join(lines) + "."
    if not unrestored and not on_test and not untrained and not other_epoch and not trained_on:
        return Outcome(True, message)
    if untrained:
        message += " Store each seed's model after its training, the one whose best weights were put back."
    if unrestored:
        message += (" Put the best epoch's weights back before storing the model: train_model_extended does so with "
                    "patience set (unless restore_best=False); a loop of your own must keep a copy "
                    "(copy.deepcopy(model.state_dict())) at each new best and load it after the loop.")
    if on_test:
        message += (" Early stopping must watch the validation set (pass val_loader): an epoch chosen by the test loss "
                    "makes the test accuracy an optimistic figure, as the test set then helped pick the model.")
    if other_epoch:
        message += (f" Keep the epoch of the lowest val loss, and stop after {PATIENCE} epochs without a lower one: "
                    "the set-up's early stopping watches the val loss, as train_model_extended does.")
    if trained_on:
        message += (" Store each model as its run left it, with its best weights put back, and train it no further: "
                    "a train accuracy is measured in eval mode under torch.no_grad(), without optimizer steps.")
    wrong = unrestored + on_test + untrained + other_epoch + trained_on
    return Outcome(False, message, fraction=1 - len(wrong) / len(seeds))


# What early stopping on each of the trajectory's curves keeps; the first two are the set-up's own.
KEPT_BY = {"val": "the epoch with its lowest val loss",
           "val per sample": "the epoch with its lowest val loss per sample",
           "val accuracy": "the epoch with its highest val accuracy", "test": "the epoch with its lowest test loss"}


def _kept_by(seed: int, epoch: int | None) -> str | None:
    """The curve of KEPT_BY whose early stopping keeps ``epoch`` of the course set-up's run for ``seed``; None where
    none does (or for no epoch)."""
    trajectory = _course_trajectory(seed)
    return next((key for key in KEPT_BY if epoch and trajectory[key][0] == epoch), None)


# --- spread and hidden data --------------------------------------------------------------------


def _twins_message(nets: dict[int, LoadedModel], twins: list[tuple[int, int]]) -> str:
    import torch

    pairs = ", ".join(f"{a} and {b}" for a, b in twins)
    same_start = all(nets[a].initial and nets[a].initial.keys() == nets[b].initial.keys()
                     and all(torch.equal(nets[a].initial[k], nets[b].initial[k]) for k in nets[a].initial)
                     for a, b in twins)
    found = ("they started from the same initial weights" if same_start else
             "separate objects with the same weights: the runs were seeded alike, or one model was copied for several")
    return (f"The models for seeds {pairs} are identical ({found}). Call torch.manual_seed(seed) with each run's own "
            "seed right before creating its model, and store each run's own model.")


@check_kind("seed_spread", models=MODELS, seeds=SEEDS, data=Param(dict, doc="the test set", check=data_problem),
            train_data=Param(dict, {}, "the training split: the spread is the seed's alone only where each model "
                             "learned from it", check=lambda d: data_problem(d) if d else None))
@per_seed
def seed_spread(ctx: CheckContext, models: str, seeds: list, data: dict, train_data: dict | None = None) -> Outcome:
    """The seeds must give different models; reports the spread of their test accuracy."""
    nets = seed_models(ctx, models, seeds)
    groups = same_objects(nets)
    if groups:
        stored = "; ".join(f"seeds {_listed(g)}" for g in groups)
        return Outcome(False, f"`{models}` stores one and the same model object for {stored}: the grader received "
                       "one model where each seed needs its own. Build a new model right after each "
                       "torch.manual_seed(seed), train it, and store that one under its seed.")
    twins = [(a, b) for i, a in enumerate(seeds) for b in seeds[i + 1:] if nets[a].same_weights(nets[b])]
    if twins:
        return Outcome(False, _twins_message(nets, twins))
    test = ctx.data.make(data, ctx.check_id)
    accs = {s: measured_accuracy(nets[s], test.X, test.Y)[0] for s in seeds}
    low, high = min(accs, key=accs.get), max(accs, key=accs.get)
    spread = accs[high] - accs[low]
    metrics = {"spread": round(spread, 4), **{f"test_acc_{s}": round(a, 4) for s, a in accs.items()}}
    if all(chance_level(a, test.Y) is not None for a in accs.values()):
        return Outcome(False, f"Test accuracy ranges from {accs[low]:.2f}% to {accs[high]:.2f}%, about what always "
                       "predicting one class scores, for every seed: the models show nothing learned, so their "
                       "spread says nothing about what a seed does to training. Store each seed's trained model.",
                       metrics=metrics)
    return Outcome(True, f"Test accuracy ranges from {accs[low]:.2f}% (seed {low}) to {accs[high]:.2f}% (seed {high}): "
                   f"a spread of {spread:.2f} points {_whose_spread(ctx, nets, train_data)}.", metrics=metrics)


def _whose_spread(ctx: CheckContext, nets: dict, train_data: dict | None) -> str:
    """What the spread comes from, as far as the kernel's record of each model's training inputs shows."""
    if not train_data:
        return "between the seeds' runs"
    train = ctx.data.make(train_data, ctx.check_id)
    table = signature_table(train.X)
    elsewhere = [seed for seed, net in nets.items() if learned_elsewhere(net, train.X, table)]
    if elsewhere:
        return (f"between the seeds' runs, not from the seed alone: the model{'s' * (len(elsewhere) > 1)} for "
                f"{seeds_word(elsewhere)} learned from other points than the training split "
                "(the kernel's record of its first training batches), so the runs differ in their data too")
    if all((share := fed_from(net, train.X, table=table)) is not None and share[0] * 4 >= share[1] * 3
           for net in nets.values()):
        # The same data is not yet the same run: a loader's generator shared by all seeds orders each run's batches
        # by the runs before it. Each model being the set-up's own run for its seed is.
        if all(epoch_held(net, seed) for seed, net in nets.items()):
            return "from the seed alone (each model learned from the training split, the kernel's record shows)"
        return ("between the seeds' runs, each of which learned from the training split (the kernel's record shows); "
                "whether anything besides the seed differs between them (a batch order drawn from a generator the "
                "runs share, say) the grader cannot tell, as not every model is the course set-up's own run for its "
                "seed")
    return "between the seeds' runs"


@check_kind("accuracy_each", models=MODELS, seeds=SEEDS, data=Param(dict, check=data_problem),
            min_accuracy=Param((int, float)), describe=Param(str, "the data"))
@per_seed
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
