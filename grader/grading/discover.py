"""Find one submission per student: ``DIR/<student>.ipynb`` or ``DIR/<student>/*.ipynb``.

A student folder with several notebooks is graded by this rule, first match wins:

1. notebooks whose metadata names another exercise are set aside (they belong to that one);
2. the one notebook named after the exercise (``tiny-model.ipynb``, in any subfolder);
3. else the one notebook whose metadata declares the exercise;
4. else the newest (modification time) of the notebooks that declare no exercise.

The rule cannot decide, and the student's outcome is ``invalid`` ("ambiguous"), when two or more
notebooks are named after the exercise, when two or more declare it (and none is named after it),
when the two newest undeclared ones have the same modification time, or when every notebook declares
another exercise. The choice and the files left out are the result's note (page, CSV, summary).
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass

from grader.kernel.notebook import METADATA_KEY, NOTEBOOK_SUFFIXES
from grader.specs.paths import student_name


@dataclass(frozen=True)
class Found:
    student: str
    path: pathlib.Path | None  # None when the student's folder holds no notebook, or the rule cannot decide
    note: str = ""  # which notebook was graded and why, or why none was: shown to the instructor and student


def declared_exercise(path: pathlib.Path) -> str | None:
    """The exercise a notebook's metadata names, if it is readable and names one."""
    try:
        meta = json.loads(path.read_text(errors="replace")).get("metadata", {})
    except (json.JSONDecodeError, OSError, AttributeError):
        return None
    grader = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    value = grader.get("exercise") if isinstance(grader, dict) else None
    return value if isinstance(value, str) else None


def _names(paths: list[pathlib.Path], folder: pathlib.Path) -> str:
    return ", ".join(p.relative_to(folder).as_posix() for p in paths)


def pick(notebooks: list[pathlib.Path], exercise_id: str, folder: pathlib.Path) -> tuple[pathlib.Path | None, str]:
    """(the notebook to grade, the note saying why); (None, why not) when the rule cannot decide."""
    if len(notebooks) == 1:
        return notebooks[0], ""
    declared = {p: declared_exercise(p) for p in notebooks}
    candidates = [p for p in notebooks if declared[p] in (None, exercise_id)]
    if not candidates:
        listed = ", ".join(f"{p.relative_to(folder).as_posix()} is for {declared[p]!r}" for p in notebooks)
        return None, f"ambiguous: none of the {len(notebooks)} notebooks is for {exercise_id!r} ({listed})"
    named = [p for p in candidates if p.stem.casefold() == exercise_id.casefold()]
    declaring = [p for p in candidates if declared[p] == exercise_id]
    undeclared = sorted((p for p in candidates if declared[p] is None), key=lambda p: p.stat().st_mtime, reverse=True)
    if len(named) > 1:
        return None, f"ambiguous: {len(named)} notebooks are named after the exercise ({_names(named, folder)})"
    if named:
        chosen, rule = named[0], "named after the exercise"
    elif len(declaring) > 1:
        return None, (f"ambiguous: {len(declaring)} notebooks declare the exercise {exercise_id!r} in their "
                      f"metadata ({_names(declaring, folder)}); keep one, or name it {exercise_id}.ipynb")
    elif declaring:
        chosen, rule = declaring[0], "whose metadata declares the exercise"
    elif len(undeclared) > 1 and undeclared[0].stat().st_mtime == undeclared[1].stat().st_mtime:
        return None, (f"ambiguous: no notebook is named after or declares {exercise_id!r}, and the newest ones "
                      f"have the same modification time ({_names(undeclared[:2], folder)})")
    else:
        chosen, rule = undeclared[0], "newest (none is named after or declares the exercise)"
    others = [p for p in notebooks if p != chosen]
    return chosen, (f"{len(notebooks)} notebooks: graded {chosen.relative_to(folder).as_posix()}, the one {rule}; "
                    f"not graded: {_names(others, folder)}")


def discover(folder: str | pathlib.Path, exercise_id: str, suffixes: tuple[str, ...] = NOTEBOOK_SUFFIXES) -> list[Found]:
    """Every student in ``folder``, in name order; folders take precedence over same-named files."""
    folder = pathlib.Path(folder)
    found: dict[str, Found] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            notebooks = sorted(p for p in entry.rglob("*") if p.suffix in suffixes and p.is_file()
                               and ".ipynb_checkpoints" not in p.parts and not p.name.startswith("."))
            name = student_name(entry.name)
            if not notebooks:
                found[name] = Found(name, None, f"no {' or '.join(suffixes)} file in the student's folder")
                continue
            path, note = pick(notebooks, exercise_id, entry)
            found[name] = Found(name, path, note)
        elif entry.suffix in suffixes:
            name = student_name(entry.stem)
            if name in found:
                continue
            found[name] = Found(name, entry)
    return [found[k] for k in sorted(found)]
