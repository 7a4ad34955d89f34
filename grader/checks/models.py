"""Checks on exported models: accuracy measured by the grader, and size (the architecture check: ``architecture``)."""

from __future__ import annotations

import math
import re
import warnings
from typing import TYPE_CHECKING, Any

from grader.checks.base import CheckContext, CheckFailed, Outcome
from grader.checks.data import data_problem
from grader.checks.gradients import carried_gradients
from grader.checks.registry import Param, check_kind
from grader.kernel.kernel_probe import signature_rows
from grader.loading.values import SchedulerExport

if TYPE_CHECKING:
    from grader.loading.model_graph import LoadedModel, StoredNumbers

DATA = Param(dict, doc="the data set, e.g. {kind='checkerboard', n_per_cell=20, noise=0.1, seed=0}", check=data_problem)
MODEL = Param(str, "model", "the export holding the model", export=True)


def _sample_words(shape: tuple[int, ...]) -> str:
    if shape == (2,):
        return "the points have 2 (their x and y)"
    if len(shape) == 1:
        return f"each sample of the data has {shape[0]} values"
    return f"each sample of the data is {'x'.join(map(str, shape))} (an image)" if len(shape) == 3 else \
        f"each sample of the data has shape {'x'.join(map(str, shape))}"


def _inputs_mismatch(takes: tuple[int, ...], has: tuple[int, ...]) -> str:
    """A shape mismatch in the student's terms: "Your model takes 3 inputs; the points have 2 (their x and y)."."""
    if len(takes) == 1 and len(has) == 1:
        return (f"Your model takes {takes[0]} inputs; {_sample_words(has)}. Make its first layer take {has[0]} "
                f"inputs: nn.Linear({has[0]}, ...).")
    flat = math.prod(has)
    fix = " Flatten each sample first (nn.Flatten())." if len(has) > 1 and takes == (flat,) else ""
    return f"Your model takes inputs of shape {'x'.join(map(str, takes))}; {_sample_words(has)}.{fix}"


def _matmul_inputs(error: str, has: tuple[int, ...]) -> int | None:
    """The input count of a first layer that does not fit the samples, read from torch's shape error; else None."""
    match = re.search(r"\(\d+x(\d+) and (\d+)x\d+\)", error) or re.search(r", (\d+)\] X \[(\d+), \d+\]", error)
    if match and len(has) == 1 and int(match[1]) == has[0] != int(match[2]):
        return int(match[2])
    return None


CONSISTENCY_POINTS = 32  # the points scored twice, and one at a time, to see that a point's score is its own


def _random_ops(model: LoadedModel) -> list[str]:
    """The graph's ops that draw random numbers (dropout left on in eval mode, a rand call), as names."""
    names = []
    for node in model.module.graph.nodes:
        target = str(node.target)
        train = node.kwargs.get("train", node.args[2] if "dropout" in target and len(node.args) > 2 else False)
        if ("dropout" in target and train is True) or any(w in target for w in ("bernoulli", "rand", "normal")):
            names.append(target.split(".")[1] if target.startswith("aten.") else target)
    return sorted(set(names))


def _scored_alike(a: Any, b: Any) -> bool:
    import torch

    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True))


def _across_batch_ops(model: LoadedModel) -> list[str]:
    """The graph's softmaxes taken over dimension 0, the batch's (the graph is captured batch first): across the
    points rather than each point's scores."""
    names = []
    for node in model.module.graph.nodes:
        target = str(node.target)
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        if "softmax" in target and dim == 0:
            names.append(target.split(".")[1] if target.startswith("aten.") else target)
    return sorted(set(names))


def check_consistent(model: LoadedModel, X: Any) -> None:
    """Raise CheckFailed when the model's score for a point is not a function of that point alone, in eval mode: it
    changes from one run to the next (a random op left on), or with the other points in its batch."""
    import torch

    x = X[:CONSISTENCY_POINTS].float()
    together = model(x)
    if not _scored_alike(together, model(x)):
        ops = _random_ops(model)
        named = (f" Its graph draws random numbers in eval mode ({', '.join(ops)})" + (
            ": dropout called as F.dropout(x, p) stays on in eval mode; pass training=self.training, or use "
            "nn.Dropout" if any("dropout" in op for op in ops) else "") + "." if ops else "")
        raise CheckFailed("Your model gives the same points different scores each time it runs in eval mode, so no "
                          f"accuracy the grader measures would be its own.{named} In eval mode a model must give a "
                          "point the same score every time.")
    with warnings.catch_warnings():  # a batch statistic of one point warns (std's degrees of freedom): told below
        warnings.simplefilter("ignore")
        single = [model(x[i:i + 1]) for i in range(len(x))]
    one, many = tuple(single[0].shape), tuple(together.shape)
    if one != (1, *many[1:]):  # a batch of one comes back in another shape: its batch dimension was dropped
        raise CheckFailed(f"Your model returns scores of shape {one} for a batch of one point, where a batch of "
                          f"{len(x)} gives {many}: its forward drops the batch dimension when the batch holds one "
                          "point (.squeeze() with no dim, say). Return one row of scores per point for any batch size: "
                          "squeeze only the dimension you mean, or none.")
    alone = torch.cat(single)
    if not _scored_alike(together, alone):
        nan = " (some come out as NaN)" if bool(torch.isnan(alone).any()) and not bool(torch.isnan(together).any()) \
            else ""
        across = _across_batch_ops(model)
        cause = (f"Its graph takes a {' and a '.join(across)} over dimension 0, the points of the batch "
                 "(nn.Softmax(dim=0), say), so each class score is shared out among the points rather than among the "
                 "point's own classes: take it over dim=1 (or dim=-1)." if across else
                 "Statistics of the batch computed in forward (x - x.mean(0), x.std(0), or BatchNorm with "
                 "track_running_stats=False) do this; a model must score each point on its own, so normalise with "
                 "fixed numbers, or with BatchNorm's running statistics.")
        raise CheckFailed(f"Your model's score for a point depends on the other points in its batch: the grader's "
                          f"first {len(x)} points, scored one at a time, get other scores than scored together{nan}. "
                          + cause)


