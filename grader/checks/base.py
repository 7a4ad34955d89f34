"""What a check kind works with: its context (the loaded values), its outcome, and its way to fail.

A check kind is a pure function ``(ctx, **params) -> Outcome`` registered in
``grader.checks.registry``. ``CheckContext.value`` turns a missing or mistyped export into
a message that says what the notebook must define, so a check kind only compares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grader.loading.kinds import EXPORT_KINDS
from grader.loading.values import (ExportProblem, Exports, FunctionExport, LoaderExport, ModelValue, Opaque,
                                   OptimizerExport, SchedulerExport)
from grader.specs.spec import ExerciseSpec, ExportSpec


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


def describe_export(spec: ExportSpec) -> str:
    """What the notebook must define, in a student's terms."""
    what = EXPORT_KINDS[spec.kind].doc
    return f"`{spec.name}` ({what}{': ' + spec.doc if spec.doc else ''})"


@dataclass(frozen=True)
class CheckContext:
    """Everything a check may look at; nothing in it comes from the kernel unverified."""

    exercise: ExerciseSpec
    exports: Exports
    code_cells: tuple[tuple[int, str], ...]
    data: Any  # grader.checks.data.DataFactory
    check_id: str = ""
    run_error: str = ""  # why the notebook's run ended badly, if it did: often why a value is missing

    def cut_short(self, measured: str) -> str:
        """``measured`` (what a failing check found in the run), led by the notebook's error where it raised one:
        an error that stopped the training explains counts and scores better than any other cause."""
        if not self.run_error or not measured:
            return measured
        return (f"Your notebook raised an error ({self.run_error.rstrip('.')}), which may have cut its training "
                f"short: fix it first. What the run shows: {measured}")

    def _because(self) -> str:
        return f" Your notebook hit an error before this: {self.run_error.rstrip('.')}." if self.run_error else ""

    def value(self, name: str, kind: str | None = None) -> Any:
        """The export ``name``, checked against its declared kind; raises CheckFailed with what to define."""
        spec = self.exercise.export(name)
        kind = kind or (spec.kind if spec else None)
        described = describe_export(spec) if spec else f"`{name}`"
        if not self.exports.found:
            problem = self.exports.problems.get('*', 'no values were exported')
            raise _missing("*", f"Not graded: {problem}, so {described} could not be checked.", problem)
        if name in self.exports.problems:
            if spec is not None and spec.code:  # the grader's own call of the student's code failed
                raise _missing(name, _probe_failed(spec.doc or name, self.exports.problems[name]))
            raise _missing(name, f"`{name}` could not be handed to the grader: {self.exports.problems[name]}")
        if name not in self.exports.values:
            raise _missing(name, f"Your notebook must define {described}. "
                                 f"It was not defined when the notebook finished running.{self._because()}")
        value = self.exports.values[name]
        if isinstance(value, ExportProblem):
            raise _missing(name, f"`{name}` could not be handed to the grader: {value.message}")
        if kind and not EXPORT_KINDS[kind].accepts(value):
            raise _missing(name, f"`{name}` must be {EXPORT_KINDS[kind].doc}, but it is {describe(value)}.")
        if isinstance(value, (dict, list)) and not value:
            # The notebooks hand out empty containers to fill; empty means the work is not done yet.
            raise _missing(name, f"`{name}` is still empty: your notebook must fill it "
                                 f"({spec.doc if spec else name}).{self._because()}")
        return value

    def function_source(self, name: str) -> str:
        """The source of the exported function ``name``, or "" when there is none to read."""
        value = self.exports.values.get(name) if name else None
        return value.source if isinstance(value, FunctionExport) else ""


def _probe_failed(what: str, problem: str) -> str:
    from grader.kernel.kernel_export import PROBE_TIMEOUT  # here: the fast commands never import torch

    if not problem.startswith(PROBE_TIMEOUT):
        return f"When the grader ran {what}, it raised {problem}"
    return (f"When the grader ran {what}, it had not returned when its time was up ({problem.partition(': ')[2]}), "
            "and was stopped there; the task's own code returns within seconds. A loop that does not end by itself "
            "does this, for example one that goes on past the number of epochs it is given.")


def _missing(name: str, message: str, problem: str = "") -> CheckFailed:
    """A failure caused by one unusable export (``"*"``: by the run), so renderers can say it once for all checks.

    ``details["needs"]`` names the export; ``details["problem"]`` is the text shared by every check it fails.
    """
    return CheckFailed(message, details={"needs": name, "problem": problem or message})


def as_curve(value: Any) -> list | None:
    """One value per epoch as a list: a list, a tuple, or a 1-D tensor or array (``torch.tensor(history)``); None for
    anything else."""
    if getattr(value, "ndim", None) == 1 and hasattr(value, "tolist"):
        return value.tolist()
    return list(value) if isinstance(value, (list, tuple)) else None


def not_a_model(value: Any) -> str:
    """Why ``value`` cannot be scored as a model, for a message: its export problem, or what it is instead."""
    if isinstance(value, ExportProblem):
        return value.message
    hint = (": store the model itself (the first item your training function returns)"
            if isinstance(value, (Opaque, list, dict)) else "")
    return f"it is {describe(value)}, not a model{hint}"


def describe(value: Any) -> str:
    """A loaded value in a student's words: "a model", "the number 3", "a TrainingHistory object"."""
    if isinstance(value, Opaque) and value.type_name == "_IncompatibleKeys":
        return ("what load_state_dict returns (it loads the weights into the model in place and returns only the "
                "keys that did not match: keep the model, not the call's result)")
    if isinstance(value, Opaque):
        return f"a {value.type_name or 'value'} object"
    names = {ModelValue: "a model", SchedulerExport: "a scheduler", OptimizerExport: "an optimizer",
             LoaderExport: "a DataLoader", FunctionExport: "a function", dict: "a dict", list: "a list",
             str: "a string", bool: "a boolean", type(None): "None"}
    for t, name in names.items():
        if isinstance(value, t):
            return name
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return f"a {type(value).__name__}"
