"""Make student notebooks from solution notebooks: ``reference/notebooks/<id>.ipynb`` -> ``exercises/<id>/``.

A solution region is marked in a code cell by two comment lines::

    # BEGIN SOLUTION: what the student should write here
    ...the solution...
    # END SOLUTION

and becomes a TODO with that text plus ``raise NotImplementedError``, at the region's
indentation. Outputs and execution counts are stripped and the exercise id goes into
the notebook's metadata, so ``grader check`` finds the exercise by itself.
"""

from __future__ import annotations

import pathlib
import re

import nbformat

from grader.assignments.catalog import exercise_ids, load_exercise
from grader.errors import UserError
from grader.kernel.notebook import METADATA_KEY
from grader.specs.paths import solutions_root

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION(?::\s*(?P<todo>.*\S))?\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
DEFAULT_TODO = "write your solution here"


class AuthoringError(UserError, ValueError):
    """A solution notebook that cannot become a student notebook; the message says where and why."""


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace every solution region in ``source`` with its TODO.

    >>> print(strip_solutions("x = 1\\n# BEGIN SOLUTION: set y\\ny = 2\\n# END SOLUTION\\nprint(y)"))
    x = 1
    # TODO: set y
    raise NotImplementedError('TODO: set y')
    print(y)
    """
    out, region = [], None
    for number, line in enumerate(source.splitlines(), start=1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if region is not None:
                raise AuthoringError(f"{where}, line {number}: BEGIN SOLUTION inside another solution region")
            region = begin
            todo = begin["todo"] or DEFAULT_TODO
            out += [f"{begin['indent']}# TODO: {todo}", f"{begin['indent']}raise NotImplementedError({('TODO: ' + todo)!r})"]
        elif end:
            if region is None:
                raise AuthoringError(f"{where}, line {number}: END SOLUTION without a BEGIN SOLUTION")
            region = None
        elif region is None:
            out.append(line)
    if region is not None:
        raise AuthoringError(f"{where}: BEGIN SOLUTION is never closed by END SOLUTION")
    return "\n".join(out)


def student_notebook(solution: nbformat.NotebookNode, exercise_id: str, name: str = "") -> nbformat.NotebookNode:
    """The student's version of a solution notebook."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        METADATA_KEY: {"exercise": exercise_id},
    }
    regions = 0
    for index, cell in enumerate(solution.cells):
        source = cell.source
        if cell.cell_type == "code":
            regions += len([line for line in source.splitlines() if BEGIN.match(line)])
            source = strip_solutions(source, f"{name or exercise_id}, cell {index + 1}")
            new = nbformat.v4.new_code_cell(source)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(source)
        else:
            new = nbformat.v4.new_raw_cell(source)
        new.id = cell.get("id") or f"{exercise_id}-{index}"
        nb.cells.append(new)
    if regions == 0:
        raise AuthoringError(f"{name or exercise_id}: no BEGIN SOLUTION region, so the student notebook would "
                             "contain the whole solution")
    nbformat.validate(nb)
    return nb


def solution_path(exercise_id: str) -> pathlib.Path:
    return solutions_root() / f"{exercise_id}.ipynb"


def solution_ids() -> list[str]:
    """Every exercise with a solution notebook: what ``assign`` writes by default."""
    return [i for i in exercise_ids() if solution_path(i).is_file()]


def render(exercise_id: str) -> str:
    """The student notebook for ``exercise_id`` as the exact text ``assign`` writes."""
    source = solution_path(exercise_id)
    if not source.is_file():
        raise AuthoringError(f"no solution notebook {source}")
    nb = student_notebook(nbformat.read(source, as_version=4), exercise_id, source.name)
    return nbformat.writes(nb) + "\n"


def assign(ids: list[str] | None = None) -> list[pathlib.Path]:
    """Write the student notebooks of ``ids`` (default: every exercise with a solution notebook)."""
    ids = ids or solution_ids()
    written = []
    for exercise_id in ids:
        target = load_exercise(exercise_id).spec.notebook_path
        target.write_text(render(exercise_id), encoding="utf-8")
        written.append(target)
    return written


__all__ = ["AuthoringError", "assign", "render", "solution_ids", "solution_path", "strip_solutions",
           "student_notebook"]
