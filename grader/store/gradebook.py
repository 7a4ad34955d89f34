"""The gradebook: SQLite, versioned schema, one writer, one transaction per graded submission.

Nothing is ever overwritten: a regrade adds a run, and the *current* result of a
student for an exercise is their latest run. A batch killed midway leaves only whole
results behind (each is committed in a single transaction, in WAL mode), so running
the batch again grades exactly what is missing.

The schema is ``SCHEMA`` (version 1) followed by ``MIGRATIONS`` in order: a new gradebook
and an old one brought up to date run the same statements.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from grader.errors import UserError
from grader.results import CheckResult, PendingCheck, Status, SubmissionResult

SCHEMA = """
CREATE TABLE students (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY,
    student_id INTEGER NOT NULL REFERENCES students(id),
    exercise TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    UNIQUE (student_id, exercise, sha256)
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    status TEXT NOT NULL CHECK (status IN ('ok', 'error', 'timeout', 'invalid')),
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    error TEXT,
    traceback TEXT NOT NULL DEFAULT '',
    grader_version TEXT NOT NULL,
    hidden_included INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    duration_s REAL NOT NULL,
    timings TEXT NOT NULL DEFAULT '{}',
    sandbox TEXT NOT NULL DEFAULT '{}',
    pending TEXT NOT NULL DEFAULT '[]',
    artifacts TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE check_results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    position INTEGER NOT NULL,
    check_id TEXT NOT NULL,
    title TEXT NOT NULL,
    passed INTEGER NOT NULL,
    points REAL NOT NULL,
    max_points REAL NOT NULL,
    visibility TEXT NOT NULL,
    message TEXT NOT NULL,
    metrics TEXT NOT NULL DEFAULT '{}',
    details TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, check_id)
);
CREATE INDEX runs_by_submission ON runs (submission_id);
CREATE VIEW current_runs AS
    SELECT runs.*, students.name AS student, submissions.exercise AS exercise, submissions.sha256 AS sha256,
           submissions.path AS path
    FROM runs
    JOIN submissions ON submissions.id = runs.submission_id
    JOIN students ON students.id = submissions.student_id
    WHERE runs.id = (SELECT MAX(r.id) FROM runs r JOIN submissions s ON s.id = r.submission_id
                     WHERE s.student_id = submissions.student_id AND s.exercise = submissions.exercise);
