"""The gradebook's schema is versioned: an older gradebook is migrated in place and keeps every result."""

import sqlite3

from grader.results import CheckResult, Status, SubmissionResult
from grader.store.gradebook import SCHEMA, SCHEMA_VERSION, Gradebook


def test_a_version_1_gradebook_is_migrated_and_keeps_its_results(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA + "\nPRAGMA user_version=1;")
    conn.executescript("""
        INSERT INTO students(id, name) VALUES (1, 'ada');
        INSERT INTO submissions VALUES (1, 1, 'tiny-model', 'abc', 'ada.ipynb', '2026-11-01T10:00:00+00:00');
        INSERT INTO runs(id, submission_id, status, score, max_score, grader_version, hidden_included, started_at,
                         duration_s) VALUES (1, 1, 'ok', 4, 4, '0.1.0+spec.old', 1, '2026-11-01T10:00:00+00:00', 7.5);
        INSERT INTO check_results(run_id, position, check_id, title, passed, points, max_points, visibility, message)
            VALUES (1, 0, 'fits-training-data', 'fit', 1, 4, 4, 'public', 'Your model scores 100.00%');
    """)
    conn.close()
    with Gradebook.open(path, create=False) as gradebook:
        assert gradebook.schema_version() == SCHEMA_VERSION > 1
        [run] = gradebook.current_runs()
        assert run.result.score == 4 and run.result.checks[0].kind == ""  # unknown for old rows, filled on render
        gradebook.record(SubmissionResult("tiny-model", "ada", Status.OK, checks=(CheckResult(
            "fits-training-data", True, 4, 4, "public", "ok", kind="accuracy"),), notebook_sha256="def"), "ada.ipynb",
            "0.1.0+spec.new", hidden_included=True)
        [run] = gradebook.current_runs()
        assert run.result.checks[0].kind == "accuracy" and gradebook.run_count() == 2
    with Gradebook.open(path, create=False) as gradebook:  # opening again migrates nothing twice
        assert gradebook.schema_version() == SCHEMA_VERSION and gradebook.run_count() == 2
