"""An in-notebook quick check for students, like otter's ``grader.check``: NOT the official grade.

``quick_check("tiny-model", model=model)`` exports the given values exactly as the
official run does, loads them back with the grader's own loaders and runs the public
checks. It is fast feedback while working; the official grade reruns the whole
notebook in a fresh sandbox and adds hidden checks, so a patched kernel gains nothing.
"""

from __future__ import annotations

import os
import pathlib
import tempfile

from rich.console import Console

from grader.assignments.catalog import load_exercise
from grader.checks import CheckContext, run_checks
from grader.checks.data import DataFactory
from grader.kernel.kernel_export import export_values
from grader.loading.exports import load_exports
from grader.render.terminal import submission_table
from grader.results import Status, SubmissionResult

LABEL = "Quick self-check: NOT your grade. The official grade reruns the whole notebook and adds hidden checks."


def _notebook_sources() -> tuple[tuple[int, str], ...]:
    """The cells this IPython session has run, for the checks that read code."""
    try:
        history = get_ipython().user_ns.get("In", [])  # noqa: F821 - defined inside IPython only
    except NameError:
        return ()
    return tuple((i, source) for i, source in enumerate(history) if source)


def quick_check(exercise_id: str, console: Console | None = None, **values) -> SubmissionResult | None:
    """Run the public checks of ``exercise_id`` on the given live values and print a labelled table."""
    console = console or Console()
    if os.environ.get("GRADER_SANDBOX") == "1":
        console.print("(quick check skipped: this is the official run, which grades the whole notebook)")
        return None
    exercise = load_exercise(exercise_id)
    # Probes (exports with code) run only in the official run: here only the given values count.
    requests = [{"name": e.name, "kind": e.kind, "input_shape": list(e.input_shape or [])}
                for e in exercise.spec.exports if not e.code]
    with tempfile.TemporaryDirectory(prefix="grader-quick-") as folder:
        export_values(values, requests, folder)
        exports = load_exports(pathlib.Path(folder))
    root = os.environ.get("MNIST_ROOT")  # the MNIST exercises' notebooks read their data from here too
    ctx = CheckContext(exercise.spec, exports, _notebook_sources(),
                       DataFactory(data_root=pathlib.Path(root) if root else None))
    checks = run_checks(list(exercise.checks), ctx, include_hidden=False)
    result = SubmissionResult(exercise_id, "quick check", Status.OK, tuple(checks))
    console.print(submission_table(result, title=LABEL))
    console.print(f"Public checks: {result.score:g}/{result.max_score:g} points.")
    return result
