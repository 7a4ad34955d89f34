"""Hidden checks are calibrated: a correct solution fails each for at most 1e-4 of instructor secrets.

The session fixture trains the reference solutions once and recomputes every figure; the
stored figures that ``grader exercises`` shows must agree with it.
"""

import dataclasses
import math
import random

import pytest
from rich.console import Console

from grading_support import run_cli
from grader.assignments.catalog import load_all, load_exercise
from grader.checks.data import DataFactory
from grader.grading import calibration as cal
from grader.grading.calibration_solutions import SOLUTIONS
from grader.grading.secrets import hidden_seeds
from grader.render.terminal import exercises_table


@pytest.fixture(scope="session")
def exercises():
    return load_all()


@pytest.fixture(scope="session")
def recomputed(exercises):
    return {(c.exercise, c.check): c for c in cal.calibrate(exercises)}


def _check(exercise_id: str, check_id: str):
    exercise = load_exercise(exercise_id)
    return exercise, next(c for c in exercise.checks if c.spec.id == check_id)


def test_every_check_on_secret_data_fails_a_correct_solution_at_most_1e_4(exercises, recomputed):
    on_secret_data = {(e.id, c.spec.id) for e in exercises for c in cal.calibrated_checks(e)}
    assert on_secret_data == set(recomputed)
    assert {("tiny-model", "fresh-data"), ("random-seeds", "hidden-test"), ("early-stopping", "hidden-test")} \
        <= on_secret_data
    for key, calibration in recomputed.items():
        assert calibration.correct, key
        assert calibration.false_fail <= cal.TARGET, (key, calibration.false_fail)
        assert all(f.estimate <= f.bound for f in calibration.correct)


def test_wrong_solutions_still_fail_the_hidden_checks(recomputed):
    for key, calibration in recomputed.items():
        passes: dict[str, float] = {}
        for f in calibration.wrong:  # a solution passes only when each of its models does
            passes[f.solution] = min(passes.get(f.solution, 1.0), f.estimate)
        assert passes and max(passes.values()) <= 1e-3, (key, passes)
    untrained = [f for f in recomputed[("early-stopping", "hidden-test")].wrong if "untrained" in f.solution]
    assert untrained[0].accuracy == pytest.approx(100 / 3, abs=0.1) and untrained[0].estimate == 0.0


def test_the_stored_figures_are_the_recomputed_ones(recomputed):
    stored = cal.read_store()
    assert set(stored) == set(recomputed), "run `grader calibrate --write`"
    for key, fresh in recomputed.items():
        old = stored[key]
        assert (old.fingerprint, old.points, old.rule) == (fresh.fingerprint, fresh.points, fresh.rule), \
            f"{key}: stale, run `grader calibrate --write`"
        assert old.false_fail == pytest.approx(fresh.false_fail, rel=1e-3, abs=1e-15), key
        assert [f.accuracy for f in old.correct + old.wrong] == \
            pytest.approx([f.accuracy for f in fresh.correct + fresh.wrong], abs=0.01), key


def test_grading_by_the_check_itself_fails_as_often_as_computed(recomputed):
    """On a set made to fail often (180 points, a bar at the model's own accuracy), the real check over
    400 secrets fails as often as the exact law at the estimated rates says, within 4 standard deviations."""
    exercise, check = _check("early-stopping", "hidden-test")
    harsh = dataclasses.replace(check, params={**check.params, "min_accuracy": 57.0,
                                               "data": {**check.params["data"], "n_per_cell": 20}})
    [figure] = cal.calibrate_check(exercise, harsh).correct
    assert 0.2 < figure.estimate < 0.8 and figure.estimate <= figure.bound
    secrets = 400
    failed = cal.simulate(exercise, harsh, SOLUTIONS["early-stopping"][0], secrets)
    spread = math.sqrt(figure.estimate * (1 - figure.estimate) / secrets)
    assert abs(failed / secrets - figure.estimate) <= 4 * spread, (failed, figure.estimate)


def test_the_old_random_seeds_set_failed_a_correct_solution_often(recomputed):
    """180 points against a 50% bar: seed 18's model (about 55%) failed for several percent of secrets."""
    exercise, check = _check("random-seeds", "hidden-test")
    old = dataclasses.replace(check, params={**check.params, "min_accuracy": 50.0,
                                             "data": {**check.params["data"], "n_per_cell": 20}})
    before = cal.calibrate_check(exercise, old)
    assert before.false_fail > 0.03 and not before.within_target
    seed18 = next(f for f in before.correct if f.model == "models[18]")
    assert 54 < seed18.accuracy < 56 and seed18.estimate > 0.03


