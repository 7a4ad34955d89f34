"""One student's job, as plain picklable data, and how a worker grades it.

Any worker runs ``grade_job``: a process of the local pool, or a cluster worker given the job's
bytes and hidden seeds instead of paths and the secret (``grader.grading.cluster_jobs``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import stat
import traceback
from dataclasses import dataclass

from grader.assignments.catalog import Assignment, Exercise, load_assignment
from grader.errors import MachineryLost
from grader.grading.engine import grade_submission
from grader.grading.secrets import MissingSeed, hidden_seeds, seed_table
from grader.kernel.factory import FactoryHandle
from grader.kernel.notebook import InvalidNotebook, read_submission
from grader.quizzes.answers import read_answers
from grader.quizzes.model import Quiz, quiz_ids
from grader.quizzes.scoring import score_quiz
from grader.results import Status, SubmissionResult


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
    origin: str = ""  # the student's entry in the class folder, recorded when there is no notebook to point to
    factory: FactoryHandle | None = None  # the batch's warm kernel factory, when one runs on this machine
    content: bytes | None = None  # the submission's bytes, carried to a worker that cannot read ``path``
    seeds: tuple[tuple[str, int], ...] | None = None  # hidden seeds derived on the client, instead of ``secret``
    env: tuple[tuple[str, str], ...] = ()  # for the kernel, e.g. the one GPU a cluster worker was given


def _grade_quiz(quiz: Quiz, job: Job) -> SubmissionResult:
    """Quizzes are scored from the answers file alone: no kernel runs."""
    result = score_quiz(quiz, read_answers(job.path), job.student, quizzes=quiz_ids())
    return dataclasses.replace(result, notebook_sha256=file_sha256(job.path))


def _grade_notebook(exercise: Exercise, job: Job) -> SubmissionResult:
    try:
        submission = read_submission(job.path, job.content)
    except InvalidNotebook as e:
        # Hashed all the same: an unchanged bad file is an unchanged submission, skipped next time.
        digest = hashlib.sha256(job.content).hexdigest() if job.content is not None else file_sha256(job.path)
        return SubmissionResult.invalid(job.exercise_id, job.student, str(e), digest)
    declared = submission.exercise_id
    if declared and declared != exercise.id:
        # Graded as the wrong exercise it would score 0 with status ok: a silent wrong grade.
        return SubmissionResult.invalid(job.exercise_id, job.student,
                                        f"this notebook is for exercise {declared!r} (its metadata says so), but it "
                                        f"was handed in for {exercise.id!r}: nothing was graded", submission.sha256)
    misses: list[str] = []
    seeds = (hidden_seeds(job.secret, exercise.id) if job.secret else
             seed_table(dict(job.seeds), exercise.id, misses) if job.seeds is not None else None)
    result = grade_submission(submission, exercise, job.student, seeds, include_hidden=seeds is not None,
                              hide=job.hide, data_root=pathlib.Path(job.data_root) if job.data_root else None,
                              factory=job.factory, env=dict(job.env))
    if misses:  # a check met it as an error of its own: that verdict would be the grader's bug, not the student's
        raise MissingSeed(f"no hidden seed was derived for {exercise.id}/{', '.join(sorted(set(misses)))}")
    return result


def grade_job(job: Job, assignment: Assignment | None = None) -> SubmissionResult:
    """Grade one student (``assignment`` defaults to the course's own ``job.exercise_id``); never raises, so one
    bad submission cannot stop the batch."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        if job.path is None:
            return SubmissionResult.invalid(job.exercise_id, job.student, job.note or "nothing submitted")
        assignment = assignment or load_assignment(job.exercise_id)
        grade = _grade_quiz if isinstance(assignment, Quiz) else _grade_notebook
        return dataclasses.replace(grade(assignment, job), note=job.note)
    except (MissingSeed, MachineryLost):
        raise  # not an outcome of this submission: the batch reports it as not graded
    except Exception as e:  # noqa: BLE001 - recorded as this student's outcome, with the grader's traceback
        return SubmissionResult(job.exercise_id, job.student, Status.ERROR,
                                error=f"the grader failed on this submission ({type(e).__name__}: {e})",
                                traceback=traceback.format_exc()[-3000:], note=job.note)


def file_sha256(path) -> str:
    """What a submission is recognised by: the hash of its bytes (as Submission.sha256); "" when it is not a
    regular file that can be read (a pipe is never opened for reading, so it cannot block the batch)."""
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        try:
            for block in iter(lambda: f.read(2**20), b""):
                digest.update(block)
        except OSError:
            return ""
    return digest.hexdigest()
