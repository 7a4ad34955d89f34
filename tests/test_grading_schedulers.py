"""The schedulers exercise: replay and step-order in-process, then real notebooks in real kernels."""

import dataclasses
import json
import pathlib
import warnings

import pytest
import torch
from torch import optim
from torch.optim import lr_scheduler

from grading_support import by_id as checks
from grading_support import grade, round_trip

from grader.assignments.catalog import load_exercise
from grader.checks import CheckContext
from grader.checks.code import read_code
from grader.checks.schedulers import ReplayError, lr_family, replay, scheduler_replay, step_order, step_orders
from grader.cli import main
from grader.render.lr_plots import lr_comparison_figure
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

    class Lambda(lr_scheduler.LambdaLR):
        pass

    with pytest.raises(ReplayError, match=r"it is a `Lambda` from `[\w.]*test_grading_schedulers`, built on torch's "
                                          "LambdaLR; the grader replays only"):
        replay(exported(tmp_path / "b", stepped(Lambda(dummy_optimizer(), lambda epoch: 0.9 ** epoch))))


def test_a_subclass_of_torch_s_scheduler_is_replayed_as_torch_s_and_a_changed_rule_shows(tmp_path):
    """A StepLR subclassed to print each step kept "cannot be verified" and lost the replay's half point."""
    class StepLR(lr_scheduler.StepLR):  # same name, the student's own code
        def step(self, *args, **kwargs):
            super().step(*args, **kwargs)
            print("lr now", self.get_last_lr())

    class Faster(lr_scheduler.StepLR):  # its own rule: halves twice as often
        def get_lr(self):
            return [group["lr"] * (self.gamma if self.last_epoch % (self.step_size // 2) == 0 and self.last_epoch
                                   else 1) for group in self.optimizer.param_groups]

    for made, same in ((StepLR, True), (Faster, False)):
        optimizer = dummy_optimizer()
        scheduler, lrs = made(optimizer, step_size=4, gamma=0.5), []
        for _ in range(30):
            optimizer.step()
            scheduler.step()
            lrs.append(optimizer.param_groups[0]["lr"])
        rebuilt, _, run = replay(exported(tmp_path / made.__name__, scheduler))
        assert rebuilt.endswith(f"(torch's class under your {made.__name__})") and rebuilt.startswith("StepLR(")
        assert (run == pytest.approx(lrs, rel=1e-9)) is same


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
    # The first list is its scheduler's own run on a fresh optimizer, which the next schedulers moved on afterwards:
    # it is backed by its run (once told "something else changed that optimizer's LR", and not counted).
    assert replayed.metrics["verified"] == 1
    assert "something else changed that optimizer's LR" not in replayed.message
    # The last one's optimizer was changed before it, not after: its list is its run from where the others left it.
    assert ("StepLR(step_size=10, gamma=0.2): replayed on an optimizer already at lr=0.000195313 when the scheduler "
            "first stepped, StepLR(step_size=10, gamma=0.2) gives your list, though the scheduler records an initial "
            "LR of 0.1: an earlier scheduler on the same optimizer left its LR there, or the LR was set by hand after "
            "the scheduler was made.") in replayed.message
    assert "did not come from this scheduler" not in replayed.message


def _run(scheduler, n=30) -> list[float]:
    """The course's reading of ``scheduler``: its first param group's LR after each of n steps."""
    return [stepped(scheduler, 1).optimizer.param_groups[0]["lr"] for _ in range(n)]


def test_what_the_stored_scheduler_shows_names_the_cause_a_fit_alone_would_guess(tmp_path):
    """A fit says "on an optimizer starting at lr=1" or "eta_min=0.0"; the scheduler stored under the name says
    whether its optimizer was made so or reused, whether the scheduler was built so, or is another class, or the
    list is another param group's."""
    cosine, step, cycle = COURSE_CONFIGS[4], COURSE_CONFIGS[0], COURSE_CONFIGS[9]  # eta_min=0.05, gamma 0.5, 0.3
    names = {c.family: c for c in (cosine, step, cycle)}
    built_wrong = lr_scheduler.CosineAnnealingLR(dummy_optimizer(), T_max=30)  # eta_min left out
    made_at_one = step.build(dummy_optimizer(1.0))
    other_class = lr_scheduler.LinearLR(dummy_optimizer(), start_factor=0.04, total_iters=9)
    histories = {cosine.name: _run(built_wrong), step.name: _run(made_at_one), cycle.name: _run(other_class)}
    ctx = context(tmp_path, lr_histories=histories, schedulers={cosine.name: built_wrong, step.name: made_at_one,
                                                                 cycle.name: other_class})
    said = {family: lr_family(ctx, "lr_histories", family, "schedulers").message for family in names}
    assert (f"This is CosineAnnealingLR(T_max=30, eta_min=0.0); expected eta_min={cosine.params['eta_min']!r}. The "
            "scheduler stored under this name was built with eta_min=0.0: pass the values given in CONFIGS."
            ) in said["CosineAnnealingLR"] and "another configuration's list" not in said["CosineAnnealingLR"]
    assert ("This is StepLR(step_size=5, gamma=0.5)'s schedule on an optimizer made with lr=1, as its scheduler "
            "records, where the set-up's starts at lr=0.1.") in said["StepLR"] and "reused" not in said["StepLR"]
    assert "The scheduler stored under this name is a LinearLR, not a OneCycleLR" in said["OneCycleLR"]
    # OneCycleLR keeps pct_start only as the end of its first phase: one left at its default is still named.
    default_pct = lr_scheduler.OneCycleLR(dummy_optimizer(), max_lr=0.1, total_steps=30)
    short_rise = COURSE_CONFIGS[10]  # pct_start=0.1
    one_cycle = lr_family(context(tmp_path / "pct", lr_histories={short_rise.name: _run(default_pct)},
                                  schedulers={short_rise.name: default_pct}), "lr_histories", "OneCycleLR",
                          "schedulers")
    assert ("The scheduler stored under this name was built with pct_start=0.3: pass the values given in CONFIGS."
            in one_cycle.message) and "not the one its scheduler made" not in one_cycle.message
    two_groups = optim.SGD([{"params": [torch.zeros(1, requires_grad=True)]},
                            {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.01}], lr=0.1)
    second_group = cosine.build(two_groups)
    histories[cosine.name] = [stepped(second_group, 1).get_last_lr()[-1] for _ in range(30)]
    ctx = context(tmp_path / "groups", lr_histories=histories, schedulers={cosine.name: second_group})
    assert ("This is the LR of param group 2 of its optimizer, which starts at lr=0.01"
            in lr_family(ctx, "lr_histories", "CosineAnnealingLR", "schedulers").message)
    replayed = scheduler_replay(ctx, "lr_histories", "schedulers")
    assert f"{cosine.name}:" not in replayed.message and replayed.metrics["read_group_2"] == 1
    # Two groups at the same LR (weights and biases apart, say) run alike: the list is the first group's, as read.
    alike = cosine.build(optim.SGD([{"params": [torch.zeros(1, requires_grad=True)]},
                                    {"params": [torch.zeros(1, requires_grad=True)]}], lr=0.1))
    histories[cosine.name] = _run(alike)
    replayed = scheduler_replay(context(tmp_path / "alike", lr_histories=histories, schedulers={cosine.name: alike}),
                                "lr_histories", "schedulers")
    assert f"{cosine.name}:" not in replayed.message and "read_group_2" not in replayed.metrics


def cells(*sources):
    return tuple(enumerate(sources, start=1))


SETUP = ("import torch\nfrom torch import nn, optim\nfrom torch.optim import lr_scheduler\n"
         "optimizer = optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)\n"
         "scheduler = lr_scheduler.StepLR(optimizer, step_size=5)\nschedulers = {'a': scheduler}\n")


def orders(code):
    """The step-order verdicts of ``code``, run after SETUP (an optimizer, its scheduler, a dict holding it)."""
    return [(o.line, o.receiver, o.verdict) for o in read_code(cells(SETUP, code)).orders]


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
    ("for epoch in range(3):\n    for batch in data:\n        optimizer.step()\n    scheduler.step()\n", "ok"),
    ("for epoch in range(3):\n    scheduler.step()\n    for batch in data:\n        optimizer.step()\n",
     "scheduler-first"),
    # Rotated: one optimizer step before the loop, so each scheduler step still follows one (torch's order).
    ("optimizer.step()\nwhile True:\n    scheduler.step()\n    if done():\n        break\n    optimizer.step()\n",
     "ok"),
    ("for name in names:\n    optimizer.step()\n    for _ in range(30):\n        scheduler.step()\n"
     "        optimizer.step()\n", "ok"),
    # ... but not where the last step before the loop was the scheduler's own.
    ("for _ in range(3):\n    optimizer.step()\n    scheduler.step()\nfor _ in range(30):\n    scheduler.step()\n"
     "    optimizer.step()\n", ["ok", "scheduler-first"]),
])
def test_step_order_verdicts(loop, verdict):
    assert [o[2] for o in orders(loop)] == (verdict if isinstance(verdict, list) else [verdict])


