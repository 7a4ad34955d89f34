"""Checks on exported models: accuracy measured by the grader, and size."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import reference
from grader.checks.base import CheckContext, CheckFailed, Outcome, not_a_model
from grader.checks.data import data_problem
from grader.checks.registry import Param, check_kind

if TYPE_CHECKING:
    from grader.loading.model_graph import LoadedModel

DATA = Param(dict, doc="the data set, e.g. {kind='checkerboard', n_per_cell=20, noise=0.1, seed=0}", check=data_problem)
MODEL = Param(str, "model", "the export holding the model", export=True)


def measured_accuracy(model: LoadedModel, X: Any, Y: Any) -> tuple[float, int]:
    """Accuracy in % and the count correct, in eval mode on the grader's tensors."""
    expected = tuple(X.shape[1:])
    if model.input_shape and tuple(model.input_shape) != expected:
        raise CheckFailed(f"Your model takes inputs of shape {list(model.input_shape)}, but the data has "
                          f"samples of shape {list(expected)}.")
    try:
        scores = model(X[:2].float())
        preds = model.predict(X.float())
    except RuntimeError as e:
        raise CheckFailed(f"Your model could not be run on the grader's data: {str(e).splitlines()[0]}") from None
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
)
def accuracy(ctx: CheckContext, model: str, data: dict, min_accuracy: float, above: float, below: float,
             describe: str, hint: str) -> Outcome:
    """Accuracy of the exported model, measured by the grader on data it makes itself, against a band."""
    net = ctx.value(model, "model")
    dataset = ctx.data.make(data, ctx.check_id)
    acc, correct = measured_accuracy(net, dataset.X, dataset.Y)
    total = len(dataset.Y)
    metrics = {"accuracy": round(acc, 4), "correct": correct, "total": total}
    measured = f"{acc:.2f}% ({correct}/{total}) on {describe}, measured by the grader in eval mode"
    needs = [f"at least {min_accuracy:g}%" if min_accuracy > float("-inf") else "",
             f"more than {above:g}%" if above > float("-inf") else "",
             f"less than {below:g}%" if below < float("inf") else ""]
    needs = " and ".join(n for n in needs if n)
    if acc + 1e-9 >= min_accuracy and acc > above and acc < below:
        return Outcome(True, f"Your model scores {measured}" + (f" (needs {needs})." if needs else "."), metrics=metrics)
    return Outcome(False, f"Your model scores {measured}; it needs {needs}. {hint}".strip(), metrics=metrics)


def _tiers_problem(tiers: list) -> str | None:
    good = all(isinstance(t, list) and len(t) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                             for x in t) and t[0] >= 0 and 0 <= t[1] <= 1 for t in tiers)
    return None if tiers and good else f"expected [[max_params, share], ...] with shares from 0 to 1, got {tiers!r}"


@check_kind(
    "parameter_budget",
    model=MODEL,
    tiers=Param(list, doc="[[max_params, share_of_points], ...], e.g. [[33, 1.0], [66, 0.5]]", check=_tiers_problem),
    smallest_known=Param(int, 0, "the smallest size the reference found, quoted in the message"),
)
def parameter_budget(ctx: CheckContext, model: str, tiers: list, smallest_known: int) -> Outcome:
    """Points by parameter count, counted on the exported model (torchinfo's count); reports it for a leaderboard."""
    net = ctx.value(model, "model")
    total = sum(t.numel() for t in net.parameters.values())
    trainable = net.n_params
    metrics = {"n_params": total, "trainable_params": trainable}
    details = {"layers": {name: list(shape) for name, shape in net.param_shapes().items()}}
    frozen = "" if total == trainable else (f" That counts all {total} parameters, {total - trainable} of them frozen: "
                                             "frozen weights still make the model bigger.")
    fraction = next((float(share) for limit, share in sorted(tiers) if total <= limit), 0.0)
    budget = sorted(tiers)[0][0]
    record = f" The smallest the reference found has {smallest_known}." if smallest_known else ""
    if fraction >= 1.0:
        message = f"Your model has {total} parameters, within the {budget}-parameter budget.{frozen}{record}"
        if smallest_known and total <= smallest_known:
            message += " That ties or beats the reference's smallest."
        return Outcome(True, message, metrics=metrics, details=details)
    share = f" for {fraction:.0%} of the points" if fraction else ""
    return Outcome(False, f"Your model has {total} parameters{share}; the full budget is {budget}.{frozen} "
                   f"Try fewer hidden units or fewer layers.{record}", fraction=fraction, metrics=metrics,
                   details=details)


def _reference_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of a model the course provides, by class name (a key of ``reference.MODELS``)."""
    return {k: tuple(p.shape) for k, p in reference.model_class(name)().named_parameters()}


@check_kind("architecture", model=MODEL,
            reference=Param(str, doc="a course model: a key of reference.MODELS", choices=lambda: reference.MODELS))
def architecture(ctx: CheckContext, model: str, reference: str) -> Outcome:
    """The exported model must have exactly the reference model's parameter shapes (the architecture is fixed)."""
    value = ctx.value(model)
    nets = value if isinstance(value, dict) else {"": value}
    expected = _reference_shapes(reference)
    for key, net in nets.items():
        label = f"`{model}[{key!r}]`" if key != "" else f"`{model}`"
        shapes = getattr(net, "param_shapes", lambda: None)()
        if shapes is None:
            raise CheckFailed(f"{label} could not be checked: {not_a_model(net)}.")
        if shapes != expected:
            differ = [f"{k}: {list(shapes.get(k, ()))} instead of {list(v)}" for k, v in expected.items()
                      if shapes.get(k) != v]
            extra = sorted(set(shapes) - set(expected))
            detail = "; ".join(differ + [f"extra parameter {k}" for k in extra])
            return Outcome(False, f"{label} is not the course's {reference}: {detail}. Keep the architecture "
                           "unchanged; only the training may differ.")
    return Outcome(True, f"{'Every model in ' if len(nets) > 1 else ''}`{model}` has the course's {reference} "
                   f"architecture ({sum(math.prod(v) for v in expected.values())} parameters).")
