"""Where each seed's model started: the weights the kernel's probe recorded at its first forward pass.

Those weights are compared with the models ``torch.manual_seed(n)`` gives when built right after it
(and the 2nd, 3rd, ... built after it), for the exercise's seeds and a few common ones. A record that
is missing, or that cannot be a start, is never read as a seeding mistake: the check then says what
the final weights alone show.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import reference as course
from grader.checks.base import CheckContext, Outcome
from grader.checks.registry import Param, check_kind
from grader.checks.seeds import (MODELS, SEEDS, epoch_held, matches_reference, per_seed, same_objects, seed_models,
                                 seeds_word)

if TYPE_CHECKING:
    from grader.loading.model_graph import LoadedModel

# Seeds whose first models the grader recognises in a recorded start: the exercise's own, 0-100 and a few habits.
KNOWN_SEEDS = (*range(101), 123, 1234, 12345, 2024, 2025, 2026)
BUILDS = 4  # the first models built after one torch.manual_seed call that the grader recognises


@dataclass(frozen=True)
class Start:
    """What a model's recorded first-forward weights show: the ``build``-th model after torch.manual_seed(seed)."""

    recorded: bool  # a record of its starting weights exists and can be compared
    seed: int | None = None  # None: a start the grader does not recognise
    build: int = 0
    unusable: str = ""  # why there is no usable record, in a student's terms
    loaded: bool = False  # the start is the weights load_state_dict gave it before its first forward pass


@functools.lru_cache(maxsize=8)
def _seeded_builds(model: str | tuple, seeds: tuple[int, ...], dtype: str = "float32"
                   ) -> tuple[tuple[int, int, tuple], ...]:
    """(seed, k, parameters) of the k-th model built after ``torch.manual_seed(seed)``: the course model named
    ``model``, or one made of the nn.Linear layers ``model`` lists as (in, out, bias), built in that order, under
    torch's default ``dtype`` (a float64 default draws other numbers from the same seed)."""
    import torch

    def build() -> list:
        if isinstance(model, str):
            return list(course.model_class(model)().parameters())
        return [p for n_in, n_out, bias in model for p in torch.nn.Linear(n_in, n_out, bias=bias).parameters()]

    builds, default = [], torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):  # the grader's own random state stays as it was
        try:
            torch.set_default_dtype(getattr(torch, dtype))
            for seed in seeds:
                torch.manual_seed(seed)
                builds += [(seed, k, tuple(p.detach().clone() for p in build())) for k in range(1, BUILDS + 1)]
        finally:
            torch.set_default_dtype(default)
    return tuple(builds)


def _untrained(tensors: list) -> bool:
    """Within the default initialisation's range |w| <= 1/sqrt(fan_in) (a bias takes its weight's): not yet trained."""
    bound = None
    for t in tensors:
        if t.ndim >= 2:
            bound = 1 / math.sqrt(math.prod(t.shape[1:]))
        if bound is None or t.ndim == 0:
            return True  # a layout the rule does not cover: the record is taken as it is
        if float(t.abs().max()) > bound * (1 + 1e-6):
            return False
    return True


def _linear_layers(tensors: list) -> tuple[tuple[int, int, bool], ...] | None:
    """(in, out, bias) of each nn.Linear whose weight and bias ``tensors`` are, in order; None if they are not that."""
    layers, i = [], 0
    while i < len(tensors):
        weight = tensors[i]
        if weight.ndim != 2:
            return None
        bias = i + 1 < len(tensors) and tensors[i + 1].ndim == 1 and tensors[i + 1].shape[0] == weight.shape[0]
        layers.append((int(weight.shape[1]), int(weight.shape[0]), bias))
        i += 2 if bias else 1
    return tuple(layers)


def seeded_build(tensors: list, reference: str, seeds: list) -> tuple[int, int] | None:
    """(seed, build) of the ``reference`` built build-th after torch.manual_seed(seed) whose weights are ``tensors``.

    A class of the student's own whose parameters are nn.Linear layers (the reference's, declared in another order,
    say) is replayed as those layers, built in the order of its parameters.
    """
    import torch

    known = tuple((*seeds, *(s for s in KNOWN_SEEDS if s not in seeds)))
    layers = _linear_layers(tensors)
    # float64 weights: built under a float64 default, or built in float32 and cast (model.double()).
    dtypes = ("float32", "float64") if any(t.dtype == torch.float64 for t in tensors) else ("float32",)
    for builds in [_seeded_builds(shape, known, dtype) for dtype in dtypes
                   for shape in (reference, *([layers] if layers else []))]:
        for seed, build, params in builds:
            if len(params) == len(tensors) and all(p.shape == t.shape and torch.equal(p, t.to(p.dtype))
                                                   for p, t in zip(params, tensors)):
                return seed, build
    return None