def measured_accuracy(model: LoadedModel, X: Any, Y: Any) -> tuple[float, int]:
    """Accuracy in % and the count correct, in eval mode on the grader's tensors; see ``check_consistent``."""
    expected = tuple(X.shape[1:])
    if model.input_shape and tuple(model.input_shape) != expected:
        raise CheckFailed(_inputs_mismatch(tuple(model.input_shape), expected))
    try:
        scores = model(X[:2].float())
        check_consistent(model, X)
        preds = model.predict(X.float())
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        takes = _matmul_inputs(first, expected)
        raise CheckFailed(_inputs_mismatch((takes,), expected) if takes else
                          f"Your model could not be run on the grader's data: {first}") from None
    n_classes = int(Y.max()) + 1
    if scores.ndim != 2 or scores.shape[1] != n_classes:
        got = f"{scores.shape[1]} scores per sample" if scores.ndim == 2 else f"an output of shape {list(scores.shape)}"
        raise CheckFailed(f"Your model gives {got}, but the data has {n_classes} classes: it must return one score "
                          f"per class, of shape (batch, {n_classes}), so its last layer needs {n_classes} outputs.")
    correct = int((preds == Y).sum())
    return 100 * correct / len(Y), correct


@check_kind(
    "accuracy",
    model=MODEL,
    data=DATA,
    min_accuracy=Param((int, float), float("-inf"), "pass mark in percent: at least this"),
    above=Param((int, float), float("-inf"), "pass mark in percent: strictly more than this"),
    below=Param((int, float), float("inf"), "ceiling in percent: strictly less than this"),
    describe=Param(str, "the data", "how the message names the data set"),
    hint=Param(str, "", "advice shown when the check fails"),
    scheduler=Param(str, "", "the run's scheduler export: one that never stepped, was given values at its steps, "
                             "stepped once per batch or again with no optimizer step between, or (a LambdaLR) held "
                             "every step below its optimizer's lr is named instead of the hint",
                    export=True),
    chance=Param(bool, True, "at chance level, say so and what remains instead of the hint (false where the hint "
                 "already speaks to that)"),
    training=Param(bool, False, "the data is the split the model trains on: where the kernel's record of its first "
                   "training batches holds few of its points, that is said instead of the hint"),
    held_out=Param(bool, False, "the data must be unseen in training: a model stepped on its points (more than one "
                   "in twenty of the batches the kernel samples across the run) earns nothing; where they are more than "
                   "one in twenty rows of its first training-mode calls, the message says so"),
    train_data=Param(dict, {}, "the split the model trains on: where the kernel's record of its first training batches "
                     "holds that split's pixel values out of their places (images transposed, flipped or shifted), "
                     "that is said instead of the hint", check=lambda d: data_problem(d) if d else None),
)
def accuracy(ctx: CheckContext, model: str, data: dict, min_accuracy: float, above: float, below: float,
             describe: str, hint: str, scheduler: str, chance: bool = True, training: bool = False,
             held_out: bool = False, train_data: dict | None = None) -> Outcome:
    """Accuracy of the exported model, measured by the grader on data it makes itself, against a band."""
    net = ctx.value(model, "model")
    dataset = ctx.data.make(data, ctx.check_id)
    acc, correct = measured_accuracy(net, dataset.X, dataset.Y)
    total = len(dataset.Y)
    metrics = {"accuracy": round(acc, 4), "correct": correct, "total": total}
    measured = f"{acc:.2f}% ({correct}/{total}) on {describe}, measured by the grader in eval mode"
    table = splits_table(ctx, [data]) if held_out else None
    seen = fed_from(net, dataset.X, 1e-6, table) if held_out else None
    stepped = rows_from(getattr(net, "stepped_rows", ()) or (), dataset.X, 1e-6, table) if held_out else None
    if stepped is not None and stepped[0] * 20 > stepped[1]:
        metrics["trained_on_share"] = round(stepped[0] / stepped[1], 4)
        return Outcome(False, f"Your model was trained on {describe}: of the {stepped[1]} training batches the kernel "
                       "sampled across the run (the first image of each batch that an optimizer step followed), "
                       f"{stepped[0]} were images of this set. It scores {measured}, but a score on images it learned "
                       "from is no measure of how it does on images it has not seen, so it earns nothing here. Step "
                       "the optimizer on training images only: none of this set in the training loader, and the "
                       "validation pass in eval mode, under torch.no_grad(), with no optimizer step.", metrics=metrics)
    # A note, not a verdict: the record cannot tell training on these points from an evaluation of them run in
    # training mode with gradients on (no model.eval(), no torch.no_grad()); the step counts judge the training.
    seen_here = (f" Note: {seen[0]} of the {seen[1]} rows of `{model}`'s first training-mode calls (the kernel's "
                 "record) are points of this set: it was trained on them, or run on them in training mode with "
                 "gradients on (an evaluation without model.eval() and torch.no_grad()). If it was trained on them, "
                 "this score is no measure of how it does on data it has not seen."
                 if seen is not None and seen[0] * 20 > seen[1] else "")
    needs = [f"at least {min_accuracy:g}%" if min_accuracy > float("-inf") else "",
             f"more than {above:g}%" if above > float("-inf") else "",
             f"less than {below:g}%" if below < float("inf") else ""]
    needs = " and ".join(n for n in needs if n)
    if acc + 1e-9 >= min_accuracy and acc > above and acc < below:
        return Outcome(True, f"Your model scores {measured}" + (f" (needs {needs})." if needs else ".") + seen_here,
                       metrics=metrics)
    # What the run shows explains it better than advice on tuning: a scheduler that never stepped, weights that never
    # moved, gradients never cleared, a scheduler stepped once per batch; so does a model wrong more often than one
    # guessing a single class
    # would be, which more training would not explain.
    too_low = acc + 1e-9 < min_accuracy or acc <= above
    by_hand = (f"`{model}` was not trained through a torch optimizer: {HAND_TRAINED}, so no optimizer or scheduler "
               "setting of the notebook's drove this run. " if not too_low and moved_without_a_step(net) else "")
    advice = (unstepped_scheduler(ctx, scheduler) or scheduler_given_values(ctx, scheduler)
              or (untrained(net, model) if too_low else "")
              or (fed_unlike(net, dataset.X, f"`{model}`") if too_low else "")
              or (fed_rearranged(net, splits_table(ctx, [train_data]), f"`{model}`") if too_low and train_data else "")
              or (fed_elsewhere(net, dataset.X, f"`{model}`", describe) if too_low and training else "")
              or (carried_gradients(net, f"`{model}`") if too_low else "")
              or (per_batch_scheduler(ctx, scheduler) if too_low else "")
              or (repeated_scheduler(ctx, scheduler) if too_low else "")
              or (lambda_as_rate(ctx, scheduler, net, model) if too_low else "")
              or (graph_cause(net, model) if too_low else "")
              or (below_chance(acc, dataset.Y) if too_low else "")
              or (at_chance(acc, dataset.Y, net) if too_low and chance else "")
              or (wedges_only(net, dataset.X, dataset.Y, f"`{model}`") if too_low else "") or by_hand + hint)
    return Outcome(False, f"Your model scores {measured}; it needs {needs}. {ctx.cut_short(advice)}".strip()
                   + seen_here, metrics=metrics)


