"""What a cluster worker needs to grade one submission, carried in the task itself, and the worker's side of it.

A ``ClusterJob`` holds the submission's bytes, the assignment's spec file and the grader version the
client computed from it, and the hidden checks' seeds, derived from the instructor secret on the
client: the secret never travels, and a worker needs none of the client's files. A worker refuses a
job it cannot grade as the client would (another grader version, no MNIST files) by raising
``WorkerUnfit``: the batch stops and says which worker, instead of recording wrong grades.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from grader.assignments.catalog import Exercise, load_exercise
from grader.assignments.version import grader_version
from grader.errors import UserError
from grader.grading.jobs import Job, grade_job
from grader.grading.secrets import hidden_seeds, seed_labels
from grader.kernel.notebook import MAX_NOTEBOOK_BYTES
from grader.kernel.sandbox_files import owned_temp_dir
from grader.kernel.untrusted import UnreadableFile, read_bytes
from grader.results import SubmissionResult
from grader.specs.paths import SPEC_FILE

GPU = "GPU"  # the dask worker resource an exercise on a GPU asks for (`dask worker --resources GPU=1`)


class WorkerUnfit(Exception):
    """This worker cannot grade the job as the client would: an infrastructure failure, never a grade."""

    def __init__(self, reason: str, worker: str = "") -> None:
        super().__init__(reason, worker)  # both in args: the exception travels back to the client pickled
        self.reason, self.worker = reason, worker

    def __str__(self) -> str:
        return f"worker {self.worker}: {self.reason}" if self.worker else self.reason


@dataclass(frozen=True)
class ClusterJob:
    """One submission, graded anywhere: ``job`` with its bytes and seeds instead of paths and the secret."""

    job: Job
    spec: bytes  # the exercise's spec.toml, as the client loaded it
    version: str  # grader_version() on the client: code and spec must give the same on the worker
    key: str  # the task's key: grade-<exercise>-<token>, unique to this batch
    mnist_root: str | None = None  # the MNIST bundle as the workers see it; else their $MNIST_ROOT
    gpu: bool = False  # graded on a worker holding one GPU resource, which the kernel alone sees


def hidden_seed_table(exercise: Exercise, secret: bytes | None) -> tuple[tuple[str, int], ...] | None:
    """Every hidden seed the exercise's checks can ask for, derived here from the secret; None without one."""
    if secret is None:
        return None
    seed = hidden_seeds(secret, exercise.id)
    return tuple((label, seed(label)) for label in seed_labels(exercise.checks))


def pack(job: Job, spec: bytes, version: str, seeds: tuple[tuple[str, int], ...] | None, key: str,
         mnist_root: str | None = None, gpu: bool = False) -> ClusterJob | None:
    """The job as a worker anywhere can grade it (``spec``, ``version`` and ``seeds`` are the batch's); None when its
    file cannot be carried (gone, a folder, too large): that outcome needs no kernel, and the client grades it as
    the local pool would."""
    if job.path is None:
        return None
    try:
        content = read_bytes(pathlib.Path(job.path), MAX_NOTEBOOK_BYTES)
    except UnreadableFile:
        return None
    carried = dataclasses.replace(job, secret=None, content=content, seeds=seeds, factory=None, data_root=None)
    return ClusterJob(carried, spec, version, key, mnist_root, gpu)


def worker_name() -> str:
    """The address of the dask worker running this (its host name outside one)."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return socket.gethostname()


def _fit(exercise: Exercise, version: str, mnist_root: str | None) -> str | None:
    """The MNIST root this worker grades ``exercise`` with (None: it needs none); WorkerUnfit says why it cannot."""
    mine = grader_version(exercise)
    if mine != version:
        raise WorkerUnfit(f"it runs grader {mine} for {exercise.id}, the client {version}: install the same grader "
                          "version on the workers as on the client")
    if not exercise.spec.data_root:
        return None
    from grader.grading.engine import resolve_data_root

    try:
        return str(resolve_data_root(exercise, pathlib.Path(mnist_root) if mnist_root else None))
    except (UserError, OSError) as e:
        raise WorkerUnfit(f"it has no MNIST files for {exercise.id}: {e}. Set $MNIST_ROOT on the workers, or "
                          "cluster.mnist_root in grader.toml to where the workers see the bundle") from None


@contextlib.contextmanager
def _exercise(exercise_id: str, spec: bytes) -> Iterator[Exercise]:
    """The exercise the carried spec describes, loaded from a folder of its own (the worker's course may differ)."""
    with owned_temp_dir("spec") as folder:
        try:
            (pathlib.Path(folder) / exercise_id).mkdir()
            (pathlib.Path(folder) / exercise_id / SPEC_FILE).write_bytes(spec)
            exercise = load_exercise(exercise_id, pathlib.Path(folder))
        except Exception as e:  # noqa: BLE001 - whatever stops this worker, the client is told, not a student
            raise WorkerUnfit(f"it cannot load {exercise_id} ({type(e).__name__}: {e})") from None
        yield exercise


def fitness(exercise_id: str, spec: bytes, version: str, mnist_root: str | None) -> str:
    """Why this worker cannot grade the exercise as the client would; "" when it can. Run on every worker first."""
    try:
        with _exercise(exercise_id, spec) as exercise:
            _fit(exercise, version, mnist_root)
    except WorkerUnfit as e:
        return str(e)
    return ""


def _worker_factory():
    """This worker's warm kernel factory (``cluster_factory``); None outside a dask worker."""
    try:
        from grader.grading.cluster_factory import worker_factory
    except ImportError:
        return None
    return worker_factory()


def _kernel_env(gpu: bool) -> tuple[tuple[str, str], ...]:
    """The kernel sees the one device the worker was started for (its first $CUDA_VISIBLE_DEVICES), or none."""
    if not gpu:
        return (("CUDA_VISIBLE_DEVICES", ""),)
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")
    return (("CUDA_VISIBLE_DEVICES", devices[0].strip() or "0"),)


def grade_cluster_job(cluster_job: ClusterJob) -> SubmissionResult:
    """Grade on a worker; raises WorkerUnfit (or MissingSeed) for what is not the student's outcome."""
    worker, job = worker_name(), cluster_job.job
    try:
        with _exercise(job.exercise_id, cluster_job.spec) as exercise:
            data_root = _fit(exercise, cluster_job.version, cluster_job.mnist_root)
            result = grade_job(dataclasses.replace(job, data_root=data_root, env=_kernel_env(cluster_job.gpu),
                                                   factory=_worker_factory()), exercise)
    except WorkerUnfit as e:
        raise WorkerUnfit(e.reason, worker) from None
    return dataclasses.replace(result, sandbox={**result.sandbox, "worker": worker, **cluster_weaknesses(result)})


def cluster_weaknesses(result: SubmissionResult) -> dict:
    """What the README's "other user" column lacks, said in the worker's own report when it applied here."""
    if not result.sandbox or result.sandbox.get("unprivileged_user", True):
        return {}
    return {"worker_not_root": (
        f"the worker runs as uid {os.geteuid()}, not root: the kernel ran as that user, so it could read what that "
        "user can read outside the hidden folders, its memory limit was per process and its process count was not "
        "limited for the whole sandbox. Run workers as root in a container, or see the README's sandbox table")}
