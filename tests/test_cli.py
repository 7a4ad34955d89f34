"""The ``grader`` command's one way to report problems: bad input exits 2 with one line, a grader bug exits 3."""

import json
import os
import pathlib
import subprocess
import sys

import nbformat
from grading_support import ROOT, run_cli, student as starting_notebook
from mnist_support import subset_root, unpacked_root
from grader.commands import exercises
from grader.errors import EXIT_INTERNAL, EXIT_UNUSABLE


def test_a_bad_input_with_json_prints_one_object_and_exits_2(capsys, tmp_path):
    code, out, err = run_cli(capsys, "grade", tmp_path / "missing", "--exercise", "tiny-model", "--json")
    assert code == EXIT_UNUSABLE
    assert json.loads(out) == {"error": f"{tmp_path / 'missing'} is not a folder of submissions", "exit_code": 2}
    assert err == f"grader grade: {tmp_path / 'missing'} is not a folder of submissions\n"


def test_a_class_folder_that_kernels_run_from_is_refused_before_anything_is_written(capsys, tmp_path):
    """The checkout's root, graded as a class: kernels need it whole (`from reference import ...`), so it could not be
    hidden, and each kernel would read every classmate's notebook there."""
    book = tmp_path / "grades.sqlite"
    code, out, err = run_cli(capsys, "grade", ROOT, "--exercise", "tiny-model", "--gradebook", book, "--json")
    assert code == EXIT_UNUSABLE
    assert "holds what every kernel runs from" in json.loads(out)["error"]
    assert "put the submissions in a folder of their own" in err and not book.exists()
    # A folder of its own is taken (this one is empty, and says so).
    (tmp_path / "class").mkdir()
    code, _, err = run_cli(capsys, "grade", tmp_path / "class", "--exercise", "tiny-model", "--gradebook", book)
    assert code == EXIT_UNUSABLE and "holds no submissions" in err


def test_an_mnist_root_that_holds_the_class_is_refused_and_a_class_inside_one_stays_hidden(capsys, tmp_path,
                                                                                           tmp_path_factory,
                                                                                           shared_kernel_factory):
    """Kernels see the MNIST root whole (read-only): graded from there, each kernel would read every classmate's
    notebook. A class folder inside the root is hidden from the kernels as any class folder is."""
    root = subset_root(unpacked_root(tmp_path_factory), tmp_path / "data", 64, 64)
    looks = nbformat.read(starting_notebook("mnist-sgd"), as_version=4)
    looks.cells.insert(0, nbformat.v4.new_code_cell(
        "import os\nseen = {}\nfor name in sorted(os.listdir(os.environ['MNIST_ROOT'])):\n"
        "    try:\n        seen[name] = sorted(os.listdir(os.path.join(os.environ['MNIST_ROOT'], name)))\n"
        "    except OSError as e:\n        seen[name] = type(e).__name__\nraise RuntimeError(f'seen: {seen}')"))
    nbformat.write(looks, root / "ada.ipynb")
    book = tmp_path / "grades.sqlite"
    code, out, err = run_cli(capsys, "grade", root, "--exercise", "mnist-sgd", "--data-root", root,
                             "--gradebook", book, "--json")
    assert code == EXIT_UNUSABLE and not book.exists()
    assert json.loads(out)["error"].startswith(f"the MNIST root {root} holds students' work (ada), and every kernel "
                                               "sees that root whole")
    (root / "class").mkdir()
    (root / "ada.ipynb").rename(root / "class" / "ada.ipynb")
    code, out, _ = run_cli(capsys, "grade", root / "class", "--exercise", "mnist-sgd", "--data-root", root,
                           "--gradebook", book, "--json")
    assert code == 0
    error = json.loads(out)["error"]  # the class folder denied (as root) or shown empty: ada's notebook unseen
    assert "seen: {'MNIST': ['raw'], 'class': " in error and "ada.ipynb" not in error


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


