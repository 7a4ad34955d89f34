"""The Gradescope autograder installs with the image's Python and grades: its scripts run on a simulated /autograder.

Gradescope's default image is Ubuntu 22.04, whose python3 is 3.10: the package must install there.
vermin reads the source for anything newer than 3.10; the zip's ``setup.sh`` and ``run_autograder``
then run for real, with ``$AUTOGRADER_ROOT`` standing for /autograder and a fresh venv's python3
first on PATH (it reuses this venv's third-party packages, so pip needs no index: see venv_support).
"""

import json
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from grading_support import FILES, ROOT, run_cli, solution
from grader.grading.secrets import fingerprint, load_secret
from grader.store.autograder import MIN_PYTHON
from venv_support import fresh_venv, offline_env

try:
    import tomllib  # novermin - the tomli backport on Python 3.10
except ModuleNotFoundError:
    import tomli as tomllib

SECRET = "the-course-secret-for-this-term"
TEST_KEYS = {"name", "score", "max_score", "output", "visibility"}


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    """A course folder with grader.toml, its autograder zip, and a simulated /autograder after setup.sh."""
    base = tmp_path_factory.mktemp("gradescope")
    course = base / "course"
    course.mkdir()
    (course / "grader.toml").write_text('[course]\nname = "Training dynamics, spring term"\n\n'
                                        '[grading]\nsecret_file = "class.secret"\n')
    (course / "class.secret").write_text(SECRET + "\n")
    built = subprocess.run([sys.executable, "-m", "grader", "autograder", "--exercise", "tiny-model", "--out",
                            str(base / "autograder.zip")], capture_output=True, text=True, cwd=course, timeout=120)
    assert built.returncode == 0, built.stderr
    root = base / "autograder"  # stands for /autograder
    for folder in ("source", "submission", "results"):
        (root / folder).mkdir(parents=True)
    with zipfile.ZipFile(base / "autograder.zip") as archive:
        archive.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):  # zipfile drops the mode bits: restore them, as Gradescope does
        (root / "source" / script).chmod(0o755)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    bin_folder = fresh_venv(base / "venv")
    # PIP_NO_BUILD_ISOLATION=0 (pip's spelling of "off"): the build backend comes from the shared packages.
    env = offline_env(bin_folder, AUTOGRADER_ROOT=str(root), PIP_NO_BUILD_ISOLATION="0")
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], capture_output=True, text=True, env=env,
                           cwd=root / "source", timeout=600)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    return root, env, built.stdout, setup.stdout


def run_autograder(root, env, submission):
    """Gradescope's run for one submission: the folder emptied, the files copied in, results.json read back."""
    shutil.rmtree(root / "submission")
    (root / "submission").mkdir()
    for name, path in submission.items():
        shutil.copy(path, root / "submission" / name)
    (root / "results" / "results.json").unlink(missing_ok=True)
    done = subprocess.run([str(root / "run_autograder")], capture_output=True, text=True, env=env, cwd=root,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((root / "results" / "results.json").read_text())


def assert_gradescope_schema(results: dict) -> None:
    assert set(results) <= {"score", "output", "tests", "stdout_visibility", "execution_time", "visibility"}
    assert isinstance(results["score"], (int, float)) and isinstance(results["tests"], list)
    for test in results["tests"]:
        assert TEST_KEYS <= set(test)
        assert test["visibility"] in {"hidden", "after_due_date", "after_published", "visible"}
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))


