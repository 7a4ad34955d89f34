"""When each hand-in was submitted: from the manifest ``submissions.csv`` when it lists it, else the file's time.

The manifest is what an LMS download says (``student,file,submitted_at``); a file's modification
time is only what the copy on this disk says, and copying or unzipping can change it, so pages and
the CSV always say which one was used. A student listed with several rows for the graded file
(resubmissions) gets the latest one.
"""

from __future__ import annotations

import csv
import io
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo

from grader.grading.discover import Found
from grader.specs.config import parse_time
from grader.specs.late import SubmissionTime
from grader.specs.paths import student_name
from grader.specs.toml import SpecError

MANIFEST_NAME = "submissions.csv"
COLUMNS = ("student", "file", "submitted_at")


class ManifestError(SpecError):
    """A manifest that cannot be read; the message names the file, the row and the column."""


@dataclass(frozen=True)
class ManifestRow:
    line: int
    student: str
    file: str
    at: datetime


def read_manifest(path: pathlib.Path, zone: tzinfo | None) -> list[ManifestRow]:
    """The rows of ``path``; times without a UTC offset are in ``zone`` (the course's), refused without one."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot be read: {getattr(e, 'strerror', None) or e}") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().casefold() for h in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ManifestError(f"{path}: needs the columns {', '.join(COLUMNS)}; missing {', '.join(missing)} (its "
                            f"header is {', '.join(reader.fieldnames or []) or 'empty'})")
    rows = []
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().casefold(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
        if not any(row.values()):
            continue
        if not row["student"]:
            raise ManifestError(f"{path}: row {line}: student: must not be empty")
        try:
            at = parse_time(row["submitted_at"], zone)
        except ValueError as e:
            raise ManifestError(f"{path}: row {line}: submitted_at: {e}") from None
        rows.append(ManifestRow(line, row["student"], row["file"].removeprefix("./"), at))
    return rows


def _names_file(row: ManifestRow, path: pathlib.Path, folder: pathlib.Path) -> bool:
    """Whether the row is about ``path``: its path under the submissions folder, its tail, or just its name."""
    if not row.file:
        return True
    relative = path.relative_to(folder).as_posix()
    return row.file in (relative, path.name) or relative.endswith("/" + row.file)


def _listed(item: Found, folder: pathlib.Path, rows: list[ManifestRow], keys: set[str]
            ) -> tuple[list[ManifestRow], list[ManifestRow]]:
    """(the rows for the student's graded file, all the student's rows); ``keys``: the names they go by."""
    mine = [r for r in rows if student_name(r.student).casefold() in keys]
    return [r for r in mine if _names_file(r, item.path, folder)], mine


def submission_time(item: Found, folder: pathlib.Path, rows: list[ManifestRow] | None, manifest: str,
                    keys: set[str], zone: tzinfo | None) -> SubmissionTime:
    """The time of one student's graded file: the latest manifest row for it, else the file's modification time."""
    listed, mine = _listed(item, folder, rows or [], keys)
    if listed:
        latest = max(listed, key=lambda r: r.at)
        more = f", the latest of {len(listed)}" if len(listed) > 1 else ""
        return SubmissionTime(latest.at.astimezone(zone) if zone else latest.at, "manifest",
                              f"{manifest} row {latest.line}{more}")
    mtime = datetime.fromtimestamp(item.path.stat().st_mtime, zone or timezone.utc)
    if rows is None:
        why = f"no {MANIFEST_NAME} in the submissions folder"
    elif mine:
        why = f"{manifest} lists {item.student} only with other files ({', '.join(sorted({r.file for r in mine}))})"
    else:
        why = f"{manifest} does not list {item.student}"
    return SubmissionTime(mtime, "mtime", why)


def submission_times(found: list[Found], folder: pathlib.Path, manifest: pathlib.Path | None, zone: tzinfo | None,
                     keys: Callable[[str], set[str]] = lambda name: {name.casefold()}
                     ) -> tuple[dict[str, SubmissionTime], list[ManifestRow]]:
    """Each found student's submission time, and the manifest rows that match no graded file."""
    rows = read_manifest(manifest, zone) if manifest else None
    graded = [item for item in found if item.path is not None]
    times = {item.student: submission_time(item, folder, rows, manifest.name if manifest else "", keys(item.student),
                                           zone) for item in graded}
    used = {r.line for item in graded for r in _listed(item, folder, rows or [], keys(item.student))[0]}
    return times, [r for r in rows or () if r.line not in used]
