"""Gradebook safety: a read-only folder or a damaged file gets one line, never a traceback; integrity check and
online backup; the schema migrates from the previous version."""

import csv
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time

import pytest

from grading_support import FILES, ROOT, run_cli
from grader.results import CheckResult, Status, SubmissionResult
from grader.store.gradebook import MIGRATIONS, SCHEMA, SCHEMA_VERSION, Gradebook
from grader.store.overrides import current_overrides, record_override


def _result(student: str, passed: bool) -> SubmissionResult:
    checks = (CheckResult("lr-role", passed, float(passed), 1, "public", "right" if passed else "wrong"),
              CheckResult("lr-keyword", True, 1, 1, "public", "right"))
    return SubmissionResult("convergence", student, Status.OK, checks=checks, notebook_sha256=f"sha-{student}")


def _gradebook(path, students=("ada", "ben")):
    with Gradebook.open(path) as gradebook:
        for i, student in enumerate(students):
            gradebook.record(_result(student, i % 2 == 0), f"{student}.toml", "v1", hidden_included=False)
    return path


def _cli(*args, wrap=()):
    """The real command in a fresh process (optionally inside ``wrap``): exit code, stdout, stderr."""
    done = subprocess.run([*wrap, sys.executable, "-m", "grader.cli", *map(str, args)], capture_output=True, text=True,
                          check=False, timeout=300, cwd=ROOT, env=dict(os.environ, GRADER_SECRET="safety-test-secret"))
    return done.returncode, done.stdout, done.stderr


def _read_only_view(folder):
    """A command prefix under which ``folder`` is read-only, even for root: a read-only bind mount in a private
    mount namespace; without root, the folder's permissions are enough."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return ()
    if not shutil.which("unshare"):
        pytest.skip("needs unshare(1) to make a folder read-only for root")
    mount = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && exec \"$@\""
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", mount, "sh", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only mount here: {probe.stderr.decode().strip()}")
    return ("unshare", "--mount", "sh", "-c", mount, "sh")


def test_a_read_only_folder_gets_one_line_never_a_traceback(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    book = _gradebook(folder / "gradebook.sqlite")
    answers = tmp_path / "class"
    answers.mkdir()
    shutil.copy(FILES / "quizzes" / "perfect.toml", answers / "ada.toml")
    wrap = _read_only_view(folder)
    unusable = (f"cannot use the gradebook {book}: its folder {folder} is read-only, and SQLite writes its journal "
                f"files beside the gradebook, even to read it (unable to open database file); make it writable, or "
                f"copy the gradebook to a writable folder and pass --gradebook\n")
    for command in (("grade", answers, "--exercise", "convergence", "--gradebook", book, "--workers", 1),
                    ("override", "ada", "convergence", "--points", 2, "--comment", "x", "--gradebook", book),
                    ("status", "--gradebook", book)):
        code, out, err = _cli(*command, wrap=wrap)
        assert (code, out, err) == (2, "", f"grader {command[0]}: {unusable}")
    code, out, err = _cli("grade", answers, "--exercise", "convergence", "--gradebook", folder / "new.sqlite",
                          wrap=wrap)
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"grader grade: cannot use the gradebook {folder / 'new.sqlite'}: its folder {folder} is "
                          "read-only")
    # What needs no writing still works: the integrity check reads the file as it is.
    code, out, err = _cli("gradebook", "check", "--gradebook", book, wrap=wrap)
    assert (code, err) == (0, "") and out == (f"{book}: ok (SQLite integrity check passed; schema version "
                                              f"{SCHEMA_VERSION}, 2 students, 2 runs)\n")


def _damage_table(path, table: str) -> None:
    """Overwrite the first page of ``table``'s b-tree with junk, as a bad disk or a partial copy would."""
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * page_size)


