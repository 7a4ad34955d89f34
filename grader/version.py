"""The grader version recorded with every run: package version plus the exercise spec's hash.

A changed spec (points, checks, limits) makes every submission of that exercise due for
regrading, as a new grader release does.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import metadata

from .catalog import exercises_root

PACKAGE = "training-dynamics-grader"


@functools.lru_cache(maxsize=64)
def grader_version(exercise_id: str) -> str:
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    spec = exercises_root() / exercise_id / "spec.toml"
    if not spec.is_file():  # a quiz: its key is what results depend on
        spec = exercises_root() / "quizzes" / f"{exercise_id}.toml"
    digest = hashlib.sha256(spec.read_bytes()).hexdigest()[:10] if spec.is_file() else "nospec"
    return f"{version}+spec.{digest}"
