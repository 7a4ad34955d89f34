"""Runs INSIDE the student's kernel: write the declared values to disk, as the grader's last cell.

The grader's first cell (the prelude) executes this source with a snapshot of the builtins
and calls ``seal``: it takes private references to the standard-library functions the export
uses, to the notebook's namespace dict and to the threads that exist before any student cell
runs; ``seal_torch`` does the same for torch right after the notebook imports it. So a notebook
that later patches ``exec``, ``compile``, ``open``, ``json``, ``globals``, ``sys.modules``,
``torch.save``, ``torch.export`` or ``torch.fx`` does not change what is written, and threads
it started are stopped before the values are read. What the model's own ``forward`` computes
while it is captured is, by necessity, student code: the graph written is that function, and
the grader scores exactly that function, measured on its own data.

Everything written here is still untrusted data: the grader loads it with safe loaders only
(json, ``torch.load(weights_only=True)``) and recomputes every number it scores. This file
imports only the standard library and torch, because its source is executed in the kernel
rather than imported; and torch only once the notebook has imported it.

Layout of the export folder::

    manifest.json          {"format", "values": {name: encoded}, "missing": [...], "modules": [...]}
    models/<k>/graph.json  the model's forward pass as aten ops (captured by torch.export, forward hooks included)
    models/<k>/weights.pt  a dict of tensors: parameters, buffers and constants by name
    models/<k>/initial.pt  the parameters as they were at the model's first forward pass (kernel_probe); loaded.pt,
                           those load_state_dict gave it before that pass, as the pass saw them; graph.json
                           also holds the optimizer steps each parameter took part in, and the optimizers' classes
    models/<k>/probe.pt    watch mode, a capture reused: the model's outputs on a few inputs (``_reused``)
    models/s1/             watch mode's second kernel: the first model fed the input shape, captured (``speculate``)

One model object stored under several names is exported once, so the grader sees it is one object.
"""

import ctypes
import functools
import hashlib
import inspect
import json.encoder
import linecache
import math
import os
import signal
import sys
import threading
import time

FORMAT = 1
MAX_TENSOR_ELEMENTS = 100_000  # tensors larger than this inside plain values are not exported

# Taken when this source runs (the prelude, before any student cell): later patches of these modules do not reach us.
_makedirs, _replace, _path_join, _basename = os.makedirs, os.replace, os.path.join, os.path.basename
_getcwd, _ModuleType, _builtin_modules = os.getcwd, type(sys), frozenset(sys.builtin_module_names)
_exit = os._exit
_getsource, _isfunction, _ismethod = inspect.getsource, inspect.isfunction, inspect.ismethod
_signature, _VAR_POSITIONAL = inspect.signature, inspect.Parameter.VAR_POSITIONAL
_partial = functools.partial
_isfinite = math.isfinite
_getline = linecache.getline
_libraries = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})  # torch's and Python's own frames
_prod = math.prod
_quote = json.encoder.encode_basestring_ascii  # C code where the json speedups exist, like json.dump itself
_modules = sys.modules
_threads, _current_thread = threading.enumerate, threading.current_thread
_async_raise = ctypes.pythonapi.PyThreadState_SetAsyncExc
_sha256, _scandir = hashlib.sha256, os.scandir
_sleep, _monotonic = time.sleep, time.monotonic
DIGEST_LINE = "grader-export-digest "  # how the export cell's output names what it wrote
_SEAL: dict = {}  # set by seal(): the notebook's namespace, the probe, the threads that are not the student's
_T: dict = {}  # set by seal_torch(): torch's classes and functions the export uses
_GONE = object()
_set_timer, _on_signal, _main_thread = signal.setitimer, signal.signal, threading.main_thread
_ALARM, _REAL_TIMER = signal.SIGALRM, signal.ITIMER_REAL
PROBE_TIMEOUT = "ProbeTimeout"  # how a probe stopped for its time starts its entry in the manifest's errors


class _ProbeTimeout(BaseException):
    """Raised into the grader's own call of the student's code when its time is up: not an Exception, so that the
    student's ``except Exception`` does not take it for one of its own."""


def seal(namespace: dict, probe: dict | None = None, models: bool = True, names: tuple = ()) -> None:
    """Keep private references before any student cell runs (the prelude calls this).

    ``names`` are the values the export will write: after every cell, the objects bound to them are
    recorded, so the export writes what the notebook held when its last cell ended, whatever
    later code (a patched ``exec`` running the export cell, say) rebinds.
    """
    _SEAL.update(namespace=namespace, probe=probe, threads={t.ident for t in _threads()}, models=models,
                 modules=dict(_modules), write=sys.stdout.write, flush=sys.stdout.flush)
    shell = namespace.get("get_ipython")
    if names and callable(shell):
        def record(*_):
            _SEAL["after_cell"] = {name: namespace.get(name, _GONE) for name in names}

        shell().events.register("post_run_cell", record)
        _SEAL["recorder"] = record


def seal_torch(torch, models: bool | None = None) -> None:
    """Keep private references to torch's classes and functions, right after the notebook imports torch.

    ``models`` (default: what the prelude said) adds torch.export, which only model exports need.
    """
    from torch.optim import lr_scheduler

    _T.update(torch=torch, Tensor=torch.Tensor, Module=torch.nn.Module, Optimizer=torch.optim.Optimizer,
              containers=(torch.nn.ModuleDict, torch.nn.ModuleList), unimplemented=torch.nn.Module.forward,
              schedulers=(lr_scheduler.LRScheduler, lr_scheduler.ReduceLROnPlateau),
              DataLoader=torch.utils.data.DataLoader, save=torch.save, no_grad=torch.no_grad, zeros=torch.zeros,
              device=torch.device, dtype=torch.dtype, layout=torch.layout, memory_format=torch.memory_format,
              randn=torch.randn, Generator=torch.Generator, equal=torch.equal,
              OpOverload=torch._ops.OpOverload, module_hooks=torch.nn.modules.module,
              modules={k: v for k, v in _modules.items() if k == "torch" or k.startswith("torch.")})
    if _SEAL.get("models", True) if models is None else models:  # torch.export costs about a second to import
        import torch.export
        import torch.fx
        from torch.fx.experimental.symbolic_shapes import is_concrete_int
        from torch.utils._python_dispatch import TorchDispatchMode

        # Fake tensors cache each op's result per capture, and a capture with a free batch size makes its own
        # cache that no later op reuses on the course's models: building the entries is a sixth of the capture.
        no_cache = torch._dynamo.config.patch
        import torch.fx.config
        _T.update(export=torch.export.export, Dim=torch.export.Dim, Node=torch.fx.Node, is_concrete_int=is_concrete_int,
                  ScriptModule=torch.jit.ScriptModule,
                  DispatchMode=TorchDispatchMode,
                  no_fake_cache=lambda: no_cache(fake_tensor_cache_enabled=False), fx_config=torch.fx.config)
        _T["modules"].update((k, v) for k, v in _modules.items() if k.startswith("torch."))


