"""Every assignment of the course, exercise or quiz, found and fully validated in one place.

An exercise (``exercises/<id>/spec.toml``) is graded by running a notebook; a quiz
(``exercises/quizzes/<id>.toml``) by scoring an answers file. Both are an ``Assignment``
with an ``id``, a ``title``, a ``kind``, the ``suffixes`` of the files students hand in,
``max_points`` and the ``files`` their results depend on. ``load_assignment`` is the only
place that decides which one an id is.

Loading an exercise validates everything its spec names against the grader's tables:
export kinds (``grader.loading.kinds``), check kinds and their parameters
(``grader.checks.registry``) and data sets (``grader.checks.data``). A mistake is a
``SpecError`` naming the file and the field, raised when the spec loads (``grader
exercises`` shows it), never a failed check that a student is told to fix.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import ClassVar

from grader.checks import BoundCheck, bind
from grader.checks.data import data_problem
from grader.errors import UnknownAssignment
from grader.kernel.notebook import NOTEBOOK_SUFFIXES
from grader.loading.kinds import EXPORT_KINDS
from grader.quizzes.model import Quiz, load_quiz, quiz_ids
from grader.specs.paths import SPEC_FILE, exercises_root, quizzes_root
from grader.specs.spec import ExerciseSpec, parse_spec
from grader.specs.toml import SpecError


@dataclass(frozen=True)
class Exercise:
    """A notebook exercise: its spec and its checks, bound and validated."""

    spec: ExerciseSpec
    checks: tuple[BoundCheck, ...]

    kind: ClassVar[str] = "exercise"
    suffixes: ClassVar[tuple[str, ...]] = NOTEBOOK_SUFFIXES

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def max_points(self) -> float:
        return self.spec.max_points

    @property
    def files(self) -> tuple[pathlib.Path, ...]:
        """What its results depend on, besides the grader's code: the spec."""
        return (self.spec.path,)


Assignment = Exercise | Quiz


def exercise_ids(root: pathlib.Path | None = None) -> list[str]:
    root = root or exercises_root()
    return sorted(p.parent.name for p in root.glob(f"*/{SPEC_FILE}"))


def assignment_ids(root: pathlib.Path | None = None) -> list[str]:
    """Exercises first, then quizzes, each in name order."""
    quizzes = quiz_ids(root / "quizzes" if root else quizzes_root())
    return exercise_ids(root) + quizzes


def load_spec_file(path: pathlib.Path) -> Exercise:
    """The exercise a spec file describes, with everything it names validated."""
    spec = parse_spec(path)
    _check_exports(spec)
    checks = tuple(bind(check, spec, i) for i, check in enumerate(spec.checks))
    boundary = spec.feedback.get("boundary_data")
    if boundary and (problem := data_problem(boundary)):
        raise SpecError.at(path, "feedback.boundary_data", problem)
    return Exercise(spec, checks)


def _check_exports(spec: ExerciseSpec) -> None:
    for i, export in enumerate(spec.exports):
        kind = EXPORT_KINDS.get(export.kind)
        if kind is None:
            raise SpecError.at(spec.path, f"exports[{i}].kind",
                               f"expected one of {', '.join(sorted(EXPORT_KINDS))}, got {export.kind!r}")
        if kind.needs_input_shape and export.input_shape is None:
            raise SpecError.at(spec.path, f"exports[{i}].input_shape",
                               "required for models (the shape of one input sample, e.g. [2])")


def _unknown(assignment_id: str, what: str, known: list[str]) -> UnknownAssignment:
    return UnknownAssignment(f"unknown {what} {assignment_id!r} (known: {', '.join(known) or 'none'})", assignment_id)


def load_exercise(exercise_id: str, root: pathlib.Path | None = None) -> Exercise:
    """The exercise ``exercise_id``; UnknownAssignment lists the ones that exist."""
    root = root or exercises_root()
    path = root / exercise_id / SPEC_FILE
    if not exercise_id or "/" in exercise_id or not path.is_file():
        if exercise_id in quiz_ids(root / "quizzes"):
            raise UnknownAssignment(f"{exercise_id!r} is a quiz: check answers with `grader quiz check ANSWERS "
                                    f"--quiz {exercise_id}`", exercise_id)
        raise _unknown(exercise_id, "exercise", exercise_ids(root))
    return load_spec_file(path)


def load_assignment(assignment_id: str, root: pathlib.Path | None = None) -> Assignment:
    """The exercise or quiz called ``assignment_id``; UnknownAssignment lists every one that exists."""
    if assignment_id in exercise_ids(root):
        return load_exercise(assignment_id, root)
    if assignment_id in quiz_ids(root / "quizzes" if root else None):
        return load_quiz(assignment_id, root / "quizzes" if root else None)
    raise _unknown(assignment_id, "exercise or quiz", assignment_ids(root))


def load_all(root: pathlib.Path | None = None) -> list[Exercise]:
    """Every exercise (not the quizzes), validated."""
    return [load_exercise(i, root) for i in exercise_ids(root)]
