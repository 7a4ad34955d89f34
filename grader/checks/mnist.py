"""Checks for the MNIST track: what the task fixes (optimizer, batch size, preprocessing) and the LR sweep.

Accuracy thresholds use the generic ``accuracy`` kind on ``{kind = "mnist", split = ...}``
data: the grader measures on its own copy of the split the kernel was shown read-only.
"""

from __future__ import annotations

import ast
import re

from grader.checks.base import CheckContext, CheckFailed, Outcome, not_a_model
from grader.checks.data import data_problem
from grader.checks.models import measured_accuracy
from grader.checks.registry import Param, check_kind
from grader.diagnosis.convergence import diagnose, diagnose_accuracy
from grader.loading.values import LoaderExport, ModelValue, OptimizerExport

# Settings that choose an implementation, not the optimisation: never a change of the recipe.
IMPLEMENTATION_FLAGS = frozenset({"foreach", "fused", "capturable", "differentiable"})


def changed_settings(opt: OptimizerExport) -> list[str]:
    """Hyperparameters other than the learning rate that differ from torch's defaults for the class."""
    import torch

    cls = getattr(torch.optim, opt.cls, None)
    if not isinstance(cls, type) or not opt.param_groups:
        return []
    defaults = {k: v for k, v in cls([torch.nn.Parameter(torch.zeros(1))]).param_groups[0].items() if k != "params"}
    group = opt.param_groups[0]
    changed = []
    for key, default in defaults.items():
        if key in IMPLEMENTATION_FLAGS or key in ("lr", "initial_lr") or key not in group:
            continue
        value = group[key]
        if value != (list(default) if isinstance(default, tuple) else default):  # JSON turned tuples into lists
            changed.append(f"{key}={value!r} (torch's default is {default!r})")
    return changed


@check_kind("optimizer_class", export=Param(str, "optimizer", export=True), expected=Param(str, doc="e.g. SGD or Adam"),
            model=Param(str, "", "the model export the optimizer must train", export=True))
def optimizer_class(ctx: CheckContext, export: str, expected: str, model: str) -> Outcome:
    """The optimiser is fixed by the task; only its learning rate (and a scheduler) may change."""
    opt = ctx.value(export, "optimizer")
    lr = opt.param_groups[0].get("initial_lr", opt.param_groups[0].get("lr")) if opt.param_groups else None
    if opt.cls != expected or not opt.module.startswith("torch.optim"):
        return Outcome(False, f"`{export}` is {opt.module}.{opt.cls}, but the task keeps torch's {expected}: change "
                       "only its learning rate and the scheduler.")
    problems = []
    changed = changed_settings(opt)
    if changed:
        problems.append(f"it also sets {', '.join(changed)}, and the task changes only the learning rate: "
                        f"create it as optim.{expected}(model.parameters(), lr=...)")
    net = ctx.exports.values.get(model) if model else None
    optimised = sum(int(g.get("n_params", 0)) for g in opt.param_groups)
    if isinstance(net, ModelValue) and optimised != net.n_params:
        problems.append(f"it updates {optimised} parameters, but `{model}` has {net.n_params}: pass it "
                        f"{model}.parameters() of the model you train and export")
    metrics = {"initial_lr": lr} if isinstance(lr, (int, float)) else {}
    if problems:
        return Outcome(False, f"`{export}` is torch's {expected}, but {'; and '.join(problems)}.", metrics=metrics)
    return Outcome(True, f"`{export}` is torch's {expected} (starting learning rate {lr}).", metrics=metrics)


@check_kind("batch_size", export=Param(str, "train_loader", export=True), expected=Param(int, 64),
            shuffle=Param(bool, True, "the training loader must shuffle"))
def batch_size(ctx: CheckContext, export: str, expected: int, shuffle: bool) -> Outcome:
    """The training loader keeps the task's batch size (and shuffling)."""
    loader = ctx.value(export, "dataloader")
    problems = []
    if loader.batch_size != expected:
        problems.append(f"its batch size is {loader.batch_size}, but the task fixes it at {expected}")
    if shuffle and not loader.shuffle:
        problems.append("it does not shuffle (pass shuffle=True)")
    if problems:
        return Outcome(False, f"`{export}`: {'; '.join(problems)}.")
    return Outcome(True, f"`{export}` uses batches of {expected}" + (", shuffled." if shuffle else "."))


TRANSFORM_CALL = re.compile(r"\btransforms\.(\w+)\s*\(")


def transforms_in_code(cells: tuple[tuple[int, str], ...]) -> tuple[set[str], list[str]]:
    """Transform classes the code builds, and cells where the pipeline is built in a way reading cannot follow."""
    used, unclear = set(), []
    for cell, source in cells:
        used.update(TRANSFORM_CALL.findall(source))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            # getattr(transforms, name) or a transform imported under another name hides the pipeline.
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" and \
                    node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == "transforms":
                unclear.append(f"cell {cell} picks a transform by name")
            if isinstance(node, ast.ImportFrom) and node.module == "torchvision.transforms":
                used.update(alias.name for alias in node.names)
    return used, unclear


@check_kind("preprocessing", export=Param(str, "train_loader", export=True),
            allowed=Param(list, ["ToTensor", "Compose"], "the transforms the task allows", of=str))
