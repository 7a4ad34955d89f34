"""Batch grading: one bad submission never stops a batch; SIGKILL and resume leave the same gradebook."""

import csv
import json
import os
import pathlib
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import nbformat
import pytest
from grading_support import FAST_CELL_TIMEOUT_S, FILES, command_line, one_value_spec, process_children, solution

from grader.assignments.catalog import load_exercise
from grader.cli import main
from grader.grading.secrets import fingerprint
from grader.commands.grade import grader_faults
from grader.results import CheckResult, Status, SubmissionResult
from grader.store.gradebook import SCHEMA_VERSION, Gradebook

TINY = FILES / "tiny-model"


def current(gradebook_path):
    with Gradebook.open(gradebook_path, create=False) as gb:
        return {run.result.student: run for run in gb.current_runs()}


def test_every_submission_gets_an_outcome(graded_class):
    _, gradebook = graded_class
    runs = current(gradebook)
    assert sorted(runs) == ["ada", "bob", "cara", "dave", "emma"]
    status = {name: run.result.status.value for name, run in runs.items()}
    assert status == {"ada": "ok", "bob": "timeout", "cara": "error", "dave": "invalid", "emma": "ok"}
    assert runs["ada"].result.score == 10  # hidden checks included: the secret came from the environment
    assert f"did not finish within {FAST_CELL_TIMEOUT_S} s" in runs["bob"].result.error
    assert "the kernel died (exit code 3)" in runs["cara"].result.error
    assert "not a Jupyter notebook" in runs["dave"].result.error
    assert runs["emma"].path.endswith("emma/tiny-model.ipynb")  # the notebook named after the exercise
    assert runs["emma"].result.note == ("2 notebooks: graded tiny-model.ipynb, the one named after the exercise; "
                                        "not graded: draft.ipynb")
    # Every result names the secret its hidden checks used, by fingerprint only.
    assert {run.secret_fingerprint for run in runs.values()} == {fingerprint(b"batch-test-secret")}


@pytest.mark.usefixtures("shared_kernel_factory")
def test_unchanged_submissions_are_skipped_and_regrade_keeps_history(graded_class, fast_exercises, monkeypatch, capsys,
                                                                     tmp_path):
    # On a copy: the graded class is shared by the other tests, which must see it as graded.
    folder, gradebook = tmp_path / "class", tmp_path / "gradebook.sqlite"
    shutil.copytree(graded_class[0], folder)
    shutil.copy(graded_class[1], gradebook)
    monkeypatch.setenv("GRADER_EXERCISES", str(fast_exercises))
    monkeypatch.setenv("GRADER_SECRET", "batch-test-secret")
    with Gradebook.open(gradebook, create=False) as gb:
        before = gb.run_count()
    assert main(["grade", str(folder), "--exercise", "tiny-model", "--gradebook", str(gradebook), "--json"]) == 0
    assert capsys.readouterr().out == ""  # nothing graded, nothing printed
    with Gradebook.open(gradebook, create=False) as gb:
        assert gb.run_count() == before
    (folder / "dave.ipynb").unlink()  # only dave's cheap (invalid) submission is regraded below
    (folder / "dave.ipynb").write_text("still not a notebook")
    assert main(["grade", str(folder), "--exercise", "tiny-model", "--gradebook", str(gradebook), "--json"]) == 0
    assert [json.loads(line)["student"] for line in capsys.readouterr().out.splitlines()] == ["dave"]
    with Gradebook.open(gradebook, create=False) as gb:
        assert gb.run_count() == before + 1
        assert len(list(gb.current_runs())) == 5  # history kept, one current result each


def test_the_gradebook_is_private_and_versioned(graded_class):
    _, gradebook = graded_class
    assert oct(gradebook.stat().st_mode & 0o777) == "0o600"
    assert sqlite3.connect(gradebook).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def _normalised(path) -> list:
    """The gradebook's content without the parts that differ between runs (ids, times, durations)."""
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT student, exercise, sha256, status, score, max_score, error FROM current_runs ORDER BY student").fetchall()
    checks = conn.execute(
        "SELECT s.name, c.check_id, c.passed, c.points, c.message FROM check_results c JOIN runs r ON r.id = c.run_id "
        "JOIN submissions sub ON sub.id = r.submission_id JOIN students s ON s.id = sub.student_id "
        "ORDER BY s.name, c.position").fetchall()
    counts = conn.execute("SELECT (SELECT count(*) FROM students), (SELECT count(*) FROM submissions), "
                          "(SELECT count(*) FROM runs)").fetchone()
    return [rows, checks, counts]


def _grade_command(folder, gradebook):
    return [sys.executable, "-m", "grader.cli", "grade", str(folder), "--exercise", "tiny-model",
            "--gradebook", str(gradebook), "--workers", "1"]


