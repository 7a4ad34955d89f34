"""Load what the kernel exported, in the grader's process, with safe loaders only.

The manifest is JSON; models are rebuilt by ``model_graph.load_model``; schedulers,
optimizers and loaders arrive as plain descriptions. A value that could not be
exported or loaded becomes an ``ExportProblem`` carrying a message for the student,
so one broken model in a dict does not hide the others.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from grader.kernel.kernel_export import FORMAT
from grader.loading.guard import LOAD_LIMITS, ExportBudget, LoadLimits, LoadRefused, read_json, scan_export
from grader.loading.model_graph import LoadedModel, ModelLoadError, ModelRefused, load_model
from grader.loading.values import (
    ExportProblem,
    Exports,
    FunctionExport,
    LoaderExport,
    Opaque,
    OptimizerExport,
    SchedulerExport,
)


def _optimizer(data: dict) -> OptimizerExport:
    steps = data.get("steps")
    state_steps = data.get("state_steps") if isinstance(data.get("state_steps"), list) else []
    return OptimizerExport(str(data.get("class", "")), str(data.get("module", "")),
                           tuple(g for g in data.get("param_groups", []) if isinstance(g, dict)),
                           data.get("defaults") if isinstance(data.get("defaults"), dict) else {},
                           steps if isinstance(steps, int) and not isinstance(steps, bool) else None,
                           tuple(s for s in state_steps if isinstance(s, (int, float)) and not isinstance(s, bool)),
                           under if isinstance(under := data.get("stepped_under_scheduler"), bool) else None)


@dataclass
class _Reader:
    """One export folder being decoded; a model shared by two values is loaded once."""

    folder: pathlib.Path
    budget: ExportBudget = field(default_factory=ExportBudget)  # shared by every file and model of the folder
    models: dict[str, LoadedModel | ExportProblem] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)  # values refused for breaking a limit or the format

    def model(self, key: Any) -> LoadedModel | ExportProblem:
        key = str(key)
        if key not in self.models:
            if not (key.isascii() and key.isdigit() and len(key) < 10):
                self.models[key] = ExportProblem("the model's export is malformed")
            else:
                try:
                    self.models[key] = load_model(self.folder / "models" / key, self.budget)
                except ModelLoadError as e:
                    self.models[key] = ExportProblem(str(e), captured=not isinstance(e, ModelRefused))
                    if isinstance(e, ModelRefused):
                        self.refusals.append(str(e))
        return self.models[key]

    def decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        tag = next((k for k in value if k in DECODERS), None)
        if tag is None:
            return {str(k): self.decode(v) for k, v in value.items()}
        return DECODERS[tag](self, value[tag], value)


def _scheduler(reader: _Reader, s: Any, _: dict) -> SchedulerExport:
    s = s if isinstance(s, dict) else {}
    optimizer = _optimizer(s["optimizer"]) if isinstance(s.get("optimizer"), dict) else None
    state = _plain(s.get("state", {}))
    calls = s.get("calls")
    calls = tuple(c for c in calls[:1000] if type(c) is int) if isinstance(calls, list) else None
    base, made = s.get("torch_base"), s.get("made_at")
    return SchedulerExport(str(s.get("class", "")), str(s.get("module", "")), state if isinstance(state, dict) else {},
                           optimizer, calls, base if isinstance(base, str) else "",
                           made if type(made) is int and made >= 0 else 0)


def _loader(reader: _Reader, d: Any, _: dict) -> LoaderExport:
    d = d if isinstance(d, dict) else {}
    return LoaderExport(d.get("batch_size"), bool(d.get("shuffle")), d.get("sampler"), bool(d.get("drop_last")),
                        str(d.get("dataset_class", "")), d.get("dataset_len"), str(d.get("transform", "")))


def _function(reader: _Reader, f: Any, _: dict) -> FunctionExport:
    f = f if isinstance(f, dict) else {}
    return FunctionExport(str(f.get("name", "")), str(f.get("module", "")), str(f.get("source", "")))


def _tensor(reader: _Reader, t: Any, _: dict) -> torch.Tensor | ExportProblem:
    t = t if isinstance(t, dict) else {}
    data, shape = _plain(t.get("data", [])), t.get("shape", [-1])
    if not isinstance(data, list) or not all(isinstance(v, (int, float)) for v in data):
        return ExportProblem("the exported tensor is malformed: its data is not a flat list of numbers")
    if shape != [-1] and not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)
                              and math.prod(shape) == len(data)):
        return ExportProblem("the exported tensor is malformed: its shape does not fit its data")
    return torch.tensor(data, dtype=torch.float64).reshape(shape)


def _pairs(reader: _Reader, pairs: Any, _: dict) -> dict:
    pairs = pairs if isinstance(pairs, list) else []
    return {_key(p[0]): reader.decode(p[1]) for p in pairs if isinstance(p, list) and len(p) == 2}


# The tags ``kernel_export`` writes, one entry each: ``{"$tag": payload, ...}`` -> the loaded value.
DECODERS: dict[str, Callable[[_Reader, Any, dict], Any]] = {
    "$model": lambda reader, key, _: reader.model(key),
    "$dict": _pairs,
    "$float": lambda reader, text, _: _float(text),
    "$tensor": _tensor,
    "$scheduler": _scheduler,
    "$optimizer": lambda reader, data, _: _optimizer(_plain(data) if isinstance(data, dict) else {}),
    "$loader": _loader,
    "$function": _function,
    "$error": lambda reader, message, _: ExportProblem(str(message), captured=True),
    "$repr": lambda reader, text, value: Opaque(str(value.get("$type", "")), str(text)),
}


def _float(text: Any) -> float:
    return float(text) if text in ("nan", "inf", "-inf") else float("nan")


def _plain(value: Any) -> Any:
    """Decode the plain-data subset (dicts, floats) of scheduler and optimizer state."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        if "$dict" in value:
            pairs = value["$dict"] if isinstance(value["$dict"], list) else []
            return {_key(p[0]): _plain(p[1]) for p in pairs if isinstance(p, list) and len(p) == 2}
        if "$float" in value:
            return _float(value["$float"])
        if "$tensor" in value:
            tensor = value["$tensor"]
            return _plain(tensor.get("data", []) if isinstance(tensor, dict) else [])
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _key(key: Any) -> Any:
    return key if isinstance(key, (str, int, float, bool)) or key is None else str(key)


