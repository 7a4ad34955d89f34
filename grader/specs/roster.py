"""Read a roster CSV: student id, name and email per student, plus login, section and Canvas id when given.

Column names are matched loosely (``Student ID``, ``student_id`` and ``id`` are the same column), so a
registrar's list and Canvas's own gradebook export both read as they are. In a Canvas export, ``ID``
is Canvas's user id and ``SIS User ID`` the student id; its "Points Possible" row and test student,
which have no student id, are skipped. A mistake names the file, the row and the column.
"""

from __future__ import annotations

import csv
import io
import pathlib
import re
from dataclasses import dataclass

from grader.specs.paths import student_name
from grader.specs.toml import SpecError

# field -> the column names that mean it, normalised (lower case, single spaces)
COLUMNS = {
    "student_id": ("student id", "id", "student number", "sis user id", "sis id"),
    "name": ("name", "student", "student name", "full name"),
    "email": ("email", "e-mail", "email address"),
    "login": ("login", "sis login id", "username", "user name"),
    "section": ("section",),
    "canvas_id": ("canvas id", "canvas user id"),
}
NOT_STUDENTS = {"points possible", "student, test", "test student"}  # rows of a Canvas export without a student id


class RosterError(SpecError):
    """A roster file that cannot be read; the message names the file, and the row and column when it can."""


@dataclass(frozen=True)
class RosterEntry:
    student_id: str
    name: str
    email: str = ""
    login: str = ""
    section: str = ""
    canvas_id: str = ""

    def aliases(self) -> set[str]:
        """The names a submission of this student may carry (casefolded): id, login, email or its user part, name."""
        local = self.email.partition("@")[0]
        return {k.casefold() for k in (self.student_id, self.login, self.email, local, student_name(self.name)) if k}

    def label(self) -> str:
        """How reports name the student: ``Ada Lovelace (1001)``."""
        return f"{self.name} ({self.student_id})"


def _normal(header: str) -> str:
    return re.sub(r"[\s_]+", " ", header.strip().casefold())


def _columns(path: pathlib.Path, header: list[str]) -> dict[str, int]:
    """field -> column index; a Canvas export's ``ID`` is Canvas's user id, not the student id."""
    names = [_normal(h) for h in header]
    aliases = {alias: field for field, options in COLUMNS.items() for alias in options}
    if "sis user id" in names:
        aliases["id"] = "canvas_id"
    found: dict[str, int] = {}
    for index, name in enumerate(names):
        field = aliases.get(name)
        if field is None:
            continue
        if field in found:
            raise RosterError(f"{path}: columns {header[found[field]]!r} and {header[index]!r} both give the "
                              f"{field.replace('_', ' ')}; keep one")
        found[field] = index
    missing = [f for f in ("student_id", "name") if f not in found]
    if missing:
        wanted = " and ".join(f"a {f.replace('_', ' ')} column ({', '.join(COLUMNS[f][:3])})" for f in missing)
        raise RosterError(f"{path}: needs {wanted}; its header is {', '.join(header) or 'empty'}")
    return found


def read_roster(path: pathlib.Path) -> list[RosterEntry]:
    """The students listed in ``path``, in file order."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel writes a byte-order mark
    except (OSError, UnicodeDecodeError) as e:
        raise RosterError(f"{path}: cannot be read: {getattr(e, 'strerror', None) or e}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise RosterError(f"{path}: is empty; expected a header such as id,name,email and one row per student")
    columns = _columns(path, rows[0])
    entries: list[RosterEntry] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        values = {f: (row[i].strip() if i < len(row) else "") for f, i in columns.items()}
        if not values["student_id"] and values["name"].casefold() in NOT_STUDENTS:
            continue
        for field in ("student_id", "name"):
            if not values[field]:
                raise RosterError(f"{path}: row {number}: {rows[0][columns[field]]}: must not be empty")
        if values.get("email") and "@" not in values["email"]:
            raise RosterError(f"{path}: row {number}: {rows[0][columns['email']]}: expected an email address, got "
                              f"{values['email']!r}")
        if values["student_id"] in seen:
            raise RosterError(f"{path}: row {number}: student id {values['student_id']!r} is already on row "
                              f"{seen[values['student_id']]}")
        seen[values["student_id"]] = number
        entries.append(RosterEntry(**values))
    return entries


@dataclass(frozen=True)
class RosterMatch:
    """Submission names against the roster: who is whom, who is unknown, who handed in nothing."""

    matched: dict[str, RosterEntry]  # submission name -> the student
    unknown: list[str]  # names that match no one on the roster
    ambiguous: dict[str, list[RosterEntry]]  # names that match several students (shared login or name)
    missing: list[RosterEntry]  # students no name matches

    def entry(self, name: str) -> RosterEntry | None:
        return self.matched.get(name)


def match_roster(roster: list[RosterEntry], names: list[str]) -> RosterMatch:
    """Match each submission name to the student whose id, login, email (or its user part) or name it is.

    >>> ada = RosterEntry("1001", "Ada Lovelace", "ada@uni.example")
    >>> m = match_roster([ada, RosterEntry("1002", "Ben Ng")], ["ada", "zed"])
    >>> m.matched["ada"].student_id, m.unknown, [e.student_id for e in m.missing]
    ('1001', ['zed'], ['1002'])
    """
    by_key: dict[str, list[RosterEntry]] = {}
    for entry in roster:
        for key in entry.aliases():
            by_key.setdefault(key, []).append(entry)
    matched, unknown, ambiguous = {}, [], {}
    for name in sorted(set(names)):
        candidates = by_key.get(name.casefold(), [])
        if len(candidates) == 1:
            matched[name] = candidates[0]
        elif candidates:
            ambiguous[name] = candidates
        else:
            unknown.append(name)
    seen = {e.student_id for e in matched.values()}
    return RosterMatch(matched, unknown, ambiguous, [e for e in roster if e.student_id not in seen])
