"""Checks for the MNIST track: what the task fixes (optimizer, batch size, preprocessing) and the LR sweep.

Accuracy thresholds use the generic ``accuracy`` kind on ``{kind = "mnist", split = ...}``
data: the grader measures on its own copy of the split the kernel was shown read-only.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grader.checks.base import CheckContext, CheckFailed, Outcome, as_curve, not_a_model
from grader.checks.data import DataUnavailable, data_problem
from grader.checks.gradients import loss_changes, restarts_message
from grader.checks.models import (
    HAND_TRAINED,
    chance_level,
    fed_from,
    fed_ranges,
    rows_from,
    fed_unlike,
    measured_accuracy,
    moved_without_a_step,
    same_rows,
    same_weights,
    splits_table,
    untrained,
    untrained_cause,
)
from grader.checks.registry import Param, check_kind
from grader.diagnosis.convergence import diagnose, diagnose_accuracy
from grader.diagnosis.loss_readings import LAST_BATCH, REL_TOL, EpochLosses, read_record, record_fault
from grader.kernel.kernel_probe import signature_rows
from grader.kernel.notebook import without_magics
from grader.loading.values import LoaderExport, ModelValue, OptimizerExport, SchedulerExport
from grader.source_trees import parse as parse_source

# Settings that choose an implementation, not the optimisation: never a change of the recipe.
IMPLEMENTATION_FLAGS = frozenset({"foreach", "fused", "capturable", "differentiable"})


def changed_settings(opt: OptimizerExport, cycled: str = "") -> list[str]:
    """Hyperparameters other than the learning rate that differ from torch's defaults for the class; ``cycled``
    (``cycled_setting``) is left out, as a scheduler moves it."""
    import torch

    cls = getattr(torch.optim, opt.cls, None)
    if not isinstance(cls, type) or not opt.param_groups:
        return []
    defaults = {k: v for k, v in cls([torch.nn.Parameter(torch.zeros(1))]).param_groups[0].items() if k != "params"}
    changed = []
    # Every group: weight decay kept off the biases puts it in the second group, say.
    for number, group in enumerate(opt.param_groups, 1):
        where = f" in param group {number}" if len(opt.param_groups) > 1 else ""
        for key, default in defaults.items():
            if key in IMPLEMENTATION_FLAGS or key in ("lr", "initial_lr", cycled) or key not in group:
                continue
            value = group[key]
            if value != (list(default) if isinstance(default, tuple) else default):  # JSON turned tuples into lists
                changed.append(f"{key}={value!r}{where} (torch's default is {default!r})")
        if cycled == "betas" and isinstance(group.get("betas"), list) and "betas" in defaults:
            if group["betas"][1:] != list(defaults["betas"])[1:]:  # the second beta is still the student's own
                changed.append(f"betas[1]={group['betas'][1]!r}{where} (torch's default is {defaults['betas'][1]!r})")
    return changed


def stepped_settings_changed(net: Any, optimizer: str, cycled: str = "") -> list[str]:
    """``changed_settings`` of the param group the kernel saw step ``net``'s parameters, for an ``optimizer`` class."""
    settings = getattr(net, "step_settings", None)
    return changed_settings(OptimizerExport(optimizer, "", (settings,), {}), cycled) if settings else []


def cycled_setting(scheduler: Any) -> str:
    """The optimizer setting a scheduler moves along with the LR: OneCycleLR and CyclicLR cycle the momentum (Adam's
    first beta) unless made with cycle_momentum=False; "" for any other scheduler."""
    if not isinstance(scheduler, SchedulerExport) or scheduler.cls not in ("OneCycleLR", "CyclicLR"):
        return ""
    if not scheduler.state.get("cycle_momentum"):
        return ""
    return "betas" if scheduler.state.get("use_beta1") else "momentum"


@check_kind("optimizer_class", export=Param(str, "optimizer", export=True), expected=Param(str, doc="e.g. SGD or Adam"),
            model=Param(str, "", "the model export the optimizer must train", export=True),
            scheduler=Param(str, "", "the scheduler, if any: what it moves besides the LR is its own doing",
                            export=True))
def optimizer_class(ctx: CheckContext, export: str, expected: str, model: str, scheduler: str = "") -> Outcome:
    """The optimiser is fixed by the task; only its learning rate (and a scheduler) may change."""
    opt = ctx.value(export, "optimizer")
    lr = opt.param_groups[0].get("initial_lr", opt.param_groups[0].get("lr")) if opt.param_groups else None
    if opt.cls != expected or not opt.module.startswith("torch.optim"):
        return Outcome(False, f"`{export}` is {opt.module}.{opt.cls}, but the task keeps torch's {expected}: change "
                       "only its learning rate and the scheduler.")
    problems, notes = [], ""
    sched = ctx.exports.values.get(scheduler) if scheduler else None
    cycled = cycled_setting(sched)
    changed = changed_settings(opt, cycled)
    if changed:
        problems.append(f"it also sets {', '.join(changed)}, and the task changes only the learning rate: "
                        f"create it as optim.{expected}(model.parameters(), lr=...)")
    group = opt.param_groups[0] if opt.param_groups else {}
    if cycled == "momentum" and group.get("momentum"):
        # Plain SGD given momentum by its scheduler: the training used momentum, so the recipe changed all the same.
        problems.append(f"your {sched.cls} gave it momentum={group['momentum']!r} (it cycles the momentum unless made "
                        "with cycle_momentum=False), and the task keeps plain SGD: pass cycle_momentum=False")
    elif cycled == "betas":
        notes = (f" Its first beta moves with your {sched.cls} (cycle_momentum=True, the default): that is the "
                 "scheduler's doing, not a change of the optimizer.")
    net = ctx.exports.values.get(model) if model else None
    optimised = sum(int(g.get("n_params", 0)) for g in opt.param_groups)
    if isinstance(net, ModelValue) and optimised != net.n_params:
        problems.append(f"it updates {optimised} parameters, but `{model}` has {net.n_params}: pass it "
                        f"{model}.parameters() of the model you train and export")
    problems += _stepped_unlike_export(net, model, expected, cycled, changed) if isinstance(net, ModelValue) else []
    metrics = {"initial_lr": lr} if isinstance(lr, (int, float)) else {}
    if problems:
        return Outcome(False, f"`{export}` is torch's {expected}, but {'; and '.join(problems)}.", metrics=metrics)
    # A scheduler keeps the first LR as initial_lr; without one, the LR is only known as it was exported.
    which = "starting learning rate" if "initial_lr" in group else "learning rate when exported"
    # A cyclic schedule sets the optimizer's LR itself when made: the lr= the notebook wrote is gone.
    begins = (f", where your {sched.cls} begins its cycle" if isinstance(sched, SchedulerExport) and
              sched.torch_base in ("OneCycleLR", "CyclicLR") and "initial_lr" in group else "")
    return Outcome(True, f"`{export}` is torch's {expected} ({which} {lr}{begins}).{notes}", metrics=metrics)


def _stepped_unlike_export(net: ModelValue, model: str, expected: str, cycled: str, said: list[str]) -> list[str]:
    """How the kernel saw ``net``'s parameters trained unlike the exported optimizer says: by another optimizer class,
    by one made with other settings than those ``said`` of the export (what a scheduler cycles aside), or by no
    torch optimizer at all."""
    if moved_without_a_step(net):
        return [f"it did not train `{model}`: {HAND_TRAINED}. What such an update does (plain SGD, momentum, or "
                "another rule) cannot be read from the record, and the task trains with the optimizer itself: call "
                "optimizer.step() in the loop"]
    used = tuple(getattr(net, "optimizers", ()))
    if used and used != (expected,):
        return [f"`{model}`'s parameters were stepped by {' and '.join(used)} (the kernel's record): export the "
                f"optimizer that trained the model, and keep it torch's {expected}"]
    changed = [c for c in stepped_settings_changed(net, expected, cycled) if c not in said] if used else []
    return [f"the {expected} that stepped `{model}`'s parameters was made with {', '.join(changed)} (the kernel's "
            "record of its first step), and the task changes only the learning rate"] if changed else []


@dataclass(frozen=True)
class RunCount:
    """What the exports say about how long the run trained: optimizer steps and epochs, each None when unknown."""

    steps: int | None  # optimizer.step() calls (the kernel's probe), else Adam's per-parameter step count
    epochs_recorded: int | None  # the history's length
    scheduler_epochs: int | None  # the scheduler's last_epoch: its step() calls
    model_steps: int | None = None  # the optimizer steps the model's parameters took, whichever optimizers made them
    counted_by_model: bool = False  # ``steps`` are the model's: more than one optimizer made them

    def stepped(self, optimizer: str) -> str:
        """What ``steps`` counts, in words: the exported optimizer's step() calls, or the model's steps."""
        if self.counted_by_model:
            return f"the model's parameters took {self.steps:,} optimizer steps"
        return f"`{optimizer}` stepped {self.steps:,} times"

    def epoch_counts(self) -> list[int]:
        """Epoch counts the run may have had, most trusted first (a scheduler stepped per batch counts none)."""
        counts = [self.epochs_recorded, self.scheduler_epochs]
        return list(dict.fromkeys(c for c in counts if c and self.steps and c < self.steps))