def _torch():
    """torch's sealed references if the notebook has imported torch, else None (nothing of torch to export)."""
    if not _T and "torch" in _modules:  # in-process use (the quick check): no prelude ran
        seal_torch(_modules["torch"])
    return _T or None


def _dumps(value) -> str:
    """JSON for the plain data the manifest and graphs hold, written here rather than by a module a notebook can patch."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value) if _isfinite(value) else "null"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_quote(str(k))}: {_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_dumps(v) for v in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


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
        return value if _isfinite(value) else {"$float": repr(value)}
    if torch is not None and isinstance(value, torch["Tensor"]):
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
        return key if _isfinite(key) else repr(key)
    if type(key).__module__ in ("numpy", "torch"):
        return _key(key.item())
    return repr(key)


# --- models -------------------------------------------------------------------------


def _op_name(target) -> str:
    if isinstance(target, _T["OpOverload"]):
        return str(target)  # e.g. "aten.linear.default"
    module = getattr(target, "__module__", "")
    if module in ("_operator", "operator"):
        return f"operator.{target.__name__}"
    return f"unsupported:{module}.{getattr(target, '__qualname__', repr(target))}"


def _arg(value):
    if isinstance(value, _T["Node"]):
        return {"ref": value.name}
    if isinstance(value, (list, tuple)):
        return [_arg(v) for v in value]
    if isinstance(value, dict):
        return {"$kwargs": {k: _arg(v) for k, v in value.items()}}
    if isinstance(value, _T["dtype"]):
        return {"dtype": str(value).replace("torch.", "")}
    if isinstance(value, _T["device"]):
        return {"device": "cpu"}  # the grader runs everything on its own device
    if isinstance(value, _T["layout"]):
        return {"layout": str(value).replace("torch.", "")}
    if isinstance(value, _T["memory_format"]):
        return {"memory_format": str(value).replace("torch.", "")}
    if isinstance(value, float) and not _isfinite(value):
        return {"float": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"the model's graph has an argument of type {type(value).__name__} the grader cannot read")


def _capture(model, example):
    """Export with a free batch size where the model allows it; AUTO falls back to the example's.

    A TorchScript module (``torch.jit.script(net)``), which torch.export refuses, goes through torch's converter.
    """
    # torch.fx takes and symbolises the whole stack (ipykernel's frames and all) for each node it records: a tenth of a
    # small model's capture in a kernel, for a field (node.meta["stack_trace"]) the grader never reads.
    fx_config, emitting = _T["fx_config"], _T["fx_config"].do_not_emit_stack_traces
    fx_config.do_not_emit_stack_traces = True
    try:
        with _T["no_fake_cache"]():
            if isinstance(model, _T["ScriptModule"]):
                from torch._export.converter import TS2EPConverter

                program = TS2EPConverter(model, (example,)).convert()
            else:
                program = _T["export"](model, (example,), dynamic_shapes=_free_batch(model), strict=False)
    finally:
        fx_config.do_not_emit_stack_traces = emitting
    user_inputs = [n for n in program.graph.nodes if n.op == "placeholder"
                   and n.name in program.graph_signature.user_inputs]
    val = user_inputs[0].meta.get("val") if user_inputs else None
    # A batch dim that AUTO had to specialise shows up as a SymInt with a constant value.
    dynamic = val is not None and not _T["is_concrete_int"](val.shape[0])
    return program, dynamic


def _free_batch(model):
    """torch.export's dynamic_shapes for one input with a free batch size, laid out as ``forward`` takes it: a wrapper
    whose forward is ``(*args, **kwargs)`` (nn.DataParallel, AveragedModel) takes the input inside its ``args``."""
    batch = {0: _T["Dim"].AUTO}
    try:
        first = next(iter(_signature(model.forward).parameters.values()), None)
    except (TypeError, ValueError):
        first = None
    return {first.name: (batch,)} if first is not None and first.kind is _VAR_POSITIONAL else (batch,)


def _hooks(model, probe: dict | None = None) -> list[str]:
    """The student's forward hooks, which torch.export runs (and so captures) with each module's call.

    The grader's own global pre-hook (kernel_probe) is left out: it records nothing once the export starts.
    """
    ours = probe.get("_first_forward") if probe else None
    globals_ = _T["module_hooks"]
    tables = [("a global forward hook", getattr(globals_, "_global_forward_hooks", {})),
              ("a global forward pre-hook", getattr(globals_, "_global_forward_pre_hooks", {}))]
    for name, module in model.named_modules():
        where = f"`{name}`" if name else "the model"
        tables += [(f"a forward hook on {where}", module._forward_hooks),
                   (f"a forward pre-hook on {where}", module._forward_pre_hooks)]
    return [f"{label} ({getattr(hook, '__name__', type(hook).__name__)})"
            for label, table in tables for hook in list(table.values()) if _students(hook, ours)][:20]


def _students(hook, ours) -> bool:
    """A hook of the student's: not the grader's probe (``ours``) nor another of the probe module's functions."""
    return hook is not ours and getattr(hook, "__globals__", {}).get("__name__") != "grader_probe"


def _unwrapped(model):
    if type(model).__name__ == "OptimizedModule" and type(model).__module__.startswith("torch._dynamo"):
        return model._orig_mod  # torch.compile's wrapper: the module it compiles holds the same parameters
    return model


