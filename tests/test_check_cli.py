"""``grader check`` per the contract: table, --json, --html, exit codes 0/1/2."""

import json
import os
import pathlib
import re
import shutil

import pytest

from grading_support import CHECK_CONTRACT, CONTRACT, run_cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
FILES = pathlib.Path(__file__).parent / "files"
SOLUTION = ROOT / "reference" / "notebooks" / "tiny-model.ipynb"
STUDENT = ROOT / "exercises" / "tiny-model" / "tiny-model.ipynb"
# The subject is what a check prints and writes, not how its kernel starts (test_kernel_factory, test_warm_server):
# the kernels fork from this process's warm factory instead of importing torch afresh in each check.
pytestmark = pytest.mark.usefixtures("shared_kernel_factory")


def test_solution_passes_with_table_html_and_pending_hidden_checks(capsys, tmp_path):
    html = tmp_path / "feedback.html"
    code, out, err = run_cli(capsys, "check", SOLUTION, "--html", html)
    assert code == 0, err
    assert "fits-training-data" in out and "pass" in out
    assert "fresh-data (hidden)" in out and "later" in out
    assert "Score 8/8" in out and "+2 points in hidden checks" in out
    page = html.read_text()
    assert "<html" in page and "100.00% (180/180)" in page and "graded later" in page.lower()
    assert 'src="data:image/png;base64,' in page and "Decision boundary of your model" in page  # as the official page


def test_untouched_notebook_json_follows_the_contract_and_exits_1(capsys, tmp_path):
    code, out, err = run_cli(capsys, "check", STUDENT, "--json", "--html", tmp_path / "f.html")
    assert code == 1
    payload = json.loads(out)
    assert set(payload) == CONTRACT | {"timings"}  # the contract's keys, and the engine's timings beside them
    assert {"kernel_start", "export", "checks", "wall"} <= set(payload["timings"])
    assert payload["status"] == "error" and payload["score"] == 0 and payload["max_score"] == 8
    assert all(set(c) == CHECK_CONTRACT for c in payload["checks"])
    assert all(c["visibility"] == "public" for c in payload["checks"])
    assert payload["exercise"] == "tiny-model"
    # The terminal and the page say a shared problem once; --json keeps every check's own message (the contract).
    assert all(c["message"].startswith("Your notebook must define `model`") for c in payload["checks"])
    assert "hit an error before this: code cell 2 raised NotImplementedError" in payload["checks"][0]["message"]


def test_a_shared_problem_is_one_banner_printed_exactly_and_a_failing_run_is_not_green(capsys, tmp_path, monkeypatch):
    """A model built for 3 input features cannot be captured on the 2-D points: three of the four public checks need
    it (own-model reads the code, and the model exists)."""
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich writes the colours it would show in a terminal
    monkeypatch.setenv("COLUMNS", "250")
    html = tmp_path / "f.html"
    code, out, err = run_cli(capsys, "check", FILES / "tiny-model" / "three-features.ipynb", "--html", html)
    assert code == 1, err
    text = re.sub(r"\x1b\[[0-9;]*m", "", out)
    # Square brackets in a message are text, not markup: torch's "[s31, 2] X [3, 4]" prints as it was written.
    assert re.search(r"reduction dim, but got \[s\d+, 2\] X \[3, 4\]", text)
    assert text.count("could not be handed to the grader") == 1  # said once, above the table
    assert "Needed by: a-network, fits-training-data, parameter-budget" in text
    assert text.count("Needs `model` first: see the note above.") == 3
    assert "\x1b[1;31mok, 3 of 4 checks failed\x1b[0m" in out  # red, never the green of a clean run
    page = html.read_text()
    assert page.count("could not be handed to the grader") == 1 and page.count("see the note above") == 3
    assert '<strong class="status-failed">ok, 3 of 4 checks failed</strong>' in page


def test_quirks_in_old_outputs_and_missing_cell_ids_do_not_reject_the_code():
    from grader.kernel.notebook import read_submission

    submission = read_submission(FILES / "tiny-model" / "quirky-editor.ipynb")
    assert submission.exercise_id == "tiny-model" and len(submission.code_cells()) == 4
    assert all(c.get("id") for c in submission.nb.cells)


@pytest.mark.parametrize("quirk", ["ids in a 4.4 file", "outputs on a markdown cell", "a kernelspec without name",
                                   "cells without metadata", "a byte-order mark", "a cell type no format-4 schema has"])
