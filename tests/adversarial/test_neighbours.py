"""Neighbours stay unharmed: a correct notebook graded beside hogs gets exactly what it gets alone.

The hostile notebook fills its memory, its disk, /dev/shm and its process table, then signals every
process it can see; the batch runs it in the other worker at the same time as the correct one.
Root only: the whole-sandbox memory and process limits and the PID namespace need it (README).
"""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

from grader.cli import main
from grader.store.gradebook import Gradebook
from grading_support import solution

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="whole-sandbox limits need root (README, sandbox table)")

HOG_CELLS = [
    # memory: far past the sandbox's limit, in steps, so the cgroup (not the machine) stops it
    "hoard = []\ntry:\n    while True:\n        hoard.append(bytearray(200 << 20))\nexcept MemoryError:\n    pass",
    # disk and /dev/shm: write until refused
    "import os\nfor place in ('.', '/tmp', '/dev/shm', '/var/tmp'):\n    try:\n"
    "        with open(os.path.join(place, 'fill.bin'), 'wb') as f:\n"
    "            while True:\n                f.write(b'x' * (8 << 20))\n    except OSError:\n        pass",
    # processes: as many sleepers as the sandbox allows, each in its own session, then a signal to all
    "import os, signal, subprocess, sys\nkids = []\ntry:\n    for _ in range(3000):\n"
    "        kids.append(subprocess.Popen(['sleep', '600'], start_new_session=True))\nexcept OSError:\n    pass\n"
    "try:\n    os.kill(-1, signal.SIGSTOP)\nexcept OSError:\n    pass",
    "answer = 42",
]


def _write_hog(path: pathlib.Path) -> None:
    import nbformat

    cells = [nbformat.v4.new_code_cell(source) for source in HOG_CELLS]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"grader": {"exercise": "tiny-model"}}), path)


def _grade(folder: pathlib.Path, gradebook: pathlib.Path, workers: int, monkeypatch, fast_exercises) -> dict:
    monkeypatch.setenv("GRADER_EXERCISES", str(fast_exercises))
    monkeypatch.setenv("GRADER_SECRET", "neighbours-secret")
    code = main(["grade", str(folder), "--exercise", "tiny-model", "--gradebook", str(gradebook),
                 "--workers", str(workers)])
    assert code in (0, 1)
    with Gradebook.open(gradebook, create=False) as book:
        return {run.result.student: run.result for run in book.current_runs("tiny-model")}


def _verdict(result) -> tuple:
    return (result.status, result.score, tuple((c.id, c.passed, c.points) for c in result.checks))


@pytest.mark.usefixtures("shared_kernel_factory")
def test_a_correct_notebook_beside_a_hog_gets_what_it_gets_alone(tmp_path, fast_exercises, monkeypatch):
    quiet, busy = tmp_path / "quiet", tmp_path / "busy"
    for folder in (quiet, busy):
        folder.mkdir()
        shutil.copy(solution("tiny-model"), folder / "ada.ipynb")
    _write_hog(busy / "hog.ipynb")
    alone = _grade(quiet, tmp_path / "quiet.sqlite", 1, monkeypatch, fast_exercises)
    beside = _grade(busy, tmp_path / "busy.sqlite", 2, monkeypatch, fast_exercises)
    assert alone["ada"].status == "ok" and alone["ada"].score == alone["ada"].max_score
    # One notebook alone forks from a factory kept warm elsewhere (as the warm server's is): a fresh launch's
    # import torch would take part of the 8-second cell limit on a loaded machine.
    assert alone["ada"].sandbox["kernel_start"] == "forked from the pre-warmed factory", alone["ada"].sandbox
    assert _verdict(beside["ada"]) == _verdict(alone["ada"])
    assert "hog" in beside  # the hog has its own outcome too: the batch stayed complete
