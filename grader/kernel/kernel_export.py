"""Runs INSIDE the student's kernel, as the grader's last cell: write the declared values to disk.

Everything written here is untrusted data: the student's code ran first in the same
process and may have patched anything. The grader therefore loads the result with
safe loaders only (json, ``torch.load(weights_only=True)``) and recomputes every
number it scores. This file imports only the standard library and torch, because its
source is executed in the kernel rather than imported; and torch only when the
kernel has already imported it (a notebook without torch has no torch objects to export).

Layout of the export folder::

    manifest.json          {"format", "values": {name: encoded}, "missing": [...], "modules": [...]}
    models/<k>/graph.json  the model's forward pass as aten ops (captured by torch.export, forward hooks included)
    models/<k>/weights.pt  a dict of tensors: parameters, buffers and constants by name
    models/<k>/initial.pt  the parameters as they were at the model's first forward pass (kernel_probe)

One model object stored under several names is exported once, so the grader sees it is one object.
"""

import inspect
import json
import math
import os
import sys

FORMAT = 1
MAX_TENSOR_ELEMENTS = 100_000  # tensors larger than this inside plain values are not exported


def _torch():
    """torch if this process has imported it, else None: no import cost for notebooks without torch."""
    return sys.modules.get("torch")


def _jsonable(value, depth: int = 0):
    """Plain JSON for state dicts and hyperparameters; anything else becomes a described placeholder."""
    torch = _torch()
    if depth > 20:
        return {"$repr": "nested too deeply"}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if torch is not None and isinstance(value, torch.Tensor):
        if value.numel() == 1:
            return _jsonable(value.item(), depth)
        if value.numel() <= MAX_TENSOR_ELEMENTS:
            return {"$tensor": {"shape": list(value.shape), "dtype": str(value.dtype).replace("torch.", ""),
                                "data": _jsonable(value.detach().cpu().flatten().tolist(), depth + 1)}}
        return {"$error": f"a tensor of shape {tuple(value.shape)} is too large to export as a value"}
    if type(value).__module__ == "numpy":
        return _jsonable(value.tolist(), depth)
    if isinstance(value, dict):
        return {"$dict": [[_key(k), _jsonable(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    return {"$repr": repr(value)[:200], "$type": type(value).__name__}


def _key(key):
    if isinstance(key, (bool, int, str)) or key is None:
        return key
    if isinstance(key, float):
        return key if math.isfinite(key) else repr(key)
    if type(key).__module__ in ("numpy", "torch"):
        return _key(key.item())
    return repr(key)


# --- models -------------------------------------------------------------------------


def _op_name(target) -> str:
    import torch

    if isinstance(target, torch._ops.OpOverload):
        return str(target)  # e.g. "aten.linear.default"
    module = getattr(target, "__module__", "")
    if module in ("_operator", "operator"):
        return f"operator.{target.__name__}"
    return f"unsupported:{module}.{getattr(target, '__qualname__', repr(target))}"


def _arg(value):
    import torch

    if isinstance(value, torch.fx.Node):
        return {"ref": value.name}
    if isinstance(value, (list, tuple)):
        return [_arg(v) for v in value]
    if isinstance(value, dict):
        return {"$kwargs": {k: _arg(v) for k, v in value.items()}}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).replace("torch.", "")}
    if isinstance(value, torch.device):
        return {"device": "cpu"}  # the grader runs everything on its own device
    if isinstance(value, torch.layout):
        return {"layout": str(value).replace("torch.", "")}
    if isinstance(value, torch.memory_format):
        return {"memory_format": str(value).replace("torch.", "")}
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"the model's graph has an argument of type {type(value).__name__} the grader cannot read")


def _capture(model, example):
    """Export with a free batch size where the model allows it; AUTO falls back to the example's."""
    import torch
    from torch.fx.experimental.symbolic_shapes import is_concrete_int

    program = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},), strict=False)
    user_inputs = [n for n in program.graph.nodes if n.op == "placeholder"
                   and n.name in program.graph_signature.user_inputs]
    val = user_inputs[0].meta.get("val") if user_inputs else None
    # A batch dim that AUTO had to specialise shows up as a SymInt with a constant value.
    dynamic = val is not None and not is_concrete_int(val.shape[0])
    return program, dynamic


