"""The check library's base: each kind is a pure function ``(ctx, **params) -> Outcome``.

The base does everything else: parameter validation when a spec loads, points and
partial credit, visibility, ``requires`` gating, and turning a missing or mistyped
export into a message that says what the notebook must define.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..exports import ExportProblem, Exports, FunctionExport, LoaderExport, Opaque, OptimizerExport, SchedulerExport
from ..model_graph import LoadedModel
from ..results import CheckResult
from ..spec import EXPORT_KINDS, CheckSpec, ExerciseSpec, SpecError

REQUIRED = object()


@dataclass(frozen=True)
class Param:
    types: type | tuple[type, ...]
    default: Any = REQUIRED
    doc: str = ""


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str
    fraction: float | None = None  # share of the points earned; defaults to 1 if passed else 0
    metrics: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)


class CheckFailed(Exception):
    """Raised inside a check to fail it with a message for the student."""

    def __init__(self, message: str, metrics: dict | None = None, details: dict | None = None) -> None:
        super().__init__(message)
        self.message, self.metrics, self.details = message, metrics or {}, details or {}


@dataclass(frozen=True)
class CheckContext:
    """Everything a check may look at; nothing in it comes from the kernel unverified."""

    exercise: ExerciseSpec
    exports: Exports
    code_cells: tuple[tuple[int, str], ...]
    data: Any  # grader.datasets.DataFactory
    check_id: str = ""
    run_error: str = ""  # why the notebook's run ended badly, if it did: often why a value is missing

    def _because(self) -> str:
        return f" Your notebook hit an error before this: {self.run_error}." if self.run_error else ""

    def value(self, name: str, kind: str | None = None) -> Any:
        """The export ``name``, checked against its declared kind; raises CheckFailed with what to define."""
        spec = next((e for e in self.exercise.exports if e.name == name), None)
        kind = kind or (spec.kind if spec else None)
        described = spec.describe() if spec else f"`{name}`"
        if not self.exports.found:
            raise CheckFailed(f"Not graded: {self.exports.problems.get('*', 'no values were exported')}, "
                              f"so {described} could not be checked.")
        if name in self.exports.problems:
            if spec is not None and spec.code:  # the grader's own call of the student's code failed
                raise CheckFailed(f"When the grader ran {spec.doc or name}, it raised {self.exports.problems[name]}")
            raise CheckFailed(f"`{name}` could not be handed to the grader: {self.exports.problems[name]}")
        if name not in self.exports.values:
            raise CheckFailed(f"Your notebook must define {described}. "
                              f"It was not defined when the notebook finished running.{self._because()}")
        value = self.exports.values[name]
        if isinstance(value, ExportProblem):
            raise CheckFailed(f"`{name}` could not be handed to the grader: {value.message}")
        if kind and not matches_kind(value, kind):
            raise CheckFailed(f"`{name}` must be {EXPORT_KINDS[kind]}, but it is {describe(value)}.")
        if isinstance(value, (dict, list)) and not value:
            # The notebooks hand out empty containers to fill; empty means the work is not done yet.
            raise CheckFailed(f"`{name}` is still empty: your notebook must fill it ({spec.doc if spec else name})."
                              + self._because())
        return value


def not_a_model(value: Any) -> str:
    """Why ``value`` cannot be scored as a model, for a message: its export problem, or what it is instead."""
    if isinstance(value, ExportProblem):
        return value.message
    hint = (": store the model itself (the first item your training function returns)"
            if isinstance(value, (Opaque, list, dict)) else "")
    return f"it is {describe(value)}, not a model{hint}"


def describe(value: Any) -> str:
    if isinstance(value, Opaque):
        return f"a {value.type_name or 'value'} object"
    names = {LoadedModel: "a model", SchedulerExport: "a scheduler", OptimizerExport: "an optimizer",
             LoaderExport: "a DataLoader", FunctionExport: "a function", dict: "a dict", list: "a list",
             str: "a string", bool: "a boolean", type(None): "None"}
    for t, name in names.items():
        if isinstance(value, t):
            return name
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return f"a {type(value).__name__}"


def matches_kind(value: Any, kind: str) -> bool:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {
        "model": isinstance(value, LoadedModel),
        "model_dict": isinstance(value, dict),
        "scheduler": isinstance(value, SchedulerExport),
        "scheduler_dict": isinstance(value, dict),
        "optimizer": isinstance(value, OptimizerExport),
        "dataloader": isinstance(value, LoaderExport),
        "number": is_number,
        "integer": is_number and float(value).is_integer(),
        "list": isinstance(value, list),
        "dict": isinstance(value, dict),
        "function": isinstance(value, FunctionExport),
    }.get(kind, True)


@dataclass(frozen=True)
class CheckKind:
    name: str
    fn: Callable[..., Outcome]
    params: dict[str, Param]
    doc: str = ""


REGISTRY: dict[str, CheckKind] = {}


def check_kind(name: str, **params: Param) -> Callable:
    """Register a check function under ``name`` with its parameter schema."""

    def register(fn: Callable[..., Outcome]) -> Callable[..., Outcome]:
        REGISTRY[name] = CheckKind(name, fn, params, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return register


@dataclass(frozen=True)
class BoundCheck:
    """A check from a spec, with its parameters validated."""

    spec: CheckSpec
    kind: CheckKind
    params: dict

    def evaluate(self, ctx: CheckContext) -> Outcome:
        try:
            outcome = self.kind.fn(ctx, **self.params)
        except CheckFailed as e:
            outcome = Outcome(False, e.message, metrics=e.metrics, details=e.details)
        except Exception as e:  # noqa: BLE001 - one broken check never stops grading
            tail = traceback.format_exc(limit=-2).strip().splitlines()[-1]
            outcome = Outcome(False, f"The grader could not evaluate this check ({type(e).__name__}: {e}). "
                              "Check that your exported values have the expected form.", details={"grader_error": tail})
        return outcome

    def result(self, outcome: Outcome, blocked_by: str | None = None) -> CheckResult:
        fraction = outcome.fraction if outcome.fraction is not None else float(outcome.passed)
        message = outcome.message
        if blocked_by:
            fraction = 0.0
            if outcome.passed:  # only then does the gate change the verdict
                message = f"Not credited until `{blocked_by}` passes. {message}"
        return CheckResult(id=self.spec.id, passed=outcome.passed and not blocked_by,
                           points=round(self.spec.points * max(0.0, min(1.0, fraction)), 4),
                           max_points=self.spec.points, visibility=self.spec.visibility, message=message,
                           title=self.spec.title, metrics=outcome.metrics, details=outcome.details)


def bind(spec: CheckSpec, exercise: ExerciseSpec, index: int) -> BoundCheck:
    """Validate one check's kind and parameters; SpecError names the file and field."""
    where = f"checks[{index}]"
    kind = REGISTRY.get(spec.kind)
    if kind is None:
        raise SpecError.at(exercise.path, f"{where}.kind",
                           f"expected one of {', '.join(sorted(REGISTRY))}, got {spec.kind!r}")
    params = {}
    for name, param in kind.params.items():
        if name in spec.params:
            value = spec.params[name]
            if isinstance(value, bool) and bool not in _tuple(param.types) or not isinstance(value, param.types):
                raise SpecError.at(exercise.path, f"{where}.params.{name}",
                                   f"expected {_names(param.types)}, got {value!r}")
            params[name] = value
        elif param.default is REQUIRED:
            raise SpecError.at(exercise.path, f"{where}.params.{name}", f"required ({param.doc or _names(param.types)})")
        else:
            params[name] = param.default
    unknown = sorted(set(spec.params) - set(kind.params))
    if unknown:
        raise SpecError.at(exercise.path, f"{where}.params.{unknown[0]}",
                           f"unknown parameter for {spec.kind} (expected one of {', '.join(kind.params)})")
    for name in _export_names(params):
        if name not in {e.name for e in exercise.exports}:
            raise SpecError.at(exercise.path, f"{where}.params", f"refers to export {name!r}, which [[exports]] lacks")
    return BoundCheck(spec, kind, params)


def _export_names(params: dict) -> Iterable[str]:
    for key in ("model", "models", "export", "value", "history", "best_epoch", "results", "run"):
        if isinstance(params.get(key), str) and params[key]:
            yield params[key]


def _tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _names(types) -> str:
    return " or ".join(t.__name__ for t in _tuple(types))


def run_checks(checks: list[BoundCheck], ctx: CheckContext, include_hidden: bool) -> list[CheckResult]:
    """Evaluate the checks in spec order, applying ``requires`` gates."""
    results: dict[str, CheckResult] = {}
    for check in checks:
        if check.spec.visibility == "hidden" and not include_hidden:
            continue
        outcome = check.evaluate(dataclasses.replace(ctx, check_id=check.spec.id))
        blocked = next((r for r in check.spec.requires if r in results and not results[r].passed), None)
        results[check.spec.id] = check.result(outcome, blocked)
    return list(results.values())