def _decoded(reader: _Reader, value: Any) -> Any:
    """One exported value; whatever breaks while decoding it stays local to it, with the reason."""
    try:
        return reader.decode(value)
    except Exception as e:  # noqa: BLE001 - the value is the student's data: any structure it breaks is malformed
        reader.refusals.append(f"an exported value is malformed ({type(e).__name__})")
        return ExportProblem(reader.refusals[-1])


def _strings(items: Any) -> list[str]:
    return [str(item) for item in items if isinstance(item, str)] if isinstance(items, list) else []


def _manifest(folder: pathlib.Path, budget: ExportBudget) -> dict | str:
    """The manifest, or why there is none the grader reads (the folder listed first, nothing followed or opened)."""
    if folder.is_symlink():
        return "the export folder contains symbolic links, which the grader does not follow"
    if not folder.is_dir():
        return "the notebook did not reach the grader's export step"
    try:
        scan_export(folder, budget.limits)
        manifest = read_json(folder / "manifest.json", budget.limits.max_manifest_bytes,
                             "the file of exported values (manifest.json)", budget)
    except FileNotFoundError:
        return "the notebook did not reach the grader's export step"
    except LoadRefused as e:
        return str(e)
    except OSError as e:
        return f"the export folder could not be read ({e.strerror})"
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return "the exported values are in an unknown format"
    return manifest


def load_exports(folder: pathlib.Path, limits: LoadLimits = LOAD_LIMITS, budget: ExportBudget | None = None,
                 models: dict[str, LoadedModel] | None = None) -> Exports:
    """Read ``manifest.json`` and everything it points to; the kernel must be dead by now.

    Never raises for what the folder holds: a folder that breaks ``limits`` (``grader.loading.guard``) is
    ``Exports.refused`` with the reason, and a value that cannot be loaded is an ``ExportProblem``; one refused
    for a limit or a broken format also sets ``refusal``. ``models`` (by folder name) were loaded already, within
    ``budget``, which the rest of the folder then shares.
    """
    budget = budget or ExportBudget(limits)
    manifest = _manifest(folder, budget)
    if isinstance(manifest, str):
        if manifest == "the notebook did not reach the grader's export step":
            return Exports.unavailable(manifest)
        return Exports.refused(manifest)
    reader = _Reader(folder, budget, dict(models or {}))
    values = manifest.get("values") if isinstance(manifest.get("values"), dict) else {}
    exports = Exports(found=True)
    for name, value in values.items():
        exports.values[str(name)] = _decoded(reader, value)
    exports.missing = set(_strings(manifest.get("missing")))
    errors = manifest.get("errors") if isinstance(manifest.get("errors"), dict) else {}
    exports.problems.update({str(k): str(v)[:1000] for k, v in errors.items()})
    exports.modules = tuple(_strings(manifest.get("modules")))
    # The rest is graded, but a refused value makes the run an error, as a breach of the folder's limits does.
    exports.refusal = "; ".join(dict.fromkeys(reader.refusals))[:1000]
    return exports