def _hooks(model, probe: dict | None = None) -> list[str]:
    """The student's forward hooks, which torch.export runs (and so captures) with each module's call.

    The grader's own global pre-hook (kernel_probe) is left out: it records nothing once the export starts.
    """
    import torch

    ours = probe.get("_first_forward") if probe else None
    globals_ = torch.nn.modules.module
    tables = [("a global forward hook", getattr(globals_, "_global_forward_hooks", {})),
              ("a global forward pre-hook", getattr(globals_, "_global_forward_pre_hooks", {}))]
    for name, module in model.named_modules():
        where = f"`{name}`" if name else "the model"
        tables += [(f"a forward hook on {where}", module._forward_hooks),
                   (f"a forward pre-hook on {where}", module._forward_pre_hooks)]
    return [f"{label} ({getattr(hook, '__name__', type(hook).__name__)})"
            for label, table in tables for hook in list(table.values())
            if hook is not ours and getattr(hook, "__globals__", {}).get("__name__") != "grader_probe"][:20]


def export_model(model, input_shape, folder: str, probe: dict | None = None) -> dict:
    """Capture the forward pass in eval mode and write graph.json + weights.pt (+ initial.pt) into ``folder``."""
    import torch

    os.makedirs(folder, exist_ok=True)
    was_training = model.training
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    example = torch.zeros(2, *input_shape, device=device)
    model.eval()
    try:
        with torch.no_grad():
            program, dynamic = _capture(model, example)
    finally:
        model.train(was_training)
    signature = program.graph_signature
    specs = {spec.arg.name: spec for spec in signature.input_specs if hasattr(spec.arg, "name")}
    state = {**program.state_dict, **program.constants}
    nodes, tensors = [], {}
    for node in program.graph.nodes:
        if node.op == "placeholder":
            spec = specs[node.name]
            entry = {"op": "input", "name": node.name, "kind": spec.kind.name}
            if spec.target is not None:
                entry["target"] = spec.target
                tensors[spec.target] = state[spec.target].detach().cpu().contiguous()
            nodes.append(entry)
        elif node.op == "call_function":
            nodes.append({"op": "call", "name": node.name, "target": _op_name(node.target),
                          "args": _arg(list(node.args)), "kwargs": _arg(dict(node.kwargs))["$kwargs"]})
        elif node.op == "output":
            kinds = [spec.kind.name for spec in signature.output_specs]
            nodes.append({"op": "output", "args": _arg(list(node.args[0])), "kinds": kinds})
        else:
            raise TypeError(f"the model's graph uses a {node.op} node the grader cannot read")
    trainable = {name: bool(p.requires_grad) for name, p in model.named_parameters()}
    graph = {
        "format": FORMAT,
        "class": type(model).__name__,
        "input_shape": list(input_shape),
        "batch": None if dynamic else 2,
        "nodes": nodes,
        "trainable": trainable,
        "hooks": _hooks(model, probe),
    }
    torch.save(tensors, os.path.join(folder, "weights.pt"))
    initial = probe["initial_state"](model) if probe else {}
    if initial:
        torch.save({k: v.contiguous() for k, v in initial.items()}, os.path.join(folder, "initial.pt"))
    with open(os.path.join(folder, "graph.json"), "w") as f:
        json.dump(graph, f)
    return {"$model": os.path.basename(folder)}


# --- other objects --------------------------------------------------------------------


def _optimizer(opt, probe: dict | None = None) -> dict:
    groups = [{k: _jsonable(v) for k, v in g.items() if k != "params"} | {"n_params": sum(p.numel() for p in g["params"])}
              for g in opt.param_groups]
    # Adam-like optimizers count steps per parameter; the probe counts step() calls of any optimizer.
    state_steps = sorted({_jsonable(s["step"]) for s in opt.state.values() if isinstance(s, dict) and "step" in s},
                         key=str)
    return {"class": type(opt).__name__, "module": type(opt).__module__, "param_groups": groups,
            "defaults": {k: _jsonable(v) for k, v in opt.defaults.items()},
            "steps": probe["STEPS"].get(opt) if probe else None, "state_steps": state_steps[:10]}


def _scheduler(scheduler, probe: dict | None = None) -> dict:
    optimizer = getattr(scheduler, "optimizer", None)
    return {"class": type(scheduler).__name__, "module": type(scheduler).__module__,
            "state": {k: _jsonable(v) for k, v in scheduler.state_dict().items()},
            "optimizer": _optimizer(optimizer, probe) if optimizer is not None else None}