"""
# Version N is reached by running MIGRATIONS[N] on version N - 1, each in one transaction.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE check_results ADD COLUMN kind TEXT NOT NULL DEFAULT ''",),  # which check kind made the result
    # Which of a student's notebooks was graded, and a fingerprint of the secret behind the hidden checks
    # (grader.grading.secrets.fingerprint; '' for results stored before, or graded without a secret).
    3: ("ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN secret_fingerprint TEXT NOT NULL DEFAULT ''"),
    # The course term (grader.store.roster, grader.store.lateness): the roster, when each hand-in was submitted,
    # extensions (each `grader extend` kept; the latest counts), and the late policy as applied to each run.
    4: ("""CREATE TABLE roster (
            student_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            email TEXT NOT NULL DEFAULT '',
            login TEXT NOT NULL DEFAULT '',
            section TEXT NOT NULL DEFAULT '',
            canvas_id TEXT NOT NULL DEFAULT '',
            imported_at TEXT NOT NULL)""",
        """CREATE TABLE submission_times (
            student TEXT NOT NULL,
            exercise TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            submitted_at TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('manifest', 'mtime')),
            detail TEXT NOT NULL DEFAULT '',
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (student, exercise, sha256))""",
        """CREATE TABLE extensions (
            id INTEGER PRIMARY KEY,
            student TEXT NOT NULL,
            exercise TEXT NOT NULL,
            days REAL NOT NULL,
            granted_at TEXT NOT NULL)""",
        """CREATE TABLE lateness (
            run_id INTEGER PRIMARY KEY REFERENCES runs(id),
            submitted_at TEXT NOT NULL DEFAULT '',
            time_source TEXT NOT NULL DEFAULT '',
            time_detail TEXT NOT NULL DEFAULT '',
            due TEXT NOT NULL DEFAULT '',
            extension_days REAL NOT NULL DEFAULT 0,
            extension_source TEXT NOT NULL DEFAULT '',
            days_late INTEGER NOT NULL DEFAULT 0,
            percent REAL NOT NULL DEFAULT 0,
            policy TEXT NOT NULL DEFAULT '',
            raw_score REAL NOT NULL,
            final_score REAL NOT NULL,
            applied_at TEXT NOT NULL)"""),
    # Overrides (grader.store.overrides): every action is a row, never updated or deleted (the audit trail). The
    # latest row per student, assignment and check is the one in force; `graded` keeps what the grader had said
    # then, so a regrade that changes it is flagged for review instead of silently keeping or dropping the override.
    5: ("""CREATE TABLE overrides (
            id INTEGER PRIMARY KEY,
            student_id INTEGER NOT NULL REFERENCES students(id),
            exercise TEXT NOT NULL,
            check_id TEXT NOT NULL DEFAULT '',
            action TEXT NOT NULL CHECK (action IN ('set', 'remove')),
            points REAL,
            comment TEXT NOT NULL DEFAULT '',
            author TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            run_id INTEGER REFERENCES runs(id),
            graded TEXT NOT NULL DEFAULT '{}')""",
        "CREATE INDEX overrides_by_target ON overrides (student_id, exercise, check_id, id)",
        """CREATE VIEW current_overrides AS
            SELECT overrides.*, students.name AS student FROM overrides
            JOIN students ON students.id = overrides.student_id
            WHERE overrides.action = 'set' AND overrides.id = (
                SELECT MAX(o.id) FROM overrides o WHERE o.student_id = overrides.student_id
                AND o.exercise = overrides.exercise AND o.check_id = overrides.check_id)"""),
}
SCHEMA_VERSION = max(MIGRATIONS)
LOCK_WAIT_S = 30  # how long opening waits for another grader process that holds the file


class GradebookError(UserError, RuntimeError):
    """A gradebook that cannot be opened or used; the message says which file and why."""


def _writable(path: pathlib.Path) -> bool:
    return os.access(path, os.W_OK)  # EROFS counts too: access() refuses writes on a read-only mount, even to root


def sqlite_problem(path: pathlib.Path, error: BaseException) -> str:
    """One line for an SQLite or OS error on the gradebook at ``path``: what is wrong, and what to do."""
    text = str(error)
    folder = path.parent
    fix = "make it writable, or copy the gradebook to a writable folder and pass --gradebook"
    read_only = ("readonly" in text or "unable to open" in text
                 or (isinstance(error, OSError) and error.errno in (errno.EROFS, errno.EACCES, errno.EPERM)))
    if read_only and folder.is_dir() and not _writable(folder):
        return (f"cannot use the gradebook {path}: its folder {folder} is read-only, and SQLite writes its journal "
                f"files beside the gradebook, even to read it ({text}); {fix}")
    if read_only and path.exists() and not _writable(path):
        return f"cannot write to the gradebook {path}: the file is read-only ({text}); {fix}"
    if read_only:
        return f"cannot open the gradebook {path} for writing ({text}); check that it and its folder are writable"
    if "locked" in text or "busy" in text:
        return f"the gradebook {path} is in use by another grader process ({text}); wait for it to finish"
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return (f"the gradebook {path} is damaged ({text}); `grader gradebook check --gradebook {path}` shows "
                "where, and a copy made with `grader gradebook backup` can replace it")
    if "full" in text or "I/O" in text or isinstance(error, OSError):
        return f"cannot write to the gradebook {path} ({text}); is the disk full or the folder gone?"
    return f"the gradebook {path} cannot be used ({type(error).__name__}: {text})"


def _storage_error(error: BaseException) -> bool:
    """What a damaged, locked or unwritable file raises; IntegrityError and ProgrammingError stay the grader's bugs."""
    return isinstance(error, sqlite3.DatabaseError) and not isinstance(
        error, (sqlite3.IntegrityError, sqlite3.ProgrammingError))


