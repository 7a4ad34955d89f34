"""Every diagnosis of ``grader.diagnosis.lr_fitting`` on lists made by real torch schedulers, read or set up wrongly."""

import math

import matplotlib
import pytest
from torch.optim import lr_scheduler

from grader.diagnosis.lr_fitting import restarts, same
from grader.diagnosis.lr_messages import CodeHints, diagnose, diagnose_shared, shared_lists
from grader.render.lr_plots import lr_comparison_figure
from reference.schedules import (COURSE_CONFIGS, SchedulerConfig, closed_form_history, dummy_optimizer, lr_history,
                                 stepped_lrs)

CONFIGS = {c.name: c for c in COURSE_CONFIGS}
STEP = CONFIGS["StepLR(step_size=5, gamma=0.5)"]
COSINE = CONFIGS["CosineAnnealingLR(T_max=30, eta_min=0.05)"]
RESTARTS_5_2 = CONFIGS["CosineAnnealingWarmRestarts(T_0=5, T_mult=2, eta_min=0.01)"]
RESTARTS_7_3 = CONFIGS["CosineAnnealingWarmRestarts(T_0=7, T_mult=3, eta_min=0.05)"]
ONE_CYCLE = CONFIGS["OneCycleLR(max_lr=0.1, total_steps=30, pct_start=0.3)"]


def record(config: SchedulerConfig, steps: int = 30, read=None, before: bool = False, warm_up: int = 0) -> list[float]:
    """A student's loop with real torch objects; ``read(optimizer, scheduler)`` picks what gets recorded."""
    optimizer = dummy_optimizer()
    scheduler = config.build(optimizer)
    read = read or (lambda o, s: o.param_groups[0]["lr"])
    for _ in range(warm_up):  # steps taken before the loop
        optimizer.step()
        scheduler.step()
    lrs = []
    for _ in range(steps):
        if before:
            lrs.append(read(optimizer, scheduler))
        optimizer.step()
        scheduler.step()
        if not before:
            lrs.append(read(optimizer, scheduler))
    return lrs


def like(config: SchedulerConfig, **changes) -> list[float]:
    """torch's run of ``config`` with some parameters changed."""
    return lr_history(SchedulerConfig(config.family, config.params | changes))


@pytest.mark.parametrize("config", COURSE_CONFIGS, ids=lambda c: c.name)
def test_torch_runs_and_their_closed_forms_match(config):
    assert diagnose(config, record(config)).kind == "match"
    assert diagnose(config, closed_form_history(config)).kind == "match"


@pytest.mark.parametrize("config", COURSE_CONFIGS, ids=lambda c: c.name)
def test_reading_the_lr_before_the_step_is_a_shift_by_one(config):
    found = diagnose(config, record(config, before=True))
    assert found.kind == "recorded_before_step"
    initial = 0.004 if config.family == "OneCycleLR" else 0.1
    assert f"starts with the initial LR {initial:g}" in found.message
    assert "as the LR read before scheduler.step() gives, or a formula of the step count that starts one step early" \
        in found.message


def test_the_initial_lr_in_front_makes_31_values():
    lrs = [0.1] + record(STEP)
    found = diagnose(STEP, lrs)
    assert found.kind == "initial_lr_included"
    assert found.message.startswith("Your list has 31 LRs because it starts with the initial LR 0.1")
    assert found.student == tuple(lrs) and len(found.reference) == 30


def test_the_initial_lr_in_front_of_a_wrong_list_names_both_mistakes():
    found = diagnose(STEP, [0.1] + like(STEP, gamma=0.7))
    assert found.kind == "initial_lr_included"
    assert "The other 30: This is StepLR(step_size=5, gamma=0.7); expected gamma=0.5." in found.message


def test_a_scheduler_stepped_before_the_optimizer_gives_the_same_lrs_so_only_the_code_shows_it():
    optimizer = dummy_optimizer()
    scheduler = STEP.build(optimizer)
    lrs = []
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\)` before `optimizer.step\(\)"):
        for _ in range(30):
            scheduler.step()
            optimizer.step()
            lrs.append(optimizer.param_groups[0]["lr"])
    assert diagnose(STEP, lrs).kind == "match"  # hence the static step-order check


def test_an_extra_step_before_the_loop_is_one_step_ahead():
    found = diagnose(COSINE, record(COSINE, warm_up=1))
    assert found.kind == "one_step_ahead"
    assert "entry 1 is the LR after 2 scheduler.step() calls" in found.message