def _loader(loader) -> dict:
    dataset = loader.dataset
    sampler = getattr(loader, "sampler", None)
    return {"batch_size": loader.batch_size, "drop_last": loader.drop_last,
            "sampler": type(sampler).__name__ if sampler is not None else None,
            "shuffle": type(sampler).__name__ == "RandomSampler",
            "dataset_class": type(dataset).__name__, "dataset_len": len(dataset) if hasattr(dataset, "__len__") else None,
            "transform": repr(getattr(dataset, "transform", None))[:500]}


def _function(fn) -> dict:
    try:
        source = inspect.getsource(fn)[:20000]
    except (OSError, TypeError):
        source = ""
    return {"name": getattr(fn, "__qualname__", ""), "module": getattr(fn, "__module__", ""), "source": source}


class _Writer:
    """One export: where it goes, the probe's records, and the models already written (by object identity)."""

    def __init__(self, root: str, probe: dict | None):
        self.root, self.probe, self.models = root, probe, {}

    def model(self, model, input_shape) -> dict:
        if id(model) not in self.models:
            folder = os.path.join(self.root, "models", str(len(self.models) + 1))
            try:
                self.models[id(model)] = (model, export_model(model, input_shape, folder, self.probe))
            except Exception as e:  # noqa: BLE001 - reported to the student as the export problem
                error = f"the model could not be captured for grading: {type(e).__name__}: {str(e)[:500]}"
                advice = _hook_advice(model, self.probe)
                self.models[id(model)] = (model, {"$error": error.rstrip(". \n") + advice if advice else error})
        return self.models[id(model)][1]


def _hook_advice(model, probe: dict | None) -> str:
    """Why a model with forward hooks may fail to be captured, naming them; "" for a model without."""
    try:
        hooks = _hooks(model, probe)
    except Exception:  # noqa: BLE001 - a model odd enough to break named_modules gets no advice
        return ""
    if not hooks:
        return ""
    return (f". The grader captures your model with its forward hooks, which run too: {'; '.join(hooks[:3])}. "
            "A hook that turns tensors into Python numbers or arrays (float(), .tolist(), .numpy()) cannot be "
            "captured: if it only records values, remove it (handle.remove()) before the notebook ends")


def encode(value, request: dict, writer: _Writer):
    """Encode one value; models and other torch objects are recognised by type, plain data by value."""
    torch = _torch()
    if torch is None:
        return _encode_plain(value, request, writer)
    if isinstance(value, torch.nn.Module):
        return writer.model(value, request.get("input_shape") or [])
    schedulers = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if isinstance(value, schedulers):
        return {"$scheduler": _scheduler(value, writer.probe)}
    if isinstance(value, torch.optim.Optimizer):
        return {"$optimizer": _optimizer(value, writer.probe)}
    if isinstance(value, torch.utils.data.DataLoader):
        return {"$loader": _loader(value)}
    return _encode_plain(value, request, writer)


def _encode_plain(value, request: dict, writer: _Writer):
    if isinstance(value, dict):
        return {"$dict": [[_key(k), encode(v, request, writer)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [encode(v, request, writer) for v in value]
    if inspect.isfunction(value) or inspect.ismethod(value):
        return {"$function": _function(value)}
    return _jsonable(value)


def export_values(namespace: dict, requests: list, root: str) -> None:
    """Write every requested name found in ``namespace``; the manifest is written last, atomically."""
    os.makedirs(root, exist_ok=True)
    manifest = {"format": FORMAT, "values": {}, "missing": [], "errors": {},
                "modules": sorted(m for m in sys.modules if m == "reference" or m.startswith("reference."))}
    probe = namespace.get("_grader_probe")
    probe = probe if isinstance(probe, dict) and "RECORDING" in probe else None
    if probe:
        probe["RECORDING"][0] = False  # what the grader's own probes and tracing run is not the student's run
    writer = _Writer(root, probe)
    for request in requests:
        name = request["name"]
        if request.get("code"):
            try:  # the grader's own probe, e.g. calling the student's function on public data
                exec(compile(request["code"], f"<grader probe {name}>", "exec"), namespace)
            except Exception as e:  # noqa: BLE001 - the student's function failed; report, do not stop
                manifest["errors"][name] = f"{type(e).__name__}: {str(e)[:500]}"
                continue
        if name not in namespace:
            manifest["missing"].append(name)
            continue
        try:
            manifest["values"][name] = encode(namespace[name], request, writer)
        except Exception as e:  # noqa: BLE001
            manifest["errors"][name] = f"{type(e).__name__}: {str(e)[:500]}"
    tmp = os.path.join(root, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f)
    os.replace(tmp, os.path.join(root, "manifest.json"))