def test_roles_come_from_what_objects_are_not_from_their_names():
    code = ("sched = optim.Adam(nn.Linear(1, 1).parameters())\nopt = lr_scheduler.ExponentialLR(sched, 0.9)\n"
            "for _ in range(30):\n    opt.step()\n    sched.step()\n")
    assert orders(code) == [(4, "opt", "scheduler-first")]


def test_an_optimizer_reached_through_its_scheduler_or_an_attribute_is_still_that_optimizer():
    through_scheduler = "for _ in range(30):\n    scheduler.optimizer.step()\n    scheduler.step()\n"
    assert orders(through_scheduler) == [(3, "scheduler", "ok")]
    attribute = ("class Runner:\n    def __init__(self, kind, kw):\n"
                 "        self.opt = optim.SGD([torch.zeros(1)], lr=0.1)\n"
                 "        self.sched = getattr(lr_scheduler, kind)(self.opt, **kw)\n"
                 "r = Runner('StepLR', {'step_size': 5})\n"
                 "for _ in range(30):\n    r.sched.step()\n    r.opt.step()\n")
    assert orders(attribute) == [(7, "r.sched", "scheduler-first")]


def test_objects_in_dicts_lists_and_unpacked_tuples_keep_their_role():
    in_dicts = ("opts = {n: optim.SGD([torch.zeros(1)], lr=0.1) for n in names}\nscheds = {}\nfor n in names:\n"
                "    scheds[n] = lr_scheduler.StepLR(opts[n], 5)\n    for _ in range(30):\n"
                "        scheds[n].step()\n        opts[n].step()\n")
    assert orders(in_dicts) == [(6, "scheds[n]", "scheduler-first")]
    in_pairs = ("pairs = []\nfor n in names:\n    o = optim.Adam([torch.zeros(1)])\n"
                "    pairs.append((o, lr_scheduler.ExponentialLR(o, 0.9)))\nfor o, s in pairs:\n    i = 0\n"
                "    while i < 30:\n        o.step(); s.step(); i += 1\n")
    assert orders(in_pairs) == [(8, "s", "ok")]


def test_helpers_are_read_with_their_arguments_and_their_loops_count():
    made_by_helpers = ("def make(lr):\n    return optim.SGD([torch.zeros(1)], lr=lr)\n"
                       "def scheduler_for(o, kind, kw):\n    return vars(lr_scheduler)[kind](o, **kw)\n"
                       "for kind, kw in configs:\n    o = make(0.1)\n    s = scheduler_for(o, kind, kw)\n"
                       "    for t in range(30):\n        s.step()\n        o.step()\n")
    assert orders(made_by_helpers) == [(9, "s", "scheduler-first")]
    helper_in_loop = ("def train_step(opt, sched):\n    opt.step()\n    sched.step()\n"
                      "lrs = [train_step(optimizer, scheduler) or optimizer.param_groups[0]['lr'] for _ in range(30)]\n")
    assert orders(helper_in_loop) == [(3, "sched", "ok")]
    loop_in_helper = ("def run(make_scheduler):\n    opt = optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)\n"
                      "    sched = make_scheduler(opt)\n    for _ in range(30):\n        sched.step()\n"
                      "        opt.step()\n    return sched\n"
                      "builders = {'a': lambda o: lr_scheduler.StepLR(o, 5), 'b': lambda o: lr_scheduler.StepLR(o, 10)}\n"
                      "done = {k: run(b) for k, b in builders.items()}\n")
    assert orders(loop_in_helper) == [(5, "sched", "scheduler-first")]
    config_build = ("class Config:\n    def __init__(self, kind, kw):\n        self.kind, self.kw = kind, kw\n"
                    "    def build(self, opt):\n        return getattr(torch.optim.lr_scheduler, self.kind)(opt, **self.kw)\n"
                    "for cfg in [Config(k, kw) for k, kw in configs]:\n    o = torch.optim.SGD([torch.zeros(1)])\n"
                    "    s = cfg.build(o)\n    for _ in range(30):\n        o.step()\n        s.step()\n")
    assert orders(config_build) == [(11, "s", "ok")]
    iterated = ("class Recorder:\n    def __init__(self, kind, kw):\n"
                "        self.opt = optim.SGD([torch.zeros(1)], lr=0.1)\n"
                "        self.sched = getattr(lr_scheduler, kind)(self.opt, **kw)\n"
                "    def __iter__(self):\n        for _ in range(30):\n            self.sched.step()\n"
                "            self.opt.step()\n            yield self.opt.param_groups[0]['lr']\n"
                "recorders = {n: Recorder(*c) for n, c in configs.items()}\n"
                "lists = {n: list(r) for n, r in recorders.items()}\n")
    assert orders(iterated) == [(7, "self.sched", "scheduler-first")]  # __iter__, run by list(r), is read
    probe = ("class Probe:\n    def __init__(self, kind, kw):\n"
             "        self.opt = optim.SGD([torch.zeros(1)], lr=0.1)\n"
             "        self.sched = getattr(lr_scheduler, kind)(self.opt, **kw)\n"
             "    def __call__(self):\n        self.opt.step()\n        self.sched.step()\n"
             "        return self.opt.param_groups[0]['lr']\n"
             "    def __iter__(self):\n        return self\n"
             "    def __next__(self):\n        self.sched.step()\n        self.opt.step()\n        return 0.0\n"
             "probes = {n: Probe(*c) for n, c in configs.items()}\n")
    # Each was "No loop in your notebook calls optimizer.step() and then scheduler.step()": neither the call of an
    # object (its __call__) nor next() on one (its __next__) was followed.
    assert orders(probe + "lists = {n: [p() for _ in range(30)] for n, p in probes.items()}\n") == \
        [(7, "self.sched", "ok")]
    assert orders(probe + "lists = {n: [next(p) for _ in range(30)] for n, p in probes.items()}\n") == \
        [(12, "self.sched", "scheduler-first")]


