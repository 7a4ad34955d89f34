"""The peers benchmark's assignment: 20 tiny-model-style submissions, written in each grader's own format.

The task (as in the course's Exercise 1): train an MLP that classifies all 180 points of the low-noise
checkerboard and stores at most 33 numbers. Each submission is self-contained (no course package), so
nbgrader's and otter's kernels run it as they are. The same two checks in every format: "fits" (the
model maps (180, 2) points to (180, 3) scores and gets every point right) and "size" (at most 33
parameters); a notebook passes when it earns every point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nbformat

EXERCISE = "peers-tiny"
NBGRADER_ID = "tiny"
POINTS = {"fits": 4, "size": 3}
BUDGET = 33

DATA_CELL = '''import numpy as np
import torch
from torch import nn


def checkerboard(n_per_cell=20, noise=0.1, seed=0):
    """The course's low-noise 3x3 checkerboard: label (i + j) % 3 around the centre (i - 1, j - 1)."""
    rng = np.random.RandomState(seed)
    points, labels = [], []
    for i in range(3):
        for j in range(3):
            x = (i - 1) * 1.0 + noise * rng.randn(n_per_cell)
            y = (j - 1) * 1.0 + noise * rng.randn(n_per_cell)
            points.append(np.stack([x, y], axis=1))
            labels.append(np.full(n_per_cell, (i + j) % 3))
    return torch.tensor(np.concatenate(points), dtype=torch.float32), torch.tensor(np.concatenate(labels))


X, Y = checkerboard()
print(f"{len(X)} points")'''

PLOT_CELL = '''import matplotlib.pyplot as plt

with torch.no_grad():
    predicted = model(X).argmax(dim=1)
print(f"{sum(p.numel() for p in model.parameters())} parameters, "
      f"training accuracy {100 * (predicted == Y).float().mean().item():.2f}%")
plt.scatter(X[:, 0], X[:, 1], c=predicted, s=8);'''

# The peers' checks run in the student's kernel; each draws its own copy of the points, as our grader does.
FITS_TEST = '''import numpy as _np
import torch as _torch


def _grader_points():
    rng = _np.random.RandomState(0)
    points, labels = [], []
    for i in range(3):
        for j in range(3):
            x = (i - 1) * 1.0 + 0.1 * rng.randn(20)
            y = (j - 1) * 1.0 + 0.1 * rng.randn(20)
            points.append(_np.stack([x, y], axis=1))
            labels.append(_np.full(20, (i + j) % 3))
    return _torch.tensor(_np.concatenate(points), dtype=_torch.float32), _torch.tensor(_np.concatenate(labels))


_Xg, _Yg = _grader_points()
model.eval()
with _torch.no_grad():
    _out = model(_Xg)
assert tuple(_out.shape) == (180, 3), f"the model maps (180, 2) points to {tuple(_out.shape)}, not (180, 3)"
_right = int((_out.argmax(dim=1) == _Yg).sum())
assert _right == 180, f"{_right}/180 training points right; all 180 must be"'''

SIZE_TEST = f'''_n = sum(p.numel() for p in model.parameters())
assert _n <= {BUDGET}, f"{{_n}} parameters; at most {BUDGET}"'''

SEQUENTIAL = '''torch.manual_seed({seed})
model = nn.Sequential(nn.Linear(2, {hidden}), nn.{act}(), nn.Linear({hidden}, 3))
optimizer = torch.optim.Adam(model.parameters(), lr={lr})
for epoch in range({steps}):
    loss = nn.functional.cross_entropy(model(X), {target})
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()'''

CLASS_STYLE = '''class TinyNet(nn.Module):
    def __init__(self, hidden=3):
        super().__init__()
        self.hidden = nn.Linear(2, hidden)
        self.out = nn.Linear(hidden, 3)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