def test_reading_get_lr_instead_of_get_last_lr_is_named():
    with pytest.warns(UserWarning, match="get_last_lr"):
        lrs = record(STEP, read=lambda o, s: s.get_lr()[0])
    found = diagnose(STEP, lrs)
    assert found.kind == "get_lr" and "get_last_lr()[0]" in found.message


@pytest.mark.parametrize("steps, expected", [
    (20, "Expected 30 LRs, got 20; those 20 match torch's first 20."),
    (35, "Expected 30 LRs, got 35; the first 30 match torch's, so your loop ran 35 iterations."),
])
def test_a_wrong_length_says_expected_and_got(steps, expected):
    found = diagnose(STEP, record(STEP, steps=steps))
    assert found.kind == "wrong_length"
    assert found.message.startswith(expected)


def test_a_wrong_length_still_diagnoses_the_overlap():
    found = diagnose(STEP, like(STEP, gamma=0.7)[:25])
    assert found.kind == "wrong_length"
    assert found.message.startswith("Expected 30 LRs, got 25. In the first 25: This is StepLR(step_size=5, gamma=0.7); "
                                    "expected gamma=0.5.")
    assert found.fitted == "StepLR(step_size=5, gamma=0.7)"


@pytest.mark.parametrize("config, changes, message", [
    (STEP, {"gamma": 0.7}, "This is StepLR(step_size=5, gamma=0.7); expected gamma=0.5."),
    (STEP, {"step_size": 4}, "This is StepLR(step_size=4, gamma=0.5); expected step_size=5."),
    (COSINE, {"T_max": 29}, "This is CosineAnnealingLR(T_max=29, eta_min=0.05); expected T_max=30."),
    (COSINE, {"eta_min": 0.02}, "This is CosineAnnealingLR(T_max=30, eta_min=0.02); expected eta_min=0.05."),
    (RESTARTS_7_3, {"T_0": 6}, "This is CosineAnnealingWarmRestarts(T_0=6, T_mult=3, eta_min=0.05); expected T_0=7."),
    (ONE_CYCLE, {"max_lr": 0.2}, "This is OneCycleLR(max_lr=0.2, total_steps=30, pct_start=0.3); expected max_lr=0.1."),
    (ONE_CYCLE, {"pct_start": 0.25},
     "This is OneCycleLR(max_lr=0.1, total_steps=30, pct_start=0.25); expected pct_start=0.3."),
    (ONE_CYCLE, {"anneal_strategy": "linear"}, "anneal_strategy='linear'); expected anneal_strategy='cos'."),
])
def test_a_different_parameter_is_fitted_and_named(config, changes, message):
    found = diagnose(config, like(config, **changes))
    assert found.kind == "wrong_parameter"
    assert message in found.message and "Use the values given in CONFIGS." in found.message


def test_another_starting_lr_points_at_a_reused_optimizer():
    found = diagnose(STEP, lr_history(STEP, base_lr=0.0125))
    assert found.kind == "wrong_parameter"
    assert found.message.startswith("This is StepLR(step_size=5, gamma=0.5) on an optimizer starting at lr=0.0125; "
                                    "expected lr=0.1.")
    assert "fresh SGD(..., lr=0.1)" in found.message


def test_another_configurations_list_is_recognised():
    found = diagnose(STEP, lr_history(CONFIGS["StepLR(step_size=10, gamma=0.2)"]))
    assert "This is StepLR(step_size=10, gamma=0.2); expected step_size=5, gamma=0.5." in found.message
    assert "another configuration's list" in found.message


@pytest.mark.parametrize("total, peak", [(31, 9), (40, 11)])
def test_one_cycle_total_steps_mismatch_says_where_the_peak_moved(total, peak):
    found = diagnose(ONE_CYCLE, like(ONE_CYCLE, total_steps=total))
    assert found.kind == "total_steps"
    assert found.message == (f"This is OneCycleLR(max_lr=0.1, total_steps={total}, pct_start=0.3); expected "
                             f"total_steps=30. The LR peaks at step {peak} instead of 8: set total_steps to the number "
                             "of scheduler.step() calls, 30.")


def test_warm_restarts_with_t_mult_1_instead_of_2_lists_the_restarts():
    found = diagnose(RESTARTS_5_2, like(RESTARTS_5_2, T_mult=1))
    assert found.kind == "t_mult"
    assert found.message == ("This is CosineAnnealingWarmRestarts(T_0=5, T_mult=1, eta_min=0.01); expected T_mult=2. "
                             "Your LR restarts at steps 5, 10, 15, 20, 25, 30 instead of 5, 15: T_mult multiplies each "
                             "cycle's length (5, 10, 20 steps).")


