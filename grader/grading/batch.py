"""Grade a class: one job per student, run on a local process pool or a dask cluster (``cluster_batch``).

Workers only compute; the calling process is the gradebook's single writer and
commits each result as it arrives, so an interrupted batch loses at most the
submissions still in flight, and the next run grades exactly those. Every result is
stored with the fingerprint of the secret its hidden checks used, and a batch with
another secret than the gradebook's results is refused unless it regrades.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from grader.assignments.catalog import Assignment, Exercise
from grader.assignments.version import grader_version
from grader.errors import MachineryLost, UserError
from grader.grading.cluster_batch import ClusterSession, NotGraded, cluster_results
from grader.grading.discover import Found
from grader.grading.engine import SCORING_MODULES, ready_to_fork
from grader.grading.interrupts import BatchInterrupted, Stop, signals_blocked, stop_on_signals, worker_started
from grader.grading.jobs import Job, file_sha256, grade_job
from grader.grading.secrets import fingerprint
from grader.kernel.factory import KernelFactory, launch_factory, preload_for
from grader.kernel.factory_client import thread_count
from grader.kernel.sandbox_files import clean_stale
from grader.quizzes.model import Quiz
from grader.results import SubmissionResult
from grader.specs.late import SubmissionTime
from grader.store.gradebook import Gradebook
from grader.store.lateness import record_times


@dataclass
class BatchReport:
    graded: list[SubmissionResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unchanged since their last grading
    seconds: float = 0.0
    not_graded: list[NotGraded] = field(default_factory=list)  # the cluster's failures: nothing committed


def _storable(text):
    """Text SQLite and the terminal accept: a byte of a file name that is not UTF-8 shown as ``\\xff``, any other
    lone surrogate (from a string in a student's values) escaped, so that recording a result cannot raise."""
    if type(text) is not str:
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def storable(result: SubmissionResult) -> SubmissionResult:
    """``result`` with every text field made ``_storable``."""
    def cleaned(item):
        return dataclasses.replace(item, **{f.name: _storable(getattr(item, f.name)) for f in dataclasses.fields(item)
                                            if type(getattr(item, f.name)) is str})

    return dataclasses.replace(cleaned(result), checks=tuple(cleaned(c) for c in result.checks))


def plan_jobs(found: Iterable[Found], assignment: Assignment, version: str, gradebook: Gradebook, regrade: bool,
              secret: bytes | None, hide: tuple[str, ...], data_root: str | None = None) -> tuple[list[Job], list[str]]:
    """Jobs for submissions that changed since they were graded with ``version`` (or all with ``regrade``), and the
    names skipped."""
    jobs, skipped = [], []
    for item in found:
        current = gradebook.current_hash(item.student, assignment.id)
        if (not regrade and current and item.path and current == (file_sha256(item.path), version, secret is not None)
                and gradebook.current_note(item.student, assignment.id) == item.note):
            skipped.append(item.student)
            continue
        jobs.append(Job(item.student, str(item.path) if item.path else None, assignment.id, secret, hide, item.note,
                        data_root, str(getattr(item, "origin", None) or "")))
    return jobs, skipped


POLL_S = 0.2  # how often a batch looks for a stop signal between results
STOP_GRACE_S = 5.0  # how long stopped workers get to kill their kernels before they are killed themselves


def _outcome(future: cf.Future, job: Job) -> SubmissionResult | NotGraded | None:
    """The job's result; NotGraded when the grader's own machinery died under it; None when its worker died."""
    try:
        return future.result()
    except cf.process.BrokenProcessPool:
        return None
    except MachineryLost as e:
        return NotGraded(job.student, f"{e}; not the notebook's doing")


def _stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel the queued jobs, ask every worker to stop its kernels and exit (SIGTERM), then kill what is left."""
    workers = list((pool._processes or {}).values())  # private, but the executor offers no way to signal them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        with contextlib.suppress(OSError):
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for process in workers:
        process.join(max(0.0, deadline - time.monotonic()))
    stragglers = [p for p in workers if p.is_alive()]
    for process in stragglers:
        process.kill()
        process.join(5)
    if stragglers:  # their kernels and sandboxes, as a batch killed with SIGKILL would have left them
        clean_stale()
    pool.shutdown(wait=True)


@contextlib.contextmanager
def forked_workers(workers: int) -> Iterator[cf.ProcessPoolExecutor]:
    """``workers`` grading processes forked now from this one, for ``run_batch(pool=...)``.

    Only for a process that has imported what grading needs and has one thread (the warm server's
    child, before its progress bar starts): the workers then start warm, where spawned ones would
    import torch again. They never touch what this process holds (the gradebook's connection) and
    leave through ``os._exit``.
    """
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                                  initializer=worker_started)
    try:
        with signals_blocked():  # a fork pool starts every worker at its first task: now, with one thread
            pool.submit(int).result()
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _clean_start(preload: tuple[str, ...]) -> multiprocessing.context.BaseContext:
    """How a pool's workers start when they cannot be forked from this process: clean, never inheriting its
    torch, threads or event loop.

    On Linux, from a fork server that imported ``preload`` once and lives as long as this process, so
    that only a threaded caller's first batch (in a notebook, a test process) pays ``import torch`` per
    worker; elsewhere spawned.
    """
    if sys.platform != "linux":
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([grade_job.__module__, *preload])  # heeded only by the server's first start
    return context


def _clean_worker_started(environ: dict[str, str]) -> None:
    """``worker_started``, in the caller's environment of the moment: a fork server's child has the server's."""
    os.environ.clear()
    os.environ.update(environ)
    worker_started()


def _pool_results(jobs: list[Job], workers: int, stop: Stop | None = None, pool: cf.ProcessPoolExecutor | None = None,
                  preload: tuple[str, ...] = ()) -> Iterable[tuple[Job, SubmissionResult | None]]:
    """(job, result) as they finish; result None when the pool broke (a worker process died) under it.

    Once ``stop`` is set, the results already finished are still given, and the pool is stopped (``_stop_pool``).
    ``pool``: started workers to use (``forked_workers``) instead of starting a clean pool for these jobs, whose
    workers have imported ``preload`` when they can (``_clean_start``).
    """
    stop = stop or Stop()
    if stop.is_set() and pool is None:  # stopped while the batch set up: no workers to start, then kill at once
        return
    owned = pool is None
    pool = pool or cf.ProcessPoolExecutor(max_workers=workers, mp_context=_clean_start(preload),
                                          initializer=_clean_worker_started, initargs=(dict(os.environ),))
    pending: set = set()
    try:
        with signals_blocked():  # submit() starts the workers, which inherit the blocked signals
            futures = {pool.submit(grade_job, job): job for job in jobs}
        pending = set(futures)
        while pending and not stop.is_set():
            done, pending = cf.wait(pending, timeout=POLL_S, return_when=cf.FIRST_COMPLETED)
            for future in _in_order(futures, done):  # several finish between two looks (quizzes): in job order
                yield futures[future], _outcome(future, futures[future])
        finished = {f for f in pending if f.done() and not f.cancelled()}
        pending -= finished
        for future in _in_order(futures, finished):
            yield futures[future], _outcome(future, futures[future])
    finally:
        if pending or stop.is_set():
            _stop_pool(pool)
        elif owned:
            pool.shutdown(wait=True)


def _in_order(futures: dict, some: set) -> list:
    """``some`` of the futures, in the order they were submitted (a set's order would vary from run to run)."""
    return [future for future in futures if future in some]


def _local_results(jobs: list[Job], workers: int, stop: Stop | None = None, pool: cf.ProcessPoolExecutor | None = None,
                   preload: tuple[str, ...] = ()) -> Iterable[SubmissionResult | NotGraded]:
    """Grade on a process pool (``pool``, else one of ``workers`` clean processes, ``_clean_start``). A dying
    worker breaks the whole pool, so the jobs it took down with it are retried one by one in fresh pools.

    A submission whose worker dies again is not graded (``NotGraded``), never an error: the student's code runs
    in the kernel, another process with its own limits, so a worker's death is the machine's or the grader's
    (the OOM killer, a kill from outside). Each run of the batch tries it again and lists it while it fails."""
    stop = stop or Stop()
    broken = []
    for job, result in _pool_results(jobs, workers, stop, pool, preload):
        if result is None:
            broken.append(job)
        else:
            yield result
    for job in broken:
        retried = [result for _, result in _pool_results([job], 1, stop, preload=preload)]
        if stop.is_set():
            return
        yield (retried[0] if retried and retried[0] else
               NotGraded(job.student, "the grading worker process died twice while grading it (killed from outside, "
                                      "or the machine ran out of memory), not a graded outcome. If it dies on every "
                                      f"run, grade it alone (--student {job.student}) and watch the machine's memory"))


def run_batch(jobs: list[Job], assignment: Assignment, version: str, gradebook: Gradebook, workers: int,
              on_result: Callable[[SubmissionResult], None] = lambda r: None, stop: Stop | None = None,
              cluster: ClusterSession | None = None, durations: dict[str, float] | None = None,
              on_progress: Callable[[dict], None] = lambda counts: None,
              pool: cf.ProcessPoolExecutor | None = None) -> tuple[list, list[NotGraded]]:
    """Grade the jobs (on ``cluster`` when given, else on ``pool`` or a clean one) and commit each result, with
    the grader ``version``, as it arrives; the results in arrival order, and the jobs the cluster did not grade
    (nothing committed for them).

    SIGINT or SIGTERM (or ``stop``, set by the caller's own handlers) ends the batch within seconds: queued jobs
    are cancelled, running kernels killed, every result already finished committed; then ``BatchInterrupted``.
    """
    with contextlib.ExitStack() as stack:
        stop = stop or stack.enter_context(stop_on_signals())
        done, lost = (_run_jobs(jobs, assignment, version, gradebook, workers, on_result, stop, cluster,
                                durations or {}, on_progress, pool) if jobs else ([], []))
    if stop.is_set():
        kept = sorted(r.student for r in done)
        missing = sorted({job.student for job in jobs} - set(kept))
        raise BatchInterrupted(
            f"interrupted ({stop.name}): {len(kept)} result(s) kept in {gradebook.path}"
            + (f" ({', '.join(kept)})" if kept else "") + f"; {len(missing)} not graded"
            + (f" ({', '.join(missing)})" if missing else "")
            + ". Run the same command again to grade what is missing.", kept, missing)
    return done, lost


def _run_jobs(jobs: list[Job], assignment: Assignment, version: str, gradebook: Gradebook, workers: int,
              on_result: Callable[[SubmissionResult], None], stop: Stop, cluster: ClusterSession | None,
              durations: dict[str, float], on_progress: Callable[[dict], None],
              pool: cf.ProcessPoolExecutor | None) -> tuple[list, list[NotGraded]]:
    paths = {job.student: _storable(job.path or job.origin) for job in jobs}
    secret = jobs[0].secret
    done, lost = [], []
    if cluster is not None and isinstance(assignment, Exercise):
        # Workers elsewhere: each job carries its bytes and seeds; their kernels start from the workers' factories.
        results = cluster_results(cluster, jobs, assignment, version, secret, durations, stop, on_progress)
    else:
        results = _local_results(jobs, workers, stop, pool, () if isinstance(assignment, Quiz) else SCORING_MODULES)
    for result in results:
        if isinstance(result, NotGraded):
            lost.append(result)
            continue
        result = storable(result)
        gradebook.record(result, paths[result.student], version, hidden_included=secret is not None,
                         artifacts=result.artifacts, secret_fingerprint=fingerprint(secret) if secret else "")
        done.append(result)
        on_result(result)
    return done, lost


def worth_a_factory(items: Iterable[Job | Found]) -> bool:
    """Whether these submissions' kernels should fork from a warm factory (here, or on each cluster worker).

    One notebook alone starts fresh: warming a factory first would cost what it saves.
    """
    return sum(1 for item in items if item.path) >= 2


def _with_factory(jobs: list[Job], assignment: Assignment, stack: contextlib.ExitStack,
                  launched: KernelFactory | None) -> list[Job]:
    """The jobs, forking their kernels from one warm factory when they run notebooks: ``launched`` (the caller's, who
    closes it; closed here at once if these jobs do not need it), else one closed with ``stack``.

    One notebook forks from a factory another process keeps warm (the warm server's): that one costs nothing here.
    """
    already_warm = launched is not None and launched.shared is not None
    if isinstance(assignment, Quiz) or not (worth_a_factory(jobs) or already_warm and any(job.path for job in jobs)):
        if launched is not None:
            launched.close()
        return jobs
    # Not waited for here: it warms up while the workers start, and each job waits for it (FactoryHandle.resolve).
    factory = launched or stack.enter_context(launch_factory(preload_for(assignment.spec.data_root)))
    return [dataclasses.replace(job, factory=factory.handle) for job in jobs]


def _warm_workers(jobs: list[Job], exercise: Exercise, workers: int, stop: Stop,
                  stack: contextlib.ExitStack) -> cf.ProcessPoolExecutor | None:
    """Workers forked from this process once it did what their first notebooks would (``ready_to_fork``), while the
    jobs' factory warms up; None (a clean pool then, ``_clean_start``) where forking is unsafe (another thread runs
    here, or it is not Linux) or the batch was stopped meanwhile.

    Spawned workers would each import torch again, at the same time as the factory: three imports on two cores.
    Each would also probe what the machine allows (two short-lived interpreters), where the probes done here are
    inherited.
    """
    if not any(job.factory for job in jobs) or sys.platform != "linux" or thread_count() > 1:
        return None
    # Here, not in a helper thread, which could still be exiting at the fork.
    with contextlib.suppress(Exception):  # a head start only: a worker probes whatever was not probed here
        ready_to_fork([exercise])
    if stop.is_set() or thread_count() > 1:  # a thread an import started makes a fork unsafe
        return None
    return stack.enter_context(forked_workers(min(workers, len(jobs))))


class SecretMismatch(UserError):
    """The gradebook's results used another secret: grading on would mix two sets of hidden data in one class."""


def check_secret(gradebook: Gradebook, secret: bytes | None, assignment_id: str, regrade: bool,
                 students: set[str] | None = None) -> None:
    """Refuse a secret other than the one the gradebook's current results used, unless every result is regraded: a
    ``--regrade`` that cannot regrade some (``students``, those in the folder, lacks them) is refused before it
    starts, as it would leave one class with two sets of hidden data."""
    if secret is None:
        return
    mine = fingerprint(secret)
    if regrade:
        left = {student: path for student, path in gradebook.current_paths(assignment_id, mine).items()
                if students is not None and student not in students}
        if left:
            listed = "; ".join(f"{student} (graded from {path})" for student, path in list(left.items())[:5])
            more = f" and {len(left) - 5} more" if len(left) > 5 else ""
            raise SecretMismatch(
                f"{gradebook.path} holds {assignment_id} results graded with another instructor secret for students "
                f"with no submission in the folder now: {listed}{more}. --regrade with secret {mine} cannot regrade "
                "them, and would leave the class with two sets of hidden data. Put their submissions back in the "
                "folder and run it again, or grade with the secret those results used.", assignment=assignment_id)
        return
    others = {f: ids for f, ids in gradebook.secret_fingerprints().items() if f != mine}
    if others:
        used = "; ".join(f"{', '.join(ids)} with secret {f}" for f, ids in sorted(others.items()))
        raise SecretMismatch(
            f"{gradebook.path} holds results graded with another instructor secret ({used}); this secret is {mine}. "
            "Grading on would give one class two sets of hidden data. Use the secret those results used "
            f"(--secret-file or $GRADER_SECRET), or pass --regrade to grade every {assignment_id} submission again "
            "with this one.", assignment=assignment_id)


def grade_class(found: list[Found], assignment: Assignment, gradebook: Gradebook, workers: int,
                regrade: bool = False, secret: bytes | None = None, hide: tuple[str, ...] = (),
                on_plan: Callable[[int, int], None] = lambda todo, skipped: None,
                on_result: Callable[[SubmissionResult], None] = lambda r: None,
                data_root: str | None = None, times: dict[str, SubmissionTime] | None = None,
                stop: Stop | None = None, cluster: ClusterSession | None = None,
                on_progress: Callable[[dict], None] = lambda counts: None,
                pool: cf.ProcessPoolExecutor | None = None, factory: KernelFactory | None = None) -> BatchReport:
    """Grade every changed submission of one assignment into the gradebook, on ``cluster`` when given, else on
    ``pool`` (``forked_workers``) or workers started for it (``_warm_workers``).

    ``factory``: one the caller launched before it knew whether the kernels would need it (it still closes it).

    ``times`` (student -> when their hand-in was submitted) are stored first, keyed by the file's hash, so
    skipped and interrupted students keep theirs too.
    """
    start = time.monotonic()
    check_secret(gradebook, secret, assignment.id, regrade, {item.student for item in found})
    if times:
        record_times(gradebook, assignment.id, {(item.student, file_sha256(item.path)): times[item.student]
                                                for item in found if item.path and item.student in times})
    version = grader_version(assignment)
    jobs, skipped = plan_jobs(found, assignment, version, gradebook, regrade, secret, hide, data_root)
    with contextlib.ExitStack() as stack:
        stop = stop or stack.enter_context(stop_on_signals())  # Ctrl-C while the workers warm up stops the batch
        if cluster is None:
            jobs = _with_factory(jobs, assignment, stack, factory)
            pool = pool or _warm_workers(jobs, assignment, workers, stop, stack)
        on_plan(len(jobs), len(skipped))
        graded, lost = run_batch(jobs, assignment, version, gradebook, workers, on_result, stop, cluster,
                                 gradebook.durations(assignment.id), on_progress, pool)
    return BatchReport(graded, skipped, time.monotonic() - start, lost)