def test_step_methods_kept_in_variables_subclasses_and_grad_scalers_are_followed():
    assert orders("tick, update = scheduler.step, optimizer.step\nfor _ in range(30):\n    tick()\n    update()\n") \
        == [(3, "tick", "scheduler-first")]
    subclass = ("class Warm(lr_scheduler.StepLR):\n    pass\ns = Warm(optimizer, 5)\n"
                "for _ in range(30):\n    optimizer.step()\n    s.step()\n")
    assert orders(subclass) == [(6, "s", "ok")]
    scaler = ("scaler = torch.amp.GradScaler()\nfor _ in range(30):\n    scaler.step(optimizer)\n"
              "    scaler.update()\n    scheduler.step()\n    ax.step(x, y, where='post')\n")
    assert orders(scaler) == [(5, "scheduler", "ok")]


@pytest.mark.parametrize("code, why", [
    ("from mylib import make_pair\nopt, sched = make_pair()\nfor _ in range(30):\n    sched.step()\n    opt.step()\n",
     "`sched` cannot be traced to an optimizer or a scheduler (code cell 2, line 4: `sched.step()`)"),
    ("for _ in range(30):\n    for thing in (scheduler, optimizer):\n        thing.step()\n",
     "`thing` may be an optimizer or a scheduler (code cell 2, line 3: `thing.step()`)"),
    ("from helpers import train_one\nfor _ in range(30):\n    train_one(model, optimizer)\n    scheduler.step()\n",
     "`train_one(...)` receives the optimizer and cannot be read, so it may step it"),
    ("exec(open('loop.py').read())\n", "`exec()` runs code the grader cannot read (code cell 2, line 1"),
])
def test_what_the_reading_cannot_follow_is_said_not_guessed(code, why):
    report = read_code(cells(SETUP, code))
    assert all(o.verdict == "undecided" for o in report.orders)
    assert any(why in note for note in report.unclear), report.unclear


def test_an_undecided_order_gives_the_points_and_says_why(tmp_path):
    ctx = dataclasses.replace(context(tmp_path, lr_histories={"x": [0.1]}),
                              code_cells=cells(SETUP, "from mylib import pair\no, s = pair()\n"
                                                      "for _ in range(30):\n    s.step()\n    o.step()\n"))
    outcome = step_order(ctx, "lr_histories")
    assert outcome.passed and outcome.metrics == {"undecided": 1}
    assert outcome.message.startswith("The order of optimizer.step() and scheduler.step() could not be decided from "
                                      "the code: `s` cannot be traced to an optimizer or a scheduler (code cell 2, "
                                      "line 4: `s.step()`)")
    assert "The points are given." in outcome.message


def test_the_reading_finds_schedulers_made_in_the_loop_that_steps_them_and_lists_shared_by_a_loop():
    rebuilt = ("def trace(kind, kw):\n    o = optim.SGD([torch.zeros(1)], lr=0.1)\n    out = []\n"
               "    for t in range(30):\n        s = getattr(lr_scheduler, kind)(o, **kw)\n        o.step()\n"
               "        s.step()\n        out.append(s.get_last_lr()[0])\n    return out, s\n"
               "res = {n: trace(*c) for n, c in configs.items()}\nlists = {n: r[0] for n, r in res.items()}\n")
    report = read_code(cells(SETUP, rebuilt))
    assert [(s.line, s.text) for s in report.rebuilt] == [(5, "s = getattr(lr_scheduler, kind)(o, **kw)")]
    assert report.shared == ()  # each call makes its own list
    shared = ("lrs = []\nh = {}\nfor name in configs:\n    s = lr_scheduler.StepLR(optimizer, 5)\n"
              "    for _ in range(30):\n        optimizer.step(); s.step(); lrs.append(1)\n    h[name] = lrs\n")
    report = read_code(cells(SETUP, shared))
    assert [(s.line, s.text) for s in report.shared] == [(1, "lrs = []")] and report.rebuilt == ()
    assert [s.line for s in read_code(cells(SETUP, "h = dict.fromkeys(configs, [])\n")).shared] == [1]
    epochs = ("s = lr_scheduler.StepLR(optimizer, 5)\nfor e in range(30):\n    optimizer.step()\n    s.step(e)\n"
              "for e in range(30):\n    optimizer.step()\n    s.step()\n")
    assert [(s.line, s.text) for s in read_code(cells(SETUP, epochs)).epochs] == [(4, "s.step(e)")]


def test_step_order_ignores_loops_without_a_scheduler_and_cells_that_do_not_parse():
    assert step_orders(cells("for x in data:\n    optimizer.step()\n", "def broken(:\n")) == []


