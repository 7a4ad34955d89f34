"""Student notebooks are generated from solution notebooks; the committed ones must match."""

import nbformat
import pytest

from grader.assignments.authoring import AuthoringError, render, strip_solutions, student_notebook
from grader.assignments.catalog import exercise_ids, load_exercise
from grader.cli import main
from grading_support import FILES, ROOT


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_committed_student_notebook_is_what_assign_generates(exercise_id):
    committed = load_exercise(exercise_id).spec.notebook_path.read_text()
    assert committed == render(exercise_id), f"run `grader assign {exercise_id}` and commit the result"


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_student_notebook_has_no_solution_outputs_and_knows_its_exercise(exercise_id):
    nb = nbformat.reads(render(exercise_id), as_version=4)
    assert nb.metadata["grader"]["exercise"] == exercise_id
    text = "\n".join(c.source for c in nb.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "raise NotImplementedError" in text
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def test_tiny_model_student_notebook_hides_the_recipe():
    text = render("tiny-model")
    assert "manual_seed(60)" not in text and "TinyNet" not in text


def test_regions_keep_indentation_and_text():
    source = "def f():\n    # BEGIN SOLUTION: return the answer\n    return 42\n    # END SOLUTION\n"
    assert strip_solutions(source) == ("def f():\n    # TODO: return the answer\n"
                                       "    raise NotImplementedError('TODO: return the answer')")


@pytest.mark.parametrize("source, problem", [
    ("# BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n# END SOLUTION\n", "END SOLUTION without a BEGIN"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "inside another"),
])
def test_unbalanced_markers_are_errors(source, problem):
    with pytest.raises(AuthoringError, match=problem):
        strip_solutions(source)


def test_a_notebook_without_regions_is_refused():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(AuthoringError, match="no BEGIN SOLUTION region"):
        student_notebook(nb, "demo")


def test_assign_command_rewrites_identically(capsys):
    before = {i: load_exercise(i).spec.notebook_path.read_text() for i in exercise_ids()}
    assert main(["assign", "--skip-solution-check"]) == 0  # grading every solution takes minutes (MNIST)
    assert all(load_exercise(i).spec.notebook_path.read_text() == text for i, text in before.items())
    assert "wrote" in capsys.readouterr().out


@pytest.mark.usefixtures("shared_kernel_factory")
def test_assign_refuses_a_solution_short_of_full_marks_and_names_the_check(capsys, monkeypatch, tmp_path):
    """A real kernel grades an author's draft whose 51-parameter model fits: the size check is short of its points."""
    import shutil

    from grader.assignments import authoring

    shutil.copytree(ROOT / "exercises" / "tiny-model", tmp_path / "exercises" / "tiny-model")
    (tmp_path / "solutions").mkdir()
    shutil.copy(FILES / "tiny-model" / "solution-over-budget.ipynb", tmp_path / "solutions" / "tiny-model.ipynb")
    monkeypatch.setenv("GRADER_EXERCISES", str(tmp_path / "exercises"))
    monkeypatch.setattr(authoring, "solutions_root", lambda: tmp_path / "solutions")
    student = tmp_path / "exercises" / "tiny-model" / "tiny-model.ipynb"
    before = student.read_text()
    assert main(["assign", "tiny-model"]) == 1
    out, err = capsys.readouterr()
    assert "wrote" not in out and student.read_text() == before  # nothing released
    assert "tiny-model: not released. Its solution" in err and "scores 8.5/10 on its own checks" in err
    assert ("  - parameter-budget (1.5/3): Your model has 51 parameters for 50% of the points; the full budget is 33."
            in err)
    assert "fits-training-data" not in err  # only what falls short is listed
