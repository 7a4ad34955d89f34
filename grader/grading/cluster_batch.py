"""Grade a class on a dask cluster: connect within a bounded time, check the workers, run the jobs longest first,
and tell grades from infrastructure failures.

A result is a grade only when a worker finished grading it. A cancelled task, a lost scheduler, a
worker that died on the job again and again (dask's ``allowed-failures``), or a worker that cannot
grade as the client would (``WorkerUnfit``) gives a ``NotGraded`` instead: the batch keeps what was
graded, says what was not and why, and the next run grades exactly those.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from grader.assignments.catalog import Exercise
from grader.errors import MachineryLost, UserError
from grader.grading.cluster_jobs import (
    GPU,
    ClusterJob,
    WorkerUnfit,
    fitness,
    grade_cluster_job,
    hidden_seed_table,
    pack,
)
from grader.grading.interrupts import Stop
from grader.grading.jobs import Job, grade_job
from grader.grading.secrets import MissingSeed
from grader.results import SubmissionResult
from grader.specs.config import ClusterSettings

POLL_S = 0.2
PROGRESS_EVERY_S = 1.0


class ClusterError(UserError):
    """The cluster cannot grade: its scheduler is unreachable or has no workers, or its workers are unfit."""


@dataclass(frozen=True)
class NotGraded:
    """A job the cluster did not grade: nothing was committed for it, and the reason is the cluster's."""

    student: str
    reason: str
    worker: str = ""
    unfit: bool = False  # the worker cannot grade as the client would: every other job would meet it too


@dataclass
class WorkerCounts:
    running: int = 0
    done: int = 0
    failed: int = 0  # jobs this worker could not grade (infrastructure), not students' failed checks


@dataclass
class ClusterSession:
    """A connected client, and what the workers are told besides each job."""

    client: object  # distributed.Client
    address: str
    owned: bool = False  # a cluster this grader started: its workers' kernels can be killed on a stop
    dashboard: str = ""  # dask's dashboard of a cluster this grader started (with bokeh installed)
    mnist_root: str | None = None
    gpu_exercises: tuple[str, ...] = ()
    reconnect_timeout: float = ClusterSettings.reconnect_timeout  # grader.toml's, where the session was configured
    counts: dict[str, WorkerCounts] = field(default_factory=dict)

    def check_workers(self, exercise: Exercise, version: str) -> None:
        """Refuse, naming each worker, a cluster whose workers would grade otherwise than the client would."""
        problems = self.client.run(fitness, exercise.id, exercise.spec.path.read_bytes(), version, self.mnist_root,
                                   on_error="return")
        # A worker without this grader cannot even unpickle the check: its exception is its answer.
        unfit = {worker: why if isinstance(why, str) else f"it cannot run the grader's code ({type(why).__name__}: "
                 f"{why}); install the grader on the workers" for worker, why in problems.items() if why}
        if unfit:
            raise ClusterError("the cluster's workers cannot grade " + exercise.id + ": "
                               + "; ".join(f"worker {w}: {why}" for w, why in sorted(unfit.items()))
                               + ". Nothing was graded.", assignment=exercise.id)


