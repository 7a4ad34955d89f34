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
from grader.kernel import untrusted
from grader.kernel.untrusted import JsonLimitError, JsonLimits, UnreadableFile

MAX_NOTEBOOK_BYTES = 50 * 2**20
# A notebook's JSON: outputs can hold many values (one per printed line), so more than an export may.
NOTEBOOK_JSON = JsonLimits(max_values=2_000_000)
METADATA_KEY = "grader"
NOTEBOOK_SUFFIXES = (".ipynb",)


class InvalidNotebook(UserError, ValueError):
    """The file cannot be graded as a notebook; the message says why and what to do."""


@dataclass(frozen=True)
class Submission:
    path: pathlib.Path
    nb: nbformat.NotebookNode
    sha256: str

    @classmethod
    def empty(cls) -> Submission:
        """A notebook without cells: what a kernel started before its notebook prepares its prelude from."""
        return cls(pathlib.Path(), nbformat.v4.new_notebook(), "")

    @property
    def exercise_id(self) -> str | None:
        meta = self.nb.metadata.get(METADATA_KEY, {})
        value = meta.get("exercise") if isinstance(meta, dict) else None
        return value if isinstance(value, str) else None

    def code_cells(self) -> list[tuple[int, str]]:
        """(1-based code cell number, source) of every code cell, in order."""
        cells = [c for c in self.nb.cells if c.cell_type == "code"]
        return [(i, c.source) for i, c in enumerate(cells, start=1)]


def without_magics(source: str) -> str:
    r"""A cell's source with its IPython-only lines (``%magic``, ``%%cell magic``, ``!shell``) blanked, so the rest
    parses as Python with its line numbers unchanged.

    >>> without_magics("%%time\ndef f():\n    !ls\n    return 1")
    '\ndef f():\n\n    return 1'
    """
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))


def read_notebook_bytes(path: pathlib.Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The file's bytes, at most ``limit``; a FIFO, device or socket is refused before it is opened."""
    try:
        return untrusted.read_bytes(path, limit)
    except UnreadableFile as e:
        if e.kind == "missing":
            raise InvalidNotebook(f"{path}: no such file") from None
        if e.kind == "folder":
            raise InvalidNotebook(f"{path}: is a folder, not a notebook (to grade a class folder, use "
                                  "`grader grade`)") from None
        if e.kind == "large":
            raise InvalidNotebook(f"{path}: too large for a notebook: it {e}; clear its outputs and save it "
                                  "again") from None
        raise InvalidNotebook(f"{path}: {e}, so it is not a notebook") from None


def parse_notebook_json(raw: bytes) -> object:
    """The notebook file's JSON, within ``NOTEBOOK_JSON`` limits; raises JsonLimitError (a ValueError)."""
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark some Windows editors put first is no part of the JSON
    except UnicodeDecodeError as e:
        raise JsonLimitError(f"is not valid JSON: it is not UTF-8 text ({e.reason} at byte {e.start})") from None
    return untrusted.loads(text, NOTEBOOK_JSON)


def read_submission(path: str | pathlib.Path, raw: bytes | None = None) -> Submission:
    """Read and validate a v4 notebook, or raise ``InvalidNotebook`` with a clear reason; nothing else escapes.

    ``raw``: the file's bytes, read elsewhere (a cluster worker gets them in its job); ``path`` then only names it.
    """
    path = pathlib.Path(path)
    raw = read_notebook_bytes(path) if raw is None else raw
    if not raw.strip():
        raise InvalidNotebook(f"{path}: the file is empty, so it is not a notebook (save the notebook again from "
                              "Jupyter, or hand in the right file)")
    try:
        data = parse_notebook_json(raw)
    except JsonLimitError as e:
        raise InvalidNotebook(f"{path}: not a Jupyter notebook (the file {e})") from None
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise InvalidNotebook(f"{path}: not a Jupyter notebook (no cells found)")
    major = data.get("nbformat")
    if major != 4:
        raise InvalidNotebook(f"{path}: notebook format {str(major)[:20]} is not supported; open it in Jupyter "
                              "and save it again to convert it to format 4")
    # Old outputs are never run or trusted: dropped before nbformat reads the notebook, so neither a quirk in them
    # (other editors write some) nor their bulk reaches it. Cells saved without ids get them, as Jupyter does on load.
    cells = data.get("cells")
    for cell in cells if isinstance(cells, list) else []:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    try:
        nb = _validated(data)
    except nbformat.ValidationError as e:
        # A field the grader never reads breaks the schema (cell ids in a 4.4 file, outputs on a markdown cell, a
        # kernelspec without display_name, cells without metadata): the cells alone are read, where they can be.
        nb = _cells_alone(data)
        if nb is None:
            raise InvalidNotebook(f"{path}: not a valid format-4 notebook: {str(e.message)[:500]}") from None
    except Exception as e:  # noqa: BLE001 - nbformat's failures on odd structures vary; each is this file's fault
        raise InvalidNotebook(f"{path}: not a valid format-4 notebook (nbformat could not read it: "
                              f"{type(e).__name__})") from None
    return Submission(path=path, nb=nb, sha256=hashlib.sha256(raw).hexdigest())


def _validated(data: dict) -> nbformat.NotebookNode:
    with warnings.catch_warnings():  # nbformat warns on every quirk; the grader reports only what blocks it
        warnings.simplefilter("ignore")
        nb = nbformat.reads(json.dumps(data), as_version=4)  # joins multi-line sources
        _, nb = normalize(nb)
        nbformat.validate(nb)
    return nb


def build_validators() -> None:
    """Build nbformat's schema validators for format 4.4 and the newest 4.x now: each is built on first use (20 ms)."""
    for minor in sorted({4, nbformat.v4.nbformat_minor}):
        nbformat.validate(nbformat.v4.new_notebook(nbformat_minor=minor))


CELL_MAKERS = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell,
               "raw": nbformat.v4.new_raw_cell}


def _cells_alone(data: dict) -> nbformat.NotebookNode | None:
    """A valid notebook of ``data``'s cells (type and source) and the grader's metadata, all else left out; None
    where a cell's type or source cannot be read, as leaving that cell out would change what runs."""
    cells = []
    for cell in data.get("cells") if isinstance(data.get("cells"), list) else [None]:
        source = cell.get("source") if isinstance(cell, dict) else None
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if not isinstance(source, str) or cell.get("cell_type") not in CELL_MAKERS:
            return None
        cells.append(CELL_MAKERS[cell["cell_type"]](source))
    meta = data.get("metadata")
    ours = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    nb = nbformat.v4.new_notebook(cells=cells, metadata={METADATA_KEY: ours} if isinstance(ours, dict) else {})
    try:
        return _validated(nb)
    except Exception:  # noqa: BLE001 - what is left still breaks the schema (the grader's metadata, say)
        return None


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
