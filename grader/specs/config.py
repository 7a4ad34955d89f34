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
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo  # noqa: F401 - timedelta, timezone: doctests
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from grader.specs.late import LatePolicy, extension_problem
from grader.specs.paths import SPEC_FILE, exercises_root, quizzes_root, student_name
from grader.specs.toml import SpecError, Table, load_toml

CONFIG_NAME = "grader.toml"
EXECUTORS = ("local", "dask")
CLUSTER_KINDS = ("local", "slurm", "kubernetes")  # besides these, grading.cluster may be a scheduler's address


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
class TlsSettings:
    """distributed's TLS: one CA, and one certificate and key that the scheduler, the workers and the grader share."""

    ca_file: pathlib.Path
    cert: pathlib.Path
    key: pathlib.Path


@dataclass(frozen=True)
class SlurmSettings:
    """Slurm jobs, each one dask worker with one thread (one submission at a time), from dask-jobqueue."""

    queue: str | None = None  # the partition (#SBATCH -p); None: the site's default
    account: str | None = None  # #SBATCH -A
    walltime: str = "01:00:00"  # HH:MM:SS or D-HH:MM:SS
    memory: str = "4GB"  # per job, as dask writes sizes: "8GB", "8GiB", "8Gi"
    cores: int = 1  # CPUs booked per job (#SBATCH --cpus-per-task): the worker, its kernel and what that starts
    jobs: int | None = None  # how many jobs (workers); None: --workers or grading.workers
    lifetime_margin: str = "5m"  # workers retire this long before the walltime ends, so no job is killed mid-grade
    python: str | None = None  # the workers' interpreter; None: the grader's own (sys.executable)
    job_extra: tuple[str, ...] = ()  # extra #SBATCH options, written without "#SBATCH"
    prologue: tuple[str, ...] = ()  # shell lines before the worker starts (module load ..., source venv)
    log_directory: pathlib.Path | None = None  # the jobs' stdout and stderr
    interface: str | None = None  # the network interface of scheduler and workers ("ib0"); None: dask's choice
    gpus: int = 0  # GPUs per job: adds --gres=gpu:N (unless job_extra asks for GPUs) and the GPU=1 dask resource

    @property
    def walltime_s(self) -> int:
        return walltime_seconds(self.walltime)

    @property
    def lifetime_margin_s(self) -> float:
        return duration_seconds(self.lifetime_margin)


@dataclass(frozen=True)
class KubernetesSettings:
    """Worker pods that dask-kubernetes' operator starts: a DaskCluster resource in ``namespace``."""

    image: str  # an image with this grader (and the course) installed, the same version as the grader's
    namespace: str | None = None  # None: the kube config's current namespace
    workers: int | None = None  # pods; None: --workers or grading.workers
    cpu: str = "1"  # per worker pod, requested and the limit: "2", "500m"
    memory: str = "4Gi"  # per worker pod, requested and the limit: "8Gi", "512Mi"
    gpu: int = 0  # nvidia.com/gpu per worker pod; > 0 also gives each worker the GPU=1 dask resource


@dataclass(frozen=True)
class ClusterSettings:
    """grader.toml's [cluster]: how the grader starts, reaches and uses a dask cluster (``grading.cluster``)."""

    connect_timeout: float = 30.0  # seconds to reach the scheduler
    worker_timeout: float = 600.0  # seconds to wait for the first worker (a Slurm queue can be slow)
    reconnect_timeout: float = 10.0  # seconds the scheduler may be unreachable mid-batch before the rest is not graded
    mnist_root: pathlib.Path | None = None  # the MNIST bundle as the workers see it; None: their $MNIST_ROOT
    gpu_exercises: tuple[str, ...] = ()  # exercises graded on workers holding a GPU
    dashboard: str = ":8787"  # the dashboard of a scheduler the grader starts; "": none
    tls: TlsSettings | None = None
    slurm: SlurmSettings | None = None
    kubernetes: KubernetesSettings | None = None


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
    cluster_kind: str | None = None  # grading.cluster: local, slurm, kubernetes or a scheduler's address
    cluster: ClusterSettings = field(default_factory=ClusterSettings)

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
        late_policy=policy, assignments=_assignments(root, known, zone, policy), extensions=_extensions(root, known),
        cluster_kind=_cluster_kind(grading), cluster=cluster_settings(root.table("cluster"), known))
    if config.cluster_kind == "kubernetes" and config.cluster.kubernetes is None:
        raise grading.fail("cluster", "\"kubernetes\" needs a [cluster.kubernetes] table with the workers' image "
                                      "(image = \"ghcr.io/course/grader:2026\")")
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


