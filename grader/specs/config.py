"""The course configuration, ``grader.toml``: course, roster, grading defaults, due dates, late policy, extensions.

Every command finds it as pytest finds its configuration: ``--config PATH``, else ``grader.toml`` in
the current folder or the nearest folder above it. Command-line flags override what it says. It is
validated when it loads; a mistake names the file and the field::

    grader.toml: assignments.tiny-model.due: expected a date and time (2027-03-05T23:59:00), got '5 March'

Paths in it are relative to its own folder. Times written without a UTC offset are in
``course.timezone``; without one, they are refused rather than read in whatever zone the grading
machine happens to use.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo  # noqa: F401 - timedelta, timezone: doctests
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from grader.specs.late import LatePolicy
from grader.specs.paths import SPEC_FILE, exercises_root, quizzes_root, student_name
from grader.specs.toml import SpecError, Table, load_toml

CONFIG_NAME = "grader.toml"
EXECUTORS = ("local", "dask")


class ConfigError(SpecError):
    """A course configuration that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class AssignmentTerms:
    """When an assignment is due, what lateness costs, and its column in the Canvas gradebook."""

    id: str
    due: datetime | None = None  # aware; None: no deadline, nothing is late
    late_policy: LatePolicy = field(default_factory=LatePolicy)
    canvas_column: str = ""  # e.g. "Exercise 1 (4821)": Canvas matches "(id)" to an existing assignment


@dataclass(frozen=True)
class CourseConfig:
    path: pathlib.Path
    name: str = ""
    timezone: tzinfo | None = None  # for times written without a UTC offset; None: such times are refused
    roster: pathlib.Path | None = None
    gradebook: pathlib.Path | None = None
    secret_file: pathlib.Path | None = None
    workers: int | None = None
    executor: str | None = None
    scheduler: str | None = None
    late_policy: LatePolicy = field(default_factory=LatePolicy)  # for assignments that do not set their own
    assignments: dict[str, AssignmentTerms] = field(default_factory=dict)
    extensions: dict[tuple[str, str], float] = field(default_factory=dict)  # (student key casefolded, id) -> days

    def terms(self, assignment_id: str) -> AssignmentTerms:
        return self.assignments.get(assignment_id) or AssignmentTerms(assignment_id, None, self.late_policy)

    def extension(self, keys: Iterable[str], assignment_id: str) -> float | None:
        """Extra days granted here to the student known by any of ``keys`` (id, submission name, login, email)."""
        found = [days for k in keys if (days := self.extensions.get((k.casefold(), assignment_id))) is not None]
        return max(found) if found else None


def find_config(start: pathlib.Path | None = None) -> pathlib.Path | None:
    """``grader.toml`` in ``start`` (default: the current folder) or the nearest folder above it."""
    folder = (start or pathlib.Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / CONFIG_NAME).is_file():
            return candidate / CONFIG_NAME
    return None


def discover(explicit: pathlib.Path | None = None, start: pathlib.Path | None = None) -> CourseConfig | None:
    """The configuration at ``explicit`` (it must exist), else the one found from ``start``; None when none is."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"--config {explicit}: no such file (`grader init` writes an example)")
        return load_config(explicit)
    found = find_config(start)
    return load_config(found) if found else None


def known_assignments() -> list[str]:
    """Exercise and quiz ids, read from the course's folders (without loading their specs)."""
    exercises = sorted(p.parent.name for p in exercises_root().glob(f"*/{SPEC_FILE}"))
    return exercises + sorted(p.stem for p in quizzes_root().glob("*.toml"))


def load_config(path: pathlib.Path, known: Iterable[str] | None = None) -> CourseConfig:
    """Read and validate ``path``; ``known`` assignment ids default to the course's exercises and quizzes."""
    path = pathlib.Path(path)
    root = Table(load_toml(path), path, "")
    known = list(known if known is not None else known_assignments())
    course, grading = root.table("course"), root.table("grading")
    zone = _timezone(course)
    policy = late_policy(root.table("late_policy"), LatePolicy())
    config = CourseConfig(
        path=path, name=course.get("name", str, ""), timezone=zone, roster=_path(course, "roster"),
        gradebook=_path(grading, "gradebook"), secret_file=_path(grading, "secret_file"),
        workers=_workers(grading), executor=_executor(grading), scheduler=grading.get("scheduler", str, None),
        late_policy=policy, assignments=_assignments(root, known, zone, policy), extensions=_extensions(root, known))
    for table in (course, grading, root):
        table.reject_unknown()
    return config


def _path(table: Table, key: str) -> pathlib.Path | None:
    value = table.get(key, str, None)
    if value is None:
        return None
    if not value.strip():
        raise table.fail(key, "must not be empty")
    return (table.path.parent / pathlib.Path(value).expanduser()).resolve()


def _workers(table: Table) -> int | None:
    value = table.get("workers", int, None)
    if value is not None and value < 1:
        raise table.fail("workers", f"expected an integer >= 1, got {value!r}")
    return value