@dataclass(frozen=True)
class StoredRun:
    """A run read back from the gradebook, with its result rebuilt."""

    run_id: int
    result: SubmissionResult
    path: str
    started_at: str
    duration_s: float
    grader_version: str
    artifacts: dict
    secret_fingerprint: str = ""


def _statements(script: str) -> list[str]:
    """``script``'s statements one by one: ``executescript`` would commit the transaction they must run in."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements


def _step(conn: sqlite3.Connection, path: pathlib.Path) -> bool:
    """Bring the gradebook one schema version up (creating it from version 0); False once it is up to date.

    The version is read inside the write transaction that changes it: two graders opening one new or old gradebook
    at the same moment then take turns, and the second finds the first's work done instead of doing it again.
    """
    conn.execute("BEGIN IMMEDIATE")  # explicit: Python's sqlite3 would not open a transaction before DDL by itself
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            conn.rollback()
            return False
        if version == 0:
            if conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]:
                raise GradebookError(f"{path} is an SQLite file but not a gradebook")
            statements = _statements(SCHEMA)
        else:
            statements = list(MIGRATIONS[version + 1])
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={version + 1}")
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return True


def migrate(conn: sqlite3.Connection, path: pathlib.Path) -> None:
    """Create the gradebook or bring it up to ``SCHEMA_VERSION``, one transaction per step (``_step``)."""
    while _step(conn, path):
        pass


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _connected(path: pathlib.Path) -> tuple[sqlite3.Connection, int]:
    """A connection to ``path`` in WAL mode, and the schema version it holds; GradebookError says why not."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        conn = sqlite3.connect(path, timeout=LOCK_WAIT_S)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            return conn, conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.OperationalError as e:  # unwritable folder, locked file
            conn.close()
            # Two processes switching a new file to WAL at once can deadlock on its locks: SQLite then answers
            # "locked" at once, without its busy wait, to one of them, which tries again.
            if "locked" in str(e) and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise GradebookError(sqlite_problem(path, e)) from None
        except sqlite3.DatabaseError as e:
            conn.close()
            if "not a database" in str(e):
                raise GradebookError(f"{path} is not a gradebook: {e}") from None
            raise GradebookError(sqlite_problem(path, e)) from None


