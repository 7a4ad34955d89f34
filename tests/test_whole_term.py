"""A whole course term on the bundled example class (examples/class.toml, what `make demo` grades).

The real CLI, real kernels and a real gradebook, in the order a term goes: ``init`` and ``roster
import``; two assignments graded with manifests of submission times; an extension; overrides, one
of them flagged by a regrade of a resubmission; a late batch interrupted with SIGINT and resumed;
then the CSV, Canvas and Gradescope exports, every figure checked. Only some of the example class
hands in (each kernel costs seconds), and tiny-model runs with conftest's fast cell limits.

tiny-model is due 2027-03-05 23:59 CET (10% per started day); schedulers 2027-03-12 23:59 CET with
its own policy (25% per started day, more than 3 days: 0). What each student does:

- Ada (1001), as ada: both solutions, on time by the manifests (by name, by id): 10 and 10.
- Ben (1002), as ben: tiny-model bigger-model 8.5, 1 day late by the manifest (by email); its
  parameter-budget overridden from 1.5 to 3: 10, then 10% off: 9. No schedulers.
- Cleo (1003), as cleo: schedulers scheduler-first 3, 2 days late (50% off) until `grader extend`
  gives her 2 days; the whole score overridden to 6; she resubmits record-before-step (4), is
  regraded alone, and the override stays, flagged. tiny-model uses-reference (error, 0) in the late
  batch, on time by the manifest (by login).
- eve, not on the roster: tiny-model tampering 1 in the late batch, by her file's time 2 days late: 0.8.
- Finn (1005): nothing.
"""

import csv
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from grading_support import ROOT, as_from_a_shell, run_cli

from grader.demo import assemble

CET = timezone(timedelta(hours=1))  # Europe/Berlin in March 2027
TINY_DUE = "2027-03-05T23:59:00"
SCHEDULERS_DUE = "2027-03-12T23:59:00"
ROSTER = """\
Student ID,Name,Email,Login,Section,Canvas ID
1001,Ada Lovelace,ada@uni.example,alovelace,Section A,51
1002,Ben Okafor,ben@uni.example,bokafor,Section A,52
1003,Cleo Martin,cleo@uni.example,cmartin,Section B,53
1005,Finn Berg,finn@uni.example,fberg,Section B,55
"""
BUDGET = "63 parameters counted with the frozen input scaling; agreed in office hours"
HAND_GRADED = "schedulers read after step() are right for her loop: graded by hand"


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines at the console's width


@pytest.fixture(scope="module")
def exercises(tmp_path_factory):
    """Every exercise and quiz (grader.toml names them all), tiny-model with conftest's fast cell limits."""
    root = tmp_path_factory.mktemp("term-exercises") / "exercises"
    shutil.copytree(ROOT / "exercises", root)
    spec = root / "tiny-model" / "spec.toml"
    text = spec.read_text()
    assert "cell_timeout_s = 120" in text and "total_timeout_s = 300" in text
    spec.write_text(text.replace("cell_timeout_s = 120", "cell_timeout_s = 20")
                    .replace("total_timeout_s = 300", "total_timeout_s = 60"))
    return root


@pytest.fixture
def course(tmp_path, exercises, monkeypatch, shared_kernel_factory):
    """The course folder, the current folder; the example class assembled under class/, the late batch set aside.

    Its commands fork their kernels from the test process's factory, as a term's commands do from the warm server's.
    """
    monkeypatch.setenv("GRADER_EXERCISES", str(exercises))
    monkeypatch.delenv("GRADER_SECRET", raising=False)  # grader.toml's secret file, as a course runs it
    root = tmp_path / "course"
    folders = assemble(root / "class")
    later = root / "later"
    later.mkdir()
    for name in ("cleo", "eve"):  # the late batch of step 4
        shutil.move(folders["tiny-model"] / f"{name}.ipynb", later / f"{name}.ipynb")
    # Cleo's resubmission of step 3 is the example class's record-before-step notebook (ben's there).
    shutil.move(folders["schedulers"] / "ben.ipynb", later / "cleo-schedulers-again.ipynb")
    keep = {"tiny-model": {"ada.ipynb", "ben.ipynb"}, "schedulers": {"ada.ipynb", "cleo.ipynb"}}
    for exercise, folder in folders.items():
        if exercise not in keep:
            shutil.rmtree(folder)
            continue
        for path in folder.iterdir():
            if path.name not in keep[exercise]:
                path.unlink()
    monkeypatch.chdir(root)
    return root


