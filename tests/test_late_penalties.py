"""Submission times, deadlines, extensions and late penalties, through to the CSV and Canvas files.

The term is tests/files/course: two quizzes (scored without a kernel), a roster of five, a manifest
per assignment. What each student did, and what the grader must make of it:

| convergence | handed in as | time | due 2027-03-05 23:59 CET, 10%/started day, >5 days: 0 |
|---|---|---|---|
| Ada | ada.toml | manifest, by email: 21:14 | on time, 5 |
| Ben | 1002.json | manifest, two rows by id: the later, 03-06 09:30 (no offset: course zone) | 1 day late: 4 -> 3.6 |
| Cleo | Cleo Martin/convergence.toml | manifest, by name, in UTC: 03-07 12:00Z | 2-day extension in grader.toml: on time, 3 |
| Dan | dan.toml | not in the manifest: the file's mtime, 03-13 12:00 | 8 days late, over 5: 5 -> 0 |
| zed | zed.toml | manifest: 30 s after the deadline | within 5 minutes' grace: 2; not on the roster |
| Finn | nothing | | missing |

lr-schedulers is due 2027-03-12 23:59 with its own policy (25%/day, >2 days: 0). Ben hands it in
2 days and 9 hours late: 0 points, until `grader extend` gives him 3 days.
"""

import csv
import os
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from grading_support import FILES, run_cli

from grader.grading.discover import Found
from grader.grading.submission_times import ManifestError, read_manifest, submission_time
from grader.results import CheckResult, Status, SubmissionResult
from grader.specs.late import LatePolicy, after_penalty
from grader.store.gradebook import MIGRATIONS, SCHEMA, SCHEMA_VERSION, Gradebook
from grader.store.lateness import apply_late_policy, late_records

COURSE = FILES / "course"
CET = timezone(timedelta(hours=1))
DEADLINE = datetime(2027, 3, 5, 23, 59, tzinfo=CET)


@pytest.mark.parametrize("late_minutes, days, percent", [
    (-60, 0, 0), (0, 0, 0), (5, 0, 0),  # on time, and within the 5 minutes' grace
    (6, 1, 10), (24 * 60, 1, 10), (24 * 60 + 1, 2, 20),  # per *started* day
    (5 * 24 * 60, 5, 50), (5 * 24 * 60 + 1, 6, 100),  # more than 5 days: nothing
])
def test_the_penalty_counts_started_days_after_the_grace(late_minutes, days, percent):
    lateness = LatePolicy(10, 5, 5).assess(DEADLINE + timedelta(minutes=late_minutes), DEADLINE)
    assert (lateness.days, lateness.percent) == (days, percent)


def test_penalties_stop_at_the_whole_score_and_a_zero_day_policy_refuses_any_lateness():
    assert LatePolicy(30).assess(DEADLINE + timedelta(days=3, hours=1), DEADLINE).percent == 100
    assert LatePolicy(30).describe() == "30% off per started day late"
    strict = LatePolicy(10, max_days=0)
    assert strict.assess(DEADLINE + timedelta(seconds=1), DEADLINE).percent == 100
    assert strict.assess(DEADLINE, DEADLINE).percent == 0
    assert strict.describe() == "no late submissions: any later than the deadline scores 0"
    assert after_penalty(4, 10) == 3.6 and after_penalty(3, 100) == 0


def test_the_latest_manifest_row_for_the_graded_file_counts_else_the_files_time(tmp_path):
    folder = tmp_path / "convergence"
    shutil.copytree(COURSE / "submissions" / "convergence", folder)
    rows = read_manifest(folder / "submissions.csv", CET)
    ben = submission_time(Found("1002", folder / "1002.json"), folder, rows, "submissions.csv", {"1002"}, CET)
    assert (ben.at, ben.source, ben.detail) == (datetime(2027, 3, 6, 9, 30, tzinfo=CET), "manifest",
                                                "submissions.csv row 4, the latest of 2")
    os.utime(folder / "dan.toml", (DEADLINE.timestamp(), DEADLINE.timestamp()))
    dan = submission_time(Found("dan", folder / "dan.toml"), folder, rows, "submissions.csv", {"dan"}, CET)
    assert (dan.at, dan.source, dan.detail) == (DEADLINE, "mtime", "submissions.csv does not list dan")
    elsewhere = submission_time(Found("ada", folder / "dan.toml"), folder, rows, "submissions.csv", {"ada@uni.example"},
                                CET)
    assert elsewhere.detail == "submissions.csv lists ada only with other files (ada.toml)"
    nothing = submission_time(Found("dan", folder / "dan.toml"), folder, None, "", {"dan"}, CET)
    assert nothing.detail == "no submissions.csv in the submissions folder"


