"""``grader init``: write a commented example ``grader.toml`` for a course term."""

from __future__ import annotations

import argparse
import datetime as dt
import pathlib

from grader.errors import EXIT_OK, UserError

HEADER = '''# The course configuration. Every `grader` command reads it from the current folder or the nearest folder
# above (or from --config PATH); a command-line flag overrides what it says here. Paths are relative to
# this file. Check it with any command, e.g. `grader roster import`: a mistake names the field.

[course]
name = "Training dynamics in PyTorch, {term}"
timezone = "UTC"                     # for due dates and manifest times without an offset, e.g. "Europe/Berlin"
roster = "roster.csv"                # `grader roster import` reads it: student id, name, email (a Canvas export works)

[grading]
gradebook = "gradebook.sqlite"
secret_file = "instructor.secret"    # hidden checks' secret; created (mode 0600) on the first `grader grade`
workers = {workers}                          # parallel kernels
executor = "local"                   # or "dask", with scheduler = "tcp://HOST:8786"
# cluster = "slurm"                  # grade on a dask cluster: local, slurm, kubernetes or "tcp://HOST:8786"

# What lateness costs: this percent of the student's own score per started day after the deadline.
# A submission more than max_days late scores 0. An assignment can set its own [assignments.ID.late_policy].
[late_policy]
percent_per_day = 10
max_days = 5
grace_minutes = 0

# One table per exercise or quiz (`grader exercises` lists them). A due time without an offset is in
# course.timezone. canvas_column names the assignment in Canvas's gradebook: "Title (12345)" matches
# an existing assignment by its Canvas id; a new title makes Canvas create the assignment.
'''
ASSIGNMENT = '''[assignments.{id}]
due = {due}
canvas_column = "{title}"
'''
FOOTER = '''
# Extra days per student and assignment, keyed by student id, login, email or submission name.
# `grader extend STUDENT ASSIGNMENT --days N` records one in the gradebook, which takes precedence.
[extensions]
# "1001" = {{ {first} = 2 }}

# Grading on a dask cluster: grading.cluster above, or `grader grade ... --cluster slurm`. Uncomment what you
# use; the README's "Grading on a cluster" explains it. Every worker grades one submission at a time.
# [cluster]
# connect_timeout = 30               # seconds to reach the scheduler
# worker_timeout = 600               # seconds to wait for the first worker (a Slurm queue can be slow)
# reconnect_timeout = 10             # seconds the scheduler may be unreachable mid-batch
# mnist_root = "/shared/mnist"       # the MNIST bundle as the workers see it (an absolute path)
# gpu_exercises = ["mnist-sgd", "mnist-adam"]   # graded on workers that have a GPU
# dashboard = ":8787"                # the dashboard of a cluster the grader starts ("" for none)
#
# [cluster.slurm]                    # one single-threaded dask worker per job
# queue = "cpu"
# account = "cs101"
# walltime = "02:00:00"
# memory = "8GB"
# cores = 2                          # CPUs per job: the worker and the kernel it runs
# jobs = 10                          # default: --workers
# lifetime_margin = "10m"            # workers retire this long before the walltime ends
# python = "/shared/grader-venv/bin/python"     # default: the grader's own interpreter
# gpus = 0                           # GPUs per job (--gres=gpu:N)
# job_extra = ["--qos=normal"]       # more #SBATCH options
# prologue = ["module load cuda"]    # shell lines run before the worker
# log_directory = "slurm-logs"
#
# [cluster.kubernetes]               # worker pods, started by the dask operator
# image = "ghcr.io/course/grader:2026"
# namespace = "grading"
# workers = 10                       # default: --workers
# cpu = "2"
# memory = "8Gi"
# gpu = 0
#
# [cluster.tls]                      # encrypt the cluster and admit only holders of a certificate from this CA
# ca_file = "tls/ca.pem"
# cert = "tls/grader.pem"
# key = "tls/grader-key.pem"
'''


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="write a commented example grader.toml",
                       description="Write grader.toml (or the --config path) in the current folder: the course, "
                                   "roster, grading defaults, due dates and late policy, for you to edit.")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(run=run)


def example(assignments: list[tuple[str, str]], today: dt.date, workers: int = 4) -> str:
    """The example configuration: one assignment a week, due on Fridays at 23:59, from the Friday after ``today``."""
    friday = today + dt.timedelta(days=(4 - today.weekday()) % 7 or 7)
    blocks = [ASSIGNMENT.format(id=assignment_id, title=title.replace('"', "'"),
                                due=dt.datetime.combine(friday + dt.timedelta(weeks=i), dt.time(23, 59)).isoformat())
              for i, (assignment_id, title) in enumerate(assignments)]
    term = f"{'spring' if today.month < 7 else 'autumn'} {today.year}"
    first = assignments[0][0] if assignments else "tiny-model"
    return HEADER.format(term=term, workers=workers) + "\n".join(blocks) + FOOTER.format(first=first)


def run(args: argparse.Namespace) -> int:
    import os

    from grader.assignments.catalog import assignment_ids, load_assignment
    from grader.specs.config import CONFIG_NAME, load_config

    path = getattr(args, "config", None) or pathlib.Path(CONFIG_NAME)
    if path.exists() and not args.force:
        raise UserError(f"{path} exists already; edit it, or pass --force to replace it with the example")
    assignments = [(i, load_assignment(i).title) for i in assignment_ids()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(example(assignments, dt.date.today(), min(os.cpu_count() or 1, 8)), encoding="utf-8")
    config = load_config(path)  # what init writes must load: a test holds it to that
    print(f"wrote {path.resolve()}: course {config.name!r}, {len(config.assignments)} assignments with due dates, "
          f"late policy {config.late_policy.describe()}. Edit it, then `grader roster import`.")
    return EXIT_OK
