"""Watch mode's reuse of a model capture across saves, in real forked kernels (``grader.grading.captures``).

A save that keeps the model's code reuses the last capture with the new weights; a save that changes
what the code reads gets a capture of its own, whether the digest sees the change (a constant) or only
the check of the reused capture's outputs does (a function kept in a dict).
"""

from __future__ import annotations

import nbformat
import torch
from grading_support import kernel_factory

from grader.assignments.catalog import load_spec_file
from grader.grading.captures import CaptureCache
from grader.grading.engine import run_next
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

squash = {"hidden": torch.relu}
GAIN = 1.0

class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(2, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, points):
        return self.out(squash["hidden"](self.inp(points)) * GAIN)

torch.manual_seed(3)
net = Wide()
"""


def _run(tmp_path, name: str, captures: CaptureCache | None, *extra: str):
    path = tmp_path / f"{name}.ipynb"
    cells = [nbformat.v4.new_code_cell(source) for source in (SETUP, *extra)]
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

    # A function kept in a dict is outside the digest: the reused capture's outputs give the change away.
    swapped, model = _run(tmp_path, "squash", captures, "GAIN = 3.0\n", 'squash["hidden"] = torch.tanh\n')
    assert swapped.sandbox["captures"].startswith("every model captured again: the model's outputs")
    assert any("tanh" in op for op in _ops(model)) and not any("relu" in op for op in _ops(model))


def _digest(source: str, filename: str) -> str:
    from grader.kernel import kernel_export

    kernel_export._torch()  # in this process no prelude sealed torch's references
    scope: dict = {"__name__": "__main__"}  # as in a notebook: the class is the student's, not a builtin
    exec(compile(source, filename, "exec"), scope)
    return kernel_export._fingerprint(scope["net"], [2], torch.zeros(2, 2), None)


def test_the_digest_ignores_where_a_cell_was_compiled_but_not_what_its_code_reads():
    same = _digest(SETUP, "/tmp/ipykernel_101/1.py")
    assert _digest("\n\n# moved down\n" + SETUP, "/tmp/ipykernel_202/9.py") == same
    assert _digest(SETUP.replace("GAIN = 1.0", "GAIN = 2.0"), "a.py") != same
    assert _digest(SETUP.replace("nn.Linear(6, 3)", "nn.Linear(6, 3, bias=False)"), "a.py") != same
    assert _digest(SETUP.replace("* GAIN", "* GAIN * GAIN"), "a.py") != same
    assert _digest(SETUP.replace("(points)", "(points.float())"), "a.py") != same