def preprocessing(ctx: CheckContext, export: str, allowed: list) -> Outcome:
    """The preprocessing is fixed by the task: read from the code, and from the loader's transform as exported."""
    used, unclear = transforms_in_code(ctx.code_cells)
    loader = ctx.exports.values.get(export)
    shown = loader.transform if isinstance(loader, LoaderExport) else ""
    in_loader = set(re.findall(r"\b([A-Z]\w+)\(", shown)) - {"Compose"}
    extra = sorted((used | in_loader) - set(allowed))
    if extra:
        return Outcome(False, f"The preprocessing changed: the notebook uses {', '.join(extra)}. The task keeps it as "
                       f"given ({' + '.join(a for a in allowed if a != 'Compose')} only); change only the learning "
                       "rate strategy.", details={"transforms": sorted(used | in_loader)})
    if unclear or not (used or in_loader):
        why = "; ".join(unclear) or "no transform could be found in the code or the exported loader"
        return Outcome(False, f"Whether the preprocessing is unchanged cannot be decided from the code ({why}). Build "
                       "the transform as given (transforms.ToTensor()), so it can be read.", fraction=0.5,
                       metrics={"undecided": 1})
    return Outcome(True, f"The preprocessing is unchanged ({', '.join(sorted((used | in_loader) - {'Compose'}))}), "
                   "read from the code" + (" and the exported loader." if shown else "."))


def _sweep(ctx: CheckContext, models: str, results: str, lrs: list) -> tuple[dict, dict]:
    nets, table = ctx.value(models, "model_dict"), ctx.value(results, "dict")

    def pick(mapping: dict, lr: float, what: str):
        for key, value in mapping.items():
            try:
                if abs(float(key) - lr) <= 1e-12 * max(1.0, lr):
                    return value
            except (TypeError, ValueError):
                continue
        raise CheckFailed(f"`{what}` has no entry for lr={lr:g}: key it by the learning rate, e.g. {{{lr!r}: ...}}.")

    picked_models = {lr: pick(nets, lr, models) for lr in lrs}
    picked_results = {lr: pick(table, lr, results) for lr in lrs}
    for lr, net in picked_models.items():
        if not isinstance(net, ModelValue):
            raise CheckFailed(f"The model for lr={lr:g} could not be checked: {not_a_model(net)}.")
    return picked_models, picked_results


def _curve(row, key: str, lr: float, results: str) -> list[float]:
    values = row.get(key) if isinstance(row, dict) else None
    if not isinstance(values, list) or not values or not all(isinstance(v, (int, float)) for v in values):
        raise CheckFailed(f"`{results}[{lr:g}]['{key}']` must be a list of numbers, one per epoch.")
    return [float(v) for v in values]


SWEEP = dict(models=Param(str, "models", "the export holding {lr: model}", export=True),
             results=Param(str, "results", "the export holding {lr: {train_losses, val_accs}}", export=True))


@check_kind("sweep_results", figure="lr_sweep", **SWEEP, lrs=Param(list, doc="the learning rates", of=(int, float)),
            data=Param(dict, doc="the validation split", check=data_problem), tolerance=Param((int, float), 0.5))
def sweep_results(ctx: CheckContext, models: str, results: str, lrs: list, data: dict, tolerance: float) -> Outcome:
    """Each reported final val accuracy against the grader's measurement of that LR's model, with a diagnosis."""
    nets, table = _sweep(ctx, models, results, lrs)
    val = ctx.data.make(data, ctx.check_id)
    lines, good, curves = [], 0, {}
    for lr in lrs:
        losses, accs = _curve(table[lr], "train_losses", lr, results), _curve(table[lr], "val_accs", lr, results)
        scale = 100.0 if max(accs) <= 1.0 else 1.0  # the seed reports fractions; percent is accepted too
        reported = accs[-1] * scale
        measured = measured_accuracy(nets[lr], val.X, val.Y)[0]
        trend = diagnose(losses).trend.value
        curves[f"lr={lr:g}"] = {"train_loss": losses, "val_acc": [a * scale for a in accs]}
        if abs(reported - measured) <= tolerance:
            good += 1
            lines.append(f"lr={lr:g}: val {measured:.2f}% as reported; training loss {trend}")
        else:
            lines.append(f"lr={lr:g}: reported val {reported:.2f}% but the exported model scores {measured:.2f}%")
    message = "; ".join(lines) + "."
    if good < len(lrs):
        message += (" Report the accuracy of the model you export (after its last epoch), measured on the test split "
                    "as the seed does.")
    return Outcome(good == len(lrs), message, fraction=good / len(lrs), details={"sweep": curves})


@check_kind("sweep_order", **SWEEP, better=Param((int, float)), worse=Param((int, float)),
            data=Param(dict, check=data_problem))
def sweep_order(ctx: CheckContext, models: str, results: str, better: float, worse: float, data: dict) -> Outcome:
    """The grader's measurement must show ``better`` beating ``worse`` after training (e.g. 1e-3 over 1e-4)."""
    nets, table = _sweep(ctx, models, results, [better, worse])
    val = ctx.data.make(data, ctx.check_id)
    acc = {lr: measured_accuracy(nets[lr], val.X, val.Y)[0] for lr in (better, worse)}
    diagnosis = diagnose_accuracy(_curve(table[worse], "val_accs", worse, results))
    if acc[better] > acc[worse]:
        return Outcome(True, f"lr={better:g} beats lr={worse:g}: {acc[better]:.2f}% against {acc[worse]:.2f}% on the "
                       f"validation split. For lr={worse:g}: {diagnosis.summary}")
    return Outcome(False, f"lr={better:g} scores {acc[better]:.2f}%, not more than lr={worse:g} ({acc[worse]:.2f}%): "
                   "check that each model is trained with its own learning rate, from a fresh model and optimizer.")
