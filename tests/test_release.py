"""``grader release``: the student package installs with one pip install, checks a notebook, and holds no solution."""

import json
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from grading_support import ROOT, run_cli, solution
from grader.assignments.catalog import load_all
from grader.quizzes.answers import read_answers
from grader.quizzes.model import load_quiz
from grader.store.release import Tree, forbidden_modules
from venv_support import fresh_venv, offline_env

WHEEL = "training_dynamics_grader-0.1.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The whole release, as the instructor writes it: (folder, stdout, stderr)."""
    out = tmp_path_factory.mktemp("release") / "students"
    # In a folder without grader.toml, so the course name is the default one.
    done = subprocess.run([sys.executable, "-m", "grader", "release", "--out", str(out)], capture_output=True,
                          text=True, timeout=300, cwd=out.parent)
    assert done.returncode == 0, done.stderr
    return out, done.stdout, done.stderr


@pytest.fixture(scope="module")
def installed(release, tmp_path_factory):
    """A fresh venv with the student wheel installed by one `pip install`: its bin folder."""
    folder, _, _ = release
    bin_folder = fresh_venv(tmp_path_factory.mktemp("student") / "venv")
    done = subprocess.run([str(bin_folder / "python"), "-m", "pip", "install", str(folder / "dist" / WHEEL)],
                          capture_output=True, text=True, timeout=300, env=offline_env(bin_folder))
    assert done.returncode == 0, done.stdout + done.stderr
    return bin_folder


