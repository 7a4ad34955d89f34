"""The architecture check: a model is the layers its forward pass computes, read from its exported graph.

Names, classes and coding style do not count: ``nn.Sequential``, a class with other attribute names and
``x @ W + b`` are the same 784-128-10 network. The grader runs the rebuilt graph once on zeros to learn
each layer's shapes, then aligns the student's layers with the course model's (exported and rebuilt the
same way), so an added dropout or activation is found and named where it sits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Any

import reference
from grader.checks.base import CheckContext, CheckFailed, Outcome, not_a_model
from grader.checks.models import DATA, MODEL, chance_level, measured_accuracy, never_moved
from grader.checks.registry import Param, check_kind
from grader.loading.values import ModelValue

if TYPE_CHECKING:
    from grader.loading.model_graph import LoadedModel

# Ops that only move, copy, cast or check tensors: how a student flattens or casts is style, never a layer.
PLUMBING = frozenset({
    "view", "reshape", "_unsafe_view", "flatten", "unflatten", "squeeze", "unsqueeze", "movedim", "swapaxes", "expand",
    "expand_as", "view_as", "reshape_as", "contiguous", "clone", "detach", "alias", "lift_fresh_copy", "to", "_to_copy",
    "type_as", "t", "transpose", "permute", "getitem", "_assert_tensor_metadata", "_assert_scalar",
    "sym_constrain_range_for_size", "_local_scalar_dense", "sym_size", "sym_numel", "sym_stride",
})
# Spellings of one layer: torch.export records what the student's code called (nn.Linear, x @ W + b, F.conv2d...).
SAME_LAYER = {"addmm": "linear", "mm": "linear", "matmul": "linear", "conv1d": "conv", "conv2d": "conv",
              "conv3d": "conv", "convolution": "conv", "_convolution": "conv", "_softmax": "softmax",
              "_log_softmax": "log_softmax", "max_pool2d_with_indices": "max_pool2d",
              "max_pool3d_with_indices": "max_pool3d", "_native_batch_norm_legit_no_training": "batch_norm",
              "native_batch_norm": "batch_norm", "native_layer_norm": "layer_norm", "native_group_norm": "group_norm",
              "native_dropout": "dropout", "feature_dropout": "dropout", "_adaptive_avg_pool2d": "adaptive_avg_pool2d"}
WEIGHTED = ("linear", "conv")  # layers that a following ``+ bias`` belongs to


@dataclass(frozen=True)
class Layer:
    """One step of a forward pass as the architecture check compares it: what it computes, not what it is named."""

    kind: str  # "linear", "conv", "relu", "dropout", "max_pool2d", ...
    key: tuple  # what fixes it: linear (in, out); conv (in, out, kernel, stride, padding); dropout (p,); ...
    text: str  # how a message names it: "linear 784→128", "dropout (p=0.2)"
    bias: bool = False
    params: tuple[str, ...] = ()  # the student's names of the parameters it uses

    @property
    def signature(self) -> tuple:
        return self.kind, self.key, self.bias

    def describe(self) -> str:
        return self.text + (" without bias" if self.kind in WEIGHTED and not self.bias else "")


def _dims(values: tuple) -> str:
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def _per_dim(value: Any, n: int) -> tuple:
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    return values * n if len(values) == 1 else values


def _shape(node: Any) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if hasattr(meta, "shape") else ()


def _arguments(node: Any) -> tuple[dict, dict]:
    """An aten call's arguments by name (defaults filled in from its schema), and those the call set otherwise."""
    named, chosen = {}, {}
    for i, arg in enumerate(node.target._schema.arguments):
        given = i < len(node.args) or arg.name in node.kwargs
        value = (node.args[i] if i < len(node.args) else node.kwargs[arg.name]) if given else \
            (arg.default_value if arg.has_default_value() else None)
        named[arg.name] = value
        if given and not (arg.has_default_value() and value == arg.default_value):
            chosen[arg.name] = value
    return named, chosen


