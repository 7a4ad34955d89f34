"""Validate a submitted notebook and prepare the copy the grader executes.

The executed copy is: a grader prelude, the student's code cells with their old
outputs dropped, then the grader's export cell. The student's file is never changed.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import warnings
from dataclasses import dataclass

import nbformat
from nbformat.validator import normalize

from grader.errors import UserError

MAX_NOTEBOOK_BYTES = 50 * 2**20
METADATA_KEY = "grader"
NOTEBOOK_SUFFIXES = (".ipynb",)


class InvalidNotebook(UserError, ValueError):
    """The file cannot be graded as a notebook; the message says why and what to do."""


@dataclass(frozen=True)
class Submission:
    path: pathlib.Path
    nb: nbformat.NotebookNode
    sha256: str

    @property
    def exercise_id(self) -> str | None:
        meta = self.nb.metadata.get(METADATA_KEY, {})
        value = meta.get("exercise") if isinstance(meta, dict) else None
        return value if isinstance(value, str) else None

    def code_cells(self) -> list[tuple[int, str]]:
        """(1-based code cell number, source) of every code cell, in order."""
        cells = [c for c in self.nb.cells if c.cell_type == "code"]
        return [(i, c.source) for i, c in enumerate(cells, start=1)]


def read_submission(path: str | pathlib.Path) -> Submission:
    """Read and validate a v4 notebook, or raise ``InvalidNotebook`` with a clear reason."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise InvalidNotebook(f"{path}: is a folder, not a notebook (to grade a class folder, use `grader grade`)")
    if not path.is_file():
        raise InvalidNotebook(f"{path}: no such file")
    raw = path.read_bytes()
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise InvalidNotebook(f"{path}: {len(raw) / 2**20:.0f} MB is too large for a notebook "
                              f"(limit {MAX_NOTEBOOK_BYTES // 2**20} MB); clear its outputs and save it again")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidNotebook(f"{path}: not a Jupyter notebook (the file is not valid JSON: {e})") from None
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise InvalidNotebook(f"{path}: not a Jupyter notebook (no cells found)")
    major = data.get("nbformat")
    if major != 4:
        raise InvalidNotebook(f"{path}: notebook format {major} is not supported; open it in Jupyter "
                              "and save it again to convert it to format 4")
    try:
        with warnings.catch_warnings():  # nbformat warns on every quirk; the grader reports only what blocks it
            warnings.simplefilter("ignore")
            nb = nbformat.reads(raw.decode("utf-8"), as_version=4)  # joins multi-line sources
            # Old outputs are never run or trusted: a quirk in them (other editors write some) must not reject the
            # student's code. Cells saved without ids get them, as Jupyter itself does on load.
            for cell in nb.get("cells", []):
                if isinstance(cell, dict) and cell.get("cell_type") == "code":
                    cell["outputs"], cell["execution_count"] = [], None
            _, nb = normalize(nb)
            nbformat.validate(nb)
    except nbformat.ValidationError as e:
        raise InvalidNotebook(f"{path}: not a valid format-4 notebook: {e.message}") from None
    return Submission(path=path, nb=nb, sha256=hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class PreparedNotebook:
    nb: nbformat.NotebookNode
    student_cells: tuple[int, ...]  # indices into nb.cells of the student's code cells
    prelude_index: int
    export_index: int

    def student_number(self, index: int) -> int:
        """The 1-based code-cell number a student sees for an index into the prepared notebook."""
        return self.student_cells.index(index) + 1


def prepare(submission: Submission, prelude_source: str, export_source: str) -> PreparedNotebook:
    """A fresh notebook: prelude, the student's code cells without outputs, export cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nb.cells.append(nbformat.v4.new_code_cell(prelude_source))
    student = []
    for cell in submission.nb.cells:
        if cell.cell_type != "code":
            continue
        student.append(len(nb.cells))
        nb.cells.append(nbformat.v4.new_code_cell(cell.source))
    nb.cells.append(nbformat.v4.new_code_cell(export_source))
    return PreparedNotebook(nb=nb, student_cells=tuple(student), prelude_index=0, export_index=len(nb.cells) - 1)
