"""``grader grade SUBMISSIONS_DIR --exercise ID``: batch-grade a class into the gradebook."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import secrets as token
import sys
import textwrap

from grader.errors import EXIT_INCOMPLETE, EXIT_OK, UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grade", help="batch-grade a class folder into a gradebook",
                       description="Grade SUBMISSIONS_DIR/<student>.ipynb or SUBMISSIONS_DIR/<student>/*.ipynb with "
                                   "public and hidden checks. Resumable: unchanged submissions already graded are "
                                   "skipped. With --json, prints one JSON object per graded submission (JSON Lines).")
    p.add_argument("submissions", type=pathlib.Path,
                   help="the class folder: <student>.ipynb or <student>/*.ipynb (answers files for a quiz)")
    p.add_argument("--exercise", required=True, help="the exercise or quiz id (see `grader exercises`)")
    p.add_argument("--gradebook", type=pathlib.Path,
                   help="the gradebook (default: grading.gradebook in grader.toml, else gradebook.sqlite)")
    p.add_argument("--workers", type=int,
                   help="parallel kernels (default: grading.workers in grader.toml, else the number of cores)")
    p.add_argument("--cluster", metavar="local|slurm|kubernetes|ADDRESS",
                   help="grade on a dask cluster: one started here (local), Slurm jobs or Kubernetes pods started "
                        "from grader.toml's [cluster] table, or a running scheduler's address such as "
                        "tcp://head:8786 (default: grading.cluster in grader.toml, else no cluster: a local "
                        "process pool)")
    p.add_argument("--executor", choices=("local", "dask"),
                   help="the older spelling: dask is --cluster local (default: grading.executor in grader.toml, "
                        "else local)")
    p.add_argument("--scheduler", help="the older spelling of --cluster ADDRESS, with --executor dask (default: "
                                       "grading.scheduler in grader.toml)")
    p.add_argument("--regrade", action="store_true",
                   help="grade again even if unchanged (also: with a secret other than the gradebook's results used)")
    p.add_argument("--student", action="append", metavar="NAME",
                   help="grade only this student's submission (repeat for several); with --regrade, grade it again "
                        "even if unchanged (default: every student in the folder)")
    p.add_argument("--secret-file", type=pathlib.Path,
                   help="instructor secret for hidden checks (default: $GRADER_SECRET, else grading.secret_file in "
                        "grader.toml, else <gradebook>.secret)")
    p.add_argument("--manifest", type=pathlib.Path,
                   help="CSV of submission times, columns student,file,submitted_at (default: "
                        "SUBMISSIONS_DIR/submissions.csv if there is one; else each file's modification time)")
    p.add_argument("--data-root", type=pathlib.Path,
                   help="MNIST root for the MNIST exercises (default: $MNIST_ROOT, else the bundled files)")
    p.add_argument("--json", action="store_true", help="print one JSON object per graded submission (JSON Lines)")
    p.set_defaults(run=run)


def apply_course_config(args: argparse.Namespace, config) -> None:
    """Fill in what the command line left open: from grader.toml (``config``, or None), else the built-in defaults."""
    from grader.specs.config import resolve_gradebook

    args.gradebook = resolve_gradebook(args.gradebook, config, pathlib.Path("gradebook.sqlite"))
    if args.workers is None:
        args.workers = (config.workers if config else None) or os.cpu_count() or 1
    args.executor = args.executor or (config.executor if config else None) or "local"
    args.scheduler = args.scheduler or (config.scheduler if config else None)
    # The older spelling, --executor dask [--scheduler ADDRESS], names the same clusters.
    older = (args.scheduler or "local") if args.executor == "dask" else None
    args.cluster = getattr(args, "cluster", None) or (config.cluster_kind if config else None) or older


def instructor_secret(args: argparse.Namespace, config=None) -> tuple[bytes, pathlib.Path | None]:
    """The secret, and the file it lives in (hidden from kernels): --secret-file, $GRADER_SECRET, grader.toml's
    secret_file; created there, or next to the gradebook, when it does not exist yet."""
    from grader.grading.secrets import load_secret

    if args.secret_file:
        return load_secret(args.secret_file), args.secret_file
    secret = load_secret()
    if secret:
        return secret, None
    path = (config.secret_file if config else None) or args.gradebook.with_name(args.gradebook.name + ".secret")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        os.write(fd, token.token_hex(32).encode())
        os.close(fd)
        print(f"grader grade: created an instructor secret for hidden checks at {path}; keep it to regrade "
              "consistently", file=sys.stderr)
    return load_secret(path), path


def hand_in_times(args: argparse.Namespace, found, gradebook, config):
    """When each found hand-in was submitted (the manifest, else the file's time), the manifest rows that match none,
    and the found names against the gradebook's roster (None without one)."""
    from grader.grading.submission_times import MANIFEST_NAME, submission_times
    from grader.specs.roster import match_roster
    from grader.store.roster import load_roster

    if args.manifest is not None and not args.manifest.is_file():
        raise UserError(f"--manifest {args.manifest}: no such file")
    manifest = args.manifest or args.submissions / MANIFEST_NAME
    roster = load_roster(gradebook)
    match = match_roster(roster, [item.student for item in found]) if roster else None

    def keys(name: str) -> set[str]:
        entry = match.entry(name) if match else None
        return {name.casefold()} | (entry.aliases() if entry else set())

    times, unused = submission_times(found, args.submissions, manifest if manifest.is_file() else None,
                                     config.timezone if config else None, keys)
    return times, unused, match


def term_lines(times: dict, unused: list, match, late: list) -> list[str]:
    """What the batch learnt about the term: where times came from, who was late, who is not on the roster."""
    from grader.commands.roster import match_lines, names

    by_file = sorted(student for student, t in times.items() if t.source == "mtime")
    lines = [f"Submission times: {len(times) - len(by_file)} from the manifest, {len(by_file)} from file "
             f"modification times" + (f" ({names(by_file)})" if by_file else "")]
    if unused:
        lines.append(f"{len(unused)} manifest row(s) match no submission here: "
                     + names([f"row {r.line} ({r.student}, {r.file or 'any file'})" for r in unused]))
    policies = sorted({r.policy for r in late if r.policy})
    lines += [f"Late policy: {policy}" for policy in policies]
    for record in late:
        if record.days_late or record.extension_days:
            entry = match.entry(record.student) if match else None
            who = f"{entry.label()}, as {record.student}" if entry else record.student
            lines.append(f"{who}: {record.verdict()}; {record.final_score:g} points after the late penalty "
                         f"(raw {record.raw_score:g})")
    return lines + (match_lines(match, "handed in here") if match else [])


def only_students(found: list, names: list[str], folder: pathlib.Path) -> list:
    """The found submissions of the students named (as the gradebook names them, case aside); unknown names refused."""
    import difflib

    from grader.specs.paths import student_name

    by_name = {item.student.casefold(): item for item in found}
    chosen, unknown = [], []
    for name in names:
        item = by_name.get(name.casefold()) or by_name.get(student_name(name).casefold())
        (chosen.append(item) if item else unknown.append(name))
    if unknown:
        near = [m for name in unknown for m in difflib.get_close_matches(name, [i.student for i in found], n=1)]
        raise UserError(f"no submission of {', '.join(map(repr, unknown))} in {folder}"
                        + (f" (did you mean {', '.join(near)}?)" if near else "")
                        + f"; its students: {', '.join(i.student for i in found)}")
    return sorted(set(chosen), key=lambda item: item.student)


def full_points(assignment, hidden: bool) -> float:
    """What a submission can earn in this batch (hidden checks only with the secret): what one that could not be run,
    and so has no checks, is out of, as ``grader status`` counts it."""
    checks = getattr(getattr(assignment, "spec", None), "checks", None)
    if checks is None:
        return assignment.max_points
    return sum(c.points for c in checks if hidden or c.visibility != "hidden")


def _score(result, full: float | None) -> str:
    out_of = result.max_score if result.checks or full is None else full
    return f"{round(result.score, 2):g}/{out_of:g}"


def progress_line(result, task, full: float | None = None) -> str:
    """E.g. ``[3/6] ada: ok; 10/10 points (12.3s)``: where no terminal shows the bar."""
    from grader.render.terminal import status_label

    total = f"{task.total:g}" if task.total is not None else "?"
    worker = result.sandbox.get("worker")
    return (f"[{task.completed:g}/{total}] {result.student}: {status_label(result)[0]}; "
            f"{_score(result, full)} points ({result.timings.get('wall', 0):.1f}s"
            + (f" on {worker})" if worker else ")"))


def summary_table(results, title: str, full: float | None = None):
    from rich.markup import escape
    from rich.table import Table

    from grader.render.terminal import LOOK_STYLE, status_label

    table = Table(title=escape(title))
    workers = any(r.sandbox.get("worker") for r in results)  # graded on a cluster: which worker ran each
    for column in ("Student", "Status", "Score", "Time") + (("Worker",) if workers else ()) + ("Note",):
        table.add_column(column, justify="right" if column in ("Score", "Time") else "left")
    for r in sorted(results, key=lambda r: r.student):
        words, look = status_label(r)
        note = "; ".join(text for text in (r.error, r.note) if text)
        table.add_row(escape(r.student), f"[{LOOK_STYLE[look]}]{escape(words)}[/]",
                      _score(r, full), f"{r.timings.get('wall', 0):.1f}s",
                      *((escape(r.sandbox.get("worker", "")),) if workers else ()),
                      escape(textwrap.shorten(note, 120, placeholder=" …")))
    return table


def run(args: argparse.Namespace) -> int:
    from grader.kernel.factory import launch_factory, preload_for
    from grader.specs import config as course
    from grader.specs.paths import SPEC_FILE, exercises_root
    from grader.specs.spec import exercise_reads_mnist

    config = course.discover(getattr(args, "config", None))
    apply_course_config(args, config)
    if not args.submissions.is_dir():
        raise UserError(f"{args.submissions} is not a folder of submissions")
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    with contextlib.ExitStack() as stack:
        # An exercise's kernels' factory first, as the warm server starts its own: its imports and ours then run side
        # by side, where waiting to know that two notebooks need grading would start it most of a second later.
        # Closed at once where none does (one notebook, nothing changed); on a cluster each worker starts its own.
        exercise = (exercises_root() / args.exercise / SPEC_FILE).is_file()
        if exercise:  # before a factory starts: a refused batch costs no kernel's imports
            refuse_a_folder_kernels_need(args.submissions)
        factory = stack.enter_context(launch_factory(preload_for(exercise_reads_mnist(args.exercise)))) \
            if exercise and not args.cluster else None
        from grader.assignments.catalog import Exercise, load_assignment
        from grader.grading.discover import discover, left_aside

        assignment = load_assignment(args.exercise)
        suffixes = assignment.suffixes
        found = discover(args.submissions, assignment.id, suffixes)
        if not found:
            raise UserError(f"{args.submissions} holds no submissions: expected one {' or '.join(suffixes)} file "
                            f"per student, as {args.submissions}/<student>{suffixes[0]} or inside "
                            f"{args.submissions}/<student>/")
        aside = left_aside(args.submissions, suffixes)
        if aside:
            listed = ", ".join(aside[:8]) + (f" and {len(aside) - 8} more" if len(aside) > 8 else "")
            print(f"grader grade: not taken for students' work, as no {' or '.join(suffixes)} file: {listed}",
                  file=sys.stderr, flush=True)
        # The cluster first: a wrong address or a cluster without workers is said before any file is written.
        # A quiz needs none: its answers are scored here, without a kernel.
        on_cluster = args.cluster and isinstance(assignment, Exercise)
        if on_cluster:
            from grader.grading.batch import worth_a_factory

            chosen = only_students(found, args.student, args.submissions) if args.student else found
            cluster = stack.enter_context(open_cluster(args, config, assignment, factories=worth_a_factory(chosen)))
        else:
            cluster = None
        return grade_found(args, config, assignment, found, cluster, factory)


def refuse_a_folder_kernels_need(submissions: pathlib.Path) -> None:
    """Refuse a class folder that kernels must see whole (the checkout, the venv): hidden, it would take what they run
    from along; left in view, every student's kernel could read the classmates' notebooks."""
    from grader.kernel.sandbox import needed_paths

    folder = os.path.realpath(submissions)
    if folder in needed_paths():
        raise UserError(f"{submissions} holds what every kernel runs from (the grader's checkout, or the Python it "
                        "runs), so it cannot be hidden from the kernels, and each student's kernel could read the "
                        "classmates' notebooks: put the submissions in a folder of their own (for example "
                        f"{pathlib.Path(submissions) / 'submissions'}) and grade that")


def refuse_work_beside_the_data(submissions: pathlib.Path, data_root: pathlib.Path, found: list) -> None:
    """Refuse a class whose MNIST root holds students' work: kernels see that root whole (read-only), so each could read
    the notebooks in it. A class folder inside the root is hidden as usual; one that holds the root shows only it."""
    root = pathlib.Path(os.path.realpath(data_root))
    if not root.is_relative_to(os.path.realpath(submissions)):
        return
    exposed = [f.student for f in found if f.path and pathlib.Path(os.path.realpath(f.path)).is_relative_to(root)]
    if exposed:
        shown = ", ".join(exposed[:3]) + (f" and {len(exposed) - 3} more" if len(exposed) > 3 else "")
        raise UserError(f"the MNIST root {data_root} holds students' work ({shown}), and every kernel sees that root "
                        "whole, so each student's kernel could read it: keep MNIST in a folder of its own, outside "
                        f"{submissions}, and name it with --data-root")


@contextlib.contextmanager
def open_cluster(args: argparse.Namespace, config, assignment, factories: bool = True):
    """The connected cluster --cluster names, its workers checked for this exercise; closed on exit.

    ``factories``: each worker forks its kernels from a warm factory of its own (``cluster_factory``).
    """
    from grader.assignments.version import grader_version
    from grader.grading.cluster_batch import connect
    from grader.specs.config import ClusterSettings

    settings = config.cluster if config else ClusterSettings()
    with connect(args.cluster, args.workers, settings, factories) as session:
        session.check_workers(assignment, grader_version(assignment))
        print(f"grader grade: grading on the dask cluster at {session.address}"
              + (f" (dashboard: {session.dashboard})" if session.dashboard else ""), file=sys.stderr, flush=True)
        yield session


def grade_found(args: argparse.Namespace, config, assignment, found: list, cluster, factory=None) -> int:
    """Grade what was found into the gradebook (on ``cluster`` when given), then say what happened; ``factory``: the
    kernels' (``grade_class``)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from grader.collector import importing

    with importing():  # torch and dask, where this process has not imported them yet
        from grader.assignments.catalog import Exercise
        from grader.commands.override import review_lines
        from grader.grading.batch import check_secret, forked_workers, grade_class
        from grader.grading.engine import resolve_data_root
        from grader.store.gradebook import Gradebook
        from grader.store.lateness import apply_late_policy, ignored_extensions

    everyone = found  # the roster and the manifest are matched against the whole folder, even for --student
    if args.student:
        found = only_students(found, args.student, args.submissions)
    # On a cluster the workers find MNIST themselves (check_workers made sure they can).
    data_root = (resolve_data_root(assignment, args.data_root) if isinstance(assignment, Exercise) and not cluster
                 else None)
    if data_root is not None:
        refuse_work_beside_the_data(args.submissions, data_root, everyone)
    gradebook = Gradebook.open(args.gradebook)
    try:
        gradebook.ensure_writable()  # a read-only gradebook is refused before any kernel runs
        gradebook.hold_for_batch()  # and one another batch is grading into
        secret, secret_path = instructor_secret(args, config)
        # Before anything is graded or shown; --regrade of some students only would mix two secrets in one class.
        present = {item.student for item in everyone}
        check_secret(gradebook, secret, assignment.id, args.regrade and not args.student, present)
        gone = sorted(set(gradebook.current_paths(assignment.id)) - present)
        if gone:  # their results stay, and count: the instructor should know no file of theirs is graded any more
            listed = ", ".join(gone[:8]) + (f" and {len(gone) - 8} more" if len(gone) > 8 else "")
            print(f"grader grade: {assignment.id} results kept for students with no submission in "
                  f"{args.submissions} now: {listed}", file=sys.stderr, flush=True)
        times, unused, match = hand_in_times(args, everyone, gradebook, config)
        chosen = {item.student for item in found}
        times = {student: at for student, at in times.items() if student in chosen}
    except BaseException as error:  # closed on any failure; a damaged or read-only file is said in one line
        gradebook.__exit__(type(error), error, error.__traceback__)
        raise
    # Kernels see none of it: the secret, the gradebook, the classmates' notebooks, the roster's names and emails.
    roster_file = config.roster if config and config.roster and config.roster.exists() else None
    # The gradebook's own files too: its folder may hold what the kernel runs from, and then stays in view.
    book = args.gradebook.resolve()
    own = [book.with_name(book.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    hide = tuple(str(p) for p in (secret_path, book.parent, *own, args.submissions.resolve(), roster_file) if p)
    console = Console(stderr=args.json)
    bar = console.is_terminal  # a log or a pipe gets no bar: one line per finished submission on stderr instead
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=args.json, disable=not bar)
    # The warm server's child forks its workers before the bar starts a thread: they start warm, from one thread.
    workers = (forked_workers(args.workers) if getattr(args, "warm_process", False) and not cluster
               else contextlib.nullcontext())
    full = full_points(assignment, secret is not None)
    with gradebook, workers as pool, contextlib.ExitStack() as shown:
        task = progress.add_task(f"grading {assignment.id}", total=None)

        def planned(todo: int, skipped: int) -> None:
            # Only now does the bar start its thread: a cold batch forks its workers before (batch._warm_workers).
            shown.enter_context(progress)
            progress.update(task, total=todo)
            if skipped:
                progress.console.print(f"{skipped} unchanged submission(s) already graded: skipped (use --regrade)")

        def done(result) -> None:
            progress.advance(task)
            if not bar:
                print(progress_line(result, progress.tasks[task], full), file=sys.stderr, flush=True)
            if args.json:
                sys.stdout.write(json.dumps(result.to_json()) + "\n")
                sys.stdout.flush()

        rows: dict[str, int] = {}

        def by_worker(counts) -> None:  # a row per cluster worker, under the bar
            for worker, count in sorted(counts.items()):
                if worker and bar:
                    rows.setdefault(worker, progress.add_task("", total=None))
                    progress.update(rows[worker], completed=count.done,
                                    description=f"  {worker}: {count.running} running, {count.done} done, "
                                                f"{count.failed} failed")

        report = grade_class(found, assignment, gradebook, args.workers, args.regrade, secret, hide, planned, done,
                             data_root=str(data_root) if data_root else None, times=times, cluster=cluster,
                             on_progress=by_worker, pool=pool, factory=factory)
        late = apply_late_policy(gradebook, config, assignment.id)
        ignored = ignored_extensions(gradebook)
        reviews = review_lines(gradebook, assignment.id, {r.student for r in report.graded})
    if not args.json:
        console.print(summary_table(report.graded, f"{assignment.title}: {len(report.graded)} graded, "
                                                   f"{len(report.skipped)} skipped, {report.seconds:.1f}s", full))
    for line in term_lines(times, unused, match, [r for r in late if r.student in times]):
        console.print(line, markup=False, highlight=False)
    for line in reviews:
        console.print(line, markup=False, highlight=False)
    for line in ignored:
        print(f"grader grade: {line}", file=sys.stderr)
    faulted = grader_faults(report.graded)
    if faulted:
        print(f"grader grade: {faulted}", file=sys.stderr)
    if not args.json:
        console.print(f"Gradebook: {args.gradebook.resolve()}")
    if report.not_graded:  # infrastructure failures, never grades: said, and left for the next run
        Console(stderr=True).print(not_graded_lines(report.not_graded, "the cluster" if cluster else
                                                    "the grader's own processes"),
                                   markup=False, highlight=False, soft_wrap=True)
        return EXIT_INCOMPLETE
    # A batch that ran is a success, whatever the notebooks did: their outcomes are in the gradebook.
    return EXIT_OK


def grader_faults(results: list) -> str:
    """A line naming the submissions with a check the grader could not evaluate (its own error, recorded as a failed
    check with no points): their scores may be too low, which the instructor must know; "" when there are none."""
    hit: dict[str, list[str]] = {}
    for result in results:
        for check in result.checks:
            if (check.details or {}).get("grader_error"):
                hit.setdefault(check.id, []).append(result.student)
    if not hit:
        return ""
    listed = "; ".join(f"{check} for {', '.join(sorted(students)[:10])}" + (" and others" if len(students) > 10 else "")
                       for check, students in sorted(hit.items()))
    return (f"the grader could not evaluate some checks (an error of its own, not of the notebook), which scored no "
            f"points: {listed}. Their scores may be too low: see each check's message (grader status --check ID), "
            "and report it; an override (grader override) corrects a score meanwhile.")


def not_graded_lines(lost: list, cause: str = "the cluster") -> str:
    """E.g. ``2 submission(s) not graded because of the cluster; ...: ada: ...``, grouped by reason."""
    by_reason: dict[str, list[str]] = {}
    for item in lost:
        by_reason.setdefault(item.reason, []).append(item.student)
    lines = [f"{len(lost)} submission(s) not graded because of {cause}; nothing was stored for them, and what "
             "was graded is kept. Run the same command again to grade them:"]
    lines += [f"  {', '.join(sorted(students))}: {reason}" for reason, students in sorted(by_reason.items())]
    return "\n".join(lines)