def _conv_padding(args: dict, kernel: tuple) -> tuple:
    """A convolution's padding per dimension; ``'same'`` and ``'valid'`` as the numbers they stand for where they
    stand for one (``padding='same'`` on a 3x3 kernel is padding 1: the same layer), else the word."""
    padding = args.get("padding", 0)
    if padding == "valid":
        return _per_dim(0, len(kernel))
    if padding == "same":
        total = [d * (k - 1) for d, k in zip(_per_dim(args.get("dilation", 1), len(kernel)), kernel)]
        return tuple(t // 2 for t in total) if all(t % 2 == 0 for t in total) else ("same",)
    return (padding,) if isinstance(padding, str) else _per_dim(padding, len(kernel))


def _layer(name: str, kind: str, node: Any, activation: Any) -> Layer:
    """What fixes one layer, from its arguments and the shapes the grader propagated through the graph."""
    args, chosen = _arguments(node)
    if kind == "linear":
        n_in, n_out = _shape(activation)[-1], _shape(node)[-1]
        bias = name == "addmm" or name == "linear" and args.get("bias") is not None
        return Layer(kind, (n_in, n_out), f"linear {n_in}→{n_out}", bias)
    if kind == "conv":
        weight = _shape(args["weight"])
        dims, groups = len(weight) - 2, int(args.get("groups") or 1)
        stride, padding = _per_dim(args.get("stride", 1), dims), _conv_padding(args, weight[2:])
        text = f"conv {weight[1] * groups}→{weight[0]} {'x'.join(map(str, weight[2:]))}" + \
            (f", stride {_dims(stride)}" if set(stride) != {1} else "") + f", padding {_dims(padding)}"
        return Layer(kind, (weight[1] * groups, weight[0], weight[2:], stride, padding), text,
                     args.get("bias") is not None)
    if kind.endswith("pool2d") and "kernel_size" in args:
        kernel = _per_dim(args["kernel_size"], 2)
        stride, padding = _per_dim(args.get("stride") or kernel, 2), _per_dim(args.get("padding", 0), 2)
        text = f"{kind} {'x'.join(map(str, kernel))}" + (f", stride {_dims(stride)}" if stride != kernel else "")
        return Layer(kind, (kernel, stride, padding), text)
    if kind == "dropout":
        p = float(args.get("p", 0.5))
        # F.dropout(x, p) without training=self.training drops units in eval mode too, so even when measured
        awake = ", active in eval mode too: F.dropout needs training=self.training" if args.get("train") else ""
        return Layer(kind, (p,), f"dropout (p={p:g}{awake})")
    if kind == "relu":  # spelled clamp(min=0) or threshold(0, 0): their bounds are relu's own
        return Layer(kind, (), kind)
    if kind.endswith("norm"):
        shape = _shape(args.get("weight")) if hasattr(args.get("weight"), "meta") else ()
        return Layer(kind, shape, f"{kind} ({_dims(shape)})" if shape else kind)
    rank = len(_shape(node)) or 1
    scalars = {k: v % rank if k == "dim" and isinstance(v, int) else v for k, v in chosen.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return Layer(kind, tuple(scalars.items()), kind + (f" ({', '.join(f'{k}={v:g}' for k, v in scalars.items())})"
                                                      if scalars else ""))


def _names(node: Any) -> tuple[str, str]:
    """The op's own name (``relu_`` is ``relu``, done in place) and the layer kind it spells."""
    name = getattr(getattr(node.target, "_overloadpacket", node.target), "__name__", str(node.target))
    name = name if name.startswith("__") else name.removesuffix("_")
    if name in ("clamp", "clamp_min", "clip", "threshold") and _is_relu(name, node):
        return name, "relu"
    return name, SAME_LAYER.get(name, name)


def _is_relu(name: str, node: Any) -> bool:
    """``x.clamp(min=0)`` and ``F.threshold(x, 0, 0)`` compute relu exactly; any other bound does not."""
    try:
        args = _arguments(node)[0]
    except (AttributeError, IndexError):
        return False
    if name == "threshold":
        return args.get("threshold") == 0 and args.get("value") == 0
    return args.get("min") == 0 and args.get("max") is None


def readable_layers(net: LoadedModel) -> list[Layer]:
    """``forward_layers``' layers, or none where the graph cannot be run on zeros (the architecture checks say why)."""
    try:
        return forward_layers(net)[0]
    except Exception:  # noqa: BLE001 - a graph the architecture checks report on their own
        return []


def forward_layers(net: LoadedModel) -> tuple[list[Layer], list[str]]:
    """The layers of ``net``'s forward pass in order, and the parameters it holds but never uses.

    The grader runs the graph once on zeros (``ShapeProp``), so each layer is known by the shapes it
    really maps, whatever the student's code calls it.
    """
    import torch
    from torch import nn
    from torch.fx.passes.shape_prop import ShapeProp

    module = net.module
    by_data = {t.data_ptr(): name for name, t in net.parameters.items()}
    with torch.no_grad():
        ShapeProp(module).propagate(net.zero_batch())  # in the model's own float type: one kept in float64
    fixed: dict[Any, tuple[str, ...]] = {}  # nodes computed from weights alone -> the parameters they come from
    made_by: dict[Any, int | None] = {}  # activations -> the index of the layer that made them (None: the input)
    layers: list[Layer] = []
    for node in module.graph.nodes:
        if node.op == "get_attr":
            value = getattr(module, node.target)
            fixed[node] = (by_data.get(value.data_ptr(), node.target),) if isinstance(value, nn.Parameter) else ()
        elif node.op == "placeholder":
            made_by[node] = None
        elif node.op == "call_function":
            activations = [a for a in node.all_input_nodes if a in made_by]
            used = tuple(p for a in node.all_input_nodes if a in fixed for p in fixed[a])
            if not activations:
                fixed[node] = used
                continue
            name, kind = _names(node)
            source = made_by[activations[0]]
            if kind in PLUMBING or "tensor_meta" not in node.meta or not hasattr(node.target, "_schema") or \
                    kind == "dropout" and not _arguments(node)[0].get("p", 0.5):  # dropout(p=0) does nothing
                made_by[node] = source
            elif kind == "add" and len(activations) == 1 and used and source is not None and \
                    layers[source].kind in WEIGHTED and not layers[source].bias:
                # x @ W + b, or conv(x, w) + b: the bias belongs to the layer before
                layers[source] = replace(layers[source], bias=True, params=layers[source].params + used)
                made_by[node] = source
            else:
                layers.append(replace(_layer(name, kind, node, activations[0]), params=used))
                made_by[node] = len(layers) - 1
    seen = {p for layer in layers for p in layer.params}
    return layers, [name for name in net.parameters if name not in seen]


def _between(layers: list[Layer] | tuple[Layer, ...], start: int, end: int) -> str:
    """Where layers[start:end] sit, named by their neighbours."""
    before = layers[start - 1].describe() if start > 0 else ""
    after = layers[end].describe() if end < len(layers) else ""
    if before and after:
        return f"between {before} and {after}"
    return f"after {before}, at the end" if before else f"before {after}, at the start" if after else ""


def _listing(layers: list[Layer] | tuple[Layer, ...]) -> str:
    return ", ".join(layer.describe() for layer in layers)


def layer_differences(got: list[Layer], want: tuple[Layer, ...]) -> list[str]:
    """How a forward pass differs from the course's, layer by layer, aligned by kind; empty when it is the same."""
    matcher = SequenceMatcher(None, [layer.kind for layer in want], [layer.kind for layer in got], autojunk=False)
    problems = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            problems += [f"it has {g.describe()} where the course's has {w.describe()}"
                         for w, g in zip(want[i1:i2], got[j1:j2]) if w.signature != g.signature]
        elif tag == "insert":
            problems.append(f"it adds {_listing(got[j1:j2])} {_between(got, j1, j2)}")
        elif tag == "delete":
            problems.append(f"it lacks the course's {_listing(want[i1:i2])} {_between(want, i1, i2)}")
        else:
            problems.append(f"it has {_listing(got[j1:j2])} where the course's has {_listing(want[i1:i2])}")
    return problems


@functools.lru_cache(maxsize=8)
def reference_layers(name: str, input_shape: tuple[int, ...]) -> tuple[tuple[Layer, ...], int]:
    """A course model's layers and parameter count, read as a student's are: exported, rebuilt, walked."""
    import pathlib
    import tempfile

    from grader.kernel.kernel_export import export_model
    from grader.loading.model_graph import load_model

    with tempfile.TemporaryDirectory() as folder:
        export_model(reference.model_class(name)(), list(input_shape), folder)
        net = load_model(pathlib.Path(folder))
    return tuple(forward_layers(net)[0]), net.n_params


@check_kind("architecture", model=MODEL,
            reference=Param(str, doc="a course model: a key of reference.MODELS", choices=lambda: reference.MODELS))
def architecture(ctx: CheckContext, model: str, reference: str) -> Outcome:
    """The exported model computes the course model's layers, in order, read from its graph (not from its names)."""
    value = ctx.value(model)
    nets = value if isinstance(value, dict) else {"": value}
    want, n_params = (), 0
    for key, net in nets.items():
        label = f"`{model}[{key!r}]`" if key != "" else f"`{model}`"
        if not isinstance(net, ModelValue):
            raise CheckFailed(f"{label} could not be checked: {not_a_model(net)}.")
        want, n_params = reference_layers(reference, tuple(net.input_shape))
        try:
            got, unused = forward_layers(net)
        except RuntimeError as e:
            raise CheckFailed(f"{label} could not be run on a batch of shape {[2, *net.input_shape]}: "
                              f"{str(e).splitlines()[0]}") from None
        got, log_probabilities = _without_final_log_softmax(got, want)
        problems = layer_differences(got, want)
        if unused:
            problems.append("it holds parameters its forward pass never uses: " +
                            ", ".join(f"{p} {list(net.parameters[p].shape)}" for p in unused))
        if problems:
            return Outcome(False, f"{label} is not the course's {reference}: {'; '.join(problems)}. The course's "
                           f"network is {_listing(want)}. Keep the architecture unchanged; "
                           "only the training may differ.", details={"layers": [g.describe() for g in got]})
    return Outcome(True, f"{'Every model in ' if len(nets) > 1 else ''}`{model}` has the course's {reference} "
                   f"architecture: {_listing(want)} ({n_params:,} parameters)." + (
                       " It ends with log_softmax over the classes, which the course's network leaves to the loss: "
                       "log-probabilities are its scores less one number per image, so the predictions are the same, "
                       "and CrossEntropyLoss or NLLLoss on them trains it exactly as the course's."
                       if log_probabilities else ""))


def _without_final_log_softmax(got: list[Layer], want: tuple[Layer, ...]) -> tuple[list[Layer], bool]:
    """The layers without a last log_softmax over the class scores, where the course's network has none, and whether
    there was one: log_softmax(x) is x less logsumexp(x), and cross-entropy applies it again to no effect."""
    last = got[-1] if got else None
    if last is None or last.kind != "log_softmax" or last.key != (("dim", 1),) or (want and want[-1].kind == last.kind):
        return got, False
    return got[:-1], True


# Ops whose result has no gradient: a step, a comparison, an index. A decision reached only through them is a rule
# that training cannot move.
STEP_OPS = frozenset({"round", "floor", "ceil", "trunc", "sign", "eq", "ne", "lt", "le", "gt", "ge", "argmax",
                      "argmin", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "logical_and",
                      "logical_or", "logical_xor", "logical_not", "floor_divide"})


def _step(node: Any) -> str:
    """The op, in words, if its result has no gradient (STEP_OPS, or a cast to integers or booleans); "" otherwise."""
    name = _names(node)[0]
    if name in STEP_OPS:
        return f"`{name}`"
    # torch.dtype, by name: this module is read by the fast commands, which never import torch
    cast = [a for a in (*node.args[1:], *node.kwargs.values()) if type(a).__name__ == "dtype"]
    return f"a cast to {cast[0]}" if name in ("to", "_to_copy", "type") and cast and not cast[0].is_floating_point \
        else ""


def _rule_without_parameters(net: Any, dataset: Any) -> tuple[float, float] | None:
    """(accuracy with every parameter 0, accuracy as trained) where the first is clearly above what predicting one
    class scores: scores a network gets from its parameters are then all alike, so its code's rule classifies."""
    import torch

    try:
        zeroed = net.with_parameters({name: torch.zeros_like(t) for name, t in net.parameters.items()})
        without = measured_accuracy(zeroed, dataset.X, dataset.Y)[0]
    except Exception:  # noqa: BLE001 - a forward pass that fails without its weights (a division by one) decides nothing
        return None
    if chance_level(without, dataset.Y) is not None:
        return None
    return without, measured_accuracy(net, dataset.X, dataset.Y)[0]


@check_kind("learned_network", model=MODEL, data=DATA)
def learned_network(ctx: CheckContext, model: str, data: dict) -> Outcome:
    """The model is a network that training can change: its scores on ``data`` move with parameters it reads.

    A fixed rule, such as rounding a point to its cell, has nothing to learn, whatever its accuracy.
    """
    net = ctx.value(model, "model")
    dataset = ctx.data.make(data, ctx.check_id)
    calls = (node for node in net.module.graph.nodes if node.op == "call_function")
    steps = list(dict.fromkeys(name for name in map(_step, calls) if name))
    listed = ", ".join(steps[:4])
    through = f" (through {listed}, which {'has' if len(steps) == 1 else 'have'} no gradient)" if steps else ""
    learn = (" The exercise asks for a network that learns the classes from the points: layers with weights "
             "(nn.Linear, or weight tensors of your own) trained by an optimizer.")
    n = sum(t.numel() for t in net.parameters.values())
    if not n:
        stored = sum(t.numel() for t in getattr(net, "constants", {}).values() if t.is_floating_point() and t.numel() > 1)
        plain = (f" It holds {stored} numbers in tensors that are not its parameters (plain tensors, even with "
                 "requires_grad=True, or nn.Parameters or layers kept in a plain Python list, dict or tuple, which "
                 "a module does not register): if your loop trained them, it trained numbers the model does not own, "
                 "which model.parameters(), torchinfo and the grader do not count. Register each: an nn.Parameter as "
                 "an attribute of the module, or several in an nn.ParameterList or nn.ParameterDict; layers in an "
                 "nn.ModuleList or nn.Sequential." if stored else "")
        return Outcome(False, f"`{model}` has no parameters, so nothing in it can be trained: what it computes is "
                              f"fixed by its code and whatever it stores{through}.{plain}{learn}",
                       metrics={"parameters": 0})
    gradients = net.parameter_gradients(dataset.X)
    if gradients == {}:
        names = ", ".join(f"`{name}`" for name in list(net.parameters)[:3]) + (", …" if len(net.parameters) > 3 else "")
        return Outcome(False, f"`{model}` has {n} parameters ({names}), but its forward pass never reads them, so it "
                              f"computes a fixed rule{through}.{learn}",
                       metrics={"parameters": n, "parameters_read": 0})
    metrics = {"parameters": n, "parameters_read": len(gradients or {})}
    # Scores that no parameter moves, with no step on the way, are saturated or dead units: the accuracy checks say
    # what that costs; only a step op makes them a rule.
    if gradients and steps and not any(gradients.values()):
        return Outcome(False, f"`{model}`'s scores do not change with any of its {n} parameters at any of the "
                              f"{len(dataset.Y)} points: they pass through {listed}, which "
                              f"{'has' if len(steps) == 1 else 'have'} no gradient, so no training could change what "
                              f"it predicts.{learn}", metrics=metrics)
    # A point that reaches the parameters only through a step (rounded to its cell, an index into a table) moves no
    # score: the model learns one answer per cell, read off the point by its code, not a function of the point.
    if steps and net.input_sensitive(dataset.X) == 0:
        return Outcome(False, f"`{model}`'s scores do not move with the point at any of the {len(dataset.Y)} points: "
                              f"the point reaches its {n} parameters only through {listed}, which "
                              f"{'has' if len(steps) == 1 else 'have'} no gradient, so what it learns is one answer "
                              f"per value of that step (a table of the squares, say), read off by its code.{learn}",
                       metrics=metrics)
    ruled = _rule_without_parameters(net, dataset)
    if ruled is not None:
        rule = f" through {listed}, which {'has' if len(steps) == 1 else 'have'} no gradient" if steps else ""
        return Outcome(False, f"`{model}` still scores {ruled[0]:.2f}% on the {len(dataset.Y)} points with every "
                              f"one of its {n} parameters set to 0 ({ruled[1]:.2f}% as trained): what classifies the "
                              f"points is a rule its code computes from them{rule}, not what its parameters learned; "
                              f"they only add to it.{learn}",
                       metrics={**metrics, "accuracy_without_parameters": ruled[0]})
    read = f"{len(gradients)} parameter tensor{'s' if len(gradients) != 1 else ''}" if gradients else "its parameters"
    unread = net.unread_parameters() if gradients else []
    if unread:  # the tensors are the scores', the count the model's: the rest are named, as the budget counts them
        used = sum(net.parameters[name].numel() for name in gradients)
        names = ", ".join(f"`{name}`" for name in unread[:3]) + (", …" if len(unread) > 3 else "")
        one = len(unread) == 1
        said = (f"{read} ({used} of its {n} numbers: {names} {'is' if one else 'are'} never read by its forward pass, "
                f"yet count{'s' if one else ''} among its parameters)")
    else:
        said = f"{read} ({n} numbers)"
    if getattr(net, "initial", None) and never_moved(net) and not getattr(net, "steps", None) and \
            not getattr(net, "idle_steps", 0) and not getattr(net, "loaded", False):
        calls = (getattr(net, "loss_calls", None) or {}).get("cross_entropy") or 0
        if isinstance(calls, int) and calls > 0:  # the run trained something, so another object than this one
            return Outcome(False, f"`{model}` computes its scores from {said}, but nothing in the run trained them: "
                                  "its weights are those it had at its first forward pass and the kernel recorded no "
                                  f"optimizer step on them, though the run called the cross-entropy loss {calls} "
                                  "times: if a loop trained, it trained another object (a model made again after "
                                  "training, `model = ...` once more, say, or a copy taken before it). Export the "
                                  "model the loop trained; weights written by hand look the same to the record."
                                  f"{learn}", metrics={**metrics, "trained": 0})
        # Weights worked out by hand: a network that training could change, which nothing did.
        return Outcome(False, f"`{model}` computes its scores from {said}, but nothing in the run "
                              "trained them: its weights are those it had at its first forward pass, the kernel "
                              "recorded no optimizer step on them, and no parameter the run trained holds the same "
                              "weights (weights written by hand, say). Weights worked out from trained ones (an "
                              "average kept by hand with mul_() and add_(), say) look the same to the record: keep an "
                              "average with torch.optim.swa_utils.AveragedModel, and copy trained weights with "
                              f"load_state_dict or copy.deepcopy.{learn}",
                       metrics={**metrics, "trained": 0})
    return Outcome(True, f"`{model}` computes its scores from {said}, so training can change what it "
                         "predicts.", metrics=metrics)
