"""Watch mode's reuse of a model capture, in real forked kernels (``grader.grading.captures``).

A save that keeps the model's code reuses the last capture with the new weights; a save that changes
what the code reads gets a capture of its own, whether the digest sees the change (a constant, a name
in a dict) or only the check of the reused capture's outputs does (a method of torch's tensors patched).
Where a second core is free, a save's model is captured beside the run by a second kernel that ends at
its first forward pass (``grader.grading.speculation``); those notebooks train after that pass and then
wait, so that the second kernel is done before the first one's cells are.
"""

from __future__ import annotations

import json

import nbformat
import pytest
import torch
from grading_support import UNPRIVILEGED_UID, kernel_factory, run_as_nobody

from grader.assignments.catalog import load_spec_file
from grader.grading.captures import CaptureCache
from grader.grading.engine import run_next
from grader.grading.speculation import spare_core
from grader.kernel.notebook import read_submission

SPEC = """id = "reuse"
title = "reuse"
[[exports]]
name = "net"
kind = "model"
input_shape = [2]
[[checks]]
id = "net-defined"
kind = "defined"
points = 1
[checks.params]
value = "net"
"""

SETUP = """import torch
from torch import nn

squash = {"hidden": "relu"}
GAIN = 1.0

class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(2, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, points):
        hidden = self.inp(points)
        hidden = hidden.relu() if squash["hidden"] == "relu" else hidden.tanh()
        return self.out(hidden * GAIN)

torch.manual_seed(3)
net = Wide()
"""