def _configure(course, capsys):
    """Step 1: `grader init`, the two due dates and a policy of our own, then `grader roster import`."""
    code, out, _ = run_cli(capsys, "init")
    assert code == 0 and out.startswith(f"wrote {course / 'grader.toml'}: course 'Training dynamics in PyTorch, ")
    text = (course / "grader.toml").read_text()
    edits = [
        (r'timezone = "UTC"', 'timezone = "Europe/Berlin"'),
        (r"workers = \d+", "workers = 1"),
        (r'(\[assignments\.tiny-model\]\n)due = \S+\ncanvas_column = "[^"\n]*"\n',
         rf'\1due = {TINY_DUE}\ncanvas_column = "Exercise 1 (4101)"\n'),
        (r"(\[assignments\.schedulers\]\n)due = \S+\n",
         rf"\1due = {SCHEDULERS_DUE}\nlate_policy = {{ percent_per_day = 25, max_days = 3 }}\n"),
    ]
    for pattern, replacement in edits:
        text, count = re.subn(pattern, replacement, text, count=1)
        assert count == 1, pattern
    (course / "grader.toml").write_text(text)
    (course / "roster.csv").write_text(ROSTER)
    code, out, _ = run_cli(capsys, "roster", "import")
    assert code == 0 and out == f"imported 4 students from {course / 'roster.csv'}: 4 added, 0 removed, 0 changed\n"


def _grade(capsys, exercise, *extra):
    """`grader grade class/EXERCISE --exercise EXERCISE --json`: the graded results by student, and stderr."""
    code, out, err = run_cli(capsys, "grade", f"class/{exercise}", "--exercise", exercise, "--json", *extra)
    assert code == 0, err
    return {r["student"]: r for r in map(json.loads, out.splitlines())}, _flat(err)


def _points(result) -> dict:
    return {c["id"]: c["points"] for c in result["checks"]}


def _grade_both(course, capsys):
    """Step 2: tiny-model and schedulers graded with their manifests; Ben is late, Cleo late until extended."""
    (course / "class" / "tiny-model" / "submissions.csv").write_text(
        "student,file,submitted_at\n"
        "ada,ada.ipynb,2027-03-04T16:20:00\n"  # no offset: the course's time zone
        "ben@uni.example,ben.ipynb,2027-03-06T18:30:00+01:00\n")
    (course / "class" / "schedulers" / "submissions.csv").write_text(
        "student,file,submitted_at\n"
        "1001,ada.ipynb,2027-03-12T09:00:00+01:00\n"
        "Cleo Martin,cleo.ipynb,2027-03-14T09:00:00Z\n")

    tiny, err = _grade(capsys, "tiny-model")
    assert {s: (r["status"], r["score"]) for s, r in tiny.items()} == {"ada": ("ok", 10), "ben": ("ok", 8.5)}
    assert _points(tiny["ben"]) == {"own-model": 1, "a-network": 0, "fits-training-data": 4, "parameter-budget": 1.5,
                                    "fresh-data": 2}
    assert "Submission times: 2 from the manifest, 0 from file modification times" in err
    assert "Late policy: 10% off per started day late; more than 5 days late scores 0" in err
    assert ("Ben Okafor (1002), as ben: 1 started day late (deadline 2027-03-05 23:59 +01:00): 10% off; 7.65 points "
            "after the late penalty (raw 8.5)") in err
    assert "2 student(s) on the roster have nothing handed in here: Cleo Martin (1003), Finn Berg (1005)" in err

    schedulers, err = _grade(capsys, "schedulers")
    assert {s: (r["status"], r["score"]) for s, r in schedulers.items()} == {"ada": ("ok", 10), "cleo": ("ok", 3)}
    assert "Late policy: 25% off per started day late; more than 3 days late scores 0" in err
    assert ("Cleo Martin (1003), as cleo: 2 started days late (deadline 2027-03-12 23:59 +01:00): 50% off; 1.5 points "
            "after the late penalty (raw 3)") in err

    code, out, _ = run_cli(capsys, "extend", "cmartin", "schedulers", "--days", 2)
    assert code == 0 and out.splitlines() == [
        f"Cleo Martin (1003): 2 extra day(s) for schedulers, recorded in {course / 'gradebook.sqlite'}",
        ("current result (cleo): on time (deadline 2027-03-14 23:59 +01:00, with an extension of 2 days); 3 points "
         "after the late penalty (raw 3) (was 1.5: 2 started days late (deadline 2027-03-12 23:59 +01:00): 50% off)")]