def same_weights(now: dict, before: dict) -> bool:
    """Whether the tensors ``now`` (by name) are all there and equal to ``before``'s; False for none."""
    import torch

    return bool(now) and set(now) == set(before) and all(torch.equal(before[k], t) for k, t in now.items())


def never_moved(net: Any) -> bool:
    """Whether every weight of ``net`` is still what it was at its first forward pass (the kernel's record); False
    where nothing was recorded."""
    return same_weights(getattr(net, "parameters", None) or {}, getattr(net, "initial", None) or {})


def moved_without_a_step(net: Any) -> bool:
    """Whether ``net``'s weights moved from their recorded first-forward values while no torch optimizer ever stepped
    them (the kernel's record): an update written by hand, or weights copied in after a first forward pass."""
    initial = getattr(net, "initial", None) or {}
    return (bool(initial) and not never_moved(net) and not getattr(net, "steps", {})
            and not getattr(net, "idle_steps", 0) and not getattr(net, "loaded", False))


HAND_TRAINED = ("its weights moved from their values at its first forward pass, but no torch optimizer ever stepped "
                "them (the kernel's record): an update written by hand (p -= lr * p.grad), or weights copied in after "
                "a first forward pass")


def untrained_cause(net: Any) -> str:
    """Why a model whose weights never moved did not train, from the kernel's record of its optimizer steps."""
    took, idle = max(getattr(net, "steps", {}).values(), default=0), getattr(net, "idle_steps", 0)
    if took and getattr(net, "restored_to_start", False):
        return (f"its parameters took {took} optimizer steps, then load_state_dict put back the weights it started "
                "from, and no step came after: the state it restored was saved before training and never replaced (a "
                "best state kept only on an improvement that no epoch made, say)")
    if idle and not took:  # the kernel saw its optimizer step, never with a gradient on these parameters
        return (f"its optimizer stepped {idle} times, and not once found a gradient on its parameters: zero_grad() is "
                "called between backward() and step(), step() comes before backward() with zero_grad() after it, "
                "or backward() is never called")
    if took:
        return (f"its parameters took {took} optimizer steps with gradients, yet never changed: a learning rate of 0, "
                "or gradients that are all zero (zero_grad(set_to_none=False) between backward() and step(), or a "
                "loss that does not depend on the model's output)")
    return ("no optimizer ever stepped its parameters: the optimizer was made for other parameters (a model made "
            "again after the optimizer), or the loop trained another model, or never ran, or an update written by "
            "hand binds its loop variable to a new tensor (p = p - lr * p.grad) instead of changing the parameter in "
            "place (p -= lr * p.grad, under torch.no_grad())")


def untrained(net: Any, name: str) -> str:
    """What to say when every weight of ``net`` is still what it was at its first forward pass (the kernel's record);
    "" otherwise, or where nothing was recorded."""
    # A run the kernel recorded (its losses, run-wide) in which this model never ran nor stepped; a model with no
    # record of any run (built outside a kernel) is not read so.
    ran = any(getattr(net, "loss_calls", None) or {})
    if ran and not getattr(net, "initial", None) and not getattr(net, "steps", None) and \
            not getattr(net, "idle_steps", 0) and not getattr(net, "loaded", False):
        return (f"Nothing in the run's record shows `{name}` trained: it never ran a forward pass in the notebook, and "
                "no optimizer step was recorded on its parameters. If it is meant to be the network your loop trained, "
                f"it is another object (a copy taken before training, or a model made again after it, `{name} = ...` "
                "once more, say): export the model the loop trained.")
    if not never_moved(net):
        return ""
    said = f"Every weight of `{name}` is still what it was at its first forward pass."
    cause = untrained_cause(net)
    if getattr(net, "idle_steps", 0) or getattr(net, "steps", {}):
        fix = (" Call optimizer.zero_grad(), then loss.backward(), then optimizer.step()."
               if cause.startswith("its optimizer stepped") else "")
        return f"{said} {cause[0].upper()}{cause[1:]}.{fix}"
    return (f"{said} If `{name}` is the network your loop trained, it never learned, and more training or another "
            f"learning rate would not help: {cause}. (A model given trained weights with load_state_dict starts its "
            "own record at its first forward pass.)")