def student_runs(read, before=False, initial=False):
    """Every course configuration run as a student's loop: (lr_histories, schedulers); ``read(optimizer, scheduler)``."""
    histories, stored = {}, {}
    for config in COURSE_CONFIGS:
        optimizer = dummy_optimizer()
        scheduler = stored[config.name] = config.build(optimizer)
        lrs = histories[config.name] = [optimizer.param_groups[0]["lr"]] if initial else []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # get_lr() warns outside step()
            for _ in range(30):
                lrs.extend([read(optimizer, scheduler)] if before else [])
                optimizer.step()
                scheduler.step()
                lrs.extend([] if before else [read(optimizer, scheduler)])
    return histories, stored


READS = {"param_groups": lambda o, s: o.param_groups[0]["lr"], "get_last_lr": lambda o, s: s.get_last_lr()[0],
         "get_lr": lambda o, s: s.get_lr()[0],
         # get_last_lr() stored whole: each entry [lr]. The family checks take its points; it is the run all the same.
         "get_last_lr, a list each": lambda o, s: s.get_last_lr()}


@pytest.mark.parametrize("before", [False, True], ids=["after the step", "before the step"])
@pytest.mark.parametrize("how", READS)
def test_every_legitimate_reading_of_an_exported_scheduler_is_its_run(tmp_path, how, before):
    histories, stored = student_runs(READS[how], before)
    outcome = scheduler_replay(context(tmp_path, lr_histories=histories, schedulers=stored), "lr_histories",
                               "schedulers")
    assert outcome.passed and outcome.metrics["verified"] == 12, outcome.message


def test_the_spec_decides_which_readings_count(tmp_path):
    histories, stored = student_runs(READS["param_groups"], initial=True)
    ctx = context(tmp_path, lr_histories=histories, schedulers=stored)
    outcome = scheduler_replay(ctx, "lr_histories", "schedulers")
    assert outcome.passed and outcome.metrics["read_initial"] == 12
    assert outcome.message.endswith("12 of them are not the LRs as read after each step (initial); the family "
                                    "checks say how.")
    assert not scheduler_replay(ctx, "lr_histories", "schedulers", readings=["after", "before"]).passed


# --- real notebooks in real kernels ---------------------------------------------------------


@pytest.fixture(scope="module")
def exercise():
    return load_exercise("schedulers")


@pytest.fixture(scope="module")
def graded(exercise):
    """Each notebook is run once, on first use."""
    results = {}

    def graded_once(path):
        if path not in results:
            results[path] = grade(path, exercise, hidden=False)  # forked from the test process's warm factory
        return results[path]

    return graded_once


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
                                       "StepLR(step_size=5, gamma=0.7); expected gamma=0.5. The scheduler stored under "
                                       "this name was built with gamma=0.7: pass the values given in CONFIGS.")
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


def test_another_class_giving_the_same_numbers_is_named_by_the_class_stored(graded):
    """ExponentialLR(gamma**(1/step_size)) for a StepLR: its list is a StepLR's with step_size=1, and the message
    once said to pass CONFIGS' gamma, which keeps the wrong class; the stored scheduler shows the class."""
    steplr = checks(graded(FILES / "exponential-for-step.ipynb"))["steplr"]
    assert not steplr.passed
    assert ("StepLR(step_size=5, gamma=0.5): Your list is what StepLR(step_size=1, gamma=0.87055056) gives, but the "
            "scheduler stored under this name is an ExponentialLR, not a StepLR. Build StepLR(step_size=5, gamma=0.5) "
            "with torch's StepLR and the values in CONFIGS, and store it under its name.") in steplr.message
    assert "pass the values given in CONFIGS" not in steplr.message


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


@pytest.mark.usefixtures("shared_kernel_factory")
def test_check_json_follows_the_contract_and_names_the_initial_lr_and_the_step_order(capsys, tmp_path):
    code = main(["check", str(FILES / "scheduler-first.ipynb"), "--json", "--html", str(tmp_path / "f.html")])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1
    contract = {"exercise", "student", "status", "score", "max_score", "checks", "error"}
    assert contract <= set(payload) <= contract | {"timings"}  # the engine's timings may come beside the contract
    assert (payload["exercise"], payload["student"], payload["status"]) == ("schedulers", "scheduler-first", "ok")
    assert (payload["score"], payload["max_score"], payload["error"]) == (3, 10, None)
    assert all(set(c) == {"id", "passed", "points", "max_points", "visibility", "message"} for c in payload["checks"])
    by_id = {c["id"]: c for c in payload["checks"]}
    assert [c["id"] for c in payload["checks"]] == ["own-loop", "steplr", "cosine", "warm-restarts", "one-cycle",
                                                   "scheduler-runs", "step-order"]
    assert ("Your list has 31 LRs because it starts with the initial LR 0.1: read before the first scheduler.step(), "
            "or put in front of the list later" in by_id["cosine"]["message"])
    assert by_id["step-order"]["message"].startswith("scheduler.step() comes before optimizer.step() in your loop: "
                                                     "code cell 2, line 9 (`sched.step()`).")
    assert not by_id["step-order"]["passed"] and by_id["scheduler-runs"]["passed"]
    assert (tmp_path / "f.html").read_text().count("31 LRs") >= 4



def test_reading_get_lr_is_the_schedulers_run_and_the_family_checks_name_it(graded):
    result = graded(FILES / "get-lr.ipynb")
    by_id = checks(result)
    assert result.status is Status.OK, result.error
    runs = by_id["scheduler-runs"]
    assert runs.passed and runs.metrics == {"verified": 12, "configs": 12, "read_get_lr": 6}
    assert runs.message.endswith("6 of them are not the LRs as read after each step (get_lr); the family checks "
                                 "say how.")
    for family in ("steplr", "cosine"):
        assert {c["diagnosis"] for c in by_id[family].details["curves"].values()} == {"get_lr"}
        assert "You read scheduler.get_lr(), which computes a further step from the current LR" in by_id[family].message
    # For these two, get_lr() is a closed form: it is the LR in use, so the lists match.
    assert by_id["warm-restarts"].passed and by_id["one-cycle"].passed
    # Stepped by a method of the notebook's own class, called in a comprehension.
    assert by_id["step-order"].passed and by_id["step-order"].details["loops"] == [[2, 14, "self.sched", "ok"]]
    assert result.score == 7


def test_reading_param_groups_before_the_step_is_the_schedulers_run_and_named(graded):
    result = graded(FILES / "param-groups-before.ipynb")
    by_id = checks(result)
    assert result.status is Status.OK, result.error
    assert by_id["scheduler-runs"].passed and by_id["scheduler-runs"].metrics["read_before"] == 12
    for family in ("steplr", "cosine", "warm-restarts", "one-cycle"):
        assert {c["diagnosis"] for c in by_id[family].details["curves"].values()} == {"recorded_before_step"}
    assert "Your list is shifted by one step: it starts with the initial LR 0.1" in by_id["cosine"].message
    # sched.optimizer.step() is the optimizer's step, in a while loop of a helper (after a %%time magic).
    assert by_id["step-order"].passed and by_id["step-order"].details["loops"] == [[2, 14, "sched", "ok"]]
    assert result.score == 4