@pytest.mark.parametrize("text, zone, message", [
    ("student,submitted_at\nada,2027-03-05T10:00:00Z\n", CET,
     "needs the columns student, file, submitted_at; missing file (its header is student, submitted_at)"),
    ("student,file,submitted_at\nada,ada.toml,yesterday\n", CET,
     "row 2: submitted_at: expected an ISO 8601 time such as 2027-03-05T23:59:00+01:00, got 'yesterday'"),
    ("student,file,submitted_at\nada,ada.toml,2027-03-05 10:00\n", None,
     ("row 2: submitted_at: '2027-03-05 10:00' has no UTC offset: add one (+01:00, Z) or set course.timezone in "
      "grader.toml")),
    ("student,file,submitted_at\n,ada.toml,2027-03-05T10:00:00Z\n", CET, "row 2: student: must not be empty"),
])
def test_manifest_mistakes_name_the_row_and_the_column(tmp_path, text, zone, message):
    path = tmp_path / "submissions.csv"
    path.write_text(text)
    with pytest.raises(ManifestError) as error:
        read_manifest(path, zone)
    assert str(error.value) == f"{path}: {message}"


def test_a_version_3_gradebook_gains_the_term_tables_and_keeps_its_results(tmp_path):
    path = tmp_path / "v3.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA + "".join(f"\n{statement};" for v in (2, 3) for statement in MIGRATIONS[v])
                       + "\nPRAGMA user_version=3;")
    conn.close()
    with Gradebook.open(path, create=False) as gradebook:
        assert gradebook.schema_version() == SCHEMA_VERSION >= 4
        gradebook.record(SubmissionResult("convergence", "ada", Status.OK, checks=(
            CheckResult("lr-role", True, 1, 1, "public", "Correct"),), notebook_sha256="abc"), "ada.toml", "v",
            hidden_included=False)
        [record] = apply_late_policy(gradebook, None)  # graded before times were kept: no time, no deadline
        assert (record.submitted(), record.verdict(), record.final_score) == (
            "submission time unknown", "no deadline set", 1)


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    """The course's term graded: roster imported, both quizzes graded from the submissions folder."""
    root = tmp_path_factory.mktemp("term") / "course"
    shutil.copytree(COURSE, root)
    dan = datetime(2027, 3, 13, 12, 0, tzinfo=CET).timestamp()  # not in the manifest: his file's time counts
    os.utime(root / "submissions" / "convergence" / "dan.toml", (dan, dan))
    from grader.cli import main

    outputs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GRADER_SECRET", raising=False)
        mp.chdir(root / "submissions")
        for argv in (["roster", "import"], ["grade", "convergence", "--exercise", "convergence"],
                     ["grade", "lr-schedulers", "--exercise", "lr-schedulers"]):
            outputs[argv[1]] = _captured(main, argv)
    return root, outputs


def _captured(main, argv):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return " ".join(out.getvalue().split())


def test_each_penalty_is_stored_with_the_raw_and_the_final_score(term):
    root, _ = term
    with Gradebook.open(root / "gradebook.sqlite", create=False) as gradebook:
        records = late_records(gradebook, "convergence")
    stored = {student: (r.submitted_at, r.time_source, r.extension_days, r.days_late, r.percent, r.raw_score,
                        r.final_score) for (student, _), r in records.items()}
    assert stored == {
        "ada": ("2027-03-05T21:14:00+01:00", "manifest", 0, 0, 0, 5, 5),
        "1002": ("2027-03-06T09:30:00+01:00", "manifest", 0, 1, 10, 4, 3.6),
        "Cleo_Martin": ("2027-03-07T13:00:00+01:00", "manifest", 2, 0, 0, 3, 3),
        "dan": ("2027-03-13T12:00:00+01:00", "mtime", 0, 8, 100, 5, 0),
        "zed": ("2027-03-05T23:59:30+01:00", "manifest", 0, 0, 0, 2, 2),
    }
    assert records[("Cleo_Martin", "convergence")].extension_source == "grader.toml"
    assert records[("1002", "convergence")].time_detail == "submissions.csv row 4, the latest of 2"


