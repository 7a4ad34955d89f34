"""Shared helpers for tests that grade real notebooks in real kernels."""

import pathlib

from grader.catalog import load_exercise
from grader.cli import main
from grader.engine import grade_submission
from grader.notebook import read_submission
from grader.secrets import hidden_seeds

ROOT = pathlib.Path(__file__).resolve().parent.parent
FILES = pathlib.Path(__file__).parent / "files"
SECRET = b"test-secret"


def solution(exercise_id: str) -> pathlib.Path:
    return ROOT / "reference" / "notebooks" / f"{exercise_id}.ipynb"


def student(exercise_id: str) -> pathlib.Path:
    return load_exercise(exercise_id).spec.notebook_path


def grade(path, exercise_id: str, hidden: bool = True, data_root: pathlib.Path | None = None):
    exercise = load_exercise(exercise_id)
    seeds = hidden_seeds(SECRET, exercise.id) if hidden else None
    return grade_submission(read_submission(path), exercise, pathlib.Path(path).stem, seeds, include_hidden=hidden,
                            data_root=data_root)


def by_id(result) -> dict:
    return {c.id: c for c in result.checks}


# The fixed --json contract of design.md.
CONTRACT = {"exercise", "student", "status", "score", "max_score", "checks", "error"}
CHECK_CONTRACT = {"id", "passed", "points", "max_points", "visibility", "message"}


def run_cli(capsys, *args):
    """The real ``grader`` command in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err