def _example(model, input_shape):
    """The capture's input: a batch of 2 zeros on the model's device, in its float type (a model kept in float64)."""
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else _T["device"]("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else None
    return _T["zeros"](2, *input_shape, device=device, dtype=dtype)


def _digest_in_eval(model, input_shape, example, probe: dict | None) -> str | None:
    """``_fingerprint`` of the model as the capture runs it (eval mode); None where the student's objects fail."""
    was_training = model.training
    try:
        model.eval()  # a module whose train() does not follow stays as it is
        return _fingerprint(model, input_shape, example, probe)
    except Exception:  # noqa: BLE001 - the student's objects answer attribute reads: captured as usual
        return None
    finally:
        model.train(was_training)


def export_model(model, input_shape, folder: str, probe: dict | None = None, reuse: frozenset | None = None) -> dict:
    """Capture the forward pass in eval mode and write graph.json + weights.pt (+ initial.pt) into ``folder``.

    ``reuse`` (watch mode): the digests of the models the grader captured before (``_fingerprint``); a model
    whose code is one of them is not captured again (``_reused``). None: no digest is taken.
    """
    if "export" not in _T:  # the prelude was told no model is exported; an unexpected one is still captured
        seal_torch(_T.get("torch") or _modules["torch"], models=True)
    model = _unwrapped(model)
    _makedirs(folder, exist_ok=True)
    was_training = model.training
    example = _example(model, input_shape)
    key = _digest_in_eval(model, input_shape, example, probe) if reuse is not None else None
    if key is not None and key in reuse:
        reused = _reused(model, key, input_shape, example, folder, probe)
        if reused is not None:
            return reused
    model.eval()
    try:
        with _T["no_grad"]():
            program, dynamic = _capture(model, example)
    finally:
        model.train(was_training)
    signature = program.graph_signature
    specs = {spec.arg.name: spec for spec in signature.input_specs if hasattr(spec.arg, "name")}
    state = {**program.state_dict, **program.constants}
    # torch's converter lifts a loaded TorchScript module's parameters (torch.jit.load) as buffers: they are its own.
    owned = {name for name, _ in model.named_parameters()} if isinstance(model, _T["ScriptModule"]) else set()
    nodes, tensors, first_name = [], {}, {}
    for node in program.graph.nodes:
        if node.op == "placeholder":
            spec = specs[node.name]
            kind = "PARAMETER" if spec.kind.name == "BUFFER" and spec.target in owned else spec.kind.name
            entry = {"op": "input", "name": node.name, "kind": kind}
            if spec.target is not None:
                # One layer kept under two names (self.fc1, and self.net holding it) is one tensor in torch.export's
                # state, lifted once per name: written once, under its first name, as named_parameters() has it.
                target = first_name.setdefault(id(state[spec.target]), spec.target)
                entry["target"] = target
                if target == spec.target:
                    tensors[target] = state[target].detach().cpu().contiguous()
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
    if key is not None:
        graph["key"] = key
    return _write_model(model, graph, tensors, folder, probe)


def _write_model(model, graph: dict, tensors: dict, folder: str, probe: dict | None) -> dict:
    _T["save"](tensors, _path_join(folder, "weights.pt"))
    if probe and "training_record" in probe:
        graph.update(probe["training_record"](model))
    for name, state in (("initial.pt", "initial_state"), ("loaded.pt", "loaded_state")):
        tensors = probe[state](model) if probe and state in probe else {}
        if tensors:
            _T["save"]({k: v.contiguous() for k, v in tensors.items()}, _path_join(folder, name))
    with open(_path_join(folder, "graph.json"), "w") as f:
        f.write(_dumps(graph))
    return {"$model": _basename(folder)}


# --- watch mode: a capture reused while the model's code stays the same ------------------------

_PLAIN = (bool, int, float, complex, str, bytes, type(None))  # exact types: a subclass may carry code and state
_CONTAINERS = (list, tuple, set, frozenset, dict)
# Inputs the kernel runs a model whose capture is reused on: (batch, scale). The batch a capture fixes, one it does
# not, a single point; inputs spread wide enough to cross the thresholds a forward may hold (a clamp, a branch),
# whatever the digest missed that sets one.
PROBES = ((2, 1.0), (5, 30.0), (1, 3.0), (3, 1e4))
_MAX_PARTS = 20000
# Code naming these reads values no digest can list (globals()["x"], eval, a file): no digest, the model is captured.
_DYNAMIC = frozenset({"globals", "vars", "locals", "eval", "exec", "compile", "getattr", "__import__", "open",
                      "importlib", "__dict__", "__builtins__"})


class _Unread(Exception):
    """Something the model's code reads that the digest cannot follow: no digest, the model is captured."""


def _code_parts(code, out: list, names: set) -> None:
    """The code's instructions, names and constants, without where it was compiled (a cell's file names the kernel)."""
    out += [code.co_code, repr(code.co_names), repr(code.co_varnames), repr(code.co_freevars), repr(code.co_cellvars),
            repr((code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)),
            getattr(code, "co_exceptiontable", b"")]
    names.update(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _code_parts(const, out, names)
        else:
            out.append(repr(const))


def _own(obj) -> bool:
    """Code or a module of the notebook's: defined in it, or in a file of its folder (not an installed package).

    A function is judged by the globals it runs with, not by its ``__module__``, which any code may set.
    """
    scope = getattr(obj, "__globals__", None)
    if isinstance(scope, dict):
        if scope is _SEAL.get("probe"):  # the grader's own wrappers (Module.load_state_dict's), not the notebook's
            return False
        home = _modules.get(scope.get("__name__"))
        return home is None or vars(home) is not scope or _own(home)
    name = obj.__name__ if isinstance(obj, _ModuleType) else getattr(obj, "__module__", None)
    if name in (None, "__main__", "builtins") and not isinstance(obj, _ModuleType):
        return name != "builtins"
    module = obj if isinstance(obj, _ModuleType) else _modules.get(name)
    if module is not None and module.__name__ in _builtin_modules:
        return False
    where = getattr(module, "__file__", None) or ""
    return module is None or not where or (where.startswith(_getcwd() + "/") and "/site-packages/" not in where)


class _Digest:
    """What a capture of one model depends on, as parts; ``value`` raises _Unread for anything it cannot follow.

    The notebook's own code is followed through everything it reads: plain values, containers, objects, classes,
    closures, defaults, the attributes it reads of the modules it names. Installed code (torch's, numpy's, the
    standard library's) is the installed version's, named; but a class or module of torch's that the notebook
    patched (a method or value of its own put in it) shows that entry.
    """

    def __init__(self, modules: dict):
        self.out: list = []
        self.seen: dict = {}
        self.modules = modules  # id(submodule) -> its name in the model

    def add(self, *parts) -> None:
        self.out.extend(parts)
        if len(self.out) > _MAX_PARTS:
            raise _Unread("too much to follow")

    def _once(self, obj) -> bool:
        """True the first time ``obj`` is met; later meetings add a reference to the first."""
        if id(obj) in self.seen:
            self.add(f"ref:{self.seen[id(obj)]}")
            return False
        self.seen[id(obj)] = len(self.seen)
        return True

    def value(self, value, depth: int = 0, names: frozenset = frozenset()) -> None:  # noqa: C901 - one per kind
        if depth > 12:
            raise _Unread("nested too deeply")
        kind = type(value)
        if kind in _PLAIN:
            self.add(f"{kind.__name__}:{value!r}")
        elif kind in _CONTAINERS:
            items = list(value.items()) if kind is dict else sorted(value, key=repr) if kind in (set, frozenset) \
                else list(value)
            self.add(f"{kind.__name__}[{len(items)}]")
            for item in items:
                if kind is dict:
                    self.value(item[0], depth + 1)
                    self.value(item[1], depth + 1)
                else:
                    self.value(item, depth + 1)
            self.add("end")
        elif kind.__module__ == "numpy" and getattr(value, "ndim", 1) == 0 and hasattr(value, "item"):
            self.add(f"numpy.{kind.__name__}:{value.item()!r}")
        elif isinstance(value, _T["Module"]):
            if id(value) not in self.modules:
                raise _Unread("a module outside the model")
            self.add(f"submodule:{self.modules[id(value)]}")
        elif isinstance(value, _T["Tensor"]):
            raise _Unread("a tensor")  # read in forward, it is a constant of the graph: never reused
        elif kind in (_T["device"], _T["dtype"]):
            self.add(f"{kind.__name__}:{value}")
        elif isinstance(value, _ModuleType):
            self.module(value, names, depth)
        elif isinstance(value, type):
            self.klass(value)
        elif kind.__name__ == "partial" and kind.__module__ == "functools":
            self.add("partial")
            for part in (value.func, value.args, value.keywords):
                self.value(part, depth + 1)
        elif hasattr(value, "__func__") and hasattr(value, "__self__"):  # a bound method, or a classmethod
            self.add("method")
            self.value(value.__func__, depth + 1)
            self.value(value.__self__, depth + 1)
        elif hasattr(value, "__code__"):
            self.function(value, depth)
        elif kind.__name__ in ("builtin_function_or_method", "method_descriptor", "wrapper_descriptor",
                               "getset_descriptor", "member_descriptor", "OpOverloadPacket", "OpOverload"):
            owner = getattr(value, "__self__", None)
            if owner is not None and not isinstance(owner, (_ModuleType, type)):
                raise _Unread("a method bound to an object")
            self.add(f"builtin:{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}")
        elif kind in (staticmethod, classmethod, property):
            self.add(kind.__name__)
            for part in (getattr(value, "__func__", None), getattr(value, "fget", None), getattr(value, "fset", None)):
                self.value(part, depth + 1)
        elif hasattr(value, "__dict__") and not hasattr(kind, "__slots__"):  # an object: its class and its state
            self.add("object")
            if not self._once(value):
                return
            self.klass(kind)
            for base in _CONTAINERS + _PLAIN[1:]:
                if isinstance(value, base):  # a dict or float of a class of its own: its contents as well
                    self.value(base(value), depth + 1)
                    break
            self.value(dict(vars(value)), depth + 1)
        else:
            raise _Unread(f"a {kind.__name__}")

    def function(self, function, depth: int = 0) -> None:
        if not _own(function):
            self.add(f"function:{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}")
            return
        self.add("own function")
        if not self._once(function):
            return
        names: set = set()
        _code_parts(function.__code__, self.out, names)
        if names & _DYNAMIC:
            raise _Unread("code that looks values up by name at run time")
        frozen = frozenset(names)
        for part in (getattr(function, "__defaults__", None), getattr(function, "__kwdefaults__", None),
                     dict(getattr(function, "__dict__", {}))):
            self.value(part, depth + 1)
        for cell in getattr(function, "__closure__", None) or ():
            try:
                contents = cell.cell_contents
            except ValueError:  # a cell not yet filled
                contents = "<empty cell>"
            self.value(contents, depth + 1, frozen)
        scope = getattr(function, "__globals__", None) or {}
        builtins = getattr(function, "__builtins__", None) or scope.get("__builtins__")  # those it runs with
        builtins = vars(builtins) if isinstance(builtins, _ModuleType) else builtins if isinstance(builtins, dict) \
            else {}
        for name in sorted(names):
            if name in scope or name in builtins:
                self.add(f"name:{name}")
                self.value(scope[name] if name in scope else builtins[name], depth + 1, frozen)

    def module(self, module, names: frozenset, depth: int) -> None:
        """An installed module by name, with the attributes the code reads of it; one of the notebook's: unread."""
        if _own(module):
            raise _Unread("a module of the notebook's own")
        self.add(f"module:{module.__name__}")
        if not self._once(module):
            return
        if type(module) is not _ModuleType:
            self.klass(type(module))
        for name in sorted(names | {"__getattr__"}):
            attribute = vars(module).get(name, _GONE)  # not getattr: a module's __getattr__ may import on a read
            if attribute is not _GONE:
                self.add(f"attribute:{name}")
                self.value(attribute, depth + 1, names)

    def klass(self, klass) -> None:
        """A class of the notebook's by its code and attributes, and its metaclass; an installed class by name, with
        whatever the notebook put in it or its bases (a patched forward, a value)."""
        self.add(f"class:{klass.__module__}.{klass.__qualname__}")
        if not self._once(klass):
            return
        if type(klass) is not type:
            self.klass(type(klass))
        if not _own(klass):
            for base in klass.__mro__:
                for name, item in list(vars(base).items()):
                    inner = getattr(item, "__func__", None) or getattr(item, "fget", None) or item
                    if type(item) in _PLAIN or (hasattr(inner, "__code__") or isinstance(inner, type)) and _own(inner):
                        self.add(f"{base.__qualname__}.{name}")
                        self.value(item)
            return
        for base in klass.__bases__:
            self.klass(base)
        for name, item in sorted(vars(klass).items(), key=lambda entry: entry[0]):
            # A dataclass's fields are its instances' values, read there; its field objects are bookkeeping.
            if name not in ("__dict__", "__weakref__", "__doc__", "__module__", "__qualname__", "__dataclass_fields__",
                            "__dataclass_params__"):
                self.add(f"attr:{name}")
                self.value(item)
        self.add("end")


def _fingerprint(model, input_shape, example, probe: dict | None) -> str | None:
    """A digest of what a capture of ``model`` depends on: its modules, their code and settings, the tensors' shapes,
    the code its functions and hooks read and the values they read (``_Digest``). None when the model reads
    something it cannot follow (a tensor, a module of the notebook's, a name looked up at run time): captured.
    """
    modules = dict(model.named_modules(remove_duplicate=False))
    digest = _Digest({id(module): name for name, module in reversed(list(modules.items()))})
    if "module_private" not in _T:  # nn.Module's own bookkeeping: parameters, hooks, the training flag
        _T["module_private"] = frozenset(vars(_T["Module"]()))
    private = _T["module_private"]
    try:
        digest.add(repr(list(input_shape)), str(example.dtype), str(example.device))
        ours = probe.get("_first_forward") if probe else None
        globals_ = _T["module_hooks"]
        for table, flags in (("_global_forward_hooks", ("_global_forward_hooks_with_kwargs",
                                                        "_global_forward_hooks_always_called")),
                             ("_global_forward_pre_hooks", ())):
            for handle, hook in list(getattr(globals_, table, {}).items()):
                if _students(hook, ours):
                    digest.add("global hook", *(f"{flag}:{handle in getattr(globals_, flag, {})}" for flag in flags))
                    digest.value(hook)
        for name, module in modules.items():
            digest.add(f"module {name}", f"training:{module.training}")  # as the capture's eval() left it
            digest.klass(type(module))
            for attr, value in sorted(vars(module).items(), key=lambda item: item[0]):
                if attr not in private:
                    digest.add(f"attr:{attr}")
                    digest.value(value)
            for table, flags in ((module._forward_hooks, ("_forward_hooks_with_kwargs",
                                                          "_forward_hooks_always_called")),
                                 (module._forward_pre_hooks, ("_forward_pre_hooks_with_kwargs",))):
                for handle, hook in list(table.items()):  # with the flags it was registered with
                    digest.add("hook", *(f"{flag}:{handle in getattr(module, flag, {})}" for flag in flags))
                    digest.value(hook)
        first: dict = {}
        for name, tensor in [*model.named_parameters(remove_duplicate=False),
                             *model.named_buffers(remove_duplicate=False)]:
            digest.add(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}:{first.setdefault(id(tensor), len(first))}")
    except _Unread:
        return None
    hashed = _sha256()
    for part in digest.out:  # each part prefixed by its length, so no two lists of parts hash alike
        data = part if isinstance(part, bytes) else part.encode("utf-8", "surrogatepass")
        hashed.update(len(data).to_bytes(8, "little") + data)
    return hashed.hexdigest()


def speculate(input_shapes: list, root: str, known: list) -> None:
    """Watch mode, in a second kernel running the same save: capture the first module fed one of ``input_shapes``.

    Its capture goes to ``root``/models/s1 under its digest, unless the grader already holds that digest; then this
    kernel ends itself, so the grader can read the folder while the first kernel still trains. The grader uses the
    capture only for a model of the same digest, checked as any reused capture is (``grader.grading.captures``).
    """
    shapes, probe = {tuple(int(n) for n in shape) for shape in input_shapes}, _SEAL.get("probe")
    handle = []

    def first_fed(module, args):
        if probe and not probe["RECORDING"][0]:  # the grader's own forward passes (the waiting kernel's warm-up)
            return None
        x = args[0] if args else None
        if not isinstance(x, _T["Tensor"]) or x.dim() < 1 or tuple(x.shape[1:]) not in shapes:
            return None
        handle.pop().remove()  # before the digest, which counts every global hook not the grader's probe's
        if probe:
            probe["RECORDING"][0] = False
        try:
            model, shape = _unwrapped(module), [int(n) for n in x.shape[1:]]
            key = _digest_in_eval(model, shape, _example(model, shape), probe)
            if key is not None and key not in known:
                export_model(model, shape, _path_join(root, "models", "s1"), probe, frozenset())
        finally:
            _exit(0)  # its folder is complete: nothing else of this run is needed

    handle.append(_T["module_hooks"].register_module_forward_pre_hook(first_fed))


def tensors_in(value) -> list:
    """The tensors a forward returned (a tensor, or held in tuples, lists and dicts), in order, on the CPU."""
    if isinstance(value, _T["Tensor"]):
        return [value.detach().cpu()]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    return []


def _reused(model, key: str, input_shape, example, folder: str, probe: dict | None) -> dict | None:
    """The model's code is that of a capture the grader holds: its tensors, and its outputs on a few inputs from which
    the grader checks that the capture still computes what the model does (``grader.grading.captures``).

    None, and nothing written, when the model's outputs are no function of its inputs and weights alone here (a random
    op, a buffer its forward changes): the grader could not check a reused capture against them, so it is captured.
    """
    generator = _T["Generator"]().manual_seed(0)
    state = {name: t.detach().clone() for name, t in model.named_buffers()}
    outputs = {}
    was_training = model.training
    model.eval()
    try:
        with _T["no_grad"]():
            for i, (batch, scale) in enumerate(PROBES):
                x = _T["randn"](batch, *input_shape, generator=generator) * scale
                x = x.to(device=example.device, dtype=example.dtype)
                outputs[f"in.{i}"] = x.cpu()
                try:
                    got = tensors_in(model(x))
                except Exception:  # noqa: BLE001 - a model that fixed its batch size: the grader expects that too
                    continue
                if i == 0 and not _same(got, tensors_in(model(x))):
                    return None
                outputs.update((f"out.{i}.{j}", t.contiguous()) for j, t in enumerate(got))
            trace = op_trace(model, outputs["in.0"].to(device=example.device, dtype=example.dtype))
    except Exception:  # noqa: BLE001 - the capture says what is wrong with the model, as without reuse
        return None
    finally:
        model.train(was_training)
        for name, t in model.named_buffers():
            if name in state and not (t.shape == state[name].shape and bool((t == state[name]).all())):
                if t.shape == state[name].shape:
                    with _T["no_grad"]():
                        t.copy_(state[name])
                state[name] = None  # changed by the probes: that model is captured
    if any(v is None for v in state.values()):
        return None
    _makedirs(folder, exist_ok=True)
    _T["save"](outputs, _path_join(folder, "probe.pt"))
    tensors = {name: t.detach().cpu().contiguous() for name, t in [*model.named_parameters(), *model.named_buffers()]}
    trainable = {name: bool(p.requires_grad) for name, p in model.named_parameters()}
    graph = {"format": FORMAT, "reuse": key, "class": type(model).__name__, "input_shape": list(input_shape),
             "trainable": trainable, "hooks": _hooks(model, probe), "trace": trace}
    return _write_model(model, graph, tensors, folder, probe)


def _op_arg(value) -> str:
    if isinstance(value, _T["Tensor"]):
        return f"T{tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_op_arg(v) for v in value) + "]"
    return repr(value)


def op_trace(model, x) -> list:
    """Every aten op the model's forward runs on ``x``, with its arguments other than tensors' values, literals
    included. The kernel records the student's model; the grader (``grader.grading.captures``) records the held
    capture with this same function, so the two records can only differ where the computations do."""
    if "DispatchMode" not in _T:  # the grader's own process: nothing sealed torch here
        seal_torch(_T.get("torch") or _modules["torch"], models=True)
    if "Recorder" not in _T:
        class Recorder(_T["DispatchMode"]):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                self.ops.append(f"{func}({','.join(_op_arg(a) for a in args)};"
                                f"{','.join(f'{k}={_op_arg(v)}' for k, v in kwargs.items())})"[:300])
                if len(self.ops) > 5000:
                    raise RuntimeError("too many operations to record")
                return func(*args, **kwargs)

        _T["Recorder"] = Recorder
    recorder = _T["Recorder"]()
    recorder.ops = []
    with _T["no_grad"](), recorder:
        model(x)
    return recorder.ops


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and bool(((x == y) | (x.isnan() & y.isnan())).all())
                                    for x, y in zip(a, b))


