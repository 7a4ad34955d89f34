"""The extension tables: a new check kind is one ``@check_kind`` entry, and what depends on kinds follows them."""

import pathlib
import re
import sys

import pytest

from grading_support import ROOT, round_trip
from grader.assignments.catalog import load_exercise, load_spec_file
from grader.assignments.version import code_closure, grader_version, scoring_modules
from grader.checks import REGISTRY, CheckContext, Outcome, Param, check_kind, run_checks
from grader.checks.registry import kinds_markdown
from grader.render.figures import FIGURES

TOY_SPEC = """
id = "toy"
title = "A toy exercise"
[[exports]]
name = "history"
kind = "dict"
[[checks]]
id = "all-epochs"
kind = "history_length"
points = 1
[checks.params]
epochs = 3
"""


@pytest.fixture
def toy_kind():
    """A whole new kind, written the way the README shows; removed again afterwards."""

    @check_kind("history_length", history=Param(str, "history", export=True), epochs=Param(int))
    def history_length(ctx, history, epochs):
        """The run recorded exactly ``epochs`` epochs."""
        n = len(ctx.value(history, "dict").get("train_loss", []))
        return Outcome(n == epochs, f"`{history}` records {n} epochs; the task fixes {epochs}.")

    yield history_length
    del REGISTRY["history_length"]


def toy_exercise(folder: pathlib.Path, spec: str = TOY_SPEC):
    (folder / "toy").mkdir(parents=True, exist_ok=True)
    (folder / "toy" / "spec.toml").write_text(spec)
    return load_spec_file(folder / "toy" / "spec.toml")


def test_a_new_check_kind_is_one_registered_function_plus_its_spec_entry(toy_kind, tmp_path):
    exercise = toy_exercise(tmp_path / "exercises")
    for epochs, passed in ((3, True), (5, False)):
        exports = round_trip(tmp_path / f"export-{epochs}", {"history": {"train_loss": [1.0] * epochs}},
                             [{"name": "history", "kind": "dict"}])
        [result] = run_checks(list(exercise.checks), CheckContext(exercise.spec, exports, (), None), True)
        assert result.passed is passed and result.kind == "history_length"
        assert result.message == f"`history` records {epochs} epochs; the task fixes 3."


def test_a_new_kind_is_validated_like_the_shipped_ones(toy_kind, tmp_path):
    from grader.specs.toml import SpecError

    with pytest.raises(SpecError, match=r"checks\[0\]\.params\.epochs: expected an integer, got 'three'"):
        toy_exercise(tmp_path, TOY_SPEC.replace("epochs = 3", 'epochs = "three"'))


def test_the_readme_lists_every_check_kind_with_its_parameters():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- check kinds: grader exercises --kinds -->\n(.*?)\n<!-- end of check kinds -->", readme,
                      re.S)
    assert block, "the README's list of check kinds is missing its markers"
    assert block.group(1) == kinds_markdown(), "regenerate it with `grader exercises --kinds`"


def test_every_figure_a_kind_names_is_one_the_renderer_draws():
    named = {kind.figure for kind in REGISTRY.values() if kind.figure}
    assert named and named <= set(FIGURES)


def test_every_shipped_check_records_its_kind():
    for exercise_id in ("tiny-model", "schedulers"):
        exercise = load_exercise(exercise_id)
        assert all(check.kind.name == check.spec.kind for check in exercise.checks)


# --- the recorded version follows the code that scores ------------------------------------------------


def test_the_version_covers_the_check_code_and_the_reference_code_it_uses():
    files = {p.relative_to(ROOT).as_posix() for p in code_closure(scoring_modules(load_exercise("tiny-model")))}
    assert {"grader/checks/models.py", "grader/checks/static.py", "grader/checks/base.py",
            "grader/checks/data.py", "reference/data.py"} <= files
    assert "grader/checks/schedulers.py" not in files  # a fix elsewhere does not regrade tiny-model


def test_a_changed_check_or_spec_changes_the_version(tmp_path, monkeypatch):
    package = tmp_path / "toychecks"
    package.mkdir()
    module = package / "length.py"
    module.write_text(
        "from grader.checks import Outcome, Param, check_kind\n\n\n"
        "@check_kind('history_length', history=Param(str, 'history', export=True), epochs=Param(int))\n"
        "def history_length(ctx, history, epochs):\n"
        "    '''The run recorded exactly ``epochs`` epochs.'''\n"
        "    return Outcome(True, 'fine')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        __import__("toychecks.length")
        exercise = toy_exercise(tmp_path / "exercises")
        first = grader_version(exercise)
        assert grader_version(exercise) == first
        module.write_text(module.read_text().replace("'fine'", "'fixed'"))
        code_closure.cache_clear()
        fixed = grader_version(exercise)
        assert fixed != first
        exercise = toy_exercise(tmp_path / "exercises", TOY_SPEC.replace("points = 1", "points = 2"))
        assert grader_version(exercise) not in (first, fixed)
    finally:
        REGISTRY.pop("history_length", None)
        sys.modules.pop("toychecks.length", None)
        sys.modules.pop("toychecks", None)
        code_closure.cache_clear()


def test_a_gate_says_it_withholds_points_only_where_the_check_alone_would_give_some():
    """A gated check that failed with a share (half the size points, say) gets none, and says why; one that failed
    outright needs no word on the gate."""
    bound = next(c for c in load_exercise("tiny-model").checks if c.spec.id == "parameter-budget")
    share = bound.result(Outcome(False, "Your model has 40 parameters, for half the points.", fraction=0.5), "a-network")
    assert share.points == 0 and share.message == ("Not credited until `a-network` passes. Your model has 40 "
                                                   "parameters, for half the points.")
    none = bound.result(Outcome(False, "Your model has 900 parameters."), "a-network")
    assert none.points == 0 and none.message == "Your model has 900 parameters."
