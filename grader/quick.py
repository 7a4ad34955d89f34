"""An in-notebook quick check for students, like otter's ``grader.check``: NOT the official grade.

``quick_check("tiny-model", model=model)`` exports the given values exactly as the
official run does, loads them back with the grader's own loaders and runs the public
checks. It is fast feedback while working; the official grade reruns the whole
notebook in a fresh sandbox and adds hidden checks, so a patched kernel gains nothing.

It never fails a check for what only the official run has: checks on values the grader
makes by running the student's code on its own data (exports with ``code``), or on data
this session cannot load, are listed as "checked in the official run"; checks on a value
not passed in are listed as "not checked here", with the keyword to pass.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tempfile
from typing import TYPE_CHECKING

from grader.errors import UserError
from grader.results import CheckResult, PendingCheck, Status, SubmissionResult

if TYPE_CHECKING:  # imported by quick_check itself: in the official run a notebook's `import` must cost nothing
    from rich.console import Console
    from rich.text import Text

    from grader.assignments.catalog import Exercise
    from grader.checks import BoundCheck, CheckContext

LABEL = "Quick self-check: NOT your grade. The official grade reruns the whole notebook and adds hidden checks."


class QuickCheckError(UserError, TypeError):
    """``quick_check`` was called with a value the exercise does not know; the message lists the ones it does."""


def _notebook_sources() -> tuple[tuple[int, str], ...]:
    """The cells this IPython session has run, for the checks that read code."""
    try:
        history = get_ipython().user_ns.get("In", [])  # noqa: F821 - defined inside IPython only
    except NameError:
        return ()
    return tuple((i, source) for i, source in enumerate(history) if source)


def _data_kinds(value) -> set[str]:
    """The data kinds a check parameter describes, nested ones included ({train = {kind = ...}, ...})."""
    if not isinstance(value, dict):
        return set()
    kinds = {value["kind"]} if isinstance(value.get("kind"), str) else set()
    return kinds.union(*(_data_kinds(v) for v in value.values()))


def _data_root(exercise: Exercise) -> pathlib.Path | None:
    """The MNIST root the official run would use, or None when this session has none."""
    from grader.grading.engine import resolve_data_root

    try:
        return resolve_data_root(exercise, None)
    except UserError:
        return None


def official_only(exercise: Exercise, data_root: pathlib.Path | None) -> dict[str, str]:
    """Why each public check that needs the official run cannot be checked here, by check id."""
    probes = {e.name: e for e in exercise.spec.exports if e.code}
    reasons = {}
    for check in exercise.checks:
        names = list(dict.fromkeys(v for name, v in check.params.items()
                                   if check.kind.params[name].export and v in probes))
        if names:
            how = probes[names[0]].doc if len(names) == 1 and probes[names[0]].doc else "your code on its own data"
            reasons[check.spec.id] = (f"Checked in the official run: it needs {' and '.join(f'`{n}`' for n in names)}, "
                                      f"which the grader makes by running {how}.")
        elif data_root is None and "mnist" in set().union(*map(_data_kinds, check.params.values())):
            reasons[check.spec.id] = "Checked in the official run: it needs the MNIST files, which this session lacks."
    return reasons


def _unknown_values(exercise: Exercise, values: dict) -> None:
    expected = [e for e in exercise.spec.exports if not e.code]
    unknown = sorted(set(values) - {e.name for e in expected})
    if unknown:
        names = "; ".join(f"`{e.name}`" + (f" ({e.doc})" if e.doc else "") for e in expected)
        raise QuickCheckError(f"quick_check({exercise.id!r}) got {', '.join(f'`{u}`' for u in unknown)}, which "
                              f"{exercise.id} does not check. It checks: {names}. Pass them under these names, e.g. "
                              f"quick_check({exercise.id!r}, {expected[0].name}={expected[0].name}).",
                              assignment=exercise.id)


def _run(checks: list[BoundCheck], ctx: CheckContext, not_given: set[str]) -> tuple[list[CheckResult], dict[str, str]]:
    """Results of ``checks`` in spec order, and the checks skipped for a value not passed in (with why).

    Gates (``requires``) apply as in the official run, except on checks that did not run here.
    """
    results: dict[str, CheckResult] = {}
    skipped = {}
    for check in checks:
        named = [v for name, v in check.params.items() if check.kind.params[name].export]
        # A check on nothing passed in proves nothing here (this process may hold modules of its own).
        outcome = None if named and set(named) <= not_given else check.evaluate(
            dataclasses.replace(ctx, check_id=check.spec.id))
        needs = named[0] if outcome is None else outcome.details.get("needs")
        if (outcome is None or not outcome.passed) and needs in not_given:
            skipped[check.spec.id] = (f"Not checked here: it needs `{needs}`. Pass it as "
                                      f"quick_check(..., {needs}={needs}).")
            continue
        blocked = next((r for r in check.spec.requires if r in results and not results[r].passed), None)
        results[check.spec.id] = check.result(outcome, blocked)
    return list(results.values()), skipped


def quick_check(exercise_id: str, console: Console | None = None, **values) -> SubmissionResult | None:
    """Run the public checks of ``exercise_id`` on the given live values and print a labelled table."""
    if os.environ.get("GRADER_SANDBOX") == "1":  # said without importing rich, which each graded kernel would pay
        (console.print if console is not None else print)(
            "(quick check skipped: this is the official run, which grades the whole notebook)")
        return None
    from rich.console import Console

    console = console or Console()
    from grader.assignments.catalog import load_exercise
    from grader.checks import CheckContext
    from grader.checks.data import DataFactory
    from grader.kernel.kernel_export import export_values
    from grader.loading.exports import load_exports
    from grader.render.terminal import print_submission

    exercise = load_exercise(exercise_id)
    _unknown_values(exercise, values)
    # Probes (exports with code) run only in the official run: here only the given values count.
    requests = [e.request() for e in exercise.spec.exports if not e.code]
    with tempfile.TemporaryDirectory(prefix="grader-quick-") as folder:
        export_values(values, requests, folder)
        exports = load_exports(pathlib.Path(folder))
    root = _data_root(exercise) if exercise.spec.data_root else None
    ctx = CheckContext(exercise.spec, exports, _notebook_sources(), DataFactory(data_root=root))
    official = official_only(exercise, root)
    public = [c for c in exercise.checks if c.spec.visibility == "public"]
    not_given = {r["name"] for r in requests} - set(values)
    checks, skipped = _run([c for c in public if c.spec.id not in official], ctx, not_given)
    pending = [PendingCheck(c.spec.id, c.spec.title, c.spec.points, official.get(c.spec.id) or skipped.get(c.spec.id))
               for c in public if c.spec.id in official or c.spec.id in skipped]
    pending += [PendingCheck(c.spec.id, c.spec.title, c.spec.points) for c in exercise.checks if c not in public]
    result = SubmissionResult(exercise.id, "quick check", Status.OK, tuple(checks), pending=tuple(pending))
    print_submission(result, console, title=LABEL)
    console.print(_summary(result))
    return result


def _summary(result: SubmissionResult) -> Text:
    from rich.text import Text

    line = Text(f"Public checks run here: {result.score:g}/{result.max_score:g} points.")
    elsewhere = sum(p.max_points for p in result.pending if p.reason.startswith("Checked in the official run"))
    missing = sum(p.max_points for p in result.pending if p.reason.startswith("Not checked here"))
    if elsewhere:
        line.append(f" {elsewhere:g} more in checks only the official run can make (`grader check` makes them).")
    if missing:
        line.append(f" {missing:g} more in checks on values you did not pass in.")
    return line
