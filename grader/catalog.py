"""Find exercises on disk and load them: spec parsed, check parameters validated."""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass

from .checks import BoundCheck, bind
from .spec import ExerciseSpec, SpecError, parse_spec

SPEC_FILE = "spec.toml"


class UnknownExercise(LookupError):
    pass


@dataclass(frozen=True)
class Exercise:
    spec: ExerciseSpec
    checks: tuple[BoundCheck, ...]

    @property
    def id(self) -> str:
        return self.spec.id


def exercises_root() -> pathlib.Path:
    """``$GRADER_EXERCISES``, else the ``exercises/`` folder next to the ``grader`` package."""
    configured = os.environ.get("GRADER_EXERCISES")
    return pathlib.Path(configured) if configured else pathlib.Path(__file__).resolve().parent.parent / "exercises"


def exercise_ids(root: pathlib.Path | None = None) -> list[str]:
    root = root or exercises_root()
    return sorted(p.parent.name for p in root.glob(f"*/{SPEC_FILE}"))


def load_spec_file(path: pathlib.Path) -> Exercise:
    spec = parse_spec(path)
    return Exercise(spec, tuple(bind(check, spec, i) for i, check in enumerate(spec.checks)))


def load_exercise(exercise_id: str, root: pathlib.Path | None = None) -> Exercise:
    """The exercise ``exercise_id``; UnknownExercise lists the ones that exist."""
    root = root or exercises_root()
    path = root / exercise_id / SPEC_FILE
    if not exercise_id or "/" in exercise_id or not path.is_file():
        known = ", ".join(exercise_ids(root)) or "none"
        raise UnknownExercise(f"unknown exercise {exercise_id!r} (known: {known})")
    return load_spec_file(path)


def load_all(root: pathlib.Path | None = None) -> list[Exercise]:
    return [load_exercise(i, root) for i in exercise_ids(root)]


__all__ = ["Exercise", "SpecError", "UnknownExercise", "exercise_ids", "exercises_root", "load_all", "load_exercise"]
