"""The files commands write for the user (HTML pages, CSV files, results.json): whole or not at all, never over one
of the command's inputs or over anything but a regular file, and a failure is one line that names the path.

A file is written to a temporary file beside it and renamed over the target, so no reader sees half a file. The
rename replaces whatever has the target's name, so a mistyped ``--out`` could swap a gradebook, a student's notebook
or a device node for a page: the commands check their outputs against their inputs before any work
(``check_output``), and the writer itself replaces nothing but a regular file.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import stat
import tempfile

from grader.errors import UserError
from grader.specs.paths import entry_kind


class OutputError(UserError):
    """An output the command must not or cannot write."""


def _kind(mode: int) -> str:
    """What a path that is not a regular file is, in words."""
    return "a folder" if stat.S_ISDIR(mode) else entry_kind(mode) or "not a regular file"


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _existing_kind(path: pathlib.Path) -> str | None:
    """None when ``path`` is free to write (absent, or a regular file), else what it is. ``stat`` follows a link:
    a link to a regular file is replaced by the new file, and the file it named is left as it was."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as e:  # e.g. a file where a folder of the path should be
        raise OutputError(f"cannot write {path}: {_reason(e)}") from None
    return None if stat.S_ISREG(mode) else _kind(mode)


def same_path(a: pathlib.Path, b: pathlib.Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same path once links and ``..`` are resolved, or one file under
    two names (a hard link)."""
    try:
        if pathlib.Path(a).resolve() == pathlib.Path(b).resolve():
            return True
        return os.path.samefile(a, b)
    except (OSError, RuntimeError):  # one does not exist (yet), or is a loop of links: not one file
        return False


def gradebook_files(gradebook: pathlib.Path, config=None) -> dict[str, pathlib.Path]:
    """A gradebook's files, and the course's, that no output may replace: what each is -> its path."""
    files = {"the gradebook": gradebook}
    for suffix, what in (("-wal", "write-ahead log"), ("-shm", "shared-memory index"), ("-journal", "journal")):
        files[f"the gradebook's SQLite {what}"] = gradebook.with_name(gradebook.name + suffix)
    files["the instructor secret"] = gradebook.with_name(gradebook.name + ".secret")
    if config is not None:
        files["the course configuration"] = config.path
        if config.secret_file:
            files["the instructor secret of grader.toml"] = config.secret_file
    return files


def check_output(path: pathlib.Path, option: str, inputs: dict[str, pathlib.Path], folder: bool = False) -> None:
    """Refuse, before the command does any work, an output that is one of its ``inputs`` (what it is -> path) or an
    existing path of the wrong kind: anything but a regular file, or with ``folder`` anything but a folder."""
    for what, source in inputs.items():
        if source is not None and same_path(path, source):
            raise OutputError(f"{option} {path} is {what}: writing there would replace it; choose another path")
    if folder:
        if path.exists() and not path.is_dir():
            raise OutputError(f"{option} {path} is not a folder: it names the folder to write the files into")
        return
    kind = _existing_kind(path)
    if kind is not None:
        raise OutputError(f"{option} {path} is {kind}, not a regular file: choose the path of a file to write")


def write_output(path: str | pathlib.Path, text: str) -> pathlib.Path:
    """Write ``text`` to ``path`` (UTF-8) through a temporary file beside it, creating the folders it needs.

    Replaces only a regular file; any failure (a read-only or full disk, a file where a folder should be) is an
    ``OutputError`` naming the path and the reason, and leaves no temporary file behind.
    """
    path = pathlib.Path(path)
    kind = _existing_kind(path)
    if kind is not None:
        raise OutputError(f"refusing to write {path}: it is {kind}, not a regular file")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own, so a file the user keeps as <name>.tmp is never overwritten or removed; short, so a
        # page whose own name is near the file system's limit can still be written.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".grader-", suffix=".tmp")
        tmp = pathlib.Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private; the page gets a new file's usual mode
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise OutputError(f"cannot write {path}: {_reason(e)}") from None
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