def solution_regions() -> dict[str, str]:
    """Every ``# BEGIN SOLUTION`` region of the solution notebooks, as stripped non-blank lines."""
    regions = {}
    for path in sorted((ROOT / "reference" / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for i, match in enumerate(re.finditer(r"# BEGIN SOLUTION[^\n]*\n(.*?)# END SOLUTION", code, re.DOTALL)):
            regions[f"{path.stem} region {i + 1}"] = normalised(match.group(1))
    return regions


def normalised(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def readable(name: str, data: bytes) -> str:
    """A file's text as a reader sees it; a notebook's code cells joined."""
    text = data.decode("utf-8", errors="replace")
    if name.endswith(".ipynb"):
        text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
    return normalised(text)


def test_the_release_holds_the_notebooks_the_quizzes_and_one_wheel(release):
    folder, stdout, stderr = release
    ids = sorted(e.id for e in load_all())
    assert sorted(p.stem for p in (folder / "notebooks").iterdir()) == ids
    for exercise_id in ids:  # the student notebooks, byte for byte
        assert (folder / "notebooks" / f"{exercise_id}.ipynb").read_bytes() == \
            (ROOT / "exercises" / exercise_id / f"{exercise_id}.ipynb").read_bytes()
    assert [p.name for p in (folder / "dist").iterdir()] == [WHEEL]
    assert f"python -m pip install dist/{WHEEL}" in (folder / "README.md").read_text()
    assert re.fullmatch(rf"wrote {folder}: 7 notebook\(s\), 3 quiz\(zes\), dist/{WHEEL} \(0\.\d MB\)",
                        stdout.splitlines()[0])
    assert stdout.splitlines()[1] == (
        "left out: the solution notebooks, the tests, the examples; reference solutions: reference.demos, "
        "reference.exercises, reference.extras.tiny_search, reference.extras.vectorised, "
        "reference.mnist.experiments, reference.mnist.training")
    # What the self-check cannot do without is kept, and said so, with what imports it.
    assert ("warning: reference.schedules is in the package, although the own-work check of schedulers forbids "
            "it: needed by grader.checks.schedulers; grader.diagnosis.lr_fitting") in stderr
    assert ("warning: reference.training is in the package, although the own-work check of early-stopping forbids "
            "it: needed by a course helper (`from reference import ...`); grader.checks.seeds; the random-seeds "
            "notebook") in stderr


def test_no_solution_notebook_solution_source_or_secret_is_inside(release):
    folder, _, stderr = release
    with zipfile.ZipFile(folder / "dist" / WHEEL) as wheel:
        inside = {name: wheel.read(name) for name in wheel.namelist()}
    files = inside | {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert not [n for n in files if "reference/notebooks" in n or n.startswith(("tests/", "examples/"))]
    assert not [n for n in files if n.endswith((".secret", ".sqlite"))]
    # Every module an own-work check forbids is absent, or reported above as kept, with a reason.
    tree = Tree(ROOT)
    forbidden = forbidden_modules(tree, load_all())
    shipped = {m for m, path in tree.files.items() if path.relative_to(ROOT).as_posix() in inside}
    assert "reference.extras.tiny_search" in forbidden and "reference.extras.tiny_search" not in shipped
    assert sorted(forbidden.keys() & shipped) == ["reference.schedules", "reference.training"]
    assert all(f"warning: {m} is in the package" in stderr for m in forbidden.keys() & shipped)
    # Not one solution region of any solution notebook, anywhere: not in the wheel, not in the folder.
    texts = {name: readable(name, data) for name, data in files.items() if not name.endswith(".whl")}
    regions = solution_regions()
    assert len(regions) == 8
    assert [(r, name) for r, code in regions.items() for name, text in texts.items() if code in text] == []


def test_quizzes_come_as_questions_and_an_answers_file_without_the_keys(release):
    folder, _, _ = release
    sheet = (folder / "quizzes" / "convergence.md").read_text()
    assert sheet.startswith("# How the learning-rate strategy affects convergence\n")
    assert "## 1. What does the learning rate of a PyTorch optimizer control?" in sheet
    assert "- **C.** How large each weight update is" in sheet
    assert "explanation" not in sheet and "key C" not in sheet and "answer" not in sheet.replace("answers", "")
    answers = read_answers(folder / "quizzes" / "convergence-answers.toml")
    assert answers.error is None and answers.quiz == "convergence"
    assert answers.answers == {q.id: "" for q in load_quiz("convergence").questions}


def test_one_pip_install_gives_the_self_check_only(installed):
    env = offline_env(installed)
    version = subprocess.run(["grader", "--version"], capture_output=True, text=True, env=env)
    assert version.stdout == "grader 0.1.0 (student package: self-check only)\n"
    helped = subprocess.run(["grader", "--help"], capture_output=True, text=True, env=env).stdout
    assert re.findall(r"^    (\w+) ", helped, re.MULTILINE) == ["check", "quiz", "exercises"]
    where = subprocess.run(["python", "-c", "import grader, reference; print(grader.__file__, reference.__file__)"],
                           capture_output=True, text=True, env=env, cwd=installed).stdout
    assert str(ROOT) not in where and "site-packages" in where  # the wheel's copy, not the checkout
    listed = subprocess.run(["grader", "exercises"], capture_output=True, text=True, env=env, cwd=installed)
    assert listed.returncode == 0 and "tiny-model" in listed.stdout and "schedulers" in listed.stdout


def test_the_installed_package_checks_a_notebook(installed, tmp_path):
    """A solved notebook, outside any checkout, checked by the student package as the official run would."""
    work = tmp_path / "my-course"
    work.mkdir()
    shutil.copy(solution("tiny-model"), work / "tiny-model.ipynb")
    done = subprocess.run(["grader", "check", "tiny-model.ipynb", "--json"], capture_output=True, text=True,
                          env=offline_env(installed), cwd=work, timeout=600)
    result = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert (result["status"], result["score"], result["max_score"]) == ("ok", 8, 8)
    assert [c["id"] for c in result["checks"]] == ["own-model", "a-network", "fits-training-data",
                                                        "parameter-budget"]
    assert (work / "tiny-model.feedback.html").is_file()


def test_a_release_of_some_assignments_and_the_instructors_install_keeps_everything(tmp_path, capsys):
    code, _, err = run_cli(capsys, "release", "--out", tmp_path / "week1", "--assignment", "tiny-model",
                           "--assignment", "convergence")
    assert code == 0, err
    assert [p.name for p in (tmp_path / "week1" / "notebooks").iterdir()] == ["tiny-model.ipynb"]
    assert sorted(p.name for p in (tmp_path / "week1" / "quizzes").iterdir()) == ["convergence-answers.toml",
                                                                                  "convergence.md"]
    with zipfile.ZipFile(tmp_path / "week1" / "dist" / WHEEL) as wheel:
        course = sorted(n for n in wheel.namelist() if n.startswith("grader/course/exercises/"))
        marker = json.loads(wheel.read("grader/course/release.json"))
    assert course == [f"grader/course/exercises/{name}" for name in (
        "calibration.json", "quizzes/convergence.toml", "tiny-model/spec.toml", "tiny-model/tiny-model.ipynb")]
    assert marker == {"assignments": ["tiny-model", "convergence"], "commands": ["check", "quiz", "exercises"]}
    # The checkout is untouched and its grader is the instructor's, with every command.
    assert len(list((ROOT / "reference" / "notebooks").glob("*.ipynb"))) == 7
    with pytest.raises(SystemExit):
        run_cli(capsys, "--help")
    out = capsys.readouterr().out
    assert {"grade", "release", "autograder", "assign"} <= set(re.findall(r"^    (\w+) ", out, re.MULTILINE))
    # A release never writes over a folder that holds something.
    code, _, err = run_cli(capsys, "release", "--out", tmp_path / "week1")
    assert code == 2 and "not an empty folder" in err