def test_a_scheduler_made_in_the_loop_that_steps_it_is_named_from_the_code(graded):
    result = graded(FILES / "rebuilt-each-step.ipynb")
    by_id = checks(result)
    where = "code cell 2, line 6: `sch = getattr(torch.optim.lr_scheduler, cls_name)(opt, **kwargs)`"
    for family in ("steplr", "cosine", "warm-restarts", "one-cycle"):
        assert {c["diagnosis"] for c in by_id[family].details["curves"].values()} == {"rebuilt"}
        assert f"your code makes the scheduler inside the loop that steps it ({where}), so every iteration starts a " \
               "new schedule and steps it once." in by_id[family].message
        assert "never saw the schedule" not in by_id[family].message
    assert by_id["steplr"].message.endswith("Your list repeats one LR at every step: your code makes the scheduler "
                                            f"inside the loop that steps it ({where}), so every iteration starts a new "
                                            "schedule and steps it once. Make the optimizer and its scheduler once per "
                                            "configuration, before the loop of 30 steps.")
    assert "Your list never follows torch's schedule: your code makes" in by_id["cosine"].message
    runs = by_id["scheduler-runs"]
    assert runs.metrics["verified"] == 0
    assert runs.message.endswith(f"its last_epoch is 1: it was stepped once. Your code makes the scheduler inside the "
                                 f"loop that steps it ({where}), so the one you store has seen one step. Make it once, "
                                 "before that loop.")
    assert by_id["step-order"].passed and result.score == 2


def test_one_list_shared_by_every_configuration_is_named(graded):
    result = graded(FILES / "one-list.ipynb")
    by_id = checks(result)
    shared = ("This list is shared: the same list of 360 LRs is stored under 12 names, 12 runs of 30 LRs one after "
              "another. Your code makes it once, before the loop over the configurations (code cell 2, line 1: "
              "`history = []  # every LR read so far`), and every configuration's loop appends to it. Make a new list "
              "for each configuration, inside the loop over CONFIGS, and store that one under its name.")
    for family in ("steplr", "cosine", "warm-restarts", "one-cycle"):
        assert {c["diagnosis"] for c in by_id[family].details["curves"].values()} == {"shared_list"}
        assert by_id[family].message.endswith(shared)  # each run in it is right, so nothing else is said
        assert "iterations" not in by_id[family].message
    runs = by_id["scheduler-runs"]
    assert runs.metrics["verified"] == 0
    assert runs.message.endswith(shared[:-1] + ". So this list is not what its scheduler alone produced.")
    assert by_id["step-order"].passed and result.score == 2


def test_a_loop_that_steps_another_optimizer_loses_the_order_point_measured_not_read(graded):
    """The code reads `optimizer.step()` then `scheduler.step()`, but that optimizer is not the one the schedulers were
    built on: torch's own record on each scheduler's optimizer (the one behind its warning) shows it."""
    result = graded(FILES / "steps-another-optimizer.ipynb")
    by_id = checks(result)
    order = by_id["step-order"]
    assert not order.passed and order.message.startswith(
        "The optimizers behind all 12 of your exported schedulers never stepped after their scheduler was made")
    assert all(by_id[c].passed for c in ("steplr", "cosine", "warm-restarts", "one-cycle", "scheduler-runs"))
    assert result.score == 9  # the lists are right: only the order's point goes


def test_an_optimizer_stepped_through_a_method_taken_before_its_scheduler_keeps_the_order_point(graded):
    """`update = opt.step` before the scheduler wraps opt.step: torch's record (and its warning) misses those steps,
    and this was told "the optimizer.step() in your loop steps another optimizer". The kernel saw it step 30 times."""
    result = graded(FILES / "step-alias-before-scheduler.ipynb")
    assert checks(result)["step-order"].passed and result.score == 10, checks(result)["step-order"].message


def test_a_scheduler_stepped_first_where_the_code_cannot_tell_is_measured_in_the_run(graded):
    """`for obj in (sched, opt): obj.step()`: the code reader cannot tell which `obj` steps first, so the point was
    given. The kernel counts each optimizer's steps at every scheduler.step() call: 0 at the first one."""
    result = graded(FILES / "scheduler-first-tuple-loop.ipynb")
    order = checks(result)["step-order"]
    assert not order.passed and result.score == 9, order.message
    assert order.message.startswith("12 of your exported schedulers (`StepLR(step_size=5, gamma=0.5)`")
    assert "at their first scheduler.step() call the optimizer had taken no step since" in order.message


def test_items_of_a_list_literal_stay_in_it_after_an_append():
    """`[optimizer]` then `.append(scheduler)`: the reader forgot the optimizer and said the loop never steps one."""
    code = ("in_order = [optimizer]\nin_order.append(scheduler)\nfor _ in range(30):\n    for thing in in_order:\n"
            "        thing.step()\n")
    report = read_code(cells(SETUP, code))
    assert report.orders == () and "`thing` may be an optimizer or a scheduler" in " ".join(map(str, report.unclear))


def test_schedulers_kept_as_deepcopies_keep_their_order_point(graded):
    """A deepcopy of a scheduler copies its optimizer without torch's record of its steps: nothing is judged from it."""
    result = graded(FILES / "deepcopy-snapshot.ipynb")
    assert checks(result)["step-order"].passed and result.score == 10


def test_schedulers_restored_from_their_state_dicts_keep_their_order_point(graded):
    """Each stored scheduler is rebuilt on a fresh optimizer and loaded from the run's state_dicts, as a checkpoint
    is: it never stepped, and neither did its optimizer, which torch's record took for a loop that steps another
    optimizer (step-order 0/1, with that cause)."""
    result = graded(FILES / "restored-from-state-dicts.ipynb")
    assert result.score == 10, [(c.id, c.message) for c in result.checks if not c.passed]


def test_a_list_read_once_every_few_scheduler_steps_is_named_from_the_exported_schedulers(graded):
    """Three batches per recorded LR: a fit would blame the parameters (T_max=10 for 30); the exported scheduler,
    with the configuration's own settings, stepped 90 times, which names the cadence instead."""
    result = graded(FILES / "three-steps-per-reading.ipynb")
    by_id = checks(result)
    cadence = ("Its scheduler stepped 90 times for the 30 LRs recorded: 3 scheduler.step() calls per LR read (once "
               "per batch, say), so the list runs through the schedule 3 times as fast.")
    for family in ("steplr", "cosine", "warm-restarts"):
        assert cadence in by_id[family].message and "Use the values given in CONFIGS" not in by_id[family].message
    # Its OneCycleLRs were made with total_steps=90: settings changed to fit, so the cadence is not what is named.
    assert cadence not in by_id["one-cycle"].message and not by_id["one-cycle"].passed
    assert by_id["step-order"].passed


