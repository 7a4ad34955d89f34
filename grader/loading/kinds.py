"""The export kinds a spec may declare, one entry each: how messages name them and which loaded values fit.

Adding a kind of value the kernel already hands over (a number, a dict of models) is one
entry here. A new kind of *object* also needs its encoder in ``grader.kernel.kernel_export``
and its decoder in ``grader.loading.exports.DECODERS``, the two halves of the boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grader.loading.values import FunctionExport, LoaderExport, ModelValue, OptimizerExport, SchedulerExport


@dataclass(frozen=True)
class ExportKind:
    doc: str  # how a message names a value of this kind: "a torch.nn.Module"
    accepts: Callable[[Any], bool]  # whether a loaded value is of this kind
    needs_input_shape: bool = False  # models: the kernel captures forward() on an example input of this shape


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def whole_number(value: Any) -> bool:
    """A number with no fractional part, such as 27 or 27.0 (never a bool)."""
    return _number(value) and float(value).is_integer()


EXPORT_KINDS: dict[str, ExportKind] = {
    "model": ExportKind("a torch.nn.Module", lambda v: isinstance(v, ModelValue), needs_input_shape=True),
    "model_dict": ExportKind("a dict of torch.nn.Module", lambda v: isinstance(v, dict), needs_input_shape=True),
    "scheduler": ExportKind("a torch LR scheduler", lambda v: isinstance(v, SchedulerExport)),
    "scheduler_dict": ExportKind("a dict of torch LR schedulers", lambda v: isinstance(v, dict)),
    "optimizer": ExportKind("a torch optimizer", lambda v: isinstance(v, OptimizerExport)),
    "dataloader": ExportKind("a torch DataLoader", lambda v: isinstance(v, LoaderExport)),
    "number": ExportKind("a number", _number),
    "integer": ExportKind("a whole number", whole_number),
    "list": ExportKind("a list", lambda v: isinstance(v, list)),
    "dict": ExportKind("a dict", lambda v: isinstance(v, dict)),
    "function": ExportKind("a function", lambda v: isinstance(v, FunctionExport)),
}