# --- other objects --------------------------------------------------------------------


def _optimizer(opt, probe: dict | None = None) -> dict:
    groups = [{k: _jsonable(v) for k, v in g.items() if k != "params"} | {"n_params": sum(p.numel() for p in g["params"])}
              for g in opt.param_groups]
    # Adam-like optimizers count steps per parameter; the probe counts step() calls of any optimizer.
    state_steps = sorted({_jsonable(s["step"]) for s in opt.state.values() if isinstance(s, dict) and "step" in s},
                         key=str)
    return {"class": type(opt).__name__, "module": type(opt).__module__, "param_groups": groups,
            "defaults": {k: _jsonable(v) for k, v in opt.defaults.items()},
            # The probe counts every step() of the run: an optimizer it has no count for never stepped.
            "steps": probe["STEPS"].get(opt, 0) if probe else None, "state_steps": state_steps[:10],
            "stepped_under_scheduler": _stepped_under_scheduler(opt)}


def _stepped_under_scheduler(opt) -> bool | None:
    """torch's own record, the one behind its warning: whether step() ran after a scheduler was made on ``opt``.

    None where torch keeps none: no scheduler wrapped its step(), or ``opt`` is a copy (a deepcopy keeps neither).
    """
    if not getattr(getattr(opt, "step", None), "_wrapped_by_lr_sched", False):
        return None
    return bool(getattr(opt, "_opt_called", False))


