"""The schedulers exercise: replay and step-order in-process, then real notebooks in real kernels."""

import json
import pathlib

import pytest
from torch.optim import lr_scheduler

from grading_support import by_id as checks
from grading_support import round_trip

from grader.assignments.catalog import load_exercise
from grader.checks import CheckContext
from grader.checks.schedulers import ReplayError, lr_family, replay, scheduler_replay, step_orders
from grader.cli import main
from grader.grading.engine import grade_submission
from grader.render.lr_plots import lr_comparison_figure
from grader.kernel.notebook import read_submission
from grader.results import Status
from reference.schedules import COURSE_CONFIGS, dummy_optimizer, lr_history

ROOT = pathlib.Path(__file__).resolve().parent.parent
FILES = pathlib.Path(__file__).parent / "files" / "schedulers"
SOLUTION = ROOT / "reference" / "notebooks" / "schedulers.ipynb"
STUDENT = ROOT / "exercises" / "schedulers" / "schedulers.ipynb"
NAMES = [c.name for c in COURSE_CONFIGS]


# --- in the grader's process: replaying exported schedulers, reading the loop ------------------


def exported(tmp_path, scheduler):
    """The scheduler as the grader receives it: exported as the kernel does, loaded with the safe loaders."""
    return round_trip(tmp_path, {"s": scheduler}, [{"name": "s", "kind": "scheduler"}]).values["s"]


def stepped(scheduler, n=30):
    for _ in range(n):
        scheduler.optimizer.step()
        scheduler.step()
    return scheduler


@pytest.mark.parametrize("config", COURSE_CONFIGS, ids=lambda c: c.name)
def test_every_course_scheduler_replays_to_torchs_own_list(tmp_path, config):
    rebuilt, initial, lrs = replay(exported(tmp_path, stepped(config.build(dummy_optimizer()))))
    assert lrs == pytest.approx(lr_history(config), rel=1e-12)
    assert initial == pytest.approx(0.004 if config.family == "OneCycleLR" else 0.1)
    assert rebuilt.startswith(config.family + "(")


@pytest.mark.parametrize("make", [
    lambda o: lr_scheduler.MultiStepLR(o, milestones=[3, 3, 10], gamma=0.5),
    lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9),
    lambda o: lr_scheduler.LinearLR(o, start_factor=0.2, total_iters=12),
    lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.3, total_steps=45, pct_start=0.2, anneal_strategy="linear",
                                      three_phase=True, div_factor=10, final_div_factor=100),
])
def test_other_torch_schedulers_replay_too(tmp_path, make):
    optimizer = dummy_optimizer()
    scheduler = make(optimizer)
    lrs = []
    for _ in range(30):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert replay(exported(tmp_path, scheduler))[2] == pytest.approx(lrs, rel=1e-9)


def test_a_scheduler_the_grader_cannot_rebuild_is_refused_by_name(tmp_path):
    lambda_lr = stepped(lr_scheduler.LambdaLR(dummy_optimizer(), lambda epoch: 0.9 ** epoch))
    with pytest.raises(ReplayError, match="it is a `LambdaLR`; the grader replays only torch's own StepLR"):
        replay(exported(tmp_path / "a", lambda_lr))

    class StepLR(lr_scheduler.StepLR):  # same name, the student's own code
        pass

    with pytest.raises(ReplayError, match=r"it is a `StepLR` from `[\w.]*test_grading_schedulers`"):
        replay(exported(tmp_path / "b", stepped(StepLR(dummy_optimizer(), step_size=5))))


def test_a_tampered_state_is_refused_not_evaluated(tmp_path):
    export = exported(tmp_path, stepped(lr_scheduler.StepLR(dummy_optimizer(), step_size=5, gamma=0.5)))
    export.state["step_size"] = "__import__('os').system('true')"
    with pytest.raises(ReplayError, match="no usable `step_size`"):
        replay(export)
    export.state["step_size"] = 0
    with pytest.raises(ReplayError, match="torch refuses its settings"):
        replay(export)


def context(tmp_path, **values):
    """A check context for the given live values, exported and loaded as in a real run."""
    exercise = load_exercise("schedulers")
    exports = round_trip(tmp_path, values, [{"name": e.name, "kind": e.kind} for e in exercise.spec.exports])
    return CheckContext(exercise.spec, exports, (), None)


