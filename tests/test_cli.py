"""The ``grader`` command's one way to report problems: bad input exits 2 with one line, a grader bug exits 3."""

import json
import subprocess
import sys

from grading_support import ROOT, run_cli
from grader.commands import exercises
from grader.errors import EXIT_INTERNAL, EXIT_UNUSABLE


def test_a_bad_input_with_json_prints_one_object_and_exits_2(capsys, tmp_path):
    code, out, err = run_cli(capsys, "grade", tmp_path / "missing", "--exercise", "tiny-model", "--json")
    assert code == EXIT_UNUSABLE
    assert json.loads(out) == {"error": f"{tmp_path / 'missing'} is not a folder of submissions", "exit_code": 2}
    assert err == f"grader grade: {tmp_path / 'missing'} is not a folder of submissions\n"


def test_an_id_that_is_a_quiz_is_named_as_one(capsys, tmp_path):
    code, out, err = run_cli(capsys, "check", ROOT / "reference" / "notebooks" / "tiny-model.ipynb",
                             "--exercise", "convergence", "--json")
    assert code == EXIT_UNUSABLE
    assert "'convergence' is a quiz: check answers with `grader quiz check ANSWERS --quiz convergence`" in err
    assert json.loads(out)["exercise"] == "convergence" and json.loads(out)["status"] == "invalid"


def test_a_crash_inside_the_grader_has_its_own_exit_code_and_its_traceback(capsys, monkeypatch):
    def broken(args):
        raise ZeroDivisionError("a bug in the grader")

    monkeypatch.setattr(exercises, "run", broken)
    code, out, err = run_cli(capsys, "exercises")
    assert code == EXIT_INTERNAL != 1  # never the code of "some checks failed"
    assert "Traceback" in err and "ZeroDivisionError: a bug in the grader" in err
    assert "internal error" in err


def test_python_dash_m_grader_is_the_grader_command():
    done = subprocess.run([sys.executable, "-m", "grader", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "usage: grader" in done.stdout