def test_warm_restarts_with_t_mult_added_instead_of_multiplied():
    def added(epoch: int) -> float:  # cycles of 7, 10, 13 steps: the student's reading of T_mult=3
        cur, length = epoch, 7
        while cur >= length:
            cur, length = cur - length, length + 3
        return (0.05 + 0.05 * (1 + math.cos(math.pi * cur / length))) / 0.1

    optimizer = dummy_optimizer()
    found = diagnose(RESTARTS_7_3, stepped_lrs(optimizer, lr_scheduler.LambdaLR(optimizer, added)))
    assert found.kind == "t_mult"
    assert found.message.startswith("Your LR restarts at steps 7, 17, 30 (cycles of 7, 10, 13 steps) instead of 7, 28.")
    assert "T_mult multiplies, it does not add" in found.message


def test_restarts_built_another_way_name_what_torch_gives_and_not_t_mult():
    """Three CosineAnnealingLR(T_max=10) in a SequentialLR for T_0=10, T_mult=1: cycles of 10, 10, as T_mult=1 gives,
    but no restart at step 30, where torch's class has one. "T_mult multiplies, it does not add" was the cause named."""
    config = CONFIGS["CosineAnnealingWarmRestarts(T_0=10, T_mult=1, eta_min=0.0)"]
    optimizer = dummy_optimizer()
    scheduler = lr_scheduler.SequentialLR(optimizer, [lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
                                                      for _ in range(3)], milestones=[10, 20])
    found = diagnose(config, stepped_lrs(optimizer, scheduler))
    assert found.kind == "restarts" and "T_mult multiplies" not in found.message
    assert found.message.startswith("Your LR restarts at steps 10, 20 (cycles of 10, 10 steps) instead of 10, 20, 30, "
                                    "where torch's CosineAnnealingWarmRestarts(T_0=10, T_mult=1) restarts after cycles "
                                    "of 10 steps, the last one included.")


def test_another_scheduler_class_is_named():
    found = diagnose(RESTARTS_7_3, lr_history(SchedulerConfig("CosineAnnealingLR", {"T_max": 30, "eta_min": 0.05})))
    assert found.kind == "other_family"
    assert found.message.startswith("This is CosineAnnealingLR(T_max=30, eta_min=0.05), a CosineAnnealingLR schedule; "
                                    "expected CosineAnnealingWarmRestarts(T_0=7, T_mult=3, eta_min=0.05).")


def test_a_list_that_never_changes_says_what_it_measured_and_the_causes_it_leaves_open():
    found = diagnose(COSINE, record(COSINE, read=lambda o, s: o.defaults["lr"]))
    assert found.kind == "constant"
    assert found.message == (
        "Your list repeats one LR, 0.1, at every step, while torch's goes from 0.099863 to 0.05. That is the starting "
        "LR: the LR you read never changed. The grader cannot tell why from your code; it could be the LR read from "
        "something that never changes (optimizer.defaults['lr'], a number saved before the loop), or the LR read from "
        "another optimizer than the one the scheduler drives. Read optimizer.param_groups[0]['lr'] after each "
        "scheduler.step(), with the optimizer and its scheduler made once, before the loop.")
    after_one_step = diagnose(COSINE, lr_history(COSINE, 1) * 30)
    assert after_one_step.kind == "constant"
    assert ("That is the LR after one scheduler.step(), as if every value came from a scheduler stepped once. The "
            "grader cannot tell why from your code; it could be a scheduler (or optimizer) made anew in each "
            "iteration.") in after_one_step.message


def rebuilt_each_step(config: SchedulerConfig) -> list[float]:
    """A student's loop that makes a new scheduler, on the same optimizer, in every iteration."""
    optimizer = dummy_optimizer()
    lrs = []
    for _ in range(30):
        scheduler = config.build(optimizer)
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


HINT = CodeHints(rebuilt="code cell 3, line 7: `s = build(opt)`")


@pytest.mark.parametrize("config, seen", [(STEP, "repeats one LR at every step"),
                                          (COSINE, "never follows torch's schedule")])