def test_a_field_the_grader_never_reads_does_not_reject_the_code_but_a_cell_it_cannot_read_does(tmp_path, quirk):
    """Each of the first four was refused as "not a valid format-4 notebook": the whole hand-in lost, for a field
    other editors write and the grader never reads. A cell whose type is unknown could be code: refused still."""
    from grader.kernel.notebook import InvalidNotebook, read_submission

    nb = json.loads(SOLUTION.read_text())
    first_markdown = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    if quirk == "ids in a 4.4 file":
        nb["nbformat_minor"] = 4
        for number, cell in enumerate(nb["cells"]):
            cell["id"] = f"cell-{number}"
    elif quirk == "outputs on a markdown cell":
        first_markdown.update(outputs=[], execution_count=None)
    elif quirk == "a kernelspec without name":
        nb["metadata"]["kernelspec"] = {"language": "python"}
    elif quirk == "cells without metadata":
        for cell in nb["cells"]:
            cell.pop("metadata", None)
    elif quirk != "a byte-order mark":  # that one is written below
        first_markdown["cell_type"] = "heading"
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8-sig" if quirk == "a byte-order mark" else "utf-8")
    if quirk.startswith("a cell type"):
        with pytest.raises(InvalidNotebook, match="not a valid format-4 notebook"):
            read_submission(path)
        return
    submission = read_submission(path)
    solution = read_submission(SOLUTION)
    assert submission.exercise_id == "tiny-model" and submission.code_cells() == solution.code_cells()


@pytest.mark.parametrize("path, reason", [
    (FILES, "is a folder, not a notebook"),
    (FILES / "not-a-notebook.ipynb", "not a Jupyter notebook (the file is not valid JSON"),
    (FILES / "format3.ipynb", "notebook format 3 is not supported"),
    (FILES / "missing.ipynb", "no such file"),
    (FILES / "tiny-model" / "no-exercise-metadata.ipynb", "does not say which exercise it is; pass --exercise"),
    # quiz answers, checked by another command: the JSON parser's words on a TOML file would only confuse
    (FILES / "quizzes" / "perfect.toml", "perfect.toml is a .toml file, not a notebook; quiz answers are checked with "
     f"`grader quiz check {FILES / 'quizzes' / 'perfect.toml'}` (add --quiz ID where the file does not name its quiz)"),
    (FILES / "quizzes" / "partial.json", "not a Jupyter notebook (no cells found); quiz answers are checked with "
     "`grader quiz check "),
])
def test_unusable_input_exits_2_with_a_clear_reason(capsys, path, reason):
    code, out, err = run_cli(capsys, "check", path)
    assert code == 2
    assert reason in err
    assert "Traceback" not in err


def test_an_empty_notebook_file_is_said_to_be_empty(capsys, tmp_path):
    """A 0-byte or blank .ipynb (a failed download, a file made by hand): "Expecting value: line 1 column 1"."""
    for name, text in (("empty.ipynb", ""), ("blank.ipynb", " \n\n")):
        (tmp_path / name).write_text(text)
        code, out, err = run_cli(capsys, "check", tmp_path / name, "--exercise", "tiny-model")
        assert code == 2 and "the file is empty, so it is not a notebook" in err, err


def test_unusable_input_with_json_still_prints_one_object(capsys):
    code, out, err = run_cli(capsys, "check", FILES / "not-a-notebook.ipynb", "--json")
    assert code == 2
    payload = json.loads(out)
    assert set(payload) == CONTRACT | {"timings"} and payload["status"] == "invalid" and payload["checks"] == []


def test_an_html_page_that_would_replace_the_notebook_or_a_device_is_refused_before_the_kernel(capsys, tmp_path):
    notebook = tmp_path / "nb.ipynb"
    shutil.copy(STUDENT, notebook)
    same = tmp_path / "sub" / ".." / "nb.ipynb"
    code, out, err = run_cli(capsys, "check", notebook, "--html", same, "--no-factory")
    assert (code, out, err) == (2, "", f"grader check: --html {same} is the notebook being checked: writing there "
                                       "would replace it; choose another path\n")
    code, out, err = run_cli(capsys, "check", notebook, "--html", "/dev/full", "--json")
    assert code == 2 and json.loads(out)["error"] == ("--html /dev/full is a device file, not a regular file: "
                                                      "choose the path of a file to write")
    assert notebook.read_bytes() == STUDENT.read_bytes() and os.stat("/dev/full").st_rdev
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nb.ipynb"]


def test_unknown_exercise_exits_2_and_lists_the_known_ones(capsys):
    code, out, err = run_cli(capsys, "check", SOLUTION, "--exercise", "no-such-exercise")
    assert code == 2
    assert "unknown exercise 'no-such-exercise'" in err and "tiny-model" in err


def test_an_exercise_flag_other_than_the_notebook_s_own_is_refused_as_grade_refuses_it(capsys):
    """`grader check tiny.ipynb --exercise lr-sweep` ran every check and scored 0, where `grade` marks it invalid."""
    code, out, err = run_cli(capsys, "check", SOLUTION, "--exercise", "early-stopping", "--json")
    assert code == 2 and json.loads(out)["status"] == "invalid"
    assert "is a notebook for exercise 'tiny-model' (its metadata says so), but --exercise " \
           "early-stopping was given" in json.loads(out)["error"]