def test_a_damaged_gradebook_gets_one_line_and_the_integrity_check_finds_it(tmp_path, capsys):
    book = _gradebook(tmp_path / "gradebook.sqlite")
    _damage_table(book, "runs")
    damaged = (f"the gradebook {book} is damaged (database disk image is malformed); `grader gradebook check "
               f"--gradebook {book}` shows where, and a copy made with `grader gradebook backup` can replace it\n")
    for command in (("status",), ("overrides",), ("export", "--format", "csv"), ("feedback", "--out", tmp_path / "f"),
                    ("override", "ada", "convergence", "--points", 1, "--comment", "x")):
        code, out, err = run_cli(capsys, *command, "--gradebook", book)
        assert (code, err) == (2, f"grader {command[0]}: {damaged}"), command
    code, out, err = run_cli(capsys, "gradebook", "check", "--gradebook", book)
    assert (code, err) == (1, "")
    assert out == (f"{book}: damaged, SQLite's integrity check found 1 problem(s): database disk image is malformed. "
                   "Restore a copy made with `grader gradebook backup`, or regrade into a new gradebook\n")
    code, _, err = run_cli(capsys, "gradebook", "backup", "--gradebook", book, "--out", tmp_path / "copy.sqlite")
    assert code == 2 and err == (f"grader gradebook backup: the copy of {book} fails SQLite's integrity check "
                                 "(database disk image is malformed); the gradebook itself may be damaged: run "
                                 "`grader gradebook check`\n")
    assert not (tmp_path / "copy.sqlite").exists() and not list(tmp_path.glob(".copy.sqlite*"))

    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this was never a gradebook " * 200)
    for command in (("status",), ("gradebook", "check")):
        code, _, err = run_cli(capsys, *command, "--gradebook", junk)
        assert (code, err) == (2, f"grader {' '.join(command)}: {junk} is not a gradebook: file is not a database\n")


def _count(path, table: str) -> int:
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


WRITER = """
import sys
from grader.results import CheckResult, Status, SubmissionResult
from grader.store.gradebook import Gradebook
with Gradebook.open(sys.argv[1]) as gradebook:
    for i in range(int(sys.argv[2])):
        checks = tuple(CheckResult(f"c{j}", True, 1, 1, "public", "x" * 2000) for j in range(20))
        gradebook.record(SubmissionResult("convergence", f"s{i % 50}", Status.OK, checks=checks,
                                          notebook_sha256=f"h{i}"), "x.toml", "v1", hidden_included=False)
"""


def test_backup_copies_consistently_while_a_batch_writes(tmp_path, capsys):
    book = _gradebook(tmp_path / "gradebook.sqlite")
    code, out, _ = run_cli(capsys, "gradebook", "check", "--gradebook", book)
    assert code == 0 and out == (f"{book}: ok (SQLite integrity check passed; schema version {SCHEMA_VERSION}, "
                                 "2 students, 2 runs)\n")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(book), "400"], cwd=ROOT)
    try:
        while _count(book, "runs") < 50:
            assert writer.poll() is None, "the writer ended before the backup could overlap it"
            time.sleep(0.05)
        copies = [tmp_path / f"copy-{i}.sqlite" for i in range(3)]
        for copy in copies:  # while the writer commits one run after another
            code, out, err = run_cli(capsys, "gradebook", "backup", "--gradebook", book, "--out", copy)
            assert code == 0, err
            assert out.startswith(f"backed up {book} to {copy} (") and out.endswith(
                "runs; the copy passes SQLite's integrity check)\n")
    finally:
        writer.wait(timeout=300)
    for copy in copies:
        conn = sqlite3.connect(copy)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # Every run is whole: a copy never holds a run without its 20 check results (2 for the first two).
        partial = conn.execute("SELECT count(*) FROM runs WHERE (SELECT count(*) FROM check_results c WHERE "
                               "c.run_id = runs.id) NOT IN (2, 20)").fetchone()[0]
        assert partial == 0 and conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        conn.close()
        assert oct(copy.stat().st_mode & 0o777) == "0o600"  # grades are private
    code, _, err = run_cli(capsys, "gradebook", "backup", "--gradebook", book, "--out", copies[0])
    assert code == 2 and err == (f"grader gradebook backup: {copies[0]} exists already: choose another --out (a "
                                 "backup never overwrites a file)\n")