def _scheduler(scheduler, probe: dict | None = None) -> dict:
    optimizer = getattr(scheduler, "optimizer", None)
    # A class of the notebook's built on one of torch's (to log its steps, say) is replayed as that one.
    base = next((k.__name__ for k in type(scheduler).__mro__ if k.__module__ == "torch.optim.lr_scheduler"), "")
    return {"class": type(scheduler).__name__, "module": type(scheduler).__module__, "torch_base": base,
            "state": {k: _jsonable(v) for k, v in scheduler.state_dict().items()},
            "optimizer": _optimizer(optimizer, probe) if optimizer is not None else None,
            "calls": probe["scheduler_calls"](scheduler) if probe and "scheduler_calls" in probe else None,
            "made_at": probe["scheduler_made_at"](scheduler) if probe and "scheduler_made_at" in probe else 0}


def _loader(loader) -> dict:
    dataset = loader.dataset
    sampler, batch_size, drop_last = getattr(loader, "sampler", None), loader.batch_size, loader.drop_last
    batches = getattr(loader, "batch_sampler", None)
    if batch_size is None and isinstance(getattr(batches, "batch_size", None), int):
        # DataLoader(batch_sampler=BatchSampler(RandomSampler(data), 64, False)): its own sampler is unused
        sampler, batch_size, drop_last = getattr(batches, "sampler", sampler), batches.batch_size, batches.drop_last
    return {"batch_size": batch_size, "drop_last": drop_last,
            "sampler": type(sampler).__name__ if sampler is not None else None,
            "shuffle": _shuffles(sampler, dataset),
            "dataset_class": type(dataset).__name__, "dataset_len": len(dataset) if hasattr(dataset, "__len__") else None,
            "transform": repr(getattr(dataset, "transform", None))[:500]}


