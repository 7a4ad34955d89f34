"""The table of check kinds: one ``@check_kind`` entry per kind, with everything the rest of the grader needs.

An entry carries the kind's function, its parameter schema (types, defaults, which values
are allowed, which parameters name exports) and the feedback figure drawn from its
``details``, if any. A spec's check is validated against its entry when the spec loads
(``bind``), so an author's mistake is an error naming the file and the field, never a
failed check a student is told to fix. Example, a whole new kind in one module::

    @check_kind("history_length", history=Param(str, "history", export=True), epochs=Param(int))
    def history_length(ctx, history, epochs):
        \"\"\"The run recorded exactly ``epochs`` epochs.\"\"\"
        n = len(ctx.value(history, "dict").get("train_loss", []))
        return Outcome(n == epochs, f"`{history}` records {n} epochs (expected {epochs}).")
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from grader.checks.base import CheckContext, CheckFailed, Outcome
from grader.results import CheckResult
from grader.specs.spec import CheckSpec, ExerciseSpec
from grader.specs.toml import SpecError, is_instance, type_names

REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One parameter of a check kind, as a spec's ``[checks.params]`` gives it."""

    types: type | tuple[type, ...]
    default: Any = REQUIRED
    doc: str = ""
    export: bool = False  # the value names one of the spec's [[exports]]
    of: type | tuple[type, ...] | None = None  # for lists: the type of every item
    choices: Callable[[], Iterable] | None = None  # the allowed values, computed when a spec is validated
    check: Callable[[Any], str | None] | None = None  # further validation: the problem, or None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, in an author's terms; None when it is."""
        if not is_instance(value, self.types):
            return f"expected {type_names(self.types)}, got {value!r}"
        if self.of is not None and not all(is_instance(item, self.of) for item in value):
            return f"expected a list of {_plural(self.of)}, got {value!r}"
        if self.choices is not None:
            allowed = sorted(map(str, self.choices()))
            if str(value) not in allowed:
                return f"expected one of {', '.join(allowed)}, got {value!r}"
        return self.check(value) if self.check is not None else None

    def describe(self) -> str:
        """One line for the README's list of kinds."""
        kind = "the name of an export" if self.export else type_names(self.types)
        kind += f" of {_plural(self.of)}" if self.of else ""
        default = "required" if self.default is REQUIRED else f"default `{self.default!r}`"
        return f"{kind}, {default}" + (f" — {self.doc}" if self.doc else "")


def _plural(types: type | tuple[type, ...]) -> str:
    names = {int: "integers", float: "numbers", str: "strings", list: "lists", dict: "tables", bool: "booleans"}
    types = types if isinstance(types, tuple) else (types,)
    return "numbers" if float in types else " or ".join(names.get(t, t.__name__) for t in types)


@dataclass(frozen=True)
class CheckKind:
    name: str
    fn: Callable[..., Outcome]
    params: dict[str, Param]
    doc: str = ""
    figure: str | None = None  # the feedback figure drawn from this kind's details (grader.render.figures.FIGURES)


REGISTRY: dict[str, CheckKind] = {}


def check_kind(name: str, *, figure: str | None = None, **params: Param) -> Callable:
    """Register a check function under ``name`` with its parameter schema (and its figure, if it has one)."""

    def register(fn: Callable[..., Outcome]) -> Callable[..., Outcome]:
        if name in REGISTRY and REGISTRY[name].fn is not fn:
            raise ValueError(f"check kind {name!r} is registered twice ({REGISTRY[name].fn.__module__}, {fn.__module__})")
        REGISTRY[name] = CheckKind(name, fn, params, (fn.__doc__ or "").strip().splitlines()[0], figure)
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
            if fraction > 0:  # only then does the gate change the points (a message may speak of a share)
                message = f"Not credited until `{blocked_by}` passes. {message}"
            fraction = 0.0
        return CheckResult(id=self.spec.id, passed=outcome.passed and not blocked_by,
                           points=round(self.spec.points * max(0.0, min(1.0, fraction)), 4),
                           max_points=self.spec.points, visibility=self.spec.visibility, message=message,
                           title=self.spec.title, kind=self.kind.name, metrics=outcome.metrics,
                           details=outcome.details)


def bind(spec: CheckSpec, exercise: ExerciseSpec, index: int) -> BoundCheck:
    """Validate one check's kind and parameters; SpecError names the file and field."""
    where = f"checks[{index}]"
    kind = REGISTRY.get(spec.kind)
    if kind is None:
        raise SpecError.at(exercise.path, f"{where}.kind",
                           f"expected one of {', '.join(sorted(REGISTRY))}, got {spec.kind!r}")
    exports = {e.name for e in exercise.exports}
    params = {}
    for name, param in kind.params.items():
        if name not in spec.params:
            if param.default is REQUIRED:
                raise SpecError.at(exercise.path, f"{where}.params.{name}",
                                   f"required ({param.doc or type_names(param.types)})")
            value = param.default
        else:
            value = spec.params[name]
            problem = param.problem(value)
            if problem:
                raise SpecError.at(exercise.path, f"{where}.params.{name}", problem)
        if param.export and value and value not in exports:
            raise SpecError.at(exercise.path, f"{where}.params.{name}",
                               f"refers to export {value!r}, which [[exports]] lacks")
        params[name] = value
    unknown = sorted(set(spec.params) - set(kind.params))
    if unknown:
        raise SpecError.at(exercise.path, f"{where}.params.{unknown[0]}",
                           f"unknown parameter for {spec.kind} (expected one of {', '.join(kind.params)})")
    return BoundCheck(spec, kind, params)


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


def kinds_markdown() -> str:
    """The README's list of check kinds and their parameters, generated from the registry (``grader exercises --kinds``)."""
    lines = []
    for name in sorted(REGISTRY):
        kind = REGISTRY[name]
        lines.append(f"- `{name}`: {kind.doc}")
        lines += [f"  - `{p}`: {param.describe()}" for p, param in kind.params.items()]
    return "\n".join(lines)