def model_start(net: LoadedModel, reference: str, seeds: list) -> Start:
    """Where ``net`` started, from its recorded initial weights (compared in parameter order, as built)."""
    import torch

    initial = list(net.initial.values())
    if not initial or set(net.initial) != set(net.parameters):
        never_trained = seeded_build(list(net.parameters.values()), reference, seeds)
        if never_trained is not None:  # its weights now are a seeded build's: where it started, and still is
            return Start(True, *never_trained)
        loaded = [net.loaded_start[name] for name in net.parameters if name in net.loaded_start]
        # Weights given before its first pass that it then trained from: a fresh model's (a template copied into
        # each seed's model, say) are its start; a trained model's (a run resumed from a checkpoint) are not.
        if net.steps and len(loaded) == len(net.parameters) and _untrained(loaded):
            found = seeded_build(loaded, reference, seeds)
            return Start(True, *found, loaded=True) if found else Start(True, loaded=True)
        return Start(False, unusable="the grader has no record of its weights before training (a record exists only "
                                     "for a model object that ran forward in a graded run, or a deep copy of one; "
                                     "weights loaded into another model have none)")
    found = seeded_build(initial, reference, seeds)
    if found is not None:
        return Start(True, *found)
    unchanged = all(torch.equal(t, net.parameters[k]) for k, t in net.initial.items())
    if not _untrained(initial) and not (net.steps and not unchanged):
        # Outside a fresh build's range, trained weights loaded before the first pass look like this; optimizer
        # steps recorded from there on show it was the start all the same (weights initialised another way).
        return Start(False, unusable="its weights at its first forward pass lie outside the range of a fresh "
                                     "initialisation, and no training was recorded from there, so they are not where "
                                     "it started")
    if unchanged:
        # Unchanged since its first forward pass: trained weights loaded into a new model look just like this.
        return Start(False, unusable="its weights never changed after its first forward pass, so that pass may have "
                                     "come after training (as for a model given trained weights before it ran)")
    return Start(True)


def built_words(start: Start, reference: str) -> str:
    """Which seeded build ``start`` is, in words: 'a SimpleMLP built right after torch.manual_seed(3)'."""
    if start.build == 1:
        return f"a {reference} built right after torch.manual_seed({start.seed})"
    ordinal = {2: "2nd", 3: "3rd"}.get(start.build, f"{start.build}th")
    return f"the {ordinal} {reference} built after torch.manual_seed({start.seed})"


def _start_line(seed: int, start: Start, reference: str, shared: list[int]) -> str:
    """One failing seed's start in words: what was measured and what it rules in."""
    right = f"torch.manual_seed({seed})"
    if shared:
        began = (f"which started as {built_words(start, reference)}" if start.seed is not None
                 else f"whose initial weights are not those of a {reference} built right after {right}")
        return f"seed {seed}: the same model object as for {seeds_word(shared)}, {began}"
    if start.build == 1:
        return (f"seed {seed}: its initial weights are those of {built_words(start, reference)}, not {right}: it was "
                f"seeded with {start.seed}, built before its own {right} was called, or given such a model's weights "
                "(load_state_dict)")
    others = "another model was" if start.build == 2 else f"{start.build - 1} other models were"
    return (f"seed {seed}: its initial weights are those {built_words(start, reference)} gets, not those of one built "
            f"right after {right}: {others} built between that seeding and this one")


def _copies(nets: dict[int, LoadedModel], starts: dict[int, Start]) -> dict[int, int]:
    """seed -> the other seed whose run its model may be: another object holding the very weights of the model
    stored for that seed, which started right after that seed's torch.manual_seed (one checkpoint file every run
    overwrote, say, or every run seeded alike)."""
    from grader.checks.models import same_weights

    found = {}
    for seed, start in starts.items():
        owner = start.seed if start.recorded and start.build == 1 else None
        if owner is not None and owner != seed and owner in nets and nets[owner] is not nets[seed] and \
                starts[owner].seed == owner and same_weights(nets[seed].parameters, nets[owner].parameters):
            found[seed] = owner
    return found


def _start_lines(starts: dict[int, Start], groups: list[list[int]], reference: str,
                 copies: dict[int, int] | None = None) -> list[str]:
    """A line per seed whose recorded start is not its own; unrecognised starts share one line."""
    lines, lost = [], []
    for seed, start in starts.items():
        if not start.recorded or (start.seed, start.build) == (seed, 1):
            continue
        shared = [s for g in groups if seed in g for s in g if s != seed]
        if seed in (copies or {}):
            owner = copies[seed]
            same = [s for s, o in copies.items() if o == owner]
            if seed == same[0]:
                lines.append(f"{seeds_word(same)}: {'its model holds' if len(same) == 1 else 'each model holds'} the "
                             f"very weights of the model stored for seed {owner}, which started as a {reference} built "
                             f"right after torch.manual_seed({owner}): seed {owner}'s run stored in its place (one "
                             "checkpoint file that every seed's run writes over, say, or a copy of the last run), or a "
                             f"run of its own seeded with {owner} too (the same seed gives the same start and the same "
                             "batches)")
            continue
        if start.seed is None and not shared:
            lost.append(seed)
        else:
            lines.append(_start_line(seed, start, reference, shared))
    for group in ([s for s in lost if not starts[s].loaded], [s for s in lost if starts[s].loaded]):
        if group:
            which = ("the weights load_state_dict gave the model before its first forward pass, which it trained "
                     "from, are" if starts[group[0]].loaded else "the initial weights are")
            lines.append(f"{seeds_word(group)}: {which} not those of a {reference} built right after "
                         f"torch.manual_seed(seed), nor those of any of the first {BUILDS} built after "
                         "torch.manual_seed(n) for n from 0 to 100 or a few common seeds (123, 1234, 12345, 2024 to "
                         "2026)")
    return lines