def count_run(ctx: CheckContext, optimizer: str, history: str, scheduler: str, model: str = "") -> RunCount:
    steps = ctx.value(optimizer, "optimizer").step_count()
    hist = ctx.exports.values.get(history)
    curve = as_curve(hist.get("train_loss")) if isinstance(hist, dict) else None
    sched = ctx.exports.values.get(scheduler) if scheduler else None
    last = sched.state.get("last_epoch") if isinstance(sched, SchedulerExport) else None
    net = ctx.exports.values.get(model) if model else None
    took = max(net.steps.values(), default=None) if isinstance(net, ModelValue) and hasattr(net, "steps") else None
    return RunCount(steps, len(curve) if curve is not None else None,
                    last if isinstance(last, int) and not isinstance(last, bool) else None, took or None)


def _whole_epochs(steps: int | None, n: int, batch: int) -> int | None:
    """``steps`` as whole epochs of batches of ``batch`` over ``n`` images (the last batch kept, or dropped)."""
    return next((steps // k for k in (math.ceil(n / batch), n // batch) if steps and k and steps % k == 0), None)


def _remade(opt: OptimizerExport, run: RunCount, optimizer: str,
            net: object = None) -> tuple[RunCount, str, bool]:
    """A run whose model took more optimizer steps than the exported optimizer made: another optimizer made them too.

    Returns the run counted by the model's steps, what that shows, and whether it changes the training: a plain SGD
    (no momentum) keeps no state, so making it anew changes nothing but the LR; a new one given the old one's state
    (a checkpoint resumed: the kernel saw no restart on the model) goes on as one; any other starts over.
    """
    if not run.model_steps or not run.steps or run.model_steps <= run.steps:
        return run, "", False
    stateless = opt.cls == "SGD" and all(not g.get("momentum") for g in opt.param_groups)
    resumed = isinstance(net, ModelValue) and bool(getattr(net, "steps", None)) and not net.optimizer_restarts
    what = f"`{optimizer}` itself stepped {run.steps:,} times: a new {opt.cls} was made during training"
    if stateless:
        what += " (a plain SGD keeps no state, so that changes nothing but the learning rate)"
    elif resumed:
        what += " and given its predecessor's state (load_state_dict), so the run went on as one"
    else:
        what += (f", which starts its state over ({'running averages' if opt.cls != 'SGD' else 'momentum'}); "
                 "create it once, before the loop, and change the learning rate with a scheduler")
    return dataclasses.replace(run, steps=run.model_steps, counted_by_model=True), what, not (stateless or resumed)


def _batches_for(n: int, per_epoch: int) -> str:
    """The batch sizes that split ``n`` images into ``per_epoch`` batches (the last one partial)."""
    low, high = math.ceil(n / per_epoch), (math.ceil(n / (per_epoch - 1)) - 1 if per_epoch > 1 else n)
    return f"{low}" if low >= high else f"{low} to {high}"


def _explain_steps(run: RunCount, n: int, batch: int, optimizer: str, loader: LoaderExport | None,
                   name: str, n_val: int | None = None) -> tuple[str, bool]:
    """Why ``run.steps`` is no whole number of epochs at ``batch`` over ``n`` images (what it fits, and the causes
    left open), and whether that names the handed-out loader as the cause. ``n_val``: the validation split's size,
    named where the steps fit it (a loop over the validation loader, or over both splits)."""
    own = loader.batch_size if isinstance(loader, LoaderExport) and loader.dataset_len in (None, n) else None
    for epochs in run.epoch_counts():
        if run.steps % epochs:
            continue
        k = run.steps // epochs
        counted = f"{run.stepped(optimizer)} in {epochs} epochs, {k} times per epoch"
        if isinstance(own, int) and own != batch and math.ceil(n / own) == k:
            return (f"{counted}: batches of {own} over the {n:,} training images, as `{name}` makes them, but the "
                    f"task fixes the batch size at {batch}"), True
        held = loader.dataset_len if isinstance(loader, LoaderExport) and loader.batch_size == batch else None
        if isinstance(held, int) and held != n and k in (math.ceil(held / batch), held // batch):
            fix = ((f"{held:,} is as many as the validation split holds, so it may be the validation split "
                    "(train=False where train=True belongs): train on the training split" if held == n_val
                    else "train on all of it")
                   if held < n else f"{held - n:,} of its images come from elsewhere"
                   + (", as many as the validation split holds: train on the training split alone"
                      if held - n == n_val else ": train on the training split alone"))
            return (f"{counted}: batches of {batch} over the {held:,} images `{name}` holds, as it makes them, "
                    f"but the training split has {n:,}: {fix}"), True
        fits = next((f"; that is {what} ({size:,} images): the loop stepped on {which}" for what, size, which in
                     (("the size of the validation split", n_val, "the validation images"),
                      ("the training and validation splits together", n + (n_val or 0), "both splits"))
                     if n_val and (k - 1) * batch < size <= k * batch), "")
        per_epoch = math.ceil(n / batch)
        whole, rest = divmod(run.steps, per_epoch)
        stopped = (f"; or {_plural(whole, 'whole epoch')} of {per_epoch} batches of {batch} and {rest} batches of the "
                   "next: a last epoch stopped early (a break inside the batch loop, say)"
                   if whole == epochs - 1 and rest else "")
        return (f"{counted}. Over the {n:,} training images that is batches of {_batches_for(n, k)} images, not "
                f"{batch}; or, with batches of {batch}, epochs of {(k - 1) * batch + 1:,} to {k * batch:,} images "
                f"instead of all {n:,}{fits}{stopped}"), False
    return (f"{run.stepped(optimizer)}, which is no whole number of epochs of {math.ceil(n / batch)} "
            f"batches of {batch} over the {n:,} training images: the batch size or the training data changed, or an "
            "epoch stopped early"), False


def _ends_in_softmax(net: Any) -> bool:
    """Whether the model's own last layer is a softmax: the architecture check names that one."""
    from grader.checks.architecture import readable_layers

    return [layer.kind for layer in readable_layers(net)][-1:] == ["softmax"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _validation_size(ctx: CheckContext, data: dict) -> int | None:
    """The size of the split the task validates on (MNIST's test split, for its training split); None if unknown."""
    if data.get("kind") != "mnist" or data.get("split") != "train":
        return None
    try:
        return len(ctx.data.make({**data, "split": "test"}, ctx.check_id).Y)
    except Exception:  # noqa: BLE001 - a hint only: no root, no hint
        return None


def _as_recorded(run: RunCount, whole: int, history: str, optimizer: str) -> str:
    """What the history adds to a step count of ``whole`` epochs, when it records another number."""
    recorded = run.epochs_recorded
    if recorded is None or recorded == whole:
        return ""
    if recorded < whole:
        return f" (`{history}` records {recorded})"
    # More epochs recorded than stepped: fewer ran, or this optimizer was made anew during the run.
    return (f" (`{history}` records {recorded}; if {recorded} ran, `{optimizer}` was created anew during training: "
            "create it once, before the loop)")


def _in_stored_order(net: ModelValue, inputs) -> int:
    """How many of the rows the kernel recorded first in ``net``'s training were ``inputs``' first rows, each in its
    place (``row_signatures``, to 1e-6); 0 unless that is the first 32 or more, and all recorded up to the first
    128. A shuffling loader puts 32 given images first, in order, with a chance far below 1e-60."""
    recorded = tuple(getattr(net, "input_rows", ()) or ())[:128]
    if len(recorded) < 32 or len(inputs) < len(recorded):
        return 0
    import torch

    rows = torch.tensor(recorded, dtype=torch.float64)
    return len(recorded) if bool(same_rows(rows, signature_rows(inputs[:len(recorded)]), 1e-6).all()) else 0


def _stepped_unordered(net: ModelValue, inputs, batch_size: int) -> bool:
    """Whether some of the batches an optimizer step followed (the first row of each, the kernel's sample across the
    run) begin with an image that starts no batch of the stored order: the training itself was shuffled, whatever the
    first training-mode calls were (an evaluation with gradients on, before training). Sixteen rows at least, each a
    batch start by chance one time in ``batch_size``."""
    seen = rows_from(getattr(net, "stepped_rows", ()) or (), inputs[::batch_size], 1e-6)
    return seen is not None and seen[0] < seen[1]


def _loader_notes(loader: LoaderExport | None, name: str, n: int, batch: int, batch_differs: bool) -> list[str]:
    if not isinstance(loader, LoaderExport):
        return []
    notes = []
    if loader.batch_size != batch:
        notes.append(f"`{name}` has batch size {loader.batch_size}, but the task fixes it at {batch}")
    elif batch_differs:
        notes.append(f"`{name}` makes {math.ceil(n / batch)} batches of {batch} per epoch, so the training did not "
                     f"step once on each of its batches: it also stepped on other batches (another loader's, say), "
                     f"skipped some, stepped once per several (gradients accumulated over them), or did not use "
                     f"`{name}`")
    if loader.dataset_len not in (None, n):
        notes.append(f"`{name}` holds {loader.dataset_len:,} images, but the training split has {n:,}")
    return notes


@check_kind("fixed_setup",
            optimizer=Param(str, "optimizer", "the optimizer whose steps are counted", export=True),
            history=Param(str, "history", "the history whose length is the epochs the notebook reports", export=True),
            scheduler=Param(str, "", "the scheduler, if any: its last_epoch counts epochs too", export=True),
            loader=Param(str, "train_loader", "the training DataLoader the notebook hands out", export=True),
            data=Param(dict, doc="the training split, e.g. {kind='mnist', split='train'}", check=data_problem),
            batch_size=Param(int, doc="the batch size the task fixes"),
            epochs=Param(int, 0, "the epochs the task fixes; 0 when the notebook chooses them"),
            shuffle=Param(bool, True, "the training loader must shuffle"),
            model=Param(str, "model", "the trained model: the optimizer steps its parameters took count the run when "
                        "more than one optimizer made them", export=True))
def fixed_setup(ctx: CheckContext, optimizer: str, history: str, scheduler: str, loader: str, data: dict,
                batch_size: int, epochs: int, shuffle: bool, model: str) -> Outcome:
    """What the task fixes (epochs, batch size, training data), counted from the optimizer's steps, not a loader.

    One epoch over the n training images of the grader's root is ceil(n / batch_size) steps (n // batch_size
    with drop_last), so the run's step count shows the epochs and the batches it really used.
    """
    run = count_run(ctx, optimizer, history, scheduler, model)
    train = ctx.data.make(data, ctx.check_id)
    n = len(train.Y)
    remade, restarted = "", False
    own = _whole_epochs(run.steps, n, batch_size)
    if own is None or own != (epochs or run.epochs_recorded or own):  # the exported optimizer does not explain it
        run, remade, restarted = _remade(ctx.value(optimizer, "optimizer"), run, optimizer,
                                         ctx.exports.values.get(model) if model else None)
    handed_out = ctx.exports.values.get(loader)
    if not run.steps:
        return Outcome(False, ctx.cut_short(f"`{optimizer}` never stepped, or its steps could not be counted: train "
                                            "with this optimizer, calling its step() once per batch."))
    per_step = run.epochs_recorded == run.steps and run.steps > math.ceil(n / batch_size)
    if per_step:  # the history was filled once per batch: its length counts steps, not epochs
        run = dataclasses.replace(run, epochs_recorded=None)
    whole = _whole_epochs(run.steps, n, batch_size)
    problems, named = [], False
    if whole is None:
        explained, named = _explain_steps(run, n, batch_size, optimizer, handed_out, loader,
                                          _validation_size(ctx, data))
        problems.append(explained)
    elif epochs and whole != epochs:
        problems.append(f"{run.stepped(optimizer)}: {whole} epoch{'s' * (whole != 1)} of batches of "
                        f"{batch_size} over the {n:,} training images{_as_recorded(run, whole, history, optimizer)}, "
                        f"but the task fixes {epochs} epochs")
    elif remade and restarted:
        problems.append(f"{run.stepped(optimizer)}, {whole} epoch{'s' * (whole != 1)} of batches of {batch_size} over "
                        f"the {n:,} training images, but {remade}")
    elif not epochs and (run.epochs_recorded or 0) > whole + 1 and not remade:
        # One value more than the epochs stepped is a row for the untrained network (an evaluation before training);
        # more: the epochs are the notebook's choice, but the exported optimizer ran fewer than the history records.
        problems.append(f"{run.stepped(optimizer)}: {whole} epoch{'s' * (whole != 1)} of batches of "
                        f"{batch_size} over the {n:,} training images{_as_recorded(run, whole, history, optimizer)}; "
                        "a new optimizer each epoch also restarts what it has learnt of the gradients (Adam's running "
                        "averages, SGD's momentum)")
    problems += [] if named else _loader_notes(handed_out, loader, n, batch_size, whole is None)
    net = ctx.exports.values.get(model) if model else None
    if shuffle and isinstance(handed_out, LoaderExport) and not handed_out.shuffle:
        problems.append(f"`{loader}` does not shuffle (pass shuffle=True)")
    elif shuffle and isinstance(net, ModelValue) and (first := _in_stored_order(net, train.X)) and \
            not _stepped_unordered(net, train.X, batch_size):
        problems.append(f"`{model}`'s first {first} training inputs were the first {first} training images in their "
                        "stored order (the kernel's record of its first training-mode calls), so the data was not "
                        "shuffled" + (f", whatever `{loader}` says" if isinstance(handed_out, LoaderExport) else "")
                        + ", or these calls were an evaluation in training mode with gradients on (no model.eval(), "
                        "no torch.no_grad()) before training: draw the batches from a DataLoader with shuffle=True, "
                        "which reshuffles every epoch, and evaluate under model.eval() and torch.no_grad()")
    # The model's steps count its current run: the kernel starts them again where the weights are back at their start.
    since = run.model_steps or 0
    if not remade and run.steps and not run.counted_by_model and since > run.steps:
        problems.append(f"`{model}`'s parameters took {since:,} optimizer steps since they were last at their start, "
                        f"{since - run.steps:,} more than `{optimizer}` made: the model went on from an earlier run "
                        "(trained first with another optimizer, and not set back to its starting weights), where "
                        "each run starts from a fresh model")
    # The model's own layers are read only where cross_entropy was given probabilities: a softmax layer is named
    # by the architecture check, one in the loop only here.
    fed_probabilities = isinstance(net, ModelValue) and bool((getattr(net, "loss_calls", None) or {}).get(
        "probabilities"))
    changed = loss_changes(net, softmax_in_model=fed_probabilities and _ends_in_softmax(net)) \
        if isinstance(net, ModelValue) else []
    if changed:  # the loss and the gradients are the set-up's too: the task changes only the learning rate
        problems.append("; ".join(changed) + " (the kernel's record of the run): the task keeps the loss and the "
                        "gradients as given, plain cross-entropy of the scores, and changes only the learning rate")
    metrics = {"steps": run.steps, "n_train": n}
    recorded = (f" (`{history}` holds one value per optimizer step, not one per epoch: its length counts batches)"
                if per_step else f" (`{history}` records {whole + 1} values, one more than the epochs stepped: a row "
                "before training, say)" if whole is not None and run.epochs_recorded == whole + 1 else "")
    if remade and not restarted:
        recorded += f" ({remade})"
    if problems:
        return Outcome(False, ctx.cut_short("; ".join(problems) + recorded + "."), metrics=metrics)
    return Outcome(True, f"{run.stepped(optimizer)}: {whole} epoch{'s' * (whole != 1)} of batches of "
                   f"{batch_size} over the {n:,} training images, as the task fixes{recorded}.", metrics=metrics)


TRANSFORM_CALL = re.compile(r"\btransforms\.(\w+)\s*\(")
SHOWN_ONLY = frozenset({"ToPILImage"})  # makes a picture to look at: no model takes its output
TRANSFORM_MODULES = ("torchvision.transforms", "torchvision.transforms.v2")


def transforms_in_code(cells: tuple[tuple[int, str], ...]) -> tuple[set[str], list[str]]:
    """Transform classes the code builds, and cells where the pipeline is built in a way reading cannot follow.

    Read from the syntax, so a commented-out line counts for nothing and an import under another name
    (``import torchvision.transforms as T``) is followed; a cell that does not parse is searched as text. What only
    the labels go through (``target_transform=``, inline or under a name used nowhere else) leaves the images alone.
    """
    used, unclear, modules = set(), [], {"transforms"}  # the starter's `from torchvision import transforms`
    trees = []
    for cell, source in cells:
        try:
            trees.append((cell, parse_source(without_magics(source))))
        except SyntaxError:
            used.update(TRANSFORM_CALL.findall("\n".join(line.split("#")[0] for line in source.splitlines())))
    labels_only = _labels_only([tree for _, tree in trees])
    for cell, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(a.asname for a in node.names if a.name in TRANSFORM_MODULES and a.asname)
            elif isinstance(node, ast.ImportFrom) and node.module in ("torchvision", "torchvision.transforms"):
                for a in node.names:
                    if f"{node.module}.{a.name}" in TRANSFORM_MODULES:
                        modules.add(a.asname or a.name)
                    elif node.module == "torchvision.transforms":
                        used.add(a.name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and id(node) not in labels_only \
                    and ast.unparse(node.func.value) in modules | set(TRANSFORM_MODULES) \
                    and node.func.attr not in SHOWN_ONLY:
                used.add(node.func.attr)
            # getattr(transforms, name) hides which transform is built.
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" and \
                    node.args and ast.unparse(node.args[0]) in modules:
                unclear.append(f"cell {cell} picks a transform by name")
    return used, unclear


def _labels_only(trees: list[ast.Module]) -> set[int]:
    """The ids of the nodes that only labels go through: ``target_transform=`` values, and what is assigned to a name
    read nowhere but there."""
    given = [node.value for tree in trees for node in ast.walk(tree)
             if isinstance(node, ast.keyword) and node.arg == "target_transform"]
    inside = {id(sub) for value in given for sub in ast.walk(value)}
    named = {value.id for value in given if isinstance(value, ast.Name)}
    elsewhere = {node.id for tree in trees for node in ast.walk(tree) if isinstance(node, ast.Name)
                 and isinstance(node.ctx, ast.Load) and id(node) not in inside}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                    and node.targets[0].id in named - elsewhere:
                inside.update(id(sub) for sub in ast.walk(node.value))
    return inside


def _fed_calls(ctx: CheckContext, model: str, low: float, high: float) -> tuple[list, list]:
    """The (lowest, highest) value of each of the model's first training-mode calls the kernel recorded, split into
    those within the pixels' [low, high] and those outside (``fed_ranges``).

    A batch of digits always holds full-ink pixels, so one whose highest value lies in the lower half of the range
    was scaled down on the way (divided by 255 twice, say): it counts as outside.
    """
    net = ctx.exports.values.get(model) if model else None
    if not isinstance(net, ModelValue):
        return [], []
    calls = fed_ranges(net)
    outside = [c for c in calls if c[0] < low - 1e-6 or c[1] > high + 1e-6 or c[1] < (low + high) / 2]
    return [c for c in calls if c not in outside], outside


def _span(calls: list) -> tuple[float, float]:
    return min(c[0] for c in calls), max(c[1] for c in calls)


def _fed_otherwise(ctx: CheckContext, model: str, low: float, high: float) -> str:
    """What the kernel saw reach the model in training, where most of its first calls lie outside the pixels'
    [low, high]; "" otherwise (one stray call, a shape check on torch.randn say, is not the training)."""
    inside, outside = _fed_calls(ctx, model, low, high)
    if len(outside) <= len(inside):
        return ""
    lo, hi = _span(outside)
    counted = f": {len(outside)} of {len(inside) + len(outside)} calls" if inside else ""
    return (f"The images reached `{model}` in training with values from {lo:.4g} to {hi:.4g} (the kernel's record of "
            f"its first training batches{counted}), where the task's pixels lie in [{low:g}, {high:g}] and every batch "
            f"reaches {high:g}: they were normalised or scaled on the way, in the training loop, the dataset, or a step "
            "the code reading cannot follow.")


@dataclass(frozen=True)
class FedRows:
    """What the rows of a model's first training batches (the kernel's record) say of the preprocessing."""

    unchanged: str = ""  # all but a stray few are the task's images exactly as the allowed transforms give them
    changed: str = ""  # fewer than a quarter are, even to 1%: the images were changed on the way, or are others


def fed_rows(ctx: CheckContext, model: str, data: list[dict]) -> FedRows:
    """``FedRows`` of ``model`` against the splits ``data``; empty where nothing was recorded or no split is here.

    A row is compared by its sum, sum of squares and position-weighted sum, so a flip, a shift or a transpose shows,
    and an augmentation that changed more than one image in a hundred does too. "Unchanged" allows 1e-6 (x / 255 in
    float64); "changed" holds even at 1e-2, which the same images in half precision meet, so noise, inversion or
    normalisation in the training loop show where the range of the values would not.
    """
    net = ctx.exports.values.get(model) if model else None
    if not data or not isinstance(net, ModelValue) or len(getattr(net, "input_rows", ())) < 16:
        return FedRows()
    try:
        table = splits_table(ctx, data)
    except DataUnavailable:  # the code reading decides, as it does without a record
        return FedRows()
    exact, near = fed_from(net, None, 1e-6, table), fed_from(net, None, 1e-2, table)
    compared = "each row compared by its sum, sum of squares and position-weighted sum"
    if (exact[1] - exact[0]) * 100 <= exact[1]:
        return FedRows(unchanged=f"The images reached `{model}` in training unchanged: {exact[0]} of the {exact[1]} "
                       "rows of its first training batches (the kernel's record) are the task's images exactly as its "
                       f"transform gives them, {compared}, whatever the code calls its steps.")
    if near[0] * 4 < near[1]:
        return FedRows(changed=f"Of the {near[1]} rows of `{model}`'s first training batches (the kernel's record), "
                       f"{'only ' * bool(near[0])}{near[0]} are the task's images as its transform gives them, even to "
                       f"1% ({compared}): the images were changed on their way to the model (normalised, noised, "
                       "inverted, their pixels rearranged (transposed, flipped, shifted) or otherwise transformed, in "
                       "the pipeline or the training loop), or it was first "
                       "trained, or run in training mode with gradients on, on other inputs.")
    return FedRows()


@check_kind("preprocessing", export=Param(str, "train_loader", export=True),
            allowed=Param(list, ["ToTensor", "Compose"], "the transforms the task allows", of=str),
            model=Param(str, "", "the trained model, whose training inputs the kernel recorded", export=True),
            pixels=Param(list, [0.0, 1.0], "the range of the allowed transforms' pixels", of=(int, float)),
            data=Param(list, [], "the splits as the allowed transforms give them: a model fed their images unchanged "
                       "(the kernel's record) passes however the code spells the pipeline, one fed other values fails",
                       of=dict, check=lambda ds: next(filter(None, map(data_problem, ds)), None)))
def preprocessing(ctx: CheckContext, export: str, allowed: list, model: str = "",
                  pixels: list | None = None, data: list | None = None) -> Outcome:
    """The preprocessing is fixed by the task: measured on the rows the model was fed in training where the kernel
    recorded them, else read from the code, from the loader's transform as exported, and from the values' range."""
    low, high = pixels or (0.0, 1.0)
    given = f"The task keeps it as given ({' + '.join(a for a in allowed if a != 'Compose')} only)"
    rows = fed_rows(ctx, model, data or [])
    if rows.unchanged:
        return Outcome(True, rows.unchanged)
    used, unclear = transforms_in_code(ctx.code_cells)
    loader = ctx.exports.values.get(export)
    shown = loader.transform if isinstance(loader, LoaderExport) else ""
    in_loader = set(re.findall(r"\b([A-Z]\w+)\(", shown)) - {"Compose"}
    found = used | in_loader
    # Other spellings of ToTensor: an image tensor (ToImage, PILToTensor) made float in [0, 1] (ToDtype with
    # scale=True, ConvertImageDtype to float32): the same pixels, to the bit.
    text = shown + "\n".join(source for _, source in ctx.code_cells)
    scaled = {"ToDtype": "scale=True" in text,
              "ConvertImageDtype": bool(re.search(r"ConvertImageDtype\(\s*(dtype\s*=\s*)?torch\.float(32)?\b", text))}
    for image in ("ToImage", "PILToTensor"):
        for to_float in ("ToDtype", "ConvertImageDtype"):
            if "ToTensor" in allowed and {image, to_float} <= found and scaled[to_float]:
                found = (found - {image, to_float}) | {"ToTensor"}
    own = "a function of your own (a lambda or def in the transform)"
    if re.search(r"<function |\bLambda\(| object at 0x", shown):  # a function of the notebook's own in the pipeline
        found = found | {own}
    extra = sorted(found - set(allowed))
    fed = _fed_otherwise(ctx, model, low, high)  # what no reading of the code shows: a step in the loop, say
    if extra:
        details = {"transforms": sorted(found)}
        if not shown or set(extra) & (in_loader | {own}):
            return Outcome(False, f"The preprocessing changed: the notebook uses {', '.join(extra)}. {given}; change "
                           "only the learning rate strategy.", details=details)
        # Built in the code, not in the exported loader's pipeline: used on the images elsewhere, or never used.
        built = f"The notebook's code builds {', '.join(extra)}, which `{export}`'s transform ({shown}) does not hold"
        where = (f"{fed} {built}: it was applied elsewhere." if fed else
                 f"{built}: if the images go through it anywhere (in the training loop, say), the preprocessing "
                 "changed, and if it is never used, remove it so that the code shows the pipeline it runs.")
        return Outcome(False, f"{where} {given}; change only the learning rate strategy.", details=details)
    if fed or rows.changed:
        return Outcome(False, f"{fed or rows.changed} {given}; change only the learning rate strategy.")
    if unclear or not found:
        why = "; ".join(unclear) or "no transform could be found in the code or the exported loader"
        inside, outside = _fed_calls(ctx, model, low, high)
        span = _span(inside) if len(inside) > len(outside) else ()
        if span and math.isclose(span[0], low, abs_tol=1e-6) and math.isclose(span[1], high, abs_tol=1e-6):
            # Pixels scaled by hand (numpy's x / 255, say): the model was fed exactly the range ToTensor gives.
            return Outcome(True, f"The preprocessing could not be read from the code ({why}), but `{model}` was fed "
                           f"values from {low:g} to {high:g} in training, as the task's pixels are (the kernel's "
                           "record of its first training batches).", metrics={"undecided": 0})
        return Outcome(False, f"Whether the preprocessing is unchanged cannot be decided from the code ({why}). Build "
                       "the transform as given (transforms.ToTensor()), so it can be read.", fraction=0.5,
                       metrics={"undecided": 1})
    spelled = sorted((used | in_loader) & {"ToImage", "PILToTensor", "ToDtype", "ConvertImageDtype"})
    v2 = f" ({' + '.join(spelled)}, the same pixels as ToTensor)" if len(spelled) > 1 else ""
    return Outcome(True, f"The preprocessing is unchanged ({', '.join(sorted(found - {'Compose'}))}{v2}), "
                   "read from the code" + (" and the exported loader." if shown else "."))


def _pick(mapping: dict, lr: float, what: str):
    # Rates a tenfold apart: float32 keys (torch.logspace, say) are 1e-7 off and still plainly the same rate.
    for key, value in mapping.items():
        try:
            if math.isclose(float(key), lr, rel_tol=1e-6):
                return value
        except (TypeError, ValueError):
            continue
    keys = ", ".join(repr(k) for k in list(mapping)[:6]) or "none"
    raise CheckFailed(f"`{what}` has no entry for lr={lr:g} (its keys: {keys}): key it by the learning rate, e.g. "
                      f"{{{lr!r}: ...}}.")


def _sweep_models(ctx: CheckContext, models: str, lrs: list) -> dict:
    nets = ctx.value(models, "model_dict")
    picked = {lr: _pick(nets, lr, models) for lr in lrs}
    for lr, net in picked.items():
        if not isinstance(net, ModelValue):
            raise CheckFailed(f"The model for lr={lr:g} could not be checked: {not_a_model(net)}.")
    return picked


def _sweep(ctx: CheckContext, models: str, results: str, lrs: list) -> tuple[dict, dict]:
    table = ctx.value(results, "dict")
    return _sweep_models(ctx, models, lrs), {lr: _pick(table, lr, results) for lr in lrs}


def accuracy_curve_summary(curve: list[float]) -> str:
    """What a reported accuracy curve shows, in percent; values above 100 are no share of the images, whatever trend.

    >>> accuracy_curve_summary([181.0, 308.0])
    'it holds values above 100% (up to 308), which no share of the images reaches.'
    """
    if max(curve, default=0) > 100:
        return f"it holds values above 100% (up to {max(curve):g}), which no share of the images reaches."
    return diagnose_accuracy(curve).summary


def _readable_rows(ctx: CheckContext, results: str, lrs: list) -> dict:
    """Each rate's entry of ``results`` where it can be read; None where it cannot (``results`` no dict, say)."""
    try:
        table = ctx.value(results, "dict")
    except CheckFailed:
        return dict.fromkeys(lrs)
    rows = {}
    for lr in lrs:
        try:
            rows[lr] = _pick(table, lr, results)
        except CheckFailed:
            rows[lr] = None
    return rows


def _curve(row, key: str, lr: float, results: str) -> list[float]:
    values = as_curve(row.get(key)) if isinstance(row, dict) else None
    if not values or not all(isinstance(v, (int, float)) for v in values):
        raise CheckFailed(f"`{results}[{lr:g}]['{key}']` must be a list of numbers, one per epoch.")
    return values


# An honest report, re-measured on the same images, agrees to the image: both count the argmax hits of the same
# weights in eval mode, and only float near-ties between two batchings can flip a prediction (far below one image
# in 10,000 in expectation, so two or more flips are rarer than 1e-4). Hence two images of slack, plus the rounding
# the reported figure itself shows. The former 0.5 points (50 of 10,000 images) let a training accuracy pass for a
# validation one: after 5 epochs the two differ by about that much.
SLACK_IMAGES = 2


def rounding(value: float) -> float:
    """Half a unit of the last decimal a reported figure shows: 0.9731 -> 0.00005, 97 -> 0.5; 0 for a raw float."""
    if isinstance(value, int):
        return 0.5
    text = repr(float(value))
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 99
    return 0.5 * 10.0 ** -decimals if decimals <= 6 else 0.0


# Why reported accuracies sit at chance while the model scores well: what the predictions were counted against.
OTHER_LABELS = ("compared with labels in another order (a shuffled validation loader's batches against the dataset's "
                "own `targets`, say) or with other labels")

SWEEP = dict(models=Param(str, "models", "the export holding {lr: model}", export=True),
             results=Param(str, "results", "the export holding {lr: {train_losses, val_accs}}", export=True))


@check_kind("sweep_results", figure="lr_sweep", **SWEEP, lrs=Param(list, doc="the learning rates", of=(int, float)),
            data=Param(dict, doc="the validation split", check=data_problem),
            train_data=Param(dict, {}, "the training split: an accuracy report that matches it is named, and a loss "
                             "curve on another scale than the model's mean loss on it is told",
                             check=lambda d: data_problem(d) if d else None),
            slack_images=Param(int, SLACK_IMAGES, "images a report may be off by, beyond its own rounding"))
def sweep_results(ctx: CheckContext, models: str, results: str, lrs: list, data: dict, train_data: dict,
                  slack_images: int) -> Outcome:
    """Each rate's reported final val accuracy against the grader's count, and its loss curve against the record.

    A rate whose accuracy matches to the image but whose loss curve is off earns half its share."""
    nets, table = _sweep(ctx, models, results, lrs)
    val = ctx.data.make(data, ctx.check_id)
    train = ctx.data.make(train_data, ctx.check_id) if train_data else None
    lines, good, curves, misreported, learned, untrained_models, reported_of = [], 0, {}, [], [], [], {}
    signatures = splits_table(ctx, [data])
    for lr in lrs:
        losses, accs = _curve(table[lr], "train_losses", lr, results), _curve(table[lr], "val_accs", lr, results)
        scale = 100.0 if max(accs) <= 1.0 else 1.0  # the seed reports fractions; percent is accepted too
        reported = accs[-1] * scale
        measured, correct = measured_accuracy(nets[lr], val.X, val.Y)
        reported_of[lr] = reported, measured
        trend = diagnose([float(v) for v in losses]).trend.value
        curves[f"lr={lr:g}"] = {"train_loss": [float(v) for v in losses], "val_acc": [a * scale for a in accs]}
        stepped = rows_from(getattr(nets[lr], "stepped_rows", ()) or (), val.X, 1e-6, signatures)
        if stepped is not None and stepped[0] * 20 > stepped[1]:  # a report of images it learned: none to match
            learned.append(lr)
            lines.append(f"lr={lr:g}: val {measured:.2f}% ({correct}/{len(val.Y)}), but the model was trained on the "
                         f"validation images: {stepped[0]} of the {stepped[1]} training batches the kernel sampled "
                         "across the run (the first image of each batch an optimizer step followed) were images of "
                         "that split")
            continue
        tolerance = slack_images * 100 / len(val.Y) + rounding(accs[-1]) * scale
        # The two curves of one run, of other lengths: a loss a batch, or an epoch not validated (which, is not said).
        curve_problem = (f"`{results}[{lr:g}]['train_losses']` holds {len(losses)} values and its val_accs "
                         f"{len(accs)}: record one of each per epoch (the training loss as the mean over that epoch's "
                         "batches)" if len(losses) != len(accs) else "")
        zeros = [e for e, v in enumerate(losses, 1) if v == 0]
        curve_problem = curve_problem or (
            f"`{results}[{lr:g}]['train_losses']` is 0 at epoch{'s' * (len(zeros) > 1)} {', '.join(map(str, zeros))}: "
            "no batch was counted there (an iterator made once, before the epoch loop, is used up in the first epoch, "
            "say)" if zeros else "")
        off_scale = curve_problem or _epoch_loss_fault(nets[lr], losses, len(train.Y) if train else 0) or (
            _loss_off_scale(nets[lr], losses, train) if train else "")
        if abs(reported - measured) <= tolerance + 1e-9 and off_scale:
            good += 0.5  # the accuracy is right: the loss record costs the other half of this rate's share
            lines.append(f"lr={lr:g}: val {measured:.2f}% ({correct}/{len(val.Y)}) {_as_reported(reported, measured)}, "
                         f"but {off_scale}")
            continue
        if abs(reported - measured) <= tolerance + 1e-9:
            good += 1
            lines.append(f"lr={lr:g}: val {measured:.2f}% ({correct}/{len(val.Y)}) {_as_reported(reported, measured)}; "
                         f"your reported training loss: {trend}")
            continue
        misreported.append(lr)
        line = (f"lr={lr:g}: reported val {reported:.2f}% but the exported model scores {measured:.2f}% "
                f"({correct}/{len(val.Y)})")
        never = _never_trained(nets, [lr], lambda: val, models)
        if never:
            untrained_models.append(never[lr])
            lines.append(f"{line}, about what predicting one class scores")
            continue
        if abs(reported - correct) <= slack_images:  # a share of the images only where they are 100
            line += ": the count of correct predictions itself, not divided by the number of images"
        elif reported > 100 + tolerance:
            line += ", above 100%, which no share of the images reaches"
        if train_data:
            train = ctx.data.make(train_data, ctx.check_id)
            on_train = measured_accuracy(nets[lr], train.X, train.Y)[0]
            if abs(reported - on_train) <= slack_images * 100 / len(train.Y) + rounding(accs[-1]) * scale + 1e-9:
                line += f", and {on_train:.2f}% on the training images: the report is its training accuracy"
        lines.append(line)
    message = "; ".join(lines) + "."
    # Inputs scaled in training make the grader's count differ from an honest report: that, not the report, is off.
    scaled = next(filter(None, (fed_unlike(nets[lr], val.X, f"the model for lr={lr:g}") for lr in lrs)), "")
    if untrained_models:  # one record's words stand for all: they differ only in the model's name
        message += f" The models exported are not the ones trained. {untrained_models[0]}"
    at_chance = [lr for lr in misreported if chance_level(reported_of[lr][0], val.Y) is not None
                 and chance_level(reported_of[lr][1], val.Y) is None]
    if misreported and len(at_chance) == len(misreported) and not untrained_models:
        # Reports at chance of models that score well: the predictions were set against other labels.
        message += (" Every report is about what predicting one class scores, of models that score well: the "
                    f"predictions were {OTHER_LABELS}. Count the correct predictions against each batch's own labels.")
    elif len(misreported) > len(untrained_models):
        message += (f" {scaled}" if scaled else " Report the accuracy of the model you export (after its last epoch), "
                    f"measured on the validation loader (the test split){_in_eval_mode(nets, misreported)}, as the "
                    "seed does: the correct predictions over all its images (a mean of per-batch accuracies weighs a "
                    "smaller last batch's images more).")
    if learned:
        message += (" A validation accuracy measured on images the model learned from says nothing of how it does on "
                    "images it has not seen: train on the training split only (no ConcatDataset or other mix with the "
                    "validation images), and validate in eval mode under torch.no_grad(), with no optimizer step.")
    return Outcome(good == len(lrs), message, fraction=good / len(lrs), details={"sweep": curves})


def _as_reported(reported: float, measured: float) -> str:
    """How a report within its slack stands beside the grader's count: the same figure, or the one reported."""
    return "as reported" if round(reported, 2) == round(measured, 2) else f"where you reported {reported:.4g}%"


def _in_eval_mode(nets: dict[float, ModelValue], lrs: list[float]) -> str:
    """Where the models misreported have layers that act otherwise in training mode, the other cause that remains: a
    count taken without model.eval(), which the grader's own measurement (in eval mode) is not."""
    from grader.checks.architecture import readable_layers

    kinds = sorted({layer.kind.replace("_", " ") for lr in lrs for layer in readable_layers(nets[lr])
                    if layer.kind in ("dropout", "batch_norm")})
    return (f" and with the model in eval mode (it has {' and '.join(kinds)}, which acts otherwise in training mode: a "
            "count taken without model.eval() differs from the grader's)" if kinds else "")


LOSS_SAMPLE = 2048  # training images the grader scores a model's loss on: its mean to a few percent
LOSS_SCALE = 8  # how many times the model's own loss a report must be, at every epoch, to be on another scale


def _loss_off_scale(net: ModelValue, losses: list[float], train) -> str:
    """What to say where a reported training-loss curve is on another scale than a mean cross-entropy: every epoch
    more than LOSS_SCALE times the trained model's mean loss on training images, and its first epoch above three
    times an untrained model's (ln of the classes); or its last epoch under a LOSS_SCALE-th of it, and its first under
    a LOSS_SCALE-th of that of an untrained model's; "" otherwise.

    A correct curve's first epoch averages losses at or below an untrained model's, and its last is within a small
    factor of the trained model's own loss (a running mean over the last epoch against its end): a sum over each
    batch's samples (reduction='sum') is the batch size times that. Its first epoch, from an untrained model, cannot
    average under ln(classes) / LOSS_SCALE**2 (its first batches alone are near ln(classes)), nor its last fall far
    under what the model ends with: the batches' mean losses summed and divided by the number of images are the batch
    size times smaller.
    """
    import torch
    from torch.nn import functional as F

    finite = [v for v in losses if math.isfinite(v)]
    classes = int(train.Y.max()) + 1
    large = bool(losses) and losses[0] > 3 * math.log(classes)
    small = bool(losses) and 0 < losses[0] * LOSS_SCALE ** 2 < math.log(classes)
    if len(finite) != len(losses) or not (large or small):
        return ""
    x, y = train.X[:LOSS_SAMPLE].float(), train.Y[:LOSS_SAMPLE]
    with torch.no_grad():
        own = float(F.cross_entropy(net(x).float(), y))
    if not math.isfinite(own) or own <= 0:
        return ""
    measured = (f"its reported training losses run from {losses[0]:.4g} to {losses[-1]:.4g}, where the model's mean "
                f"cross-entropy on {len(y):,} training images is {own:.4g}")
    if large and min(losses) > LOSS_SCALE * own:
        return (f"{measured} ({losses[-1] / own:.0f} times less) and an untrained model's is about "
                f"{math.log(classes):.2f}: the curve is on another scale than a mean loss per sample (a sum over each "
                "batch's samples, reduction='sum', is the batch size times it; a sum over the epoch's batches is their "
                "number times it). Report the mean of the batch losses over each epoch")
    if small and losses[-1] * LOSS_SCALE < own:
        return (f"{measured} ({own / losses[-1]:.0f} times more) and an untrained model's is about "
                f"{math.log(classes):.2f}, though a first epoch's mean of the batch losses starts near the latter and "
                "a last one's comes to about the former: the curve is on another scale than a mean loss per sample "
                "(the batches' mean losses summed and divided by the number of images, instead of the number of "
                "batches, are the batch size times smaller). Report the mean of the batch losses over each epoch")
    return ""


def _epoch_loss_fault(net: ModelValue, losses: list[float], images: int = 0) -> str:
    """What to say where the reported epoch losses are, at every epoch, that epoch's last optimizer step's loss alone,
    a total that goes on from the epochs before, or (given the training ``images``) the sum of its steps' losses
    divided by the images, as the kernel recorded each step's cross-entropy; "" otherwise (no full record, steps that
    do not split into the reported epochs, or any other reading of an epoch)."""
    steps = getattr(net, "step_losses", ())
    stepped = max(getattr(net, "steps", {}).values(), default=0)
    count = len(losses)
    if not steps or len(steps) != stepped or count < 2 or len(steps) % count or None in steps:
        return ""
    per = len(steps) // count  # the kernel does not see batch sizes: each step's loss stands for its batch
    epochs = [EpochLosses(tuple(steps[e * per:(e + 1) * per]), (1,) * per) for e in range(count)]
    if images > per and all(math.isclose(v, epoch.totals[0] / images, rel_tol=REL_TOL)
                            for v, epoch in zip(losses, epochs)):
        mean = epochs[0].totals[0] / per
        return (f"its train_losses are each epoch's sum of the batches' mean losses divided by the {images:,} "
                f"training images: the kernel recorded the loss of each of its {per:,} optimizer steps an epoch, and "
                f"epoch 1's {losses[0]:.4g} is their sum over {images:,}, where that epoch's mean is {mean:.4g} "
                f"({images / per:.0f} times more). Report the mean of each epoch's own batch losses (add loss.item() "
                "at every batch of the epoch, from 0, then divide by their number)")
    fault = record_fault(read_record(losses, epochs))
    if fault is None:
        return ""
    mean = epochs[fault.epoch - 1].totals[0] / per
    digits = next((d for d in range(4, 10) if f"{fault.value:.{d}g}" != f"{mean:.{d}g}"), 10)
    what = ("each epoch's last batch's loss alone" if fault.reading in LAST_BATCH else
            "totals that go on adding up the batches of the epochs before (never set back to 0 when an epoch begins)")
    return (f"its train_losses are {what}: the kernel recorded the loss of each of its {per:,} optimizer steps an "
            f"epoch, and epoch {fault.epoch}'s {fault.value:.{digits}g} is not that epoch's mean, "
            f"{mean:.{digits}g}. Report the mean of each epoch's own batch losses (add loss.item() at every batch "
            "of the epoch, from 0, then divide by their number)")


def _never_trained(nets: dict[float, ModelValue], lrs: list[float], val: Callable, export: str) -> dict[float, str]:
    """{lr: what the kernel's record says} for the models that score about what one class scores and whose record
    shows no training (``untrained``): a copy taken before training, say."""
    found = {}
    for lr in lrs:
        why = untrained(nets[lr], f"{export}[{lr:g}]")  # the record first: it needs no data
        if why and chance_level(measured_accuracy(nets[lr], val().X, val().Y)[0], val().Y) is not None:
            found[lr] = why
    return found


def _moved(net: ModelValue) -> float:
    """How far the weights moved from their recorded start (L2 over every parameter)."""
    return math.sqrt(sum(float(((net.parameters[k].double() - start.double()) ** 2).sum())
                         for k, start in net.initial.items()))


@check_kind("sweep_labels", models=SWEEP["models"], lrs=Param(list, doc="the learning rates", of=(int, float)),
            data=Param(dict, doc="where a model that never moved is measured, to tell an untrained one from a copy",
                       check=data_problem))
def sweep_labels(ctx: CheckContext, models: str, lrs: list, data: dict) -> Outcome:
    """Each model is stored under the LR it trained at: the LRs the kernel saw its parameters stepped at hold its
    label; and the higher the LR, the farther its weights moved from the start.

    The kernel records the LRs of every optimizer step a parameter took (a copy keeps its original's), so a model
    stepped only at another rate is named directly. It also records every model's weights at its first forward pass.
    In the same number of steps, Adam (or SGD) moves the weights farther at a higher learning rate; at the sweep's
    tenfold spacing the order
    is far from close for runs labelled right (seed 004's recipe, full MNIST: 8.5, 22.7, 87.6; the tests'
    3,000 images: 4.5, 9.1, 30.0), and a swap reverses it. A model stored as a copy taken after training
    has no start of its own to measure from: the point is then given, saying what could not be checked.
    """
    nets = _sweep_models(ctx, models, lrs)
    order = sorted(lrs)
    shared = [[lr for lr in order if nets[lr] is nets[first]] for first in order]
    shared = next((group for group in shared if len(group) > 1), None)
    if shared:
        times = "twice" if len(shared) == 2 else f"{len(shared)} times"
        return Outcome(False, f"T{_models(shared)[1:]} are one model stored {times}. Train a fresh model for each "
                       "learning rate.")
    mislabelled = _stepped_elsewhere(nets, order)
    if mislabelled:
        return Outcome(False, f"The models are not stored under the rates they trained at: {'; '.join(mislabelled)} "
                       "(as the kernel recorded each optimizer step of their parameters; a copy keeps its original's "
                       "record). Train a fresh model for each learning rate, and store it under the rate its "
                       "optimizer used.")
    unknown = [lr for lr in order if not nets[lr].initial]
    moved = {lr: _moved(nets[lr]) for lr in order if lr not in unknown}
    still = [lr for lr, distance in moved.items() if distance == 0]
    if still:
        val = ctx.data.make(data, ctx.check_id)
        untrained = [lr for lr in still
                     if chance_level(measured_accuracy(nets[lr], val.X, val.Y)[0], val.Y) is not None]
        if untrained:
            named = _models(untrained)
            cause = untrained_cause(nets[untrained[0]])
            return Outcome(False, f"T{named[1:]} never changed from the weights recorded at the first forward pass, "
                           f"and {'score' if len(untrained) > 1 else 'scores'} about what predicting one class scores: "
                           f"never trained. For lr={untrained[0]:g}, {cause}.")
    # Untrained models built alike were named above: runs at different rates never end on the very same weights.
    alike = [(low, high) for low, high in itertools.combinations(order, 2)
             if same_weights(getattr(nets[low], "parameters", {}), getattr(nets[high], "parameters", {}))]
    if alike:
        low, high = alike[0]
        never = _never_trained(nets, [low, high], lambda: ctx.data.make(data, ctx.check_id), models)
        if len(never) == 2:  # the same untrained weights: copies of one model taken before any training
            return Outcome(False, f"The models under lr={low:g} and lr={high:g} hold exactly the same weights, and "
                           f"score about what predicting one class scores: none was trained. {never[low]}")
        return Outcome(False, f"The models under lr={low:g} and lr={high:g} hold exactly the same weights: one run's "
                       "weights stored under two rates (a checkpoint file that each run overwrote, loaded into every "
                       "model, say). Store each run's own model under its own learning rate.")
    if unknown or still:
        where = [f"{_models(unknown)} never ran forward in your notebook"] if unknown else []
        where += [f"{_models(still)} first ran forward only after training"] if still else []
        return Outcome(True, f"Whether each model is stored under its own learning rate could not be checked: the "
                       f"grader measures how far a model moved from the weights it had at its first forward pass, but "
                       f"{' and '.join(where)}, as a model given trained weights with load_state_dict does (a "
                       "deep copy keeps its original's record). If each is a fresh model trained at its own rate, "
                       "nothing is wrong; snapshots of one model trained on from rate to rate would be.",
                       metrics={f"moved lr={lr:g}": round(d, 6) for lr, d in moved.items()})
    listing = ", ".join(f"lr={lr:g}: {moved[lr]:.3g}" for lr in order)
    metrics = {f"moved lr={lr:g}": round(moved[lr], 6) for lr in order}
    for low, high in itertools.pairwise(order):
        if moved[high] == moved[low]:
            return Outcome(False, f"The models under lr={low:g} and lr={high:g} moved exactly as far from their "
                           f"starting weights ({moved[low]:.3g}): they are one run. Train a fresh model for each "
                           "learning rate, with its own learning rate.", metrics=metrics)
        if moved[high] < moved[low] and all(getattr(nets[lr], "step_lrs", ()) for lr in order):
            # The kernel saw each stepped at the rate it is stored under: the labels are right, the training is not.
            used = {lr: " and ".join(getattr(nets[lr], "optimizers", ())) for lr in order}
            listed = ", ".join(f"lr={lr:g}: {c}" for lr, c in used.items())
            causes = [f"they were trained with different optimizers ({listed})"] if len(set(used.values())) > 1 else []
            causes += _steps_unlike({lr: nets[lr] for lr in order})
            why = "; and ".join(causes) if causes else "what else made the runs differ cannot be read from the record"
            return Outcome(False, f"The runs do not move as their rates say: from its starting weights, the model "
                           f"under lr={high:g} moved {moved[high]:.3g}, less than the one under lr={low:g} "
                           f"({moved[low]:.3g}), though the kernel saw each model stepped at the rate it is stored "
                           f"under: {why}. Train every rate the same way, with the same optimizer and number of "
                           f"steps. Distances moved: {listing}.", metrics=metrics)
        if moved[high] < moved[low]:
            return Outcome(False, f"The runs do not move as their labels say: from its starting weights, the model "
                           f"under lr={high:g} moved {moved[high]:.3g}, less than the one under lr={low:g} "
                           f"({moved[low]:.3g}). In the same number of steps a higher learning rate moves the weights "
                           "farther, so these models (and their results) look stored under each other's learning "
                           "rates; if they are not, check that every run trains for the same number of steps. "
                           f"Distances moved: {listing}.", metrics=metrics)
    shared = all(_same_start(nets[lr], nets[order[0]]) for lr in order)
    # Fresh models built after one seed start alike; so do copies of one model trained on from rate to rate.
    alike = (" They all started from the same weights, as fresh models built after the same seed do; snapshots of one "
             "model trained on from rate to rate (wrong) would look the same here." if shared else "")
    return Outcome(True, f"Each model moved farther from its starting weights the higher its learning rate "
                   f"({listing}), as runs stored under their own learning rates do.{alike}", metrics=metrics)


def _stepped_elsewhere(nets: dict[float, ModelValue], order: list) -> list[str]:
    """Models the kernel saw stepped only at LRs other than their label (their parameters' lowest to highest LR).

    A run whose LR moved (a scheduler), or one model trained on at several rates, still holds its label's rate: that
    is for ``sweep_order`` to judge, not a label stored under another run.
    """
    found = []
    for lr in order:
        seen = getattr(nets[lr], "step_lrs", ())
        if seen and not seen[2] * (1 - 1e-6) <= lr <= seen[3] * (1 + 1e-6):
            low, high = seen[2], seen[3]
            found.append(f"the model under lr={lr:g} was stepped at lr={high:g}" + (
                f" down to {low:g}" if not math.isclose(low, high, rel_tol=1e-6) else ""))
    return found


def _models(lrs: list) -> str:
    """"the model under lr=0.01", or "the models under lr=0.001 and lr=0.01"."""
    named = [f"lr={lr:g}" for lr in lrs]
    listed = " and ".join([", ".join(named[:-1]), named[-1]]) if len(named) > 1 else named[0]
    return f"the model{'s' * (len(named) > 1)} under {listed}"


def _same_start(a: ModelValue, b: ModelValue) -> bool:
    """Whether two models' recorded starts are the same weights."""
    import torch

    return set(a.initial) == set(b.initial) and all(torch.equal(v, b.initial[k]) for k, v in a.initial.items())


def _different_starts(a: ModelValue, b: ModelValue) -> bool:
    """Whether two models' recorded starts differ, where both records are starts: every parameter recorded, and the
    weights moved since (a model given trained weights records those at its first forward pass)."""
    if any(not net.initial or set(net.initial) != set(net.parameters) or _moved(net) == 0 for net in (a, b)):
        return False
    return not _same_start(a, b)


def _epochs_recorded(table: dict, lrs: list, results: str) -> dict:
    """Each rate's number of recorded epochs, where its curve can be read."""
    counts = {}
    for lr in lrs:
        try:
            counts[lr] = len(_curve(table[lr], "val_accs", lr, results))
        except CheckFailed:
            continue
    return counts


def _steps_unlike(nets: dict[float, ModelValue]) -> list[str]:
    """The runs' parameters' optimizer step counts, where they differ; [] where they agree or one is unrecorded."""
    steps = {lr: max(net.steps.values()) for lr, net in nets.items() if getattr(net, "steps", None)}
    if len(steps) < len(nets) or len(set(steps.values())) < 2:
        return []
    counts = " and ".join(f"{n:,} (lr={lr:g})" for lr, n in steps.items())
    return [f"the models' parameters took {counts} optimizer steps, where runs trained alike take the same number: a "
            "model trained on from one rate to the next, one model's parameters reset in place and trained again (an "
            "optimizer kept for them carries its state over too), or more epochs or batches for one rate"]


def _trained_unlike(nets: dict[float, ModelValue], optimizer: str) -> list[str]:
    """How the runs' recorded training differs: their parameters' optimizer steps, or the optimizers that made them.

    A copy keeps its original's steps, so a model trained on from one rate to the next, or one model's parameters
    reset in place and trained again, shows a count that grows from rate to rate.
    """
    found = _steps_unlike(nets)
    used = sorted({c for net in nets.values() for c in getattr(net, "optimizers", ())})
    if optimizer and used and used != [optimizer]:
        found.append(f"the models were trained with {' and '.join(used)}, where the task trains each with {optimizer}")
    moved = {lr: net.step_lrs for lr, net in nets.items() if getattr(net, "step_lrs", ()) and
             not math.isclose(net.step_lrs[2], net.step_lrs[3], rel_tol=1e-9)}
    if moved:
        ranges = " and ".join(f"lr={lr:g}'s from {lrs[3]:g} down to {lrs[2]:g}" if lrs[0] >= lrs[1] else
                              f"lr={lr:g}'s from {lrs[2]:g} up to {lrs[3]:g}" for lr, lrs in moved.items())
        # Every LR a model was stepped at being one of the sweep's rates: its weights may hold another rate's run too.
        rates = all(any(math.isclose(v, rate, rel_tol=1e-9) for rate in nets)
                    for lrs in moved.values() for v in lrs[2:4])
        found.append(f"the learning rate changed during training ({ranges}, as the optimizer stepped), where each run "
                     "trains at its rate throughout: a scheduler, or an LR set by hand in the loop" + (
                         "; or, the rates being the sweep's own, a model trained on from one rate's run to the next "
                         "(its record holds every run that trained its weights)" if rates else ""))
    if optimizer and used == [optimizer]:
        changed = sorted({c for net in nets.values() for c in stepped_settings_changed(net, optimizer)})
        if changed:
            found.append(f"the {optimizer} optimizers were made with {', '.join(changed)}, where the task keeps "
                         f"{optimizer}'s defaults but for the learning rate")
    restarted = {lr: restarts_message(net) for lr, net in nets.items()}
    if any(restarted.values()):
        lr, message = next((lr, m) for lr, m in restarted.items() if m)
        others = sum(bool(m) for m in restarted.values()) - 1
        found.append(f"in the run at lr={lr:g}{f' (and {others} other)' if others else ''}, {message}")
    return found


def _batches_unlike(nets: dict[float, ModelValue], epochs: dict[float, int], n: int, batch: int) -> list[str]:
    """The runs whose models took another number of optimizer steps than their ``epochs`` (by rate: the epochs each
    run recorded) of batches of ``batch`` over ``n`` training images make (the last batch kept or dropped), counted
    since each model's start. Fewer epochs than the task's are the reported curves' to name."""
    per_epoch = (math.ceil(n / batch), n // batch)
    found = []
    for lr, net in nets.items():
        steps = max(getattr(net, "steps", {}).values(), default=0)
        if lr not in epochs or not steps or steps in {epochs[lr] * k for k in per_epoch}:
            continue
        if steps in per_epoch:
            found.append(f"the model for lr={lr:g} took {steps:,} optimizer steps, one epoch's batches of {batch} over "
                         f"the {n:,} training images, where its curves record {epochs[lr]} epochs: the later epochs "
                         "trained on no batch (an iterator made once, before the epoch loop, is used up in the first, "
                         "say)")
        else:
            found.append(f"the model for lr={lr:g} took {steps:,} optimizer steps, {steps / epochs[lr]:g} per epoch "
                         f"over the {epochs[lr]} epochs its curves record, where batches of {batch} over the {n:,} "
                         "training images make "
                         f"{per_epoch[0]:,}: another batch size, or other training data")
    return found


def _took_epochs(nets: dict[float, ModelValue], epochs: int, n: int, batch: int) -> bool:
    """Whether every model's optimizer steps (the kernel's count) are ``epochs`` epochs of batches of ``batch`` over
    ``n`` training images."""
    return all(getattr(net, "steps", None) for net in nets.values()) and \
        not _batches_unlike(nets, dict.fromkeys(nets, epochs), n, batch)


@check_kind("sweep_order", **SWEEP, better=Param((int, float)), worse=Param((int, float)),
            data=Param(dict, check=data_problem),
            epochs=Param(int, 0, "the epochs the task trains each rate for, read from the reported curves (0: any)"),
            optimizer=Param(str, "", "the optimizer class the task trains each rate with, as the kernel recorded the "
                            "classes that stepped each model ('': any)"),
            batch_size=Param(int, 0, "the batch size the task fixes, read from each model's optimizer steps over the "
                             "training split (0: any)"),
            train_data=Param(dict, {}, "the training split the batches are counted over",
                             check=lambda d: data_problem(d) if d else None))
def sweep_order(ctx: CheckContext, models: str, results: str, better: float, worse: float, data: dict,
                epochs: int = 0, optimizer: str = "", batch_size: int = 0, train_data: dict | None = None) -> Outcome:
    """The grader's measurement must show ``better`` beating ``worse`` after training (e.g. 1e-3 over 1e-4)."""
    # The verdict is the grader's measurement of the models: records it cannot read are the report checks' to name.
    nets, table = _sweep_models(ctx, models, [better, worse]), _readable_rows(ctx, results, [better, worse])
    val = ctx.data.make(data, ctx.check_id)
    acc = {lr: measured_accuracy(nets[lr], val.X, val.Y)[0] for lr in (better, worse)}
    never = _never_trained(nets, [better, worse], lambda: val, models)
    if never:
        lr = next(iter(never))
        which = "both models score" if len(never) == 2 else f"the model for lr={lr:g} scores"
        return Outcome(False, f"lr={better:g} scores {acc[better]:.2f}% and lr={worse:g} {acc[worse]:.2f}% on the "
                       f"grader's validation split, and {which} about what predicting one class scores: no comparison "
                       f"of rates can be made of models that were not trained. {never[lr]}")
    try:  # the reported curve only adds a sentence: the verdict is the grader's own measurement
        curve = [float(v) for v in _curve(table[worse], "val_accs", worse, results)]
        final = curve[-1] * (100.0 if max(curve) <= 1.0 else 1.0)
        # Of a report the model does not bear out, the curve's story would contradict the measurement beside it.
        said = (f" Your reported curve for lr={worse:g}: {accuracy_curve_summary(curve)}"
                if abs(final - acc[worse]) <= 5 else "")
    except CheckFailed:
        said = ""
    recorded = _epochs_recorded(table, [better, worse], results)
    unlike = []  # what makes the two runs differ in more than their rate
    n_train = len(ctx.data.make(train_data, ctx.check_id).Y) if epochs and batch_size and train_data else 0
    # Curves of another length whose models each took the task's epochs of steps: a record off, which the reported
    # curves' check names, not runs trained unlike.
    if epochs and any(n != epochs for n in recorded.values()) and not (
            n_train and _took_epochs({lr: nets[lr] for lr in recorded}, epochs, n_train, batch_size)):
        counts = ", ".join(f"{n} for lr={lr:g}" for lr, n in recorded.items())
        unlike.append(f"your curves record {counts}, where the task trains every rate for {epochs} epochs")
    if _different_starts(nets[better], nets[worse]):
        unlike.append("the two models started from different weights (as the kernel recorded them at their first "
                      "forward pass), where the task builds each right after torch.manual_seed(0)")
    mislabelled = _stepped_elsewhere(nets, [better, worse])  # a comparison of runs filed under other rates
    unlike += mislabelled + _trained_unlike({lr: nets[lr] for lr in (better, worse)}, optimizer)
    steps = {max((getattr(nets[lr], "steps", None) or {"": 0}).values()) for lr in (better, worse)}
    # Counted since each model's start, a model trained on from one rate to the next holds the steps of both runs:
    # _trained_unlike tells unequal counts, and steps per epoch would only add a wrong cause to them.
    if n_train and len(steps) == 1 and all(n == epochs for n in recorded.values()):
        unlike += _batches_unlike({lr: nets[lr] for lr in (better, worse)}, recorded, n_train, batch_size)
    changed = loss_changes(nets[better])  # run-wide: the same record for every model
    if changed:
        unlike.append("; ".join(changed) + " (the kernel's record of the run), where the set-up trains with plain "
                      "cross-entropy of the scores")
    if unlike:
        beats = "beats" if acc[better] > acc[worse] else "does not beat"
        return Outcome(False, f"The comparison is of runs trained alike, but {'; and '.join(unlike)} (lr={better:g} "
                       f"{beats} lr={worse:g} here: {acc[better]:.2f}% against {acc[worse]:.2f}%). Train every rate "
                       "the same way, from the same start, and only the rate changes.",
                       fraction=0.5 if acc[better] > acc[worse] and not mislabelled else 0.0)
    if acc[better] > acc[worse]:
        return Outcome(True, f"lr={better:g} beats lr={worse:g}: {acc[better]:.2f}% against {acc[worse]:.2f}% on the "
                       f"validation split.{said}")
    return Outcome(False, f"lr={better:g} scores {acc[better]:.2f}%, not more than lr={worse:g} ({acc[worse]:.2f}%) on "
                   "the grader's validation split. What makes the higher rate lose: the models stored under each "
                   "other's rates, a model or optimizer carried over from one run to the next, or training unlike the "
                   "task's set-up (another optimizer, fewer epochs). Train a fresh model with a fresh optimizer for "
                   "each rate, as the task sets it up.")
