"""``grader check --watch``: a real student loop, driven as a student would drive it.

The notebook is saved wrong, then fixed; each save gets a new table and a rewritten HTML page,
labelled as the self-check; a save that changes nothing reruns nothing; Ctrl-C ends it cleanly.
"""

from __future__ import annotations

import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import time

import nbformat
from grading_support import as_from_a_shell, ended, one_value_spec

SPEC = one_value_spec("answer", "answer", "number", cell_timeout_s=60, total_timeout_s=120)


def _save(path: pathlib.Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells],
                                  metadata={"grader": {"exercise": "answer"}})
    tmp = path.with_suffix(".tmp")
    nbformat.write(nb, tmp)
    tmp.replace(path)  # as editors save: a whole new file in one step


def _reader(process: subprocess.Popen) -> queue.Queue:
    """The process's stdout, line by line, as it comes (a thread: select() cannot see Python's own buffer)."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    return lines


def _lines_until(lines: queue.Queue, needle: str, timeout_s: float = 240) -> str:
    """stdout up to and including the first line holding ``needle``."""
    seen, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"no line with {needle!r}; got:\n{''.join(seen)}")


def test_watch_rechecks_each_save_and_stops_on_ctrl_c(tmp_path):
    exercises = tmp_path / "exercises"
    (exercises / "answer").mkdir(parents=True)
    (exercises / "answer" / "spec.toml").write_text(SPEC)
    notebook = tmp_path / "work.ipynb"
    html = tmp_path / "work.feedback.html"
    _save(notebook, "x = 1")
    env = {**os.environ, "GRADER_EXERCISES": str(exercises), "COLUMNS": "200"}
    process = subprocess.Popen([sys.executable, "-m", "grader", "check", str(notebook), "--watch"], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=as_from_a_shell)
    lines = _reader(process)
    try:
        first = _lines_until(lines, "Watching")
        assert "self-check" in first and "Self-check only: not your grade." in first
        assert "FAIL" in first and "Score 0/1" in first
        assert "FAIL" in html.read_text() or "fail" in html.read_text().lower()
        written = html.stat().st_mtime_ns

        same = notebook.with_suffix(".same")
        same.write_bytes(notebook.read_bytes())
        same.replace(notebook)  # saved again, unchanged: nothing to re-check
        time.sleep(1)  # the watcher polls 4 times a second: it has seen this save before the next
        _save(notebook, "x = 1", "answer = 42")
        second = _lines_until(lines, "Watching")
        assert "Score 1/1" in second and second.count("Watching") == 1
        assert html.stat().st_mtime_ns > written

        notebook.write_text("{ half a notebook")  # a save caught half-way: reported, and the watch goes on
        third = _lines_until(lines, "Watching")
        assert "invalid" in third.lower()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert "Traceback" not in process.stderr.read()
    finally:
        ended(process)


def test_a_save_caught_half_written_is_checked_once_the_editor_finishes(tmp_path):
    """The watcher reads a file mid-write; the full save that lands while it settles is the one it returns."""
    from grader.grading.watch import SETTLE_S, _Saves, next_save

    notebook = tmp_path / "work.ipynb"
    _save(notebook, "x = 1")
    saves, stop, invalid = _Saves(notebook), threading.Event(), []
    assert next_save(saves, stop, lambda *why: invalid.append(why)).nb.cells[0].source == "x = 1"

    notebook.write_text('{"cells": [')  # the editor's first write; the watcher sees it at once
    finisher = threading.Timer(SETTLE_S / 3, _save, (notebook, "x = 1", "answer = 42"))
    finisher.start()
    guard = threading.Timer(10, stop.set)  # a watcher that missed the save would wait for ever
    guard.start()
    came = next_save(saves, stop, lambda *why: invalid.append(why))
    guard.cancel()
    finisher.join()
    assert came is not None, "the save that finished while the watcher settled was never checked"
    assert [c.source for c in came.nb.cells] == ["x = 1", "answer = 42"] and invalid == []

    notebook.write_text("{ half a notebook")  # and one that stays broken is reported, once
    threading.Timer(SETTLE_S * 3, stop.set).start()
    assert next_save(saves, stop, lambda *why: invalid.append(why)) is None
    assert len(invalid) == 1 and "not a Jupyter notebook" in invalid[0][0]


def test_a_save_whose_last_newline_lands_apart_is_one_version_not_two(tmp_path):
    """nbformat.write (and some editors) write the closing newline in a second write: the file caught between the
    two is the same notebook, and was checked twice (the second run a whole check's time for nothing)."""
    import hashlib

    from grader.grading.watch import _Saves

    path = tmp_path / "nb.ipynb"
    saves = _Saves(path)
    body = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])).rstrip()
    path.write_text(body)
    assert saves.changed() == hashlib.sha256(body.encode()).hexdigest()
    path.write_text(body + "\n")
    assert saves.changed() is None  # the newline landed: still the version already seen
    path.write_text(body.replace("x = 1", "x = 2") + "\n")
    assert saves.changed() == hashlib.sha256((body.replace("x = 1", "x = 2") + "\n").encode()).hexdigest()