def test_one_list_emptied_and_refilled_for_each_configuration_is_not_blamed_on_the_schedulers(graded):
    """`lrs.clear()` per configuration, the same list stored under every name: each entry holds the last
    configuration's 30 LRs. A fit says "this is OneCycleLR(...)", but every exported scheduler is built right."""
    result = graded(FILES / "one-list-cleared.ipynb")
    by_id = checks(result)
    said = ("This list is OneCycleLR(max_lr=0.1, total_steps=30, pct_start=0.5)'s, though the scheduler stored under "
            "this name is a StepLR built as this configuration says: the list is not the one its scheduler made.")
    assert said in by_id["steplr"].message and "Build the scheduler class named in CONFIGS" not in by_id["steplr"].message
    assert "make a new list for each configuration" in by_id["cosine"].message
    assert by_id["step-order"].passed


def test_lists_rounded_for_display_lose_the_numbers_not_the_run_and_are_named_as_rounded(graded):
    """`round(get_last_lr()[0], 4)` in a helper function: the lists are the schedulers' runs, rounded. The family
    checks (rtol 1e-6) fail and say it is rounding; the replay still finds every list is its scheduler's run."""
    result = graded(FILES / "rounded-four-decimals.ipynb")
    by_id = checks(result)
    assert "Your list is torch's CosineAnnealingLR run rounded to 4 decimal places." in by_id["cosine"].message
    assert by_id["steplr"].metrics["matched"] == 2  # 0.1, 0.05, 0.025 and 0.1, 0.02, 0.004 lose nothing to rounding
    runs = by_id["scheduler-runs"]
    assert runs.passed and runs.metrics["read_rounded"] == 10
    assert "did not come from this scheduler" not in runs.message
    assert by_id["step-order"].passed and result.score == 5


def test_a_scheduler_given_epochs_from_zero_is_named_from_its_step_count_not_as_a_reading_before_the_step(graded):
    """`sched.step(epoch)` with epoch = 0..29 in a recorder class: every list is the LR before each step. torch counts
    the step() calls (30) apart from the epoch (29); warm restarts keep no count, and there the code shows it."""
    result = graded(FILES / "step-with-epoch.ipynb")
    by_id = checks(result)
    assert ("Its scheduler.step() ran 30 times, yet its schedule stands at epoch 29: the loop passes an epoch to step() "
            "(scheduler.step(epoch)).") in by_id["cosine"].message
    assert "your code passes an argument to scheduler.step() (code cell 2, line 14: `self.sched.step(epoch)`)" \
        in by_id["warm-restarts"].message
    assert all("Read the LR after scheduler.step(), not before it" not in by_id[i].message
               for i in ("steplr", "cosine", "warm-restarts", "one-cycle"))
    runs = by_id["scheduler-runs"]  # each list is its scheduler's run, read through explicit epochs
    assert runs.passed and runs.metrics["read_before"] == 12
    assert result.score == 4


def test_a_scheduler_stepped_by_an_optimizer_step_hook_is_read_where_torch_calls_it():
    """`register_step_post_hook` runs after each optimizer.step(), a pre-hook before it; the loop itself calls only
    optimizer.step(). It was "No loop in your notebook calls optimizer.step() and then scheduler.step()"."""
    post = ("optimizer.register_step_post_hook(lambda opt, args, kwargs, s=scheduler: s.step())\n"
            "for _ in range(30):\n    optimizer.step()\n")
    assert orders(post) == [(1, "s", "ok")]
    pre = ("def tick(opt, args, kwargs):\n    scheduler.step()\n"
           "optimizer.register_step_pre_hook(tick)\nfor _ in range(30):\n    optimizer.step()\n")
    assert orders(pre) == [(2, "scheduler", "scheduler-first")]


def test_an_entry_missing_after_the_notebook_failed_is_blamed_on_the_failure_not_the_key():
    from grader.checks.schedulers import _missing

    name = "OneCycleLR(max_lr=0.1, total_steps=30, pct_start=0.3)"
    filled = {"StepLR(step_size=5, gamma=0.5)": [0.1] * 30}
    assert _missing(name, filled, "lr_histories", "code cell 2 raised ValueError: Tried to step 31 times.") == (
        f'`lr_histories` has no entry "{name}": your notebook hit an error before it was filled (code cell 2 raised '
        "ValueError: Tried to step 31 times).")
    assert _missing(name, filled, "lr_histories").endswith("Use the names in CONFIGS as keys, exactly as written.")


def test_right_lists_beside_another_configuration_s_scheduler_blame_the_stored_scheduler(tmp_path):
    """Every name holds the last scheduler made: the lists are right, the schedulers stored beside them are not."""
    last = stepped(COURSE_CONFIGS[-1].build(dummy_optimizer()))
    values = {"lr_histories": {c.name: lr_history(c) for c in COURSE_CONFIGS},
              "schedulers": {c.name: last for c in COURSE_CONFIGS}}
    outcome = scheduler_replay(context(tmp_path, **values), "lr_histories", "schedulers")
    assert outcome.metrics["verified"] == 1
    assert ("StepLR(step_size=5, gamma=0.5), StepLR(step_size=10, gamma=0.5), StepLR(step_size=10, gamma=0.2), "
            "CosineAnnealingLR") in outcome.message
    assert "the list is torch's run of this configuration, but the scheduler stored under its name replays as " \
        "OneCycleLR" in outcome.message
    assert "the list did not come from this scheduler" not in outcome.message


