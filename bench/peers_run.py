"""The peers' side of bench/peers.py, run with .venv-peers/bin/python (nbgrader 0.9.6, otter-grader 7.0.0).

  raw FOLDER          execute each FOLDER/*.ipynb with nbclient, no checks (the floor)
  otter ZIP FOLDER    grade each FOLDER/<student>/*.ipynb with otter's grade_submission, in this process
  otter-cli ZIP FOLDER  the same with one `otter run` process per notebook
  nbgrader-scores COURSE  each student's nbgrader score, read from the course's gradebook.db

Each prints one JSON object per notebook on stdout; bench/peers.py times the whole process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def raw(folder: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    for path in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        # As the autograders do: run every cell, even after an error.
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(folder)}}).execute()
        errors = sum(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
        print(json.dumps({"student": path.stem, "errors": errors}), flush=True)


def otter(autograder: Path, folder: Path) -> None:
    from otter.api import grade_submission

    for student in sorted(p for p in folder.iterdir() if p.is_dir()):
        notebook = next(student.glob("*.ipynb"))
        results = grade_submission(str(notebook), str(autograder), quiet=True)
        print(json.dumps({"student": student.name, "score": results.total, "max_score": results.possible}), flush=True)


def otter_cli(autograder: Path, folder: Path) -> None:
    otter_bin = Path(sys.executable).with_name("otter")
    for student in sorted(p for p in folder.iterdir() if p.is_dir()):
        notebook = next(student.glob("*.ipynb"))
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([str(otter_bin), "run", "-a", str(autograder), "-o", out, "--no-logo", str(notebook)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            results = json.loads((Path(out) / "results.json").read_text())
        score = sum(t.get("score", 0) for t in results.get("tests", []))
        possible = sum(t.get("max_score", 0) for t in results.get("tests", []))
        print(json.dumps({"student": student.name, "score": results.get("score", score), "max_score": possible}),
              flush=True)


def nbgrader_scores(course: Path) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in gradebook.students:
            submission = gradebook.find_submission("tiny", student.id)
            print(json.dumps({"student": student.id, "score": submission.score, "max_score": submission.max_score}),
                  flush=True)


def main(argv: list[str]) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")
    command, *paths = argv
    actions = {"raw": raw, "otter": otter, "otter-cli": otter_cli, "nbgrader-scores": nbgrader_scores}
    actions[command](*(Path(p).resolve() for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
