import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

import grader.diagnosis.convergence as convergence
from grader.diagnosis.convergence import Diagnosis, Trend, diagnose, diagnose_accuracy

# The two loss tables of the convergence-metrics lesson: a good and a too-high learning rate.
SEED_SMOOTH = [0.85, 0.60, 0.45, 0.30, 0.25]
SEED_DIVERGING = [0.85, 1.10, 1.50, 1.80, 2.00]

# The unit's early-stopping run (checkerboard, SimpleMLP, Adam lr=0.01, patience=20, torch.manual_seed(0)):
# summed losses per epoch from reference.training.train_model_extended; stops at epoch 33, best epoch 13.
CHECKERBOARD_TRAIN = [
    6.6633, 6.5242, 6.435, 6.2316, 5.8917, 5.4074, 5.1364, 4.9631, 4.8197, 4.7466, 4.6694, 4.5811, 4.5647,
    4.4243, 4.5246, 4.3597, 4.4684, 4.4039, 4.3622, 4.257, 4.2981, 4.2355, 4.1398, 4.3372, 4.1796, 4.196,
    4.1445, 4.5681, 4.2339, 4.2679, 4.2132, 4.1124, 4.0905,
]
CHECKERBOARD_VAL = [
    6.5684, 6.5109, 6.4097, 6.2176, 5.9577, 5.841, 5.8606, 5.9785, 6.1107, 6.0109, 5.9287, 5.88, 5.729,
    5.7924, 5.8312, 5.984, 5.834, 5.8759, 5.868, 5.9405, 6.089, 5.811, 5.9268, 5.9495, 5.9026, 5.8833,
    6.0184, 5.9936, 5.7547, 6.1368, 5.9092, 5.8025, 6.0347,
]

EPOCHS = np.arange(30)
EXP_DECAY = 2.3 * np.exp(-EPOCHS / 4) + 0.05
NOISY_DECAY = (2.3 * np.exp(-EPOCHS / 6) + 0.1) * (1 + np.random.default_rng(0).normal(0, 0.03, 30))
LINEAR_GROWTH = 0.5 + 0.1 * EPOCHS
ALTERNATING = [1.0, 0.4, 0.9, 0.35, 0.95, 0.4, 1.0, 0.3, 0.9, 0.45]
NEARLY_FLAT = 2.30 - 0.001 * EPOCHS + np.random.default_rng(1).normal(0, 0.003, 30)
FALLING_TRAIN = 2.0 * np.exp(-EPOCHS / 5) + 0.1
U_SHAPED_VAL = 0.5 + 0.6 * np.exp(-EPOCHS / 4) + 0.004 * np.maximum(EPOCHS - 10, 0) ** 1.5

LOSS_CASES = {
    "seed smooth": ((SEED_SMOOTH,), Trend.CONVERGING),
    "seed diverging": ((SEED_DIVERGING,), Trend.DIVERGING),
    "exp decay": ((EXP_DECAY,), Trend.CONVERGING),
    "exp decay + noise": ((NOISY_DECAY,), Trend.CONVERGING),
    "linear growth": ((LINEAR_GROWTH,), Trend.DIVERGING),
    "alternating": ((ALTERNATING,), Trend.OSCILLATING),
    "nearly flat": ((NEARLY_FLAT,), Trend.PLATEAU),
    "u-shaped val": ((FALLING_TRAIN, U_SHAPED_VAL), Trend.OVERFITTING),
    "decay with decaying val": ((NOISY_DECAY, NOISY_DECAY * 1.1 + 0.05), Trend.CONVERGING),
    "checkerboard": ((CHECKERBOARD_TRAIN, CHECKERBOARD_VAL), Trend.OVERFITTING),
    "nan": (([0.85, 0.6, math.nan, 0.3],), Trend.DIVERGING),
    "too short": (([0.5, 0.4],), Trend.TOO_SHORT),
}
ACC_RISING = 10 + 88 * (1 - np.exp(-EPOCHS / 3))
ACC_CHANCE = 10 + np.random.default_rng(2).normal(0, 0.6, 30)
ACC_COLLAPSING = [0.90, 0.92, 0.91, 0.60, 0.30, 0.10, 0.10]
ACC_CASES = {
    "rising": (ACC_RISING, Trend.CONVERGING),
    "stuck near chance": (ACC_CHANCE, Trend.PLATEAU),
    "collapsing": (ACC_COLLAPSING, Trend.DIVERGING),
    "bouncing": ([95, 97, 93, 96, 92, 97, 91], Trend.OSCILLATING),
    "too short": ([0.5], Trend.TOO_SHORT),
}


@pytest.mark.parametrize("args, trend", LOSS_CASES.values(), ids=LOSS_CASES.keys())
def test_loss_curves(args, trend):
    assert diagnose(*args).trend is trend


@pytest.mark.parametrize("acc, trend", ACC_CASES.values(), ids=ACC_CASES.keys())
def test_accuracy_curves(acc, trend):
    assert diagnose_accuracy(acc).trend is trend


def _all_diagnoses() -> list[Diagnosis]:
    return [diagnose(*args) for args, _ in LOSS_CASES.values()] + [diagnose_accuracy(a) for a, _ in ACC_CASES.values()]


def test_every_diagnosis_is_one_plain_sentence_with_advice_and_json_evidence():
    for d in _all_diagnoses():
        assert d.summary and d.advice, d
        assert d.summary[0].isupper() and d.summary.endswith(".") and ". " not in d.summary, d.summary
        assert d.evidence["n_epochs"] >= 0
        json.dumps(d.evidence)  # plain floats and ints only, so reports can embed it