def test_a_cosine_that_rises_above_its_optimizers_lr_and_readings_per_step_are_named_from_the_stored_scheduler(
        tmp_path):
    """An optimizer made with lr=0.01 under CosineAnnealingLR(eta_min=0.05) rises: only OneCycleLR fits that, and
    the message said "not its run". A StepLR stepped once per epoch of 5 batches, read after every batch, was
    fitted as StepLR(step_size=26)."""
    cosine = next(c for c in COURSE_CONFIGS if c.family == "CosineAnnealingLR" and c.params["eta_min"] == 0.05)
    rising = cosine.build(dummy_optimizer(0.01))
    step = COURSE_CONFIGS[0]
    per_epoch = step.build(dummy_optimizer())
    readings = []
    for _ in range(6):
        for _ in range(5):
            per_epoch.optimizer.step()
            readings.append(per_epoch.optimizer.param_groups[0]["lr"])
        per_epoch.step()
    ctx = context(tmp_path, lr_histories={cosine.name: _run(rising), step.name: readings},
                  schedulers={cosine.name: rising, step.name: per_epoch})
    said = lr_family(ctx, "lr_histories", "CosineAnnealingLR", "schedulers").message
    assert (f"This is {cosine.name}'s schedule on an optimizer made with lr=0.01, as its scheduler records, where the "
            "set-up's starts at lr=0.1.") in said and "OneCycleLR" not in said
    said = lr_family(ctx, "lr_histories", "StepLR", "schedulers").message
    assert ("Its scheduler stepped 6 times for the 30 LRs recorded, and the list holds 6 runs of 5 equal LRs: 5 LRs "
            "read per scheduler.step()") in said and "step_size=26" not in said


def test_a_chained_scheduler_is_said_to_keep_no_epoch_not_to_have_stepped_none_times(tmp_path):
    config = COURSE_CONFIGS[0]
    chain = lr_scheduler.ChainedScheduler([config.build(dummy_optimizer())])
    ctx = context(tmp_path, lr_histories={config.name: _run(chain)}, schedulers={config.name: chain})
    outcome = scheduler_replay(ctx, "lr_histories", "schedulers")
    assert "its state keeps no last_epoch (ChainedScheduler keeps none of its own)" in outcome.message
    assert "stepped None times" not in outcome.message


def test_a_list_that_is_its_stored_schedulers_replay_names_the_setting_in_the_replayed_call(tmp_path):
    """OneCycleLR(three_phase=True) differs from step 9 on, and no fit explains it: the stored scheduler's replay
    gives the list exactly, and its call shows the setting (it was told to compare its loop with the set-up)."""
    config = next(c for c in COURSE_CONFIGS if c.family == "OneCycleLR")
    three = lr_scheduler.OneCycleLR(dummy_optimizer(), three_phase=True, **config.params)
    ctx = context(tmp_path, lr_histories={config.name: _run(three)}, schedulers={config.name: three})
    said = lr_family(ctx, "lr_histories", "OneCycleLR", "schedulers").message
    assert "Replayed from its state, the scheduler stored under this name gives exactly your list" in said
    assert "three_phase=True" in said and "Compare your loop" not in said


def test_a_scheduler_first_loop_that_made_none_of_the_exported_schedulers_keeps_the_order_point(graded):
    """A first version of the helper steps the scheduler first and runs once as a smoke test; a later cell redefines
    it in the right order and makes every exported scheduler. The run's record clears each of them, so the loop read
    in the code is named without costing the point."""
    result = graded(FILES / "smoke-test-then-redefined.ipynb")
    order = checks(result)["step-order"]
    assert order.passed and result.score == 10, [(c.id, c.message) for c in result.checks if not c.passed]
    assert "The loop at code cell 2, line 7 reads as scheduler.step() first: either it made none of them" in \
        order.message


@pytest.mark.parametrize("fixture, loop", [("warm-step-before-the-scheduler.ipynb", ""),
                                           ("optimizers-tried-in-an-earlier-cell.ipynb", "code cell 3, line 5")])
def test_an_optimizer_step_taken_before_the_scheduler_was_made_does_not_put_it_first(graded, fixture, loop):
    """opt.step() once, then the scheduler made, then a loop that steps the scheduler first: torch warns, as the
    schedule moved before any update under it. The step came before the scheduler existed; it was counted as one the
    scheduler's first step came after (in a helper, the point was given; in an earlier cell, the loop was said to make
    none of the schedulers)."""
    order = checks(graded(FILES / fixture))["step-order"]
    assert not order.passed, order.message
    if loop:  # the loop read in the code
        assert order.message.startswith(f"scheduler.step() comes before optimizer.step() in your loop: {loop}")
    else:  # a loop read as a rotation of torch's order: measured in the run
        assert "stepped before their optimizer had stepped since the scheduler was made" in order.message


def test_a_plot_that_puts_the_base_lr_in_front_of_every_list_costs_each_family_alike(graded):
    """lrs.insert(0, BASE_LR) in a plot cell: 0.1 is the initial LR of every family but OneCycleLR's (0.004), whose
    lists were said to differ at step 1 and not to come from their schedulers, costing scheduler-runs half a point."""
    result = graded(FILES / "plot-puts-the-base-lr-in-front.ipynb")
    by_id = checks(result)
    assert {c.id for c in result.checks if not c.passed} == {"steplr", "cosine", "warm-restarts", "one-cycle"}
    assert by_id["scheduler-runs"].passed and by_id["step-order"].passed
    assert ("Your list has 31 LRs: the last 30 are torch's list, with 0.1 in front of them, which is not an LR this "
            "schedule sets (it starts at 0.004). A value put in front of the list after the run gives this") \
        in by_id["one-cycle"].message
    assert "Compare your loop" not in by_id["one-cycle"].message


def test_lists_right_for_the_set_up_from_an_lr_set_after_the_scheduler_are_its_runs(graded):
    """SGD(lr=1e-3), the scheduler made, then the LR set to 0.1: StepLR's and the cosine's lists are torch's runs,
    yet they were told an earlier scheduler left the optimizer there and lost their scheduler-runs point."""
    by_id = checks(graded(FILES / "lr-set-after-the-scheduler-was-made.ipynb"))
    assert by_id["steplr"].passed and by_id["cosine"].passed and not by_id["warm-restarts"].passed
    assert by_id["scheduler-runs"].passed


@pytest.mark.parametrize("name, family, says", [
    # A MultiStepLR with milestones one step early, stored as each StepLR: told to make the scheduler before the loop.
    ("multistep-for-steplr-milestones-one-early", "steplr", "StepLR(step_size=10, gamma=0.2): Your list is torch's "
     "StepLR run one step ahead: entry 1 is the LR it reaches after 2 scheduler.step() calls. The scheduler stored "
     "under this name is a MultiStepLR, not a StepLR, so its own settings say where its LR moves"),
    # StepLR(opt, 0.2, 10): the LR never moves, and the causes listed were of a list read from the wrong place.
    ("steplr-arguments-by-position-swapped", "steplr", "StepLR(step_size=10, gamma=0.2): Your list repeats one LR, "
     "0.1, at every step, while torch's goes from 0.1 to 0.0008. The scheduler stored under this name was built with "
     "step_size=0.2, gamma=10 (step_size and gamma hold each other's values: the arguments were given in another "
     "order than StepLR's own, which keywords avoid): pass the values given in CONFIGS."),
    # range(31): OneCycleLR raises at step 31, and the entries never written were blamed on their keys.
    ("thirty-one-iterations-crash-one-cycle", "one-cycle", '`lr_histories` has no entry "OneCycleLR(max_lr=0.1, '
     'total_steps=30, pct_start=0.1)": your notebook hit an error before it was filled (code cell 2 raised '
     "ValueError: Tried to step 31 times"),
])
def test_a_family_s_lists_are_told_what_the_stored_scheduler_or_the_run_shows(graded, name, family, says):
    check = checks(graded(FILES / f"{name}.ipynb"))[family]
    assert not check.passed and says in check.message