def test_keys_unlike_the_names_get_the_closest_name_suggested_and_other_values_named(tmp_path):
    histories = {c.name.replace(", ", ","): lr_history(c) for c in COURSE_CONFIGS}
    histories["StepLR(step_size=10, gamma=0.2)"] = {"lr": 0.1}
    outcome = lr_family(context(tmp_path, lr_histories=histories), "lr_histories", "StepLR")
    assert outcome.fraction == 0
    assert [c["diagnosis"] for c in outcome.details["curves"].values()] == ["missing", "missing", "not_numbers"]
    assert "StepLR(step_size=10, gamma=0.2): It must be a list of 30 numbers, but it is a dict." in outcome.message
    assert ('StepLR(step_size=5, gamma=0.5): `lr_histories` has no entry "StepLR(step_size=5, gamma=0.5)" (the closest '
            'key is "StepLR(step_size=5,gamma=0.5)"). Use the names in CONFIGS as keys') in outcome.message


def test_one_optimizer_shared_by_all_schedulers_is_named(tmp_path):
    optimizer = dummy_optimizer()
    histories, schedulers = {}, {}
    for config in COURSE_CONFIGS[:3]:
        scheduler = config.build(optimizer)
        histories[config.name] = [stepped(scheduler, 1).optimizer.param_groups[0]["lr"] for _ in range(30)]
        schedulers[config.name] = scheduler
    ctx = context(tmp_path, lr_histories=histories, schedulers=schedulers)
    outcome = lr_family(ctx, "lr_histories", "StepLR")
    assert outcome.metrics["matched"] == 1
    assert ("StepLR(step_size=10, gamma=0.5): This is StepLR(step_size=10, gamma=0.5) on an optimizer starting at "
            "lr=0.0015625; expected lr=0.1. Give every scheduler a fresh SGD(..., lr=0.1)") in outcome.message
    replayed = scheduler_replay(ctx, "lr_histories", "schedulers")
    assert replayed.metrics["verified"] == 0
    assert "such as another scheduler on the same optimizer. Give each scheduler a fresh optimizer" in replayed.message


def cells(*sources):
    return tuple(enumerate(sources, start=1))


def test_step_order_finds_the_scheduler_stepped_first_with_cell_and_line():
    setup = "from torch import optim\nopt = optim.SGD(params, lr=0.1)\ns = optim.lr_scheduler.StepLR(opt, 5)\n"
    loop = "%matplotlib inline\nfor i in range(30):\n    s.step()\n    opt.step()\n"
    assert step_orders(cells(setup, loop)) == [(2, 3, "s", "scheduler-first")]


@pytest.mark.parametrize("loop, verdict", [
    ("for _ in range(30):\n    optimizer.step()\n    scheduler.step()\n", "ok"),
    ("for name in names:\n    for _ in range(30):\n        optimizer.step()\n        scheduler.step()\n", "ok"),
    ("lrs = [(optimizer.step(), scheduler.step(), lr()) for _ in range(30)]\n", "ok"),
    ("while n < 30:\n    scheduler.step()\n    n += 1\n", "alone"),
    ("for _ in range(30):\n    schedulers[name].step()\n    optimizer.step()\n", "scheduler-first"),
])
def test_step_order_verdicts(loop, verdict):
    assert [o[3] for o in step_orders(cells(loop))] == [verdict]


def test_step_order_ignores_loops_without_a_scheduler_and_cells_that_do_not_parse():
    assert step_orders(cells("for x in data:\n    optimizer.step()\n", "def broken(:\n")) == []


# --- real notebooks in real kernels ---------------------------------------------------------


@pytest.fixture(scope="module")
def exercise():
    return load_exercise("schedulers")


@pytest.fixture(scope="module")
def graded(exercise):
    """Each notebook is run once, on first use."""
    results = {}

    def grade(path):
        if path not in results:
            results[path] = grade_submission(read_submission(path), exercise, pathlib.Path(path).stem)
        return results[path]

    return grade


def test_solution_notebook_scores_full_marks(graded):
    result = graded(SOLUTION)
    assert result.status is Status.OK, result.error
    assert result.score == result.max_score == 10
    steplr = checks(result)["steplr"]
    assert steplr.metrics == {"matched": 3, "configs": 3}
    curve = steplr.details["curves"]["StepLR(step_size=5, gamma=0.5)"]
    assert curve["student"] == curve["reference"] == lr_history(COURSE_CONFIGS[0]) and curve["diagnosis"] == "match"
    assert checks(result)["scheduler-runs"].metrics == {"verified": 12, "configs": 12}


def test_untouched_student_notebook_scores_zero_and_says_what_to_define(graded):
    result = graded(STUDENT)
    assert result.status is Status.ERROR and "NotImplementedError" in result.error
    assert result.score == 0
    for check in result.checks:
        assert not check.passed
        assert check.message.startswith("Your notebook must define `lr_histories` (a dict: {configuration name from "
                                        "CONFIGS: the 30 LRs read after each scheduler.step()})"), check.id


