"""The course configuration (grader.toml) and the roster: init, discovery, validation, flag overrides, import.

No kernel runs here: the class is graded on a quiz (tests/files/course), which scores answers files.
"""

import argparse
import csv
import pathlib
import re
import shutil
import stat

import pytest
from grading_support import FILES, run_cli

from grader.commands.grade import apply_course_config
from grader.specs.config import (ClusterSettings, ConfigError, KubernetesSettings, SlurmSettings, TlsSettings,
                                 discover, find_config, load_config)
from grader.specs.late import LatePolicy
from grader.specs.roster import RosterEntry, RosterError, read_roster
from grader.specs.toml import SpecError
from grader.store.gradebook import Gradebook
from grader.store.roster import load_roster

COURSE = FILES / "course"


def test_init_writes_a_commented_config_that_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "init")
    assert code == 0 and out.startswith(f"wrote {tmp_path / 'grader.toml'}: course 'Training dynamics in PyTorch, ")
    text = (tmp_path / "grader.toml").read_text()
    assert text.count("\n# ") >= 10 and "# A submission more than max_days late scores 0." in text
    config = load_config(tmp_path / "grader.toml")
    assert set(config.assignments) >= {"tiny-model", "random-seeds", "schedulers", "early-stopping", "convergence"}
    assert all(t.due is not None and t.due.tzinfo is not None for t in config.assignments.values())
    assert config.late_policy == LatePolicy(10, 5, 0)
    assert config.gradebook == tmp_path / "gradebook.sqlite" and config.roster == tmp_path / "roster.csv"
    assert config.secret_file == tmp_path / "instructor.secret" and config.executor == "local"

    code, _, err = run_cli(capsys, "init")
    assert code == 2 and "grader.toml exists already; edit it, or pass --force" in err
    assert run_cli(capsys, "init", "--force")[0] == 0
    assert run_cli(capsys, "init", "--config", tmp_path / "term2" / "course.toml")[0] == 0
    assert load_config(tmp_path / "term2" / "course.toml").name.startswith("Training dynamics")


def test_the_config_is_found_in_the_current_folder_or_above_or_from_config(tmp_path, monkeypatch, capsys):
    shutil.copy(COURSE / "grader.toml", tmp_path / "grader.toml")
    deep = tmp_path / "week1" / "submissions"
    deep.mkdir(parents=True)
    assert find_config(deep) == tmp_path / "grader.toml"
    monkeypatch.chdir(deep)
    config = discover()
    assert config.name == "Training dynamics, test term" and config.workers == 1
    assert config.gradebook == tmp_path / "gradebook.sqlite"  # relative to the file, not the current folder
    assert find_config(tmp_path.parent) != tmp_path / "grader.toml"  # never below the start
    with pytest.raises(ConfigError, match=r"--config .*nowhere.toml: no such file"):
        discover(tmp_path / "nowhere.toml")
    code, _, err = run_cli(capsys, "export", "--format", "csv", "--config", tmp_path / "nowhere.toml")
    assert code == 2 and "no such file (`grader init` writes an example)" in err


