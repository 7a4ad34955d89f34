"""One submission's way through the grader.

    notebook file -> validate -> prepare -> execute (sandboxed kernel) -> export folder
      -> load (safe loaders) -> checks (grader process) -> SubmissionResult

Nothing the kernel prints or computes is trusted: the checks run here, on values
loaded from the export folder, against data the grader makes itself.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

from .artifacts import collect
from .catalog import Exercise, load_exercise
from .checks import CheckContext, run_checks
from .datasets import DataFactory
from .execute import Execution, execute
from .exports import Exports, load_exports
from .notebook import InvalidNotebook, Submission, prepare, read_submission
from .results import PendingCheck, Status, SubmissionResult
from .sandbox import open_sandbox

KERNEL_EXPORT = pathlib.Path(__file__).with_name("kernel_export.py")
# Found through the import system, not the repository layout, so an installed package works too.
TORCHVISION_COMPAT = pathlib.Path(importlib.util.find_spec("reference.torchvision_compat").origin)


def prelude_source() -> str:
    """The grader's first cell: the torchvision workaround (reference/torchvision_compat.py), applied lazily.

    An import hook runs the workaround right before the first ``import torchvision``, so a notebook
    that never uses torchvision does not pay for importing torch here.
    """
    source = TORCHVISION_COMPAT.read_text()
    # The namespace must stay referenced: the torch.library object inside it keeps the op schemas alive.
    return ("# Added by the grader.\n"
            "import sys as _grader_sys\n"
            "_grader_compat = {'__name__': 'torchvision_compat'}\n"
            "class _GraderTorchvisionHook:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torchvision':\n"
            "            _grader_sys.meta_path.remove(self)\n"
            f"            exec(compile({source!r}, 'torchvision_compat.py', 'exec'), _grader_compat)\n"
            "        return None\n"
            "_grader_sys.meta_path.insert(0, _GraderTorchvisionHook())\n")


def export_source(exercise: Exercise, export_dir: pathlib.Path) -> str:
    """The grader's last cell: write every declared value into ``export_dir``."""
    requests = [{"name": e.name, "kind": e.kind, "input_shape": list(e.input_shape or []), "code": e.code}
                for e in exercise.spec.exports]
    return ("# Added by the grader.\n"
            "_grader_export = {'__name__': 'grader_export'}\n"
            f"exec(compile({KERNEL_EXPORT.read_text()!r}, 'grader_export.py', 'exec'), _grader_export)\n"
            f"_grader_export['export_values'](globals(), {json.dumps(requests)}, {str(export_dir)!r})\n")


@dataclass(frozen=True)
class Run:
    """What executing one notebook produced, before any scoring."""

    execution: Execution
    exports: Exports
    sandbox: dict
    load_seconds: float


def run_notebook(submission: Submission, exercise: Exercise, hide: tuple[str, ...] = (),
                 data_root: pathlib.Path | None = None) -> Run:
    """Execute a validated notebook in a fresh sandbox and load its exports; the sandbox is gone afterwards.

    An exercise with ``data_root = true`` gets the MNIST root read-only, named by ``$MNIST_ROOT``.
    """
    env = {"MNIST_ROOT": str(data_root)} if exercise.spec.data_root and data_root else {}
    sandbox = open_sandbox(exercise.spec.limits, extra_env=env, hide=hide, readonly=tuple(env.values()))
    try:
        prepared = prepare(submission, prelude_source(), export_source(exercise, sandbox.export_dir))
        execution = execute(prepared, sandbox)
        start = time.monotonic()
        if execution.exported:
            exports = load_exports(sandbox.export_dir)
        else:
            exports = Exports.unavailable(execution.reason or "the notebook did not reach the grader's export step")
        return Run(execution, exports, sandbox.report | {"outputs_truncated": execution.outputs_truncated},
                   time.monotonic() - start)
    finally:
        sandbox.kill()
        sandbox.remove()


