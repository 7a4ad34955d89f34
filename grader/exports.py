"""Load what the kernel exported, in the grader's process, with safe loaders only.

The manifest is JSON; models are rebuilt by ``model_graph.load_model``; schedulers,
optimizers and loaders arrive as plain descriptions. A value that could not be
exported or loaded becomes an ``ExportProblem`` carrying a message for the student,
so one broken model in a dict does not hide the others.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field
from typing import Any

import torch

from .kernel_export import FORMAT
from .model_graph import LoadedModel, ModelLoadError, load_model

MAX_MANIFEST_BYTES = 32 * 2**20


@dataclass(frozen=True)
class ExportProblem:
    message: str


@dataclass(frozen=True)
class Opaque:
    """A value of a type the exporter could not turn into data (shown by its repr)."""

    type_name: str
    text: str


@dataclass(frozen=True)
class OptimizerExport:
    cls: str
    module: str
    param_groups: tuple[dict, ...]
    defaults: dict


@dataclass(frozen=True)
class SchedulerExport:
    cls: str
    module: str
    state: dict
    optimizer: OptimizerExport | None


@dataclass(frozen=True)
class LoaderExport:
    batch_size: int | None
    shuffle: bool
    sampler: str | None
    drop_last: bool
    dataset_class: str
    dataset_len: int | None
    transform: str


@dataclass(frozen=True)
class FunctionExport:
    name: str
    module: str
    source: str


@dataclass
class Exports:
    values: dict[str, Any] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    problems: dict[str, str] = field(default_factory=dict)  # name -> why it is unusable
    modules: tuple[str, ...] = ()  # reference.* modules the kernel had imported
    found: bool = False  # a manifest was written at all

    @classmethod
    def unavailable(cls, reason: str) -> Exports:
        return cls(problems={"*": reason})


def _optimizer(data: dict) -> OptimizerExport:
    return OptimizerExport(str(data.get("class", "")), str(data.get("module", "")),
                           tuple(g for g in data.get("param_groups", []) if isinstance(g, dict)),
                           data.get("defaults") if isinstance(data.get("defaults"), dict) else {})


def _decode(value: Any, folder: pathlib.Path, models: dict[str, LoadedModel | ExportProblem]) -> Any:
    if isinstance(value, list):
        return [_decode(v, folder, models) for v in value]
    if not isinstance(value, dict):
        return value
    if "$model" in value:
        key = str(value["$model"])
        if key not in models:
            if not key.isdigit():
                models[key] = ExportProblem("the model's export is malformed")
            else:
                try:
                    models[key] = load_model(folder / "models" / key)
                except ModelLoadError as e:
                    models[key] = ExportProblem(str(e))
        return models[key]
    if "$dict" in value:
        pairs = value["$dict"] if isinstance(value["$dict"], list) else []
        return {_key(p[0]): _decode(p[1], folder, models) for p in pairs if isinstance(p, list) and len(p) == 2}
    if "$float" in value:
        return float(value["$float"]) if value["$float"] in ("nan", "inf", "-inf") else float("nan")
    if "$tensor" in value:
        t = value["$tensor"]
        return torch.tensor(_plain(t.get("data", [])), dtype=torch.float64).reshape(t.get("shape", [-1]))
    if "$scheduler" in value:
        s = value["$scheduler"]
        optimizer = _optimizer(s["optimizer"]) if isinstance(s.get("optimizer"), dict) else None
        state = _plain(s.get("state", {}))
        return SchedulerExport(str(s.get("class", "")), str(s.get("module", "")), state if isinstance(state, dict) else {},
                               optimizer)
    if "$optimizer" in value:
        return _optimizer(_plain(value["$optimizer"]))
    if "$loader" in value:
        d = value["$loader"]
        return LoaderExport(d.get("batch_size"), bool(d.get("shuffle")), d.get("sampler"), bool(d.get("drop_last")),
                            str(d.get("dataset_class", "")), d.get("dataset_len"), str(d.get("transform", "")))
    if "$function" in value:
        f = value["$function"]
        return FunctionExport(str(f.get("name", "")), str(f.get("module", "")), str(f.get("source", "")))
    if "$error" in value:
        return ExportProblem(str(value["$error"]))
    if "$repr" in value:
        return Opaque(str(value.get("$type", "")), str(value["$repr"]))
    return {str(k): _decode(v, folder, models) for k, v in value.items()}


def _plain(value: Any) -> Any:
    """Decode the plain-data subset (dicts, floats) of scheduler and optimizer state."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        if "$dict" in value:
            return {_key(p[0]): _plain(p[1]) for p in value["$dict"] if isinstance(p, list) and len(p) == 2}
        if "$float" in value:
            return float(value["$float"]) if value["$float"] in ("nan", "inf", "-inf") else float("nan")
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
    models: dict[str, LoadedModel | ExportProblem] = {}
    values = manifest.get("values") if isinstance(manifest.get("values"), dict) else {}
    exports = Exports(found=True)
    for name, value in values.items():
        decoded = _decode(value, folder, models)
        exports.values[str(name)] = decoded
    exports.missing = {str(n) for n in manifest.get("missing", []) if isinstance(n, str)}
    errors = manifest.get("errors") if isinstance(manifest.get("errors"), dict) else {}
    exports.problems.update({str(k): str(v)[:1000] for k, v in errors.items()})
    exports.modules = tuple(str(m) for m in manifest.get("modules", []) if isinstance(m, str))
    return exports
