"""Specs are validated on load; every error names the file and the field."""

import pathlib
import shutil

import pytest

from grader.assignments.catalog import load_all, load_exercise, load_spec_file
from grader.errors import UnknownAssignment
from grader.specs.toml import SpecError

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
    (("points = 4", "points = \"four\""), "checks[2].points", "expected a non-negative number, got 'four'"),
    (("kind = \"accuracy\"", "kind = \"acuracy\""), "checks[2].kind", "expected one of"),
    (("data = { kind", "dat = { kind"), "checks[1].params.data", "required"),
    (("min_accuracy = 100.0", "min_acuracy = 100.0"), "checks[2].params.min_acuracy", "unknown parameter for accuracy"),
    (("visibility = \"hidden\"", "visibility = \"secret\""), "checks[4].visibility", "expected one of hidden, public"),
    (("input_shape = [2]", "input_shape = [0]"), "exports[0].input_shape", "positive integers"),
    (("cell_timeout_s = 120", "cell_timeout_s = -1"), "limits.cell_timeout_s", "expected a number >= 1"),
    (("requires = [\"own-model\", \"a-network\"]\n[checks.params]\ndata",
      "requires = [\"nope\"]\n[checks.params]\ndata"), "checks[2].requires", "expected ids of earlier checks"),
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
    with pytest.raises(UnknownAssignment, match=r"unknown exercise 'tiny' \(known: tiny-model\)"):
        load_exercise("tiny", tmp_path)


# --- what a spec names is validated when it loads, not when a student is graded ----------------------

SCHEDULERS = (ROOT / "exercises" / "schedulers" / "spec.toml").read_text()
MNIST = (ROOT / "exercises" / "mnist-sgd" / "spec.toml").read_text()


@pytest.mark.parametrize("name, text, change, where, problem", [
    ("schedulers", SCHEDULERS, ('family = "StepLR"', 'family = "StepLRR"'), "checks[1].params.family",
     "expected one of CosineAnnealingLR, CosineAnnealingWarmRestarts, OneCycleLR, StepLR, got 'StepLRR'"),
    ("mnist-sgd", MNIST, ('reference = "MnistMLP"', 'reference = "MnistMPL"'), "checks[2].params.reference",
     "expected one of MnistCNN, MnistMLP, SimpleMLP, TinyMLP, got 'MnistMPL'"),
    ("tiny-model", GOOD, ('data = { kind = "checkerboard"', 'data = { kind = "chequerboard"'),
     "checks[1].params.data", "expected a data kind, one of checkerboard, mnist, got kind = 'chequerboard'"),
    ("tiny-model", GOOD, ("noise = 0.1, seed = 0 }\nmin", "noise = -1, seed = 0 }\nmin"), "checks[2].params.data",
     "noise must be a non-negative number, got -1"),
    ("tiny-model", GOOD, ('seed = "hidden" }\nmin', 'seed = "secret" }\nmin'), "checks[4].params.data",
     'seed must be a non-negative integer or "hidden", got \'secret\''),
    ("tiny-model", GOOD, ("min_accuracy = 100.0", 'min_accuracy = "100"'), "checks[2].params.min_accuracy",
     "expected a number, got '100'"),
    ("tiny-model", GOOD, ("tiers = [[33, 1.0]", "tiers = [[33, 2.0]"), "checks[3].params.tiers",
     "expected [[max_params, share], ...] with shares from 0 to 1"),
    ("tiny-model", GOOD, ('forbidden_names = ["fit_recipe"', 'forbidden_names = [3, "fit_recipe"'),
     "checks[0].params.forbidden_names", "expected a list of strings, got [3,"),
    ("tiny-model", GOOD, ('kind = "model"\ninput_shape', 'kind = "modell"\ninput_shape'), "exports[0].kind",
     "expected one of dataloader, dict, function, integer, list, model, model_dict"),
    ("tiny-model", GOOD, ("input_shape = [2]\n", ""), "exports[0].input_shape", "required for models"),
    ("tiny-model", GOOD, ("[checks.params]\nforbidden", '[checks.params]\nexport = "modle"\nforbidden'),
     "checks[0].params.export", "refers to export 'modle', which [[exports]] lacks"),
    ("tiny-model", GOOD, ('boundary_data = { kind = "checkerboard"', 'boundary_data = { kind = "spiral"'),
     "feedback.boundary_data", "expected a data kind"),
    ("tiny-model", GOOD, ('models = ["model"]', 'models = ["net"]'), "feedback", "names the export 'net'"),
])
def test_what_a_spec_names_is_checked_on_load(tmp_path, name, text, change, where, problem):
    assert change[0] in text, "the test's edit must apply"
    path = spec_at(tmp_path, text.replace(*change, 1), name)
    with pytest.raises(SpecError) as info:
        load_spec_file(path)
    assert str(info.value).startswith(f"{path}: {where}: "), str(info.value)
    assert problem in str(info.value)


def test_grader_exercises_reports_an_author_error_with_file_and_field_unmangled(tmp_path, monkeypatch, capsys):
    from grading_support import run_cli

    spec_at(tmp_path, GOOD.replace("points = 4", "points = \"four\"", 1))
    monkeypatch.setenv("GRADER_EXERCISES", str(tmp_path))
    code, out, err = run_cli(capsys, "exercises")
    assert code == 2
    assert err.strip().endswith("tiny-model/spec.toml: checks[2].points: expected a non-negative number, got 'four'")
    assert "Traceback" not in err