@pytest.mark.parametrize("edit, message", [
    (("timezone = \"Europe/Berlin\"", "timezone = \"Europe/Berlln\""),
     "course.timezone: expected an IANA time zone such as Europe/Berlin or UTC, got 'Europe/Berlln'"),
    (("[assignments.lr-schedulers]", "[assignments.lr-schedulerz]"),
     "assignments.lr-schedulerz: no exercise or quiz has this id (known: "),
    (("timezone = \"Europe/Berlin\"\n", ""),
     ("assignments.convergence.due: 2027-03-05T23:59:00 has no UTC offset: add one (2027-03-05T23:59:00+01:00) or "
      "set course.timezone")),
    (("due = 2027-03-05T23:59:00", "due = 2027-03-05"),
     "assignments.convergence.due: expected a date and time (2027-03-05T23:59:00), got the date 2027-03-05"),
    (("due = 2027-03-05T23:59:00", "due = \"5 March\""),
     "assignments.convergence.due: expected a date and time (2027-03-05T23:59:00), got '5 March'"),
    (("workers = 1", "workers = 0"), "grading.workers: expected an integer >= 1, got 0"),
    (("workers = 1", "executor = \"slurm\""), "grading.executor: expected one of local, dask, got 'slurm'"),
    (("percent_per_day = 10", "percent_per_day = 150"),
     "late_policy.percent_per_day: expected a percentage from 0 to 100, got 150"),
    (("max_days = 2", "max_day = 2"), "assignments.lr-schedulers.late_policy.max_day: unknown field (a typo?)"),
    (("\"1003\" = { convergence = 2 }", "\"1003\" = { convergence = -2 }"),
     "extensions.1003.convergence: expected a number >= 0.0, got -2"),
    (("[grading]", "[graading]"), "graading: unknown field (a typo?)"),
])
def test_config_mistakes_name_the_file_and_the_field(tmp_path, edit, message):
    path = tmp_path / "grader.toml"
    text = (COURSE / "grader.toml").read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(SpecError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: {message}")


CLUSTER = """
[cluster]
connect_timeout = 20
worker_timeout = 900.5
reconnect_timeout = 4
mnist_root = "/shared/mnist"
gpu_exercises = ["mnist-sgd", "mnist-adam"]
dashboard = ""

[cluster.tls]
ca_file = "tls/ca.pem"
cert = "tls/grader.pem"
key = "tls/grader-key.pem"

[cluster.slurm]
queue = "cpu"
account = "cs101"
walltime = "1-02:00:00"
memory = "8GB"
cores = 2
jobs = 10
lifetime_margin = "10m"
python = "/shared/venv/bin/python"
job_extra = ["--gres=gpu:1"]
prologue = ["module load cuda"]
log_directory = "slurm-logs"

[cluster.kubernetes]
image = "ghcr.io/course/grader:2026"
namespace = "grading"
workers = 4
cpu = 2
memory = "8Gi"
gpu = 1
"""


def _course_with(tmp_path: pathlib.Path, extra: str, grading: str = "") -> pathlib.Path:
    path = tmp_path / "grader.toml"
    text = (COURSE / "grader.toml").read_text().replace("workers = 1\n", f"workers = 1\n{grading}\n", 1)
    path.write_text(text + extra)
    return path


def test_the_cluster_table_loads_with_paths_relative_to_the_file(tmp_path):
    config = load_config(_course_with(tmp_path, CLUSTER, grading='cluster = "slurm"'))
    assert config.cluster_kind == "slurm" and config.executor is None
    assert config.cluster == ClusterSettings(
        connect_timeout=20.0, worker_timeout=900.5, reconnect_timeout=4.0, mnist_root=pathlib.Path("/shared/mnist"),
        gpu_exercises=("mnist-sgd", "mnist-adam"), dashboard="",
        tls=TlsSettings(tmp_path / "tls/ca.pem", tmp_path / "tls/grader.pem", tmp_path / "tls/grader-key.pem"),
        slurm=SlurmSettings(queue="cpu", account="cs101", walltime="1-02:00:00", memory="8GB", cores=2, jobs=10,
                            lifetime_margin="10m", python="/shared/venv/bin/python", job_extra=("--gres=gpu:1",),
                            prologue=("module load cuda",), log_directory=tmp_path / "slurm-logs"),
        kubernetes=KubernetesSettings(image="ghcr.io/course/grader:2026", namespace="grading", workers=4, cpu="2",
                                      memory="8Gi", gpu=1))
    assert (config.cluster.slurm.walltime_s, config.cluster.slurm.lifetime_margin_s) == (93600, 600.0)
    bare = load_config(COURSE / "grader.toml")
    assert bare.cluster == ClusterSettings() and bare.cluster_kind is None
    address = load_config(_course_with(tmp_path, "", grading='cluster = "tls://head.example:8786"'))
    assert address.cluster_kind == "tls://head.example:8786" and address.cluster.slurm is None


@pytest.mark.parametrize("edit, message", [
    (('walltime = "1-02:00:00"', 'walltime = "2h"'),
     "cluster.slurm.walltime: expected HH:MM:SS or D-HH:MM:SS (\"02:00:00\", \"1-00:00:00\"), got '2h'"),
    (('walltime = "1-02:00:00"', 'walltime = "02:75:00"'), "cluster.slurm.walltime: expected HH:MM:SS or D-HH:MM:SS"),
    (('walltime = "1-02:00:00"', 'walltime = "00:05:00"'),
     "cluster.slurm.lifetime_margin: 10m must be more than 0 and less than the walltime 00:05:00"),
    (('lifetime_margin = "10m"', 'lifetime_margin = "ten minutes"'),
     "cluster.slurm.lifetime_margin: expected a duration such as \"10m\", \"90s\" or \"1h30m\", got 'ten minutes'"),
    (('memory = "8GB"', 'memory = "8 gigs"'),
     "cluster.slurm.memory: expected a size such as \"8GB\" or \"8GiB\", got '8 gigs'"),
    (('memory = "8Gi"', 'memory = "8GB"'),
     "cluster.kubernetes.memory: expected a size such as \"8Gi\" or \"512Mi\" (Kubernetes' units), got '8GB'"),
    (("cpu = 2", 'cpu = "two"'), "cluster.kubernetes.cpu: expected a CPU count such as \"2\" or \"500m\", got 'two'"),
    (('image = "ghcr.io/course/grader:2026"', ""), "cluster.kubernetes.image: required field is missing"),
    (("connect_timeout = 20", "connect_timeout = 0"),
     "cluster.connect_timeout: expected a number of seconds > 0, got 0"),
    (("jobs = 10", "jobs = 0"), "cluster.slurm.jobs: expected an integer >= 1, got 0"),
    (("gpu = 1", "gpu = -1"), "cluster.kubernetes.gpu: expected an integer >= 0, got -1"),
    (("cores = 2", "cores = 2.5"), "cluster.slurm.cores: expected an integer, got 2.5"),
    (('key = "tls/grader-key.pem"', ""),
     "cluster.tls.key: required field is missing: TLS needs all three of ca_file, cert and key"),
    (("jobs = 10", "job = 10"), "cluster.slurm.job: unknown field (a typo?)"),
    (("dashboard = \"\"", "dashbord = \"\""), "cluster.dashbord: unknown field (a typo?)"),
    (('dashboard = ""', 'dashboard = "eight"'), "cluster.dashboard: expected an address such as \":8787\""),
    (('"mnist-adam"]', '"mnist-adamm"]'), "cluster.gpu_exercises: 'mnist-adamm': no exercise has this id (known: "),
    (('mnist_root = "/shared/mnist"', 'mnist_root = "data/mnist"'),
     "cluster.mnist_root: expected an absolute path as the workers see it, got 'data/mnist'"),
    (('job_extra = ["--gres=gpu:1"]', 'job_extra = ["#SBATCH --gres=gpu:1"]'),
     "cluster.slurm.job_extra: '#SBATCH --gres=gpu:1': write the option alone (\"--gres=gpu:1\"); #SBATCH is added"),
    (('prologue = ["module load cuda"]', 'prologue = "module load cuda"'),
     "cluster.slurm.prologue: expected a list, got 'module load cuda'"),
    (("[cluster.slurm]", "[cluster.slurmm]"), "cluster.slurmm: unknown field (a typo?)"),
])
def test_cluster_mistakes_name_the_file_and_the_field(tmp_path, edit, message):
    assert edit[0] in CLUSTER
    path = _course_with(tmp_path, CLUSTER.replace(edit[0], edit[1], 1))
    with pytest.raises(SpecError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: {message}")


@pytest.mark.parametrize("grading, message", [
    ('cluster = "slurmm"', "grading.cluster: expected one of local, slurm, kubernetes or a scheduler's address such "
                           "as tcp://head:8786, got 'slurmm'"),
    ('cluster = "kubernetes"', "grading.cluster: \"kubernetes\" needs a [cluster.kubernetes] table"),
])
def test_grading_cluster_is_a_kind_or_an_address(tmp_path, grading, message):
    path = _course_with(tmp_path, "", grading=grading)
    with pytest.raises(SpecError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: {message}")


def test_the_example_cluster_section_loads_once_uncommented(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "init")[0] == 0
    text = (tmp_path / "grader.toml").read_text()
    assert "\n# [cluster.slurm]" in text and "\n# cluster = \"slurm\"" in text
    (tmp_path / "grader.toml").write_text(re.sub(r"(?m)^# (?=\[cluster|[a-z_]+ = )", "", text))
    config = load_config(tmp_path / "grader.toml")
    assert config.cluster_kind == "slurm" and config.cluster.gpu_exercises == ("mnist-sgd", "mnist-adam")
    assert config.cluster.slurm.walltime == "02:00:00" and config.cluster.kubernetes.memory == "8Gi"
    assert config.cluster.tls.key == tmp_path / "tls" / "grader-key.pem"


def test_flags_override_the_config_which_overrides_the_defaults(tmp_path):
    config = load_config(COURSE / "grader.toml")
    given = argparse.Namespace(gradebook=tmp_path / "mine.sqlite", workers=3, executor="dask", scheduler="tcp://h:1")
    apply_course_config(given, config)
    assert (given.gradebook, given.workers, given.executor, given.scheduler) == (
        tmp_path / "mine.sqlite", 3, "dask", "tcp://h:1")
    left_open = argparse.Namespace(gradebook=None, workers=None, executor=None, scheduler=None)
    apply_course_config(left_open, config)
    assert (left_open.gradebook, left_open.workers, left_open.executor) == (COURSE / "gradebook.sqlite", 1, "local")
    bare = argparse.Namespace(gradebook=None, workers=None, executor=None, scheduler=None)
    apply_course_config(bare, None)
    assert bare.gradebook == pathlib.Path("gradebook.sqlite") and bare.workers >= 1 and bare.executor == "local"


def test_a_plain_roster_and_a_canvas_export_both_read():
    plain = read_roster(COURSE / "roster.csv")
    assert plain[0] == RosterEntry("1001", "Ada Lovelace", "ada@uni.example", "alovelace", "Section A", "51")
    assert [e.student_id for e in plain] == ["1001", "1002", "1003", "1004", "1005"]
    # Canvas's export: ID is Canvas's user id, SIS User ID the student id; "Points Possible" and the test student go.
    canvas = read_roster(COURSE / "canvas-export.csv")
    assert canvas == [RosterEntry("1001", "Lovelace, Ada", "", "alovelace", "Section A", "51"),
                      RosterEntry("1002", "Okafor, Ben", "", "bokafor", "Section A", "52")]
    assert plain[2].aliases() == {"1003", "cmartin", "cleo.martin@uni.example", "cleo.martin", "cleo_martin"}


@pytest.mark.parametrize("text, message", [
    ("name,email\nAda,ada@x.org\n", ("needs a student id column (student id, id, student number); its header is "
                                     "name, email")),
    ("id,name,email\n1,Ada,ada@x.org\n1,Ben,ben@x.org\n", "row 3: student id '1' is already on row 2"),
    ("id,name,email\n1,Ada,ada-at-x.org\n", "row 2: email: expected an email address, got 'ada-at-x.org'"),
    ("id,name\n1,\n", "row 2: name: must not be empty"),
    ("student id,id,name\n1,2,Ada\n", "columns 'student id' and 'id' both give the student id; keep one"),
])
def test_roster_mistakes_name_the_row_and_the_column(tmp_path, text, message):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    with pytest.raises(RosterError) as error:
        read_roster(path)
    assert str(error.value) == f"{path}: {message}"


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    """tests/files/course, its roster imported and its convergence quiz graded, from a folder below grader.toml."""
    root = tmp_path_factory.mktemp("term") / "course"
    shutil.copytree(COURSE, root)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GRADER_SECRET", raising=False)
        mp.chdir(root / "submissions")
        from grader.cli import main

        imported = _captured(main, ["roster", "import"])
        graded = _captured(main, ["grade", "convergence", "--exercise", "convergence"])
    return root, imported, graded


def _captured(main, argv):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def test_the_config_supplies_roster_gradebook_and_secret(term):
    root, (code, out), (graded, _) = term
    assert code == 0 and graded == 0
    assert out == f"imported 5 students from {root / 'roster.csv'}: 5 added, 0 removed, 0 changed\n"
    assert (root / "gradebook.sqlite").is_file()  # grading.gradebook, relative to grader.toml
    secret = root / "instructor.secret"  # grading.secret_file, created on the first grade, for the owner only
    assert secret.is_file() and stat.S_IMODE(secret.stat().st_mode) == 0o600
    with Gradebook.open(root / "gradebook.sqlite", create=False) as gradebook:
        assert [e.student_id for e in load_roster(gradebook)] == ["1001", "1002", "1003", "1004", "1005"]


def test_grading_reports_who_is_not_on_the_roster_and_who_handed_in_nothing(term):
    _, _, (_, out) = term
    text = " ".join(out.split())
    assert "1 name(s) handed in here match no one on the roster: zed" in text
    assert "1 student(s) on the roster have nothing handed in here: Finn Berg (1005)" in text


def test_the_csv_and_the_summary_page_show_unknown_and_missing_students(term, tmp_path, capsys, monkeypatch):
    root, _, _ = term
    monkeypatch.chdir(root)
    code, out, _ = run_cli(capsys, "export", "--format", "csv")
    assert code == 0
    rows = {row[0]: row for row in csv.reader(out.splitlines())}
    assert rows["name"][:4] == ["name", "student_id", "email", "submitted_as"]
    assert rows["Ada Lovelace"][:4] == ["Ada Lovelace", "1001", "ada@uni.example", "ada"]
    assert rows["Cleo Martin"][:4] == ["Cleo Martin", "1003", "cleo.martin@uni.example", "Cleo_Martin"]
    assert rows["zed"][:4] == ["zed", "", "", "zed"] and rows["zed"][-2] == "not on roster"
    assert rows["Finn Berg"][4:7] == ["", "5", "missing"] and rows["Finn Berg"][-2] == "no submission"
    assert rows["Ada Lovelace"][-2] == "on roster"

    assert run_cli(capsys, "feedback", "--out", tmp_path / "pages")[0] == 0
    index = (tmp_path / "pages" / "index.html").read_text()
    assert "<strong>Not on the roster:</strong> zed." in index
    assert "<strong>On the roster, no submission at all:</strong> Finn Berg (1005)." in index
    assert "<strong>No submission for convergence:</strong> Finn Berg (1005)" in index
    assert '1002<br><span class="tag">Ben Okafor (1002)</span>' in index


def test_a_roster_import_again_reports_what_changed_and_who_matches_no_one(term, tmp_path, capsys):
    root, _, _ = term
    book = tmp_path / "copy.sqlite"
    shutil.copy(root / "gradebook.sqlite", book)
    smaller = tmp_path / "roster.csv"
    smaller.write_text((root / "roster.csv").read_text().replace("1004,Dan Weiss,dan@uni.example,dweiss,Section B,54\n",
                                                                 "").replace("Section A,52", "Section C,52"))
    code, out, _ = run_cli(capsys, "roster", "import", smaller, "--gradebook", book)
    assert code == 0
    assert out.splitlines() == [
        f"imported 4 students from {smaller}: 0 added, 1 removed, 1 changed",
        "2 name(s) with results in the gradebook match no one on the roster: dan, zed",
        "1 student(s) on the roster have nothing with results in the gradebook: Finn Berg (1005)"]