def _override_and_regrade(course, capsys):
    """Step 3: two overrides; Cleo resubmits and is regraded alone: hers survives, flagged; Ben's stays as it was."""
    code, out, _ = run_cli(capsys, "override", "ben", "tiny-model", "--check", "parameter-budget", "--points", 3,
                           "--comment", BUDGET, "--by", "kim")
    assert code == 0 and out == (f"override recorded: ben's tiny-model, check parameter-budget: 3 points (the grader "
                                 f"gave fail 1.5/3), by kim: {BUDGET}\n")
    code, out, _ = run_cli(capsys, "override", "1003", "schedulers", "--points", 6, "--comment", HAND_GRADED,
                           "--by", "kim")
    assert code == 0 and out == (f"override recorded: cleo's schedulers, the whole score: 6 points (the grader gave "
                                 f"ok 3/10), by kim: {HAND_GRADED}\n")

    shutil.copy(course / "later" / "cleo-schedulers-again.ipynb", course / "class" / "schedulers" / "cleo.ipynb")
    regraded, err = _grade(capsys, "schedulers", "--student", "cleo", "--regrade")
    assert list(regraded) == ["cleo"] and regraded["cleo"]["score"] == 4
    assert ("Override to review: cleo, the whole score (6 points by kim): the grader's result for the score changed: "
            "ok 3/10 when overridden, ok 4/10 now; it stays in force until it is recorded again or removed") in err
    # One student regraded, the rest of the folder still counts: Ada's manifest row and hand-in are not missing.
    assert "Submission times: 1 from the manifest, 0 from file modification times" in err
    assert "manifest row(s) match no submission" not in err
    assert "2 student(s) on the roster have nothing handed in here: Ben Okafor (1002), Finn Berg (1005)" in err

    code, out, _ = run_cli(capsys, "overrides")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "2 overrides in force, 1 to review:"
    assert lines[1].startswith("cleo  schedulers  (whole score)  6 points (graded ok 3/10)  by kim, ")
    assert lines[1].endswith(f"{HAND_GRADED}  REVIEW: the grader's result for the score changed: ok 3/10 when "
                             "overridden, ok 4/10 now")
    assert lines[2].startswith("ben  tiny-model  parameter-budget  3 points (graded fail 1.5/3)  by kim, ")
    assert lines[2].endswith(BUDGET)

    code, out, _ = run_cli(capsys, "status")
    assert code == 0 and out.splitlines() == [
        "schedulers: 2 students:",
        "  ada   ok                        10/10",
        "  cleo  ok, 4 of 7 checks failed  6/10 (override 6; graded 4)  failed: steplr, cosine, warm-restarts, one-cycle",
        "tiny-model: 2 students:",
        "  ada  ok                        10/10",
        "  ben  ok, 1 of 5 checks failed  9/10 (override 10; late -10%; graded 8.5)  failed: parameter-budget"]
    # The regrade added a run and kept the first; the current one is the resubmission's.
    assert [r[1:5] for r in _runs(course) if r[2] == "schedulers"] == [
        ("ada", "schedulers", "ok", 10), ("cleo", "schedulers", "ok", 3), ("cleo", "schedulers", "ok", 4)]
    assert [r[1:5] for r in _runs(course, "current_runs") if r[2] == "schedulers"] == [
        ("ada", "schedulers", "ok", 10), ("cleo", "schedulers", "ok", 4)]


