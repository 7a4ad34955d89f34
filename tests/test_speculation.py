"""Watch mode's second kernel, which captures a save's model while the first trains (``grader.grading.speculation``).

Real forked kernels. The notebooks train after the model's first forward pass and, where a second kernel runs, wait,
so that it (ending at that pass) is done before the first one's cells are; each export is compared with one captured
as usual.
"""

from __future__ import annotations

import nbformat
import pytest
import torch
from grading_support import kernel_factory

from grader.assignments.catalog import load_spec_file
from grader.grading.captures import CaptureCache
from grader.grading.engine import run_next
from grader.grading.speculation import spare_core
from grader.kernel.notebook import read_submission

pytestmark = pytest.mark.skipif(not spare_core(), reason="the second kernel runs only where a second core is free")

SPEC = """id = "beside"
title = "beside"
[[exports]]
name = "clf"
kind = "model"
input_shape = [2]
[[checks]]
id = "clf-defined"
kind = "defined"
points = 1
[checks.params]
value = "clf"
"""

BUILD = """import time
import torch
import torch.nn.functional as F
from torch import nn

class Pair(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.a, self.b = nn.Linear(2, width), nn.Linear(width, 4)

    def forward(self, pts):
        return self.b(self.a(pts).tanh() * {gain})

torch.manual_seed(0)
clf = Pair(5)
"""

TRAIN = """pts, labels = torch.randn(64, 2), torch.randint(0, 4, (64,))
opt = torch.optim.SGD(clf.parameters(), lr=0.1)
for _ in range(20):
    opt.zero_grad()
    F.cross_entropy(clf(pts), labels).backward()
    opt.step()
"""
SETTLE = "time.sleep(2)  # the second kernel ended at the first pass; it has long written its capture by now\n"


def _run(tmp_path, name: str, captures: CaptureCache | None, *cells: str):
    path = tmp_path / f"{name}.ipynb"
    cells = (*cells, SETTLE) if captures is not None else cells  # a notebook captured as usual has no race to wait on
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    (tmp_path / "beside").mkdir(exist_ok=True)
    (tmp_path / "beside" / "spec.toml").write_text(SPEC)
    exercise = load_spec_file(tmp_path / "beside" / "spec.toml")
    run = run_next(lambda: read_submission(path), exercise, None, (), kernel_factory(), captures)
    assert run.execution.status.name == "OK", run.execution.reason
    return run, run.exports.values["clf"]


def _ops(model) -> list[str]:
    return [str(node.target) for node in model.module.graph.nodes if node.op == "call_function"]


def _same_model(model, truth) -> None:
    assert _ops(model) == _ops(truth)
    assert all(torch.equal(model.parameters[k], truth.parameters[k]) for k in truth.parameters)
    x = torch.randn(9, 2)
    assert torch.allclose(model.module(x), truth.module(x))


def test_a_model_whose_code_changed_is_captured_beside_the_run_and_checked(tmp_path):
    captures = CaptureCache()
    _run(tmp_path, "first", captures, BUILD.format(gain="1.0"), TRAIN)
    changed, model = _run(tmp_path, "changed", captures, BUILD.format(gain="2.0"), TRAIN)
    assert changed.sandbox["captures"] == ("1 model capture(s) made beside this run by a second kernel reused, their "
                                           "outputs checked")
    _, truth = _run(tmp_path, "truth", None, BUILD.format(gain="2.0"), TRAIN)
    _same_model(model, truth)
    assert 2.0 in model.stored_numbers().literals


def test_a_different_model_fed_first_leaves_the_exported_one_to_be_captured(tmp_path):
    """A throwaway model is the first fed the input shape: its capture is not the exported model's, and goes unused."""
    first = "scratch = nn.Linear(2, 4)\nscratch(torch.zeros(3, 2))\n"
    captures = CaptureCache()
    run, model = _run(tmp_path, "scratch", captures, BUILD.format(gain="1.0"), first, TRAIN)
    assert "captures" not in run.sandbox and len(captures.graphs) == 2  # the second kernel's, and the export's own
    _, truth = _run(tmp_path, "scratch-truth", None, BUILD.format(gain="1.0"), first, TRAIN)
    _same_model(model, truth)


def test_a_model_changed_after_its_first_pass_is_captured_as_it_ends(tmp_path):
    """A layer wrapped after a shape check changes the digest: the capture of the first pass goes unused."""
    swap = "clf(torch.zeros(3, 2))\nclf.b = nn.Sequential(nn.ReLU(), clf.b)\n"
    captures = CaptureCache()
    run, model = _run(tmp_path, "swap", captures, BUILD.format(gain="1.0"), swap, TRAIN)
    assert "captures" not in run.sandbox and len(captures.graphs) == 2
    _, truth = _run(tmp_path, "swap-truth", None, BUILD.format(gain="1.0"), swap, TRAIN)
    _same_model(model, truth)


def test_a_change_no_digest_sees_made_after_the_first_pass_is_caught_by_the_check(tmp_path):
    """A tensor method of torch's patched after the first pass: the digests agree, the second kernel's capture (which
    never saw the patch) computes something else, and the save is run again with every model captured."""
    patch = "clf(torch.zeros(3, 2))\ntorch.Tensor.tanh = torch.Tensor.sigmoid\n"
    run, model = _run(tmp_path, "patch", CaptureCache(), BUILD.format(gain="1.0"), patch, TRAIN)
    assert run.sandbox["captures"].startswith("every model captured again: the model's")
    assert any("sigmoid" in op for op in _ops(model)) and not any("tanh" in op for op in _ops(model))
