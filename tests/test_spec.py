"""Specs are validated on load; every error names the file and the field."""

import pathlib
import shutil

import pytest

from grader.catalog import UnknownExercise, load_all, load_exercise, load_spec_file
from grader.spec import SpecError

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOOD = (ROOT / "exercises" / "tiny-model" / "spec.toml").read_text()


def spec_at(tmp_path, text, name="tiny-model"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "spec.toml").write_text(text)
    return folder / "spec.toml"


def test_every_shipped_spec_loads():
    exercises = load_all()
    assert "tiny-model" in [e.id for e in exercises]
    assert all(e.spec.notebook_path.is_file() for e in exercises)


@pytest.mark.parametrize("change, where, problem", [
    (("points = 4", "points = \"four\""), "checks[1].points", "expected a non-negative number, got 'four'"),
    (("kind = \"accuracy\"", "kind = \"acuracy\""), "checks[1].kind", "expected one of"),
    (("data = { kind", "dat = { kind"), "checks[1].params.data", "required"),
    (("min_accuracy = 100.0", "min_acuracy = 100.0"), "checks[1].params.min_acuracy", "unknown parameter for accuracy"),
    (("visibility = \"hidden\"", "visibility = \"secret\""), "checks[3].visibility", "expected one of hidden, public"),
    (("input_shape = [2]", "input_shape = [0]"), "exports[0].input_shape", "positive integers"),
    (("cell_timeout_s = 120", "cell_timeout_s = -1"), "limits.cell_timeout_s", "expected a number >= 1"),
    (("requires = [\"own-model\"]\n[checks.params]\ndata", "requires = [\"nope\"]\n[checks.params]\ndata"),
     "checks[1].requires", "expected ids of earlier checks"),
    (("id = \"tiny-model\"", "id = \"tiny\""), "id", "expected the folder name"),
    (("title = \"Exercise 1", "titel = \"Exercise 1"), "title", "required field is missing"),
])
def test_errors_name_the_file_and_the_field(tmp_path, change, where, problem):
    path = spec_at(tmp_path, GOOD.replace(*change, 1))
    with pytest.raises(SpecError) as info:
        load_spec_file(path)
    assert str(info.value).startswith(f"{path}: {where}: "), str(info.value)
    assert problem in str(info.value)


def test_unknown_fields_are_typos(tmp_path):
    path = spec_at(tmp_path, GOOD.replace("[limits]", "[limits]\ncel_timeout = 3"))
    with pytest.raises(SpecError, match=r"limits\.cel_timeout: unknown field \(a typo\?\)"):
        load_spec_file(path)


def test_malformed_toml(tmp_path):
    path = spec_at(tmp_path, "id = ")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec_file(path)


def test_unknown_exercise_lists_the_known(tmp_path):
    shutil.copytree(ROOT / "exercises" / "tiny-model", tmp_path / "tiny-model")
    with pytest.raises(UnknownExercise, match=r"unknown exercise 'tiny' \(known: tiny-model\)"):
        load_exercise("tiny", tmp_path)