def _runs(course, view: str = "runs", name: str = "gradebook.sqlite") -> list[tuple]:
    """Every run in the gradebook, oldest first (or only the current ones): (id, student, assignment, status, score,
    file hash)."""
    book = sqlite3.connect(f"file:{course / name}?mode=ro", uri=True)
    try:
        return book.execute(
            f"SELECT r.id, students.name, submissions.exercise, r.status, r.score, submissions.sha256 FROM {view} r "
            "JOIN submissions ON submissions.id = r.submission_id "
            "JOIN students ON students.id = submissions.student_id ORDER BY r.id").fetchall()
    finally:
        book.close()


def _interrupt_and_resume(course, exercises):
    """Step 4: Cleo's and eve's late tiny-model work; the batch is stopped with Ctrl-C after Cleo's, then resumed."""
    folder = course / "class" / "tiny-model"
    for name in ("cleo", "eve"):
        shutil.copy(course / "later" / f"{name}.ipynb", folder / f"{name}.ipynb")
    with open(folder / "submissions.csv", "a") as manifest:
        manifest.write("cmartin,cleo.ipynb,2027-03-05T23:10:00+01:00\n")
    eve = datetime(2027, 3, 7, 12, 0, tzinfo=CET).timestamp()  # not in the manifest: her file's time counts
    os.utime(folder / "eve.ipynb", (eve, eve))
    before = _runs(course)
    command = [sys.executable, "-m", "grader.cli", "grade", "class/tiny-model", "--exercise", "tiny-model", "--json"]
    env = dict(os.environ, GRADER_EXERCISES=str(exercises))
    out, err = course / "interrupted.out", course / "interrupted.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen(command, cwd=course, env=env, stdout=stdout, stderr=stderr, start_new_session=True,
                                preexec_fn=as_from_a_shell)
    try:
        deadline = time.monotonic() + 300
        while len(_runs(course)) == len(before):  # one worker: Cleo's result first, while eve's kernel runs
            assert proc.poll() is None, f"the batch ended (exit {proc.returncode}) before a result: {err.read_text()}"
            assert time.monotonic() < deadline, "no result from the late batch"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole foreground group
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    stopped = err.read_text()
    assert code == 130 and "Traceback" not in stopped, stopped
    assert stopped.strip().splitlines()[-1] == (
        f"grader grade: interrupted (SIGINT): 1 result(s) kept in {course / 'gradebook.sqlite'} (cleo); 1 not graded "
        "(eve). Run the same command again to grade what is missing.")
    kept = _runs(course)
    assert kept[:len(before)] == before and [r[1:5] for r in kept[len(before):]] == [
        ("cleo", "tiny-model", "error", 0)]
    assert json.loads(out.read_text().splitlines()[0])["student"] == "cleo"

    again = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stderr
    resumed = [json.loads(line) for line in again.stdout.splitlines()]
    assert [(r["student"], r["status"], r["score"]) for r in resumed] == [("eve", "ok", 1)]
    assert "3 unchanged submission(s) already graded: skipped" in _flat(again.stderr)
    after = _runs(course)
    assert after[:len(kept)] == kept and [r[1:5] for r in after[len(kept):]] == [("eve", "tiny-model", "ok", 1)]