@pytest.mark.parametrize("status, passed, code", [("ok", True, 0), ("error", True, 1), ("timeout", True, 1),
                                                  ("ok", False, 1)])
def test_a_cell_that_raised_after_every_check_passed_exits_1_not_0(status, passed, code):
    """A leftover experiment raising in the last cell: every public check passes, status error; it exited 0, so a
    script gating on the self-check would hand in a notebook that stops in the middle."""
    from grader.commands.check import exit_code
    from grader.results import CheckResult, Status, SubmissionResult

    check = CheckResult("fits-training-data", passed, float(passed), 1.0, "public", "")
    assert exit_code(SubmissionResult("tiny-model", "s", Status(status), (check,))) == code


def test_watching_with_json_writes_one_object_per_line(capsys, tmp_path):
    """--watch --json printed indented objects one after another, which no JSON Lines reader takes."""
    import argparse

    from grader.commands.check import _report
    from grader.results import SubmissionResult

    args = argparse.Namespace(json=True, watch=True, html=tmp_path / "page.html", notebook=tmp_path / "nb.ipynb")
    for reason in ("first save", "second save"):
        _report(args, SubmissionResult.invalid("tiny-model", "nb", reason), "Tiny model")
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["error"] for line in lines] == ["first save", "second save"]


def test_a_page_the_notebook_s_folder_cannot_take_goes_to_the_user_s_cache_and_says_why(capsys, tmp_path,
                                                                                         monkeypatch):
    """A read-only folder (or a folder where the page goes) got one line on stderr and no page at all."""
    import argparse

    from grader.commands.check import _report, fallback_page
    from grader.results import SubmissionResult

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "work").mkdir()
    notebook = tmp_path / "work" / "nb.ipynb"
    notebook.with_suffix(".feedback.html").mkdir()  # what no page can replace, even for root
    args = argparse.Namespace(json=False, watch=False, html=None, notebook=notebook)
    _report(args, SubmissionResult.invalid("tiny-model", "nb", "a reason"), "Tiny model")
    out = capsys.readouterr().out
    page = fallback_page(notebook)
    assert page.is_file() and page.parent == tmp_path / "cache" / "grader" / "pages" and "a reason" in page.read_text()
    occupied = notebook.with_suffix(".feedback.html")
    assert f"Feedback page: {page} (not beside the notebook: refusing to write {occupied}: it is a folder" in \
        " ".join(out.split())


def test_exercise_flag_supplies_missing_metadata(capsys, tmp_path):
    code, out, err = run_cli(capsys, "check", FILES / "tiny-model" / "no-exercise-metadata.ipynb",
                             "--exercise", "tiny-model", "--json", "--html", tmp_path / "f.html")
    assert code == 1  # valid notebook, but it defines no model
    assert json.loads(out)["exercise"] == "tiny-model"


def test_exercises_lists_checks_and_points(capsys):
    code, out, err = run_cli(capsys, "exercises")
    assert code == 0
    assert "tiny-model" in out and "fits-training-data" in out and "hidden" in out


def test_a_folder_given_as_dot_is_refused_as_a_folder_not_a_crash(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "check", ".", "--json")
    assert code == 2 and "is a folder, not a notebook" in err and "Traceback" not in err
    assert json.loads(out)["status"] == "invalid"


def test_output_a_terminal_cannot_show_and_a_pipe_closed_early_leave_the_verdict_and_the_page(tmp_path):
    """An ASCII-only terminal (LC_ALL=C) crashed the check on the title's dash (exit 3); `grader check nb | head -1`
    exited 1 for a notebook that passes, without writing its page (rich exits on the closed pipe). Both at once."""
    import subprocess
    import sys

    piped = subprocess.run(f"{sys.executable} -m grader check {SOLUTION} --html {tmp_path / 'a.html'} | head -1; "
                           "exit ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", cwd=tmp_path,
                           capture_output=True, timeout=300,
                           env={**os.environ, "GRADER_WARM_SERVER": "0", "LC_ALL": "C", "LANG": "C",
                                "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"})
    assert piped.returncode == 0 and (tmp_path / "a.html").exists(), piped.stderr.decode(errors="replace")
    assert piped.stdout.decode("ascii").strip().endswith("self-check (public checks only)")


def test_a_page_whose_name_is_near_the_file_system_s_limit_is_written(tmp_path):
    """The page was written through a temporary file named after it, 14 bytes longer: a notebook name of 240
    characters could not get its 254-byte page ("File name too long")."""
    from grader.store.outputs import write_output

    page = tmp_path / ("n" * 240 + ".feedback.html")
    write_output(page, "<html></html>")
    assert page.read_text() == "<html></html>" and [p.name for p in tmp_path.iterdir()] == [page.name]