def test_seed_tables_in_the_students_terms():
    smooth = diagnose(SEED_SMOOTH)
    assert smooth.summary == "Training loss falls steadily from 0.85 to 0.25 (-71%): the model is converging."
    assert smooth.onset_epoch is None
    bad = diagnose(SEED_DIVERGING)
    assert bad.onset_epoch == 2  # the first epoch whose loss is above the best one
    assert "0.85" in bad.summary and "+135%" in bad.summary and "epoch 2" in bad.summary
    assert "learning rate" in bad.advice


def test_checkerboard_early_stopping_run_overfits_after_epoch_13():
    d = diagnose(CHECKERBOARD_TRAIN, CHECKERBOARD_VAL)
    assert (d.trend, d.onset_epoch) == (Trend.OVERFITTING, 13)
    for fact in ("epoch 13 (5.73)", "6.03 by epoch 33", "training loss keeps falling", "early stopping"):
        assert fact in d.summary
    assert "epoch 13" in d.advice
    assert d.evidence["val_best_epoch"] == 13 and d.evidence["val_rise_of_gain"] > 0.1
    # Without the validation curve nothing is wrong: training loss has converged.
    assert diagnose(CHECKERBOARD_TRAIN).trend is Trend.CONVERGING


def test_u_shaped_val_onset_is_the_best_val_epoch():
    d = diagnose(FALLING_TRAIN, U_SHAPED_VAL)
    assert d.onset_epoch == int(np.argmin(U_SHAPED_VAL)) + 1


def test_val_minimum_at_the_very_end_is_not_overfitting():
    val = list(U_SHAPED_VAL[:12]) + [0.5]  # lowest on the last epoch: still improving
    assert diagnose(FALLING_TRAIN[:13], val).trend is Trend.CONVERGING


def test_converged_after_a_big_drop_is_not_a_plateau():
    converged = diagnose(EXP_DECAY)
    assert converged.trend is Trend.CONVERGING and "levelled off" in converged.summary
    stuck = diagnose(NEARLY_FLAT)
    assert stuck.trend is Trend.PLATEAU and "barely moves" in stuck.summary
    assert stuck.evidence["progress"] < convergence.PLATEAU_PROGRESS < converged.evidence["progress"]


def test_loss_that_recovers_then_blows_up_diverges_after_its_best_epoch():
    d = diagnose([2.3, 0.5, 0.3, 0.6, 1.0, 1.5])
    assert (d.trend, d.onset_epoch) == (Trend.DIVERGING, 4)
    assert "0.3 at epoch 3" in d.summary


@pytest.mark.parametrize("factor", [0.01, 1.0, 20.0])  # mean vs summed losses (20 batches) give one verdict
def test_scale_free(factor):
    for args, trend in LOSS_CASES.values():
        assert diagnose(*[np.asarray(a) * factor for a in args]).trend is trend


def test_nan_and_inf_diverge_at_the_first_bad_epoch():
    d = diagnose([0.85, 0.6, math.nan, 0.3])
    assert (d.trend, d.onset_epoch) == (Trend.DIVERGING, 3)
    assert "nan at epoch 3" in d.summary
    d = diagnose([1.0, 0.8, 0.7, 0.6], [1.0, math.inf, 0.9, 0.8])
    assert (d.trend, d.onset_epoch) == (Trend.DIVERGING, 2) and d.summary.startswith("Val loss")
    assert diagnose([math.nan]).trend is Trend.DIVERGING  # a nan is a verdict however short the run


@pytest.mark.parametrize("values", [[], [0.5], [0.5, 0.4]])
def test_too_short(values):
    d = diagnose(values)
    assert d.trend is Trend.TOO_SHORT and str(len(values)) in d.summary


def test_accuracy_in_percent_and_fractions_agree():
    for acc, trend in ACC_CASES.values():
        assert diagnose_accuracy(np.asarray(acc) / 100 if max(acc) > 1 else acc).trend is trend
    assert "98.0%" in diagnose_accuracy(ACC_RISING / 100).summary


def test_accuracy_messages():
    assert "10." in diagnose_accuracy(ACC_CHANCE).summary
    collapse = diagnose_accuracy(ACC_COLLAPSING)
    assert collapse.onset_epoch == 3 and "accuracy collapses" in collapse.summary
    # A good learning rate near the ceiling still counts as progress (error rate 3% -> 1.2%).
    assert diagnose_accuracy([0.97, 0.98, 0.985, 0.987, 0.988]).trend is Trend.CONVERGING


def test_higher_is_better_scores():
    d = diagnose(3 - FALLING_TRAIN, 2 - U_SHAPED_VAL, higher_is_better=True)  # e.g. train/val scores
    assert (d.trend, d.onset_epoch) == (Trend.OVERFITTING, int(np.argmin(U_SHAPED_VAL)) + 1)
    assert "highest" in d.summary and "keeps rising" in d.summary
    assert diagnose([0.1, 0.4, 0.6, 0.7, 0.75], higher_is_better=True).trend is Trend.CONVERGING


def test_bad_input_says_what_was_expected():
    with pytest.raises(ValueError, match="expected val_loss with one value per epoch"):
        diagnose([1.0, 0.9, 0.8], [1.0, 0.9])
    with pytest.raises(ValueError, match="1-D"):
        diagnose([[1.0, 0.9], [0.8, 0.7]])


def test_module_needs_only_numpy_and_the_standard_library():
    tree = ast.parse(Path(convergence.__file__).read_text())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert roots <= {"__future__", "math", "collections", "dataclasses", "enum", "numpy"}