@contextlib.contextmanager
def connect(target: str, workers: int, settings, factories: bool = True) -> Iterator[ClusterSession]:
    """A client of the cluster ``target`` names (local, slurm, kubernetes, or a scheduler address), once it has a
    worker; ClusterError within ``settings.connect_timeout`` + ``settings.worker_timeout`` seconds otherwise.

    ``factories``: a warm kernel factory on every worker while the session lasts.
    """
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError("grading on a cluster needs dask's distributed: pip install "
                           "'training-dynamics-grader[cluster]'") from None
    from grader.grading.cluster_start import security, start_cluster

    tls = security(settings)
    with start_cluster(target, settings, workers) as cluster:
        address = cluster if isinstance(cluster, str) else cluster.scheduler_address
        try:
            if isinstance(cluster, str):  # a Client waits forever on a port that accepts and never answers
                asyncio.run(asyncio.wait_for(_identity(address, tls), settings.connect_timeout))
            client = Client(cluster, timeout=f"{settings.connect_timeout}s", security=tls, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as e:
            raise ClusterError(f"cannot reach the dask scheduler at {address} within {settings.connect_timeout:g} s "
                               f"({type(e).__name__}: {str(e)[:300] or 'no answer'}). Is it running, is the address "
                               "right, and are its TLS settings the same as cluster.tls? Nothing was graded.") from None
        with client:
            try:
                client.wait_for_workers(1, timeout=settings.worker_timeout)
            except (TimeoutError, OSError) as e:
                raise ClusterError(f"the dask scheduler at {address} has no workers after "
                                   f"{settings.worker_timeout:g} s ({type(e).__name__}). Start some (`dask worker "
                                   f"{address}`), or wait longer with cluster.worker_timeout in grader.toml. Nothing "
                                   "was graded.") from None
            owned = not isinstance(cluster, str)
            with _kernel_factories(client, keep=owned) if factories else contextlib.nullcontext():
                yield ClusterSession(client, address, owned=owned, dashboard=_dashboard(cluster) if owned else "",
                                     mnist_root=str(settings.mnist_root) if settings.mnist_root else None,
                                     gpu_exercises=tuple(settings.gpu_exercises),
                                     reconnect_timeout=settings.reconnect_timeout)


@contextlib.contextmanager
def _kernel_factories(client, keep: bool) -> Iterator[None]:
    """A warm kernel factory on every worker, present and future, while the batch runs; a shared cluster's are
    closed afterwards (``keep``: the workers end with the cluster anyway)."""
    from grader.grading.cluster_factory import NAME, KernelFactoryPlugin

    client.register_plugin(KernelFactoryPlugin())
    try:
        yield
    finally:
        if not keep and client.status == "running":  # a lost scheduler: its workers end, and their factories too
            with contextlib.suppress(Exception):
                client.unregister_worker_plugin(NAME)


async def _identity(address: str, tls) -> dict:
    """The scheduler's answer to "who are you?": proof that a dask scheduler, not just a socket, is there."""
    from distributed.comm import connect

    comm = await connect(address, **(tls.get_connection_args("client") if tls else {}))
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _dashboard(cluster) -> str:
    try:
        return cluster.dashboard_link or ""
    except Exception:  # noqa: BLE001 - no bokeh, or no dashboard asked for
        return ""


def longest_first(jobs: list[Job], durations: dict[str, float], limit_s: float) -> list[Job]:
    """The jobs, longest expected first: each by its student's last run, else the median run (the time limit when
    nothing ran before), so that no long job starts last and keeps one worker busy while the others idle."""
    known = [durations[job.student] for job in jobs if job.student in durations]
    default = statistics.median(known) if known else limit_s
    return sorted(jobs, key=lambda job: -durations.get(job.student, default))


def _reason(error: BaseException) -> tuple[str, str]:
    """(why the cluster did not grade a job, the worker it names) for the exception its task ended with."""
    from distributed.scheduler import KilledWorker

    if isinstance(error, KilledWorker):
        worker = getattr(error, "last_worker", None)
        return ("the workers grading it died, one after another, as many times as dask allows (its "
                "allowed-failures): lost machines or a worker's own memory limit, not a graded outcome",
                getattr(worker, "address", "") if worker is not None else "")
    if isinstance(error, WorkerUnfit):
        return str(error), error.worker
    if isinstance(error, MachineryLost):
        return f"{error}; not the notebook's doing", ""
    if isinstance(error, MissingSeed):
        return f"the grader could not grade it: {error}", ""
    return f"the worker failed ({type(error).__name__}: {str(error)[:300]})", ""


def cluster_results(session: ClusterSession, jobs: list[Job], exercise: Exercise, version: str,
                    secret: bytes | None, durations: dict[str, float], stop: Stop,
                    on_progress: Callable[[dict[str, WorkerCounts]], None] = lambda counts: None
                    ) -> Iterable[SubmissionResult | NotGraded]:
    """Grade the jobs on the cluster; each job ends as a result or a NotGraded. A job whose file cannot be carried
    needs no kernel (it is invalid) and is graded here."""
    client, counts = session.client, session.counts
    gpu = exercise.id in session.gpu_exercises
    spec, seeds = exercise.spec.path.read_bytes(), hidden_seed_table(exercise, secret)  # the same for every job
    packed: list[ClusterJob] = []
    for job in longest_first(jobs, durations, exercise.spec.limits.total_timeout_s):
        carried = pack(job, spec, version, seeds, f"grade-{exercise.id}-{uuid.uuid4().hex}", session.mnist_root, gpu)
        if carried is None:
            yield grade_job(job, exercise)
        else:
            packed.append(carried)
    # Submitted one by one as workers free up, never ahead: dask would hand queued tasks to workers at once
    # (the first 2x threads of a group, and every task with a resource), which breaks the longest-first order,
    # and a worker that dies fails every task it holds, run or not.
    waiting, futures, pending = collections.deque(packed), {}, set()
    lost_since, shown, unfit, slots = None, 0.0, "", 1
    try:
        while (waiting or pending) and not stop.is_set():
            if time.monotonic() - shown > PROGRESS_EVERY_S:
                shown = time.monotonic()
                slots = _slots(client, gpu) or slots
                _update_running(client, counts)
                on_progress(counts)
            lost, gone = "", f"the connection to the dask scheduler at {session.address} was lost"
            # Only to a connected client: one whose scheduler went is closed by distributed after its own timeout,
            # and a submit then raises; until this batch's reconnect_timeout ends, the job waits for the scheduler.
            while waiting and len(pending) < slots and client.status == "running":
                try:
                    future = client.submit(grade_cluster_job, waiting[0], key=waiting[0].key, pure=False,
                                           resources={GPU: 1} if gpu else None)
                except Exception as e:  # noqa: BLE001 - the client closed between the look and the submit
                    lost = f"{gone} ({type(e).__name__})"
                    break
                futures[future] = waiting.popleft().job
                pending.add(future)
            _wait_any(pending)
            done = [f for f in futures if f in pending and f.done()]  # in submission order
            pending -= set(done)
            for future in done:
                outcome = _outcome(future, futures[future], counts)
                if isinstance(outcome, NotGraded) and outcome.unfit:
                    unfit = outcome.reason
                yield outcome
            if client.status == "running":
                lost_since = None
            elif not lost:
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since > session.reconnect_timeout:
                    lost = f"{gone} ({client.status})"
            if unfit or lost:
                students = [futures[f].student for f in pending] + [item.job.student for item in waiting]
                waiting.clear()
                yield from (NotGraded(student, f"not graded: {unfit or lost}") for student in sorted(students))
                return
        _update_running(client, counts)
        on_progress(counts)  # the last results, as the rows will stay on the screen
    finally:
        if pending:
            _cancel(session, pending)


def _slots(client, gpu: bool) -> int:
    """How many jobs the cluster runs at once now: its worker threads, or its GPU resources (0 if unknown)."""
    if client.status != "running":  # asking would wait for the connect timeout
        return 0
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
    except Exception:  # noqa: BLE001 - a lost scheduler is noticed by the caller
        return 0
    if gpu:
        return int(sum(w.get("resources", {}).get(GPU, 0) for w in workers))
    return sum(w.get("nthreads", 1) for w in workers)


def _wait_any(pending: set) -> None:
    """Return when one of ``pending`` is done, or after POLL_S (so that a stop or a lost scheduler is seen)."""
    from distributed import wait

    if not pending:  # nothing submitted: the scheduler is away, and the batch waits for its return or gives up
        time.sleep(POLL_S)
        return
    started = time.monotonic()
    try:
        wait(list(pending), timeout=POLL_S, return_when="FIRST_COMPLETED")
    except Exception:  # noqa: BLE001 - a timeout, or a lost scheduler: the caller looks at both
        # A lost scheduler fails the wait at once: sleeping out the poll keeps the wait for its return off the CPU.
        time.sleep(max(0.0, POLL_S - (time.monotonic() - started)))


def _outcome(future, job: Job, counts: dict[str, WorkerCounts]) -> SubmissionResult | NotGraded:
    """The result of a finished task, or why the cluster did not grade its job."""
    from distributed import CancelledError

    try:
        result = future.result()
    except (CancelledError, Exception) as e:  # noqa: BLE001 - every way a task fails is said
        if isinstance(e, CancelledError) or future.status == "cancelled":
            reason, worker = "its task was cancelled on the cluster (a lost scheduler, or another client)", ""
        else:
            reason, worker = _reason(e)
        if worker:
            counts.setdefault(worker, WorkerCounts()).failed += 1
        return NotGraded(job.student, reason, worker, unfit=isinstance(e, WorkerUnfit))
    counts.setdefault(result.sandbox.get("worker", ""), WorkerCounts()).done += 1
    return result


def _cancel(session: ClusterSession, pending: set) -> None:
    """Cancel queued tasks; a cluster this grader started also kills its workers' kernels (a shared cluster's
    running tasks finish, and their results are not used)."""
    from grader.kernel.sandbox import stop_open_sandboxes

    if session.client.status != "running":  # a lost scheduler cannot be told anything: asking waits for a timeout
        return
    with contextlib.suppress(Exception):
        session.client.cancel(list(pending))
        if session.owned:
            session.client.run(stop_open_sandboxes)


def _update_running(client, counts: dict[str, WorkerCounts]) -> None:
    if client.status != "running":
        return
    try:
        processing = client.processing()
    except Exception:  # noqa: BLE001 - progress is not worth failing a batch for
        return
    running = collections.Counter({worker: sum(1 for key in keys if str(key).startswith("grade-"))
                       for worker, keys in processing.items()})
    for worker in set(running) | set(counts):
        counts.setdefault(worker, WorkerCounts()).running = running.get(worker, 0)