def _one_class_share(labels: Any, rarest: bool) -> tuple[float, float]:
    """(the share of the rarest or commonest class, one standard deviation of a guessed accuracy on this many points)."""
    counts = labels.bincount().double()
    share = ((counts[counts > 0].min() if rarest else counts.max()) / counts.sum()).item()
    return share, math.sqrt(share * (1 - share) / len(labels))


def fed_ranges(net: Any) -> list:
    """The (lowest, highest) value of each of the model's first training calls, as the kernel recorded them; a record
    of the whole range alone counts as one call."""
    return list(getattr(net, "input_ranges", ()) or ([net.input_range] if getattr(net, "input_range", ()) else []))


def same_rows(one: Any, other: Any, tolerance: float = 1e-9) -> Any:
    """Which signatures of ``one`` agree with ``other``'s (tensors that broadcast, last dimension the signature), each
    number to within ``tolerance`` relative to the larger (at least 1)."""
    import torch

    return ((one - other).abs() <= tolerance * torch.maximum(one.abs(), other.abs()).clamp(min=1.0)).all(-1)


def signature_table(*tensors: Any) -> Any:
    """The ``signature_rows`` of every row of ``tensors``, as one float64 tensor sorted by the rows' sums."""
    import torch

    table = torch.cat([signature_rows(tensor[start:start + 4096]) for tensor in tensors
                       for start in range(0, len(tensor), 4096)] or [torch.zeros(0, 3, dtype=torch.float64)])
    return table[table[:, 0].argsort()]


def splits_table(ctx: CheckContext, data: list[dict]) -> Any:
    """The ``signature_table`` of the splits ``data`` (DataFactory descriptions), made once per grading."""
    splits = [ctx.data.make(d, ctx.check_id).X for d in data]
    return ctx.data.cached(("row signatures", repr(data)), lambda: signature_table(*splits))


def fed_from(net: Any, inputs: Any, tolerance: float = 1e-9, table: Any = None) -> tuple[int, int] | None:
    """(how many, of how many) rows the kernel recorded in the model's first training calls are rows of ``inputs``
    (or of ``table``, a ``signature_table`` made once for several calls), each compared by its ``row_signatures``
    to within ``tolerance`` (relative); None where fewer than a batch's worth were recorded.

    A tolerance of 1e-6 accepts the same pixels computed another way (x / 255 or x * (1 / 255), float32 or 64);
    1e-2 the same images in half precision.
    """
    return rows_from(getattr(net, "input_rows", ()) or (), inputs, tolerance, table)


def rows_from(recorded: Any, inputs: Any, tolerance: float = 1e-9, table: Any = None) -> tuple[int, int] | None:
    """``fed_from`` on any rows the kernel signed (``row_signatures``): (how many are rows of ``inputs``, of how
    many); None where fewer than 16 were recorded."""
    import torch

    if len(recorded) < 16 or (table is None and (inputs is None or not len(inputs))):
        return None
    known = signature_table(inputs) if table is None else table
    rows, found = torch.tensor(recorded, dtype=torch.float64), 0
    if not len(known):
        return 0, len(recorded)
    # Each row against the known rows whose sums lie within its tolerance: a window of the sorted table.
    sums, slack = known[:, 0].contiguous(), tolerance * rows[:, 0].abs().clamp(min=1.0)
    lows = torch.searchsorted(sums, rows[:, 0] - slack)
    highs = torch.searchsorted(sums, rows[:, 0] + slack, right=True)
    for start in range(0, len(rows), 64):
        row, low, high = rows[start:start + 64, None], lows[start:start + 64], highs[start:start + 64]
        width = int((high - low).max())
        if width <= 0:
            continue
        at = low[:, None] + torch.arange(width)
        close = same_rows(known[at.clamp(max=len(known) - 1)], row, tolerance)
        found += int((close & (at < high[:, None])).any(-1).sum())
    return found, len(recorded)


def learned_elsewhere(net: Any, inputs: Any, table: Any = None) -> tuple[int, int] | None:
    """``fed_from``'s (rows of ``inputs``, rows recorded) where fewer than a quarter were ``inputs``' own: another draw
    of the data, or the points changed on their way in (a half, train + val say, is the step count's to name); None
    otherwise, or where nothing was recorded. ``table``: ``inputs``' ``signature_table``, made once for several."""
    share = fed_from(net, inputs, table=table)
    return share if share is not None and share[0] * 4 < share[1] else None


def fed_elsewhere(net: Any, inputs: Any, name: str, describe: str) -> str:
    """What to say when few of the inputs the kernel recorded in the model's first training batches are ``inputs``,
    the points it is meant to learn; "" otherwise, or where nothing was recorded."""
    share = learned_elsewhere(net, inputs)
    if share is None:
        return ""
    return (f"Of the {share[1]} inputs {name} was fed in its first training batches (the kernel's record), "
            f"{share[0]} are among {describe}: it learned from other numbers (the points normalised or otherwise "
            "changed on their way to the model, or other data), so here it meets points it never learned from. Train "
            "it on the points themselves, or build that change into the model, so that the exported model applies "
            "it itself.")