CSV = f"""\
name,student_id,email,submitted_as,\
schedulers_score,schedulers_max,schedulers_status,schedulers_raw,schedulers_late_penalty,schedulers_submitted_at,\
schedulers_time_source,\
tiny-model_score,tiny-model_max,tiny-model_status,tiny-model_raw,tiny-model_late_penalty,tiny-model_submitted_at,\
tiny-model_time_source,total_score,total_max,roster,notes
Ada Lovelace,1001,ada@uni.example,ada,10,10,ok,10,0,2027-03-12T09:00:00+01:00,manifest,\
10,10,ok,10,0,2027-03-04T16:20:00+01:00,manifest,20,20,on roster,
Ben Okafor,1002,ben@uni.example,ben,,10,missing,,,,,9,10,ok,8.5,10,2027-03-06T18:30:00+01:00,manifest,9,20,on roster,\
tiny-model: 1 started day late (deadline 2027-03-05 23:59 +01:00): 10% off | \
tiny-model: check parameter-budget overridden to 3 by kim ({BUDGET})
Cleo Martin,1003,cleo@uni.example,cleo,6,10,ok,4,0,2027-03-14T10:00:00+01:00,manifest,\
0,10,error,0,0,2027-03-05T23:10:00+01:00,manifest,6,20,on roster,\
"schedulers: on time (deadline 2027-03-14 23:59 +01:00, with an extension of 2 days) | \
schedulers: the whole score overridden to 6 by kim ({HAND_GRADED}); \
to review: the grader's result for the score changed: ok 3/10 when overridden, ok 4/10 now | \
tiny-model: error: code cell 2 raised ImportError: this part of the reference is not available in the official run: \
the grader credits your own work only"
eve,,,eve,,10,missing,,,,,0.8,10,ok,1,20,2027-03-07T12:00:00+01:00,mtime,0.8,20,not on roster,\
tiny-model: 2 started days late (deadline 2027-03-05 23:59 +01:00): 20% off
Finn Berg,1005,finn@uni.example,,,10,missing,,,,,,10,missing,,,,,0,20,no submission,
"""

CANVAS = """\
Student,ID,SIS User ID,SIS Login ID,Section,Exercise 3: inspect learning-rate schedulers,Exercise 1 (4101)
Ada Lovelace,51,1001,alovelace,Section A,10,10
Ben Okafor,52,1002,bokafor,Section A,,9
Cleo Martin,53,1003,cmartin,Section B,6,0
Finn Berg,55,1005,fberg,Section B,,
"""

SCHEDULERS_TESTS = ("Your own loop, not the reference solution", "StepLR: three lists match torch",
                    "CosineAnnealingLR: three lists match torch",
                    "CosineAnnealingWarmRestarts: three lists match torch", "OneCycleLR: three lists match torch",
                    "Each list is what its exported scheduler produces", "optimizer.step() before scheduler.step()")
SCHEDULERS_MAX = (1, 1.5, 1.5, 1.5, 1.5, 2, 1)
TINY_TESTS = ("Your own model, not the reference solution", "A network that learns, not a fixed rule",
              "100% training accuracy", "At most 33 parameters", "Generalises to a fresh low-noise set")
TINY_MAX = (1, 0, 4, 3, 2)
LATE_POLICY = "10% off per started day late; more than 5 days late scores 0"


def _tests(exercise: str, names, maxima, scores) -> list[tuple]:
    """(name, score, max_score, visibility) of an exercise's checks in results.json; the hidden one after publishing."""
    return [(f"{exercise}: {name}", score, top, "after_published" if name.startswith("Generalises") else "visible")
            for name, top, score in zip(names, maxima, scores, strict=True)]


GRADESCOPE = {  # student -> (score, tests): the overrides applied, then the late penalty, as in the CSV
    "ada": (20, _tests("schedulers", SCHEDULERS_TESTS, SCHEDULERS_MAX, SCHEDULERS_MAX)
            + _tests("tiny-model", TINY_TESTS, TINY_MAX, TINY_MAX)),
    "ben": (9, _tests("tiny-model", TINY_TESTS, TINY_MAX, (1, 0, 4, 3, 2))
            + [("tiny-model: late penalty", -1, 0, "visible")]),
    "cleo": (6, _tests("schedulers", SCHEDULERS_TESTS, SCHEDULERS_MAX, (1, 0, 0, 0, 0, 2, 1))
             + [("schedulers: changed by your instructor", 2, 0, "visible"),
                ("tiny-model: notebook run", 0, 0, "visible")]
             + _tests("tiny-model", TINY_TESTS, TINY_MAX, (0, 0, 0, 0, 0))),
    "eve": (0.8, _tests("tiny-model", TINY_TESTS, TINY_MAX, (1, 0, 0, 0, 0))
            + [("tiny-model: late penalty", -0.2, 0, "visible")]),
}


