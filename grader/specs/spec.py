"""Exercise specs: ``exercises/<id>/spec.toml``, parsed and validated on load.

A spec names the values the notebook must define (exports), the checks with their
points and visibility, and the sandbox limits. Every error names the file and the
field, e.g. ``exercises/tiny-model/spec.toml: checks[2].points: expected a
non-negative number, got 'four'``. This module checks the structure; what a field
must mean (a known export kind, a check kind's parameters, a data set) is checked
against those tables by ``grader.assignments.catalog`` when it loads the spec.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field, fields

from grader.kernel.limits import Limits
from grader.specs.paths import SPEC_FILE, exercises_root
from grader.specs.toml import SpecError, Table, load_toml

VISIBILITIES = ("public", "hidden")


@dataclass(frozen=True)
class ExportSpec:
    name: str
    kind: str  # a key of grader.loading.kinds.EXPORT_KINDS
    doc: str = ""
    input_shape: tuple[int, ...] | None = None  # per-sample input shape, for models
    optional: bool = False
    # Code the grader runs in the kernel after the student's cells to produce this value, e.g. a call
    # of the student's function on public data the grader makes. Hidden data never goes here.
    code: str = ""

    def request(self) -> dict:
        """What the kernel's export cell is asked for (``grader.kernel.cells.export_source``)."""
        return {"name": self.name, "kind": self.kind, "input_shape": list(self.input_shape or []), "code": self.code}


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
    feedback: dict = field(default_factory=dict)  # which plots the feedback page shows (see grader/grading/artifacts.py)
    data_root: bool = False  # mount the MNIST root read-only for the kernel

    @property
    def folder(self) -> pathlib.Path:
        return self.path.parent

    @property
    def notebook_path(self) -> pathlib.Path:
        return self.folder / self.notebook

    def export(self, name: str) -> ExportSpec | None:
        return next((e for e in self.exports if e.name == name), None)

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.checks)


def _limits(table: Table) -> Limits:
    defaults = Limits()
    values = {}
    for f in fields(Limits):
        minimum = 1.0 if f.name != "max_output_kb" else 0.0
        value = table.number(f.name, getattr(defaults, f.name), minimum=minimum)
        values[f.name] = type(getattr(defaults, f.name))(value)
    table.reject_unknown()
    return Limits(**values)


def _export(table: Table) -> ExportSpec:
    shape = table.get("input_shape", list, None)
    if shape is not None and not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
        raise table.fail("input_shape", f"expected a list of positive integers, got {shape!r}")
    spec = ExportSpec(
        name=table.get("name", str),
        kind=table.get("kind", str),
        doc=table.get("doc", str, ""),
        input_shape=tuple(shape) if shape else None,
        optional=table.get("optional", bool, False),
        code=table.get("code", str, ""),
    )
    if not spec.name.isidentifier():
        raise table.fail("name", f"expected a Python variable name, got {spec.name!r}")
    table.reject_unknown()
    return spec


def _feedback(table: Table) -> dict:
    out = {"boundary_data": table.get("boundary_data", dict, {}), "models": table.get("models", list, []),
           "curves": table.get("curves", list, [])}
    table.reject_unknown()
    return out


def _check(table: Table) -> CheckSpec:
    requires = table.get("requires", list, [])
    if not all(isinstance(r, str) for r in requires):
        raise table.fail("requires", f"expected a list of check ids, got {requires!r}")
    spec = CheckSpec(
        id=table.get("id", str),
        kind=table.get("kind", str),
        points=table.number("points"),
        visibility=table.choice("visibility", VISIBILITIES, "public"),
        title=table.get("title", str, ""),
        requires=tuple(requires),
        params=table.get("params", dict, {}),
    )
    table.reject_unknown()
    return spec


def reads_mnist(path: pathlib.Path) -> bool:
    """Whether the spec at ``path`` mounts the MNIST root (``data_root``), read without loading the exercise: what a
    kernel factory started before the exercise loads preloads by. False where the file cannot say (loading it will)."""
    try:
        return load_toml(path).get("data_root") is True
    except SpecError:
        return False


def exercise_reads_mnist(exercise_id: str | None) -> bool:
    """``reads_mnist`` for an exercise named by its id (from a notebook's metadata, say); False for a name that is no
    exercise folder's."""
    if not exercise_id or pathlib.Path(exercise_id).name != exercise_id or exercise_id in (".", ".."):
        return False
    return reads_mnist(exercises_root() / exercise_id / SPEC_FILE)


def parse_spec(path: pathlib.Path) -> ExerciseSpec:
    """Read one spec file and check its structure (the catalog checks what its fields name)."""
    data = load_toml(path)
    top = Table(data, path, "")
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
    for i, name in enumerate(spec.feedback["models"] + spec.feedback["curves"]):
        if name not in names:
            raise SpecError.at(path, "feedback", f"names the export {name!r}, which [[exports]] lacks")
