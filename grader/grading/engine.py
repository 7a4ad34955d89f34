"""One submission's way through the grader.

    notebook file -> validate -> prepare -> execute (sandboxed kernel) -> export folder
      -> load (safe loaders) -> checks (grader process) -> SubmissionResult

Nothing the kernel prints or computes is trusted: the checks run here, on values
loaded from the export folder, against data the grader makes itself. While the
kernel runs, a background thread imports what scoring needs (torch above all), so
the grader's own start-up overlaps the student's cells instead of adding to them.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from grader.assignments.catalog import Exercise
from grader.checks import CheckContext, run_checks
from grader.checks.data import DataFactory
from grader.collector import importing
from grader.errors import MachineryLost, UserError
from grader.grading.captures import CaptureCache, Filled
from grader.grading.speculation import Speculation, spare_core
from grader.kernel.cells import export_source, prelude_source, warm_source
from grader.kernel.execute import Deferred, Execution, execute, find_kernel_spec
from grader.kernel.factory import FactoryHandle
from grader.kernel.notebook import PreparedNotebook, Submission, build_validators, prepare
from grader.kernel.sandbox import Sandbox, open_sandbox
from grader.loading.values import Exports
from grader.results import PendingCheck, Status, SubmissionResult
from grader.source_trees import held
from grader.specs.paths import REPOSITORY, module_file, solutions_root

# What scoring imports after the kernel is done; warmed up while it runs. torch._dynamo is what the loader's
# FakeTensorMode imports on first use (about 1.2 s), to measure a model's forward pass before running it.
SCORING_MODULES = ("torch", "torch._dynamo", "grader.loading.exports", "grader.grading.artifacts", "reference.data")


def import_all(modules: tuple[str, ...]) -> None:
    """Import ``modules`` in order, stopping at the first that fails: its user meets the error again, and says it."""
    with held(), importing():  # importing torch parses sources, as the grader does in its other threads
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the importing code's own import reports it
                return


def warm_up(modules: tuple[str, ...]) -> threading.Thread:
    """``import_all(modules)`` in a background thread."""
    thread = threading.Thread(target=import_all, args=(modules,), name="grader-warm-up", daemon=True)
    thread.start()
    return thread


def solution_material(exercise: Exercise) -> tuple[list[str], list[str]]:
    """(module files to replace by a stub, folders to hide) in the kernel's view of the machine.

    The reference solutions the exercise's own-work checks forbid cannot be imported or read in the
    official run, and no solution notebook or test fixture can be read at all: using them is not
    detected after the fact, it is impossible.
    """
    modules = {m for check in exercise.checks if check.kind.name == "own_work"
               for m in check.params.get("forbidden_modules", [])}
    files = sorted(str(f) for m in modules if (f := module_file(m)))
    folders = [str(p) for p in (solutions_root(), REPOSITORY / "tests", REPOSITORY / "examples") if p.is_dir()]
    return files, folders


def exercise_sandbox(exercise: Exercise, hide: tuple[str, ...] = (), data_root: pathlib.Path | None = None,
                     env: dict[str, str] | None = None, factory: FactoryHandle | None = None) -> Sandbox:
    """A fresh sandbox as a notebook of ``exercise`` gets it: its limits, its data read-only, the solutions hidden;
    its kernel forked from ``factory`` when given."""
    data = {"MNIST_ROOT": str(data_root)} if exercise.spec.data_root and data_root else {}
    stubs, folders = solution_material(exercise)
    sandbox = open_sandbox(exercise.spec.limits, extra_env={**(env or {}), **data}, hide=(*hide, *folders),
                           readonly=tuple(data.values()), stub=stubs)
    sandbox.factory = factory.resolve().within(exercise.spec.limits.memory_mb) if factory else None
    return sandbox


def probe_sandboxes(exercises: list[Exercise]) -> None:
    """Open and remove one sandbox per exercise, so that this process's cached probes of what the machine allows
    (namespaces, the sandbox user) are done before it forks workers that would each probe again."""
    for exercise in exercises:
        try:
            root = resolve_data_root(exercise, None)
        except UserError:
            root = None  # no MNIST here: that exercise's check says so when it runs
        sandbox = exercise_sandbox(exercise, data_root=root)
        sandbox.kill()
        sandbox.remove()


def ready_to_fork(exercises: list[Exercise]) -> None:
    """Do once, before processes fork from this one, what each would do first (0.15-0.3 s): import, pack the prelude,
    build the validators, find the kernel's spec, probe each sandbox (a probe that fails raises).

    Starts no thread, so forking stays safe (the warm server forks each command from it too).
    """
    import_all(SCORING_MODULES)
    prelude_source()
    build_validators()
    find_kernel_spec()
    probe_sandboxes(exercises)


@dataclass(frozen=True)
class Run:
    """What executing one notebook produced, before any scoring."""

    execution: Execution
    exports: Exports
    sandbox: dict
    load_seconds: float
    submission: Submission | None = None  # what ran: with ``run_next``, the notebook that came
    capture_miss: str = ""  # watch mode: why a reused model capture could not stand (the save is run again)


def run_notebook(submission: Submission, exercise: Exercise, hide: tuple[str, ...] = (),
                 data_root: pathlib.Path | None = None, warm: tuple[str, ...] = SCORING_MODULES,
                 factory: FactoryHandle | None = None, env: dict[str, str] | None = None) -> Run:
    """Execute a validated notebook in a fresh sandbox and load its exports; the sandbox is gone afterwards.

    With a ``factory``, the kernel is forked from it (the same sandbox, applied after the fork).

    An exercise with ``data_root = true`` gets the MNIST root read-only, named by ``$MNIST_ROOT``.
    ``warm`` lists modules to import while the kernel runs; ``env`` is added to the kernel's environment.
    """
    run = _run(submission, exercise, hide, data_root, warm, factory, env)
    if run.execution.machinery_lost and not run.execution.student_began:  # a kernel that failed to start: once more
        run = _run(submission, exercise, hide, data_root, warm, factory, env)
    return run


def run_next(wait: Callable[[], Submission | None], exercise: Exercise, data_root: pathlib.Path | None = None,
             warm: tuple[str, ...] = SCORING_MODULES, factory: FactoryHandle | None = None,
             captures: CaptureCache | None = None) -> Run | None:
    """Start a sandboxed kernel now, then run the notebook ``wait`` returns in it; None if it returns None.

    For watch mode: the kernel starts (and runs the grader's prelude) while the student edits, so a save
    costs only the notebook's own cells and the scoring. The kernel is still fresh and only ever runs one
    notebook; one that died while it waited is replaced by a new one. With ``captures``, a model whose code
    an earlier run captured is not captured again (``grader.grading.captures``), nor one a second kernel
    captured beside this run (``grader.grading.speculation``); where that cannot stand, the notebook runs
    again with every model captured.
    """
    run = _run(wait, exercise, (), data_root, warm, factory, None, captures)
    if run is not None and (run.execution.kernel_lost or run.execution.machinery_lost):  # a fresh one, then
        run = _run(run.submission, exercise, (), data_root, warm, factory, None, captures)
    if run is not None and run.capture_miss:
        again = _run(run.submission, exercise, (), data_root, warm, factory, None, captures, offer=False)
        again.sandbox["captures"] = f"every model captured again: {run.capture_miss}"
        return again
    return run


def _run(submission: Submission | Callable[[], Submission | None], exercise: Exercise, hide: tuple[str, ...],
         data_root: pathlib.Path | None, warm: tuple[str, ...], factory: FactoryHandle | None,
         env: dict[str, str] | None, captures: CaptureCache | None = None, offer: bool = True) -> Run | None:
    models = any(e.input_shape for e in exercise.spec.exports)
    # Parsed (once a process) before the warm-up's imports start, which hold the parse lock while they run.
    prelude = prelude_source(models, tuple(e.name for e in exercise.spec.exports if not e.code))
    # Scoring's imports start now: a fresh worker's first job then overlaps them with the factory's warm-up too.
    warming = warm_up(warm)
    sandbox = exercise_sandbox(exercise, hide, data_root, env, factory)
    beside: Speculation | None = None
    try:
        requests = [e.request() for e in exercise.spec.exports]

        def export_cell(held: list[str] | None) -> str:
            return export_source(requests, sandbox.export_dir, held, exercise.spec.limits)

        reuse = None if captures is None else captures.offered() if offer else []
        cells = prelude, export_cell(reuse)
        came: list[Submission] = []
        if callable(submission):
            shapes = [e.input_shape for e in exercise.spec.exports if e.input_shape]
            if captures is not None and captures.beside and offer and shapes and spare_core():
                try:
                    beside = _speculation(exercise, hide, data_root, env, factory, shapes, reuse)
                except Exception:  # noqa: BLE001 - no second sandbox to be had (no user slot left, say): one kernel
                    beside = None

            def arrived() -> PreparedNotebook | None:
                got = submission()
                came.extend([got] if got is not None else [])
                if beside is not None:
                    beside.deliver(got)
                return prepare(got, *cells) if got is not None else None

            def export_then() -> str:
                return export_cell(captures.offered()) if beside is not None and beside.learn_into(captures) \
                    else cells[1]

            notebook = Deferred(prepare(Submission.empty(), *cells), arrived, warm_source(models), export_then)
        else:
            came.append(submission)
            notebook = prepare(submission, *cells)
        execution = execute(notebook, sandbox)
        warming.join()
        if not came:
            return None
        if execution.kernel_lost:
            return Run(execution, Exports.unavailable("the kernel was lost"), sandbox.report, 0.0, came[0])
        start = time.monotonic()
        changed = execution.exported and _changed_after_export(sandbox.export_dir, execution.export_digest)
        report = sandbox.report | {"outputs_truncated": execution.outputs_truncated,
                                   "kernel_start": execution.kernel_start + (", before the save"
                                                                             if callable(submission) else "")}
        if changed:
            exports = Exports.unavailable(changed)
        elif execution.exported:
            from grader.loading.exports import load_exports

            filled = captures.fill(sandbox.export_dir) if captures is not None else None
            if filled and filled.miss:
                return Run(execution, Exports.unavailable(filled.miss), report, 0.0, came[0], capture_miss=filled.miss)
            if filled and filled.models:
                report["captures"] = _reused_captures(filled, beside.learned if beside else set())
            exports = load_exports(sandbox.export_dir, budget=filled.budget if filled else None,
                                   models=filled.models if filled else None)
            if captures is not None:
                captures.learn(sandbox.export_dir)
        else:
            exports = Exports.unavailable(execution.reason or "the notebook did not reach the grader's export step")
        return Run(execution, exports, report, time.monotonic() - start, came[0])
    finally:
        if beside is not None:
            beside.close()
        sandbox.kill()
        sandbox.remove()


def _reused_captures(filled: Filled, beside: set[str]) -> str:
    """What the report says of the captures an export reused: of earlier saves, made by a second kernel, or both."""
    made = sum(key in beside for key in filled.keys.values())
    parts = [f"{n} model capture(s) {where}" for n, where in ((len(filled.models) - made, "of an earlier save"),
                                                               (made, "made beside this run by a second kernel")) if n]
    return " and ".join(parts) + " reused, their outputs checked"


def _speculation(exercise: Exercise, hide: tuple[str, ...], data_root: pathlib.Path | None, env: dict[str, str] | None,
                 factory: FactoryHandle | None, shapes: list, held: list[str]) -> Speculation:
    """A second kernel, in a sandbox of its own, that captures the save's first model fed one of ``shapes``."""
    sandbox = exercise_sandbox(exercise, hide, data_root, env, factory)
    prelude = prelude_source(True, (), speculate=([list(s) for s in shapes], str(sandbox.export_dir), list(held)))
    return Speculation(sandbox, prelude, warm_source(True))


def _changed_after_export(folder: pathlib.Path, digest: str | None) -> str:
    """Why the export folder cannot be trusted to be what the export cell wrote; "" when it can.

    The sandbox is dead by now; the digest came over the kernel's output channel when the export ended,
    so a process that rewrote the folder afterwards (before it was killed) is caught here.
    """
    from grader.kernel.kernel_export import folder_digest

    if digest is None:
        return ("the grader's export did not report what it wrote (its output was suppressed or the export cell "
                "was replaced), so the values cannot be trusted")
    if folder_digest(str(folder)) != digest:
        return "the export folder was changed after the grader's export wrote it, so the values cannot be trusted"
    return ""


def score(run: Run, submission: Submission, exercise: Exercise, student: str,
          hidden_seed: Callable[[str], int] | None = None, include_hidden: bool = False,
          data_root: pathlib.Path | None = None) -> SubmissionResult:
    """Run the checks in this process on the loaded exports."""
    from grader.grading.artifacts import collect

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
    status, error = run.execution.status, run.execution.reason
    if run.exports.refusal and status is Status.OK:  # an export the grader would not read is an error, with why
        status, error = Status.ERROR, f"the grader refused what the notebook exported: {run.exports.refusal}"
    return SubmissionResult(
        exercise=exercise.id, student=student, status=status, checks=tuple(checks),
        error=error, pending=pending, traceback=run.execution.traceback, timings=timings,
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
    warm: tuple[str, ...] = SCORING_MODULES,
    factory: FactoryHandle | None = None,
    env: dict[str, str] | None = None,
) -> SubmissionResult:
    """Execute one validated notebook in a fresh sandbox (forked from ``factory`` when given) and score it."""
    start = time.monotonic()
    root = resolve_data_root(exercise, data_root)
    run = run_notebook(submission, exercise, hide, root, warm, factory, env)
    if run.execution.machinery_lost:  # never a grade: the caller leaves the submission for the next run
        raise MachineryLost(run.execution.machinery_lost)
    result = score(run, submission, exercise, student, hidden_seed, include_hidden, root)
    result.timings["wall"] = round(time.monotonic() - start, 3)
    return result


def grade_next(wait: Callable[[], Submission | None], exercise: Exercise, student: str,
               data_root: pathlib.Path | None = None, warm: tuple[str, ...] = SCORING_MODULES,
               factory: FactoryHandle | None = None, captures: CaptureCache | None = None) -> SubmissionResult | None:
    """Start a kernel now and score, with the public checks, the notebook ``wait`` returns (``run_next``).

    ``wall`` counts from the notebook's arrival; None when ``wait`` returns None.
    """
    arrived: list[float] = []

    def timed() -> Submission | None:
        submission = wait()
        arrived.append(time.monotonic())
        return submission

    root = resolve_data_root(exercise, data_root)
    run = run_next(timed, exercise, root, warm, factory, captures)
    if run is None:
        return None
    result = score(run, run.submission, exercise, student, data_root=root)
    result.timings["wall"] = round(time.monotonic() - arrived[0], 3)
    return result


def resolve_data_root(exercise: Exercise, data_root: pathlib.Path | None) -> pathlib.Path | None:
    """The MNIST root for exercises that need one: the given path, else $MNIST_ROOT, else the bundled files.

    Raises UserError, saying which paths were tried, when none is found.
    """
    if not exercise.spec.data_root:
        return None
    from reference.mnist.data import (
        MNIST_FILES,
        MnistNotFound,
        prepare_mnist_root,
        raw_folder,
    )

    try:
        root = prepare_mnist_root(data_root).resolve()
    except MnistNotFound as e:
        raise UserError(str(e), assignment=exercise.id) from None
    unreadable = [name for name in MNIST_FILES if not (raw_folder(root) / name).stat().st_mode & stat.S_IROTH]
    if unreadable and os.geteuid() == 0:  # kernels run as another user and could not open the files
        raise UserError(f"the MNIST files in {raw_folder(root)} ({', '.join(unreadable)}) are readable by their "
                        "owner only, but kernels run as an unprivileged user: make them readable "
                        f"(chmod a+r {raw_folder(root)}/*)", assignment=exercise.id)
    return root