@pytest.mark.usefixtures("shared_kernel_factory")
def test_sigkill_midway_then_resume_equals_an_uninterrupted_run(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    for name, source in {"ada": solution("tiny-model"), "ben": TINY / "bigger-model.ipynb",
                         "cleo": TINY / "uses-reference.ipynb", "dan": TINY / "crash-midway.ipynb"}.items():
        shutil.copy(source, folder / f"{name}.ipynb")
    env = dict(os.environ, GRADER_SECRET="kill-test-secret")
    reference_book = tmp_path / "uninterrupted.sqlite"
    subprocess.run(_grade_command(folder, reference_book), env=env, check=True, capture_output=True, timeout=600)

    book = tmp_path / "interrupted.sqlite"
    proc = subprocess.Popen(_grade_command(folder, book), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if book.exists():
            try:
                if sqlite3.connect(book, timeout=1).execute("SELECT count(*) FROM runs").fetchone()[0] >= 1:
                    break
            except sqlite3.OperationalError:
                continue
    os.kill(proc.pid, signal.SIGKILL)  # the batch alone, mid-run, without warning: whatever it started must follow
    proc.wait(timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # its workers, the kernel factory, their kernels (orphaned, they graded on)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("processes of the killed batch still ran a minute later")
    partial = sqlite3.connect(book).execute("SELECT count(*) FROM runs").fetchone()[0]
    assert 1 <= partial < 4

    subprocess.run(_grade_command(folder, book), env=env, check=True, capture_output=True, timeout=600)
    assert _normalised(book) == _normalised(reference_book)
    assert _normalised(book)[2] == (4, 4, 4)  # nothing lost, nothing graded twice


def test_a_process_made_ready_to_fork_workers_did_their_first_notebook_s_work_and_still_has_one_thread():
    """What every worker's first notebook would build once is built before they fork, by an interpreter that stays
    single-threaded: a thread then would leave its locks held in every worker."""
    script = """
import json, nbformat
from grader.assignments.catalog import load_exercise
from grader.grading.engine import ready_to_fork
from grader.kernel import cells
from grader.kernel.factory_client import thread_count
ready_to_fork([load_exercise("tiny-model")])
threads, built = thread_count(), len(nbformat.validator.validators)
for minor in (4, nbformat.v4.nbformat_minor):  # what notebooks are saved in: their validators are built already
    nbformat.validate(nbformat.v4.new_notebook(nbformat_minor=minor))
print(json.dumps({"threads": threads, "packed": cells._compressed.cache_info().currsize,
                  "validators built later": len(nbformat.validator.validators) - built}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["threads"] == 1
    assert seen["packed"] == 2  # the prelude's probe and exporter
    assert seen["validators built later"] == 0


def test_a_kernel_factory_killed_midway_leaves_its_submission_ungraded_and_the_batch_incomplete(fast_exercises,
                                                                                                  tmp_path):
    """The grader's own kernel factory dies while a notebook runs: the kernel dies with it, which is not the
    student's doing. Nothing is stored for that submission, the batch names it and exits 4, so a rerun grades it."""
    from grader.kernel.factory import start_factory

    folder = tmp_path / "class"
    folder.mkdir()
    notebook = nbformat.read(solution("tiny-model"), as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell("import time\ntime.sleep(6)"))  # time to kill the factory
    nbformat.write(notebook, folder / "ada.ipynb")
    book = tmp_path / "gradebook.sqlite"
    with start_factory() as factory:
        assert factory.ready, factory.reason
        env = dict(os.environ, GRADER_EXERCISES=str(fast_exercises), **factory.shared_env())
        proc = subprocess.Popen(_grade_command(folder, book), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not process_children().get(factory.process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # ada's kernel, forked
        assert process_children().get(factory.process.pid), "no kernel was forked from the factory"
        time.sleep(1)
        factory.process.kill()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, out + err
    assert "1 submission(s) not graded because of the grader's own processes" in err
    assert "ada: the grader's kernel factory ended while this notebook ran" in err
    with Gradebook.open(book, create=False) as gb:
        assert list(gb.current_runs()) == []  # not an error 0/10: the next run grades it


@pytest.mark.usefixtures("shared_kernel_factory")
def test_a_kernel_that_cannot_start_is_tried_again_then_left_ungraded(tmp_path, monkeypatch, capsys):
    """A kernel that dies before the notebook's first cell (here a memory limit too small for Python itself) is the
    grader's machinery, not the student's work: it is tried once more, then nothing is stored and the batch exits 4."""
    (tmp_path / "exercises" / "probe").mkdir(parents=True)
    (tmp_path / "exercises" / "probe" / "spec.toml").write_text(one_value_spec("probe", memory_mb=40))
    monkeypatch.setenv("GRADER_EXERCISES", str(tmp_path / "exercises"))
    (tmp_path / "class").mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("probe = {'a': 1}")]),
                   tmp_path / "class" / "ada.ipynb")
    book = tmp_path / "gradebook.sqlite"
    assert main(["grade", str(tmp_path / "class"), "--exercise", "probe", "--gradebook", str(book)]) == 4
    err = capsys.readouterr().err
    assert "1 submission(s) not graded because of the grader's own processes" in err
    assert ("ada: the grader's kernel failed before the notebook's first cell ran (the kernel could not be started: "
            "Kernel died before replying to kernel_info; the sandbox's memory limit is 40 MB)") in err
    assert "Exception ignored" not in err and current(book) == {}


@pytest.mark.usefixtures("shared_kernel_factory")
def test_a_gradebook_in_the_temp_folder_is_hidden_from_kernels_that_still_start_in_it(tmp_path, monkeypatch, capsys):
    """Kernels never see the gradebook's folder. Kept in the temp folder, which holds each kernel's own sandbox, that
    folder cannot be covered whole: every kernel died before its first cell, and the batch blamed the grader."""
    (tmp_path / "exercises" / "probe").mkdir(parents=True)
    (tmp_path / "exercises" / "probe" / "spec.toml").write_text(one_value_spec("probe"))
    monkeypatch.setenv("GRADER_EXERCISES", str(tmp_path / "exercises"))
    book = pathlib.Path(tempfile.gettempdir()) / f"grades-{uuid.uuid4().hex[:8]}.sqlite"
    cell = f"import os\nprobe = {{'gradebook seen': os.path.exists({str(book)!r})}}"
    if os.geteuid() == 0:  # private mounts need root here (README, sandbox table)
        cell += "\nassert not probe['gradebook seen']"
    (tmp_path / "class").mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), tmp_path / "class" / "ada.ipynb")
    try:
        assert main(["grade", str(tmp_path / "class"), "--exercise", "probe", "--gradebook", str(book), "--json",
                     "--workers", "1"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert (result["status"], result["score"]) == ("ok", 1), result
    finally:
        for leftover in book.parent.glob(book.name + "*"):
            leftover.unlink()


def _fork_servers() -> list[int]:
    """This process's multiprocessing fork servers."""
    return [pid for pid in process_children().get(os.getpid(), []) if "multiprocessing.forkserver" in command_line(pid)]


@pytest.mark.usefixtures("shared_kernel_factory")
def test_a_threaded_callers_batches_start_their_workers_from_one_fork_server_in_its_current_environment(
        tmp_path, monkeypatch, capsys):
    """A caller with threads of its own (a notebook, pytest-xdist) cannot fork its workers; they come from one fork
    server kept for its later batches, yet each sees the caller's environment of the moment, not the server's."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("probe = {'ok': True}")])
    (tmp_path / "class").mkdir()
    nbformat.write(notebook, tmp_path / "class" / "ada.ipynb")
    done = threading.Event()
    threading.Thread(target=done.wait, daemon=True).start()  # whatever threads the caller runs
    scores, servers = [], []
    try:
        for points in (1, 3):  # two versions of one exercise, named by $GRADER_EXERCISES as each batch runs
            root = tmp_path / f"exercises-{points}"
            (root / "probe").mkdir(parents=True)
            spec = one_value_spec("probe").replace("points = 1", f"points = {points}")
            (root / "probe" / "spec.toml").write_text(spec)
            monkeypatch.setenv("GRADER_EXERCISES", str(root))
            assert main(["grade", str(tmp_path / "class"), "--exercise", "probe", "--json", "--workers", "1",
                         "--gradebook", str(tmp_path / f"book-{points}.sqlite")]) == 0
            scores.append(json.loads(capsys.readouterr().out)["max_score"])
            servers.append(_fork_servers())
    finally:
        done.set()
    assert scores == [1, 3]  # the second batch's worker read the exercise the caller named then
    assert len(servers[0]) == 1 and servers[1] == servers[0]  # one server, kept: no batch spawned its worker


@pytest.mark.usefixtures("shared_kernel_factory")
def test_dask_executor_grades_like_the_local_pool(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(solution("tiny-model"), folder / "ada.ipynb")
    shutil.copy(FILES / "not-a-notebook.ipynb", folder / "bob.ipynb")
    monkeypatch.setenv("GRADER_SECRET", "dask-test-secret")
    (tmp_path / "grader.toml").write_text('[cluster]\ndashboard = ""\n')  # no port 8787 for parallel tests
    code = main(["--config", str(tmp_path / "grader.toml"), "grade", str(folder), "--exercise", "tiny-model",
                 "--gradebook", str(tmp_path / "gb.sqlite"), "--executor", "dask", "--workers", "1", "--json"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(r["student"], r["status"], r["score"]) for r in lines} == {("ada", "ok", 10.0), ("bob", "invalid", 0)}


@pytest.mark.usefixtures("shared_kernel_factory")
def test_bad_arguments_are_user_errors(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "missing"), "--exercise", "tiny-model"]) == 2
    assert "is not a folder of submissions" in capsys.readouterr().err
    assert main(["grade", str(tmp_path), "--exercise", "nope", "--gradebook", str(tmp_path / "g.sqlite")]) == 2
    assert "unknown exercise or quiz 'nope' (known: early-stopping" in capsys.readouterr().err
    assert main(["grade", str(tmp_path), "--exercise", "tiny-model", "--gradebook", str(tmp_path / "g.sqlite")]) == 2
    assert f"{tmp_path} holds no submissions: expected one .ipynb file per student" in capsys.readouterr().err
    assert not (tmp_path / "g.sqlite").exists()  # nothing written for a wrong folder


# --- what instructors take away from a graded class ------------------------------------------------


def test_feedback_pages_are_self_contained_and_hide_hidden_data(feedback_dir):
    pages = sorted(p.relative_to(feedback_dir).as_posix() for p in feedback_dir.rglob("*.html"))
    assert pages == ["index.html"] + [f"tiny-model/{n}.html" for n in ("ada", "bob", "cara", "dave", "emma")]
    ada = (feedback_dir / "tiny-model" / "ada.html").read_text()
    assert "data:image/png;base64," in ada and "Decision boundary" in ada
    assert "fresh-data" in ada and "hidden" in ada
    assert "batch-test-secret" not in ada and "seed" not in ada.split("fresh-data")[1].split("</tr>")[0].lower()
    for page in feedback_dir.rglob("*.html"):
        html = page.read_text()
        assert "http://" not in html and "https://" not in html  # works offline
    bob = (feedback_dir / "tiny-model" / "bob.html").read_text()
    assert "Where your notebook stopped" in bob or f"did not finish within {FAST_CELL_TIMEOUT_S} s" in bob
    emma = (feedback_dir / "tiny-model" / "emma.html").read_text()
    assert ("<strong>Which notebook:</strong> 2 notebooks: graded tiny-model.ipynb, the one named after the exercise; "
            "not graded: draft.ipynb") in emma
    # cara's kernel died before any value was exported: one banner, and each check points to it.
    cara = (feedback_dir / "tiny-model" / "cara.html").read_text()
    assert cara.count("the kernel died (exit code 3)") == 1 and "What happened" not in cara
    assert "Nothing could be checked: the kernel died (exit code 3)" in cara
    assert cara.count("Needs your notebook to run to the end first: see the note above.") == 5


def test_class_summary_has_histogram_pass_rates_leaderboard_failures_and_times(feedback_dir):
    index = (feedback_dir / "index.html").read_text()
    assert "Pass rate per check" in index and "fits-training-data" in index
    assert "Leaderboard: fewest parameters" in index
    board = index.split("Leaderboard")[1].split("</table>")[0]
    ranked = re.findall(r"<td>(\w+)</td><td class=\"num\">(\d+)</td>", board)
    # Every model that fits, smallest first: bob's model fitted before his notebook hung.
    assert ranked == [("ada", "21"), ("bob", "21"), ("emma", "63")]
    assert "Failures grouped by reason" in index and "timeout" in index
    assert "run time median" in index


def test_csv_has_one_row_per_student_with_score_and_status(graded_class, tmp_path):
    _, gradebook = graded_class
    out = tmp_path / "grades.csv"
    assert main(["export", "--gradebook", str(gradebook), "--format", "csv", "--out", str(out)]) == 0
    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows[0] == ["name", "student_id", "email", "submitted_as", "tiny-model_score", "tiny-model_max",
                       "tiny-model_status", "tiny-model_raw", "tiny-model_late_penalty", "tiny-model_submitted_at",
                       "tiny-model_time_source", "total_score", "total_max", "roster", "notes"]
    by_name = {row[0]: row for row in rows[1:]}
    assert sorted(by_name) == ["ada", "bob", "cara", "dave", "emma"]
    assert by_name["ada"][4:8] == ["10", "10", "ok", "10"] and by_name["dave"][6] == "invalid"
    assert by_name["ada"][10] == "mtime" and by_name["ada"][8] == ""  # no manifest, no deadline: nothing taken off
    assert "not a Jupyter notebook" in by_name["dave"][-1]  # why an invalid submission was not graded
    # Why a run crashed or timed out, in a line (the notes column was empty for them)
    assert by_name["bob"][6] == "timeout" and by_name["bob"][-1].startswith("tiny-model: timeout: ")
    assert by_name["cara"][6] == "error" and by_name["cara"][-1].startswith("tiny-model: error: ")
    assert "\n" not in by_name["cara"][-1]
    assert by_name["ada"][-1] == "" and by_name["emma"][-1] == ("tiny-model: 2 notebooks: graded tiny-model.ipynb, the "
                                                                "one named after the exercise; not graded: draft.ipynb")


def test_gradescope_results_follow_the_schema(graded_class, tmp_path):
    _, gradebook = graded_class
    assert main(["export", "--gradebook", str(gradebook), "--format", "gradescope", "--out", str(tmp_path)]) == 0
    for student in ("ada", "bob", "cara", "dave", "emma"):
        results = json.loads((tmp_path / student / "results.json").read_text())
        assert set(results) <= {"score", "output", "tests", "stdout_visibility", "execution_time", "visibility"}
        assert isinstance(results["score"], (int, float)) and isinstance(results["tests"], list)
        for test in results["tests"]:
            assert {"name", "score", "max_score", "output", "visibility"} <= set(test)
            assert test["visibility"] in {"hidden", "after_due_date", "after_published", "visible"}
            assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))
    ada = json.loads((tmp_path / "ada" / "results.json").read_text())
    assert ada["score"] == 10
    assert {t["visibility"] for t in ada["tests"]} == {"visible", "after_published"}


def test_gradescope_autograder_zip_builds_and_runs(tmp_path):
    import zipfile

    archive = tmp_path / "autograder.zip"
    assert main(["autograder", "--exercise", "tiny-model", "--out", str(archive)]) == 0
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder", "instructor.secret", "pyproject.toml",
                "exercises/tiny-model/spec.toml", "grader/grading/engine.py", "reference/torchvision_compat.py"} <= names
        mode = z.getinfo("run_autograder").external_attr >> 16
        assert mode & 0o111, "run_autograder must be executable"
        assert "torch==2.13.0 torchvision==0.28.0" in z.read("setup.sh").decode()
        z.extract("instructor.secret", tmp_path)
    submission = tmp_path / "submission"
    submission.mkdir()
    shutil.copy(solution("tiny-model"), submission / "my-work.ipynb")
    out = tmp_path / "results" / "results.json"
    subprocess.run([sys.executable, "-m", "grader.grading.gradescope", "--exercise", "tiny-model", "--submission",
                    str(submission), "--secret-file", str(tmp_path / "instructor.secret"), "--out", str(out)],
                   check=True, capture_output=True, timeout=300)
    results = json.loads(out.read_text())
    assert results["score"] == 10 and len(results["tests"]) == 5


@pytest.mark.usefixtures("shared_kernel_factory")
def test_wrong_exercise_and_ambiguous_folders_are_invalid_and_another_secret_is_refused(tmp_path, monkeypatch, capsys):
    """Cheap outcomes (no kernel runs): each would have been a silent wrong grade."""
    folder, book = tmp_path / "class", tmp_path / "gb.sqlite"
    folder.mkdir()
    shutil.copy(FILES / "early-stopping" / "late-stop.ipynb", folder / "fay.ipynb")  # another exercise's notebook
    (folder / "gus").mkdir()  # two notebooks that both declare tiny-model, neither named after it
    shutil.copy(solution("tiny-model"), folder / "gus" / "final.ipynb")
    shutil.copy(TINY / "bigger-model.ipynb", folder / "gus" / "final-v2.ipynb")
    grade = ["grade", str(folder), "--exercise", "tiny-model", "--gradebook", str(book), "--workers", "1", "--json"]
    monkeypatch.setenv("GRADER_SECRET", "first-secret")
    assert main(grade) == 0
    results = {r["student"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert results["fay"]["status"] == results["gus"]["status"] == "invalid"
    assert results["fay"]["error"] == ("this notebook is for exercise 'early-stopping' (its metadata says so), but it "
                                       "was handed in for 'tiny-model': nothing was graded")
    assert results["gus"]["error"] == ("ambiguous: 2 notebooks declare the exercise 'tiny-model' in their metadata "
                                       "(final-v2.ipynb, final.ipynb); keep one, or name it tiny-model.ipynb")
    assert main(["export", "--gradebook", str(book), "--format", "csv", "--out", str(tmp_path / "grades.csv")]) == 0
    notes = {row[0]: row[-1] for row in csv.reader((tmp_path / "grades.csv").read_text().splitlines())}
    assert notes["gus"] == f"tiny-model: {results['gus']['error']}"

    monkeypatch.setenv("GRADER_SECRET", "second-secret")
    assert main(grade) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (f"holds results graded with another instructor secret (tiny-model with secret "
            f"{fingerprint(b'first-secret')}); this secret is {fingerprint(b'second-secret')}.") in err
    assert "pass --regrade to grade every tiny-model submission again with this one" in err
    with Gradebook.open(book, create=False) as gb:
        assert gb.run_count() == 2 and set(gb.secret_fingerprints()) == {fingerprint(b"first-secret")}
    # A student's file gone: --regrade could not regrade that result, and left the class with two secrets, every later
    # batch refused with either one.
    shutil.move(folder / "fay.ipynb", tmp_path / "fay.ipynb")
    assert main(grade + ["--regrade"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"tiny-model results graded with another instructor secret for students with no submission in the folder " \
           f"now: fay (graded from {folder / 'fay.ipynb'})" in err and "Put their submissions back" in err
    shutil.move(tmp_path / "fay.ipynb", folder / "fay.ipynb")
    assert main(grade + ["--regrade"]) == 0
    # A file gone under the same secret: the result stays and counts, and the batch says whose it is.
    (folder / "fay.ipynb").unlink()
    capsys.readouterr()
    assert main(grade) == 0
    assert f"tiny-model results kept for students with no submission in {folder} now: fay" in \
        " ".join(capsys.readouterr().err.split())
    with Gradebook.open(book, create=False) as gb:
        assert set(gb.secret_fingerprints()) == {fingerprint(b"second-secret")}


def test_the_several_notebooks_rule_picks_declared_then_newest_and_says_when_it_cannot(tmp_path):
    from grader.grading.discover import discover

    def student(name: str, files: dict) -> None:
        for file, (source, mtime) in files.items():
            (tmp_path / name / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, tmp_path / name / file)
            os.utime(tmp_path / name / file, (mtime, mtime))

    undeclared = TINY / "no-exercise-metadata.ipynb"
    student("ann", {"work.ipynb": (solution("tiny-model"), 100), "scratch.ipynb": (undeclared, 200)})
    student("ben", {"a.ipynb": (undeclared, 100), "b.ipynb": (undeclared, 200)})
    student("cid", {"a.ipynb": (undeclared, 100), "b.ipynb": (undeclared, 100)})
    student("dee", {"v1/tiny-model.ipynb": (undeclared, 100), "v2/tiny-model.ipynb": (undeclared, 200)})
    student("eli", {"es.ipynb": (FILES / "early-stopping" / "late-stop.ipynb", 100),
                    "rs.ipynb": (FILES / "random-seeds" / "same-seed.ipynb", 100)})
    found = {f.student: f for f in discover(tmp_path, "tiny-model")}
    assert found["ann"].path.name == "work.ipynb" and found["ann"].note == (
        "2 notebooks: graded work.ipynb, the one whose metadata declares the exercise; not graded: scratch.ipynb")
    assert found["ben"].path.name == "b.ipynb" and "the newest (none is named after or declares" in found["ben"].note
    assert found["cid"].path is None and found["cid"].note.startswith("ambiguous: no notebook is named after or "
                                                                      "declares 'tiny-model', and the newest ones have "
                                                                      "the same modification time")
    assert found["dee"].path is None and found["dee"].note == (
        "ambiguous: 2 notebooks are named after the exercise (v1/tiny-model.ipynb, v2/tiny-model.ipynb)")
    assert found["eli"].path is None and found["eli"].note == (
        "ambiguous: none of the 2 notebooks is for 'tiny-model' (es.ipynb is for 'early-stopping', rs.ipynb is for "
        "'random-seeds')")


def test_an_upper_case_suffix_is_a_notebook_and_an_archive_is_named_with_what_to_do(tmp_path):
    """``ada.IPYNB`` is ada's notebook, in the class folder or a student's; an archive is never opened, but it is
    said, as its student's entry or in the student's note, with what to do: no entry goes without a word."""
    from grader.grading.discover import discover, left_aside

    folder = tmp_path / "class"
    (folder / "dan").mkdir(parents=True)
    (folder / "eve").mkdir()
    shutil.copy(solution("tiny-model"), folder / "ada.IPYNB")
    (folder / "cara.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: never opened anyway
    (folder / "dan" / "work.ZIP").write_bytes(b"PK\x05\x06" + bytes(18))
    shutil.copy(solution("tiny-model"), folder / "eve" / "Tiny-Model.IPYNB")
    shutil.copy(solution("tiny-model"), folder / "fay.ipynb")
    (folder / "fay.tar.gz").write_bytes(b"")
    (folder / "roster.csv").write_text("name\nada\n")  # the instructor's, not a student
    shutil.copy(solution("tiny-model"), folder / "gus.ipynb.txt")  # a browser's download: a student's, misnamed
    found = {f.student: f for f in discover(folder, "tiny-model")}
    assert sorted(found) == ["ada", "cara", "dan", "eve", "fay", "gus"]
    assert found["gus"].path is None and found["gus"].note == (
        "'gus.ipynb.txt' does not end in .ipynb, so it is not read (a download saved with another ending, say): rename "
        "it gus.ipynb and run again")
    assert left_aside(folder) == ["roster.csv"]  # a batch names it once
    assert found["ada"].path.name == "ada.IPYNB" and found["ada"].note == ""
    assert found["eve"].path.name == "Tiny-Model.IPYNB"
    assert found["cara"].path is None and found["cara"].note.startswith(
        "'cara.zip' is an archive, which the grader never opens: unpack it")
    assert found["dan"].path is None and found["dan"].note == (
        "no .ipynb file in the student's folder; not opened: work.ZIP, archive(s) the grader never opens: unpack the "
        "notebook into the student's folder and run again")
    assert found["fay"].path.name == "fay.ipynb" and found["fay"].note == "not graded: 'fay.tar.gz', beside 'fay.ipynb'"


PERFECT = {"lr-role": "C", "lr-keyword": "B", "high-fixed-lr": "D", "scheduler-printout": "B", "fast-then-fine": "C"}


def test_a_quiz_s_folder_rule_reads_the_quiz_field_and_never_grades_an_empty_file_over_a_readable_one(
        tmp_path, monkeypatch, capsys):
    """zoe's newer td.toml (quiz = "training-dynamics") was graded for convergence, an invalid 0; jan's empty jan.toml
    was graded over jan.json. No kernel: cheap."""
    folder, book = tmp_path / "class", tmp_path / "gb.sqlite"
    quiz_field = json.dumps({"quiz": "convergence", "answers": PERFECT})
    no_field = json.dumps({"answers": PERFECT})

    def hand_in(name: str, text: str, mtime: int) -> None:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
        os.utime(folder / name, (mtime, mtime))

    hand_in("zoe/conv.toml", (FILES / "quizzes" / "perfect.toml").read_text(), 100)
    hand_in("zoe/td.toml", 'quiz = "training-dynamics"\n[answers]\nstate-dict-alias = "B"\n', 200)
    hand_in("kim/answers.json", quiz_field.replace('"convergence"', '"Convergence"'), 100)  # its id in another case
    hand_in("kim/notes.json", "", 200)
    hand_in("jan.toml", "", 100)  # beside jan.json: an empty file, then the answers, or the reverse
    hand_in("jan.json", no_field, 200)
    hand_in("lee.json", no_field, 100)
    hand_in("lee.toml", "[answers]\n", 200)
    hand_in("ned.toml", (FILES / "quizzes" / "convergence-one-wrong.toml").read_text().replace("quiz =", "# quiz ="),
            100)
    hand_in("ned.json", no_field, 200)  # both readable, neither declares: the newer, as in a folder
    hand_in("ola/a.toml", "", 100)
    hand_in("ola/b.toml", "not = [toml", 200)  # nothing can be read: the newest, whose reason the student is told
    # The template's `quiz` line in a draft and in the answers: both declare the quiz, and the newer is handed in.
    hand_in("pia/draft.toml", (FILES / "quizzes" / "convergence-one-wrong.toml").read_text(), 100)
    hand_in("pia/final.toml", (FILES / "quizzes" / "perfect.toml").read_text(), 200)
    # An empty file named after the quiz beside the filled one, and the template left blank (its `quiz` line
    # declares the quiz) beside answers that do not declare it: each was graded over the work, 0 points.
    hand_in("bob/convergence.toml", "", 200)
    hand_in("bob/convergence-answers.toml", (FILES / "quizzes" / "perfect.toml").read_text(), 100)
    blank = "\n".join(f'{key} = ""' for key in PERFECT)
    hand_in("gil/template.toml", f'quiz = "convergence"\n[answers]\n{blank}\n', 100)
    hand_in("gil/answers.json", no_field, 200)
    # The quiz's id misspelt, naming no other quiz: scored as asked, as `grader quiz check` scores it.
    hand_in("dan.json", quiz_field.replace('"convergence"', '"convergance"'), 100)
    monkeypatch.setenv("GRADER_SECRET", "quiz-folder-rule")
    assert main(["grade", str(folder), "--exercise", "convergence", "--gradebook", str(book), "--workers", "1",
                 "--json"]) == 0
    results = {r["student"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {name: (r["status"], r["score"]) for name, r in results.items()} == {
        "zoe": ("ok", 5), "kim": ("ok", 5), "jan": ("ok", 5), "lee": ("ok", 5), "ned": ("ok", 5), "ola": ("invalid", 0),
        "pia": ("ok", 5), "bob": ("ok", 5), "gil": ("ok", 5), "dan": ("ok", 5)}
    assert results["ola"]["error"].startswith(f"{folder / 'ola' / 'b.toml'}: not valid TOML")
    assert main(["export", "--gradebook", str(book), "--format", "csv", "--out", str(tmp_path / "grades.csv")]) == 0
    notes = {row[0]: row[-1] for row in csv.reader((tmp_path / "grades.csv").read_text().splitlines())}
    assert notes["zoe"] == ("convergence: 2 answers files: graded conv.toml, the one whose `quiz` field declares the "
                            "quiz; not graded: td.toml")
    assert notes["kim"] == ("convergence: 2 answers files: graded answers.json, the one whose `quiz` field declares "
                            "the quiz; not graded: notes.json (notes.json: empty, unreadable or with no answer filled "
                            "in)")
    assert notes["lee"] == ("convergence: 2 answers files: graded lee.json, the newest (none is named after or "
                            "declares the quiz); not graded: lee.toml (lee.toml: empty, unreadable or with no answer "
                            "filled in)")
    assert notes["jan"].startswith("convergence: 2 answers files: graded jan.json, the newest")
    assert notes["jan"].endswith("(jan.toml: empty, unreadable or with no answer filled in)")
    assert notes["ned"] == ("convergence: 2 answers files: graded ned.json, the newest (none is named after or "
                            "declares the quiz); not graded: ned.toml")
    assert notes["pia"] == ("convergence: 2 answers files: graded final.toml, the newest of the 2 whose `quiz` "
                            "field declares the quiz; not graded: draft.toml")
    assert notes["ola"].endswith("graded b.toml, the newest (none is named after or declares the quiz, and none "
                                 "can be read); not graded: a.toml")


@pytest.mark.usefixtures("shared_kernel_factory")
def test_a_class_whose_every_submission_is_unusable_is_out_of_the_assignment_s_full_points(tmp_path, monkeypatch,
                                                                                            capsys):
    """With no valid run in the gradebook the CSV said max 0, total_max 0, and Gradescope "0/0 (invalid)": the maximum
    came from classmates' results. It is the spec's and the quiz's. No kernel runs: cheap."""
    notebooks, answers, book = tmp_path / "notebooks", tmp_path / "answers", tmp_path / "gb.sqlite"
    notebooks.mkdir()
    answers.mkdir()
    (notebooks / "ada.ipynb").write_text("")
    shutil.copy(FILES / "format3.ipynb", notebooks / "bob.ipynb")
    shutil.copy(FILES / "quizzes" / "malformed.toml", answers / "ada.toml")
    monkeypatch.setenv("GRADER_SECRET", "all-unusable")
    for folder, assignment in ((notebooks, "tiny-model"), (answers, "convergence")):
        assert main(["grade", str(folder), "--exercise", assignment, "--gradebook", str(book), "--workers", "1"]) == 0
    assert main(["export", "--gradebook", str(book), "--format", "csv", "--out", str(tmp_path / "grades.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "grades.csv").read_text().splitlines()))
    assert [(r["name"], r["tiny-model_status"], r["tiny-model_max"], r["convergence_status"], r["convergence_max"],
             r["total_score"], r["total_max"]) for r in rows] == [("ada", "invalid", "10", "invalid", "5", "0", "15"),
                                                                   ("bob", "invalid", "10", "missing", "5", "0", "15")]
    assert main(["export", "--gradebook", str(book), "--format", "gradescope", "--out", str(tmp_path / "gs")]) == 0
    output = json.loads((tmp_path / "gs" / "ada" / "results.json").read_text())["output"]
    assert output.startswith("convergence: 0/5 (invalid); tiny-model: 0/10 (invalid)"), output
    capsys.readouterr()
    assert main(["status", "--gradebook", str(book), "--assignment", "tiny-model", "--json"]) == 0
    assert {row["max_score"] for row in json.loads(capsys.readouterr().out)["rows"]} == {10}


@pytest.mark.usefixtures("shared_kernel_factory")
def test_a_worker_that_dies_twice_leaves_its_submission_ungraded_and_the_batch_incomplete(monkeypatch, tmp_path, capsys):
    """A worker killed under a submission, and again under its retry, is the machine's doing (the student's code runs
    in the kernel, another process): nothing is stored for it, the others are graded, and the batch exits 4."""
    from grader.grading import batch

    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("ann", "kill-me", "zoe"):
        (folder / f"{name}.ipynb").write_text("not a notebook")
    monkeypatch.setattr(batch, "grade_job", _die_for_kill_me)
    book = tmp_path / "gradebook.sqlite"
    assert main(["grade", str(folder), "--exercise", "tiny-model", "--gradebook", str(book), "--workers", "2"]) == 4
    err = capsys.readouterr().err
    assert "1 submission(s) not graded because of the grader's own processes" in err
    assert "kill-me: the grading worker process died twice while grading it" in err
    assert sorted(current(book)) == ["ann", "zoe"]  # kill-me has nothing stored: the next run grades it again


def test_a_batch_stopped_before_its_workers_start_starts_none(monkeypatch, tmp_path):
    """Ctrl-C during the set-up (a sandbox probe) stops the batch before any worker process exists: a pool
    started then would only be killed, and its workers would outlive the batch holding its output."""
    from grader.grading import batch
    from grader.grading.interrupts import BatchInterrupted, Stop

    def no_pool(*args, **kwargs):
        raise AssertionError("a pool of workers was started for a stopped batch")

    monkeypatch.setattr(batch.cf, "ProcessPoolExecutor", no_pool)
    stop = Stop()
    stop.set(signal.SIGINT)
    jobs = [batch.Job(name, tmp_path / f"{name}.ipynb", "tiny-model") for name in ("ann", "ben")]
    with Gradebook.open(tmp_path / "gradebook.sqlite") as book, pytest.raises(BatchInterrupted) as stopped:
        batch.run_batch(jobs, load_exercise("tiny-model"), "v1", book, 2, stop=stop)
    assert stopped.value.kept == [] and stopped.value.missing == ["ann", "ben"]


def _die_for_kill_me(job, assignment=None):
    if job.student == "kill-me":
        os._exit(9)  # the worker process dies, as under the OOM killer
    return SubmissionResult.invalid(job.exercise_id, job.student, "nothing submitted")


def test_checks_the_grader_could_not_evaluate_are_named_after_the_batch():
    """A grader bug in one check (a NameError mid-edit, say) was stored as the students' failed check, and the batch
    said nothing: the instructor is told which checks and students, and that the scores may be too low."""
    crashed = CheckResult("a-network", False, 0, 1, "public", "The grader could not evaluate this check (NameError)",
                          details={"grader_error": "NameError: name 'torch' is not defined"})
    fine = CheckResult("fits", True, 4, 4, "public", "ok")
    results = [SubmissionResult("tiny-model", "ada", Status.OK, checks=[crashed, fine]),
               SubmissionResult("tiny-model", "ben", Status.OK, checks=[fine])]
    line = grader_faults(results)
    assert line.startswith("the grader could not evaluate some checks (an error of its own, not of the notebook), "
                           "which scored no points: a-network for ada. Their scores may be too low")
    assert grader_faults(results[1:]) == ""


@pytest.mark.usefixtures("shared_kernel_factory")
def test_a_second_batch_into_a_gradebook_another_batch_is_grading_into_is_refused(tmp_path, monkeypatch, capsys):
    """Two `grader grade` runs a second apart on one gradebook each graded the whole class: every student twice."""
    folder, book = tmp_path / "class", tmp_path / "gb.sqlite"
    folder.mkdir()
    shutil.copy(FILES / "early-stopping" / "late-stop.ipynb", folder / "fay.ipynb")  # invalid here: no kernel runs
    grade = ["grade", str(folder), "--exercise", "tiny-model", "--gradebook", str(book), "--workers", "1"]
    monkeypatch.setenv("GRADER_SECRET", "lock-test")
    with Gradebook.open(book) as other:
        other.hold_for_batch()
        assert main(grade) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"{book} is being graded into by another `grader grade` now (process {os.getpid()}): wait for it " \
               "to finish" in err
        assert other.run_count() == 0
    assert main(grade) == 0  # the lock went with the gradebook that held it
    with Gradebook.open(book, create=False) as gb:
        assert gb.run_count() == 1