def _shuffles(sampler, dataset) -> bool:
    """A random order of the whole dataset: RandomSampler, or a SubsetRandomSampler over every index."""
    if type(sampler).__name__ == "RandomSampler":
        return True
    indices = getattr(sampler, "indices", None) if type(sampler).__name__ == "SubsetRandomSampler" else None
    try:
        return indices is not None and len(indices) == len(dataset) and \
            sorted(int(i) for i in indices) == list(range(len(dataset)))
    except (TypeError, ValueError):
        return False


def _function(fn) -> dict:
    try:
        source = _getsource(fn)[:20000]
    except (OSError, TypeError):
        source = ""
    return {"name": getattr(fn, "__qualname__", ""), "module": getattr(fn, "__module__", ""), "source": source}


class _Writer:
    """One export: where it goes, the probe's records, and the models met so far (by object identity)."""

    def __init__(self, root: str, probe: dict | None, reuse: frozenset | None = None):
        self.root, self.probe, self.reuse = root, probe, reuse
        self.models: dict = {}  # id -> [(model, input_shape, entry, its weights when met)], one per state it was met in
        self.count = 0

    def model(self, model, input_shape) -> dict:
        """The model's entry in the manifest; ``finish`` writes its folder once every value is encoded, so that no
        forward pass of the grader's (a capture runs the student's forward and hooks) changes a value written later.

        Each value is exported with the weights it had when it was met: one object met again with other weights (the
        grader's call of a function that trains or restores into the notebook's global model) is a second entry.
        """
        held = _weights(model)
        met = self.models.setdefault(id(model), [])
        for _, _, entry, weights in met:
            if _same_weights(weights, held):
                return entry
        self.count += 1
        met.append((model, input_shape, {"$model": str(self.count)}, held))
        return met[-1][2]

    def finish(self) -> None:
        for met in self.models.values():
            latest = _weights(met[0][0])
            for model, input_shape, entry, weights in met:
                changed = not _same_weights(weights, latest)
                if changed:  # changed since it was met (by a later probe of the grader's): written as it was then
                    _put_weights(model, weights)
                self._write(model, input_shape, entry)
                if changed:
                    _put_weights(model, latest)

    def _write(self, model, input_shape, entry: dict) -> None:
        folder = _path_join(self.root, "models", entry["$model"])
        try:
            export_model(model, input_shape, folder, self.probe, self.reuse)
        except Exception as e:  # noqa: BLE001 - reported to the student as the export problem
            error = f"the model could not be captured for grading: {type(e).__name__}: {str(e)[:500]}"
            advice = _reshape_advice(e) or _quantized_advice(model) or _input_advice(model, input_shape, self.probe) \
                or _hook_advice(model, self.probe)
            entry.clear()  # the manifest holds this very dict, wherever the model was met
            entry["$error"] = error.rstrip(". \n") + advice if advice else error