def test_the_batch_says_where_times_came_from_who_was_late_and_who_had_an_extension(term):
    _, outputs = term
    out = outputs["convergence"]
    assert "Submission times: 4 from the manifest, 1 from file modification times (dan)" in out
    assert "1 manifest row(s) match no submission here: row 7 (gus, gus.toml)" in out
    assert ("Late policy: 10% off per started day late; more than 5 days late scores 0; 5 minutes' grace") in out
    assert ("Ben Okafor (1002), as 1002: 1 started day late (deadline 2027-03-05 23:59 +01:00): 10% off; 3.6 points "
            "after the late penalty (raw 4)") in out
    assert ("Cleo Martin (1003), as Cleo_Martin: on time (deadline 2027-03-07 23:59 +01:00, with an extension of 2 "
            "days); 3 points after the late penalty (raw 3)") in out
    assert ("Dan Weiss (1004), as dan: 8 started days late (deadline 2027-03-05 23:59 +01:00): 100% off; 0 points "
            "after the late penalty (raw 5)") in out
    assert "Late policy: 25% off per started day late; more than 2 days late scores 0" in outputs["lr-schedulers"]


def test_the_pages_show_when_it_was_handed_in_and_both_scores(term, tmp_path, capsys, monkeypatch):
    root, _ = term
    monkeypatch.chdir(root)
    assert run_cli(capsys, "feedback", "--out", tmp_path)[0] == 0
    ben = " ".join((tmp_path / "convergence" / "1002.html").read_text().split())
    assert ('<strong>Handed in:</strong> 2027-03-06 09:30 +01:00 (from the submissions manifest); 1 started day late '
            "(deadline 2027-03-05 23:59 +01:00): 10% off. The late policy: 10% off per started day late; more than 5 "
            "days late scores 0; 5 minutes&#39; grace. Your score before the late penalty is 4, after it 3.6.") in ben
    assert '<span class="score">3.6 / 5</span> after the late penalty (10% off)' in ben
    dan = " ".join((tmp_path / "convergence" / "dan.html").read_text().split())
    assert ("2027-03-13 12:00 +01:00 (the file&#39;s modification time); 8 started days late (deadline 2027-03-05 "
            "23:59 +01:00): 100% off.") in dan
    cleo = " ".join((tmp_path / "convergence" / "Cleo_Martin.html").read_text().split())
    assert "on time (deadline 2027-03-07 23:59 +01:00, with an extension of 2 days)." in cleo
    assert "after the late penalty" not in cleo
    index = " ".join((tmp_path / "index.html").read_text().split())
    assert ('<td class="num">3.6 / 5<br><span class="tag">raw 4, 10% off</span></td> <td>2027-03-06 09:30 +01:00 '
            "(from the submissions manifest)<br>") in index


