"""Exercise specs: ``exercises/<id>/spec.toml``, parsed and validated on load.

A spec names the values the notebook must define (exports), the checks with their
points and visibility, and the sandbox limits. Every error names the file and the
field, e.g. ``exercises/tiny-model/spec.toml: checks[2].points: expected a
non-negative number, got 'four'``.
"""

from __future__ import annotations

import pathlib
import tomllib
from dataclasses import dataclass, field, fields
from typing import Any

EXPORT_KINDS = {
    "model": "a torch.nn.Module",
    "model_dict": "a dict of torch.nn.Module",
    "scheduler": "a torch LR scheduler",
    "scheduler_dict": "a dict of torch LR schedulers",
    "optimizer": "a torch optimizer",
    "dataloader": "a torch DataLoader",
    "number": "a number",
    "integer": "a whole number",
    "list": "a list",
    "dict": "a dict",
    "function": "a function",
}
VISIBILITIES = ("public", "hidden")


class SpecError(ValueError):
    """A spec file that cannot be used; the message names the file and the field."""

    @classmethod
    def at(cls, path: pathlib.Path | str, where: str, problem: str) -> SpecError:
        return cls(f"{path}: {where}: {problem}")


@dataclass(frozen=True)
class Limits:
    """Sandbox limits for one submission; every value can be set per exercise."""

    cell_timeout_s: float = 120.0  # one student cell
    total_timeout_s: float = 600.0  # all student cells together
    export_timeout_s: float = 120.0  # the grader's export cell, on top of the total
    memory_mb: int = 4096  # address space (RLIMIT_AS); torch alone maps about 0.7 GB
    max_processes: int = 64  # processes of the sandbox user (RLIMIT_NPROC)
    max_file_mb: int = 256  # largest file the kernel may write (RLIMIT_FSIZE)
    max_open_files: int = 512
    max_output_kb: int = 256  # stored cell output, whole notebook


@dataclass(frozen=True)
class ExportSpec:
    name: str
    kind: str
    doc: str = ""
    input_shape: tuple[int, ...] | None = None  # per-sample input shape, for models
    optional: bool = False
    # Code the grader runs in the kernel after the student's cells to produce this value, e.g. a call
    # of the student's function on public data the grader makes. Hidden data never goes here.
    code: str = ""

    def describe(self) -> str:
        """What the notebook must define, in a student's terms."""
        what = EXPORT_KINDS[self.kind]
        return f"`{self.name}` ({what}{': ' + self.doc if self.doc else ''})"


@dataclass(frozen=True)
class CheckSpec:
    id: str
    kind: str
    points: float
    visibility: str = "public"
    title: str = ""
    requires: tuple[str, ...] = ()  # checks that must pass for this one to earn points
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExerciseSpec:
    id: str
    title: str
    path: pathlib.Path  # the spec file
    notebook: str
    exports: tuple[ExportSpec, ...]
    checks: tuple[CheckSpec, ...]
    limits: Limits = Limits()
    source: str = ""  # where in the course it comes from
    static: dict = field(default_factory=dict)  # settings for static code checks
    feedback: dict = field(default_factory=dict)  # which plots the feedback page shows (see grader/artifacts.py)
    data_root: bool = False  # mount the MNIST root read-only for the kernel

    @property
    def folder(self) -> pathlib.Path:
        return self.path.parent

    @property
    def notebook_path(self) -> pathlib.Path:
        return self.folder / self.notebook

    def export(self, name: str) -> ExportSpec:
        return next(e for e in self.exports if e.name == name)

    def public_checks(self) -> tuple[CheckSpec, ...]:
        return tuple(c for c in self.checks if c.visibility == "public")

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.checks)


# --- parsing -------------------------------------------------------------------