class Gradebook:
    """A connection to one gradebook file; create it with ``Gradebook.open``."""

    def __init__(self, conn: sqlite3.Connection, path: pathlib.Path) -> None:
        self.conn, self.path = conn, path
        self._batch_lock: int | None = None  # the descriptor holding ``hold_for_batch``'s lock, while a batch runs

    @classmethod
    def open(cls, path: str | pathlib.Path, create: bool = True) -> Gradebook:
        path = pathlib.Path(path)
        if not path.exists() and not create:
            raise GradebookError(f"no gradebook at {path}")
        if path.is_dir():
            raise GradebookError(f"{path} is a folder, not a gradebook file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Readable by the grader's user only: other students' grades are in here.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as e:
            raise GradebookError(sqlite_problem(path, e)) from None
        conn, version = _connected(path)
        try:
            return cls._ready(conn, path, version)
        except sqlite3.DatabaseError as e:
            conn.close()
            if not _storage_error(e):
                raise
            raise GradebookError(sqlite_problem(path, e)) from None

    @classmethod
    def _ready(cls, conn: sqlite3.Connection, path: pathlib.Path, version: int) -> Gradebook:
        """The gradebook, created or brought up to date from schema ``version`` (read before any lock: ``migrate``
        reads it again inside each write transaction)."""
        if version > SCHEMA_VERSION:
            conn.close()
            raise GradebookError(f"{path} has schema version {version}; this grader reads up to {SCHEMA_VERSION}. "
                                 "Upgrade the grader.")
        if version < SCHEMA_VERSION:
            try:
                migrate(conn, path)
            except GradebookError:
                conn.close()
                raise
        return cls(conn, path)

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        self.conn.close()
        if self._batch_lock is not None:
            os.close(self._batch_lock)  # releases the lock
            self._batch_lock = None

    def hold_for_batch(self) -> None:
        """Hold an advisory lock on ``<gradebook>.lock`` until this gradebook closes: a second batch grading into the
        same gradebook meanwhile is refused, where both would grade every submission (SQLite keeps the writes
        consistent, not the work). The lock goes with the process, however it ends."""
        import fcntl

        lock = pathlib.Path(f"{self.path}.lock")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise GradebookError(sqlite_problem(lock, e)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            raise GradebookError(f"{self.path} is being graded into by another `grader grade` now"
                                 + (f" (process {holder})" if holder.isdigit() else "") + ": wait for it to finish, "
                                 "or stop it (Ctrl-C keeps what it graded), then run this one; it grades only what "
                                 "is left.") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._batch_lock = fd

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, kind, error, trace) -> None:
        self.close()
        if error is not None and _storage_error(error):
            # A file damaged or made read-only under a command: one line for the user, not a traceback.
            raise GradebookError(sqlite_problem(self.path, error)) from None

    def ensure_writable(self) -> None:
        """Refuse now, before any work, a gradebook that could not store a result (read-only file or folder)."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(f"PRAGMA user_version={self.schema_version()}")  # a real write, rolled back
            self.conn.rollback()
        except sqlite3.DatabaseError as e:
            if self.conn.in_transaction:
                self.conn.rollback()
            raise GradebookError(sqlite_problem(self.path, e)) from None

    # --- writing ---------------------------------------------------------------------

    def record(self, result: SubmissionResult, path: str, grader_version: str, hidden_included: bool,
               artifacts: dict | None = None, secret_fingerprint: str = "") -> int:
        """Store one graded submission in a single transaction; returns the run id."""
        sha = result.notebook_sha256 or "unreadable"
        with self.conn:
            self.conn.execute("INSERT OR IGNORE INTO students(name) VALUES (?)", (result.student,))
            student_id = self.conn.execute("SELECT id FROM students WHERE name=?", (result.student,)).fetchone()[0]
            self.conn.execute("INSERT OR IGNORE INTO submissions(student_id, exercise, sha256, path, first_seen) "
                              "VALUES (?, ?, ?, ?, ?)", (student_id, result.exercise, sha, path, _now()))
            submission_id = self.conn.execute(
                "SELECT id FROM submissions WHERE student_id=? AND exercise=? AND sha256=?",
                (student_id, result.exercise, sha)).fetchone()[0]
            cursor = self.conn.execute(
                "INSERT INTO runs(submission_id, status, score, max_score, error, traceback, grader_version, "
                "hidden_included, started_at, duration_s, timings, sandbox, pending, artifacts, note, "
                "secret_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (submission_id, result.status.value, result.score, result.max_score, result.error, result.traceback,
                 grader_version, int(hidden_included), _now(), float(result.timings.get("wall", 0.0)),
                 json.dumps(result.timings), json.dumps(result.sandbox),
                 json.dumps([p.__dict__ for p in result.pending]), json.dumps(artifacts or {}), result.note,
                 secret_fingerprint))
            run_id = cursor.lastrowid
            self.conn.executemany(
                "INSERT INTO check_results(run_id, position, check_id, title, kind, passed, points, max_points, "
                "visibility, message, metrics, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, i, c.id, c.title, c.kind, int(c.passed), c.points, c.max_points, c.visibility, c.message,
                  json.dumps(c.metrics), json.dumps(c.details)) for i, c in enumerate(result.checks)])
        return run_id

    # --- reading ---------------------------------------------------------------------

    def current_hash(self, student: str, exercise: str) -> tuple[str, str, bool] | None:
        """(sha256, grader version, hidden included) of the student's current run, if any."""
        row = self.conn.execute("SELECT sha256, grader_version, hidden_included FROM current_runs "
                                "WHERE student=? AND exercise=?", (student, exercise)).fetchone()
        return (row[0], row[1], bool(row[2])) if row else None

    def current_note(self, student: str, exercise: str) -> str | None:
        """The note of the student's current run (e.g. which notebook was graded), if there is one."""
        row = self.conn.execute("SELECT note FROM current_runs WHERE student=? AND exercise=?",
                                (student, exercise)).fetchone()
        return row[0] if row else None

    def secret_fingerprints(self) -> dict[str, list[str]]:
        """The secret fingerprints of the current results (those recorded with one), each with its assignments."""
        rows = self.conn.execute("SELECT DISTINCT secret_fingerprint, exercise FROM current_runs "
                                 "WHERE secret_fingerprint != '' ORDER BY exercise").fetchall()
        found: dict[str, list[str]] = {}
        for fingerprint, exercise in rows:
            found.setdefault(fingerprint, []).append(exercise)
        return found

    def current_paths(self, exercise: str, secret_other_than: str | None = None) -> dict[str, str]:
        """{student: the path of the submission graded} for the current results of ``exercise``; with
        ``secret_other_than``, only those recorded with another secret than that fingerprint."""
        other = " AND secret_fingerprint != '' AND secret_fingerprint != ?" if secret_other_than is not None else ""
        rows = self.conn.execute(f"SELECT student, path FROM current_runs WHERE exercise=?{other} ORDER BY student",
                                 (exercise,) + ((secret_other_than,) if secret_other_than is not None else ()))
        return dict(rows.fetchall())

    def durations(self, exercise: str) -> dict[str, float]:
        """Seconds each student's current run of ``exercise`` took: how long the next one is expected to take."""
        rows = self.conn.execute("SELECT student, duration_s FROM current_runs WHERE exercise=?", (exercise,))
        return {student: float(seconds) for student, seconds in rows}

    def exercises(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT exercise FROM current_runs ORDER BY exercise")]

    def students(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM students ORDER BY name")]

    def current_runs(self, exercise: str | None = None) -> Iterator[StoredRun]:
        query = "SELECT * FROM current_runs" + (" WHERE exercise=?" if exercise else "") + " ORDER BY exercise, student"
        for row in self._rows(query, (exercise,) if exercise else ()):
            yield self._stored(row)

    def _rows(self, query: str, args: tuple = ()) -> list[sqlite3.Row]:
        self.conn.row_factory = sqlite3.Row
        try:
            return self.conn.execute(query, args).fetchall()
        finally:
            self.conn.row_factory = None

    def _stored(self, row: sqlite3.Row) -> StoredRun:
        checks = tuple(
            CheckResult(id=c["check_id"], passed=bool(c["passed"]), points=c["points"], max_points=c["max_points"],
                        visibility=c["visibility"], message=c["message"], title=c["title"], kind=c["kind"],
                        metrics=json.loads(c["metrics"]), details=json.loads(c["details"]))
            for c in self._rows("SELECT * FROM check_results WHERE run_id=? ORDER BY position", (row["id"],)))
        result = SubmissionResult(
            exercise=row["exercise"], student=row["student"], status=Status(row["status"]), checks=checks,
            error=row["error"], pending=tuple(PendingCheck(**p) for p in json.loads(row["pending"])),
            traceback=row["traceback"], timings=json.loads(row["timings"]), notebook_sha256=row["sha256"],
            sandbox=json.loads(row["sandbox"]), note=row["note"])
        return StoredRun(row["id"], result, row["path"], row["started_at"], row["duration_s"], row["grader_version"],
                         json.loads(row["artifacts"]), row["secret_fingerprint"])

    def run_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM runs").fetchone()[0]
