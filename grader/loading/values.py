"""The values the grader loads from an export folder, as plain data the checks can read.

Torch-free on purpose: the check library and spec validation name these types without
paying for torch. A model is ``grader.loading.model_graph.LoadedModel``, a ``ModelValue``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ModelValue:
    """Base of every loaded model, so torch-free code can recognise one (``isinstance(v, ModelValue)``)."""


@dataclass(frozen=True)
class ExportProblem:
    message: str
    captured: bool = False  # the kernel could not capture the model, or the grader cannot run what it captured


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
    steps: int | None = None  # optimizer.step() calls the kernel's probe counted; None when not recorded
    state_steps: tuple = ()  # the distinct per-parameter ``step`` counts in its state (Adam and friends)
    stepped_under_scheduler: bool | None = None  # step() ran after a scheduler was made on it (torch's record)

    def step_count(self) -> int | None:
        """Its step() calls: the probe's count, else the largest per-parameter count Adam-like optimizers keep."""
        return self.steps if self.steps is not None else max((int(s) for s in self.state_steps), default=None)


@dataclass(frozen=True)
class SchedulerExport:
    cls: str
    module: str
    state: dict
    optimizer: OptimizerExport | None
    calls: tuple[int, ...] | None = None  # its optimizer's step count at each of its step() calls (the kernel's probe)
    torch_base: str = ""  # the nearest of torch's scheduler classes it is built on (itself, for one of torch's)
    made_at: int = 0  # its optimizer's step count when it was made (the kernel's probe): ``calls`` count on from it

    @property
    def steps_since_made(self) -> tuple[int, ...]:
        """At each of its step() calls, how often its optimizer had stepped since the scheduler was made."""
        return tuple(c - self.made_at for c in self.calls or ())


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
    """Everything loaded from one export folder; ``problems["*"]`` says why there is nothing."""

    values: dict[str, Any] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    problems: dict[str, str] = field(default_factory=dict)  # name -> why it is unusable
    modules: tuple[str, ...] = ()  # reference.* modules the kernel had imported
    found: bool = False  # a manifest was written at all
    refusal: str = ""  # why the grader would not read the export folder at all (grader.loading.guard): an error

    @classmethod
    def unavailable(cls, reason: str) -> Exports:
        return cls(problems={"*": reason})

    @classmethod
    def refused(cls, reason: str) -> Exports:
        """The folder breaks the loader's limits (a link, a pipe, too large, not JSON): the run is an ``error``."""
        return cls(problems={"*": reason}, refusal=reason)