torch.manual_seed({seed})
model = TinyNet({hidden})
opt = torch.optim.Adam(model.parameters(), lr={lr})
criterion = nn.CrossEntropyLoss()
for step in range({steps}):
    opt.zero_grad()
    criterion(model(X), Y).backward()
    opt.step()'''

REGRESSION = '''torch.manual_seed(1)
model = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 1))  # one output: the label as a number
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(200):
    loss = nn.functional.mse_loss(model(X).squeeze(1), Y.float())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()'''

UNTRAINED = '''torch.manual_seed(2)
model = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 3))
optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
# TODO: the training loop'''

CRASH = '''torch.manual_seed(0)
model = TinyNetwork(hidden=4)  # a class this notebook never defines'''


@dataclass(frozen=True)
class Submission:
    """One student's answer cell, and the verdict the task calls for."""

    student: str
    what: str
    code: str
    passes: bool


def _seq(seed: int, hidden: int, act: str = "ReLU", lr: float = 0.05, steps: int = 300, target: str = "Y") -> str:
    return SEQUENTIAL.format(seed=seed, hidden=hidden, act=act, lr=lr, steps=steps, target=target)


def _class(seed: int) -> str:
    return CLASS_STYLE.format(seed=seed, hidden=3, lr=0.1, steps=200)


# Right answers use seeds that fit with a margin (checked by training them); wrong ones fail one check or both.
VARIANTS: list[tuple[str, str, bool]] = [
    ("3 hidden units, class style, fits (21 parameters)", _class(60), True),
    ("64 hidden units: fits, 387 parameters", _seq(0, 64), False),
    ("5 hidden units, fits (33 parameters)", _seq(2, 5), True),
    ("never trained", UNTRAINED, False),
    ("4 tanh units, fits (27 parameters)", _seq(0, 4, "Tanh"), True),
    ("one output (regression on the label): wrong shape", REGRESSION, False),
    ("5 hidden units, 3 steps only", _seq(0, 5, steps=3), False),
    ("5 hidden units, unlucky seed: 65% after 300 steps", _seq(0, 5), False),
    ("5 hidden units, seed 3, fits", _seq(3, 5), True),
    ("crashes: an undefined class", CRASH, False),
    ("4 tanh units, seed 2, fits", _seq(2, 4, "Tanh"), True),
    ("32 hidden units: fits, 195 parameters", _seq(1, 32), False),
    ("3 hidden units, seed 4, lr 0.1, fits", _seq(4, 3, lr=0.1, steps=200), True),
    ("trained on shifted labels (Y + 1) % 3", _seq(3, 5, target="(Y + 1) % 3"), False),
    ("5 hidden units, seed 4, fits", _seq(4, 5), True),
    ("8 hidden units: fits, 51 parameters", _seq(0, 8), False),
    ("4 tanh units, seed 3, fits", _seq(3, 4, "Tanh"), True),
    ("3 hidden units, class style, seed 0: stuck", _class(0), False),
    ("4 tanh units, seed 4, fits", _seq(4, 4, "Tanh"), True),
    ("5 hidden units, seed 1: 89%", _seq(1, 5), False),
]


def submissions(n: int) -> list[Submission]:
    """The first ``n`` submissions, cycling through the variants past 20."""
    return [Submission(f"student{i:02d}", *VARIANTS[i % len(VARIANTS)]) for i in range(n)]


