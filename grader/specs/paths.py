"""Where the course's files live: exercises, quizzes, templates and solution notebooks.

An installed grader finds them next to its package, as a checkout does; ``$GRADER_EXERCISES``
and ``$GRADER_TEMPLATES`` point elsewhere (the Gradescope autograder, tests with their own specs).
A wheel built by ``grader release`` carries them inside the package, in ``grader/course/``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import re
import stat
import unicodedata

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
SPEC_FILE = "spec.toml"
SAFE_NAME = re.compile(r"[^\w.@+-]+")  # \w: the letters and digits of every script, and _
MAX_NAME = 80
PACKAGED = pathlib.Path(__file__).resolve().parents[1] / "course"  # only in a student package
RELEASE_MARKER = "release.json"  # in PACKAGED: what `grader release` put into this student package


def module_file(name: str) -> pathlib.Path | None:
    """The source file of module ``name``, found on disk without importing anything; None for a name that is no module.

    ``importlib.util.find_spec("a.b.Name")`` would run ``a.b`` to look for ``Name`` in it, and torch with it when
    ``a.b`` imports torch: 1.7 s in a batch's own process before its kernels and workers start.

    >>> module_file("grader.specs.paths").name, module_file("grader.specs.paths.REPOSITORY")
    ('paths.py', None)
    """
    top, _, rest = name.partition(".")
    try:
        spec = importlib.util.find_spec(top)  # a top-level package: found, not run
    except (ImportError, ValueError):
        return None
    if spec is None or spec.submodule_search_locations is None:
        return pathlib.Path(spec.origin) if spec and not rest and spec.origin and spec.origin.endswith(".py") else None
    for location in spec.submodule_search_locations:
        base = pathlib.Path(location).joinpath(*rest.split(".")) if rest else pathlib.Path(location)
        for candidate in ((base.with_name(base.name + ".py"),) if rest else ()) + (base / "__init__.py",):
            if candidate.is_file():
                return candidate
    return None


def _course_folder(name: str) -> pathlib.Path:
    packaged = PACKAGED / name
    return packaged if packaged.is_dir() else REPOSITORY / name


def student_release() -> dict | None:
    """What ``grader release`` wrote into this student package (its assignments and commands); None elsewhere."""
    marker = PACKAGED / RELEASE_MARKER
    return json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else None


def exercises_root() -> pathlib.Path:
    """``$GRADER_EXERCISES``, else the ``exercises/`` folder next to the ``grader`` package (or inside it)."""
    configured = os.environ.get("GRADER_EXERCISES")
    return pathlib.Path(configured) if configured else _course_folder("exercises")


def quizzes_root() -> pathlib.Path:
    return exercises_root() / "quizzes"


def templates_root() -> pathlib.Path:
    configured = os.environ.get("GRADER_TEMPLATES")
    return pathlib.Path(configured) if configured else _course_folder("templates")


def solutions_root() -> pathlib.Path:
    return REPOSITORY / "reference" / "notebooks"


def student_name(raw: str) -> str:
    """A student's name safe for file names and tables; keeps what LMS exports usually contain.

    Letters and digits of any script stay (composed, NFC: ``Zoë`` and ``Zoé`` stay apart), as do ``._@+-``;
    any other run of characters becomes ``_``; no leading or trailing dot; at most ``MAX_NAME`` characters.
    """
    name = SAFE_NAME.sub("_", unicodedata.normalize("NFC", raw)).strip("._")
    return name[:MAX_NAME].rstrip("._") or "student"


def entry_kind(mode: int) -> str | None:
    """What a non-regular, non-folder entry is, in a student's words; None for files and folders."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "not a regular file"
