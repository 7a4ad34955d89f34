"""Keeping a gradebook safe: SQLite's integrity check, and a consistent copy with SQLite's online backup.

Both open the file without migrating it, so an old or damaged gradebook is examined or copied as it is:
a backup taken before an upgrade is the gradebook as the old grader left it.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from grader.store.gradebook import SCHEMA_VERSION, GradebookError, sqlite_problem

MAX_PROBLEMS = 20  # what integrity_check reports at most; one damaged page can yield thousands of lines


@dataclass(frozen=True)
class Health:
    """What SQLite's integrity check found, and what the file holds."""

    path: pathlib.Path
    problems: tuple[str, ...]  # empty when the check passed
    schema_version: int = 0
    students: int = 0
    runs: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


class Damaged(GradebookError):
    """A gradebook SQLite cannot read: ``reason`` is SQLite's own words."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@contextlib.contextmanager
def _connection(path: pathlib.Path, read_only: bool) -> Iterator[sqlite3.Connection]:
    """The gradebook at ``path``, opened as it is: no migration, nothing created."""
    if not path.is_file():
        raise GradebookError(f"no gradebook at {path}")
    uri = f"file:{path.resolve()}?mode=ro" if read_only else f"file:{path.resolve()}?mode=rw"
    conn = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        try:
            conn.execute("PRAGMA user_version").fetchone()
        except sqlite3.OperationalError:
            if not read_only:
                raise
            # In a read-only folder SQLite cannot make its shared-memory file; nothing can write there either,
            # so the file is read as immutable.
            conn.close()
            conn = sqlite3.connect(uri + "&immutable=1", uri=True, timeout=30)
        yield conn
    except sqlite3.DatabaseError as e:
        if isinstance(e, (sqlite3.IntegrityError, sqlite3.ProgrammingError)):
            raise
        if "not a database" in str(e):
            raise GradebookError(f"{path} is not a gradebook: {e}") from None
        if "malformed" in str(e) or "corrupt" in str(e):
            raise Damaged(sqlite_problem(path, e), str(e)) from None
        raise GradebookError(sqlite_problem(path, e)) from None
    finally:
        conn.close()


def _version(conn: sqlite3.Connection, path: pathlib.Path) -> int:
    """The schema version; an error for a file that is not a gradebook at all."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if version < 1 or not {"students", "runs"} <= tables:
        raise GradebookError(f"{path} is an SQLite file but not a gradebook")
    return version


def check(path: str | pathlib.Path) -> Health:
    """Run ``PRAGMA integrity_check`` (and the foreign keys' check) on the gradebook, read-only."""
    path = pathlib.Path(path)
    try:
        return _check(path)
    except Damaged as e:  # too damaged to read even the schema
        return Health(path, (e.reason,))


def _check(path: pathlib.Path) -> Health:
    with _connection(path, read_only=True) as conn:
        version = _version(conn, path)
        try:
            problems = [r[0] for r in conn.execute(f"PRAGMA integrity_check({MAX_PROBLEMS})") if r[0] != "ok"]
            problems += [f"row {rowid} of {table} refers to a missing row of {parent}"
                         for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check")][:MAX_PROBLEMS]
            if problems:
                return Health(path, tuple(problems), version)
            students, runs = conn.execute("SELECT (SELECT count(*) FROM students), (SELECT count(*) FROM runs)"
                                          ).fetchone()
        except sqlite3.DatabaseError as e:  # damage bad enough that the check itself cannot read the file
            return Health(path, (str(e),), version)
    return Health(path, (), version, students, runs)


def backup(path: str | pathlib.Path, out: str | pathlib.Path) -> Health:
    """Copy the gradebook to ``out`` with SQLite's online backup (consistent even while a batch writes to it).

    The copy is written beside ``out`` first and renamed once whole and checked, readable by the owner only;
    an existing ``out`` is never overwritten. Returns the copy's integrity check.
    """
    path, out = pathlib.Path(path), pathlib.Path(out)
    if out.exists():
        raise GradebookError(f"{out} exists already: choose another --out (a backup never overwrites a file)")
    if out.resolve() == path.resolve():
        raise GradebookError("--out must differ from the gradebook itself")
    partial = out.with_name(f".{out.name}.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    except OSError as e:
        raise GradebookError(f"cannot write the backup {out}: {e.strerror or e}") from None
    try:
        with _connection(path, read_only=True) as source:
            _version(source, path)
            target = sqlite3.connect(partial)
            try:
                source.backup(target)  # page by page; restarts by itself when a writer changes a copied page
                target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            finally:
                target.close()
        health = check(partial)
        if not health.ok:
            raise GradebookError(f"the copy of {path} fails SQLite's integrity check ({health.problems[0]}); "
                                 "the gradebook itself may be damaged: run `grader gradebook check`")
        os.replace(partial, out)
    except sqlite3.DatabaseError as e:
        raise GradebookError(sqlite_problem(path, e)) from None
    finally:
        partial.unlink(missing_ok=True)
    return Health(out, (), health.schema_version, health.students, health.runs)


def describe_version(version: int) -> str:
    if version < SCHEMA_VERSION:
        return f"schema version {version} (this grader migrates it to {SCHEMA_VERSION} when it next writes)"
    if version > SCHEMA_VERSION:
        return f"schema version {version} (newer than this grader's {SCHEMA_VERSION}: upgrade the grader)"
    return f"schema version {version}"