def score(run: Run, submission: Submission, exercise: Exercise, student: str,
          hidden_seed: Callable[[str], int] | None = None, include_hidden: bool = False,
          data_root: pathlib.Path | None = None) -> SubmissionResult:
    """Run the checks in this process on the loaded exports."""
    start = time.monotonic()
    data = DataFactory(hidden_seed, data_root)
    ctx = CheckContext(exercise.spec, run.exports, tuple(submission.code_cells()), data,
                       run_error=run.execution.reason or "")
    include_hidden = include_hidden and hidden_seed is not None
    checks = run_checks(list(exercise.checks), ctx, include_hidden)
    pending = () if include_hidden else tuple(PendingCheck(c.spec.id, c.spec.title, c.spec.points)
                                             for c in exercise.checks if c.spec.visibility == "hidden")
    timings = {k: round(v, 3) for k, v in run.execution.timings.items() if k != "pid"}
    timings.update(load=round(run.load_seconds, 3), checks=round(time.monotonic() - start, 3))
    return SubmissionResult(
        exercise=exercise.id, student=student, status=run.execution.status, checks=tuple(checks),
        error=run.execution.reason, pending=pending, traceback=run.execution.traceback, timings=timings,
        notebook_sha256=submission.sha256, sandbox=run.sandbox, artifacts=collect(exercise.spec, run.exports, data),
    )


def grade_submission(
    submission: Submission,
    exercise: Exercise,
    student: str,
    hidden_seed: Callable[[str], int] | None = None,
    include_hidden: bool = False,
    hide: tuple[str, ...] = (),
    data_root: pathlib.Path | None = None,
) -> SubmissionResult:
    """Execute one validated notebook in a fresh sandbox and score it."""
    start = time.monotonic()
    root = resolve_data_root(exercise, data_root)
    result = score(run_notebook(submission, exercise, hide, root), submission, exercise, student, hidden_seed,
                   include_hidden, root)
    result.timings["wall"] = round(time.monotonic() - start, 3)
    return result


def resolve_data_root(exercise: Exercise, data_root: pathlib.Path | None) -> pathlib.Path | None:
    """The MNIST root for exercises that need one: the given path, else $MNIST_ROOT, else the bundled files.

    Raises reference.mnist.MnistNotFound with the paths tried when none is found.
    """
    if not exercise.spec.data_root:
        return None
    from reference.mnist import MNIST_FILES, MnistNotFound, prepare_mnist_root, raw_folder

    root = prepare_mnist_root(data_root).resolve()
    unreadable = [name for name in MNIST_FILES if not (raw_folder(root) / name).stat().st_mode & stat.S_IROTH]
    if unreadable and os.geteuid() == 0:  # kernels run as another user and could not open the files
        raise MnistNotFound(f"the MNIST files in {raw_folder(root)} ({', '.join(unreadable)}) are readable by their "
                            "owner only, but kernels run as an unprivileged user: make them readable "
                            f"(chmod a+r {raw_folder(root)}/*)")
    return root


def invalid_result(exercise_id: str, student: str, reason: str) -> SubmissionResult:
    """A submission that could not be run at all still gets a graded outcome."""
    return SubmissionResult(exercise=exercise_id, student=student, status=Status.INVALID, error=reason)


def grade_file(
    path: str | pathlib.Path,
    exercise_id: str | None = None,
    student: str | None = None,
    hidden_seed: Callable[[str], int] | None = None,
    include_hidden: bool = False,
) -> SubmissionResult:
    """Validate, find the exercise and grade; raises InvalidNotebook or UnknownExercise for unusable input."""
    path = pathlib.Path(path)
    submission = read_submission(path)
    exercise_id = exercise_id or submission.exercise_id
    if not exercise_id:
        raise InvalidNotebook(f"{path}: the notebook does not say which exercise it is; pass --exercise ID")
    exercise = load_exercise(exercise_id)
    return grade_submission(submission, exercise, student or path.stem, hidden_seed, include_hidden)
