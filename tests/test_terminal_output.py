"""What the terminal shows is exactly what the checks said: no markup eaten, shared problems said once, honest status."""

import pathlib

import pytest
import torch
from rich.console import Console

from grading_support import round_trip
from grader.render.terminal import print_submission, shared_problems, status_label
from grader.results import CheckResult, PendingCheck, Status, SubmissionResult


def _printed(result: SubmissionResult) -> str:
    console = Console(record=True, width=250)
    print_submission(result, console)
    return console.export_text()


def _check(check_id: str, passed: bool, message: str, details: dict | None = None) -> CheckResult:
    return CheckResult(check_id, passed, float(passed), 1.0, "public", message, details=details or {})


def test_brackets_in_messages_titles_and_notes_print_as_written():
    message = "shapes [s31, 2] X [3, 4]; [red]not a style[/red] and [bold]"
    result = SubmissionResult("tiny-model", "[ada]", Status.ERROR, (_check("fit", False, message),),
                              error="cell [2] raised", note="graded [x].ipynb")
    text = _printed(result)
    assert message in text and "tiny-model: [ada]" in text
    assert "Note: graded [x].ipynb" in text and "Note: cell [2] raised" in text


def test_a_narrow_terminal_keeps_every_message_as_a_block_under_its_check():
    """Under 70 columns the table squeezed the messages column away: the self-check said FAIL and nothing else."""
    message = "Your model has 195 parameters, over the 33-parameter budget: use fewer hidden units."
    result = SubmissionResult("tiny-model", "s", Status.OK, (_check("parameter-budget", False, message),),
                              pending=(PendingCheck("fresh-data", "Generalises to fresh data", 2),))
    console = Console(record=True, width=40)
    print_submission(result, console, title="Tiny model")
    text = console.export_text()
    assert "parameter-budget  FAIL  0/1" in text and "fresh-data (hidden)  later  –/2" in text
    assert " ".join(text.split()).count(message) == 1 and "┃" not in text
    assert all(len(line) <= 40 for line in text.splitlines())
    wide = Console(record=True, width=100)
    print_submission(result, wide, title="Tiny model")
    assert "┃" in wide.export_text()  # the table, where it fits


def test_ok_is_green_only_when_every_check_passed():
    passed = SubmissionResult("x", "s", Status.OK, (_check("a", True, ""),))
    failed = SubmissionResult("x", "s", Status.OK, (_check("a", True, ""), _check("b", False, "")))
    assert status_label(passed) == ("ok", "ok")
    assert status_label(failed) == ("ok, 1 of 2 checks failed", "failed")
    assert status_label(SubmissionResult("x", "s", Status.TIMEOUT)) == ("timeout", "timeout")


def test_a_problem_shared_by_two_checks_becomes_one_banner_and_a_lone_one_stays_inline():
    missing = {"needs": "history", "problem": "Your notebook must define `history`."}
    run = {"needs": "*", "problem": "the kernel died (exit code 3)"}
    result = SubmissionResult("x", "s", Status.OK, (
        _check("a", False, "Your notebook must define `history`.", missing),
        _check("b", False, "Your notebook must define `history`.", missing),
        _check("c", False, "`model` is still empty.", {"needs": "model", "problem": "`model` is still empty."}),
        _check("d", True, "fine")))
    banners, banner_of = shared_problems(result)
    assert [(b.needs, b.checks) for b in banners] == [("history", ("a", "b"))] and set(banner_of) == {"a", "b"}
    text = _printed(result)
    assert text.count("Your notebook must define `history`.") == 1 and "Needed by: a, b" in text
    assert text.count("Needs `history` first: see the note above.") == 2 and "`model` is still empty." in text
    assert [c["message"] for c in result.to_json()["checks"]][:2] == ["Your notebook must define `history`."] * 2
    died = SubmissionResult("x", "s", Status.ERROR, (_check("a", False, "Not graded: ...", run),
                                                     _check("b", False, "Not graded: ...", run)),
                            error="the kernel died (exit code 3)")
    text = _printed(died)
    assert "Nothing could be checked: the kernel died (exit code 3)" in text
    assert text.count("the kernel died") == 1  # not again as the run's note under the table
    assert text.count("Needs your notebook to run to the end first") == 2


def test_checks_left_to_the_official_run_are_neither_failures_nor_hidden():
    result = SubmissionResult("x", "s", Status.OK, (_check("a", True, "fine"),), pending=(
        PendingCheck("probe", "", 2, "Checked in the official run: it needs `grader_run`."),
        PendingCheck("fresh", "Fresh data", 1)))
    text = _printed(result)
    assert "probe" in text and "probe (hidden)" not in text and "not here" in text
    assert "Checked in the official run: it needs `grader_run`." in text
    assert "(+1 points in hidden checks, graded later)" in text  # the official-run check is not hidden


def test_a_model_for_three_inputs_is_explained_in_the_students_terms(tmp_path: pathlib.Path):
    """Exported for 3 features, measured on the 2-D points: the message counts inputs, not tensor shapes."""
    from grader.checks.base import CheckFailed
    from grader.checks.models import measured_accuracy
    from reference import generate_checkerboard_dataset

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    exports = round_trip(tmp_path, {"model": model}, [{"name": "model", "kind": "model", "input_shape": [3]}])
    points = generate_checkerboard_dataset(n_per_cell=20, noise=0.1, seed=0)
    with pytest.raises(CheckFailed) as failed:
        measured_accuracy(exports.values["model"], points.X, points.Y)
    assert failed.value.message == ("Your model takes 3 inputs; the points have 2 (their x and y). Make its first layer take 2 "
                       "inputs: nn.Linear(2, ...).")