def test_a_gradebook_of_the_previous_version_is_migrated_and_takes_overrides(tmp_path):
    previous = SCHEMA_VERSION - 1
    old = tmp_path / "old.sqlite"  # as the previous grader left it: its schema, its rows
    conn = sqlite3.connect(old)
    conn.executescript(SCHEMA)
    for version in range(2, previous + 1):
        for statement in MIGRATIONS[version]:
            conn.execute(statement)
    conn.executescript("""
        INSERT INTO students(id, name) VALUES (1, 'ada');
        INSERT INTO submissions VALUES (1, 1, 'convergence', 'abc', 'ada.toml', '2026-11-01T10:00:00+00:00');
        INSERT INTO runs(id, submission_id, status, score, max_score, grader_version, hidden_included, started_at,
                         duration_s) VALUES (1, 1, 'ok', 1, 2, 'v-old', 0, '2026-11-01T10:00:00+00:00', 0.5);
        INSERT INTO check_results(run_id, position, check_id, title, passed, points, max_points, visibility, message)
            VALUES (1, 0, 'lr-role', '', 0, 0, 1, 'public', 'wrong'),
                   (1, 1, 'lr-keyword', '', 1, 1, 1, 'public', 'right');
    """)
    conn.execute(f"PRAGMA user_version={previous}")
    conn.commit()
    conn.close()
    with Gradebook.open(old, create=False) as gradebook:
        assert gradebook.schema_version() == SCHEMA_VERSION
        [run] = gradebook.current_runs()
        assert (run.result.student, run.result.score, run.result.checks[0].message) == ("ada", 1, "wrong")
        assert current_overrides(gradebook) == []
        override = record_override(gradebook, "ada", "convergence", "lr-role", 1, "both readings are fine", "kim")
        assert (override.graded, override.run_id) == ({"passed": False, "points": 0.0, "max_points": 1.0}, 1)
    with Gradebook.open(old, create=False) as gradebook:  # opening again migrates nothing twice
        assert [o.comment for o in current_overrides(gradebook)] == ["both readings are fine"]


OPEN_WHEN_TOLD = """
import pathlib, sys, time
from grader.store.gradebook import Gradebook
folder = pathlib.Path(sys.argv[1])
while not (folder / "go").exists():
    time.sleep(0.001)
for i in range(int(sys.argv[2])):
    with Gradebook.open(folder / f"book{i}.sqlite") as book:
        assert book.schema_version() == int(sys.argv[3])
"""