def _executor(table: Table) -> str | None:
    value = table.get("executor", str, None)
    if value is not None and value not in EXECUTORS:
        raise table.fail("executor", f"expected one of {', '.join(EXECUTORS)}, got {value!r}")
    return value


def _timezone(course: Table) -> tzinfo | None:
    name = course.get("timezone", str, None)
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise course.fail("timezone", f"expected an IANA time zone such as Europe/Berlin or UTC, got {name!r}") from None


def late_policy(table: Table, base: LatePolicy) -> LatePolicy:
    """The policy a table sets; each field it leaves out comes from ``base``."""
    percent = table.number("percent_per_day", base.percent_per_day)
    if percent > 100:
        raise table.fail("percent_per_day", f"expected a percentage from 0 to 100, got {percent!r}")
    max_days = table.get("max_days", int, base.max_days)
    if max_days is not None and max_days < 0:
        raise table.fail("max_days", f"expected a non-negative integer, got {max_days!r}")
    grace = table.number("grace_minutes", base.grace_minutes)
    table.reject_unknown()
    return LatePolicy(float(percent), max_days, float(grace))


def due_time(table: Table, key: str, zone: tzinfo | None) -> datetime | None:
    """An aware datetime from a TOML date-time; one without an offset is in the course's time zone."""
    value = table.get(key, (datetime, date), None, expected="a date and time (2027-03-05T23:59:00)")
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise table.fail(key, f"expected a date and time (2027-03-05T23:59:00), got the date {value}: say the time "
                              "too, e.g. 23:59")
    if value.tzinfo is None and zone is None:
        raise table.fail(key, f"{value.isoformat()} has no UTC offset: add one ({value.isoformat()}+01:00) or set "
                              "course.timezone (e.g. \"Europe/Berlin\")")
    return value if value.tzinfo else value.replace(tzinfo=zone)


def _assignments(root: Table, known: list[str], zone: tzinfo | None, policy: LatePolicy) -> dict[str, AssignmentTerms]:
    table = root.table("assignments")
    terms = {}
    for assignment_id in table.data:
        if assignment_id not in known:
            raise table.fail(assignment_id, f"no exercise or quiz has this id (known: {', '.join(known)})")
        entry = table.table(assignment_id)
        terms[assignment_id] = AssignmentTerms(
            assignment_id, due_time(entry, "due", zone), late_policy(entry.table("late_policy"), policy),
            entry.get("canvas_column", str, "").strip())
        entry.reject_unknown()
    return terms


def _extensions(root: Table, known: list[str]) -> dict[tuple[str, str], float]:
    table = root.table("extensions")
    days: dict[tuple[str, str], float] = {}
    for student in table.data:
        entry = table.table(student)
        for assignment_id in entry.data:
            if assignment_id not in known:
                raise entry.fail(assignment_id, f"no exercise or quiz has this id (known: {', '.join(known)})")
            # As submission names are read: "Cleo Martin" is the student whose name makes "Cleo_Martin".
            days[(student_name(student).casefold(), assignment_id)] = float(entry.number(assignment_id))
    return days


def parse_time(text: str, zone: tzinfo | None) -> datetime:
    """An ISO 8601 time (``2027-03-05T23:59:00+01:00``, ``...Z``, or with a space); ValueError says what is wrong.

    One without an offset is in ``zone``; with ``zone`` None it is refused, since the grading machine's own
    zone would decide who is late.
    """
    text = text.strip()
    try:
        # Python 3.10's parser does not know the "Z" that LMS exports write for UTC.
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 time such as 2027-03-05T23:59:00+01:00, got {text!r}") from None
    if moment.tzinfo is None:
        if zone is None:
            raise ValueError(f"{text!r} has no UTC offset: add one (+01:00, Z) or set course.timezone in "
                             f"{CONFIG_NAME}")
        moment = moment.replace(tzinfo=zone)
    return moment


def show_time(moment: datetime) -> str:
    """How pages and tables print a time: minutes, with its offset.

    >>> show_time(datetime(2027, 3, 5, 23, 59, 30, tzinfo=timezone(timedelta(hours=1))))
    '2027-03-05 23:59 +01:00'
    """
    offset = moment.strftime("%z")
    return moment.strftime("%Y-%m-%d %H:%M ") + (f"{offset[:3]}:{offset[3:]}" if offset else "UTC")


def resolve_gradebook(flag: pathlib.Path | None, config: CourseConfig | None,
                      default: pathlib.Path | None = None) -> pathlib.Path:
    """``--gradebook``, else the configuration's, else ``default``; a UserError when there is none of them."""
    path = flag or (config.gradebook if config else None) or default
    if path is None:
        where = f"{config.path} sets no grading.gradebook" if config else (
            f"no {CONFIG_NAME} was found in {os.getcwd()} or above")
        raise ConfigError(f"which gradebook? Pass --gradebook PATH ({where})")
    return path
