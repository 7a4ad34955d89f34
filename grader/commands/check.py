"""``grader check NOTEBOOK``: a student's self-check with the public checks, as the official run executes it."""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import TYPE_CHECKING

from grader.errors import EXIT_FAILED, EXIT_OK, UserError
from grader.results import Status, SubmissionResult

if TYPE_CHECKING:
    from collections.abc import Callable

    from grader.assignments.catalog import Exercise
    from grader.kernel.factory import FactoryHandle, KernelFactory

# Imported while the kernel runs, beside what scoring needs: the HTML page's figures.
RENDERING_MODULES = ("grader.render.feedback",)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="self-check a notebook with the public checks",
                       description="Run NOTEBOOK the way the official grader does (fresh sandboxed kernel) and "
                                   "score the public checks. Exit 0 if all pass, 1 if some fail, 2 if the input is "
                                   "unusable.")
    p.add_argument("notebook", type=pathlib.Path, help="the notebook to check (.ipynb)")
    p.add_argument("--exercise", help="exercise id (default: from the notebook's metadata)")
    p.add_argument("--html", type=pathlib.Path, help="where to write the HTML feedback "
                                                     "(default: NOTEBOOK with .feedback.html)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--watch", action="store_true",
                   help="keep a warm kernel factory and re-check NOTEBOOK each time it is saved (Ctrl-C to stop); "
                        "the table and the HTML page are rewritten after each check")
    p.add_argument("--no-factory", action="store_true",
                   help="start the kernel fresh instead of forking it from a pre-warmed factory (slower; the "
                        "sandbox is the same either way)")
    p.add_argument("--data-root", type=pathlib.Path,
                   help="MNIST root for the MNIST exercises (default: $MNIST_ROOT, else the bundled files)")
    p.set_defaults(run=run, error_json=error_json)


def error_json(args: argparse.Namespace, error: UserError) -> dict:
    """Unusable input still answers in the ``--json`` contract: status ``invalid`` and the reason."""
    return SubmissionResult.invalid(error.assignment or args.exercise or "", args.notebook.stem,
                                    str(error)).to_json(timings=True)


def run(args: argparse.Namespace) -> int:
    from grader.kernel.factory import factory_for
    from grader.store.outputs import check_output

    # --watch starts a kernel at every save. The factory first, when there is one: it imports torch for the kernel
    # while this process imports the grader.
    check_output(html_path(args), "--html", {"the notebook being checked": args.notebook})  # before any kernel
    factory = None if args.no_factory else factory_for(2 if args.watch else 1, args.watch and _on_mnist(args))
    try:
        return _check(args, factory)
    finally:
        if factory is not None:
            factory.close()


def _on_mnist(args: argparse.Namespace) -> bool:
    """Whether the notebook is of an exercise on MNIST, whose kernels' factory imports torchvision too; False where the
    notebook cannot tell (the check itself then says why)."""
    from grader.kernel.notebook import read_submission
    from grader.specs.spec import exercise_reads_mnist

    try:
        return exercise_reads_mnist(args.exercise or read_submission(args.notebook).exercise_id)
    except Exception:  # noqa: BLE001 - an unreadable notebook is reported by the check, not here
        return False


def _check(args: argparse.Namespace, factory: KernelFactory | None) -> int:
    from grader.assignments.catalog import load_exercise
    from grader.kernel.factory import FactoryHandle
    from grader.kernel.notebook import InvalidNotebook, read_submission

    try:
        submission = read_submission(args.notebook)
    except InvalidNotebook as e:
        suffix = args.notebook.suffix.casefold()
        if suffix not in (".toml", ".json"):  # a quiz's answers files, which `grader quiz check` reads
            raise
        # A TOML file is never a notebook: the JSON parser's reason would only confuse. A .json file may be one.
        why = f"{args.notebook} is a {suffix} file, not a notebook" if suffix == ".toml" else str(e)
        raise UserError(f"{why}; quiz answers are checked with `grader quiz check {args.notebook}` (add --quiz ID "
                        "where the file does not name its quiz)") from None
    exercise_id = args.exercise or submission.exercise_id
    if not exercise_id:
        raise UserError(f"{args.notebook}: the notebook does not say which exercise it is; pass --exercise ID "
                        "(see `grader exercises`)")
    exercise = load_exercise(exercise_id)
    declared = submission.exercise_id
    if declared and declared != exercise.id:  # scored as another exercise it would be a silent zero
        raise UserError(f"{args.notebook} is a notebook for exercise {declared!r} (its metadata says so), but "
                        f"--exercise {exercise.id} was given; `grader grade` refuses such a hand-in, grading nothing. "
                        f"Check it as {declared} (leave --exercise out), or do the {exercise.id} work in that "
                        "exercise's own notebook", assignment=exercise.id)
    # The engine imports torch (a second or two): a notebook or exercise refused above is told at once.
    from grader.grading.engine import SCORING_MODULES, grade_submission, resolve_data_root

    data_root = resolve_data_root(exercise, args.data_root)
    # Not waited for here: the engine waits for the factory only when the kernel is needed.
    handle = (factory.handle if factory is not None else
              FactoryHandle(None, "turned off (--no-factory)" if args.no_factory else
                            "one check without the warm server: a fresh kernel starts sooner than a factory"))
    if args.watch:
        return _watch(args, exercise, handle, data_root)
    result = grade_submission(submission, exercise, student=args.notebook.stem, data_root=data_root,
                              warm=SCORING_MODULES + RENDERING_MODULES, factory=handle)
    _report(args, result, exercise.title)
    return exit_code(result)