# A model object that ran forward for one seed, then was re-initialised in place for the next (reset_parameters()
# after torch.manual_seed, load_state_dict of a fresh build): the record keeps its first pass, not this run's start.
REINITIALISED = ("its weights are the course set-up's own run for seed {seed} after epoch {epoch}, which starts from "
                 "a model built right after torch.manual_seed({seed}); the object's first forward pass came before "
                 "it was re-initialised for this seed, so that record is not this run's start")
START_CAUSES = ("What remains possible: torch's own generator was never seeded (random.seed, numpy's seed and "
                "torch.cuda.manual_seed leave the one that initialises a model on the CPU as it was), the model was "
                "built before torch.manual_seed(seed) was called, something drew random numbers between seeding and "
                "building (another model, data, a shuffled pass over a loader), or its weights were changed before "
                "training.")


LOADED_CAUSE = ("The weights it loaded came from a model that was not built right after that seed's "
                "torch.manual_seed (one model made once and copied into every seed's, say): load nothing into a "
                "seed's model before training, or only what was saved from the model built right after its seed.")


def _start_advice(starts: dict[int, Start], groups: list[list[int]], reference: str) -> str:
    unknown = [s for s in starts.values() if s.recorded and s.seed is None]
    advice = ([START_CAUSES] if any(not s.loaded for s in unknown) else []) + \
        ([LOADED_CAUSE] if any(s.loaded for s in unknown) else [])
    if groups:
        advice.append("Each seed needs its own model object: build a new one after each torch.manual_seed(seed) and "
                      "store that one under its seed.")
    return " ".join(advice + [f"For each seed, call torch.manual_seed(seed) and build its {reference} right after it."])


def _passed(right: list[int], seeds: list, reference: str) -> str:
    if not right:
        return "No model's start could be checked."
    who = ("Every model starts" if len(right) == len(seeds) else
           f"The models for {seeds_word(right)} start" if len(right) > 1 else f"The model for seed {right[0]} starts")
    return (f"{who} from the weights of a {reference} built right after its own torch.manual_seed(seed), as its "
            "weights at its first forward pass show.")


@check_kind("seed_start", models=MODELS, seeds=SEEDS,
            reference=Param(str, "SimpleMLP", "the course model the task builds after seeding",
                            choices=lambda: course.MODELS))
@per_seed
def seed_start(ctx: CheckContext, models: str, seeds: list, reference: str) -> Outcome:
    """Each model must start from the weights ``reference`` gets when built right after torch.manual_seed(its seed)."""
    nets = seed_models(ctx, models, seeds)
    groups = same_objects(nets)
    starts = {seed: model_start(nets[seed], reference, seeds) for seed in seeds}
    notes, replayed = [], []
    for seed, start in starts.items():
        held = epoch_held(nets[seed], seed) if start.recorded and (start.seed, start.build) != (seed, 1) else None
        if held:  # the set-up's own run from this seed's build: the object ran forward before it was re-initialised
            starts[seed] = Start(True, seed, 1)
            replayed.append(seed)
            notes.append(f"seed {seed}: {REINITIALISED.format(seed=seed, epoch=held)}")
    for seed in (s for s, start in starts.items() if not start.recorded):  # what the final weights alone show
        verdict = (f"; its final weights equal the reference run's, which starts right after torch.manual_seed({seed})"
                   if matches_reference(nets[seed], seed) is not None else "; how it was seeded could not be checked")
        notes.append(f"seed {seed}: {starts[seed].unusable}{verdict}")
    noted = " " + "; ".join(notes) + "." if notes else ""
    right = [s for s, start in starts.items() if start.recorded and (start.seed, start.build) == (s, 1)]
    copies = _copies(nets, starts)
    lines = _start_lines(starts, groups, reference, copies)
    if not lines:
        shown = [s for s in right if s not in replayed]
        return Outcome(True, ((_passed(shown, seeds, reference) if shown or not replayed else "") + noted).strip())
    measured = ("The grader compares each model's weights at its first forward pass (a deep copy's: its original's) "
                "with those of a "
                f"{reference} built right after torch.manual_seed(seed).")
    wrong = sum(1 for s, start in starts.items() if start.recorded and s not in right)
    advice = ("Call torch.manual_seed(seed) with each run's own seed, build and train that run's model after it, "
              "and store that model under its seed."
              if copies and len(copies) == wrong else _start_advice(starts, groups, reference))
    return Outcome(False, "; ".join(lines) + "." + noted + " " + advice + " " + measured,
                   fraction=1 - wrong / len(seeds))