CSV = """\
name,student_id,email,submitted_as,\
convergence_score,convergence_max,convergence_status,convergence_raw,convergence_late_penalty,\
convergence_submitted_at,convergence_time_source,\
lr-schedulers_score,lr-schedulers_max,lr-schedulers_status,lr-schedulers_raw,lr-schedulers_late_penalty,\
lr-schedulers_submitted_at,lr-schedulers_time_source,total_score,total_max,roster,notes
Ada Lovelace,1001,ada@uni.example,ada,5,5,ok,5,0,2027-03-05T21:14:00+01:00,manifest,\
5,5,ok,5,0,2027-03-12T18:00:00+01:00,manifest,10,10,on roster,
Ben Okafor,1002,ben@uni.example,1002,3.6,5,ok,4,10,2027-03-06T09:30:00+01:00,manifest,\
0,5,ok,5,100,2027-03-15T09:00:00+01:00,manifest,3.6,10,on roster,\
convergence: 1 started day late (deadline 2027-03-05 23:59 +01:00): 10% off | \
lr-schedulers: 3 started days late (deadline 2027-03-12 23:59 +01:00): 100% off
Cleo Martin,1003,cleo.martin@uni.example,Cleo_Martin,3,5,ok,3,0,2027-03-07T13:00:00+01:00,manifest,\
,5,missing,,,,,3,10,on roster,\
"convergence: on time (deadline 2027-03-07 23:59 +01:00, with an extension of 2 days)"
Dan Weiss,1004,dan@uni.example,dan,0,5,ok,5,100,2027-03-13T12:00:00+01:00,mtime,\
,5,missing,,,,,0,10,on roster,convergence: 8 started days late (deadline 2027-03-05 23:59 +01:00): 100% off
Finn Berg,1005,finn@uni.example,,,5,missing,,,,,,5,missing,,,,,0,10,no submission,
zed,,,zed,2,5,ok,2,0,2027-03-05T23:59:30+01:00,manifest,,5,missing,,,,,2,10,not on roster,
"""

CANVAS = """\
Student,ID,SIS User ID,SIS Login ID,Section,Quiz: convergence (7301),Learning-rate schedulers in PyTorch
Ada Lovelace,51,1001,alovelace,Section A,5,5
Ben Okafor,52,1002,bokafor,Section A,3.6,{ben}
Cleo Martin,53,1003,cmartin,Section B,3,
Dan Weiss,54,1004,dweiss,Section B,0,
Finn Berg,55,1005,fberg,Section B,,
"""


def test_the_csv_has_every_figure(term, capsys, monkeypatch):
    root, _ = term
    monkeypatch.chdir(root)
    code, out, _ = run_cli(capsys, "export", "--format", "csv")
    assert code == 0 and out == CSV
    totals = {row["name"]: float(row["total_score"]) for row in csv.DictReader(out.splitlines())}
    assert totals == {"Ada Lovelace": 10, "Ben Okafor": 3.6, "Cleo Martin": 3, "Dan Weiss": 0, "Finn Berg": 0, "zed": 2}
    # status gives the score that counts, as the CSV does: it showed ben's 4 with no word of the penalty
    code, out, _ = run_cli(capsys, "status", "--assignment", "convergence")
    assert code == 0 and "3.6/5 (late -10%; graded 4)" in out, out


def test_the_canvas_file_has_every_figure_and_names_who_it_leaves_out(term, capsys, monkeypatch, tmp_path):
    root, _ = term
    monkeypatch.chdir(root)
    code, out, err = run_cli(capsys, "export", "--format", "canvas", "--out", tmp_path / "canvas.csv")
    assert code == 0 and out == f"wrote {tmp_path / 'canvas.csv'}\n"
    assert err == "left out of the Canvas file, not on the roster: zed\n"
    assert (tmp_path / "canvas.csv").read_text() == CANVAS.format(ben=0)


def test_an_extension_applies_at_once_and_takes_precedence_over_the_config(term, tmp_path, capsys, monkeypatch):
    root, _ = term
    shutil.copytree(root, tmp_path / "course")
    monkeypatch.chdir(tmp_path / "course")
    code, out, _ = run_cli(capsys, "extend", "bokafor", "lr-schedulers", "--days", "3")
    assert code == 0
    assert out.splitlines() == [
        f"Ben Okafor (1002): 3 extra day(s) for lr-schedulers, recorded in {tmp_path / 'course' / 'gradebook.sqlite'}",
        ("current result (1002): on time (deadline 2027-03-15 23:59 +01:00, with an extension of 3 days); 5 points "
         "after the late penalty (raw 5) (was 0: 3 started days late (deadline 2027-03-12 23:59 +01:00): 100% off)")]
    assert run_cli(capsys, "export", "--format", "canvas")[1] == CANVAS.format(ben=5)
    # `grader extend ... --days 0` revokes grader.toml's 2 days for Cleo: 37 hours late, 2 started days.
    code, out, _ = run_cli(capsys, "extend", "Cleo Martin", "convergence", "--days", "0")
    assert code == 0 and out.splitlines()[1] == (
        "current result (Cleo_Martin): 2 started days late (deadline 2027-03-05 23:59 +01:00): 20% off; 2.4 points "
        "after the late penalty (raw 3) (was 3: on time (deadline 2027-03-07 23:59 +01:00, with an extension of 2 "
        "days))")
    code, _, err = run_cli(capsys, "extend", "nobody", "convergence", "--days", "1")
    assert code == 2 and "unknown student 'nobody': not on the roster (5 students), and no submission under that " \
                         "name in" in err
    code, _, err = run_cli(capsys, "extend", "1001", "convergense", "--days", "1")
    assert code == 2 and "unknown exercise or quiz 'convergense' (known: " in err


