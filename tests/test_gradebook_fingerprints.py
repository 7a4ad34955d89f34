"""Schema 3 stores each result's note and secret fingerprint; results from before it never block a batch."""

import sqlite3

import pytest

from grader.grading.batch import SecretMismatch, check_secret
from grader.grading.secrets import fingerprint
from grader.results import Status, SubmissionResult
from grader.store.gradebook import MIGRATIONS, SCHEMA, SCHEMA_VERSION, Gradebook


def test_a_version_2_gradebook_gains_notes_and_fingerprints_and_its_old_results_block_no_secret(tmp_path):
    path = tmp_path / "v2.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA + "\n" + ";\n".join(MIGRATIONS[2]) + ";\nPRAGMA user_version=2;")
    conn.executescript("""
        INSERT INTO students(id, name) VALUES (1, 'ada');
        INSERT INTO submissions VALUES (1, 1, 'tiny-model', 'abc', 'ada.ipynb', '2026-11-01T10:00:00+00:00');
        INSERT INTO runs(id, submission_id, status, score, max_score, grader_version, hidden_included, started_at,
                         duration_s) VALUES (1, 1, 'ok', 4, 4, '0.1.0+spec.old', 1, '2026-11-01T10:00:00+00:00', 7.5);
    """)
    conn.close()
    with Gradebook.open(path, create=False) as gradebook:
        assert gradebook.schema_version() == SCHEMA_VERSION
        [run] = gradebook.current_runs()
        assert run.result.note == "" and run.secret_fingerprint == "" and gradebook.secret_fingerprints() == {}
        check_secret(gradebook, b"any secret", "tiny-model", regrade=False)  # unknown before: nothing to compare
        gradebook.record(SubmissionResult("tiny-model", "ben", Status.INVALID, error="ambiguous: ...",
                                          note="2 notebooks: ..."), "ben", "0.1.0+spec.new", hidden_included=True,
                         secret_fingerprint=fingerprint(b"s1"))
        ben = next(r for r in gradebook.current_runs() if r.result.student == "ben")
        assert ben.result.note == "2 notebooks: ..." and ben.secret_fingerprint == fingerprint(b"s1")
        assert gradebook.secret_fingerprints() == {fingerprint(b"s1"): ["tiny-model"]}
        check_secret(gradebook, b"s1", "tiny-model", regrade=False)
        check_secret(gradebook, b"s2", "tiny-model", regrade=True)
        with pytest.raises(SecretMismatch) as refused:
            check_secret(gradebook, b"s2", "tiny-model", regrade=False)
        assert refused.value.exit_code == 2
        assert f"(tiny-model with secret {fingerprint(b's1')}); this secret is {fingerprint(b's2')}" in str(refused.value)


def test_the_fingerprint_is_short_stable_and_not_the_secret():
    assert fingerprint(b"s3cret") == fingerprint(b"s3cret") != fingerprint(b"s3cret ")
    assert len(fingerprint(b"s3cret")) == 12 and "s3cret" not in fingerprint(b"s3cret")