def fed_unlike(net: Any, inputs: Any, name: str) -> str:
    """What to say (of the model ``name``, in words) when most of the model's first training-mode calls (the kernel's record) were fed values on another
    scale than the inputs the grader measures it on; "" otherwise, or where nothing was recorded.

    "Another scale": an end of the range a quarter of the inputs' width or more away from theirs. A batch of the
    task's own data reaches near both ends of it; the median call decides, so a stray call (a shape check) does not.
    Batches of one point or a few reach neither end, so the calls together must fall short too: what they reach but
    for the farthest call at each end (a stray one).
    """
    calls = fed_ranges(net)
    if not calls or inputs is None or not len(inputs):
        return ""
    low, high = float(inputs.min()), float(inputs.max())
    width = high - low
    lows, highs = sorted(c[0] for c in calls), sorted(c[1] for c in calls)
    trim = 1 if len(calls) >= 3 else 0
    fed_low, fed_high = lows[trim], highs[-1 - trim]

    def off(ends: tuple[float, float]) -> bool:
        return abs(ends[0] - low) >= width / 4 or abs(ends[1] - high) >= width / 4
    if width <= 0 or not (off((lows[len(lows) // 2], highs[len(highs) // 2])) and off((fed_low, fed_high))):
        return ""
    return (f"In training, {name} was fed values from {fed_low:.4g} to {fed_high:.4g} (the kernel's record of its "
            f"first training batches), but the task's inputs, on which the grader measures it, run from {low:.4g} to "
            f"{high:.4g}: it learned from numbers on another scale (inputs scaled or normalised on their way to the "
            "model, or other data than the task's), so here it meets numbers it never learned from. Train it on the "
            "task's inputs as they are.")


def fed_rearranged(net: Any, table: Any, name: str) -> str:
    """What to say when the model's first training rows (the kernel's record) are few of the training split's images
    but most hold one's pixel values, out of their places (their sum and sum of squares are an image's, their
    position-weighted sum is not); "" otherwise. ``table``: the split's ``signature_table``."""
    recorded = getattr(net, "input_rows", ()) or ()
    found = rows_from(recorded, None, 1e-2, table)
    if found is None or found[0] * 4 >= found[1]:
        return ""
    unplaced = table.clone()
    unplaced[:, 2] = 0
    pixels = rows_from([(a, b, 0.0) for a, b, _ in recorded], None, 1e-6, unplaced)
    if pixels is None or pixels[0] * 4 < pixels[1] * 3:
        return ""
    return (f"In training, {name} was fed the task's images with their pixels out of place: {pixels[0]} of the "
            f"{pixels[1]} rows of its first training batches (the kernel's record) hold exactly the pixel values of "
            f"one of the task's training images, but not in that image's order (only {found[0]} match an image as it "
            "is): images transposed, flipped or shifted, or flattened after a "
            "permute, so the grader's images, in their own order, are new to it. Flatten each image as it comes, "
            "x.view(len(x), -1) or nn.Flatten().")


def below_chance(acc: float, labels: Any) -> str:
    """What to say when ``acc`` (in %) is clearly below what predicting any one class would score; "" otherwise.

    "Clearly": below the rarest class's share by 4.75 standard deviations of an accuracy on this many points (a
    one-sided chance of about 1e-6 for a model that guesses).
    """
    share, sd = _one_class_share(labels, rarest=True)
    if acc >= 100 * (share - 4.75 * sd):
        return ""
    return (f"That is below the {100 * share:.1f}% that always predicting one class would score, so more training "
            "would not explain it: the model is wrong in a systematic way. What remains: it expects inputs other than "
            "the raw inputs the grader gives it (scaled, normalised or reordered in your notebook), its outputs are "
            "in another order than the labels, it was trained with a loss that does not fit one score per class to "
            "the labels (mean squared error on the label numbers, say), or the exported model is not the one that "
            "learned.")


def chance_level(acc: float, labels: Any) -> float | None:
    """The commonest class's share (0-1) when ``acc`` (in %) is no better than always predicting that class, within
    1.5 standard deviations of an accuracy on this many points; None when it is better."""
    share, sd = _one_class_share(labels, rarest=False)
    return share if acc <= 100 * (share + 1.5 * sd) else None


def at_chance(acc: float, labels: Any, net: Any = None) -> str:
    """What to say when ``acc`` is at ``chance_level``; "" otherwise. A description: it changes no points. Where the
    kernel counted the model's optimizer steps, a run too short or too slow to leave its start remains among the
    causes, with those counts: how many steps are enough, no count alone can say."""
    share = chance_level(acc, labels)
    if share is None:
        return ""
    steps = max((getattr(net, "steps", None) or {}).values(), default=0)
    lrs = getattr(net, "step_lrs", None)
    if steps:
        rate = f", at lr {lrs[3]:g} at most" if isinstance(lrs, (list, tuple)) and len(lrs) == 4 else ""
        short = (f"the model shows nothing learned about the labels. What remains: its training was too short or too "
                 f"slow to leave where it started (the kernel counted {steps} optimizer step{'s' * (steps != 1)}{rate}; "
                 "train longer or at a higher lr and see whether the accuracy moves), its training paired")
    else:
        short = ("the model shows nothing learned about the labels, so longer or faster training alone is unlikely to "
                 "help. What remains: it was never trained, its training paired")
    return (f"That is about the {100 * share:.1f}% that always predicting one class scores: {short} its inputs with "
            "other inputs' labels (inputs and labels shuffled or sorted apart), it learned on inputs other than the raw inputs the grader gives it (scaled or normalised "
            "in your notebook), it was trained with a loss that does not fit its outputs (NLLLoss on raw scores "
            "rather than log-probabilities, say), or training diverged or got stuck from its start (another seed).")


RAY_SCALES = (0.5, 2.0, 4.0)
RAY_POINTS = 512  # of the data, scaled and compared; and searched for two classes on one ray


def wedges_only(net: Any, X: Any, Y: Any, name: str) -> str:
    """What to say where ``net`` gives every point (of the first RAY_POINTS) the class it gives that point scaled by
    each of RAY_SCALES, predicting two classes or more, and two points of different labels lie on nearly one ray
    from the origin (cosine above 0.995): its class regions are wedges from the origin, which cannot hold both. A
    network without biases is such a model (ReLU and linear layers keep f(ax) = a f(x) for a > 0); "" otherwise."""
    import torch

    x, y = X[:RAY_POINTS].float(), Y[:RAY_POINTS]
    with torch.no_grad():
        classes = net.predict(x)
        if len(set(classes.tolist())) < 2 or not all(torch.equal(net.predict(x * s), classes) for s in RAY_SCALES):
            return ""
    flat = x.reshape(len(x), -1)
    unit = flat / flat.norm(dim=1, keepdim=True).clamp(min=1e-12)
    near = (unit @ unit.T > 0.995) & (y[:, None] != y[None, :])
    if not bool(near.any()):
        return ""
    return (f"{name} gives each of these points the class it gives the same point scaled by 0.5, 2 or 4 (the "
            f"grader's test on {len(x)} points): its class regions are wedges from the origin, as a network without "
            "biases (bias=False, or biases kept at zero) draws them, and here points of different classes lie on "
            "nearly the same ray from the origin, so no training can fit them all. Give its layers biases.")


def unstepped_scheduler(ctx: CheckContext, name: str) -> str:
    """What to say when the exported scheduler ``name`` never stepped (its ``last_epoch`` is 0), or stepped an
    optimizer that never stepped itself (the kernel's count); "" otherwise."""
    value = ctx.exports.values.get(name) if name else None
    if not isinstance(value, SchedulerExport):
        return ""
    stepped = value.state.get("last_epoch")
    if isinstance(stepped, int) and stepped > 0 and value.optimizer is not None and value.optimizer.steps == 0:
        return (f"Your `{name}` ({value.cls}) stepped {stepped:,} times, but the optimizer it was made with never "
                "stepped (the kernel's count): it set the learning rate of an optimizer that trained nothing, so "
                "the one that trained the model kept its LR throughout. Make the scheduler with the optimizer your "
                "loop steps.")
    if stepped != 0:
        return ""
    return (f"Your `{name}` ({value.cls}) never stepped: its last_epoch is 0, so it never changed the learning rate "
            f"during training. Call {name}.step() in the training loop, after the optimizer's steps (once per epoch "
            "for a schedule counted in epochs).")


def scheduler_given_values(ctx: CheckContext, name: str, subject: str = "") -> str:
    """What to say when the exported scheduler ``name`` holds a last_epoch that is no whole number: a value passed to
    its step() (the val loss, say), which torch reads as the epoch to jump to; "" otherwise (ReduceLROnPlateau takes
    a value, CosineAnnealingWarmRestarts a fractional epoch, and both keep a whole last_epoch). ``subject`` replaces
    "Your `name` (its class)" where the sentence goes on from another."""
    value = ctx.exports.values.get(name) if name else None
    last = value.state.get("last_epoch") if isinstance(value, SchedulerExport) else None
    if not isinstance(last, float) or last.is_integer() or not math.isfinite(last) or \
            value.torch_base in ("ReduceLROnPlateau", "CosineAnnealingWarmRestarts"):
        return ""
    return (f"{subject or f'Your `{name}` ({value.cls})'} was given a value at its step() calls: its last_epoch is "
            f"{last:g}, the value it was given the last time (a val loss, say). torch reads an argument to step() as "
            "the epoch to jump to, so the schedule followed those values instead of counting the epochs. Call "
            f"{name}.step() with no argument; only ReduceLROnPlateau takes the val loss.")


def per_batch_scheduler(ctx: CheckContext, name: str) -> str:
    """What to say when the exported scheduler ``name`` stepped about as often as its optimizer (the kernel's count):
    once per batch, where a schedule counted in epochs decays the learning rate far sooner; "" otherwise."""
    value = ctx.exports.values.get(name) if name else None
    if not isinstance(value, SchedulerExport) or value.optimizer is None or not value.optimizer.steps:
        return ""
    stepped, steps = value.state.get("last_epoch"), value.optimizer.steps
    if not isinstance(stepped, int) or steps < 50 or stepped < steps // 2:
        return ""
    return (f"Your `{name}` ({value.cls}) stepped {stepped:,} times, about as often as its optimizer ({steps:,} "
            "steps): once per batch. A schedule whose settings count epochs then moves the learning rate once per "
            f"batch instead, so it decays far sooner than written. Call {name}.step() once per epoch, after the loop "
            "over the batches, or size the schedule in batches.")


def repeated_calls(calls: list[int]) -> str:
    """Where the scheduler's step() ran again with no optimizer step since its last call (the kernel's counts), but at
    its last count (calls after the training move no LR the run used); "" where it never did."""
    groups: dict[int, int] = {}
    for count in calls:
        groups[count] = groups.get(count, 0) + 1
    twice = {count: n for count, n in groups.items() if n > 1 and count < max(groups)}
    if not twice:
        return ""
    at = ", ".join(f"{c:,}" for c in list(twice)[:4]) + (", ..." if len(twice) > 4 else "")
    most = max(twice.values())
    return (f"at {len(twice)} point{'s' * (len(twice) != 1)} of the run (after {at} optimizer steps) it was called "
            f"{'twice' if most == 2 else f'up to {most} times'} with no optimizer step between the calls (the kernel "
            "counts the optimizer's steps at every call)")


def repeated_scheduler(ctx: CheckContext, name: str) -> str:
    """What to say when the exported scheduler ``name`` was stepped again with no optimizer step between (the kernel's
    counts at each call): a second scheduler.step() an epoch, which moves the schedule on faster than written."""
    value = ctx.exports.values.get(name) if name else None
    repeated = repeated_calls(list(value.calls)) if isinstance(value, SchedulerExport) and value.calls else ""
    return (f"Your `{name}` ({value.cls}) was stepped faster than its settings say: {repeated}, so each such epoch "
            f"moved the schedule on more than one step. Call {name}.step() once per epoch." if repeated else "")


def lambda_as_rate(ctx: CheckContext, name: str, net: Any, model: str) -> str:
    """What to say when a LambdaLR ``name`` held every step of ``net`` below its optimizer's own lr (the kernel's record
    of the LRs its parameters were stepped at): a lambda that returns a learning rate instead of a factor; "" else."""
    value = ctx.exports.values.get(name) if name else None
    if not isinstance(value, SchedulerExport) or value.torch_base != "LambdaLR":
        return ""
    lrs, bases = getattr(net, "step_lrs", ()), value.state.get("base_lrs")
    if len(lrs) < 4 or not isinstance(bases, list) or not bases:
        return ""
    base, (first, _, _, highest) = bases[0], lrs
    if not isinstance(base, (int, float)) or base <= 0 or highest > base * 0.5:
        return ""
    return (f"Your `{name}` (LambdaLR) never let `{model}` train at its optimizer's lr {base:g}: its first step ran at "
            f"{first:.3g}, {first / base:.3g} times that, and no step above {highest:.3g} (the kernel's record). "
            "LambdaLR multiplies the optimizer's lr by what the lambda returns, so the lambda returns a factor (1 "
            "keeps the lr; e.g. lambda epoch: 0.5 ** (epoch // 2)). If yours returns a learning rate, the two "
            "multiply: return the factor instead.")


# Activations that squash every score into a band, by the band: last before cross_entropy, they stall training.
SQUASHED = {"sigmoid": "(0, 1)", "tanh": "(-1, 1)", "hardtanh": "[-1, 1]", "hardsigmoid": "[0, 1]"}


def graph_cause(net: Any, model: str) -> str:
    """A cause of a low accuracy that the model's own forward pass shows: a softmax, sigmoid or tanh last, before a
    loss that applies log-softmax itself (the kernel saw cross_entropy calls), or, on 2-D points, no activation between
    linear layers (none, or one only after the last); "" where it shows none of these."""
    from grader.checks.architecture import readable_layers

    layers = readable_layers(net)
    kinds = [layer.kind for layer in layers]
    cross_entropy = (getattr(net, "loss_calls", None) or {}).get("cross_entropy")
    if kinds and kinds[-1] in SQUASHED and cross_entropy:
        return (f"`{model}` ends in a {kinds[-1]}, which squashes each score into {SQUASHED[kinds[-1]]}, and it was "
                "trained with cross_entropy (nn.CrossEntropyLoss; the kernel's record), which applies log-softmax to "
                "what it is given: scores that can differ by so little keep every class's probability near the "
                "others', so the loss cannot push the classes apart and training stalls short of the goal. Leave the "
                f"{kinds[-1]} out of the model: CrossEntropyLoss takes the raw scores.")
    if kinds and kinds[-1] == "softmax" and cross_entropy:
        return (f"`{model}` ends in a softmax, and it was trained with cross_entropy (nn.CrossEntropyLoss; the "
                "kernel's record), which applies log-softmax to what it is given: the loss saw probabilities "
                "instead of scores, whose gradients fade as the model grows confident, which can stall training short "
                "of the goal. Leave the softmax out of the model (CrossEntropyLoss takes the raw scores), and apply "
                "it only where you want probabilities.")
    linear = {"linear", "dropout", "add", "sub", "neg"}
    if "linear" in kinds and set(kinds) <= linear and net.zero_batch().shape[1:] == (2,):
        return (f"Every layer of `{model}` is linear ({', '.join(layer.text for layer in layers)}), with no activation "
                "between them: together they compute one linear map of the point, and a linear model cannot fit "
                "classes whose regions are not convex, as the checkerboard's are, however long it trains. Put an "
                "activation such as nn.ReLU() between the layers.")
    if kinds.count("linear") > 1 and set(kinds[:-1]) <= linear and net.zero_batch().shape[1:] == (2,):
        # One activation after the last layer: the scores are that function of one linear map of the point, which
        # splits the plane into a few convex pieces, however long it trains.
        return (f"`{model}`'s layers are {', '.join(layer.text for layer in layers)}: its only activation comes after "
                "the last layer, so its scores are that activation of one linear map of the point, which splits the "
                "plane into a few convex pieces, not the checkerboard's cells, however long it trains. Put the "
                "activation between the layers (Linear, ReLU, Linear), and none after the last.")
    return ""


def _tiers_problem(tiers: list) -> str | None:
    good = all(isinstance(t, list) and len(t) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                             for x in t) and t[0] >= 0 and 0 <= t[1] <= 1 for t in tiers)
    return None if tiers and good else f"expected [[max_params, share], ...] with shares from 0 to 1, got {tiers!r}"


@check_kind(
    "parameter_budget",
    model=MODEL,
    tiers=Param(list, doc="[[max_numbers, share_of_points], ...], e.g. [[33, 1.0], [66, 0.5]]", check=_tiers_problem),
    smallest_known=Param(int, 0, "the smallest size the reference found, quoted in the message"),
)
def parameter_budget(ctx: CheckContext, model: str, tiers: list, smallest_known: int) -> Outcome:
    """Points by the numbers the exported model stores: parameters, and the buffers, constants and literals it reads."""
    net = ctx.value(model, "model")
    count, torchinfo = net.stored_numbers(), net.torchinfo_params()
    # n_params ranks the class leaderboard: what the budget counted, so a model that stores data cannot top it.
    metrics = {"n_params": count.total, "parameters": count.parameters, "trainable_params": count.trainable,
               "stored_numbers": count.stored} | ({"torchinfo_params": torchinfo} if torchinfo is not None else {})
    details = {"layers": {name: list(shape) for name, shape in net.param_shapes().items()},
               "buffers": count.buffers, "constants": count.constants, "literals": len(count.literals)}
    fraction = next((float(share) for limit, share in sorted(tiers) if count.total <= limit), 0.0)
    unread = net.unread_parameters()
    message = _budget_message(count, torchinfo, fraction, min(tiers)[0], net.hooks,
                              {name: net.parameters[name].numel() for name in unread})
    if smallest_known:
        message += f" The smallest the reference found has {smallest_known}."
        if fraction >= 1.0 and count.total <= smallest_known:
            message += " That ties or beats the reference's smallest."
    return Outcome(fraction >= 1.0, message, fraction=None if fraction >= 1.0 else fraction, metrics=metrics,
                   details=details)


def _budget_message(count: StoredNumbers, torchinfo: int | None, fraction: float, budget: int, hooks: tuple,
                    unread: dict[str, int] | None = None) -> str:
    """What was counted, against the budget, with torchinfo's parameter count beside it; ``unread``: the parameters
    (name -> numbers) the forward pass never reads."""
    if fraction >= 1.0:
        verdict = f", within the {budget}-{'number' if count.stored else 'parameter'} budget."
    else:
        verdict = (f" for {fraction:.0%} of the points" if fraction else "") + f"; the full budget is {budget}."
    if count.stored:
        joint = "but" if count.stored > count.parameters else "and"
        message = (f"Your model has {count.parameters} parameters, {joint} stores {_stored(count)}; the budget counts "
                   f"both: {count.total} numbers{verdict}")
        if torchinfo is not None:
            message += f" torchinfo counts {torchinfo} parameters, as it counts parameters only."
    else:
        message = f"Your model has {count.parameters} parameters{verdict}"
        if torchinfo is not None:
            message += f" torchinfo counts {torchinfo}{' too' if torchinfo == count.parameters else ''}."
    if count.parameters > count.trainable:
        message += (f" That counts all {count.parameters} parameters, {count.parameters - count.trainable} of them "
                    f"frozen: frozen weights still make the model bigger (count_parameters, and torchinfo's "
                    f"\"Trainable params\", show only the {count.trainable} trainable ones).")
    if any(name.rpartition(".")[2].startswith("lifted_tensor") for name in count.constants):
        message += (" Tensors the module does not register are what count_parameters and torchinfo leave out: plain "
                    "tensors, and layers or nn.Parameters kept in a Python list or dict (register those in an "
                    "nn.ModuleList or nn.ParameterList).")
    if hooks and count.stored:  # a hook that only looks (a debug print, activations kept aside) adds nothing here
        message += (" Your model's forward hooks ran while the grader captured it, so what they compute and keep is "
                    f"counted too: {'; '.join(hooks[:3])}.")
    if fraction < 1.0:
        names = ", ".join(f"`{name}`" for name in list(unread or {})[:3]) + (", …" if len(unread or {}) > 3 else "")
        message += (" Whatever the model keeps to compute its output counts, trained or not." if count.stored
                    else f" {sum(unread.values())} of them ({names}) are never read by its forward pass: a layer "
                    "registered but not used still counts, so remove it first." if unread
                    else " Try fewer hidden units or fewer layers.")
        if 0 < len(count.literals) <= 5 and count.total - len(count.literals) <= budget:  # a few settings, perhaps
            message += (" A number given to torch's own layer or function as its setting does not count "
                        "(nn.LeakyReLU(0.1), F.leaky_relu(x, 0.1)); the same number written into arithmetic does.")
    return message


def _stored(count: StoredNumbers) -> str:
    """Where the numbers beside the parameters are, e.g. "900 numbers in buffers (`points`: 360, `onehot`: 540)"."""
    parts = [f"{_numbers(sum(tensors.values()))} {where} ({_listed(tensors)})"
             for where, tensors in (("in buffers", count.buffers), ("in constant tensors", count.constants)) if tensors]
    if count.literals:
        examples = ", ".join(f"{v:g}" for v in list(dict.fromkeys(count.literals))[:3])
        n = len(count.literals)
        parts.append(f"{_numbers(n)} written into the forward pass as {'a value' if n == 1 else 'values'} "
                     f"(such as {examples})")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _numbers(n: int) -> str:
    return f"{n} number{'' if n == 1 else 's'}"


def _listed(tensors: dict[str, int]) -> str:
    """Tensors by name and size; those torch.export lifted from the forward pass (``lifted_tensor_<i>``) as one item."""
    lifted = [n for name, n in tensors.items() if name.rpartition(".")[2].startswith("lifted_tensor")]
    named = [f"`{name[:40]}`: {n}" for name, n in tensors.items()
             if not name.rpartition(".")[2].startswith("lifted_tensor")]
    shown = named[:3] + [f"{len(named) - 3} more"] * (len(named) > 3)
    if lifted:
        shown.append("made in the forward pass or taken from outside the model: " + " + ".join(map(str, lifted[:5]))
                     + " + ..." * (len(lifted) > 5))
    return ", ".join(shown)