def test_an_untrained_model_fails_the_early_stopping_hidden_check_with_the_causes_that_remain():
    exercise, check = _check("early-stopping", "hidden-test")
    untrained = next(s for s in SOLUTIONS["early-stopping"] if "untrained" in s.name)
    factory = DataFactory(hidden_seed=hidden_seeds(b"any secret", exercise.id))
    ctx = dataclasses.replace(cal.solution_context(exercise, untrained), data=factory, check_id=check.spec.id)
    outcome = check.evaluate(ctx)
    assert not outcome.passed
    assert outcome.message == (
        "Your model scores 33.33% (150/450) on a fresh test set drawn by the grader (noise 0.5; chance is 33%), "
        "measured by the grader in eval mode; it needs at least 45%. A trained model scores about 55-60% here and "
        "chance is 33%, so your model learned little: it may be untrained, or restored to a state from the first "
        "epochs. Check which weights your function loads back, and that you export the model it returned.")


def test_exact_law_and_bounds():
    n, p = 7, 0.3
    one_cell = cal.error_law(n, [p])
    assert one_cell == pytest.approx([math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1)])
    assert cal.error_law(n, [p] * 9) == pytest.approx(
        [math.comb(9 * n, k) * p ** k * (1 - p) ** (9 * n - k) for k in range(9 * n + 1)])
    assert cal.error_law(3, [0.0, 1.0]) == [0, 0, 0, 1, 0, 0, 0]
    # With no event in n trials, the Chernoff-KL bound is exactly 1 - delta ** (1 / n).
    assert cal.upper_bound(0, 1000, 1e-3) == pytest.approx(1 - 1e-3 ** (1 / 1000), rel=1e-9)
    assert cal.lower_bound(400, 1000, 1e-3) < 0.4 < cal.upper_bound(400, 1000, 1e-3) < 0.46
    draws = random.Random(0)
    below = sum(cal.upper_bound(sum(draws.random() < 0.3 for _ in range(200)), 200, 0.05) < 0.3 for _ in range(1000))
    assert below <= 50 + 4 * math.sqrt(1000 * 0.05 * 0.95)  # a bound at 95% is below the true rate <= 5% of the time
    band = cal.Band(45.0)
    assert band.passes(45, 100) and not band.passes(44, 100)  # "at least", as the check kinds compare
    assert cal.fail_chance(50, band, [0.5] * 9, [0.5] * 9) < cal.fail_chance(50, band, [0.52] * 9, [0.5] * 9)


def test_a_check_kind_without_a_calibration_is_refused():
    exercise, check = _check("random-seeds", "reported-vs-measured")
    hidden = dict(check.params["data"], test={**check.params["data"]["test"], "seed": "hidden"})
    with pytest.raises(cal.NotCalibrated, match="seed_results"):
        cal.calibrate_check(exercise, dataclasses.replace(check, params={**check.params, "data": hidden}))


def _table_text(exercises, stored) -> str:
    console = Console(record=True, width=400)
    console.print(exercises_table(exercises, stored))
    return console.export_text()


def test_the_catalogue_shows_each_hidden_checks_figure_or_why_it_has_none(exercises, recomputed):
    text = _table_text(exercises, recomputed)
    figure = recomputed[("random-seeds", "hidden-test")]
    assert f"false-fail p <= {figure.false_fail:.1e} over secrets, target 0.0001 (450 points, at least 45%)" in text
    assert text.count("over secrets, target 0.0001") == len(recomputed)
    stale = {**recomputed, ("tiny-model", "fresh-data"): dataclasses.replace(figure, fingerprint="0")}
    assert "false-fail rate stale (the spec changed): run `grader calibrate --write`" in _table_text(exercises, stale)
    assert "false-fail rate not calibrated" in _table_text(exercises, {})


def test_grader_exercises_reads_the_stored_figures(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one table row per line
    code, out, err = run_cli(capsys, "exercises")
    assert code == 0 and out.count("false-fail p <=") == len(cal.read_store())


def test_grader_calibrate_prints_the_figures(capsys, recomputed):
    code, out, err = run_cli(capsys, "calibrate", "--exercise", "tiny-model")
    assert code == 0
    assert "tiny-model/fresh-data: 180 points, at least 95%: a correct solution fails with p <=" in out
    assert "wrong:   the same net after 10 steps" in out