def _weights(model) -> dict:
    """A copy of the model's parameters and buffers by name, as they are now; {} where they cannot be read."""
    try:
        with _T["no_grad"]():
            return {name: t.detach().clone() for named in (model.named_parameters(), model.named_buffers())
                    for name, t in named if t is not None}
    except Exception:  # noqa: BLE001 - an odd module: exported as it is at the end, as before
        return {}


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype
                                        and _T["equal"](a[k], b[k]) for k in a)


def _put_weights(model, weights: dict) -> None:
    """Copy ``weights`` back into the model's own tensors, in place (no optimizer or hook sees it)."""
    with _T["no_grad"]():
        for named in (model.named_parameters(), model.named_buffers()):
            for name, t in named:
                if name in weights and t is not None and t.shape == weights[name].shape:
                    t.copy_(weights[name])


def _quantized_advice(model) -> str:
    """Why a quantised model (torch.ao.quantization) cannot be captured, "" for another: its packed weights are C++
    objects that torch.export does not take apart."""
    try:
        quantized = [name for name, m in model.named_modules() if ".quantized" in type(m).__module__]
    except Exception:  # noqa: BLE001
        return ""
    if not quantized:
        return ""
    return (f". Your model holds quantised layers ({', '.join(f'`{n}`' for n in quantized[:3]) or 'the model'}, "
            "from torch.ao.quantization), whose packed integer weights the grader cannot capture: export the float "
            "model you trained, and quantise a copy of it if you want to compare the two")


def _reshape_advice(error: Exception) -> str:
    """Why a reshape to a fixed size fails on the grader's batches, "" for another error."""
    if "is invalid for input of size" not in str(error):
        return ""
    return (". Your model's forward reshapes its input to a fixed size, so it runs only on batches of one size (in "
            "torch's message, s and a number stand for the grader's batch size); the grader runs it on batches of "
            "its own. Leave the batch dimension free: x.view(-1, ...), x.view(x.size(0), -1), or nn.Flatten()")


def _input_advice(model, input_shape, probe: dict | None) -> str:
    """Why a model fed inputs of another shape in training fails on the task's: named from the probe's record."""
    try:
        fed = probe["INPUTS"].get(model)[3] if probe else None
    except Exception:  # noqa: BLE001 - no record, no advice
        return ""
    if not fed or list(fed) == list(input_shape):
        return ""
    flat = len(fed) == 1 and fed[0] == _prod(input_shape)
    return (f". Your model was fed inputs of shape {list(fed)} in training (the kernel's record), but the task's "
            f"model takes {list(input_shape)}, as the task's loader makes them, and the grader runs it so: "
            + ("flatten inside the model (nn.Flatten() as its first layer, or x.flatten(1) in forward), not in the "
               "loop or the dataset" if flat else "reshape inside the model, not in the loop or the dataset"))


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
    if isinstance(value, torch["containers"]) and type(value).forward is torch["unimplemented"]:
        # nn.ModuleDict({"0": net, ...}) or nn.ModuleList: a container of models, not one; handed over as its items
        return _encode_plain(dict(value.items()) if hasattr(value, "items") else list(value), request, writer)
    if isinstance(value, torch["Module"]):
        return writer.model(value, request.get("input_shape") or [])
    if isinstance(value, torch["schedulers"]):
        return {"$scheduler": _scheduler(value, writer.probe)}
    if isinstance(value, torch["Optimizer"]):
        return {"$optimizer": _optimizer(value, writer.probe)}
    if isinstance(value, torch["DataLoader"]):
        return {"$loader": _loader(value)}
    return _encode_plain(value, request, writer)


def _encode_plain(value, request: dict, writer: _Writer):
    if request.get("kind") == "dict" and type(value).__name__ == "DataFrame" and \
            type(value).__module__ in ("pandas", "pandas.core.frame"):
        # A history shown as a table (history = pd.DataFrame(history)), its rows numbered (epochs from 0 or 1): its
        # columns are the dict's lists. Rows labelled otherwise (results = pd.DataFrame(results), a figure per row):
        # each column is a dict by those labels.
        labels = value.index.tolist()
        numbered = all(type(label) is int for label in labels) and labels == list(range(labels[0], labels[0] + len(
            labels))) if labels else True
        value = {column: value[column].tolist() if numbered else dict(zip(labels, value[column].tolist()))
                 for column in value.columns}
    if isinstance(value, dict):
        return {"$dict": [[_key(k), encode(v, request, writer)] for k, v in value.items()]}
    if type(value).__name__ == "_IncompatibleKeys" and type(value).__module__ == "torch.nn.modules.module":
        # What load_state_dict returns (model = model.load_state_dict(...)): a tuple, but no value of the student's.
        return {"$repr": repr(value)[:200], "$type": "_IncompatibleKeys"}
    if isinstance(value, (list, tuple)):
        return [encode(v, request, writer) for v in value]
    if _isfunction(value) or _ismethod(value):
        return {"$function": _function(value)}
    called = _called(value) if request.get("kind") == "function" else None
    if called is not None:
        return {"$function": _function(called)}
    return _jsonable(value)


def _called(value):
    """The function an export asked for as a function runs when called: a functools.partial's (however nested), an
    object's ``__call__``; None for anything else (a class, a builtin)."""
    for _ in range(8):
        if not isinstance(value, _partial):
            break
        value = value.func
    if _isfunction(value) or _ismethod(value):
        return value
    call = getattr(type(value), "__call__", None)
    return call if not isinstance(value, type) and _isfunction(call) else None


def _stop_student_threads(wait_s: float = 2.0) -> list[str]:
    """Stop every Python thread the notebook started, so none changes a value while it is read; the names of
    those still alive: blocked in a wait (their SystemExit comes first when they wake) or in native code.

    A thread blocked in the kernel, such as a progress bar's monitor waiting on its timer, is not waited for:
    it runs no Python code until it wakes. One that computes is given up to ``wait_s``.
    """
    mine = _current_thread()
    theirs = [t for t in _threads() if t is not mine and t.ident not in _SEAL.get("threads", ())]
    for thread in theirs:
        _async_raise(ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit))
    deadline, blocked, pause = _monotonic() + wait_s, 0, 0.0005
    while (alive := [t for t in theirs if t.is_alive()]) and _monotonic() < deadline:
        # Blocked at two looks with the GIL free between them: a thread that only waited for the GIL ran (and
        # raised) in between, so these wait for something else.
        blocked = blocked + 1 if all(_blocked(t) for t in alive) else 0
        if blocked == 2:
            break
        _sleep(pause)
        pause = min(2 * pause, 0.005)
    return [t.name for t in theirs if t.is_alive()]


