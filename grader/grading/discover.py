"""Find one submission per student: ``DIR/<student>.ipynb`` or ``DIR/<student>/*.ipynb``."""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass

from grader.kernel.notebook import NOTEBOOK_SUFFIXES
from grader.specs.paths import student_name


@dataclass(frozen=True)
class Found:
    student: str
    path: pathlib.Path | None  # None when the student's folder holds no notebook
    note: str = ""  # how an ambiguity was resolved, shown to the instructor


def _declares(path: pathlib.Path, exercise_id: str) -> bool:
    try:
        meta = json.loads(path.read_text(errors="replace")).get("metadata", {})
    except (json.JSONDecodeError, OSError, AttributeError):
        return False
    return isinstance(meta, dict) and isinstance(meta.get("grader"), dict) and meta["grader"].get("exercise") == exercise_id


def _pick(notebooks: list[pathlib.Path], exercise_id: str) -> tuple[pathlib.Path, str]:
    if len(notebooks) == 1:
        return notebooks[0], ""
    for rule, chosen in (("named after the exercise", [p for p in notebooks if p.stem == exercise_id]),
                         ("declaring the exercise", [p for p in notebooks if _declares(p, exercise_id)])):
        if len(chosen) == 1:
            return chosen[0], f"{len(notebooks)} notebooks; graded {chosen[0].name}, the one {rule}"
    newest = max(notebooks, key=lambda p: (p.stat().st_mtime, p.name))
    return newest, f"{len(notebooks)} notebooks; graded {newest.name}, the newest"


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
            path, note = _pick(notebooks, exercise_id)
            found[name] = Found(name, path, note)
        elif entry.suffix in suffixes:
            name = student_name(entry.stem)
            if name in found:
                continue
            found[name] = Found(name, entry)
    return [found[k] for k in sorted(found)]