def _run(tmp_path, name: str, captures: CaptureCache | None, *extra: str, setup: str = SETUP):
    path = tmp_path / f"{name}.ipynb"
    cells = [nbformat.v4.new_code_cell(source) for source in (setup, *extra)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    (tmp_path / "reuse").mkdir(exist_ok=True)
    (tmp_path / "reuse" / "spec.toml").write_text(SPEC)
    exercise = load_spec_file(tmp_path / "reuse" / "spec.toml")
    run = run_next(lambda: read_submission(path), exercise, None, (), kernel_factory(), captures)
    assert run.execution.status.name == "OK", run.execution.reason
    return run, run.exports.values["net"]


def _ops(model) -> list[str]:
    return [str(node.target) for node in model.module.graph.nodes if node.op == "call_function"]


def test_a_save_that_keeps_the_code_reuses_the_capture_and_one_that_changes_it_does_not(tmp_path):
    captures = CaptureCache()
    first, model = _run(tmp_path, "first", captures)
    assert "captures" not in first.sandbox and len(captures.graphs) == 1
    assert any("relu" in op for op in _ops(model))

    retrained = "with torch.no_grad():\n    net.inp.weight.mul_(2.0)\n"
    reused, model = _run(tmp_path, "weights", captures, retrained)
    assert "reused" in reused.sandbox["captures"]
    _, truth = _run(tmp_path, "weights-fresh", None, retrained)
    assert _ops(model) == _ops(truth)
    assert all(torch.equal(model.parameters[k], truth.parameters[k]) for k in truth.parameters)
    x = torch.randn(7, 2)
    assert torch.equal(model.module(x), truth.module(x))

    # A constant the code reads is in the digest: a new capture at once, nothing to check again.
    scaled, model = _run(tmp_path, "gain", captures, "GAIN = 3.0\n")
    assert "captures" not in scaled.sandbox and len(captures.graphs) == 2
    assert 3.0 in model.stored_numbers().literals

    swapped, model = _run(tmp_path, "squash", captures, "GAIN = 3.0\n", 'squash["hidden"] = "tanh"\n')
    assert "captures" not in swapped.sandbox
    assert any("tanh" in op for op in _ops(model)) and not any("relu" in op for op in _ops(model))

    # A method of torch's tensors patched is outside the digest: the reused capture's outputs give the change away.
    patched, model = _run(tmp_path, "patched", captures, "GAIN = 3.0\n", "torch.Tensor.relu = torch.Tensor.sigmoid\n")
    assert patched.sandbox["captures"].startswith("every model captured again: the model's")
    assert any("sigmoid" in op for op in _ops(model)) and not any("relu" in op for op in _ops(model))


def test_a_threshold_no_digest_sees_is_crossed_by_the_wide_probe(tmp_path):
    """A value put into torch's own nn.Module is outside the digest; the probe at 1e4 reaches the clamp it sets."""
    captures = CaptureCache()
    limit = ("nn.Module.LIM = ({v},)\n"
             "Wide.forward = lambda self, points: self.out(self.inp(points)).clamp(max=self.LIM[0])\n")
    _run(tmp_path, "wide", captures, limit.format(v=1000.0))
    narrow, model = _run(tmp_path, "narrow", captures, limit.format(v=500.0))
    assert narrow.sandbox["captures"].startswith("every model captured again: the model's")
    assert 500.0 in _numbers_in_graph(model)


def test_a_change_beyond_every_probe_s_reach_shows_in_the_operations_the_model_runs(tmp_path):
    """A limit chosen by an environment variable (no digest reads it) and far beyond the inputs: the aten ops recorded
    on a probe carry the literal, and the held capture's differ."""
    captures = CaptureCache()
    cap = ("import os\nos.environ['CAP'] = '{v}'\nWide.forward = lambda self, points: self.out(self.inp(points))"
           ".clamp(max=1e7 if os.getenv('CAP') == 'a' else 2e7)\n")
    _run(tmp_path, "a", captures, cap.format(v="a"))
    b, model = _run(tmp_path, "b", captures, cap.format(v="b"))
    assert b.sandbox["captures"] == ("every model captured again: the model's operations on 2 inputs differ from the "
                                     "reused capture's")
    assert 2e7 in _numbers_in_graph(model)


def _numbers_in_graph(model) -> set:
    """The numbers written into the rebuilt graph's ops (clamp's bound among them, a setting the budget leaves out)."""
    return {a for node in model.module.graph.nodes for a in (*node.args, *node.kwargs.values())
            if isinstance(a, float)}


READS = """import functools, types
import numpy as np
import torch
from torch import nn

cfg = types.SimpleNamespace(limit=100.0)
LIM = np.float32(100.0)

class Clip:
    def __init__(self, m):
        self.m = m

    def __call__(self, x):
        return x.clamp(-self.m, self.m)

class Net(nn.Module):
    def __init__(self, limit=100.0):
        super().__init__()
        self.fc = nn.Linear(2, 3)
        self._limit = limit
        self.clip = Clip(limit)
        self.cap = functools.partial(torch.clamp, max=limit)
        self.post = Clip(limit).__call__

    def forward(self, x):
        y = self.fc(x).clamp(max=self._limit).clamp(max=cfg.limit).clamp(max=float(LIM))
        return self.post(self.cap(self.clip(y)))

net = Net()
"""


def _digest(source: str, filename: str) -> str | None:
    from grader.kernel import kernel_export

    kernel_export._torch()  # in this process no prelude sealed torch's references
    scope: dict = {"__name__": "__main__"}  # as in a notebook: the class is the student's, not a builtin
    exec(compile(source, filename, "exec"), scope)
    return kernel_export._fingerprint(scope["net"], [2], torch.zeros(2, 2), None)


def test_the_digest_ignores_where_a_cell_was_compiled_but_not_what_its_code_reads():
    same = _digest(SETUP, "/tmp/ipykernel_101/1.py")
    assert same is not None
    assert _digest("\n\n# moved down\n" + SETUP, "/tmp/ipykernel_202/9.py") == same
    for changed in (SETUP.replace("GAIN = 1.0", "GAIN = 2.0"), SETUP.replace('"relu"', '"tanh"'),
                    SETUP.replace("nn.Linear(6, 3)", "nn.Linear(6, 3, bias=False)"),
                    SETUP.replace("* GAIN", "* GAIN * GAIN"), SETUP.replace("(points)", "(points.float())")):
        assert _digest(changed, "a.py") != same


def test_the_digest_follows_objects_partials_numpy_scalars_and_private_attributes():
    base = _digest(READS, "a.py")
    assert base is not None
    for old, new in (("net = Net()", "net = Net(limit=5.0)"), ("limit=100.0)\nLIM", "limit=5.0)\nLIM"),
                     ("np.float32(100.0)", "np.float32(5.0)"), ("self.m = m", "self.m = m * 2")):
        assert _digest(READS.replace(old, new, 1), "a.py") != base, new
    # What it cannot follow, it does not guess: a tensor read in forward is no digest, and the model is captured.
    assert _digest(READS.replace("limit=100.0)\nLIM", "limit=torch.tensor(100.0))\nLIM", 1), "a.py") is None


def test_the_digest_sees_torch_s_own_forward_patched():
    from torch import nn

    base, original = _digest(READS, "a.py"), nn.Linear.forward
    try:
        nn.Linear.forward = lambda self, x: nn.functional.linear(x, self.weight, self.bias) * 2
        assert _digest(READS, "a.py") not in (base, None)
    finally:
        nn.Linear.forward = original


TEMPLATE = """import builtins, functools, types
import torch
from torch import nn
{setup}
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 3)
{init}
    def forward(self, x):
        return {expr}
net = Net()
{after}"""


def _pair(expr: str, before: str, after: str, setup: str = "", init: str = "", late: str = "") -> tuple:
    def source(value: str) -> str:
        return TEMPLATE.format(setup=setup.format(v=value), init=init.format(v=value), expr=expr.format(v=value),
                               after=late.format(v=value))
    return _digest(source(before), "a.py"), _digest(source(after), "a.py")


@pytest.mark.parametrize("case", [
    dict(expr="self.fc(x).clamp(max=LIMIT)", setup="builtins.LIMIT = {v}"),
    dict(expr="self.fc(x).clamp(max=cfg['limit'])", setup="class D(dict):\n    pass\ncfg = D(limit={v})"),
    dict(expr="self.fc(x) * SCALE", setup="class F(float):\n    pass\nSCALE = F({v})"),
    dict(expr="self.fc(x).clamp(max=cap.lim)", setup="def cap():\n    pass\ncap.lim = {v}"),
    dict(expr="self.fc(x).clamp(max=cfg.a.b)", setup="cfg = types.SimpleNamespace(a=types.SimpleNamespace(b={v}))"),
    dict(expr="self.fc(x).clamp(max=torch.LIM)", setup="torch.LIM = {v}"),
    dict(expr="self.fc(x)", late="nn.Linear.forward = lambda self, x: nn.functional.linear(x, self.weight) * {v}"),
    dict(expr="self.fc(x)", late="net.fc.register_forward_hook(lambda m, a, k, out: out, with_kwargs={v})"),
])
def test_a_changed_value_the_code_reads_changes_the_digest_or_leaves_none(case):
    from torch import nn

    forward = nn.Linear.forward
    values = ("True", "False") if "with_kwargs" in case.get("late", "") else ("1000.0", "500.0")
    try:
        before, after = _pair(case.pop("expr"), *values, **case)
    finally:
        nn.Linear.forward = forward
        for name in ("LIMIT",):
            vars(__import__("builtins")).pop(name, None)
        vars(torch).pop("LIM", None)
    assert before is None or before != after


@pytest.mark.parametrize("expr, setup", [("self.fc(x) * globals()['SCALE']", "SCALE = 2.0"),
                                         ("self.fc(x) * mylib.SCALE", "mylib = types.ModuleType('mylib')\n"
                                                                      "mylib.SCALE = 2.0")])
def test_what_the_digest_cannot_follow_leaves_no_digest(expr, setup):
    assert _digest(TEMPLATE.format(setup=setup, init="", expr=expr, after=""), "a.py") is None


BUILD = """import time
import torch
import torch.nn.functional as F
from torch import nn

class Pair(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.a, self.b = nn.Linear(2, width), nn.Linear(width, 4)

    def forward(self, pts):
        return self.b(self.a(pts).tanh() * GAIN)

GAIN = {gain}
torch.manual_seed(0)
net = Pair(5)
"""
TRAIN = """pts, labels = torch.randn(64, 2), torch.randint(0, 4, (64,))
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for _ in range(20):
    opt.zero_grad()
    F.cross_entropy(net(pts), labels).backward()
    opt.step()
"""
SETTLE = "time.sleep(2)  # the second kernel ended at the first pass; it has long written its capture by now\n"
beside = pytest.mark.skipif(not spare_core(), reason="a second kernel runs only where a second core is free")


def _beside(tmp_path, name: str, *extra: str, gain: float = 1.0, captures: CaptureCache | None = None):
    """The notebook run twice: in watch mode, with a second kernel beside it; and as usual, to compare."""
    captures = CaptureCache() if captures is None else captures
    run, model = _run(tmp_path, name, captures, *extra, TRAIN, SETTLE, setup=BUILD.format(gain=gain))
    _, truth = _run(tmp_path, f"{name}-as-usual", None, *extra, TRAIN, setup=BUILD.format(gain=gain))
    assert _ops(model) == _ops(truth)
    assert all(torch.equal(model.parameters[k], truth.parameters[k]) for k in truth.parameters)
    x = torch.randn(9, 2)
    assert torch.allclose(model.module(x), truth.module(x))
    return run, model


@beside
def test_a_model_whose_code_changed_is_captured_beside_the_run_and_checked(tmp_path):
    captures = CaptureCache()
    _run(tmp_path, "first", captures, TRAIN, SETTLE, setup=BUILD.format(gain=1.0))
    changed, model = _beside(tmp_path, "changed", gain=2.0, captures=captures)
    assert changed.sandbox["captures"] == ("1 model capture(s) made beside this run by a second kernel reused, their "
                                           "outputs checked")
    assert 2.0 in model.stored_numbers().literals


@beside
def test_a_different_model_fed_first_leaves_the_exported_one_to_be_captured(tmp_path):
    """A throwaway model is the first fed the input shape: its capture is not the exported model's, and goes unused."""
    captures = CaptureCache()
    run, _ = _beside(tmp_path, "scratch", "scratch = nn.Linear(2, 4)\nscratch(torch.zeros(3, 2))\n", captures=captures)
    assert "captures" not in run.sandbox and len(captures.graphs) == 2  # the second kernel's, and the export's own


@beside
def test_a_model_changed_after_its_first_pass_is_captured_as_it_ends(tmp_path):
    """A layer wrapped after a shape check changes the digest: the capture of the first pass goes unused."""
    captures = CaptureCache()
    run, _ = _beside(tmp_path, "wrap", "net(torch.zeros(3, 2))\nnet.b = nn.Sequential(nn.ReLU(), net.b)\n",
                     captures=captures)
    assert "captures" not in run.sandbox and len(captures.graphs) == 2


@beside
def test_a_change_no_digest_sees_made_after_the_first_pass_is_caught_by_the_check(tmp_path):
    """A tensor method of torch's patched after the first pass: the digests agree, the second kernel's capture (which
    never saw the patch) computes something else, and the save is run again with every model captured."""
    run, model = _beside(tmp_path, "patch", "net(torch.zeros(3, 2))\ntorch.Tensor.tanh = torch.Tensor.sigmoid\n")
    assert run.sandbox["captures"].startswith("every model captured again: the model's")
    assert any("sigmoid" in op for op in _ops(model)) and not any("tanh" in op for op in _ops(model))


UNPRIVILEGED = """import json, os, pathlib, sys
from grader.assignments.catalog import load_spec_file
from grader.grading.captures import CaptureCache
from grader.grading.engine import run_next
from grader.kernel.factory import start_factory
from grader.kernel.notebook import read_submission
folder = pathlib.Path(sys.argv[1])
exercise, captures, seen = load_spec_file(folder / "probe" / "spec.toml"), CaptureCache(), []
with start_factory() as factory:
    for name in ("a.ipynb", "b.ipynb"):
        run = run_next(lambda: read_submission(folder / name), exercise, None, (), factory.handle, captures)
        seen.append([os.geteuid(), run.execution.status.name, run.sandbox.get("captures")])
print(json.dumps(seen))
"""


@beside
def test_the_second_kernel_captures_for_a_grader_that_is_not_root(tmp_path):
    """Unprivileged, sandboxes run as the grader's own user: the second kernel's is still ended, then read."""
    cells = {name: [BUILD.format(gain=gain), TRAIN, SETTLE] for name, gain in (("a.ipynb", 1.0), ("b.ipynb", 2.0))}
    seen = json.loads(run_as_nobody(UNPRIVILEGED, SPEC.replace('id = "reuse"', 'id = "probe"'), files=cells))
    made = "1 model capture(s) made beside this run by a second kernel reused, their outputs checked"
    assert seen == [[UNPRIVILEGED_UID, "OK", made], [UNPRIVILEGED_UID, "OK", made]]
