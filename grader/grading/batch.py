"""Grade a class: one job per student, run on a local process pool or a dask cluster.

Workers only compute; the calling process is the gradebook's single writer and
commits each result as it arrives, so an interrupted batch loses at most the
submissions still in flight, and the next run grades exactly those. Every result is
stored with the fingerprint of the secret its hidden checks used, and a batch with
another secret than the gradebook's results is refused unless it regrades.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import multiprocessing
import os
import pathlib
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from grader.assignments.catalog import Assignment, Exercise, load_assignment
from grader.assignments.version import grader_version
from grader.errors import UserError
from grader.grading.discover import Found
from grader.grading.engine import grade_submission
from grader.grading.secrets import fingerprint, hidden_seeds
from grader.kernel.notebook import InvalidNotebook, read_submission
from grader.quizzes.answers import read_answers
from grader.quizzes.model import Quiz
from grader.quizzes.scoring import score_quiz
from grader.results import Status, SubmissionResult
from grader.store.gradebook import Gradebook


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, as plain picklable data."""

    student: str
    path: str | None
    exercise_id: str
    secret: bytes | None = None
    hide: tuple[str, ...] = ()
    note: str = ""  # which of the student's notebooks was chosen, or why none was (grader.grading.discover)
    data_root: str | None = None  # the MNIST root, for exercises that read data


def _grade_quiz(quiz: Quiz, job: Job) -> SubmissionResult:
    """Quizzes are scored from the answers file alone: no kernel runs."""
    result = score_quiz(quiz, read_answers(job.path), job.student)
    return dataclasses.replace(result, notebook_sha256=file_sha256(job.path))


def _grade_notebook(exercise: Exercise, job: Job) -> SubmissionResult:
    try:
        submission = read_submission(job.path)
    except InvalidNotebook as e:
        # Hashed all the same: an unchanged bad file is an unchanged submission, skipped next time.
        return SubmissionResult.invalid(job.exercise_id, job.student, str(e), file_sha256(job.path))
    declared = submission.exercise_id
    if declared and declared != exercise.id:
        # Graded as the wrong exercise it would score 0 with status ok: a silent wrong grade.
        return SubmissionResult.invalid(job.exercise_id, job.student,
                                        f"this notebook is for exercise {declared!r} (its metadata says so), but it "
                                        f"was handed in for {exercise.id!r}: nothing was graded", submission.sha256)
    seeds = hidden_seeds(job.secret, exercise.id) if job.secret else None
    return grade_submission(submission, exercise, job.student, seeds, include_hidden=seeds is not None,
                            hide=job.hide, data_root=pathlib.Path(job.data_root) if job.data_root else None)