def test_a_scheduler_made_in_every_iteration_is_named_when_the_code_shows_it(config, seen):
    found = diagnose(config, rebuilt_each_step(config), hints=HINT)
    assert found.kind == "rebuilt"
    assert found.message == (f"Your list {seen}: your code makes the scheduler inside the loop that steps it (code "
                             "cell 3, line 7: `s = build(opt)`), so every iteration starts a new schedule and steps "
                             "it once. Make the optimizer and its scheduler once per configuration, before the loop "
                             "of 30 steps.")


def test_without_the_code_a_rebuilt_scheduler_is_named_only_where_the_values_single_it_out():
    cosine = diagnose(COSINE, rebuilt_each_step(COSINE))  # no other cause gives this curve
    assert cosine.kind == "rebuilt" and cosine.message.startswith(
        "Your list is exactly what a new CosineAnnealingLR made in every iteration and stepped once gives")
    step = diagnose(STEP, rebuilt_each_step(STEP))  # 0.1 throughout: several causes remain
    assert step.kind == "constant" and "your code makes" not in step.message
    assert "it could be the LR read from something that never changes" in step.message
    assert ", or a scheduler (or optimizer) made anew in each iteration." in step.message


def test_code_that_rebuilds_a_scheduler_elsewhere_is_not_blamed_for_another_mistake():
    found = diagnose(STEP, like(STEP, gamma=0.7), hints=HINT)
    assert found.kind == "wrong_parameter" and "your code makes" not in found.message


def test_reading_get_lr_before_the_step_is_named():
    with pytest.warns(UserWarning, match="get_last_lr"):
        lrs = record(COSINE, read=lambda o, s: s.get_lr()[0], before=True)
    found = diagnose(COSINE, lrs)
    assert found.kind == "get_lr_before" and "You read scheduler.get_lr() before each step" in found.message


def test_a_longer_list_that_does_not_continue_the_schedule_does_not_claim_more_iterations():
    found = diagnose(STEP, record(STEP) + [0.1] * 5)
    assert found.kind == "wrong_length"
    assert found.message.startswith("Expected 30 LRs, got 35; the first 30 match torch's, but the other 5 are not its "
                                    "next steps, so they came from elsewhere than this run")
    assert "iterations" not in found.message


def test_one_list_shared_by_several_configurations_is_found_from_the_values():
    names = [c.name for c in COURSE_CONFIGS[:3]]
    one_list = [lr for c in COURSE_CONFIGS[:3] for lr in lr_history(c)]
    histories = dict.fromkeys(names, one_list) | {COSINE.name: record(COSINE)}
    shared = shared_lists(histories)
    assert set(shared) == set(names) and shared[names[1]].part(names[1]) == (30, 60)
    found = diagnose_shared(COURSE_CONFIGS[1], one_list, shared[names[1]])
    assert found.kind == "shared_list"
    assert found.message == ("This list is shared: the same list of 90 LRs is stored under 3 names, 3 runs of 30 LRs "
                             "one after another. That is what one list object filled by every configuration's loop "
                             "and stored under every name gives. Make a new list for each configuration, inside the "
                             "loop over CONFIGS, and store that one under its name.")
    hinted = diagnose_shared(COURSE_CONFIGS[1], one_list, shared[names[1]], CodeHints(shared="code cell 2, line 1: "
                                                                                             "`lrs = []`"))
    assert ("Your code makes it once, before the loop over the configurations (code cell 2, line 1: `lrs = []`), and "
            "every configuration's loop appends to it.") in hinted.message


def test_a_shared_list_still_diagnoses_each_configurations_own_part():
    runs = [[0.1] + record(c, before=True) for c in COURSE_CONFIGS[:2]]  # 31 values each, read before the step
    one_list = runs[0] + runs[1]
    histories = {c.name: one_list for c in COURSE_CONFIGS[:2]}
    found = diagnose_shared(COURSE_CONFIGS[1], one_list, shared_lists(histories)[COURSE_CONFIGS[1].name])
    assert "3 runs" not in found.message and "2 runs of 31 LRs" in found.message
    assert "In this configuration's own part (entries 32-62): Your list has 31 LRs because it starts with the " \
           "initial LR 0.1" in found.message


@pytest.mark.parametrize("value, words", [
    ([[lr] for lr in lr_history(STEP)], "get_last_lr()[0]"),
    ("0.1, 0.1", "It must be a list of numbers, not str."),
    ([0.1] * 29 + [None], "one entry is None"),
    ([float("nan")] * 30, "NaN"),
])
def test_values_that_are_not_a_list_of_numbers_say_what_to_store(value, words):
    found = diagnose(STEP, value)
    assert found.kind == "not_numbers" and words in found.message and found.student == ()