# --- conventions every command follows ------------------------------------------------------------------


def _options(parser, path="grader"):
    """(command path, action) for every argument of every (sub-)command."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _options(child, f"{path} {name}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield path, action


def test_version_and_python_dash_m():
    done = subprocess.run([sys.executable, "-m", "grader", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert (done.returncode, done.stdout) == (0, "grader 0.1.0\n")  # the instructor's install: no "student package"


def test_every_option_has_help_and_shows_its_default():
    from grader.cli import HelpFormatter, build_parser

    missing, no_default = [], []
    for path, action in _options(build_parser()):
        name = "/".join(action.option_strings) or action.dest
        if not action.help:
            missing.append(f"{path} {name}")
        # A flag's default is off, and a required option has none; every other one says what it is.
        elif action.option_strings and action.nargs != 0 and not action.required and not any(
                word in HelpFormatter(path)._get_help_string(action) % vars(action)
                for word in ("default", "required")):
            no_default.append(f"{path} {name}")
    assert missing == [] and no_default == []
    helped = subprocess.run([sys.executable, "-m", "grader", "autograder", "--help"], capture_output=True, text=True,
                            cwd=ROOT).stdout
    assert "where to write the zip (default: autograder.zip)" in " ".join(helped.split())


def test_a_usage_error_prints_the_usage_of_the_sub_command_at_fault(capsys, tmp_path):
    import pytest

    for args, usage, error in (
            (["grade", tmp_path, "--exercise", "tiny-model", "--bogus"], "usage: grader grade ",
             "grader grade: error: unrecognized arguments: --bogus"),
            (["quiz", "check"], "usage: grader quiz check ",
             "grader quiz check: error: the following arguments are required: answers"),
            (["export", "--format", "xml"], "usage: grader export ",
             "grader export: error: argument --format: invalid choice: 'xml'")):
        with pytest.raises(SystemExit) as exit_:
            run_cli(capsys, *args)
        err = capsys.readouterr().err
        assert exit_.value.code == EXIT_UNUSABLE and err.startswith(usage), err
        assert error in err and f"(`{usage[7:].strip()} --help` lists every option)" in err


def test_without_a_terminal_progress_is_one_line_per_finished_submission_on_stderr(tmp_path):
    """Quiz answers grade without kernels; stdout and stderr are pipes here, as in CI logs."""
    import re
    import shutil

    answers = tmp_path / "answers"
    answers.mkdir()
    for student, name in (("ada", "perfect.toml"), ("bob", "partial.json"), ("cara", "wrong-quiz.toml")):
        shutil.copy(ROOT / "tests" / "files" / "quizzes" / name, answers / f"{student}{pathlib.Path(name).suffix}")
    (answers / "dave.toml").write_text("q1 = [unclosed\n")  # not TOML: no answer is scored
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(answers), "--exercise", "convergence",
                           "--gradebook", str(tmp_path / "gb.sqlite"), "--workers", "1"], capture_output=True,
                          text=True, cwd=tmp_path, env=dict(os.environ, GRADER_SECRET="progress-test"), timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert len(lines) == 4 and [line[:5] for line in lines] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert re.fullmatch(r"\[\d/4\] ada: ok; 5/5 points \(\d+\.\ds\)", next(x for x in lines if " ada:" in x))
    # Out of the quiz's points, as `grader status` counts it, though no check ran (it read 0/0 before).
    assert "; 0/5 points (" in next(x for x in lines if " dave:" in x)
    assert "grading convergence" not in done.stderr + done.stdout  # no bar drawn into the log


def test_make_workers_count_cores_not_omp_num_threads():
    cores = subprocess.run(["env", "-u", "OMP_NUM_THREADS", "nproc"], capture_output=True, text=True).stdout.strip()
    done = subprocess.run(["make", "-n", "demo"], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert f"--workers {cores}\n" in done.stdout, done.stdout