def _blocked(thread) -> bool:
    """Whether the thread sleeps in the kernel now (state S or D in /proc); False when that cannot be read."""
    try:
        with open(f"/proc/self/task/{int(thread.native_id)}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:].startswith((b"S", b"D"))  # the state follows the command's name
    except (OSError, TypeError, ValueError):
        return False


def _probe(code: str, name: str, namespace: dict, seconds: float | None) -> None:
    """Run one of the grader's probes, stopped by SIGALRM after ``seconds``: a call that never returns (a training
    loop that ignores its ``n_epochs``, say) then costs its own value, not every other one of the export cell's."""
    compiled = compile(code, f"<grader probe {name}>", "exec")
    if seconds is None or threading.current_thread() is not _main_thread():
        exec(compiled, namespace)
        return

    running = [True]

    def expire(signum, frame):
        if running[0]:
            raise _ProbeTimeout

    previous = _on_signal(_ALARM, expire)
    # Fired again every quarter second once due: a first stop swallowed on its way out (a bare except in the student's
    # loop, an exception raised inside a __del__, which Python only prints) is raised again at the next.
    _set_timer(_REAL_TIMER, max(seconds, 0.01), 0.25)
    try:
        exec(compiled, namespace)
    finally:
        running[0] = False
        _set_timer(_REAL_TIMER, 0)
        _on_signal(_ALARM, previous)


def _raised_at(error: BaseException) -> str:
    """Where in the student's code ``error`` was raised, for its message: the innermost frame outside the grader's
    probe, the course's helpers, torch and Python's own files, as " (in train, at `for x, y in val_loader:`)"; ""
    where there is none, or where the notebook's patches make it unreadable."""
    try:
        course = getattr(_modules.get("reference"), "__file__", None)  # the course's helpers are not student code
        skipped = ("<grader", *_libraries, *([course.rpartition("/")[0] + "/"] if isinstance(course, str) else []))
        found, tb = None, error.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if not code.co_filename.startswith(skipped):
                found = (code.co_name, code.co_filename, tb.tb_lineno)
            tb = tb.tb_next
        if found is None:
            return ""
        line = " ".join(str(_getline(found[1], found[2])).split())[:120]
        return f" (in {found[0]}" + (f", at `{line}`)" if line else f", line {found[2]})")
    except Exception:  # noqa: BLE001 - only the message's detail is lost
        return ""


def export_values(namespace: dict | None, requests: list, root: str, reuse: list | None = None,
                  times: tuple | None = None) -> None:
    """Write every requested name (of ``namespace``, or the sealed notebook namespace); the manifest last, atomically.

    ``reuse``: watch mode's digests of models captured before (``export_model``). ``times``: (seconds per probe,
    seconds for the whole cell); the probes share four fifths of the cell's, the rest is the writing's.
    """
    until = _monotonic() + 0.8 * times[1] if times else None
    running = _stop_student_threads() if namespace is None else []  # first: nothing may change a value from now on
    _makedirs(root, exist_ok=True)
    manifest = {"format": FORMAT, "values": {}, "missing": [], "errors": {},
                "modules": sorted(m for m in _modules if m == "reference" or m.startswith("reference."))}
    if running:
        manifest["threads"] = running[:20]
    # The code the export calls (torch's, the standard library's) imports modules by name: give back the real ones.
    for saved in (_SEAL.get("modules", {}), _T.get("modules", {})):
        _modules.update(saved)
    recorded = None
    if namespace is None:  # the official run: the namespace and the probe as the prelude saw them
        namespace, probe = _SEAL["namespace"], _SEAL.get("probe")
        recorded = _SEAL.get("after_cell")
        if "recorder" in _SEAL and recorded is None:
            recorded = {}  # the notebook removed the grader's record: nothing it holds can be trusted as its own
            manifest["errors"] = {r["name"]: "the notebook removed the grader's record of its values (IPython's "
                                              "post_run_cell event), so nothing can be graded" for r in requests}
    else:
        probe = namespace.get("_grader_probe")
        probe = probe if isinstance(probe, dict) and "RECORDING" in probe else None
    if probe:
        probe["RECORDING"][0] = False  # what the grader's own probes and tracing run is not the student's run
    writer = _Writer(root, probe, frozenset(reuse) if reuse is not None else None)
    for request in requests:
        name = request["name"]
        if request.get("code"):
            seconds = min(times[0], until - _monotonic()) if times else None
            try:  # the grader's own probe, e.g. calling the student's function on public data
                _probe(request["code"], name, namespace, seconds)
            except _ProbeTimeout:
                manifest["errors"][name] = f"{PROBE_TIMEOUT}: still running after {round(max(seconds, 0), 1):g} s"
                continue
            except Exception as e:  # noqa: BLE001 - the student's function failed; report, do not stop
                manifest["errors"][name] = f"{type(e).__name__}: {str(e)[:500]}{_raised_at(e)}"
                continue
        if name in manifest["errors"]:
            continue
        value = namespace.get(name, _GONE) if recorded is None or request.get("code") else recorded.get(name, _GONE)
        if value is _GONE:
            manifest["missing"].append(name)
            continue
        try:
            manifest["values"][name] = encode(value, request, writer)
        except Exception as e:  # noqa: BLE001
            manifest["errors"][name] = f"{type(e).__name__}: {str(e)[:500]}"
    writer.finish()
    tmp = _path_join(root, "manifest.json.tmp")
    with open(tmp, "w") as f:
        f.write(_dumps(manifest))
    _replace(tmp, _path_join(root, "manifest.json"))
    if "write" in _SEAL:  # on the kernel's output channel: a later change of the folder, by anyone, shows
        _SEAL["write"](f"{DIGEST_LINE}{folder_digest(root)}\n")
        _SEAL["flush"]()


def folder_digest(root: str) -> str:
    """SHA-256 over every file under ``root`` (relative path and bytes, in name order); links and others are named."""
    digest = _sha256()

    def walk(folder: str, prefix: str) -> None:
        for entry in sorted(_scandir(folder), key=lambda e: e.name):
            name = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                walk(entry.path, name + "/")
            elif entry.is_file(follow_symlinks=False):
                digest.update(name.encode() + b"\0")
                with open(entry.path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
            else:
                digest.update(b"special:" + name.encode() + b"\0")

    walk(root, "")
    return digest.hexdigest()