def test_the_package_runs_on_python_3_10_as_a_static_check_reads_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10" and MIN_PYTHON == (3, 10)
    assert "tomli>=2; python_version < '3.11'" in project["dependencies"]
    vermin = [sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())"]
    done = subprocess.run([*vermin, "--no-tips", "--violations", "--eval-annotations", "-t=3.10-", "grader",
                           "reference"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr  # each use newer than 3.10, with its file and line


def test_setup_installs_with_the_images_python3_and_the_course_secret(autograder):
    root, env, built, setup = autograder
    assert "python3 -m pip install \"$ROOT/source\"" in (root / "source" / "setup.sh").read_text()
    assert "Successfully installed training-dynamics-grader-0.1.0" in setup
    where = subprocess.run(["python3", "-c", "import grader; print(grader.__file__)"], capture_output=True,
                           text=True, env=env, cwd=root).stdout
    assert where.startswith(str(root.parent / "venv")), where  # the installed package, not a checkout
    # The instructor's wheel keeps everything: the course's files inside the package, the solution notebooks.
    site = pathlib.Path(where.strip()).parents[1]
    assert (site / "grader" / "course" / "exercises" / "tiny-model" / "spec.toml").is_file()
    assert len(list((site / "reference" / "notebooks").glob("*.ipynb"))) == 7
    # The secret grader.toml names, so Gradescope's hidden checks draw what local grading draws.
    assert load_secret(root / "source" / "instructor.secret") == SECRET.encode()
    assert (f"hidden checks use the secret from {root.parent / 'course' / 'class.secret'} "
            f"(fingerprint {fingerprint(SECRET.encode())}), as local grading does") in built


def test_a_good_submission_gets_full_marks_and_the_kernel_sees_no_solution_or_secret(autograder, tmp_path):
    root, env, _, _ = autograder
    notebook = json.loads(solution("tiny-model").read_text())
    probe = (f"import os\nseen = [p for p in ({str(root / 'source' / 'instructor.secret')!r}, "
             f"{str(root / 'source' / 'reference' / 'notebooks')!r}) if os.path.exists(p)]\n"
             "assert not seen, f'the kernel can see {seen}'\n")
    notebook["cells"].append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                              "source": probe})
    (tmp_path / "work.ipynb").write_text(json.dumps(notebook))
    results = run_autograder(root, env, {"my-work.ipynb": tmp_path / "work.ipynb"})
    assert_gradescope_schema(results)
    assert results["score"] == 10 and results["output"] == "tiny-model: 10/10 (ok)"
    assert [(t["name"], t["score"], t["visibility"]) for t in results["tests"]] == [
        ("tiny-model: Your own model, not the reference solution", 1, "visible"),
        ("tiny-model: A network that learns, not a fixed rule", 0, "visible"),
        ("tiny-model: 100% training accuracy", 4, "visible"),
        ("tiny-model: At most 33 parameters", 3, "visible"),
        ("tiny-model: Generalises to a fresh low-noise set", 2, "after_published")]
    assert {t["status"] for t in results["tests"]} == {"passed"}  # said per test: a 0-point gate has no score to tell


def test_a_broken_submission_gets_a_result_with_its_reason(autograder):
    root, env, _, _ = autograder
    results = run_autograder(root, env, {"my-work.ipynb": FILES / "not-a-notebook.ipynb"})
    assert_gradescope_schema(results)
    # out of the spec's full points: an unusable notebook has no checks, yet the assignment is worth 10
    assert results["score"] == 0 and results["output"].startswith("tiny-model: 0/10 (invalid)")
    [test] = results["tests"]
    assert test["name"] == "tiny-model: notebook run" and test["output"].startswith("Status invalid: ")
    assert "not a Jupyter notebook" in test["output"]


def test_gradescope_export_takes_one_assignment(tmp_path, capsys, monkeypatch):
    """Two quizzes graded into one gradebook (no kernel needed); the export keeps the one asked for."""
    answers = tmp_path / "answers"
    answers.mkdir()
    shutil.copy(FILES / "quizzes" / "perfect.toml", answers / "ada.toml")
    book = tmp_path / "class.sqlite"
    monkeypatch.setenv("GRADER_SECRET", "export-test")
    for quiz in ("convergence", "lr-schedulers"):
        (answers / "ada.toml").write_text((FILES / "quizzes" / "perfect.toml").read_text()
                                          .replace('quiz = "convergence"', f'quiz = "{quiz}"'))
        assert run_cli(capsys, "grade", answers, "--exercise", quiz, "--gradebook", book, "--regrade")[0] == 0
    code, _, err = run_cli(capsys, "export", "--gradebook", book, "--format", "gradescope", "--out",
                           tmp_path / "gs", "--assignment", "convergence")
    assert code == 0, err
    results = json.loads((tmp_path / "gs" / "ada" / "results.json").read_text())
    assert_gradescope_schema(results)
    assert {t["name"].split(":")[0] for t in results["tests"]} == {"convergence"}
    code, _, err = run_cli(capsys, "export", "--gradebook", book, "--format", "gradescope", "--out",
                           tmp_path / "gs2", "--assignment", "tiny-model")
    assert code == 2 and "has no results for tiny-model (it has: convergence, lr-schedulers)" in err
