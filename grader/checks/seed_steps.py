"""How each seed's model trained: the optimizer that stepped it, at which LR, and the optimizer steps its parameters
took, against its reported best epoch (all as the kernel recorded them).

A run of the course set-up takes one step per training batch in every epoch it runs: best_epoch + patience
epochs when patience runs out, n_epochs otherwise. A model stored as a copy taken at its best epoch carries
the steps until then (the kernel hands a deep copy its original's count). Counting off by one, such as a
0-based best_epoch or a stop one epoch late, is for other checks to judge and passes here. A model whose
parameters no torch optimizer stepped (rebuilt and loaded with the weights, or trained by hand) is not judged,
nor one with fewer steps than its best epoch needs (a copy refreshed in place keeps its count from the copy).
"""

from __future__ import annotations

from typing import Any

from grader.checks.base import CheckContext, Outcome
from grader.checks.gradients import loss_changes, restarts_message
from grader.checks.mnist import stepped_settings_changed
from grader.checks.models import (
    HAND_TRAINED,
    learned_elsewhere,
    moved_without_a_step,
    never_moved,
    signature_table,
    untrained_cause,
)
from grader.checks.registry import Param, check_kind
from grader.checks.seed_starts import REINITIALISED, Start, built_words, model_start, seeded_build
from grader.checks.seeds import (BATCH, MODELS, SEEDS, epoch_held, per_seed, seed_models, seed_results, seeds_word,
                                 setup_order, stepped_unlike)


def allowed_epochs(best: int, patience: int, n_epochs: int) -> set[int]:
    """Epochs of training a model reporting ``best`` may hold: a copy at its best epoch, or the whole run.

    >>> sorted(allowed_epochs(13, 20, 500))
    [12, 13, 14, 32, 33, 34, 35]
    """
    stops = {best + patience + d for d in (-1, 0, 1, 2)}
    ran_out = {n_epochs - 1, n_epochs} if max(stops) >= n_epochs else set()
    return {best - 1, best, best + 1} | {min(e, n_epochs) for e in stops} | ran_out


# What each way of being off leaves, as the measurement shows it: never one cause where several give the same count.
CAUSES = {
    "twice": "twice the training batches per epoch: the validation set added to the training data, batches of 16, or "
             "a pass that also steps the optimizer on the validation batches",
    "length": "a run that went on past its patience or stopped before it, a model that had trained before this seed's "
              "run (one model trained on from seed to seed), or a best_epoch that is not the stored model's run's",
    "batches": "steps on only some batches, or on more than the training batches, or a loader of another batch size",
}


def _starts_here(net, seed: int, reference: str, seeds: list) -> bool:
    """Whether the model's recorded start is the build right after torch.manual_seed(seed): its record is this run's."""
    start = model_start(net, reference, seeds)
    return start.recorded and (start.seed, start.build) == (seed, 1)