def test_a_corrected_manifest_changes_the_time_of_an_unchanged_submission(term, tmp_path, capsys, monkeypatch):
    root, _ = term
    shutil.copytree(root, tmp_path / "course")
    manifest = tmp_path / "course" / "submissions" / "convergence" / "submissions.csv"
    manifest.write_text(manifest.read_text().replace("1002,1002.json,2027-03-06 09:30:00\n", ""))
    monkeypatch.chdir(tmp_path / "course" / "submissions")
    code, out, _ = run_cli(capsys, "grade", "convergence", "--exercise", "convergence")
    assert code == 0 and "5 unchanged submission(s) already graded: skipped" in " ".join(out.split())
    with Gradebook.open(tmp_path / "course" / "gradebook.sqlite", create=False) as gradebook:
        ben = late_records(gradebook, "convergence")[("1002", "convergence")]
    assert (ben.submitted_at, ben.days_late, ben.final_score) == ("2027-03-05T20:00:00+01:00", 0, 4)


def test_an_extension_no_date_can_hold_is_refused_and_one_stored_before_is_ignored_not_fatal(term, tmp_path, capsys,
                                                                                           monkeypatch):
    root, _ = term
    shutil.copytree(root, tmp_path / "course")
    monkeypatch.chdir(tmp_path / "course")
    book = tmp_path / "course" / "gradebook.sqlite"
    for days in ("nan", "inf", "1e9", "3650.5", "-1"):
        code, out, err = run_cli(capsys, "extend", "bokafor", "lr-schedulers", "--days", days)
        assert (code, out) == (2, "") and err == (f"grader extend: --days {float(days):g} is not a number of days from "
                                                  "0 to 3650\n")
    with sqlite3.connect(book) as conn:
        assert conn.execute("SELECT count(*) FROM extensions").fetchone() == (0,)
        # As an older grader stored them: the whole class's export overflowed a deadline (or died on nan).
        conn.executemany("INSERT INTO extensions(student, exercise, days, granted_at) VALUES (?, ?, ?, ?)",
                         [("1002", "lr-schedulers", float("inf"), "2027-03-16T10:00:00+00:00"),
                          ("1003", "convergence", 1e9, "2027-03-16T10:01:00+00:00")])
    code, out, err = run_cli(capsys, "export", "--format", "csv")
    assert code == 0 and out == CSV  # as if they were never given: Cleo keeps grader.toml's 2 days
    assert err.splitlines() == [
        f"grader export: ignored the extension for 1002 on lr-schedulers recorded 2027-03-16T10:00:00+00:00 in {book}: "
        "inf is not a number of days from 0 to 3650; give it again with `grader extend`",
        f"grader export: ignored the extension for 1003 on convergence recorded 2027-03-16T10:01:00+00:00 in {book}: "
        "1e+09 is not a number of days from 0 to 3650; give it again with `grader extend`"]
    code, out, _ = run_cli(capsys, "extend", "bokafor", "lr-schedulers", "--days", "3")
    assert code == 0 and "5 points after the late penalty (raw 5)" in out
    config = tmp_path / "course" / "grader.toml"
    config.write_text(config.read_text().replace("convergence = 2", "convergence = inf"))
    code, _, err = run_cli(capsys, "export", "--format", "csv")
    assert code == 2 and "inf is not a number of days from 0 to 3650" in err and len(err.splitlines()) == 1
