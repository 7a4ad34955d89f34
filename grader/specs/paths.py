"""Where the course's files live: exercises, quizzes, templates and solution notebooks.

An installed grader finds them next to its package, as a checkout does; ``$GRADER_EXERCISES``
and ``$GRADER_TEMPLATES`` point elsewhere (the Gradescope autograder, tests with their own specs).
"""

from __future__ import annotations

import os
import pathlib
import re

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
SPEC_FILE = "spec.toml"
SAFE_NAME = re.compile(r"[^A-Za-z0-9._@+-]+")


def exercises_root() -> pathlib.Path:
    """``$GRADER_EXERCISES``, else the ``exercises/`` folder next to the ``grader`` package."""
    configured = os.environ.get("GRADER_EXERCISES")
    return pathlib.Path(configured) if configured else REPOSITORY / "exercises"


def quizzes_root() -> pathlib.Path:
    return exercises_root() / "quizzes"


def templates_root() -> pathlib.Path:
    configured = os.environ.get("GRADER_TEMPLATES")
    return pathlib.Path(configured) if configured else REPOSITORY / "templates"


def solutions_root() -> pathlib.Path:
    return REPOSITORY / "reference" / "notebooks"


def student_name(raw: str) -> str:
    """A student's name safe for file names and tables; keeps what LMS exports usually contain."""
    return SAFE_NAME.sub("_", raw).strip("._") or "student"