def _measured(steps: int, best: int, patience: int, n_epochs: int, batches: int) -> tuple[str, list[str]]:
    """What ``steps`` is, against the run that best_epoch implies, and which of CAUSES that leaves."""
    ran = min(best + patience, n_epochs)
    allowed = allowed_epochs(best, patience, n_epochs)
    if steps % (2 * batches) == 0 and steps // (2 * batches) in allowed:
        return (f"{steps} is {2 * batches} per epoch over {steps // (2 * batches)} epochs, as many as its best_epoch "
                f"implies, twice the {batches} training batches", ["twice"])
    # As many epochs as best_epoch implies, at another number of steps an epoch: full-batch training, say.
    fits = [f"{k} per epoch over {steps // k} epochs" for k in range(1, batches)  # fewer: larger batches, or one
            if steps % k == 0 and steps // k in allowed]
    other = (f"{' or '.join(fits)}, as many epochs as its best_epoch implies, where the set-up's loader makes "
             f"{batches} batches an epoch")
    if steps % batches == 0:
        said = (f"{steps} steps are {_epochs(steps // batches)} of {batches} batches, where best_epoch {best} implies "
                f"{ran} (or {best} for a copy taken at the best epoch)")
        return (f"{said}; or {other}", ["length", "batches"]) if fits else (said, ["length"])
    if fits:
        return f"{steps} is {other}", ["batches"]
    return f"{steps} is not a whole number of epochs of {batches} batches", ["batches"]


def _one_order_for_all(nets: dict, seeds: list[int]) -> list[int]:
    """The seeds whose models the kernel saw fed the same training rows as another seed's, every one it recorded, in
    the same order, none of them the set-up's own order for its seed: two shuffles of the 180 points agree with
    probability 1/180!. All of them, not the first batches: a batch of fixed points looked at first (a summary run in
    training mode, say) is the same for every seed."""
    firsts: dict[tuple, list[int]] = {}
    for seed in seeds:
        rows = tuple(tuple(r) for r in getattr(nets[seed], "input_rows", ()) or ())
        if len(rows) >= 2 * BATCH and setup_order(nets[seed], seed) is False:
            firsts.setdefault(rows, []).append(seed)
    return sorted(s for group in firsts.values() if len(group) > 1 for s in group)


def _epochs(n: int) -> str:
    return f"{n} epoch{'s' * (n != 1)}"


def _trained_otherwise(net: Any, optimizer: str, lr: float) -> list[str]:
    """How the kernel saw ``net``'s parameters stepped unlike the set-up: another optimizer class, another LR, or
    settings other than the class's defaults."""
    found = stepped_unlike(net, optimizer, lr)
    used = tuple(getattr(net, "optimizers", ()) or ())
    changed = stepped_settings_changed(net, optimizer) if optimizer and used == (optimizer,) else []
    if changed:
        found.append(f"its {optimizer} was made with {', '.join(changed)}")
    return found + loss_changes(net) + _one_order(net)


def _one_order(net: Any) -> list[str]:
    """Where the kernel's record of the first training batches shows a second epoch that fed the model the same points
    in the same order as the first: the set-up's loader reshuffles every epoch, and two shuffles of the 180 points
    agree with probability 1/180!."""
    rows = tuple(getattr(net, "input_rows", ()) or ())
    seen: set = set()
    epoch = next((i for i, row in enumerate(rows) if row in seen or seen.add(row)), None)  # the first point again
    if not epoch or epoch < 2 or len(rows) < 2 * epoch or rows[epoch:2 * epoch] != rows[:epoch]:
        return []
    return [f"its first two epochs fed it the same {epoch} points in the same order (the kernel's record of its first "
            "training batches), where the set-up's loader reshuffles them every epoch: batches made once and reused (a "
            "list of the loader's batches, say), the seed set again before each epoch, or a loader that does not "
            "shuffle"]


def _counted(net: Any, best: int, batches: int, patience: int, n_epochs: int) -> tuple[str, list[str] | None]:
    """What ``net``'s recorded optimizer steps say of its run, and the CAUSES they leave (None: nothing is off)."""
    counted = net.steps
    if not counted:
        return ("no optimizer step was recorded for its parameters (a model built anew and loaded with trained "
                "weights, one trained without a torch optimizer, or one never trained: an optimizer made for another "
                "model's parameters), so its training was not counted here"), None
    steps = max(counted.values())
    if steps % batches == 0 and steps // batches in allowed_epochs(best, patience, n_epochs):
        return f"{steps} steps, {_epochs(steps // batches)} of {batches} batches", None
    if getattr(net, "loaded", False):  # a run resumed into a new model: the steps before it are another object's
        return (f"its parameters took {steps} optimizer steps after it was given weights by load_state_dict, before "
                "it first ran (a run resumed into a new model, say), so the steps before that are another model's "
                "and its training was not counted"), None
    if steps < (best - 1) * batches and steps % batches == 0:
        # Fewer steps than its own best epoch needs: no run gives that, but a copy refreshed in place does
        # (copy.deepcopy once, then load_state_dict into it), whose count stays the copy's: whole epochs, as it
        # was copied at an epoch's end. Not judged.
        return (f"its parameters took {steps} optimizer steps, fewer than the {best} epochs before its best epoch "
                "need; a copy taken early and then refreshed in place (load_state_dict) keeps the count it had when "
                "copied, so its training was not counted"), None
    said, cause = _measured(steps, best, patience, n_epochs, batches)
    return f"its parameters took {steps} optimizer steps; {said}", cause


@check_kind("seed_steps", models=MODELS, results=Param(str, "results", export=True), seeds=SEEDS,
            batches=Param(int, doc="training batches per epoch in the set-up (180 points in batches of 32: 6)"),
            patience=Param(int, doc="the set-up's patience"), n_epochs=Param(int, doc="the set-up's epoch budget"),
            optimizer=Param(str, "", "the optimizer class the set-up trains with, as the kernel recorded the classes "
                            "that stepped each model ('': any)"),
            lr=Param((int, float), 0.0, "the set-up's constant learning rate, as the kernel recorded the LRs each "
                     "model was stepped at (0: any)"),
            reference=Param(str, "SimpleMLP", "the course model the task builds after seeding: a model still holding "
                            "a seeded build's weights, with no optimizer step recorded, never trained"),
            train_data=Param(dict, {}, "the set-up's training split: a model whose first training batches (the "
                             "kernel's record) held fewer than a quarter of its points trained on other data ({}: not "
                             "compared)"))
@per_seed
def seed_steps(ctx: CheckContext, models: str, results: str, seeds: list, batches: int, patience: int,
               n_epochs: int, optimizer: str = "", lr: float = 0.0, reference: str = "SimpleMLP",
               train_data: dict | None = None) -> Outcome:
    """Each model trained as the set-up does (its optimizer class and LR), one optimizer step per training batch, for
    the epochs its reported best epoch implies."""
    nets, table = seed_models(ctx, models, seeds), seed_results(ctx, results, seeds)
    train = ctx.data.make(train_data, ctx.check_id).X if train_data else None
    points = signature_table(train) if train is not None else None  # made once for every seed's model
    lines, off, causes = [], [], []
    for seed in seeds:
        net = nets[seed]
        share = learned_elsewhere(net, train, points)
        if share is not None:
            off.append(seed)
            lines.append(f"seed {seed}: of the {share[1]} inputs the kernel recorded in its first training batches, "
                         f"{'only ' * bool(share[0])}{share[0]} are points of the training split: it trained on "
                         "other data (a training set generated with another seed, say, or inputs changed on their way "
                         "to the model)")
            continue
        # Weights still at the first forward pass are ambiguous alone (a model given trained weights before it first
        # ran, say); with steps recorded on them they never trained.
        if never_moved(net) and (net.steps or net.idle_steps):
            off.append(seed)
            lines.append(f"seed {seed}: its weights are still those of its first forward pass, so it never trained: "
                         f"{untrained_cause(net)}")
            continue
        fresh = None if net.steps or net.idle_steps else seeded_build(list(net.parameters.values()), reference, seeds)
        if fresh is not None:  # no trained weights are a fresh build's: nothing trained it
            off.append(seed)
            lines.append(f"seed {seed}: its weights are still those of {built_words(Start(True, *fresh), reference)}, "
                         "and the kernel recorded no optimizer step on them, so it never trained (its loop steps an "
                         "optimizer made for another model's parameters, say, or none)")
            continue
        if optimizer and moved_without_a_step(net):  # which rule moved it, the record cannot say
            off.append(seed)
            lines.append(f"seed {seed}: {HAND_TRAINED}, where the set-up trains with torch's {optimizer}"
                         + (f" at lr={lr:g}" if lr else "") + "; what such an update does cannot be read from the "
                         "record, so it is not counted as the set-up's training")
            continue
        otherwise = _trained_otherwise(net, optimizer, lr)
        if otherwise:
            off.append(seed)
            lines.append(f"seed {seed}: {'; '.join(otherwise)}")
            continue
        said, cause = _counted(net, int(table[seed]["best_epoch"]), batches, patience, n_epochs)
        restarted = restarts_message(net)  # with the count: a model trained on from an earlier run shows in both
        held = epoch_held(net, seed) if cause is not None or restarted else None
        steps = max(net.steps.values(), default=0)
        if held and not restarted and steps % batches == 0 and steps // batches in allowed_epochs(held, patience,
                                                                                                  n_epochs):
            # The set-up's own run, its steps that run's own: what does not fit them is the best epoch reported.
            lines.append(f"seed {seed}: its weights are the course set-up's own run for seed {seed} after epoch "
                         f"{held}, and its {steps} steps ({_epochs(steps // batches)} of {batches} batches) fit that "
                         f"run, whose best epoch is not the {int(table[seed]['best_epoch'])} reported beside it: the "
                         "reported row is another run's (see the reported figures' check)")
            continue
        # Weights only the set-up's own training gives, from a record that starts elsewhere: the record counts an
        # earlier run of the object too. A record that starts at this seed's own build is this run's, count and all.
        if held and not _starts_here(net, seed, reference, seeds):
            lines.append(f"seed {seed}: {REINITIALISED.format(seed=seed, epoch=held)}, and its step count "
                         f"({steps}) runs on from that earlier run")
            continue
        if cause is not None or restarted:
            off.append(seed)
            causes += [c for c in cause or () if c not in causes]
        lines.append(f"seed {seed}: {'; and '.join(filter(None, (restarted, said)))}")
    alike = _one_order_for_all(nets, [s for s in seeds if s not in off])
    if alike:
        off += alike
        lines.append(f"{seeds_word(alike)} fed their models the same first training points in the same order (the "
                     "kernel's record of their first batches), where the set-up's loader shuffles with each seed's own "
                     "draw: the batch order does not follow the seed (a DataLoader given a torch.Generator() of its "
                     "own, made without the seed or seeded alike for every run, say), so the runs differ by their "
                     "start alone")
    message = "; ".join(lines) + "."
    if not off:
        return Outcome(True, message, metrics={"off": 0})
    left = f" What this leaves: {'; or '.join(CAUSES[c] for c in causes)}." if causes else ""
    return Outcome(False, f"{message}{left} Train each seed's own model as the set-up does, on the training split "
                   "only, one step per batch of the set-up's loader, and report its own best epoch.",
                   fraction=1 - len(off) / len(seeds), metrics={"off": len(off)})