def test_two_graders_creating_one_new_gradebook_at_once_both_open_it(tmp_path):
    """Two ``grader grade`` runs starting the same new gradebook at the same moment: the second waits for the first's
    schema and uses it, where reading the version before the write lock made it create the tables again."""
    books = 15  # new gradebooks, each opened by both processes at once: one alone rarely loses the race
    openers = [subprocess.Popen([sys.executable, "-c", OPEN_WHEN_TOLD, str(tmp_path), str(books), str(SCHEMA_VERSION)],
                                cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(2)  # both imported and waiting
    (tmp_path / "go").touch()
    errors = [opener.communicate(timeout=120)[1] for opener in openers]
    assert [opener.returncode for opener in openers] == [0, 0], errors
    for i in range(books):
        tables = sqlite3.connect(tmp_path / f"book{i}.sqlite").execute(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='students'").fetchone()[0]
        assert tables == 1


def test_an_output_that_is_the_gradebook_or_not_a_regular_file_is_refused_before_anything_is_written(tmp_path, capsys):
    book = _gradebook(tmp_path / "gb.sqlite")
    (tmp_path / "gb.sqlite.secret").write_text("safety-test-secret\n")
    (tmp_path / "folder").mkdir()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    refused = {
        ("export", "--format", "csv", "--out", book): f"--out {book} is the gradebook",
        ("export", "--format", "canvas", "--out", f"{book}.secret"): f"--out {book}.secret is the instructor secret",
        ("export", "--format", "csv", "--out", f"{book}-wal"): f"--out {book}-wal is the gradebook's SQLite "
                                                                "write-ahead log",
        ("export", "--format", "gradescope", "--out", book): f"--out {book} is the gradebook",
        ("feedback", "--out", book): f"--out {book} is the gradebook",
    }
    for argv, said in refused.items():
        code, out, err = run_cli(capsys, *argv, "--gradebook", book)
        assert (code, out, err) == (2, "", f"grader {argv[0]}: {said}: writing there would replace it; choose "
                                           "another path\n")
    for target, kind in (("/dev/full", "a device file"), (tmp_path / "folder", "a folder")):
        code, out, err = run_cli(capsys, "export", "--format", "csv", "--out", target, "--gradebook", book)
        assert (code, out, err) == (2, "", f"grader export: --out {target} is {kind}, not a regular file: choose the "
                                           "path of a file to write\n")
    code, out, err = run_cli(capsys, "feedback", "--out", tmp_path / "gb.sqlite.secret", "--gradebook", book)
    assert (code, err) == (2, f"grader feedback: --out {tmp_path / 'gb.sqlite.secret'} is the instructor secret: "
                              "writing there would replace it; choose another path\n")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert os.stat("/dev/full").st_rdev and not (tmp_path / "folder").is_file()
    # The writer itself replaces nothing but a regular file, whoever calls it.
    from hostile_support import unix_socket

    from grader.store.outputs import OutputError, write_output

    unix_socket(tmp_path / "s.sock").close()
    with pytest.raises(OutputError, match=f"^refusing to write {tmp_path / 's.sock'}: it is a socket, not a regular "
                                          "file$"):
        write_output(tmp_path / "s.sock", "page")
    assert stat.S_ISSOCK(os.lstat(tmp_path / "s.sock").st_mode)


def test_an_output_that_cannot_be_written_is_one_line_and_leaves_no_temporary_file(tmp_path, capsys):
    book = _gradebook(tmp_path / "gb.sqlite")
    assert run_cli(capsys, "roster", "import", FILES / "course" / "roster.csv", "--gradebook", book)[0] == 0
    (tmp_path / "a-file").write_text("")
    blocked = tmp_path / "a-file"
    for argv, path in ((("export", "--format", "csv", "--out", blocked / "g.csv"), blocked / "g.csv"),
                       (("export", "--format", "canvas", "--out", blocked / "c.csv"), blocked / "c.csv"),
                       (("export", "--format", "gradescope", "--out", blocked / "gs"), blocked / "gs/ada/results.json"),
                       (("feedback", "--out", blocked / "fb"), blocked / "fb/convergence/ada.html")):
        code, out, err = run_cli(capsys, *argv, "--gradebook", book)
        assert (code, out, err) == (2, "", f"grader {argv[0]}: cannot write {path}: Not a directory\n")


def _full_disk_view(folder):
    """A command prefix under which ``folder`` is a full file system (a 16 kB tmpfs, filled, in a private mount
    namespace: root's own, or a user namespace's without root); after the command, the files left in it are listed on
    stdout below ``left:``."""
    script = (f"mount -t tmpfs -o size=16k tmpfs {folder} || exit 99; head -c 65536 /dev/zero > {folder}/fill "
              f"2>/dev/null; \"$@\"; code=$?; echo left:; find {folder} -type f | sort; exit $code")
    namespaces = ("unshare", "--mount") if os.geteuid() == 0 else ("unshare", "--user", "--map-root-user", "--mount")
    probe = subprocess.run([*namespaces, "sh", "-c", script, "sh", "true"], capture_output=True, check=False)
    assert probe.returncode == 0, f"a full file system needs unshare(1) and mount namespaces: {probe.stderr!r}"
    return (*namespaces, "sh", "-c", script, "sh")


def test_a_full_or_read_only_disk_gets_one_line_naming_the_file_and_no_temporary_file(tmp_path):
    book = _gradebook(tmp_path / "gb.sqlite")
    full = tmp_path / "full"
    full.mkdir()
    wrap = _full_disk_view(full)
    for argv, path in ((("export", "--format", "csv", "--out", full / "g.csv"), full / "g.csv"),
                       (("export", "--format", "gradescope", "--out", full / "gs"), full / "gs/ada/results.json"),
                       (("feedback", "--out", full / "fb"), full / "fb/convergence/ada.html")):
        code, out, err = _cli(*argv, "--gradebook", book, wrap=wrap)
        assert (code, err) == (2, f"grader {argv[0]}: cannot write {path}: No space left on device\n")
        assert out.split("left:\n")[1] == f"{full / 'fill'}\n"  # no temporary file stays behind
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    code, out, err = _cli("export", "--format", "csv", "--out", read_only / "g.csv", "--gradebook", book,
                          wrap=_read_only_view(read_only))
    assert (code, out, err) == (2, "", f"grader export: cannot write {read_only / 'g.csv'}: Read-only file system\n")
    assert list(read_only.iterdir()) == []


def test_a_binary_secret_file_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GRADER_SECRET", raising=False)
    answers = tmp_path / "class"
    answers.mkdir()
    shutil.copy(FILES / "quizzes" / "perfect.toml", answers / "ada.toml")
    book = tmp_path / "gb.sqlite"
    secret = tmp_path / "gb.sqlite.secret"
    secret.write_bytes(bytes(range(256)) * 12)  # as `head -c 3000 /dev/urandom` makes one: no text
    code, out, err = run_cli(capsys, "grade", answers, "--exercise", "convergence", "--gradebook", book)
    assert (code, err) == (2, f"grader grade: the secret file {secret} is not text (byte 128 is not UTF-8): give "
                              "the file of the secret that graded this class, or a text file with a new one\n")


def test_no_export_cell_is_a_formula_a_spreadsheet_would_run(tmp_path, capsys):
    book = _gradebook(tmp_path / "gb.sqlite", students=("+1+1", "@SUM(1+1)", "-2", "\tcmd"))
    roster = tmp_path / "roster.csv"
    roster.write_text('Student ID,Name,E-mail,Login,Section,Canvas ID\n'
                      '-2,"=HYPERLINK(""http://x.example"")",x@uni.example,-2,@A,51\n')
    assert run_cli(capsys, "roster", "import", roster, "--gradebook", book)[0] == 0
    code, out, _ = run_cli(capsys, "export", "--format", "csv", "--gradebook", book)
    assert code == 0
    rows = list(csv.reader(out.splitlines()))
    names = [(row[0], row[3]) for row in rows[1:]]
    assert names == [("'\tcmd", "'\tcmd"), ("'+1+1", "'+1+1"), ("'=HYPERLINK(\"http://x.example\")", "-2"),
                     ("'@SUM(1+1)", "'@SUM(1+1)")]
    # Only a number may start with a minus sign ("-2": a spreadsheet reads it as the number it is).
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "@", "\t", "\r")
                or (cell[:1] == "-" and cell != "-2")]
    code, out, _ = run_cli(capsys, "export", "--format", "canvas", "--out", tmp_path / "canvas.csv", "--gradebook", book)
    assert code == 0
    assert list(csv.reader((tmp_path / "canvas.csv").read_text().splitlines()))[1] == [
        "'=HYPERLINK(\"http://x.example\")", "51", "-2", "-2", "'@A", "2"]