class _Table:
    """A TOML table with typed getters that raise SpecError naming file and field."""

    def __init__(self, data: dict, path: pathlib.Path, where: str) -> None:
        self.data, self.path, self.where = data, path, where
        self.used: set[str] = set()

    def _fail(self, key: str, problem: str) -> SpecError:
        return SpecError.at(self.path, f"{self.where}{key}" if self.where else key, problem)

    def get(self, key: str, types: type | tuple[type, ...], default: Any = ..., expected: str = "") -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self._fail(key, "required field is missing")
            return default
        value = self.data[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
            raise self._fail(key, f"expected {expected or _type_names(types)}, got {value!r}")
        return value

    def number(self, key: str, default: Any = ..., minimum: float = 0.0) -> float:
        value = self.get(key, (int, float), default, expected="a non-negative number")
        if value is not default and value < minimum:
            raise self._fail(key, f"expected a number >= {minimum}, got {value!r}")
        return value

    def choice(self, key: str, options, default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value not in options:
            raise self._fail(key, f"expected one of {', '.join(sorted(options))}, got {value!r}")
        return value

    def table(self, key: str) -> _Table:
        return _Table(self.get(key, dict, {}), self.path, f"{self.where}{key}.")

    def tables(self, key: str) -> list[_Table]:
        items = self.get(key, list, [])
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self._fail(f"{key}[{i}]", f"expected a table, got {item!r}")
            out.append(_Table(item, self.path, f"{self.where}{key}[{i}]."))
        return out

    def reject_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self._fail(unknown[0], "unknown field (a typo?)")


def _as_tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _type_names(types) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list",
             dict: "a table"}
    return " or ".join(names.get(t, t.__name__) for t in _as_tuple(types))


def _limits(table: _Table) -> Limits:
    defaults = Limits()
    values = {}
    for f in fields(Limits):
        minimum = 1.0 if f.name != "max_output_kb" else 0.0
        value = table.number(f.name, getattr(defaults, f.name), minimum=minimum)
        values[f.name] = type(getattr(defaults, f.name))(value)
    table.reject_unknown()
    return Limits(**values)


def _export(table: _Table) -> ExportSpec:
    shape = table.get("input_shape", list, None)
    if shape is not None and not all(isinstance(n, int) and n > 0 for n in shape):
        raise table._fail("input_shape", f"expected a list of positive integers, got {shape!r}")
    spec = ExportSpec(
        name=table.get("name", str),
        kind=table.choice("kind", EXPORT_KINDS),
        doc=table.get("doc", str, ""),
        input_shape=tuple(shape) if shape else None,
        optional=table.get("optional", bool, False),
        code=table.get("code", str, ""),
    )
    if not spec.name.isidentifier():
        raise table._fail("name", f"expected a Python variable name, got {spec.name!r}")
    if spec.kind in ("model", "model_dict") and spec.input_shape is None:
        raise table._fail("input_shape", "required for models (the shape of one input sample, e.g. [2])")
    table.reject_unknown()
    return spec


def _feedback(table: _Table) -> dict:
    out = {"boundary_data": table.get("boundary_data", dict, {}), "models": table.get("models", list, []),
           "curves": table.get("curves", list, [])}
    table.reject_unknown()
    return out


def _check(table: _Table) -> CheckSpec:
    spec = CheckSpec(
        id=table.get("id", str),
        kind=table.get("kind", str),
        points=table.number("points"),
        visibility=table.choice("visibility", VISIBILITIES, "public"),
        title=table.get("title", str, ""),
        requires=tuple(table.get("requires", list, [])),
        params=table.get("params", dict, {}),
    )
    table.reject_unknown()
    return spec


def parse_spec(path: pathlib.Path) -> ExerciseSpec:
    """Read and validate one spec file (structure only; check parameters are validated by their kinds)."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise SpecError(f"{path}: cannot be read: {e.strerror}") from None
    top = _Table(data, path, "")
    exports = tuple(_export(t) for t in top.tables("exports"))
    checks = tuple(_check(t) for t in top.tables("checks"))
    spec = ExerciseSpec(
        id=top.get("id", str),
        title=top.get("title", str),
        path=path,
        notebook=top.get("notebook", str, f"{data.get('id', path.parent.name)}.ipynb"),
        exports=exports,
        checks=checks,
        limits=_limits(top.table("limits")),
        source=top.get("source", str, ""),
        static=top.get("static", dict, {}),
        feedback=_feedback(top.table("feedback")),
        data_root=top.get("data_root", bool, False),
    )
    top.reject_unknown()
    _cross_check(spec, path)
    return spec


def _cross_check(spec: ExerciseSpec, path: pathlib.Path) -> None:
    if spec.id != path.parent.name:
        raise SpecError.at(path, "id", f"expected the folder name {path.parent.name!r}, got {spec.id!r}")
    names = [e.name for e in spec.exports]
    ids = [c.id for c in spec.checks]
    for label, seen in (("exports", names), ("checks", ids)):
        dupes = sorted({n for n in seen if seen.count(n) > 1})
        if dupes:
            raise SpecError.at(path, label, f"duplicate name {dupes[0]!r}")
    if not spec.checks:
        raise SpecError.at(path, "checks", "an exercise needs at least one check")
    for i, check in enumerate(spec.checks):
        for required in check.requires:
            if required not in ids or ids.index(required) >= i:
                raise SpecError.at(path, f"checks[{i}].requires",
                                   f"expected ids of earlier checks, got {required!r}")
