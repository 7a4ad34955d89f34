"""Whether a training loop clears its gradients between optimizer steps, as the kernel measured it.

torch adds each backward pass's gradient to what ``.grad`` already holds. A loop that never clears it
(no ``optimizer.zero_grad()``, or one call per epoch) steps on the sum of every batch so far. The kernel's
probe looks at ``.grad`` before each backward pass that adds to it (``kernel_probe``): cleared (None or all
zeros), or still holding what the step before used. A model whose steps were not measured (none recorded,
trained without a torch optimizer, or on gradients assigned to ``.grad``) is not judged. Also here: what the
kernel recorded of the run's losses and clipping (``loss_changes``).
"""

from __future__ import annotations

from typing import Any, Iterator

from grader.checks.base import CheckContext, Outcome
from grader.checks.registry import Param, check_kind
from grader.loading.values import ExportProblem, ModelValue


def models_in(value: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, ModelValue]]:
    """Every model in an export (a model, or held in dicts and lists), with its path inside it, in order.

    >>> list(models_in({"a": [1, 2]}))
    []
    """
    if isinstance(value, ModelValue):
        yield path, value
    elif depth < 4 and isinstance(value, dict):
        for key, item in value.items():
            yield from models_in(item, f"{path}[{key!r}]", depth + 1)
    elif depth < 4 and isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from models_in(item, f"{path}[{i}]", depth + 1)


def judged(net: Any) -> tuple[int, int]:
    """(steps measured, steps whose gradient still held the step before's) for one loaded model."""
    return int(getattr(net, "judged_steps", 0) or 0), int(getattr(net, "carried_steps", 0) or 0)


def carried_message(where: str, measured: int, carried: int) -> str:
    """What to tell a student whose loop carried gradients from step to step: what was measured, then the causes."""
    if carried == measured:
        held = ("every one used a gradient that still held the step before's: the loop does not clear them between "
                "batches (never, or only now and then: once per epoch, say)")
    else:
        held = (f"{carried} used a gradient that still held the step before's, and {measured - carried} one cleared "
                "first: the loop clears them only now and then (once per epoch, say), not before every batch")
    return (f"Of the {measured} optimizer steps measured on {where}, {held}. torch adds each backward() to what .grad "
            "holds, so each step followed the sum of all the batches since the last clear. Call "
            "optimizer.zero_grad() once per batch, before loss.backward() (or after optimizer.step()).")


def carried_gradients(net: Any, where: str) -> str:
    """``carried_message`` for a model whose loop carried gradients from step to step; "" otherwise."""
    measured, carried = judged(net)
    return carried_message(where, measured, carried) if carried else ""


def loss_changes(net: Any, softmax_in_model: bool = False) -> list[str]:
    """How the run's losses and gradients differed from plain cross-entropy on the scores, as the kernel recorded the
    notebook's calls (run-wide): label smoothing, by argument or in the targets, probabilities given to cross_entropy
    (unless the model's own last layer is the softmax, which the architecture check names), another loss (MSE on
    one-hot targets, say), gradient clipping."""
    losses = getattr(net, "loss_calls", None) or {}
    found = []
    if losses.get("label_smoothing"):
        values = ", ".join(f"{v:g}" for v in losses["label_smoothing"])
        found.append(f"cross_entropy was called with label_smoothing={values}")
    if losses.get("probabilities") and not softmax_in_model:
        found.append(f"cross_entropy was given probabilities (rows in [0, 1] that sum to 1) in "
                     f"{losses['probabilities']} of its first calls: a softmax before a loss that applies its own")
    if losses.get("soft_targets"):
        found.append(f"cross_entropy was given targets other than the labels (class probabilities that are not one-hot, "
                     f"in {losses['soft_targets']} of its first calls): label smoothing, or another softening, written "
                     "by hand")
    if losses.get("nll_not_log_probabilities"):
        found.append(f"nll_loss (NLLLoss) was given rows that are not log-probabilities in "
                     f"{losses['nll_not_log_probabilities']} of its first calls: without a log_softmax before it, what "
                     "it computes is not cross-entropy")
    # Called as often as a training loop calls its loss: a metric of a few calls (an MSE to print) is not training.
    trained = {name: n for name, n in (losses.get("others") or {}).items()
               if n >= 10 and 2 * n > losses.get("cross_entropy", 0)}
    if trained:
        called = ", ".join(f"{name} ({n} calls)" for name, n in trained.items())
        found.append(f"the run called {called}, a loss other than cross_entropy, as often as a training loop calls "
                     f"its loss (cross_entropy: {losses.get('cross_entropy', 0)} calls)")
    if losses.get("clipped"):
        found.append(f"the gradients were clipped ({losses['clipped']} clip_grad_norm_/clip_grad_value_ calls that "
                     "changed them)")
    return found