def test_anything_else_names_the_first_differing_step():
    lrs = record(COSINE)
    lrs[11] *= 1.01
    found = diagnose(COSINE, lrs)
    assert found.kind == "differs"
    assert found.message.startswith(f"Step 12 differs: expected {lr_history(COSINE)[11]:.6g}, got {lrs[11]:.6g}.")


def test_torch_values_within_the_tolerance_match():
    lrs = [v * (1 + 5e-7) for v in lr_history(COSINE)]
    assert diagnose(COSINE, lrs).ok and not diagnose(COSINE, [v * 1.00001 for v in lrs]).ok


@pytest.mark.parametrize("config", COURSE_CONFIGS, ids=lambda c: c.name)
def test_a_rounded_run_is_named_as_rounded_not_as_another_schedule(config):
    lrs = record(config, read=lambda o, s: round(s.get_last_lr()[0], 4))
    found = diagnose(config, lrs)
    if same(lrs, lr_history(config)):  # StepLR(step_size=10, gamma=0.5): 0.1, 0.05, 0.025 lose nothing
        assert found.ok
        return
    assert (found.kind, found.fitted) == ("rounded", "")
    assert found.message.startswith(f"Your list is torch's {config.family} run rounded to 4 decimal places.")
    assert "store each LR as you read it, and round only where you print or plot it" in found.message


def test_rounding_to_significant_digits_is_named_as_such():
    found = diagnose(ONE_CYCLE, record(ONE_CYCLE, read=lambda o, s: float(f"{o.param_groups[0]['lr']:.3g}")))
    assert found.kind == "rounded" and "rounded to 3 significant digits" in found.message


def test_a_rounded_list_read_at_the_wrong_moment_names_both_and_coarse_rounding_is_not_guessed():
    found = diagnose(COSINE, record(COSINE, before=True, read=lambda o, s: round(o.param_groups[0]["lr"], 5)))
    assert found.kind == "recorded_before_step"
    assert "Your values are also rounded to 5 decimal places." in found.message
    coarse = diagnose(COSINE, [round(v, 2) for v in record(COSINE)])  # two digits: other schedules round alike
    assert coarse.kind == "differs"


def test_restarts_are_the_steps_where_the_lr_jumps_up():
    assert restarts(lr_history(RESTARTS_5_2)) == [5, 15]
    assert restarts(lr_history(RESTARTS_7_3)) == [7, 28]


def test_the_comparison_figure_has_one_panel_per_family_with_dashed_references():
    def curves(family):
        configs = [c for c in COURSE_CONFIGS if c.family == family]
        return {c.name: {"reference": lr_history(c), "student": lr_history(c) if i else [],
                         "diagnosis": "match" if i else "missing"} for i, c in enumerate(configs)}

    details = {family: {"family": family, "curves": curves(family)} for family in ("StepLR", "OneCycleLR")}
    fig = lr_comparison_figure(details)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["StepLR: yours solid, torch dashed",
                                                 "OneCycleLR: yours solid, torch dashed"]
    dashed = [line for line in panels[0].lines if line.get_linestyle() == "--"]
    assert len(dashed) == 3 and len(panels[0].lines) == 6
    labels = [t.get_text() for t in panels[0].get_legend().get_texts()]
    assert labels[0] == "(step_size=5, gamma=0.5) (missing)" and "(step_size=10, gamma=0.5)" in labels
    assert isinstance(fig, matplotlib.figure.Figure)
    with pytest.raises(ValueError, match="no LR curves"):
        lr_comparison_figure({})



def test_a_list_recorded_before_and_after_each_scheduler_step_is_named_two_per_iteration():
    twice = [lr for before, after in zip(record(COSINE, before=True), record(COSINE)) for lr in (before, after)]
    found = diagnose(COSINE, twice)
    assert found.kind == "wrong_length"
    assert found.message.startswith("Expected 30 LRs, got 60: two per iteration. Each step's LR comes twice, before "
                                    "and after scheduler.step()")
    assert "another configuration" not in found.message


def test_a_list_never_emptied_between_configurations_is_named_with_its_own_run_last():
    carried = record(STEP) + record(COSINE) + record(ONE_CYCLE)
    found = diagnose(ONE_CYCLE, carried)
    assert found.message.startswith("Expected 30 LRs, got 90: 3 runs of 30, and the last 30 are torch's list for "
                                    "this configuration.")
    assert "never emptied" in found.message and "another configuration" not in found.message