def _notebook(cells: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def plain_notebook(sub: Submission) -> nbformat.NotebookNode:
    """The notebook as a student hands it in to our grader, to otter, and to the raw run."""
    return _notebook([nbformat.v4.new_code_cell(DATA_CELL), nbformat.v4.new_code_cell(sub.code),
                      nbformat.v4.new_code_cell(PLOT_CELL)])


SPEC = f'''# The peers benchmark's assignment (bench/peers_assignment.py): the same checks as nbgrader's and otter's.
id = "{EXERCISE}"
title = "Bench: a small MLP that fits the checkerboard"

[limits]
cell_timeout_s = 120
total_timeout_s = 300
export_timeout_s = 90
memory_mb = 3072

[[exports]]
name = "model"
kind = "model"
input_shape = [2]
doc = "your trained network, taking (batch, 2) points and returning (batch, 3) class scores"

[[checks]]
id = "fits"
kind = "accuracy"
title = "100% training accuracy"
points = {POINTS["fits"]}
[checks.params]
data = {{ kind = "checkerboard", n_per_cell = 20, noise = 0.1, seed = 0 }}
min_accuracy = 100.0
describe = "the 180 training points"

[[checks]]
id = "size"
kind = "parameter_budget"
title = "At most {BUDGET} parameters"
points = {POINTS["size"]}
[checks.params]
tiers = [[{BUDGET}, 1.0]]
'''


def write_ours(root: Path, subs: list[Submission]) -> tuple[Path, Path]:
    """Our grader's exercises folder (for $GRADER_EXERCISES) and class folder."""
    exercises, klass = root / "exercises", root / "class"
    (exercises / EXERCISE).mkdir(parents=True)
    (exercises / EXERCISE / "spec.toml").write_text(SPEC)
    template = Submission("template", "", "# your model here", False)
    nbformat.write(plain_notebook(template), exercises / EXERCISE / f"{EXERCISE}.ipynb")
    klass.mkdir()
    for sub in subs:
        nbformat.write(plain_notebook(sub), klass / f"{sub.student}.ipynb")
    return exercises, klass


def _nbgrader_cell(source: str, grade_id: str, solution: bool = False, points: int = 0) -> nbformat.NotebookNode:
    meta = {"grade": points > 0, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if points:
        meta["points"] = points
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = meta
    return cell


def write_nbgrader_source(course: Path) -> Path:
    """nbgrader's course folder: its config and the source notebook, with the solution and autograder tests."""
    (course / "source" / NBGRADER_ID).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.CourseDirectory.course_id = 'peers-bench'\n"
        "c.ExecutePreprocessor.timeout = 120\n")
    solution = "### BEGIN SOLUTION\n" + VARIANTS[0][1] + "\n### END SOLUTION"
    nb = _notebook([_nbgrader_cell(DATA_CELL, "data"), _nbgrader_cell(solution, "model", solution=True),
                    _nbgrader_cell(PLOT_CELL, "plot"),
                    _nbgrader_cell(FITS_TEST, "fits", points=POINTS["fits"]),
                    _nbgrader_cell(SIZE_TEST, "size", points=POINTS["size"])])
    path = course / "source" / NBGRADER_ID / f"{NBGRADER_ID}.ipynb"
    nbformat.write(nb, path)
    return path


def write_nbgrader_submissions(course: Path, subs: list[Submission]) -> None:
    """Each student's copy of the released notebook, with their answer in the solution cell."""
    released = nbformat.read(course / "release" / NBGRADER_ID / f"{NBGRADER_ID}.ipynb", as_version=4)
    for sub in subs:
        nb = nbformat.from_dict(json.loads(json.dumps(released)))
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                cell.source = sub.code
        folder = course / "submitted" / sub.student / NBGRADER_ID
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{NBGRADER_ID}.ipynb")


def write_otter_tests(folder: Path) -> Path:
    """otter's tests folder, one file per question in its test-file format; `otter generate` zips it."""
    tests = folder / "tests"
    tests.mkdir(parents=True)
    for name, body in (("fits", FITS_TEST), ("size", SIZE_TEST)):
        inner = "\n".join("    " + line if line else "" for line in body.splitlines())
        (tests / f"{name}.py").write_text(
            "from otter.test_files import test_case\n\n"
            "OK_FORMAT = False\n\n"
            f"name = {name!r}\npoints = {POINTS[name]}\n\n\n"
            f"@test_case(points={POINTS[name]})\n"
            f"def test_{name}(model):\n"
            f"{inner}\n")
    return tests


def write_otter_submissions(folder: Path, subs: list[Submission]) -> Path:
    """One notebook per student, each alone in its folder, as otter grades a single file."""
    root = folder / "submissions"
    for sub in subs:
        (root / sub.student).mkdir(parents=True)
        nbformat.write(plain_notebook(sub), root / sub.student / f"{sub.student}.ipynb")
    return root