def restarts_message(net: Any) -> str:
    """What the kernel saw when a new optimizer took over ``net``'s parameters from one that kept state for them
    (a new Adam, or SGD with momentum); "" if none did."""
    n = int(getattr(net, "optimizer_restarts", 0) or 0)
    if not n:
        return ""
    return (f"a new optimizer took over the model's parameters {n} time{'s' * (n != 1)} during training, without the "
            "state the one before had built for them (Adam's running averages, or momentum), so that state started "
            "again from zero: an optimizer made inside the epoch loop does this, and so does a model trained on in a "
            "later run with an optimizer of its own")


def _label(ctx: CheckContext, name: str, path: str) -> str:
    spec = ctx.exercise.export(name)
    if spec is not None and spec.code:
        return "the model of the grader's own run of your function"
    return f"`{name}{path}`"


def validation_message(steps: int, backward: int) -> str:
    """What to tell a student whose training steps followed gradients of the validation batches."""
    return (f"In the grader's run of your function, {steps} optimizer step{'s' * (steps != 1)} used a gradient that "
            f"still held a backward pass through the model's outputs on the validation batches ({backward} such "
            "passes in all): the validation loss's backward() (or a loss that adds it in), with the gradients cleared "
            "only after optimizer.step() or not at all before the next training batch. Each such step trained the "
            "model on the validation data, so its val loss no longer measures unseen points. Validate under "
            "torch.no_grad() without backward(), and clear the gradients before each training batch's backward().")


@check_kind("gradients_cleared",
            models=Param(str, "model", "the export holding the models a training loop of the notebook's trained (a "
                         "model, or dicts and lists of them, or a run of the grader's holding one)", export=True),
            leaked=Param(str, "", "in a run of the grader's (a dict export), the key counting the optimizer steps whose "
                         "gradient still held a backward pass on the validation batches; beside it, with "
                         "'validation_backward', the passes counted"))
def gradients_cleared(ctx: CheckContext, models: str, leaked: str = "") -> Outcome:
    """No optimizer step used a gradient left over from the step before, or from a validation batch."""
    value = ctx.exports.values.get(models)
    if isinstance(value, ExportProblem):  # no capture, no record: the model's own checks say what to change
        return Outcome(True, f"Not measured: `{models}` could not be handed to the grader ({value.message.rstrip('.')}), "
                             "and with it went the record of its optimizer steps.")
    held = ctx.value(models)
    steps = held.get(leaked) if leaked and isinstance(held, dict) else None
    if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0:
        backward = held.get("validation_backward")
        return Outcome(False, validation_message(steps, backward if isinstance(backward, int) else steps),
                       metrics={"validation_gradient_steps": steps})
    unique: dict[int, tuple[str, ModelValue]] = {}  # one model under two keys ("model" and "trained") counts once
    for path, net in models_in(held):
        unique.setdefault(id(net), (_label(ctx, models, path), net))
    found = list(unique.values())
    measured = [(where, *judged(net)) for where, net in found if judged(net)[0]]
    wrong = [(where, n, carried) for where, n, carried in measured if carried]
    metrics = {"measured_steps": sum(n for _, n, _ in measured), "carried_steps": sum(c for _, _, c in measured)}
    if wrong:
        where, n, carried = max(wrong, key=lambda item: item[2] / item[1])
        also = f" ({len(wrong) - 1} other model{'s' * (len(wrong) > 2)} too)" if len(wrong) > 1 else ""
        return Outcome(False, carried_message(where, n, carried) + also, metrics=metrics)
    idle = max((getattr(net, "idle_steps", 0) for _, net in found if not judged(net)[0]), default=0)
    if not measured and idle:
        # Gradients cleared at the wrong moment: each step finds none, and the model never trains.
        return Outcome(False, f"Its optimizer stepped {idle} times and never found a gradient on the parameters: "
                              "zero_grad() is called between backward() and step(), or step() comes before backward() "
                              "with zero_grad() after it, or backward() is never called. Clear the gradients before "
                              "each batch's backward(): optimizer.zero_grad(), loss.backward(), optimizer.step().",
                       metrics=metrics)
    if not measured:
        return Outcome(True, "No optimizer step after the first was recorded on the models' parameters with a "
                             "gradient a backward pass added to (trained without a torch optimizer, on gradients "
                             "assigned to .grad, rebuilt from saved weights, or never stepped: an optimizer made for "
                             "another model, one built before the model was made again, steps that one), so whether "
                             "the loop clears its gradients was not measured.", metrics=metrics)
    return Outcome(True, f"Every measured optimizer step ({metrics['measured_steps']} on {len(measured)} "
                         f"model{'s' * (len(measured) > 1)}) used a gradient cleared since the step before.",
                   metrics=metrics)