def test_reading_the_lr_before_the_step_is_diagnosed_for_every_configuration(graded):
    result = graded(FILES / "record-before-step.ipynb")
    by_id = checks(result)
    for family in ("steplr", "cosine", "warm-restarts", "one-cycle"):
        assert by_id[family].points == 0
        assert {c["diagnosis"] for c in by_id[family].details["curves"].values()} == {"recorded_before_step"}
    assert ("StepLR(step_size=5, gamma=0.5), StepLR(step_size=10, gamma=0.5), StepLR(step_size=10, gamma=0.2): Your "
            "list is shifted by one step: it starts with the initial LR 0.1") in by_id["steplr"].message
    assert "starts with the initial LR 0.004" in by_id["one-cycle"].message
    # The lists are still those schedulers' runs, only read too early: no second penalty.
    assert by_id["scheduler-runs"].passed and by_id["step-order"].passed
    assert result.score == 4


def test_wrong_parameters_are_fitted_and_named(graded):
    result = graded(FILES / "wrong-parameters.ipynb")
    by_id = checks(result)
    assert by_id["steplr"].message == ("2/3 StepLR lists match torch's. StepLR(step_size=5, gamma=0.5): This is "
                                       "StepLR(step_size=5, gamma=0.7); expected gamma=0.5. Use the values given in "
                                       "CONFIGS.")
    assert by_id["one-cycle"].message.endswith(
        "This is OneCycleLR(max_lr=0.1, total_steps=40, pct_start=0.3); expected total_steps=30. The LR peaks at step "
        "11 instead of 8: set total_steps to the number of scheduler.step() calls, 30.")
    assert by_id["warm-restarts"].message.endswith(
        "This is CosineAnnealingWarmRestarts(T_0=5, T_mult=1, eta_min=0.01); expected T_mult=2. Your LR restarts at "
        "steps 5, 10, 15, 20, 25, 30 instead of 5, 15: T_mult multiplies each cycle's length (5, 10, 20 steps).")
    assert [by_id[i].points for i in ("steplr", "cosine", "warm-restarts", "one-cycle")] == [1.0, 1.5, 1.0, 1.0]
    assert by_id["scheduler-runs"].passed and result.score == 8.5
    fig = lr_comparison_figure([by_id[i].details for i in ("steplr", "cosine", "warm-restarts", "one-cycle")])
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 4


def test_hand_typed_lists_are_not_a_scheduler_run(graded):
    result = graded(FILES / "hand-typed.ipynb")
    by_id = checks(result)
    assert all(by_id[i].passed for i in ("steplr", "cosine", "warm-restarts", "one-cycle"))  # the numbers are right
    runs = by_id["scheduler-runs"]
    assert not runs.passed and runs.points == 0 and runs.metrics["verified"] == 0
    assert ("StepLR(step_size=10, gamma=0.2): no scheduler is stored under this name, so nothing shows the list came "
            "from a scheduler run.") in runs.message
    assert "OneCycleLR(max_lr=0.1, total_steps=30, pct_start=0.5): its last_epoch is 0: it was never stepped." \
        in runs.message
    assert by_id["step-order"].message.startswith("No loop in your notebook calls optimizer.step() and then "
                                                  "scheduler.step().")


def test_check_json_follows_the_contract_and_names_the_initial_lr_and_the_step_order(capsys, tmp_path):
    code = main(["check", str(FILES / "scheduler-first.ipynb"), "--json", "--html", str(tmp_path / "f.html")])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1
    assert set(payload) == {"exercise", "student", "status", "score", "max_score", "checks", "error"}
    assert (payload["exercise"], payload["student"], payload["status"]) == ("schedulers", "scheduler-first", "ok")
    assert (payload["score"], payload["max_score"], payload["error"]) == (3, 10, None)
    assert all(set(c) == {"id", "passed", "points", "max_points", "visibility", "message"} for c in payload["checks"])
    by_id = {c["id"]: c for c in payload["checks"]}
    assert [c["id"] for c in payload["checks"]] == ["own-loop", "steplr", "cosine", "warm-restarts", "one-cycle",
                                                   "scheduler-runs", "step-order"]
    assert ("Your list has 31 LRs because it starts with the initial LR 0.1, read before the first scheduler.step()."
            in by_id["cosine"]["message"])
    assert by_id["step-order"]["message"].startswith("scheduler.step() comes before optimizer.step() in your loop: "
                                                     "code cell 2, line 9 (`sched.step()`).")
    assert not by_id["step-order"]["passed"] and by_id["scheduler-runs"]["passed"]
    assert (tmp_path / "f.html").read_text().count("31 LRs") >= 4