def grade_job(job: Job) -> SubmissionResult:
    """Grade one student; never raises, so one bad submission cannot stop the batch."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        if job.path is None:
            return SubmissionResult.invalid(job.exercise_id, job.student, job.note or "nothing submitted")
        assignment = load_assignment(job.exercise_id)
        grade = _grade_quiz if isinstance(assignment, Quiz) else _grade_notebook
        return dataclasses.replace(grade(assignment, job), note=job.note)
    except Exception as e:  # noqa: BLE001 - recorded as this student's outcome, with the grader's traceback
        return SubmissionResult(job.exercise_id, job.student, Status.ERROR,
                                error=f"the grader failed on this submission ({type(e).__name__}: {e})",
                                traceback=traceback.format_exc()[-3000:], note=job.note)


@dataclass
class BatchReport:
    graded: list[SubmissionResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unchanged since their last grading
    seconds: float = 0.0


def file_sha256(path) -> str:
    """What a submission is recognised by: the hash of its bytes (as Submission.sha256)."""
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def plan_jobs(found: Iterable[Found], assignment: Assignment, gradebook: Gradebook, regrade: bool,
              secret: bytes | None, hide: tuple[str, ...], data_root: str | None = None) -> tuple[list[Job], list[str]]:
    """Jobs for submissions that changed (or all with ``regrade``), and the names skipped."""
    version = grader_version(assignment)
    jobs, skipped = [], []
    for item in found:
        current = gradebook.current_hash(item.student, assignment.id)
        if (not regrade and current and item.path and current == (file_sha256(item.path), version, secret is not None)
                and gradebook.current_note(item.student, assignment.id) == item.note):
            skipped.append(item.student)
            continue
        jobs.append(Job(item.student, str(item.path) if item.path else None, assignment.id, secret, hide, item.note,
                        data_root))
    return jobs, skipped


def _pool_results(jobs: list[Job], workers: int) -> Iterable[tuple[Job, SubmissionResult | None]]:
    """(job, result) as they finish; result None when the pool broke (a worker process died) under it."""
    # spawn: workers start clean instead of inheriting the parent's torch and event-loop state.
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(grade_job, job): job for job in jobs}
        for future in cf.as_completed(futures):
            try:
                yield futures[future], future.result()
            except cf.process.BrokenProcessPool:
                yield futures[future], None


def _local_results(jobs: list[Job], workers: int) -> Iterable[SubmissionResult]:
    """Grade on a process pool. A dying worker breaks the whole pool, so the jobs it took down with it are
    retried one by one in fresh pools: only the submission that kills its worker again ends as an error."""
    broken = []
    for job, result in _pool_results(jobs, workers):
        if result is None:
            broken.append(job)
        else:
            yield result
    for job in broken:
        _, result = next(iter(_pool_results([job], 1)))
        yield result or SubmissionResult(job.exercise_id, job.student, Status.ERROR,
                                         error="the grading worker process died while grading this submission "
                                               "(for example, the system ran out of memory)")


def _dask_results(jobs: list[Job], workers: int, scheduler: str | None) -> Iterable[SubmissionResult]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=None)
    with Client(scheduler or cluster) as client:
        futures = client.map(grade_job, jobs, pure=False, key=[f"grade-{job.student}-{i}" for i, job in enumerate(jobs)])
        owner = dict(zip(futures, jobs))
        for future in as_completed(futures):
            job = owner[future]
            try:
                yield future.result()
            except Exception as e:  # noqa: BLE001
                yield SubmissionResult(job.exercise_id, job.student, Status.ERROR,
                                       error=f"the grading worker failed ({type(e).__name__}: {e})")
    if cluster is not None:
        cluster.close()


def run_batch(jobs: list[Job], version: str, gradebook: Gradebook, workers: int, executor: str = "local",
              scheduler: str | None = None, on_result: Callable[[SubmissionResult], None] = lambda r: None) -> list:
    """Grade the jobs and commit each result, with the grader ``version``, as it arrives; results in arrival order."""
    if not jobs:
        return []
    paths = {job.student: job.path or "" for job in jobs}
    results = _dask_results(jobs, workers, scheduler) if executor == "dask" else _local_results(jobs, workers)
    secret = jobs[0].secret
    done = []
    for result in results:
        gradebook.record(result, paths[result.student], version, hidden_included=secret is not None,
                         artifacts=result.artifacts, secret_fingerprint=fingerprint(secret) if secret else "")
        done.append(result)
        on_result(result)
    return done


class SecretMismatch(UserError):
    """The gradebook's results used another secret: grading on would mix two sets of hidden data in one class."""


def check_secret(gradebook: Gradebook, secret: bytes | None, assignment_id: str, regrade: bool) -> None:
    """Refuse a secret other than the one the gradebook's current results used, unless every result is regraded."""
    if secret is None or regrade:
        return
    mine = fingerprint(secret)
    others = {f: ids for f, ids in gradebook.secret_fingerprints().items() if f != mine}
    if others:
        used = "; ".join(f"{', '.join(ids)} with secret {f}" for f, ids in sorted(others.items()))
        raise SecretMismatch(
            f"{gradebook.path} holds results graded with another instructor secret ({used}); this secret is {mine}. "
            "Grading on would give one class two sets of hidden data. Use the secret those results used "
            f"(--secret-file or $GRADER_SECRET), or pass --regrade to grade every {assignment_id} submission again "
            "with this one.", assignment=assignment_id)


def grade_class(found: list[Found], assignment: Assignment, gradebook: Gradebook, workers: int,
                executor: str = "local", scheduler: str | None = None, regrade: bool = False,
                secret: bytes | None = None, hide: tuple[str, ...] = (),
                on_plan: Callable[[int, int], None] = lambda todo, skipped: None,
                on_result: Callable[[SubmissionResult], None] = lambda r: None,
                data_root: str | None = None) -> BatchReport:
    """Grade every changed submission of one assignment into the gradebook."""
    start = time.monotonic()
    check_secret(gradebook, secret, assignment.id, regrade)
    jobs, skipped = plan_jobs(found, assignment, gradebook, regrade, secret, hide, data_root)
    on_plan(len(jobs), len(skipped))
    graded = run_batch(jobs, grader_version(assignment), gradebook, workers, executor, scheduler, on_result)
    return BatchReport(graded, skipped, time.monotonic() - start)