def is_cluster_address(value: str) -> bool:
    """A dask scheduler's address, as ``--cluster`` and ``grading.cluster`` take it.

    >>> [is_cluster_address(v) for v in ("tcp://head:8786", "tls://10.0.0.5:8786", "head:8786", "slurm", "head")]
    [True, True, True, False, False]
    """
    return bool(re.fullmatch(r"[a-z][a-z0-9+]*://\S+|[\w.-]+:\d{1,5}", value))


def _cluster_kind(table: Table) -> str | None:
    value = table.get("cluster", str, None)
    if value is not None and value not in CLUSTER_KINDS and not is_cluster_address(value):
        raise table.fail("cluster", f"expected one of {', '.join(CLUSTER_KINDS)} or a scheduler's address such as "
                                    f"tcp://head:8786, got {value!r}")
    return value


def cluster_settings(table: Table, known: list[str]) -> ClusterSettings:
    """The [cluster] table; each field it leaves out keeps ClusterSettings' default."""
    base = ClusterSettings()
    gpu_exercises = _strings(table, "gpu_exercises")
    for exercise_id in gpu_exercises:
        if exercise_id not in known:
            raise table.fail("gpu_exercises", f"{exercise_id!r}: no exercise has this id (known: {', '.join(known)})")
    dashboard = table.get("dashboard", str, base.dashboard).strip()
    if dashboard and not re.fullmatch(r"[\w.-]*:\d{1,5}", dashboard):
        raise table.fail("dashboard", f"expected an address such as \":8787\" or \"0.0.0.0:8787\", or \"\" for none, "
                                      f"got {dashboard!r}")
    settings = ClusterSettings(
        connect_timeout=_positive(table, "connect_timeout", base.connect_timeout),
        worker_timeout=_positive(table, "worker_timeout", base.worker_timeout),
        reconnect_timeout=_positive(table, "reconnect_timeout", base.reconnect_timeout),
        mnist_root=_worker_path(table, "mnist_root"), gpu_exercises=gpu_exercises, dashboard=dashboard,
        tls=_tls(table), slurm=_slurm(table), kubernetes=_kubernetes(table))
    table.reject_unknown()
    return settings


def _positive(table: Table, key: str, default: float) -> float:
    value = table.get(key, (int, float), default, expected="a number of seconds")
    if value <= 0:
        raise table.fail(key, f"expected a number of seconds > 0, got {value!r}")
    return float(value)


def _count(table: Table, key: str, default: int | None, minimum: int = 1) -> int | None:
    value = table.get(key, int, default)
    if value is not None and value < minimum:
        raise table.fail(key, f"expected an integer >= {minimum}, got {value!r}")
    return value


def _strings(table: Table, key: str) -> tuple[str, ...]:
    values = table.get(key, list, [])
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise table.fail(key, f"expected a list of non-empty strings, got {value!r} in it")
    return tuple(value.strip() for value in values)


def _optional_text(table: Table, key: str) -> str | None:
    value = table.get(key, str, None)
    if value is not None and not value.strip():
        raise table.fail(key, "must not be empty (leave it out for the default)")
    return value.strip() if value is not None else None


def _worker_path(table: Table, key: str) -> pathlib.Path | None:
    """A path on the workers: never resolved here, so it must be absolute (their folders are not this one)."""
    value = _optional_text(table, key)
    if value is not None and not value.startswith("/"):
        raise table.fail(key, f"expected an absolute path as the workers see it, got {value!r}")
    return pathlib.Path(value) if value is not None else None


def _tls(parent: Table) -> TlsSettings | None:
    if "tls" not in parent.data:
        return None
    table = parent.table("tls")
    missing = [key for key in ("ca_file", "cert", "key") if key not in table.data]
    if missing:
        raise table.fail(missing[0], "required field is missing: TLS needs all three of ca_file, cert and key")
    tls = TlsSettings(_path(table, "ca_file"), _path(table, "cert"), _path(table, "key"))
    table.reject_unknown()
    return tls