def test_a_constant_list_at_the_optimizers_own_lr_is_told_as_that_lr_where_one_cycle_starts_from_its_own(graded):
    """optimizer.defaults['lr'] read after each step: 0.1 throughout. OneCycleLR starts from max_lr / div_factor, so
    the constant was no starting LR it knew, and the message guessed another optimizer or scheduler's."""
    one_cycle = checks(graded(FILES / "lr-read-from-the-optimizer-defaults.ipynb"))["one-cycle"]
    assert not one_cycle.passed
    assert ("Your list repeats one LR, 0.1, at every step, while torch's goes from 0.00765378 to 0.000558856. That is "
            "the lr the optimizer was made with, which this scheduler replaces with its own from the start (0.004): "
            "the LR you read is not the one the optimizer steps with. The grader cannot tell why from your code; it "
            "could be the LR read from something that never changes (optimizer.defaults['lr'], a number saved before "
            "the loop).") in one_cycle.message
    assert "another optimizer or scheduler" not in one_cycle.message


def test_a_schedule_written_as_another_class_is_told_which_class_to_build(graded):
    """StepLR written as LambdaLR(gamma ** (epoch // step_size)): the lists are right, the replay cannot verify them,
    and the message said only that, not which scheduler the configuration asks for."""
    runs = checks(graded(FILES / "steplr-written-as-a-lambda.ipynb"))["scheduler-runs"]
    assert not runs.passed and runs.points == 1.5
    assert ("it cannot be verified: it is a `LambdaLR`; the grader replays only torch's own StepLR" in runs.message
            and "Build this configuration with torch's StepLR, as CONFIGS says." in runs.message)


def test_a_constant_list_read_several_times_per_step_is_told_by_the_scheduler_s_count(graded):
    """The LR read per batch (3) while the scheduler steps per epoch (10): StepLR(step_size=10)'s list stays 0.1, and
    its message listed causes that did not include the readings per step the scheduler's own count shows."""
    steplr = checks(graded(FILES / "lr-read-per-batch-stepped-per-epoch.ipynb"))["steplr"]
    assert not steplr.passed
    assert ("StepLR(step_size=10, gamma=0.5), StepLR(step_size=10, gamma=0.2): Its scheduler stepped 10 times for the "
            "30 LRs recorded: 3 LRs read per scheduler.step()") in steplr.message
    assert "never changes (optimizer.defaults" not in steplr.message


def test_a_plateau_scheduler_tried_on_the_side_is_not_judged_on_step_order(graded):
    """The twelve configurations right, and beside them, under a key of its own, a ReduceLROnPlateau stepped on a made-
    up loss with no optimizer step: step-order failed ("in training the first update would already use the second LR
    of the schedule, and torch warns about it"), neither of which holds for it, on no configuration of the task."""
    result = graded(FILES / "a-plateau-tried-on-the-side.ipynb")
    assert result.score == result.max_score, [(c.id, c.message) for c in result.checks if not c.passed]
    assert checks(result)["step-order"].message == ("Your loop calls optimizer.step() before scheduler.step(), the "
                                                    "order torch expects.")


def test_steplr_built_with_its_arguments_in_the_other_order_costs_its_family_not_the_replay(graded):
    """StepLR(opt, gamma, step_size): step_size 0.5, which torch takes. The replay refused it ("must be a whole
    number ... build this configuration with torch's StepLR", which it was), costing scheduler-runs too."""
    by_id = checks(graded(FILES / "steplr-arguments-by-position-swapped.ipynb"))
    assert by_id["scheduler-runs"].passed, by_id["scheduler-runs"].message
    steplr = by_id["steplr"]
    assert not steplr.passed and steplr.points == 0
    assert "built with step_size=0.5, gamma=5 (step_size and gamma hold each other's values: the arguments were " \
           "given in another order than StepLR's own" in steplr.message


def test_an_lr_floor_set_by_hand_after_each_step_is_named_not_taken_for_rounding(graded):
    """max(lr, 1e-3) after every scheduler.step(): StepLR(10, 0.2)'s last 0.0008 became 0.001, read as "rounded to 3
    decimal places", and the cosine and one-cycle lists were blamed on "another scheduler on the same optimizer"."""
    by_id = checks(graded(FILES / "lr-kept-above-a-floor.ipynb"))
    assert "Your list is torch's StepLR run with every LR below 0.001 raised to 0.001: something sets the LR by hand " \
           "after scheduler.step()" in by_id["steplr"].message and "rounded" not in by_id["steplr"].message
    assert by_id["steplr"].metrics["matched"] == 2 and not by_id["one-cycle"].passed
    runs = by_id["scheduler-runs"]
    assert runs.passed and "another scheduler on the same optimizer" not in runs.message


def test_an_optimizer_step_named_without_parentheses_is_said_as_no_step(graded):
    """`opt.step` with no call: the order check said the schedulers stepped before their optimizer, "call
    optimizer.step() first", which the code already seemed to do."""
    order = checks(graded(FILES / "optimizer-step-without-parentheses.ipynb"))["step-order"]
    assert not order.passed
    assert "without calling optimizer.step(), and the run agrees: no optimizer behind your schedulers ever stepped. " \
           "`opt.step` (line 9) names the step method without calling it" in order.message
    assert "before their optimizer" not in order.message


def test_the_order_message_says_the_lrs_come_out_the_same_only_where_every_scheduler_stepped_thirty_times():
    """sched.step() once before the loop, then the loop: told "the LRs you record come out the same here", though
    each list was shifted a step (the family checks said so)."""
    from grader.checks.schedulers import _lrs_alike
    from grader.loading.values import SchedulerExport

    def exported(*steps):
        return {f"s{i}": SchedulerExport("StepLR", "torch.optim.lr_scheduler", {"last_epoch": n}, None, (1,), "StepLR")
                for i, n in enumerate(steps)}
    said = "The LRs you record come out the same here (each scheduler stepped 30 times). "
    assert _lrs_alike(exported(30, 30)) == said
    assert _lrs_alike(exported(30, 31)) == "" and _lrs_alike({}) == ""