def _export(course, capsys):
    """Step 5: the gradebook checked and backed up; the CSV, Canvas and Gradescope files, every figure read back."""
    book = course / "gradebook.sqlite"
    code, out, _ = run_cli(capsys, "gradebook", "check")
    assert code == 0 and out.startswith(f"{book}: ok (SQLite integrity check passed; schema version ")
    assert out.endswith(", 4 students, 7 runs)\n")
    code, out, _ = run_cli(capsys, "gradebook", "backup", "--out", course / "backup.sqlite")
    assert code == 0 and out == (f"backed up {book} to {course / 'backup.sqlite'} (4 students, 7 runs; the copy passes "
                                 "SQLite's integrity check)\n")
    assert _runs(course, name="backup.sqlite") == _runs(course)  # the copy holds every run

    code, out, err = run_cli(capsys, "export", "--format", "csv", "--out", course / "grades.csv")
    assert (code, out, err) == (0, f"wrote {course / 'grades.csv'}\n", "")
    grades = (course / "grades.csv").read_text()
    assert grades == CSV
    # The raw scores are the gradebook's current results; the totals add up the final scores.
    rows = {row["submitted_as"]: row for row in csv.DictReader(grades.splitlines())}
    assert {(student, exercise): score for _, student, exercise, _, score, _ in _runs(course, "current_runs")} == {
        (s, e): float(row[f"{e}_raw"]) for s, row in rows.items() for e in ("schedulers", "tiny-model")
        if row[f"{e}_raw"]}
    for row in rows.values():
        assert float(row["total_score"]) == pytest.approx(
            sum(float(row[f"{e}_score"] or 0) for e in ("schedulers", "tiny-model")))

    code, out, err = run_cli(capsys, "export", "--format", "canvas", "--out", course / "canvas.csv")
    assert (code, out) == (0, f"wrote {course / 'canvas.csv'}\n")
    assert err == "left out of the Canvas file, not on the roster: eve\n"
    assert (course / "canvas.csv").read_text() == CANVAS

    code, out, err = run_cli(capsys, "export", "--format", "gradescope", "--out", course / "gs")
    assert (code, out, err) == (0, f"wrote 4 results.json files under {course / 'gs'}\n", "")
    results = {p.parent.name: json.loads(p.read_text()) for p in (course / "gs").glob("*/results.json")}
    assert sorted(results) == sorted(GRADESCOPE)  # one per submission name: Finn handed in nothing
    for student, (score, tests) in GRADESCOPE.items():
        got = results[student]
        assert [(t["name"], t["score"], t["max_score"], t["visibility"]) for t in got["tests"]] == tests, student
        assert got["score"] == score == pytest.approx(sum(t["score"] for t in got["tests"])), student
    ben = {t["name"]: t["output"] for t in results["ben"]["tests"]}
    assert ben["tiny-model: At most 33 parameters"].endswith(
        f"\n\nChanged by your instructor from 1.5 to 3 points: {BUDGET}")
    assert ben["tiny-model: late penalty"] == (
        "Handed in 2027-03-06 18:30 +01:00 (from the submissions manifest): 1 started day late (deadline 2027-03-05 "
        f"23:59 +01:00): 10% off. The late policy: {LATE_POLICY}.")
    eve = {t["name"]: t["output"] for t in results["eve"]["tests"]}
    assert eve["tiny-model: late penalty"] == (
        "Handed in 2027-03-07 12:00 +01:00 (the file's modification time): 2 started days late (deadline 2027-03-05 "
        f"23:59 +01:00): 20% off. The late policy: {LATE_POLICY}.")
    cleo = {t["name"]: t["output"] for t in results["cleo"]["tests"]}
    assert cleo["schedulers: changed by your instructor"] == f"The score is set to 6: {HAND_GRADED}"


def test_a_whole_term_on_the_example_class(course, exercises, capsys):
    """init and roster import, two graded assignments, an extension, overrides and a regrade, an interrupted and
    resumed batch, then the three exports: each step asserts what it did before the next one starts."""
    _configure(course, capsys)
    _grade_both(course, capsys)
    _override_and_regrade(course, capsys)
    _interrupt_and_resume(course, exercises)
    _export(course, capsys)