def walltime_seconds(text: str) -> int:
    """Slurm's walltime, HH:MM:SS or D-HH:MM:SS, in seconds; ValueError for any other form.

    >>> walltime_seconds("02:00:00"), walltime_seconds("1-00:30:00")
    (7200, 88200)
    """
    match = re.fullmatch(r"(?:(\d+)-)?(\d+):([0-5]\d):([0-5]\d)", text.strip())
    if not match or (match[1] and int(match[2]) > 23):
        raise ValueError(f"expected HH:MM:SS or D-HH:MM:SS (\"02:00:00\", \"1-00:00:00\"), got {text!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def duration_seconds(text: str) -> float:
    """A duration such as "10m", "90s", "1h30m" in seconds; ValueError for any other form.

    >>> duration_seconds("10m"), duration_seconds("1h30m"), duration_seconds("2.5 min")
    (600.0, 5400.0, 150.0)
    """
    units = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    part = r"(\d+(?:\.\d+)?)\s*(h|min|m|sec|s)"
    if not re.fullmatch(rf"\s*(?:{part}\s*)+", text):
        raise ValueError(f"expected a duration such as \"10m\", \"90s\" or \"1h30m\", got {text!r}")
    return float(sum(float(number) * units[unit] for number, unit in re.findall(part, text)))


def _slurm(parent: Table) -> SlurmSettings | None:
    if "slurm" not in parent.data:
        return None
    table, base = parent.table("slurm"), SlurmSettings()
    walltime = table.get("walltime", str, base.walltime).strip()
    margin = table.get("lifetime_margin", str, base.lifetime_margin).strip()
    try:
        total = walltime_seconds(walltime)
    except ValueError as e:
        raise table.fail("walltime", str(e)) from None
    try:
        before = duration_seconds(margin)
    except ValueError as e:
        raise table.fail("lifetime_margin", str(e)) from None
    if not 0 < before < total:
        raise table.fail("lifetime_margin", f"{margin} must be more than 0 and less than the walltime {walltime}: "
                                            "workers retire this long before their job ends")
    job_extra = _strings(table, "job_extra")
    for line in job_extra:
        if line.startswith("#"):
            raise table.fail("job_extra", f"{line!r}: write the option alone (\"--gres=gpu:1\"); #SBATCH is added")
    settings = SlurmSettings(
        queue=_optional_text(table, "queue"), account=_optional_text(table, "account"), walltime=walltime,
        memory=_size(table, "memory", base.memory, r"\d+(\.\d+)?\s*[kKMGT](i?B|i)?", '"8GB" or "8GiB"'),
        cores=_count(table, "cores", base.cores), jobs=_count(table, "jobs", None), lifetime_margin=margin,
        python=_optional_text(table, "python"), job_extra=job_extra, prologue=_strings(table, "prologue"),
        log_directory=_path(table, "log_directory"), interface=_optional_text(table, "interface"),
        gpus=_count(table, "gpus", base.gpus, minimum=0))
    table.reject_unknown()
    return settings


def _size(table: Table, key: str, default: str, pattern: str, example: str) -> str:
    value = table.get(key, str, default).strip()
    if not re.fullmatch(pattern, value) or not float(re.match(r"\d+(\.\d+)?", value)[0]) > 0:
        raise table.fail(key, f"expected a size such as {example}, got {value!r}")
    return value


def _kubernetes(parent: Table) -> KubernetesSettings | None:
    if "kubernetes" not in parent.data:
        return None
    table, base = parent.table("kubernetes"), KubernetesSettings("")
    cpu = table.get("cpu", (str, int, float), base.cpu, expected="a CPU count such as \"2\" or \"500m\"")
    if not re.fullmatch(r"\d+(\.\d+)?m?", str(cpu).strip()) or not float(str(cpu).strip().rstrip("m")) > 0:
        raise table.fail("cpu", f"expected a CPU count such as \"2\" or \"500m\", got {cpu!r}")
    settings = KubernetesSettings(
        image=table.text("image"), namespace=_optional_text(table, "namespace"),
        workers=_count(table, "workers", None), cpu=str(cpu).strip(),
        memory=_size(table, "memory", base.memory, r"\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?",
                     '"8Gi" or "512Mi" (Kubernetes\' units)'),
        gpu=_count(table, "gpu", base.gpu, minimum=0))
    table.reject_unknown()
    return settings


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
            value = float(entry.number(assignment_id))
            if (problem := extension_problem(value)) is not None:  # TOML reads inf and nan as numbers
                raise entry.fail(assignment_id, problem)
            days[(student_name(student).casefold(), assignment_id)] = value
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