def exit_code(result: SubmissionResult) -> int:
    """0 where every public check passed and every cell ran; a cell that raised or timed out is 1, with the checks
    all passing too: a script that gates on the self-check must not hand in a notebook that stops in the middle."""
    return EXIT_OK if result.all_passed and result.status is Status.OK else EXIT_FAILED


def _watch(args: argparse.Namespace, exercise: Exercise, handle: FactoryHandle, data_root) -> int:
    """Re-check on every save until Ctrl-C; each table is labelled as the self-check, never the grade."""
    import signal
    import threading
    import time

    from grader.grading.engine import SCORING_MODULES
    from grader.grading.watch import watch_notebook

    def shown(result: SubmissionResult) -> None:
        _report(args, result, exercise.title)
        if not args.json:
            print(f"[{time.strftime('%H:%M:%S')}] checked in {result.timings.get('wall', 0):.1f} s. Watching "
                  f"{args.notebook} for the next save (Ctrl-C to stop). Self-check only: not your grade.", flush=True)

    stop = threading.Event()

    def interrupted(signum, frame) -> None:
        # Set first: asyncio (3.11) can swallow the interrupt when it lands as a kernel starts, and the watch would
        # then wait for the next save for ever; with ``stop`` set, its next wait ends it.
        stop.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupted) if threading.current_thread() is threading.main_thread() \
        else None
    hook = sys.unraisablehook
    sys.unraisablehook = _quiet_loops(hook)  # from the first Ctrl-C on, which may come while a loop runs
    try:
        watch_notebook(args.notebook, exercise, handle, shown, stop, data_root, SCORING_MODULES + RENDERING_MODULES)
    except KeyboardInterrupt:
        stop.set()
    else:
        sys.unraisablehook = hook
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return EXIT_OK


def _quiet_loops(hook: Callable) -> Callable:
    """``sys.unraisablehook`` without the complaint of an event loop that Ctrl-C left behind, when the garbage
    collector closes it later in another thread (it cannot remove its signal handlers there): the watch is over,
    and the user's one line says so."""
    def unraisable(info) -> None:
        if getattr(info.object, "__qualname__", "") != "BaseEventLoop.__del__":
            hook(info)

    return unraisable


def _report(args: argparse.Namespace, result: SubmissionResult, title: str) -> None:
    """The table (or JSON) on stdout and the HTML page; imported here, after the kernel, as it was warmed then."""
    from grader.render.feedback import render_result
    from grader.render.html import write_page
    from grader.render.terminal import print_json, print_submission
    from grader.store.outputs import OutputError

    path, unwritten, moved = html_path(args), None, ""
    page = render_result(result, result.artifacts, title, self_check=True)
    try:  # the page first: output piped into `head` ends early, and must not take the page along
        write_page(path, page)
    except OutputError as e:  # the table is the self-check's answer: its exit code stays the checks' verdict
        unwritten = e
    if unwritten is not None and args.html is None:  # the notebook's folder is read-only, say: the user's cache
        try:
            path, moved, unwritten = (write_page(fallback_page(args.notebook), page),
                                      f" (not beside the notebook: {unwritten})", None)
        except OutputError:
            pass
    try:
        if args.json:
            # the contract's keys, plus how long each stage took; watching, one line per check (JSON Lines)
            print_json(result.to_json(timings=True), one_line=args.watch)
        else:
            print_submission(result, title=f"{title} — self-check (public checks only)")
            if unwritten is None:
                print(f"Feedback page: {path.resolve()}{moved}")
    except (BrokenPipeError, SystemExit):  # rich exits 1 on a closed pipe: the verdict's exit code stands
        pass
    if unwritten is not None:
        print(f"grader check: {unwritten}", file=sys.stderr)
    elif moved and args.json:
        print(f"grader check: feedback page written to {path.resolve()}{moved}", file=sys.stderr)


def fallback_page(notebook: pathlib.Path) -> pathlib.Path:
    """Where the page goes when the notebook's folder cannot take it: the user's cache, one page per notebook."""
    import hashlib
    import os

    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    where = hashlib.sha256(str(notebook.absolute()).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return cache / "grader" / "pages" / f"{notebook.stem}-{where}.feedback.html"


def html_path(args: argparse.Namespace) -> pathlib.Path:
    """Where the page goes: --html, else beside the notebook; a folder (`grader check .`) is refused here, as reading
    it would be."""
    if args.html is None and (not args.notebook.name or args.notebook.is_dir()):
        from grader.kernel.notebook import read_notebook_bytes

        read_notebook_bytes(args.notebook)  # raises InvalidNotebook, saying it is a folder
    return args.html or args.notebook.with_suffix(".feedback.html")
