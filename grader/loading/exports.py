"""Load what the kernel exported, in the grader's process, with safe loaders only.

The manifest is JSON; models are rebuilt by ``model_graph.load_model``; schedulers,
optimizers and loaders arrive as plain descriptions. A value that could not be
exported or loaded becomes an ``ExportProblem`` carrying a message for the student,
so one broken model in a dict does not hide the others.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from grader.kernel.kernel_export import FORMAT
from grader.loading.model_graph import LoadedModel, ModelLoadError, load_model
from grader.loading.values import (ExportProblem, Exports, FunctionExport, LoaderExport, Opaque, OptimizerExport,
                                   SchedulerExport)

MAX_MANIFEST_BYTES = 32 * 2**20


def _optimizer(data: dict) -> OptimizerExport:
    steps = data.get("steps")
    state_steps = data.get("state_steps") if isinstance(data.get("state_steps"), list) else []
    return OptimizerExport(str(data.get("class", "")), str(data.get("module", "")),
                           tuple(g for g in data.get("param_groups", []) if isinstance(g, dict)),
                           data.get("defaults") if isinstance(data.get("defaults"), dict) else {},
                           steps if isinstance(steps, int) and not isinstance(steps, bool) else None,
                           tuple(s for s in state_steps if isinstance(s, (int, float)) and not isinstance(s, bool)))


@dataclass
class _Reader:
    """One export folder being decoded; a model shared by two values is loaded once."""

    folder: pathlib.Path
    models: dict[str, LoadedModel | ExportProblem] = field(default_factory=dict)

    def model(self, key: Any) -> LoadedModel | ExportProblem:
        key = str(key)
        if key not in self.models:
            if not key.isdigit():
                self.models[key] = ExportProblem("the model's export is malformed")
            else:
                try:
                    self.models[key] = load_model(self.folder / "models" / key)
                except ModelLoadError as e:
                    self.models[key] = ExportProblem(str(e))
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
    return SchedulerExport(str(s.get("class", "")), str(s.get("module", "")), state if isinstance(state, dict) else {},
                           optimizer)


def _loader(reader: _Reader, d: Any, _: dict) -> LoaderExport:
    d = d if isinstance(d, dict) else {}
    return LoaderExport(d.get("batch_size"), bool(d.get("shuffle")), d.get("sampler"), bool(d.get("drop_last")),
                        str(d.get("dataset_class", "")), d.get("dataset_len"), str(d.get("transform", "")))


def _function(reader: _Reader, f: Any, _: dict) -> FunctionExport:
    f = f if isinstance(f, dict) else {}
    return FunctionExport(str(f.get("name", "")), str(f.get("module", "")), str(f.get("source", "")))


def _tensor(reader: _Reader, t: Any, _: dict) -> torch.Tensor:
    t = t if isinstance(t, dict) else {}
    return torch.tensor(_plain(t.get("data", [])), dtype=torch.float64).reshape(t.get("shape", [-1]))


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
    "$error": lambda reader, message, _: ExportProblem(str(message)),
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
            return {_key(p[0]): _plain(p[1]) for p in value["$dict"] if isinstance(p, list) and len(p) == 2}
        if "$float" in value:
            return _float(value["$float"])
        if "$tensor" in value:
            return _plain(value["$tensor"].get("data", []))
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _key(key: Any) -> Any:
    return key if isinstance(key, (str, int, float, bool)) or key is None else str(key)


def _links(folder: pathlib.Path) -> list[pathlib.Path]:
    return [p for p in folder.rglob("*") if p.is_symlink()] if folder.is_dir() else []


def load_exports(folder: pathlib.Path) -> Exports:
    """Read ``manifest.json`` and everything it points to; the kernel must be dead by now."""
    if folder.is_symlink() or _links(folder):
        # A link could point the grader at its own files (secret, gradebook); read nothing.
        return Exports.unavailable("the export folder contains symbolic links, which the grader does not follow")
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return Exports.unavailable("the notebook did not reach the grader's export step")
    if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
        return Exports.unavailable(f"the exported values are larger than {MAX_MANIFEST_BYTES // 2**20} MB")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return Exports.unavailable("the exported values are not valid JSON")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return Exports.unavailable("the exported values are in an unknown format")
    reader = _Reader(folder)
    values = manifest.get("values") if isinstance(manifest.get("values"), dict) else {}
    exports = Exports(found=True)
    for name, value in values.items():
        exports.values[str(name)] = reader.decode(value)
    exports.missing = {str(n) for n in manifest.get("missing", []) if isinstance(n, str)}
    errors = manifest.get("errors") if isinstance(manifest.get("errors"), dict) else {}
    exports.problems.update({str(k): str(v)[:1000] for k, v in errors.items()})
    exports.modules = tuple(str(m) for m in manifest.get("modules", []) if isinstance(m, str))
    return exports
